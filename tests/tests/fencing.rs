//! Fencing against a real etcd: a write guarded by an epoch that is no longer
//! current is refused, and the refusal says which fence was lost.

use ektp_election::{ElectionConfig, FencedTxn, Role, TxnError, TxnOutcome};
use ektp_tests::etcd::{Etcd, EtcdPorts};
use ektp_tests::wait::until;
use etcd_client::{Compare, CompareOp, TxnOp};
use std::time::Duration;

type Result = ektp_tests::Result<()>;

fn config(address: &str) -> ElectionConfig {
    ElectionConfig {
        service: "fencing-test",
        name: "/ektp/test/fencing/leader".into(),
        address: address.into(),
        ttl: Duration::from_secs(2),
        keepalive: Duration::from_millis(600),
        margin: Duration::from_millis(400),
    }
}

async fn leader_of(
    election: &ektp_election::ElectionHandle,
) -> ektp_tests::Result<ektp_election::Fence> {
    let mut role = election.subscribe();
    until("leadership", Duration::from_secs(10), || {
        let fence = role.borrow_and_update().fence().cloned();
        async move { fence }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_under_an_old_epoch_is_refused_after_the_leader_changes() -> Result {
    let dir = tempfile::tempdir()?;
    let etcd = Etcd::start(dir.path(), &EtcdPorts::free(1)?).await?;
    let client = etcd.client().await?;
    let first = ektp_election::spawn(client.clone(), config("http://first"));
    let old_fence = leader_of(&first).await?;
    let second = ektp_election::spawn(client.clone(), config("http://second"));
    until("the second node to follow", Duration::from_secs(10), || {
        let role = second.role();
        async move { matches!(role, Role::Follower { leader: Some(_) }).then_some(()) }
    })
    .await?;

    let mut writer = client.clone();
    let applied = FencedTxn::new([&old_fence])
        .op(TxnOp::put("/ektp/test/x", "1", None))
        .commit(&mut writer)
        .await?;
    assert!(matches!(applied, TxnOutcome::Applied(_)));
    let failed = FencedTxn::new([&old_fence])
        .when(Compare::value("/ektp/test/x", CompareOp::Equal, "2"))
        .op(TxnOp::put("/ektp/test/x", "3", None))
        .commit(&mut writer)
        .await?;
    assert!(
        matches!(failed, TxnOutcome::ConditionFailed),
        "a failed condition is not a lost fence"
    );

    first.resign().await;
    let new_fence = leader_of(&second).await?;
    assert!(new_fence.epoch > old_fence.epoch, "epochs only grow");
    let stale = FencedTxn::new([&new_fence, &old_fence])
        .op(TxnOp::put("/ektp/test/x", "stale", None))
        .commit(&mut writer)
        .await;
    assert!(
        matches!(stale, Err(TxnError::FenceLost(1))),
        "the old fence (second) is the one lost"
    );
    let value = writer.get("/ektp/test/x", None).await?;
    assert_eq!(
        value.kvs()[0].value(),
        b"1",
        "nothing written under the old epoch"
    );
    Ok(())
}
