//! The Watch service: one task per stream multiplexes its watchers' events, create/cancel
//! requests and progress notifications.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::core::Core;
use crate::mvcc::EventKind;
use crate::proto::etcdserverpb::watch_request::RequestUnion;
use crate::proto::etcdserverpb::watch_server::Watch;
use crate::proto::etcdserverpb::{watch_create_request::FilterType, WatchRequest, WatchResponse};
use crate::proto::mvccpb::{event::EventType, Event as PbEvent};
use crate::watch::{WatchBatch, WatchSpec};

/// How often watchers that asked for progress notifications get one (etcd's default).
const PROGRESS_INTERVAL: Duration = Duration::from_secs(600);
/// How often a deferred progress request is tried again while a watcher catches up.
const DEFERRED_PROGRESS_RETRY: Duration = Duration::from_millis(50);

static NEXT_STREAM: AtomicU64 = AtomicU64::new(1);

/// The Watch service.
pub struct WatchService {
    core: Arc<Core>,
}

impl WatchService {
    /// A Watch service over `core`.
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }
}

struct WatcherOpts {
    prev_kv: bool,
    progress_notify: bool,
    fragment: bool,
    /// No event was sent since the last periodic progress notification (etcd elides the next
    /// one otherwise).
    progress_due: bool,
}

struct StreamTask {
    core: Arc<Core>,
    stream_id: u64,
    out: mpsc::Sender<Result<WatchResponse, Status>>,
    events_tx: mpsc::Sender<WatchBatch>,
    watchers: std::collections::HashMap<i64, WatcherOpts>,
    next_watch_id: i64,
    /// A RequestProgress arrived while a watcher was catching up: answered once all are synced
    /// (as etcd 3.5.8+ does), never with a revision ahead of undelivered events.
    deferred_progress: bool,
    /// The stream carries `hasleader: true`: it ends when the member loses its leader.
    requires_leader: bool,
}

impl StreamTask {
    async fn send(&self, resp: WatchResponse) -> bool {
        crate::kvd_crash_point!("watch::before_send");
        self.out.send(Ok(resp)).await.is_ok()
    }

    async fn on_request(&mut self, req: WatchRequest) -> bool {
        match req.request_union {
            Some(RequestUnion::CreateRequest(c)) => {
                if let Some(refusal) = super::auth::watch_refusal(&self.core, &c).await {
                    return self.send(refusal).await;
                }
                let mut id = c.watch_id;
                if id == 0 {
                    while self.watchers.contains_key(&self.next_watch_id) {
                        self.next_watch_id += 1;
                    }
                    id = self.next_watch_id;
                    self.next_watch_id += 1;
                } else if self.watchers.contains_key(&id) {
                    return self
                        .send(WatchResponse {
                            header: self.core.header(0),
                            watch_id: id,
                            created: true,
                            canceled: true,
                            cancel_reason: super::status::DUPLICATE_WATCH_ID.into(),
                            ..Default::default()
                        })
                        .await;
                }
                let spec = WatchSpec {
                    key: c.key,
                    range_end: c.range_end,
                    no_put: c.filters.contains(&(FilterType::Noput as i32)),
                    no_delete: c.filters.contains(&(FilterType::Nodelete as i32)),
                };
                self.watchers.insert(
                    id,
                    WatcherOpts {
                        prev_kv: c.prev_kv,
                        progress_notify: c.progress_notify,
                        fragment: c.fragment,
                        progress_due: true,
                    },
                );
                // The created response goes out before any event of the new watcher.
                if !self
                    .send(WatchResponse {
                        header: self.core.header(0),
                        watch_id: id,
                        created: true,
                        ..Default::default()
                    })
                    .await
                {
                    return false;
                }
                self.core.state.hub.watch(
                    (self.stream_id, id),
                    spec,
                    c.start_revision,
                    self.events_tx.clone(),
                );
                true
            }
            Some(RequestUnion::CancelRequest(c)) => {
                self.core.state.hub.cancel((self.stream_id, c.watch_id));
                if self.watchers.remove(&c.watch_id).is_some() {
                    return self
                        .send(WatchResponse {
                            header: self.core.header(0),
                            watch_id: c.watch_id,
                            canceled: true,
                            ..Default::default()
                        })
                        .await;
                }
                true
            }
            Some(RequestUnion::ProgressRequest(_)) => {
                if !self.deferred_progress {
                    self.deferred_progress = !self.request_progress_all();
                }
                true
            }
            None => true,
        }
    }

    /// Asks the hub to queue a progress notification for the whole stream behind its events.
    fn request_progress_all(&self) -> bool {
        self.core
            .state
            .hub
            .progress(self.stream_id, None, -1, &self.events_tx)
    }

    async fn on_batch(&mut self, batch: WatchBatch) -> bool {
        if batch.progress {
            if batch.watch_id != -1 && !self.watchers.contains_key(&batch.watch_id) {
                return true;
            }
            return self
                .send(WatchResponse {
                    header: self.core.header(batch.revision),
                    watch_id: batch.watch_id,
                    ..Default::default()
                })
                .await;
        }
        let sent = self.send_events(batch).await;
        if sent && self.deferred_progress {
            self.deferred_progress = !self.request_progress_all();
        }
        sent
    }

