//! The audit log through the real binary, with three targets at once: a
//! file, an HTTP webhook and an Elasticsearch `_bulk` endpoint. The
//! webhook and the `_bulk` endpoint are small HTTP receivers in this test:
//! no Elasticsearch or OpenSearch server can be installed on this machine,
//! so the `_bulk` receiver checks the bulk format itself (action and
//! document lines, `create` with index and id) and answers as
//! Elasticsearch does, 409 for an id it already has.
//!
//! Entries carry what an auditor needs and no secret; a webhook stopped
//! mid-run, with objd killed and restarted while it is down, receives every
//! entry in order once it is back; a full queue drops (counted) or, with
//! the `block` policy, holds requests until the target catches up.

use bytes::Bytes;
use http_body_util::BodyExt;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strata_s3client::fetch::Fetcher;
use strata_tests::{ACCESS_KEY, SECRET_KEY, Server, files_below, put_object, s3_client};
use tokio::net::TcpListener;

/// What a receiver was sent.
#[derive(Default)]
struct Received {
    /// Entries in the order they arrived.
    entries: Vec<serde_json::Value>,
    authorization: HashSet<String>,
    /// Every body, as sent.
    raw: Vec<u8>,
    /// Ids `_bulk` has stored.
    ids: HashSet<String>,
    /// Bodies that broke the expected format.
    malformed: Vec<String>,
}

