//! OpenID Connect identity tokens (JWTs) for `AssumeRoleWithWebIdentity`:
//! the provider's keys found through its discovery document and cached,
//! fetched again when a token names a key the cache lacks (a provider
//! rotated its keys) at most every few seconds, and at least hourly; the
//! signature (RS256/384/512, PS256/384/512, ES256/384, EdDSA; never
//! `none` or a shared-secret HMAC), issuer, audience, expiry and
//! not-before checked before any claim is believed.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use strata_s3client::Fetcher;

/// Keys older than this are fetched again before use.
const KEYS_MAX_AGE: Duration = Duration::from_secs(3600);
/// Least time between fetches a token's unknown key causes.
const REFRESH_EVERY: Duration = Duration::from_secs(5);
/// Clock difference tolerated on `nbf` and `iat`.
const LEEWAY_SECS: i64 = 60;

/// An OpenID provider STS trusts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OpenIdConfig {
    /// The issuer (`iss`) exactly as the provider names itself; its
    /// discovery document is at `ISSUER/.well-known/openid-configuration`.
    pub issuer: String,
    /// Client ids of which a token's audience (`aud`) must name one.
    pub client_ids: Vec<String>,
    /// The claim that names a token's policies (a string of names split by
    /// commas, or a list of names).
    #[serde(default = "default_claim")]
    pub claim: String,
    /// Roles: a `RoleArn` whose role name is a key here gets these
    /// policies, whatever the claim says.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, Vec<String>>,
}

fn default_claim() -> String {
    "policy".into()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenIdError {
    /// The token is not one this deployment accepts.
    #[error("{0}")]
    Invalid(String),
    #[error("the web identity token has expired")]
    Expired,
    /// The provider could not be asked for its keys.
    #[error("{0}")]
    Unreachable(String),
}

fn invalid(m: impl Into<String>) -> OpenIdError {
    OpenIdError::Invalid(m.into())
}

/// A verification key of a provider.
#[derive(Debug, Clone)]
enum Key {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed point `04 ‖ x ‖ y` on P-256 or P-384.
    Ec {
        p384: bool,
        point: Vec<u8>,
    },
    Ed25519(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Jwk {
    kid: Option<String>,
    key: Key,
}

struct KeySet {
    keys: Vec<Jwk>,
    fetched: Instant,
}

/// Verifies tokens of any configured provider, with a key cache per
/// issuer.
pub struct OpenId {
    fetcher: Fetcher,
    cache: Mutex<HashMap<String, KeySet>>,
}

impl std::fmt::Debug for OpenId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenId")
    }
}

fn b64(part: &str) -> Result<Vec<u8>, OpenIdError> {
    base64_simd::URL_SAFE_NO_PAD
        .decode_to_vec(part.trim_end_matches('='))
        .map_err(|_| invalid("the token is not three base64url parts"))
}

/// The `iss` claim of a token, read before anything is verified, to find
/// its provider.
pub fn issuer_of(token: &str) -> Result<String, OpenIdError> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| invalid("the token is not a JWT"))?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&b64(payload)?).map_err(|_| invalid("the token's claims are not JSON"))?;
    claims
        .get("iss")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| invalid("the token has no issuer"))
}

