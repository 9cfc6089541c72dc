//! Normalisation of etcdctl output for differential comparison.
//!
//! Two servers legitimately differ in cluster/member ids, lease ids, raft terms and
//! indexes, db sizes, version strings, hashes, ports, temp paths and timings. This module
//! rewrites those to placeholders and keeps everything a client relies on: revisions,
//! versions, keys, values, counts, error texts. Known ids (the member, the cluster, every
//! lease granted in a transcript) become numbered placeholders such as `<lease2>`, so the
//! comparison still checks *which* lease a line talks about.

use serde_json::Value;

/// Ids seen so far in one transcript, each with its placeholder.
#[derive(Default, Clone, Debug)]
pub struct Ids {
    known: Vec<(u64, String)>,
}

impl Ids {
    /// Registers `id` under `<{kind}{n}>` (n counts per kind from 1); returns the placeholder.
    pub fn add(&mut self, id: u64, kind: &str) -> String {
        if let Some(p) = self.get(id) {
            return p.to_string();
        }
        let n = self
            .known
            .iter()
            .filter(|(_, p)| p.starts_with(&format!("<{kind}")))
            .count()
            + 1;
        let p = format!("<{kind}{n}>");
        self.known.push((id, p.clone()));
        p
    }

    /// Placeholder of a known id.
    pub fn get(&self, id: u64) -> Option<&str> {
        self.known
            .iter()
            .find(|(k, _)| *k == id)
            .map(|(_, p)| p.as_str())
    }

    fn id_or(&self, id: u64, fallback: &str) -> String {
        self.get(id)
            .map(str::to_string)
            .unwrap_or_else(|| fallback.to_string())
    }
}

/// Normalises one command's stdout or (filtered) stderr.
pub fn normalize(text: &str, ids: &Ids) -> String {
    let mut out = Vec::new();
    let mut headers: Option<Vec<String>> = None;
    for line in text.lines() {
        let line = line.trim_end();
        let t = line.trim_start();
        if t.starts_with('{') || t.starts_with('[') {
            if let Ok(v) = serde_json::from_str::<Value>(t) {
                out.push(normalize_json(v, ids).to_string());
                continue;
            }
        }
        if !t.is_empty() && t.chars().all(|c| c == '+' || c == '-') {
            out.push("+--+".to_string());
            continue;
        }
        if t.starts_with('|') {
            let cells: Vec<String> = t
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect();
            match &headers {
                None => {
                    out.push(format!("| {} |", cells.join(" | ")));
                    headers = Some(cells);
                }
                Some(h) => {
                    let norm: Vec<String> = cells
                        .iter()
                        .enumerate()
                        .map(|(i, c)| column(h.get(i).map(String::as_str).unwrap_or(""), c, ids))
                        .collect();
                    out.push(format!("| {} |", norm.join(" | ")));
                }
            }
            continue;
        }
        if let Some(l) = fields_line(line, ids) {
            out.push(l);
            continue;
        }
        if let Some(l) = csv_line(line, ids) {
            out.push(l);
            continue;
        }
        out.push(text_line(line, ids));
    }
    out.join("\n")
}

/// A table cell, by its column header.
fn column(header: &str, cell: &str, ids: &Ids) -> String {
    match header {
        "ID" => hex_id(cell, ids),
        "VERSION" => "<version>".into(),
        "DB SIZE" => "<size>".into(),
        "RAFT TERM" => "<term>".into(),
        "RAFT INDEX" | "RAFT APPLIED INDEX" => "<index>".into(),
        "HASH" => "<hash>".into(),
        "TOOK" => "<dur>".into(),
        "TOTAL SIZE" => "<size>".into(),
        "TOTAL KEYS" => "<keys>".into(),
        _ => text_line(cell, ids),
    }
}

fn hex_id(s: &str, ids: &Ids) -> String {
    match u64::from_str_radix(s, 16) {
        Ok(id) => ids.id_or(id, "<id>"),
        Err(_) => text_line(s, ids),
    }
}

fn dec_id(s: &str, ids: &Ids) -> String {
    match s.parse::<u64>() {
        Ok(0) => "0".into(),
        Ok(id) => ids.id_or(id, "<id>"),
        Err(_) => text_line(s, ids),
    }
}

/// `-w fields` lines: `"Name" : value`.
fn fields_line(line: &str, ids: &Ids) -> Option<String> {
    let rest = line.strip_prefix('"')?;
    let (name, value) = rest.split_once("\" : ")?;
    let v = match name {
        "ClusterID" | "MemberID" | "ID" | "Lease" | "Leader" => dec_id(value, ids),
        "RaftTerm" => "<term>".into(),
        "RaftIndex" | "RaftAppliedIndex" => "<index>".into(),
        "DBSize" | "DBSizeInUse" => "<size>".into(),
        "Hash" => "<hash>".into(),
        "Took" => "<dur>".into(),
        "Version" if value.starts_with('"') => "\"<version>\"".into(),
        _ => text_line(value, ids),
    };
    Some(format!("\"{name}\" : {v}"))
}

