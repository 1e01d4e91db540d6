//! CSI snapshots, restores and clones over the plugin's socket, as the
//! external-snapshotter and external-provisioner sidecars call them,
//! against a real objd: a snapshot keeps the volume as it was when taken
//! whatever happens to the volume later (writes, deletion), restores and
//! clones are independent volumes, a restored volume mounts with its POSIX
//! attributes, and every call is idempotent with the CSI status codes.

mod csi_support;

use csi_support::*;
use strata_csi::proto::controller_client::ControllerClient;
use strata_csi::proto::node_client::NodeClient;
use strata_csi::proto::volume_content_source::{SnapshotSource, Type as Source, VolumeSource};
use strata_csi::proto::*;
use strata_tests::{Server, get_object, pattern, put_object, s3_client};
use tonic::Code;

fn from_snapshot(name: &str, bytes: i64, snapshot: &str) -> CreateVolumeRequest {
    let mut r = create(name, bytes, &[]);
    r.volume_content_source = Some(VolumeContentSource {
        r#type: Some(Source::Snapshot(SnapshotSource {
            snapshot_id: snapshot.into(),
        })),
    });
    r
}

fn from_volume(name: &str, bytes: i64, volume: &str) -> CreateVolumeRequest {
    let mut r = create(name, bytes, &[]);
    r.volume_content_source = Some(VolumeContentSource {
        r#type: Some(Source::Volume(VolumeSource {
            volume_id: volume.into(),
        })),
    });
    r
}

fn snap(name: &str, volume: &str) -> CreateSnapshotRequest {
    CreateSnapshotRequest {
        source_volume_id: volume.into(),
        name: name.into(),
        ..Default::default()
    }
}

async fn list(
    ctrl: &mut ControllerClient<tonic::transport::Channel>,
    r: ListSnapshotsRequest,
) -> (Vec<String>, String) {
    let page = ctrl.list_snapshots(r).await.unwrap().into_inner();
    let ids = page
        .entries
        .iter()
        .filter_map(|e| e.snapshot.as_ref().map(|s| s.snapshot_id.clone()))
        .collect();
    (ids, page.next_token)
}

/// The volume CreateVolume answers.
async fn created(ctrl: &mut ControllerClient<tonic::transport::Channel>, r: CreateVolumeRequest) -> Volume {
    ctrl.create_volume(r).await.unwrap().into_inner().volume.unwrap()
}

