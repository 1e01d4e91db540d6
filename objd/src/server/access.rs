//! Authorization, the pipeline stage after authentication: decides whether
//! a request may run. Requests signed with the root credentials may do
//! anything. Anonymous requests may do only what the bucket's policy
//! grants to everyone; the S3 operation is mapped to its IAM action and
//! resource ARN and evaluated against the policy. Operations that touch
//! more than their path says (DeleteObjects on many keys, copies reading a
//! source) are checked again with their parsed input.

use crate::object::ObjectLayer;
use crate::policy::{BUCKET_SETTING, Decision, Policy, Principal, resource_arn};
use s3s::access::{S3Access, S3AccessContext};
use s3s::dto::*;
use s3s::path::S3Path;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Result};
use std::sync::Arc;

pub struct Access {
    layer: Arc<ObjectLayer>,
}

impl Access {
    pub fn new(layer: Arc<ObjectLayer>) -> Self {
        Self { layer }
    }

    /// The policy decision for an anonymous request; any failure to read
    /// or parse the policy denies.
    fn anonymous(&self, bucket: &str, action: &str, resource: &str) -> S3Result<()> {
        let granted = self
            .layer
            .bucket_setting(bucket, BUCKET_SETTING)
            .ok()
            .flatten()
            .and_then(|text| Policy::parse(&String::from_utf8_lossy(&text), bucket).ok())
            .is_some_and(|p| p.evaluate(Principal::Anonymous, action, resource) == Decision::Allow);
        if granted { Ok(()) } else { Err(denied()) }
    }

    async fn ensure_source(&self, source: &CopySource) {
        if let CopySource::Bucket { bucket, .. } = source {
            self.layer.ensure_bucket(bucket).await;
        }
    }

    /// Read access of an anonymous copy to its source.
    fn anonymous_source(&self, source: &CopySource) -> S3Result<()> {
        match source {
            CopySource::Bucket { bucket, key, .. } => {
                self.anonymous(bucket, "s3:GetObject", &resource_arn(bucket, Some(key)))
            }
            _ => Err(denied()),
        }
    }
}

fn denied() -> S3Error {
    S3Error::with_message(S3ErrorCode::AccessDenied, "Access Denied")
}

/// The IAM action of an S3 operation. `versioned` is true when the request
/// names a version id.
pub fn action_for(op: &str, versioned: bool) -> String {
    let a = match (op, versioned) {
        ("GetObject" | "HeadObject", false) => "GetObject",
        ("GetObject" | "HeadObject", true) => "GetObjectVersion",
        ("DeleteObject", true) => "DeleteObjectVersion",
        ("GetObjectTagging", true) => "GetObjectVersionTagging",
        ("PutObjectTagging", true) => "PutObjectVersionTagging",
        ("DeleteObjectTagging", true) => "DeleteObjectVersionTagging",
        (
            "CopyObject"
            | "CreateMultipartUpload"
            | "UploadPart"
            | "UploadPartCopy"
            | "CompleteMultipartUpload",
            _,
        ) => "PutObject",
        ("DeleteObjects", _) => "DeleteObject",
        ("ListObjects" | "ListObjectsV2" | "HeadBucket", _) => "ListBucket",
        ("ListObjectVersions", _) => "ListBucketVersions",
        ("ListMultipartUploads", _) => "ListBucketMultipartUploads",
        ("ListParts", _) => "ListMultipartUploadParts",
        ("ListBuckets", _) => "ListAllMyBuckets",
        (other, _) => other,
    };
    format!("s3:{a}")
}

fn has_version_id(uri: &http::Uri) -> bool {
    uri.query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("versionId=")))
}

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        match cx.s3_path() {
            S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } => {
                self.layer.ensure_bucket(bucket).await
            }
            S3Path::Root => self.layer.refresh_buckets().await,
        }
        if cx.credentials().is_some() {
            return Ok(());
        }
        let action = action_for(cx.s3_op().name(), has_version_id(cx.uri()));
        match cx.s3_path() {
            S3Path::Root => Err(denied()),
            S3Path::Bucket { bucket } => self.anonymous(bucket, &action, &resource_arn(bucket, None)),
            S3Path::Object { bucket, key } => {
                self.anonymous(bucket, &action, &resource_arn(bucket, Some(key)))
            }
        }
    }

    async fn delete_objects(&self, req: &mut S3Request<DeleteObjectsInput>) -> S3Result<()> {
        if req.credentials.is_some() {
            return Ok(());
        }
        let b = &req.input.bucket;
        for o in &req.input.delete.objects {
            let action = if o.version_id.is_some() {
                "s3:DeleteObjectVersion"
            } else {
                "s3:DeleteObject"
            };
            self.anonymous(b, action, &resource_arn(b, Some(&o.key)))?;
        }
        Ok(())
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        self.ensure_source(&req.input.copy_source).await;
        if req.credentials.is_some() {
            return Ok(());
        }
        self.anonymous_source(&req.input.copy_source)
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        self.ensure_source(&req.input.copy_source).await;
        if req.credentials.is_some() {
            return Ok(());
        }
        self.anonymous_source(&req.input.copy_source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_map_to_iam_actions() {
        assert_eq!(action_for("HeadObject", false), "s3:GetObject");
        assert_eq!(action_for("GetObject", true), "s3:GetObjectVersion");
        assert_eq!(action_for("UploadPart", false), "s3:PutObject");
        assert_eq!(action_for("ListObjectsV2", false), "s3:ListBucket");
        assert_eq!(action_for("GetBucketPolicy", false), "s3:GetBucketPolicy");
        assert!(has_version_id(&"/b/k?versionId=abc".parse().unwrap()));
        assert!(!has_version_id(&"/b/k?x=versionId=abc".parse().unwrap()));
    }
}