/// The comma-separated simple output of `endpoint status`, `member list`, `endpoint hashkv`.
fn csv_line(line: &str, ids: &Ids) -> Option<String> {
    let f: Vec<&str> = line.split(',').map(str::trim).collect();
    let is_endpoint = |s: &str| {
        let s = s.strip_prefix("http://").unwrap_or(s);
        s.starts_with("127.0.0.1:") || s.starts_with("localhost:")
    };
    let mut g: Vec<String> = f.iter().map(|s| text_line(s, ids)).collect();
    if f.len() == 10 && is_endpoint(f[0]) {
        // endpoint, id, version, db size, leader?, learner?, term, index, applied, errors
        g[1] = hex_id(f[1], ids);
        g[2] = "<version>".into();
        g[3] = "<size>".into();
        g[6] = "<term>".into();
        g[7] = "<index>".into();
        g[8] = "<index>".into();
    } else if f.len() == 6 && (f[1] == "started" || f[1] == "unstarted") {
        // id, status, name, peer urls, client urls, learner?
        g[0] = hex_id(f[0], ids);
    } else if f.len() == 2 && is_endpoint(f[0]) && f[1].chars().all(|c| c.is_ascii_digit()) {
        g[1] = "<hash>".into();
    } else {
        return None;
    }
    Some(g.join(", ").trim_end().to_string())
}

/// Free text: ports, ids, versions, durations, remaining TTLs, key lists.
pub fn text_line(line: &str, ids: &Ids) -> String {
    let mut s = ports(line);
    if let Some(i) = s.find("took = ") {
        s.truncate(i + "took = ".len());
        s.push_str("<dur>");
    }
    s = tokens(&s, ids);
    s = replace_between(&s, "remaining(", "s)", "<n>");
    s = replace_between(&s, "memberID:", " ", "<member>");
    if let Some(a) = s.find("attached keys([") {
        let start = a + "attached keys([".len();
        if let Some(len) = s[start..].find("])") {
            let mut keys: Vec<&str> = s[start..start + len].split(' ').collect();
            keys.sort_unstable();
            s = format!("{}{}{}", &s[..start], keys.join(" "), &s[start + len..]);
        }
    }
    s
}

/// Replaces the text between `open` and the next `close` with `with`.
fn replace_between(s: &str, open: &str, close: &str, with: &str) -> String {
    let Some(a) = s.find(open) else {
        return s.to_string();
    };
    let start = a + open.len();
    let end = s[start..].find(close).map(|i| start + i).unwrap_or(s.len());
    if s[start..end].starts_with('<') {
        return s.to_string();
    }
    format!("{}{with}{}", &s[..start], &s[end..])
}

/// `127.0.0.1:NNNN` and `localhost:NNNN` → `:<port>`.
fn ports(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        let hit = ["127.0.0.1:", "localhost:"]
            .iter()
            .filter_map(|p| rest.find(p).map(|i| (i, p.len())))
            .min();
        let Some((i, plen)) = hit else {
            out.push_str(rest);
            return out;
        };
        let after = &rest[i + plen..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        out.push_str(&rest[..i + plen]);
        if digits > 0 {
            out.push_str("<port>");
        }
        rest = &after[digits..];
    }
}

/// Rewrites alphanumeric tokens: 16-hex-digit ids, known ids in decimal or hex, and
/// `N.N.N` version strings.
fn tokens(s: &str, ids: &Ids) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_alphanumeric() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
            i += 1;
        }
        // a trailing dot belongs to the sentence, not the token
        let mut end = i;
        while end > start && chars[end - 1] == '.' {
            end -= 1;
        }
        let tok: String = chars[start..end].iter().collect();
        out.push_str(&token(&tok, ids));
        out.extend(&chars[end..i]);
    }
    out
}

fn token(tok: &str, ids: &Ids) -> String {
    let parts: Vec<&str> = tok.split('.').collect();
    if parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    {
        return "<version>".into();
    }
    if tok.contains('.') {
        return tok.to_string();
    }
    if tok.len() >= 6 && tok.chars().all(|c| c.is_ascii_digit()) {
        if let Some(p) = tok.parse::<u64>().ok().and_then(|id| ids.get(id)) {
            return p.to_string();
        }
    }
    let is_hex = tok
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    if is_hex && tok.len() >= 6 {
        if let Ok(id) = u64::from_str_radix(tok, 16) {
            if let Some(p) = ids.get(id) {
                return p.to_string();
            }
        }
        if tok.len() == 16 {
            return "<id>".into();
        }
    }
    tok.to_string()
}

