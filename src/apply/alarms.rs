//! Active alarms (NOSPACE, CORRUPT), persisted.

use crate::proto::etcdserverpb::AlarmMember;
use crate::storage::{Engine, StateBatch, StorageError};

const ALARM_PREFIX: &[u8] = b"a/";

/// The alarms raised in the cluster.
#[derive(Debug, Clone, Default)]
pub struct Alarms {
    active: Vec<AlarmMember>,
}

fn alarm_key(a: &AlarmMember) -> Vec<u8> {
    let mut k = ALARM_PREFIX.to_vec();
    k.extend_from_slice(&a.member_id.to_be_bytes());
    k.extend_from_slice(&a.alarm.to_be_bytes());
    k
}

impl Alarms {
    /// Loads the alarms from storage.
    ///
    /// # Errors
    /// Storage failure.
    pub fn load(engine: &Engine) -> Result<Self, StorageError> {
        let mut active = Vec::new();
        for (k, _) in engine.state_scan_prefix(ALARM_PREFIX)? {
            let rest = &k[ALARM_PREFIX.len()..];
            if rest.len() == 12 {
                let member_id = u64::from_be_bytes(rest[..8].try_into().unwrap_or_default());
                let alarm = i32::from_be_bytes(rest[8..].try_into().unwrap_or_default());
                active.push(AlarmMember { member_id, alarm });
            }
        }
        Ok(Self { active })
    }

    /// Every active alarm.
    pub fn list(&self) -> Vec<AlarmMember> {
        self.active.clone()
    }

    /// True if an alarm of this type is active on any member.
    pub fn has(&self, alarm: i32) -> bool {
        self.active.iter().any(|a| a.alarm == alarm)
    }

    /// Raises an alarm; false if it was already active.
    pub fn activate(&mut self, a: AlarmMember, batch: &mut StateBatch) -> bool {
        if self.active.contains(&a) {
            return false;
        }
        batch.put(alarm_key(&a), []);
        self.active.push(a);
        true
    }

    /// Clears an alarm; false if it was not active.
    pub fn deactivate(&mut self, a: &AlarmMember, batch: &mut StateBatch) -> bool {
        let before = self.active.len();
        self.active.retain(|x| x != a);
        if self.active.len() == before {
            return false;
        }
        batch.delete(alarm_key(a));
        true
    }
}
