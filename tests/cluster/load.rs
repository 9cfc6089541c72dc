//! A bounded write load: a few concurrent writers putting unique keys through the members,
//! moving to the next member when one fails, recording what was acknowledged.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::client;

/// A write the cluster acknowledged.
#[derive(Clone, Debug)]
pub struct Acked {
    /// Key written.
    pub key: String,
    /// Value written.
    pub value: String,
    /// Revision the put response reported.
    pub revision: i64,
}

/// What the writers did.
#[derive(Default, Debug)]
pub struct Summary {
    /// Acknowledged writes.
    pub acked: Vec<Acked>,
    /// (key, value) of writes that failed or timed out (they may or may not have applied).
    pub failed: Vec<(String, String)>,
}

/// Running writers.
pub struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    writers: Vec<JoinHandle<Summary>>,
}

impl Load {
    /// Starts `writers` writers under `prefix`, writer `w` beginning at member `w % n`; each
    /// stops after `max_per_writer` puts or when told to.
    pub fn start(
        prefix: &str,
        writers: usize,
        channels: Vec<Channel>,
        max_per_writer: usize,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let writers = (0..writers)
            .map(|w| {
                let channels = channels.clone();
                let stop = Arc::clone(&stop);
                let acked = Arc::clone(&acked);
                let prefix = prefix.to_string();
                tokio::spawn(async move {
                    let mut out = Summary::default();
                    let mut at = w % channels.len();
                    for i in 0..max_per_writer {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let key = format!("{prefix}{w}/{i:05}");
                        let value = format!("v{w}-{i}");
                        match client::put(&channels[at], &key, &value).await {
                            Ok(revision) => {
                                out.acked.push(Acked {
                                    key,
                                    value,
                                    revision,
                                });
                                acked.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(_) => {
                                out.failed.push((key, value));
                                at = (at + 1) % channels.len();
                                // pacing, not synchronisation: do not spin on a dead member
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        Load {
            stop,
            acked,
            writers,
        }
    }

    /// Writes acknowledged so far.
    pub fn acked(&self) -> usize {
        self.acked.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` writes were acknowledged; panics after `timeout`.
    pub async fn wait_acked(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.acked() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} writes acknowledged within {timeout:?}",
                self.acked()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the writers and collects what they did.
    pub async fn stop(self) -> Summary {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Summary::default();
        for w in self.writers {
            let s = w.await.expect("writer task");
            all.acked.extend(s.acked);
            all.failed.extend(s.failed);
        }
        all
    }
}

/// Asserts that the keys under `prefix` on member `ch` are exactly the acknowledged writes
/// (same value and revision) plus possibly some of the failed ones (a failed write may
/// have been applied).
pub async fn assert_all_present(
    ch: &Channel,
    who: &str,
    prefix: &str,
    s: &Summary,
    serializable: bool,
) {
    let got = client::get_prefix(ch, prefix, serializable)
        .await
        .unwrap_or_else(|e| panic!("range {prefix} on {who}: {e}"));
    let got: HashMap<String, (String, i64)> =
        got.into_iter().map(|(k, v, r)| (k, (v, r))).collect();
    for a in &s.acked {
        match got.get(&a.key) {
            Some((v, r)) => assert!(
                *v == a.value && *r == a.revision,
                "{who}: {} is {v}@{r}, acknowledged as {}@{}",
                a.key,
                a.value,
                a.revision
            ),
            None => panic!(
                "{who}: acknowledged write {}={} (revision {}) is missing",
                a.key, a.value, a.revision
            ),
        }
    }
    let maybe: HashSet<(&str, &str)> = s
        .failed
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let acked: HashSet<&str> = s.acked.iter().map(|a| a.key.as_str()).collect();
    for (k, (v, _)) in &got {
        assert!(
            acked.contains(k.as_str()) || maybe.contains(&(k.as_str(), v.as_str())),
            "{who}: {k}={v} was never written"
        );
    }
    let mut revs: Vec<i64> = s.acked.iter().map(|a| a.revision).collect();
    revs.sort_unstable();
    let n = revs.len();
    revs.dedup();
    assert_eq!(revs.len(), n, "two acknowledged writes share a revision");
}
