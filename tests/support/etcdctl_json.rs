//! Reading `etcdctl -w json` output.

use base64::Engine as _;
use serde_json::Value;

/// Decodes etcdctl's base64 (keys/values in `-w json`) to a lossy UTF-8 string.
pub fn b64(v: &Value) -> String {
    let s = v.as_str().unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_else(|e| panic!("bad base64 {s:?}: {e}"));
    String::from_utf8_lossy(&bytes).into_owned()
}

/// One key-value from `-w json` output; absent numeric fields are 0 as in etcd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kv {
    /// Decoded key.
    pub key: String,
    /// Decoded value.
    pub value: String,
    /// `create_revision`.
    pub create: i64,
    /// `mod_revision`.
    pub modified: i64,
    /// `version`.
    pub version: i64,
    /// `lease` (0 = none).
    pub lease: i64,
}

fn num(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(Value::as_i64).unwrap_or(0)
}

/// The key-values under `field` of a response: a list (`kvs`, `prev_kvs`) or a single one
/// (`prev_kv`).
pub fn kvs_in(v: &Value, field: &str) -> Vec<Kv> {
    let arr = match v.get(field) {
        Some(Value::Array(a)) => a.clone(),
        Some(o @ Value::Object(_)) => vec![o.clone()],
        _ => Vec::new(),
    };
    arr.iter()
        .map(|kv| Kv {
            key: b64(kv.get("key").unwrap_or(&Value::Null)),
            value: kv.get("value").map(b64).unwrap_or_default(),
            create: num(kv, "create_revision"),
            modified: num(kv, "mod_revision"),
            version: num(kv, "version"),
            lease: num(kv, "lease"),
        })
        .collect()
}

/// `kvs` of a `get -w json` response.
pub fn kvs(v: &Value) -> Vec<Kv> {
    kvs_in(v, "kvs")
}

/// `header.revision` of a `-w json` response.
pub fn header_revision(v: &Value) -> i64 {
    v.get("header")
        .and_then(|h| h.get("revision"))
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("no header.revision in {v}"))
}

/// Parses the lease id out of `lease <hex> granted with TTL(Ns)`.
#[track_caller]
pub fn lease_id(grant_stdout: &str) -> String {
    let mut it = grant_stdout.split_whitespace();
    assert_eq!(
        it.next(),
        Some("lease"),
        "unexpected grant output {grant_stdout:?}"
    );
    let id = it.next().expect("lease id").to_string();
    assert!(
        id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "lease id not %016x: {grant_stdout:?}"
    );
    id
}
