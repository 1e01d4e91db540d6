//! Object Lock operations: the bucket's lock configuration (default
//! retention), and the retention and legal hold of single versions.

use super::convert::{invalid, retention, retention_mode, ts};
use super::{StrataS3, fail, rid};
use crate::object::lock::{LockConfig, Retention, RetentionMode};
use s3s::dto::*;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result};

fn mode_out(m: RetentionMode) -> ObjectLockRetentionMode {
    ObjectLockRetentionMode::from_static(match m {
        RetentionMode::Governance => ObjectLockRetentionMode::GOVERNANCE,
        RetentionMode::Compliance => ObjectLockRetentionMode::COMPLIANCE,
    })
}

pub async fn put_object_lock_configuration(
    s3: &StrataS3,
    req: S3Request<PutObjectLockConfigurationInput>,
) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
    let rid = rid(&req);
    let i = req.input;
    let c = i.object_lock_configuration.ok_or_else(|| {
        invalid(
            S3ErrorCode::MalformedXML,
            "The XML you provided was not well-formed",
        )
    })?;
    if c.object_lock_enabled.as_ref().map(ObjectLockEnabled::as_str) != Some(ObjectLockEnabled::ENABLED) {
        return Err(invalid(
            S3ErrorCode::MalformedXML,
            "ObjectLockEnabled must be Enabled",
        ));
    }
    let d = c.rule.and_then(|r| r.default_retention);
    if let Some(d) = &d {
        // What S3's schema refuses is malformed; a period it takes but
        // cannot honour is an invalid argument.
        let malformed = || {
            invalid(
                S3ErrorCode::MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema",
            )
        };
        let mode_ok = d.mode.as_ref().is_some_and(|m| {
            [
                ObjectLockRetentionMode::GOVERNANCE,
                ObjectLockRetentionMode::COMPLIANCE,
            ]
            .contains(&m.as_str())
        });
        if !mode_ok || d.days.is_some() == d.years.is_some() {
            return Err(malformed());
        }
        if d.days.or(d.years).is_some_and(|n| n <= 0) {
            return Err(invalid(
                S3ErrorCode::InvalidArgument,
                "Default retention period must be a positive integer value",
            ));
        }
    }
    let config = LockConfig {
        default_mode: d
            .as_ref()
            .and_then(|d| d.mode.as_ref())
            .map(|m| retention_mode(m.as_str()))
            .transpose()?,
        default_days: d.as_ref().and_then(|d| d.days).map(|v| v.max(0) as u32),
        default_years: d.as_ref().and_then(|d| d.years).map(|v| v.max(0) as u32),
    };
    s3.layer
        .set_lock_config(&i.bucket, config)
        .await
        .map_err(fail(&rid))?;
    Ok(S3Response::new(PutObjectLockConfigurationOutput::default()))
}

pub async fn get_object_lock_configuration(
    s3: &StrataS3,
    req: S3Request<GetObjectLockConfigurationInput>,
) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
    let rid = rid(&req);
    let c = s3
        .layer
        .lock_config(&req.input.bucket)
        .map_err(fail(&rid))?
        .ok_or_else(|| {
            invalid(
                S3ErrorCode::ObjectLockConfigurationNotFoundError,
                "Object Lock configuration does not exist for this bucket",
            )
        })?;
    let rule = c.default_mode.map(|m| ObjectLockRule {
        default_retention: Some(DefaultRetention {
            mode: Some(mode_out(m)),
            days: c.default_days.map(|d| d as i32),
            years: c.default_years.map(|y| y as i32),
        }),
    });
    Ok(S3Response::new(GetObjectLockConfigurationOutput {
        object_lock_configuration: Some(ObjectLockConfiguration {
            object_lock_enabled: Some(ObjectLockEnabled::from_static(ObjectLockEnabled::ENABLED)),
            rule,
        }),
    }))
}

pub async fn put_object_retention(
    s3: &StrataS3,
    req: S3Request<PutObjectRetentionInput>,
) -> S3Result<S3Response<PutObjectRetentionOutput>> {
    let rid = rid(&req);
    let i = req.input;
    let retention = match i.retention {
        None => None,
        Some(r) => retention(
            r.mode.as_ref().map(ObjectLockRetentionMode::as_str),
            r.retain_until_date,
        )?,
    };
    s3.layer
        .put_retention(
            &i.bucket,
            &i.key,
            i.version_id.as_deref(),
            retention,
            i.bypass_governance_retention.unwrap_or(false),
        )
        .await
        .map_err(fail(&rid))?;
    Ok(S3Response::new(PutObjectRetentionOutput::default()))
}

pub async fn get_object_retention(
    s3: &StrataS3,
    req: S3Request<GetObjectRetentionInput>,
) -> S3Result<S3Response<GetObjectRetentionOutput>> {
    let rid = rid(&req);
    let i = req.input;
    let (_, reader) = s3.open(&rid, &i.bucket, &i.key, i.version_id.as_deref()).await?;
    let r = Retention::of(&reader.version().extras).ok_or_else(|| {
        invalid(
            S3ErrorCode::NoSuchObjectLockConfiguration,
            "The specified object does not have a ObjectLock configuration",
        )
    })?;
    Ok(S3Response::new(GetObjectRetentionOutput {
        retention: Some(ObjectLockRetention {
            mode: Some(mode_out(r.mode)),
            retain_until_date: Some(ts(r.until_ns)),
        }),
    }))
}

pub async fn put_object_legal_hold(
    s3: &StrataS3,
    req: S3Request<PutObjectLegalHoldInput>,
) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
    let rid = rid(&req);
    let i = req.input;
    let on = match i.legal_hold.and_then(|h| h.status) {
        Some(s) if s.as_str() == ObjectLockLegalHoldStatus::ON => true,
        Some(s) if s.as_str() == ObjectLockLegalHoldStatus::OFF => false,
        _ => {
            return Err(invalid(
                S3ErrorCode::MalformedXML,
                "LegalHold Status must be ON or OFF",
            ));
        }
    };
    s3.layer
        .put_legal_hold(&i.bucket, &i.key, i.version_id.as_deref(), on)
        .await
        .map_err(fail(&rid))?;
    Ok(S3Response::new(PutObjectLegalHoldOutput::default()))
}

pub async fn get_object_legal_hold(
    s3: &StrataS3,
    req: S3Request<GetObjectLegalHoldInput>,
) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
    let rid = rid(&req);
    let i = req.input;
    if s3.layer.lock_config(&i.bucket).map_err(fail(&rid))?.is_none() {
        return Err(invalid(
            S3ErrorCode::InvalidRequest,
            "Bucket is missing Object Lock Configuration",
        ));
    }
    let (_, reader) = s3.open(&rid, &i.bucket, &i.key, i.version_id.as_deref()).await?;
    let on = reader.version().extras.legal_hold;
    Ok(S3Response::new(GetObjectLegalHoldOutput {
        legal_hold: Some(ObjectLockLegalHold {
            status: Some(ObjectLockLegalHoldStatus::from_static(if on {
                ObjectLockLegalHoldStatus::ON
            } else {
                ObjectLockLegalHoldStatus::OFF
            })),
        }),
    }))
}
