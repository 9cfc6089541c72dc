//! A member on a free loopback port in a temp dir, and clients for it.

use std::net::SocketAddr;
use std::time::Duration;

use kvd::api::Limits;
use kvd::proto::etcdserverpb::kv_client::KvClient;
use kvd::proto::etcdserverpb::lease_client::LeaseClient;
use kvd::proto::etcdserverpb::watch_client::WatchClient;
use kvd::server::{self, Listen, Options, ServerHandle};
use tonic::transport::Channel;

/// A running member and its data dir.
pub struct Member {
    pub handle: Option<ServerHandle>,
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
}

pub fn options(dir: &std::path::Path) -> Options {
    Options {
        name: "default".into(),
        data_dir: dir.to_path_buf(),
        listen_client: vec![Listen {
            addr: "127.0.0.1:0".parse().expect("addr"),
            tls: false,
        }],
        advertise_client_urls: vec!["http://127.0.0.1:2379".into()],
        advertise_peer_urls: vec!["http://localhost:2380".into()],
        initial_cluster: vec![("default".into(), "http://localhost:2380".into())],
        initial_cluster_token: "etcd-cluster".into(),
        heartbeat: Duration::from_millis(100),
        election_timeout: Duration::from_millis(1000),
        snapshot_count: 100_000,
        limits: Limits {
            max_request_bytes: 1572864,
            max_txn_ops: 128,
            quota_bytes: 2 << 30,
        },
        auto_compaction: None,
        listen_peer: Vec::new(),
        initial_cluster_existing: false,
        force_new_cluster: false,
        client_tls: None,
        peer_tls: None,
        peer_dial_tls: None,
        enable_gateway: true,
        listen_client_unix: Vec::new(),
        // bcrypt's cheapest cost keeps tests fast (kvd's default is etcd's 10).
        auth: kvd::auth::AuthOptions {
            bcrypt_cost: 4,
            ..Default::default()
        },
        listen_client_http: Vec::new(),
        listen_metrics: Vec::new(),
        metrics_extensive: false,
        warning_apply_duration: Duration::from_millis(100),
        backend_cache_bytes: 64 << 20,
    }
}

impl Member {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let handle = server::start(options(dir.path())).await.expect("start");
        let addr = handle.client_addrs[0];
        let m = Self {
            handle: Some(handle),
            dir,
            addr,
        };
        m.wait_leader().await;
        m
    }

    pub async fn wait_leader(&self) {
        let h = self.handle.as_ref().expect("running");
        h.core
            .raft
            .wait_leader(Duration::from_secs(10))
            .await
            .expect("leader elected");
    }

    pub async fn channel(&self) -> Channel {
        tokio::time::timeout(
            Duration::from_secs(5),
            Channel::from_shared(format!("http://{}", self.addr))
                .expect("uri")
                .connect(),
        )
        .await
        .expect("connect in time")
        .expect("connect")
    }

    pub async fn kv(&self) -> KvClient<Channel> {
        KvClient::new(self.channel().await)
    }

    pub async fn lease(&self) -> LeaseClient<Channel> {
        LeaseClient::new(self.channel().await)
    }

    pub async fn watch(&self) -> WatchClient<Channel> {
        WatchClient::new(self.channel().await)
    }

    /// Stops the member and starts it again on the same data dir.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start_again().await;
    }

    /// Stops the member (cleanly); its data dir stays.
    pub async fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }

    /// Starts the member again on its data dir, on the same address.
    pub async fn start_again(&mut self) {
        let mut opts = options(self.dir.path());
        opts.listen_client = vec![Listen {
            addr: self.addr,
            tls: false,
        }];
        let handle = server::start(opts).await.expect("restart");
        self.handle = Some(handle);
        self.wait_leader().await;
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.stopped().cancel();
        }
    }
}

/// Runs a future with a deadline so a hang fails the test.
pub async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("finished in time")
}
