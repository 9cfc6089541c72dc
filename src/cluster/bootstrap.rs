//! How a member learns who it is when it starts: from its data dir (a restart, with
//! `--force-new-cluster` rewriting its log first), from an etcd data dir to import, from the
//! members of the cluster it joins (`--initial-cluster-state existing`), or from
//! `--initial-cluster` for a new cluster, with etcd's IDs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tracing::{info, warn};

use super::{cluster_id, Identity, Member};
use crate::apply::SharedState;
use crate::config::{ClusterState, Config};
use crate::raft::LogStore;
use crate::storage::{Engine, StateBatch, StorageError};

/// Why this member's identity could not be established.
#[derive(Debug, Error)]
pub enum BootstrapError {
    /// The data directory could not be read or written.
    #[error("cannot open data dir {path}: {reason}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The reason.
        reason: StorageError,
    },
    /// This member is not in the initial cluster.
    #[error("member {name} has no peer URL in --initial-cluster")]
    NotInCluster {
        /// The member name.
        name: String,
    },
    /// Joining an existing cluster failed.
    #[error("cannot join the existing cluster: {0}")]
    Join(String),
}

/// Who this member is, and how raft starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Established {
    /// This member's ID and its cluster's.
    pub identity: Identity,
    /// The voters of a cluster this start creates; empty on a restart or a join, where raft's
    /// log and snapshot say who votes.
    pub initial_voters: Vec<u64>,
}

impl Established {
    /// A member of a cluster that already exists (a restart or a join).
    fn member(identity: Identity) -> Self {
        Self {
            identity,
            initial_voters: Vec::new(),
        }
    }
}

/// Who this member is, and the voters of a cluster it creates (empty on a restart or join):
/// from the data dir, an etcd data dir to import (`etcd_db`, its `member/snap/db`), the
/// existing cluster (asked over `peer_tls` when set), or the initial-* flags. What it learns is
/// written to `engine` and `state` before it returns.
///
/// # Errors
/// Storage failures, a member missing from `--initial-cluster`, or an existing cluster that
/// does not answer or does not know this member.
pub async fn establish_identity(
    engine: &Engine,
    log: &LogStore,
    state: &SharedState,
    cfg: &Config,
    peer_tls: Option<Arc<rustls::ClientConfig>>,
    etcd_db: Option<&Path>,
) -> Result<Established, BootstrapError> {
    if let Some(db) = etcd_db {
        let established = import_etcd_data_dir(engine, db, cfg)?;
        state
            .reload_with(engine, || Ok(()))
            .map_err(storage_error(cfg))?;
        return Ok(established);
    }
    match Identity::load(engine).map_err(storage_error(cfg))? {
        Some(identity) => {
            info!("restarting from the data dir; --initial-cluster flags are ignored");
            if cfg.force_new_cluster {
                force_one_member(engine, log, identity.member_id, cfg)?;
            }
            Ok(Established::member(identity))
        }
        None if cfg.initial_cluster_state == ClusterState::Existing => {
            let identity = join_existing(engine, state, cfg, peer_tls).await?;
            Ok(Established::member(identity))
        }
        None => bootstrap_new(engine, state, cfg),
    }
}

/// `--initial-cluster` grouped by member name, in the order the names first appear.
fn group_initial_cluster(cfg: &Config) -> Vec<(String, Vec<String>)> {
    let mut by_name: Vec<(String, Vec<String>)> = Vec::new();
    for (name, url) in &cfg.initial_cluster {
        match by_name.iter_mut().find(|(n, _)| n == name) {
            Some((_, urls)) => urls.push(url.clone()),
            None => by_name.push((name.clone(), vec![url.clone()])),
        }
    }
    by_name
}

/// A storage failure in the data dir.
fn storage_error(cfg: &Config) -> impl Fn(StorageError) -> BootstrapError + '_ {
    move |source| BootstrapError::DataDir {
        path: cfg.data_dir.clone(),
        reason: source,
    }
}

/// The members `--initial-cluster` describes, with etcd's IDs derived from their peer URLs
/// and the token, and this member's identity among them.
fn initial_members(cfg: &Config) -> Result<(Vec<Member>, Identity), BootstrapError> {
    let members: Vec<Member> = group_initial_cluster(cfg)
        .into_iter()
        .map(|(name, urls)| Member::initial(name, urls, &cfg.initial_cluster_token))
        .collect();
    let me = members
        .iter()
        .find(|m| m.name == cfg.name)
        .map(|m| m.id)
        .ok_or_else(|| BootstrapError::NotInCluster {
            name: cfg.name.clone(),
        })?;
    let ids: Vec<u64> = members.iter().map(|m| m.id).collect();
    let identity = Identity {
        member_id: me,
        cluster_id: cluster_id(&ids),
    };
    Ok((members, identity))
}

/// A new cluster: members from `--initial-cluster`, IDs derived from peer URLs and the token.
fn bootstrap_new(
    engine: &Engine,
    state: &SharedState,
    cfg: &Config,
) -> Result<Established, BootstrapError> {
    let (members, identity) = initial_members(cfg)?;
    let ids: Vec<u64> = members.iter().map(|m| m.id).collect();
    let mut batch = StateBatch::default();
    {
        let mut membership = state.membership.write();
        membership.set_cluster_id(identity.cluster_id, &mut batch);
        for m in members {
            membership.upsert(m, &mut batch);
        }
    }
    crate::apply::write_applied_index(&mut batch, 1, 1);
    engine.apply_state(batch).map_err(storage_error(cfg))?;
    identity.save(engine).map_err(storage_error(cfg))?;
    Ok(Established {
        identity,
        initial_voters: ids,
    })
}

