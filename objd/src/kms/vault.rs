//! HashiCorp Vault (and OpenBao, its API-compatible fork) as the KMS,
//! through the Transit secrets engine. Transit generates each data key
//! (`datakey/plaintext`) and opens it again (`decrypt`); its ciphertext
//! names the key version, so rotation in Vault (or with `objd admin kms key
//! rotate`) keeps older objects readable. The key objd encrypts with is
//! derived from Transit's plaintext and the encryption context (HMAC), so
//! a sealed key moved to another object opens to a key that fails every
//! package there.
//!
//! objd logs in with a token (from a file or the environment) or AppRole,
//! renews its token at half its lease and logs in again when renewal
//! fails; a call refused for its token is retried once after a new login.
//! TLS to Vault trusts the system's CAs and `--ca-file`.

use super::{Context, KeyInfo, Kms, KmsError, KmsResult, Status, check_key_name, context_bytes};
use crate::sse::{DataKey, derive};
use bytes::Bytes;
use http::{Method, StatusCode};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;
use strata_s3client::fetch::Fetcher;

/// How objd logs in to Vault.
#[derive(Clone)]
pub enum Auth {
    /// A token (periodic or long-lived), renewed when renewable.
    Token(String),
    /// AppRole: `auth/MOUNT/login` with a role id and secret id.
    AppRole {
        mount: String,
        role_id: String,
        secret_id: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Token(..)"),
            Auth::AppRole { mount, .. } => f
                .debug_struct("AppRole")
                .field("mount", mount)
                .finish_non_exhaustive(),
        }
    }
}

/// Where Vault is and how to reach it.
#[derive(Debug, Clone)]
pub struct Config {
    /// `https://vault.example:8200` (or http:// for a test server).
    pub endpoint: String,
    /// The Transit engine's mount path.
    pub mount: String,
    /// A Vault Enterprise namespace (`X-Vault-Namespace`), if any.
    pub namespace: Option<String>,
    pub auth: Auth,
    pub default_key: String,
}

pub struct Vault {
    config: Config,
    http: Fetcher,
    token: RwLock<String>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("endpoint", &self.config.endpoint)
            .field("mount", &self.config.mount)
            .finish_non_exhaustive()
    }
}

/// Vault's answer to a login or renewal.
#[derive(serde::Deserialize)]
struct AuthAnswer {
    auth: AuthBody,
}

#[derive(serde::Deserialize)]
struct AuthBody {
    client_token: String,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> KmsError {
    KmsError::Unavailable(format!("{what}: {e}"))
}

/// Transit key names are path segments: no `/` namespaces here (use
/// Vault namespaces or one Transit mount per tenant instead).
fn transit_name(name: &str) -> KmsResult<&str> {
    check_key_name(name)?;
    if name.contains('/') {
        return Err(KmsError::Invalid(format!(
            "key {name:?}: Vault Transit key names cannot hold '/'; give each tenant its own Transit mount or Vault namespace"
        )));
    }
    Ok(name)
}

/// The key objd encrypts with, from Transit's data key and the context.
fn bind(plain_b64: &str, ctx: &Context) -> KmsResult<DataKey> {
    let raw = base64_simd::STANDARD
        .decode_to_vec(plain_b64)
        .map_err(|_| KmsError::Unsealable)?;
    let mut label = b"strata vault data key v1\0".to_vec();
    label.extend(context_bytes(ctx));
    Ok(derive(&raw, &label))
}

impl Vault {
    /// Logs in and starts renewing the token.
    pub async fn open(config: Config, tls: &strata_s3client::Tls) -> KmsResult<Arc<Self>> {
        check_key_name(&config.default_key)?;
        let http = Fetcher::new(tls, Duration::from_secs(10), 1 << 20)
            .map_err(|e| KmsError::Invalid(e.to_string()))?;
        let vault = Arc::new(Self {
            config,
            http,
            token: RwLock::new(String::new()),
        });
        let lease = vault.login().await?;
        tokio::spawn(renew(Arc::downgrade(&vault), lease));
        Ok(vault)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.config.endpoint.trim_end_matches('/'))
    }

