//! The one place where object-layer errors become S3 errors. Specific
//! conditions keep their S3 code on purpose; anything unexpected becomes
//! `InternalError` with a generic message, and the detail goes to the log
//! only (paths and per-drive failures never reach a client).

use crate::acl::AclError;
use crate::kms::KmsError;
use crate::object::ObjectError;
use crate::policy::PolicyError;
use crate::sse::SseError;
use s3s::{S3Error, S3ErrorCode};

pub fn to_s3(e: ObjectError) -> S3Error {
    use S3ErrorCode as C;
    let (code, msg): (S3ErrorCode, String) = match e {
        ObjectError::NoSuchBucket => (C::NoSuchBucket, "The specified bucket does not exist".into()),
        ObjectError::BucketExists => (
            C::BucketAlreadyOwnedByYou,
            "Your previous request to create the named bucket succeeded".into(),
        ),
        ObjectError::BucketNotEmpty => (
            C::BucketNotEmpty,
            "The bucket you tried to delete is not empty".into(),
        ),
        ObjectError::InvalidBucketName => (C::InvalidBucketName, "The specified bucket is not valid".into()),
        ObjectError::NoSuchKey => (C::NoSuchKey, "The specified key does not exist".into()),
        ObjectError::NoSuchVersion => (C::NoSuchVersion, "The specified version does not exist".into()),
        ObjectError::DeleteMarker {
            version_id,
            requested,
        } => {
            let mut err = if requested {
                S3Error::with_message(
                    C::MethodNotAllowed,
                    "The specified method is not allowed against this resource",
                )
            } else {
                S3Error::with_message(C::NoSuchKey, "The specified key does not exist")
            };
            let mut h = http::HeaderMap::new();
            h.insert("x-amz-delete-marker", http::HeaderValue::from_static("true"));
            if let Ok(v) = http::HeaderValue::from_str(&version_id) {
                h.insert("x-amz-version-id", v);
            }
            err.set_headers(h);
            return err;
        }
        ObjectError::PreconditionFailed => (
            C::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold".into(),
        ),
        ObjectError::NotModified { etag, modified_ns } => {
            // The answer names what the client has, as S3's does.
            let mut err = S3Error::with_message(C::NotModified, "Not Modified");
            let mut h = http::HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_str(&format!("\"{etag}\"")) {
                h.insert(http::header::ETAG, v);
            }
            if let Some(v) = crate::api::s3::convert::http_date(&crate::api::s3::convert::ts(modified_ns))
                .and_then(|d| http::HeaderValue::from_str(&d).ok())
            {
                h.insert(http::header::LAST_MODIFIED, v);
            }
            err.set_headers(h);
            return err;
        }
        ObjectError::ObjectLocked => (
            C::AccessDenied,
            "Access Denied because object protected by object lock.".into(),
        ),
        ObjectError::InvalidBucketState(m) => (C::InvalidBucketState, m),
        ObjectError::InvalidTag(m) => (C::InvalidTag, m),
        ObjectError::InvalidRequest(m) => (C::InvalidRequest, m),
        ObjectError::InvalidVersionId => (C::InvalidArgument, "Invalid version id specified".into()),
        ObjectError::NoSuchUpload => (
            C::NoSuchUpload,
            "The specified multipart upload does not exist".into(),
        ),
        ObjectError::KeyTooLong => (C::KeyTooLongError, "Your key is too long".into()),
        ObjectError::InvalidPart(m) => (C::InvalidPart, m),
        ObjectError::InvalidPartOrder => (
            C::InvalidPartOrder,
            "The list of parts was not in ascending order".into(),
        ),
        ObjectError::EntityTooSmall => (
            C::EntityTooSmall,
            "Your proposed upload is smaller than the minimum allowed object size".into(),
        ),
        ObjectError::EntityTooLarge => (
            C::EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed object size".into(),
        ),
        ObjectError::InvalidRange => (C::InvalidRange, "The requested range is not satisfiable".into()),
        ObjectError::IncompleteBody => (
            C::IncompleteBody,
            "You did not provide the number of bytes specified by the Content-Length".into(),
        ),
        ObjectError::BadDigest => (
            C::BadDigest,
            "The Content-MD5 you specified did not match what we received".into(),
        ),
        ObjectError::BadChecksum(algo) => (
            C::BadDigest,
            format!("The {algo} you specified did not match the calculated checksum."),
        ),
        ObjectError::InvalidArgument(m) => (C::InvalidArgument, m),
        ObjectError::WriteQuorum { .. } | ObjectError::ReadQuorum => {
            tracing::warn!(error = %e, "quorum not met");
            (
                C::ServiceUnavailable,
                "Not enough drives are online to serve the request; retry later".into(),
            )
        }
        ObjectError::Coordination(_) => {
            tracing::warn!(error = %e, "bucket change not coordinated");
            (
                C::ServiceUnavailable,
                "The cluster cannot coordinate this change now; retry later".into(),
            )
        }
        ObjectError::TierUnavailable(_) => {
            tracing::warn!(error = %e, "remote tier did not serve the request");
            (
                C::ServiceUnavailable,
                "The storage tier holding the object's data is unavailable; retry later".into(),
            )
        }
        ObjectError::SlowDown(_) => {
            tracing::debug!(error = %e, "request refused: buffer budget spent");
            (C::SlowDown, "Please reduce your request rate.".into())
        }
        ObjectError::QuotaExceeded { quota, used } => {
            let mut err = S3Error::with_message(
                C::Custom("QuotaExceeded".into()),
                format!(
                    "The bucket's quota of {quota} bytes would be exceeded ({used} bytes stored); \
                     the object was not stored"
                ),
            );
            err.set_status_code(http::StatusCode::FORBIDDEN);
            return err;
        }
        ObjectError::DiskFull => {
            let mut err = S3Error::with_message(
                C::Custom("StorageFull".into()),
                "The drives are full; the object was not stored",
            );
            err.set_status_code(http::StatusCode::INSUFFICIENT_STORAGE);
            return err;
        }

        ObjectError::Encryption(e) => return sse_to_s3(e),
        ObjectError::Body(e) => {
            tracing::debug!(error = %e, "request body failed");
            (
                C::IncompleteBody,
                "The request body could not be read completely".into(),
            )
        }
        ObjectError::Internal(m) => {
            tracing::error!(error = %m, "internal error");
            (
                C::InternalError,
                "We encountered an internal error. Please try again.".into(),
            )
        }
    };
    S3Error::with_message(code, msg)
}

