//! Server-side encryption with aws-sdk-s3 through the real binary: SSE-S3,
//! SSE-KMS and SSE-C (over plain HTTP here, which `--sse-c-over-http`
//! allows; the boto3 tests use HTTPS), a multipart upload, ranges, and the
//! built-in KMS across a restart, which refuses to start under another
//! root key rather than lose objects.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, ServerSideEncryption};
use md5::{Digest, Md5};
use std::process::Command;
use strata_tests::{Server, err_code, objd_bin, pattern, s3_client, with_root_credentials};

fn b64(b: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(b)
}

async fn read(req: aws_sdk_s3::operation::get_object::builders::GetObjectFluentBuilder) -> Vec<u8> {
    let r = req.send().await.unwrap();
    r.body.collect().await.unwrap().into_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_round_trips_and_survives_a_restart_under_its_root_key() {
    let keys = tempfile::tempdir().unwrap();
    let root_key = keys.path().join("root.key");
    std::fs::write(&root_key, b64(&[7u8; 32])).unwrap();
    let key_arg = root_key.display().to_string();
    let mut s = Server::start(4, &["--kms-root-key-file", &key_arg, "--sse-c-over-http"]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("enc").send().await.unwrap();
    s.admin(&["kms", "key", "create", "tenant-a/app"]);

    let data = pattern(400_000, 1);
    let put = c
        .put_object()
        .bucket("enc")
        .key("s3")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(put.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    let md5: String = Md5::digest(&data).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(put.e_tag(), Some(format!("\"{md5}\"").as_str()));

    let put = c
        .put_object()
        .bucket("enc")
        .key("kms")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("tenant-a/app")
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(put.ssekms_key_id(), Some("tenant-a/app"));

    let customer = [42u8; 32];
    let (ck, cmd5) = (b64(&customer), b64(&Md5::digest(customer)));
    let put = c
        .put_object()
        .bucket("enc")
        .key("c")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&ck)
        .sse_customer_key_md5(&cmd5)
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(put.sse_customer_key_md5(), Some(cmd5.as_str()));

    // A multipart upload under the KMS key, read across its part boundary.
    let up = c
        .create_multipart_upload()
        .bucket("enc")
        .key("mp")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("tenant-a/app")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let parts = vec![pattern(5 << 20, 2), pattern(12_345, 3)];
    let done = strata_tests::upload_parts(&c, "enc", "mp", id, &parts).await;
    c.complete_multipart_upload()
        .bucket("enc")
        .key("mp")
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done)).build())
        .send()
        .await
        .unwrap();
    let whole = parts.concat();

    // A clone shares the encrypted data: each mode opens under the new
    // names with the keys of the old (the data keys stay bound to the
    // names they were sealed for), and stays readable after the origin
    // is gone.
    c.create_bucket().bucket("enc-copy").send().await.unwrap();
    let out = s.admin(&["clone", "enc", "enc-copy"]);
    assert!(out.contains(r#""objects":4"#), "{out}");
    let origin_c = c.head_object().bucket("enc").key("kms").send().await.unwrap();
    let clone_c = c
        .head_object()
        .bucket("enc-copy")
        .key("kms")
        .send()
        .await
        .unwrap();
    assert_eq!(origin_c.e_tag(), clone_c.e_tag());
    assert_eq!(clone_c.ssekms_key_id(), Some("tenant-a/app"));
    c.put_object()
        .bucket("enc")
        .key("s3")
        .body(ByteStream::from(b"overwritten".to_vec()))
        .send()
        .await
        .unwrap();

    for round in 0..2 {
        for key in ["s3", "kms"] {
            assert_eq!(
                read(c.get_object().bucket("enc-copy").key(key)).await,
                data,
                "clone of {key} round {round}"
            );
        }
        assert_eq!(
            read(c.get_object().bucket("enc").key("kms")).await,
            data,
            "round {round}"
        );
        assert_eq!(
            read(c.get_object().bucket("enc-copy").key("mp")).await,
            whole,
            "round {round}"
        );
        for bucket in ["enc", "enc-copy"] {
            let got = read(
                c.get_object()
                    .bucket(bucket)
                    .key("c")
                    .range("bytes=65000-130999")
                    .sse_customer_algorithm("AES256")
                    .sse_customer_key(&ck)
                    .sse_customer_key_md5(&cmd5),
            )
            .await;
            assert_eq!(got, &data[65_000..131_000], "{bucket} round {round}");
        }
        let a = (5 << 20) - 50;
        let got = read(
            c.get_object()
                .bucket("enc")
                .key("mp")
                .range(format!("bytes={a}-{}", a + 99)),
        )
        .await;
        assert_eq!(got, &whole[a..a + 100]);
        let e = c.get_object().bucket("enc").key("c").send().await.unwrap_err();
        assert_eq!(err_code(&e), "InvalidRequest");
        if round == 0 {
            s.restart();
        }
    }

    // Under another root key the stored KMS keys do not open: objd says so
    // and does not start, rather than fail every read.
    s.kill();
    let other = keys.path().join("other.key");
    std::fs::write(&other, b64(&[8u8; 32])).unwrap();
    let pattern_arg = format!("{}/d{{1...4}}", s.root.path().display());
    let mut cmd = Command::new(objd_bin());
    cmd.args([
        "server",
        &pattern_arg,
        "--address",
        "127.0.0.1:0",
        "--kms-root-key-file",
    ])
    .arg(&other);
    let out = with_root_credentials(&mut cmd).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("root key"), "{err}");
}
