//! The pipeline's last stage: metrics and the audit entry of every request
//! served by the S3 front. [`Track::begin`] notes what the request is as it
//! arrives, authorization fills in [`Facts`] (the operation, its bucket and
//! key, the principal), and the response body, wrapped as [`Tracked`],
//! counts the bytes sent; when it ends (or the connection drops it) the
//! request is recorded in the metrics and handed to the audit log.

use crate::audit::{Auditor, Entry, entry};
use crate::metrics::{InFlight, Metrics};
use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

/// What authorization learns of a request, for its metrics and audit
/// entry: a request extension shared with the pipeline.
#[derive(Debug, Clone, Default)]
pub struct Facts(pub Arc<FactsInner>);

#[derive(Debug, Default)]
pub struct FactsInner {
    /// The S3 operation.
    pub api: OnceLock<String>,
    pub bucket: OnceLock<String>,
    pub key: OnceLock<String>,
    /// The ARN the caller acts as (`anonymous` for none).
    pub principal: OnceLock<String>,
}

impl Facts {
    /// The facts of the request whose extensions are `ext` (a set of its
    /// own, recorded nowhere, for a request that is not tracked).
    pub fn of(ext: &http::Extensions) -> Self {
        ext.get::<Self>().cloned().unwrap_or_default()
    }

    /// Notes the operation and what it names (the first answer stands).
    pub fn target(&self, api: &str, bucket: Option<&str>, key: Option<&str>) {
        let _ = self.0.api.set(api.to_owned());
        if let Some(b) = bucket {
            let _ = self.0.bucket.set(b.to_owned());
        }
        if let Some(k) = key {
            self.key(k);
        }
    }

    /// Notes the object key (one known only after the request's own
    /// parsing: a form upload's).
    pub fn key(&self, key: &str) {
        let _ = self.0.key.set(key.to_owned());
    }

    /// Notes the ARN the caller acts as.
    pub fn principal(&self, arn: String) {
        let _ = self.0.principal.set(arn);
    }
}

/// The access key of a signed request, from its `Authorization` header
/// (`Credential=KEY/...`) or a presigned URL's `X-Amz-Credential` (or
/// SigV2's `AWSAccessKeyId`). Access keys are not secret.
fn access_key<B>(req: &Request<B>) -> Option<String> {
    let h = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Some(h) = h {
        if let Some(rest) = h.split("Credential=").nth(1) {
            return rest.split('/').next().map(str::to_owned);
        }
        if let Some(rest) = h.strip_prefix("AWS ") {
            return rest.split(':').next().map(str::to_owned);
        }
    }
    let uri = req.uri();
    if let Some(c) = crate::api::admin::query_param(uri, "X-Amz-Credential") {
        return c.split('/').next().map(str::to_owned);
    }
    crate::api::admin::query_param(uri, "AWSAccessKeyId")
}

/// A request being served, until its response headers.
pub struct Track {
    finish: Box<Finish>,
}

/// What is recorded when the response ends.
struct Finish {
    metrics: Arc<Metrics>,
    audit: Option<Arc<Auditor>>,
    _in_flight: InFlight,
    started: Instant,
    first_byte: Duration,
    /// The API name when authorization named none.
    fallback: &'static str,
    facts: Facts,
    status: u16,
    received: Arc<AtomicU64>,
    received_declared: u64,
    sent: u64,
    /// The audit entry's request fields (none without an audit log).
    entry: Option<Entry>,
    /// Looking for the error code in the body's first frame.
    want_code: bool,
    request_id: String,
    /// The error code of an error answer, once its body showed it.
    code: Option<String>,
}

impl Track {
    /// Starts tracking `req`, inserting its [`Facts`] extension.
    pub fn begin<B>(
        metrics: &Arc<Metrics>,
        audit: Option<&Arc<Auditor>>,
        req: &mut Request<B>,
        request_id: &str,
        peer: &super::Peer,
        fallback: &'static str,
    ) -> Self {
        let facts = Facts::default();
        req.extensions_mut().insert(facts.clone());
        let arrived = SystemTime::now();
        let entry = audit.map(|a| {
            let c = a.config();
            let header = |n: &str| {
                req.headers()
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            Entry {
                version: entry::VERSION.into(),
                time: entry::timestamp(arrived),
                request_id: request_id.to_owned(),
                node: c.node.clone(),
                deployment_id: c.deployment_id.clone(),
                api: String::new(),
                bucket: None,
                object: None,
                version_id: crate::api::admin::query_param(req.uri(), "versionId"),
                status: 0,
                error_code: None,
                bytes_received: 0,
                bytes_sent: 0,
                time_to_first_byte_ns: 0,
                duration_ns: 0,
                remote_address: peer.addr.to_string(),
                user_agent: header("user-agent"),
                access_key: access_key(req),
                principal: None,
                request_headers: entry::copy_headers(req.headers(), &c.headers.request),
                response_headers: BTreeMap::new(),
            }
        });
        Track {
            finish: Box::new(Finish {
                metrics: Arc::clone(metrics),
                audit: audit.cloned(),
                _in_flight: metrics.start(),
                started: Instant::now(),
                first_byte: Duration::ZERO,
                fallback,
                facts,
                status: 0,
                received: Arc::default(),
                received_declared: super::scrape::content_length(req.headers()),
                sent: 0,
                entry,
                want_code: false,
                request_id: request_id.to_owned(),
                code: None,
            }),
        }
    }

    /// The counter the request body adds the bytes it reads to (left at
    /// zero, the declared `Content-Length` counts).
    pub fn received(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.finish.received)
    }