fn parse_jwks(body: &[u8]) -> Result<Vec<Jwk>, OpenIdError> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|_| OpenIdError::Unreachable("the JWKS is not JSON".into()))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| OpenIdError::Unreachable("the JWKS has no keys".into()))?;
    let field = |k: &Value, name: &str| k.get(name).and_then(Value::as_str).map(b64);
    let mut out = Vec::new();
    for k in keys {
        if k.get("use").and_then(Value::as_str).is_some_and(|u| u != "sig") {
            continue;
        }
        let key = match (
            k.get("kty").and_then(Value::as_str),
            k.get("crv").and_then(Value::as_str),
        ) {
            (Some("RSA"), _) => match (field(k, "n"), field(k, "e")) {
                (Some(Ok(n)), Some(Ok(e))) => Key::Rsa { n, e },
                _ => continue,
            },
            (Some("EC"), Some(crv @ ("P-256" | "P-384"))) => match (field(k, "x"), field(k, "y")) {
                (Some(Ok(x)), Some(Ok(y))) => {
                    let mut point = vec![4u8];
                    point.extend(x);
                    point.extend(y);
                    Key::Ec {
                        p384: crv == "P-384",
                        point,
                    }
                }
                _ => continue,
            },
            (Some("OKP"), Some("Ed25519")) => match field(k, "x") {
                Some(Ok(x)) => Key::Ed25519(x),
                _ => continue,
            },
            _ => continue,
        };
        let kid = k.get("kid").and_then(Value::as_str).map(str::to_owned);
        out.push(Jwk { kid, key });
    }
    Ok(out)
}

/// Checks `signature` of `message` by `key` with `alg`.
fn check_signature(alg: &str, key: &Key, message: &[u8], signature: &[u8]) -> bool {
    use ring::signature as sig;
    match (alg, key) {
        ("RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512", Key::Rsa { n, e }) => {
            let params: &sig::RsaParameters = match alg {
                "RS256" => &sig::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &sig::RSA_PKCS1_2048_8192_SHA384,
                "RS512" => &sig::RSA_PKCS1_2048_8192_SHA512,
                "PS256" => &sig::RSA_PSS_2048_8192_SHA256,
                "PS384" => &sig::RSA_PSS_2048_8192_SHA384,
                _ => &sig::RSA_PSS_2048_8192_SHA512,
            };
            sig::RsaPublicKeyComponents { n, e }
                .verify(params, message, signature)
                .is_ok()
        }
        ("ES256", Key::Ec { p384: false, point }) => {
            sig::UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point)
                .verify(message, signature)
                .is_ok()
        }
        ("ES384", Key::Ec { p384: true, point }) => {
            sig::UnparsedPublicKey::new(&sig::ECDSA_P384_SHA384_FIXED, point)
                .verify(message, signature)
                .is_ok()
        }
        ("EdDSA", Key::Ed25519(x)) => sig::UnparsedPublicKey::new(&sig::ED25519, x)
            .verify(message, signature)
            .is_ok(),
        _ => false,
    }
}

const ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// The claims of a token whose signature `keys` verified, checked
/// against `cfg` at `now`; `Ok(None)` when no key of `keys` is the
/// token's.
fn verify_with(
    cfg: &OpenIdConfig,
    keys: &[Jwk],
    token: &str,
    now: i64,
) -> Result<Option<Map<String, Value>>, OpenIdError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(invalid("the token is not a signed JWT (three parts)"));
    };
    let header: Map<String, Value> =
        serde_json::from_slice(&b64(h)?).map_err(|_| invalid("the token's header is not JSON"))?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("none");
    if !ALGORITHMS.contains(&alg) {
        return Err(invalid(format!("the token's algorithm {alg} is not accepted")));
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let candidates: Vec<&Jwk> = keys
        .iter()
        .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
        .collect();
    if candidates.is_empty() {
        return Ok(None);
    }
    let signature = b64(s)?;
    let message = &token.as_bytes()[..h.len() + 1 + p.len()];
    if !candidates
        .iter()
        .any(|k| check_signature(alg, &k.key, message, &signature))
    {
        return Err(invalid("the token's signature does not verify"));
    }
    let claims: Map<String, Value> =
        serde_json::from_slice(&b64(p)?).map_err(|_| invalid("the token's claims are not JSON"))?;
    if claims.get("iss").and_then(Value::as_str) != Some(cfg.issuer.as_str()) {
        return Err(invalid("the token's issuer is not the provider's"));
    }
    let number = |name: &str| claims.get(name).and_then(Value::as_i64);
    let exp = number("exp").ok_or_else(|| invalid("the token has no expiry"))?;
    if exp <= now {
        return Err(OpenIdError::Expired);
    }
    if number("nbf").is_some_and(|nbf| nbf > now + LEEWAY_SECS) {
        return Err(invalid("the token is not valid yet"));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.iter().any(|a| cfg.client_ids.iter().any(|c| c == a)) {
        return Err(invalid("the token's audience is not a client of this deployment"));
    }
    Ok(Some(claims))
}

/// Verifies `token` against the keys of a JWKS document, as a provider's
/// keys would be (for tools and fuzzing; objd fetches and caches them).
pub fn verify_with_jwks(
    cfg: &OpenIdConfig,
    jwks: &[u8],
    token: &str,
    now: i64,
) -> Result<Option<Map<String, Value>>, OpenIdError> {
    verify_with(cfg, &parse_jwks(jwks)?, token, now)
}

impl OpenId {
    pub fn new(fetcher: Fetcher) -> Self {
        Self {
            fetcher,
            cache: Mutex::new(HashMap::new()),
        }
    }

    async fn fetch_json(&self, url: &str) -> Result<Vec<u8>, OpenIdError> {
        let (status, body) = self
            .fetcher
            .get(url)
            .await
            .map_err(|e| OpenIdError::Unreachable(format!("{url}: {e}")))?;
        if !status.is_success() {
            return Err(OpenIdError::Unreachable(format!("{url}: HTTP {status}")));
        }
        Ok(body.to_vec())
    }

    async fn fetch_keys(&self, cfg: &OpenIdConfig) -> Result<Vec<Jwk>, OpenIdError> {
        let base = cfg.issuer.trim_end_matches('/');
        let discovery = self
            .fetch_json(&format!("{base}/.well-known/openid-configuration"))
            .await?;
        let doc: Value = serde_json::from_slice(&discovery)
            .map_err(|_| OpenIdError::Unreachable("the discovery document is not JSON".into()))?;
        if doc.get("issuer").and_then(Value::as_str) != Some(cfg.issuer.as_str()) {
            return Err(OpenIdError::Unreachable(
                "the discovery document names another issuer".into(),
            ));
        }
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| OpenIdError::Unreachable("the discovery document has no jwks_uri".into()))?;
        parse_jwks(&self.fetch_json(jwks_uri).await?)
    }

    /// The keys of `cfg`'s provider: cached, or fetched when the cache
    /// has none, is old, or `refresh` asks (rate-limited).
    async fn keys(&self, cfg: &OpenIdConfig, refresh: bool) -> Result<Vec<Jwk>, OpenIdError> {
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(set) = cache.get(&cfg.issuer) {
                let age = set.fetched.elapsed();
                if age < KEYS_MAX_AGE && (!refresh || age < REFRESH_EVERY) {
                    return Ok(set.keys.clone());
                }
            }
        }
        let keys = self.fetch_keys(cfg).await?;
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(
            cfg.issuer.clone(),
            KeySet {
                keys: keys.clone(),
                fetched: Instant::now(),
            },
        );
        Ok(keys)
    }

    /// The verified claims of `token` from the provider `cfg`.
    pub async fn verify(
        &self,
        cfg: &OpenIdConfig,
        token: &str,
        now: i64,
    ) -> Result<Map<String, Value>, OpenIdError> {
        let keys = self.keys(cfg, false).await?;
        if let Some(claims) = verify_with(cfg, &keys, token, now)? {
            return Ok(claims);
        }
        // A key the cache lacks: the provider may have rotated its keys.
        let keys = self.keys(cfg, true).await?;
        verify_with(cfg, &keys, token, now)?
            .ok_or_else(|| invalid("the token was signed with a key the provider does not publish"))
    }
}

