//! What `etcdctl snapshot status` computes and prints for a snapshot file.
//!
//! etcdctl 3.4 opens the file as a bbolt database (a trailer past the last page is ignored) and
//! runs bbolt's consistency check. It then walks the top-level buckets in order, feeding a CRC-32
//! (Castagnoli) with each bucket's name and then every key and value directly in it (a nested
//! bucket's value counts as empty), counting those entries as TOTAL KEYS and taking REVISION as
//! the main revision of the last key in the `key` bucket. TOTAL SIZE is bbolt's size of the
//! database: pages in use times page size.

use std::fmt::Write as _;
use std::str::FromStr;

use super::keys::{bucket_names, Revision, REV_KEY_LEN};
use super::SnapshotError;
use crate::bbolt::{Db, Entry};
use crate::crc32c::Crc32c;

/// The figures `etcdctl snapshot status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotStatus {
    /// CRC-32C over bucket names, keys and values (HASH).
    pub hash: u32,
    /// The main revision of the last `key` bucket record (REVISION).
    pub revision: i64,
    /// Entries in all top-level buckets (TOTAL KEYS).
    pub total_key: u64,
    /// The database size: pages in use times page size (TOTAL SIZE).
    pub total_size: u64,
}

/// Computes the status of a snapshot file (or a bare database file) as etcdctl 3.4 does. The
/// sha256 trailer is not checked, as etcdctl does not check it here.
///
/// # Errors
///
/// [`SnapshotError::Bolt`] when the file is not a sound bbolt database; [`SnapshotError::BadRecord`]
/// when a `key` bucket key is too short to hold a revision.
pub fn status(bytes: &[u8]) -> Result<SnapshotStatus, SnapshotError> {
    SnapshotStatus::of(&Db::read(bytes)?)
}

impl SnapshotStatus {
    /// Computes the status of a database read from a file (its size comes from
    /// [`Db::info`](crate::bbolt::Db::info)).
    ///
    /// # Errors
    ///
    /// [`SnapshotError::BadRecord`] when a `key` bucket key is too short to hold a revision.
    pub fn of(db: &Db) -> Result<SnapshotStatus, SnapshotError> {
        let mut crc = Crc32c::new();
        let mut revision = 0;
        let mut total_key = 0u64;
        for (name, bucket) in &db.buckets {
            crc.update(name);
            let is_key = name.as_slice() == bucket_names::KEY;
            for (k, entry) in &bucket.entries {
                crc.update(k);
                if let Entry::Value(v) = entry {
                    crc.update(v);
                }
                if is_key {
                    if k.len() < REV_KEY_LEN {
                        return Err(SnapshotError::BadRecord {
                            bucket: "key".into(),
                            key: super::backend::text(k),
                            reason: format!("revision key is {} bytes, expected 17", k.len()),
                        });
                    }
                    revision = Revision::from_key_prefix(k).main;
                }
                total_key += 1;
            }
        }
        Ok(SnapshotStatus {
            hash: crc.finish(),
            revision,
            total_key,
            total_size: db.info.size(),
        })
    }

    /// The output of `etcdctl snapshot status -w FORMAT`, final newline included.
    pub fn render(&self, format: StatusFormat) -> String {
        let size = human_bytes(self.total_size);
        match format {
            StatusFormat::Simple => format!(
                "{:x}, {}, {}, {}\n",
                self.hash, self.revision, self.total_key, size
            ),
            StatusFormat::Json => format!(
                "{{\"hash\":{},\"revision\":{},\"totalKey\":{},\"totalSize\":{}}}\n",
                self.hash, self.revision, self.total_key, self.total_size
            ),
            StatusFormat::Fields => format!(
                "\"Hash\" : {}\n\"Revision\" : {}\n\"Keys\" : {}\n\"Size\" : {}\n",
                self.hash, self.revision, self.total_key, self.total_size
            ),
            StatusFormat::Table => table(
                &["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"],
                &[
                    format!("{:x}", self.hash),
                    self.revision.to_string(),
                    self.total_key.to_string(),
                    size,
                ],
            ),
        }
    }
}

/// etcdctl's `-w` output formats that `snapshot status` supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusFormat {
    /// `hash, revision, total keys, total size` on one line (the default).
    #[default]
    Simple,
    /// A bordered table.
    Table,
    /// One JSON object.
    Json,
    /// `"Name" : value` lines.
    Fields,
}

/// A `-w` value `snapshot status` cannot print.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported output format {0:?} for snapshot status (use simple, table, json or fields)")]
pub struct UnsupportedFormat(pub String);

