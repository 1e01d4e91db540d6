//! Access control lists, object ownership controls and public access
//! blocks over S3: Get/Put of bucket and object ACLs, the ACL a write
//! asks for (canned, `x-amz-grant-*` headers or an `AccessControlPolicy`
//! body), Put/Get/Delete of ownership controls and of the public access
//! block. The rules are [`crate::acl`]'s; authorization applies them.

use super::convert::invalid;
use super::{StrataS3, fail, rid};
use crate::acl::{
    ACL_SETTING, Acl, AclError, AclResult, BucketAccess, Named, OWNERSHIP_SETTING, Owner as AclOwner,
    Ownership, PUBLIC_ACCESS_BLOCK_SETTING, Permission as P, PublicAccessBlock,
};
use crate::api::error::acl_to_s3;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

/// The `x-amz-grant-*` values of a request.
#[derive(Debug, Default)]
pub struct GrantHeaders<'a> {
    pub full_control: Option<&'a str>,
    pub read: Option<&'a str>,
    pub read_acp: Option<&'a str>,
    pub write: Option<&'a str>,
    pub write_acp: Option<&'a str>,
}

impl GrantHeaders<'_> {
    fn pairs(&self) -> Vec<(P, &str)> {
        [
            (P::FullControl, self.full_control),
            (P::Read, self.read),
            (P::ReadAcp, self.read_acp),
            (P::Write, self.write),
            (P::WriteAcp, self.write_acp),
        ]
        .into_iter()
        .filter_map(|(p, v)| Some((p, v?)))
        .collect()
    }
}

/// The grant headers of an input; `object` inputs have no `grant_write`.
macro_rules! grant_headers {
    (object $i:expr) => {
        $crate::api::s3::acl::GrantHeaders {
            full_control: $i.grant_full_control.as_deref(),
            read: $i.grant_read.as_deref(),
            read_acp: $i.grant_read_acp.as_deref(),
            write: None,
            write_acp: $i.grant_write_acp.as_deref(),
        }
    };
    ($i:expr) => {
        $crate::api::s3::acl::GrantHeaders {
            full_control: $i.grant_full_control.as_deref(),
            read: $i.grant_read.as_deref(),
            read_acp: $i.grant_read_acp.as_deref(),
            write: $i.grant_write.as_deref(),
            write_acp: $i.grant_write_acp.as_deref(),
        }
    };
}
pub(crate) use grant_headers;

/// The ACL a write of an object asks for (PutObject, CopyObject,
/// CreateMultipartUpload), as stored codes (empty: the default), checked
/// against the bucket's ownership control and public access block.
macro_rules! object_acl {
    ($s3:expr, $rid:expr, $i:expr) => {
        $crate::api::s3::acl::for_object(
            $s3,
            &$rid,
            &$i.bucket,
            $i.acl.as_ref().map(|a| a.as_str()),
            $crate::api::s3::acl::grant_headers!(object $i),
        )?
    };
}
pub(crate) use object_acl;

/// The list a request asks for, if it names one: a canned ACL, grant
/// headers, or (Put*Acl) a body; more than one is refused.
fn requested(
    owner: &AclOwner,
    canned: Option<&str>,
    headers: &GrantHeaders<'_>,
    body: Option<&AccessControlPolicy>,
    bucket: bool,
) -> AclResult<Option<Acl>> {
    let pairs = headers.pairs();
    let named = [canned.is_some(), !pairs.is_empty(), body.is_some()];
    if named.iter().filter(|n| **n).count() > 1 {
        return Err(AclError::Conflicting(
            "Specifying both Canned ACLs and Header Grants is not allowed".into(),
        ));
    }
    if let Some(c) = canned {
        return Acl::canned(c, bucket).map(Some);
    }
    if !pairs.is_empty() {
        return Acl::from_headers(owner, &pairs).map(Some);
    }
    body.map(|p| from_policy(owner, p)).transpose()
}

/// The list an `AccessControlPolicy` body states.
fn from_policy(owner: &AclOwner, p: &AccessControlPolicy) -> AclResult<Acl> {
    if let Some(id) = p.owner.as_ref().and_then(|o| o.id.as_deref())
        && id != owner.id
    {
        return Err(AclError::InvalidArgument("Invalid id".into()));
    }
    let mut grants = Vec::new();
    for g in p.grants.iter().flatten() {
        let (Some(grantee), Some(permission)) = (&g.grantee, &g.permission) else {
            return Err(AclError::Malformed);
        };
        let named = match grantee.type_.as_str() {
            Type::CANONICAL_USER => Named::Id(grantee.id.as_deref().ok_or(AclError::Malformed)?),
            Type::GROUP => Named::Uri(grantee.uri.as_deref().ok_or(AclError::Malformed)?),
            Type::AMAZON_CUSTOMER_BY_EMAIL => {
                Named::Email(grantee.email_address.as_deref().ok_or(AclError::Malformed)?)
            }
            _ => return Err(AclError::Malformed),
        };
        grants.push((owner.resolve(named)?, P::parse(permission.as_str())?));
    }
    Acl::from_grants(grants)
}

