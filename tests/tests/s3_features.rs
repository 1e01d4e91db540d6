//! S3 features beyond the core object path, driven by the Rust AWS SDK
//! against a real objd: versioning, conditional requests, server-side
//! copies, tagging, response overrides, and refusals of what objd does not
//! implement.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, MetadataDirective, Tag, Tagging,
    TaggingDirective, VersioningConfiguration,
};
use strata_tests::{
    Server, err_code, err_status, get_object, pattern, put_object, s3_client, set_versioning, upload_parts,
};

async fn put_v(c: &Client, bucket: &str, key: &str, body: &[u8]) -> Option<String> {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap()
        .version_id()
        .map(str::to_owned)
}

async fn get_version(c: &Client, bucket: &str, key: &str, version: &str) -> Vec<u8> {
    let o = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .send()
        .await
        .unwrap();
    o.body.collect().await.unwrap().into_bytes().to_vec()
}

/// Every (key, version id, is latest, is delete marker) of a bucket, read
/// in pages of `page` entries through the key and version-id markers.
async fn all_versions(c: &Client, bucket: &str, page: i32) -> Vec<(String, String, bool, bool)> {
    let mut out = Vec::new();
    let (mut km, mut vm): (Option<String>, Option<String>) = (None, None);
    loop {
        let r = c
            .list_object_versions()
            .bucket(bucket)
            .max_keys(page)
            .set_key_marker(km.clone())
            .set_version_id_marker(vm.clone())
            .send()
            .await
            .unwrap();
        let mut entries: Vec<(String, String, bool, bool, i64)> = Vec::new();
        for v in r.versions() {
            entries.push((
                v.key().unwrap().to_owned(),
                v.version_id().unwrap().to_owned(),
                v.is_latest().unwrap(),
                false,
                v.last_modified().unwrap().as_nanos() as i64,
            ));
        }
        for m in r.delete_markers() {
            entries.push((
                m.key().unwrap().to_owned(),
                m.version_id().unwrap().to_owned(),
                m.is_latest().unwrap(),
                true,
                m.last_modified().unwrap().as_nanos() as i64,
            ));
        }
        assert!(entries.len() <= page as usize);
        // Within a page, S3 orders by key, then newest first.
        entries.sort_by(|a, b| a.0.cmp(&b.0).then(b.4.cmp(&a.4)));
        out.extend(entries.into_iter().map(|(k, v, l, d, _)| (k, v, l, d)));
        if !r.is_truncated().unwrap_or(false) {
            return out;
        }
        km = r.next_key_marker().map(str::to_owned);
        vm = r.next_version_id_marker().map(str::to_owned);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versioning_keeps_history_and_restores_it() {
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("ver").send().await.unwrap();
    let st = c.get_bucket_versioning().bucket("ver").send().await.unwrap();
    assert_eq!(st.status(), None);
    // Written before versioning: the null version.
    assert_eq!(put_v(&c, "ver", "doc", b"v0 before versioning").await, None);
    set_versioning(&c, "ver", BucketVersioningStatus::Enabled).await;
    let st = c.get_bucket_versioning().bucket("ver").send().await.unwrap();
    assert_eq!(st.status(), Some(&BucketVersioningStatus::Enabled));
    let v1 = put_v(&c, "ver", "doc", b"v1").await.expect("version id");
    let v2 = put_v(&c, "ver", "doc", b"v2 latest").await.expect("version id");
    assert_ne!(v1, v2);
    put_v(&c, "ver", "other", b"x").await;
    assert_eq!(get_object(&c, "ver", "doc").await.unwrap(), b"v2 latest");
    assert_eq!(get_version(&c, "ver", "doc", &v1).await, b"v1");
    assert_eq!(
        get_version(&c, "ver", "doc", "null").await,
        b"v0 before versioning"
    );
    let h = c.head_object().bucket("ver").key("doc").send().await.unwrap();
    assert_eq!(h.version_id(), Some(v2.as_str()));

    // Delete without a version: a delete marker hides the key.
    let d = c.delete_object().bucket("ver").key("doc").send().await.unwrap();
    assert_eq!(d.delete_marker(), Some(true));
    let marker = d.version_id().expect("marker id").to_owned();
    let e = c.get_object().bucket("ver").key("doc").send().await.unwrap_err();
    assert_eq!(err_code(&e), "NoSuchKey");
    let raw = e.raw_response().unwrap();
    assert_eq!(raw.headers().get("x-amz-delete-marker"), Some("true"));
    let e = c
        .get_object()
        .bucket("ver")
        .key("doc")
        .version_id(&marker)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_status(&e), 405);
    let listed = c.list_objects_v2().bucket("ver").send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, vec!["other"]);

    let full = all_versions(&c, "ver", 1000).await;
    let expect = [
        ("doc".to_owned(), marker.clone(), true, true),
        ("doc".to_owned(), v2.clone(), false, false),
        ("doc".to_owned(), v1.clone(), false, false),
        ("doc".to_owned(), "null".to_owned(), false, false),
    ];
    assert_eq!(full[..4], expect[..]);
    assert_eq!(full.len(), 5);
    assert_eq!(full[4].0, "other");
    // Paging through the markers yields the same sequence.
    for page in [1, 2, 3] {
        assert_eq!(all_versions(&c, "ver", page).await, full, "page size {page}");
    }

    // Removing the marker brings the key back; copying an old version
    // over it restores that content as a new version.
    c.delete_object()
        .bucket("ver")
        .key("doc")
        .version_id(&marker)
        .send()
        .await
        .unwrap();
    assert_eq!(get_object(&c, "ver", "doc").await.unwrap(), b"v2 latest");
    let r = c
        .copy_object()
        .bucket("ver")
        .key("doc")
        .copy_source(format!("ver/doc?versionId={v1}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.copy_source_version_id(), Some(v1.as_str()));
    assert_eq!(get_object(&c, "ver", "doc").await.unwrap(), b"v1");
    // Deleting one version removes exactly that one.
    c.delete_object()
        .bucket("ver")
        .key("doc")
        .version_id(&v2)
        .send()
        .await
        .unwrap();
    let ids: Vec<String> = all_versions(&c, "ver", 1000)
        .await
        .into_iter()
        .filter(|e| e.0 == "doc")
        .map(|e| e.1)
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(!ids.contains(&v2));
    let e = c
        .get_object()
        .bucket("ver")
        .key("doc")
        .version_id("00000000000000000000000000000001")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "NoSuchVersion");

    // Suspended: new writes replace the null version instead of adding.
    set_versioning(&c, "ver", BucketVersioningStatus::Suspended).await;
    put_v(&c, "ver", "doc", b"null again").await;
    put_v(&c, "ver", "doc", b"null once more").await;
    let doc: Vec<_> = all_versions(&c, "ver", 1000)
        .await
        .into_iter()
        .filter(|e| e.0 == "doc")
        .collect();
    assert_eq!(doc.iter().filter(|e| e.1 == "null").count(), 1);
    assert_eq!(doc[0].1, "null");
    assert!(doc[0].2);
    assert_eq!(get_object(&c, "ver", "doc").await.unwrap(), b"null once more");
    assert_eq!(get_version(&c, "ver", "doc", &v1).await, b"v1");
    // A bucket with versions left is not empty.
    let e = c.delete_bucket().bucket("ver").send().await.unwrap_err();
    assert_eq!(err_code(&e), "BucketNotEmpty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_reads_and_writes() {
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("cond").send().await.unwrap();
    let etag = c
        .put_object()
        .bucket("cond")
        .key("k")
        .body(ByteStream::from_static(b"first"))
        .send()
        .await
        .unwrap()
        .e_tag()
        .unwrap()
        .to_owned();
    let get = || c.get_object().bucket("cond").key("k");
    assert!(get().if_match(&etag).send().await.is_ok());
    let e = get().if_match("\"0123\"").send().await.unwrap_err();
    assert_eq!(
        (err_code(&e).as_str(), err_status(&e)),
        ("PreconditionFailed", 412)
    );
    let e = get().if_none_match(&etag).send().await.unwrap_err();
    assert_eq!(err_status(&e), 304);
    let future = DateTime::from_secs(4_000_000_000);
    let past = DateTime::from_secs(1_000_000_000);
    let e = get().if_modified_since(future).send().await.unwrap_err();
    assert_eq!(err_status(&e), 304);
    assert!(get().if_modified_since(past).send().await.is_ok());
    let e = get().if_unmodified_since(past).send().await.unwrap_err();
    assert_eq!(err_status(&e), 412);
    let e = c
        .head_object()
        .bucket("cond")
        .key("k")
        .if_none_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_status(&e), 304);

    // Create-only writes and compare-and-swap.
    let put = |key: &str, body: &'static [u8]| {
        c.put_object()
            .bucket("cond")
            .key(key)
            .body(ByteStream::from_static(body))
    };
    let e = put("k", b"clobber").if_none_match("*").send().await.unwrap_err();
    assert_eq!(err_status(&e), 412);
    assert!(put("new", b"fresh").if_none_match("*").send().await.is_ok());
    let e = put("k", b"stale").if_match("\"0123\"").send().await.unwrap_err();
    assert_eq!(err_status(&e), 412);
    let e = put("absent", b"x").if_match(&etag).send().await.unwrap_err();
    assert_eq!(err_code(&e), "NoSuchKey");
    put("k", b"second").if_match(&etag).send().await.unwrap();
    assert_eq!(get_object(&c, "cond", "k").await.unwrap(), b"second");

    // Of many racing create-only writers exactly one wins.
    let wins = futures::future::join_all((0..8).map(|i| {
        let c = c.clone();
        async move {
            c.put_object()
                .bucket("cond")
                .key("race")
                .body(ByteStream::from(format!("writer {i}").into_bytes()))
                .if_none_match("*")
                .send()
                .await
                .is_ok()
        }
    }))
    .await;
    assert_eq!(wins.iter().filter(|w| **w).count(), 1);

    // A conditional complete that fails leaves the upload in place.
    let up = c
        .create_multipart_upload()
        .bucket("cond")
        .key("k")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let p = c
        .upload_part()
        .bucket("cond")
        .key("k")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from_static(b"part"))
        .send()
        .await
        .unwrap();
    let parts = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .e_tag(p.e_tag().unwrap())
                .build(),
        )
        .build();
    let e = c
        .complete_multipart_upload()
        .bucket("cond")
        .key("k")
        .upload_id(id)
        .multipart_upload(parts.clone())
        .if_none_match("*")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_status(&e), 412);
    assert_eq!(get_object(&c, "cond", "k").await.unwrap(), b"second");
    c.complete_multipart_upload()
        .bucket("cond")
        .key("k")
        .upload_id(id)
        .multipart_upload(parts)
        .send()
        .await
        .unwrap();
    assert_eq!(get_object(&c, "cond", "k").await.unwrap(), b"part");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_keep_or_replace_metadata_and_copy_ranges() {
    let s = Server::start(6, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("src").send().await.unwrap();
    c.create_bucket().bucket("dst").send().await.unwrap();
    let data = pattern(11 * 1024 * 1024 + 5, 3);
    let src_key = "dir/ä b+c%.bin";
    c.put_object()
        .bucket("src")
        .key(src_key)
        .body(ByteStream::from(data.clone()))
        .content_type("application/x-source")
        .metadata("origin", "source")
        .tagging("team=storage&stage=raw")
        .send()
        .await
        .unwrap();
    let source = format!("src/{}", urlencode(src_key));
    // COPY keeps metadata and tags.
    let r = c
        .copy_object()
        .bucket("dst")
        .key("copy")
        .copy_source(&source)
        .send()
        .await
        .unwrap();
    assert!(r.copy_object_result().unwrap().e_tag().is_some());
    assert_eq!(get_object(&c, "dst", "copy").await.unwrap(), data);
    let h = c.head_object().bucket("dst").key("copy").send().await.unwrap();
    assert_eq!(h.content_type(), Some("application/x-source"));
    assert_eq!(h.metadata().unwrap().get("origin").unwrap(), "source");
    let t = c
        .get_object_tagging()
        .bucket("dst")
        .key("copy")
        .send()
        .await
        .unwrap();
    assert_eq!(t.tag_set().len(), 2);
    // REPLACE takes the request's.
    c.copy_object()
        .bucket("dst")
        .key("replaced")
        .copy_source(&source)
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/plain")
        .metadata("origin", "request")
        .tagging_directive(TaggingDirective::Replace)
        .tagging("new=1")
        .send()
        .await
        .unwrap();
    let h = c
        .head_object()
        .bucket("dst")
        .key("replaced")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_type(), Some("text/plain"));
    assert_eq!(h.metadata().unwrap().get("origin").unwrap(), "request");
    let t = c
        .get_object_tagging()
        .bucket("dst")
        .key("replaced")
        .send()
        .await
        .unwrap();
    assert_eq!(t.tag_set().len(), 1);
    // Onto itself: refused unless something changes, then bytes are kept.
    let e = c
        .copy_object()
        .bucket("dst")
        .key("copy")
        .copy_source("dst/copy")
        .send()
        .await
        .unwrap_err();
    assert_eq!((err_code(&e).as_str(), err_status(&e)), ("InvalidRequest", 400));
    c.copy_object()
        .bucket("dst")
        .key("copy")
        .copy_source("dst/copy")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("application/x-changed")
        .send()
        .await
        .unwrap();
    let h = c.head_object().bucket("dst").key("copy").send().await.unwrap();
    assert_eq!(h.content_type(), Some("application/x-changed"));
    assert_eq!(get_object(&c, "dst", "copy").await.unwrap(), data);
    // Missing source and failed source conditions.
    let e = c
        .copy_object()
        .bucket("dst")
        .key("x")
        .copy_source("src/missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!((err_code(&e).as_str(), err_status(&e)), ("NoSuchKey", 404));
    let e = c
        .copy_object()
        .bucket("dst")
        .key("x")
        .copy_source(&source)
        .copy_source_if_match("\"nope\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_status(&e), 412);

    // UploadPartCopy: two ranges of the source, then the tail as a PUT part.
    let up = c
        .create_multipart_upload()
        .bucket("dst")
        .key("assembled")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let ranges = [(0usize, 5 * 1024 * 1024), (5 * 1024 * 1024, 10 * 1024 * 1024 + 3)];
    let mut parts = Vec::new();
    for (n, (a, b)) in ranges.iter().enumerate() {
        let r = c
            .upload_part_copy()
            .bucket("dst")
            .key("assembled")
            .upload_id(id)
            .part_number(n as i32 + 1)
            .copy_source(&source)
            .copy_source_range(format!("bytes={}-{}", a, b - 1))
            .send()
            .await
            .unwrap();
        let etag = r.copy_part_result().unwrap().e_tag().unwrap().to_owned();
        parts.push(
            CompletedPart::builder()
                .part_number(n as i32 + 1)
                .e_tag(etag)
                .build(),
        );
    }
    let e = c
        .upload_part_copy()
        .bucket("dst")
        .key("assembled")
        .upload_id(id)
        .part_number(9)
        .copy_source(&source)
        .copy_source_range(format!("bytes=0-{}", data.len()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_status(&e), 400);
    let tail = b"tail".to_vec();
    let p = c
        .upload_part()
        .bucket("dst")
        .key("assembled")
        .upload_id(id)
        .part_number(3)
        .body(ByteStream::from(tail.clone()))
        .send()
        .await
        .unwrap();
    parts.push(
        CompletedPart::builder()
            .part_number(3)
            .e_tag(p.e_tag().unwrap())
            .build(),
    );
    c.complete_multipart_upload()
        .bucket("dst")
        .key("assembled")
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .unwrap();
    let mut expect = data[..10 * 1024 * 1024 + 3].to_vec();
    expect.extend_from_slice(&tail);
    assert_eq!(get_object(&c, "dst", "assembled").await.unwrap(), expect);
    // GET by part number returns exactly that part.
    let o = c
        .get_object()
        .bucket("dst")
        .key("assembled")
        .part_number(2)
        .send()
        .await
        .unwrap();
    assert_eq!(o.parts_count(), Some(3));
    let got = o.body.collect().await.unwrap().into_bytes();
    assert_eq!(&got[..], &data[5 * 1024 * 1024..10 * 1024 * 1024 + 3]);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagging_overrides_and_refusals() {
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("tags").send().await.unwrap();
    c.put_object()
        .bucket("tags")
        .key("obj")
        .body(ByteStream::from_static(b"tagged"))
        .tagging("a=1&b=two%20words")
        .send()
        .await
        .unwrap();
    let t = c
        .get_object_tagging()
        .bucket("tags")
        .key("obj")
        .send()
        .await
        .unwrap();
    let pairs: Vec<(&str, &str)> = t.tag_set().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(pairs, vec![("a", "1"), ("b", "two words")]);
    let o = c.get_object().bucket("tags").key("obj").send().await.unwrap();
    assert_eq!(o.tag_count(), Some(2));
    c.put_object_tagging()
        .bucket("tags")
        .key("obj")
        .tagging(Tagging::builder().tag_set(tag("only", "this")).build().unwrap())
        .send()
        .await
        .unwrap();
    let t = c
        .get_object_tagging()
        .bucket("tags")
        .key("obj")
        .send()
        .await
        .unwrap();
    assert_eq!(t.tag_set().len(), 1);
    let e = c
        .put_object_tagging()
        .bucket("tags")
        .key("obj")
        .tagging(
            Tagging::builder()
                .tag_set(tag("aws:reserved", "x"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "InvalidTag");
    let e = c
        .put_object_tagging()
        .bucket("tags")
        .key("missing")
        .tagging(Tagging::builder().tag_set(tag("k", "v")).build().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "NoSuchKey");
    c.delete_object_tagging()
        .bucket("tags")
        .key("obj")
        .send()
        .await
        .unwrap();
    let t = c
        .get_object_tagging()
        .bucket("tags")
        .key("obj")
        .send()
        .await
        .unwrap();
    assert!(t.tag_set().is_empty());
    // Tag changes keep the bytes.
    assert_eq!(get_object(&c, "tags", "obj").await.unwrap(), b"tagged");

    let e = c.get_bucket_tagging().bucket("tags").send().await.unwrap_err();
    assert_eq!(err_code(&e), "NoSuchTagSet");
    c.put_bucket_tagging()
        .bucket("tags")
        .tagging(
            Tagging::builder()
                .tag_set(tag("cost-center", "42"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let t = c.get_bucket_tagging().bucket("tags").send().await.unwrap();
    assert_eq!(t.tag_set()[0].value(), "42");
    // Another bucket setting does not undo the tags.
    set_versioning(&c, "tags", BucketVersioningStatus::Enabled).await;
    assert_eq!(
        c.get_bucket_tagging()
            .bucket("tags")
            .send()
            .await
            .unwrap()
            .tag_set()
            .len(),
        1
    );
    c.delete_bucket_tagging().bucket("tags").send().await.unwrap();
    assert!(c.get_bucket_tagging().bucket("tags").send().await.is_err());

    // response-* overrides.
    let o = c
        .get_object()
        .bucket("tags")
        .key("obj")
        .response_content_type("text/x-override")
        .response_content_disposition("attachment; filename=\"x.txt\"")
        .response_cache_control("no-cache")
        .send()
        .await
        .unwrap();
    assert_eq!(o.content_type(), Some("text/x-override"));
    assert_eq!(o.content_disposition(), Some("attachment; filename=\"x.txt\""));
    assert_eq!(o.cache_control(), Some("no-cache"));

    // STANDARD is accepted and reported; other classes and features objd
    // does not have are refused rather than silently ignored.
    c.put_object()
        .bucket("tags")
        .key("std")
        .storage_class(aws_sdk_s3::types::StorageClass::Standard)
        .body(ByteStream::from_static(b"s"))
        .send()
        .await
        .unwrap();
    let l = c
        .list_objects_v2()
        .bucket("tags")
        .prefix("std")
        .send()
        .await
        .unwrap();
    assert_eq!(
        l.contents()[0].storage_class().map(|s| s.as_str()),
        Some("STANDARD")
    );
    let e = c
        .put_object()
        .bucket("tags")
        .key("glacier")
        .storage_class(aws_sdk_s3::types::StorageClass::Glacier)
        .body(ByteStream::from_static(b"g"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "InvalidStorageClass");
    let e = c
        .put_object()
        .bucket("tags")
        .key("sse")
        .sse_customer_algorithm("AES256")
        .sse_customer_key("MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=")
        .sse_customer_key_md5("KYvwGXoFFJ42a2u2GDWhwQ==")
        .body(ByteStream::from_static(b"secret"))
        .send()
        .await
        .unwrap_err();
    // A customer key over plain HTTP is refused, as S3 refuses it.
    assert_eq!((err_code(&e).as_str(), err_status(&e)), ("InvalidRequest", 400));
    assert!(c.head_object().bucket("tags").key("sse").send().await.is_err());
    put_object(&c, "tags", "plain", b"p".to_vec()).await.unwrap();
}

fn b64(d: &[u8]) -> String {
    use base64_simd::STANDARD;
    STANDARD.encode_to_string(d)
}

fn crc32(d: &[u8]) -> Vec<u8> {
    (crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32IsoHdlc, d) as u32)
        .to_be_bytes()
        .to_vec()
}

fn crc64(d: &[u8]) -> Vec<u8> {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, d)
        .to_be_bytes()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksums_are_verified_stored_and_returned() {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ChecksumType, ObjectAttributes};
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("sums").send().await.unwrap();
    let data = pattern(200_000, 9);
    // The SDK computes SHA-256 and sends it; objd checks and keeps it.
    let r = c
        .put_object()
        .bucket("sums")
        .key("sha")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    let sha = {
        use sha2::Digest;
        b64(&sha2::Sha256::digest(&data))
    };
    assert_eq!(r.checksum_sha256(), Some(sha.as_str()));
    let o = c
        .get_object()
        .bucket("sums")
        .key("sha")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(o.checksum_sha256(), Some(sha.as_str()));
    assert_eq!(o.checksum_type(), Some(&ChecksumType::FullObject));
    assert_eq!(o.body.collect().await.unwrap().into_bytes().to_vec(), data);
    let r = c
        .put_object()
        .bucket("sums")
        .key("crc32c")
        .checksum_algorithm(ChecksumAlgorithm::Crc32C)
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    let crc32c = (crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, &data) as u32).to_be_bytes();
    assert_eq!(r.checksum_crc32_c(), Some(b64(&crc32c).as_str()));
    // A checksum that does not match the body is refused; nothing is stored.
    let e = c
        .put_object()
        .bucket("sums")
        .key("bad")
        .checksum_crc32(b64(&[0, 0, 0, 0]))
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap_err();
    assert_eq!((err_code(&e).as_str(), err_status(&e)), ("BadDigest", 400));
    assert!(c.head_object().bucket("sums").key("bad").send().await.is_err());
    // An explicit, correct CRC32 header.
    c.put_object()
        .bucket("sums")
        .key("crc32")
        .checksum_crc32(b64(&crc32(&data)))
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    let h = c
        .head_object()
        .bucket("sums")
        .key("crc32")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(h.checksum_crc32(), Some(b64(&crc32(&data)).as_str()));
    // Ranged reads carry no whole-object checksum.
    let o = c
        .get_object()
        .bucket("sums")
        .key("crc32")
        .range("bytes=0-9")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(o.checksum_crc32(), None);

    // Multipart, composite CRC32: the checksum of the part checksums.
    let part1 = pattern(5 * 1024 * 1024, 1);
    let part2 = pattern(1000, 2);
    let up = c
        .create_multipart_upload()
        .bucket("sums")
        .key("mp-composite")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let mut parts = Vec::new();
    for (n, body) in [(1, &part1), (2, &part2)] {
        let p = c
            .upload_part()
            .bucket("sums")
            .key("mp-composite")
            .upload_id(id)
            .part_number(n)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(p.checksum_crc32(), Some(b64(&crc32(body)).as_str()));
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(p.e_tag().unwrap())
                .checksum_crc32(p.checksum_crc32().unwrap())
                .build(),
        );
    }
    let done = c
        .complete_multipart_upload()
        .bucket("sums")
        .key("mp-composite")
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .unwrap();
    let mut both = crc32(&part1);
    both.extend(crc32(&part2));
    let composite = format!("{}-2", b64(&crc32(&both)));
    assert_eq!(done.checksum_crc32(), Some(composite.as_str()));
    let a = c
        .get_object_attributes()
        .bucket("sums")
        .key("mp-composite")
        .object_attributes(ObjectAttributes::Checksum)
        .object_attributes(ObjectAttributes::ObjectParts)
        .object_attributes(ObjectAttributes::ObjectSize)
        .send()
        .await
        .unwrap();
    assert_eq!(a.object_size(), Some((part1.len() + part2.len()) as i64));
    assert_eq!(
        a.checksum().and_then(|c| c.checksum_crc32()),
        Some(composite.as_str())
    );
    assert_eq!(a.object_parts().and_then(|p| p.total_parts_count()), Some(2));

    // Multipart, full-object CRC64NVME (the default): part CRCs combine to
    // the CRC of the whole, which the client may send to be checked.
    let whole: Vec<u8> = [part1.clone(), part2.clone()].concat();
    for (key, sent, ok) in [
        ("mp-full", b64(&crc64(&whole)), true),
        ("mp-wrong", b64(&[0; 8]), false),
    ] {
        let up = c
            .create_multipart_upload()
            .bucket("sums")
            .key(key)
            .send()
            .await
            .unwrap();
        let id = up.upload_id().unwrap();
        let parts = upload_parts(&c, "sums", key, id, &[part1.clone(), part2.clone()]).await;
        let r = c
            .complete_multipart_upload()
            .bucket("sums")
            .key(key)
            .upload_id(id)
            .checksum_crc64_nvme(sent.clone())
            .checksum_type(ChecksumType::FullObject)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await;
        if ok {
            assert_eq!(r.unwrap().checksum_crc64_nvme(), Some(sent.as_str()));
            let h = c
                .head_object()
                .bucket("sums")
                .key(key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await
                .unwrap();
            assert_eq!(h.checksum_crc64_nvme(), Some(sent.as_str()));
        } else {
            assert_eq!(err_code(&r.unwrap_err()), "BadDigest");
            assert!(c.head_object().bucket("sums").key(key).send().await.is_err());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_lock_protects_versions() {
    use aws_sdk_s3::types::{
        DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockLegalHold,
        ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetention, ObjectLockRetentionMode,
        ObjectLockRule,
    };
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket()
        .bucket("vault")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    let st = c.get_bucket_versioning().bucket("vault").send().await.unwrap();
    assert_eq!(st.status(), Some(&BucketVersioningStatus::Enabled));
    let e = c
        .put_bucket_versioning()
        .bucket("vault")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (err_code(&e).as_str(), err_status(&e)),
        ("InvalidBucketState", 409)
    );

    let in_an_hour = DateTime::from_secs(DateTime::from(std::time::SystemTime::now()).secs() + 3600);
    let put_locked = |key: &'static str, mode: ObjectLockMode| {
        c.put_object()
            .bucket("vault")
            .key(key)
            .object_lock_mode(mode)
            .object_lock_retain_until_date(in_an_hour)
            .body(ByteStream::from_static(b"record"))
            .send()
    };
    let delete_version = |key: &'static str, v: String, bypass: bool| {
        c.delete_object()
            .bucket("vault")
            .key(key)
            .version_id(v)
            .bypass_governance_retention(bypass)
            .send()
    };
    // COMPLIANCE: the version cannot be deleted, nor its retention shortened.
    let v = put_locked("ledger", ObjectLockMode::Compliance)
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned();
    let h = c
        .head_object()
        .bucket("vault")
        .key("ledger")
        .send()
        .await
        .unwrap();
    assert_eq!(h.object_lock_mode(), Some(&ObjectLockMode::Compliance));
    let e = delete_version("ledger", v.clone(), true).await.unwrap_err();
    assert_eq!((err_code(&e).as_str(), err_status(&e)), ("AccessDenied", 403));
    let shorter = ObjectLockRetention::builder()
        .mode(ObjectLockRetentionMode::Compliance)
        .retain_until_date(DateTime::from_secs(in_an_hour.secs() - 1800))
        .build();
    let e = c
        .put_object_retention()
        .bucket("vault")
        .key("ledger")
        .version_id(&v)
        .retention(shorter)
        .bypass_governance_retention(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_status(&e), 403);
    let longer = ObjectLockRetention::builder()
        .mode(ObjectLockRetentionMode::Compliance)
        .retain_until_date(DateTime::from_secs(in_an_hour.secs() + 3600))
        .build();
    c.put_object_retention()
        .bucket("vault")
        .key("ledger")
        .version_id(&v)
        .retention(longer)
        .send()
        .await
        .unwrap();
    let r = c
        .get_object_retention()
        .bucket("vault")
        .key("ledger")
        .version_id(&v)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.retention()
            .and_then(|r| r.retain_until_date())
            .map(|d| d.secs()),
        Some(in_an_hour.secs() + 3600)
    );
    // A delete without a version id only adds a marker; the data stays.
    c.delete_object()
        .bucket("vault")
        .key("ledger")
        .send()
        .await
        .unwrap();
    assert_eq!(get_version(&c, "vault", "ledger", &v).await, b"record");

    // GOVERNANCE: deletable only when the request bypasses governance.
    let g = put_locked("draft", ObjectLockMode::Governance)
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned();
    assert_eq!(
        err_status(&delete_version("draft", g.clone(), false).await.unwrap_err()),
        403
    );
    delete_version("draft", g, true).await.unwrap();

    // Legal hold: no retention, still undeletable until released.
    let l = put_v(&c, "vault", "evidence", b"exhibit").await.unwrap();
    let hold = |on: bool| {
        c.put_object_legal_hold()
            .bucket("vault")
            .key("evidence")
            .version_id(&l)
            .legal_hold(
                ObjectLockLegalHold::builder()
                    .status(if on {
                        ObjectLockLegalHoldStatus::On
                    } else {
                        ObjectLockLegalHoldStatus::Off
                    })
                    .build(),
            )
            .send()
    };
    hold(true).await.unwrap();
    let e = c
        .delete_objects()
        .bucket("vault")
        .delete(
            aws_sdk_s3::types::Delete::builder()
                .objects(
                    aws_sdk_s3::types::ObjectIdentifier::builder()
                        .key("evidence")
                        .version_id(&l)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .bypass_governance_retention(true)
        .send()
        .await
        .unwrap();
    assert_eq!(e.errors()[0].code(), Some("AccessDenied"));
    hold(false).await.unwrap();
    delete_version("evidence", l, false).await.unwrap();

    // A default retention applies to new versions.
    c.put_object_lock_configuration()
        .bucket("vault")
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Governance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let cfg = c
        .get_object_lock_configuration()
        .bucket("vault")
        .send()
        .await
        .unwrap();
    let days = cfg
        .object_lock_configuration()
        .and_then(|c| c.rule())
        .and_then(|r| r.default_retention())
        .and_then(|d| d.days());
    assert_eq!(days, Some(1));
    put_v(&c, "vault", "auto", b"a").await;
    let h = c.head_object().bucket("vault").key("auto").send().await.unwrap();
    assert_eq!(h.object_lock_mode(), Some(&ObjectLockMode::Governance));

    // Buckets without Object Lock refuse lock headers.
    c.create_bucket().bucket("plain").send().await.unwrap();
    let e = c
        .put_object()
        .bucket("plain")
        .key("k")
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(in_an_hour)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "InvalidRequest");
    let e = c
        .get_object_lock_configuration()
        .bucket("plain")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "ObjectLockConfigurationNotFoundError");
}
