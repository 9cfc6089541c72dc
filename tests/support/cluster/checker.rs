//! A linearizability checker for histories of single-key operations against a sequential
//! key-value model.
//!
//! The search follows Wing & Gong as refined by Lowe (and used by porcupine): entries (calls
//! and returns) sorted by time in a doubly linked list; repeatedly try to linearize a call
//! whose operation the model accepts from the current state, lifting it and its return out
//! of the list; at a return whose call was not linearized yet, backtrack. A cache of
//! (linearized set, state) pairs already explored keeps the search from repeating itself.
//! The history is split per key first (operations on different keys commute), which keeps
//! each search small.
//!
//! An operation whose outcome is unknown (it failed or timed out) may or may not have taken
//! effect: it has no return time, so it may be linearized at any point after its call, and
//! linearizing it after everything else is the same as it never happening.

use std::collections::{HashMap, HashSet};

/// What a client asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Read the key.
    Get,
    /// Write a value.
    Put(String),
    /// If the value is `expected` (`None`: the key is absent), write `new`.
    Cas {
        /// The value compared with.
        expected: Option<String>,
        /// The value written on success.
        new: String,
    },
    /// Delete the key.
    Delete,
    /// If the value is `expected` (`None`: the key is absent), delete the key.
    CasDelete {
        /// The value compared with.
        expected: Option<String>,
    },
}

/// What the client was told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// The value read (`None`: absent).
    Get(Option<String>),
    /// The put was applied.
    Put,
    /// Whether the compare succeeded.
    Cas(bool),
    /// The compare failed and the else branch read this value (`None`: absent).
    CasFailed(Option<String>),
    /// How many keys the delete removed.
    Delete(i64),
    /// The call failed or timed out: it may or may not have taken effect.
    Unknown,
}

/// One operation of a history.
#[derive(Clone, Debug)]
pub struct Operation {
    /// Which client issued it (for messages).
    pub client: usize,
    /// The key it touched.
    pub key: String,
    /// The request.
    pub input: Input,
    /// The response.
    pub output: Output,
    /// Invocation time (any monotonic unit).
    pub call: u64,
    /// Completion time; `None` when the outcome is unknown.
    pub ret: Option<u64>,
}

/// The checker's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Some order of the operations respects real time and the model.
    Linearizable,
    /// No such order exists for the operations on `key`.
    NotLinearizable {
        /// The key whose sub-history is illegal.
        key: String,
        /// The most operations any explored prefix managed to linearize.
        best_prefix: usize,
        /// Operations on that key.
        ops: usize,
    },
    /// The search exceeded its step budget on `key` without an answer.
    GaveUp {
        /// The key.
        key: String,
    },
}

/// Steps one key's sub-history may take before the checker gives up.
pub const STEP_BUDGET: u64 = 50_000_000;

/// The sequential model for writes: the state after `input` with answer `output` from
/// `state`, or `None` when the model cannot produce that answer from that state. Reads are
/// handled by [`accepts`], which knows the interned value read.
fn step(state: &Option<u32>, input: &In, output: &Output) -> Option<Option<u32>> {
    match (input, output) {
        (In::Put(v), Output::Put | Output::Unknown) => Some(Some(*v)),
        (In::Cas { expected, new }, Output::Cas(true)) => (state == expected).then_some(Some(*new)),
        (In::Cas { expected, .. }, Output::Cas(false)) => (state != expected).then_some(*state),
        (In::Cas { expected, new }, Output::Unknown) => Some(if state == expected {
            Some(*new)
        } else {
            *state
        }),
        (In::Delete, Output::Delete(n)) => (*n == i64::from(state.is_some())).then_some(None),
        (In::Delete, Output::Unknown) => Some(None),
        (In::CasDelete { expected }, Output::Cas(true)) => (state == expected).then_some(None),
        (In::CasDelete { expected }, Output::Cas(false)) => (state != expected).then_some(*state),
        (In::CasDelete { expected }, Output::Unknown) => {
            Some(if state == expected { None } else { *state })
        }
        _ => None,
    }
}

