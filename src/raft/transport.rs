//! The peer transport: one outbound gRPC stream per peer on the peer listener, each fed by a
//! bounded queue, reconnecting with backoff; snapshots go in chunks on their own RPC.
//!
//! Raft messages travel as raft's own protobuf encoding inside kvd's envelope, which carries
//! the cluster ID so that members of another cluster are refused.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use protobuf::Message as _;
use raft::prelude::{Message, MessageType};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tracing::{debug, info, warn};

use super::node::{RaftHandle, Transport};
use crate::proto::kvdpb::peer_client::PeerClient;
use crate::proto::kvdpb::{RaftEnvelope, SnapshotChunk};

/// Messages queued per peer before new ones are dropped (raft retries).
const QUEUE: usize = 4096;
/// Bytes per snapshot chunk.
const SNAPSHOT_CHUNK: usize = 512 * 1024;

/// Where each member can be reached.
pub type AddressBook = Arc<dyn Fn(u64) -> Vec<String> + Send + Sync>;

/// How to dial peers.
#[derive(Clone)]
pub struct DialConfig {
    /// This member.
    pub me: u64,
    /// This cluster.
    pub cluster_id: u64,
    /// Peer URLs by member ID.
    pub addresses: AddressBook,
    /// TLS for https peer URLs.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

struct PeerQueue {
    messages: mpsc::Sender<Message>,
    snapshots: mpsc::Sender<Message>,
}

/// Sends raft messages to peers.
pub struct PeerTransport {
    dial: DialConfig,
    raft: RaftHandle,
    peers: HashMap<u64, PeerQueue>,
    shutdown: tokio_util::sync::CancellationToken,
}

impl PeerTransport {
    /// A transport that reports delivery failures to `raft`.
    pub fn new(
        dial: DialConfig,
        raft: RaftHandle,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Self {
        Self {
            dial,
            raft,
            peers: HashMap::new(),
            shutdown,
        }
    }

    fn queue(&mut self, to: u64) -> &PeerQueue {
        self.peers.entry(to).or_insert_with(|| {
            let (messages, msg_rx) = mpsc::channel(QUEUE);
            let (snapshots, snap_rx) = mpsc::channel(4);
            let dial = self.dial.clone();
            let raft = self.raft.clone();
            let shutdown = self.shutdown.clone();
            tokio::spawn(run_stream(
                to,
                dial.clone(),
                raft.clone(),
                msg_rx,
                shutdown.clone(),
            ));
            tokio::spawn(run_snapshots(to, dial, raft, snap_rx, shutdown));
            PeerQueue {
                messages,
                snapshots,
            }
        })
    }
}

impl Transport for PeerTransport {
    fn send(&mut self, msgs: Vec<Message>) {
        for m in msgs {
            let to = m.to;
            if to == self.dial.me || to == 0 {
                continue;
            }
            let is_snapshot = m.get_msg_type() == MessageType::MsgSnapshot;
            let is_heartbeat = m.get_msg_type() == MessageType::MsgHeartbeat;
            let q = self.queue(to);
            let sent = if is_snapshot {
                q.snapshots.try_send(m)
            } else {
                q.messages.try_send(m)
            };
            if is_heartbeat {
                crate::metrics::network::heartbeat(to, sent.is_ok());
            }
            if sent.is_err() {
                crate::metrics::network::peer_send_failed(to, 1);
                debug!(to = format!("{to:x}"), "peer queue full; message dropped");
                let raft = self.raft.clone();
                tokio::spawn(async move { raft.report_unreachable(to).await });
            }
        }
    }
}

async fn connect(dial: &DialConfig, to: u64) -> Option<PeerClient<Channel>> {
    for url in (dial.addresses)(to) {
        let Ok(mut endpoint) = Endpoint::from_shared(url.clone()) else {
            warn!(peer = format!("{to:x}"), url = %url, "invalid peer URL");
            continue;
        };
        endpoint = endpoint
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true);
        let connected = if url.starts_with("https://") {
            let Some(tls) = &dial.tls else {
                warn!(peer = format!("{to:x}"), url = %url, "https peer URL but no peer TLS configured");
                continue;
            };
            // tonic dials plain http; our connector does the TLS handshake with kvd's config.
            let plain = url.replacen("https://", "http://", 1);
            let Ok(e) = Endpoint::from_shared(plain) else {
                continue;
            };
            endpoint = e.connect_timeout(Duration::from_secs(2)).tcp_nodelay(true);
            endpoint
                .connect_with_connector(TlsConnector {
                    config: tls.clone(),
                })
                .await
        } else {
            endpoint.connect().await
        };
        match connected {
            Ok(ch) => return Some(PeerClient::new(ch).max_encoding_message_size(usize::MAX)),
            Err(e) => debug!(peer = format!("{to:x}"), url = %url, error = %e, "cannot reach peer"),
        }
    }
    None
}

fn envelope(dial: &DialConfig, m: &Message) -> RaftEnvelope {
    let message = m.write_to_bytes().unwrap_or_default();
    crate::metrics::network::peer_sent(m.to, message.len());
    RaftEnvelope {
        message,
        cluster_id: dial.cluster_id,
        from: dial.me,
    }
}

/// Keeps one client stream open to `to` and forwards queued messages on it.
async fn run_stream(
    to: u64,
    dial: DialConfig,
    raft: RaftHandle,
    mut rx: mpsc::Receiver<Message>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut backoff = Duration::from_millis(50);
    let mut was_up = false;
    loop {
        // Wait for something to send before dialling.
        let first = tokio::select! {
            () = shutdown.cancelled() => return,
            m = rx.recv() => match m { Some(m) => m, None => return },
        };
        let Some(mut client) = connect(&dial, to).await else {
            if was_up {
                warn!(peer = format!("{to:x}"), "lost connection to peer");
                was_up = false;
            }
            raft.report_unreachable(to).await;
            crate::metrics::network::peer_send_failed(to, 1 + drain(&mut rx));
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(1));
            continue;
        };
        let (tx, stream_rx) = mpsc::channel::<RaftEnvelope>(QUEUE);
        let _ = tx.try_send(envelope(&dial, &first));
        let mut call = Box::pin(client.raft(ReceiverStream::new(stream_rx)));
        crate::metrics::network::peer_connection(dial.me, to, true);
        if !was_up {
            info!(peer = format!("{to:x}"), "peer stream established");
            was_up = true;
        }
        backoff = Duration::from_millis(50);
        let ended = loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                result = &mut call => break result,
                m = rx.recv() => match m {
                    Some(m) => {
                        if tx.send(envelope(&dial, &m)).await.is_err() {
                            break Ok(tonic::Response::new(Default::default()));
                        }
                    }
                    None => return,
                },
            }
        };
        crate::metrics::network::peer_connection(dial.me, to, false);
        if let Err(status) = ended {
            if status.code() == tonic::Code::FailedPrecondition {
                warn!(peer = format!("{to:x}"), reason = %status.message(), "peer refused our raft messages");
            } else {
                debug!(peer = format!("{to:x}"), error = %status, "peer stream ended");
            }
        }
        raft.report_unreachable(to).await;
    }
}

