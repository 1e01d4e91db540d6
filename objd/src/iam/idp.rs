//! Identity providers STS trusts, kept with the rest of the IAM state
//! (`iam/idp/NAME`): adding, replacing and removing them, and finding the
//! provider of a web identity token and verifying the token with it.

use super::model::{IDP_PREFIX, IdpConfig, IdpDoc};
use super::openid::{OpenIdConfig, OpenIdError, issuer_of};
use super::{Iam, IamError, IamResult, check_name, encode, now_ns};
use serde_json::{Map, Value};

impl Iam {
    /// Adds or replaces the identity provider `name`.
    pub async fn put_idp(&self, name: &str, config: IdpConfig) -> IamResult<()> {
        check_name("identity provider", name, 64)?;
        match &config {
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
}
