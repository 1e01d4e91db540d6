//! The metrics endpoint of the listener ([`crate::metrics::PATH`]): the
//! bearer token it asks for, derived from the root secret key (`objd admin
//! metrics token` prints it) unless metrics are public, and the byte counts
//! the pipeline records.

use super::Service;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Request, Response, StatusCode};
use sha2::Sha256;

/// The metrics bearer token of a deployment: a keyed digest of a fixed
/// label under the root secret key, so every node of a cluster derives
/// the same one and changing the root secret changes it.
pub fn metrics_token(root_secret: &str) -> String {
    let mut m = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(root_secret.as_bytes())
        .expect("any key length");
    m.update(b"strata metrics bearer token v1");
    format!("stm1-{}", hex::encode(&m.finalize().into_bytes()[..24]))
}

/// A request's or response's declared body length (0 when none).
pub fn content_length(h: &HeaderMap) -> u64 {
    h.get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn text(status: StatusCode, body: &str) -> Response<s3s::Body> {
    let mut r = Response::new(s3s::Body::from(body.to_owned()));
    *r.status_mut() = status;
    r
}

/// Equal bytes, compared in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Answers a scrape: 401 without a bearer token, 403 with another one.
pub async fn serve<B>(svc: &Service, req: &Request<B>) -> Response<s3s::Body> {
    if let Some(want) = &svc.metrics_token {
        let given = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            None => {
                let mut r = text(
                    StatusCode::UNAUTHORIZED,
                    "a bearer token is required (objd admin metrics token)\n",
                );
                r.headers_mut().insert(
                    http::header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Bearer"),
                );
                return r;
            }
            Some(t) if !same(t.as_bytes(), want.as_bytes()) => {
                return text(
                    StatusCode::FORBIDDEN,
                    "the bearer token is not this deployment's\n",
                );
            }
            Some(_) => {}
        }
    }
    // Prometheus asks for OpenMetrics; other clients get the classic text.
    let openmetrics = req
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    let body = svc
        .metrics
        .render(
            &svc.layer,
            svc.options.audit.as_deref(),
            svc.options.certs.as_deref(),
        )
        .await;
    let (body, kind) = if openmetrics {
        (body, "application/openmetrics-text; version=1.0.0; charset=utf-8")
    } else {
        (
            crate::metrics::classic(&body),
            "text/plain; version=0.0.4; charset=utf-8",
        )
    };
    let mut r = text(StatusCode::OK, &body);
    r.headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(kind));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_follow_the_root_secret() {
        assert_eq!(metrics_token("a"), metrics_token("a"));
        assert_ne!(metrics_token("a"), metrics_token("b"));
        assert!(metrics_token("a").starts_with("stm1-"));
        assert!(!metrics_token("secret").contains("secret"));
    }
}
