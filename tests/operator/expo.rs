//! A reader of Prometheus's text exposition format, enough to compare two servers' `/metrics`:
//! each family's type, help text, label names and histogram buckets, and each sample's value.

use std::collections::{BTreeMap, BTreeSet};

/// One metric family as exposed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Family {
    /// `counter`, `gauge`, `histogram`, ...
    pub kind: String,
    /// The `# HELP` text.
    pub help: String,
    /// Every label name its samples carry (`le` excluded).
    pub labels: BTreeSet<String>,
    /// The `le` bounds of its buckets, as printed, in order of first appearance.
    pub buckets: Vec<String>,
    /// Samples: the full sample name with its labels (sorted) to the value.
    pub samples: BTreeMap<String, f64>,
}

/// Parses an exposition into families by name.
pub fn parse(text: &str) -> BTreeMap<String, Family> {
    let mut out: BTreeMap<String, Family> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.entry(name.to_string()).or_default().help = help.to_string();
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            out.entry(name.to_string()).or_default().kind = kind.to_string();
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let (series, value) = line.rsplit_once(' ').unwrap_or((line, "NaN"));
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, l.trim_end_matches('}')),
                None => (series, ""),
            };
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| {
                    name.strip_suffix(suffix)
                        .filter(|base| out.get(*base).is_some_and(|f| f.kind == "histogram"))
                })
                .unwrap_or(name)
                .to_string();
            let f = out.entry(family).or_default();
            let mut pairs: Vec<(String, String)> = split_labels(labels);
            for (k, v) in &pairs {
                if k == "le" {
                    if !f.buckets.contains(v) {
                        f.buckets.push(v.clone());
                    }
                } else {
                    f.labels.insert(k.clone());
                }
            }
            pairs.sort();
            let key = format!(
                "{name}{{{}}}",
                pairs
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{v}\""))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            f.samples.insert(key, value.parse().unwrap_or(f64::NAN));
        }
    }
    out
}

fn split_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some((k, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(n);
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((k.trim_start_matches(',').trim().to_string(), value));
        rest = &after[end..];
    }
    out
}

/// The value of one sample (`name{a="b"}`, labels in any order), if exposed.
pub fn value(
    families: &BTreeMap<String, Family>,
    family: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    sample(families, family, family, labels)
}

/// The value of sample `name` (e.g. `h_count`) of `family` (e.g. the histogram `h`).
pub fn sample(
    families: &BTreeMap<String, Family>,
    family: &str,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    let f = families.get(family)?;
    let family = name;
    let mut pairs: Vec<(&str, &str)> = labels.to_vec();
    pairs.sort();
    let key = format!(
        "{family}{{{}}}",
        pairs
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    f.samples.get(&key).copied()
}

#[test]
fn reads_families_samples_and_buckets() {
    let text = "# HELP h Latency.\n# TYPE h histogram\nh_bucket{op=\"a\",le=\"0.1\"} 1\nh_bucket{op=\"a\",le=\"+Inf\"} 2\nh_sum{op=\"a\"} 0.3\nh_count{op=\"a\"} 2\n# HELP c Count.\n# TYPE c counter\nc{b=\"x\\\"y\",a=\"1\"} 5\n";
    let f = parse(text);
    assert_eq!(f["h"].kind, "histogram");
    assert_eq!(f["h"].buckets, ["0.1", "+Inf"]);
    assert_eq!(f["h"].labels.iter().collect::<Vec<_>>(), ["op"]);
    assert_eq!(value(&f, "c", &[("b", "x\"y"), ("a", "1")]), Some(5.0));
    assert_eq!(f["c"].help, "Count.");
}