/// An HTTP receiver on a fixed loopback port that can be stopped (its
/// port then refuses connections) and started again.
struct Receiver {
    addr: SocketAddr,
    bulk: bool,
    got: Arc<Mutex<Received>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Its connections, aborted when it stops.
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Receiver {
    async fn start(bulk: bool) -> Receiver {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut r = Receiver {
            addr: l.local_addr().unwrap(),
            bulk,
            got: Arc::default(),
            task: None,
            conns: Arc::default(),
        };
        r.serve(l);
        r
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn serve(&mut self, l: TcpListener) {
        let (got, bulk, conns) = (Arc::clone(&self.got), self.bulk, Arc::clone(&self.conns));
        self.task = Some(tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = l.accept().await else { return };
                let got = Arc::clone(&got);
                let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let got = Arc::clone(&got);
                    async move {
                        let auth = req
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        let path = req.uri().path().to_owned();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let answer = take(&got, &auth, &path, &body, bulk);
                        Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                            answer,
                        )))
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                conns.lock().unwrap().push(tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                }));
            }
        }));
    }

    /// Stops listening and drops open connections.
    fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    async fn resume(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let l = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("rebinding {}: {e}", self.addr),
            }
        };
        self.serve(l);
    }

    fn count(&self) -> usize {
        self.got.lock().unwrap().entries.len()
    }

    async fn wait_for(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.count() < n {
            assert!(
                Instant::now() < deadline,
                "{} of {n} entries arrived",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Records one request to a receiver and makes its answer.
fn take(got: &Mutex<Received>, auth: &str, path: &str, body: &Bytes, bulk: bool) -> Bytes {
    let mut g = got.lock().unwrap();
    g.authorization.insert(auth.to_owned());
    g.raw.extend_from_slice(body);
    if !bulk {
        match serde_json::from_slice::<Vec<serde_json::Value>>(body) {
            Ok(batch) => g.entries.extend(batch),
            Err(e) => g.malformed.push(format!("webhook body: {e}")),
        }
        return Bytes::new();
    }
    if path != "/_bulk" || !body.ends_with(b"\n") {
        g.malformed.push(format!("{path}: not a _bulk body"));
        return Bytes::from_static(br#"{"errors":true,"items":[]}"#);
    }
    let text = String::from_utf8_lossy(body).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let mut items = Vec::new();
    for pair in lines.chunks(2) {
        let (Some(action), Some(doc)) = (pair.first(), pair.get(1)) else {
            g.malformed.push("an action without its document".into());
            continue;
        };
        let action: serde_json::Value = serde_json::from_str(action).unwrap_or_default();
        let create = &action["create"];
        let (Some(index), Some(id)) = (create["_index"].as_str(), create["_id"].as_str()) else {
            g.malformed
                .push(format!("not a create action with index and id: {action}"));
            continue;
        };
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(doc) else {
            g.malformed.push("a document that is not JSON".into());
            continue;
        };
        let day = doc["time"]
            .as_str()
            .unwrap_or("")
            .get(..10)
            .unwrap_or("")
            .replace('-', ".");
        if index != format!("audit-{day}") {
            g.malformed.push(format!("index {index} for an entry of {day}"));
        }
        if g.ids.insert(id.to_owned()) {
            g.entries.push(doc);
            items.push(serde_json::json!({"create": {"_index": index, "_id": id, "status": 201}}));
        } else {
            items.push(serde_json::json!({"create": {"_index": index, "_id": id, "status": 409}}));
        }
    }
    let errors = items.iter().any(|i| i["create"]["status"] != 201);
    Bytes::from(serde_json::json!({"took": 1, "errors": errors, "items": items}).to_string())
}

fn write_secret(dir: &std::path::Path, name: &str, value: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, value).unwrap();
    p.display().to_string()
}

const HOOK_TOKEN: &str = "Bearer hook-token-5f1e0c";
const ES_KEY: &str = "es-api-key-9b2d";

async fn metric(endpoint: &str, series: &str) -> Option<f64> {
    let f = Fetcher::new(&Default::default(), Duration::from_secs(10), 1 << 22).unwrap();
    let (_, body) = f.get(&format!("{endpoint}/_strata/metrics")).await.unwrap();
    strata_tests::metric_sample(&String::from_utf8_lossy(&body), series)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_reach_every_target_whole_in_order_and_without_secrets() {
    let mut hook = Receiver::start(false).await;
    let es = Receiver::start(true).await;
    let secrets = tempfile::tempdir().unwrap();
    let hook_auth = write_secret(secrets.path(), "hook", HOOK_TOKEN);
    let es_key = write_secret(secrets.path(), "es", ES_KEY);
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("audit.log");
    let (hook_url, es_url, log_arg) = (
        format!("{}/hook", hook.url()),
        es.url(),
        log.display().to_string(),
    );
    let args = [
        "--audit-file",
        &log_arg,
        "--audit-webhook",
        &hook_url,
        "--audit-webhook-authorization-file",
        &hook_auth,
        "--audit-elasticsearch",
        &es_url,
        "--audit-elasticsearch-index",
        "audit-%Y.%m.%d",
        "--audit-elasticsearch-api-key-file",
        &es_key,
        "--sse-c-over-http",
        "--metrics-public",
    ];
    let mut s = Server::start(4, &args);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("audited").send().await.unwrap();
    put_object(&c, "audited", "dir/report.txt", vec![b'r'; 1000])
        .await
        .unwrap();
    let got = c
        .get_object()
        .bucket("audited")
        .key("dir/report.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().len(), 1000);
    let missing = c.get_object().bucket("audited").key("nope").send().await;
    assert!(missing.is_err());
    let customer_key = base64_simd::STANDARD.encode_to_string([0x5au8; 32]);
    let key_md5 = base64_simd::STANDARD.encode_to_string(<md5::Md5 as md5::Digest>::digest([0x5au8; 32]));
    c.put_object()
        .bucket("audited")
        .key("sealed")
        .body(vec![1u8; 10].into())
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&customer_key)
        .sse_customer_key_md5(&key_md5)
        .send()
        .await
        .unwrap();
    let bad = strata_tests::s3_client_with(&s.endpoint, ACCESS_KEY, "not-the-secret-key");
    assert!(bad.list_buckets().send().await.is_err());
    hook.wait_for(6).await;
    es.wait_for(6).await;

    let entries = hook.got.lock().unwrap().entries.clone();
    let find = |api: &str| {
        entries
            .iter()
            .find(|e| e["api"] == api && e["status"].as_u64().is_some())
            .unwrap_or_else(|| panic!("no {api} entry in {entries:#?}"))
            .clone()
    };
    let put = find("PutObject");
    assert_eq!(put["bucket"], "audited");
    assert_eq!(put["object"], "dir/report.txt");
    assert_eq!(put["status"], 200);
    assert_eq!(put["bytesReceived"], 1000);
    assert_eq!(put["accessKey"], ACCESS_KEY);
    assert!(put["principal"].as_str().unwrap().ends_with(":root"), "{put}");
    assert!(put["remoteAddress"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(
        put["userAgent"].as_str().unwrap().contains("aws-sdk-rust"),
        "{put}"
    );
    assert_eq!(put["requestHeaders"]["content-length"], "1000");
    assert!(put["responseHeaders"]["etag"].is_string(), "{put}");
    assert!(put["requestHeaders"].get("authorization").is_none());
    assert!(put["timeToFirstByteNs"].as_u64().unwrap() <= put["durationNs"].as_u64().unwrap());
    assert!(put["node"].as_str().unwrap().contains(':'));
    assert!(put["requestId"].as_str().unwrap().len() == 16);
    let get = entries
        .iter()
        .find(|e| e["api"] == "GetObject" && e["status"] == 200)
        .unwrap();
    assert_eq!(get["bytesSent"], 1000);
    let missing = entries
        .iter()
        .find(|e| e["api"] == "GetObject" && e["status"] == 404)
        .unwrap();
    assert_eq!(missing["errorCode"], "NoSuchKey");
    assert_eq!(missing["object"], "nope");
    let refused = entries.iter().find(|e| e["status"] == 403).unwrap();
    assert_eq!(refused["errorCode"], "SignatureDoesNotMatch");
    assert_eq!(refused["accessKey"], ACCESS_KEY);
    assert!(hook.got.lock().unwrap().authorization.contains(HOOK_TOKEN));
    assert!(
        es.got
            .lock()
            .unwrap()
            .authorization
            .contains(&format!("ApiKey {ES_KEY}"))
    );

    // The webhook goes away; objd is killed while it is away, and restarted.
    hook.stop();
    let before = hook.count();
    for i in 0..30 {
        put_object(&c, "audited", &format!("while-down/{i:02}"), vec![b'd'; 10])
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&s.endpoint, r#"strata_audit_target_online{target="webhook"}"#).await != Some(0.0) {
        assert!(Instant::now() < deadline, "the webhook is not seen offline");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Everything the file and Elasticsearch were given is acknowledged
    // before the kill, so that neither is sent a batch twice.
    let deadline = Instant::now() + Duration::from_secs(20);
    for t in ["file", "elasticsearch"] {
        loop {
            let queued = metric(
                &s.endpoint,
                &format!("strata_audit_entries_total{{target=\"{t}\"}}"),
            )
            .await;
            let taken = metric(
                &s.endpoint,
                &format!("strata_audit_delivered_total{{target=\"{t}\"}}"),
            )
            .await;
            if queued.is_some() && queued == taken {
                break;
            }
            assert!(Instant::now() < deadline, "{t} does not catch up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    s.kill();
    s.restart();
    let c = s3_client(&s.endpoint);
    put_object(&c, "audited", "after-restart", vec![b'a'; 10])
        .await
        .unwrap();
    assert_eq!(
        hook.count(),
        before,
        "nothing can arrive while the webhook is down"
    );
    hook.resume().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let wanted: Vec<String> = (0..30)
        .map(|i| format!("while-down/{i:02}"))
        .chain(["after-restart".into()])
        .collect();
    loop {
        let objects: Vec<String> = hook.got.lock().unwrap().entries[before..]
            .iter()
            .filter(|e| e["api"] == "PutObject")
            .filter_map(|e| e["object"].as_str().map(str::to_owned))
            .collect();
        if objects.len() >= wanted.len() {
            assert_eq!(objects, wanted, "every entry, once each, in order");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} entries after the outage",
            objects.len(),
            wanted.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The file has what the webhook has, in the same order, and Elasticsearch
    // stored each entry once.
    es.wait_for(hook.count()).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let file_ids = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let ids: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["requestId"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        if ids.len() >= hook.count() || Instant::now() > deadline {
            break ids;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let hook_ids: Vec<String> = hook
        .got
        .lock()
        .unwrap()
        .entries
        .iter()
        .map(|e| e["requestId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(file_ids, hook_ids);
    let es_got = es.got.lock().unwrap();
    assert!(es_got.malformed.is_empty(), "{:?}", es_got.malformed);
    assert_eq!(es_got.entries.len(), hook_ids.len());
    assert!(hook.got.lock().unwrap().malformed.is_empty());

    // No secret anywhere an entry went: the receivers, the file, the queues.
    let mut everything = hook.got.lock().unwrap().raw.clone();
    everything.extend_from_slice(&es_got.raw);
    for f in files_below(logs.path())
        .into_iter()
        .chain(files_below(&s.drives[0].join("audit-queue")))
    {
        everything.extend(std::fs::read(f).unwrap());
    }
    let text = String::from_utf8_lossy(&everything);
    for secret in [
        SECRET_KEY,
        &customer_key,
        "Signature=",
        "hook-token-5f1e0c",
        ES_KEY,
    ] {
        assert!(!text.contains(secret), "{secret} reached the audit log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_by_default_and_blocks_when_asked() {
    // A webhook port nobody listens on.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", nobody.local_addr().unwrap());
    drop(nobody);
    let s = Server::start(
        4,
        &[
            "--audit-webhook",
            &url,
            "--audit-queue-size",
            "65536",
            "--metrics-public",
        ],
    );
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("dropping").send().await.unwrap();
    for i in 0..200 {
        put_object(&c, "dropping", &format!("k{i}"), vec![1u8; 10])
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let dropped = metric(&s.endpoint, r#"strata_audit_dropped_total{target="webhook"}"#)
            .await
            .unwrap_or(0.0);
        if dropped > 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "nothing dropped by a full queue");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let queued = metric(&s.endpoint, r#"strata_audit_queue_bytes{target="webhook"}"#)
        .await
        .unwrap();
    assert!(queued <= 65536.0, "the queue stays within its bound: {queued}");
    drop(s);

    // With `block`, requests wait and are refused once the wait runs out;
    // when the target is back, the queue drains and requests pass again,
    // with every entry of every served request delivered.
    let mut hook = Receiver::start(false).await;
    hook.stop();
    let url = format!("{}/hook", hook.url());
    let s = Server::start(
        4,
        &[
            "--audit-webhook",
            &url,
            "--audit-queue-size",
            "65536",
            "--audit-queue-full",
            "block",
            "--audit-block-timeout",
            "1",
        ],
    );
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("blocking").send().await.unwrap();
    let mut served = 1;
    let refused = loop {
        match put_object(&c, "blocking", &format!("k{served}"), vec![1u8; 10]).await {
            Ok(_) => served += 1,
            Err(e) => break e,
        }
        assert!(served < 1000, "a 64 KiB queue never filled");
    };
    assert!(
        refused.contains("SlowDown") || refused.contains("503"),
        "{refused}"
    );
    hook.resume().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if put_object(&c, "blocking", "after", vec![1u8; 10]).await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "requests still refused after the target came back"
        );
    }
    hook.wait_for(served + 1).await;
    let got = hook.got.lock().unwrap();
    let puts: Vec<&str> = got
        .entries
        .iter()
        .filter(|e| e["api"] == "PutObject" && e["status"] == 200)
        .filter_map(|e| e["object"].as_str())
        .collect();
    let want: Vec<String> = (1..served)
        .map(|i| format!("k{i}"))
        .chain(["after".into()])
        .collect();
    assert_eq!(puts, want, "every served request's entry, in order");
}
