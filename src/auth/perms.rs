//! etcd's permission arithmetic over key intervals.
//!
//! A role grants read, write or read-write on a key, on a range `[key, range_end)`, or on
//! everything from a key on (`range_end` = `"\0"`). A user may do what the union of its roles
//! allows. A request on one key needs one granted interval that contains the key; a request on
//! a range needs the granted intervals to cover the whole range without a gap.
//!
//! Bounds compare as etcd's "bytes affine" order, in which the empty key stands for +infinity.
//! That is why, as in etcd, a request over `["", ...)` (everything) is only allowed to the
//! `root` role, which is checked before these intervals.

use std::cmp::Ordering;

use crate::proto::authpb::{permission::Type as PermType, Role};

/// The kind of access a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reading keys (range, compare, watch, `prev_kv`).
    Read,
    /// Writing keys (put, delete).
    Write,
}

/// Compares two interval bounds; the empty bound is greater than every other.
fn cmp_bound(a: &[u8], b: &[u8]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.cmp(b),
    }
}

/// A half-open interval `[begin, end)` of keys in the bytes affine order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Interval {
    begin: Vec<u8>,
    end: Vec<u8>,
}

impl Interval {
    /// The interval holding exactly `key`: `[key, key + "\0")`.
    fn point(key: &[u8]) -> Self {
        let mut end = key.to_vec();
        end.push(0);
        Self {
            begin: key.to_vec(),
            end,
        }
    }

    /// `[begin, end)`, where an `end` of `"\0"` means "no end".
    fn range(begin: &[u8], end: &[u8]) -> Self {
        let end = if end == [0] { Vec::new() } else { end.to_vec() };
        Self {
            begin: begin.to_vec(),
            end,
        }
    }

    /// True when `self` (a query) overlaps `stored`, with etcd's interval comparison.
    fn overlaps(&self, stored: &Interval) -> bool {
        let left_of = cmp_bound(&self.begin, &stored.begin) == Ordering::Less
            && cmp_bound(&self.end, &stored.begin) != Ordering::Greater;
        let right_of = cmp_bound(&self.begin, &stored.end) != Ordering::Less;
        !left_of && !right_of
    }
}

/// The interval one granted permission stands for.
fn granted(key: &[u8], range_end: &[u8]) -> Interval {
    if range_end.is_empty() {
        Interval::point(key)
    } else {
        Interval::range(key, range_end)
    }
}

/// The intervals `roles` grant for `access`.
fn granted_intervals<'a>(
    roles: impl IntoIterator<Item = &'a Role>,
    access: Access,
) -> Vec<Interval> {
    let mut out = Vec::new();
    for role in roles {
        for p in &role.key_permission {
            let allowed = match PermType::try_from(p.perm_type) {
                Ok(PermType::Readwrite) => true,
                Ok(PermType::Read) => access == Access::Read,
                Ok(PermType::Write) => access == Access::Write,
                Err(_) => false,
            };
            if allowed {
                out.push(granted(&p.key, &p.range_end));
            }
        }
    }
    out
}

/// True when the intervals overlapping `query` cover it without a gap.
fn covers(intervals: &[Interval], query: &Interval) -> bool {
    let mut hits: Vec<&Interval> = intervals.iter().filter(|s| query.overlaps(s)).collect();
    hits.sort_by(|a, b| cmp_bound(&a.begin, &b.begin));
    let mut iter = hits.into_iter();
    let Some(first) = iter.next() else {
        return false;
    };
    let mut max_end = first.end.as_slice();
    for next in iter {
        if cmp_bound(max_end, &next.begin) == Ordering::Less {
            return false;
        }
        if cmp_bound(&next.end, max_end) == Ordering::Greater {
            max_end = &next.end;
        }
    }
    cmp_bound(max_end, &query.end) != Ordering::Less
        && cmp_bound(&first.begin, &query.begin) != Ordering::Greater
}

