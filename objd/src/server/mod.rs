//! Listeners and the request pipeline in front of the S3 service: a request
//! id for every request (echoed as `x-amz-request-id`), health endpoints
//! that need no credentials, header-read timeouts against slow clients,
//! the IAM and STS APIs (form POSTs to `/`, [`crate::api::query`]), then
//! `s3s` (authentication, S3 routing, the admin route) with [`access`]
//! deciding what each request may do.
//!
//! [`run`] takes its listener from the caller, so tests bind `127.0.0.1:0`.

pub mod access;
pub mod auth;
pub mod caller;
mod cors;
pub mod ellipsis;
pub mod form;
mod idle;
pub mod node;
pub mod pools;
pub mod scrape;
pub mod startup;
pub mod track;

use crate::api::admin::AdminRoute;
use crate::api::s3::{RequestId, StrataS3};
use crate::object::ObjectLayer;
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use s3s::service::{S3Service, S3ServiceBuilder};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;

/// Time a client has to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Most bytes a connection reads ahead of its request (HTTP/1). The
/// server's library reads a connection even while its request waits (for
/// buffer credits, say), to see whether the client went away, and grows
/// that read up to its buffer's bound: about 400 KiB by default, 50 MiB
/// for 128 uploads waiting their turn. A 64 KiB bound keeps that under
/// 10 MiB and still holds any request head S3 allows (8 KiB of headers).
const CONNECTION_READ_BUFFER: usize = 64 << 10;

/// Root credentials. The secret is kept out of `Debug` output.
#[derive(Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// S3's bucket-name rules, plus the reserved `_strata` name of the admin
/// paths (so they reach the admin route after authentication; no bucket can
/// be created under it).
struct Names;

impl s3s::validation::NameValidation for Names {
    fn validate_bucket_name(&self, name: &str) -> bool {
        name == "_strata" || s3s::path::check_bucket_name(name)
    }
}

/// Virtual-host-style addressing under the `--domain` names: a host
/// `bucket.domain` addresses `bucket`; any other host (an IP address,
/// `localhost`, a bare domain) is path-style.
struct Domains(Vec<String>);

impl s3s::host::S3Host for Domains {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> s3s::S3Result<s3s::host::VirtualHost<'a>> {
        let name = host.rsplit_once(':').map_or(host, |(n, p)| {
            if p.chars().all(|c| c.is_ascii_digit()) {
                n
            } else {
                host
            }
        });
        for d in &self.0 {
            if let Some(bucket) = name.strip_suffix(d.as_str()).and_then(|b| b.strip_suffix('.'))
                && !bucket.is_empty()
            {
                return Ok(s3s::host::VirtualHost::new(d.as_str()).with_bucket(bucket));
            }
        }
        Ok(s3s::host::VirtualHost::new(name))
    }
}

/// The S3 service with what the pipeline stages around it need.
pub struct Service {
    s3: S3Service,
    query: crate::api::query::QueryApi,
    layer: Arc<ObjectLayer>,
    options: ServiceOptions,
    metrics: Arc<crate::metrics::Metrics>,
    /// The bearer token `/_strata/metrics` asks for (`None`: public).
    metrics_token: Option<String>,
}

/// Front-end settings of the S3 service.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Domain names for virtual-host-style requests (`bucket.DOMAIN`).
    pub domains: Vec<String>,
    /// How long a request body may send nothing while the server waits.
    pub idle_timeout: Duration,
    /// Shortest STS session granted, in seconds.
    pub sts_min_duration: u64,
    /// The KMS and SSE-C settings.
    pub encryption: crate::api::s3::sse::Encryption,
    /// Serve metrics without the bearer token.
    pub metrics_public: bool,
    /// The audit log, if any target is configured.
    pub audit: Option<Arc<crate::audit::Auditor>>,
    /// The certificates served (for their expiry in the metrics).
    pub certs: Option<Arc<crate::tls::Certs>>,
    /// The ownership control of buckets created without one.
    pub default_ownership: crate::acl::Ownership,
    /// The length of a lifecycle day.
    pub lifecycle_clock: crate::lifecycle::Clock,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            domains: Vec::new(),
            idle_timeout: Duration::from_secs(60),
            sts_min_duration: crate::iam::sts::MIN_DURATION,
            encryption: Default::default(),
            metrics_public: false,
            audit: None,
            certs: None,
            default_ownership: crate::acl::Ownership::BucketOwnerPreferred,
            lifecycle_clock: Default::default(),
        }
    }
}

