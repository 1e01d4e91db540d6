//! The admin API: JSON over HTTP(S) under `/_strata/admin/v1/`, signed with
//! SigV4 like any S3 request (`s3s` checks the signature before the route
//! runs), by the root credentials or a user whose policies allow the
//! operation's `admin:` action ([`admin_action`]). `_strata` can never be
//! a bucket name, so the admin paths cannot shadow a bucket.
//!
//! - `POST /_strata/admin/v1/heal[?bucket=B]`: heal a bucket or everything;
//!   the response streams one JSON progress line per bucket (and every
//!   1000 objects), then a summary line.
//! - `GET /_strata/admin/v1/info`: drives, sets, heal queue.
//! - `GET /_strata/admin/v1/bucket-usage?bucket=B`: the bucket's stored
//!   bytes and versions, and its quota (`null` without one).
//! - `PUT /_strata/admin/v1/bucket-quota?bucket=B&bytes=N` sets the quota,
//!   `DELETE` removes it; both answer like `bucket-usage`.
//! - `kms/...`: the KMS's keys and status ([`super::kms_admin`]).
//! - `GET /_strata/admin/v1/metrics/token`: the bearer token Prometheus
//!   scrapes `/_strata/metrics` with.

use crate::drive::DriveError;
use crate::iam::Iam;
use crate::object::ObjectLayer;
use crate::server::caller::{resolve, security_token};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
use s3s::route::S3Route;
use s3s::{Body, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use std::sync::Arc;

pub use strata_s3client::ADMIN_PREFIX;

#[derive(Debug, Clone)]
pub struct AdminRoute {
    layer: Arc<ObjectLayer>,
    iam: Arc<Iam>,
    kms: Option<Arc<dyn crate::kms::Kms>>,
    tiers: Arc<crate::tier::Tiers>,
    root: String,
    /// The bearer token of the metrics endpoint.
    metrics_token: String,
}

impl AdminRoute {
    pub fn new(
        layer: Arc<ObjectLayer>,
        iam: Arc<Iam>,
        kms: Option<Arc<dyn crate::kms::Kms>>,
        tiers: Arc<crate::tier::Tiers>,
        root_access_key: &str,
        metrics_token: String,
    ) -> Self {
        Self {
            layer,
            iam,
            kms,
            tiers,
            root: root_access_key.to_owned(),
            metrics_token,
        }
    }
}

type LineSender = tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>;

/// `v` as one line of a streamed answer.
fn json_line(v: &serde_json::Value) -> Bytes {
    let mut l = v.to_string().into_bytes();
    l.push(b'\n');
    Bytes::from(l)
}

/// A progress line of a streamed answer; dropped when the client reads
/// too slowly (the last line is sent with waiting).
fn line(tx: &LineSender, v: serde_json::Value) {
    let _ = tx.try_send(Ok(json_line(&v)));
}

/// An answer of JSON lines: what `work` sends as it runs, then its result
/// as `{"summary": ...}` or `{"error": "..."}`.
fn stream_lines<T: serde::Serialize + Send + 'static>(
    work: impl FnOnce(LineSender) -> futures::future::BoxFuture<'static, crate::object::ObjectResult<T>>,
) -> S3Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let work = work(tx.clone());
    tokio::spawn(async move {
        let r = work.await;
        let summary = match r {
            Ok(t) => serde_json::json!({ "summary": t }),
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        };
        let _ = tx.send(Ok(json_line(&summary))).await;
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|i| (i, rx)) });
    json_response(StatusCode::OK, Body::from(s3s::dto::StreamingBlob::wrap(stream)))
}

/// The erasure sets of a layer and the state of each drive, as `info`
/// shows them.
async fn sets_info(layer: &ObjectLayer) -> Vec<serde_json::Value> {
    let mut sets = Vec::new();
    for set in layer.sets() {
        let mut drives = Vec::new();
        for d in set.drives() {
            drives.push(match d {
                Some(d) => {
                    let d = Arc::clone(d);
                    let space = tokio::task::spawn_blocking(move || (d.name().to_owned(), d.space()))
                        .await
                        .ok();
                    match space {
                        Some((name, Err(DriveError::Offline))) => {
                            serde_json::json!({ "drive": name, "state": "offline" })
                        }
                        Some((name, Ok(s))) => serde_json::json!({
                            "drive": name, "state": "online", "total": s.total, "free": s.free }),
                        Some((name, Err(_))) => serde_json::json!({ "drive": name, "state": "faulty" }),
                        None => serde_json::json!({ "state": "faulty" }),
                    }
                }
                None => serde_json::json!({ "state": "offline" }),
            });
        }
        sets.push(serde_json::json!({
            "set": set.index, "data": set.drive_count() - set.parity(), "parity": set.parity(), "drives": drives
        }));
    }
    sets
}

/// A query parameter's value, percent-decoded.
pub fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| percent_decode(v))
    })
}

/// `%XX` escapes and `+` (a space) decoded.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn json_response(status: StatusCode, body: impl Into<Body>) -> S3Response<Body> {
    let mut r = S3Response::new(body.into());
    r.status = Some(status);
    r.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// The `admin:` action of an admin operation (`op`: the path after the
