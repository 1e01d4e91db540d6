//! A small etcd v3 client over etcd's JSON gateway (`POST /v3/...`, keys
//! and values base64, 64-bit numbers as strings): the handful of calls a
//! cluster needs (range, put, delete, a create-if-absent transaction,
//! leases, watches). The gateway is part of every etcd server since 3.3,
//! needs no generated code and no protoc, and rides on the HTTP client
//! objd already has; etcd sits off the request path, so JSON costs
//! nothing that matters. Several endpoints may be given; a call that
//! cannot reach one tries the next.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Longest wait for one endpoint's answer to a call (watches excepted);
/// then the next endpoint is tried. etcd answers in milliseconds; a member
/// that takes this long is cut off or stalled.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("etcd is unreachable: {0}")]
    Unreachable(String),
    #[error("etcd answered: {0}")]
    Refused(String),
}

pub type EtcdResult<T> = Result<T, EtcdError>;

/// A key-value pair as etcd returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub lease: i64,
}

/// A watch event.
#[derive(Debug, Clone)]
pub enum Event {
    Put(Kv),
    Delete(Vec<u8>),
}

#[derive(Debug)]
pub struct Etcd {
    endpoints: Vec<String>,
    next: AtomicUsize,
    http: Client<HttpConnector, Full<Bytes>>,
}

fn b64(b: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(b)
}

fn unb64(v: &Value) -> Vec<u8> {
    v.as_str()
        .and_then(|s| base64_simd::STANDARD.decode_to_vec(s).ok())
        .unwrap_or_default()
}

/// A 64-bit number, sent by the gateway as a string (or absent for 0).
fn num(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn kv_of(v: &Value) -> Kv {
    Kv {
        key: unb64(&v["key"]),
        value: unb64(&v["value"]),
        create_revision: num(&v["create_revision"]),
        mod_revision: num(&v["mod_revision"]),
        lease: num(&v["lease"]),
    }
}

/// The first key after every key starting with `prefix` (etcd's range end
/// for a prefix).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    crate::drive::prefix_end(prefix).unwrap_or_else(|| vec![0])
}

