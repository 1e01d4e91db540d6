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

#[cfg(test)]
mod tests;

use crate::iam::seal::Sealer;
use crate::object::{ObjectError, ObjectLayer};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use strata_s3client::{Client, Signer, Tls};

/// The configuration topic of tiers (documents `tiers/NAME`).
const TOPIC: &str = "tiers";
const PREFIX: &str = "tiers/";
/// How long a verification may take, each request.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum TierError {
    #[error("{0}")]
    Invalid(String),
    #[error("tier {0} exists already")]
    Exists(String),
    #[error("no tier named {0}")]
    NotFound(String),
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
}

impl std::fmt::Debug for Tiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tiers")
    }
}

/// A tier's name: 1-63 of a-z, 0-9 and `-`, as storage class names go.
fn check_name(name: &str) -> TierResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(TierError::Invalid(format!(
            "tier name {name:?}: 1 to 63 characters of a-z, 0-9 and -"
        )))
    }
}

impl Tiers {
    pub fn new(layer: Arc<ObjectLayer>, root_secret: &str) -> Self {
        Tiers {
            layer,
            sealer: Sealer::labelled(root_secret, "strata tier credentials v1"),
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

    /// Removes a tier. (Objects that live in a tier will keep it from
    /// going, once objects can move there.)
    pub async fn remove(&self, name: &str) -> TierResult<()> {
        self.find(name).await?;
        let doc = format!("{PREFIX}{name}");
        self.layer
            .change_config(TOPIC, PREFIX, |_| Ok((vec![(doc.clone(), None)], ())))
            .await?;
        Ok(())
    }

    /// Writes, reads back and deletes a probe object through the tier.
    pub async fn verify(&self, name: &str) -> TierResult<Verified> {
        let stored = self.find(name).await?;
        let secret = self
            .sealer
            .open(&stored.name, &stored.sealed_secret)
            .map_err(|_| TierError::Unsealable)?;
        let started = std::time::Instant::now();
        probe(&self.connect(&stored, &secret)?, &stored).await?;
        Ok(Verified {
            name: stored.name,
            round_trip_ms: started.elapsed().as_millis() as u64,
        })
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