/// Largest XML request body (CompleteMultipartUpload of 10,000 parts with
/// checksums fits with room to spare).
const XML_MAX_BODY: usize = 4 << 20;

/// Builds the S3 service (with the admin route) over an object layer and
/// its identities.
pub fn build_service(
    layer: Arc<ObjectLayer>,
    iam: Arc<crate::iam::Iam>,
    creds: &Credentials,
    options: ServiceOptions,
) -> Service {
    let token = scrape::metrics_token(&creds.secret_key);
    let settings = crate::api::s3::Settings {
        owner: crate::acl::Owner::of_account(iam.account()),
        default_ownership: options.default_ownership,
        lifecycle_clock: options.lifecycle_clock,
    };
    let mut b = S3ServiceBuilder::new(StrataS3::new(
        Arc::clone(&layer),
        options.encryption.clone(),
        settings,
    ));
    b.set_validation(Names);
    let mut config = s3s::config::S3Config::default();
    config.xml_max_body_size = XML_MAX_BODY;
    config.post_object_max_file_size = form_max(&layer);
    b.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(config))));
    b.set_auth(auth::Auth::new(creds.clone(), Arc::clone(&iam)));
    b.set_access(access::Access::new(
        Arc::clone(&layer),
        Arc::clone(&iam),
        &creds.access_key,
    ));
    let tiers = crate::tier::Tiers::open(Arc::clone(&layer), &creds.secret_key);
    let admin = AdminRoute::new(
        Arc::clone(&layer),
        Arc::clone(&iam),
        options.encryption.kms.clone(),
        tiers,
        &creds.access_key,
        token.clone(),
    );
    let access = access::Access::new(Arc::clone(&layer), Arc::clone(&iam), &creds.access_key);
    let list = crate::api::meta_list::MetaList::new(Arc::clone(&layer), access);
    b.set_route(crate::api::routes::Routes { admin, list });
    if !options.domains.is_empty() {
        b.set_host(Domains(options.domains.clone()));
    }
    let query = crate::api::query::QueryApi::new(
        Arc::clone(&iam),
        auth::Auth::new(creds.clone(), iam),
        &creds.access_key,
        options.sts_min_duration,
    );
    let metrics_token = (!options.metrics_public).then_some(token);
    Service {
        s3: b.build(),
        query,
        layer,
        options,
        metrics: Arc::default(),
        metrics_token,
    }
}

/// What a listener serves: the node endpoint of a cluster (from the
/// start, so other nodes can reach this node's drives while it starts)
/// and the S3 service (once the object layer is open; `503` before).
#[derive(Default)]
pub struct Front {
    s3: std::sync::OnceLock<Service>,
    node: Option<node::NodeService>,
}

impl Front {
    pub fn new(node: Option<node::NodeService>) -> Self {
        Self {
            s3: std::sync::OnceLock::new(),
            node,
        }
    }

    /// Starts answering S3 requests with `service`.
    pub fn ready(&self, service: Service) {
        let _ = self.s3.set(service);
    }
}

struct Pipeline {
    front: Arc<Front>,
    next_id: AtomicU64,
    boot: u64,
    /// Node calls are served here (not on a plain-HTTP listener beside
    /// the HTTPS one).
    node_calls: bool,
}

/// Where a connection comes from and what its handshake established;
/// every request carries it (as a request extension) to authorization.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: std::net::SocketAddr,
    /// The connection is TLS.
    pub tls: bool,
    /// The client presented a certificate the cluster CA signed.
    pub cluster_cert: bool,
}