/// Normalises a `-w json` document.
pub fn normalize_json(v: Value, ids: &Ids) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                let nv = match (k.as_str(), &v) {
                    (
                        "cluster_id" | "member_id" | "memberID" | "leader" | "ID" | "id" | "lease",
                        Value::Number(n),
                    ) => match n.as_u64() {
                        Some(0) => v.clone(),
                        Some(id) => Value::String(ids.id_or(id, "<id>")),
                        None => v.clone(),
                    },
                    ("raft_term" | "raftTerm", _) => Value::String("<term>".into()),
                    ("raftIndex" | "raftAppliedIndex", _) => Value::String("<index>".into()),
                    ("dbSize" | "dbSizeInUse" | "totalSize", _) => Value::String("<size>".into()),
                    ("totalKey", _) => Value::String("<keys>".into()),
                    ("hash", _) => Value::String("<hash>".into()),
                    ("took", _) => Value::String("<dur>".into()),
                    ("version", Value::String(_)) => Value::String("<version>".into()),
                    ("ttl", Value::Number(n)) if n.as_i64().unwrap_or(0) > 0 => {
                        Value::String("<ttl>".into())
                    }
                    ("keys", Value::Array(a)) => {
                        let mut a = a.clone();
                        a.sort_by_key(|x| x.to_string());
                        Value::Array(a)
                    }
                    ("leases", Value::Array(a)) => {
                        let mut a: Vec<Value> =
                            a.iter().map(|x| normalize_json(x.clone(), ids)).collect();
                        a.sort_by_key(|x| x.to_string());
                        Value::Array(a)
                    }
                    _ => normalize_json(v, ids),
                };
                out.insert(k, nv);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(|x| normalize_json(x, ids)).collect()),
        Value::String(s) => Value::String(text_line(&s, ids)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_ids_ports_and_sizes() {
        let mut ids = Ids::default();
        ids.add(0xbdae9bbc11dd390d, "member");
        let out = normalize(
            "127.0.0.1:23791, bdae9bbc11dd390d, 3.4.23, 25 kB, true, false, 2, 5, 5, ",
            &ids,
        );
        assert_eq!(
            out,
            "127.0.0.1:<port>, <member1>, <version>, <size>, true, false, <term>, <index>, <index>,"
        );
        let out = normalize(
            "bdae9bbc11dd390d, started, m1, http://127.0.0.1:1, http://127.0.0.1:2, false",
            &ids,
        );
        assert_eq!(
            out,
            "<member1>, started, m1, http://127.0.0.1:<port>, http://127.0.0.1:<port>, false"
        );
    }

    #[test]
    fn normalises_leases_in_text_and_json() {
        let mut ids = Ids::default();
        ids.add(0x390da209cbf2c746, "lease");
        assert_eq!(
            normalize(
                "lease 390da209cbf2c746 granted with TTL(60s), remaining(59s), attached keys([lk2 lk])",
                &ids
            ),
            "lease <lease1> granted with TTL(60s), remaining(<n>s), attached keys([lk lk2])"
        );
        assert_eq!(
            normalize(
                "lock/390da209cbf2c746\n\"Lease\" : 4111120197819221830",
                &ids
            ),
            "lock/<lease1>\n\"Lease\" : <lease1>"
        );
        assert_eq!(
            normalize(
                r#"{"id":4111120197819221830,"ttl":59,"granted-ttl":60}"#,
                &ids
            ),
            r#"{"granted-ttl":60,"id":"<lease1>","ttl":"<ttl>"}"#
        );
    }

    #[test]
    fn keeps_revisions_and_values() {
        let ids = Ids::default();
        let j = r#"{"header":{"cluster_id":1,"member_id":2,"revision":7,"raft_term":3},"kvs":[{"key":"Zm9v","create_revision":2,"mod_revision":7,"version":3,"value":"YmFy"}],"count":1}"#;
        let out = normalize(j, &ids);
        assert!(out.contains(r#""revision":7"#), "{out}");
        assert!(out.contains(r#""version":3"#), "{out}");
        assert!(out.contains(r#""raft_term":"<term>""#), "{out}");
        assert_eq!(normalize("foo\nbar 12345", &ids), "foo\nbar 12345");
    }

    #[test]
    fn tables_lose_widths() {
        let ids = Ids::default();
        let t = "+----+------+\n|  ID  | NAME |\n+----+------+\n| abcdef0123456789 |   m1 |\n+----+------+";
        assert_eq!(
            normalize(t, &ids),
            "+--+\n| ID | NAME |\n+--+\n| <id> | m1 |\n+--+"
        );
    }
}
