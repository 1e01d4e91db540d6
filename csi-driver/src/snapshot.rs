//! Volume snapshots, restores and clones. A snapshot is a clone of the
//! volume's objects, as they were when it was taken, kept under the prefix
//! `<snapshot id>/` of one bucket, [`SNAPSHOT_BUCKET`]; beside it, an empty
//! object named `<snapshot id>` records the source volume, the time and the
//! size in its metadata. objd clones without copying bytes (the shard files
//! are shared), so a snapshot costs metadata only, and later writes to the
//! volume, or its deletion, leave the snapshot as it was.
//!
//! Restoring (CreateVolume from a snapshot) and cloning (CreateVolume from
//! a volume) are the same clone into the new volume. The snapshot bucket is
//! never listed as a volume.

use crate::proto::*;
use crate::status::from_s3;
use crate::volume::{VolumeId, bucket_for};
use std::time::{SystemTime, UNIX_EPOCH};
use strata_s3client::Client;
use tonic::Status;

/// The bucket snapshots live in.
pub const SNAPSHOT_BUCKET: &str = "strata-csi-snapshots";

/// The metadata names of a snapshot's record.
const SOURCE: &str = "source-volume";
const CREATED: &str = "created-ns";
const SIZE: &str = "size-bytes";

/// A snapshot id: its name made a valid key component (the rules of
/// bucket names, which Kubernetes snapshot names already follow).
fn snapshot_id(name: &str) -> String {
    bucket_for(name)
}

/// Where a snapshot's objects are.
fn data_prefix(id: &str) -> String {
    format!("{id}/")
}

/// Refuses ids that cannot be ours (a `/` would reach into another
/// snapshot's objects).
fn check_id(id: &str) -> Result<(), Status> {
    if id.is_empty() {
        return Err(Status::invalid_argument("snapshot_id is required"));
    }
    if !crate::volume::valid_bucket(id) {
        return Err(Status::not_found(format!("no snapshot {id}")));
    }
    Ok(())
}

fn timestamp(ns: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ns.div_euclid(1_000_000_000),
        nanos: ns.rem_euclid(1_000_000_000) as i32,
    }
}

/// A snapshot as its record tells it; `None` when there is no record.
async fn read(c: &Client, id: &str) -> Result<Option<Snapshot>, Status> {
    match c.head_object(SNAPSHOT_BUCKET, id).await {
        Ok(info) => {
            let num = |name: &str| info.meta(name).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
            Ok(Some(Snapshot {
                size_bytes: num(SIZE),
                snapshot_id: id.to_owned(),
                source_volume_id: info.meta(SOURCE).unwrap_or_default().to_owned(),
                creation_time: Some(timestamp(num(CREATED))),
                ready_to_use: true,
                group_snapshot_id: String::new(),
            }))
        }
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(from_s3(&format!("snapshot {id}"), &e)),
    }
}

/// Clones `from` into `to`; returns the bytes cloned.
async fn clone_into(c: &Client, from: (&str, &str), to: (&str, &str)) -> Result<u64, Status> {
    let (_, bytes) = c
        .clone_objects(from, to)
        .await
        .map_err(|e| from_s3("cloning the volume's objects", &e))?;
    Ok(bytes)
}

/// CreateSnapshot: the volume's objects cloned under the snapshot's
/// prefix, then its record written. The same name again returns the same
/// snapshot; a name taken by another volume's snapshot is ALREADY_EXISTS.
pub async fn create(c: &Client, r: CreateSnapshotRequest) -> Result<Snapshot, Status> {
    if r.name.is_empty() {
        return Err(Status::invalid_argument("name is required"));
    }
    if r.source_volume_id.is_empty() {
        return Err(Status::invalid_argument("source_volume_id is required"));
    }
    if let Some(p) = r
        .parameters
        .keys()
        .find(|k| !k.starts_with("csi.storage.k8s.io/"))
    {
        return Err(Status::invalid_argument(format!(
            "unknown VolumeSnapshotClass parameter {p}"
        )));
    }
    let source = VolumeId::parse(&r.source_volume_id)?;
    let id = snapshot_id(&r.name);
    if let Some(s) = read(c, &id).await? {
        if s.source_volume_id == source.id() {
            return Ok(s);
        }
        return Err(Status::already_exists(format!(
            "snapshot {} exists for volume {}, not {}",
            r.name,
            s.source_volume_id,
            source.id()
        )));
    }
    crate::controller::require_volume(c, &source).await?;
    c.create_bucket(SNAPSHOT_BUCKET)
        .await
        .map_err(|e| from_s3("creating the snapshot bucket", &e))?;
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    // What an earlier attempt left goes first, so the snapshot holds
    // exactly the volume's objects.
    crate::controller::delete_all(c, SNAPSHOT_BUCKET, &data_prefix(&id)).await?;
    let size = clone_into(
        c,
        (&source.bucket, &source.prefix),
        (SNAPSHOT_BUCKET, &data_prefix(&id)),
    )
    .await?;
    let meta = [
        (SOURCE.to_owned(), source.id()),
        (CREATED.to_owned(), created.to_string()),
        (SIZE.to_owned(), size.to_string()),
    ];
    c.put_object(SNAPSHOT_BUCKET, &id, Default::default(), &meta)
        .await
        .map_err(|e| from_s3("recording the snapshot", &e))?;
    tracing::info!(snapshot = %id, volume = %source.id(), bytes = size, "snapshot taken");
    Ok(Snapshot {
        size_bytes: size as i64,
        snapshot_id: id,
        source_volume_id: source.id(),
        creation_time: Some(timestamp(created)),
        ready_to_use: true,
        group_snapshot_id: String::new(),
    })
}