    /// Logs in (AppRole) or looks the token up; returns the lease to renew
    /// (`None`: nothing to renew).
    async fn login(&self) -> KmsResult<Option<Duration>> {
        let answer: AuthBody = match &self.config.auth {
            Auth::Token(t) => {
                *self.token.write().unwrap_or_else(|e| e.into_inner()) = t.clone();
                let (status, body) = self.raw(Method::GET, "auth/token/lookup-self", None).await?;
                if !status.is_success() {
                    return Err(unavailable("Vault refused the token", status));
                }
                let v: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| unavailable("token lookup", e))?;
                AuthBody {
                    client_token: t.clone(),
                    lease_duration: v["data"]["ttl"].as_u64().unwrap_or(0),
                    renewable: v["data"]["renewable"].as_bool().unwrap_or(false),
                }
            }
            Auth::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                let body = serde_json::json!({ "role_id": role_id, "secret_id": secret_id });
                let (status, raw) = self
                    .raw(Method::POST, &format!("auth/{mount}/login"), Some(body))
                    .await?;
                if !status.is_success() {
                    return Err(unavailable("Vault refused the AppRole login", status));
                }
                serde_json::from_slice::<AuthAnswer>(&raw)
                    .map_err(|e| unavailable("AppRole login answer", e))?
                    .auth
            }
        };
        *self.token.write().unwrap_or_else(|e| e.into_inner()) = answer.client_token;
        Ok((answer.lease_duration > 0).then(|| Duration::from_secs(answer.lease_duration)))
    }

    /// Renews the token; the new lease, or an error when it cannot be.
    async fn renew_token(&self) -> KmsResult<Option<Duration>> {
        let (status, raw) = self
            .raw(Method::POST, "auth/token/renew-self", Some(serde_json::json!({})))
            .await?;
        if !status.is_success() {
            return Err(unavailable("token renewal", status));
        }
        let a = serde_json::from_slice::<AuthAnswer>(&raw)
            .map_err(|e| unavailable("token renewal answer", e))?
            .auth;
        Ok((a.renewable && a.lease_duration > 0).then(|| Duration::from_secs(a.lease_duration)))
    }

    /// One request with the current token.
    async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> KmsResult<(StatusCode, Bytes)> {
        let token = self.token.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut headers = vec![("content-type", "application/json")];
        if !token.is_empty() {
            headers.push(("x-vault-token", token.as_str()));
        }
        if let Some(ns) = &self.config.namespace {
            headers.push(("x-vault-namespace", ns.as_str()));
        }
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        self.http
            .send(method, &self.url(path), &headers, body)
            .await
            .map_err(|e| unavailable("Vault cannot be reached", e))
    }

    /// A Transit call: retried once after a new login when the token is
    /// refused; Vault's error answers mapped.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> KmsResult<serde_json::Value> {
        let full = format!("{}/{path}", self.config.mount);
        let mut answer = self.raw(method.clone(), &full, body.clone()).await?;
        if answer.0 == StatusCode::FORBIDDEN && matches!(self.config.auth, Auth::AppRole { .. }) {
            self.login().await?;
            answer = self.raw(method, &full, body).await?;
        }
        let (status, raw) = answer;
        if status.is_success() {
            return if raw.is_empty() {
                Ok(serde_json::Value::Null)
            } else {
                serde_json::from_slice(&raw).map_err(|e| unavailable("Vault answer", e))
            };
        }
        let errors = serde_json::from_slice::<serde_json::Value>(&raw)
            .ok()
            .map(|v| v["errors"].to_string())
            .unwrap_or_default();
        let missing = errors.contains("not found") || errors.contains("no existing key");
        Err(match status {
            StatusCode::NOT_FOUND => KmsError::NoSuchKey(path.rsplit('/').next().unwrap_or(path).to_owned()),
            StatusCode::BAD_REQUEST if missing => {
                KmsError::NoSuchKey(path.rsplit('/').next().unwrap_or(path).to_owned())
            }
            StatusCode::BAD_REQUEST if errors.contains("cipher") || errors.contains("decrypt") => {
                KmsError::Unsealable
            }
            StatusCode::BAD_REQUEST if errors.contains("already exists") => {
                KmsError::KeyExists(path.rsplit('/').next().unwrap_or(path).to_owned())
            }
            StatusCode::BAD_REQUEST => KmsError::Invalid(format!("Vault refused {path}: {errors}")),
            s => unavailable(&format!("Vault answered {s} to {path}"), errors),
        })
    }

    async fn key_info(&self, name: &str) -> KmsResult<KeyInfo> {
        let v = self.call(Method::GET, &format!("keys/{name}"), None).await?;
        Ok(KeyInfo {
            name: name.to_owned(),
            version: v["data"]["latest_version"].as_u64().unwrap_or(0) as u32,
            enabled: true,
            created: String::new(),
        })
    }
}

/// Keeps the token alive: renews at half its lease, logs in again when
/// renewal fails; stops when the KMS is dropped.
async fn renew(vault: Weak<Vault>, mut lease: Option<Duration>) {
    loop {
        let wait = lease.map_or(Duration::from_secs(300), |l| (l / 2).max(Duration::from_secs(1)));
        tokio::time::sleep(wait).await;
        let Some(v) = vault.upgrade() else {
            return;
        };
        if lease.is_none() && matches!(v.config.auth, Auth::Token(_)) {
            continue; // a token without a lease needs nothing
        }
        lease = match v.renew_token().await {
            Ok(Some(l)) => Some(l),
            _ => match v.login().await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot renew the Vault token or log in again; retrying");
                    Some(Duration::from_secs(10))
                }
            },
        };
    }
}