    /// The response headers are ready: from here the body is tracked.
    pub fn respond(self, resp: Response<s3s::Body>) -> Response<Tracked> {
        let mut f = self.finish;
        f.first_byte = f.started.elapsed();
        f.status = resp.status().as_u16();
        f.want_code = f.status >= 300;
        if let Some(e) = f.entry.as_mut()
            && let Some(a) = &f.audit
        {
            e.response_headers = entry::copy_headers(resp.headers(), &a.config().headers.response);
            if let Some(v) = header_text(resp.headers(), "x-amz-version-id") {
                e.version_id = Some(v);
            }
        }
        resp.map(|b| Tracked {
            inner: b,
            finish: Some(f),
        })
    }
}

fn header_text(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The `<Code>` of an S3 or IAM error document.
fn error_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(&body[..body.len().min(2048)]).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let end = text[start..].find("</Code>")? + start;
    Some(text[start..end].to_owned())
}

impl Finish {
    /// One line per failed request: a server error at ERROR (something
    /// here went wrong), a client error at DEBUG (the client asked for
    /// something refused; the audit log has every request).
    fn log(&self, api: &str) {
        let facts = &self.facts.0;
        let text = |v: &OnceLock<String>| v.get().cloned().unwrap_or_default();
        let (bucket, key) = (text(&facts.bucket), text(&facts.key));
        let code = self.code.as_deref().unwrap_or_default();
        let id = &self.request_id;
        if self.status >= 500 {
            tracing::error!(request_id = %id, api, status = self.status, code, bucket, key, "request failed");
        } else if self.status >= 400 {
            tracing::debug!(request_id = %id, api, status = self.status, code, bucket, key, "request refused");
        }
    }

    fn done(mut self) {
        let facts = &self.facts.0;
        let api = facts.api.get().map_or(self.fallback, String::as_str);
        let counted = self.received.load(Ordering::Relaxed);
        let received = if counted > 0 {
            counted
        } else {
            self.received_declared
        };
        self.metrics
            .record(api, self.status, self.first_byte, received, self.sent);
        self.log(api);
        let (Some(audit), Some(mut e)) = (self.audit.take(), self.entry.take()) else {
            return;
        };
        e.api = api.to_owned();
        e.bucket = facts.bucket.get().cloned();
        e.object = facts.key.get().cloned();
        e.principal = facts.principal.get().cloned();
        e.status = self.status;
        e.bytes_received = received;
        e.bytes_sent = self.sent;
        e.time_to_first_byte_ns = self.first_byte.as_nanos() as u64;
        e.duration_ns = self.started.elapsed().as_nanos() as u64;
        audit.record(&e);
    }
}

/// A response body that records its request when it ends.
pub struct Tracked {
    inner: s3s::Body,
    finish: Option<Box<Finish>>,
}

impl Tracked {
    /// A response recorded nowhere (health, scrapes, node calls).
    pub fn untracked(resp: Response<s3s::Body>) -> Response<Tracked> {
        resp.map(|b| Tracked {
            inner: b,
            finish: None,
        })
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(f) = self.finish.take() {
            f.done();
        }
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = <s3s::Body as Body>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(f), Some(data)) = (this.finish.as_mut(), frame.data_ref()) {
                    f.sent += data.len() as u64;
                    if f.want_code {
                        f.want_code = false;
                        f.code = error_code(data);
                        if let Some(e) = f.entry.as_mut() {
                            e.error_code = f.code.clone();
                        }
                    }
                }
            }
            Poll::Ready(_) => {
                if let Some(f) = this.finish.take() {
                    f.done();
                }
            }
            Poll::Pending => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_keys_come_from_either_signature_form() {
        let r = Request::builder()
            .uri("/b/k")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261204/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abc",
            )
            .body(())
            .unwrap();
        assert_eq!(access_key(&r).as_deref(), Some("AKIAEXAMPLE"));
        let r = Request::builder()
            .uri("/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=PRESIGNED%2F20261204%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=ff")
            .body(())
            .unwrap();
        assert_eq!(access_key(&r).as_deref(), Some("PRESIGNED"));
        let r = Request::builder().uri("/b/k").body(()).unwrap();
        assert_eq!(access_key(&r), None);
    }

    #[test]
    fn error_codes_are_read_from_error_documents() {
        let body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code><Message>m</Message></Error>";
        assert_eq!(error_code(body).as_deref(), Some("NoSuchKey"));
        assert_eq!(error_code(b"plain"), None);
    }
}
