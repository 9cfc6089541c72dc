//! The lessor: leases, their TTLs and the keys attached to them.
//!
//! Grant and revoke are replicated (applied from the raft log); keep-alive and expiry are the
//! leader's business, as in etcd: only the leader keeps deadlines, and it proposes a revoke when
//! a lease expires. A member that becomes leader gives every lease its full remaining TTL again.

pub mod persist;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use thiserror::Error;

/// The clock lease deadlines are kept on: the monotonic clock as tokio's timers read it. It is
/// the system's monotonic clock, except in a test whose runtime paused time, where lease
/// deadlines then move with virtual time like every timer (the in-process cluster harness).
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The largest TTL a lease may have, in seconds (etcd's `MaxLeaseTTL`).
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;

/// What can go wrong with a lease.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LeaseError {
    /// No lease with that ID.
    #[error("requested lease not found")]
    NotFound,
    /// A lease with that ID exists already.
    #[error("lease already exists")]
    Exists,
    /// The TTL is above [`MAX_LEASE_TTL`].
    #[error("too large lease TTL")]
    TtlTooLarge,
    /// Only the leader keeps leases alive.
    #[error("not leader")]
    NotLeader,
}

/// One lease.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The lease ID.
    pub id: i64,
    /// The granted TTL in seconds.
    pub ttl: i64,
    /// When it expires; `None` while this member is not the leader.
    pub expiry: Option<Instant>,
    /// Keys attached to it.
    pub keys: BTreeSet<Vec<u8>>,
}

impl Lease {
    /// Seconds left before expiry (the granted TTL when no deadline runs here).
    pub fn remaining_secs(&self, now: Instant) -> i64 {
        match self.expiry {
            Some(at) => {
                i64::try_from(at.saturating_duration_since(now).as_secs()).unwrap_or(i64::MAX)
            }
            None => self.ttl,
        }
    }
}

/// All leases of the member.
#[derive(Debug)]
pub struct Lessor {
    leases: HashMap<i64, Lease>,
    min_ttl: i64,
    primary: bool,
    promote_extension: Duration,
}

impl Lessor {
    /// A lessor whose shortest TTL is `min_ttl` seconds.
    pub fn new(min_ttl: i64) -> Self {
        Self {
            leases: HashMap::new(),
            min_ttl: min_ttl.max(1),
            primary: false,
            promote_extension: Duration::ZERO,
        }
    }

    /// Time added to every lease when this member becomes leader (etcd: one election timeout),
    /// so that leases do not expire while clients find the new leader.
    pub fn set_promote_extension(&mut self, extension: Duration) {
        self.promote_extension = extension;
    }

    /// See [`Lessor::set_promote_extension`].
    pub fn promote_extension(&self) -> Duration {
        self.promote_extension
    }

    /// The shortest TTL a lease gets, in seconds.
    pub fn min_ttl(&self) -> i64 {
        self.min_ttl
    }

    /// The TTL a grant of `ttl` seconds really gets.
    pub fn effective_ttl(&self, ttl: i64) -> i64 {
        ttl.max(self.min_ttl)
    }

    /// True when a lease with this ID exists.
    pub fn exists(&self, id: i64) -> bool {
        self.leases.contains_key(&id)
    }

    /// A lease by ID.
    pub fn get(&self, id: i64) -> Option<&Lease> {
        self.leases.get(&id)
    }

    /// Every lease ID.
    pub fn ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.leases.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Grants a lease (applied from the log). Returns the TTL it got.
    ///
    /// # Errors
    /// [`LeaseError::Exists`] when the ID is taken.
    pub fn grant(&mut self, id: i64, ttl: i64, now: Instant) -> Result<i64, LeaseError> {
        if self.leases.contains_key(&id) {
            return Err(LeaseError::Exists);
        }
        let ttl = self.effective_ttl(ttl);
        let expiry = self.primary.then(|| now + secs(ttl));
        self.leases.insert(
            id,
            Lease {
                id,
                ttl,
                expiry,
                keys: BTreeSet::new(),
            },
        );
        crate::metrics::lease::granted(ttl);
        Ok(ttl)
    }

    /// Restores a lease at start-up.
    pub fn restore(&mut self, id: i64, ttl: i64) {
        self.leases.insert(
            id,
            Lease {
                id,
                ttl,
                expiry: None,
                keys: BTreeSet::new(),
            },
        );
    }

