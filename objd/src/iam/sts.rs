//! Temporary credentials (STS sessions): an access key, a secret and a
//! session token that together act for an identity until they expire.
//!
//! Nothing is stored. The secret of a temporary access key is an HMAC of
//! the key id under a key derived from the root secret; the session token
//! is the session's claims sealed with AES-256-GCM under another derived
//! key, with the access key id as associated data, so a token works only
//! beside its own key and its holder can neither read nor alter it. Any
//! node checks any session without asking another, and a session costs
//! nothing to keep.
//!
//! The claims are turned into rights again at every request: a session a
//! user asked for has the rights that user (or service account) has now,
//! narrowed by the session policy, so disabling or deleting the user or
//! the key that asked ends its sessions; a federated session has the
//! policies its identity provider named, as they read now.

use super::seal::{Sealer, derive_key};
use super::{Iam, Identity};
use crate::policy::Policy;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::sync::Arc;

/// Temporary access keys start with this, as AWS's do.
pub const SESSION_KEY_PREFIX: &str = "ASIA";
/// Shortest and longest session, in seconds (15 minutes, 12 hours).
pub const MIN_DURATION: u64 = 900;
pub const MAX_DURATION: u64 = 43_200;
/// A session's length when the request names none.
pub const DEFAULT_DURATION: u64 = 3600;
/// Parsed session policies kept in memory.
pub(super) const SESSION_POLICIES: usize = 1024;
/// Tokens start with this (a format version).
const TOKEN_PREFIX: &str = "ST1.";

/// What a session is. Sealed into its token.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Seconds since the epoch at which the session ends.
    pub exp: i64,
    /// The session name (`RoleSessionName`).
    pub name: String,
    /// A session a user asked for: the access key that asked. Its rights,
    /// as they are at each request, bound the session's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_key: Option<String>,
    /// A federated session: who the identity provider says the caller is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// A federated session: the managed policies it has, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// The session policy: narrows what the session may do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// Credentials of a new session. The secret and token stay out of `Debug`.
pub struct Session {
    pub access_key: String,
    pub secret_key: String,
    pub token: String,
    /// Seconds since the epoch at which it ends.
    pub expires: i64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("access_key", &self.access_key)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// Why a request signed with a temporary access key is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("a temporary access key needs its session token (x-amz-security-token)")]
    Missing,
    #[error("the session token is not valid for this access key")]
    Invalid,
    #[error("the session token has expired")]
    Expired,
    #[error("the identity the session was issued for is gone or disabled")]
    Revoked,
}

/// The derived keys of sessions.
pub(super) struct SessionKeys {
    tokens: Sealer,
    secrets: [u8; 32],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys")
    }
}

impl SessionKeys {
    pub(super) fn derive(root_secret: &str) -> Self {
        Self {
            tokens: Sealer::labelled(root_secret, "strata sts tokens v1"),
            secrets: derive_key(root_secret, "strata sts secrets v1"),
        }
    }

    fn secret(&self, access_key: &str) -> String {
        let mut m =
            <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(&self.secrets).expect("any key length");
        m.update(access_key.as_bytes());
        let mac = m.finalize().into_bytes();
        base64_simd::STANDARD.encode_to_string(&mac[..30])
    }
    fn issue(&self, claims: &Claims) -> Session {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let mut access_key = String::from(SESSION_KEY_PREFIX);
        for _ in 0..16 {
            access_key.push(ALPHABET[rand::random_range(0..ALPHABET.len())] as char);
        }
        let plain = serde_json::to_vec(claims).expect("claims serialize");
        let sealed = self.tokens.seal_bytes(&access_key, &plain);
        let token = format!(
            "{TOKEN_PREFIX}{}",
            base64_simd::URL_SAFE_NO_PAD.encode_to_string(&sealed)
        );
        Session {
            secret_key: self.secret(&access_key),
            access_key,
            token,
            expires: claims.exp,
        }
    }

    fn open(&self, access_key: &str, token: Option<&str>, now: i64) -> Result<Claims, SessionError> {
        let token = token.ok_or(SessionError::Missing)?;
        let raw = token
            .strip_prefix(TOKEN_PREFIX)
            .and_then(|t| base64_simd::URL_SAFE_NO_PAD.decode_to_vec(t).ok())
            .ok_or(SessionError::Invalid)?;
        let plain = self
            .tokens
            .open_bytes(access_key, &raw)
            .map_err(|_| SessionError::Invalid)?;
        let claims: Claims = serde_json::from_slice(&plain).map_err(|_| SessionError::Invalid)?;
        if claims.exp <= now {
            return Err(SessionError::Expired);
        }
        Ok(claims)
    }
}

