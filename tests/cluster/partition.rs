//! A member cut off from the others by the peer proxies: it refuses linearizable reads and
//! writes with etcd's errors, still answers serializable reads from its own state, the
//! majority keeps serving, and after healing the member converges (`hashkv` equal).
//!
//! The same scenario runs against real etcd 3.4 as a reference for the error texts. With
//! heartbeat 100 ms and election timeout 1 s, etcd 3.4.23's cut-off follower knows no leader
//! about 1.3 s after the cut; a put then fails after 7 s (its request timeout, 5 s + 2 x
//! election timeout) with `Unknown: context deadline exceeded` and is never applied, and a
//! linearizable get fails after 7 s with `Unavailable: etcdserver: request timed out`. kvd
//! may answer either of etcd's refusals, `etcdserver: no leader` or `etcdserver: request
//! timed out` (code Unavailable); after `no leader` the write must never be applied.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tonic::Status;

use crate::client;
use crate::harness::{etcd_bin, kvd_bin, Cluster, ClusterOpts};

const WAIT: Duration = Duration::from_secs(30);

/// What the cut-off member answered.
#[derive(Debug)]
struct Observed {
    /// Time from the cut until the member reported no leader.
    leaderless_after: Duration,
    /// Error of a put on the cut-off member.
    write: Status,
    /// Time the put took to fail.
    write_took: Duration,
    /// Error of a linearizable get on the cut-off member.
    read: Status,
    /// Time the get took to fail.
    read_took: Duration,
    /// Whether the refused put is visible after healing.
    refused_put_applied: bool,
}

fn describe(s: &Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}

async fn scenario(bin: PathBuf, label: &str) -> Observed {
    let mut opts = ClusterOpts::kvd(3);
    opts.bin = bin;
    opts.proxied = true;
    let c = Cluster::start(opts).await;
    let net = c.net.clone().expect("proxied cluster");
    let all = [0, 1, 2];
    let leader = c.wait_leader(&all, None, WAIT).await;
    let ch: Vec<_> = c.nodes.iter().map(|n| n.channel()).collect();
    client::put(&ch[leader], "p/before", "1")
        .await
        .expect("put before the cut");
    let rev = c.revision(leader).await;
    for &i in &all {
        c.wait_revision(i, rev, WAIT).await;
    }

    // cut a follower off
    let cut = (leader + 1) % 3;
    let majority: Vec<usize> = all.iter().copied().filter(|&i| i != cut).collect();
    let cut_at = Instant::now();
    net.isolate(cut);
    let deadline = cut_at + WAIT;
    loop {
        let s = client::status(&ch[cut])
            .await
            .expect("status of the cut-off member");
        if s.leader == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{label}: cut-off member still sees leader {:x}",
            s.leader
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let leaderless_after = cut_at.elapsed();

    // the minority refuses linearizable writes and reads
    let t = Instant::now();
    let write = client::put_within(&ch[cut], "p/minority", "x", Duration::from_secs(20))
        .await
        .expect_err("a cut-off member must not acknowledge a write");
    let write_took = t.elapsed();
    let t = Instant::now();
    let read = client::get(&ch[cut], "p/before", false)
        .await
        .expect_err("a cut-off member must not serve a linearizable read");
    let read_took = t.elapsed();
    // serializable reads still answer from local state
    let local = client::get(&ch[cut], "p/before", true)
        .await
        .expect("serializable read on the cut-off member");
    assert_eq!(local.value.as_deref(), Some("1"), "{label}");

    // the majority keeps serving
    let leader2 = c.wait_leader(&majority, None, WAIT).await;
    let during = client::put(&ch[leader2], "p/during", "2")
        .await
        .expect("the majority takes writes");
    for &i in &majority {
        let r = client::get(&ch[i], "p/during", false)
            .await
            .expect("the majority serves linearizable reads");
        assert_eq!(r.value.as_deref(), Some("2"), "{label}");
    }
    let stale = client::get(&ch[cut], "p/during", true)
        .await
        .expect("serializable read");
    assert_eq!(
        stale.value, None,
        "{label}: the cut-off member cannot know the new write"
    );
    assert!(
        net.live_connections() > 0,
        "{label}: the majority's links stay up"
    );

    // heal: the member converges
    net.heal(cut);
    c.wait_revision(cut, during, WAIT).await;
    let r = client::get(&ch[cut], "p/during", true)
        .await
        .expect("read after healing");
    assert_eq!(r.value.as_deref(), Some("2"), "{label}");
    let deadline = Instant::now() + WAIT;
    loop {
        match client::get(&ch[cut], "p/during", false).await {
            Ok(r) => {
                assert_eq!(r.value.as_deref(), Some("2"), "{label}");
                break;
            }
            Err(e) => assert!(
                Instant::now() < deadline,
                "{label}: still refusing after healing: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (rev, hash) = c.assert_hashes_agree(&all, WAIT).await;
    let refused_put_applied = client::get(&ch[leader2], "p/minority", false)
        .await
        .expect("read after healing")
        .value
        .is_some();
    eprintln!(
        "[{label}] healed: hashkv {hash:#x} at revision {rev} on all members; the refused put was {}",
        if refused_put_applied { "applied after healing" } else { "never applied" }
    );
    Observed {
        leaderless_after,
        write,
        write_took,
        read,
        read_took,
        refused_put_applied,
    }
}

fn report(label: &str, o: &Observed) {
    eprintln!(
        "[{label}] no leader {:?} after the cut; put failed after {:?} with {}; linearizable get failed after {:?} with {}",
        o.leaderless_after,
        o.write_took,
        describe(&o.write),
        o.read_took,
        describe(&o.read)
    );
}

#[test]
fn cut_off_member_refuses_then_converges() {
    crate::run("partition", Duration::from_secs(150), async {
        let o = scenario(kvd_bin(), "partition").await;
        report("partition", &o);
        // etcd's texts for a member that cannot reach a leader (see the module docs for what
        // etcd 3.4 itself answers in this set-up)
        let refusals = ["etcdserver: no leader", "etcdserver: request timed out"];
        for e in [&o.write, &o.read] {
            assert_eq!(e.code(), tonic::Code::Unavailable, "{}", describe(e));
            assert!(refusals.contains(&e.message()), "{}", describe(e));
        }
        // "no leader" tells the client nothing was done (etcd answers it only before
        // proposing, and clients act on that); the write must not appear later.
        if o.write.message() == "etcdserver: no leader" {
            assert!(
                !o.refused_put_applied,
                "a put refused with `etcdserver: no leader` was applied after the partition healed"
            );
        }
    });
}

#[test]
fn cut_off_member_refuses_then_converges_etcd_reference() {
    crate::run_on_etcd("partition-etcd", Duration::from_secs(150), async {
        let o = scenario(etcd_bin(), "partition-etcd").await;
        report("partition-etcd", &o);
        // etcd 3.4.23 (pre-vote off by default): the proposal waits for a leader until the
        // request timeout (5 s + 2 x election timeout) and fails with the context's error;
        // the read index times out.
        assert_eq!(
            o.write.code(),
            tonic::Code::Unknown,
            "{}",
            describe(&o.write)
        );
        assert_eq!(o.write.message(), "context deadline exceeded");
        assert_eq!(
            o.read.code(),
            tonic::Code::Unavailable,
            "{}",
            describe(&o.read)
        );
        assert_eq!(o.read.message(), "etcdserver: request timed out");
        assert!(!o.refused_put_applied);
    });
}
