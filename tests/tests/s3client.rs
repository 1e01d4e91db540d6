//! Strata's own S3 client (used by `objd admin`, fuse-mount and the CSI
//! driver) against a real objd: signing, odd keys, metadata, ranges,
//! listing pages and error codes.

use bytes::Bytes;
use strata_s3client::{Client, Error, ListFrom, Signer};
use strata_tests::{ACCESS_KEY, SECRET_KEY, Server, pattern, s3_client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_speaks_s3_to_objd() {
    let s = Server::start(4, &[]);
    s3_client(&s.endpoint)
        .create_bucket()
        .bucket("clb")
        .send()
        .await
        .unwrap();
    let c = Client::new(&s.endpoint, Signer::new(ACCESS_KEY, SECRET_KEY, "us-east-1")).unwrap();
    let data = Bytes::from(pattern(300_000, 4));
    let keys = [
        "dir/plain.bin",
        "dir/with space+plus&amp.txt",
        "dir/ünï/кл.txt",
        "top",
    ];
    for k in keys {
        let meta = vec![("mode".to_owned(), "33188".to_owned())];
        let etag = c.put_object("clb", k, data.clone(), &meta).await.unwrap();
        assert_eq!(etag.len(), 32, "{k}");
    }
    let info = c.head_object("clb", keys[1]).await.unwrap();
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(info.meta("mode"), Some("33188"));
    let part = c.get_range("clb", keys[2], 1000, 2000).await.unwrap();
    assert_eq!(&part[..], &data[1000..2000]);
    let tail = c.get_range("clb", keys[2], 299_990, 400_000).await.unwrap();
    assert_eq!(&tail[..], &data[299_990..]);
    // A range of one version only (what fuse-mount's block cache keeps).
    let etag = c.head_object("clb", keys[2]).await.unwrap().etag;
    let of = c
        .get_range_if("clb", keys[2], 65_536, 131_072, Some(&etag))
        .await
        .unwrap();
    assert_eq!(&of[..], &data[65_536..131_072]);
    let e = c
        .get_range_if("clb", keys[2], 0, 10, Some("0123456789abcdef0123456789abcdef"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 412, "{e}");
    assert!(
        c.get_range("clb", keys[2], 300_000, 300_010)
            .await
            .unwrap()
            .is_empty()
    );

    // Listing in pages of one, with a delimiter.
    let mut token = None;
    let mut seen = Vec::new();
    loop {
        let p = c.list("clb", "", Some("/"), token.as_deref(), 1).await.unwrap();
        seen.extend(p.objects.iter().map(|o| o.key.clone()));
        seen.extend(p.prefixes.iter().cloned());
        if !p.truncated {
            break;
        }
        token = p.next_token;
    }
    assert_eq!(seen, vec!["dir/", "top"]);
    let p = c.list("clb", "dir/", None, None, 1000).await.unwrap();
    assert_eq!(p.objects.len(), 3);
    assert!(p.objects.iter().all(|o| o.size == data.len() as u64));

    // Errors keep their S3 codes.
    c.delete_object("clb", "top").await.unwrap();
    let e = c.head_object("clb", "top").await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let e = c.get_range("clb", "top", 0, 1).await.unwrap_err();
    assert!(matches!(&e, Error::S3 { code, .. } if code == "NoSuchKey"), "{e}");
    let wrong = Client::new(
        &s.endpoint,
        Signer::new(ACCESS_KEY, "not-the-secret", "us-east-1"),
    )
    .unwrap();
    let e = wrong.list("clb", "", None, None, 10).await.unwrap_err();
    assert_eq!(e.status(), 403, "{e}");
    assert!(!e.to_string().contains("not-the-secret"));
    // An endpoint nobody listens on is a transport error, soon.
    let gone = Client::new(
        "http://127.0.0.1:9",
        Signer::new(ACCESS_KEY, SECRET_KEY, "us-east-1"),
    )
    .unwrap();
    let e = gone.list("clb", "", None, None, 10).await.unwrap_err();
    assert!(e.is_transient(), "{e}");
}

/// A new user of `s` whose policy is `statements`, and a client signing
/// with its key.
fn user_with(s: &Server, name: &str, statements: serde_json::Value) -> Client {
    let v: serde_json::Value = serde_json::from_str(s.admin(&["user", "add", name]).trim()).unwrap();
    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": statements});
    let f = s.root.path().join(format!("{name}.json"));
    std::fs::write(&f, doc.to_string()).unwrap();
    s.admin(&["policy", "add", name, f.to_str().unwrap()]);
    s.admin(&["policy", "attach", name, "--user", name]);
    let key = |k: &str| v[k].as_str().unwrap().to_owned();
    Client::new(
        &s.endpoint,
        Signer::new(key("access_key"), key("secret_key"), "us-east-1"),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_with_metadata_shows_what_the_caller_may_read() {
    let s = Server::start(4, &[]);
    let root = Client::new(&s.endpoint, Signer::new(ACCESS_KEY, SECRET_KEY, "us-east-1")).unwrap();
    s3_client(&s.endpoint)
        .create_bucket()
        .bucket("mlb")
        .send()
        .await
        .unwrap();
    let meta = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let file = meta(&[("mode", "33152"), ("uid", "1234"), ("mtime", "1700000000.5")]);
    let data = Bytes::from_static(b"twelve bytes");
    root.put_object("mlb", "d/file", data.clone(), &file)
        .await
        .unwrap();
    root.put_object("mlb", "d/plain", data.clone(), &[])
        .await
        .unwrap();
    root.put_object("mlb", "d/sub/deep", data.clone(), &file)
        .await
        .unwrap();
    root.put_object("mlb", "d/pub/open", data.clone(), &meta(&[("k", "v")]))
        .await
        .unwrap();
    for i in 0..5 {
        root.put_object("mlb", &format!("d/many/{i}"), data.clone(), &file)
            .await
            .unwrap();
    }

    // The root sees every key's metadata, as HEAD tells it, folded and paged
    // like ListObjectsV2.
    let p = root
        .list_detailed("mlb", "d/", Some("/"), ListFrom::default(), 1000)
        .await
        .unwrap();
    assert_eq!(p.prefixes, vec!["d/many/", "d/pub/", "d/sub/"]);
    let keys: Vec<&str> = p.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["d/file", "d/plain"]);
    let head = root.head_object("mlb", "d/file").await.unwrap();
    let listed = &p.objects[0];
    assert!(listed.has_metadata);
    assert_eq!(
        (listed.info.size, &listed.info.etag, listed.info.last_modified),
        (head.size, &head.etag, head.last_modified)
    );
    let mut want = head.metadata.clone();
    want.sort();
    let mut got = listed.info.metadata.clone();
    got.sort();
    assert_eq!(got, want);
    assert!(p.objects[1].has_metadata && p.objects[1].info.metadata.is_empty());
    let (mut token, mut seen) = (None, Vec::new());
    loop {
        let p = root
            .list_detailed("mlb", "d/many/", None, ListFrom::token(token.as_deref()), 2)
            .await
            .unwrap();
        assert!(p.objects.len() <= 2);
        seen.extend(
            p.objects
                .into_iter()
                .map(|o| (o.key, o.info.meta("uid").map(str::to_owned))),
        );
        if !p.truncated {
            break;
        }
        token = p.next_token;
    }
    let want: Vec<(String, Option<String>)> = (0..5)
        .map(|i| (format!("d/many/{i}"), Some("1234".to_owned())))
        .collect();
    assert_eq!(seen, want);
    let after = root
        .list_detailed("mlb", "d/many/", None, ListFrom::after("d/many/2"), 1000)
        .await
        .unwrap();
    let keys: Vec<&str> = after.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["d/many/3", "d/many/4"]);

    // A caller that may list but read only `d/pub/`: metadata there only.
    let lister = user_with(
        &s,
        "lister",
        serde_json::json!([
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::mlb"},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::mlb/d/pub/*"}]),
    );
    let p = lister
        .list_detailed("mlb", "d/", None, ListFrom::default(), 1000)
        .await
        .unwrap();
    let shown: Vec<(&str, bool)> = p
        .objects
        .iter()
        .map(|o| (o.key.as_str(), o.has_metadata))
        .filter(|(k, _)| !k.starts_with("d/many/"))
        .collect();
    assert_eq!(
        shown,
        [
            ("d/file", false),
            ("d/plain", false),
            ("d/pub/open", true),
            ("d/sub/deep", false)
        ]
    );
    assert!(
        p.objects
            .iter()
            .filter(|o| !o.has_metadata)
            .all(|o| o.info.metadata.is_empty())
    );
    // A listing condition applies as it does to ListObjectsV2.
    let narrow = user_with(
        &s,
        "narrow",
        serde_json::json!([{"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject"],
            "Resource": ["arn:aws:s3:::mlb", "arn:aws:s3:::mlb/*"],
            "Condition": {"StringLike": {"s3:prefix": "d/pub/*"}}}]),
    );
    let e = narrow
        .list_detailed("mlb", "d/", None, ListFrom::default(), 10)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::S3 { status: 403, code, .. } if code == "AccessDenied"),
        "{e}"
    );
    let p = narrow
        .list_detailed("mlb", "d/pub/x", None, ListFrom::default(), 10)
        .await
        .unwrap();
    assert!(p.objects.is_empty());
    // Other buckets, bad tokens and unsigned requests get S3's answers.
    let e = lister
        .list_detailed("nope", "", None, ListFrom::default(), 10)
        .await
        .unwrap_err();
    assert_eq!(e.status(), 403, "{e}");
    let e = root
        .list_detailed("nope", "", None, ListFrom::default(), 10)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::S3 { code, .. } if code == "NoSuchBucket"),
        "{e}"
    );
    let e = root
        .list_detailed("mlb", "", None, ListFrom::token(Some("not base64!")), 10)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::S3 { status: 400, code, .. } if code == "InvalidArgument"),
        "{e}"
    );
    let anonymous =
        strata_s3client::Fetcher::new(&Default::default(), std::time::Duration::from_secs(10), 1 << 20)
            .unwrap();
    let url = format!("{}/_strata/list/v1?bucket=mlb", s.endpoint);
    let (status, body) = anonymous.get(&url).await.unwrap();
    assert_eq!(status.as_u16(), 403, "{}", String::from_utf8_lossy(&body));
    assert!(!String::from_utf8_lossy(&body).contains("1234"));
}
