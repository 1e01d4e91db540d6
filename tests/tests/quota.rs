//! Bucket usage and quotas through the real binary: the admin API's
//! figures follow every kind of change (new objects, overwrites, versions,
//! deletes, multipart, copies), survive a restart, and a quota refuses the
//! write that would pass it, with QuotaExceeded and nothing stored, also
//! under concurrent writers.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::CompletedMultipartUpload;
use strata_tests::{Server, err_code, err_status, files_below, pattern, put_object, s3_client, upload_parts};

/// `(bytes, versions, quota)` as `objd admin usage` reports them.
fn usage(s: &Server, bucket: &str) -> (u64, u64, Option<u64>) {
    let out = s.admin(&["usage", bucket]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("usage is JSON");
    assert_eq!(v["bucket"], bucket);
    (
        v["bytes"].as_u64().expect("bytes"),
        v["versions"].as_u64().expect("versions"),
        v["quota"].as_u64(),
    )
}

const K: usize = 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_follows_every_change_and_quotas_refuse_growth_beyond_them() {
    let mut s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("quota-b").send().await.unwrap();
    assert_eq!(usage(&s, "quota-b"), (0, 0, None));
    for i in 0..3 {
        put_object(&c, "quota-b", &format!("o{i}"), pattern(200 * K, i))
            .await
            .unwrap();
    }
    // An overwrite counts its difference, not both versions.
    put_object(&c, "quota-b", "o0", pattern(250 * K, 9))
        .await
        .unwrap();
    assert_eq!(usage(&s, "quota-b"), (650 * K as u64, 3, None));
    s.admin(&["quota", "quota-b", "1000KiB"]);
    assert_eq!(usage(&s, "quota-b"), (650 * K as u64, 3, Some(1000 * K as u64)));
    // Growth up to the quota passes, beyond it fails and stores nothing.
    put_object(&c, "quota-b", "fits", pattern(300 * K, 3))
        .await
        .unwrap();
    let files_before = s.drives.iter().map(|d| files_below(d).len()).sum::<usize>();
    let e = c
        .put_object()
        .bucket("quota-b")
        .key("too-much")
        .body(ByteStream::from(pattern(200 * K, 4)))
        .send()
        .await
        .unwrap_err();
    assert_eq!((err_status(&e), err_code(&e).as_str()), (403, "QuotaExceeded"));
    assert!(
        c.head_object()
            .bucket("quota-b")
            .key("too-much")
            .send()
            .await
            .is_err()
    );
    let files_after = s.drives.iter().map(|d| files_below(d).len()).sum::<usize>();
    assert_eq!(files_before, files_after, "the refused object left files");
    // A copy and a multipart upload that would pass it fail the same way;
    // the upload stays, to be aborted or completed later.
    let e = c
        .copy_object()
        .bucket("quota-b")
        .key("copied")
        .copy_source("quota-b/o1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "QuotaExceeded");
    let up = c
        .create_multipart_upload()
        .bucket("quota-b")
        .key("mp")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let bodies = [pattern(5 * K * K, 1), pattern(10, 2)];
    let parts = upload_parts(&c, "quota-b", "mp", id, &bodies).await;
    let complete = CompletedMultipartUpload::builder()
        .set_parts(Some(parts.clone()))
        .build();
    let e = c
        .complete_multipart_upload()
        .bucket("quota-b")
        .key("mp")
        .upload_id(id)
        .multipart_upload(complete.clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "QuotaExceeded");
    // Deletes free space; a raised quota lets the upload complete.
    c.delete_object()
        .bucket("quota-b")
        .key("fits")
        .send()
        .await
        .unwrap();
    assert_eq!(usage(&s, "quota-b").0, 650 * K as u64);
    s.admin(&["quota", "quota-b", "8MiB"]);
    c.complete_multipart_upload()
        .bucket("quota-b")
        .key("mp")
        .upload_id(id)
        .multipart_upload(complete)
        .send()
        .await
        .unwrap();
    let expect = (650 * K + 5 * K * K + 10) as u64;
    assert_eq!(usage(&s, "quota-b"), (expect, 4, Some(8 << 20)));
    // The figures and the quota survive a restart (counted again).
    s.restart();
    assert_eq!(usage(&s, "quota-b"), (expect, 4, Some(8 << 20)));
    s.admin(&["quota", "quota-b", "none"]);
    assert_eq!(usage(&s, "quota-b").2, None);
    put_object(&c, "quota-b", "big", pattern(4 * K * K, 7))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_count_and_concurrent_writers_cannot_pass_a_quota() {
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("quota-v").send().await.unwrap();
    strata_tests::set_versioning(&c, "quota-v", aws_sdk_s3::types::BucketVersioningStatus::Enabled).await;
    // Noncurrent versions still take space; a delete marker takes none,
    // deleting a version by id gives its space back.
    put_object(&c, "quota-v", "k", pattern(100 * K, 1)).await.unwrap();
    put_object(&c, "quota-v", "k", pattern(100 * K, 2)).await.unwrap();
    c.delete_object().bucket("quota-v").key("k").send().await.unwrap();
    assert_eq!(usage(&s, "quota-v"), (200 * K as u64, 2, None));
    let versions = c.list_object_versions().bucket("quota-v").send().await.unwrap();
    let oldest = versions
        .versions()
        .last()
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned();
    c.delete_object()
        .bucket("quota-v")
        .key("k")
        .version_id(oldest)
        .send()
        .await
        .unwrap();
    assert_eq!(usage(&s, "quota-v"), (100 * K as u64, 1, None));
    // Eight writers at once against room for five: exactly five land.
    s.admin(&["quota", "quota-v", &(600 * K).to_string()]);
    let writes = (0..8).map(|i| {
        let c = c.clone();
        async move { put_object(&c, "quota-v", &format!("w{i}"), pattern(100 * K, 10 + i)).await }
    });
    let results = futures::future::join_all(writes).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 5, "{results:?}");
    assert!(
        results
            .iter()
            .filter(|r| r.is_err())
            .all(|r| r.as_ref().unwrap_err().contains("QuotaExceeded"))
    );
    assert_eq!(usage(&s, "quota-v"), (600 * K as u64, 6, Some(600 * K as u64)));
}

#[test]
fn quota_commands_check_their_input() {
    let s = Server::start(4, &[]);
    let run = |args: &[&str]| {
        std::process::Command::new(strata_tests::objd_bin())
            .args(["admin", "--endpoint", &s.endpoint])
            .args(args)
            .env("OBJD_ACCESS_KEY", strata_tests::ACCESS_KEY)
            .env("OBJD_SECRET_KEY", strata_tests::SECRET_KEY)
            .output()
            .unwrap()
    };
    let out = run(&["quota", "nobucket", "1GiB"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("NoSuchBucket"),
        "{out:?}"
    );
    let out = run(&["quota", "nobucket", "lots"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a size"),
        "{out:?}"
    );
    let out = run(&["usage", "nobucket"]);
    assert!(!out.status.success());
}
