//! The CSI plugin driven over its UNIX socket exactly as kubelet and the
//! provisioner/resizer sidecars drive it (tonic clients generated from the
//! same proto), against a real objd, with real FUSE mounts: the volume
//! lifecycle, idempotency of every call, the status codes of bad requests,
//! quotas as capacity, and mounts that survive a restart of the plugin.

mod csi_support;

use csi_support::*;
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};
use strata_csi::proto::controller_client::ControllerClient;
use strata_csi::proto::identity_client::IdentityClient;
use strata_csi::proto::node_client::NodeClient;
use strata_csi::proto::volume_capability::access_mode::Mode;
use strata_csi::proto::volume_capability::{AccessMode, AccessType, MountVolume};
use strata_csi::proto::*;
use strata_tests::{SECRET_KEY, Server, pattern, s3_client, workspace_bin};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_lives_from_create_to_delete_through_the_plugin_socket() {
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    let dir = tempfile::tempdir().unwrap();
    let plugin = Plugin::start(&s.endpoint, dir.path());
    let ch = plugin.channel().await;
    let (mut identity, mut ctrl, mut node) = (
        IdentityClient::new(ch.clone()),
        ControllerClient::new(ch.clone()),
        NodeClient::new(ch),
    );

    // Identity, as the sidecars ask it.
    let info = identity
        .get_plugin_info(GetPluginInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.name, "csi.strata.dev");
    let caps = identity
        .get_plugin_capabilities(GetPluginCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(caps.capabilities.len(), 2, "{caps:?}");
    let probe = identity.probe(ProbeRequest {}).await.unwrap().into_inner();
    assert_eq!(probe.ready, Some(true));
    let ccaps = ctrl
        .controller_get_capabilities(ControllerGetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    use strata_csi::proto::controller_service_capability::{Type as CapType, rpc::Type as Rpc};
    let rpcs: Vec<i32> = ccaps
        .capabilities
        .iter()
        .filter_map(|c| match &c.r#type {
            Some(CapType::Rpc(r)) => Some(r.r#type),
            _ => None,
        })
        .collect();
    let want = [
        Rpc::CreateDeleteVolume,
        Rpc::ListVolumes,
        Rpc::GetCapacity,
        Rpc::ExpandVolume,
        Rpc::VolumeCondition,
        Rpc::GetVolume,
        Rpc::CreateDeleteSnapshot,
        Rpc::ListSnapshots,
        Rpc::CloneVolume,
        Rpc::ModifyVolume,
    ];
    assert_eq!(rpcs, want.map(|t| t as i32));
    let ncaps = node
        .node_get_capabilities(NodeGetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ncaps.capabilities.len(), 2);
    assert_eq!(
        node.node_get_info(NodeGetInfoRequest {})
            .await
            .unwrap()
            .into_inner()
            .node_id,
        "node-1"
    );

    // CreateVolume: a bucket with a quota, the same answer when repeated,
    // ALREADY_EXISTS for the same name with another capacity.
    let name = "pvc-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
    let mib = 1 << 20;
    let v = ctrl
        .create_volume(create(name, 8 * mib, &[]))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert_eq!((v.volume_id.as_str(), v.capacity_bytes), (name, 8 * mib));
    let again = ctrl
        .create_volume(create(name, 8 * mib, &[]))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert_eq!(again, v);
    let e = ctrl.create_volume(create(name, 9 * mib, &[])).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    assert!(s.admin(&["usage", name]).contains("\"quota\":8388608"));

    // Bad requests get the codes the CSI spec names.
    let mut bad = create("", mib, &[]);
    assert_eq!(
        ctrl.create_volume(bad.clone()).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    bad.name = "pvc-block".into();
    bad.volume_capabilities = vec![block_cap()];
    assert_eq!(
        ctrl.create_volume(bad).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let mut bad = create("pvc-range", 0, &[]);
    bad.capacity_range = Some(CapacityRange {
        required_bytes: 10,
        limit_bytes: 5,
    });
    assert_eq!(
        ctrl.create_volume(bad).await.unwrap_err().code(),
        Code::OutOfRange
    );
    let validate = |id: &str, cap: VolumeCapability| ValidateVolumeCapabilitiesRequest {
        volume_id: id.into(),
        volume_capabilities: vec![cap],
        ..Default::default()
    };
    let ok = ctrl
        .validate_volume_capabilities(validate(name, mount_cap(Mode::MultiNodeReaderOnly)))
        .await
        .unwrap()
        .into_inner();
    assert!(ok.confirmed.is_some());
    let no = ctrl
        .validate_volume_capabilities(validate(name, block_cap()))
        .await
        .unwrap()
        .into_inner();
    assert!(no.confirmed.is_none() && no.message.contains("block"), "{no:?}");
    let e = ctrl
        .validate_volume_capabilities(validate("", mount_cap(Mode::SingleNodeWriter)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = ctrl
        .validate_volume_capabilities(validate("pvc-nonexistent", mount_cap(Mode::SingleNodeWriter)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // NodePublishVolume: a real FUSE mount; repeated, the same answer.
    let target = dir.path().join("pods/uid/volumes/mount");
    node.node_publish_volume(publish(name, &target, false))
        .await
        .unwrap();
    assert!(mounted(&target));
    node.node_publish_volume(publish(name, &target, false))
        .await
        .unwrap();
    let mut no_secret = publish(name, &target, false);
    no_secret.secrets.clear();
    assert_eq!(
        node.node_publish_volume(no_secret).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let mut no_id = publish(name, &target, false);
    no_id.volume_id.clear();
    assert_eq!(
        node.node_publish_volume(no_id).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let mut block = publish(name, &target, false);
    block.volume_capability = Some(block_cap());
    assert_eq!(
        node.node_publish_volume(block).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let mut no_target = publish(name, &target, false);
    no_target.target_path.clear();
    assert_eq!(
        node.node_publish_volume(no_target).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    // The plugin's process arguments never hold the credentials.
    let args = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&args.stdout).contains(SECRET_KEY));

    // Files written through the mount are objects S3 clients read.
    let t = target.clone();
    fs(move || {
        std::fs::create_dir(t.join("data")).unwrap();
        write_synced(&t.join("data/one.bin"), &pattern(3 << 20, 1)).unwrap();
    })
    .await;
    assert_eq!(
        strata_tests::get_object(&c, name, "data/one.bin").await.unwrap(),
        pattern(3 << 20, 1)
    );
    let (total, used, abnormal) = stats(&mut node, name, &target).await;
    assert_eq!((total, used, abnormal), (8 * mib, 3 * mib, false));
    // Stats only where the volume is published: another volume's id, an
    // existing directory that is no target, a relative path: NotFound.
    let elsewhere = target.parent().unwrap().to_string_lossy().into_owned();
    let target_text = target.to_string_lossy().into_owned();
    for (id, path) in [
        ("pvc-other", target_text.as_str()),
        (name, &elsewhere),
        (name, "relative/path"),
    ] {
        let e = node
            .node_get_volume_stats(NodeGetVolumeStatsRequest {
                volume_id: id.into(),
                volume_path: path.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{id} at {path}: {e:?}");
    }

    // The quota holds; expansion (twice, as the resizer may) raises it.
    let t = target.clone();
    let e = fs(move || write_synced(&t.join("big.bin"), &pattern(6 << 20, 2)).unwrap_err()).await;
    assert_eq!(e.raw_os_error(), Some(122), "{e}"); // EDQUOT
    // Filled to its quota, the volume is reported abnormal until expanded.
    let t = target.clone();
    fs(move || write_synced(&t.join("fill.bin"), &pattern(5 << 20, 3)).unwrap()).await;
    let (total, used, abnormal) = stats(&mut node, name, &target).await;
    assert_eq!((total, used, abnormal), (8 * mib, 8 * mib, true));
    let condition = |r: ControllerGetVolumeResponse| r.status.unwrap().volume_condition.unwrap();
    let get = ControllerGetVolumeRequest {
        volume_id: name.into(),
    };
    let c1 = condition(
        ctrl.controller_get_volume(get.clone())
            .await
            .unwrap()
            .into_inner(),
    );
    assert!(c1.abnormal && c1.message.contains("quota"), "{c1:?}");
    let expand = ControllerExpandVolumeRequest {
        volume_id: name.into(),
        capacity_range: Some(CapacityRange {
            required_bytes: 32 * mib,
            limit_bytes: 0,
        }),
        ..Default::default()
    };
    for _ in 0..2 {
        let r = ctrl
            .controller_expand_volume(expand.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!((r.capacity_bytes, r.node_expansion_required), (32 * mib, false));
    }
    let mut missing = expand.clone();
    missing.volume_id = "pvc-nonexistent".into();
    assert_eq!(
        ctrl.controller_expand_volume(missing).await.unwrap_err().code(),
        Code::NotFound
    );
    let t = target.clone();
    fs(move || write_synced(&t.join("big.bin"), &pattern(6 << 20, 2)).unwrap()).await;
    let (total, _, abnormal) = stats(&mut node, name, &target).await;
    assert_eq!((total, abnormal), (32 * mib, false));
    let r = ctrl.controller_get_volume(get).await.unwrap().into_inner();
    assert_eq!(r.volume.as_ref().unwrap().capacity_bytes, 32 * mib);
    assert!(!condition(r).abnormal);
    let missing = ControllerGetVolumeRequest {
        volume_id: "pvc-nonexistent".into(),
    };
    let e = ctrl.controller_get_volume(missing).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // ListVolumes pages; GetCapacity reports the drives' space.
    ctrl.create_volume(create("pvc-second", mib, &[])).await.unwrap();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = ctrl
            .list_volumes(ListVolumesRequest {
                max_entries: 1,
                starting_token: token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.entries.len() <= 1);
        for e in &page.entries {
            let condition = e.status.as_ref().and_then(|s| s.volume_condition.as_ref());
            assert!(condition.is_some_and(|c| !c.abnormal), "{e:?}");
        }
        seen.extend(page.entries.into_iter().map(|e| e.volume.unwrap().volume_id));
        if page.next_token.is_empty() {
            break;
        }
        token = page.next_token;
    }
    assert_eq!(seen, [name, "pvc-second"]);
    let e = ctrl
        .list_volumes(ListVolumesRequest {
            max_entries: 1,
            starting_token: "no-such-token".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted);
    let cap = ctrl
        .get_capacity(GetCapacityRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(cap.available_capacity > 0);

    // Unpublish (twice), then DeleteVolume (twice) removes data and bucket.
    let unpublish = NodeUnpublishVolumeRequest {
        volume_id: name.into(),
        target_path: target.to_string_lossy().into_owned(),
    };
    node.node_unpublish_volume(unpublish.clone()).await.unwrap();
    assert!(!mounted(&target));
    node.node_unpublish_volume(unpublish).await.unwrap();
    // A writer that died mid-upload left one behind: it does not keep
    // the volume from being deleted.
    c.create_multipart_upload()
        .bucket(name)
        .key("data/partial")
        .send()
        .await
        .unwrap();
    for _ in 0..2 {
        ctrl.delete_volume(DeleteVolumeRequest {
            volume_id: name.into(),
            secrets: HashMap::new(),
        })
        .await
        .unwrap();
    }
    assert!(c.head_bucket().bucket(name).send().await.is_err());
    drop(plugin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_volumes_survive_plugin_restarts_and_dead_mounts_are_repaired() {
    let s = Server::start(4, &[]);
    let dir = tempfile::tempdir().unwrap();
    let plugin = Plugin::start(&s.endpoint, dir.path());
    let ch = plugin.channel().await;
    let (mut ctrl, mut node) = (ControllerClient::new(ch.clone()), NodeClient::new(ch));
    let name = "pvc-restart";
    ctrl.create_volume(create(name, 64 << 20, &[])).await.unwrap();
    let target = dir.path().join("target");
    node.node_publish_volume(publish(name, &target, false))
        .await
        .unwrap();
    let t = target.clone();
    fs(move || write_synced(&t.join("kept.txt"), b"still here").unwrap()).await;

    // The plugin dies: the mount does not go with it, and the plugin that
    // starts again takes the volume as published.
    plugin.kill();
    assert_eq!(std::fs::read(target.join("kept.txt")).unwrap(), b"still here");
    let plugin = Plugin::start(&s.endpoint, dir.path());
    let mut node = NodeClient::new(plugin.channel().await);
    node.node_publish_volume(publish(name, &target, false))
        .await
        .unwrap();

    // The mount's process dies: stats say the volume is abnormal, and the
    // next plugin start mounts it again (so does a publish).
    let pattern_arg = format!("fuse-mount .*{}", target.display());
    let status = Command::new("pkill")
        .args(["-KILL", "-f", &pattern_arg])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let e = std::fs::metadata(&target).err().and_then(|e| e.raw_os_error());
        if e == Some(107) {
            break; // ENOTCONN
        }
        assert!(Instant::now() < deadline, "the mount did not go dead");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, _, abnormal) = stats(&mut node, name, &target).await;
    assert!(abnormal);
    plugin.kill();
    // This time fuse-mount is started through a launcher (`env`, which
    // execs it in place, as `systemd-run --scope` does in a cluster).
    let plugin = Plugin::start_with(&s.endpoint, dir.path(), "env");
    let t = target.clone();
    let text = fs(move || std::fs::read(t.join("kept.txt"))).await.unwrap();
    assert_eq!(text, b"still here");
    // Read-only publishing of the same volume elsewhere.
    let mut node = NodeClient::new(plugin.channel().await);
    // with mount flags (a StorageClass's mountOptions) for ownership.
    let ro = dir.path().join("ro");
    let mut req = publish(name, &ro, true);
    req.volume_capability = Some(VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume {
            fs_type: String::new(),
            mount_flags: vec!["uid=1234,gid=4321".into()],
        })),
        access_mode: Some(AccessMode {
            mode: Mode::MultiNodeReaderOnly as i32,
        }),
    });
    node.node_publish_volume(req.clone()).await.unwrap();
    let r = ro.clone();
    let e = fs(move || std::fs::write(r.join("x"), b"x").unwrap_err()).await;
    assert_eq!(e.raw_os_error(), Some(30)); // EROFS
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&ro).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1234, 4321));
    let mut bad = req;
    bad.target_path = dir.path().join("bad").to_string_lossy().into_owned();
    if let Some(AccessType::Mount(m)) = bad
        .volume_capability
        .as_mut()
        .and_then(|c| c.access_type.as_mut())
    {
        m.mount_flags = vec!["allow_root".into()];
    }
    assert_eq!(
        node.node_publish_volume(bad).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    for t in [&target, &ro] {
        node.node_unpublish_volume(NodeUnpublishVolumeRequest {
            volume_id: name.into(),
            target_path: t.to_string_lossy().into_owned(),
        })
        .await
        .unwrap();
        assert!(!mounted(t));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_can_be_prefixes_of_a_shared_bucket() {
    let mut s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    let dir = tempfile::tempdir().unwrap();
    let plugin = Plugin::start(&s.endpoint, dir.path());
    let ch = plugin.channel().await;
    let (mut ctrl, mut node) = (ControllerClient::new(ch.clone()), NodeClient::new(ch));
    let v = ctrl
        .create_volume(create("pvc-team-a", 1 << 20, &[("bucket", "shared-vols")]))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap();
    assert_eq!(v.volume_id, "shared-vols/pvc-team-a");
    let target = dir.path().join("t");
    node.node_publish_volume(publish(&v.volume_id, &target, false))
        .await
        .unwrap();
    let t = target.clone();
    fs(move || write_synced(&t.join("f.txt"), b"in a prefix").unwrap()).await;
    assert_eq!(
        strata_tests::get_object(&c, "shared-vols", "pvc-team-a/f.txt")
            .await
            .unwrap(),
        b"in a prefix"
    );
    node.node_unpublish_volume(NodeUnpublishVolumeRequest {
        volume_id: v.volume_id.clone(),
        target_path: target.to_string_lossy().into_owned(),
    })
    .await
    .unwrap();
    ctrl.delete_volume(DeleteVolumeRequest {
        volume_id: v.volume_id.clone(),
        secrets: HashMap::new(),
    })
    .await
    .unwrap();
    let left = c.list_objects_v2().bucket("shared-vols").send().await.unwrap();
    assert_eq!(left.key_count(), Some(0));
    // Static provisioning: an existing bucket is a volume by its name.
    c.create_bucket().bucket("made-by-s3").send().await.unwrap();
    strata_tests::put_object(&c, "made-by-s3", "old.txt", b"from before".to_vec())
        .await
        .unwrap();
    let static_target = dir.path().join("static");
    node.node_publish_volume(publish("made-by-s3", &static_target, false))
        .await
        .unwrap();
    let t = static_target.clone();
    assert_eq!(
        fs(move || std::fs::read(t.join("old.txt"))).await.unwrap(),
        b"from before"
    );
    // A storage class objd does not offer fails the volume.
    let e = ctrl
        .create_volume(create("pvc-cold", 1 << 20, &[("storageClass", "GLACIER")]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    ctrl.create_volume(create("pvc-standard", 1 << 20, &[("storageClass", "STANDARD")]))
        .await
        .unwrap();
    let e = ctrl
        .create_volume(create("pvc-typo", 1 << 20, &[("buckett", "x")]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    // Probe fails while objd cannot be reached, and a published volume
    // is reported abnormal, saying why.
    let mut identity = IdentityClient::new(plugin.channel().await);
    s.kill();
    let e = identity.probe(ProbeRequest {}).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    let status = node
        .node_get_volume_stats(NodeGetVolumeStatsRequest {
            volume_id: "made-by-s3".into(),
            volume_path: static_target.to_string_lossy().into_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    let condition = status.volume_condition.unwrap();
    assert!(
        condition.abnormal && condition.message.contains("cannot be reached"),
        "{condition:?}"
    );
    node.node_unpublish_volume(NodeUnpublishVolumeRequest {
        volume_id: "made-by-s3".into(),
        target_path: static_target.to_string_lossy().into_owned(),
    })
    .await
    .unwrap();
}

/// With a `volumeKey`, every volume has credentials of its own: the node
/// mounts with them (it holds no other key), they reach that volume and
/// nothing else, and they die with the volume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_volume_mounts_with_credentials_that_reach_it_only() {
    use strata_csi::volume::volume_credentials;
    use strata_tests::client::err_code;
    let s = Server::start(4, &[]);
    let root = s3_client(&s.endpoint);
    let dir = tempfile::tempdir().unwrap();
    let plugin = Plugin::start(&s.endpoint, dir.path());
    let ch = plugin.channel().await;
    let (mut ctrl, mut node) = (ControllerClient::new(ch.clone()), NodeClient::new(ch));
    let key = "volume-key-for-tests-0123456789abcdef";
    let keyed = HashMap::from([("volumeKey".to_owned(), key.to_owned())]);
    let make = |name: &str, params: &[(&str, &str)]| {
        let mut r = create(name, 1 << 20, params);
        r.secrets = keyed.clone();
        r
    };
    for (name, params) in [
        ("pvc-alpha", &[][..]),
        ("pvc-beta", &[][..]),
        ("pvc-gamma", &[("bucket", "shared-keyed")][..]),
        ("pvc-delta", &[("bucket", "shared-keyed")][..]),
    ] {
        ctrl.create_volume(make(name, params)).await.unwrap();
    }
    // Creating a volume again is harmless.
    ctrl.create_volume(make("pvc-alpha", &[])).await.unwrap();
    strata_tests::put_object(&root, "pvc-beta", "b.txt", b"beta".to_vec())
        .await
        .unwrap();
    strata_tests::put_object(&root, "shared-keyed", "pvc-delta/d.txt", b"delta".to_vec())
        .await
        .unwrap();

    // The node has the volume key only, and mounts with alpha's own key.
    let target = dir.path().join("alpha");
    let mut req = publish("pvc-alpha", &target, false);
    req.secrets = keyed.clone();
    node.node_publish_volume(req).await.unwrap();
    let t = target.clone();
    fs(move || write_synced(&t.join("a.txt"), b"alpha").unwrap()).await;
    assert_eq!(
        strata_tests::get_object(&root, "pvc-alpha", "a.txt")
            .await
            .unwrap(),
        b"alpha"
    );

    let client_of = |id: &str| {
        let (ak, sk) = volume_credentials(key, id);
        strata_tests::s3_client_with(&s.endpoint, &ak, &sk)
    };
    let alpha = client_of("pvc-alpha");
    assert_eq!(
        strata_tests::get_object(&alpha, "pvc-alpha", "a.txt")
            .await
            .unwrap(),
        b"alpha"
    );
    let e = alpha
        .get_object()
        .bucket("pvc-beta")
        .key("b.txt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "AccessDenied");
    let e = alpha
        .list_objects_v2()
        .bucket("pvc-beta")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "AccessDenied");
    let e = alpha.list_buckets().send().await.unwrap_err();
    assert_eq!(err_code(&e), "AccessDenied");
    // A prefix volume: its own prefix, not its neighbour's, nor the bucket.
    let gamma = client_of("shared-keyed/pvc-gamma");
    let mine = gamma
        .list_objects_v2()
        .bucket("shared-keyed")
        .prefix("pvc-gamma/")
        .send()
        .await
        .unwrap();
    assert_eq!(mine.key_count(), Some(1), "its directory marker");
    let e = gamma
        .list_objects_v2()
        .bucket("shared-keyed")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "AccessDenied");
    let e = gamma
        .get_object()
        .bucket("shared-keyed")
        .key("pvc-delta/d.txt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "AccessDenied");

    node.node_unpublish_volume(NodeUnpublishVolumeRequest {
        volume_id: "pvc-alpha".into(),
        target_path: target.to_string_lossy().into_owned(),
    })
    .await
    .unwrap();
    ctrl.delete_volume(DeleteVolumeRequest {
        volume_id: "pvc-alpha".into(),
        secrets: keyed.clone(),
    })
    .await
    .unwrap();
    let e = alpha
        .list_objects_v2()
        .bucket("pvc-beta")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "InvalidAccessKeyId");
}

#[test]
fn help_and_bad_configuration_are_clear() {
    let out = Command::new(workspace_bin("csi-driver"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--endpoint",
        "--node-id",
        "--mode",
        "--objd-endpoint",
        "--state-dir",
        "--mount-launcher",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    let out = Command::new(workspace_bin("csi-driver"))
        .args(["--mode", "node", "--objd-endpoint", "http://127.0.0.1:9"])
        .env_remove("CSI_NODE_ID")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--node-id is required"), "{err}");
}
