//! Run-time reconfiguration with history: a learner joins a cluster whose raft log was
//! already compacted (`--snapshot-count 100`, a few hundred writes), so it must be sent a
//! snapshot; it catches up, is promoted, and the leader of the original members is removed.
//! The cluster keeps serving a write load throughout, and the member list shows each state.

use std::time::{Duration, Instant};

use kvd::proto::etcdserverpb::cluster_client::ClusterClient;
use kvd::proto::etcdserverpb::{Member, MemberPromoteRequest, MemberRemoveRequest};
use tonic::transport::Channel;

use crate::client;
use crate::harness::{testing_kvd, Cluster, ClusterOpts};
use crate::load::{self, Load};

const WAIT: Duration = Duration::from_secs(30);

fn find(list: &[Member], id: u64) -> Option<&Member> {
    list.iter().find(|m| m.id == id)
}

/// Waits until member `via`'s member list satisfies `pred`; returns that list.
async fn wait_list(
    c: &Cluster,
    via: usize,
    what: &str,
    pred: impl Fn(&[Member]) -> bool,
) -> Vec<Member> {
    let deadline = Instant::now() + WAIT;
    loop {
        let list = c.member_list(via).await;
        if pred(&list) {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "member list never showed {what}: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn learner_gets_snapshot_is_promoted_and_old_member_removed() {
    crate::run("learner", Duration::from_secs(150), async {
        let mut c = Cluster::start(ClusterOpts::kvd(3).flags(&["--snapshot-count", "100"])).await;
        let originals = [0, 1, 2];
        let channels: Vec<Channel> = c.nodes.iter().map(|n| n.channel()).collect();
        // history: enough entries that the log no longer starts at the beginning
        let history = Load::start("hist/", 4, channels.clone(), 100);
        history.wait_acked(400, WAIT).await;
        let history = history.stop().await;
        assert_eq!(
            history.acked.len(),
            400,
            "{} writes failed",
            history.failed.len()
        );
        let leader = c.wait_leader(&originals, None, WAIT).await;

        // writes keep flowing while the configuration changes
        let load = Load::start("live/", 2, channels, 100_000);
        load.wait_acked(20, WAIT).await;

        let joined_at = Instant::now();
        let l = c.add_member("m4", true, leader).await;
        let learner_id = c.nodes[l].id;
        let list = wait_list(&c, leader, "m4 as a started learner", |list| {
            find(list, learner_id).is_some_and(|m| m.name == "m4" && m.is_learner)
        })
        .await;
        assert_eq!(list.len(), 4, "{list:?}");
        assert_eq!(list.iter().filter(|m| m.is_learner).count(), 1, "{list:?}");
        let st = client::status(&c.nodes[l].channel())
            .await
            .expect("learner status");
        assert!(st.is_learner, "Status of the learner says is_learner");

        // it catches up from a snapshot
        let rev = c.revision(leader).await;
        c.wait_revision(l, rev, WAIT).await;
        eprintln!(
            "[learner] learner caught up to revision {rev} in {:?}",
            joined_at.elapsed()
        );
        let log = c.nodes[l].log_text();
        assert!(
            !testing_kvd() || log.contains("installing snapshot"),
            "the learner should have been sent a snapshot; log:\n{}",
            c.nodes[l].log_tail(40)
        );
        let lch = c.nodes[l].channel();
        load::assert_all_present(&lch, "m4 (learner)", "hist/", &history, true).await;
        // etcd serves a learner only Status and serializable reads; the scenario goes on
        // either way and these refusals are asserted at the end
        let mut refusals = Vec::new();
        let not_for_learner = "etcdserver: rpc not supported for learner";
        match client::get(&lch, "hist/0/00000", false).await {
            Err(e) if e.code() == tonic::Code::Unavailable && e.message() == not_for_learner => {}
            other => refusals.push(format!("linearizable get on the learner: {other:?}")),
        }
        match client::put(&lch, "k", "v").await {
            Err(e) if e.code() == tonic::Code::Unavailable && e.message() == not_for_learner => {}
            other => refusals.push(format!("put on the learner: {other:?}")),
        }

        // promote it (etcd refuses until it is in sync; retry within the deadline)
        let mut cc = ClusterClient::new(c.nodes[leader].channel());
        let deadline = Instant::now() + WAIT;
        loop {
            match client::within(
                client::OP_TIMEOUT,
                cc.member_promote(MemberPromoteRequest { id: learner_id }),
            )
            .await
            {
                Ok(_) => break,
                Err(e) => {
                    assert!(
                        e.message()
                            == "etcdserver: can only promote a learner member which is in sync with leader"
                            && Instant::now() < deadline,
                        "promote: {e:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        c.nodes[l].learner = false;
        let list = wait_list(&c, l, "m4 promoted", |list| {
            list.len() == 4 && list.iter().all(|m| !m.is_learner && !m.name.is_empty())
        })
        .await;
        eprintln!("[learner] promoted; members: {:?}", names(&list));
        client::get(&lch, "hist/0/00000", false)
            .await
            .expect("a promoted member serves linearizable reads");

        // remove the leader of the original members
        let removed = leader;
        let removed_id = c.nodes[removed].id;
        let via = (removed + 1) % 3;
        let mut cc = ClusterClient::new(c.nodes[via].channel());
        let resp = client::within(
            client::OP_TIMEOUT,
            cc.member_remove(MemberRemoveRequest { id: removed_id }),
        )
        .await
        .unwrap_or_else(|e| panic!("member remove: {e}"))
        .into_inner();
        assert!(
            find(&resp.members, removed_id).is_none(),
            "{:?}",
            resp.members
        );
        let exited = c.nodes[removed].wait_exit(WAIT).await;
        assert!(exited.is_some(), "a removed member stops");
        let remaining: Vec<usize> = [0, 1, 2, l].into_iter().filter(|&i| i != removed).collect();
        let new_leader = c.wait_leader(&remaining, Some(removed_id), WAIT).await;
        let list = wait_list(&c, new_leader, "three voting members", |list| {
            list.len() == 3
        })
        .await;
        let mut want: Vec<String> = remaining
            .iter()
            .map(|&i| c.nodes[i].spec.name.clone())
            .collect();
        want.sort();
        assert_eq!(names(&list), want);
        for m in &list {
            assert!(!m.is_learner, "{m:?}");
            let n = &c.nodes[c.index_of(m.id).expect("known member")];
            assert_eq!(m.peer_ur_ls, vec![n.spec.peer_url()]);
            assert_eq!(m.client_ur_ls, vec![n.spec.client_url()]);
        }

        // still serving: more writes after the removal, nothing acknowledged is lost
        load.wait_acked(load.acked() + 20, WAIT).await;
        let live = load.stop().await;
        eprintln!(
            "[learner] {} live writes acknowledged during the changes, {} failed",
            live.acked.len(),
            live.failed.len()
        );
        for &i in &remaining {
            let n = &c.nodes[i];
            load::assert_all_present(&n.channel(), &n.spec.name, "live/", &live, false).await;
        }
        c.assert_hashes_agree(&remaining, WAIT).await;
        assert!(
            refusals.is_empty(),
            "a learner must refuse with `Unavailable: {not_for_learner}`:\n{}",
            refusals.join("\n")
        );
    });
}

fn names(list: &[Member]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|m| m.name.clone()).collect();
    v.sort();
    v
}
