//! Watches that require a leader (gRPC metadata `hasleader: true`, clientv3's
//! `WithRequireLeader`, on every kube-apiserver watch): a follower cut off from its peers ends
//! such a watch with `Unavailable: etcdserver: no leader` once it has had no leader for three
//! election timeouts, and keeps a watch without the metadata open. A new watch or a unary
//! request with the metadata is refused at once while there is no leader. The same steps run against real etcd
//! 3.4 as the reference.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kvd::proto::etcdserverpb::kv_client::KvClient;
use kvd::proto::etcdserverpb::watch_client::WatchClient;
use kvd::proto::etcdserverpb::watch_request::RequestUnion;
use kvd::proto::etcdserverpb::{RangeRequest, WatchCreateRequest, WatchRequest, WatchResponse};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

use crate::client;
use crate::harness::{etcd_bin, kvd_bin, Cluster, ClusterOpts};

const WAIT: Duration = Duration::from_secs(30);

/// An open watch on `key` and the sender that keeps its request stream open.
struct OpenWatch {
    stream: Streaming<WatchResponse>,
    _requests: mpsc::Sender<WatchRequest>,
}

async fn watch(ch: &Channel, key: &str, require_leader: bool) -> Result<OpenWatch, Status> {
    let (tx, rx) = mpsc::channel(4);
    tx.send(WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key: key.into(),
            ..Default::default()
        })),
    })
    .await
    .expect("queue the create request");
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    if require_leader {
        request
            .metadata_mut()
            .insert("hasleader", "true".parse().expect("ascii"));
    }
    let mut wc = WatchClient::new(ch.clone());
    let mut stream = client::within(client::OP_TIMEOUT, wc.watch(request))
        .await?
        .into_inner();
    let created = client::within(client::OP_TIMEOUT, stream.message())
        .await?
        .ok_or_else(|| Status::internal("watch ended before it was created"))?;
    assert!(created.created, "{created:?}");
    Ok(OpenWatch {
        stream,
        _requests: tx,
    })
}

async fn scenario(bin: PathBuf, label: &str) {
    let mut opts = ClusterOpts::kvd(3);
    opts.bin = bin;
    opts.proxied = true;
    let c = Cluster::start(opts).await;
    let net = c.net.clone().expect("proxied cluster");
    let leader = c.wait_leader(&[0, 1, 2], None, WAIT).await;
    let follower = (leader + 1) % 3;
    let ch = c.nodes[follower].channel();
    let mut required = watch(&ch, "rl/key", true)
        .await
        .expect("watch with hasleader");
    let mut plain = watch(&ch, "rl/key", false).await.expect("plain watch");

    net.isolate(follower);
    let cut = Instant::now();
    let ended = client::within(Duration::from_secs(15), async {
        loop {
            match required.stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return Err::<(), Status>(Status::internal("ended without an error")),
                Err(e) => return Err(e),
            }
        }
    })
    .await
    .expect_err("the watch requiring a leader must end");
    let took = cut.elapsed();
    assert_eq!(
        (ended.code(), ended.message()),
        (Code::Unavailable, "etcdserver: no leader"),
        "{label}"
    );
    assert!(
        took >= Duration::from_secs(2),
        "{label}: ended after {took:?}, before three election timeouts without a leader"
    );
    // a new watch requiring a leader is refused at once
    let refused = watch(&ch, "rl/key", true)
        .await
        .err()
        .unwrap_or_else(|| panic!("{label}: a watch requiring a leader opened without one"));
    assert_eq!(
        (refused.code(), refused.message()),
        (Code::Unavailable, "etcdserver: no leader"),
        "{label}"
    );

    // so is a unary request requiring a leader; one without the metadata is not refused so
    let mut read = tonic::Request::new(RangeRequest {
        key: b"rl/key".to_vec(),
        serializable: true,
        ..Default::default()
    });
    read.metadata_mut()
        .insert("hasleader", "true".parse().expect("ascii"));
    let refused = client::within(client::OP_TIMEOUT, KvClient::new(ch.clone()).range(read))
        .await
        .expect_err("a read requiring a leader without one");
    assert_eq!(
        (refused.code(), refused.message()),
        (Code::Unavailable, "etcdserver: no leader"),
        "{label}"
    );
    client::get(&ch, "rl/key", true)
        .await
        .unwrap_or_else(|e| panic!("{label}: a serializable read without the metadata: {e}"));

    // the plain watch stayed open: it sees a write made after the heal
    net.heal(follower);
    let others: Vec<usize> = (0..3).filter(|&i| i != follower).collect();
    c.wait_leader(&[0, 1, 2], None, WAIT).await;
    let rev = client::put(&c.nodes[others[0]].channel(), "rl/key", "after")
        .await
        .expect("put after the heal");
    let deadline = Instant::now() + WAIT;
    loop {
        let resp = client::within(
            deadline.saturating_duration_since(Instant::now()),
            plain.stream.message(),
        )
        .await
        .unwrap_or_else(|e| panic!("{label}: the plain watch ended: {e}"))
        .unwrap_or_else(|| panic!("{label}: the plain watch closed"));
        if resp
            .events
            .iter()
            .any(|e| e.kv.as_ref().is_some_and(|kv| kv.mod_revision == rev))
        {
            break;
        }
    }
    eprintln!("[{label}] watch requiring a leader ended {took:?} after the cut");
}

#[test]
fn a_watch_requiring_a_leader_ends_on_a_member_without_one() {
    crate::run("require_leader", Duration::from_secs(120), async {
        scenario(kvd_bin(), "kvd").await;
    });
}

#[test]
fn a_watch_requiring_a_leader_ends_on_a_member_without_one_etcd_reference() {
    crate::run_on_etcd("require_leader_etcd", Duration::from_secs(120), async {
        scenario(etcd_bin(), "etcd").await;
    });
}
