//! What clients asked and were told: one [`Record`] per call, with its invocation and
//! completion time on the scenario's clock.

use std::time::Instant;

use kvd::proto::mvccpb::KeyValue;

/// A key-value as the server returned it (keys and values are UTF-8 in this suite).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Kv {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
    /// `create_revision`.
    pub create_revision: i64,
    /// `mod_revision`.
    pub mod_revision: i64,
    /// `version`.
    pub version: i64,
    /// `lease` (0: none).
    pub lease: i64,
}

impl From<&KeyValue> for Kv {
    fn from(kv: &KeyValue) -> Kv {
        Kv {
            key: String::from_utf8_lossy(&kv.key).into_owned(),
            value: String::from_utf8_lossy(&kv.value).into_owned(),
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            lease: kv.lease,
        }
    }
}

/// The compare of a [`Request::Txn`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cond {
    /// `Value(key) == v`, or `CreateRevision(key) == 0` for `None` (absent).
    Value(Option<String>),
    /// `ModRevision(key) == rev` (0: absent); `believed` is the value the client read at
    /// that revision (values are unique, so this compare is a compare of that value).
    ModRevision {
        /// The revision compared with.
        rev: i64,
        /// The value the client saw with it (`None` for 0).
        believed: Option<String>,
    },
    /// `Version(key) == v` (kube-apiserver's compaction key).
    Version(i64),
}

/// The success branch of a [`Request::Txn`]; the failure branch always reads the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Then {
    /// Put this (unique) value.
    Put(String),
    /// Delete the key.
    Delete,
}

/// What a client asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A linearizable read of one key.
    Get {
        /// Key.
        key: String,
    },
    /// A put of a unique value, attached to `lease` unless 0.
    Put {
        /// Key.
        key: String,
        /// Value (unique in the scenario).
        value: String,
        /// Lease ID (0: none).
        lease: i64,
    },
    /// A delete of one key.
    Delete {
        /// Key.
        key: String,
    },
    /// `Txn(If cond Then then Else Get(key))`.
    Txn {
        /// Key.
        key: String,
        /// The compare.
        cond: Cond,
        /// The success branch.
        then: Then,
    },
    /// One page of a list: keys in `[start, end)`, at most `limit`, at `revision` (0: the
    /// current one).
    List {
        /// First key of the page.
        start: String,
        /// Range end (the prefix end).
        end: String,
        /// Page size.
        limit: i64,
        /// Revision read (0: current).
        revision: i64,
    },
    /// `LeaseGrant` with a TTL in seconds.
    LeaseGrant {
        /// Requested TTL.
        ttl: i64,
    },
    /// One keep-alive of a lease.
    LeaseKeepAlive {
        /// Lease ID.
        id: i64,
    },
    /// `Compact` up to a revision.
    Compact {
        /// Revision.
        revision: i64,
    },
}

impl Request {
    /// The key a single-key request touches.
    pub fn key(&self) -> Option<&str> {
        match self {
            Request::Get { key }
            | Request::Put { key, .. }
            | Request::Delete { key }
            | Request::Txn { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The unique value this request writes, if it writes one.
    pub fn written_value(&self) -> Option<&str> {
        match self {
            Request::Put { value, .. } => Some(value),
            Request::Txn {
                then: Then::Put(v), ..
            } => Some(v),
            _ => None,
        }
    }

    /// A short name for counts.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Get { .. } => "get",
            Request::Put { lease: 0, .. } => "put",
            Request::Put { .. } => "put-with-lease",
            Request::Delete { .. } => "delete",
            Request::Txn {
                cond: Cond::Version(_),
                ..
            } => "compaction-txn",
            Request::Txn {
                then: Then::Put(_), ..
            } => "txn-put",
            Request::Txn {
                then: Then::Delete, ..
            } => "txn-delete",
            Request::List { .. } => "list-page",
            Request::LeaseGrant { .. } => "lease-grant",
            Request::LeaseKeepAlive { .. } => "lease-keepalive",
            Request::Compact { .. } => "compact",
        }
    }
}

/// What the client was told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// A read: the key-value (if any) and the header revision.
    Get {
        /// The key-value.
        kv: Option<Kv>,
        /// Header revision.
        revision: i64,
    },
    /// A put: the revision it created.
    Put {
        /// Header revision.
        revision: i64,
    },
    /// A delete: how many keys it removed.
    Delete {
        /// Keys deleted.
        deleted: i64,
        /// Header revision.
        revision: i64,
    },
    /// A txn: whether the compare held; the key-value the failure branch read.
    Txn {
        /// Compare result.
        succeeded: bool,
        /// Header revision.
        revision: i64,
        /// Failure branch: the key-value read (`None`: absent).
        else_kv: Option<Kv>,
    },
    /// A list page.
    List {
        /// Key-values of the page.
        kvs: Vec<Kv>,
        /// More keys follow.
        more: bool,
        /// Header revision.
        revision: i64,
    },
    /// A granted lease.
    LeaseGrant {
        /// Lease ID.
        id: i64,
        /// Granted TTL.
        ttl: i64,
    },
    /// A keep-alive answer.
    LeaseKeepAlive {
        /// Remaining TTL (0: the lease is gone).
        ttl: i64,
    },
    /// A compaction.
    Compact {
        /// Header revision.
        revision: i64,
    },
}

/// One call.
#[derive(Clone, Debug)]
pub struct Record {
    /// The client that made it.
    pub client: usize,
    /// The member it went to.
    pub member: String,
    /// Invocation time (ns on the scenario clock).
    pub call: u64,
    /// Completion time; `None` when it failed (its outcome is unknown).
    pub ret: Option<u64>,
    /// The request.
    pub req: Request,
    /// The answer, or the error text.
    pub resp: Result<Response, String>,
}

impl Record {
    /// One line for a failure message.
    pub fn describe(&self) -> String {
        let when = match self.ret {
            Some(r) => format!("[{:.3}s..{:.3}s]", secs(self.call), secs(r)),
            None => format!("[{:.3}s..?]", secs(self.call)),
        };
        let outcome = match &self.resp {
            Ok(r) => format!("{r:?}"),
            Err(e) => format!("failed: {e}"),
        };
        format!(
            "client {} via {} {when} {:?} -> {outcome}",
            self.client, self.member, self.req
        )
    }
}

/// Nanoseconds on the scenario clock as seconds.
pub fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// The scenario's clock: nanoseconds since the scenario started.
#[derive(Clone, Copy, Debug)]
pub struct Clock(Instant);

impl Clock {
    /// A clock starting now.
    pub fn start() -> Clock {
        Clock(Instant::now())
    }

    /// Nanoseconds since the start.
    pub fn now(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Seconds since the start (for messages).
    pub fn secs(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}
