//! Who a signed request comes from, for every front that authorizes
//! (S3, the admin API, IAM and STS): the root account, an IAM user (by
//! one of its access keys or service accounts, or by temporary
//! credentials with their session token), or nobody. Each front answers
//! a [`CallerError`] in its own protocol's terms.

use crate::api::admin::query_param;
use crate::iam::sts::SessionError;
use crate::iam::{Iam, Identity};
use crate::policy::{Context, Decision, Policy, Principal};
use http::{HeaderMap, Uri};
use std::sync::Arc;

/// Who is asking, with what applies to them.
#[derive(Clone)]
pub enum Caller {
    Root,
    User(Identity, Vec<(String, Arc<Policy>)>),
    Anonymous,
}

/// The caller of an S3 request and its condition context, as
/// authorization resolved them; a request extension for handlers that
/// authorize more (the KMS key of SSE-KMS).
#[derive(Clone)]
pub struct Authorized(pub Arc<(Caller, Context)>);

impl Caller {
    /// Whether the caller may do `action` on `resource`, as IAM decides
    /// ([`Caller::decide`]).
    pub fn allows(
        &self,
        bucket_policy: Option<&Policy>,
        action: &str,
        resource: &str,
        ctx: &Context,
    ) -> bool {
        self.decide(bucket_policy, action, resource, ctx) == Grant::Allowed
    }

    /// How IAM decides whether the caller may do `action` on `resource`:
    /// the root account may do anything; otherwise an explicit deny in the
    /// caller's policies or the bucket's policy (if given) refuses, else
    /// an allow in either grants, and the policies that narrow the caller
    /// (a service account's, a session's) must each allow too. Anonymous
    /// callers have only the bucket policy's grants.
    pub fn decide(
        &self,
        bucket_policy: Option<&Policy>,
        action: &str,
        resource: &str,
        ctx: &Context,
    ) -> Grant {
        let (principal, identity) = match self {
            Caller::Root => return Grant::Allowed,
            Caller::User(who, policies) => {
                let principal = Principal::Arn(&who.arn);
                if who
                    .narrowed
                    .iter()
                    .any(|n| n.evaluate_in(principal, action, resource, ctx) != Decision::Allow)
                {
                    return Grant::Denied;
                }
                (principal, policies.as_slice())
            }
            Caller::Anonymous => (Principal::Anonymous, &[][..]),
        };
        let v = crate::iam::decide_with_bucket(identity, bucket_policy, principal, action, resource, ctx);
        match (v.allowed, v.decided_by) {
            (true, _) => Grant::Allowed,
            (false, Some(_)) => Grant::Denied,
            (false, None) => Grant::Unmatched,
        }
    }

    /// The ARN the caller acts as (the session's, for temporary
    /// credentials).
    pub fn arn(&self, account: &str) -> String {
        match self {
            Caller::Root => format!("arn:aws:iam::{account}:root"),
            Caller::User(who, _) => who.session.clone().unwrap_or_else(|| who.arn.clone()),
            Caller::Anonymous => "anonymous".into(),
        }
    }
}

/// What policies say of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    Allowed,
    /// An explicit deny, or a narrowing policy that does not allow.
    Denied,
    /// No policy says anything: an ACL may still grant it.
    Unmatched,
}

/// Why a request signed with a valid signature has no caller.
#[derive(Debug, PartialEq, Eq)]
pub enum CallerError {
    /// The access key was usable when the signature was checked and is
    /// gone since.
    UnknownKey,
    /// Temporary credentials without a valid session.
    Session(SessionError),
}

impl CallerError {
    /// The S3 answer.
    pub fn to_s3(&self) -> s3s::S3Error {
        use s3s::S3ErrorCode as C;
        let (code, message) = match self {
            CallerError::UnknownKey | CallerError::Session(SessionError::Revoked) => (
                C::InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records.",
            ),
            CallerError::Session(SessionError::Expired) => {
                (C::ExpiredToken, "The provided token has expired.")
            }
            CallerError::Session(SessionError::Missing | SessionError::Invalid) => (
                C::InvalidToken,
                "The provided token is malformed or otherwise invalid.",
            ),
        };
        s3s::S3Error::with_message(code, message)
    }
}

/// The session token of a request: the `x-amz-security-token` header, or
/// the parameter of a presigned URL (`X-Amz-Security-Token` in SigV4,
/// `x-amz-security-token` in SigV2).
pub fn security_token(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query_param(uri, "X-Amz-Security-Token"))
        .or_else(|| query_param(uri, "x-amz-security-token"))
}

/// The caller of a request signed by `access_key` (`None`: unsigned),
/// carrying `token`.
pub async fn resolve(
    iam: &Iam,
    root: &str,
    access_key: Option<&str>,
    token: Option<&str>,
) -> Result<Caller, CallerError> {
    let Some(key) = access_key else {
        return Ok(Caller::Anonymous);
    };
    if key == root {
        return Ok(Caller::Root);
    }
    if Iam::is_session_key(key) {
        let (who, policies) = iam.session(key, token).await.map_err(CallerError::Session)?;
        return Ok(Caller::User(who, policies));
    }
    let who = iam.identity(key).await.ok_or(CallerError::UnknownKey)?;
    // A service account of the root account: everything, narrowed.
    let policies = if who.is_root() {
        vec![("root account".to_owned(), crate::iam::everything())]
    } else {
        iam.policies_of(&who.user).await
    };
    Ok(Caller::User(who, policies))
}
