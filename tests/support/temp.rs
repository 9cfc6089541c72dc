//! Temp dirs for servers, logs and files a test writes.

/// A fresh temp dir whose name starts with `prefix`; removed on drop.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create temp dir")
}
