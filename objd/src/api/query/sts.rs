//! STS actions: `AssumeRole` (temporary credentials for an IAM user,
//! narrowed by an optional session policy) and `GetCallerIdentity`.
//!
//! `AssumeRoleWithWebIdentity` takes an OpenID Connect identity token
//! from a configured provider instead of a signature: the session gets
//! the policies the provider's role mapping gives the `RoleArn`'s role
//! name, or else those the token's policy claim names; a token that
//! yields no existing policy is refused.
//!
//! `AssumeRoleWithLDAPIdentity` takes an LDAP username and password
//! (`LDAPUsername`, `LDAPPassword`) checked against the configured
//! directory; the session gets the policies mapped to the user's groups.
//!
//! `AssumeRole` needs no permission of its own: a session never has more
//! rights than the user (or service account) that asked for it has at
//! each of its requests. `RoleArn` is required, as the SDKs send it, and
//! names nothing: the session acts for the caller.

use super::xml::Xml;
use super::{Call, QueryError};
use crate::iam::ldap::LdapError;
use crate::iam::openid::{OpenIdError, policy_names};
use crate::iam::sts::{Claims, DEFAULT_DURATION, MAX_DURATION, MIN_DURATION, Session};
use crate::policy::Policy;
use crate::server::caller::Caller;
use http::StatusCode;

/// Longest session policy, as STS counts it.
const MAX_SESSION_POLICY: usize = 2048;

/// Serves one STS action; `Ok(Some(xml))` is the result element's inside.
pub async fn call(c: &Call<'_>) -> Result<Option<String>, QueryError> {
    match c.action {
        "AssumeRole" => assume_role(c).map(Some),
        "AssumeRoleWithWebIdentity" => web_identity(c).await.map(Some),
        "AssumeRoleWithLDAPIdentity" => ldap_identity(c).await.map(Some),
        "GetCallerIdentity" => Ok(Some(caller_identity(c))),
        other => Err(QueryError::new(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!("Could not find operation {other} for version 2011-06-15"),
        )),
    }
}

/// `DurationSeconds`, checked against `[shortest, max]` (the shortest
/// is STS's 900 seconds unless the server was started to test expiry).
pub fn duration(c: &Call<'_>, max: u64) -> Result<u64, QueryError> {
    let Some(d) = c.params.get("DurationSeconds") else {
        return Ok(DEFAULT_DURATION.min(max));
    };
    let min = c.min_duration.min(MIN_DURATION);
    match d.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(QueryError::invalid(format!(
            "1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: Member must have value between {min} and {max}"
        ))),
    }
}

/// `RoleSessionName`: 2 to 64 of letters, digits and `+=,.@_-`.
pub fn session_name(c: &Call<'_>) -> Result<String, QueryError> {
    let name = c.params.required("RoleSessionName")?;
    if (2..=64).contains(&name.len()) && crate::iam::model::valid_name(name, 64) {
        Ok(name.to_owned())
    } else {
        Err(QueryError::invalid(format!(
            "1 validation error detected: Value '{name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]{{2,64}}"
        )))
    }
}

/// The optional session `Policy`, validated.
pub fn session_policy(c: &Call<'_>) -> Result<Option<String>, QueryError> {
    let Some(p) = c.params.get("Policy") else {
        return Ok(None);
    };
    if p.len() > MAX_SESSION_POLICY {
        return Err(QueryError::new(
            StatusCode::BAD_REQUEST,
            "PackedPolicyTooLarge",
            format!("the session policy is longer than {MAX_SESSION_POLICY} characters"),
        ));
    }
    Policy::parse_identity(p)
        .map_err(|e| QueryError::new(StatusCode::BAD_REQUEST, "MalformedPolicyDocument", e.to_string()))?;
    Ok(Some(p.to_owned()))
}

/// The `Credentials` element of a new session.
pub fn credentials(x: &mut Xml, s: &Session) {
    let expires = time::OffsetDateTime::from_unix_timestamp(s.expires)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default();
    x.wrap("Credentials", |x| {
        x.el("AccessKeyId", &s.access_key)
            .el("SecretAccessKey", &s.secret_key)
            .el("SessionToken", &s.token)
            .el("Expiration", expires);
    });
}

