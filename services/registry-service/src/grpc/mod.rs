//! gRPC adapters: validate → call the store or writer → convert. Followers
//! serve reads themselves and forward writes to the leader.

mod print_queue;
mod registry;

pub use print_queue::PrintQueueApi;
pub use registry::RegistryApi;

use ektp_election::ElectionHandle;
use ektp_server::{LeaderChannels, is_forwarded, mark_forwarded, not_leader};
use std::future::Future;
use std::sync::Arc;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

/// Decides, per write, whether to run it here or forward it to the leader.
#[derive(Clone)]
pub struct Forwarder {
    election: ElectionHandle,
    channels: Arc<LeaderChannels>,
}

impl Forwarder {
    pub fn new(election: ElectionHandle) -> Self {
        Self {
            election,
            channels: Arc::new(LeaderChannels::new()),
        }
    }

    /// `None` when this node leads; otherwise a channel to the leader, or
    /// NOT_LEADER when there is none, it is unreachable, or the request was
    /// already forwarded once.
    fn leader_channel<T>(&self, request: &Request<T>) -> Result<Option<Channel>, Status> {
        let role = self.election.role();
        if role.is_leader() {
            return Ok(None);
        }
        let leader = role.leader();
        let address = leader.as_ref().map(|l| l.address.as_str());
        if is_forwarded(request) {
            return Err(not_leader(address));
        }
        let channel = address.and_then(|a| self.channels.channel(a));
        channel.map(Some).ok_or_else(|| not_leader(address))
    }

    /// Runs `local` here when leading, else sends the request to the leader
    /// through `remote`.
    pub async fn write<T, R, L, LF, F, FF>(&self, request: Request<T>, local: L, remote: F) -> Result<Response<R>, Status>
    where
        L: FnOnce(T) -> LF,
        LF: Future<Output = Result<R, Status>>,
        F: FnOnce(Channel, Request<T>) -> FF,
        FF: Future<Output = Result<Response<R>, Status>>,
    {
        match self.leader_channel(&request)? {
            None => local(request.into_inner()).await.map(Response::new),
            Some(channel) => {
                let leader = self.election.role().leader().map(|l| l.address);
                let mut forwarded = Request::new(request.into_inner());
                mark_forwarded(&mut forwarded);
                remote(channel, forwarded).await.map_err(|status| {
                    // Transport failures mean the leader moved or died: tell the
                    // caller to retry rather than leak a connection error.
                    if status.code() == Code::Unavailable && ektp_server::leader_address_of(&status).is_none() {
                        not_leader(leader.as_deref())
                    } else {
                        status
                    }
                })
            }
        }
    }
}