    async fn send_events(&mut self, batch: WatchBatch) -> bool {
        crate::metrics::mvcc::events_taken(batch.events.len());
        let Some(opts) = self.watchers.get_mut(&batch.watch_id) else {
            return true;
        };
        if !batch.events.is_empty() {
            opts.progress_due = false;
        }
        if batch.compact_revision != 0 {
            self.watchers.remove(&batch.watch_id);
            return self
                .send(WatchResponse {
                    header: self.core.header(batch.revision),
                    watch_id: batch.watch_id,
                    canceled: true,
                    compact_revision: batch.compact_revision,
                    ..Default::default()
                })
                .await;
        }
        let events: Vec<PbEvent> = batch
            .events
            .iter()
            .map(|e| PbEvent {
                r#type: match e.kind {
                    EventKind::Put => EventType::Put as i32,
                    EventKind::Delete => EventType::Delete as i32,
                },
                kv: Some((*e.kv).clone()),
                prev_kv: if opts.prev_kv {
                    e.prev_kv.as_ref().map(|p| (**p).clone())
                } else {
                    None
                },
            })
            .collect();
        let header = self.core.header(batch.revision);
        if opts.fragment {
            let limit = self.core.limits.max_request_bytes;
            let mut chunk: Vec<PbEvent> = Vec::new();
            let mut size = 0;
            let total = events.len();
            for (i, ev) in events.into_iter().enumerate() {
                size += prost::Message::encoded_len(&ev);
                chunk.push(ev);
                let last = i + 1 == total;
                if size >= limit || last {
                    let resp = WatchResponse {
                        header,
                        watch_id: batch.watch_id,
                        events: std::mem::take(&mut chunk),
                        fragment: !last,
                        ..Default::default()
                    };
                    if !self.send(resp).await {
                        return false;
                    }
                    size = 0;
                }
            }
            return true;
        }
        self.send(WatchResponse {
            header,
            watch_id: batch.watch_id,
            events,
            ..Default::default()
        })
        .await
    }

    /// Periodic progress notifications for watchers that asked for them and got no event
    /// since the last tick; each is queued by the hub behind that watcher's events.
    fn on_progress_tick(&mut self) {
        for (id, opts) in self.watchers.iter_mut() {
            if opts.progress_notify && opts.progress_due {
                self.core
                    .state
                    .hub
                    .progress(self.stream_id, Some(*id), *id, &self.events_tx);
            }
            opts.progress_due = true;
        }
    }

    async fn run(
        mut self,
        mut inbound: Streaming<WatchRequest>,
        mut events: mpsc::Receiver<WatchBatch>,
    ) {
        let _open = crate::metrics::mvcc::watch_stream();
        let mut progress = tokio::time::interval(PROGRESS_INTERVAL);
        progress.tick().await;
        loop {
            let deferred = self.deferred_progress;
            let keep_going = tokio::select! {
                req = inbound.next() => match req {
                    Some(Ok(req)) => self.on_request(req).await,
                    _ => false,
                },
                Some(batch) = events.recv() => self.on_batch(batch).await,
                _ = progress.tick() => {
                    self.on_progress_tick();
                    true
                }
                () = tokio::time::sleep(DEFERRED_PROGRESS_RETRY), if deferred => {
                    self.deferred_progress = !self.request_progress_all();
                    true
                }
                () = self.core.leader_lost(), if self.requires_leader => {
                    // As etcd: a stream that requires a leader ends when there has been none
                    // for a while, so the client moves to a member that has one.
                    let _ = self.out.send(Err(super::status::ApiError::NoLeader.into())).await;
                    false
                }
                () = self.out.closed() => false,
                () = self.core.stopped() => {
                    // As etcd: a retryable error, so clients move to another member.
                    let _ = self.out.send(Err(super::status::ApiError::Stopped.into())).await;
                    false
                }
            };
            if !keep_going {
                break;
            }
        }
        self.core.state.hub.cancel_stream(self.stream_id);
        // Events still queued for this stream are no longer pending.
        events.close();
        while let Ok(batch) = events.try_recv() {
            crate::metrics::mvcc::events_taken(batch.events.len());
        }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        self.core.check_required_leader(request.metadata())?;
        let requires_leader = super::leader_monitor::requires_leader(request.metadata());
        let (out, out_rx) = mpsc::channel(256);
        let (events_tx, events_rx) = mpsc::channel(1024);
        let task = StreamTask {
            core: self.core.clone(),
            stream_id: NEXT_STREAM.fetch_add(1, Ordering::Relaxed),
            out,
            events_tx,
            watchers: std::collections::HashMap::new(),
            next_watch_id: 0,
            deferred_progress: false,
            requires_leader,
        };
        // The stream task checks each watch as the caller.
        tokio::spawn(crate::auth::credentials::inherit(
            task.run(request.into_inner(), events_rx),
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }
}
