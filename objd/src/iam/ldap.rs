//! LDAP directories (OpenLDAP, Active Directory) for
//! `AssumeRoleWithLDAPIdentity`: search-then-bind. A lookup account binds
//! and finds the one entry the user filter matches for the username; the
//! user's own bind with the given password proves it; the lookup account
//! then finds the user's groups, whose DNs map to policies. `ldaps://`
//! URLs and StartTLS verify the server's certificate against the system's
//! CAs and objd's `--ca-file`.

use ldap3::{LdapConnAsync, LdapConnSettings, ResultEntry, Scope, ldap_escape};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Time allowed for connecting and for each LDAP operation.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A directory STS trusts.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LdapConfig {
    /// `ldap://HOST[:PORT]` or `ldaps://HOST[:PORT]`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    #[serde(default)]
    pub start_tls: bool,
    /// The DN of the account that looks users and groups up.
    pub lookup_dn: String,
    /// Its password as the admin API receives it: sealed before the
    /// configuration is stored, never stored or shown in plain.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub lookup_password: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sealed_lookup_password: String,
    /// Where users are searched (subtree).
    pub user_base: String,
    /// The filter that finds a user; `%s` is the username (escaped):
    /// `(uid=%s)` for OpenLDAP, `(sAMAccountName=%s)` for Active Directory.
    pub user_filter: String,
    /// Where groups are searched (subtree); none: no groups.
    #[serde(default)]
    pub group_base: String,
    /// The filter that finds a user's groups; `%d` is the user's DN, `%s`
    /// the username (both escaped): `(&(objectClass=groupOfNames)(member=%d))`.
    #[serde(default)]
    pub group_filter: String,
    /// Group DN to the policies its members get.
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
}

// The lookup password stays out of logs.
impl std::fmt::Debug for LdapConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapConfig")
            .field("url", &self.url)
            .field("start_tls", &self.start_tls)
            .field("lookup_dn", &self.lookup_dn)
            .field("user_base", &self.user_base)
            .field("user_filter", &self.user_filter)
            .field("group_base", &self.group_base)
            .field("group_filter", &self.group_filter)
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LdapError {
    /// Unknown user, wrong password, or a username that matches several
    /// entries: one answer for all, so none of them can be told apart.
    #[error("the LDAP username or password is not valid")]
    Rejected,
    /// The directory could not be asked.
    #[error("the LDAP directory could not be asked: {0}")]
    Unreachable(String),
}

/// Who the directory says a user is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapIdentity {
    pub dn: String,
    pub groups: Vec<String>,
}

/// A DN in a form to compare: lower case, no spaces around `,` and `=`.
pub fn normalize_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| rdn.split('=').map(str::trim).collect::<Vec<_>>().join("="))
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

/// The policies `groups` (DNs) get in `cfg`.
pub fn policies_of(cfg: &LdapConfig, groups: &[String]) -> Vec<String> {
    let mine: Vec<String> = groups.iter().map(|g| normalize_dn(g)).collect();
    let mut out: Vec<String> = cfg
        .groups
        .iter()
        .filter(|(dn, _)| mine.contains(&normalize_dn(dn)))
        .flat_map(|(_, p)| p.iter().cloned())
        .collect();
    out.sort();
    out.dedup();
    out
}

fn unreachable(e: impl std::fmt::Display) -> LdapError {
    LdapError::Unreachable(e.to_string())
}

/// DNs of the entries `filter` finds below `base`.
async fn search_dns(ldap: &mut ldap3::Ldap, base: &str, filter: &str) -> Result<Vec<String>, LdapError> {
    let (entries, _) = ldap
        .with_timeout(TIMEOUT)
        .search(base, Scope::Subtree, filter, vec!["1.1"])
        .await
        .map_err(unreachable)?
        .success()
        .map_err(unreachable)?;
    Ok(entries.into_iter().filter_map(entry_dn).collect())
}

