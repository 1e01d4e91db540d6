//! Bucket operations: create, head, delete, list, location, versioning and
//! bucket tagging and CORS configuration.

use super::convert::{invalid, tags_from_dto, tags_to_dto, ts};
use super::{StrataS3, fail, rid};
use crate::cors::{self, CorsConfig, CorsRule};
use crate::meta::Versioning;
use crate::object::ObjectError;
use s3s::dto::*;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result};

pub async fn list_buckets(
    s3: &StrataS3,
    _req: S3Request<ListBucketsInput>,
) -> S3Result<S3Response<ListBucketsOutput>> {
    let buckets = s3
        .layer
        .list_buckets()
        .into_iter()
        .map(|b| Bucket {
            name: Some(b.name),
            creation_date: Some(ts(b.created_ns)),
            ..Default::default()
        })
        .collect();
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(super::acl::dto_owner(&s3.owner)),
        ..Default::default()
    }))
}

pub async fn create_bucket(
    s3: &StrataS3,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    let rid = rid(&req);
    let i = req.input;
    let settings = super::acl::new_bucket_settings(
        s3,
        i.object_ownership.as_ref(),
        i.acl.as_ref().map(BucketCannedACL::as_str),
        super::acl::grant_headers!(i),
    )?;
    let name = i.bucket;
    // objd answers as S3's us-east-1: creating a bucket one owns already
    // succeeds and changes nothing, unless the request names a region.
    let region = i
        .create_bucket_configuration
        .as_ref()
        .and_then(|c| c.location_constraint.as_ref())
        .map(|l| l.as_str().to_owned())
        .filter(|l| !l.is_empty() && l != "us-east-1");
    let made = if i.object_lock_enabled_for_bucket == Some(true) {
        s3.layer.make_locked_bucket(&name, settings).await
    } else {
        s3.layer.make_bucket_with(&name, settings).await
    };
    match made {
        Err(ObjectError::BucketExists) if region.is_none() => {}
        r => r.map_err(fail(&rid))?,
    }
    Ok(S3Response::new(CreateBucketOutput {
        location: Some(format!("/{name}")),
    }))
}

pub async fn head_bucket(
    s3: &StrataS3,
    req: S3Request<HeadBucketInput>,
) -> S3Result<S3Response<HeadBucketOutput>> {
    let rid = rid(&req);
    s3.layer.bucket(&req.input.bucket).map_err(fail(&rid))?;
    Ok(S3Response::new(HeadBucketOutput::default()))
}

pub async fn delete_bucket(
    s3: &StrataS3,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    let rid = rid(&req);
    s3.layer
        .delete_bucket(&req.input.bucket)
        .await
        .map_err(fail(&rid))?;
    Ok(S3Response::new(DeleteBucketOutput::default()))
}

pub async fn get_bucket_location(
    s3: &StrataS3,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    let rid = rid(&req);
    s3.layer.bucket(&req.input.bucket).map_err(fail(&rid))?;
    Ok(S3Response::new(GetBucketLocationOutput::default()))
}

pub async fn get_bucket_versioning(
    s3: &StrataS3,
    req: S3Request<GetBucketVersioningInput>,
) -> S3Result<S3Response<GetBucketVersioningOutput>> {
    let rid = rid(&req);
    let b = s3.layer.bucket(&req.input.bucket).map_err(fail(&rid))?;
    let status = match b.versioning {
        Versioning::Unversioned => None,
        Versioning::Enabled => Some(BucketVersioningStatus::from_static(
            BucketVersioningStatus::ENABLED,
        )),
        Versioning::Suspended => Some(BucketVersioningStatus::from_static(
            BucketVersioningStatus::SUSPENDED,
        )),
    };
    Ok(S3Response::new(GetBucketVersioningOutput {
        status,
        ..Default::default()
    }))
}

pub async fn put_bucket_versioning(
    s3: &StrataS3,
    req: S3Request<PutBucketVersioningInput>,
) -> S3Result<S3Response<PutBucketVersioningOutput>> {
    let rid = rid(&req);
    let c = req.input.versioning_configuration;
    if c.mfa_delete
        .as_ref()
        .is_some_and(|m| m.as_str() == MFADelete::ENABLED)
    {
        return Err(invalid(
            S3ErrorCode::NotImplemented,
            "MFA delete is not supported",
        ));
    }
    let v = match c.status.as_ref().map(BucketVersioningStatus::as_str) {
        Some(BucketVersioningStatus::ENABLED) => Versioning::Enabled,
        Some(BucketVersioningStatus::SUSPENDED) => Versioning::Suspended,
        _ => {
            return Err(invalid(
                S3ErrorCode::IllegalVersioningConfigurationException,
                "The versioning configuration specified in the request is invalid: Status must be Enabled or Suspended",
            ));
        }
    };
    s3.layer
        .set_versioning(&req.input.bucket, v)
        .await
        .map_err(fail(&rid))?;
    Ok(S3Response::new(PutBucketVersioningOutput::default()))
}