impl Etcd {
    /// A client of the etcd cluster at `endpoints` (`http://host:port`).
    pub fn new(endpoints: Vec<String>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        connector.set_nodelay(true);
        Self {
            endpoints: endpoints
                .into_iter()
                .map(|e| e.trim_end_matches('/').to_owned())
                .collect(),
            next: AtomicUsize::new(0),
            http: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    fn request(&self, endpoint: &str, path: &str, body: &Value) -> http::Request<Full<Bytes>> {
        http::Request::post(format!("{endpoint}{path}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("a valid request")
    }

    /// One call, trying each endpoint once, starting with the last that
    /// answered.
    async fn call(&self, path: &str, body: Value) -> EtcdResult<Value> {
        let mut last = String::from("no endpoints");
        for i in 0..self.endpoints.len() {
            let at = (self.next.load(Ordering::Relaxed) + i) % self.endpoints.len();
            let ep = &self.endpoints[at];
            let fut = async {
                let resp = self
                    .http
                    .request(self.request(ep, path, &body))
                    .await
                    .map_err(|e| e.to_string())?;
                let status = resp.status();
                let bytes = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?
                    .to_bytes();
                Ok::<_, String>((status, bytes))
            };
            match tokio::time::timeout(CALL_TIMEOUT, fut).await {
                Ok(Ok((status, bytes))) => {
                    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    if status.is_success() {
                        self.next.store(at, Ordering::Relaxed);
                        return Ok(v);
                    }
                    let msg = v["message"]
                        .as_str()
                        .or(v["error"].as_str())
                        .unwrap_or("")
                        .to_owned();
                    // A member without a leader (cut off from its peers)
                    // cannot answer: another member may.
                    if status.is_server_error() {
                        last = format!("{ep}: {status} {msg}");
                        continue;
                    }
                    return Err(EtcdError::Refused(format!("{status} {msg}")));
                }
                Ok(Err(e)) => last = format!("{ep}: {e}"),
                Err(_) => last = format!("{ep}: no answer in {CALL_TIMEOUT:?}"),
            }
        }
        Err(EtcdError::Unreachable(last))
    }

    /// Values under `prefix`, and the store revision they were read at.
    pub async fn range_prefix(&self, prefix: &[u8]) -> EtcdResult<(Vec<Kv>, i64)> {
        let v = self
            .call(
                "/v3/kv/range",
                json!({ "key": b64(prefix), "range_end": b64(&prefix_end(prefix)) }),
            )
            .await?;
        let kvs = v["kvs"]
            .as_array()
            .map(|a| a.iter().map(kv_of).collect())
            .unwrap_or_default();
        Ok((kvs, num(&v["header"]["revision"])))
    }

    /// Puts a value, bound to `lease` when not 0; returns the revision.
    pub async fn put(&self, key: &[u8], value: &[u8], lease: i64) -> EtcdResult<i64> {
        let mut body = json!({ "key": b64(key), "value": b64(value) });
        if lease != 0 {
            body["lease"] = json!(lease.to_string());
        }
        let v = self.call("/v3/kv/put", body).await?;
        Ok(num(&v["header"]["revision"]))
    }

    /// Deletes `key` if it was created at `create_revision` (ours, not a
    /// later holder's).
    pub async fn delete_if_created(&self, key: &[u8], create_revision: i64) -> EtcdResult<bool> {
        let v = self
            .call(
                "/v3/kv/txn",
                json!({
                    "compare": [{ "key": b64(key), "target": "CREATE", "result": "EQUAL",
                                  "create_revision": create_revision.to_string() }],
                    "success": [{ "request_delete_range": { "key": b64(key) } }],
                }),
            )
            .await?;
        Ok(v["succeeded"].as_bool().unwrap_or(false))
    }

    /// Creates `key` unless it exists. `Ok(Ok(revision))` when created,
    /// `Ok(Err(existing))` when it was there.
    pub async fn create(&self, key: &[u8], value: &[u8], lease: i64) -> EtcdResult<Result<i64, Kv>> {
        let mut put = json!({ "key": b64(key), "value": b64(value) });
        if lease != 0 {
            put["lease"] = json!(lease.to_string());
        }
        let v = self
            .call(
                "/v3/kv/txn",
                json!({
                    "compare": [{ "key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0" }],
                    "success": [{ "request_put": put }],
                    "failure": [{ "request_range": { "key": b64(key) } }],
                }),
            )
            .await?;
        if v["succeeded"].as_bool().unwrap_or(false) {
            return Ok(Ok(num(&v["header"]["revision"])));
        }
        let existing = v["responses"][0]["response_range"]["kvs"][0].clone();
        if existing.is_null() {
            return Err(EtcdError::Refused("transaction failed without a value".into()));
        }
        Ok(Err(kv_of(&existing)))
    }

    /// A lease of `ttl` seconds; returns its id.
    pub async fn grant(&self, ttl: u64) -> EtcdResult<i64> {
        let v = self
            .call("/v3/lease/grant", json!({ "TTL": ttl.to_string() }))
            .await?;
        match num(&v["ID"]) {
            0 => Err(EtcdError::Refused("no lease granted".into())),
            id => Ok(id),
        }
    }

    /// Renews a lease; false when it has expired.
    pub async fn keep_alive(&self, lease: i64) -> EtcdResult<bool> {
        let v = self
            .call("/v3/lease/keepalive", json!({ "ID": lease.to_string() }))
            .await?;
        Ok(num(&v["result"]["TTL"]) > 0)
    }

    pub async fn revoke(&self, lease: i64) -> EtcdResult<()> {
        self.call("/v3/lease/revoke", json!({ "ID": lease.to_string() }))
            .await?;
        Ok(())
    }

    /// Watches keys under `prefix` from `start_revision`, calling `each`
    /// with every batch of events, until the stream ends, fails, or sends
    /// nothing for `silence` (the caller reconnects, to the next endpoint).
    pub async fn watch(
        &self,
        prefix: &[u8],
        start_revision: i64,
        silence: Duration,
        mut each: impl FnMut(Vec<Event>),
    ) -> EtcdResult<()> {
        let ep = &self.endpoints[self.next.load(Ordering::Relaxed) % self.endpoints.len()];
        let body = json!({ "create_request": {
            "key": b64(prefix), "range_end": b64(&prefix_end(prefix)),
            "start_revision": start_revision.to_string(), "progress_notify": true } });
        let resp = tokio::time::timeout(
            CALL_TIMEOUT,
            self.http.request(self.request(ep, "/v3/watch", &body)),
        )
        .await
        .map_err(|_| EtcdError::Unreachable(format!("{ep}: no answer")))?
        .map_err(|e| {
            // The next attempt goes to another member.
            self.next.fetch_add(1, Ordering::Relaxed);
            EtcdError::Unreachable(format!("{ep}: {e}"))
        })?;
        let mut body = resp.into_body();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(frame) = tokio::time::timeout(silence, body.frame()).await.map_err(|_| {
            self.next.fetch_add(1, Ordering::Relaxed);
            EtcdError::Unreachable(format!("{ep}: watch went silent"))
        })? {
            let frame = frame.map_err(|e| EtcdError::Unreachable(e.to_string()))?;
            let Ok(data) = frame.into_data() else { continue };
            buf.extend_from_slice(&data);
            while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=end).collect();
                let Ok(v) = serde_json::from_slice::<Value>(&line) else {
                    continue;
                };
                if v["error"].is_object() {
                    return Err(EtcdError::Refused(v["error"].to_string()));
                }
                let events: Vec<Event> = v["result"]["events"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|e| {
                                let kv = kv_of(&e["kv"]);
                                if e["type"].as_str() == Some("DELETE") {
                                    Event::Delete(kv.key)
                                } else {
                                    Event::Put(kv)
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if v["result"]["canceled"].as_bool() == Some(true) {
                    return Err(EtcdError::Refused("watch canceled".into()));
                }
                tracing::trace!(events = events.len(), "watch batch");
                each(events);
            }
        }
        Err(EtcdError::Unreachable("watch stream ended".into()))
    }
}