#[async_trait::async_trait]
impl Kms for Vault {
    async fn generate(&self, key: &str, ctx: &Context) -> KmsResult<(DataKey, Vec<u8>)> {
        let name = transit_name(key)?;
        let v = self
            .call(
                Method::POST,
                &format!("datakey/plaintext/{name}"),
                Some(serde_json::json!({ "bits": 256 })),
            )
            .await?;
        let plain = v["data"]["plaintext"].as_str().ok_or(KmsError::Unsealable)?;
        let sealed = v["data"]["ciphertext"].as_str().ok_or(KmsError::Unsealable)?;
        Ok((bind(plain, ctx)?, sealed.as_bytes().to_vec()))
    }

    async fn unseal(&self, key: &str, sealed: &[u8], ctx: &Context) -> KmsResult<DataKey> {
        let name = transit_name(key)?;
        let ciphertext = std::str::from_utf8(sealed).map_err(|_| KmsError::Unsealable)?;
        let v = self
            .call(
                Method::POST,
                &format!("decrypt/{name}"),
                Some(serde_json::json!({ "ciphertext": ciphertext })),
            )
            .await?;
        bind(v["data"]["plaintext"].as_str().ok_or(KmsError::Unsealable)?, ctx)
    }

    async fn create_key(&self, name: &str) -> KmsResult<KeyInfo> {
        let name = transit_name(name)?;
        if self.key_info(name).await.is_ok() {
            return Err(KmsError::KeyExists(name.to_owned()));
        }
        self.call(
            Method::POST,
            &format!("keys/{name}"),
            Some(serde_json::json!({ "type": "aes256-gcm96" })),
        )
        .await?;
        self.key_info(name).await
    }

    async fn list_keys(&self) -> KmsResult<Vec<KeyInfo>> {
        let list = Method::from_bytes(b"LIST").map_err(|e| KmsError::Invalid(e.to_string()))?;
        let v = match self.call(list, "keys", None).await {
            Ok(v) => v,
            Err(KmsError::NoSuchKey(_)) => return Ok(vec![]), // no key yet
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for name in v["data"]["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k.as_str())
        {
            out.push(self.key_info(name).await?);
        }
        Ok(out)
    }

    async fn rotate_key(&self, name: &str) -> KmsResult<KeyInfo> {
        let name = transit_name(name)?;
        self.call(
            Method::POST,
            &format!("keys/{name}/rotate"),
            Some(serde_json::json!({})),
        )
        .await?;
        self.key_info(name).await
    }

    async fn set_enabled(&self, _name: &str, _enabled: bool) -> KmsResult<KeyInfo> {
        Err(KmsError::Unsupported(
            "Vault Transit keys are enabled and disabled in Vault (its policies), not through objd",
        ))
    }

    async fn status(&self) -> Status {
        let health = self
            .http
            .get(&self.url("sys/health"))
            .await
            .map_err(|e| e.to_string())
            .and_then(|(s, _)| {
                if s.is_success() {
                    Ok(())
                } else {
                    Err(format!("Vault health: {s}"))
                }
            });
        Status {
            backend: "vault".into(),
            endpoint: self.config.endpoint.clone(),
            default_key: self.config.default_key.clone(),
            online: health.is_ok(),
            problem: health.err().unwrap_or_default(),
        }
    }

    fn default_key(&self) -> &str {
        &self.config.default_key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_print() {
        let a = Auth::AppRole {
            mount: "approle".into(),
            role_id: "role-secretish".into(),
            secret_id: "s3cr3t".into(),
        };
        assert!(!format!("{a:?}").contains("s3cr3t"));
        assert_eq!(format!("{:?}", Auth::Token("hvs.x".into())), "Token(..)");
    }

    #[test]
    fn data_keys_are_bound_to_their_context() {
        let plain = base64_simd::STANDARD.encode_to_string([9u8; 32]);
        let mut a = Context::new();
        a.insert("aws:s3:arn".into(), "arn:aws:s3:::b/k".into());
        let mut b = a.clone();
        b.insert("aws:s3:arn".into(), "arn:aws:s3:::b/other".into());
        assert_eq!(
            bind(&plain, &a).unwrap().bytes(),
            bind(&plain, &a).unwrap().bytes()
        );
        assert_ne!(
            bind(&plain, &a).unwrap().bytes(),
            bind(&plain, &b).unwrap().bytes()
        );
        assert!(transit_name("tenant/key").is_err());
    }
}