/// The snapshot CreateSnapshot answers.
async fn take(ctrl: &mut ControllerClient<tonic::transport::Channel>, r: CreateSnapshotRequest) -> Snapshot {
    ctrl.create_snapshot(r)
        .await
        .unwrap()
        .into_inner()
        .snapshot
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_keep_a_volume_as_it_was_and_restores_and_clones_are_independent() {
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    let dir = tempfile::tempdir().unwrap();
    let plugin = Plugin::start(&s.endpoint, dir.path());
    let ch = plugin.channel().await;
    let (mut ctrl, mut node) = (ControllerClient::new(ch.clone()), NodeClient::new(ch));
    let mib = 1 << 20;

    // A volume written through its mount: files, a directory, a symlink.
    ctrl.create_volume(create("pvc-src", 64 * mib, &[]))
        .await
        .unwrap();
    let target = dir.path().join("src-mount");
    node.node_publish_volume(publish("pvc-src", &target, false))
        .await
        .unwrap();
    let t = target.clone();
    fs(move || {
        std::fs::create_dir(t.join("dir")).unwrap();
        write_synced(&t.join("dir/big"), &pattern(3 << 20, 1)).unwrap();
        write_synced(&t.join("small"), b"small file").unwrap();
        write_synced(&t.join("doomed"), b"deleted after the snapshot").unwrap();
        std::os::unix::fs::symlink("dir/big", t.join("link")).unwrap();
        std::fs::set_permissions(
            t.join("small"),
            std::os::unix::fs::PermissionsExt::from_mode(0o640),
        )
        .unwrap();
    })
    .await;

    // CreateSnapshot: ready at once, the same answer when repeated.
    let first = take(&mut ctrl, snap("snapshot-1", "pvc-src")).await;
    assert!(first.ready_to_use);
    assert_eq!(first.source_volume_id, "pvc-src");
    let stored = (3 << 20) + 10 + 26 + 7;
    assert!(first.size_bytes >= stored, "{first:?}");
    let again = take(&mut ctrl, snap("snapshot-1", "pvc-src")).await;
    assert_eq!(again, first);
    ctrl.create_volume(create("pvc-other", mib, &[])).await.unwrap();
    for (r, code, why) in [
        (
            snap("snapshot-1", "pvc-other"),
            Code::AlreadyExists,
            "name taken by another volume's",
        ),
        (
            snap("snapshot-x", "pvc-missing"),
            Code::NotFound,
            "no such volume",
        ),
        (snap("", "pvc-src"), Code::InvalidArgument, "no name"),
        (snap("snapshot-x", ""), Code::InvalidArgument, "no source"),
    ] {
        let e = ctrl.create_snapshot(r).await.unwrap_err();
        assert_eq!(e.code(), code, "{why}: {e:?}");
    }
    let mut bad = snap("snapshot-x", "pvc-src");
    bad.parameters.insert("replicate".into(), "yes".into());
    assert_eq!(
        ctrl.create_snapshot(bad).await.unwrap_err().code(),
        Code::InvalidArgument
    );

    // The volume changes after the snapshot.
    let t = target.clone();
    fs(move || {
        write_synced(&t.join("small"), b"rewritten").unwrap();
        std::fs::remove_file(t.join("doomed")).unwrap();
        write_synced(&t.join("new"), b"written after").unwrap();
    })
    .await;
    ctrl.create_snapshot(snap("snapshot-2", "pvc-src")).await.unwrap();
    ctrl.create_snapshot(snap("snapshot-3", "pvc-other"))
        .await
        .unwrap();

    // ListSnapshots: all, by volume, by id, a page at a time.
    let (all, token) = list(&mut ctrl, ListSnapshotsRequest::default()).await;
    assert_eq!(all, ["snapshot-1", "snapshot-2", "snapshot-3"]);
    assert!(token.is_empty());
    let by_volume = ListSnapshotsRequest {
        source_volume_id: "pvc-src".into(),
        ..Default::default()
    };
    assert_eq!(list(&mut ctrl, by_volume).await.0, ["snapshot-1", "snapshot-2"]);
    let by_id = |id: &str| ListSnapshotsRequest {
        snapshot_id: id.into(),
        ..Default::default()
    };
    assert_eq!(list(&mut ctrl, by_id("snapshot-2")).await.0, ["snapshot-2"]);
    assert!(list(&mut ctrl, by_id("snapshot-9")).await.0.is_empty());
    assert!(list(&mut ctrl, by_id("no/such")).await.0.is_empty());
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let (ids, next) = list(
            &mut ctrl,
            ListSnapshotsRequest {
                max_entries: 2,
                starting_token: token.clone(),
                ..Default::default()
            },
        )
        .await;
        assert!(ids.len() <= 2);
        paged.extend(ids);
        if next.is_empty() {
            break;
        }
        token = next;
    }
    assert_eq!(paged, all);
    let e = ctrl
        .list_snapshots(ListSnapshotsRequest {
            max_entries: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // The snapshots' bucket is not a volume.
    let volumes: Vec<String> = ctrl
        .list_volumes(ListVolumesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .entries
        .iter()
        .filter_map(|e| e.volume.as_ref().map(|v| v.volume_id.clone()))
        .collect();
    assert_eq!(volumes, ["pvc-other", "pvc-src"]);

    // A restore holds the volume as it was at the snapshot; too small a
    // capacity is OUT_OF_RANGE, a missing snapshot NOT_FOUND.
    let e = ctrl
        .create_volume(from_snapshot("pvc-tiny", mib, "snapshot-1"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
    let e = ctrl
        .create_volume(from_snapshot("pvc-none", 64 * mib, "snapshot-9"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let restored = created(&mut ctrl, from_snapshot("pvc-restored", 64 * mib, "snapshot-1")).await;
    assert!(matches!(
        restored.content_source.as_ref().and_then(|s| s.r#type.as_ref()),
        Some(Source::Snapshot(s)) if s.snapshot_id == "snapshot-1"
    ));
    // Again: the same volume.
    let again = created(&mut ctrl, from_snapshot("pvc-restored", 64 * mib, "snapshot-1")).await;
    assert_eq!(again, restored);

    // It mounts with the attributes and contents of then.
    let rtarget = dir.path().join("restored-mount");
    node.node_publish_volume(publish("pvc-restored", &rtarget, false))
        .await
        .unwrap();
    let r = rtarget.clone();
    fs(move || {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::read(r.join("dir/big")).unwrap(), pattern(3 << 20, 1));
        assert_eq!(std::fs::read(r.join("small")).unwrap(), b"small file");
        assert_eq!(
            std::fs::metadata(r.join("small")).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(
            std::fs::read(r.join("doomed")).unwrap(),
            b"deleted after the snapshot"
        );
        assert_eq!(
            std::fs::read_link(r.join("link")).unwrap(),
            std::path::Path::new("dir/big")
        );
        assert!(!r.join("new").exists());
        // Writes to the restored volume reach neither the source nor the
        // snapshot.
        write_synced(&r.join("small"), b"changed in the restore").unwrap();
    })
    .await;
    assert_eq!(get_object(&c, "pvc-src", "small").await.unwrap(), b"rewritten");

    // A clone holds the volume as it is now.
    ctrl.create_volume(from_volume("pvc-clone", 64 * mib, "pvc-src"))
        .await
        .unwrap();
    assert_eq!(get_object(&c, "pvc-clone", "small").await.unwrap(), b"rewritten");
    assert_eq!(
        get_object(&c, "pvc-clone", "new").await.unwrap(),
        b"written after"
    );
    assert!(get_object(&c, "pvc-clone", "doomed").await.is_err());
    put_object(&c, "pvc-clone", "small", b"changed in the clone".to_vec())
        .await
        .unwrap();
    assert_eq!(get_object(&c, "pvc-src", "small").await.unwrap(), b"rewritten");
    let e = ctrl
        .create_volume(from_volume("pvc-clone2", 64 * mib, "pvc-missing"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");

    // The source volume deleted: its snapshots restore as before.
    node.node_unpublish_volume(NodeUnpublishVolumeRequest {
        volume_id: "pvc-src".into(),
        target_path: target.to_string_lossy().into_owned(),
    })
    .await
    .unwrap();
    ctrl.delete_volume(DeleteVolumeRequest {
        volume_id: "pvc-src".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    ctrl.create_volume(from_snapshot("pvc-restored-2", 64 * mib, "snapshot-2"))
        .await
        .unwrap();
    assert_eq!(
        get_object(&c, "pvc-restored-2", "small").await.unwrap(),
        b"rewritten"
    );
    assert_eq!(
        get_object(&c, "pvc-restored-2", "dir/big").await.unwrap(),
        pattern(3 << 20, 1)
    );
    assert_eq!(
        get_object(&c, "pvc-restored", "dir/big").await.unwrap(),
        pattern(3 << 20, 1)
    );

    // DeleteSnapshot: gone for listing and restoring; again, harmless.
    for _ in 0..2 {
        ctrl.delete_snapshot(DeleteSnapshotRequest {
            snapshot_id: "snapshot-1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    assert_eq!(
        list(&mut ctrl, ListSnapshotsRequest::default()).await.0,
        ["snapshot-2", "snapshot-3"]
    );
    let e = ctrl
        .create_volume(from_snapshot("pvc-late", 64 * mib, "snapshot-1"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // What was restored from it stays.
    assert_eq!(
        get_object(&c, "pvc-restored", "doomed").await.unwrap(),
        b"deleted after the snapshot"
    );
    node.node_unpublish_volume(NodeUnpublishVolumeRequest {
        volume_id: "pvc-restored".into(),
        target_path: rtarget.to_string_lossy().into_owned(),
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_in_a_shared_bucket_snapshot_and_restore_too() {
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    let dir = tempfile::tempdir().unwrap();
    let plugin = Plugin::start(&s.endpoint, dir.path());
    let mut ctrl = ControllerClient::new(plugin.channel().await);
    let mib = 1 << 20;
    let shared = [("bucket", "team-volumes")];
    let id = created(&mut ctrl, create("pvc-a", mib, &shared)).await.volume_id;
    assert_eq!(id, "team-volumes/pvc-a");
    put_object(&c, "team-volumes", "pvc-a/data/one", b"one".to_vec())
        .await
        .unwrap();
    put_object(&c, "team-volumes", "pvc-b-not-a/x", b"beside".to_vec())
        .await
        .unwrap();
    ctrl.create_snapshot(snap("snapshot-a", &id)).await.unwrap();
    put_object(&c, "team-volumes", "pvc-a/data/two", b"after".to_vec())
        .await
        .unwrap();

    // Into a volume of its own bucket.
    ctrl.create_volume(from_snapshot("pvc-own", mib, "snapshot-a"))
        .await
        .unwrap();
    assert_eq!(get_object(&c, "pvc-own", "data/one").await.unwrap(), b"one");
    assert!(get_object(&c, "pvc-own", "data/two").await.is_err());
    assert!(get_object(&c, "pvc-own", "x").await.is_err());
    // Into another prefix of the shared bucket, and as a clone.
    let mut r = from_snapshot("pvc-c", mib, "snapshot-a");
    r.parameters.insert("bucket".into(), "team-volumes".into());
    ctrl.create_volume(r).await.unwrap();
    assert_eq!(
        get_object(&c, "team-volumes", "pvc-c/data/one").await.unwrap(),
        b"one"
    );
    let mut r = from_volume("pvc-d", mib, &id);
    r.parameters.insert("bucket".into(), "team-volumes".into());
    ctrl.create_volume(r).await.unwrap();
    assert_eq!(
        get_object(&c, "team-volumes", "pvc-d/data/two").await.unwrap(),
        b"after"
    );
    assert!(get_object(&c, "team-volumes", "pvc-d/x").await.is_err());
}