impl FromStr for StatusFormat {
    type Err = UnsupportedFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "simple" => Ok(Self::Simple),
            "table" => Ok(Self::Table),
            "json" => Ok(Self::Json),
            "fields" => Ok(Self::Fields),
            other => Err(UnsupportedFormat(other.to_owned())),
        }
    }
}

/// A one-row table as etcdctl draws it: headers centred, cells right-aligned, `+`/`-`/`|` borders.
fn table(headers: &[&str], row: &[String]) -> String {
    let widths: Vec<usize> = headers
        .iter()
        .zip(row)
        .map(|(h, c)| h.chars().count().max(c.chars().count()))
        .collect();
    let mut line = String::from("+");
    for w in &widths {
        line.push_str(&"-".repeat(w + 2));
        line.push('+');
    }
    line.push('\n');

    let mut out = line.clone();
    out.push('|');
    for (h, w) in headers.iter().zip(&widths) {
        let gap = w - h.chars().count();
        let left = gap / 2;
        let _ = write!(
            out,
            " {}{}{} |",
            " ".repeat(left),
            h,
            " ".repeat(gap - left)
        );
    }
    out.push('\n');
    out.push_str(&line);
    out.push('|');
    for (c, w) in row.iter().zip(&widths) {
        let _ = write!(out, " {c:>w$} |");
    }
    out.push('\n');
    out.push_str(&line);
    out
}

/// A size in SI units as etcdctl prints it (go-humanize's `Bytes`): `9 B`, `25 kB`, `1.2 MB`.
/// The float arithmetic is go-humanize's, so that rounding agrees.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // e is 1..=6 for s >= 10
pub(super) fn human_bytes(s: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if s < 10 {
        return format!("{s} B");
    }
    let f = s as f64;
    let e = (f.ln() / 1000f64.ln()).floor();
    let unit = UNITS[(e as usize).min(UNITS.len() - 1)];
    let val = (f / 1000f64.powf(e) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1} {unit}")
    } else {
        format!("{val:.0} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        let mut c = Crc32c::new();
        c.update(b"1234");
        c.update(b"56789");
        assert_eq!(c.finish(), 0xE306_9283);
        assert_eq!(Crc32c::new().finish(), 0);
    }

    #[test]
    fn human_bytes_like_go_humanize() {
        for (n, want) in [
            (0, "0 B"),
            (9, "9 B"),
            (10, "10 B"),
            (999, "999 B"),
            (1000, "1.0 kB"),
            (16_384, "16 kB"),
            (20_480, "20 kB"),
            (24_576, "25 kB"),
            (24_500, "24 kB"), // 24.5 rounds to even, as Go's %.0f does
            (25_500, "26 kB"),
            (9_960, "10 kB"),
            (1_230_000, "1.2 MB"),
            (22_016_000, "22 MB"),
            (82_854_982, "83 MB"),
            (1_000_000_000_000, "1.0 TB"),
        ] {
            assert_eq!(human_bytes(n), want, "{n}");
        }
    }

    #[test]
    fn renders_like_etcdctl() {
        // Output of etcdctl 3.4.23 for a real snapshot.
        let s = SnapshotStatus {
            hash: 2_236_481_266,
            revision: 9016,
            total_key: 18_026,
            total_size: 22_016_000,
        };
        assert_eq!(
            s.render(StatusFormat::Json),
            "{\"hash\":2236481266,\"revision\":9016,\"totalKey\":18026,\"totalSize\":22016000}\n"
        );
        assert_eq!(
            s.render(StatusFormat::Table),
            "+----------+----------+------------+------------+\n\
             |   HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |\n\
             +----------+----------+------------+------------+\n\
             | 854dfef2 |     9016 |      18026 |      22 MB |\n\
             +----------+----------+------------+------------+\n"
        );
        assert_eq!(
            s.render(StatusFormat::Simple),
            "854dfef2, 9016, 18026, 22 MB\n"
        );
        assert_eq!(
            s.render(StatusFormat::Fields),
            "\"Hash\" : 2236481266\n\"Revision\" : 9016\n\"Keys\" : 18026\n\"Size\" : 22016000\n"
        );
    }

    #[test]
    fn formats_parse() {
        assert_eq!("table".parse(), Ok(StatusFormat::Table));
        assert_eq!("json".parse(), Ok(StatusFormat::Json));
        assert_eq!("simple".parse(), Ok(StatusFormat::Simple));
        assert_eq!("fields".parse(), Ok(StatusFormat::Fields));
        let err = "protobuf".parse::<StatusFormat>().expect_err("unsupported");
        assert!(err.to_string().contains("protobuf"));
    }
}
