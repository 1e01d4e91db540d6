//! Identity providers STS trusts, kept with the rest of the IAM state
//! (`iam/idp/NAME`): adding, replacing and removing them, and finding the
//! provider of a web identity token and verifying the token with it.

use super::ldap::{LdapError, authenticate, policies_of};
use super::model::{IDP_PREFIX, IdpConfig, IdpDoc};
use super::openid::{OpenIdConfig, OpenIdError, issuer_of};
use super::{Iam, IamError, IamResult, check_name, encode, now_ns};
use serde_json::{Map, Value};
use std::sync::Arc;

impl Iam {
    /// Adds or replaces the identity provider `name`. An LDAP directory's
    /// lookup password is sealed here; replacing one without a password
    /// keeps the one it had.
    pub async fn put_idp(&self, name: &str, mut config: IdpConfig) -> IamResult<()> {
        check_name("identity provider", name, 64)?;
        match &mut config {
            IdpConfig::Ldap(c) => {
                let url: Result<http::Uri, _> = c.url.parse();
                if !url.is_ok_and(|u| matches!(u.scheme_str(), Some("ldap" | "ldaps")) && u.host().is_some())
                {
                    return Err(IamError::Invalid(format!(
                        "the LDAP URL {:?} is not ldap:// or ldaps://",
                        c.url
                    )));
                }
                if c.user_base.is_empty() || !c.user_filter.contains("%s") {
                    return Err(IamError::Invalid(
                        "an LDAP directory needs user_base and a user_filter with %s for the username".into(),
                    ));
                }
                if !c.lookup_password.is_empty() {
                    c.sealed_lookup_password = self.sealer.seal(&format!("idp/{name}"), &c.lookup_password);
                    c.lookup_password.clear();
                }
            }
            IdpConfig::Openid(c) => {
                let url: Result<http::Uri, _> = c.issuer.parse();
                if !url.is_ok_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some())
                {
                    return Err(IamError::Invalid(format!(
                        "the issuer {:?} is not an http(s) URL",
                        c.issuer
                    )));
                }
                if c.client_ids.is_empty() {
                    return Err(IamError::Invalid(
                        "an OpenID provider needs at least one client id (the tokens' audience)".into(),
                    ));
                }
            }
        }
        self.change(|d| {
            if let IdpConfig::Ldap(c) = &mut config {
                if d.idps
                    .iter()
                    .any(|(n, p)| n != name && matches!(p.config, IdpConfig::Ldap(_)))
                {
                    return Err(IamError::Invalid("one LDAP directory can be configured".into()));
                }
                if c.sealed_lookup_password.is_empty() {
                    match d.idps.get(name).map(|p| &p.config) {
                        Some(IdpConfig::Ldap(old)) => {
                            c.sealed_lookup_password = old.sealed_lookup_password.clone()
                        }
                        _ => {
                            return Err(IamError::Invalid(
                                "an LDAP directory needs the lookup account's password".into(),
                            ));
                        }
                    }
                }
            }
            let created_ns = d.idps.get(name).map_or_else(now_ns, |p| p.created_ns);
            let doc = IdpDoc {
                name: name.to_owned(),
                created_ns,
                config,
            };
            d.writes.push((format!("{IDP_PREFIX}{name}"), encode(&doc)));
            Ok(())
        })
        .await
    }

    pub async fn remove_idp(&self, name: &str) -> IamResult<()> {
        self.change(|d| {
            if !d.idps.contains_key(name) {
                return Err(IamError::NoSuchEntity(format!("no identity provider {name}")));
            }
            d.writes.push((format!("{IDP_PREFIX}{name}"), None));
            Ok(())
        })
        .await
    }

    /// The provider that issued `token`, and the token's verified claims.
    pub async fn web_identity(
        &self,
        token: &str,
        now: i64,
    ) -> Result<(OpenIdConfig, Map<String, Value>), OpenIdError> {
        let issuer = issuer_of(token)?;
        let cfg = self
            .current()
            .await
            .idps
            .values()
            .find_map(|p| match &p.config {
                IdpConfig::Openid(c) if c.issuer == issuer => Some(c.clone()),
                _ => None,
            })
            .ok_or_else(|| {
                OpenIdError::Invalid(format!(
                    "no OpenID provider with the issuer {issuer} is configured"
                ))
            })?;
        let claims = self.openid.verify(&cfg, token, now).await?;
        Ok((cfg, claims))
    }

    /// Checks an LDAP username and password with the configured directory;
    /// the policies the user's groups get.
    pub async fn ldap_identity(&self, username: &str, password: &str) -> Result<Vec<String>, LdapError> {
        let (name, cfg) = self
            .current()
            .await
            .idps
            .values()
            .find_map(|p| match &p.config {
                IdpConfig::Ldap(c) => Some((p.name.clone(), c.clone())),
                _ => None,
            })
            .ok_or_else(|| LdapError::Unreachable("no LDAP directory is configured".into()))?;
        let password_of_lookup = self
            .sealer
            .open(&format!("idp/{name}"), &cfg.sealed_lookup_password)
            .map_err(|e| LdapError::Unreachable(e.to_string()))?;
        let who = authenticate(
            &cfg,
            &password_of_lookup,
            Arc::clone(&self.ldap_tls),
            username,
            password,
        )
        .await?;
        Ok(policies_of(&cfg, &who.groups))
    }
}
