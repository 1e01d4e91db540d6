//! The built-in KMS: named keys kept as deployment configuration documents
//! (`kms/key/NAME`, on every drive like the IAM state), each version's
//! 256-bit material sealed with AES-256-GCM under the root key, which
//! objd reads from a file or the environment (a Kubernetes Secret) and
//! never stores. A data key is sealed under the newest version of its
//! key; the sealed form starts with the version, so rotation keeps every
//! older data key readable. Disabled keys neither seal nor unseal.

use super::{Context, KeyInfo, Kms, KmsError, KmsResult, Status, check_key_name, context_bytes};
use crate::object::ObjectLayer;
use crate::sse::{Algorithm, Cipher, DataKey};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

const TOPIC: &str = "kms";
const PREFIX: &str = "kms/key/";

/// The root key that seals every key of the built-in KMS.
pub struct RootKey(DataKey);

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey(..)")
    }
}

impl RootKey {
    /// 32 bytes as base64 or as 64 hex digits (surrounding white space
    /// ignored, so a file with a trailing newline works).
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let raw = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(t).ok()
        } else {
            base64_simd::STANDARD.decode_to_vec(t).ok()
        };
        raw.as_deref()
            .and_then(DataKey::from_slice)
            .map(Self)
            .ok_or_else(|| "the KMS root key must be 32 bytes, as base64 or 64 hex digits".to_owned())
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct KeyDoc {
    enabled: bool,
    created_ns: i64,
    versions: Vec<VersionDoc>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct VersionDoc {
    version: u32,
    created_ns: i64,
    /// The version's material sealed under the root key (hex).
    material: String,
}

/// A key with its versions opened.
struct Loaded {
    info: KeyInfo,
    versions: BTreeMap<u32, Cipher>,
}

pub struct Builtin {
    layer: Arc<ObjectLayer>,
    root: Cipher,
    default_key: String,
    keys: RwLock<Arc<BTreeMap<String, Arc<Loaded>>>>,
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builtin")
            .field("default_key", &self.default_key)
            .finish_non_exhaustive()
    }
}

fn material_aad(name: &str, version: u32) -> Vec<u8> {
    format!("strata kms key {name} v{version}").into_bytes()
}

fn data_aad(name: &str, ctx: &Context) -> Vec<u8> {
    let mut a = name.as_bytes().to_vec();
    a.push(0);
    a.extend(context_bytes(ctx));
    a
}

