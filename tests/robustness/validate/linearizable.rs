//! The KV history is linearizable: each register key's operations (gets, puts, deletes and
//! compare-and-swap txns) are checked against a sequential key-value model by the
//! porcupine-style checker, independently of the server's own revision numbers.
//!
//! As etcd's robustness suite does, the history is first patched with what the watch
//! history proves: a write whose outcome is unknown and whose unique value never appears in
//! a complete history was never applied, so it is left out (which keeps the search small).

use std::collections::HashSet;
use std::path::PathBuf;

use crate::checker::{self, Input, Operation, Output, Verdict};
use crate::history::History;
use crate::record::{Cond, Record, Request, Response, Then};

/// The checker's view of `r`, if it is an operation on one of the register keys.
fn operation(r: &Record, applied: &Option<HashSet<&str>>) -> Option<Operation> {
    let never_applied = |v: &str| applied.as_ref().is_some_and(|a| !a.contains(v));
    let (input, output) = match (&r.req, &r.resp) {
        (Request::Get { .. }, Ok(Response::Get { kv, .. })) => (
            Input::Get,
            Output::Get(kv.as_ref().map(|k| k.value.clone())),
        ),
        (Request::Get { .. }, Err(_)) => return None,
        (
            Request::Put {
                value, lease: 0, ..
            },
            resp,
        ) => {
            if resp.is_err() && never_applied(value) {
                return None;
            }
            let out = if resp.is_ok() {
                Output::Put
            } else {
                Output::Unknown
            };
            (Input::Put(value.clone()), out)
        }
        (Request::Delete { .. }, Ok(Response::Delete { deleted, .. })) => {
            (Input::Delete, Output::Delete(*deleted))
        }
        (Request::Delete { .. }, Err(_)) => (Input::Delete, Output::Unknown),
        (Request::Txn { cond, then, .. }, resp) => {
            let expected = match cond {
                Cond::Value(e) => e.clone(),
                Cond::ModRevision { believed, .. } => believed.clone(),
                Cond::Version(_) => return None,
            };
            let input = match then {
                Then::Put(v) => {
                    if resp.is_err() && never_applied(v) {
                        return None;
                    }
                    Input::Cas {
                        expected,
                        new: v.clone(),
                    }
                }
                Then::Delete => Input::CasDelete { expected },
            };
            let output = match resp {
                Ok(Response::Txn {
                    succeeded: true, ..
                }) => Output::Cas(true),
                Ok(Response::Txn { else_kv, .. }) => {
                    Output::CasFailed(else_kv.as_ref().map(|k| k.value.clone()))
                }
                _ => Output::Unknown,
            };
            (input, output)
        }
        _ => return None,
    };
    Some(Operation {
        client: r.client,
        key: r.req.key()?.to_string(),
        input,
        output,
        call: r.call,
        ret: r.ret,
    })
}

/// Runs the check on `keys`; a failure's operations are written to a file named in the
/// message (`label` names it).
pub fn check(records: &[Record], history: &History, keys: &[String], label: &str) -> Vec<String> {
    let applied: Option<HashSet<&str>> = history.complete.then(|| {
        history
            .events()
            .filter(|e| !e.delete)
            .map(|e| e.kv.value.as_str())
            .collect()
    });
    let keys: HashSet<&str> = keys.iter().map(String::as_str).collect();
    let ops: Vec<Operation> = records
        .iter()
        .filter(|r| r.req.key().is_some_and(|k| keys.contains(k)))
        .filter_map(|r| operation(r, &applied))
        .collect();
    let mut problems = Vec::new();
    match checker::check(&ops) {
        Verdict::Linearizable => {}
        Verdict::NotLinearizable {
            key,
            best_prefix,
            ops: n,
        } => {
            let file = dump(label, &key, &checker::describe(&ops, &key));
            problems.push(format!(
                "the operations on {key} are not linearizable (the longest linearizable prefix has {best_prefix} of {n} operations; all of them, times in ns: {})",
                file.display()
            ));
        }
        Verdict::GaveUp { key } => {
            let file = dump(label, &key, &checker::describe(&ops, &key));
            problems.push(format!(
                "the checker gave up on {key} after {} steps (operations: {})",
                checker::STEP_BUDGET,
                file.display()
            ));
        }
    }
    problems
}

/// Writes `text` to a file kept after the test, for the failure message.
fn dump(label: &str, key: &str, text: &str) -> PathBuf {
    let name: String = format!("{label}-{key}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = std::env::temp_dir().join(format!("kvd-robustness-{name}.txt"));
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("cannot write {}: {e}", path.display());
    }
    path
}