fn is_session_key(access_key: &str) -> bool {
    access_key.len() == 20
        && access_key.starts_with(SESSION_KEY_PREFIX)
        && access_key
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Iam {
    /// New temporary credentials carrying `claims`.
    pub fn issue_session(&self, claims: &Claims) -> Session {
        self.sessions.issue(claims)
    }

    /// The secret of a temporary access key (whether or not a session with
    /// it was ever issued: its token decides that).
    pub fn session_secret(&self, access_key: &str) -> Option<String> {
        is_session_key(access_key).then(|| self.sessions.secret(access_key))
    }

    pub fn is_session_key(access_key: &str) -> bool {
        is_session_key(access_key)
    }

    /// The claims of `token`, if it was issued with `access_key` and has
    /// not expired.
    pub fn open_session(&self, access_key: &str, token: Option<&str>) -> Result<Claims, SessionError> {
        self.sessions.open(access_key, token, now())
    }

    /// The identity and policies of a request signed with a temporary
    /// access key and carrying `token`.
    pub async fn session(
        &self,
        access_key: &str,
        token: Option<&str>,
    ) -> Result<(Identity, Vec<(String, Arc<Policy>)>), SessionError> {
        let claims = self.open_session(access_key, token)?;
        let session_policy = match claims.policy.as_deref() {
            None => None,
            // Checked when the session was issued; a policy that no longer
            // parses (a newer grammar's) allows nothing.
            Some(text) => Some(self.session_policy(text).ok_or(SessionError::Invalid)?),
        };
        let (mut who, policies) = if let Some(parent) = &claims.parent_key {
            let who = self.identity(parent).await.ok_or(SessionError::Revoked)?;
            let policies = self.policies_of(&who.user).await;
            (who, policies)
        } else {
            let subject = claims.subject.clone().ok_or(SessionError::Invalid)?;
            let policies = self.policies_named(&claims.policies).await;
            let who = Identity {
                arn: self.session_arn(&subject, &claims.name),
                user: subject,
                narrowed: Vec::new(),
                session: None,
            };
            (who, policies)
        };
        who.narrowed.extend(session_policy);
        who.session = Some(self.session_arn(&who.user, &claims.name));
        Ok((who, policies))
    }

    /// A session policy, parsed once and kept while sessions use it (up to
    /// [`SESSION_POLICIES`] of them; then the cache starts over).
    fn session_policy(&self, text: &str) -> Option<Arc<Policy>> {
        let mut cache = self.session_policies.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.get(text) {
            return Some(Arc::clone(p));
        }
        let p = Arc::new(Policy::parse_identity(text).ok()?);
        if cache.len() >= SESSION_POLICIES {
            cache.clear();
        }
        cache.insert(text.to_owned(), Arc::clone(&p));
        Some(p)
    }

    /// The ARN a session is known by (`GetCallerIdentity`).
    pub fn session_arn(&self, who: &str, name: &str) -> String {
        format!("arn:aws:sts::{}:assumed-role/{who}/{name}", self.account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_keys_are_recognised_by_shape() {
        assert!(is_session_key("ASIA0123456789ABCDEF"));
        assert!(!is_session_key("ASIA0123456789ABCDE"));
        assert!(!is_session_key("ASIA0123456789abcdef"));
        assert!(!is_session_key("SK0123456789ABCDEFGH"));
    }

    #[test]
    fn secrets_depend_on_the_root_secret_and_the_key() {
        let a = SessionKeys::derive("root-one");
        let b = SessionKeys::derive("root-two");
        let k = "ASIA0123456789ABCDEF";
        assert_eq!(a.secret(k).len(), 40);
        assert_eq!(a.secret(k), a.secret(k));
        assert_ne!(a.secret(k), b.secret(k));
        assert_ne!(a.secret(k), a.secret("ASIA0123456789ABCDEG"));
    }

    #[test]
    fn tokens_open_only_with_their_key_until_they_expire() {
        let keys = SessionKeys::derive("root");
        let claims = Claims {
            exp: 1000,
            name: "s".into(),
            parent_key: Some("SKPARENT".into()),
            policy: Some("{}".into()),
            ..Claims::default()
        };
        let s = keys.issue(&claims);
        assert!(is_session_key(&s.access_key));
        assert_eq!(s.secret_key, keys.secret(&s.access_key));
        assert!(!format!("{s:?}").contains(&s.secret_key));
        assert!(!s.token.contains("SKPARENT"), "claims are not readable");
        assert_eq!(keys.open(&s.access_key, Some(&s.token), 999), Ok(claims));
        assert_eq!(
            keys.open(&s.access_key, Some(&s.token), 1000),
            Err(SessionError::Expired)
        );
        assert_eq!(keys.open(&s.access_key, None, 0), Err(SessionError::Missing));
        let other = keys.issue(&Claims::default());
        assert_eq!(
            keys.open(&other.access_key, Some(&s.token), 0),
            Err(SessionError::Invalid)
        );
        assert_eq!(
            SessionKeys::derive("another root").open(&s.access_key, Some(&s.token), 0),
            Err(SessionError::Invalid)
        );
        let mut bent = s.token.clone().into_bytes();
        let i = bent.len() / 2;
        bent[i] = if bent[i] == b'A' { b'B' } else { b'A' };
        let bent = String::from_utf8(bent).unwrap();
        assert_eq!(
            keys.open(&s.access_key, Some(&bent), 0),
            Err(SessionError::Invalid)
        );
        assert_eq!(
            keys.open(&s.access_key, Some("garbage"), 0),
            Err(SessionError::Invalid)
        );
    }
}
