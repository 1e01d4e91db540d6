//! StorageClass (and VolumeAttributesClass) parameters that shape a
//! volume's bucket, driven over the plugin's UNIX socket against a real
//! objd: default encryption with a KMS key of the volume's own, tiering
//! to a remote tier (a second objd) as data ages, and writes in a pool's
//! storage class.

mod csi_support;

use csi_support::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use strata_csi::proto::controller_client::ControllerClient;
use strata_csi::proto::*;
use strata_tests::{SECRET_KEY, Server, pattern, s3_client};
use tonic::Code;

/// A ControllerModifyVolume of volume `id` to VolumeAttributesClass
/// parameters `params`.
fn modify(id: &str, params: &[(&str, &str)]) -> ControllerModifyVolumeRequest {
    ControllerModifyVolumeRequest {
        volume_id: id.into(),
        mutable_parameters: params.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
        ..Default::default()
    }
}

/// The transition days of the first rule of `bucket`'s lifecycle.
async fn transition_days(s3: &aws_sdk_s3::Client, bucket: &str) -> (Option<i32>, Option<i32>) {
    let rules = s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let rule = &rules.rules()[0];
    (
        rule.transitions()[0].days(),
        rule.noncurrent_version_transitions()
            .first()
            .and_then(|t| t.noncurrent_days()),
    )
}

