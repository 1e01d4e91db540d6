//! Authorization, the pipeline stage after authentication: decides whether
//! a request may run. Requests signed with the root credentials may do
//! anything. Otherwise the S3 operation is mapped to its IAM action and
//! resource ARN and evaluated as IAM does: against the policies of the
//! caller (an IAM user's own and its groups') and the bucket's policy, an
//! explicit deny anywhere wins, else an allow anywhere grants, else the
//! request is denied. Anonymous callers have only the bucket policy's
//! grants to everyone. Operations that touch more than their path says
//! (DeleteObjects on many keys, copies reading a source) are checked again
//! with their parsed input.

use super::caller::{Caller, Grant, resolve, security_token};
use super::form::FormUpload;
use super::track::Facts;
use crate::acl::{self, Acl, BucketAccess, Requester};
use crate::api::admin::query_param;
use crate::iam::Iam;
use crate::object::ObjectLayer;
use crate::policy::condition::EXISTING_OBJECT_TAG;
use crate::policy::{Context, Policy, resource_arn};
use http::{HeaderMap, Uri};
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::Credentials;
use s3s::dto::*;
use s3s::path::S3Path;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Result};
use std::sync::Arc;

pub struct Access {
    layer: Arc<ObjectLayer>,
    iam: Arc<Iam>,
    root: String,
}

/// Headers whose values are S3 condition keys of the same name.
const HEADER_KEYS: &[&str] = &[
    "x-amz-acl",
    "x-amz-server-side-encryption",
    "x-amz-copy-source",
    "x-amz-metadata-directive",
    "x-amz-storage-class",
];

/// The condition keys of a request ([`crate::policy::condition`]).
pub fn context(caller: &Caller, headers: &HeaderMap, uri: &Uri, peer: Option<&super::Peer>) -> Context {
    let mut c = Context::default();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(p) = peer {
        let ip = match p.addr.ip() {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(std::net::IpAddr::V6(v6), Into::into),
            v4 => v4,
        };
        c.set("aws:SourceIp", ip.to_string());
        c.set("aws:SecureTransport", p.tls.to_string());
    }
    let now = time::OffsetDateTime::now_utc();
    if let Ok(t) = now
        .replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
    {
        c.set("aws:CurrentTime", t);
    }
    c.set("aws:EpochTime", now.unix_timestamp().to_string());
    for (key, name) in [("aws:UserAgent", "user-agent"), ("aws:Referer", "referer")] {
        if let Some(v) = header(name) {
            c.set(key, v);
        }
    }
    match caller {
        Caller::User(who, _) => {
            who.describe(&mut c);
        }
        Caller::Root => c.set("aws:PrincipalType", "Account"),
        Caller::Anonymous => c.set("aws:PrincipalType", "Anonymous"),
    }
    for (key, param) in [
        ("s3:prefix", "prefix"),
        ("s3:delimiter", "delimiter"),
        ("s3:max-keys", "max-keys"),
        ("s3:VersionId", "versionId"),
    ] {
        if let Some(v) = query_param(uri, param) {
            c.set(key, v);
        }
    }
    for name in HEADER_KEYS {
        if let Some(v) = header(name) {
            c.set(&format!("s3:{name}"), v);
        }
    }
    let auth = header("authorization").unwrap_or_default();
    let (version, kind) = if auth.starts_with("AWS4-HMAC-SHA256") {
        (Some("AWS4-HMAC-SHA256"), Some("REST-HEADER"))
    } else if auth.starts_with("AWS ") {
        (Some("AWS"), Some("REST-HEADER"))
    } else if query_param(uri, "X-Amz-Algorithm").is_some() {
        (Some("AWS4-HMAC-SHA256"), Some("REST-QUERY-STRING"))
    } else if query_param(uri, "Signature").is_some() {
        (Some("AWS"), Some("REST-QUERY-STRING"))
    } else {
        (None, None)
    };
    if let (Some(v), Some(k)) = (version, kind) {
        c.set("s3:signatureversion", v);
        c.set("s3:authType", k);
    }
    if let Some(tags) = header("x-amz-tagging") {
        let as_uri: Option<Uri> = format!("/?{tags}").parse().ok();
        for pair in tags.split('&').filter(|p| !p.is_empty()) {
            let k = pair.split_once('=').map_or(pair, |(k, _)| k);
            let decoded = as_uri.as_ref().and_then(|u| query_param(u, k));
            let k = crate::api::admin::percent_decode(k);
            c.add("s3:RequestObjectTagKeys", k.as_str());
            c.set(&format!("s3:RequestObjectTag/{k}"), decoded.unwrap_or_default());
        }
    }
    c
}