/// admin prefix), for policies that grant parts of the admin API.
pub fn admin_action(method: &Method, op: &str) -> String {
    let verb = |create: &str, update: &str, delete: &str| -> String {
        match *method {
            Method::PUT => create,
            Method::POST => update,
            Method::DELETE => delete,
            _ => "Unknown",
        }
        .to_owned()
    };
    let name = match op {
        "heal" => "Heal".to_owned(),
        "info" => "ServerInfo".to_owned(),
        "metrics/token" => "Prometheus".to_owned(),
        "bucket-usage" => "GetBucketUsage".to_owned(),
        "bucket-quota" => "SetBucketQuota".to_owned(),
        "clone" => "CloneObjects".to_owned(),
        "iam" => "ListIdentities".to_owned(),
        "iam/simulate" => "SimulatePolicy".to_owned(),
        op if op.starts_with("kms/") => super::kms_admin::action(method, &op[4..]).to_owned(),
        "tier" => super::tier_admin::action(method).to_owned(),
        "iam/user" => verb("CreateUser", "EnableUser", "DeleteUser"),
        "iam/access-key" => verb("CreateAccessKey", "UpdateAccessKey", "DeleteAccessKey"),
        "iam/policy" => verb("CreatePolicy", "CreatePolicy", "DeletePolicy"),
        "iam/attachment" => verb("AttachPolicy", "AttachPolicy", "DetachPolicy"),
        "iam/group" => verb("CreateGroup", "CreateGroup", "DeleteGroup"),
        "iam/member" => verb("AddUserToGroup", "AddUserToGroup", "RemoveUserFromGroup"),
        "iam/idp" => verb(
            "SetIdentityProvider",
            "SetIdentityProvider",
            "DeleteIdentityProvider",
        ),
        "iam/svcacct" => verb(
            "CreateServiceAccount",
            "UpdateServiceAccount",
            "DeleteServiceAccount",
        ),
        _ => "Unknown".to_owned(),
    };
    format!("admin:{name}")
}

impl AdminRoute {
    /// The resource an admin operation acts on: a bucket's ARN for its
    /// usage and quota; for service accounts the ARN of their user (so a
    /// policy can let users manage their own with `${aws:username}`), or
    /// the caller's for its own; else the admin API itself.
    async fn admin_resource(&self, op: &str, uri: &Uri, caller: &crate::server::caller::Caller) -> String {
        if matches!(op, "bucket-usage" | "bucket-quota") {
            return crate::policy::resource_arn(&query_param(uri, "bucket").unwrap_or_default(), None);
        }
        if op == "iam/svcacct" {
            let user = match query_param(uri, "key") {
                Some(key) => self
                    .iam
                    .snapshot()
                    .await
                    .svcaccts
                    .get(&key)
                    .map(|a| a.parent.clone()),
                None => query_param(uri, "user"),
            };
            match user {
                // The root account's own.
                Some(u) if u.is_empty() => return self.iam.root_arn(),
                Some(u) => return self.iam.user_arn(&u),
                // The caller's own.
                None => return caller.arn(self.iam.account()),
            }
        }
        "arn:strata:admin:::*".to_owned()
    }

    /// `POST clone?bucket=B&prefix=P&target-bucket=T&target-prefix=Q`:
    /// every current object under `P` of `B` cloned under `Q` of `T`
    /// ([`ObjectLayer::clone_prefix`]). Refusals come as S3 errors; once
    /// it runs, the answer streams a progress line per page of keys, then
    /// `{"summary": ...}` or `{"error": ...}`.
    fn clone_objects(&self, uri: &Uri) -> S3Result<S3Response<Body>> {
        let arg = |name: &str| query_param(uri, name).unwrap_or_default();
        let (src, src_prefix, dst, dst_prefix) = (
            arg("bucket"),
            arg("prefix"),
            arg("target-bucket"),
            arg("target-prefix"),
        );
        self.layer
            .check_clone((&src, &src_prefix), (&dst, &dst_prefix))
            .map_err(super::error::to_s3)?;
        let layer = Arc::clone(&self.layer);
        let keys: Arc<dyn crate::object::KeySource> =
            Arc::new(super::s3::sse::RequestKeys::server(self.kms.clone()));
        Ok(stream_lines(move |tx| {
            Box::pin(async move {
                layer
                    .clone_prefix((&src, &src_prefix), (&dst, &dst_prefix), keys, |p| {
                        line(&tx, serde_json::json!({ "progress": p }))
                    })
                    .await
            })
        }))
    }

    /// `{"bucket", "bytes", "versions", "quota"}` of the `bucket` parameter.
    fn bucket_usage(&self, uri: &Uri) -> S3Result<S3Response<Body>> {
        let bucket = query_param(uri, "bucket").unwrap_or_default();
        let u = self.layer.usage(&bucket).map_err(super::error::to_s3)?;
        let body = serde_json::json!({
            "bucket": bucket, "bytes": u.bytes, "versions": u.versions, "quota": u.quota,
        });
        Ok(json_response(StatusCode::OK, body.to_string()))
    }
}