/// A StorageClass's `encryption`/`kmsKeyId` give each volume's bucket a
/// default encryption before any data lands, and the volume's own
/// credentials the grant of that KMS key (and of no other).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_storage_classes_seal_their_volumes() {
    use aws_sdk_s3::types::ServerSideEncryption;
    use strata_csi::volume::volume_credentials;
    let dir = tempfile::tempdir().unwrap();
    let root_key = dir.path().join("root.key");
    std::fs::write(
        &root_key,
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    )
    .unwrap();
    let s = Server::start(4, &["--kms-root-key-file", root_key.to_str().unwrap()]);
    s.admin(&["kms", "key", "create", "team-key"]);
    s.admin(&["kms", "key", "create", "other-key"]);
    let root = s3_client(&s.endpoint);
    let plugin = Plugin::start(&s.endpoint, dir.path());
    let mut ctrl = ControllerClient::new(plugin.channel().await);
    let key = "volume-key-for-tests-0123456789abcdef";
    let make = |name: &str, params: &[(&str, &str)]| {
        let mut r = create(name, 1 << 20, params);
        r.secrets = HashMap::from([("volumeKey".to_owned(), key.to_owned())]);
        r
    };
    ctrl.create_volume(make(
        "pvc-kms",
        &[("encryption", "aws:kms"), ("kmsKeyId", "team-key")],
    ))
    .await
    .unwrap();
    ctrl.create_volume(make("pvc-sse-s3", &[("encryption", "AES256")]))
        .await
        .unwrap();
    for (params, why) in [
        (&[("encryption", "aws:kms")][..], "no key"),
        (&[("encryption", "DES")][..], "unknown"),
        (&[("kmsKeyId", "team-key")][..], "key without aws:kms"),
    ] {
        let e = ctrl.create_volume(make("pvc-bad", params)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{why}: {e:?}");
    }
    let rule = |bucket: &'static str| {
        let root = root.clone();
        async move {
            let r = root.get_bucket_encryption().bucket(bucket).send().await.unwrap();
            let d = r.server_side_encryption_configuration().unwrap().rules()[0]
                .apply_server_side_encryption_by_default()
                .unwrap()
                .clone();
            (
                d.sse_algorithm().clone(),
                d.kms_master_key_id().map(str::to_owned),
            )
        }
    };
    assert_eq!(
        rule("pvc-kms").await,
        (ServerSideEncryption::AwsKms, Some("team-key".into()))
    );
    assert_eq!(rule("pvc-sse-s3").await, (ServerSideEncryption::Aes256, None));
    // The volume's own credentials write and read sealed data under its key.
    let (ak, sk) = volume_credentials(key, "pvc-kms");
    let vol = strata_tests::s3_client_with(&s.endpoint, &ak, &sk);
    strata_tests::put_object(&vol, "pvc-kms", "f", b"sealed".to_vec())
        .await
        .unwrap();
    let head = vol.head_object().bucket("pvc-kms").key("f").send().await.unwrap();
    assert_eq!(head.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
    assert_eq!(head.ssekms_key_id(), Some("team-key"));
    assert_eq!(
        strata_tests::get_object(&vol, "pvc-kms", "f").await.unwrap(),
        b"sealed"
    );
    // Another key stays out of reach.
    let e = vol
        .put_object()
        .bucket("pvc-kms")
        .key("g")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("other-key")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(strata_tests::client::err_code(&e), "AccessDenied");

    // A VolumeAttributesClass moves the volume to another key: what is
    // written from then on is sealed under it, and the volume's own
    // credentials still open what the first key sealed.
    let modify = |id: &str, params: &[(&str, &str)]| ControllerModifyVolumeRequest {
        secrets: HashMap::from([("volumeKey".to_owned(), key.to_owned())]),
        ..modify(id, params)
    };
    ctrl.controller_modify_volume(modify(
        "pvc-kms",
        &[("encryption", "aws:kms"), ("kmsKeyId", "other-key")],
    ))
    .await
    .unwrap();
    assert_eq!(
        rule("pvc-kms").await,
        (ServerSideEncryption::AwsKms, Some("other-key".into()))
    );
    strata_tests::put_object(&vol, "pvc-kms", "after", b"resealed".to_vec())
        .await
        .unwrap();
    let head = vol
        .head_object()
        .bucket("pvc-kms")
        .key("after")
        .send()
        .await
        .unwrap();
    assert_eq!(head.ssekms_key_id(), Some("other-key"));
    assert_eq!(
        strata_tests::get_object(&vol, "pvc-kms", "f").await.unwrap(),
        b"sealed"
    );
    // Then to SSE-S3: both keys' data still open.
    ctrl.controller_modify_volume(modify("pvc-kms", &[("encryption", "AES256")]))
        .await
        .unwrap();
    strata_tests::put_object(&vol, "pvc-kms", "s3", b"plain key".to_vec())
        .await
        .unwrap();
    for (k, v) in [
        ("f", &b"sealed"[..]),
        ("after", b"resealed"),
        ("s3", b"plain key"),
    ] {
        assert_eq!(
            strata_tests::get_object(&vol, "pvc-kms", k).await.unwrap(),
            v,
            "{k}"
        );
    }
    for (params, code, why) in [
        (
            &[("storageClass", "GOLD")][..],
            Code::InvalidArgument,
            "fixed at creation",
        ),
        (&[("quota", "5")][..], Code::InvalidArgument, "not mutable"),
        (&[("encryption", "aws:kms")][..], Code::InvalidArgument, "no key"),
    ] {
        let e = ctrl
            .controller_modify_volume(modify("pvc-kms", params))
            .await
            .unwrap_err();
        assert_eq!(e.code(), code, "{why}: {e:?}");
    }
    let e = ctrl
        .controller_modify_volume(modify("pvc-gone", &[("storageClass", "STANDARD")]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    ctrl.controller_modify_volume(modify("pvc-sse-s3", &[("storageClass", "STANDARD")]))
        .await
        .unwrap();
}

/// `tierAfterDays`/`tierClass` give a volume's bucket a lifecycle that
/// moves its data to a remote tier (here a second objd) as it ages; the
/// volume reads the same. A class that names no tier fails the volume and
/// leaves no bucket; prefixes of a shared bucket are refused; a
/// VolumeAttributesClass changes the days.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiering_storage_classes_move_a_volume_s_data_to_a_remote_tier() {
    use aws_sdk_s3::types::StorageClass;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(4, &["--lifecycle-day-seconds", "1"]);
    let tier = Server::start(4, &[]);
    let tier_s3 = s3_client(&tier.endpoint);
    tier_s3.create_bucket().bucket("cold").send().await.unwrap();
    let creds = dir.path().join("tier.creds");
    std::fs::write(
        &creds,
        format!(
            "access_key={}\nsecret_key={SECRET_KEY}\n",
            strata_tests::ACCESS_KEY
        ),
    )
    .unwrap();
    s.admin(&[
        "tier",
        "add",
        "cold",
        "--tier-endpoint",
        &tier.endpoint,
        "--bucket",
        "cold",
        "--credentials-file",
        creds.to_str().unwrap(),
    ]);
    let root = s3_client(&s.endpoint);
    let plugin = Plugin::start(&s.endpoint, dir.path());
    let mut ctrl = ControllerClient::new(plugin.channel().await);
    let tiered = [("tierAfterDays", "0"), ("tierClass", "COLD")];
    ctrl.create_volume(create("pvc-tiered", 1 << 30, &tiered))
        .await
        .unwrap();
    assert_eq!(transition_days(&root, "pvc-tiered").await, (Some(0), Some(0)));
    // Small files too: the rule's size filter lifts S3's 128 KiB floor.
    let data = pattern(300_000, 4);
    strata_tests::put_object(&root, "pvc-tiered", "f", data.clone())
        .await
        .unwrap();
    strata_tests::put_object(&root, "pvc-tiered", "small", b"tiny".to_vec())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut cold = 0;
        for k in ["f", "small"] {
            let h = root
                .head_object()
                .bucket("pvc-tiered")
                .key(k)
                .send()
                .await
                .unwrap();
            cold += usize::from(h.storage_class() == Some(&StorageClass::from("COLD")));
        }
        if cold == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the volume's data did not move");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        strata_tests::get_object(&root, "pvc-tiered", "f").await.unwrap(),
        data
    );
    let held = tier_s3.list_objects_v2().bucket("cold").send().await.unwrap();
    assert_eq!(held.key_count(), Some(2));

    // A class that names no tier: refused, and no bucket is left behind.
    let e = ctrl
        .create_volume(create(
            "pvc-nowhere",
            1 << 30,
            &[("tierAfterDays", "3"), ("tierClass", "NEARLINE")],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(root.head_bucket().bucket("pvc-nowhere").send().await.is_err());
    for (params, why) in [
        (&[("tierAfterDays", "3")][..], "days without a class"),
        (
            &[("tierAfterDays", "soon"), ("tierClass", "COLD")][..],
            "not a number",
        ),
        (
            &[
                ("bucket", "shared-tiered"),
                ("tierAfterDays", "3"),
                ("tierClass", "COLD"),
            ][..],
            "a prefix of a shared bucket",
        ),
    ] {
        let e = ctrl
            .create_volume(create("pvc-bad", 1 << 30, params))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{why}: {e:?}");
    }

    // A VolumeAttributesClass changes when data moves.
    ctrl.controller_modify_volume(modify(
        "pvc-tiered",
        &[("tierAfterDays", "30"), ("tierClass", "COLD")],
    ))
    .await
    .unwrap();
    assert_eq!(transition_days(&root, "pvc-tiered").await.0, Some(30));
}

/// `storageClass` puts a volume's writes in one of objd's classes (here
/// a capacity pool of its own drives): the volume context carries it, the
/// mount writes every file in it, and a class objd does not offer fails
/// the volume and leaves no bucket. It is fixed at creation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_class_parameter_puts_a_volume_s_writes_in_a_pool() {
    use aws_sdk_s3::types::StorageClass;
    use strata_csi::proto::node_client::NodeClient;
    let dir = tempfile::tempdir().unwrap();
    let pool = format!("capacity={}/hdd/h{{1...4}}", dir.path().display());
    let s = Server::start(4, &["--pool", &pool]);
    let root = s3_client(&s.endpoint);
    let plugin = Plugin::start(&s.endpoint, dir.path());
    let mut ctrl = ControllerClient::new(plugin.channel().await);
    let mut node = NodeClient::new(plugin.channel().await);
    let v = ctrl
        .create_volume(create("pvc-capacity", 1 << 30, &[("storageClass", "CAPACITY")]))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert_eq!(
        v.volume_context.get("storageClass").map(String::as_str),
        Some("CAPACITY")
    );
    // The check left nothing in the bucket.
    let listed = root
        .list_objects_v2()
        .bucket("pvc-capacity")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.key_count(), Some(0));
    let target = dir.path().join("mnt");
    let mut req = publish("pvc-capacity", &target, false);
    req.volume_context = v.volume_context.clone();
    node.node_publish_volume(req).await.unwrap();
    let data = pattern(3_000_000, 6);
    let (t, d) = (target.clone(), data.clone());
    fs(move || {
        std::fs::create_dir(t.join("sub")).unwrap();
        std::fs::write(t.join("sub/big"), &d).unwrap();
        std::fs::write(t.join("small"), b"tiny").unwrap();
    })
    .await;
    for k in ["sub/big", "small"] {
        let h = root
            .head_object()
            .bucket("pvc-capacity")
            .key(k)
            .send()
            .await
            .unwrap();
        assert_eq!(h.storage_class(), Some(&StorageClass::from("CAPACITY")), "{k}");
    }
    assert_eq!(
        strata_tests::get_object(&root, "pvc-capacity", "sub/big")
            .await
            .unwrap(),
        data
    );
    let t = target.clone();
    assert_eq!(fs(move || std::fs::read(t.join("sub/big"))).await.unwrap(), data);
    node.node_unpublish_volume(NodeUnpublishVolumeRequest {
        volume_id: "pvc-capacity".into(),
        target_path: target.to_string_lossy().into_owned(),
    })
    .await
    .unwrap();

    let e = ctrl
        .create_volume(create("pvc-gold", 1 << 30, &[("storageClass", "GOLD")]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(root.head_bucket().bucket("pvc-gold").send().await.is_err());
    let e = ctrl
        .controller_modify_volume(modify("pvc-capacity", &[("storageClass", "CAPACITY")]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
}
