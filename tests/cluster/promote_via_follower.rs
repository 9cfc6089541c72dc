//! `member promote` sent to a follower: the follower forwards it to the leader, the only
//! member that knows whether the learner is in sync, as etcd does. A learner that was announced
//! but never started is refused with etcd's "in sync" error; once it runs and has caught up,
//! the same request through the same follower promotes it.
//!
//! The same steps run against real etcd 3.4 as the reference for the texts.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kvd::proto::etcdserverpb::cluster_client::ClusterClient;
use kvd::proto::etcdserverpb::MemberPromoteRequest;
use tonic::Code;

use crate::client;
use crate::harness::{etcd_bin, kvd_bin, Cluster, ClusterOpts};

const WAIT: Duration = Duration::from_secs(30);
const NOT_IN_SYNC: &str =
    "etcdserver: can only promote a learner member which is in sync with leader";

async fn scenario(bin: PathBuf, label: &str) {
    let mut opts = ClusterOpts::kvd(3);
    opts.bin = bin;
    let mut c = Cluster::start(opts).await;
    let leader = c.wait_leader(&[0, 1, 2], None, WAIT).await;
    let follower = (leader + 1) % 3;
    client::put(&c.nodes[leader].channel(), "promote/k", "v")
        .await
        .expect("put");
    let announced = c.announce_member("m4", true, leader).await;
    let learner_id = announced.id;
    let mut cc = ClusterClient::new(c.nodes[follower].channel());
    let refused = client::within(
        client::OP_TIMEOUT,
        cc.member_promote(MemberPromoteRequest { id: learner_id }),
    )
    .await
    .expect_err("a learner that never started is not in sync");
    assert_eq!(
        (refused.code(), refused.message()),
        (Code::FailedPrecondition, NOT_IN_SYNC),
        "{label}: promote of an unstarted learner through a follower"
    );

    c.start_announced(announced).await;
    let deadline = Instant::now() + WAIT;
    let members = loop {
        match client::within(
            client::OP_TIMEOUT,
            cc.member_promote(MemberPromoteRequest { id: learner_id }),
        )
        .await
        {
            Ok(r) => break r.into_inner().members,
            Err(e) if e.message() == NOT_IN_SYNC && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{label}: promote through a follower: {e:?}"),
        }
    };
    assert_eq!(members.len(), 4, "{label}: {members:?}");
    assert!(
        members.iter().all(|m| !m.is_learner),
        "{label}: every member is a voter after the promotion: {members:?}"
    );
    eprintln!("[{label}] promoted m4 through a follower");
}

#[test]
fn member_promote_through_a_follower_is_forwarded_to_the_leader() {
    crate::run("promote_via_follower", Duration::from_secs(120), async {
        scenario(kvd_bin(), "kvd").await;
    });
}

#[test]
fn member_promote_through_a_follower_is_forwarded_to_the_leader_etcd_reference() {
    crate::run_on_etcd(
        "promote_via_follower_etcd",
        Duration::from_secs(120),
        async {
            scenario(etcd_bin(), "etcd").await;
        },
    );
}
