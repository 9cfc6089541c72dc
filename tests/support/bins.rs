//! Where the server and client binaries live.

use std::path::PathBuf;

/// The reference server: the real etcd 3.4.
pub fn etcd_bin() -> PathBuf {
    PathBuf::from("/usr/bin/etcd")
}

/// The real etcdctl 3.4 (`ETCDCTL_BIN` overrides the path).
pub fn etcdctl_bin() -> PathBuf {
    std::env::var_os("ETCDCTL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/etcdctl"))
}

/// Where etcd 3.5.1's binaries are installed (`scripts/install-etcd-3.5`); `ETCD35_DIR`
/// overrides it.
pub fn etcd35_dir() -> PathBuf {
    std::env::var_os("ETCD35_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/etcd-3.5.1"))
}

/// etcd 3.5.1, the second reference server.
pub fn etcd35_bin() -> PathBuf {
    etcd35_dir().join("etcd")
}

/// etcdctl 3.5.1.
pub fn etcdctl35_bin() -> PathBuf {
    etcd35_dir().join("etcdctl")
}

/// etcdutl 3.5.1 (snapshot status and restore moved there in 3.5).
pub fn etcdutl35_bin() -> PathBuf {
    etcd35_dir().join("etcdutl")
}

/// True when etcd 3.5.1's etcd, etcdctl and etcdutl are installed.
pub fn etcd35_present() -> bool {
    etcd35_bin().is_file() && etcdctl35_bin().is_file() && etcdutl35_bin().is_file()
}

/// Returns early from a test (after saying why) when etcd 3.5.1's binaries are not installed
/// (`scripts/install-etcd-3.5` installs them; `scripts/test-all` runs it). A suite that uses
/// it declares `#[macro_use] mod support;` before the modules with its tests.
macro_rules! require_etcd35 {
    () => {
        if !$crate::support::bins::etcd35_present() {
            eprintln!(
                "skipped: etcd 3.5.1 not installed (need {}; run scripts/install-etcd-3.5)",
                $crate::support::bins::etcd35_bin().display()
            );
            return;
        }
    };
}

/// The server under test: `KVD_BIN` if set (e.g. `/usr/bin/etcd`, to check the scenarios
/// themselves against the reference), else the `kvd` binary cargo built for this package.
/// A crate without a `kvd` binary (the scratch crate the etcdctl suite is also run in) falls
/// back to etcd; in this package cargo always provides the `kvd` binary.
pub fn kvd_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("KVD_BIN") {
        return PathBuf::from(p);
    }
    match option_env!("CARGO_BIN_EXE_kvd") {
        Some(p) => PathBuf::from(p),
        None => etcd_bin(),
    }
}
