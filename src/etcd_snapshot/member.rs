//! The JSON etcd stores for a member in the `members` bucket.

/// The JSON etcd 3.4 stores for a member: `{"id":N,"peerURLs":[..]}` followed by
/// `"isLearner":true` for a learner, `"name":".."` when named and `"clientURLs":[..]` when it
/// has client URLs (Go's `encoding/json` with `omitempty`; `peerURLs` is `null` when there are
/// none, as Go encodes a nil list).
pub fn member_json(
    id: u64,
    name: &str,
    peer_urls: &[String],
    client_urls: &[String],
    is_learner: bool,
) -> String {
    let mut out = format!("{{\"id\":{id},\"peerURLs\":");
    if peer_urls.is_empty() {
        out.push_str("null");
    } else {
        push_list(&mut out, peer_urls);
    }
    if is_learner {
        out.push_str(",\"isLearner\":true");
    }
    if !name.is_empty() {
        out.push_str(",\"name\":");
        push_string(&mut out, name);
    }
    if !client_urls.is_empty() {
        out.push_str(",\"clientURLs\":");
        push_list(&mut out, client_urls);
    }
    out.push('}');
    out
}

fn push_list(out: &mut String, items: &[String]) {
    out.push('[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_string(out, s);
    }
    out.push(']');
}

/// A JSON string as Go's `encoding/json` writes it (HTML-safe: `<`, `>`, `&` escaped, and the
/// line and paragraph separators too).
fn push_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::member_json;

    #[test]
    fn matches_what_etcd_stored() {
        // As found in a real etcd 3.4.23 snapshot.
        assert_eq!(
            member_json(
                13_668_033_151_171_901_709,
                "n1",
                &["http://127.0.0.1:23801".into()],
                &["http://127.0.0.1:23791".into()],
                false
            ),
            r#"{"id":13668033151171901709,"peerURLs":["http://127.0.0.1:23801"],"name":"n1","clientURLs":["http://127.0.0.1:23791"]}"#
        );
    }

    #[test]
    fn unstarted_learner_and_escapes() {
        assert_eq!(
            member_json(1, "", &["http://a:1".into()], &[], true),
            r#"{"id":1,"peerURLs":["http://a:1"],"isLearner":true}"#
        );
        assert_eq!(
            member_json(2, "a\"<b>&\u{1}", &[], &[], false),
            r#"{"id":2,"peerURLs":null,"name":"a\"\u003cb\u003e\u0026\u0001"}"#
        );
    }
}
