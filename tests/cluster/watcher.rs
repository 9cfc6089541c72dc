//! A watch on one member, collected in the background: every event it delivers, and how
//! the stream ended if it did.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kvd::proto::etcdserverpb::watch_client::WatchClient;
use kvd::proto::etcdserverpb::watch_request::RequestUnion;
use kvd::proto::etcdserverpb::{WatchCreateRequest, WatchRequest};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::client;

/// One watched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Key.
    pub key: String,
    /// Value (empty for deletes).
    pub value: String,
    /// `mod_revision` of the event.
    pub revision: i64,
    /// True for a delete.
    pub delete: bool,
}

#[derive(Default)]
struct Inner {
    events: Vec<Seen>,
    ended: Option<String>,
}

/// A running prefix watch.
pub struct Watcher {
    inner: Arc<Mutex<Inner>>,
    // keeps the request stream open (closing it would end the watch)
    _requests: mpsc::Sender<WatchRequest>,
}

impl Watcher {
    /// Watches every key under `prefix` from `start_revision` on member `ch`; returns once
    /// the member confirmed the watch.
    pub async fn start(ch: Channel, prefix: &str, start_revision: i64) -> Watcher {
        let (tx, rx) = mpsc::channel(4);
        tx.send(WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key: prefix.as_bytes().to_vec(),
                range_end: client::prefix_end(prefix.as_bytes()),
                start_revision,
                ..Default::default()
            })),
        })
        .await
        .expect("queue the create request");
        let mut wc = WatchClient::new(ch);
        let mut stream = client::within(client::OP_TIMEOUT, wc.watch(ReceiverStream::new(rx)))
            .await
            .unwrap_or_else(|e| panic!("watch: {e}"))
            .into_inner();
        let first = client::within(client::OP_TIMEOUT, async {
            stream
                .message()
                .await
                .map(|m| m.expect("watch stream ended before it was created"))
        })
        .await
        .unwrap_or_else(|e| panic!("watch create: {e}"));
        assert!(
            first.created,
            "first watch response must confirm creation: {first:?}"
        );
        let inner = Arc::new(Mutex::new(Inner::default()));
        let sink = Arc::clone(&inner);
        let record = move |inner: &Arc<Mutex<Inner>>,
                           resp: kvd::proto::etcdserverpb::WatchResponse| {
            let mut g = inner.lock().unwrap_or_else(|e| e.into_inner());
            if resp.canceled {
                g.ended = Some(format!("canceled: {:?}", resp.cancel_reason));
            }
            for ev in resp.events {
                let kv = ev.kv.unwrap_or_default();
                g.events.push(Seen {
                    key: String::from_utf8_lossy(&kv.key).into_owned(),
                    value: String::from_utf8_lossy(&kv.value).into_owned(),
                    revision: kv.mod_revision,
                    delete: ev.r#type == 1,
                });
            }
        };
        record(&sink, first);
        tokio::spawn(async move {
            loop {
                match stream.message().await {
                    Ok(Some(resp)) => record(&sink, resp),
                    Ok(None) => {
                        sink.lock().unwrap_or_else(|e| e.into_inner()).ended =
                            Some("stream closed by the member".into());
                        return;
                    }
                    Err(e) => {
                        sink.lock().unwrap_or_else(|e| e.into_inner()).ended =
                            Some(format!("stream error: {e}"));
                        return;
                    }
                }
            }
        });
        Watcher {
            inner,
            _requests: tx,
        }
    }

    /// Events so far.
    pub fn events(&self) -> Vec<Seen> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .events
            .clone()
    }

    /// How the stream ended, if it did.
    pub fn ended(&self) -> Option<String> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ended
            .clone()
    }

    /// Waits until an event at revision `rev` or later arrived; panics after `timeout` or if
    /// the stream ends first.
    pub async fn wait_revision(&self, rev: i64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.events().last().map_or(0, |e| e.revision);
            if last >= rev {
                return;
            }
            if let Some(end) = self.ended() {
                panic!("watch ended at revision {last} before {rev}: {end}");
            }
            assert!(
                Instant::now() < deadline,
                "watch reached revision {last}, not {rev}, within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