/// The owner and grants of `acl`, as S3 renders them.
fn rendered(owner: &AclOwner, acl: &Acl) -> (Owner, Grants) {
    let grants = acl
        .grants()
        .iter()
        .map(|(g, p)| {
            let grantee = match g.uri() {
                None => Grantee {
                    display_name: Some(owner.display_name.clone()),
                    id: Some(owner.id.clone()),
                    type_: Type::from_static(Type::CANONICAL_USER),
                    email_address: None,
                    uri: None,
                },
                Some(uri) => Grantee {
                    display_name: None,
                    id: None,
                    type_: Type::from_static(Type::GROUP),
                    email_address: None,
                    uri: Some(uri.into()),
                },
            };
            Grant {
                grantee: Some(grantee),
                permission: Some(Permission::from(p.as_str().to_owned())),
            }
        })
        .collect();
    (dto_owner(owner), grants)
}

/// The owner element of listings and ACLs.
pub fn dto_owner(owner: &AclOwner) -> Owner {
    Owner {
        display_name: Some(owner.display_name.clone()),
        id: Some(owner.id.clone()),
    }
}

/// A bucket's access settings.
fn bucket_access(s3: &StrataS3, rid: &str, bucket: &str) -> S3Result<BucketAccess> {
    Ok(BucketAccess::of(
        &s3.layer.bucket(bucket).map_err(fail(rid))?.settings,
    ))
}

/// See [`object_acl`].
pub fn for_object(
    s3: &StrataS3,
    rid: &str,
    bucket: &str,
    canned: Option<&str>,
    headers: GrantHeaders<'_>,
) -> S3Result<Vec<(u8, u8)>> {
    let Some(acl) = requested(&s3.owner, canned, &headers, None, false).map_err(acl_to_s3)? else {
        return Ok(Vec::new());
    };
    bucket_access(s3, rid, bucket)?
        .check_set(&acl)
        .map_err(acl_to_s3)?;
    Ok(acl.to_codes())
}

/// The settings a new bucket starts with: its ownership control (asked
/// for, else the server's default) and the ACL asked for, refused
/// together when the ownership disables ACLs and the list grants others.
pub fn new_bucket_settings(
    s3: &StrataS3,
    asked: Option<&ObjectOwnership>,
    canned: Option<&str>,
    headers: GrantHeaders<'_>,
) -> S3Result<Vec<(String, Vec<u8>)>> {
    let ownership = match asked {
        Some(o) => Ownership::parse(o.as_str()).map_err(acl_to_s3)?,
        None => s3.default_ownership,
    };
    let acl = requested(&s3.owner, canned, &headers, None, true).map_err(acl_to_s3)?;
    let mut settings = vec![(
        OWNERSHIP_SETTING.to_owned(),
        ownership.as_str().as_bytes().to_vec(),
    )];
    if let Some(acl) = acl {
        if !ownership.acls_enabled() && !acl.owner_only() {
            return Err(acl_to_s3(AclError::InvalidWithOwnership));
        }
        if acl != Acl::default() {
            settings.push((ACL_SETTING.to_owned(), acl.encode()));
        }
    }
    Ok(settings)
}

/// [`to_set`] of a Put*Acl input (`$on_bucket`: PutBucketAcl).
macro_rules! acl_to_set {
    ($s3:expr, $rid:expr, $i:expr, $on_bucket:expr) => {
        to_set(
            $s3,
            &$rid,
            &$i.bucket,
            $i.acl.as_ref().map(|a| a.as_str()),
            grant_headers!($i),
            $i.access_control_policy.as_ref(),
            $on_bucket,
        )?
    };
}

/// The list a Put*Acl request sets, checked against the bucket's settings.
fn to_set(
    s3: &StrataS3,
    rid: &str,
    bucket: &str,
    canned: Option<&str>,
    headers: GrantHeaders<'_>,
    body: Option<&AccessControlPolicy>,
    on_bucket: bool,
) -> S3Result<Acl> {
    let acl = requested(&s3.owner, canned, &headers, body, on_bucket)
        .and_then(|a| a.ok_or(AclError::Malformed))
        .map_err(acl_to_s3)?;
    bucket_access(s3, rid, bucket)?
        .check_set(&acl)
        .map_err(acl_to_s3)?;
    Ok(acl)
}