fn rfc3339(ns: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

impl Builtin {
    /// Opens the KMS over the deployment's configuration store; fails when
    /// a stored key does not open with `root` (another root key).
    pub async fn open(layer: Arc<ObjectLayer>, root: RootKey, default_key: &str) -> KmsResult<Arc<Self>> {
        check_key_name(default_key)?;
        let kms = Arc::new(Self {
            layer: Arc::clone(&layer),
            root: Cipher::new(Algorithm::Aes256Gcm, &root.0),
            default_key: default_key.to_owned(),
            keys: RwLock::new(Arc::default()),
        });
        kms.reload().await?;
        let weak = Arc::downgrade(&kms);
        layer.on_config_change(
            TOPIC,
            Arc::new(move || {
                let weak = weak.clone();
                Box::pin(async move {
                    if let Some(kms) = weak.upgrade()
                        && let Err(e) = kms.reload().await
                    {
                        tracing::warn!(error = %e, "reloading KMS keys after another node's change failed");
                    }
                })
            }),
        );
        Ok(kms)
    }

    async fn reload(&self) -> KmsResult<()> {
        let docs = self
            .layer
            .config_documents(PREFIX)
            .await
            .map_err(|e| KmsError::Unavailable(e.to_string()))?;
        let mut keys = BTreeMap::new();
        for (path, raw) in docs {
            let name = path[PREFIX.len()..].to_owned();
            keys.insert(name.clone(), Arc::new(self.load(&name, &raw)?));
        }
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(())
    }

    fn load(&self, name: &str, raw: &[u8]) -> KmsResult<Loaded> {
        let doc: KeyDoc = serde_json::from_slice(raw).map_err(|_| KmsError::Unsealable)?;
        let mut versions = BTreeMap::new();
        for v in &doc.versions {
            let sealed = hex::decode(&v.material).map_err(|_| KmsError::Unsealable)?;
            let material = self
                .root
                .unwrap(&material_aad(name, v.version), &sealed)
                .map_err(|_| {
                    KmsError::Invalid(format!(
                        "KMS key {name} does not open with the configured root key (was another root key used?)"
                    ))
                })?;
            let key = DataKey::from_slice(&material).ok_or(KmsError::Unsealable)?;
            versions.insert(v.version, Cipher::new(Algorithm::Aes256Gcm, &key));
        }
        let newest = doc.versions.iter().max_by_key(|v| v.version);
        Ok(Loaded {
            info: KeyInfo {
                name: name.to_owned(),
                version: newest.map_or(0, |v| v.version),
                enabled: doc.enabled,
                created: rfc3339(doc.created_ns),
            },
            versions,
        })
    }

    fn key(&self, name: &str) -> Option<Arc<Loaded>> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    fn new_version(&self, name: &str, version: u32) -> VersionDoc {
        let material = DataKey::random();
        VersionDoc {
            version,
            created_ns: crate::object::now_ns(),
            material: hex::encode(self.root.wrap(&material_aad(name, version), material.bytes())),
        }
    }

    /// Changes the document of `name` under the topic lock: `f` gets the
    /// stored document (if any) and returns the new one.
    async fn change(
        &self,
        name: &str,
        f: impl FnOnce(Option<KeyDoc>) -> KmsResult<KeyDoc>,
    ) -> KmsResult<KeyInfo> {
        check_key_name(name)?;
        let path = format!("{PREFIX}{name}");
        let raw = self
            .layer
            .change_config(TOPIC, &path, |now| {
                let old = now
                    .get(&path)
                    .map(|raw| serde_json::from_slice::<KeyDoc>(raw))
                    .transpose()
                    .map_err(|e| crate::object::ObjectError::Internal(e.to_string()));
                let doc = old.map(f);
                match doc {
                    Ok(Ok(doc)) => {
                        let raw = serde_json::to_vec(&doc).unwrap_or_default();
                        Ok((vec![(path.clone(), Some(raw.clone()))], Ok(raw)))
                    }
                    Ok(Err(e)) => Ok((vec![], Err(e))),
                    Err(e) => Err(e),
                }
            })
            .await
            .map_err(|e| KmsError::Unavailable(e.to_string()))??;
        let loaded = Arc::new(self.load(name, &raw)?);
        let info = loaded.info.clone();
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        let mut next = (**keys).clone();
        next.insert(name.to_owned(), loaded);
        *keys = Arc::new(next);
        Ok(info)
    }

    /// The key to seal with, creating the default key at its first use.
    async fn sealing_key(&self, name: &str) -> KmsResult<Arc<Loaded>> {
        if let Some(k) = self.key(name) {
            return Ok(k);
        }
        if name != self.default_key {
            return Err(KmsError::NoSuchKey(name.to_owned()));
        }
        match self.create_key(name).await {
            Ok(_) | Err(KmsError::KeyExists(_)) => {}
            Err(e) => return Err(e),
        }
        self.key(name).ok_or_else(|| KmsError::NoSuchKey(name.to_owned()))
    }
}

#[async_trait::async_trait]
impl Kms for Builtin {
    async fn generate(&self, key: &str, ctx: &Context) -> KmsResult<(DataKey, Vec<u8>)> {
        let k = self.sealing_key(key).await?;
        if !k.info.enabled {
            return Err(KmsError::Disabled(key.to_owned()));
        }
        let cipher = k.versions.get(&k.info.version).ok_or(KmsError::Unsealable)?;
        let data = DataKey::random();
        let mut sealed = k.info.version.to_be_bytes().to_vec();
        sealed.extend(cipher.wrap(&data_aad(key, ctx), data.bytes()));
        Ok((data, sealed))
    }

    async fn unseal(&self, key: &str, sealed: &[u8], ctx: &Context) -> KmsResult<DataKey> {
        let k = self.key(key).ok_or_else(|| KmsError::NoSuchKey(key.to_owned()))?;
        if !k.info.enabled {
            return Err(KmsError::Disabled(key.to_owned()));
        }
        let (version, rest) = sealed.split_at_checked(4).ok_or(KmsError::Unsealable)?;
        let version = u32::from_be_bytes(version.try_into().map_err(|_| KmsError::Unsealable)?);
        let cipher = k.versions.get(&version).ok_or(KmsError::Unsealable)?;
        let plain = cipher
            .unwrap(&data_aad(key, ctx), rest)
            .map_err(|_| KmsError::Unsealable)?;
        DataKey::from_slice(&plain).ok_or(KmsError::Unsealable)
    }

    async fn create_key(&self, name: &str) -> KmsResult<KeyInfo> {
        let first = self.new_version(name, 1);
        self.change(name, |old| match old {
            Some(_) => Err(KmsError::KeyExists(name.to_owned())),
            None => Ok(KeyDoc {
                enabled: true,
                created_ns: first.created_ns,
                versions: vec![first],
            }),
        })
        .await
    }

    async fn list_keys(&self) -> KmsResult<Vec<KeyInfo>> {
        let keys = Arc::clone(&self.keys.read().unwrap_or_else(|e| e.into_inner()));
        Ok(keys.values().map(|k| k.info.clone()).collect())
    }

    async fn rotate_key(&self, name: &str) -> KmsResult<KeyInfo> {
        let next = self.key(name).map_or(1, |k| k.info.version + 1);
        let version = self.new_version(name, next);
        self.change(name, |old| {
            let mut doc = old.ok_or_else(|| KmsError::NoSuchKey(name.to_owned()))?;
            let newest = doc.versions.iter().map(|v| v.version).max().unwrap_or(0);
            // Another node rotated meanwhile: still one version newer.
            let mut version = version;
            if version.version <= newest {
                version = VersionDoc {
                    version: newest + 1,
                    ..self.new_version(name, newest + 1)
                };
            }
            doc.versions.push(version);
            Ok(doc)
        })
        .await
    }

    async fn set_enabled(&self, name: &str, enabled: bool) -> KmsResult<KeyInfo> {
        self.change(name, |old| {
            let mut doc = old.ok_or_else(|| KmsError::NoSuchKey(name.to_owned()))?;
            doc.enabled = enabled;
            Ok(doc)
        })
        .await
    }

    async fn status(&self) -> Status {
        let online = self.layer.config_documents(PREFIX).await;
        Status {
            backend: "builtin".into(),
            endpoint: String::new(),
            default_key: self.default_key.clone(),
            online: online.is_ok(),
            problem: online.err().map(|e| e.to_string()).unwrap_or_default(),
        }
    }

    fn default_key(&self) -> &str {
        &self.default_key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_keys_parse_from_base64_or_hex() {
        let b64 = base64_simd::STANDARD.encode_to_string([3u8; 32]);
        assert!(RootKey::parse(&format!("{b64}\n")).is_ok());
        assert!(RootKey::parse(&"ab".repeat(32)).is_ok());
        assert!(RootKey::parse("short").is_err());
        assert!(RootKey::parse(&base64_simd::STANDARD.encode_to_string([3u8; 16])).is_err());
        assert_eq!(format!("{:?}", RootKey::parse(&b64).unwrap()), "RootKey(..)");
    }
}