/// An input with values interned to integers (cheap to hash and compare).
#[derive(Clone, Debug)]
enum In {
    Get,
    Put(u32),
    Cas { expected: Option<u32>, new: u32 },
    Delete,
    CasDelete { expected: Option<u32> },
}

/// An operation ready for the search: interned input and read value.
#[derive(Clone, Debug)]
struct Interned {
    input: In,
    output: Output,
    /// For reads: the value read, interned (`None`: absent).
    read: Option<u32>,
}

fn accepts(state: &Option<u32>, op: &Interned) -> Option<Option<u32>> {
    match (&op.input, &op.output) {
        (In::Get, Output::Get(_)) => (*state == op.read).then_some(*state),
        (In::Cas { expected, .. } | In::CasDelete { expected }, Output::CasFailed(_)) => {
            (state != expected && *state == op.read).then_some(*state)
        }
        _ => step(state, &op.input, &op.output),
    }
}

/// One line per operation on `key`, in call order, for a failure message.
pub fn describe(history: &[Operation], key: &str) -> String {
    let mut ops: Vec<&Operation> = history.iter().filter(|o| o.key == key).collect();
    ops.sort_by_key(|o| o.call);
    ops.iter()
        .map(|o| {
            let ret = o.ret.map_or_else(|| "?".to_string(), |r| r.to_string());
            format!(
                "client {} [{}, {ret}] {:?} -> {:?}",
                o.client, o.call, o.input, o.output
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks a whole history: every key's sub-history must be linearizable.
pub fn check(history: &[Operation]) -> Verdict {
    let mut by_key: HashMap<&str, Vec<&Operation>> = HashMap::new();
    for op in history {
        // A failed read changed nothing and told nothing: leave it out.
        if op.input == Input::Get && op.output == Output::Unknown {
            continue;
        }
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    let mut keys: Vec<&str> = by_key.keys().copied().collect();
    keys.sort();
    for key in keys {
        let verdict = check_key(key, &by_key[key]);
        if verdict != Verdict::Linearizable {
            return verdict;
        }
    }
    Verdict::Linearizable
}

const NIL: usize = usize::MAX;

/// The Wing & Gong / Lowe search over one key's operations.
fn check_key(key: &str, ops: &[&Operation]) -> Verdict {
    let mut values: HashMap<String, u32> = HashMap::new();
    let mut intern = |s: &str| -> u32 {
        let n = values.len() as u32;
        *values.entry(s.to_string()).or_insert(n)
    };
    let interned: Vec<Interned> = ops
        .iter()
        .map(|op| {
            let input = match &op.input {
                Input::Get => In::Get,
                Input::Put(v) => In::Put(intern(v)),
                Input::Cas { expected, new } => In::Cas {
                    expected: expected.as_deref().map(&mut intern),
                    new: intern(new),
                },
                Input::Delete => In::Delete,
                Input::CasDelete { expected } => In::CasDelete {
                    expected: expected.as_deref().map(&mut intern),
                },
            };
            let read = match &op.output {
                Output::Get(v) | Output::CasFailed(v) => v.as_deref().map(&mut intern),
                _ => None,
            };
            Interned {
                input,
                output: op.output.clone(),
                read,
            }
        })
        .collect();

    // Entries 2i (call of op i) and 2i+1 (return of op i), sorted by time; calls before
    // returns at equal times (such operations count as concurrent).
    let n = ops.len();
    let mut order: Vec<usize> = (0..2 * n).collect();
    let time = |e: usize| -> (u64, u8, usize) {
        let op = ops[e / 2];
        if e.is_multiple_of(2) {
            (op.call, 0, e)
        } else {
            (op.ret.unwrap_or(u64::MAX), 1, e)
        }
    };
    order.sort_by_key(|&e| time(e));
    let head = 2 * n;
    let mut next = vec![NIL; 2 * n + 1];
    let mut prev = vec![NIL; 2 * n + 1];
    let mut last = head;
    for &e in &order {
        next[last] = e;
        prev[e] = last;
        last = e;
    }

    let words = n.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, Option<u32>)> = HashSet::new();
    let mut stack: Vec<(usize, Option<u32>)> = Vec::new();
    let mut state: Option<u32> = None;
    let mut entry = next[head];
    let mut steps: u64 = 0;
    let mut best = 0usize;

    while next[head] != NIL {
        steps += 1;
        if steps > STEP_BUDGET {
            return Verdict::GaveUp {
                key: key.to_string(),
            };
        }
        if entry.is_multiple_of(2) {
            let i = entry / 2;
            if let Some(new_state) = accepts(&state, &interned[i]) {
                linearized[i / 64] |= 1 << (i % 64);
                if cache.insert((linearized.clone(), new_state)) {
                    stack.push((entry, state));
                    best = best.max(stack.len());
                    state = new_state;
                    // lift the call and its return out of the list
                    let r = entry + 1;
                    next[prev[entry]] = next[entry];
                    if next[entry] != NIL {
                        prev[next[entry]] = prev[entry];
                    }
                    next[prev[r]] = next[r];
                    if next[r] != NIL {
                        prev[next[r]] = prev[r];
                    }
                    entry = next[head];
                    continue;
                }
                linearized[i / 64] &= !(1 << (i % 64));
            }
            entry = next[entry];
        } else {
            let Some((e, s)) = stack.pop() else {
                return Verdict::NotLinearizable {
                    key: key.to_string(),
                    best_prefix: best,
                    ops: n,
                };
            };
            state = s;
            let i = e / 2;
            linearized[i / 64] &= !(1 << (i % 64));
            // put the return back, then the call (reverse order of lifting)
            let r = e + 1;
            next[prev[r]] = r;
            if next[r] != NIL {
                prev[next[r]] = r;
            }
            next[prev[e]] = e;
            if next[e] != NIL {
                prev[next[e]] = e;
            }
            entry = next[e];
        }
    }
    Verdict::Linearizable
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(key: &str, input: Input, output: Output, call: u64, ret: Option<u64>) -> Operation {
        Operation {
            client: 0,
            key: key.to_string(),
            input,
            output,
            call,
            ret,
        }
    }
    fn put(v: &str, call: u64, ret: u64) -> Operation {
        op("k", Input::Put(v.into()), Output::Put, call, Some(ret))
    }
    fn get(v: Option<&str>, call: u64, ret: u64) -> Operation {
        op(
            "k",
            Input::Get,
            Output::Get(v.map(String::from)),
            call,
            Some(ret),
        )
    }
    fn cas(e: Option<&str>, n: &str, ok: bool, call: u64, ret: u64) -> Operation {
        op(
            "k",
            Input::Cas {
                expected: e.map(String::from),
                new: n.into(),
            },
            Output::Cas(ok),
            call,
            Some(ret),
        )
    }
    fn rejected(v: Verdict) -> bool {
        matches!(v, Verdict::NotLinearizable { .. })
    }

    #[test]
    fn empty_and_sequential_histories_pass() {
        assert_eq!(check(&[]), Verdict::Linearizable);
        let h = [
            get(None, 0, 1),
            put("a", 2, 3),
            get(Some("a"), 4, 5),
            op("k", Input::Delete, Output::Delete(1), 6, Some(7)),
            get(None, 8, 9),
        ];
        assert_eq!(check(&h), Verdict::Linearizable);
    }

    #[test]
    fn stale_read_is_rejected() {
        let h = [put("1", 0, 10), put("2", 20, 30), get(Some("1"), 40, 50)];
        assert!(rejected(check(&h)), "{:?}", check(&h));
    }

    #[test]
    fn concurrent_reads_may_see_either_side_of_a_write() {
        let h = [
            put("1", 0, 100),
            get(None, 10, 20),
            get(Some("1"), 30, 40),
            get(Some("1"), 110, 120),
        ];
        assert_eq!(check(&h), Verdict::Linearizable);
        // but once a read saw the new value, a later read may not see the old one
        let h = [put("1", 0, 100), get(Some("1"), 10, 20), get(None, 30, 40)];
        assert!(rejected(check(&h)));
    }

    #[test]
    fn compare_and_set_follows_the_model() {
        let ok = [
            put("a", 0, 1),
            cas(Some("a"), "b", true, 2, 3),
            get(Some("b"), 4, 5),
            cas(Some("a"), "c", false, 6, 7),
            cas(None, "x", false, 8, 9),
        ];
        assert_eq!(check(&ok), Verdict::Linearizable);
        // two compare-and-sets from the same value cannot both succeed
        let bad = [
            put("a", 0, 1),
            cas(Some("a"), "b", true, 2, 10),
            cas(Some("a"), "c", true, 3, 11),
        ];
        assert!(rejected(check(&bad)));
        // create-if-absent
        let h = [cas(None, "x", true, 0, 1), get(Some("x"), 2, 3)];
        assert_eq!(check(&h), Verdict::Linearizable);
    }

    #[test]
    fn a_failed_compare_must_read_the_current_value() {
        let failed = |e: Option<&str>, read: Option<&str>, call, ret| {
            op(
                "k",
                Input::Cas {
                    expected: e.map(String::from),
                    new: format!("n{call}"),
                },
                Output::CasFailed(read.map(String::from)),
                call,
                Some(ret),
            )
        };
        let h = [put("a", 0, 1), failed(Some("x"), Some("a"), 2, 3)];
        assert_eq!(check(&h), Verdict::Linearizable);
        // the else branch read a value the key no longer had
        let h = [
            put("a", 0, 1),
            put("b", 2, 3),
            failed(Some("x"), Some("a"), 4, 5),
        ];
        assert!(rejected(check(&h)));
        // the compare failed although the key held the expected value
        let h = [put("a", 0, 1), failed(Some("a"), Some("a"), 2, 3)];
        assert!(rejected(check(&h)));
    }

    #[test]
    fn compare_and_delete_follows_the_model() {
        let cas_delete = |e: &str, out: Output, call, ret| {
            op(
                "k",
                Input::CasDelete {
                    expected: Some(e.to_string()),
                },
                out,
                call,
                Some(ret),
            )
        };
        let h = [
            put("a", 0, 1),
            cas_delete("a", Output::Cas(true), 2, 3),
            get(None, 4, 5),
            cas_delete("a", Output::CasFailed(None), 6, 7),
        ];
        assert_eq!(check(&h), Verdict::Linearizable);
        // a successful delete leaves nothing behind
        let h = [
            put("a", 0, 1),
            cas_delete("a", Output::Cas(true), 2, 3),
            get(Some("a"), 4, 5),
        ];
        assert!(rejected(check(&h)));
    }

    #[test]
    fn delete_count_must_match_the_state() {
        let h = [
            put("a", 0, 10),
            op("k", Input::Delete, Output::Delete(0), 20, Some(30)),
        ];
        assert!(rejected(check(&h)));
    }

    #[test]
    fn an_unknown_write_may_apply_late_or_never() {
        let maybe = op("k", Input::Put("x".into()), Output::Unknown, 0, None);
        // applied long after its call
        let h = [maybe.clone(), get(None, 10, 20), get(Some("x"), 1000, 1010)];
        assert_eq!(check(&h), Verdict::Linearizable);
        // never applied
        let h = [maybe.clone(), get(None, 10, 20), get(None, 1000, 1010)];
        assert_eq!(check(&h), Verdict::Linearizable);
        // but not before it was called
        let late = op("k", Input::Put("x".into()), Output::Unknown, 100, None);
        let h = [get(Some("x"), 0, 10), late];
        assert!(rejected(check(&h)));
        // and once applied it cannot be undone without another write
        let h = [maybe, get(Some("x"), 10, 20), get(None, 30, 40)];
        assert!(rejected(check(&h)));
    }

    #[test]
    fn keys_are_checked_independently() {
        let mut a = put("1", 0, 10);
        a.key = "a".into();
        let mut b = get(Some("1"), 20, 30);
        b.key = "b".into();
        assert!(rejected(check(&[a.clone(), b])));
        let mut b = get(None, 20, 30);
        b.key = "b".into();
        assert_eq!(check(&[a, b]), Verdict::Linearizable);
    }

    #[test]
    fn many_concurrent_writes_are_searched_quickly() {
        // 12 overlapping puts, then reads pinning down one order of the last two.
        let mut h: Vec<Operation> = (0..12)
            .map(|i| put(&format!("v{i}"), i, 1000 + i))
            .collect();
        h.push(get(Some("v7"), 1100, 1110));
        h.push(put("z", 1120, 1130));
        h.push(get(Some("z"), 1140, 1150));
        assert_eq!(check(&h), Verdict::Linearizable);
        h.push(get(Some("v3"), 1160, 1170));
        assert!(rejected(check(&h)));
    }

    /// A random history made linearizable by construction: each operation takes effect at
    /// a random point inside its interval (failed writes at a random point or never).
    fn random_history(seed: u64, n: usize) -> Vec<Operation> {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(seed);
        let clients = 5;
        let mut free_at = vec![0u64; clients];
        // (linearization point, op index, applies)
        let mut points = Vec::new();
        let mut ops = Vec::new();
        for i in 0..n {
            let c = rng.gen_range(0..clients);
            let call = free_at[c] + rng.gen_range(0..5);
            let ret = call + rng.gen_range(1..40);
            free_at[c] = ret;
            let input = match rng.gen_range(0..4) {
                0 => Input::Get,
                1 => Input::Put(format!("v{i}")),
                2 => Input::Cas {
                    expected: (i > 0).then(|| format!("v{}", rng.gen_range(0..i))),
                    new: format!("v{i}"),
                },
                3 if rng.gen_bool(0.5) => Input::CasDelete {
                    expected: (i > 0).then(|| format!("v{}", rng.gen_range(0..i))),
                },
                _ => Input::Delete,
            };
            let failed = input != Input::Get && rng.gen_range(0..20) == 0;
            let applies = !failed || rng.gen_bool(0.5);
            points.push((rng.gen_range(call..=ret), i, applies));
            ops.push(Operation {
                client: c,
                key: "k".into(),
                input,
                output: Output::Unknown,
                call,
                ret: (!failed).then_some(ret),
            });
        }
        points.sort();
        let mut state: Option<String> = None;
        for (_, i, applies) in points {
            let op = &mut ops[i];
            let out = match &op.input {
                Input::Get => Output::Get(state.clone()),
                Input::Put(v) => {
                    if applies {
                        state = Some(v.clone());
                    }
                    Output::Put
                }
                Input::Cas { expected, new } => {
                    let ok = state == *expected;
                    if ok && applies {
                        state = Some(new.clone());
                    }
                    Output::Cas(ok)
                }
                Input::Delete => {
                    let n = i64::from(state.is_some());
                    if applies {
                        state = None;
                    }
                    Output::Delete(n)
                }
                Input::CasDelete { expected } => {
                    let ok = state == *expected;
                    if ok && applies {
                        state = None;
                    }
                    if ok {
                        Output::Cas(true)
                    } else {
                        Output::CasFailed(state.clone())
                    }
                }
            };
            if op.ret.is_some() {
                op.output = out;
            }
        }
        ops
    }

    #[test]
    fn random_linearizable_histories_pass_and_a_read_from_the_future_fails() {
        for seed in 0..20 {
            let mut h = random_history(seed, 400);
            assert_eq!(check(&h), Verdict::Linearizable, "seed {seed}");
            // a read that returns a value written only after the read completed
            let future = h.iter().enumerate().find_map(|(r, op)| {
                let done = op.ret.filter(|_| op.input == Input::Get)?;
                h.iter().find_map(|w| match &w.input {
                    Input::Put(v) if w.call > done => Some((r, v.clone())),
                    _ => None,
                })
            });
            let (r, v) = future.expect("a history of 400 operations has one");
            h[r].output = Output::Get(Some(v));
            assert!(rejected(check(&h)), "seed {seed}");
        }
    }
}
