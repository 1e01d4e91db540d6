//! The AWS Query protocol front: IAM and STS requests as the AWS SDKs,
//! the aws CLI and Terraform send them to an endpoint: `POST /` with a
//! form body (`Action=...&Version=...&...`), signed with SigV4 for the
//! service of the credential scope (`iam` or `sts`; verified here, see
//! [`sigv4`]). The STS actions that prove an identity by other means
//! (a web identity token, an LDAP password) are unsigned. Answers are
//! Query XML: `<ActionResponse><ActionResult>...` and errors
//! `<ErrorResponse><Error><Type/><Code/><Message/></Error>`.
//!
//! [`is_query_request`] tells these requests apart before S3 routing: S3
//! has no operation that is a form-encoded POST to the root path.

mod iam;
pub mod sigv4;
mod sts;
mod xml;

use crate::iam::sts::SessionError;
use crate::iam::{Iam, IamError};
use crate::policy::Context;
use crate::server::Peer;
use crate::server::auth::Auth;
use crate::server::caller::{Caller, CallerError, resolve, security_token};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Largest form body (a 6 KiB policy document, percent-encoded, fits).
const MAX_BODY: usize = 128 << 10;
/// Time a client has to send the form body.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// STS actions that carry their own proof of identity instead of a
/// signature.
const UNSIGNED_ACTIONS: &[&str] = &["AssumeRoleWithWebIdentity", "AssumeRoleWithLDAPIdentity"];

/// An error answered in the Query protocol's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl QueryError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationError", message)
    }

    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }

    fn invalid_token() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        )
    }
}

impl From<IamError> for QueryError {
    fn from(e: IamError) -> Self {
        match (e.code(), e) {
            (Some((status, code)), e) => Self::new(status, code, e.to_string()),
            (None, e) => {
                tracing::warn!(error = %e, "an IAM change failed in storage");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceFailure",
                    "The request processing has failed because of an unknown error, exception or failure.",
                )
            }
        }
    }
}

impl From<CallerError> for QueryError {
    fn from(e: CallerError) -> Self {
        match e {
            CallerError::Session(SessionError::Expired) => Self::new(
                StatusCode::BAD_REQUEST,
                "ExpiredToken",
                "The security token included in the request is expired",
            ),
            _ => Self::invalid_token(),
        }
    }
}

/// The form parameters of a request.
pub struct Params(BTreeMap<String, String>);

impl Params {
    pub fn parse(body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body);
        Self(
            text.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (
                        crate::api::admin::percent_decode(k),
                        crate::api::admin::percent_decode(v),
                    )
                })
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A parameter the action cannot go without.
    pub fn required(&self, name: &str) -> Result<&str, QueryError> {
        self.get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
            QueryError::invalid(format!("1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"))
        })
    }
}

/// A request in the Query protocol, after its signature.
pub struct Call<'a> {
    pub action: &'a str,
    pub params: &'a Params,
    pub caller: &'a Caller,
    pub ctx: &'a Context,
    pub iam: &'a Iam,
    /// The access key that signed (`None`: unsigned).
    pub access_key: Option<&'a str>,
    /// Shortest session granted, in seconds.
    pub min_duration: u64,
}

impl Call<'_> {
    /// Whether the caller's policies allow `action` on `resource`, as IAM
    /// decides for identity policies (the root account may do anything).
    pub fn allow(&self, action: &str, resource: &str) -> Result<(), QueryError> {
        if self.caller.allows(None, action, resource, self.ctx) {
            return Ok(());
        }
        Err(QueryError::denied(format!(
            "User: {} is not authorized to perform: {action} on resource: {resource}",
            self.caller.arn(self.iam.account())
        )))
    }
}

/// The IAM and STS API.
pub struct QueryApi {
    iam: Arc<Iam>,
    auth: Auth,
    root: String,
    min_duration: u64,
}

/// Whether a request is for this front: a form-encoded POST to `/`.
pub fn is_query_request<B>(req: &Request<B>) -> bool {
    req.method() == Method::POST
        && req.uri().path() == "/"
        && req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            })
}

