//! The `kvd` binary: with no subcommand, an etcd-compatible server member taking etcd's flags,
//! `ETCD_*` variables and `--config-file`; `kvd pki ...` makes certificates.

use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use kvd::api::Limits;
use kvd::config::{self, Config, Invocation};
use kvd::server::{self, AutoCompaction, Options};
use tracing::{info, warn};

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first().and_then(|a| a.to_str()) == Some("pki") {
        return exit(kvd::pki::run(args[1..].to_vec()));
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
            init_tracing(&cfg);
            for w in &warnings {
                warn!("{w}");
            }
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

fn init_tracing(cfg: &Config) {
    let level = match cfg.log_level.as_str() {
        "debug" => "debug",
        "warn" => "warn",
        "error" | "panic" | "fatal" => "error",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KVD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},raft=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if cfg.logger == config::Logger::Zap {
        builder.json().init();
    } else {
        builder.init();
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

fn options(cfg: &Config) -> anyhow::Result<Options> {
    let mut listen_client = Vec::new();
    for url in &cfg.listen_client_urls {
        if url.is_tls() {
            bail!(
                "--listen-client-urls {url}: TLS listeners are not supported by this kvd build yet"
            );
        }
        listen_client.push(resolve(url)?);
    }
    let mut listen_peer = Vec::new();
    for url in &cfg.listen_peer_urls {
        if url.is_tls() {
            bail!("--listen-peer-urls {url}: TLS listeners are not supported by this kvd build yet");
        }
        listen_peer.push(resolve(url)?);
    }
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
        initial_cluster_existing: cfg.initial_cluster_state == config::ClusterState::Existing,
        peer_client_tls: None,
        auto_compaction: cfg.auto_compaction.map(|a| match a {
            config::AutoCompaction::Periodic(d) => AutoCompaction::Periodic(d),
            config::AutoCompaction::Revision(n) => {
                AutoCompaction::Revision(i64::try_from(n).unwrap_or(i64::MAX))
            }
        }),
    })
}

fn run(cfg: Config) -> anyhow::Result<()> {
    let opts = options(&cfg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async move {
        let handle = server::start(opts).await?;
        let stopped = handle.stopped();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => info!("received interrupt signal, shutting down..."),
            _ = term.recv() => info!("received terminated signal, shutting down..."),
            () = stopped.cancelled() => warn!("server stopped"),
        }
        // A second signal forces the exit.
        tokio::spawn(async {
            let _ = tokio::signal::ctrl_c().await;
            std::process::exit(1);
        });
        handle.shutdown().await;
        Ok(())
    })
}
