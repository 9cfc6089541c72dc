//! The `kvd` binary: with no subcommand, an etcd-compatible server member taking etcd's flags,
//! `ETCD_*` variables and `--config-file`; `kvd pki ...` makes certificates. It parses the
//! configuration, sets up logging and runs [`kvd::server::start`] on it.

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::Context;
use kvd::config::{self, Config, Invocation};
use kvd::server;
use tracing::{info, warn};

/// mimalloc instead of the system allocator: a put allocates many small buffers (protobuf,
/// sled records, events) across threads, where glibc's malloc showed up as a fifth of the
/// server's CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
            println!("etcd API Version: {}", kvd::version::ETCD_VERSION);
            ExitCode::SUCCESS
        }
        Ok(Invocation::Help(text)) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Ok(Invocation::Run(cfg, warnings)) => {
            let notes = match kvd::logging::init(&cfg) {
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

fn run(cfg: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Blocking threads retire soon after their work (a range over a million keys, a
        // snapshot), so that the memory their allocator pages hold goes back to the system.
        .thread_keep_alive(BLOCKING_THREAD_KEEP_ALIVE)
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async move {
        let handle = server::start(cfg).await?;
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
