//! Consistency: `etcdctl snapshot save` from kvd while a writer keeps writing saves one point in
//! time. The writer puts `w/000000`, `w/000001`, ... one after the other over gRPC; each restored
//! snapshot must hold exactly a prefix `w/0 .. w/n-1` of that sequence, each key with its value
//! and revision, the store's revision must be the one of `w/n-1`, and `n` must lie between the
//! writes acknowledged before the save started and those acknowledged after it ended.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use kvd::proto::etcdserverpb::kv_client::KvClient;
use kvd::proto::etcdserverpb::PutRequest;
use tonic::transport::Channel;

use crate::harness::{
    eventually, header_revision, kvd_bin, kvd_cli, kvs, new_temp_dir, Member, Server,
};
use crate::snapfile::{restore, save, Restorer, TOKEN};

/// Keys written before the writer starts, each with a [`BIG`]-byte value, so that a snapshot
/// takes a while to stream.
const PRELOAD: usize = 150;
const BIG: usize = 8 * 1024;
/// Snapshots taken while the writer runs.
const SAVES: usize = 3;
/// Bounds on the writer, whatever happens.
const MAX_WRITES: u64 = 50_000;
const WRITER_LIMIT: Duration = Duration::from_secs(90);

fn preload_value(i: usize) -> String {
    format!("{i:04}-").repeat(BIG / 5)
}

fn key(i: u64) -> String {
    format!("w/{i:06}")
}

fn value(i: u64) -> String {
    format!("v{i}")
}

async fn connect(endpoint: &str) -> Result<KvClient<Channel>, String> {
    let ch = Channel::from_shared(format!("http://{endpoint}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .connect()
        .await
        .map_err(|e| format!("connect {endpoint}: {e}"))?;
    Ok(KvClient::new(ch))
}

async fn put(kv: &mut KvClient<Channel>, k: String, v: String) -> Result<i64, String> {
    let req = PutRequest {
        key: k.clone().into_bytes(),
        value: v.into_bytes(),
        ..Default::default()
    };
    let resp = kv.put(req).await.map_err(|e| format!("put {k}: {e}"))?;
    Ok(resp.into_inner().header.map_or(0, |h| h.revision))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The background writer; stopped and joined on drop.
struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    handle: Option<JoinHandle<Result<u64, String>>>,
}

impl Writer {
    /// Starts putting `w/i = v{i}` for i = 0, 1, ... against `endpoint`; each put's revision
    /// must be `base + i + 1`.
    fn start(endpoint: String, base: i64) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let (s, a) = (Arc::clone(&stop), Arc::clone(&acked));
        let handle = thread::spawn(move || {
            runtime().block_on(async move {
                let mut kv = connect(&endpoint).await?;
                let started = Instant::now();
                let mut i = 0u64;
                while !s.load(Ordering::SeqCst)
                    && i < MAX_WRITES
                    && started.elapsed() < WRITER_LIMIT
                {
                    let rev = put(&mut kv, key(i), value(i)).await?;
                    if rev != base + i as i64 + 1 {
                        return Err(format!("put {} got revision {rev}", key(i)));
                    }
                    i += 1;
                    a.store(i, Ordering::SeqCst);
                }
                Ok(i)
            })
        });
        Writer {
            stop,
            acked,
            handle: Some(handle),
        }
    }

    fn acked(&self) -> u64 {
        self.acked.load(Ordering::SeqCst)
    }

    /// Stops the writer; returns how many puts it got acknowledged.
    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        let h = self.handle.take().expect("writer running");
        match h.join() {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => panic!("writer failed: {e}"),
            Err(_) => panic!("writer thread panicked"),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[test]
fn snapshot_under_writes_is_one_point_in_time() {
    require_tools!();
    let source = Server::start(&kvd_bin());
    let base = runtime().block_on(async {
        let mut kv = connect(&source.endpoint()).await.expect("connect");
        let mut rev = 0;
        for i in 0..PRELOAD {
            rev = put(&mut kv, format!("p/{i:04}"), preload_value(i))
                .await
                .expect("preload");
        }
        rev
    });
    assert_eq!(base, 1 + PRELOAD as i64);

    let writer = Writer::start(source.endpoint(), base);
    let warm = eventually(Duration::from_secs(30), || {
        (writer.acked() >= 20).then_some(())
    });
    warm.expect("writer got 20 puts acknowledged within 30s");
    let files = new_temp_dir();
    let mut saved = Vec::new();
    for n in 0..SAVES {
        let path = files.path().join(format!("under-writes-{n}.db"));
        let before = writer.acked();
        save(&source, "", &path);
        let after = writer.acked();
        saved.push((path, before, after));
    }
    let total = writer.finish();
    eprintln!(
        "writer: {total} puts; saves (acked before, after): {:?}",
        saved.iter().map(|s| (s.1, s.2)).collect::<Vec<_>>()
    );
    drop(source);

    // Restore all saves side by side.
    let mut servers = Vec::new();
    for (path, before, after) in &saved {
        let p = path.display().to_string();
        let status = kvd_cli(&["snapshot", "status", &p, "-w", "json"])
            .ok()
            .json();
        let rev = status["revision"].as_i64().expect("status revision");
        let n = u64::try_from(rev - base).expect("snapshot revision below the preload");
        assert!(
            *before <= n && n <= after + 1,
            "{p}: snapshot holds {n} writes, but {before} were acknowledged before the save \
             and {after} after it"
        );
        let member = Member::new("restored");
        let dir = new_temp_dir();
        restore(
            Restorer::Kvd,
            path,
            &dir.path().join("data"),
            &member,
            &member.cluster_entry(),
            &[],
        )
        .ok();
        let cluster = member.cluster_entry();
        servers.push((
            p,
            n,
            Server::spawn_in(dir, &kvd_bin(), member, &cluster, TOKEN, ""),
        ));
    }
    for (p, n, s) in &mut servers {
        s.wait_ready();
        let n = *n;
        let got = s
            .ctl()
            .args(&["get", "w/", "--prefix", "-w", "json"])
            .run()
            .ok()
            .json();
        assert_eq!(
            header_revision(&got),
            base + n as i64,
            "{p}: store revision"
        );
        let got = kvs(&got);
        assert_eq!(got.len() as u64, n, "{p}: number of w/ keys");
        for (i, kv) in got.iter().enumerate() {
            let i = i as u64;
            assert_eq!(
                (kv.key.as_str(), kv.value.as_str(), kv.modified),
                (key(i).as_str(), value(i).as_str(), base + i as i64 + 1),
                "{p}: key {i} of a prefix of {n}"
            );
        }
        let pre = s
            .ctl()
            .args(&["get", "p/", "--prefix", "-w", "json"])
            .run()
            .ok()
            .json();
        let pre = kvs(&pre);
        assert_eq!(pre.len(), PRELOAD, "{p}: preloaded keys");
        for (i, kv) in pre.iter().enumerate() {
            assert_eq!(kv.value, preload_value(i), "{p}: value of {}", kv.key);
        }
    }
}