pub async fn get_bucket_acl(
    s3: &StrataS3,
    req: S3Request<GetBucketAclInput>,
) -> S3Result<S3Response<GetBucketAclOutput>> {
    let rid = rid(&req);
    let access = bucket_access(s3, &rid, &req.input.bucket)?;
    let acl = if access.acls_enabled() {
        access.acl
    } else {
        Acl::default()
    };
    let (owner, grants) = rendered(&s3.owner, &acl);
    Ok(S3Response::new(GetBucketAclOutput {
        grants: Some(grants),
        owner: Some(owner),
    }))
}

pub async fn put_bucket_acl(
    s3: &StrataS3,
    req: S3Request<PutBucketAclInput>,
) -> S3Result<S3Response<PutBucketAclOutput>> {
    let rid = rid(&req);
    let i = req.input;
    let acl = acl_to_set!(s3, rid, i, true);
    let stored = (acl != Acl::default()).then(|| acl.encode());
    s3.layer
        .set_bucket_setting(&i.bucket, ACL_SETTING, stored)
        .await
        .map_err(fail(&rid))?;
    Ok(S3Response::new(PutBucketAclOutput::default()))
}

pub async fn get_object_acl(
    s3: &StrataS3,
    req: S3Request<GetObjectAclInput>,
) -> S3Result<S3Response<GetObjectAclOutput>> {
    let rid = rid(&req);
    let i = req.input;
    let access = bucket_access(s3, &rid, &i.bucket)?;
    let (_, reader) = s3.open(&rid, &i.bucket, &i.key, i.version_id.as_deref()).await?;
    let acl = if access.acls_enabled() {
        Acl::from_codes(&reader.version().extras.acl)
    } else {
        Acl::default()
    };
    let (owner, grants) = rendered(&s3.owner, &acl);
    Ok(S3Response::new(GetObjectAclOutput {
        grants: Some(grants),
        owner: Some(owner),
        request_charged: None,
    }))
}

pub async fn put_object_acl(
    s3: &StrataS3,
    req: S3Request<PutObjectAclInput>,
) -> S3Result<S3Response<PutObjectAclOutput>> {
    let rid = rid(&req);
    let i = req.input;
    let acl = acl_to_set!(s3, rid, i, false);
    s3.layer
        .put_object_acl(&i.bucket, &i.key, i.version_id.as_deref(), acl.to_codes())
        .await
        .map_err(fail(&rid))?;
    Ok(S3Response::new(PutObjectAclOutput::default()))
}

fn not_found(code: &str, message: &str) -> S3Error {
    let mut e = S3Error::with_message(S3ErrorCode::Custom(code.to_owned().into()), message.to_owned());
    e.set_status_code(http::StatusCode::NOT_FOUND);
    e
}

pub async fn put_bucket_ownership_controls(
    s3: &StrataS3,
    req: S3Request<PutBucketOwnershipControlsInput>,
) -> S3Result<S3Response<PutBucketOwnershipControlsOutput>> {
    let rid = rid(&req);
    let i = req.input;
    let [rule] = &i.ownership_controls.rules[..] else {
        return Err(invalid(
            S3ErrorCode::MalformedXML,
            "OwnershipControls takes exactly one rule",
        ));
    };
    let ownership = Ownership::parse(rule.object_ownership.as_str()).map_err(acl_to_s3)?;
    let access = bucket_access(s3, &rid, &i.bucket)?;
    if !ownership.acls_enabled() && !access.acl.owner_only() {
        return Err(acl_to_s3(AclError::InvalidWithOwnership));
    }
    let value = ownership.as_str().as_bytes().to_vec();
    s3.layer
        .set_bucket_setting(&i.bucket, OWNERSHIP_SETTING, Some(value))
        .await
        .map_err(fail(&rid))?;
    Ok(S3Response::new(PutBucketOwnershipControlsOutput::default()))
}

pub async fn get_bucket_ownership_controls(
    s3: &StrataS3,
    req: S3Request<GetBucketOwnershipControlsInput>,
) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
    let rid = rid(&req);
    let ownership = bucket_access(s3, &rid, &req.input.bucket)?
        .ownership
        .ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::OwnershipControlsNotFoundError,
                "The bucket ownership controls were not found",
            )
        })?;
    Ok(S3Response::new(GetBucketOwnershipControlsOutput {
        ownership_controls: Some(OwnershipControls {
            rules: vec![OwnershipControlsRule {
                object_ownership: ObjectOwnership::from(ownership.as_str().to_owned()),
            }],
        }),
    }))
}