impl Access {
    pub fn new(layer: Arc<ObjectLayer>, iam: Arc<Iam>, root_access_key: &str) -> Self {
        Self {
            layer,
            iam,
            root: root_access_key.to_owned(),
        }
    }

    /// The caller of a request with `creds`; its session token comes from
    /// its headers or query, or for a form upload from the form's
    /// `x-amz-security-token` field.
    async fn caller(
        &self,
        creds: Option<&Credentials>,
        headers: &HeaderMap,
        uri: &Uri,
        form: Option<&FormUpload>,
    ) -> S3Result<Caller> {
        let from_form = || {
            let fields = form?.fields()?;
            fields.get("x-amz-security-token").map(str::to_owned)
        };
        let token = creds.and_then(|_| security_token(headers, uri).or_else(from_form));
        resolve(
            &self.iam,
            &self.root,
            creds.map(|c| c.access_key.as_str()),
            token.as_deref(),
        )
        .await
        .map_err(|e| e.to_s3())
    }

    /// The caller of an S3 request after its operation was parsed, with
    /// the request's condition keys.
    async fn request_caller<T>(&self, req: &S3Request<T>) -> S3Result<(Caller, Context)> {
        let caller = self
            .caller(
                req.credentials.as_ref(),
                &req.headers,
                &req.uri,
                req.extensions.get(),
            )
            .await?;
        let ctx = context(&caller, &req.headers, &req.uri, req.extensions.get());
        Ok((caller, ctx))
    }

    /// The decision for `action` on `bucket` (or `key` in it, at
    /// `version`) with the request's condition keys and its bucket's
    /// policy (read once per request, [`Access::bucket_policy`]). When no
    /// policy says anything, the bucket's or the object's ACL may grant
    /// it ([`crate::acl`]); reading them costs a bucket lookup, or a
    /// metadata read for an object, so only then.
    async fn authorize(
        &self,
        caller: &Caller,
        ctx: &Context,
        bucket_policy: Option<&Policy>,
        action: &str,
        (bucket, key, version): (&str, Option<&str>, Option<&str>),
    ) -> S3Result<()> {
        let resource = resource_arn(bucket, key);
        match caller.decide(bucket_policy, action, &resource, ctx) {
            Grant::Allowed => return Ok(()),
            Grant::Denied => return Err(denied()),
            Grant::Unmatched => {}
        }
        let who = match caller {
            Caller::Anonymous => Requester::Anonymous,
            _ => Requester::Authenticated,
        };
        let Ok(b) = self.layer.bucket(bucket) else {
            return Err(denied());
        };
        let access = BucketAccess::of(&b.settings);
        let granted = match (
            key,
            acl::object_permission(action),
            acl::bucket_permission(action),
        ) {
            (Some(key), Some(wanted), _) => match self.layer.head_object(bucket, key, version).await {
                Ok(r) => access.grants(&Acl::from_codes(&r.version().extras.acl), who, wanted),
                Err(_) => false,
            },
            (_, _, Some(wanted)) => access.grants(&access.acl, who, wanted),
            _ => false,
        };
        if granted { Ok(()) } else { Err(denied()) }
    }

    /// The policy of `bucket`, unless the root account asks (it is never
    /// consulted for the root), or the bucket's public access block
    /// restricts a public policy to the account's own callers and an
    /// anonymous one asks.
    fn bucket_policy(&self, caller: &Caller, bucket: &str) -> Option<Policy> {
        if matches!(caller, Caller::Root) {
            return None;
        }
        let policy = crate::iam::bucket_policy(&self.layer, bucket)?;
        let restricted = || {
            self.layer
                .bucket(bucket)
                .is_ok_and(|b| BucketAccess::of(&b.settings).block().restrict_public_buckets)
        };
        if matches!(caller, Caller::Anonymous) && policy.is_public() && restricted() {
            return None;
        }
        Some(policy)
    }

    /// Adds the tags of the object a request names, as
    /// `s3:ExistingObjectTag/KEY` keys, when a policy that applies uses
    /// them: reading them costs a metadata read, so only then.
    async fn existing_tags(
        &self,
        caller: &Caller,
        ctx: &mut Context,
        bucket_policy: Option<&Policy>,
        (bucket, key): (&str, &str),
        uri: &Uri,
    ) {
        if !by_tags(caller, bucket_policy) {
            return;
        }
        let version = query_param(uri, "versionId");
        if let Ok(r) = self.layer.head_object(bucket, key, version.as_deref()).await {
            for (k, v) in &r.version().extras.tags {
                ctx.set(&format!("s3:ExistingObjectTag/{k}"), v.as_str());
            }
        }
    }

    async fn ensure_source(&self, source: &CopySource) {
        if let CopySource::Bucket { bucket, .. } = source {
            self.layer.ensure_bucket(bucket).await;
        }
    }

