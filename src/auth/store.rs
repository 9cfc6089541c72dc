//! The replicated auth state: users, roles, the enabled flag and the auth revision.
//!
//! Every mutation here is applied from the raft log, so it must be deterministic: passwords
//! arrive already hashed (the API hashes them before proposing, see `api::auth`). Each change
//! of users or roles, and disabling auth, bumps the auth revision, as etcd does; enabling does
//! not. Records live in the state tree under `u/<name>` (an `authpb.User`), `r/<name>` (an
//! `authpb.Role`), `m/auth_enabled` and `m/auth_revision`, written into apply's batch so they
//! are atomic with the applied index.

use std::collections::BTreeMap;

use prost::Message;

use super::perms::{self, Access};
use super::{AuthError, AuthInfo, ROOT};
use crate::proto::authpb::{Permission, Role, User, UserAddOptions};
use crate::storage::{Engine, StateBatch, StorageError};

const USER_PREFIX: &[u8] = b"u/";
const ROLE_PREFIX: &[u8] = b"r/";
const ENABLED_KEY: &[u8] = b"m/auth_enabled";
const REVISION_KEY: &[u8] = b"m/auth_revision";

/// The auth revision of a store that never changed (etcd writes 1 when it creates its store).
const INITIAL_REVISION: u64 = 1;

fn record_key(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(name);
    k
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt {
        what: what.to_string(),
        detail: detail.to_string(),
    }
}

/// The auth part of a snapshot, in etcd's shapes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthImage {
    /// The enabled flag, if it was ever written (etcd writes it on the first enable/disable).
    pub enabled: Option<bool>,
    /// The auth revision.
    pub revision: u64,
    /// Users, in name order (passwords as bcrypt hashes).
    pub users: Vec<User>,
    /// Roles, in name order.
    pub roles: Vec<Role>,
}

/// Users, roles and the enabled flag of a member, as applied so far.
#[derive(Debug, Clone)]
pub struct AuthStore {
    enabled: Option<bool>,
    revision: u64,
    users: BTreeMap<Vec<u8>, User>,
    roles: BTreeMap<Vec<u8>, Role>,
}

impl Default for AuthStore {
    fn default() -> Self {
        Self {
            enabled: None,
            revision: INITIAL_REVISION,
            users: BTreeMap::new(),
            roles: BTreeMap::new(),
        }
    }
}

impl AuthStore {
    /// Reads the auth records from the state tree.
    ///
    /// # Errors
    /// Storage failure or a record that does not decode.
    pub fn load(engine: &Engine) -> Result<Self, StorageError> {
        let mut store = Self::default();
        if let Some(v) = engine.state_get(ENABLED_KEY)? {
            store.enabled = Some(v == [1]);
        }
        if let Some(v) = engine.state_get(REVISION_KEY)? {
            let bytes: [u8; 8] = v
                .as_slice()
                .try_into()
                .map_err(|_| corrupt("auth revision", format!("{} bytes, expected 8", v.len())))?;
            store.revision = u64::from_be_bytes(bytes).max(INITIAL_REVISION);
        }
        for (k, v) in engine.state_scan_prefix(USER_PREFIX)? {
            let user = User::decode(v.as_slice()).map_err(|e| corrupt("auth user", e))?;
            store.users.insert(k[USER_PREFIX.len()..].to_vec(), user);
        }
        for (k, v) in engine.state_scan_prefix(ROLE_PREFIX)? {
            let role = Role::decode(v.as_slice()).map_err(|e| corrupt("auth role", e))?;
            store.roles.insert(k[ROLE_PREFIX.len()..].to_vec(), role);
        }
        Ok(store)
    }

    /// Writes `image` as auth records into `batch` (restoring a snapshot into a cleared tree).
    pub fn import(batch: &mut StateBatch, image: &AuthImage) {
        if let Some(enabled) = image.enabled {
            batch.put(ENABLED_KEY, [u8::from(enabled)]);
        }
        batch.put(
            REVISION_KEY,
            image.revision.max(INITIAL_REVISION).to_be_bytes(),
        );
        for u in &image.users {
            batch.put(record_key(USER_PREFIX, &u.name), u.encode_to_vec());
        }
        for r in &image.roles {
            batch.put(record_key(ROLE_PREFIX, &r.name), r.encode_to_vec());
        }
    }

    /// The auth state in etcd's snapshot shapes.
    pub fn export(&self) -> AuthImage {
        AuthImage {
            enabled: self.enabled,
            revision: self.revision,
            users: self.users.values().cloned().collect(),
            roles: self.roles.values().cloned().collect(),
        }
    }