/// An S3 error document answered before the S3 service sees the request.
pub(crate) fn xml_error(
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: Option<&str>,
) -> Response<s3s::Body> {
    let id = request_id.map_or(String::new(), |id| format!("<RequestId>{id}</RequestId>"));
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message>{id}</Error>"
    );
    let mut r = Response::new(s3s::Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r
}

fn starting() -> Response<s3s::Body> {
    let mut r = xml_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        "The server is starting; retry shortly.",
        None,
    );
    r.headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

impl Pipeline {
    async fn handle(
        &self,
        mut req: Request<Incoming>,
        peer: Peer,
    ) -> Result<Response<track::Tracked>, s3s::HttpError> {
        use track::{Track, Tracked};
        if let Some(node) = &self.front.node
            && node::NodeService::is_node_call(req.uri().path())
        {
            // Over TLS, node calls need a client certificate of the cluster
            // CA; a plain listener beside the TLS one serves none.
            if (peer.tls && !peer.cluster_cert) || !self.node_calls {
                return Ok(Tracked::untracked(node::refuse_uncertified()));
            }
            return Ok(Tracked::untracked(node.handle(req).await));
        }
        req.extensions_mut().insert(peer);
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("{:08X}{:08X}", self.boot as u32, n);
        let untracked = |r| Ok(Tracked::untracked(with_id(r, &id)));
        let s3 = self.front.s3.get();
        if let Some(resp) = health(&req, s3.is_some_and(|s| s.layer.has_write_quorum())) {
            return untracked(resp);
        }
        let Some(svc) = s3 else {
            return untracked(starting());
        };
        if req.uri().path() == crate::metrics::PATH {
            return untracked(scrape::serve(svc, &req).await);
        }
        let audit = svc.options.audit.as_ref();
        if let Some(a) = audit
            && !a.admit().await
        {
            return untracked(audit_full(&id));
        }
        let query = crate::api::query::is_query_request(&req);
        let admin = req.uri().path().starts_with(crate::api::admin::ADMIN_PREFIX);
        let fallback = match (query, admin) {
            (true, _) => "IAM/STS",
            (false, true) => "Admin",
            (false, false) => "Other",
        };
        let track = Track::begin(&svc.metrics, audit, &mut req, &id, &peer, fallback);
        if let Some(resp) = oversized_xml(&req).or_else(|| presign_out_of_range(&req)) {
            return Ok(track.respond(with_id(resp, &id)));
        }
        let domains = &svc.options.domains;
        if let Some(resp) = cors::preflight(&svc.layer, &req, domains) {
            return Ok(track.respond(with_id(resp, &id)));
        }
        if query {
            let resp = svc.query.handle(req, &id).await;
            return Ok(track.respond(with_id(resp, &id)));
        }
        let origin = cors::CorsRequest::of(&req, domains);
        req.extensions_mut().insert(RequestId(id.clone()));
        let expects = expects_continue(&req);
        let declared = scrape::content_length(req.headers());
        let idle = svc.options.idle_timeout;
        let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&timed_out);
        let received = track.received();
        let read = Arc::clone(&received);
        // A form upload is held in memory whole before it is stored: it
        // pays for that first, and its file name is picked up on the way.
        let boundary = form::boundary(&req);
        let form = boundary.as_ref().map(|_| form::FormUpload::default());
        let form_cost = form::cost(&req, form_max(&svc.layer));
        if let Some(f) = &form {
            req.extensions_mut().insert(f.clone());
        }
        let req = req.map(|b| {
            let body = idle::IdleBody::new(b, idle, flag, read);
            match &form {
                Some(f) => s3s::Body::http_body(form::FileNameBody::new(
                    body,
                    boundary.as_deref().unwrap_or_default(),
                    f,
                )),
                None => s3s::Body::http_body(body),
            }
        });
        let mut resp = match &form {
            None => svc.s3.call(req).await?,
            Some(f) => match svc.layer.budget().paid(form_cost, svc.s3.call(req)).await {
                Ok(r) => form::as_s3(r?, f).await,
                Err(_) => busy(&id),
            },
        };
        if timed_out.load(Ordering::Relaxed) {
            resp = idle::timeout_response(&id);
        }
        if let Some(o) = origin {
            o.decorate(&svc.layer, &mut resp);
        }
        // A request that asked `Expect: 100-continue` and was answered
        // without its body being read (no `100 Continue` was sent): the
        // client may still send the body, which would then be read as the
        // start of the next request on the connection. Closing after the
        // answer is what RFC 9110 leaves a server that does not read it.
        // (Without a body at all, some clients also hang the next request.)
        if expects && received.load(Ordering::Relaxed) < declared.max(1) {
            resp.headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        Ok(track.respond(with_id(resp, &id)))
    }
}

