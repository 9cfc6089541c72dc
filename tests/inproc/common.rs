//! A member on a free loopback port in a temp dir, and clients for it.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::Duration;

use kvd::config::{self, Config, Invocation};
use kvd::proto::etcdserverpb::kv_client::KvClient;
use kvd::proto::etcdserverpb::lease_client::LeaseClient;
use kvd::proto::etcdserverpb::watch_client::WatchClient;
use kvd::server::{self, ServerHandle};
use tonic::transport::Channel;

/// A running member and its data dir.
pub struct Member {
    pub handle: Option<ServerHandle>,
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
}

/// A single member on `dir`, configured through kvd's own flag parser (and no `ETCD_*`
/// variables), serving clients on `client` (`http://127.0.0.1:0` asks for a free port) and
/// peers on a free port; `extra` flags come last. bcrypt's cheapest cost keeps tests fast
/// (kvd's default is etcd's 10).
pub fn config_with(dir: &std::path::Path, client: &str, extra: &[&str]) -> Config {
    let mut args: Vec<OsString> = vec![
        "--data-dir".into(),
        dir.as_os_str().to_owned(),
        "--listen-client-urls".into(),
        client.into(),
        "--advertise-client-urls".into(),
        "http://127.0.0.1:2379".into(),
        "--listen-peer-urls".into(),
        "http://127.0.0.1:0".into(),
        "--bcrypt-cost".into(),
        "4".into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    match config::load(&args, &[]).expect("valid flags") {
        Invocation::Run(cfg, _) => *cfg,
        other => panic!("flags {args:?} do not start a member: {other:?}"),
    }
}

/// A single member on `dir` with a free client port.
pub fn config(dir: &std::path::Path) -> Config {
    config_with(dir, "http://127.0.0.1:0", &[])
}

impl Member {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let handle = server::start(config(dir.path())).await.expect("start");
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
        let client = format!("http://{}", self.addr);
        let cfg = config_with(self.dir.path(), &client, &[]);
        let handle = server::start(cfg).await.expect("restart");
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
