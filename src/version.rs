//! The etcd version kvd reports: in `Status` (`etcdctl endpoint status`), `/version`, the
//! `etcd_server_version` and `etcd_cluster_version` metrics, and the cluster version recorded in
//! snapshots. Clients decide what to use by it (kube-apiserver, for one, reads it to decide
//! whether it may serve consistent reads from its watch cache), so it names the etcd release
//! whose behaviour kvd implements; README's "Version" section gives the reasoning.

/// The etcd server version kvd reports (`etcdserver` in `/version`).
pub const ETCD_VERSION: &str = "3.4.31";

/// The cluster version kvd reports (`etcdcluster` in `/version`, `clusterVersion` in
/// snapshots).
pub const ETCD_CLUSTER_VERSION: &str = "3.4.0";