    /// Read access of a copy to its source.
    async fn source<T>(&self, req: &S3Request<T>, source: &CopySource) -> S3Result<()> {
        self.ensure_source(source).await;
        let (caller, ctx) = self.request_caller(req).await?;
        match source {
            CopySource::Bucket {
                bucket,
                key,
                version_id,
            } => {
                let action = if version_id.is_some() {
                    "s3:GetObjectVersion"
                } else {
                    "s3:GetObject"
                };
                expected_owner(
                    &req.headers,
                    "x-amz-source-expected-bucket-owner",
                    self.iam.account(),
                )?;
                let policy = self.bucket_policy(&caller, bucket);
                let at = (&bucket[..], Some(&key[..]), version_id.as_deref());
                self.authorize(&caller, &ctx, policy.as_ref(), action, at).await
            }
            _ => Err(denied()),
        }
    }
}

/// What decides the reads of a bucket's objects for one request of
/// objd's own routes: its caller, condition keys and the bucket's policy
/// ([`Access::bucket_request`]).
pub struct BucketReader {
    caller: Caller,
    ctx: Context,
    policy: Option<Policy>,
    bucket: String,
    /// A policy that applies conditions on the objects' tags, which the
    /// decision would need read per object.
    by_tags: bool,
}

impl BucketReader {
    /// Whether the policies let the caller do `action` on `key`. An object
    /// only its ACL grants, or any object when a policy that applies asks
    /// for the objects' tags, is not: a caller that needs more asks the
    /// S3 operation, which reads them.
    pub fn may(&self, action: &str, key: &str) -> bool {
        !self.by_tags
            && self.caller.decide(
                self.policy.as_ref(),
                action,
                &resource_arn(&self.bucket, Some(key)),
                &self.ctx,
            ) == Grant::Allowed
    }
}

impl Access {
    /// Authorizes a request of objd's own routes that acts as `action` on
    /// `bucket` (ACLs and policies as for the S3 operation, with its
    /// condition keys), and records its caller and bucket for its metrics
    /// and audit entry as the S3 operation `api`.
    pub async fn bucket_request<B>(
        &self,
        req: &S3Request<B>,
        (api, action): (&str, &str),
        bucket: &str,
    ) -> S3Result<BucketReader> {
        self.layer.ensure_bucket(bucket).await;
        let facts = Facts::of(&req.extensions);
        facts.target(api, Some(bucket), None);
        let (caller, ctx) = self.request_caller(req).await?;
        facts.principal(caller.arn(self.iam.account()));
        let policy = self.bucket_policy(&caller, bucket);
        self.authorize(&caller, &ctx, policy.as_ref(), action, (bucket, None, None))
            .await?;
        let by_tags = by_tags(&caller, policy.as_ref());
        Ok(BucketReader {
            caller,
            ctx,
            policy,
            bucket: bucket.to_owned(),
            by_tags,
        })
    }
}

/// Whether a policy that applies to `caller` (its own, or the bucket's)
/// has conditions on the tags of the object asked for.
fn by_tags(caller: &Caller, bucket_policy: Option<&Policy>) -> bool {
    let mentions = |p: &Policy| p.mentions(EXISTING_OBJECT_TAG);
    let by_caller = match caller {
        Caller::Root => return false,
        Caller::User(who, policies) => {
            policies.iter().any(|(_, p)| mentions(p)) || who.narrowed.iter().any(|p| mentions(p))
        }
        Caller::Anonymous => false,
    };
    by_caller || bucket_policy.is_some_and(mentions)
}

fn denied() -> S3Error {
    S3Error::with_message(S3ErrorCode::AccessDenied, "Access Denied")
}

/// Refuses a request whose `header` (`x-amz-expected-bucket-owner`, or
/// the copy source's) names another account than `account`, which owns
/// every bucket here.
fn expected_owner(headers: &HeaderMap, header: &str, account: &str) -> S3Result<()> {
    match headers.get(header) {
        Some(v) if v.as_bytes() != account.as_bytes() => Err(denied()),
        _ => Ok(()),
    }
}

