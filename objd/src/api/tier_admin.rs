//! The tier part of the admin API (`/_strata/admin/v1/tier`), JSON in and
//! out, never a secret:
//!
//! - `GET tier`: the tiers (endpoint, bucket, prefix, region, access key).
//! - `PUT tier`: add one (a [`TierSpec`] body); refused unless a probe
//!   through it works.
//! - `POST tier?name=N&action=verify`: probe it again.
//! - `DELETE tier?name=N`: remove it.

use super::admin::{json_response, query_param};
use crate::tier::{TierError, TierSpec, Tiers};
use http::{Method, StatusCode};
use s3s::{Body, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

/// The `admin:` action of a tier operation.
pub fn action(method: &Method) -> &'static str {
    match *method {
        Method::GET => "ListTiers",
        Method::PUT => "AddTier",
        Method::POST => "VerifyTier",
        Method::DELETE => "RemoveTier",
        _ => "Unknown",
    }
}

/// A tier failure as the admin API answers it.
fn to_s3(e: TierError) -> S3Error {
    let (code, status) = match &e {
        TierError::Invalid(_) => (S3ErrorCode::InvalidArgument, StatusCode::BAD_REQUEST),
        TierError::Exists(_) => (S3ErrorCode::Custom("TierExists".into()), StatusCode::CONFLICT),
        TierError::NotFound(_) => (S3ErrorCode::Custom("NoSuchTier".into()), StatusCode::NOT_FOUND),
        TierError::InUse(_) => (S3ErrorCode::Custom("TierInUse".into()), StatusCode::CONFLICT),
        TierError::Unreachable(_) | TierError::Refused(_) => (
            S3ErrorCode::Custom("TierUnusable".into()),
            StatusCode::BAD_GATEWAY,
        ),
        TierError::Unsealable | TierError::Store(_) => {
            tracing::error!(error = %e, "tier admin operation failed");
            (S3ErrorCode::InternalError, StatusCode::INTERNAL_SERVER_ERROR)
        }
    };
    let mut err = S3Error::with_message(code, e.to_string());
    err.set_status_code(status);
    err
}

/// Largest tier document (CA certificates included).
const MAX_SPEC: usize = 256 << 10;

pub async fn call(tiers: &Tiers, mut req: S3Request<Body>) -> S3Result<S3Response<Body>> {
    let name = || {
        query_param(&req.uri, "name")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| S3Error::with_message(S3ErrorCode::InvalidArgument, "name is required"))
    };
    let value = match req.method {
        Method::GET => serde_json::to_value(tiers.list().await.map_err(to_s3)?),
        Method::PUT => {
            let body = req.input.store_all_limited(MAX_SPEC).await.map_err(|_| {
                S3Error::with_message(S3ErrorCode::InvalidArgument, "tier documents are at most 256 KiB")
            })?;
            let spec: TierSpec = serde_json::from_slice(&body)
                .map_err(|e| S3Error::with_message(S3ErrorCode::InvalidArgument, format!("tier: {e}")))?;
            serde_json::to_value(tiers.add(spec).await.map_err(to_s3)?)
        }
        Method::POST if query_param(&req.uri, "action").as_deref() == Some("verify") => {
            serde_json::to_value(tiers.verify(&name()?).await.map_err(to_s3)?)
        }
        Method::DELETE => {
            tiers.remove(&name()?).await.map_err(to_s3)?;
            Ok(serde_json::json!({ "removed": name()? }))
        }
        _ => {
            return Err(S3Error::with_message(
                S3ErrorCode::MethodNotAllowed,
                "unknown tier operation",
            ));
        }
    };
    let value = value.map_err(|e| S3Error::with_message(S3ErrorCode::InternalError, e.to_string()))?;
    Ok(json_response(StatusCode::OK, value.to_string()))
}
