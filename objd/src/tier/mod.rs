//! Remote tiers: S3-compatible endpoints (AWS S3, GCS's S3 API, another
//! Strata, SeaweedFS, ...) this deployment may move object data to. This
//! module owns the registry: a tier is a named endpoint, bucket, prefix,
//! region, optional CA certificates and credentials, kept as a
//! configuration document on every drive (`tiers/NAME`) with the secret
//! key sealed under a key derived from the root secret (bound to the
//! tier's name), so every node reads the same tiers and no drive holds a
//! usable credential. A tier is verified (a probe object written, read
//! back and deleted under its prefix) before it is added, and on demand.
//! Nothing here ever prints or returns a secret.
//!
//! [`Tiers`] is also the object layer's [`ColdStore`]: the data of
//! versions moved to a tier lives there as `PREFIX/data/ID` (an opaque id;
//! no bucket or key name reaches the tier), written with a single PUT or,
//! past [`PART`], a multipart upload.

pub mod pool;
#[cfg(test)]
mod tests;

use crate::iam::seal::Sealer;
use crate::object::cold::ColdStore;
use crate::object::{ByteStream, ObjectError, ObjectLayer, ObjectResult};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strata_s3client::{Client, Signer, Tls};

/// The configuration topic of tiers (documents `tiers/NAME`).
const TOPIC: &str = "tiers";
const PREFIX: &str = "tiers/";
/// How long a verification may take, each request.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one request moving data may take.
const DATA_TIMEOUT: Duration = Duration::from_secs(120);
/// Objects up to this size go in one PUT; larger ones in parts of this
/// size (more for objects past 10,000 parts' worth).
pub const PART: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum TierError {
    #[error("{0}")]
    Invalid(String),
    #[error("tier {0} exists already")]
    Exists(String),
    #[error("no tier named {0}")]
    NotFound(String),
    /// Objects live in the tier (or may: it could not be asked).
    #[error("{0}")]
    InUse(String),
    /// The endpoint does not answer (network, TLS, timeouts).
    #[error("tier endpoint unreachable: {0}")]
    Unreachable(String),
    /// The endpoint answers and refuses (credentials, bucket, policy).
    #[error("tier refused the request: {0}")]
    Refused(String),
    /// A stored credential does not open with this root secret key.
    #[error("the tier's stored credentials do not open with this deployment's root secret key")]
    Unsealable,
    #[error(transparent)]
    Store(#[from] ObjectError),
}

pub type TierResult<T> = Result<T, TierError>;

/// A tier as an operator adds it.
#[derive(Clone, Deserialize)]
pub struct TierSpec {
    pub name: String,
    pub endpoint: String,
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// PEM of CA certificates to trust besides the system's.
    #[serde(default)]
    pub ca_pem: Option<String>,
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for TierSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TierSpec")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

fn default_region() -> String {
    "us-east-1".into()
}

/// A tier as the drives keep it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    name: String,
    endpoint: String,
    bucket: String,
    prefix: String,
    region: String,
    ca_pem: Option<String>,
    access_key: String,
    /// The secret key, sealed ([`Sealer::seal`], bound to the name).
    sealed_secret: String,
}

/// A tier as it is shown: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierInfo {
    pub name: String,
    pub endpoint: String,
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    /// Whether CA certificates of its own are trusted.
    pub custom_ca: bool,
    pub access_key: String,
}

impl From<&Stored> for TierInfo {
    fn from(s: &Stored) -> Self {
        TierInfo {
            name: s.name.clone(),
            endpoint: s.endpoint.clone(),
            bucket: s.bucket.clone(),
            prefix: s.prefix.clone(),
            region: s.region.clone(),
            custom_ca: s.ca_pem.is_some(),
            access_key: s.access_key.clone(),
        }
    }
}

/// What a verification did.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub name: String,
    /// Milliseconds for the probe's write, read and delete together.
    pub round_trip_ms: u64,
}

/// The tiers of this deployment.
pub struct Tiers {
    layer: Arc<ObjectLayer>,
    sealer: Sealer,
    /// Data clients by tier name, made on first use; dropped when the
    /// tiers change (here or on another node).
    clients: Mutex<HashMap<String, Arc<Remote>>>,
}

