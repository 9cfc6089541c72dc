//! Member-local auth settings and tokens: `--auth-token`, `--auth-token-ttl`, `--bcrypt-cost`,
//! `--client-cert-auth`, and the table of simple tokens.
//!
//! Simple tokens work as in etcd: `Authenticate` is replicated through raft with a random
//! 16-letter prefix chosen by the member that checked the password; every member applies it and
//! records the token `<prefix>.<raft index>` for the user in memory, so the token is accepted by
//! every member (a member that has not applied the entry yet waits for it). Tokens expire
//! after `--auth-token-ttl` seconds without use, die with the member's process, and are dropped
//! when the user is deleted or changes password, and when auth is disabled.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use rand::Rng;
use thiserror::Error;

use super::jwt::{JwtError, JwtKeys};

/// etcd's default TTL of simple tokens (used when `--auth-token-ttl` is 0).
const DEFAULT_SIMPLE_TTL: Duration = Duration::from_secs(300);
/// Letters of a simple token prefix.
const PREFIX_LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// Length of a simple token prefix.
const PREFIX_LEN: usize = 16;
/// The costs bcrypt accepts.
const BCRYPT_COSTS: std::ops::RangeInclusive<u32> = 4..=31;

/// How tokens are issued.
#[derive(Clone, Debug)]
pub enum TokenKind {
    /// `--auth-token simple`: opaque tokens, replicated through raft, kept in memory.
    Simple,
    /// `--auth-token jwt,...`: signed tokens any member can verify alone.
    Jwt(Arc<JwtKeys>),
}

/// The auth settings of a member.
#[derive(Clone, Debug)]
pub struct AuthOptions {
    /// The token provider.
    pub token: TokenKind,
    /// How long a simple token lives without use.
    pub token_ttl: Duration,
    /// The bcrypt cost of new password hashes.
    pub bcrypt_cost: u32,
    /// `--client-cert-auth`: a request without a token is made by the user named by the
    /// Common Name of its verified client certificate.
    pub client_cert_auth: bool,
}

impl Default for AuthOptions {
    fn default() -> Self {
        Self {
            token: TokenKind::Simple,
            token_ttl: DEFAULT_SIMPLE_TTL,
            bcrypt_cost: bcrypt::DEFAULT_COST,
            client_cert_auth: false,
        }
    }
}

/// Why the auth settings cannot be used.
#[derive(Debug, Error)]
pub enum AuthOptionsError {
    /// `--auth-token` names no known provider.
    #[error("--auth-token {0:?}: unknown token type (use 'simple' or 'jwt,pub-key=...,priv-key=...,sign-method=...')")]
    UnknownKind(String),
    /// An option is not `key=value`, or is given twice.
    #[error("--auth-token: invalid option {0:?} (options are key=value, each at most once)")]
    BadOption(String),
    /// `--bcrypt-cost` out of bcrypt's range.
    #[error("--bcrypt-cost must be between 4 and 31 (set to {0})")]
    BcryptCost(u32),
    /// The JWT options are unusable.
    #[error("--auth-token jwt: {0}")]
    Jwt(#[from] JwtError),
}

impl AuthOptions {
    /// Settings from the flag values: `auth_token` is `simple` or
    /// `jwt,pub-key=FILE,priv-key=FILE,sign-method=ALG[,ttl=DURATION]`.
    ///
    /// # Errors
    /// An unknown provider, malformed options, unreadable or mismatched key files.
    pub fn from_flags(
        auth_token: &str,
        token_ttl_secs: u32,
        bcrypt_cost: u32,
        client_cert_auth: bool,
    ) -> Result<Self, AuthOptionsError> {
        if !BCRYPT_COSTS.contains(&bcrypt_cost) {
            return Err(AuthOptionsError::BcryptCost(bcrypt_cost));
        }
        let mut parts = auth_token.split(',');
        let kind = parts.next().unwrap_or_default();
        let mut options: Vec<(&str, &str)> = Vec::new();
        for part in parts {
            let (k, v) = part
                .split_once('=')
                .filter(|(k, v)| !v.contains('=') && !options.iter().any(|(o, _)| o == k))
                .ok_or_else(|| AuthOptionsError::BadOption(part.to_string()))?;
            options.push((k, v));
        }
        let token = match kind {
            "simple" => TokenKind::Simple,
            "jwt" => TokenKind::Jwt(Arc::new(JwtKeys::from_options(&options)?)),
            other => return Err(AuthOptionsError::UnknownKind(other.to_string())),
        };
        let token_ttl = match token_ttl_secs {
            0 => DEFAULT_SIMPLE_TTL,
            s => Duration::from_secs(u64::from(s)),
        };
        Ok(Self {
            token,
            token_ttl,
            bcrypt_cost,
            client_cert_auth,
        })
    }
}

struct SimpleToken {
    user: String,
    expires: Instant,
}

/// The auth settings and live simple tokens of a member (not replicated, not persisted).
pub struct Tokens {
    options: RwLock<AuthOptions>,
    simple: Mutex<HashMap<String, SimpleToken>>,
}

impl Default for Tokens {
    fn default() -> Self {
        Self::new(AuthOptions::default())
    }
}

impl Tokens {
    /// Tokens issued under `options`.
    pub fn new(options: AuthOptions) -> Self {
        Self {
            options: RwLock::new(options),
            simple: Mutex::new(HashMap::new()),
        }
    }