/// A new federated session for `subject` with `policies`: its
/// `Credentials` and `AssumedRoleUser` elements.
fn federated(
    c: &Call<'_>,
    subject: &str,
    name: &str,
    policies: Vec<String>,
    duration: u64,
    policy: Option<String>,
) -> Xml {
    let session = c.iam.issue_session(&Claims {
        exp: now() + duration as i64,
        name: name.to_owned(),
        subject: Some(subject.to_owned()),
        policies,
        policy,
        ..Claims::default()
    });
    let mut x = Xml::new();
    credentials(&mut x, &session);
    x.wrap("AssumedRoleUser", |x| {
        x.el("AssumedRoleId", format!("{subject}:{name}"))
            .el("Arn", c.iam.session_arn(subject, name));
    });
    x
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn assume_role(c: &Call<'_>) -> Result<String, QueryError> {
    let (who, key) = match (c.caller, c.access_key) {
        (Caller::User(who, _), Some(key)) if who.session.is_none() => (who, key),
        (Caller::User(..), _) => {
            return Err(QueryError::denied(
                "temporary credentials cannot assume a role; use the user's access key",
            ));
        }
        _ => {
            return Err(QueryError::denied(
                "the root credentials cannot assume a role; use an IAM user",
            ));
        }
    };
    c.params.required("RoleArn")?;
    let name = session_name(c)?;
    let duration = duration(c, MAX_DURATION)?;
    let policy = session_policy(c)?;
    let claims = Claims {
        exp: now() + duration as i64,
        name: name.clone(),
        parent_key: Some(key.to_owned()),
        policy,
        ..Claims::default()
    };
    let session = c.iam.issue_session(&claims);
    let mut x = Xml::new();
    credentials(&mut x, &session);
    x.wrap("AssumedRoleUser", |x| {
        x.el("AssumedRoleId", format!("{}:{name}", who.user))
            .el("Arn", c.iam.session_arn(&who.user, &name));
    });
    Ok(x.finish())
}

/// The STS answer to a token that does not pass.
fn token_error(e: OpenIdError) -> QueryError {
    match e {
        OpenIdError::Expired => QueryError::new(
            StatusCode::BAD_REQUEST,
            "ExpiredTokenException",
            "Token expired: the web identity token's exp has passed",
        ),
        OpenIdError::Invalid(m) => QueryError::new(StatusCode::BAD_REQUEST, "InvalidIdentityToken", m),
        OpenIdError::Unreachable(m) => QueryError::new(StatusCode::BAD_REQUEST, "IDPCommunicationError", m),
    }
}

async fn web_identity(c: &Call<'_>) -> Result<String, QueryError> {
    let token = c.params.required("WebIdentityToken")?;
    let role_arn = c.params.required("RoleArn")?;
    let name = session_name(c)?;
    let duration = duration(c, MAX_DURATION)?;
    let policy = session_policy(c)?;
    let (cfg, claims) = c.iam.web_identity(token, now()).await.map_err(token_error)?;
    let subject = claims
        .get("sub")
        .and_then(|v| v.as_str())
        .ok_or_else(|| token_error(OpenIdError::Invalid("the token has no subject (sub)".into())))?
        .to_owned();
    let role = role_arn
        .split_once(":role/")
        .map(|(_, r)| r.rsplit('/').next().unwrap_or(r));
    let policies = match role.and_then(|r| cfg.roles.get(r)) {
        Some(p) => p.clone(),
        None => policy_names(claims.get(&cfg.claim)),
    };
    if c.iam.policies_named(&policies).await.is_empty() {
        return Err(QueryError::denied(format!(
            "the token names no existing policy (claim {:?}) and the role maps to none",
            cfg.claim
        )));
    }
    let audience = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => a.clone(),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str())
            .find(|a| cfg.client_ids.iter().any(|c| c == a))
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    };
    let mut x = federated(c, &subject, &name, policies, duration, policy);
    x.el("SubjectFromWebIdentityToken", &subject);
    x.el("Provider", &cfg.issuer).el("Audience", audience);
    Ok(x.finish())
}

async fn ldap_identity(c: &Call<'_>) -> Result<String, QueryError> {
    let username = c.params.required("LDAPUsername")?;
    let password = c.params.required("LDAPPassword")?;
    let duration = duration(c, MAX_DURATION)?;
    let policy = session_policy(c)?;
    let policies = c
        .iam
        .ldap_identity(username, password)
        .await
        .map_err(|e| match e {
            LdapError::Rejected => QueryError::denied(e.to_string()),
            LdapError::Unreachable(m) => {
                tracing::warn!(error = %m, "LDAP directory");
                QueryError::new(
                    StatusCode::BAD_REQUEST,
                    "IDPCommunicationError",
                    "the LDAP directory could not be asked",
                )
            }
        })?;
    if c.iam.policies_named(&policies).await.is_empty() {
        return Err(QueryError::denied(
            "no existing policy is mapped to the user's LDAP groups",
        ));
    }
    let mut x = federated(c, username, "ldap", policies, duration, policy);
    Ok(x.finish())
}

fn caller_identity(c: &Call<'_>) -> String {
    let account = c.iam.account();
    let (arn, id) = match c.caller {
        Caller::User(who, _) => match &who.session {
            Some(s) => (
                s.clone(),
                format!("{}:{}", c.access_key.unwrap_or_default(), who.user),
            ),
            None => (who.arn.clone(), who.user.clone()),
        },
        _ => (format!("arn:aws:iam::{account}:root"), account.to_owned()),
    };
    let mut x = Xml::new();
    x.el("Arn", arn).el("UserId", id).el("Account", account);
    x.finish()
}
