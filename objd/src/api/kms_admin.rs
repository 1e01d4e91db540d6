//! The KMS part of the admin API (`/_strata/admin/v1/kms/...`), JSON in
//! and out, never key material:
//!
//! - `GET kms/status`: backend, endpoint, default key, reachability.
//! - `GET kms/key`: the keys with their newest version and state.
//! - `PUT kms/key?name=N`: create a key.
//! - `POST kms/key?name=N&action=rotate|enable|disable`: a new version
//!   (older ones keep opening what they sealed), or the key's state.

use super::admin::{json_response, query_param};
use crate::kms::{Kms, KmsError};
use http::{Method, StatusCode};
use s3s::{Body, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use std::sync::Arc;

/// The `admin:` action of a KMS operation (`op` without `kms/`).
pub fn action(method: &Method, op: &str) -> &'static str {
    match (method, op) {
        (_, "status") => "KMSKeyStatus",
        (&Method::GET, "key") => "KMSListKeys",
        (&Method::PUT, "key") => "KMSCreateKey",
        (&Method::POST, "key") => "KMSUpdateKey",
        _ => "Unknown",
    }
}

/// A KMS failure as the admin API answers it.
fn to_s3(e: KmsError) -> S3Error {
    let (code, status) = match &e {
        KmsError::NotConfigured | KmsError::Unsupported(_) => {
            (S3ErrorCode::NotImplemented, StatusCode::NOT_IMPLEMENTED)
        }
        KmsError::NoSuchKey(_) => (S3ErrorCode::Custom("NoSuchKey".into()), StatusCode::NOT_FOUND),
        KmsError::KeyExists(_) => (S3ErrorCode::Custom("KeyExists".into()), StatusCode::CONFLICT),
        KmsError::Invalid(_) | KmsError::Disabled(_) => {
            (S3ErrorCode::InvalidArgument, StatusCode::BAD_REQUEST)
        }
        KmsError::Unavailable(_) | KmsError::Unsealable => {
            tracing::warn!(error = %e, "KMS admin operation failed");
            (S3ErrorCode::ServiceUnavailable, StatusCode::SERVICE_UNAVAILABLE)
        }
    };
    let mut err = S3Error::with_message(code, e.to_string());
    err.set_status_code(status);
    err
}

pub async fn call(kms: Option<&Arc<dyn Kms>>, req: &S3Request<Body>, op: &str) -> S3Result<S3Response<Body>> {
    let kms = kms.ok_or_else(|| to_s3(KmsError::NotConfigured))?;
    let name = || {
        query_param(&req.uri, "name")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| S3Error::with_message(S3ErrorCode::InvalidArgument, "name is required"))
    };
    let body = match (&req.method, op) {
        (&Method::GET, "status") => serde_json::to_value(kms.status().await),
        (&Method::GET, "key") => serde_json::to_value(kms.list_keys().await.map_err(to_s3)?),
        (&Method::PUT, "key") => serde_json::to_value(kms.create_key(&name()?).await.map_err(to_s3)?),
        (&Method::POST, "key") => {
            let name = name()?;
            let info = match query_param(&req.uri, "action").as_deref() {
                Some("rotate") => kms.rotate_key(&name).await,
                Some("enable") => kms.set_enabled(&name, true).await,
                Some("disable") => kms.set_enabled(&name, false).await,
                _ => {
                    return Err(S3Error::with_message(
                        S3ErrorCode::InvalidArgument,
                        "action must be rotate, enable or disable",
                    ));
                }
            };
            serde_json::to_value(info.map_err(to_s3)?)
        }
        _ => {
            return Err(S3Error::with_message(
                S3ErrorCode::MethodNotAllowed,
                "unknown admin operation",
            ));
        }
    };
    let body = body.map_err(|e| S3Error::with_message(S3ErrorCode::InternalError, e.to_string()))?;
    Ok(json_response(StatusCode::OK, body.to_string()))
}
