//! A linearizability check: concurrent clients put, get, compare-and-set and delete a few
//! keys through different members while members are SIGKILLed and restarted; the recorded
//! history (failed and timed-out operations count as "maybe applied") must be
//! linearizable against a sequential key-value model ([`crate::checker`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::transport::Channel;

use crate::checker::{self, Input, Operation, Output, Verdict};
use crate::client;
use crate::harness::{Cluster, ClusterOpts};

const WAIT: Duration = Duration::from_secs(30);
/// How long clients keep issuing operations.
const LOAD: Duration = Duration::from_secs(20);
const CLIENTS: usize = 6;
const KEYS: [&str; 4] = ["lin/a", "lin/b", "lin/c", "lin/d"];

/// One client's loop: random operations on random keys until `stop`; moves to the next
/// member after a failure.
async fn client_loop(
    id: usize,
    channels: Vec<Channel>,
    origin: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<Operation> {
    let mut rng = StdRng::seed_from_u64(0x6b7664 + id as u64);
    let mut at = id % channels.len();
    let mut history = Vec::new();
    let mut seen: Vec<Option<String>> = vec![None; KEYS.len()];
    let now = || origin.elapsed().as_nanos() as u64;
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let k = rng.gen_range(0..KEYS.len());
        let key = KEYS[k];
        let fresh = format!("c{id}-{n}");
        let ch = &channels[at];
        let roll = rng.gen_range(0..100);
        let call = now();
        let (input, result) = if roll < 35 {
            let r = client::get(ch, key, false).await;
            if let Ok(r) = &r {
                seen[k] = r.value.clone();
            }
            (Input::Get, r.map(|r| Output::Get(r.value)))
        } else if roll < 65 {
            let r = client::put(ch, key, &fresh).await;
            if r.is_ok() {
                seen[k] = Some(fresh.clone());
            }
            (Input::Put(fresh.clone()), r.map(|_| Output::Put))
        } else if roll < 85 {
            let expected = seen[k].clone();
            let r = client::cas(ch, key, expected.as_deref(), &fresh).await;
            if let Ok(true) = r {
                seen[k] = Some(fresh.clone());
            }
            (
                Input::Cas {
                    expected,
                    new: fresh.clone(),
                },
                r.map(Output::Cas),
            )
        } else {
            let r = client::delete(ch, key).await;
            if r.is_ok() {
                seen[k] = None;
            }
            (Input::Delete, r.map(Output::Delete))
        };
        let (output, ret) = match result {
            Ok(o) => (o, Some(now())),
            Err(_) => {
                at = (at + 1) % channels.len();
                (Output::Unknown, None)
            }
        };
        let failed = ret.is_none();
        history.push(Operation {
            client: id,
            key: key.to_string(),
            input,
            output,
            call,
            ret,
        });
        if failed {
            // pacing, not synchronisation: do not spin on a dead member
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    history
}

#[test]
fn history_under_kills_is_linearizable() {
    crate::run("linearizable", Duration::from_secs(170), async {
        let mut c = Cluster::start(ClusterOpts::kvd(3)).await;
        let all = [0, 1, 2];
        let origin = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|id| {
                let channels: Vec<Channel> = c.nodes.iter().map(|n| n.channel()).collect();
                tokio::spawn(client_loop(id, channels, origin, Arc::clone(&stop)))
            })
            .collect();

        // the nemesis: kill -9 the leader, then a follower, ... and restart each
        let mut kills = Vec::new();
        let mut round = 0;
        while origin.elapsed() + Duration::from_secs(4) < LOAD {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            c.assert_alive(&all);
            let leader = c.wait_leader(&all, None, WAIT).await;
            let victim = if round % 2 == 0 {
                leader
            } else {
                (leader + 1) % 3
            };
            round += 1;
            c.nodes[victim].kill9();
            kills.push(format!(
                "{}{}",
                c.nodes[victim].spec.name,
                if victim == leader { " (leader)" } else { "" }
            ));
            tokio::time::sleep(Duration::from_millis(1000)).await;
            c.nodes[victim].restart().await;
        }
        let remaining = LOAD.saturating_sub(origin.elapsed());
        tokio::time::sleep(remaining).await;
        stop.store(true, Ordering::SeqCst);
        c.assert_alive(&all);
        let mut history = Vec::new();
        for cl in clients {
            history.extend(cl.await.expect("client task"));
        }
        let unknown = history.iter().filter(|o| o.ret.is_none()).count();
        eprintln!(
            "[linearizable] killed {}; {} operations by {CLIENTS} clients on {} keys in {:.1?} ({unknown} failed or timed out)",
            kills.join(", "),
            history.len(),
            KEYS.len(),
            origin.elapsed()
        );
        assert!(kills.len() >= 3, "the nemesis ran: {kills:?}");
        assert!(
            history.len() >= 200,
            "too few operations: {}",
            history.len()
        );

        let checked_at = Instant::now();
        let ops = history.len();
        let (verdict, history) =
            tokio::task::spawn_blocking(move || (checker::check(&history), history))
                .await
                .expect("checker task");
        eprintln!(
            "[linearizable] {ops} operations checked in {:?}: {verdict:?}",
            checked_at.elapsed()
        );
        if let Verdict::NotLinearizable { key, .. } | Verdict::GaveUp { key } = &verdict {
            // times are nanoseconds since the start of the load
            eprintln!("operations on {key}:\n{}", checker::describe(&history, key));
        }
        assert_eq!(verdict, Verdict::Linearizable);
        c.assert_hashes_agree(&all, WAIT).await;
    });
}
