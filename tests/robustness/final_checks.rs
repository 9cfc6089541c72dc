//! Checks that ask the members themselves once traffic stopped and every member caught up:
//! - every member has the same `hashkv` (and compact revision) at the final revision;
//! - reads of the whole key space at past revisions (from the compacted revision on) match
//!   the replayed history on every member;
//! - watches resumed on every member from past revisions at or above the compaction deliver
//!   exactly the history from there (resumable, reliable, prev_kv).

use std::time::Duration;

use kvd::proto::etcdserverpb::kv_client::KvClient;
use kvd::proto::etcdserverpb::RangeRequest;
use rand::Rng;

use crate::client::{self, within, OP_TIMEOUT};
use crate::history::History;
use crate::record::{Clock, Kv};
use crate::slots::{Slots, Target};
use crate::validate;
use crate::watch::{Positions, WatchSpec, Watcher};

/// Past revisions read on every member.
const PAST_READS: usize = 8;
/// Resumed watches per member.
const RESUMED_WATCHES: usize = 2;

/// `hashkv` at `rev` on every member agrees; returns the problems and the members' compact
/// revision.
pub async fn hashes(members: &[Target], rev: i64) -> (Vec<String>, i64) {
    let mut seen = Vec::new();
    let mut problems = Vec::new();
    for m in members {
        match client::hash_kv(&m.channel, rev).await {
            Ok(h) => seen.push((m.name.clone(), h.hash, h.compact_revision)),
            Err(e) => problems.push(format!("hashkv at revision {rev} on {}: {e}", m.name)),
        }
    }
    if seen.iter().any(|s| (s.1, s.2) != (seen[0].1, seen[0].2)) {
        problems.push(format!(
            "hashkv at revision {rev} differs between members (name, hash, compact revision): {seen:?}"
        ));
    }
    let compacted = seen.iter().map(|s| s.2).max().unwrap_or(0);
    (problems, compacted)
}

/// Reads the whole key space at some revisions in `[from, history.final_rev]` on every
/// member and compares with the history.
pub async fn past_reads(members: &[Target], history: &History, from: i64) -> Vec<String> {
    let mut problems = Vec::new();
    if !history.complete {
        return problems;
    }
    let last = history.final_rev;
    let from = from.clamp(1, last);
    let mut revs: Vec<i64> = (0..PAST_READS)
        .map(|i| from + (last - from) * i64::try_from(i).unwrap_or(0) / PAST_READS as i64)
        .collect();
    revs.push(last);
    revs.dedup();
    for m in members {
        let mut kv = KvClient::new(m.channel.clone());
        for &rev in &revs {
            let got = within(
                OP_TIMEOUT,
                kv.range(RangeRequest {
                    key: vec![0],
                    range_end: vec![0],
                    revision: rev,
                    serializable: true,
                    ..Default::default()
                }),
            )
            .await;
            let got: Vec<Kv> = match got {
                Ok(r) => r.into_inner().kvs.iter().map(Kv::from).collect(),
                Err(e) => {
                    problems.push(format!(
                        "read of every key at revision {rev} on {}: {}",
                        m.name,
                        e.message()
                    ));
                    continue;
                }
            };
            let want = history.range("\u{0}", "\u{0}", rev);
            if got != want {
                let diff = got
                    .iter()
                    .zip(want.iter())
                    .find(|(g, w)| g != w)
                    .map(|(g, w)| format!("first difference: {g:?} where the history has {w:?}"))
                    .unwrap_or_else(|| {
                        format!("{} keys, the history has {}", got.len(), want.len())
                    });
                problems.push(format!(
                    "read of every key at revision {rev} on {} differs from the replayed history: {diff}",
                    m.name
                ));
            }
        }
    }
    problems
}

/// Opens watches from past revisions in `[from, final]` on every member and checks what
/// they deliver against the history.
pub async fn resumed_watches(
    members: &[Target],
    history: &History,
    from: i64,
    clock: Clock,
) -> Vec<String> {
    let mut problems = Vec::new();
    if !history.complete {
        return problems;
    }
    let last = history.final_rev;
    // From just after the compaction: an event at the compacted revision itself has lost its
    // previous version to that compaction, so its prev_kv is empty on etcd 3.4.23 and kvd
    // alike (seen on both: `peer_blackhole_etcd` and `rolling_restart`, once each).
    let from = from.saturating_add(1).clamp(2, last.max(2));
    let Some(last_event) = history.revs.keys().next_back().copied() else {
        return problems;
    };
    let mut reports = Vec::new();
    for m in members {
        for i in 0..RESUMED_WATCHES {
            let start = rand::thread_rng().gen_range(from..=last.max(from));
            let mut spec = WatchSpec::history(&format!("resumed-{}-{i}", m.name), 0);
            spec.history = false;
            // no progress requests: these watches check the replay only
            spec.progress_every = Duration::from_secs(3600);
            let w = Watcher::start(
                spec,
                Slots::new(vec![m.clone()]),
                clock,
                &Positions::default(),
                start,
            );
            if !w.wait_event(last_event, Duration::from_secs(10)).await {
                problems.push(format!(
                    "a watch from revision {start} on {} did not reach revision {last_event} within 10 s (last event {})",
                    m.name,
                    w.last_event()
                ));
            }
            reports.push(w.stop().await);
        }
    }
    problems.extend(validate::watch::check(&reports, history, true).problems);
    problems
}
