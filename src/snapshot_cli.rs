//! `kvd snapshot status|restore`: etcd-format snapshot files from the command line, with
//! etcdctl 3.4's flags. A restore builds a kvd data dir from an etcd or kvd snapshot, with a fresh
//! membership, as `etcdctl snapshot restore` builds an etcd one.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::cluster::{cluster_id, Identity, Member};
use crate::etcd_snapshot::{self, ParseOptions, StatusFormat};
use crate::raft::LogBatch;
use crate::raft::LogStore;
use crate::snapshot::{self, MembershipSource};
use crate::storage::{wal_dir, Engine};

/// `kvd snapshot`.
#[derive(Debug, Parser)]
#[command(
    name = "kvd snapshot",
    about = "Inspect and restore etcd-format snapshot files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prints the hash, revision, total keys and size of a snapshot file (as etcdctl does).
    Status {
        /// The snapshot file.
        file: PathBuf,
        /// Output format: simple, table, json or fields.
        #[arg(short = 'w', long = "write-out", default_value = "simple")]
        write_out: String,
    },
    /// Builds a kvd data dir from an etcd (3.4/3.5) or kvd snapshot.
    Restore {
        /// The snapshot file.
        file: PathBuf,
        /// The data dir to create (default: NAME.etcd).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// This member's name.
        #[arg(long, default_value = "default")]
        name: String,
        /// The new cluster: NAME=PEER-URL,...
        #[arg(long, default_value = "default=http://localhost:2380")]
        initial_cluster: String,
        /// The new cluster's token.
        #[arg(long, default_value = "etcd-cluster")]
        initial_cluster_token: String,
        /// This member's peer URLs.
        #[arg(long, default_value = "http://localhost:2380")]
        initial_advertise_peer_urls: String,
        /// Accept a file without etcd's sha256 trailer (a db copied from a data dir).
        #[arg(long)]
        skip_hash_check: bool,
    },
}

/// Runs `kvd snapshot` with the arguments after `snapshot`; returns the exit code.
pub fn run(args: Vec<OsString>) -> i32 {
    let argv = std::iter::once(OsString::from("kvd snapshot")).chain(args);
    let cli = match Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let result = match cli.command {
        Command::Status { file, write_out } => status(&file, &write_out),
        Command::Restore {
            file,
            data_dir,
            name,
            initial_cluster,
            initial_cluster_token,
            initial_advertise_peer_urls,
            skip_hash_check,
        } => {
            let data_dir = data_dir.unwrap_or_else(|| PathBuf::from(format!("{name}.etcd")));
            restore(&RestoreArgs {
                file: &file,
                data_dir: &data_dir,
                name: &name,
                initial_cluster: &initial_cluster,
                token: &initial_cluster_token,
                peer_urls: &initial_advertise_peer_urls,
                skip_hash_check,
            })
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}

fn read(file: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(file).map_err(|e| format!("cannot read snapshot {}: {e}", file.display()))
}

fn status(file: &Path, write_out: &str) -> Result<(), String> {
    let format: StatusFormat = write_out.parse().map_err(|e| format!("{e}"))?;
    let bytes = read(file)?;
    // Stricter than etcdctl, which reports on any bbolt file: a file that carries etcd's sha256
    // trailer must match it, and the database must have etcd's buckets.
    let st = etcd_snapshot::status(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    let has_trailer = bytes.len() % 512 == etcd_snapshot::SHA256_TRAILER_LEN;
    let opts = ParseOptions {
        skip_hash_check: !has_trailer,
    };
    etcd_snapshot::parse_snapshot_file_with(&bytes, opts)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    print!("{}", st.render(format));
    Ok(())
}

struct RestoreArgs<'a> {
    file: &'a Path,
    data_dir: &'a Path,
    name: &'a str,
    initial_cluster: &'a str,
    token: &'a str,
    peer_urls: &'a str,
    skip_hash_check: bool,
}

fn parse_cluster(spec: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for part in spec.split(',').filter(|p| !p.is_empty()) {
        let (name, url) = part
            .split_once('=')
            .ok_or_else(|| format!("--initial-cluster: {part:?} is not NAME=URL"))?;
        match out.iter_mut().find(|(n, _)| n == name) {
            Some((_, urls)) => urls.push(url.to_string()),
            None => out.push((name.to_string(), vec![url.to_string()])),
        }
    }
    Ok(out)
}

fn restore(a: &RestoreArgs<'_>) -> Result<(), String> {
    if a.data_dir.exists() {
        return Err(format!(
            "data-dir {:?} exists",
            a.data_dir.display().to_string()
        ));
    }
    // Everything is checked before anything is written.
    let bytes = read(a.file)?;
    let opts = ParseOptions {
        skip_hash_check: a.skip_hash_check,
    };
    let backend = etcd_snapshot::parse_snapshot_file_with(&bytes, opts)
        .map_err(|e| format!("{}: {e}", a.file.display()))?;
    let cluster = parse_cluster(a.initial_cluster)?;
    let mut mine: Vec<String> = a.peer_urls.split(',').map(str::to_string).collect();
    mine.sort();
    let members: Vec<Member> = cluster
        .into_iter()
        .map(|(name, urls)| Member::initial(name, urls, a.token))
        .collect();
    let me = members
        .iter()
        .find(|m| m.name == a.name)
        .ok_or_else(|| format!("--initial-cluster has no member named {:?}", a.name))?;
    let mut theirs = me.peer_urls.clone();
    theirs.sort();
    if theirs != mine {
        return Err(format!(
            "--initial-cluster must include {}={} given --initial-advertise-peer-urls={}",
            a.name, a.peer_urls, a.peer_urls
        ));
    }
    let ids: Vec<u64> = members.iter().map(|m| m.id).collect();
    let identity = Identity {
        member_id: me.id,
        cluster_id: cluster_id(&ids),
    };
    let written = write_data_dir(a.data_dir, &backend, identity, members, &ids);
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(a.data_dir);
        return Err(e);
    }
    println!(
        "restored snapshot {} into {} (revision {}, {} key revisions, member {:x}, cluster {:x})",
        a.file.display(),
        a.data_dir.display(),
        backend.revision(),
        backend.kvs.len(),
        identity.member_id,
        identity.cluster_id
    );
    Ok(())
}

fn write_data_dir(
    data_dir: &Path,
    backend: &etcd_snapshot::EtcdBackend,
    identity: Identity,
    members: Vec<Member>,
    ids: &[u64],
) -> Result<(), String> {
    let db_dir = data_dir.join("member").join("kvd");
    std::fs::create_dir_all(&db_dir)
        .map_err(|e| format!("cannot create {}: {e}", db_dir.display()))?;
    let fail = |e: crate::storage::StorageError| format!("cannot write {}: {e}", db_dir.display());
    let engine = Engine::open(&db_dir).map_err(fail)?;
    snapshot::import(
        &engine,
        backend,
        1,
        identity.cluster_id,
        MembershipSource::Fresh(members),
        None,
    )
    .map_err(fail)?;
    let log = LogStore::open(&wal_dir(&db_dir), None).map_err(fail)?;
    let mut batch = LogBatch::default();
    log.bootstrap_voters(ids, &mut batch);
    log.write(batch);
    log.sync().map_err(fail)?;
    identity.save(&engine).map_err(fail)?;
    engine.flush().map_err(fail)
}
