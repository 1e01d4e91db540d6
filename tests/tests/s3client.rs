//! Strata's own S3 client (used by `objd admin`, fuse-mount and the CSI
//! driver) against a real objd: signing, odd keys, metadata, ranges,
//! listing pages and error codes.

use bytes::Bytes;
use strata_s3client::{Client, Error, Signer};
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
