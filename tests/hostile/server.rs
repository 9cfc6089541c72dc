//! One member (kvd or etcd) as a child process on free loopback ports, with gRPC clients.

use std::path::Path;
use std::time::{Duration, Instant};

use kvd::proto::etcdserverpb::kv_client::KvClient;
use kvd::proto::etcdserverpb::{PutRequest, RangeRequest};
use tonic::transport::{Channel, Endpoint};

use crate::support::logged_process::LoggedProcess;
use crate::support::member::{initial_cluster, Member};

/// A running single member; killed on drop.
pub struct Server {
    /// `kvd` or `etcd`.
    pub label: &'static str,
    /// Its ports.
    pub member: Member,
    process: LoggedProcess,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `bin` as a one-member cluster with `extra` flags and waits until it serves.
    pub async fn start(label: &'static str, bin: &Path, extra: &[&str]) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("kvd-hostile-")
            .tempdir()
            .expect("temp dir");
        let member = Member::new("h1");
        let mut args = member.flags(
            &dir.path().join("data"),
            &initial_cluster(std::slice::from_ref(&member)),
            "hostile",
        );
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut process =
            LoggedProcess::new(label, bin, args, dir.path(), dir.path().join("server.log"))
                .without_env_prefix("ETCD");
        process.launch();
        let server = Server {
            label,
            member,
            process,
            _dir: dir,
        };
        server.wait_serving(Duration::from_secs(30)).await;
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.member.endpoint())
    }

    /// A fresh connection.
    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(self.url())
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{}: connect: {e}", self.label))
    }

    async fn wait_serving(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(ch) = Endpoint::from_shared(self.url())
                .expect("endpoint")
                .connect_timeout(Duration::from_secs(1))
                .timeout(Duration::from_secs(2))
                .connect()
                .await
            {
                let mut kv = KvClient::new(ch);
                if kv
                    .range(RangeRequest {
                        key: b"ready".to_vec(),
                        ..Default::default()
                    })
                    .await
                    .is_ok()
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} did not serve within {timeout:?}:\n{}",
                self.label,
                self.process.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fails the test unless the process still runs and serves a write and a read.
    pub async fn assert_serving(&mut self) {
        assert!(
            self.process.exited().is_none(),
            "{} exited:\n{}",
            self.label,
            self.process.log_tail(30)
        );
        let mut kv = KvClient::new(self.channel().await);
        kv.put(PutRequest {
            key: b"still/serving".to_vec(),
            value: b"yes".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{}: put after the probe: {e}", self.label));
        let got = kv
            .range(RangeRequest {
                key: b"still/serving".to_vec(),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("{}: get after the probe: {e}", self.label))
            .into_inner();
        assert_eq!(got.kvs.len(), 1, "{}", self.label);
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.process.log_text()
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.process.pid().expect("running")
    }
}
