//! Bucket policy operations: the policy is validated when it is set (a
//! policy objd cannot enforce exactly is refused) and stored as the text
//! the client sent; the server's access stage evaluates it.

use super::convert::invalid;
use super::{StrataS3, fail, rid};
use crate::api::error::policy_to_s3;
use crate::policy::{BUCKET_SETTING as POLICY_SETTING, Policy};
use s3s::dto::*;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result};

fn no_policy() -> s3s::S3Error {
    invalid(
        S3ErrorCode::NoSuchBucketPolicy,
        "The bucket policy does not exist",
    )
}

/// The bucket's policy text, if it has one.
fn stored(s3: &StrataS3, rid: &str, bucket: &str) -> S3Result<Option<String>> {
    let raw = s3
        .layer
        .bucket_setting(bucket, POLICY_SETTING)
        .map_err(fail(rid))?;
    Ok(raw.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

pub async fn put_bucket_policy(
    s3: &StrataS3,
    req: S3Request<PutBucketPolicyInput>,
) -> S3Result<S3Response<PutBucketPolicyOutput>> {
    let rid = rid(&req);
    let i = req.input;
    s3.layer.bucket(&i.bucket).map_err(fail(&rid))?;
    let policy = Policy::parse(&i.policy, &i.bucket).map_err(policy_to_s3)?;
    super::acl::check_policy(s3, &rid, &i.bucket, policy.is_public())?;
    s3.layer
        .set_bucket_setting(&i.bucket, POLICY_SETTING, Some(i.policy.into_bytes()))
        .await
        .map_err(fail(&rid))?;
    Ok(S3Response::new(PutBucketPolicyOutput::default()))
}

pub async fn get_bucket_policy(
    s3: &StrataS3,
    req: S3Request<GetBucketPolicyInput>,
) -> S3Result<S3Response<GetBucketPolicyOutput>> {
    let rid = rid(&req);
    let policy = stored(s3, &rid, &req.input.bucket)?.ok_or_else(no_policy)?;
    Ok(S3Response::new(GetBucketPolicyOutput { policy: Some(policy) }))
}

pub async fn delete_bucket_policy(
    s3: &StrataS3,
    req: S3Request<DeleteBucketPolicyInput>,
) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
    super::delete_setting(s3, &req, &req.input.bucket, POLICY_SETTING).await
}

pub async fn get_bucket_policy_status(
    s3: &StrataS3,
    req: S3Request<GetBucketPolicyStatusInput>,
) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
    let rid = rid(&req);
    let bucket = &req.input.bucket;
    // Public by its policy or by its ACL; a bucket with neither a policy
    // nor a public ACL has no policy status, as in S3.
    let by_acl = super::acl::acl_is_public(s3, &rid, bucket)?;
    let public = match stored(s3, &rid, bucket)? {
        Some(text) => by_acl || Policy::parse(&text, bucket).is_ok_and(|p| p.is_public()),
        None if by_acl => true,
        None => return Err(no_policy()),
    };
    Ok(S3Response::new(GetBucketPolicyStatusOutput {
        policy_status: Some(PolicyStatus {
            is_public: Some(public),
        }),
    }))
}
