//! Key management: named keys that seal and unseal the data keys of
//! encrypted objects. [`Kms`] is the boundary; [`builtin`] keeps its keys
//! on the drives sealed by a root key from a file or the environment, and
//! [`vault`] uses the Transit engine of HashiCorp Vault or OpenBao. A
//! sealed data key is bound to its encryption context (the object's ARN
//! and any context the client gave), so it opens only for the object it
//! was made for.

pub mod builtin;
pub mod vault;

use crate::sse::DataKey;
use std::collections::BTreeMap;

/// An encryption context: name/value pairs, bound to a sealed data key.
pub type Context = BTreeMap<String, String>;

/// The context as the bytes a seal binds (canonical JSON: sorted names).
pub fn context_bytes(ctx: &Context) -> Vec<u8> {
    serde_json::to_vec(ctx).unwrap_or_default()
}

/// A named key as `objd admin kms key ls` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct KeyInfo {
    pub name: String,
    /// Newest version (new data keys are sealed with it).
    pub version: u32,
    pub enabled: bool,
    /// Creation of the key, RFC 3339 (when the KMS says).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created: String,
}

/// What `objd admin kms status` reports.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Status {
    /// `builtin` or `vault`.
    pub backend: String,
    /// The Vault address (nothing secret).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub endpoint: String,
    /// The key SSE-S3 uses.
    pub default_key: String,
    /// Whether the KMS answered just now.
    pub online: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub problem: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    /// No KMS is configured (SSE-S3 and SSE-KMS need one; SSE-C does not).
    #[error("no key management service is configured")]
    NotConfigured,
    #[error("key {0} does not exist")]
    NoSuchKey(String),
    #[error("key {0} already exists")]
    KeyExists(String),
    #[error("key {0} is disabled")]
    Disabled(String),
    /// The KMS cannot be reached or failed; nothing is written unsealed.
    #[error("the key management service is unavailable: {0}")]
    Unavailable(String),
    /// A sealed key that does not open (damaged, or another context).
    #[error("a sealed data key does not open")]
    Unsealable,
    #[error("{0}")]
    Invalid(String),
    /// An operation this KMS does not offer.
    #[error("{0}")]
    Unsupported(&'static str),
}

pub type KmsResult<T> = Result<T, KmsError>;

/// Checks a key name: letters, digits, `-`, `_`, `.`, optionally one
/// `/` separating a tenant namespace from the name; 1 to 128 characters.
pub fn check_key_name(name: &str) -> KmsResult<()> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    let parts: Vec<&str> = name.split('/').collect();
    if name.len() > 128 || parts.len() > 2 || !parts.iter().all(|p| ok_part(p)) {
        return Err(KmsError::Invalid(format!(
            "invalid key name {name:?}: letters, digits, '-', '_', '.', and at most one '/' after a namespace"
        )));
    }
    Ok(())
}

/// Generates and unseals data keys under named keys.
#[async_trait::async_trait]
pub trait Kms: Send + Sync + std::fmt::Debug {
    /// A fresh data key and the same key sealed under `key` for `ctx`.
    async fn generate(&self, key: &str, ctx: &Context) -> KmsResult<(DataKey, Vec<u8>)>;
    /// The data key `sealed` holds.
    async fn unseal(&self, key: &str, sealed: &[u8], ctx: &Context) -> KmsResult<DataKey>;
    async fn create_key(&self, name: &str) -> KmsResult<KeyInfo>;
    async fn list_keys(&self) -> KmsResult<Vec<KeyInfo>>;
    /// A new version of `name` seals from now on; older ones still unseal.
    async fn rotate_key(&self, name: &str) -> KmsResult<KeyInfo>;
    async fn set_enabled(&self, name: &str, enabled: bool) -> KmsResult<KeyInfo>;
    async fn status(&self) -> Status;
    /// The key SSE-S3 (and SSE-KMS without a key id) uses.
    fn default_key(&self) -> &str;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names() {
        for ok in ["a", "tenant-1/key.v2", "A_b"] {
            assert!(check_key_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/b/c", "/a", "a/", "a b", &"x".repeat(129), "k%"] {
            assert!(check_key_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn contexts_are_canonical() {
        let mut a = Context::new();
        a.insert("b".into(), "2".into());
        a.insert("a".into(), "1".into());
        assert_eq!(context_bytes(&a), br#"{"a":"1","b":"2"}"#);
    }
}
