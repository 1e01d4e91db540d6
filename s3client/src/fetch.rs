//! Plain HTTP(S) requests to services that are not S3 (an OpenID
//! provider's discovery document and keys, webhooks): unsigned, bodies in
//! memory and bounded, trust as [`Tls`] says.

use crate::error::{Error, Result};
use crate::tls::Tls;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// A pooled HTTP(S) client for `http://` and `https://` URLs.
pub(crate) type Http = HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The pooled client both [`Fetcher`] and the S3 client use.
pub(crate) fn http_client(tls: &Tls) -> Result<Http> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    connector.enforce_http(false);
    Ok(HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(tls.connector(connector)?))
}

/// Sends unsigned requests and reads whole (bounded) answers.
#[derive(Clone)]
pub struct Fetcher {
    http: Http,
    timeout: Duration,
    max_body: usize,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    /// A client that gives each request `timeout` and reads answers of up
    /// to `max_body` bytes.
    pub fn new(tls: &Tls, timeout: Duration, max_body: usize) -> Result<Self> {
        Ok(Self {
            http: http_client(tls)?,
            timeout,
            max_body,
        })
    }

    /// `GET url`: the status and body.
    pub async fn get(&self, url: &str) -> Result<(StatusCode, Bytes)> {
        self.send(Method::GET, url, &[], Bytes::new()).await
    }

    /// A request with `headers` and `body`: the status and body.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(StatusCode, Bytes)> {
        let mut req = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| Error::Endpoint(format!("{url}: {e}")))?;
        let call = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| Error::Transport(crate::client::chain(&e)))?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), self.max_body)
                .collect()
                .await
                .map_err(|e| Error::Transport(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| Error::Transport(format!("{url}: no answer within {:?}", self.timeout)))?
    }
}
