//! The CSI Controller service: a volume is a bucket whose quota is the
//! volume's capacity (or, with the StorageClass parameter `bucket`, a
//! prefix of that shared bucket, whose capacity is reported but not
//! enforced). Every call is idempotent: creating a volume that exists with
//! the same capacity returns it, deleting one that is gone succeeds. With a
//! `volumeKey` in the provisioner secret, each volume gets a service
//! account of its own ([`crate::volume::volume_credentials`]), deleted
//! with the volume.

use crate::backend::Backend;
use crate::proto::controller_server::Controller;
use crate::proto::controller_service_capability::{Rpc, Type, rpc};
use crate::proto::*;
use crate::snapshot::{Source, is_reserved};
use crate::status::from_s3;
use crate::volume::{
    Tiering, VolumeId, bucket_for, capacity, check_capabilities, encryption, policy_kms_keys,
    volume_credentials, volume_key, volume_policy, volume_policy_keys,
};
use std::collections::HashMap;
use strata_s3client::{BucketUsage, Client};
use tonic::{Request, Response, Status};

#[derive(Debug)]
pub struct ControllerService {
    pub backend: Backend,
}

/// Deletes every object under `prefix` of `bucket`, a page at a time,
/// and aborts the multipart uploads left there (a writer that died
/// mid-upload leaves one, and it would keep the bucket from going).
pub(crate) async fn delete_all(c: &Client, bucket: &str, prefix: &str) -> Result<(), Status> {
    loop {
        let uploads = c
            .list_uploads(bucket, prefix)
            .await
            .map_err(|e| from_s3("listing the volume's uploads", &e))?;
        if uploads.is_empty() {
            break;
        }
        for (key, id) in &uploads {
            match c.abort_multipart(bucket, key, id).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(from_s3("aborting an upload of the volume", &e)),
            }
        }
    }
    loop {
        let page = c
            .list(bucket, prefix, None, None, 1000)
            .await
            .map_err(|e| from_s3("listing the volume", &e))?;
        if page.objects.is_empty() {
            return Ok(());
        }
        for o in &page.objects {
            match c.delete_object(bucket, &o.key).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(from_s3("deleting the volume's data", &e)),
            }
        }
    }
}

fn volume(id: &VolumeId, capacity: u64) -> Volume {
    volume_from(id, capacity, None)
}

/// A volume filled from `source` (returned as its content source).
fn volume_from(id: &VolumeId, capacity: u64, source: Option<&Source>) -> Volume {
    let mut ctx = HashMap::new();
    ctx.insert("bucket".to_owned(), id.bucket.clone());
    if !id.prefix.is_empty() {
        ctx.insert("prefix".to_owned(), id.prefix.clone());
    }
    Volume {
        capacity_bytes: capacity as i64,
        volume_id: id.id(),
        volume_context: ctx,
        content_source: source.map(|s| s.content.clone()),
    }
}

/// Makes sure the volume has its own service account when the secrets
/// carry a `volumeKey` (or with `remove`, that it has none).
async fn volume_account(
    c: &Client,
    secrets: &HashMap<String, String>,
    id: &VolumeId,
    change: Account<'_>,
) -> Result<(), Status> {
    let Some(key) = volume_key(secrets)? else {
        return Ok(());
    };
    let (access_key, secret_key) = volume_credentials(key, &id.id());
    let failed = |e| from_s3("the volume's service account", &e);
    let policy = match change {
        Account::Remove => return c.delete_service_account(&access_key).await.map_err(failed),
        Account::Grant(kms_key) => volume_policy(id, kms_key),
        Account::Regrant(kms_key) => {
            let before = c.service_account_policy(&access_key).await.map_err(failed)?;
            let older = before.as_deref().map(policy_kms_keys).unwrap_or_default();
            volume_policy_keys(id, kms_key, &older)
        }
    };
    c.ensure_service_account(&access_key, &secret_key, &policy)
        .await
        .map_err(failed)
}

