//! Access control lists, as far as objd has them: it does not keep ACLs
//! (access is decided by credentials and bucket policies), so every bucket
//! and object reports the owner with FULL_CONTROL, and setting an ACL is
//! accepted only when it asks for exactly that (`private`). Tools such as
//! s3cmd read ACLs before copying and need the answer.

use super::convert::invalid;
use super::{StrataS3, fail, rid};
use s3s::dto::*;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result};

/// Whether a Put*Acl request names grants (rather than a canned ACL).
macro_rules! explicit_grants {
    ($i:expr) => {
        $i.access_control_policy.is_some()
            || $i.grant_full_control.is_some()
            || $i.grant_read.is_some()
            || $i.grant_read_acp.is_some()
            || $i.grant_write.is_some()
            || $i.grant_write_acp.is_some()
    };
}

fn owner() -> Owner {
    Owner {
        display_name: Some("strata".into()),
        id: Some("strata".into()),
    }
}

fn owner_full_control() -> Grants {
    vec![Grant {
        grantee: Some(Grantee {
            display_name: Some("strata".into()),
            id: Some("strata".into()),
            type_: Type::from_static(Type::CANONICAL_USER),
            email_address: None,
            uri: None,
        }),
        permission: Some(Permission::from_static(Permission::FULL_CONTROL)),
    }]
}

/// Only `private` (or no change at all) can be honoured.
fn only_private(canned: Option<&str>, explicit: bool) -> S3Result<()> {
    if explicit || canned.is_some_and(|c| c != ObjectCannedACL::PRIVATE) {
        return Err(invalid(
            S3ErrorCode::NotImplemented,
            "Access control lists are not supported; use bucket policies",
        ));
    }
    Ok(())
}

pub async fn get_bucket_acl(
    s3: &StrataS3,
    req: S3Request<GetBucketAclInput>,
) -> S3Result<S3Response<GetBucketAclOutput>> {
    let rid = rid(&req);
    s3.layer.bucket(&req.input.bucket).map_err(fail(&rid))?;
    Ok(S3Response::new(GetBucketAclOutput {
        grants: Some(owner_full_control()),
        owner: Some(owner()),
    }))
}

pub async fn put_bucket_acl(
    s3: &StrataS3,
    req: S3Request<PutBucketAclInput>,
) -> S3Result<S3Response<PutBucketAclOutput>> {
    let rid = rid(&req);
    let i = req.input;
    s3.layer.bucket(&i.bucket).map_err(fail(&rid))?;
    let explicit = explicit_grants!(i);
    only_private(i.acl.as_ref().map(BucketCannedACL::as_str), explicit)?;
    Ok(S3Response::new(PutBucketAclOutput::default()))
}

pub async fn get_object_acl(
    s3: &StrataS3,
    req: S3Request<GetObjectAclInput>,
) -> S3Result<S3Response<GetObjectAclOutput>> {
    let rid = rid(&req);
    let i = req.input;
    s3.open(&rid, &i.bucket, &i.key, i.version_id.as_deref()).await?;
    Ok(S3Response::new(GetObjectAclOutput {
        grants: Some(owner_full_control()),
        owner: Some(owner()),
        request_charged: None,
    }))
}

pub async fn put_object_acl(
    s3: &StrataS3,
    req: S3Request<PutObjectAclInput>,
) -> S3Result<S3Response<PutObjectAclOutput>> {
    let rid = rid(&req);
    let i = req.input;
    s3.open(&rid, &i.bucket, &i.key, i.version_id.as_deref()).await?;
    let explicit = explicit_grants!(i);
    only_private(i.acl.as_ref().map(ObjectCannedACL::as_str), explicit)?;
    Ok(S3Response::new(PutObjectAclOutput::default()))
}