/// An encryption failure as S3 answers it; key material never appears in
/// the message (none of the variants carries any).
pub fn sse_to_s3(e: SseError) -> S3Error {
    use S3ErrorCode as C;
    let with = |code: C, status: http::StatusCode, msg: String| {
        let mut err = S3Error::with_message(code, msg);
        err.set_status_code(status);
        err
    };
    let bad = http::StatusCode::BAD_REQUEST;
    let internal = || {
        S3Error::with_message(
            C::InternalError,
            "We encountered an internal error. Please try again.",
        )
    };
    match e {
        SseError::MissingCustomerKey => with(
            C::InvalidRequest,
            bad,
            "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.".into(),
        ),
        SseError::WrongCustomerKey => with(C::AccessDenied, http::StatusCode::FORBIDDEN, "Access Denied".into()),
        SseError::KmsDenied(k) => with(
            C::AccessDenied,
            http::StatusCode::FORBIDDEN,
            format!("The caller is not authorized to use KMS key '{k}'"),
        ),
        SseError::BadCustomerKey(m) => with(C::InvalidArgument, bad, m.into()),
        SseError::BadAlgorithm => with(
            C::InvalidEncryptionAlgorithmError,
            bad,
            "The encryption request you specified is not valid. The valid value is AES256.".into(),
        ),
        SseError::Insecure => with(
            C::InvalidRequest,
            bad,
            "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.".into(),
        ),
        SseError::Invalid(m) => with(C::InvalidArgument, bad, m),
        SseError::Tampered | SseError::Unknown => {
            tracing::error!(error = %e, "encrypted data does not open");
            internal()
        }
        SseError::Kms(k) => match k {
            KmsError::NotConfigured => with(
                C::NotImplemented,
                http::StatusCode::NOT_IMPLEMENTED,
                "Server-side encryption with SSE-S3 or SSE-KMS needs a key management service, and this server has none configured".into(),
            ),
            KmsError::NoSuchKey(n) => with(
                C::Custom("KMS.NotFoundException".into()),
                bad,
                format!("Key '{n}' does not exist"),
            ),
            KmsError::Disabled(n) => with(
                C::Custom("KMS.DisabledException".into()),
                bad,
                format!("Key '{n}' is disabled"),
            ),
            KmsError::Unavailable(ref m) => {
                tracing::warn!(error = %m, "KMS unavailable");
                with(
                    C::ServiceUnavailable,
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    "The key management service is unavailable; retry later".into(),
                )
            }
            KmsError::Invalid(m) => with(C::InvalidArgument, bad, m),
            KmsError::KeyExists(n) => with(C::InvalidRequest, bad, format!("Key '{n}' already exists")),
            KmsError::Unsupported(m) => with(C::NotImplemented, http::StatusCode::NOT_IMPLEMENTED, m.into()),
            KmsError::Unsealable => {
                tracing::error!("a sealed data key does not open with its KMS key");
                internal()
            }
        },
    }
}

/// A refused bucket policy.
/// The S3 answer to an ACL or access setting that cannot be taken.
pub fn acl_to_s3(e: AclError) -> S3Error {
    use S3ErrorCode as C;
    let code = match &e {
        AclError::InvalidArgument(_) => C::InvalidArgument,
        AclError::UnresolvableEmail => C::UnresolvableGrantByEmailAddress,
        AclError::Malformed => C::MalformedACLError,
        AclError::Conflicting(_) => C::InvalidRequest,
        AclError::NotSupported => C::AccessControlListNotSupported,
        AclError::InvalidWithOwnership => C::InvalidBucketAclWithObjectOwnership,
        AclError::Blocked => C::AccessDenied,
        AclError::InvalidSetting(_) => C::MalformedXML,
    };
    S3Error::with_message(code, e.to_string())
}

pub fn policy_to_s3(e: PolicyError) -> S3Error {
    S3Error::with_message(S3ErrorCode::MalformedPolicy, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_detail_never_reaches_the_client() {
        let e = to_s3(ObjectError::Internal("/data/d1/index.redb: I/O error".into()));
        assert_eq!(*e.code(), S3ErrorCode::InternalError);
        assert!(!e.message().unwrap_or_default().contains("/data"));
        let e = to_s3(ObjectError::DiskFull);
        assert_eq!(e.status_code(), Some(http::StatusCode::INSUFFICIENT_STORAGE));
    }
}