/// The DN of a search result entry; `None` for referrals (Active
/// Directory returns them beside entries) and anything malformed, which
/// must not be able to bring the server down.
fn entry_dn(e: ResultEntry) -> Option<String> {
    if e.is_ref() || e.is_intermediate() {
        return None;
    }
    let dn = e.0.match_id(4)?.expect_constructed()?.into_iter().next()?;
    String::from_utf8(dn.expect_primitive()?).ok()
}

/// Checks `username` and `password` against the directory; the user's DN
/// and groups.
pub async fn authenticate(
    cfg: &LdapConfig,
    lookup_password: &str,
    tls: Arc<rustls::ClientConfig>,
    username: &str,
    password: &str,
) -> Result<LdapIdentity, LdapError> {
    // An empty password would be an unauthenticated bind, which succeeds.
    if username.is_empty() || password.is_empty() {
        return Err(LdapError::Rejected);
    }
    let settings = LdapConnSettings::new()
        .set_conn_timeout(TIMEOUT)
        .set_starttls(cfg.start_tls)
        .set_config(tls);
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &cfg.url)
        .await
        .map_err(unreachable)?;
    ldap3::drive!(conn);
    let lookup = |ldap: &mut ldap3::Ldap| {
        let mut ldap = ldap.clone();
        async move {
            ldap.with_timeout(TIMEOUT)
                .simple_bind(&cfg.lookup_dn, lookup_password)
                .await
                .map_err(unreachable)?
                .success()
                .map_err(|e| LdapError::Unreachable(format!("the lookup account's bind failed: {e}")))
                .map(|_| ())
        }
    };
    lookup(&mut ldap).await?;
    let filter = cfg.user_filter.replace("%s", &ldap_escape(username));
    let found = search_dns(&mut ldap, &cfg.user_base, &filter).await?;
    let [dn] = found.as_slice() else {
        let _ = ldap.unbind().await;
        return Err(LdapError::Rejected);
    };
    let bound = ldap
        .with_timeout(TIMEOUT)
        .simple_bind(dn, password)
        .await
        .map_err(unreachable)?;
    if bound.rc != 0 {
        let _ = ldap.unbind().await;
        return Err(LdapError::Rejected);
    }
    let mut groups = Vec::new();
    if !cfg.group_base.is_empty() && !cfg.group_filter.is_empty() {
        lookup(&mut ldap).await?;
        let filter = cfg
            .group_filter
            .replace("%d", &ldap_escape(dn.as_str()))
            .replace("%s", &ldap_escape(username));
        groups = search_dns(&mut ldap, &cfg.group_base, &filter).await?;
    }
    let _ = ldap.unbind().await;
    Ok(LdapIdentity {
        dn: dn.clone(),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_dns_compare_as_directories_do() {
        assert_eq!(
            normalize_dn("CN=Readers, OU=Groups,DC=Example ,DC=org"),
            "cn=readers,ou=groups,dc=example,dc=org"
        );
        let cfg = LdapConfig {
            url: "ldap://x".into(),
            start_tls: false,
            lookup_dn: "cn=admin".into(),
            lookup_password: "secret-pw".into(),
            sealed_lookup_password: String::new(),
            user_base: "dc=x".into(),
            user_filter: "(uid=%s)".into(),
            group_base: String::new(),
            group_filter: String::new(),
            groups: [
                ("cn=readers,dc=x".to_owned(), vec!["readers".to_owned()]),
                (
                    "cn=ops,dc=x".to_owned(),
                    vec!["writers".to_owned(), "readers".to_owned()],
                ),
            ]
            .into(),
        };
        assert_eq!(
            policies_of(&cfg, &["CN=Readers, DC=x".into(), "cn=ops,dc=x".into()]),
            ["readers", "writers"]
        );
        assert!(policies_of(&cfg, &["cn=other,dc=x".into()]).is_empty());
        assert!(!format!("{cfg:?}").contains("secret-pw"));
    }
}