/// Drops every queued message; returns how many there were.
fn drain(rx: &mut mpsc::Receiver<Message>) -> usize {
    let mut dropped = 0;
    while rx.try_recv().is_ok() {
        dropped += 1;
    }
    dropped
}

/// Sends snapshots to `to`, one at a time, in chunks; reports the outcome to raft.
async fn run_snapshots(
    to: u64,
    dial: DialConfig,
    raft: RaftHandle,
    mut rx: mpsc::Receiver<Message>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        let mut m = tokio::select! {
            () = shutdown.cancelled() => return,
            m = rx.recv() => match m { Some(m) => m, None => return },
        };
        let data = m.mut_snapshot().take_data().to_vec();
        let header = m.write_to_bytes().unwrap_or_default();
        let index = m.get_snapshot().get_metadata().index;
        info!(
            peer = format!("{to:x}"),
            index,
            bytes = data.len(),
            "sending snapshot"
        );
        let mut chunks = Vec::new();
        let pieces: Vec<&[u8]> = if data.is_empty() {
            vec![&[][..]]
        } else {
            data.chunks(SNAPSHOT_CHUNK).collect()
        };
        let n = pieces.len();
        for (i, piece) in pieces.into_iter().enumerate() {
            chunks.push(SnapshotChunk {
                raft_message: if i == 0 { header.clone() } else { Vec::new() },
                data: piece.to_vec(),
                last: i + 1 == n,
                cluster_id: dial.cluster_id,
            });
        }
        crate::kvd_crash_point!("snapshot::before_send");
        let ok = match connect(&dial, to).await {
            Some(mut client) => match client.snapshot(tokio_stream::iter(chunks)).await {
                Ok(_) => true,
                Err(e) => {
                    warn!(peer = format!("{to:x}"), error = %e, "sending snapshot failed");
                    false
                }
            },
            None => false,
        };
        raft.report_snapshot(to, ok).await;
    }
}

