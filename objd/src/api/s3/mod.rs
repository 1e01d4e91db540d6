//! The S3 API over the object layer, as an implementation of `s3s::S3`.
//! `s3s` parses requests, verifies SigV4 (headers, presigned URLs,
//! `aws-chunked` bodies with signed chunks or trailing checksums) and
//! renders responses; the handlers here only translate, one module per
//! group of operations. Operations not listed below answer
//! `NotImplemented`.

mod acl;
mod bucket;
pub(crate) mod convert;
mod lifecycle;
pub(crate) mod listing;
mod lock;
mod multipart;
mod object;
pub mod parse;
mod policy;
pub mod sse;

use super::error::to_s3;
use crate::object::{ObjectError, ObjectLayer};
use s3s::dto::*;
use s3s::{S3, S3Error, S3Request, S3Response, S3Result};
use std::sync::Arc;

/// Request id carried in request extensions by the server layer, echoed in
/// error bodies.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

#[derive(Debug, Clone)]
pub struct StrataS3 {
    layer: Arc<ObjectLayer>,
    sse: sse::Encryption,
    /// The account that owns every bucket and object, as ACLs and
    /// listings name it.
    owner: crate::acl::Owner,
    /// The ownership control of buckets made without one.
    default_ownership: crate::acl::Ownership,
    /// The length of a lifecycle day, for the expiry dates answered.
    clock: crate::lifecycle::Clock,
}

/// The deployment's settings the S3 handlers answer by.
#[derive(Debug, Clone)]
pub struct Settings {
    pub owner: crate::acl::Owner,
    pub default_ownership: crate::acl::Ownership,
    pub lifecycle_clock: crate::lifecycle::Clock,
}

impl StrataS3 {
    pub fn new(layer: Arc<ObjectLayer>, sse: sse::Encryption, settings: Settings) -> Self {
        Self {
            layer,
            sse,
            owner: settings.owner,
            default_ownership: settings.default_ownership,
            clock: settings.lifecycle_clock,
        }
    }
}

fn rid<T>(req: &S3Request<T>) -> String {
    req.extensions
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default()
}

fn fail(rid: &str) -> impl Fn(ObjectError) -> S3Error + '_ {
    move |e| {
        let mut err = to_s3(e);
        err.set_request_id(rid);
        err
    }
}

