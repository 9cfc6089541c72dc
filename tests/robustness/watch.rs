//! Watchers that record everything they are sent and resume after a break.
//!
//! A watcher is pinned to one member (its slot). When its stream breaks (the member died,
//! the stream was canceled or refused), it opens a new watch on the next member, starting
//! from the revision after the last one it knows was delivered (its last event, or its last
//! progress notification), as kube-apiserver's watch cache does; after a compaction it
//! starts from the compacted revision. Every watch (one create request and what followed)
//! is one [`WatchOp`] of the watcher's [`WatchReport`]. It asks for progress
//! (RequestProgress) every `progress_every`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kvd::proto::etcdserverpb::watch_client::WatchClient;
use kvd::proto::etcdserverpb::watch_request::RequestUnion;
use kvd::proto::etcdserverpb::{
    WatchCreateRequest, WatchProgressRequest, WatchRequest, WatchResponse,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Streaming;

use crate::client::{within, OP_TIMEOUT};
use crate::record::{Clock, Kv};
use crate::slots::{Slots, Target};

/// `WatchCreateRequest.filters`: no put events.
pub const NOPUT: i32 = 0;
/// `WatchCreateRequest.filters`: no delete events.
pub const NODELETE: i32 = 1;

/// What a watcher watches and how.
#[derive(Clone, Debug)]
pub struct WatchSpec {
    /// Name in messages.
    pub name: String,
    /// First key.
    pub key: Vec<u8>,
    /// Range end (`[0]`: every key from `key`).
    pub range_end: Vec<u8>,
    /// Ask for the previous key-value of each event.
    pub prev_kv: bool,
    /// `NOPUT` / `NODELETE`.
    pub filters: Vec<i32>,
    /// Send the gRPC metadata `hasleader: true` (clientv3's `WithRequireLeader`).
    pub hasleader: bool,
    /// Interval between RequestProgress calls.
    pub progress_every: Duration,
    /// The slot of the first member.
    pub slot: usize,
    /// Watches every key with no filter: its events make up the history.
    pub history: bool,
}

impl WatchSpec {
    /// A watcher of every key (the history source) starting on `slot`.
    pub fn history(name: &str, slot: usize) -> WatchSpec {
        WatchSpec {
            name: name.to_string(),
            key: vec![0],
            range_end: vec![0],
            prev_kv: true,
            filters: Vec::new(),
            hasleader: false,
            progress_every: Duration::from_millis(1000),
            slot,
            history: true,
        }
    }

    /// A watcher of every key under `prefix` starting on `slot`.
    pub fn prefix(name: &str, prefix: &str, slot: usize) -> WatchSpec {
        WatchSpec {
            name: name.to_string(),
            key: prefix.as_bytes().to_vec(),
            range_end: crate::client::prefix_end(prefix.as_bytes()),
            prev_kv: true,
            filters: Vec::new(),
            hasleader: false,
            progress_every: Duration::from_millis(1000),
            slot,
            history: false,
        }
    }

    /// True if an event on `key` of this kind passes the watch's key range and filters.
    pub fn matches(&self, key: &str, delete: bool) -> bool {
        let k = key.as_bytes();
        let in_range = if self.range_end == [0] {
            k >= self.key.as_slice()
        } else if self.range_end.is_empty() {
            k == self.key.as_slice()
        } else {
            k >= self.key.as_slice() && k < self.range_end.as_slice()
        };
        let filtered = if delete {
            self.filters.contains(&NODELETE)
        } else {
            self.filters.contains(&NOPUT)
        };
        in_range && !filtered
    }
}

/// One watch event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// A delete (else a put).
    pub delete: bool,
    /// The key-value (for a delete: the key and the delete's revision).
    pub kv: Kv,
    /// The previous key-value, if sent.
    pub prev: Option<Kv>,
}

impl Event {
    /// The event's revision.
    pub fn revision(&self) -> i64 {
        self.kv.mod_revision
    }

    /// The event without its previous key-value (what the history compares).
    pub fn bare(&self) -> Event {
        Event {
            prev: None,
            ..self.clone()
        }
    }
}