/// True when `roles` allow `access` to `key` (`range_end` empty) or to the whole range
/// `[key, range_end)` (`range_end` = `"\0"`: every key from `key` on).
pub fn permits<'a>(
    roles: impl IntoIterator<Item = &'a Role>,
    key: &[u8],
    range_end: &[u8],
    access: Access,
) -> bool {
    let intervals = granted_intervals(roles, access);
    if range_end.is_empty() {
        let point = Interval::point(key);
        intervals.iter().any(|s| point.overlaps(s))
    } else {
        covers(&intervals, &Interval::range(key, range_end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::authpb::Permission;

    fn role(perms: &[(&str, &str, PermType)]) -> Role {
        Role {
            name: b"r".to_vec(),
            key_permission: perms
                .iter()
                .map(|(k, e, t)| Permission {
                    perm_type: *t as i32,
                    key: k.as_bytes().to_vec(),
                    range_end: e.as_bytes().to_vec(),
                })
                .collect(),
        }
    }

    fn can(r: &Role, key: &str, end: &str, access: Access) -> bool {
        permits([r], key.as_bytes(), end.as_bytes(), access)
    }

    #[test]
    fn single_key_permission_allows_only_that_key() {
        let r = role(&[("foo", "", PermType::Read)]);
        assert!(can(&r, "foo", "", Access::Read));
        assert!(!can(&r, "foo", "", Access::Write));
        assert!(!can(&r, "foo0", "", Access::Read));
        assert!(!can(&r, "fo", "", Access::Read));
        // the range [foo, foo\0) is exactly the key
        assert!(can(&r, "foo", "foo\0", Access::Read));
        assert!(!can(&r, "foo", "fop", Access::Read));
    }

    #[test]
    fn prefix_permission_covers_sub_ranges_but_not_beyond() {
        let r = role(&[("/app/", "/app0", PermType::Readwrite)]);
        assert!(can(&r, "/app/x", "", Access::Write));
        assert!(can(&r, "/app/", "/app0", Access::Read));
        assert!(can(&r, "/app/a", "/app/b", Access::Read));
        assert!(!can(&r, "/app/", "/app1", Access::Read));
        assert!(!can(&r, "/ap", "/app0", Access::Read));
        assert!(!can(&r, "/app0", "", Access::Read));
        assert!(!can(&r, "/app/", "\0", Access::Read));
    }

    #[test]
    fn union_of_adjacent_ranges_covers_without_gap() {
        let r = role(&[("a", "c", PermType::Read), ("c", "e", PermType::Readwrite)]);
        assert!(can(&r, "a", "e", Access::Read));
        assert!(!can(&r, "a", "e", Access::Write));
        assert!(can(&r, "c", "e", Access::Write));
        let gap = role(&[("a", "c", PermType::Read), ("d", "e", PermType::Read)]);
        assert!(!can(&gap, "a", "e", Access::Read));
        assert!(can(&gap, "d", "", Access::Read));
        assert!(!can(&gap, "c", "", Access::Read));
    }

    #[test]
    fn from_key_permission_has_no_end() {
        let r = role(&[("k", "\0", PermType::Write)]);
        assert!(can(&r, "zzzz", "", Access::Write));
        assert!(can(&r, "k", "\0", Access::Write));
        assert!(can(&r, "m", "\0", Access::Write));
        assert!(!can(&r, "j", "\0", Access::Write));
        assert!(!can(&r, "j", "", Access::Write));
        assert!(!can(&r, "k", "", Access::Read));
    }

    #[test]
    fn everything_is_never_covered_by_intervals() {
        // etcd compares the empty key as +infinity, so `get "" --prefix` needs the root role.
        let r = role(&[("a", "\0", PermType::Read), ("", "\0", PermType::Read)]);
        assert!(!can(&r, "", "\0", Access::Read));
    }

    #[test]
    fn no_roles_no_access() {
        assert!(!permits(
            std::iter::empty::<&Role>(),
            b"a",
            b"",
            Access::Read
        ));
    }
}