    /// Replaces the settings (at start, before any request is served).
    pub fn configure(&self, options: AuthOptions) {
        *self.options.write() = options;
    }

    /// The current settings.
    pub fn options(&self) -> AuthOptions {
        self.options.read().clone()
    }

    /// A fresh random prefix for a simple token.
    pub fn new_simple_prefix() -> String {
        let mut rng = rand::thread_rng();
        (0..PREFIX_LEN)
            .map(|_| char::from(PREFIX_LETTERS[rng.gen_range(0..PREFIX_LETTERS.len())]))
            .collect()
    }

    /// Records the simple token `<prefix>.<index>` for `user` (applying an Authenticate entry
    /// at raft index `index`) and returns it.
    pub fn assign_simple(&self, prefix: &str, index: u64, user: &str) -> String {
        let token = format!("{prefix}.{index}");
        let now = Instant::now();
        let ttl = self.options.read().token_ttl;
        let mut table = self.simple.lock();
        table.retain(|_, t| t.expires > now);
        table.insert(
            token.clone(),
            SimpleToken {
                user: user.to_string(),
                expires: now + ttl,
            },
        );
        token
    }

    /// The user of a live simple token; using a token restarts its TTL.
    pub fn simple_user(&self, token: &str) -> Option<String> {
        let now = Instant::now();
        let ttl = self.options.read().token_ttl;
        let mut table = self.simple.lock();
        match table.get_mut(token) {
            Some(t) if t.expires > now => {
                t.expires = now + ttl;
                Some(t.user.clone())
            }
            Some(_) => {
                table.remove(token);
                None
            }
            None => None,
        }
    }

    /// Drops every token of `user` (deleted, or its password changed).
    pub fn invalidate_user(&self, user: &str) {
        self.simple.lock().retain(|_, t| t.user != user);
    }

    /// Drops every token (auth disabled).
    pub fn clear(&self) {
        self.simple.lock().clear();
    }
}

/// The raft index a simple token was assigned at, if `token` has the shape `<prefix>.<index>`.
pub fn simple_token_index(token: &str) -> Option<u64> {
    let (prefix, index) = token.split_once('.')?;
    if prefix.contains('.') || index.contains('.') {
        return None;
    }
    index.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_tokens_are_prefix_dot_index() {
        let t = Tokens::default();
        let p = Tokens::new_simple_prefix();
        assert_eq!(p.len(), 16);
        assert!(p.bytes().all(|b| b.is_ascii_alphabetic()));
        let tok = t.assign_simple(&p, 42, "alice");
        assert_eq!(tok, format!("{p}.42"));
        assert_eq!(simple_token_index(&tok), Some(42));
        assert_eq!(t.simple_user(&tok).as_deref(), Some("alice"));
        assert_eq!(simple_token_index("abc"), None);
        assert_eq!(simple_token_index("a.b.3"), None);
        assert_eq!(simple_token_index("a.x"), None);
    }

    #[test]
    fn tokens_expire_and_are_invalidated() {
        let t = Tokens::new(AuthOptions {
            token_ttl: Duration::ZERO,
            ..AuthOptions::default()
        });
        let tok = t.assign_simple("p", 1, "alice");
        assert_eq!(t.simple_user(&tok), None, "a zero TTL expires at once");
        t.configure(AuthOptions::default());
        let a = t.assign_simple("p", 2, "alice");
        let b = t.assign_simple("q", 3, "bob");
        t.invalidate_user("alice");
        assert_eq!(t.simple_user(&a), None);
        assert_eq!(t.simple_user(&b).as_deref(), Some("bob"));
        t.clear();
        assert_eq!(t.simple_user(&b), None);
    }

    #[test]
    fn flags_parse_like_etcd() {
        let o = AuthOptions::from_flags("simple", 60, 4, true).expect("simple");
        assert!(matches!(o.token, TokenKind::Simple));
        assert_eq!(o.token_ttl, Duration::from_secs(60));
        assert!(o.client_cert_auth);
        let o = AuthOptions::from_flags("simple", 0, 10, false).expect("simple");
        assert_eq!(o.token_ttl, DEFAULT_SIMPLE_TTL);
        assert!(matches!(
            AuthOptions::from_flags("opaque", 1, 10, false),
            Err(AuthOptionsError::UnknownKind(_))
        ));
        assert!(matches!(
            AuthOptions::from_flags("jwt,sign-method", 1, 10, false),
            Err(AuthOptionsError::BadOption(_))
        ));
        assert!(matches!(
            AuthOptions::from_flags("jwt,ttl=1m,ttl=2m", 1, 10, false),
            Err(AuthOptionsError::BadOption(_))
        ));
        assert!(matches!(
            AuthOptions::from_flags("simple", 1, 3, false),
            Err(AuthOptionsError::BcryptCost(3))
        ));
    }
}