/// The answer to a form upload that waited too long for buffer memory.
fn busy(request_id: &str) -> Response<s3s::Body> {
    let mut r = xml_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "SlowDown",
        "Please reduce your request rate.",
        Some(request_id),
    );
    r.headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// The largest form upload (POST object) taken: the buffer budget, since
/// a form's file is held in memory whole, and at most S3's 5 GiB.
pub fn form_max(layer: &ObjectLayer) -> u64 {
    const S3_MAX: u64 = 5 << 30;
    layer.budget().total().unwrap_or(S3_MAX).min(S3_MAX)
}

/// The answer to a request held back because an audit queue stayed full
/// (the `block` policy).
fn audit_full(request_id: &str) -> Response<s3s::Body> {
    let mut r = xml_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "SlowDown",
        "The audit log cannot take more entries now; retry shortly.",
        Some(request_id),
    );
    r.headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

/// Longest validity of a SigV4 presigned URL: a week.
const PRESIGN_MAX_SECS: i64 = 604_800;

/// Refuses a SigV4 presigned URL whose `X-Amz-Expires` is not a count of
/// seconds up to a week, with S3's answers.
fn presign_out_of_range<B>(req: &Request<B>) -> Option<Response<s3s::Body>> {
    let uri = req.uri();
    crate::api::admin::query_param(uri, "X-Amz-Algorithm")?;
    let expires = crate::api::admin::query_param(uri, "X-Amz-Expires")?;
    let message = match expires.parse::<i64>() {
        Ok(n) if n > PRESIGN_MAX_SECS => "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        Ok(n) if n >= 0 => return None,
        Ok(_) => "X-Amz-Expires must be non-negative",
        Err(_) => "X-Amz-Expires should be a number",
    };
    Some(xml_error(
        StatusCode::BAD_REQUEST,
        "AuthorizationQueryParametersError",
        message,
        None,
    ))
}

/// Query parameters that make a request's body an XML (or JSON) document
/// rather than object data.
const DOCUMENT_SUBRESOURCES: &[&str] = &[
    "delete",
    "uploadId",
    "tagging",
    "cors",
    "versioning",
    "policy",
    "acl",
    "object-lock",
    "retention",
    "legal-hold",
    "lifecycle",
    "encryption",
    "notification",
    "replication",
    "website",
    "logging",
    "accelerate",
    "requestPayment",
    "ownershipControls",
    "publicAccessBlock",
    "restore",
    "select",
];

/// Refuses a document request body over [`XML_MAX_BODY`] by its declared
/// length, before reading it: DeleteObjects, CompleteMultipartUpload and
/// the PUTs of subresources such as `?tagging`; object and part uploads
/// (which also carry `uploadId` with `partNumber`) are not documents.
fn oversized_xml(req: &Request<Incoming>) -> Option<Response<s3s::Body>> {
    let query = req.uri().query().unwrap_or_default();
    let keys: Vec<&str> = query
        .split('&')
        .map(|p| p.split_once('=').map_or(p, |(k, _)| k))
        .collect();
    let is_part = keys.contains(&"partNumber");
    let document = keys.iter().any(|k| DOCUMENT_SUBRESOURCES.contains(k));
    let xml = matches!(*req.method(), http::Method::POST | http::Method::PUT) && document && !is_part;
    let len: u64 = req
        .headers()
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    if !xml || len <= XML_MAX_BODY as u64 {
        return None;
    }
    let mut r = xml_error(
        StatusCode::BAD_REQUEST,
        "MaxMessageLengthExceeded",
        "Your request was too big.",
        None,
    );
    r.headers_mut()
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    Some(r)
}