/// The IAM action of an S3 operation. `versioned` is true when the request
/// names a version id.
pub fn action_for(op: &str, versioned: bool) -> String {
    let a = match (op, versioned) {
        ("GetObject" | "HeadObject", false) => "GetObject",
        ("GetObject" | "HeadObject", true) => "GetObjectVersion",
        ("DeleteObject", true) => "DeleteObjectVersion",
        ("GetObjectTagging", true) => "GetObjectVersionTagging",
        ("GetObjectAcl", true) => "GetObjectVersionAcl",
        ("PutObjectAcl", true) => "PutObjectVersionAcl",
        ("GetPublicAccessBlock", _) => "GetBucketPublicAccessBlock",
        ("PutPublicAccessBlock" | "DeletePublicAccessBlock", _) => "PutBucketPublicAccessBlock",
        ("DeleteBucketOwnershipControls", _) => "PutBucketOwnershipControls",
        ("PutObjectTagging", true) => "PutObjectVersionTagging",
        ("DeleteObjectTagging", true) => "DeleteObjectVersionTagging",
        (
            "CopyObject"
            | "CreateMultipartUpload"
            | "UploadPart"
            | "UploadPartCopy"
            | "CompleteMultipartUpload"
            | "PostObject",
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
        let facts = Facts::of(cx.extensions_mut());
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(&**bucket), None),
            S3Path::Object { bucket, key } => (Some(&**bucket), Some(&**key)),
        };
        facts.target(cx.s3_op().name(), bucket, key);
        let form = cx.extensions_mut().get::<FormUpload>().cloned();
        let caller = self
            .caller(cx.credentials(), cx.headers(), cx.uri(), form.as_ref())
            .await?;
        facts.principal(caller.arn(self.iam.account()));
        let action = action_for(cx.s3_op().name(), has_version_id(cx.uri()));
        let peer = cx.extensions_mut().get::<super::Peer>().copied();
        let mut ctx = context(&caller, cx.headers(), cx.uri(), peer.as_ref());
        let (bucket, key) = match cx.s3_path() {
            // Anonymous callers never list buckets; users with the grant do.
            S3Path::Root if matches!(caller, Caller::Anonymous) => return Err(denied()),
            S3Path::Root if caller.allows(None, &action, "arn:aws:s3:::*", &ctx) => return Ok(()),
            S3Path::Root => return Err(denied()),
            S3Path::Bucket { bucket } => (&bucket[..], None),
            S3Path::Object { bucket, key } => (&bucket[..], Some(&key[..])),
        };
        expected_owner(cx.headers(), "x-amz-expected-bucket-owner", self.iam.account())?;
        let policy = self.bucket_policy(&caller, bucket);
        if let Some(key) = key {
            self.existing_tags(&caller, &mut ctx, policy.as_ref(), (bucket, key), cx.uri())
                .await;
        }
        // A form upload names its key in the form, which is read after
        // this: it is authorized then ([`Access::put_object`]).
        if cx.s3_op().name() != "PostObject" {
            let version = query_param(cx.uri(), "versionId");
            let at = (bucket, key, version.as_deref());
            self.authorize(&caller, &ctx, policy.as_ref(), &action, at)
                .await?;
        }
        cx.extensions_mut()
            .insert(super::caller::Authorized(Arc::new((caller, ctx))));
        Ok(())
    }

    async fn delete_objects(&self, req: &mut S3Request<DeleteObjectsInput>) -> S3Result<()> {
        let (caller, ctx) = self.request_caller(req).await?;
        let b = &req.input.bucket;
        // One read of the bucket's policy for every key.
        let policy = self.bucket_policy(&caller, b);
        for o in &req.input.delete.objects {
            let action = if o.version_id.is_some() {
                "s3:DeleteObjectVersion"
            } else {
                "s3:DeleteObject"
            };
            self.authorize(&caller, &ctx, policy.as_ref(), action, (b, Some(&o.key), None))
                .await?;
        }
        Ok(())
    }

    /// PutObject requests passed [`S3Access::check`] already; the
    /// PutObject a form upload becomes gets its key here, from the form
    /// (`${filename}` resolved), and is authorized for it.
    async fn put_object(&self, req: &mut S3Request<PutObjectInput>) -> S3Result<()> {
        let Some(form) = req.extensions.get::<FormUpload>().cloned() else {
            return Ok(());
        };
        req.input.key = form.key(&req.input.key);
        Facts::of(&req.extensions).key(&req.input.key);
        let (caller, ctx) = self.request_caller(req).await?;
        let (bucket, key) = (&req.input.bucket, &req.input.key);
        let policy = self.bucket_policy(&caller, bucket);
        self.authorize(
            &caller,
            &ctx,
            policy.as_ref(),
            "s3:PutObject",
            (bucket, Some(key), None),
        )
        .await
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        self.source(req, &req.input.copy_source).await
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        self.source(req, &req.input.copy_source).await
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
        assert_eq!(action_for("PutObjectAcl", true), "s3:PutObjectVersionAcl");
        assert_eq!(
            action_for("DeletePublicAccessBlock", false),
            "s3:PutBucketPublicAccessBlock"
        );
        assert!(has_version_id(&"/b/k?versionId=abc".parse().unwrap()));
        assert!(!has_version_id(&"/b/k?x=versionId=abc".parse().unwrap()));
    }
}
