//! Turning on peer TLS in a running cluster, the way operators do it: the members start with
//! http:// peer URLs (each already holding its peer certificate), then one member at a time
//! gets `member update` to an https:// peer URL and is restarted listening on https. Writes
//! run the whole time; no acknowledged write is lost, every member ends with https peer URLs
//! in the member list, and `hashkv` agrees.
//!
//! Needs the TLS set-up of [`crate::security`] (skipped under `KVD_CLUSTER_PLAIN=1`). The same
//! scenario runs against real etcd 3.4 as the reference.

use std::path::PathBuf;
use std::time::Duration;

use kvd::proto::etcdserverpb::cluster_client::ClusterClient;
use kvd::proto::etcdserverpb::MemberUpdateRequest;
use tonic::transport::Channel;

use crate::client;
use crate::harness::{etcd_bin, kvd_bin, Cluster, ClusterOpts};
use crate::load::{self, Load};
use crate::security;

const WAIT: Duration = Duration::from_secs(30);

async fn scenario(bin: PathBuf, label: &str) {
    let mut opts = ClusterOpts::kvd(3);
    opts.bin = bin;
    opts.peer_scheme = "http";
    let mut c = Cluster::start(opts).await;
    let all = [0, 1, 2];
    c.wait_leader(&all, None, WAIT).await;
    let channels: Vec<Channel> = c.nodes.iter().map(|n| n.channel()).collect();
    let load = Load::start("roll/", 3, channels, 100_000);
    load.wait_acked(30, WAIT).await;

    for i in all {
        let via = (i + 1) % 3;
        let https = format!("https://127.0.0.1:{}", c.nodes[i].spec.peer_port);
        let mut cc = ClusterClient::new(c.nodes[via].channel());
        client::within(
            client::OP_TIMEOUT,
            cc.member_update(MemberUpdateRequest {
                id: c.nodes[i].id,
                peer_ur_ls: vec![https.clone()],
            }),
        )
        .await
        .unwrap_or_else(|e| panic!("{label}: member update of {}: {e}", c.nodes[i].spec.name));
        // the update is committed before the member goes down, so it restarts knowing it
        let rev = c.revision(via).await;
        c.wait_revision(i, rev, WAIT).await;
        c.nodes[i].kill9();
        c.nodes[i].set_flag("--listen-peer-urls", &https);
        c.nodes[i].set_flag("--initial-advertise-peer-urls", &https);
        c.nodes[i].restart().await;
        let before = load.acked();
        load.wait_acked(before + 30, WAIT).await;
        eprintln!(
            "[{label}] {} now on {https}; {} writes acknowledged so far",
            c.nodes[i].spec.name,
            load.acked()
        );
    }
    let summary = load.stop().await;
    let members = c.member_list(0).await;
    for m in &members {
        assert!(
            m.peer_ur_ls.iter().all(|u| u.starts_with("https://")),
            "{label}: {} still has {:?}",
            m.name,
            m.peer_ur_ls
        );
    }
    let (rev, hash) = c.assert_hashes_agree(&all, WAIT).await;
    for n in &c.nodes {
        load::assert_all_present(&n.channel(), &n.spec.name, "roll/", &summary, true).await;
    }
    eprintln!(
        "[{label}] {} writes acknowledged ({} failed) while all three members moved to https peers; hashkv {hash:#x} at revision {rev}",
        summary.acked.len(),
        summary.failed.len()
    );
}

#[test]
fn peer_urls_move_from_http_to_https_one_member_at_a_time() {
    if security::peer_scheme() != "https" {
        eprintln!("skipped: needs the TLS set-up (KVD_CLUSTER_PLAIN is set)");
        return;
    }
    crate::run("peer-tls-rollout", Duration::from_secs(180), async {
        scenario(kvd_bin(), "peer-tls-rollout").await;
    });
}

#[test]
fn peer_urls_move_from_http_to_https_one_member_at_a_time_etcd_reference() {
    if security::peer_scheme() != "https" {
        eprintln!("skipped: needs the TLS set-up (KVD_CLUSTER_PLAIN is set)");
        return;
    }
    crate::run_on_etcd("peer-tls-rollout-etcd", Duration::from_secs(180), async {
        scenario(etcd_bin(), "peer-tls-rollout-etcd").await;
    });
}
