//! A leader's own view of its lease, kept without asking etcd: when the lease
//! could expire at the earliest. A keep-alive confirmed by etcd proves the
//! lease lives a full TTL past the moment that keep-alive was *sent*; while
//! one is unanswered, only the older proof counts. A leader stops acting a
//! safety margin before that deadline, even if etcd never says so (a paused
//! or partitioned leader must not outlive its lease).

use std::time::Duration;
use tokio::time::Instant;

/// The lease deadline bookkeeping of one session.
#[derive(Clone, Debug)]
pub struct LeaseClock {
    ttl: Duration,
    margin: Duration,
    /// Send time of the oldest keep-alive not answered yet.
    in_flight: Option<Instant>,
    /// Send time of the last keep-alive etcd confirmed (or of the grant request).
    renewed: Instant,
}

impl LeaseClock {
    /// A clock for a lease whose grant was requested at `granted`.
    pub fn new(ttl: Duration, margin: Duration, granted: Instant) -> Self {
        Self {
            ttl,
            margin,
            in_flight: None,
            renewed: granted,
        }
    }

    /// A keep-alive was sent at `at`.
    pub fn sent(&mut self, at: Instant) {
        self.in_flight.get_or_insert(at);
    }

    /// etcd confirmed a keep-alive (TTL > 0): the oldest unanswered send is
    /// the new proof. Answers are in order, so this is safe even when several
    /// were sent.
    pub fn confirmed(&mut self) {
        if let Some(sent) = self.in_flight.take() {
            self.renewed = self.renewed.max(sent);
        }
    }

    /// When the node must stop acting as leader.
    pub fn deadline(&self) -> Instant {
        self.renewed + self.ttl.saturating_sub(self.margin)
    }

    /// Whether the deadline passed at `now`.
    pub fn expired(&self, now: Instant) -> bool {
        now >= self.deadline()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(5);
    const MARGIN: Duration = Duration::from_secs(1);

    #[test]
    fn a_fresh_lease_expires_ttl_minus_margin_after_its_grant_was_requested() {
        let t0 = Instant::now();
        let clock = LeaseClock::new(TTL, MARGIN, t0);
        assert_eq!(clock.deadline(), t0 + Duration::from_secs(4));
        assert!(!clock.expired(t0 + Duration::from_millis(3999)));
        assert!(clock.expired(t0 + Duration::from_secs(4)));
    }

    #[test]
    fn a_confirmed_keepalive_extends_the_deadline_from_its_send_time() {
        let t0 = Instant::now();
        let mut clock = LeaseClock::new(TTL, MARGIN, t0);
        clock.sent(t0 + Duration::from_secs(2));
        clock.confirmed();
        assert_eq!(clock.deadline(), t0 + Duration::from_secs(6));
    }

    #[test]
    fn an_unanswered_keepalive_does_not_extend_the_deadline() {
        let t0 = Instant::now();
        let mut clock = LeaseClock::new(TTL, MARGIN, t0);
        clock.sent(t0 + Duration::from_secs(2));
        assert_eq!(clock.deadline(), t0 + Duration::from_secs(4));
        assert!(
            clock.expired(t0 + Duration::from_secs(5)),
            "a paused or cut-off leader stops on its own"
        );
    }

    #[test]
    fn with_several_keepalives_in_flight_only_the_oldest_counts() {
        let t0 = Instant::now();
        let mut clock = LeaseClock::new(TTL, MARGIN, t0);
        clock.sent(t0 + Duration::from_secs(1));
        clock.sent(t0 + Duration::from_secs(3));
        clock.confirmed();
        assert_eq!(
            clock.deadline(),
            t0 + Duration::from_secs(5),
            "the answer may be to the first send"
        );
    }

    #[test]
    fn the_deadline_never_moves_backwards() {
        let t0 = Instant::now();
        let mut clock = LeaseClock::new(TTL, MARGIN, t0 + Duration::from_secs(2));
        clock.sent(t0);
        clock.confirmed();
        assert_eq!(clock.deadline(), t0 + Duration::from_secs(6));
    }
}