/// What becomes of a volume's own service account.
enum Account<'a> {
    /// It exists, with the KMS key of the volume's encryption (if any).
    Grant(Option<&'a str>),
    /// It takes a new KMS key (or none) and keeps opening what the keys
    /// it had sealed.
    Regrant(Option<&'a str>),
    Remove,
}

/// The quota of a bucket (its capacity), `NOT_FOUND` if it does not exist.
async fn quota(c: &Client, bucket: &str) -> Result<Option<u64>, Status> {
    c.bucket_usage(bucket)
        .await
        .map(|u| u.quota)
        .map_err(|e| from_s3(&format!("volume {bucket}"), &e))
}

/// A volume's condition as objd reports its bucket: abnormal when the
/// quota is reached (writes fail until it is expanded).
fn condition(usage: &BucketUsage) -> VolumeCondition {
    match usage.quota {
        Some(q) if usage.bytes >= q => VolumeCondition {
            abnormal: true,
            message: format!(
                "the quota of {q} bytes is reached ({} bytes stored): writes fail until the volume is expanded or data is removed",
                usage.bytes
            ),
        },
        _ => VolumeCondition {
            abnormal: false,
            message: format!("{} bytes stored", usage.bytes),
        },
    }
}

/// A bucket's volume (size: its quota) and condition, as objd reports
/// them; an answer from objd that is not one becomes the condition.
async fn volume_state(c: &Client, id: &VolumeId) -> Result<(Volume, VolumeCondition), Status> {
    match c.bucket_usage(&id.bucket).await {
        Ok(u) => Ok((volume(id, u.quota.unwrap_or(0)), condition(&u))),
        Err(e) if e.is_not_found() => Err(from_s3(&format!("volume {}", id.id()), &e)),
        Err(e) => {
            let trouble = VolumeCondition {
                abnormal: true,
                message: format!("objd cannot tell the volume's usage: {e}"),
            };
            Ok((volume(id, 0), trouble))
        }
    }
}

/// NOT_FOUND unless the volume's bucket exists.
pub(crate) async fn require_volume(c: &Client, id: &VolumeId) -> Result<(), Status> {
    if c.bucket_exists(&id.bucket)
        .await
        .map_err(|e| from_s3("volume", &e))?
    {
        Ok(())
    } else {
        Err(Status::not_found(format!("no volume {}", id.id())))
    }
}

/// The storage class a volume's writes ask for (`storageClass`: one of
/// objd's, such as a pool's `CAPACITY`); `None` for STANDARD.
fn class_of(params: &HashMap<String, String>) -> Result<Option<String>, Status> {
    match params.get("storageClass").map(String::as_str) {
        None | Some("STANDARD") => Ok(None),
        Some(c)
            if !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            Ok(Some(c.to_owned()))
        }
        Some(c) => Err(Status::invalid_argument(format!(
            "storageClass {c:?} is not a class name"
        ))),
    }
}

/// Checks with objd that `class` is one it offers: a write of an empty
/// object in that class to the volume's place, removed again.
async fn check_class(c: &Client, id: &VolumeId, class: &str) -> Result<(), Status> {
    let probe = format!("{}.strata-storage-class-check", id.prefix);
    c.clone()
        .with_storage_class(Some(class.to_owned()))
        .put_object(&id.bucket, &probe, Default::default(), &[])
        .await
        .map_err(|e| {
            from_s3(
                &format!("writing in storageClass {class} (is it a pool or tier of objd?)"),
                &e,
            )
        })?;
    c.delete_object(&id.bucket, &probe)
        .await
        .map_err(|e| from_s3("removing the storage class check", &e))
}

/// The volume, with the storage class its mounts write in.
fn classed(mut v: Volume, class: Option<&String>) -> Volume {
    if let Some(c) = class {
        v.volume_context.insert("storageClass".to_owned(), c.clone());
    }
    v
}

/// Parameters a StorageClass may give a volume with a bucket of its own.
const BUCKET_PARAMS: [&str; 5] = [
    "storageClass",
    "encryption",
    "kmsKeyId",
    "tierAfterDays",
    "tierClass",
];

/// Sets (or, with `None`, removes) the bucket lifecycle that tiers a
/// volume's data.
async fn set_tiering(c: &Client, bucket: &str, tiering: Option<&Tiering>) -> Result<(), Status> {
    c.put_bucket_lifecycle(bucket, tiering.map(Tiering::lifecycle_xml))
        .await
        .map_err(|e| {
            from_s3(
                "setting the volume's tiering (is tierClass a remote tier of objd?)",
                &e,
            )
        })
}