#[async_trait::async_trait]
impl S3Route for AdminRoute {
    fn is_match(&self, _m: &Method, uri: &Uri, _h: &HeaderMap, _e: &mut http::Extensions) -> bool {
        uri.path().starts_with(ADMIN_PREFIX)
    }

    /// The root credentials may do anything; others what their policies
    /// allow of the operation's `admin:` action ([`admin_action`]); any
    /// signed caller may ask who it is.
    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        let Some(creds) = &req.credentials else {
            return Err(S3Error::with_message(
                S3ErrorCode::AccessDenied,
                "Signature is required",
            ));
        };
        if creds.access_key == self.root {
            return Ok(());
        }
        let token = security_token(&req.headers, &req.uri);
        let caller = resolve(&self.iam, &self.root, Some(&creds.access_key), token.as_deref())
            .await
            .map_err(|e| e.to_s3())?;
        let op = &req.uri.path()[ADMIN_PREFIX.len()..];
        if op == "iam/whoami" {
            return Ok(());
        }
        let action = admin_action(&req.method, op);
        let resource = self.admin_resource(op, &req.uri, &caller).await;
        let peer = req.extensions.get::<crate::server::Peer>();
        let ctx = crate::server::access::context(&caller, &req.headers, &req.uri, peer);
        if caller.allows(None, &action, &resource, &ctx) {
            Ok(())
        } else {
            Err(S3Error::with_message(
                S3ErrorCode::AccessDenied,
                format!("not authorized to perform {action}"),
            ))
        }
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let op = req.uri.path()[ADMIN_PREFIX.len()..].to_owned();
        if let Some(rest) = op.strip_prefix("iam") {
            let admin = super::iam_admin::IamAdmin {
                iam: &self.iam,
                layer: &self.layer,
                root: &self.root,
            };
            return admin.call(req, rest).await;
        }
        if let Some(rest) = op.strip_prefix("kms/") {
            return super::kms_admin::call(self.kms.as_ref(), &req, rest).await;
        }
        if op == "tier" {
            return super::tier_admin::call(&self.tiers, req).await;
        }
        let op = op.as_str();
        match (req.method.clone(), op) {
            (Method::POST, "heal") => {
                let bucket = query_param(&req.uri, "bucket").filter(|b| !b.is_empty());
                if let Some(b) = &bucket {
                    self.layer.bucket(b).map_err(super::error::to_s3)?;
                }
                let layer = Arc::clone(&self.layer);
                // Every pool's drives too, unless one bucket is asked for
                // (a pool's objects are not sorted by bucket).
                let pools: Vec<(String, Arc<ObjectLayer>)> = match bucket {
                    None => layer.placement().pool_layers().to_vec(),
                    Some(_) => vec![],
                };
                Ok(stream_lines(move |tx| {
                    Box::pin(async move {
                        let mut total = layer
                            .heal_all(bucket.as_deref(), 0.0, |p| {
                                line(&tx, serde_json::to_value(p).unwrap_or_default())
                            })
                            .await?;
                        for (name, pool) in pools {
                            total += pool
                                .heal_all(None, 0.0, |p| {
                                    let mut v = serde_json::to_value(p).unwrap_or_default();
                                    v["pool"] = serde_json::Value::from(name.as_str());
                                    line(&tx, v)
                                })
                                .await?;
                        }
                        Ok(total)
                    })
                }))
            }
            (Method::POST, "clone") => self.clone_objects(&req.uri),
            (Method::GET, "info") => {
                let mut pools = Vec::new();
                for (name, pool) in self.layer.placement().pool_layers() {
                    pools.push(serde_json::json!({ "pool": name, "sets": sets_info(pool).await }));
                }
                let body = serde_json::json!({
                    "sets": sets_info(&self.layer).await,
                    "pools": pools,
                    "buckets": self.layer.list_buckets().len(),
                    "heal_queue": self.layer.heal.pending(),
                    "hinted_heals": self.layer.hinted(),
                });
                Ok(json_response(StatusCode::OK, body.to_string()))
            }
            (Method::GET, "bucket-usage") => self.bucket_usage(&req.uri),
            (Method::GET, "metrics/token") => Ok(json_response(
                StatusCode::OK,
                serde_json::json!({ "token": self.metrics_token, "path": crate::metrics::PATH }).to_string(),
            )),
            (Method::PUT | Method::DELETE, "bucket-quota") => {
                let bucket = query_param(&req.uri, "bucket").unwrap_or_default();
                let quota = if req.method == Method::PUT {
                    let bytes = query_param(&req.uri, "bytes").unwrap_or_default();
                    Some(bytes.parse::<u64>().map_err(|_| {
                        S3Error::with_message(
                            S3ErrorCode::InvalidArgument,
                            "bytes must be the quota in bytes, a whole number",
                        )
                    })?)
                } else {
                    None
                };
                self.layer
                    .set_quota(&bucket, quota)
                    .await
                    .map_err(super::error::to_s3)?;
                self.bucket_usage(&req.uri)
            }
            _ => Err(S3Error::with_message(
                S3ErrorCode::MethodNotAllowed,
                "unknown admin operation",
            )),
        }
    }
}
