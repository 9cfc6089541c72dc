//! Automatic compaction on the leader: etcd's `periodic` and `revision` modes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::api::{ApiError, Core};
use crate::apply::ApplyResponse;
use crate::config::AutoCompaction;
use crate::proto::etcdserverpb::CompactionRequest;
use crate::proto::kvdpb::command::Op;

/// Runs automatic compaction until `shutdown`.
pub async fn run(core: Arc<Core>, mode: AutoCompaction, shutdown: CancellationToken) {
    // Revisions sampled over time; the oldest sample still inside the window is compacted to.
    let mut samples: VecDeque<(Instant, i64)> = VecDeque::new();
    let interval = match mode {
        AutoCompaction::Periodic(retention) => {
            (retention / 10).clamp(Duration::from_millis(100), Duration::from_secs(300))
        }
        AutoCompaction::Revision(_) => Duration::from_secs(5),
    };
    let mut tick = tokio::time::interval(interval);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if core.raft.status().leader != core.member_id {
            samples.clear();
            continue;
        }
        let (current, compacted) = {
            let s = core.state.mvcc.read();
            (s.current_rev(), s.compact_rev())
        };
        let target = match mode {
            AutoCompaction::Revision(keep) => current - i64::try_from(keep).unwrap_or(i64::MAX),
            AutoCompaction::Periodic(retention) => {
                let now = Instant::now();
                samples.push_back((now, current));
                let mut target = 0;
                while let Some(&(at, rev)) = samples.front() {
                    if now.duration_since(at) >= retention {
                        target = rev;
                        samples.pop_front();
                    } else {
                        break;
                    }
                }
                target
            }
        };
        if target <= compacted || target <= 0 {
            continue;
        }
        match core
            .propose(Op::Compaction(CompactionRequest {
                revision: target,
                physical: false,
            }))
            .await
        {
            Ok(ApplyResponse::Compaction(_)) => {
                info!(revision = target, "auto-compaction finished")
            }
            Ok(_) | Err(ApiError::Compacted) => {}
            Err(e) => debug!(revision = target, error = %e, "auto-compaction failed"),
        }
    }
}