    /// Removes a lease (applied from the log) and returns it.
    ///
    /// # Errors
    /// [`LeaseError::NotFound`].
    pub fn revoke(&mut self, id: i64) -> Result<Lease, LeaseError> {
        let lease = self.leases.remove(&id).ok_or(LeaseError::NotFound)?;
        crate::metrics::lease::REVOKED.inc();
        Ok(lease)
    }

    /// Mirrors a key's move from one lease to another.
    pub fn attach(&mut self, key: &[u8], old_lease: i64, new_lease: i64) {
        if let Some(l) = self.leases.get_mut(&old_lease) {
            l.keys.remove(key);
        }
        if let Some(l) = self.leases.get_mut(&new_lease) {
            l.keys.insert(key.to_vec());
        }
    }

    /// Renews a lease (leader only); returns its TTL.
    ///
    /// # Errors
    /// [`LeaseError::NotFound`] or [`LeaseError::NotLeader`].
    pub fn renew(&mut self, id: i64, now: Instant) -> Result<i64, LeaseError> {
        if !self.primary {
            return Err(LeaseError::NotLeader);
        }
        let l = self.leases.get_mut(&id).ok_or(LeaseError::NotFound)?;
        l.expiry = Some(now + secs(l.ttl));
        crate::metrics::lease::RENEWED.inc();
        Ok(l.ttl)
    }

    /// This member became leader: every lease gets its whole TTL again from now, plus the
    /// promote extension.
    pub fn promote(&mut self, now: Instant) {
        self.primary = true;
        for l in self.leases.values_mut() {
            l.expiry = Some(now + self.promote_extension + secs(l.ttl));
        }
    }

    /// This member is no longer leader: deadlines stop.
    pub fn demote(&mut self) {
        self.primary = false;
        for l in self.leases.values_mut() {
            l.expiry = None;
        }
    }

    /// True while this member keeps deadlines.
    pub fn is_primary(&self) -> bool {
        self.primary
    }

    /// IDs of leases past their deadline.
    pub fn expired(&self, now: Instant) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .leases
            .values()
            .filter(|l| l.expiry.is_some_and(|at| at <= now))
            .map(|l| l.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Removes every lease (before a snapshot is installed).
    pub fn clear(&mut self) {
        self.leases.clear();
    }
}

fn secs(s: i64) -> Duration {
    Duration::from_secs(u64::try_from(s).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_leader_gives_every_lease_its_ttl_plus_the_extension() {
        let t0 = Instant::now();
        let mut l = Lessor::new(1);
        l.set_promote_extension(Duration::from_secs(1));
        l.promote(t0);
        l.grant(7, 5, t0).expect("grant");
        l.demote();
        // promoted 4 s later, with one second of the lease left under the old leader
        let t1 = t0 + Duration::from_secs(4);
        l.promote(t1);
        assert!(l.expired(t1 + Duration::from_millis(5900)).is_empty());
        assert_eq!(l.expired(t1 + Duration::from_secs(6)), vec![7]);
    }

    #[test]
    fn grant_keepalive_expiry_and_minimum_ttl() {
        let now = Instant::now();
        let mut l = Lessor::new(2);
        l.promote(now);
        assert_eq!(l.grant(7, 1, now), Ok(2), "the minimum TTL applies");
        assert_eq!(l.grant(7, 10, now), Err(LeaseError::Exists));
        assert!(l.expired(now + Duration::from_secs(1)).is_empty());
        assert_eq!(l.renew(7, now + Duration::from_secs(1)), Ok(2));
        assert!(l.expired(now + Duration::from_millis(2500)).is_empty());
        assert_eq!(l.expired(now + Duration::from_secs(4)), vec![7]);
        assert_eq!(l.renew(8, now), Err(LeaseError::NotFound));
    }

    #[test]
    fn keys_follow_attachments_and_followers_keep_no_deadline() {
        let now = Instant::now();
        let mut l = Lessor::new(2);
        l.grant(1, 60, now).expect("grant");
        l.grant(2, 60, now).expect("grant");
        l.attach(b"k", 0, 1);
        l.attach(b"k", 1, 2);
        assert!(l.get(1).expect("lease").keys.is_empty());
        assert!(l.get(2).expect("lease").keys.contains(b"k".as_slice()));
        assert!(
            l.expired(now + Duration::from_secs(1000)).is_empty(),
            "not primary"
        );
        assert_eq!(l.renew(1, now), Err(LeaseError::NotLeader));
        assert_eq!(l.revoke(2).expect("revoke").keys.len(), 1);
        assert_eq!(l.revoke(2).err(), Some(LeaseError::NotFound));
    }
}