#[tonic::async_trait]
impl Controller for ControllerService {
    async fn create_volume(
        &self,
        r: Request<CreateVolumeRequest>,
    ) -> Result<Response<CreateVolumeResponse>, Status> {
        let r = r.into_inner();
        if r.name.is_empty() {
            return Err(Status::invalid_argument("name is required"));
        }
        check_capabilities(&r.volume_capabilities)?;
        let size = capacity(r.capacity_range.as_ref())?;
        let class = class_of(&r.parameters)?;
        let c = self.backend.client(&r.secrets)?;
        let source = match &r.volume_content_source {
            Some(s) => Some(crate::snapshot::source(&c, s).await?),
            None => None,
        };
        if let Some(s) = &source
            && s.size > size
        {
            return Err(Status::out_of_range(format!(
                "the source holds {} bytes, more than the {size} bytes asked for",
                s.size
            )));
        }
        let name = bucket_for(&r.name);
        let sealed = encryption(&r.parameters)?;
        let tiering = Tiering::of(&r.parameters)?;
        let kms_key = sealed.as_ref().and_then(|(_, k)| k.as_deref());
        // The bucket's default encryption, set before any data lands.
        let seal = async |bucket: &str| -> Result<(), Status> {
            if let Some((algorithm, key)) = &sealed {
                c.put_bucket_encryption(bucket, algorithm, key.as_deref())
                    .await
                    .map_err(|e| from_s3("setting the bucket's default encryption", &e))?;
            }
            Ok(())
        };
        if let Some(shared) = r.parameters.get("bucket") {
            // A prefix of a shared bucket.
            if tiering.is_some() {
                return Err(Status::invalid_argument(
                    "tierAfterDays and tierClass apply to volumes with a bucket of their own, not prefixes of a shared bucket",
                ));
            }
            let id = VolumeId::parse(&format!("{shared}/{name}")).map_err(|_| {
                Status::invalid_argument(format!("parameter bucket={shared} is not a bucket name"))
            })?;
            if c.create_bucket(&id.bucket)
                .await
                .map_err(|e| from_s3("creating the shared bucket", &e))?
            {
                seal(&id.bucket).await?;
            }
            c.put_object(&id.bucket, &id.prefix, Default::default(), &[])
                .await
                .map_err(|e| from_s3("creating the volume's directory", &e))?;
            if let Some(class) = &class {
                check_class(&c, &id, class).await?;
            }
            if let Some(s) = &source {
                s.fill(&c, &id).await?;
            }
            volume_account(&c, &r.secrets, &id, Account::Grant(kms_key)).await?;
            return Ok(Response::new(CreateVolumeResponse {
                volume: Some(classed(volume_from(&id, size, source.as_ref()), class.as_ref())),
            }));
        }
        if let Some(p) = r
            .parameters
            .keys()
            .find(|k| !k.starts_with("csi.storage.k8s.io/") && !BUCKET_PARAMS.contains(&k.as_str()))
        {
            return Err(Status::invalid_argument(format!(
                "unknown StorageClass parameter {p}"
            )));
        }
        let id = VolumeId {
            bucket: name,
            prefix: String::new(),
        };
        let created = c
            .create_bucket(&id.bucket)
            .await
            .map_err(|e| from_s3("creating the bucket", &e))?;
        seal(&id.bucket).await?;
        let placed = match &class {
            Some(class) => check_class(&c, &id, class).await,
            None => Ok(()),
        };
        if let Err(e) = placed {
            if created {
                let _ = c.delete_bucket(&id.bucket).await;
            }
            return Err(e);
        }
        if tiering.is_some()
            && let Err(e) = set_tiering(&c, &id.bucket, tiering.as_ref()).await
        {
            if created {
                // Refused (a class that names no tier): no volume, and no
                // empty bucket left behind.
                let _ = c.delete_bucket(&id.bucket).await;
            }
            return Err(e);
        }
        if !created {
            // The same request again (or a retry after a partial failure)
            // gets the same volume; another capacity is another volume.
            // The quota is set last: a bucket without one is a volume whose
            // creation did not finish.
            match quota(&c, &id.bucket).await? {
                Some(q) if q == size => {
                    volume_account(&c, &r.secrets, &id, Account::Grant(kms_key)).await?;
                    return Ok(Response::new(CreateVolumeResponse {
                        volume: Some(classed(volume_from(&id, size, source.as_ref()), class.as_ref())),
                    }));
                }
                Some(q) => {
                    return Err(Status::already_exists(format!(
                        "volume {} exists with a capacity of {q} bytes, not {size}",
                        id.id()
                    )));
                }
                None if source.is_some() => delete_all(&c, &id.bucket, "").await?,
                None => {}
            }
        }
        if let Some(s) = &source {
            s.fill(&c, &id).await?;
        }
        c.set_bucket_quota(&id.bucket, Some(size))
            .await
            .map_err(|e| from_s3("setting the volume's quota", &e))?;
        volume_account(&c, &r.secrets, &id, Account::Grant(kms_key)).await?;
        tracing::info!(volume = %id.id(), capacity = size, "volume created");
        Ok(Response::new(CreateVolumeResponse {
            volume: Some(classed(volume_from(&id, size, source.as_ref()), class.as_ref())),
        }))
    }

