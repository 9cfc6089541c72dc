//! Hostile connections: garbage on the client port, thousands of idle connections, a watcher
//! that never reads while others write a lot, and password guessing. The member stays up,
//! keeps its data and keeps serving everyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use kvd::proto::etcdserverpb::auth_client::AuthClient;
use kvd::proto::etcdserverpb::kv_client::KvClient;
use kvd::proto::etcdserverpb::watch_client::WatchClient;
use kvd::proto::etcdserverpb::watch_request::RequestUnion;
use kvd::proto::etcdserverpb::{
    AuthEnableRequest, AuthRoleAddRequest, AuthUserAddRequest, AuthUserGrantRoleRequest,
    AuthenticateRequest, PutRequest, WatchCreateRequest, WatchRequest,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::server::Server;

#[test]
fn garbage_on_the_client_port_is_dropped() {
    for (label, bin) in crate::servers() {
        crate::run("garbage", Duration::from_secs(60), async {
            let mut server = Server::start(label, &bin, &[]).await;
            let addr = server.member.endpoint();
            tokio::task::spawn_blocking(move || {
                let junk: [&[u8]; 4] = [
                    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage-not-tls",
                    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff\xff",
                    b"GET / HTTP/1.1\r\nHost: \xff\xfe\r\nContent-Length: -5\r\n\r\n",
                    &[0u8; 4096],
                ];
                for bytes in junk {
                    let mut s = TcpStream::connect(&addr).expect("connect");
                    s.set_read_timeout(Some(Duration::from_secs(10)))
                        .expect("timeout");
                    let _ = s.write_all(bytes);
                    let mut sink = Vec::new();
                    // the server answers or closes; either way the read ends
                    let _ = s.read_to_end(&mut sink);
                }
            })
            .await
            .expect("junk sent");
            server.assert_serving().await;
        });
    }
}

#[test]
fn thousands_of_idle_connections_do_not_stop_service() {
    const IDLE: usize = 2000;
    raise_fd_limit(IDLE as u64 * 2 + 1024);
    for (label, bin) in crate::servers() {
        crate::run("idle_connections", Duration::from_secs(90), async {
            let mut server = Server::start(label, &bin, &[]).await;
            let addr = server.member.endpoint();
            let idle = tokio::task::spawn_blocking(move || {
                (0..IDLE)
                    .map(|_| TcpStream::connect(&addr).expect("connect"))
                    .collect::<Vec<_>>()
            })
            .await
            .expect("connections opened");
            server.assert_serving().await;
            drop(idle);
            server.assert_serving().await;
        });
    }
}

fn raise_fd_limit(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_watcher_that_never_reads_does_not_hold_up_others() {
    const PUTS: usize = 400;
    for (label, bin) in crate::servers() {
        crate::run("stuck_watcher", Duration::from_secs(120), async {
            let mut server = Server::start(label, &bin, &[]).await;
            let watch = |ch| async move {
                let (tx, rx) = mpsc::channel(4);
                tx.send(WatchRequest {
                    request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                        key: b"flood/".to_vec(),
                        range_end: b"flood0".to_vec(),
                        ..Default::default()
                    })),
                })
                .await
                .expect("queue");
                let mut stream = WatchClient::new(ch)
                    .max_decoding_message_size(usize::MAX)
                    .watch(ReceiverStream::new(rx))
                    .await
                    .expect("watch")
                    .into_inner();
                assert!(
                    stream
                        .message()
                        .await
                        .expect("created")
                        .expect("open")
                        .created
                );
                (stream, tx)
            };
            // the stuck one: created, then never read again
            let (_stuck, _stuck_tx) = watch(server.channel().await).await;
            let (mut reader, _reader_tx) = watch(server.channel().await).await;
            let before = rss_kib(server.pid());
            let mut kv = KvClient::new(server.channel().await);
            let value = vec![b'v'; 64 * 1024];
            let mut last = 0;
            for i in 0..PUTS {
                last = kv
                    .put(PutRequest {
                        key: format!("flood/{i}").into_bytes(),
                        value: value.clone(),
                        ..Default::default()
                    })
                    .await
                    .unwrap_or_else(|e| panic!("{label}: put {i} with a stuck watcher: {e}"))
                    .into_inner()
                    .header
                    .expect("header")
                    .revision;
            }
            // the reading watcher gets every event
            let mut seen = 0;
            let deadline = Instant::now() + Duration::from_secs(60);
            while seen < PUTS {
                let resp = tokio::time::timeout_at(deadline.into(), reader.message())
                    .await
                    .unwrap_or_else(|_| panic!("{label}: reader saw {seen} of {PUTS}"))
                    .expect("stream")
                    .expect("open");
                seen += resp.events.len();
            }
            assert_eq!(seen, PUTS, "{label}");
            let grown_mib = rss_kib(server.pid()).saturating_sub(before) / 1024;
            eprintln!("[{label}] {PUTS} x 64 KiB written up to revision {last} with a stuck watcher: RSS +{grown_mib} MiB");
            // 25 MiB were written; what the stuck watcher is owed must not be held many times over
            assert!(grown_mib < 400, "{label}: RSS grew by {grown_mib} MiB");
            server.assert_serving().await;
        });
    }
}

#[test]
fn password_guessing_fails_every_guess_and_the_owner_still_gets_in() {
    for (label, bin) in crate::servers() {
        crate::run("password_guessing", Duration::from_secs(120), async {
            let mut server = Server::start(label, &bin, &[]).await;
            let ch = server.channel().await;
            let mut auth = AuthClient::new(ch.clone());
            auth.user_add(AuthUserAddRequest {
                name: "root".into(),
                password: "s3cret".into(),
                ..Default::default()
            })
            .await
            .expect("user add");
            auth.role_add(AuthRoleAddRequest {
                name: "root".into(),
            })
            .await
            .expect("role add");
            auth.user_grant_role(AuthUserGrantRoleRequest {
                user: "root".into(),
                role: "root".into(),
            })
            .await
            .expect("grant");
            auth.auth_enable(AuthEnableRequest {})
                .await
                .expect("auth enable");
            let mut guesses = Vec::new();
            for i in 0..40 {
                let mut auth = AuthClient::new(ch.clone());
                guesses.push(tokio::spawn(async move {
                    auth.authenticate(AuthenticateRequest {
                        name: "root".into(),
                        password: format!("guess{i}"),
                    })
                    .await
                }));
            }
            for g in guesses {
                let refused = g.await.expect("task").expect_err("a wrong password");
                assert_eq!(
                    (refused.code(), refused.message()),
                    (
                        Code::InvalidArgument,
                        "etcdserver: authentication failed, invalid user ID or password"
                    ),
                    "{label}"
                );
            }
            let token = auth
                .authenticate(AuthenticateRequest {
                    name: "root".into(),
                    password: "s3cret".into(),
                })
                .await
                .unwrap_or_else(|e| panic!("{label}: the right password after guessing: {e}"))
                .into_inner()
                .token;
            let mut request = tonic::Request::new(PutRequest {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                ..Default::default()
            });
            request
                .metadata_mut()
                .insert("token", token.parse().expect("ascii"));
            KvClient::new(ch)
                .put(request)
                .await
                .unwrap_or_else(|e| panic!("{label}: put with the owner's token: {e}"));
            assert!(server.log().len() < 5 << 20, "{label}: log flooded");
            let _ = &mut server;
        });
    }
}
