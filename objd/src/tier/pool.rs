//! Pools: further sets of drives of this deployment (an HDD pool beside
//! the NVMe one, say), each with its own erasure sets and parity. Records
//! stay in the namespace pool; a version whose storage class names a pool
//! keeps its data there as one object of the pool's own object layer
//! (bucket [`BUCKET`], key the hex id of its [`crate::meta::RemoteLoc`]),
//! framed as a remote tier's objects are. The pool's layer heals, compacts
//! and sweeps its drives as the namespace pool's does, and a write there
//! is as durable as one to the namespace pool: acknowledged once on write
//! quorum of the pool's drives, fsynced.
//!
//! Which pool is which is kept in the namespace pool (`pools/NAME` config
//! documents holding the pool's deployment id), so drives given under the
//! wrong pool name are refused at start.

use crate::object::cold::ColdStore;
use crate::object::{ByteStream, ObjectError, ObjectLayer, ObjectResult, PutOptions};
use bytes::Bytes;
use futures::StreamExt;
use std::sync::Arc;

/// The bucket of a pool's layer that holds its objects.
pub const BUCKET: &str = "strata-pool-data";
/// The configuration topic naming the pools (documents `pools/NAME`).
const TOPIC: &str = "pools";
const PREFIX: &str = "pools/";

/// A pool's layer, as the store of the versions whose data it keeps.
pub struct PoolStore {
    name: String,
    layer: Arc<ObjectLayer>,
}

impl PoolStore {
    /// The store of pool `name` over its opened layer: makes its bucket on
    /// first start, and refuses drives holding anything else.
    pub async fn open(name: &str, layer: Arc<ObjectLayer>) -> Result<Self, String> {
        let others: Vec<String> = layer
            .list_buckets()
            .into_iter()
            .map(|b| b.name)
            .filter(|b| b != BUCKET)
            .collect();
        if !others.is_empty() {
            return Err(format!(
                "pool {name}: its drives hold buckets ({}) of another deployment; give empty drives",
                others.join(", ")
            ));
        }
        if layer.bucket(BUCKET).is_err() {
            layer
                .make_bucket(BUCKET)
                .await
                .map_err(|e| format!("pool {name}: cannot be set up: {e}"))?;
        }
        Ok(Self {
            name: name.to_owned(),
            layer,
        })
    }

    /// The pool's own object layer.
    pub fn layer(&self) -> &Arc<ObjectLayer> {
        &self.layer
    }

    fn failed(&self, e: ObjectError) -> ObjectError {
        match e {
            ObjectError::SlowDown(_) | ObjectError::DiskFull => e,
            other => ObjectError::TierUnavailable(format!("pool {}: {other}", self.name)),
        }
    }
}

/// The pools the namespace `layer` records: name -> the deployment id
/// of the pool's drives.
pub async fn recorded(layer: &ObjectLayer) -> Result<std::collections::BTreeMap<String, String>, String> {
    let docs = layer
        .config_documents(PREFIX)
        .await
        .map_err(|e| format!("reading the pools: {e}"))?;
    Ok(docs
        .into_iter()
        .map(|(doc, id)| {
            (
                doc[PREFIX.len()..].to_owned(),
                String::from_utf8_lossy(&id).into_owned(),
            )
        })
        .collect())
}

/// Checks that each pool `(name, pool_id)` given is the deployment its
/// drives were formatted as, recording it on first start; and that every
/// pool `known` records (as [`recorded`] read them) is given.
pub async fn register(
    layer: &ObjectLayer,
    known: &std::collections::BTreeMap<String, String>,
    pools: &[(String, String)],
) -> Result<(), String> {
    for (name, id) in known {
        match pools.iter().find(|(n, _)| n == name) {
            None => {
                return Err(format!(
                    "pool {name} is part of this deployment but was not given: add --pool {name}=DRIVES"
                ));
            }
            Some((_, given)) if given != id => {
                return Err(format!(
                    "the drives given for pool {name} belong to another pool or deployment; give the drives it was formatted with"
                ));
            }
            Some(_) => {}
        }
    }
    let new: Vec<(String, Option<Vec<u8>>)> = pools
        .iter()
        .filter(|(n, _)| !known.contains_key(n))
        .map(|(n, id)| (format!("{PREFIX}{n}"), Some(id.as_bytes().to_vec())))
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    layer
        .change_config(TOPIC, PREFIX, |_| Ok((new, ())))
        .await
        .map_err(|e| format!("recording the pools: {e}"))
}

#[async_trait::async_trait]
impl ColdStore for PoolStore {
    async fn upload(&self, _: &str, id: [u8; 16], body: ByteStream, len: u64) -> ObjectResult<()> {
        let opts = PutOptions {
            size: Some(len),
            undigested: true,
            ..Default::default()
        };
        self.layer
            .put_object(BUCKET, &hex::encode(id), body, opts)
            .await
            .map(|_| ())
            .map_err(|e| self.failed(e))
    }

    async fn read(&self, _: &str, id: [u8; 16], start: u64, end: u64) -> ObjectResult<Bytes> {
        let reader = self
            .layer
            .head_object(BUCKET, &hex::encode(id), None)
            .await
            .map_err(|e| self.failed(e))?;
        let end = end.min(reader.version().size);
        let mut body = reader
            .stream_charged(start.min(end), end)
            .await
            .map_err(|e| self.failed(e))?;
        let mut out = bytes::BytesMut::with_capacity((end - start.min(end)) as usize);
        while let Some(c) = body.next().await {
            let c = c.map_err(|e| self.failed(ObjectError::Internal(e.to_string())))?;
            out.extend_from_slice(&c);
        }
        Ok(out.freeze())
    }

    async fn delete(&self, _: &str, id: [u8; 16]) -> ObjectResult<()> {
        match self
            .layer
            .delete_object(BUCKET, &hex::encode(id), None, false)
            .await
        {
            Ok(_) | Err(ObjectError::NoSuchKey) => Ok(()),
            Err(e) => Err(self.failed(e)),
        }
    }

    async fn has_tier(&self, tier: &str) -> ObjectResult<bool> {
        Ok(tier == self.name)
    }
}