/// Whether the request asks `Expect: 100-continue`.
fn expects_continue(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(http::header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
}

fn with_id(mut resp: Response<s3s::Body>, id: &str) -> Response<s3s::Body> {
    if let Ok(v) = HeaderValue::from_str(id) {
        resp.headers_mut().insert("x-amz-request-id", v);
    }
    resp.headers_mut()
        .insert(http::header::SERVER, HeaderValue::from_static("Strata"));
    resp
}

/// `/_strata/health/live` and `/_strata/health/ready`, for probes: live
/// while the process serves, ready while it serves S3 and every erasure
/// set has a write quorum of reachable drives.
fn health(req: &Request<Incoming>, ready: bool) -> Option<Response<s3s::Body>> {
    let p = req.uri().path();
    let ok = match p {
        "/_strata/health/live" => true,
        "/_strata/health/ready" => ready,
        _ => return None,
    };
    let (status, text) = if ok {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    };
    let mut r = Response::new(s3s::Body::from(text.to_owned()));
    *r.status_mut() = status;
    Some(r)
}

/// Serves `front` on `listener` (with TLS when `tls` is given) until
/// `shutdown` resolves, then stops accepting and waits for requests in
/// flight.
pub async fn run(
    listener: TcpListener,
    front: Arc<Front>,
    tls: Option<Arc<crate::tls::Certs>>,
    shutdown: impl Future<Output = ()>,
) {
    serve_listener(listener, front, tls, true, shutdown).await;
}

/// Serves S3 in plain HTTP on `listener` beside an HTTPS listener (during
/// a migration of clients to HTTPS): the same service, without node calls.
pub async fn run_plain_beside(listener: TcpListener, front: Arc<Front>, shutdown: impl Future<Output = ()>) {
    serve_listener(listener, front, None, false, shutdown).await;
}

async fn serve_listener(
    listener: TcpListener,
    front: Arc<Front>,
    tls: Option<Arc<crate::tls::Certs>>,
    node_calls: bool,
    shutdown: impl Future<Output = ()>,
) {
    let boot = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let pipeline = Arc::new(Pipeline {
        front,
        next_id: AtomicU64::new(0),
        boot,
        node_calls,
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(CONNECTION_READ_BUFFER)
        .keep_alive(true);
    // Node calls (HTTP/2): windows wide enough for shard streams.
    builder
        .http2()
        .timer(TokioTimer::new())
        .initial_stream_window_size(1 << 20)
        .initial_connection_window_size(16 << 20)
        .max_header_list_size(64 << 10);
    let builder = Arc::new(builder);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, addr) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let p = Arc::clone(&pipeline);
                let (builder, watcher) = (Arc::clone(&builder), graceful.watcher());
                let acceptor = tls.as_ref().map(|t| tokio_rustls::TlsAcceptor::from(t.server_config()));
                tokio::spawn(async move {
                    match acceptor {
                        None => {
                            let peer = Peer { addr, tls: false, cluster_cert: false };
                            serve(&builder, watcher, p, stream, peer).await;
                        }
                        Some(a) => {
                            let tls = match tokio::time::timeout(HEADER_TIMEOUT, a.accept(stream)).await {
                                Ok(Ok(s)) => s,
                                Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
                                Err(_) => return tracing::debug!("TLS handshake timed out"),
                            };
                            // A certificate is only ever accepted verified.
                            let cluster_cert = tls.get_ref().1.peer_certificates().is_some();
                            serve(&builder, watcher, p, tls, Peer { addr, tls: true, cluster_cert }).await;
                        }
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(30)) => tracing::warn!("requests still running at shutdown"),
    }
}

/// Serves one connection's requests.
async fn serve<S>(
    builder: &hyper_util::server::conn::auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    pipeline: Arc<Pipeline>,
    stream: S,
    peer: Peer,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let p = Arc::clone(&pipeline);
        async move { p.handle(req, peer).await }
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(conn.into_owned()).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