/// One watch response.
#[derive(Clone, Debug)]
pub struct Resp {
    /// Arrival time on the scenario clock.
    pub at: u64,
    /// Header revision.
    pub revision: i64,
    /// Confirms the creation.
    pub created: bool,
    /// Ends the watch.
    pub canceled: bool,
    /// Compacted revision (a canceled watch that started too early).
    pub compact_revision: i64,
    /// Why the watch was canceled.
    pub cancel_reason: String,
    /// A progress notification (no events, not a create, cancel or compaction).
    pub progress: bool,
    /// The events.
    pub events: Vec<Event>,
}

impl Resp {
    fn from(r: WatchResponse, at: u64) -> Resp {
        let events: Vec<Event> = r
            .events
            .iter()
            .map(|e| Event {
                delete: e.r#type == 1,
                kv: e.kv.as_ref().map(Kv::from).unwrap_or_else(|| Kv {
                    key: String::new(),
                    value: String::new(),
                    create_revision: 0,
                    mod_revision: 0,
                    version: 0,
                    lease: 0,
                }),
                prev: e.prev_kv.as_ref().map(Kv::from),
            })
            .collect();
        let revision = r.header.map_or(0, |h| h.revision);
        Resp {
            at,
            revision,
            created: r.created,
            canceled: r.canceled,
            compact_revision: r.compact_revision,
            cancel_reason: r.cancel_reason,
            progress: events.is_empty()
                && !r.created
                && !r.canceled
                && r.compact_revision == 0
                && revision != 0,
            events,
        }
    }
}

/// One watch: its create request's start revision, the member, what it was sent, and how it
/// ended.
#[derive(Clone, Debug)]
pub struct WatchOp {
    /// The member.
    pub member: String,
    /// `start_revision` of the create request.
    pub start_revision: i64,
    /// The responses in arrival order.
    pub responses: Vec<Resp>,
    /// How it ended (`None`: stopped by the test).
    pub ended: Option<String>,
}

/// Everything one watcher recorded.
#[derive(Clone, Debug)]
pub struct WatchReport {
    /// The watcher.
    pub spec: WatchSpec,
    /// Its watches in order.
    pub ops: Vec<WatchOp>,
}

impl WatchReport {
    /// Every event in arrival order.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.ops
            .iter()
            .flat_map(|o| o.responses.iter())
            .flat_map(|r| r.events.iter())
    }
}

/// The revisions the running watchers would resume from: the compactor stays at or below
/// the lowest.
#[derive(Clone, Default)]
pub struct Positions(Arc<Mutex<Vec<Arc<AtomicI64>>>>);

impl Positions {
    fn register(&self, start: i64) -> Arc<AtomicI64> {
        let p = Arc::new(AtomicI64::new(start));
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::clone(&p));
        p
    }

    /// The lowest resume revision (`i64::MAX` without watchers).
    pub fn min(&self) -> i64 {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|p| p.load(Ordering::SeqCst))
            .min()
            .unwrap_or(i64::MAX)
    }
}

/// A running watcher.
pub struct Watcher {
    /// What it watches.
    pub spec: WatchSpec,
    ops: Arc<Mutex<Vec<WatchOp>>>,
    last_event: Arc<AtomicI64>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Watcher {
    /// Starts watching from `start_revision` on the spec's slot.
    pub fn start(
        spec: WatchSpec,
        slots: Slots,
        clock: Clock,
        positions: &Positions,
        start_revision: i64,
    ) -> Watcher {
        let ops = Arc::new(Mutex::new(Vec::new()));
        let last_event = Arc::new(AtomicI64::new(0));
        let position = positions.register(start_revision);
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(
            spec.clone(),
            slots,
            clock,
            Arc::clone(&ops),
            Arc::clone(&last_event),
            position,
            stop.clone(),
        ));
        Watcher {
            spec,
            ops,
            last_event,
            stop,
            task,
        }
    }

    /// Revision of the last event received.
    pub fn last_event(&self) -> i64 {
        self.last_event.load(Ordering::SeqCst)
    }