pub async fn get_bucket_tagging(
    s3: &StrataS3,
    req: S3Request<GetBucketTaggingInput>,
) -> S3Result<S3Response<GetBucketTaggingOutput>> {
    let rid = rid(&req);
    match s3.layer.bucket_tags(&req.input.bucket).map_err(fail(&rid))? {
        Some(tags) => Ok(S3Response::new(GetBucketTaggingOutput {
            tag_set: tags_to_dto(&tags),
        })),
        None => Err(invalid(S3ErrorCode::NoSuchTagSet, "The TagSet does not exist")),
    }
}

pub async fn put_bucket_tagging(
    s3: &StrataS3,
    req: S3Request<PutBucketTaggingInput>,
) -> S3Result<S3Response<PutBucketTaggingOutput>> {
    let rid = rid(&req);
    let i = req.input;
    s3.layer
        .put_bucket_tags(&i.bucket, tags_from_dto(i.tagging))
        .await
        .map_err(fail(&rid))?;
    Ok(S3Response::new(PutBucketTaggingOutput::default()))
}

pub async fn delete_bucket_tagging(
    s3: &StrataS3,
    req: S3Request<DeleteBucketTaggingInput>,
) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
    let rid = rid(&req);
    s3.layer
        .put_bucket_tags(&req.input.bucket, vec![])
        .await
        .map_err(fail(&rid))?;
    Ok(S3Response::new(DeleteBucketTaggingOutput::default()))
}

fn no_cors() -> s3s::S3Error {
    invalid(
        S3ErrorCode::NoSuchCORSConfiguration,
        "The CORS configuration does not exist",
    )
}

pub async fn put_bucket_cors(
    s3: &StrataS3,
    req: S3Request<PutBucketCorsInput>,
) -> S3Result<S3Response<PutBucketCorsOutput>> {
    let rid = rid(&req);
    let i = req.input;
    s3.layer.bucket(&i.bucket).map_err(fail(&rid))?;
    let config = CorsConfig {
        rules: i
            .cors_configuration
            .cors_rules
            .into_iter()
            .map(|r| CorsRule {
                id: r.id,
                allowed_origins: r.allowed_origins,
                allowed_methods: r.allowed_methods,
                allowed_headers: r.allowed_headers.unwrap_or_default(),
                expose_headers: r.expose_headers.unwrap_or_default(),
                max_age_seconds: r.max_age_seconds,
            })
            .collect(),
    };
    config
        .validate()
        .map_err(|m| s3s::S3Error::with_message(S3ErrorCode::InvalidRequest, m))?;
    s3.layer
        .set_bucket_setting(&i.bucket, cors::BUCKET_SETTING, Some(config.encode()))
        .await
        .map_err(fail(&rid))?;
    Ok(S3Response::new(PutBucketCorsOutput::default()))
}

pub async fn get_bucket_cors(
    s3: &StrataS3,
    req: S3Request<GetBucketCorsInput>,
) -> S3Result<S3Response<GetBucketCorsOutput>> {
    let rid = rid(&req);
    let raw = s3
        .layer
        .bucket_setting(&req.input.bucket, cors::BUCKET_SETTING)
        .map_err(fail(&rid))?
        .ok_or_else(no_cors)?;
    let config = CorsConfig::decode(&raw).ok_or_else(no_cors)?;
    let rules = config
        .rules
        .into_iter()
        .map(|r| CORSRule {
            id: r.id,
            allowed_origins: r.allowed_origins,
            allowed_methods: r.allowed_methods,
            allowed_headers: (!r.allowed_headers.is_empty()).then_some(r.allowed_headers),
            expose_headers: (!r.expose_headers.is_empty()).then_some(r.expose_headers),
            max_age_seconds: r.max_age_seconds,
        })
        .collect();
    Ok(S3Response::new(GetBucketCorsOutput {
        cors_rules: Some(rules),
    }))
}

pub async fn delete_bucket_cors(
    s3: &StrataS3,
    req: S3Request<DeleteBucketCorsInput>,
) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
    super::delete_setting(s3, &req, &req.input.bucket, cors::BUCKET_SETTING).await
}
