//! JSON string escaping as etcd's gateway (Go's `encoding/json`) does it, shared by the JSON
//! encoder and the error bodies.

/// A JSON string literal for `s`, escaped as etcd's gateway (Go's encoding/json) escapes it.
pub(super) fn quote(s: &str) -> String {
    go_escape(serde_json::Value::from(s).to_string())
}

/// Go's encoding/json also escapes `<`, `>`, `&`, U+2028 and U+2029. In JSON text these
/// characters can only stand inside strings, so replacing them everywhere is safe.
pub(super) fn go_escape(text: String) -> String {
    if !text.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}