    /// Waits until an event of revision `rev` or later arrived; false after `timeout`.
    pub async fn wait_event(&self, rev: i64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.last_event() < rev {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Stops the watcher and returns what it recorded.
    pub async fn stop(self) -> WatchReport {
        self.stop.cancel();
        let _ = self.task.await;
        let ops = self.ops.lock().unwrap_or_else(|e| e.into_inner()).clone();
        WatchReport {
            spec: self.spec,
            ops,
        }
    }
}

type Stream = (mpsc::Sender<WatchRequest>, Streaming<WatchResponse>);

async fn open(target: &Target, spec: &WatchSpec, start: i64) -> Result<Stream, String> {
    let (tx, rx) = mpsc::channel(16);
    tx.send(WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key: spec.key.clone(),
            range_end: spec.range_end.clone(),
            start_revision: start,
            progress_notify: true,
            filters: spec.filters.clone(),
            prev_kv: spec.prev_kv,
            ..Default::default()
        })),
    })
    .await
    .map_err(|_| "request queue closed".to_string())?;
    let mut req = tonic::Request::new(ReceiverStream::new(rx));
    if spec.hasleader {
        req.metadata_mut().insert(
            "hasleader",
            tonic::metadata::MetadataValue::from_static("true"),
        );
    }
    let mut wc = WatchClient::new(target.channel.clone());
    let stream = within(OP_TIMEOUT, wc.watch(req))
        .await
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
        .into_inner();
    Ok((tx, stream))
}

#[allow(clippy::too_many_arguments)]
async fn run(
    spec: WatchSpec,
    slots: Slots,
    clock: Clock,
    ops: Arc<Mutex<Vec<WatchOp>>>,
    last_event: Arc<AtomicI64>,
    position: Arc<AtomicI64>,
    stop: CancellationToken,
) {
    let mut slot = spec.slot;
    let record = |f: &dyn Fn(&mut WatchOp)| {
        let mut g = ops.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(op) = g.last_mut() {
            f(op);
        }
    };
    while !stop.is_cancelled() {
        let target = slots.get(slot);
        let start = position.load(Ordering::SeqCst);
        ops.lock().unwrap_or_else(|e| e.into_inner()).push(WatchOp {
            member: target.name.clone(),
            start_revision: start,
            responses: Vec::new(),
            ended: None,
        });
        let opened = tokio::select! {
            _ = stop.cancelled() => return,
            o = open(&target, &spec, start) => o,
        };
        let ended = match opened {
            Err(e) => e,
            Ok((tx, mut stream)) => {
                let mut tick = tokio::time::interval(spec.progress_every);
                tick.tick().await;
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tick.tick() => {
                            let _ = tx.try_send(WatchRequest {
                                request_union: Some(RequestUnion::ProgressRequest(
                                    WatchProgressRequest {},
                                )),
                            });
                        }
                        m = stream.message() => match m {
                            Ok(Some(r)) => {
                                let resp = Resp::from(r, clock.now());
                                if let Some(e) = resp.events.last() {
                                    position.fetch_max(e.revision() + 1, Ordering::SeqCst);
                                    last_event.fetch_max(e.revision(), Ordering::SeqCst);
                                }
                                if resp.progress {
                                    position.fetch_max(resp.revision + 1, Ordering::SeqCst);
                                }
                                let end = resp.canceled.then(|| {
                                    format!(
                                        "canceled (reason {:?}, compact revision {})",
                                        resp.cancel_reason, resp.compact_revision
                                    )
                                });
                                if resp.compact_revision > 0 {
                                    position.fetch_max(resp.compact_revision, Ordering::SeqCst);
                                }
                                record(&|op| op.responses.push(resp.clone()));
                                if let Some(end) = end {
                                    break end;
                                }
                            }
                            Ok(None) => break "stream closed by the member".to_string(),
                            Err(s) => break format!("{:?}: {}", s.code(), s.message()),
                        }
                    }
                }
            }
        };
        record(&|op| op.ended = Some(ended.clone()));
        // resume on another member, after a pause (pacing, not synchronisation)
        slot += 1;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}