pub async fn delete_bucket_ownership_controls(
    s3: &StrataS3,
    req: S3Request<DeleteBucketOwnershipControlsInput>,
) -> S3Result<S3Response<DeleteBucketOwnershipControlsOutput>> {
    super::delete_setting(s3, &req, &req.input.bucket, OWNERSHIP_SETTING).await
}

pub async fn put_public_access_block(
    s3: &StrataS3,
    req: S3Request<PutPublicAccessBlockInput>,
) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
    let rid = rid(&req);
    let i = req.input;
    let c = i.public_access_block_configuration;
    let block = PublicAccessBlock {
        block_public_acls: c.block_public_acls.unwrap_or(false),
        ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
        block_public_policy: c.block_public_policy.unwrap_or(false),
        restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
    };
    s3.layer
        .set_bucket_setting(&i.bucket, PUBLIC_ACCESS_BLOCK_SETTING, Some(block.encode()))
        .await
        .map_err(fail(&rid))?;
    Ok(S3Response::new(PutPublicAccessBlockOutput::default()))
}

pub async fn get_public_access_block(
    s3: &StrataS3,
    req: S3Request<GetPublicAccessBlockInput>,
) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
    let rid = rid(&req);
    let block = bucket_access(s3, &rid, &req.input.bucket)?.block.ok_or_else(|| {
        not_found(
            "NoSuchPublicAccessBlockConfiguration",
            "The public access block configuration was not found",
        )
    })?;
    Ok(S3Response::new(GetPublicAccessBlockOutput {
        public_access_block_configuration: Some(PublicAccessBlockConfiguration {
            block_public_acls: Some(block.block_public_acls),
            ignore_public_acls: Some(block.ignore_public_acls),
            block_public_policy: Some(block.block_public_policy),
            restrict_public_buckets: Some(block.restrict_public_buckets),
        }),
    }))
}

pub async fn delete_public_access_block(
    s3: &StrataS3,
    req: S3Request<DeletePublicAccessBlockInput>,
) -> S3Result<S3Response<DeletePublicAccessBlockOutput>> {
    super::delete_setting(s3, &req, &req.input.bucket, PUBLIC_ACCESS_BLOCK_SETTING).await
}

/// Whether the bucket's ACL makes it public (what GetBucketPolicyStatus
/// reports beside its policy).
pub fn acl_is_public(s3: &StrataS3, rid: &str, bucket: &str) -> S3Result<bool> {
    let access = bucket_access(s3, rid, bucket)?;
    Ok(access.acls_enabled() && !access.block().ignore_public_acls && access.acl.is_public())
}

/// Refuses a public bucket policy where the public access block blocks
/// them.
pub fn check_policy(s3: &StrataS3, rid: &str, bucket: &str, public: bool) -> S3Result<()> {
    if public && bucket_access(s3, rid, bucket)?.block().block_public_policy {
        return Err(acl_to_s3(AclError::Blocked));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::Grantee as G;

    fn owner() -> AclOwner {
        AclOwner::of_account("123456789012")
    }

    #[test]
    fn a_request_names_one_kind_of_acl_at_most() {
        let o = owner();
        let headers = GrantHeaders {
            read: Some("uri=\"http://acs.amazonaws.com/groups/global/AllUsers\""),
            ..Default::default()
        };
        let err = requested(&o, Some("private"), &headers, None, false).unwrap_err();
        assert!(matches!(err, AclError::Conflicting(_)));
        assert_eq!(
            requested(&o, None, &GrantHeaders::default(), None, false).unwrap(),
            None
        );
        let got = requested(&o, None, &headers, None, false).unwrap().unwrap();
        assert_eq!(got.grants(), &[(G::AllUsers, P::Read)]);
    }

    #[test]
    fn a_policy_body_round_trips_through_its_rendering() {
        let o = owner();
        let acl = Acl::canned("public-read-write", true).unwrap();
        let (dto_owner, grants) = rendered(&o, &acl);
        let body = AccessControlPolicy {
            grants: Some(grants),
            owner: Some(dto_owner),
        };
        assert_eq!(from_policy(&o, &body).unwrap(), acl);
        let foreign = AccessControlPolicy {
            owner: Some(Owner {
                id: Some("ab".repeat(32)),
                display_name: None,
            }),
            ..body.clone()
        };
        assert!(matches!(
            from_policy(&o, &foreign),
            Err(AclError::InvalidArgument(_))
        ));
        let mut no_permission = body;
        if let Some(g) = no_permission.grants.as_mut() {
            g[0].permission = None;
        }
        assert_eq!(from_policy(&o, &no_permission), Err(AclError::Malformed));
    }
}
