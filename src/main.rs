//! The `kvd` binary: with no subcommand, an etcd-compatible server member taking etcd's flags,
//! `ETCD_*` variables and `--config-file`; `kvd pki ...` makes certificates.

use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use kvd::api::Limits;
use kvd::config::{self, Config, Invocation};
use kvd::server::{self, Listen, Options};
use kvd::tls::{ListenerKind, ServerTls, TlsOptions};

/// mimalloc instead of the system allocator: a put allocates many small buffers (protobuf,
/// sled records, events) across threads, where glibc's malloc showed up as a fifth of the
/// server's CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::sync::Arc;
use tracing::{info, warn};

/// How long an idle thread of the runtime's blocking pool waits for more work before it exits.
const BLOCKING_THREAD_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(2);

/// How often freed memory the allocator still holds is offered back to the system.
const ALLOCATOR_PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts the thread that returns the allocator's free memory to the system once a second.
///
/// mimalloc gives back freed pages only when its threads allocate again, after a delay; after
/// a large response (every key of a million, a snapshot) the server may then idle with
/// hundreds of MiB freed but still resident. A collection pass from this thread purges what
/// the delay has passed for, process-wide.
fn start_allocator_purge() {
    let spawned = std::thread::Builder::new()
        .name("allocator-purge".into())
        .spawn(|| loop {
            std::thread::sleep(ALLOCATOR_PURGE_INTERVAL);
            // SAFETY: mi_collect takes no arguments that point anywhere; mimalloc allows it
            // from any thread at any time.
            unsafe { libmimalloc_sys::mi_collect(true) };
        });
    if let Err(e) = spawned {
        warn!(error = %e, "cannot start the allocator purge thread; freed memory is returned later");
    }
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match args.first().and_then(|a| a.to_str()) {
        Some("pki") => return exit(kvd::pki::run(args[1..].to_vec())),
        Some("snapshot") => return exit(kvd::snapshot_cli::run(args[1..].to_vec())),
        _ => {}
    }
    // Non-UTF-8 variables cannot be etcd settings; skip them instead of panicking.
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    match config::load(&args, &env) {
        Err(e) => {
            eprintln!("{e}");
            exit(e.exit_code())
        }
        Ok(Invocation::Version) => {
            println!("kvd Version: {}", env!("CARGO_PKG_VERSION"));
            println!("etcd API Version: {}", kvd::api::core::ETCD_VERSION);
            ExitCode::SUCCESS
        }
        Ok(Invocation::Help(text)) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Ok(Invocation::Run(cfg, warnings)) => {
            let notes = match kvd::logging::init(&kvd::logging::LogSettings {
                logger: cfg.logger,
                level: cfg.log_level.clone(),
                outputs: cfg.log_outputs.clone(),
                format: cfg.log_format,
            }) {
                Ok(notes) => notes,
                Err(e) => {
                    eprintln!("kvd: {e}");
                    return ExitCode::from(1);
                }
            };
            for n in &notes {
                info!("{n}");
            }
            for w in &warnings {
                warn!("{w}");
            }
            #[cfg(feature = "failpoints")]
            let _failpoints = kvd::failpoints::setup();
            start_allocator_purge();
            match run(*cfg) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("kvd: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// Resolves a listen URL's host to one socket address (`localhost` -> 127.0.0.1, as etcd binds).
fn resolve(url: &config::ListenUrl) -> anyhow::Result<SocketAddr> {
    let bind = url
        .bind_address()
        .ok_or_else(|| anyhow!("{url}: unix sockets are not supported yet"))?;
    let addrs: Vec<SocketAddr> = bind
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve listen URL {url}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| anyhow!("listen URL {url} resolves to no address"))
}

/// `unix://` client URLs (plain); `unixs://` is refused with a clear message.
fn unix_sockets(urls: &[config::ListenUrl]) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for url in urls.iter().filter(|u| u.is_unix()) {
        if url.is_tls() {
            anyhow::bail!(
                "--listen-client-urls {url}: TLS on unix sockets (unixs://) is not supported; use unix:// or an https URL"
            );
        }
        let path = url
            .path
            .clone()
            .ok_or_else(|| anyhow!("--listen-client-urls {url}: no socket path"))?;
        out.push(path);
    }
    Ok(out)
}

fn listens(urls: &[config::ListenUrl]) -> anyhow::Result<Vec<Listen>> {
    urls.iter()
        .filter(|url| !url.is_unix())
        .map(|url| {
            Ok(Listen {
                addr: resolve(url)?,
                tls: url.is_tls(),
            })
        })
        .collect()
}

/// Hosts an auto-TLS certificate must name: every listen and advertise host.
fn tls_hosts(listen: &[config::ListenUrl], advertise: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = listen.iter().map(|u| u.host.clone()).collect();
    for a in advertise {
        if let Ok(u) = url::Url::parse(a) {
            if let Some(h) = u.host_str() {
                hosts.push(h.trim_matches(|c| c == '[' || c == ']').to_string());
            }
        }
    }
    hosts.sort();
    hosts.dedup();
    hosts
}

fn tls_options(cfg: &Config) -> TlsOptions {
    TlsOptions {
        cipher_suites: cfg.cipher_suites.clone(),
        min_version: cfg.tls_min_version,
        max_version: cfg.tls_max_version,
        self_signed_cert_validity_years: cfg.self_signed_cert_validity,
        ..TlsOptions::default()
    }
}

fn options(cfg: &Config) -> anyhow::Result<Options> {
    let listen_client = listens(&cfg.listen_client_urls)?;
    let listen_client_http = listens(&cfg.listen_client_http_urls)?;
    let listen_metrics = listens(&cfg.listen_metrics_urls)?;
    let listen_peer = listens(&cfg.listen_peer_urls)?;
    let tls_opts = tls_options(cfg);
    // The HTTP-only and metrics listeners serve with the client port's TLS set-up, as in etcd.
    let client_port_tls = listen_client
        .iter()
        .chain(&listen_client_http)
        .chain(&listen_metrics)
        .any(|l| l.tls);
    let client_tls = if client_port_tls {
        let listen_urls: Vec<config::ListenUrl> = cfg
            .listen_client_urls
            .iter()
            .chain(&cfg.listen_client_http_urls)
            .chain(&cfg.listen_metrics_urls)
            .cloned()
            .collect();
        let hosts = tls_hosts(&listen_urls, &cfg.advertise_client_urls);
        Some(ServerTls::new(
            ListenerKind::Client,
            &cfg.client_tls,
            &tls_opts,
            &cfg.data_dir,
            &hosts,
        )?)
    } else {
        None
    };
    let peer_hosts = tls_hosts(&cfg.listen_peer_urls, &cfg.initial_advertise_peer_urls);
    let peer_tls = if listen_peer.iter().any(|l| l.tls) {
        Some(ServerTls::new(
            ListenerKind::Peer,
            &cfg.peer_tls,
            &tls_opts,
            &cfg.data_dir,
            &peer_hosts,
        )?)
    } else {
        None
    };
    let peer_material =
        cfg.peer_tls.has_cert() || cfg.peer_tls.auto_tls || cfg.peer_tls.trusted_ca_file.is_some();
    let peer_dial_tls = match &peer_tls {
        Some(t) => Some(t.client_config()),
        None if peer_material => Some(Arc::new(kvd::tls::client_config(
            ListenerKind::Peer,
            &cfg.peer_tls,
            &tls_opts,
            &cfg.data_dir,
            &peer_hosts,
        )?)),
        None => None,
    };
    let quota_bytes = cfg.backend_quota().unwrap_or(u64::MAX);
    Ok(Options {
        name: cfg.name.clone(),
        data_dir: cfg.data_dir.clone(),
        listen_client,
        advertise_client_urls: cfg.advertise_client_urls.clone(),
        advertise_peer_urls: cfg.initial_advertise_peer_urls.clone(),
        initial_cluster: cfg.initial_cluster.clone(),
        initial_cluster_token: cfg.initial_cluster_token.clone(),
        heartbeat: cfg.heartbeat_interval,
        election_timeout: cfg.election_timeout,
        snapshot_count: cfg.snapshot_count,
        limits: Limits {
            max_request_bytes: usize::try_from(cfg.max_request_bytes).unwrap_or(usize::MAX),
            max_txn_ops: cfg.max_txn_ops as usize,
            quota_bytes,
        },
        listen_peer,
        listen_client_unix: unix_sockets(&cfg.listen_client_urls)?,
        initial_cluster_existing: cfg.initial_cluster_state == config::ClusterState::Existing,
        force_new_cluster: cfg.force_new_cluster,
        client_tls,
        peer_tls,
        peer_dial_tls,
        enable_gateway: cfg.enable_grpc_gateway,
        auth: kvd::auth::AuthOptions::from_flags(
            &cfg.auth_token,
            cfg.auth_token_ttl,
            cfg.bcrypt_cost,
            cfg.client_tls.client_cert_auth,
        )?,
        listen_client_http,
        listen_metrics,
        metrics_extensive: cfg.metrics == "extensive",
        warning_apply_duration: cfg.experimental_warning_apply_duration,
        backend_cache_bytes: cfg.backend_cache_bytes,
        auto_compaction: cfg.auto_compaction,
    })
}

fn run(cfg: Config) -> anyhow::Result<()> {
    let opts = options(&cfg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Blocking threads retire soon after their work (a range over a million keys, a
        // snapshot), so that the memory their allocator pages hold goes back to the system.
        .thread_keep_alive(BLOCKING_THREAD_KEEP_ALIVE)
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async move {
        let handle = server::start(opts).await?;
        let stopped = handle.stopped();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        // Stopping on its own (raft failed, or this member was removed) is an error exit.
        let failed = tokio::select! {
            _ = tokio::signal::ctrl_c() => { info!("received interrupt signal, shutting down..."); false }
            _ = term.recv() => { info!("received terminated signal, shutting down..."); false }
            () = stopped.cancelled() => { warn!("server stopped"); true }
        };
        // A second signal forces the exit.
        tokio::spawn(async {
            let _ = tokio::signal::ctrl_c().await;
            std::process::exit(1);
        });
        handle.shutdown().await;
        if failed {
            anyhow::bail!("the member stopped; see the log above for why");
        }
        Ok(())
    })
}
