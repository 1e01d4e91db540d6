//! The S3 API of a real objd, driven by the Rust AWS SDK as applications
//! drive it.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, Delete, ObjectIdentifier};
use strata_tests::{
    Server, bucket_names, err_code as code, err_status as status, get_object, pattern, put_object, s3_client,
    s3_client_with, upload_parts,
};

async fn get(c: &Client, bucket: &str, key: &str) -> Vec<u8> {
    get_object(c, bucket, key).await.unwrap()
}

async fn put(c: &Client, bucket: &str, key: &str, data: Vec<u8>) {
    put_object(c, bucket, key, data).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_lifecycle_and_errors() {
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("alpha").send().await.unwrap();
    c.head_bucket().bucket("alpha").send().await.unwrap();
    // S3's us-east-1 answers: 200 to creating one's own bucket again,
    // BucketAlreadyOwnedByYou when the request names another region.
    c.create_bucket().bucket("alpha").send().await.unwrap();
    let elsewhere = aws_sdk_s3::types::CreateBucketConfiguration::builder()
        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
        .build();
    let e = c
        .create_bucket()
        .bucket("alpha")
        .create_bucket_configuration(elsewhere)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "BucketAlreadyOwnedByYou");
    assert_eq!(status(&e), 409);
    let e = c.create_bucket().bucket("Not_Valid").send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidBucketName");
    let names = bucket_names(&c).await;
    assert_eq!(names, vec!["alpha"]);
    c.get_bucket_location().bucket("alpha").send().await.unwrap();
    // A new bucket's ACL is the owner's full control; a canned ACL
    // replaces it and reads back (docs/acl.md has the rest).
    let acl = c.get_bucket_acl().bucket("alpha").send().await.unwrap();
    assert_eq!(
        acl.grants()[0].permission(),
        Some(&aws_sdk_s3::types::Permission::FullControl)
    );
    assert_eq!(acl.grants().len(), 1);
    c.put_bucket_acl()
        .bucket("alpha")
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    let acl = c.get_bucket_acl().bucket("alpha").send().await.unwrap();
    let groups: Vec<_> = acl.grants().iter().filter_map(|g| g.grantee()?.uri()).collect();
    assert_eq!(groups, ["http://acs.amazonaws.com/groups/global/AllUsers"]);
    c.put_bucket_acl()
        .bucket("alpha")
        .acl(aws_sdk_s3::types::BucketCannedAcl::Private)
        .send()
        .await
        .unwrap();
    put(&c, "alpha", "k", b"v".to_vec()).await;
    let e = c.delete_bucket().bucket("alpha").send().await.unwrap_err();
    assert_eq!(code(&e), "BucketNotEmpty");
    c.delete_object().bucket("alpha").key("k").send().await.unwrap();
    // Unfinished multipart uploads do not keep a bucket from going (S3
    // aborts them with it).
    let up = c
        .create_multipart_upload()
        .bucket("alpha")
        .key("unfinished")
        .send()
        .await
        .unwrap();
    c.upload_part()
        .bucket("alpha")
        .key("unfinished")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .body(aws_sdk_s3::primitives::ByteStream::from(vec![7u8; 300_000]))
        .send()
        .await
        .unwrap();
    c.delete_bucket().bucket("alpha").send().await.unwrap();
    let e = c.head_bucket().bucket("alpha").send().await.unwrap_err();
    assert_eq!(status(&e), 404);
    c.create_bucket().bucket("alpha").send().await.unwrap();
    let ups = c.list_multipart_uploads().bucket("alpha").send().await.unwrap();
    assert!(ups.uploads().is_empty(), "the aborted upload came back");
    assert!(
        strata_tests::files_below(&s.drives[0].join("data")).is_empty(),
        "the upload's parts are gone"
    );
    c.delete_bucket().bucket("alpha").send().await.unwrap();
    let e = c.get_object().bucket("alpha").key("k").send().await.unwrap_err();
    assert_eq!(code(&e), "NoSuchBucket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_data_not_paths() {
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("keys").send().await.unwrap();
    let long = "k".repeat(1024);
    let keys = [
        "../../etc/passwd",
        "..",
        "a//b",
        "dir/",
        "/leading",
        "ünïcödé/ключ/鍵",
        "with space+plus&amp=%2F",
        long.as_str(),
    ];
    for (i, k) in keys.iter().enumerate() {
        put(&c, "keys", k, pattern(1000 + i, i as u64)).await;
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(get(&c, "keys", k).await, pattern(1000 + i, i as u64), "{k}");
    }
    let listed: Vec<String> = c
        .list_objects_v2()
        .bucket("keys")
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    let mut expect: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    expect.sort();
    assert_eq!(listed, expect);
    // Nothing was written outside the drive directories, and inside them
    // only the server's own layout exists.
    for entry in std::fs::read_dir(s.root.path()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(name.starts_with('d'), "unexpected {name} next to the drives");
    }
    for d in &s.drives {
        let mut names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec!["data", "format.json", "index.redb"]);
    }
    let e = c
        .put_object()
        .bucket("keys")
        .key("k".repeat(1025))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(code(&e.unwrap_err()), "KeyTooLongError");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_ranges_and_conditional_errors() {
    let s = Server::start(6, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("meta").send().await.unwrap();
    let data = pattern(3 * 1024 * 1024 + 17, 7);
    c.put_object()
        .bucket("meta")
        .key("obj")
        .body(ByteStream::from(data.clone()))
        .content_type("application/x-test")
        .cache_control("max-age=60")
        .content_disposition("attachment")
        .metadata("mode", "33188")
        .metadata("owner", "alice")
        .send()
        .await
        .unwrap();
    let h = c.head_object().bucket("meta").key("obj").send().await.unwrap();
    assert_eq!(h.content_length(), Some(data.len() as i64));
    assert_eq!(h.content_type(), Some("application/x-test"));
    assert_eq!(h.cache_control(), Some("max-age=60"));
    assert_eq!(h.content_disposition(), Some("attachment"));
    let m = h.metadata().unwrap();
    assert_eq!(m.get("mode").map(String::as_str), Some("33188"));
    assert_eq!(m.get("owner").map(String::as_str), Some("alice"));
    let md5 = {
        use md5::Digest;
        hex_lower(&md5::Md5::digest(&data))
    };
    assert_eq!(h.e_tag(), Some(format!("\"{md5}\"").as_str()));
    for (range, a, b) in [
        ("bytes=0-0", 0usize, 1usize),
        ("bytes=1048575-1048577", 1_048_575, 1_048_578),
        ("bytes=3145000-", 3_145_000, data.len()),
        ("bytes=-100", data.len() - 100, data.len()),
        ("bytes=100-99999999", 100, data.len()),
    ] {
        let o = c
            .get_object()
            .bucket("meta")
            .key("obj")
            .range(range)
            .send()
            .await
            .unwrap();
        assert_eq!(
            o.content_range(),
            Some(format!("bytes {}-{}/{}", a, b - 1, data.len()).as_str())
        );
        let got = o.body.collect().await.unwrap().into_bytes();
        assert_eq!(&got[..], &data[a..b], "{range}");
    }
    let e = c
        .get_object()
        .bucket("meta")
        .key("obj")
        .range(format!("bytes={}-", data.len()))
        .send()
        .await;
    let e = e.unwrap_err();
    assert_eq!(code(&e), "InvalidRange");
    assert_eq!(status(&e), 416);
    let e = c
        .get_object()
        .bucket("meta")
        .key("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "NoSuchKey");
    let e = c
        .put_object()
        .bucket("meta")
        .key("digest")
        .content_md5("AAAAAAAAAAAAAAAAAAAAAA==")
        .body(ByteStream::from_static(b"hello"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "BadDigest");
    let e = c
        .head_object()
        .bucket("meta")
        .key("digest")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), 404);
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_refused() {
    let s = Server::start(4, &[]);
    let good = s3_client(&s.endpoint);
    good.create_bucket().bucket("sec").send().await.unwrap();
    let bad = s3_client_with(&s.endpoint, strata_tests::ACCESS_KEY, "not-the-secret");
    let e = bad.list_objects_v2().bucket("sec").send().await.unwrap_err();
    assert_eq!(code(&e), "SignatureDoesNotMatch");
    assert_eq!(status(&e), 403);
    let unknown = s3_client_with(&s.endpoint, "nobody", "whatever-secret");
    let e = unknown
        .put_object()
        .bucket("sec")
        .key("x")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), 403);
    assert!(
        good.list_objects_v2()
            .bucket("sec")
            .send()
            .await
            .unwrap()
            .contents()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_and_delimiters() {
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("list").send().await.unwrap();
    let mut keys = Vec::new();
    for i in 0..120 {
        keys.push(format!("flat/{i:04}"));
    }
    for d in ["a", "b", "c"] {
        for j in 0..5 {
            keys.push(format!("tree/{d}/{j}"));
        }
    }
    keys.push("tree/file".into());
    let tasks: Vec<_> = keys
        .iter()
        .map(|k| {
            let c = c.clone();
            let k = k.clone();
            tokio::spawn(async move { put(&c, "list", &k, k.as_bytes().to_vec()).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    keys.sort();
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let r = c
            .list_objects_v2()
            .bucket("list")
            .max_keys(25)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        assert!(r.key_count().unwrap() <= 25);
        seen.extend(r.contents().iter().map(|o| o.key().unwrap().to_owned()));
        if !r.is_truncated().unwrap() {
            break;
        }
        token = r.next_continuation_token().map(str::to_owned);
    }
    assert_eq!(seen, keys);
    let r = c
        .list_objects_v2()
        .bucket("list")
        .prefix("tree/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<&str> = r.common_prefixes().iter().filter_map(|p| p.prefix()).collect();
    assert_eq!(prefixes, vec!["tree/a/", "tree/b/", "tree/c/"]);
    let objs: Vec<&str> = r.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(objs, vec!["tree/file"]);
    let r = c
        .list_objects_v2()
        .bucket("list")
        .start_after("flat/0118")
        .max_keys(3)
        .send()
        .await
        .unwrap();
    let objs: Vec<&str> = r.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(objs, vec!["flat/0119", "tree/a/0", "tree/a/1"]);
    // ListObjects (v1) with a marker.
    let r = c
        .list_objects()
        .bucket("list")
        .marker("tree/c/4")
        .send()
        .await
        .unwrap();
    let objs: Vec<&str> = r.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(objs, vec!["tree/file"]);
    assert_eq!(r.is_truncated(), Some(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_end_to_end() {
    let s = Server::start(6, &["--parity", "EC:2"]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("mpu").send().await.unwrap();
    let up = c
        .create_multipart_upload()
        .bucket("mpu")
        .key("big")
        .content_type("video/x")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_owned();
    let parts = [pattern(5 << 20, 1), pattern(5 << 20, 2), pattern(777, 3)];
    let done = upload_parts(&c, "mpu", "big", &id, &parts).await;
    let lp = c
        .list_parts()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(lp.parts().len(), 3);
    let ups = c.list_multipart_uploads().bucket("mpu").send().await.unwrap();
    assert_eq!(ups.uploads().len(), 1);
    // A too-small middle part is refused.
    let e = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(done[2].clone())
                .parts(done[0].clone())
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidPartOrder");
    let r = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done)).build())
        .send()
        .await
        .unwrap();
    assert!(r.e_tag().unwrap().ends_with("-3\""));
    let got = get(&c, "mpu", "big").await;
    assert_eq!(got, parts.concat());
    let h = c.head_object().bucket("mpu").key("big").send().await.unwrap();
    assert_eq!(h.content_type(), Some("video/x"));
    // Ranges across part boundaries.
    let o = c
        .get_object()
        .bucket("mpu")
        .key("big")
        .range("bytes=5242000-5243000")
        .send()
        .await
        .unwrap();
    let b = o.body.collect().await.unwrap().into_bytes();
    assert_eq!(&b[..], &parts.concat()[5_242_000..5_243_001]);
    // Abort removes the upload.
    let up = c
        .create_multipart_upload()
        .bucket("mpu")
        .key("gone")
        .send()
        .await
        .unwrap();
    let id2 = up.upload_id().unwrap();
    c.abort_multipart_upload()
        .bucket("mpu")
        .key("gone")
        .upload_id(id2)
        .send()
        .await
        .unwrap();
    let e = c
        .list_parts()
        .bucket("mpu")
        .key("gone")
        .upload_id(id2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "NoSuchUpload");
    assert!(
        c.list_multipart_uploads()
            .bucket("mpu")
            .send()
            .await
            .unwrap()
            .uploads()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_objects_in_batches() {
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("del").send().await.unwrap();
    for i in 0..10 {
        put(&c, "del", &format!("k{i}"), vec![i as u8; 10]).await;
    }
    let ids: Vec<ObjectIdentifier> = (0..12)
        .map(|i| ObjectIdentifier::builder().key(format!("k{i}")).build().unwrap())
        .collect();
    let r = c
        .delete_objects()
        .bucket("del")
        .delete(Delete::builder().set_objects(Some(ids)).build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.deleted().len(), 12, "deleting a missing key succeeds in S3");
    assert!(r.errors().is_empty());
    assert!(
        c.list_objects_v2()
            .bucket("del")
            .send()
            .await
            .unwrap()
            .contents()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_urls_work_with_curl() {
    use aws_sdk_s3::presigning::PresigningConfig;
    use std::time::Duration;
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("pre").send().await.unwrap();
    let cfg = PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();
    let put_url = c
        .put_object()
        .bucket("pre")
        .key("shared.txt")
        .presigned(cfg.clone())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.txt");
    std::fs::write(&file, b"shared through a presigned URL").unwrap();
    let out = std::process::Command::new("curl")
        .args(["-sS", "-f", "-X", "PUT", "--upload-file"])
        .arg(&file)
        .arg(put_url.uri())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let get_url = c
        .get_object()
        .bucket("pre")
        .key("shared.txt")
        .presigned(cfg)
        .await
        .unwrap();
    let out = std::process::Command::new("curl")
        .args(["-sS", "-f"])
        .arg(get_url.uri())
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"shared through a presigned URL");
    // Tampering with the URL breaks the signature.
    let tampered = get_url.uri().replace("shared.txt", "other.txt");
    let out = std::process::Command::new("curl")
        .args(["-sS", "-w", "%{http_code}"])
        .arg(&tampered)
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains("SignatureDoesNotMatch") && body.ends_with("403"),
        "{body}"
    );
    // Unsigned requests are refused.
    let out = std::process::Command::new("curl")
        .args(["-sS", "-w", "%{http_code}"])
        .arg(format!("{}/pre/shared.txt", s.endpoint))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("403"));
}

/// One hand-made, SigV4-signed request: what is signed and what is sent
/// may differ, to produce the protocol errors clients can cause.
#[derive(Clone)]
struct RawRequest {
    method: &'static str,
    path: &'static str,
    query: Vec<(&'static str, &'static str)>,
    headers: Vec<(&'static str, String)>,
    /// The body the signature covers.
    signed: Vec<u8>,
    /// The bytes actually written after the headers.
    sent: Vec<u8>,
    when: std::time::SystemTime,
}

impl RawRequest {
    fn put(path: &'static str, body: &[u8]) -> Self {
        Self {
            method: "PUT",
            path,
            query: vec![],
            headers: vec![("content-length", body.len().to_string())],
            signed: body.to_vec(),
            sent: body.to_vec(),
            when: std::time::SystemTime::now(),
        }
    }

    /// Sends the request on a fresh connection (closing the write side
    /// when done) and returns the status and the whole response.
    async fn send(self, endpoint: &str) -> (u16, String) {
        let host = endpoint.trim_start_matches("http://").to_owned();
        tokio::task::spawn_blocking(move || self.send_blocking(&host))
            .await
            .unwrap()
    }

    fn send_blocking(self, host: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let q: Vec<(String, String)> = self
            .query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        use strata_s3client::sigv4;
        let signer = sigv4::Signer::new(strata_tests::ACCESS_KEY, strata_tests::SECRET_KEY, "us-east-1");
        let auth = signer.sign(
            self.method,
            host,
            self.path,
            &q,
            &sigv4::payload_hash(&self.signed),
            self.when,
        );
        let qs = self
            .query
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    (*k).to_owned()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect::<Vec<_>>()
            .join("&");
        let target = if qs.is_empty() {
            self.path.to_owned()
        } else {
            format!("{}?{qs}", self.path)
        };
        let mut req = format!(
            "{} {target} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n",
            self.method
        );
        for (k, v) in auth.iter().chain(self.headers.iter()) {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let mut s = std::net::TcpStream::connect(host).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        s.write_all(req.as_bytes()).unwrap();
        // The server may answer and close before reading all of it.
        let _ = s.write_all(&self.sent);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, text)
    }
}

impl RawRequest {
    /// Sends the request and checks the status and a piece of the answer.
    async fn expect(self, endpoint: &str, status: u16, needle: &str) {
        let (st, body) = self.send(endpoint).await;
        assert_eq!(st, status, "{}", head(&body));
        assert!(body.contains(needle), "{}", head(&body));
    }
}

fn head(s: &str) -> &str {
    &s[..s.len().min(400)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_get_s3_codes_and_change_nothing() {
    let s = Server::start(4, &["--idle-timeout", "1"]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("edge").send().await.unwrap();
    // A well-formed request works, so the failures below are the point.
    let (st, body) = RawRequest::put("/edge/ok", b"ok").send(&s.endpoint).await;
    assert_eq!(st, 200, "{}", head(&body));
    // Clock skew beyond 15 minutes.
    let skewed = RawRequest {
        when: std::time::SystemTime::now() - std::time::Duration::from_secs(20 * 60),
        ..RawRequest::put("/edge/skew", b"ok")
    };
    skewed
        .expect(&s.endpoint, 403, "<Code>RequestTimeTooSkewed</Code>")
        .await;
    // A body without Content-Length (plain chunked transfer encoding).
    let chunked = RawRequest {
        headers: vec![("transfer-encoding", "chunked".into())],
        sent: b"2\r\nok\r\n0\r\n\r\n".to_vec(),
        ..RawRequest::put("/edge/nolength", b"ok")
    };
    chunked
        .expect(&s.endpoint, 411, "<Code>MissingContentLength</Code>")
        .await;
    // A client that stops sending its body is cut off after the idle time.
    let stalled = RawRequest {
        sent: vec![7u8; 10],
        ..RawRequest::put("/edge/stalled", &[7u8; 100])
    };
    stalled
        .expect(&s.endpoint, 400, "<Code>RequestTimeout</Code>")
        .await;
    // An XML body over the limit is refused before it is read.
    let huge = format!(
        "<Delete>{}</Delete>",
        "<Object><Key>k</Key></Object>".repeat(200_000)
    )
    .into_bytes();
    let delete = RawRequest {
        method: "POST",
        path: "/edge",
        query: vec![("delete", "")],
        ..RawRequest::put("/edge", &huge)
    };
    delete.expect(&s.endpoint, 400, "MaxMessageLengthExceeded").await;
    // Large object bodies are not documents, whatever their query says.
    let big = vec![1u8; 5 << 20];
    let put = RawRequest {
        query: vec![("x-id", "PutObject")],
        ..RawRequest::put("/edge/big", &big)
    };
    let (st, body) = put.send(&s.endpoint).await;
    assert_eq!(st, 200, "{}", head(&body));
    // Nothing but the good objects was stored.
    let keys: Vec<String> = c
        .list_objects_v2()
        .bucket("edge")
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert_eq!(keys, vec!["big", "ok"]);
}