impl QueryApi {
    pub fn new(iam: Arc<Iam>, auth: Auth, root: &str, min_duration: u64) -> Self {
        Self {
            iam,
            auth,
            root: root.to_owned(),
            min_duration,
        }
    }

    /// Serves one request.
    pub async fn handle(&self, req: Request<hyper::body::Incoming>, request_id: &str) -> Response<s3s::Body> {
        let (parts, body) = req.into_parts();
        let read = http_body_util::Limited::new(body, MAX_BODY).collect();
        let body = match tokio::time::timeout(BODY_TIMEOUT, read).await {
            Ok(Ok(b)) => b.to_bytes(),
            _ => {
                let e = QueryError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestEntityTooLarge",
                    "The request body is too large or could not be read.",
                );
                return xml::error_response("iam", &e, request_id);
            }
        };
        let params = Params::parse(&body);
        let action = params.get("Action").unwrap_or_default().to_owned();
        let mut service = if UNSIGNED_ACTIONS.contains(&action.as_str()) {
            "sts"
        } else {
            "iam"
        };
        let answer = async {
            let access_key = self
                .authenticate(&parts.method, &parts.uri, &parts.headers, &body, &action)
                .await?;
            if let Some((_, s)) = &access_key {
                service = if s == "sts" { "sts" } else { "iam" };
            }
            if action.is_empty() {
                return Err(QueryError::new(
                    StatusCode::BAD_REQUEST,
                    "MissingAction",
                    "Missing Action",
                ));
            }
            let token = security_token(&parts.headers, &parts.uri);
            let key = access_key.as_ref().map(|(k, _)| k.as_str());
            let caller = resolve(&self.iam, &self.root, key, token.as_deref()).await?;
            let peer = parts.extensions.get::<Peer>();
            let ctx = crate::server::access::context(&caller, &parts.headers, &parts.uri, peer);
            let call = Call {
                action: &action,
                params: &params,
                caller: &caller,
                ctx: &ctx,
                iam: &self.iam,
                access_key: key,
                min_duration: self.min_duration,
            };
            match access_key.as_ref().map(|(_, s)| s.as_str()) {
                Some("iam") => iam::call(&call).await,
                Some("sts") | None => sts::call(&call).await,
                Some(other) => Err(QueryError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidAction",
                    format!("this endpoint serves IAM and STS form requests; not {other}"),
                )),
            }
        }
        .await;
        match answer {
            Ok(result) => xml::response(service, &action, result.as_deref(), request_id),
            Err(e) => xml::error_response(service, &e, request_id),
        }
    }

    /// The access key and service of a signed request, its signature
    /// checked (`None`: an unsigned request for an action that may be).
    async fn authenticate(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        action: &str,
    ) -> Result<Option<(String, String)>, QueryError> {
        let header = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let Some(auth) = header.and_then(sigv4::parse_authorization) else {
            if header.is_none() && UNSIGNED_ACTIONS.contains(&action) {
                return Ok(None);
            }
            return Err(QueryError::new(
                StatusCode::FORBIDDEN,
                "MissingAuthenticationToken",
                "Request is missing Authentication Token",
            ));
        };
        let auth =
            auth.map_err(|e| QueryError::new(StatusCode::BAD_REQUEST, "IncompleteSignature", e.to_string()))?;
        let secret = self
            .auth
            .secret(&auth.access_key)
            .await
            .ok_or_else(QueryError::invalid_token)?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        sigv4::verify(&auth, method, uri, headers, body, &secret, now).map_err(|e| match e {
            sigv4::SigError::Mismatch => QueryError::new(
                StatusCode::FORBIDDEN,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            ),
            sigv4::SigError::Skewed => QueryError::new(
                StatusCode::FORBIDDEN,
                "SignatureDoesNotMatch",
                "Signature expired: the request time is more than 15 minutes from the server's.",
            ),
            other => QueryError::new(StatusCode::BAD_REQUEST, "IncompleteSignature", other.to_string()),
        })?;
        Ok(Some((auth.access_key, auth.service)))
    }
}

/// `Content-Type` of every answer.
fn content_type() -> HeaderValue {
    HeaderValue::from_static("text/xml")
}