/// A tier's data client, and where its objects go.
struct Remote {
    client: Client,
    bucket: String,
    prefix: String,
}

impl Remote {
    fn name(&self, id: [u8; 16]) -> String {
        format!("{}data/{}", self.prefix, hex::encode(id))
    }
}

impl std::fmt::Debug for Tiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tiers")
    }
}

/// A tier's name: 1-63 of a-z, 0-9 and `-`, as storage class names go.
fn check_name(name: &str) -> TierResult<()> {
    if crate::object::placement::valid_place_name(name) {
        Ok(())
    } else {
        Err(TierError::Invalid(format!(
            "tier name {name:?}: 1 to 63 characters of a-z, 0-9 and -"
        )))
    }
}

impl Tiers {
    /// The tiers of `layer`, also made its cold store.
    pub fn open(layer: Arc<ObjectLayer>, root_secret: &str) -> Arc<Self> {
        let tiers = Arc::new(Tiers {
            layer: Arc::clone(&layer),
            sealer: Sealer::labelled(root_secret, "strata tier credentials v1"),
            clients: Mutex::default(),
        });
        let weak = Arc::downgrade(&tiers);
        layer.on_config_change(
            TOPIC,
            Arc::new(move || {
                if let Some(t) = weak.upgrade() {
                    t.forget_clients();
                }
                Box::pin(async {})
            }),
        );
        layer.set_cold_store(Arc::clone(&tiers) as Arc<dyn ColdStore>);
        tiers
    }

