//! The CORS stage of the pipeline: answers preflight `OPTIONS` requests
//! from the bucket's CORS rules (no credentials needed, as browsers send
//! none) and adds `Access-Control-*` headers to responses for requests
//! that carry an `Origin` a rule allows.

use crate::cors::{BUCKET_SETTING, CorsConfig, CorsGrant};
use crate::object::ObjectLayer;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};

/// The bucket a request addresses: the first label of the host under one
/// of `domains` (virtual-host style), else the first path segment.
pub fn bucket_of<B>(req: &Request<B>, domains: &[String]) -> Option<String> {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| {
            h.rsplit_once(':').map_or(h, |(name, port)| {
                if port.chars().all(|c| c.is_ascii_digit()) {
                    name
                } else {
                    h
                }
            })
        });
    if let Some(host) = host {
        for d in domains {
            if let Some(b) = host.strip_suffix(d.as_str()).and_then(|p| p.strip_suffix('.'))
                && !b.is_empty()
            {
                return Some(b.to_owned());
            }
        }
    }
    let first = req.uri().path().trim_start_matches('/').split('/').next()?;
    (!first.is_empty()).then(|| first.to_owned())
}

fn rules(layer: &ObjectLayer, bucket: &str) -> Option<CorsConfig> {
    let raw = layer.bucket_setting(bucket, BUCKET_SETTING).ok()??;
    CorsConfig::decode(&raw)
}

fn set(h: &mut HeaderMap, name: &'static str, v: &str) {
    if let Ok(v) = HeaderValue::from_str(v) {
        h.insert(name, v);
    }
}

fn apply(h: &mut HeaderMap, g: &CorsGrant) {
    set(h, "access-control-allow-origin", &g.allow_origin);
    set(h, "access-control-allow-methods", &g.allow_methods);
    if let Some(a) = &g.allow_headers {
        set(h, "access-control-allow-headers", a);
    }
    if let Some(e) = &g.expose_headers {
        set(h, "access-control-expose-headers", e);
    }
    if let Some(m) = g.max_age {
        set(h, "access-control-max-age", &m.to_string());
    }
    if g.allow_origin != "*" {
        set(h, "access-control-allow-credentials", "true");
    }
    // What a cached answer depends on, as S3 names it.
    h.append(
        http::header::VARY,
        HeaderValue::from_static("Origin, Access-Control-Request-Headers, Access-Control-Request-Method"),
    );
}

fn forbidden() -> Response<s3s::Body> {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessForbidden</Code>\
                <Message>CORSResponse: This CORS request is not allowed. This is usually because the \
                evaluation of Origin, request method / Access-Control-Request-Method or \
                Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.</Message></Error>";
    let mut r = Response::new(s3s::Body::from(body.to_owned()));
    *r.status_mut() = StatusCode::FORBIDDEN;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r
}

/// Answers a preflight request; `None` when `req` is not one.
pub fn preflight<B>(
    layer: &ObjectLayer,
    req: &Request<B>,
    domains: &[String],
) -> Option<Response<s3s::Body>> {
    if req.method() != Method::OPTIONS {
        return None;
    }
    let h = req.headers();
    let origin = h.get(http::header::ORIGIN).and_then(|v| v.to_str().ok());
    let method = h
        .get(http::header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|v| v.to_str().ok());
    let (Some(origin), Some(method)) = (origin, method) else {
        let mut r = Response::new(s3s::Body::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>BadRequest</Code>\
             <Message>Insufficient information. Origin request header needed.</Message></Error>"
                .to_owned(),
        ));
        *r.status_mut() = StatusCode::BAD_REQUEST;
        return Some(r);
    };
    let requested: Vec<String> = h
        .get(http::header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let requested: Vec<&str> = requested.iter().map(String::as_str).collect();
    let grant = bucket_of(req, domains)
        .and_then(|b| rules(layer, &b))
        .and_then(|c| c.find(origin, method, &requested));
    Some(match grant {
        Some(g) => {
            let mut r = Response::new(s3s::Body::empty());
            apply(r.headers_mut(), &g);
            r
        }
        None => forbidden(),
    })
}

/// What the response stage needs to know of a request with an `Origin`.
pub struct CorsRequest {
    bucket: String,
    origin: String,
    method: String,
}

impl CorsRequest {
    pub fn of<B>(req: &Request<B>, domains: &[String]) -> Option<Self> {
        let origin = req.headers().get(http::header::ORIGIN)?.to_str().ok()?.to_owned();
        Some(Self {
            bucket: bucket_of(req, domains)?,
            origin,
            method: req.method().as_str().to_owned(),
        })
    }

    /// Adds the `Access-Control-*` headers when a rule allows the request.
    pub fn decorate(&self, layer: &ObjectLayer, resp: &mut Response<s3s::Body>) {
        if let Some(g) = rules(layer, &self.bucket).and_then(|c| c.find(&self.origin, &self.method, &[])) {
            apply(resp.headers_mut(), &g);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(host: &str, path: &str) -> Request<()> {
        Request::builder()
            .uri(path)
            .header("host", host)
            .body(())
            .unwrap()
    }

    #[test]
    fn buckets_from_host_or_path() {
        let d = vec!["s3.example.com".to_owned()];
        assert_eq!(
            bucket_of(&req("photos.s3.example.com", "/a/b"), &d).as_deref(),
            Some("photos")
        );
        assert_eq!(
            bucket_of(&req("photos.s3.example.com:9000", "/a"), &d).as_deref(),
            Some("photos")
        );
        assert_eq!(
            bucket_of(&req("s3.example.com", "/docs/x"), &d).as_deref(),
            Some("docs")
        );
        assert_eq!(
            bucket_of(&req("127.0.0.1:9000", "/docs"), &[]).as_deref(),
            Some("docs")
        );
        assert_eq!(bucket_of(&req("127.0.0.1:9000", "/"), &[]), None);
    }
}