    /// True when authentication is enabled.
    pub fn is_enabled(&self) -> bool {
        self.enabled == Some(true)
    }

    /// The auth revision.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// A user by name.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name.as_bytes())
    }

    /// A role by name.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name.as_bytes())
    }

    /// Every user name, in byte order.
    pub fn user_names(&self) -> Vec<String> {
        self.users
            .keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect()
    }

    /// Every role name, in byte order.
    pub fn role_names(&self) -> Vec<String> {
        self.roles
            .keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect()
    }

    /// True when user `user` exists and has role `role`.
    pub fn has_role(&self, user: &str, role: &str) -> bool {
        self.user(user)
            .is_some_and(|u| u.roles.iter().any(|r| r == role))
    }

    fn commit_revision(&mut self, batch: &mut StateBatch) {
        self.revision += 1;
        batch.put(REVISION_KEY, self.revision.to_be_bytes());
    }

    fn put_user(&mut self, user: User, batch: &mut StateBatch) {
        batch.put(record_key(USER_PREFIX, &user.name), user.encode_to_vec());
        self.users.insert(user.name.clone(), user);
    }

    fn put_role(&mut self, role: Role, batch: &mut StateBatch) {
        batch.put(record_key(ROLE_PREFIX, &role.name), role.encode_to_vec());
        self.roles.insert(role.name.clone(), role);
    }

    // ---- mutations, applied from the raft log ----

    /// Enables authentication; `root` must exist and have the role `root`.
    ///
    /// # Errors
    /// [`AuthError::RootUserNotExist`], [`AuthError::RootRoleNotExist`].
    pub fn enable(&mut self, batch: &mut StateBatch) -> Result<(), AuthError> {
        if self.is_enabled() {
            return Ok(());
        }
        let root = self.user(ROOT).ok_or(AuthError::RootUserNotExist)?;
        if !has_root_role(root) {
            return Err(AuthError::RootRoleNotExist);
        }
        self.enabled = Some(true);
        batch.put(ENABLED_KEY, [1]);
        Ok(())
    }

    /// Disables authentication; returns true when it was enabled (tokens must then be dropped).
    pub fn disable(&mut self, batch: &mut StateBatch) -> bool {
        if !self.is_enabled() {
            return false;
        }
        self.enabled = Some(false);
        batch.put(ENABLED_KEY, [0]);
        self.commit_revision(batch);
        true
    }

    /// Adds a user. `password_hash` is the bcrypt hash (ignored for `no_password` users).
    ///
    /// # Errors
    /// [`AuthError::UserEmpty`], [`AuthError::UserAlreadyExist`].
    pub fn user_add(
        &mut self,
        name: &str,
        password_hash: &[u8],
        options: Option<UserAddOptions>,
        batch: &mut StateBatch,
    ) -> Result<(), AuthError> {
        if name.is_empty() {
            return Err(AuthError::UserEmpty);
        }
        if self.user(name).is_some() {
            return Err(AuthError::UserAlreadyExist);
        }
        let options = options.unwrap_or_default();
        let password = if options.no_password {
            Vec::new()
        } else {
            password_hash.to_vec()
        };
        let user = User {
            name: name.as_bytes().to_vec(),
            password,
            roles: Vec::new(),
            options: Some(options),
        };
        self.put_user(user, batch);
        self.commit_revision(batch);
        Ok(())
    }

    /// Deletes a user (not `root` while auth is enabled).
    ///
    /// # Errors
    /// [`AuthError::InvalidAuthMgmt`], [`AuthError::UserNotFound`].
    pub fn user_delete(&mut self, name: &str, batch: &mut StateBatch) -> Result<(), AuthError> {
        if self.is_enabled() && name == ROOT {
            return Err(AuthError::InvalidAuthMgmt);
        }
        if self.users.remove(name.as_bytes()).is_none() {
            return Err(AuthError::UserNotFound);
        }
        batch.delete(record_key(USER_PREFIX, name.as_bytes()));
        self.commit_revision(batch);
        Ok(())
    }

    /// Replaces a user's password hash.
    ///
    /// # Errors
    /// [`AuthError::UserNotFound`].
    pub fn user_change_password(
        &mut self,
        name: &str,
        password_hash: &[u8],
        batch: &mut StateBatch,
    ) -> Result<(), AuthError> {
        let mut user = self.user(name).cloned().ok_or(AuthError::UserNotFound)?;
        user.password = password_hash.to_vec();
        self.put_user(user, batch);
        self.commit_revision(batch);
        Ok(())
    }

    /// Grants `role` to `user` (the role `root` need not exist as a role).
    ///
    /// # Errors
    /// [`AuthError::UserNotFound`], [`AuthError::RoleNotFound`].
    pub fn user_grant_role(
        &mut self,
        user: &str,
        role: &str,
        batch: &mut StateBatch,
    ) -> Result<(), AuthError> {
        let mut u = self.user(user).cloned().ok_or(AuthError::UserNotFound)?;
        if role != ROOT && self.role(role).is_none() {
            return Err(AuthError::RoleNotFound);
        }
        let at = u.roles.partition_point(|r| r.as_str() < role);
        if u.roles.get(at).is_some_and(|r| r == role) {
            return Ok(());
        }
        u.roles.push(role.to_string());
        u.roles.sort();
        self.put_user(u, batch);
        self.commit_revision(batch);
        Ok(())
    }

    /// Revokes `role` from `user` (not `root` from `root` while auth is enabled).
    ///
    /// # Errors
    /// [`AuthError::InvalidAuthMgmt`], [`AuthError::UserNotFound`],
    /// [`AuthError::RoleNotGranted`].
    pub fn user_revoke_role(
        &mut self,
        user: &str,
        role: &str,
        batch: &mut StateBatch,
    ) -> Result<(), AuthError> {
        if self.is_enabled() && user == ROOT && role == ROOT {
            return Err(AuthError::InvalidAuthMgmt);
        }
        let mut u = self.user(user).cloned().ok_or(AuthError::UserNotFound)?;
        let before = u.roles.len();
        u.roles.retain(|r| r != role);
        if u.roles.len() == before {
            return Err(AuthError::RoleNotGranted);
        }
        self.put_user(u, batch);
        self.commit_revision(batch);
        Ok(())
    }

    /// Adds a role with no permissions.
    ///
    /// # Errors
    /// [`AuthError::RoleEmpty`], [`AuthError::RoleAlreadyExist`].
    pub fn role_add(&mut self, name: &str, batch: &mut StateBatch) -> Result<(), AuthError> {
        if name.is_empty() {
            return Err(AuthError::RoleEmpty);
        }
        if self.role(name).is_some() {
            return Err(AuthError::RoleAlreadyExist);
        }
        let role = Role {
            name: name.as_bytes().to_vec(),
            key_permission: Vec::new(),
        };
        self.put_role(role, batch);
        self.commit_revision(batch);
        Ok(())
    }

    /// Deletes a role (not `root` while auth is enabled) and revokes it from every user.
    ///
    /// # Errors
    /// [`AuthError::InvalidAuthMgmt`], [`AuthError::RoleNotFound`].
    pub fn role_delete(&mut self, name: &str, batch: &mut StateBatch) -> Result<(), AuthError> {
        if self.is_enabled() && name == ROOT {
            return Err(AuthError::InvalidAuthMgmt);
        }
        if self.roles.remove(name.as_bytes()).is_none() {
            return Err(AuthError::RoleNotFound);
        }
        batch.delete(record_key(ROLE_PREFIX, name.as_bytes()));
        let holders: Vec<User> = self
            .users
            .values()
            .filter(|u| u.roles.iter().any(|r| r == name))
            .cloned()
            .collect();
        for mut u in holders {
            u.roles.retain(|r| r != name);
            self.put_user(u, batch);
        }
        self.commit_revision(batch);
        Ok(())
    }

    /// Grants a permission to a role, or changes the type of the same permission granted before.
    ///
    /// As in etcd, permissions stay sorted by key, and only the first permission with a key
    /// not below the new one is compared with it.
    ///
    /// # Errors
    /// [`AuthError::RoleNotFound`].
    pub fn role_grant_permission(
        &mut self,
        name: &str,
        perm: Permission,
        batch: &mut StateBatch,
    ) -> Result<(), AuthError> {
        let mut role = self.role(name).cloned().ok_or(AuthError::RoleNotFound)?;
        let at = role.key_permission.partition_point(|p| p.key < perm.key);
        match role.key_permission.get_mut(at) {
            Some(p) if p.key == perm.key && p.range_end == perm.range_end => {
                p.perm_type = perm.perm_type;
            }
            _ => {
                role.key_permission.push(perm);
                role.key_permission.sort_by(|a, b| a.key.cmp(&b.key));
            }
        }
        self.put_role(role, batch);
        self.commit_revision(batch);
        Ok(())
    }

    /// Revokes the permission on exactly `[key, range_end)` from a role.
    ///
    /// # Errors
    /// [`AuthError::RoleNotFound`], [`AuthError::PermissionNotGranted`].
    pub fn role_revoke_permission(
        &mut self,
        name: &str,
        key: &[u8],
        range_end: &[u8],
        batch: &mut StateBatch,
    ) -> Result<(), AuthError> {
        let mut role = self.role(name).cloned().ok_or(AuthError::RoleNotFound)?;
        let before = role.key_permission.len();
        role.key_permission
            .retain(|p| p.key != key || p.range_end != range_end);
        if role.key_permission.len() == before {
            return Err(AuthError::PermissionNotGranted);
        }
        self.put_role(role, batch);
        self.commit_revision(batch);
        Ok(())
    }

    // ---- checks ----

    /// Whether a token may be issued to `name` (password already checked).
    ///
    /// # Errors
    /// [`AuthError::AuthNotEnabled`], [`AuthError::AuthFailed`] (unknown or `no_password` user).
    pub fn may_authenticate(&self, name: &str) -> Result<(), AuthError> {
        if !self.is_enabled() {
            return Err(AuthError::AuthNotEnabled);
        }
        let user = self.user(name).ok_or(AuthError::AuthFailed)?;
        if user.options.as_ref().is_some_and(|o| o.no_password) {
            return Err(AuthError::AuthFailed);
        }
        Ok(())
    }

    /// The password hash to check for `name`, and the auth revision it was read at.
    ///
    /// # Errors
    /// [`AuthError::AuthNotEnabled`], [`AuthError::AuthFailed`],
    /// [`AuthError::NoPasswordUser`].
    pub fn password_hash(&self, name: &str) -> Result<(Vec<u8>, u64), AuthError> {
        if !self.is_enabled() {
            return Err(AuthError::AuthNotEnabled);
        }
        let user = self.user(name).ok_or(AuthError::AuthFailed)?;
        if user.options.as_ref().is_some_and(|o| o.no_password) {
            return Err(AuthError::NoPasswordUser);
        }
        Ok((user.password.clone(), self.revision))
    }

    /// etcd's check of one key operation: allowed when auth is disabled; otherwise the
    /// identity must name a user, be as recent as the auth state, and the user must have the
    /// root role or a permission covering `[key, range_end)` (one key when `range_end` is
    /// empty).
    ///
    /// # Errors
    /// [`AuthError::UserEmpty`], [`AuthError::OldRevision`], [`AuthError::PermissionDenied`].
    pub fn check_key_op(
        &self,
        who: &AuthInfo,
        key: &[u8],
        range_end: &[u8],
        access: Access,
    ) -> Result<(), AuthError> {
        if !self.is_enabled() {
            return Ok(());
        }
        if who.revision == 0 {
            return Err(AuthError::UserEmpty);
        }
        if who.revision < self.revision {
            return Err(AuthError::OldRevision);
        }
        let user = self.user(&who.user).ok_or(AuthError::PermissionDenied)?;
        if has_root_role(user) {
            return Ok(());
        }
        let roles = user.roles.iter().filter_map(|r| self.role(r));
        if perms::permits(roles, key, range_end, access) {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied)
        }
    }

    /// etcd's admin check: allowed when auth is disabled; otherwise the user must exist and
    /// have the root role.
    ///
    /// # Errors
    /// [`AuthError::UserEmpty`], [`AuthError::UserNotFound`], [`AuthError::PermissionDenied`].
    pub fn check_admin(&self, who: &AuthInfo) -> Result<(), AuthError> {
        if !self.is_enabled() {
            return Ok(());
        }
        if who.user.is_empty() {
            return Err(AuthError::UserEmpty);
        }
        let user = self.user(&who.user).ok_or(AuthError::UserNotFound)?;
        if has_root_role(user) {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied)
        }
    }
}