    fn forget_clients(&self) {
        self.clients.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The data client of a tier.
    async fn remote(&self, name: &str) -> TierResult<Arc<Remote>> {
        if let Some(r) = self.clients.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
            return Ok(Arc::clone(r));
        }
        let stored = self.find(name).await?;
        let remote = Arc::new(Remote {
            client: self.client_of(&stored)?.with_timeout(DATA_TIMEOUT),
            bucket: stored.bucket,
            prefix: stored.prefix,
        });
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), Arc::clone(&remote));
        Ok(remote)
    }

    /// Whether a tier of this name is registered.
    pub async fn exists(&self, name: &str) -> TierResult<bool> {
        match self.find(name).await {
            Ok(_) => Ok(true),
            Err(TierError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn stored(&self) -> TierResult<Vec<Stored>> {
        let docs = self.layer.config_documents(PREFIX).await?;
        Ok(docs
            .values()
            .filter_map(|d| match serde_json::from_slice::<Stored>(d) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::error!(error = %e, "unreadable tier document");
                    None
                }
            })
            .collect())
    }

    async fn find(&self, name: &str) -> TierResult<Stored> {
        self.stored()
            .await?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| TierError::NotFound(name.to_owned()))
    }

    pub async fn list(&self) -> TierResult<Vec<TierInfo>> {
        Ok(self.stored().await?.iter().map(TierInfo::from).collect())
    }

    /// Adds a tier once a probe through it worked.
    pub async fn add(&self, spec: TierSpec) -> TierResult<TierInfo> {
        check_name(&spec.name)?;
        if self.layer.placement().is_taken(&spec.name) {
            return Err(TierError::Invalid(format!(
                "{} names a pool or storage class of this deployment; choose another tier name",
                spec.name
            )));
        }
        if !(spec.endpoint.starts_with("http://") || spec.endpoint.starts_with("https://")) {
            return Err(TierError::Invalid(
                "the endpoint must start with http:// or https://".into(),
            ));
        }
        if spec.bucket.is_empty() || spec.access_key.is_empty() || spec.secret_key.is_empty() {
            return Err(TierError::Invalid("a tier needs a bucket and credentials".into()));
        }
        let stored = Stored {
            name: spec.name.clone(),
            endpoint: spec.endpoint.trim_end_matches('/').to_owned(),
            bucket: spec.bucket.clone(),
            prefix: spec.prefix.clone(),
            region: spec.region.clone(),
            ca_pem: spec.ca_pem.clone().filter(|p| !p.trim().is_empty()),
            access_key: spec.access_key.clone(),
            sealed_secret: self.sealer.seal(&spec.name, &spec.secret_key),
        };
        probe(&self.connect(&stored, &spec.secret_key)?, &stored).await?;
        let doc = serde_json::to_vec(&stored).map_err(|e| TierError::Invalid(e.to_string()))?;
        let name = format!("{PREFIX}{}", spec.name);
        let added = self
            .layer
            .change_config(TOPIC, PREFIX, |now| {
                if now.contains_key(&name) {
                    return Ok((Vec::new(), false));
                }
                Ok((vec![(name.clone(), Some(doc))], true))
            })
            .await?;
        if !added {
            return Err(TierError::Exists(spec.name));
        }
        Ok(TierInfo::from(&stored))
    }

    /// Removes a tier in which no object of this deployment lives: its
    /// `data/` prefix must be empty (versions moved there, and remote
    /// objects waiting to be removed, keep it; so does a tier that cannot
    /// be asked).
    pub async fn remove(&self, name: &str) -> TierResult<()> {
        let remote = self.remote(name).await?;
        let data = format!("{}data/", remote.prefix);
        let page = remote
            .client
            .list(&remote.bucket, &data, None, None, 1)
            .await
            .map_err(|e| {
                TierError::InUse(format!(
                    "cannot tell whether objects live in tier {name}: {}",
                    failure(e)
                ))
            })?;
        if !page.objects.is_empty() {
            return Err(TierError::InUse(format!(
                "objects live in tier {name}: expire them or move them back first"
            )));
        }
        let doc = format!("{PREFIX}{name}");
        self.layer
            .change_config(TOPIC, PREFIX, |_| Ok((vec![(doc.clone(), None)], ())))
            .await?;
        self.forget_clients();
        Ok(())
    }

    /// Writes, reads back and deletes a probe object through the tier.
    pub async fn verify(&self, name: &str) -> TierResult<Verified> {
        let stored = self.find(name).await?;
        let client = self.client_of(&stored)?;
        let started = std::time::Instant::now();
        probe(&client, &stored).await?;
        Ok(Verified {
            name: stored.name,
            round_trip_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// A client of a registered tier, its secret opened.
    fn client_of(&self, s: &Stored) -> TierResult<Client> {
        let secret = self
            .sealer
            .open(&s.name, &s.sealed_secret)
            .map_err(|_| TierError::Unsealable)?;
        self.connect(s, &secret)
    }

    fn connect(&self, s: &Stored, secret: &str) -> TierResult<Client> {
        let tls = Tls {
            ca_pem: s.ca_pem.as_ref().map(|p| p.as_bytes().to_vec()),
            ..Default::default()
        };
        let signer = Signer::new(&s.access_key, secret, &s.region);
        Client::with_tls(&s.endpoint, signer, &tls)
            .map(|c| c.with_timeout(PROBE_TIMEOUT))
            .map_err(|e| TierError::Invalid(e.to_string()))
    }
}

/// A tier failure as the object layer reports it.
fn unavailable(tier: &str, e: TierError) -> ObjectError {
    match e {
        TierError::Store(e) => e,
        e => ObjectError::TierUnavailable(format!("tier {tier}: {e}")),
    }
}

#[async_trait::async_trait]
impl ColdStore for Tiers {
    async fn upload(&self, tier: &str, id: [u8; 16], body: ByteStream, len: u64) -> ObjectResult<()> {
        let r = self.remote(tier).await.map_err(|e| unavailable(tier, e))?;
        let name = r.name(id);
        let fail = |e| unavailable(tier, failure(e));
        let mut body = Pieces { body, rest: None };
        if len <= PART {
            let all = body.take(len as usize).await?;
            r.client
                .put_object(&r.bucket, &name, all, &[])
                .await
                .map_err(fail)?;
            return Ok(());
        }
        let part = PART.max(len.div_ceil(9_000));
        let upload = r
            .client
            .create_multipart(&r.bucket, &name, &[])
            .await
            .map_err(fail)?;
        let sent = async {
            let mut parts = Vec::new();
            let mut left = len;
            while left > 0 {
                let n = part.min(left);
                let chunk = body.take(n as usize).await?;
                let number = parts.len() as u32 + 1;
                let etag = r
                    .client
                    .upload_part(&r.bucket, &name, &upload, number, chunk)
                    .await
                    .map_err(fail)?;
                parts.push((number, etag));
                left -= n;
            }
            r.client
                .complete_multipart(&r.bucket, &name, &upload, &parts)
                .await
                .map_err(fail)
        }
        .await;
        if sent.is_err() {
            let _ = r.client.abort_multipart(&r.bucket, &name, &upload).await;
        }
        sent
    }

    async fn read(&self, tier: &str, id: [u8; 16], start: u64, end: u64) -> ObjectResult<Bytes> {
        let r = self.remote(tier).await.map_err(|e| unavailable(tier, e))?;
        r.client
            .get_range(&r.bucket, &r.name(id), start, end)
            .await
            .map_err(|e| unavailable(tier, failure(e)))
    }

    async fn delete(&self, tier: &str, id: [u8; 16]) -> ObjectResult<()> {
        let r = self.remote(tier).await.map_err(|e| unavailable(tier, e))?;
        match r.client.delete_object(&r.bucket, &r.name(id)).await {
            Err(e) if !e.is_not_found() => Err(unavailable(tier, failure(e))),
            _ => Ok(()),
        }
    }

    async fn has_tier(&self, tier: &str) -> ObjectResult<bool> {
        self.exists(tier).await.map_err(|e| unavailable(tier, e))
    }
}

/// A body handed on in pieces of chosen sizes (a PUT, or the parts of a
/// multipart upload).
struct Pieces {
    body: ByteStream,
    /// What the last piece read beyond its end.
    rest: Option<Bytes>,
}

impl Pieces {
    /// The next `n` bytes, in one buffer.
    async fn take(&mut self, n: usize) -> ObjectResult<Bytes> {
        use futures::StreamExt;
        let mut out = bytes::BytesMut::with_capacity(n);
        while out.len() < n {
            let c = match self.rest.take() {
                Some(c) => c,
                None => match self.body.next().await {
                    Some(c) => c.map_err(ObjectError::Body)?,
                    None => return Err(ObjectError::Internal("the data to move ended early".into())),
                },
            };
            let want = n - out.len();
            if c.len() > want {
                out.extend_from_slice(&c[..want]);
                self.rest = Some(c.slice(want..));
            } else {
                out.extend_from_slice(&c);
            }
        }
        Ok(out.freeze())
    }
}

/// A probe object's round trip through a tier.
async fn probe(client: &Client, s: &Stored) -> TierResult<()> {
    let key = format!("{}strata-verify/{}", s.prefix, uuid::Uuid::new_v4());
    let body = bytes::Bytes::from_static(b"strata tier verification\n");
    client
        .put_object(&s.bucket, &key, body.clone(), &[])
        .await
        .map_err(failure)?;
    let back = client.get_range(&s.bucket, &key, 0, body.len() as u64).await;
    let deleted = client.delete_object(&s.bucket, &key).await;
    let back = back.map_err(failure)?;
    deleted.map_err(failure)?;
    if back != body {
        return Err(TierError::Refused(
            "the probe object read back differs from what was written".into(),
        ));
    }
    Ok(())
}

/// A client error as a tier failure: an S3 answer is a refusal (with its
/// code), anything else an unreachable endpoint.
fn failure(e: strata_s3client::Error) -> TierError {
    match e {
        strata_s3client::Error::S3 { code, status, .. } => {
            let hint = match code.as_str() {
                "InvalidAccessKeyId" | "SignatureDoesNotMatch" => {
                    ": check the credentials given for the tier"
                }
                "NoSuchBucket" => ": the bucket does not exist there",
                "AccessDenied" => ": the credentials may not write the tier's bucket and prefix",
                _ => "",
            };
            TierError::Refused(format!("{code} (HTTP {status}){hint}"))
        }
        other => TierError::Unreachable(other.to_string()),
    }
}
