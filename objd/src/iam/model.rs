//! The IAM documents as stored (`iam/user/NAME`, `iam/group/NAME`,
//! `iam/policy/NAME` in the drives' `config` table), JSON, and the rules
//! for names.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const USER_PREFIX: &str = "iam/user/";
pub const GROUP_PREFIX: &str = "iam/group/";
pub const POLICY_PREFIX: &str = "iam/policy/";
pub const SVCACCT_PREFIX: &str = "iam/svcacct/";
pub const IDP_PREFIX: &str = "iam/idp/";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserDoc {
    pub name: String,
    pub enabled: bool,
    pub created_ns: i64,
    #[serde(default)]
    pub keys: Vec<KeyDoc>,
    /// Names of the managed policies attached to the user.
    #[serde(default)]
    pub policies: Vec<String>,
    /// Inline policies: name to document.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inline: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyDoc {
    pub access_key: String,
    /// The secret, sealed ([`super::seal`]).
    pub sealed_secret: String,
    pub enabled: bool,
    pub created_ns: i64,
}

/// A service account: an access key of its own under a parent user, with
/// at most the parent's rights (narrowed further by `policy`, if any).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SvcAcctDoc {
    pub access_key: String,
    pub parent: String,
    pub sealed_secret: String,
    pub enabled: bool,
    pub created_ns: i64,
    /// An inline identity policy that narrows the parent's rights.
    #[serde(default)]
    pub policy: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GroupDoc {
    pub name: String,
    pub created_ns: i64,
    #[serde(default)]
    pub members: Vec<String>,
    #[serde(default)]
    pub policies: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PolicyDoc {
    pub name: String,
    pub created_ns: i64,
    /// The policy document as given.
    pub document: String,
    /// The version number of the document (`v1`, `v2`, ...): only the
    /// current (default) version is kept.
    #[serde(default = "first_version")]
    pub version: u32,
    #[serde(default)]
    pub updated_ns: i64,
}

fn first_version() -> u32 {
    1
}

/// An identity provider STS trusts (`iam/idp/NAME`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdpDoc {
    pub name: String,
    pub created_ns: i64,
    #[serde(flatten)]
    pub config: IdpConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum IdpConfig {
    Openid(super::openid::OpenIdConfig),
    Ldap(super::ldap::LdapConfig),
}

/// IAM's rule for user, group and policy names: letters, digits and
/// `+=,.@_-`, from 1 to `max` characters.
pub fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

/// A new access key id: 20 characters, `SK` and upper-case letters and
/// digits.
pub fn new_access_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut s = String::from("SK");
    for _ in 0..18 {
        s.push(ALPHABET[rand::random_range(0..ALPHABET.len())] as char);
    }
    s
}

/// A new secret: 40 characters of letters, digits, `+` and `/`.
pub fn new_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..40)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}