/// Decodes a raft message received from a peer.
///
/// # Errors
/// The bytes are not a raft message.
pub fn decode_message(bytes: &[u8]) -> Result<Message, protobuf::ProtobufError> {
    let mut m = Message::default();
    m.merge_from_bytes(bytes)?;
    Ok(m)
}

/// Puts a received snapshot's data back into its message.
///
/// # Errors
/// The header is not a raft message.
pub fn assemble_snapshot(header: &[u8], data: Vec<u8>) -> Result<Message, protobuf::ProtobufError> {
    let mut m = decode_message(header)?;
    m.mut_snapshot().set_data(data.into());
    Ok(m)
}

/// Cached connections to peers for requests that are not raft messages (lease forwarding).
pub struct PeerDialer {
    dial: DialConfig,
    clients: parking_lot::Mutex<HashMap<u64, PeerClient<Channel>>>,
}

impl PeerDialer {
    /// A dialer using `dial`'s addresses and TLS.
    pub fn new(dial: DialConfig) -> Self {
        Self {
            dial,
            clients: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// A client for member `id`, connecting if needed.
    pub async fn client(&self, id: u64) -> Option<PeerClient<Channel>> {
        if let Some(c) = self.clients.lock().get(&id) {
            return Some(c.clone());
        }
        let c = connect(&self.dial, id).await?;
        self.clients.lock().insert(id, c.clone());
        Some(c)
    }

    /// Forgets a broken connection.
    pub fn forget(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    /// The peer header identifying this member.
    pub fn header(&self) -> crate::proto::kvdpb::PeerHeader {
        crate::proto::kvdpb::PeerHeader {
            cluster_id: self.dial.cluster_id,
            from: self.dial.me,
        }
    }
}

/// Asks the members at `urls` for the member list (used by a member joining an existing
/// cluster). Returns the first answer.
pub async fn fetch_members(
    urls: &[String],
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Option<crate::proto::kvdpb::MembersResponse> {
    for url in urls {
        let dial = DialConfig {
            me: 0,
            cluster_id: 0,
            addresses: {
                let url = url.clone();
                Arc::new(move |_| vec![url.clone()])
            },
            tls: tls.clone(),
        };
        if let Some(mut client) = connect(&dial, 0).await {
            let req = crate::proto::kvdpb::MembersRequest { header: None };
            match client.members(req).await {
                Ok(resp) => return Some(resp.into_inner()),
                Err(e) => debug!(url = %url, error = %e, "member list request failed"),
            }
        }
    }
    None
}

/// Dials TCP and runs a TLS handshake with kvd's own rustls configuration (which accepts what
/// etcd accepts, X.509 v1 certificates included), for tonic's `connect_with_connector`.
#[derive(Clone)]
struct TlsConnector {
    config: Arc<rustls::ClientConfig>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower::Service<http::Uri> for TlsConnector {
    type Response = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;
    type Error = BoxError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, BoxError>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let config = self.config.clone();
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or("peer URL without host")?
                .trim_matches(|c| c == '[' || c == ']')
                .to_string();
            let port = uri.port_u16().ok_or("peer URL without port")?;
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            let _ = tcp.set_nodelay(true);
            let name = rustls_pki_types::ServerName::try_from(host.clone())?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok(hyper_util::rt::TokioIo::new(tls))
        })
    }
}