/// True when `user` has the role `root` (its roles are kept sorted).
fn has_root_role(user: &User) -> bool {
    user.roles
        .binary_search_by(|r| r.as_str().cmp(ROOT))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::authpb::permission::Type as PermType;

    fn perm(key: &str, end: &str, t: PermType) -> Permission {
        Permission {
            perm_type: t as i32,
            key: key.as_bytes().to_vec(),
            range_end: end.as_bytes().to_vec(),
        }
    }

    fn who(user: &str, revision: u64) -> AuthInfo {
        AuthInfo {
            user: user.into(),
            revision,
        }
    }

    #[test]
    fn enabling_needs_root_with_root_role() {
        let mut s = AuthStore::default();
        let mut b = StateBatch::default();
        assert_eq!(s.enable(&mut b), Err(AuthError::RootUserNotExist));
        s.user_add("root", b"h", None, &mut b).expect("add");
        assert_eq!(s.enable(&mut b), Err(AuthError::RootRoleNotExist));
        // the role `root` need not exist to be granted
        s.user_grant_role("root", "root", &mut b).expect("grant");
        let rev = s.revision();
        s.enable(&mut b).expect("enable");
        assert!(s.is_enabled());
        assert_eq!(s.revision(), rev, "enabling does not bump the revision");
        assert!(s.disable(&mut b));
        assert_eq!(s.revision(), rev + 1, "disabling does");
        assert!(!s.disable(&mut b));
    }

    #[test]
    fn root_is_protected_while_enabled() {
        let mut s = AuthStore::default();
        let mut b = StateBatch::default();
        s.user_add("root", b"h", None, &mut b).expect("add");
        s.role_add("root", &mut b).expect("role");
        s.user_grant_role("root", "root", &mut b).expect("grant");
        s.enable(&mut b).expect("enable");
        assert_eq!(
            s.user_delete("root", &mut b),
            Err(AuthError::InvalidAuthMgmt)
        );
        assert_eq!(
            s.role_delete("root", &mut b),
            Err(AuthError::InvalidAuthMgmt)
        );
        assert_eq!(
            s.user_revoke_role("root", "root", &mut b),
            Err(AuthError::InvalidAuthMgmt)
        );
        s.disable(&mut b);
        s.user_revoke_role("root", "root", &mut b)
            .expect("revoke once disabled");
    }

    #[test]
    fn user_and_role_errors_match_etcd() {
        let mut s = AuthStore::default();
        let mut b = StateBatch::default();
        assert_eq!(
            s.user_add("", b"h", None, &mut b),
            Err(AuthError::UserEmpty)
        );
        s.user_add("alice", b"h", None, &mut b).expect("add");
        assert_eq!(
            s.user_add("alice", b"h", None, &mut b),
            Err(AuthError::UserAlreadyExist)
        );
        assert_eq!(
            s.user_grant_role("bob", "r", &mut b),
            Err(AuthError::UserNotFound)
        );
        assert_eq!(
            s.user_grant_role("alice", "r", &mut b),
            Err(AuthError::RoleNotFound)
        );
        assert_eq!(s.role_add("", &mut b), Err(AuthError::RoleEmpty));
        s.role_add("r", &mut b).expect("role");
        assert_eq!(s.role_add("r", &mut b), Err(AuthError::RoleAlreadyExist));
        let rev = s.revision();
        s.user_grant_role("alice", "r", &mut b).expect("grant");
        s.user_grant_role("alice", "r", &mut b)
            .expect("grant again is a no-op");
        assert_eq!(s.revision(), rev + 1);
        assert_eq!(
            s.user_revoke_role("alice", "x", &mut b),
            Err(AuthError::RoleNotGranted)
        );
        assert_eq!(
            s.role_revoke_permission("r", b"k", b"", &mut b),
            Err(AuthError::PermissionNotGranted)
        );
        s.role_delete("r", &mut b).expect("delete role");
        assert!(
            s.user("alice").expect("alice").roles.is_empty(),
            "revoked from users"
        );
        assert_eq!(
            s.user_delete("nobody", &mut b),
            Err(AuthError::UserNotFound)
        );
    }

    #[test]
    fn permissions_sort_by_key_and_update_in_place() {
        let mut s = AuthStore::default();
        let mut b = StateBatch::default();
        s.role_add("r", &mut b).expect("role");
        s.role_grant_permission("r", perm("b", "", PermType::Read), &mut b)
            .expect("g");
        s.role_grant_permission("r", perm("a", "c", PermType::Read), &mut b)
            .expect("g");
        s.role_grant_permission("r", perm("b", "", PermType::Readwrite), &mut b)
            .expect("g");
        let keys: Vec<(Vec<u8>, i32)> = s
            .role("r")
            .expect("role")
            .key_permission
            .iter()
            .map(|p| (p.key.clone(), p.perm_type))
            .collect();
        assert_eq!(
            keys,
            vec![
                (b"a".to_vec(), PermType::Read as i32),
                (b"b".to_vec(), PermType::Readwrite as i32)
            ]
        );
    }

    #[test]
    fn key_checks_follow_etcd() {
        let mut s = AuthStore::default();
        let mut b = StateBatch::default();
        for u in ["root", "alice"] {
            s.user_add(u, b"h", None, &mut b).expect("add");
        }
        s.user_grant_role("root", "root", &mut b).expect("grant");
        s.role_add("app", &mut b).expect("role");
        s.role_grant_permission("app", perm("/app/", "/app0", PermType::Read), &mut b)
            .expect("g");
        s.user_grant_role("alice", "app", &mut b).expect("grant");
        // disabled: everything goes
        s.check_key_op(&AuthInfo::anonymous(), b"x", b"", Access::Write)
            .expect("disabled");
        s.enable(&mut b).expect("enable");
        let rev = s.revision();
        assert_eq!(
            s.check_key_op(&AuthInfo::anonymous(), b"x", b"", Access::Read),
            Err(AuthError::UserEmpty)
        );
        s.check_key_op(&who("root", rev), b"", b"\0", Access::Write)
            .expect("root");
        s.check_key_op(&who("alice", rev), b"/app/a", b"", Access::Read)
            .expect("read");
        assert_eq!(
            s.check_key_op(&who("alice", rev), b"/app/a", b"", Access::Write),
            Err(AuthError::PermissionDenied)
        );
        assert_eq!(
            s.check_key_op(&who("alice", rev - 1), b"/app/a", b"", Access::Read),
            Err(AuthError::OldRevision)
        );
        assert_eq!(
            s.check_key_op(&who("ghost", rev), b"/app/a", b"", Access::Read),
            Err(AuthError::PermissionDenied)
        );
        assert_eq!(
            s.check_admin(&who("alice", rev)),
            Err(AuthError::PermissionDenied)
        );
        assert_eq!(
            s.check_admin(&who("ghost", rev)),
            Err(AuthError::UserNotFound)
        );
        assert_eq!(
            s.check_admin(&AuthInfo::anonymous()),
            Err(AuthError::UserEmpty)
        );
        s.check_admin(&who("root", 0))
            .expect("admin ignores the revision");
    }

    #[test]
    fn authenticate_rules() {
        let mut s = AuthStore::default();
        let mut b = StateBatch::default();
        assert_eq!(s.password_hash("root"), Err(AuthError::AuthNotEnabled));
        s.user_add("root", b"hash", None, &mut b).expect("add");
        s.user_grant_role("root", "root", &mut b).expect("grant");
        s.user_add(
            "cn",
            b"",
            Some(UserAddOptions { no_password: true }),
            &mut b,
        )
        .expect("add");
        s.enable(&mut b).expect("enable");
        assert_eq!(s.password_hash("root").expect("hash").0, b"hash");
        assert_eq!(s.password_hash("cn"), Err(AuthError::NoPasswordUser));
        assert_eq!(s.password_hash("nobody"), Err(AuthError::AuthFailed));
        assert_eq!(s.may_authenticate("cn"), Err(AuthError::AuthFailed));
        s.may_authenticate("root").expect("root");
    }

    #[test]
    fn records_survive_a_reload_and_an_image() {
        let engine = Engine::temporary().expect("engine");
        let mut s = AuthStore::default();
        let mut b = StateBatch::default();
        s.user_add("root", b"hash", None, &mut b).expect("add");
        s.user_grant_role("root", "root", &mut b).expect("grant");
        s.role_add("r", &mut b).expect("role");
        s.role_grant_permission("r", perm("k", "", PermType::Write), &mut b)
            .expect("g");
        s.enable(&mut b).expect("enable");
        engine.apply_state(b).expect("apply");
        let loaded = AuthStore::load(&engine).expect("load");
        assert_eq!(loaded.export(), s.export());
        let image = s.export();
        assert_eq!(image.enabled, Some(true));
        assert_eq!(image.revision, 5);
        let other = Engine::temporary().expect("engine");
        let mut b = StateBatch::default();
        AuthStore::import(&mut b, &image);
        other.apply_state(b).expect("apply");
        assert_eq!(AuthStore::load(&other).expect("load").export(), image);
        // a fresh store is at revision 1 with no flag, as etcd's
        let fresh = AuthStore::load(&Engine::temporary().expect("engine")).expect("load");
        assert_eq!((fresh.export().enabled, fresh.revision()), (None, 1));
    }
}
