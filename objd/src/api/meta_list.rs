//! Listing with user metadata, objd's extension of ListObjectsV2 for
//! clients that show each key's metadata beside it: a mount's `ls -l`
//! reads POSIX attributes (mode, owner, times) from user metadata, and
//! without this asks a HEAD per entry. Listing summaries keep user
//! metadata ([`crate::meta::summary`]), so the page costs what a plain
//! listing does.
//!
//! `GET /_strata/list/v1?bucket=B[&prefix=P][&delimiter=D]`
//! `[&continuation-token=T | &start-after=K][&max-keys=N]` answers JSON:
//!
//! ```json
//! {"prefixes": ["d/"],
//!  "objects": [{"key": "a", "size": 3, "etag": "…", "last_modified_ns": 1…,
//!               "storage_class": "STANDARD", "metadata": {"mode": "33188"}}],
//!  "truncated": false, "next_continuation_token": null}
//! ```
//!
//! It is authorized as ListObjectsV2 (`s3:ListBucket` on the bucket, the
//! same condition keys, ACLs), and an entry carries `metadata` only where
//! the caller's and the bucket's policies let it `s3:GetObject` the key;
//! elsewhere (an object only its ACL grants, policies conditioned on the
//! objects' tags, data sealed with a customer's key) `metadata` is left
//! out and the client asks HEAD, which decides with everything it needs.

use crate::api::admin::query_param;
use crate::api::s3::listing::{class_name, decode_token, encode_token, max_keys};
use crate::object::{ListOptions, ObjectLayer};
use crate::server::access::Access;
use http::{Method, StatusCode, Uri};
use s3s::{Body, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use std::sync::Arc;

/// The path of the listing.
pub const PATH: &str = "/_strata/list/v1";

/// The name of the operation in metrics and audit entries.
const API: &str = "ListObjectsWithMetadata";

pub struct MetaList {
    layer: Arc<ObjectLayer>,
    access: Access,
}

impl MetaList {
    pub fn new(layer: Arc<ObjectLayer>, access: Access) -> Self {
        Self { layer, access }
    }

    pub fn is_match(method: &Method, uri: &Uri) -> bool {
        method == Method::GET && uri.path() == PATH
    }

    /// Answers the listing; `req` was signed (or is anonymous) and is
    /// authorized here.
    pub async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let q = |name| query_param(&req.uri, name);
        let bucket = q("bucket")
            .filter(|b| !b.is_empty())
            .ok_or_else(|| S3Error::with_message(S3ErrorCode::InvalidArgument, "bucket is required"))?;
        let reader = self
            .access
            .bucket_request(&req, (API, "s3:ListBucket"), &bucket)
            .await?;
        let max = match q("max-keys") {
            None => None,
            Some(n) => Some(n.parse::<i32>().map_err(|_| {
                S3Error::with_message(S3ErrorCode::InvalidArgument, "max-keys must be a whole number")
            })?),
        };
        let after = match q("continuation-token") {
            Some(t) => decode_token(&t)?,
            None => q("start-after").unwrap_or_default(),
        };
        let opts = ListOptions {
            prefix: q("prefix").unwrap_or_default(),
            delimiter: q("delimiter"),
            start_after: after,
            max_keys: max_keys(max)?,
            ..Default::default()
        };
        let page = self
            .layer
            .list_objects(&bucket, opts)
            .await
            .map_err(crate::api::error::to_s3)?;
        let objects: Vec<serde_json::Value> = page
            .objects
            .iter()
            .map(|o| {
                let v = &o.version;
                let mut entry = serde_json::json!({
                    "key": o.key,
                    "size": v.size,
                    "etag": v.etag,
                    "last_modified_ns": v.mod_time_ns,
                    "storage_class": class_name(&self.layer, v),
                });
                if reader.may("s3:GetObject", &o.key) && !v.sealed_for_customer() {
                    let meta: serde_json::Map<String, serde_json::Value> = v
                        .user_meta
                        .iter()
                        .map(|(k, val)| (k.clone(), serde_json::Value::from(val.as_str())))
                        .collect();
                    entry["metadata"] = serde_json::Value::Object(meta);
                }
                entry
            })
            .collect();
        let next = page
            .next_marker
            .as_deref()
            .filter(|_| page.truncated)
            .map(encode_token);
        let body = serde_json::json!({
            "prefixes": page.prefixes,
            "objects": objects,
            "truncated": page.truncated,
            "next_continuation_token": next,
        });
        Ok(super::admin::json_response(StatusCode::OK, body.to_string()))
    }
}
