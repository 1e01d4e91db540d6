//! A cluster of real objd processes, one per network namespace: requests
//! through every node, a node killed under load and healed on return, a
//! node cut off by a partition while both sides write the same keys, a
//! lost drive with a lost node at once, and TLS between the nodes with
//! certificates rotated under them.

use aws_sdk_s3::types::CompletedMultipartUpload;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strata_tests::certs::{TestCa, served_serial};
use strata_tests::cluster::Cluster;
use strata_tests::{
    bucket_names, files_below, get_object as get, pattern, put_object as put, s3_client, upload_parts,
};

async fn list_keys(c: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .list_objects_v2()
            .bucket(bucket)
            .max_keys(7)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return keys;
        }
    }
}

async fn multipart(c: &aws_sdk_s3::Client, bucket: &str, key: &str, parts: &[Vec<u8>]) {
    let id = c
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let done = upload_parts(c, bucket, key, &id, parts).await;
    c.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done)).build())
        .send()
        .await
        .unwrap();
}

/// Shard files on a node's drives.
fn shard_files(cl: &Cluster, n: usize) -> usize {
    cl.drives(n)
        .iter()
        .map(|d| files_below(&d.join("data")).len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_serves_every_request_over_the_drives_of_all_nodes() {
    let cl = Cluster::start(4, 2, &["--scanner-interval", "0"]);
    let clients: Vec<_> = (1..=4).map(|n| s3_client(&cl.endpoint(n))).collect();
    clients[0].create_bucket().bucket("shared").send().await.unwrap();
    // Every node knows the bucket at once, and lists it.
    for c in &clients {
        assert_eq!(bucket_names(c).await, vec!["shared"]);
    }
    let mut expect: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (i, c) in clients.iter().enumerate() {
        for (j, size) in [0usize, 100, 200_000, 3 << 20].into_iter().enumerate() {
            let key = format!("node{}/obj-{j}", i + 1);
            let data = pattern(size, (i * 10 + j) as u64);
            put(c, "shared", &key, data.clone()).await.unwrap();
            expect.insert(key, data);
        }
        let parts = vec![pattern(5 << 20, i as u64 + 100), pattern(1234, i as u64 + 200)];
        let key = format!("node{}/multipart", i + 1);
        multipart(c, "shared", &key, &parts).await;
        expect.insert(key, parts.concat());
    }
    // Byte-exact from every node; the same listing from every node.
    for (n, c) in clients.iter().enumerate() {
        for (k, v) in &expect {
            let got = get(c, "shared", k).await.unwrap();
            assert!(got == *v, "node {} returned other bytes for {k}", n + 1);
        }
        assert_eq!(
            list_keys(c, "shared").await,
            expect.keys().cloned().collect::<Vec<_>>()
        );
    }
    // The shards are spread: every node holds some.
    for n in 1..=4 {
        assert!(shard_files(&cl, n) > 0, "node {n} holds no shard");
    }
    // A node started with other arguments is refused with one line.
    let mut cl = cl;
    cl.kill(2);
    let mut swapped = cl.args().to_vec();
    swapped.swap(2, 3);
    let err = cl.refused_start(2, &swapped);
    assert!(
        err.lines().count() == 1 && err.contains("same drive arguments"),
        "{err}"
    );
    cl.restart(2);
    // Deletes through one node are seen by the others.
    clients[2]
        .delete_object()
        .bucket("shared")
        .key("node1/obj-1")
        .send()
        .await
        .unwrap();
    let e = clients[3]
        .get_object()
        .bucket("shared")
        .key("node1/obj-1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(strata_tests::client::err_code(&e), "NoSuchKey");
    node_endpoint_refuses_what_it_should(&cl);
}

/// POSTs a node call to node 1; returns the status and the error header.
fn node_call(cl: &Cluster, op: &str, args: &str, auth: Option<String>) -> (u16, String) {
    node_call_with(cl, &[], op, args, auth)
}

/// [`node_call`] with more curl arguments (TLS settings).
fn node_call_with(cl: &Cluster, curl: &[&str], op: &str, args: &str, auth: Option<String>) -> (u16, String) {
    let url = format!("{}/_strata/node/v1/{op}", cl.endpoint(1));
    let mut cmd = std::process::Command::new("curl");
    cmd.args(curl)
        .args(["-s", "-o", "/dev/null", "-D", "-", "-X", "POST", "-H"])
        .arg(format!("x-strata-args: {args}"));
    if let Some(a) = auth {
        cmd.arg("-H").arg(format!("x-strata-node-auth: {a}"));
    }
    let out = cmd.arg(&url).output().expect("curl");
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let error = head
        .lines()
        .find_map(|l| l.strip_prefix("x-strata-error: "))
        .unwrap_or("")
        .trim()
        .to_owned();
    (status, error)
}

/// The node endpoint (served on the S3 port) takes only calls signed with
/// the cluster's key, for drives the node serves, with well-formed
/// arguments.
fn node_endpoint_refuses_what_it_should(cl: &Cluster) {
    use objd::drive::rpc::{NodeKey, args};
    let ours = cl.drives(1)[0].display().to_string();
    let good = args(|w| w.str(&ours));
    let key = NodeKey::derive(strata_tests::SECRET_KEY);
    // Unsigned, or signed with another key: refused before anything else.
    assert_eq!(node_call(cl, "read-format", &good, None).0, 403);
    let wrong = NodeKey::derive("another-secret-key").sign("read-format", &good);
    assert_eq!(node_call(cl, "read-format", &good, Some(wrong)).0, 403);
    // A signature for other arguments does not cover these.
    let other = args(|w| w.str("/elsewhere"));
    assert_eq!(
        node_call(cl, "read-format", &good, Some(key.sign("read-format", &other))).0,
        403
    );
    // Signed: a drive this node does not serve, and garbage arguments, are
    // drive errors; its own drive answers.
    let (status, error) = node_call(cl, "read-format", &other, Some(key.sign("read-format", &other)));
    assert_eq!((status, error.as_str()), (409, "6"));
    let (status, error) = node_call(cl, "get", "zz", Some(key.sign("get", "zz")));
    assert_eq!((status, error.as_str()), (409, "8"));
    let truncated = args(|w| w.str(&ours)) + "01";
    let (status, _) = node_call(cl, "get", &truncated, Some(key.sign("get", &truncated)));
    assert_eq!(status, 409);
    assert_eq!(
        node_call(cl, "read-format", &good, Some(key.sign("read-format", &good))).0,
        200
    );
    assert_eq!(
        node_call(cl, "no-such-call", &good, Some(key.sign("no-such-call", &good))).0,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_costs_no_data_and_is_healed_when_it_returns() {
    let mut cl = Cluster::start(4, 2, &["--scanner-interval", "0"]);
    let clients: Vec<_> = (1..=4).map(|n| s3_client(&cl.endpoint(n))).collect();
    clients[0].create_bucket().bucket("load").send().await.unwrap();
    let acked: Arc<Mutex<BTreeMap<String, Vec<u8>>>> = Arc::default();
    let stats: Arc<Mutex<(usize, usize)>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Writers through nodes 1, 2 and 4 (node 3 is the one killed).
    let mut tasks = Vec::new();
    for (w, node) in [0usize, 1, 3].into_iter().enumerate() {
        let c = clients[node].clone();
        let (acked, stats, stop) = (Arc::clone(&acked), Arc::clone(&stats), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let key = format!("w{w}/k{i}");
                let size = if i.is_multiple_of(3) { 300_000 } else { 2_000 };
                let data = pattern(size, w as u64 * 1_000_000 + i);
                let ok = tokio::time::timeout(Duration::from_secs(20), put(&c, "load", &key, data.clone()))
                    .await
                    .is_ok_and(|r| r.is_ok());
                let mut s = stats.lock().unwrap();
                s.0 += 1;
                if ok {
                    acked.lock().unwrap().insert(key, data);
                } else {
                    s.1 += 1;
                }
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = *stats.lock().unwrap();
    cl.kill(3);
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = *stats.lock().unwrap();
    // Reads of what was acknowledged, through a surviving node.
    let snapshot = acked.lock().unwrap().clone();
    for (k, v) in snapshot.iter().step_by(snapshot.len() / 40 + 1) {
        assert!(
            get(&clients[1], "load", k).await.unwrap() == *v,
            "{k} while node 3 is down"
        );
    }
    let down = killed.elapsed();
    cl.restart(3);
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let (requests, failures) = (during.0 - before.0, during.1 - before.1);
    println!(
        "while node 3 was down ({:.1} s): {requests} writes, {failures} failed ({:.1} %)",
        down.as_secs_f64(),
        100.0 * failures as f64 / requests.max(1) as f64
    );
    assert!(requests > 0, "no write ran while the node was down");
    // Writes went on: at most the few in flight at the kill failed.
    assert!(
        failures * 10 <= requests,
        "{failures} of {requests} writes failed"
    );
    // Node 3 is healed to full redundancy: with nodes 1 and 2 gone (4 of 8
    // drives, the most EC:4 allows), everything reads from 3 and 4.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending: usize = [1, 2, 4]
            .iter()
            .map(|n| {
                let info: serde_json::Value = serde_json::from_str(&cl.admin(*n, &["info"])).unwrap();
                info["hinted_heals"].as_u64().unwrap() as usize
                    + info["heal_queue"].as_u64().unwrap() as usize
            })
            .sum();
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} heals still pending after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    cl.kill(1);
    cl.kill(2);
    let acked = acked.lock().unwrap().clone();
    for (k, v) in &acked {
        let got = get(&clients[3], "load", k)
            .await
            .unwrap_or_else(|e| panic!("{k}: {e}"));
        assert!(got == *v, "{k} from nodes 3 and 4 alone");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_drive_and_a_lost_node_at_once_lose_nothing_with_sets_spread_over_nodes() {
    // Two sets of 4 drives at EC:2, each set one drive per node.
    let mut cl = Cluster::start(
        4,
        2,
        &["--set-size", "4", "--parity", "EC:2", "--scanner-interval", "0"],
    );
    let c1 = s3_client(&cl.endpoint(1));
    c1.create_bucket().bucket("spread").send().await.unwrap();
    let mut expect = BTreeMap::new();
    for i in 0..30u64 {
        let key = format!("k{i}");
        let data = pattern(if i % 2 == 0 { 1 << 20 } else { 5_000 }, i);
        put(&c1, "spread", &key, data.clone()).await.unwrap();
        expect.insert(key, data);
    }
    // A drive of node 1 dies, and node 2 with both its drives.
    let lost = cl.drives(1)[0].clone();
    std::fs::remove_dir_all(&lost).unwrap();
    cl.kill(2);
    let c4 = s3_client(&cl.endpoint(4));
    for (k, v) in &expect {
        assert!(get(&c4, "spread", k).await.unwrap() == *v, "{k}");
        assert!(get(&c1, "spread", k).await.unwrap() == *v, "{k}");
    }
}

/// One write of a history: its value, when it started, and when it was
/// acknowledged (never, if it failed).
#[derive(Debug, Clone)]
struct Write {
    key: String,
    value: Vec<u8>,
    start: Instant,
    acked: Option<Instant>,
}

/// Whether `value` may be what `key` holds after `history`: it is the
/// value of a write that no acknowledged write started after the end of
/// (a failed write never ends: it may take effect at any time).
fn may_hold(history: &[Write], key: &str, value: &[u8]) -> Result<(), String> {
    let writes: Vec<&Write> = history.iter().filter(|w| w.key == key).collect();
    let Some(w) = writes.iter().find(|w| w.value == value) else {
        return Err(format!(
            "{key} holds {:?}, which nobody wrote",
            String::from_utf8_lossy(value)
        ));
    };
    if let Some(end) = w.acked
        && let Some(later) = writes.iter().find(|o| o.acked.is_some() && o.start > end)
    {
        return Err(format!(
            "{key} holds {:?}, but {:?} was acknowledged later and is lost",
            String::from_utf8_lossy(value),
            String::from_utf8_lossy(&later.value)
        ));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_refuses_writes_and_no_acknowledged_write_is_lost() {
    let cl = Cluster::start(4, 2, &["--scanner-interval", "0", "--drive-timeout", "5"]);
    let clients: Vec<_> = (1..=4).map(|n| s3_client(&cl.endpoint(n))).collect();
    clients[0].create_bucket().bucket("split").send().await.unwrap();
    let keys: Vec<String> = (0..6).map(|i| format!("key{i}")).collect();
    let history: Arc<Mutex<Vec<Write>>> = Arc::default();
    for k in &keys {
        let start = Instant::now();
        put(&clients[0], "split", k, b"start".to_vec()).await.unwrap();
        history.lock().unwrap().push(Write {
            key: k.clone(),
            value: b"start".to_vec(),
            start,
            acked: Some(Instant::now()),
        });
    }
    cl.net.cut(4);
    // Writers through every node at once, all on the same keys: nodes 1-3
    // (the majority side) and the cut-off node 4.
    let mut writers = Vec::new();
    for n in 0..4 {
        let (c, keys, history) = (clients[n].clone(), keys.clone(), Arc::clone(&history));
        writers.push(tokio::spawn(async move {
            let mut acked = 0;
            for i in 0..12 {
                let key = keys[(i * 5 + n * 3) % keys.len()].clone();
                let value = format!("node{}-{i}", n + 1).into_bytes();
                let start = Instant::now();
                let ok = tokio::time::timeout(Duration::from_secs(20), put(&c, "split", &key, value.clone()))
                    .await
                    .is_ok_and(|r| r.is_ok());
                let acked_at = ok.then(Instant::now);
                acked += usize::from(ok);
                history.lock().unwrap().push(Write {
                    key,
                    value,
                    start,
                    acked: acked_at,
                });
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for w in writers {
        acked.push(w.await.unwrap());
    }
    println!("acknowledged writes per node (12 each, node 4 cut off): {acked:?}");
    assert_eq!(acked[3], 0, "the cut-off node acknowledged a write");
    assert!(
        acked[..3].iter().sum::<usize>() > 0,
        "the majority acknowledged nothing: {acked:?}"
    );
    cl.net.join(4);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Every node answers the same, whole value for each key, one that no
    // acknowledged write superseded.
    let history = history.lock().unwrap().clone();
    for k in &keys {
        let mut seen = Vec::new();
        for c in &clients {
            seen.push(get(c, "split", k).await.unwrap());
        }
        assert!(seen.iter().all(|v| *v == seen[0]), "{k}: nodes disagree");
        if let Err(e) = may_hold(&history, k, &seen[0]) {
            panic!("{e}");
        }
    }
    // Two against two (nodes 3 and 4 cut off): no side holds a write
    // quorum (5 of 8), so no side acknowledges a write, and nothing changes.
    let before = get(&clients[0], "split", &keys[0]).await.unwrap();
    cl.net.cut(3);
    cl.net.cut(4);
    for c in [&clients[0], &clients[2]] {
        let r = tokio::time::timeout(
            Duration::from_secs(30),
            put(c, "split", &keys[0], b"split-brain".to_vec()),
        )
        .await;
        assert!(
            !matches!(r, Ok(Ok(()))),
            "a write was acknowledged without a quorum"
        );
    }
    cl.net.join(3);
    cl.net.join(4);
    tokio::time::sleep(Duration::from_secs(3)).await;
    for c in &clients {
        assert_eq!(
            get(c, "split", &keys[0]).await.unwrap(),
            before,
            "a refused write became visible"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_changes_reach_every_node_and_survive_the_etcd_leader_cut_off() {
    let cl = Cluster::start_with(3, 2, 3, &["--scanner-interval", "0"]);
    let clients: Vec<_> = (1..=3).map(|n| s3_client(&cl.endpoint(n))).collect();
    let versioning = |c: &aws_sdk_s3::Client, b: &'static str| {
        let c = c.clone();
        async move {
            c.get_bucket_versioning()
                .bucket(b)
                .send()
                .await
                .unwrap()
                .status()
                .map(|s| s.as_str().to_owned())
        }
    };
    // A change on one node is what every node answers next.
    clients[0].create_bucket().bucket("conf").send().await.unwrap();
    strata_tests::client::set_versioning(
        &clients[1],
        "conf",
        aws_sdk_s3::types::BucketVersioningStatus::Enabled,
    )
    .await;
    for c in &clients {
        assert_eq!(versioning(c, "conf").await.as_deref(), Some("Enabled"));
    }
    // Two nodes create the same bucket at once: exactly one creates it
    // (named with a region, the other is told BucketAlreadyOwnedByYou;
    // without, it would answer 200 as S3's us-east-1 does).
    let create = |c: &aws_sdk_s3::Client| {
        let region = aws_sdk_s3::types::CreateBucketConfiguration::builder()
            .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
            .build();
        c.create_bucket()
            .bucket("race")
            .create_bucket_configuration(region)
            .send()
    };
    let (a, b) = tokio::join!(create(&clients[0]), create(&clients[2]));
    assert_eq!(a.is_ok() as u8 + b.is_ok() as u8, 1, "{a:?} {b:?}");
    // A quota holds across nodes: what one node wrote counts on the others
    // once they read the drives' counters again (every few seconds).
    clients[0].create_bucket().bucket("capped").send().await.unwrap();
    cl.admin(1, &["quota", "capped", "1MiB"]);
    put(&clients[0], "capped", "a", pattern(700 << 10, 1))
        .await
        .unwrap();
    let bytes = |n: usize| {
        let v: serde_json::Value = serde_json::from_str(cl.admin(n, &["usage", "capped"]).trim()).unwrap();
        (v["bytes"].as_u64().unwrap(), v["quota"].as_u64())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while bytes(2) != (700 << 10, Some(1 << 20)) {
        assert!(
            Instant::now() < deadline,
            "node 2 never counted node 1's write: {:?}",
            bytes(2)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let e = clients[1]
        .put_object()
        .bucket("capped")
        .key("b")
        .body(pattern(500 << 10, 2).into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(strata_tests::client::err_code(&e), "QuotaExceeded");
    put(&clients[2], "capped", "c", pattern(200 << 10, 3))
        .await
        .unwrap();
    // The etcd leader is cut off: etcd elects another, and bucket changes
    // and object writes go on.
    let leader = cl.etcd_leader().expect("an etcd leader");
    cl.net.cut(cl.etcd_host(leader));
    strata_tests::client::set_versioning(
        &clients[2],
        "conf",
        aws_sdk_s3::types::BucketVersioningStatus::Suspended,
    )
    .await;
    for c in &clients {
        assert_eq!(versioning(c, "conf").await.as_deref(), Some("Suspended"));
        put(c, "conf", "during", b"x".to_vec()).await.unwrap();
    }
    clients[1]
        .delete_object()
        .bucket("race")
        .key("none")
        .send()
        .await
        .unwrap();
    clients[0].delete_bucket().bucket("race").send().await.unwrap();
    for c in &clients {
        let e = c.head_bucket().bucket("race").send().await.unwrap_err();
        assert_eq!(strata_tests::client::err_status(&e), 404);
    }
    cl.net.join(cl.etcd_host(leader));
}

/// The aws CLI against node `n` of a TLS cluster, trusting the cluster CA.
fn aws(cl: &Cluster, n: usize, ca: &TestCa, args: &[&str]) -> std::process::Output {
    let mut c = std::process::Command::new("aws");
    c.arg("--endpoint-url")
        .arg(cl.endpoint(n))
        .arg("--ca-bundle")
        .arg(ca.ca_file())
        .args(args)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", strata_tests::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", strata_tests::SECRET_KEY);
    c.output().expect("aws CLI (pip awscli)")
}

/// curl arguments trusting `ca` and presenting the certificate in `dir`.
fn client_cert(ca: &str, dir: &std::path::Path) -> Vec<String> {
    let f = |n: &str| dir.join(n).display().to_string();
    vec![
        "--cacert".into(),
        ca.into(),
        "--cert".into(),
        f("public.crt"),
        "--key".into(),
        f("private.key"),
    ]
}

/// Writes an object through node `w` and reads it back through node `r`.
fn round_trip(cl: &Cluster, ca: &TestCa, w: usize, r: usize, key: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    let data = pattern(3 << 20, key.len() as u64);
    std::fs::write(&src, &data).unwrap();
    let to = format!("s3://tls/{key}");
    let put = aws(cl, w, ca, &["s3", "cp", src.to_str().unwrap(), &to]);
    assert!(
        put.status.success(),
        "PUT via node {w}: {}",
        String::from_utf8_lossy(&put.stderr)
    );
    let get = aws(cl, r, ca, &["s3", "cp", &to, dst.to_str().unwrap()]);
    assert!(
        get.status.success(),
        "GET via node {r}: {}",
        String::from_utf8_lossy(&get.stderr)
    );
    assert!(
        std::fs::read(&dst).unwrap() == data,
        "{key} read back through node {r} differs"
    );
}

#[test]
fn nodes_talk_over_mutual_tls_and_take_rotated_certificates() {
    let ca = TestCa::new("Strata cluster CA");
    let mut cl = Cluster::start_tls(2, 2, &ca);
    let mb = aws(&cl, 1, &ca, &["s3", "mb", "s3://tls"]);
    assert!(mb.status.success(), "{}", String::from_utf8_lossy(&mb.stderr));
    round_trip(&cl, &ca, 1, 2, "first");

    // The node endpoint over TLS: a correctly signed call still needs a
    // client certificate of the cluster CA.
    use objd::drive::rpc::{NodeKey, args};
    let ours = cl.drives(1)[0].display().to_string();
    let good = args(|w| w.str(&ours));
    let signed = NodeKey::derive(strata_tests::SECRET_KEY).sign("read-format", &good);
    let cafile = ca.ca_file().display().to_string();
    let (status, _) = node_call_with(
        &cl,
        &["--cacert", &cafile],
        "read-format",
        &good,
        Some(signed.clone()),
    );
    assert_eq!(status, 403, "a node call without a client certificate");
    let mine = cl.certs_dir(2);
    let with_cert = client_cert(&cafile, &mine);
    let with_cert: Vec<&str> = with_cert.iter().map(String::as_str).collect();
    let (status, _) = node_call_with(&cl, &with_cert, "read-format", &good, Some(signed.clone()));
    assert_eq!(status, 200, "a signed node call with a cluster certificate");
    // A certificate of another CA does not get past the handshake.
    let other = TestCa::new("Another CA");
    let stranger = tempfile::tempdir().unwrap();
    other.issue(stranger.path(), "IP:127.0.0.1");
    let foreign = client_cert(&cafile, stranger.path());
    let foreign: Vec<&str> = foreign.iter().map(String::as_str).collect();
    assert_eq!(
        node_call_with(&cl, &foreign, "read-format", &good, Some(signed)).0,
        0
    );

    // Rotation: node 2's certificate is replaced on disk (files renamed
    // into place, as a Secret volume swaps); it serves the new one within
    // a few seconds, and nodes connecting afresh accept it.
    let addr = format!("{}:{}", cl.net.client_addr(2), strata_tests::cluster::PORT);
    let before = served_serial(&addr, "node2", &ca.ca_file()).expect("node 2 serves TLS");
    let staged = tempfile::tempdir().unwrap();
    let serial = ca.issue(
        staged.path(),
        &format!("IP:{},IP:{}", cl.net.addr(2), cl.net.client_addr(2)),
    );
    assert_ne!(serial, before);
    for f in ["private.key", "public.crt"] {
        let tmp = mine.join(format!(".{f}.new"));
        std::fs::copy(staged.path().join(f), &tmp).unwrap();
        std::fs::rename(&tmp, mine.join(f)).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while served_serial(&addr, "node2", &ca.ca_file()).as_deref() != Some(serial.as_str()) {
        assert!(
            Instant::now() < deadline,
            "node 2 still serves its old certificate"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    cl.restart(1);
    round_trip(&cl, &ca, 1, 2, "after-rotation");
    round_trip(&cl, &ca, 2, 1, "other-way");
}