/// A data dir made by etcd (for example by `etcdctl snapshot restore`): kvd takes its keys,
/// leases, users and members from `member/snap/db` and starts the cluster they describe.
fn import_etcd_data_dir(
    engine: &Engine,
    db: &Path,
    cfg: &Config,
) -> Result<Established, BootstrapError> {
    let invalid = |detail: String| BootstrapError::DataDir {
        path: cfg.data_dir.clone(),
        reason: StorageError::Corrupt {
            what: format!("etcd database {}", db.display()),
            detail,
        },
    };
    let bytes = std::fs::read(db).map_err(|e| invalid(e.to_string()))?;
    let bolt = crate::bbolt::Db::read(&bytes).map_err(|e| invalid(e.to_string()))?;
    let backend =
        crate::etcd_snapshot::EtcdBackend::from_bolt(&bolt).map_err(|e| invalid(e.to_string()))?;
    // etcd keeps a restored member's new membership in its WAL, not in the database: the
    // members are the ones this member is started with, with etcd's IDs for them.
    let (members, identity) = initial_members(cfg)?;
    let ids: Vec<u64> = members.iter().map(|m| m.id).collect();
    crate::snapshot::import(
        engine,
        &backend,
        1,
        identity.cluster_id,
        crate::snapshot::MembershipSource::Fresh(members),
        None,
    )
    .map_err(storage_error(cfg))?;
    identity.save(engine).map_err(storage_error(cfg))?;
    info!(
        path = %db.display(),
        revision = backend.revision(),
        records = backend.kvs.len(),
        "imported an etcd data dir"
    );
    Ok(Established {
        identity,
        initial_voters: ids,
    })
}

/// `--force-new-cluster` on a member with data: its log is rewritten so that it restarts as
/// the only member of its cluster, with its keys, ID and cluster ID.
fn force_one_member(
    engine: &Engine,
    store: &LogStore,
    me: u64,
    cfg: &Config,
) -> Result<(), BootstrapError> {
    let applied = crate::apply::read_applied_index(engine).map_err(storage_error(cfg))?;
    let forced = crate::raft::force_new_cluster(store, me, applied).map_err(storage_error(cfg))?;
    if forced.removed.is_empty() && forced.discarded == 0 {
        info!("--force-new-cluster: this member already is the only member; nothing to change");
    } else {
        let removed: Vec<String> = forced.removed.iter().map(|id| format!("{id:x}")).collect();
        warn!(
            removed = removed.join(","),
            discarded_uncommitted_entries = forced.discarded,
            commit_index = forced.commit,
            "--force-new-cluster: starting as the only member of the cluster; the removed members must not be restarted with their old data (wipe them and add them again with `member add`)"
        );
    }
    Ok(())
}

/// Joining an existing cluster: the member was added with `member add`; ask the other members
/// who we are.
async fn join_existing(
    engine: &Engine,
    state: &SharedState,
    cfg: &Config,
    peer_tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Identity, BootstrapError> {
    let mine: Vec<String> = cfg.initial_advertise_peer_urls.clone();
    let others: Vec<String> = cfg
        .initial_cluster
        .iter()
        .filter(|(name, url)| *name != cfg.name && !mine.contains(url))
        .map(|(_, url)| url.clone())
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let answer = loop {
        if let Some(a) = crate::raft::transport::fetch_members(&others, peer_tls.clone()).await {
            break a;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(BootstrapError::Join(format!(
                "no member of the existing cluster answered at {}",
                others.join(",")
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut sorted_mine = mine.clone();
    sorted_mine.sort();
    let me = answer
        .members
        .iter()
        .find(|m| {
            let mut urls = m.peer_ur_ls.clone();
            urls.sort();
            urls == sorted_mine
        })
        .map(|m| m.id)
        .ok_or_else(|| {
            BootstrapError::Join(format!(
                "the cluster has no member with peer URLs {}; add it first with `etcdctl member add {} --peer-urls={}`",
                mine.join(","),
                cfg.name,
                mine.join(",")
            ))
        })?;
    let identity = Identity {
        member_id: me,
        cluster_id: answer.cluster_id,
    };
    let mut batch = StateBatch::default();
    {
        let mut membership = state.membership.write();
        membership.set_cluster_id(identity.cluster_id, &mut batch);
        for m in &answer.members {
            membership.upsert(
                Member {
                    id: m.id,
                    name: m.name.clone(),
                    peer_urls: m.peer_ur_ls.clone(),
                    client_urls: m.client_ur_ls.clone(),
                    is_learner: m.is_learner,
                },
                &mut batch,
            );
        }
    }
    engine.apply_state(batch).map_err(storage_error(cfg))?;
    identity.save(engine).map_err(storage_error(cfg))?;
    info!(
        member = format!("{me:x}"),
        cluster = format!("{:x}", identity.cluster_id),
        "joining the existing cluster"
    );
    Ok(identity)
}