    async fn delete_volume(
        &self,
        r: Request<DeleteVolumeRequest>,
    ) -> Result<Response<DeleteVolumeResponse>, Status> {
        let r = r.into_inner();
        let id = match VolumeId::parse(&r.volume_id) {
            Ok(id) => id,
            // Not a volume of ours: nothing to delete.
            Err(s) if s.code() == tonic::Code::NotFound => return Ok(Response::new(DeleteVolumeResponse {})),
            Err(s) => return Err(s),
        };
        let c = self.backend.client(&r.secrets)?;
        // The account first: a volume being deleted takes no more writes.
        volume_account(&c, &r.secrets, &id, Account::Remove).await?;
        if !c
            .bucket_exists(&id.bucket)
            .await
            .map_err(|e| from_s3("volume", &e))?
        {
            return Ok(Response::new(DeleteVolumeResponse {}));
        }
        delete_all(&c, &id.bucket, &id.prefix).await?;
        if id.prefix.is_empty() {
            match c.delete_bucket(&id.bucket).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(from_s3("deleting the bucket", &e)),
            }
        }
        tracing::info!(volume = %id.id(), "volume deleted");
        Ok(Response::new(DeleteVolumeResponse {}))
    }

    async fn validate_volume_capabilities(
        &self,
        r: Request<ValidateVolumeCapabilitiesRequest>,
    ) -> Result<Response<ValidateVolumeCapabilitiesResponse>, Status> {
        let r = r.into_inner();
        let id = VolumeId::parse(&r.volume_id)?;
        if r.volume_capabilities.is_empty() {
            return Err(Status::invalid_argument("volume_capabilities are required"));
        }
        let c = self.backend.client(&r.secrets)?;
        require_volume(&c, &id).await?;
        Ok(Response::new(match check_capabilities(&r.volume_capabilities) {
            Ok(()) => ValidateVolumeCapabilitiesResponse {
                confirmed: Some(validate_volume_capabilities_response::Confirmed {
                    volume_context: r.volume_context,
                    volume_capabilities: r.volume_capabilities,
                    parameters: r.parameters,
                }),
                message: String::new(),
            },
            Err(s) => ValidateVolumeCapabilitiesResponse {
                confirmed: None,
                message: s.message().to_owned(),
            },
        }))
    }

    /// Every bucket the driver's credentials see, in name order, a page
    /// of `max_entries` at a time; the token is the last name returned.
    async fn list_volumes(
        &self,
        r: Request<ListVolumesRequest>,
    ) -> Result<Response<ListVolumesResponse>, Status> {
        let r = r.into_inner();
        if r.max_entries < 0 {
            return Err(Status::invalid_argument("max_entries must not be negative"));
        }
        let c = self.backend.client(&HashMap::new())?;
        let names = c
            .list_buckets()
            .await
            .map_err(|e| from_s3("listing buckets", &e))?;
        // The snapshots' bucket is not a volume.
        let names: Vec<String> = names.into_iter().filter(|b| !is_reserved(b)).collect();
        let start = if r.starting_token.is_empty() {
            0
        } else {
            match names.binary_search(&r.starting_token) {
                Ok(i) => i + 1,
                Err(_) => {
                    return Err(Status::aborted(format!(
                        "unknown starting_token {}",
                        r.starting_token
                    )));
                }
            }
        };
        let max = if r.max_entries == 0 {
            usize::MAX
        } else {
            r.max_entries as usize
        };
        let page: Vec<&String> = names[start..].iter().take(max).collect();
        let mut entries = Vec::with_capacity(page.len());
        for b in &page {
            let id = VolumeId {
                bucket: (*b).clone(),
                prefix: String::new(),
            };
            // A bucket deleted since the listing is no volume any more.
            let Ok((v, condition)) = volume_state(&c, &id).await else {
                continue;
            };
            entries.push(list_volumes_response::Entry {
                volume: Some(v),
                status: Some(list_volumes_response::VolumeStatus {
                    published_node_ids: Vec::new(),
                    volume_condition: Some(condition),
                }),
            });
        }
        let next_token = if start + page.len() < names.len() {
            page.last().map(|b| (*b).clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListVolumesResponse { entries, next_token }))
    }

    async fn get_capacity(
        &self,
        _r: Request<GetCapacityRequest>,
    ) -> Result<Response<GetCapacityResponse>, Status> {
        let c = self.backend.client(&HashMap::new())?;
        let free = c.usable_free().await.map_err(|e| from_s3("server space", &e))?;
        Ok(Response::new(GetCapacityResponse {
            available_capacity: free.min(i64::MAX as u64) as i64,
        }))
    }

    async fn controller_get_capabilities(
        &self,
        _r: Request<ControllerGetCapabilitiesRequest>,
    ) -> Result<Response<ControllerGetCapabilitiesResponse>, Status> {
        let capabilities = [
            rpc::Type::CreateDeleteVolume,
            rpc::Type::ListVolumes,
            rpc::Type::GetCapacity,
            rpc::Type::ExpandVolume,
            rpc::Type::VolumeCondition,
            rpc::Type::GetVolume,
            rpc::Type::CreateDeleteSnapshot,
            rpc::Type::ListSnapshots,
            rpc::Type::CloneVolume,
            rpc::Type::ModifyVolume,
        ]
        .into_iter()
        .map(|t| ControllerServiceCapability {
            r#type: Some(Type::Rpc(Rpc { r#type: t as i32 })),
        })
        .collect();
        Ok(Response::new(ControllerGetCapabilitiesResponse { capabilities }))
    }

    /// A volume and its condition as objd sees it (NOT_FOUND once its
    /// bucket is gone).
    async fn controller_get_volume(
        &self,
        r: Request<ControllerGetVolumeRequest>,
    ) -> Result<Response<ControllerGetVolumeResponse>, Status> {
        let id = VolumeId::parse(&r.into_inner().volume_id)?;
        let c = self.backend.client(&HashMap::new())?;
        let (v, condition) = volume_state(&c, &id).await?;
        Ok(Response::new(ControllerGetVolumeResponse {
            volume: Some(v),
            status: Some(controller_get_volume_response::VolumeStatus {
                published_node_ids: Vec::new(),
                volume_condition: Some(condition),
            }),
        }))
    }

    /// Raises the bucket's quota; a volume is never shrunk.
    async fn controller_expand_volume(
        &self,
        r: Request<ControllerExpandVolumeRequest>,
    ) -> Result<Response<ControllerExpandVolumeResponse>, Status> {
        let r = r.into_inner();
        let id = VolumeId::parse(&r.volume_id)?;
        if let Some(cap) = &r.volume_capability {
            crate::volume::check_capability(cap)?;
        }
        let want = capacity(r.capacity_range.as_ref())?;
        let c = self.backend.client(&r.secrets)?;
        let size = if id.prefix.is_empty() {
            let current = quota(&c, &id.bucket).await?;
            match current {
                Some(q) if q >= want => q,
                _ => {
                    c.set_bucket_quota(&id.bucket, Some(want))
                        .await
                        .map_err(|e| from_s3("raising the volume's quota", &e))?;
                    tracing::info!(volume = %id.id(), capacity = want, "volume expanded");
                    want
                }
            }
        } else {
            want
        };
        Ok(Response::new(ControllerExpandVolumeResponse {
            capacity_bytes: size as i64,
            node_expansion_required: false,
        }))
    }

    async fn create_snapshot(
        &self,
        r: Request<CreateSnapshotRequest>,
    ) -> Result<Response<CreateSnapshotResponse>, Status> {
        let r = r.into_inner();
        let c = self.backend.client(&r.secrets)?;
        let snapshot = crate::snapshot::create(&c, r).await?;
        Ok(Response::new(CreateSnapshotResponse {
            snapshot: Some(snapshot),
        }))
    }

    async fn delete_snapshot(
        &self,
        r: Request<DeleteSnapshotRequest>,
    ) -> Result<Response<DeleteSnapshotResponse>, Status> {
        let r = r.into_inner();
        let c = self.backend.client(&r.secrets)?;
        crate::snapshot::delete(&c, &r.snapshot_id).await?;
        Ok(Response::new(DeleteSnapshotResponse {}))
    }

    async fn list_snapshots(
        &self,
        r: Request<ListSnapshotsRequest>,
    ) -> Result<Response<ListSnapshotsResponse>, Status> {
        let r = r.into_inner();
        let c = self.backend.client(&r.secrets)?;
        Ok(Response::new(crate::snapshot::list(&c, r).await?))
    }

    /// Applies a VolumeAttributesClass: `storageClass` (only as at
    /// creation: the mounts write in the class the volume was made with)
    /// and the bucket's default encryption (`encryption`,
    /// `kmsKeyId`), which seals what is written from then on; the
    /// volume's own credentials are granted the new KMS key in place.
    async fn controller_modify_volume(
        &self,
        r: Request<ControllerModifyVolumeRequest>,
    ) -> Result<Response<ControllerModifyVolumeResponse>, Status> {
        let r = r.into_inner();
        let id = VolumeId::parse(&r.volume_id)?;
        let params = &r.mutable_parameters;
        if let Some(p) = params.keys().find(|k| !BUCKET_PARAMS.contains(&k.as_str())) {
            return Err(Status::invalid_argument(format!(
                "{p} cannot be changed: a VolumeAttributesClass may set {}",
                BUCKET_PARAMS.join(", ")
            )));
        }
        if class_of(params)?.is_some() {
            return Err(Status::invalid_argument(
                "storageClass is fixed when the volume is created (its mounts write in it); \
                 use tierAfterDays and tierClass to move the volume's data as it ages",
            ));
        }
        let sealed = encryption(params)?;
        let tiering = Tiering::of(params)?;
        let c = self.backend.client(&r.secrets)?;
        require_volume(&c, &id).await?;
        if let Some(t) = &tiering {
            if !id.prefix.is_empty() {
                return Err(Status::invalid_argument(
                    "a volume in a shared bucket is tiered as its bucket is: change the bucket's lifecycle instead",
                ));
            }
            set_tiering(&c, &id.bucket, Some(t)).await?;
            tracing::info!(volume = %id.id(), days = t.days, class = %t.class, "volume tiering changed");
        }
        if let Some((algorithm, key)) = &sealed {
            if !id.prefix.is_empty() {
                return Err(Status::invalid_argument(
                    "a volume in a shared bucket is encrypted as its bucket is: change the bucket's encryption instead",
                ));
            }
            // The credentials first, so no write is refused the new key;
            // they keep opening what the keys before sealed.
            volume_account(&c, &r.secrets, &id, Account::Regrant(key.as_deref())).await?;
            c.put_bucket_encryption(&id.bucket, algorithm, key.as_deref())
                .await
                .map_err(|e| from_s3("setting the bucket's default encryption", &e))?;
            tracing::info!(volume = %id.id(), %algorithm, "volume encryption changed");
        }
        Ok(Response::new(ControllerModifyVolumeResponse {}))
    }
}