impl StrataS3 {
    /// The version a read addresses (the latest, or `version`), with the
    /// bucket's versioning state for the version ids a response names.
    async fn open(
        &self,
        rid: &str,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> S3Result<(crate::meta::Versioning, crate::object::ObjectReader)> {
        let versioning = self.layer.bucket(bucket).map_err(fail(rid))?.versioning;
        let reader = self
            .layer
            .head_object(bucket, key, version)
            .await
            .map_err(fail(rid))?;
        Ok((versioning, reader))
    }

    /// The pool or remote tier a write's storage class puts its data in
    /// (`None`: the namespace pool); InvalidStorageClass for a class
    /// nothing here offers.
    async fn place(&self, rid: &str, class: Option<&s3s::dto::StorageClass>) -> S3Result<Option<String>> {
        let Some(class) = class else { return Ok(None) };
        match self.layer.place_of(class.as_str()).await.map_err(fail(rid))? {
            Some(crate::object::placement::Place::Home) => Ok(None),
            Some(crate::object::placement::Place::Store(p)) => Ok(Some(p)),
            None => {
                let mut e = S3Error::with_message(
                    s3s::S3ErrorCode::InvalidStorageClass,
                    "The storage class you specified is not valid",
                );
                e.set_request_id(rid);
                Err(e)
            }
        }
    }
}

/// A Delete* of a bucket setting: removes it, answers the empty output.
async fn delete_setting<T, O: Default>(
    s3: &StrataS3,
    req: &S3Request<T>,
    bucket: &str,
    setting: &str,
) -> S3Result<S3Response<O>> {
    s3.layer
        .set_bucket_setting(bucket, setting, None)
        .await
        .map_err(fail(&rid(req)))?;
    Ok(S3Response::new(O::default()))
}

/// Implements `S3` by handing each listed operation to its handler.
macro_rules! operations {
    ($($op:ident: $input:ident -> $output:ident = $handler:path;)*) => {
        #[async_trait::async_trait]
        impl S3 for StrataS3 {
            $(
                async fn $op(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    $handler(self, req).await
                }
            )*
        }
    };
}

operations! {
    list_buckets: ListBucketsInput -> ListBucketsOutput = bucket::list_buckets;
    create_bucket: CreateBucketInput -> CreateBucketOutput = bucket::create_bucket;
    head_bucket: HeadBucketInput -> HeadBucketOutput = bucket::head_bucket;
    delete_bucket: DeleteBucketInput -> DeleteBucketOutput = bucket::delete_bucket;
    get_bucket_location: GetBucketLocationInput -> GetBucketLocationOutput = bucket::get_bucket_location;
    get_bucket_versioning: GetBucketVersioningInput -> GetBucketVersioningOutput = bucket::get_bucket_versioning;
    put_bucket_versioning: PutBucketVersioningInput -> PutBucketVersioningOutput = bucket::put_bucket_versioning;
    get_bucket_tagging: GetBucketTaggingInput -> GetBucketTaggingOutput = bucket::get_bucket_tagging;
    put_bucket_tagging: PutBucketTaggingInput -> PutBucketTaggingOutput = bucket::put_bucket_tagging;
    delete_bucket_tagging: DeleteBucketTaggingInput -> DeleteBucketTaggingOutput = bucket::delete_bucket_tagging;
    get_bucket_acl: GetBucketAclInput -> GetBucketAclOutput = acl::get_bucket_acl;
    put_bucket_acl: PutBucketAclInput -> PutBucketAclOutput = acl::put_bucket_acl;
    get_object_acl: GetObjectAclInput -> GetObjectAclOutput = acl::get_object_acl;
    put_object_acl: PutObjectAclInput -> PutObjectAclOutput = acl::put_object_acl;
    put_bucket_ownership_controls: PutBucketOwnershipControlsInput -> PutBucketOwnershipControlsOutput = acl::put_bucket_ownership_controls;
    get_bucket_ownership_controls: GetBucketOwnershipControlsInput -> GetBucketOwnershipControlsOutput = acl::get_bucket_ownership_controls;
    delete_bucket_ownership_controls: DeleteBucketOwnershipControlsInput -> DeleteBucketOwnershipControlsOutput = acl::delete_bucket_ownership_controls;
    put_public_access_block: PutPublicAccessBlockInput -> PutPublicAccessBlockOutput = acl::put_public_access_block;
    get_public_access_block: GetPublicAccessBlockInput -> GetPublicAccessBlockOutput = acl::get_public_access_block;
    delete_public_access_block: DeletePublicAccessBlockInput -> DeletePublicAccessBlockOutput = acl::delete_public_access_block;
    get_bucket_policy: GetBucketPolicyInput -> GetBucketPolicyOutput = policy::get_bucket_policy;
    put_bucket_policy: PutBucketPolicyInput -> PutBucketPolicyOutput = policy::put_bucket_policy;
    delete_bucket_policy: DeleteBucketPolicyInput -> DeleteBucketPolicyOutput = policy::delete_bucket_policy;
    get_bucket_policy_status: GetBucketPolicyStatusInput -> GetBucketPolicyStatusOutput = policy::get_bucket_policy_status;
    get_bucket_cors: GetBucketCorsInput -> GetBucketCorsOutput = bucket::get_bucket_cors;
    put_bucket_cors: PutBucketCorsInput -> PutBucketCorsOutput = bucket::put_bucket_cors;
    delete_bucket_cors: DeleteBucketCorsInput -> DeleteBucketCorsOutput = bucket::delete_bucket_cors;
    get_object_lock_configuration: GetObjectLockConfigurationInput -> GetObjectLockConfigurationOutput = lock::get_object_lock_configuration;
    put_object_lock_configuration: PutObjectLockConfigurationInput -> PutObjectLockConfigurationOutput = lock::put_object_lock_configuration;
    get_object_retention: GetObjectRetentionInput -> GetObjectRetentionOutput = lock::get_object_retention;
    put_object_retention: PutObjectRetentionInput -> PutObjectRetentionOutput = lock::put_object_retention;
    get_object_legal_hold: GetObjectLegalHoldInput -> GetObjectLegalHoldOutput = lock::get_object_legal_hold;
    put_object_legal_hold: PutObjectLegalHoldInput -> PutObjectLegalHoldOutput = lock::put_object_legal_hold;
    put_object: PutObjectInput -> PutObjectOutput = object::put_object;
    post_object: PostObjectInput -> PostObjectOutput = object::post_object;
    get_object: GetObjectInput -> GetObjectOutput = object::get_object;
    head_object: HeadObjectInput -> HeadObjectOutput = object::head_object;
    delete_object: DeleteObjectInput -> DeleteObjectOutput = object::delete_object;
    delete_objects: DeleteObjectsInput -> DeleteObjectsOutput = object::delete_objects;
    get_object_attributes: GetObjectAttributesInput -> GetObjectAttributesOutput = object::get_object_attributes;
    copy_object: CopyObjectInput -> CopyObjectOutput = object::copy_object;
    get_object_tagging: GetObjectTaggingInput -> GetObjectTaggingOutput = object::get_object_tagging;
    put_object_tagging: PutObjectTaggingInput -> PutObjectTaggingOutput = object::put_object_tagging;
    delete_object_tagging: DeleteObjectTaggingInput -> DeleteObjectTaggingOutput = object::delete_object_tagging;
    list_objects: ListObjectsInput -> ListObjectsOutput = listing::list_objects;
    list_objects_v2: ListObjectsV2Input -> ListObjectsV2Output = listing::list_objects_v2;
    list_object_versions: ListObjectVersionsInput -> ListObjectVersionsOutput = listing::list_object_versions;
    create_multipart_upload: CreateMultipartUploadInput -> CreateMultipartUploadOutput = multipart::create_multipart_upload;
    upload_part: UploadPartInput -> UploadPartOutput = multipart::upload_part;
    upload_part_copy: UploadPartCopyInput -> UploadPartCopyOutput = multipart::upload_part_copy;
    complete_multipart_upload: CompleteMultipartUploadInput -> CompleteMultipartUploadOutput = multipart::complete_multipart_upload;
    abort_multipart_upload: AbortMultipartUploadInput -> AbortMultipartUploadOutput = multipart::abort_multipart_upload;
    list_parts: ListPartsInput -> ListPartsOutput = multipart::list_parts;
    list_multipart_uploads: ListMultipartUploadsInput -> ListMultipartUploadsOutput = multipart::list_multipart_uploads;
    put_bucket_lifecycle_configuration: PutBucketLifecycleConfigurationInput -> PutBucketLifecycleConfigurationOutput = lifecycle::put_bucket_lifecycle_configuration;
    get_bucket_lifecycle_configuration: GetBucketLifecycleConfigurationInput -> GetBucketLifecycleConfigurationOutput = lifecycle::get_bucket_lifecycle_configuration;
    delete_bucket_lifecycle: DeleteBucketLifecycleInput -> DeleteBucketLifecycleOutput = lifecycle::delete_bucket_lifecycle;
    put_bucket_encryption: PutBucketEncryptionInput -> PutBucketEncryptionOutput = sse::put_bucket_encryption;
    get_bucket_encryption: GetBucketEncryptionInput -> GetBucketEncryptionOutput = sse::get_bucket_encryption;
    delete_bucket_encryption: DeleteBucketEncryptionInput -> DeleteBucketEncryptionOutput = sse::delete_bucket_encryption;
}