/// The policy names a claim value gives: `"a,b"` or `["a", "b"]`.
pub fn policy_names(value: Option<&Value>) -> Vec<String> {
    let names: Vec<String> = match value {
        Some(Value::String(s)) => s.split(',').map(|p| p.trim().to_owned()).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(|p| p.trim().to_owned())
            .collect(),
        _ => Vec::new(),
    };
    names.into_iter().filter(|n| !n.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    fn enc(v: &Value) -> String {
        base64_simd::URL_SAFE_NO_PAD.encode_to_string(v.to_string())
    }

    fn setup() -> (EcdsaKeyPair, Vec<Jwk>, OpenIdConfig) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig",
            "x": base64_simd::URL_SAFE_NO_PAD.encode_to_string(&point[1..33]),
            "y": base64_simd::URL_SAFE_NO_PAD.encode_to_string(&point[33..])}]});
        let keys = parse_jwks(jwks.to_string().as_bytes()).unwrap();
        let cfg = OpenIdConfig {
            issuer: "https://idp.example".into(),
            client_ids: vec!["strata".into()],
            claim: default_claim(),
            roles: BTreeMap::new(),
        };
        (pair, keys, cfg)
    }

    fn sign(pair: &EcdsaKeyPair, header: &Value, claims: &Value) -> String {
        let msg = format!("{}.{}", enc(header), enc(claims));
        let sig = pair.sign(&SystemRandom::new(), msg.as_bytes()).unwrap();
        format!(
            "{msg}.{}",
            base64_simd::URL_SAFE_NO_PAD.encode_to_string(sig.as_ref())
        )
    }

    #[test]
    fn only_signed_current_tokens_for_our_clients_pass() {
        let (pair, keys, cfg) = setup();
        let header = serde_json::json!({"alg": "ES256", "kid": "k1"});
        let good = serde_json::json!({"iss": "https://idp.example", "aud": "strata", "sub": "alice",
            "exp": 2000, "policy": "readers"});
        let token = sign(&pair, &header, &good);
        assert_eq!(issuer_of(&token).unwrap(), "https://idp.example");
        let claims = verify_with(&cfg, &keys, &token, 1000).unwrap().unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(verify_with(&cfg, &keys, &token, 2000), Err(OpenIdError::Expired));

        let mut other = good.clone();
        other["aud"] = serde_json::json!(["another-app"]);
        assert!(matches!(
            verify_with(&cfg, &keys, &sign(&pair, &header, &other), 1000),
            Err(OpenIdError::Invalid(_))
        ));
        let mut other = good.clone();
        other["iss"] = "https://evil.example".into();
        assert!(verify_with(&cfg, &keys, &sign(&pair, &header, &other), 1000).is_err());
        // Claims altered after signing.
        let parts: Vec<&str> = token.split('.').collect();
        let mut widened = good.clone();
        widened["policy"] = "admins".into();
        let forged = format!("{}.{}.{}", parts[0], enc(&widened), parts[2]);
        assert!(verify_with(&cfg, &keys, &forged, 1000).is_err());
        // Unsigned, or signed by a shared secret: never.
        for alg in ["none", "HS256"] {
            let h = serde_json::json!({"alg": alg, "kid": "k1"});
            let t = format!("{}.{}.", enc(&h), enc(&good));
            assert!(matches!(
                verify_with(&cfg, &keys, &t, 1000),
                Err(OpenIdError::Invalid(_))
            ));
        }
        // A key id the set lacks asks for a refresh.
        let h = serde_json::json!({"alg": "ES256", "kid": "k2"});
        assert_eq!(verify_with(&cfg, &keys, &sign(&pair, &h, &good), 1000), Ok(None));
    }

    #[test]
    fn policy_claims_take_both_shapes() {
        assert_eq!(policy_names(Some(&"a, b,".into())), ["a", "b"]);
        assert_eq!(policy_names(Some(&serde_json::json!(["a", "b"]))), ["a", "b"]);
        assert!(policy_names(None).is_empty());
    }
}