/// DeleteSnapshot: the record first (the snapshot is gone for every
/// caller), then its objects. A snapshot that is not there is deleted.
pub async fn delete(c: &Client, id: &str) -> Result<(), Status> {
    if id.is_empty() {
        return Err(Status::invalid_argument("snapshot_id is required"));
    }
    if !crate::volume::valid_bucket(id) {
        return Ok(());
    }
    match c.delete_object(SNAPSHOT_BUCKET, id).await {
        Ok(()) => {}
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(from_s3("deleting the snapshot", &e)),
    }
    crate::controller::delete_all(c, SNAPSHOT_BUCKET, &data_prefix(id)).await?;
    tracing::info!(snapshot = %id, "snapshot deleted");
    Ok(())
}

/// ListSnapshots: one snapshot by id, or every snapshot (of one volume
/// with `source_volume_id`), a page of `max_entries` at a time.
pub async fn list(c: &Client, r: ListSnapshotsRequest) -> Result<ListSnapshotsResponse, Status> {
    if r.max_entries < 0 {
        return Err(Status::invalid_argument("max_entries must not be negative"));
    }
    let wanted = |s: &Snapshot| r.source_volume_id.is_empty() || s.source_volume_id == r.source_volume_id;
    if !r.snapshot_id.is_empty() {
        let found = match check_id(&r.snapshot_id) {
            Ok(()) => read(c, &r.snapshot_id).await?,
            Err(_) => None,
        };
        let entries = found
            .filter(wanted)
            .map(|s| list_snapshots_response::Entry { snapshot: Some(s) })
            .into_iter()
            .collect();
        return Ok(ListSnapshotsResponse {
            entries,
            next_token: String::new(),
        });
    }
    let max = if r.max_entries == 0 {
        1000
    } else {
        (r.max_entries as usize).min(1000)
    };
    let token = (!r.starting_token.is_empty()).then_some(r.starting_token.as_str());
    let page = match c.list(SNAPSHOT_BUCKET, "", Some("/"), token, max).await {
        Ok(p) => p,
        // No snapshot was ever taken.
        Err(e) if e.is_not_found() && token.is_none() => {
            return Ok(ListSnapshotsResponse::default());
        }
        Err(e) if e.is_not_found() || matches!(&e, strata_s3client::Error::S3 { status: 400, .. }) => {
            return Err(Status::aborted(format!("unknown starting_token: {e}")));
        }
        Err(e) => return Err(from_s3("listing snapshots", &e)),
    };
    let mut entries = Vec::with_capacity(page.objects.len());
    for o in &page.objects {
        // A snapshot deleted since the listing is no snapshot.
        if let Some(s) = read(c, &o.key).await?
            && wanted(&s)
        {
            entries.push(list_snapshots_response::Entry { snapshot: Some(s) });
        }
    }
    Ok(ListSnapshotsResponse {
        entries,
        next_token: page.next_token.filter(|_| page.truncated).unwrap_or_default(),
    })
}

/// What a new volume is filled from: the bucket and prefix to clone, the
/// bytes it holds (the least capacity the volume may have), and the
/// source as the volume reports it.
pub struct Source {
    pub from: (String, String),
    pub size: u64,
    pub content: VolumeContentSource,
}

/// The source a CreateVolume names: NOT_FOUND when it does not exist.
pub async fn source(c: &Client, s: &VolumeContentSource) -> Result<Source, Status> {
    use volume_content_source::Type;
    match &s.r#type {
        Some(Type::Snapshot(snap)) => {
            check_id(&snap.snapshot_id)?;
            let found = read(c, &snap.snapshot_id)
                .await?
                .ok_or_else(|| Status::not_found(format!("no snapshot {}", snap.snapshot_id)))?;
            Ok(Source {
                from: (SNAPSHOT_BUCKET.to_owned(), data_prefix(&snap.snapshot_id)),
                size: found.size_bytes as u64,
                content: s.clone(),
            })
        }
        Some(Type::Volume(v)) => {
            let id = VolumeId::parse(&v.volume_id)?;
            let usage = c
                .bucket_usage(&id.bucket)
                .await
                .map_err(|e| from_s3(&format!("volume {}", id.id()), &e))?;
            // A volume in a shared bucket has no size of its own.
            let size = if id.prefix.is_empty() { usage.bytes } else { 0 };
            Ok(Source {
                from: (id.bucket.clone(), id.prefix.clone()),
                size,
                content: s.clone(),
            })
        }
        None => Err(Status::invalid_argument(
            "volume_content_source names neither a snapshot nor a volume",
        )),
    }
}

impl Source {
    /// Fills the volume `to` (bucket and prefix) from this source.
    pub async fn fill(&self, c: &Client, to: &VolumeId) -> Result<(), Status> {
        clone_into(c, (&self.from.0, &self.from.1), (&to.bucket, &to.prefix))
            .await
            .map(|_| ())
    }
}

/// Whether a bucket is the driver's own (not a volume).
pub fn is_reserved(bucket: &str) -> bool {
    bucket == SNAPSHOT_BUCKET
}
