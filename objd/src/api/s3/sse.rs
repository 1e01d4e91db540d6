//! Server-side encryption at the S3 API: what a write asks for (the
//! `x-amz-server-side-encryption*` headers, else the bucket's default
//! encryption), the data key and record of a new version (from the KMS, or
//! sealed under the SSE-C key), the keys of encrypted versions a read or
//! a copy needs ([`RequestKeys`]), the response headers, and
//! Put/Get/DeleteBucketEncryption.

use super::convert::invalid;
use super::{StrataS3, fail, rid};
use crate::kms::{Context, Kms, KmsError};
use crate::meta::EncryptionRecord;
use crate::object::{KeySource, ObjectError, ObjectResult, Sealing};
use crate::server::caller::Authorized;
use crate::sse::customer::CustomerKey;
use crate::sse::{Algorithm, DataKey, Mode, SseError};
use s3s::dto::*;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result};
use std::sync::Arc;

/// The bucket setting holding the default encryption (JSON).
const BUCKET_SETTING: &str = "encryption";

/// Encryption settings of the S3 front.
#[derive(Debug, Clone, Default)]
pub struct Encryption {
    /// The KMS for SSE-S3 and SSE-KMS (`None`: those are refused).
    pub kms: Option<Arc<dyn Kms>>,
    /// Accept SSE-C keys on plain-HTTP connections (TLS terminated by a
    /// trusted proxy in front).
    pub insecure_customer_keys: bool,
}

/// A bucket's default encryption, as stored.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
struct BucketDefault {
    /// `AES256` or `aws:kms`.
    algorithm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default)]
    bucket_key: bool,
}

/// What of a request encryption needs besides its headers: whether it
/// came over TLS (SSE-C), and its caller (the `kms:` grants).
#[derive(Clone)]
pub struct RequestCx {
    secure: bool,
    who: Option<Authorized>,
}

impl RequestCx {
    pub fn of<T>(req: &S3Request<T>) -> Self {
        Self {
            secure: req.extensions.get::<crate::server::Peer>().is_some_and(|p| p.tls),
            who: req.extensions.get::<Authorized>().cloned(),
        }
    }
}

/// What a write asked for.
#[derive(Debug, Clone, Default)]
pub enum Requested {
    #[default]
    Nothing,
    S3,
    Kms {
        key: Option<String>,
        /// The client's context, as JSON.
        context: Option<String>,
        bucket_key: bool,
    },
    Customer(CustomerKey),
}

impl Requested {
    /// The SSE-C key asked for, if any.
    pub fn customer(&self) -> Option<CustomerKey> {
        match self {
            Requested::Customer(c) => Some(c.clone()),
            _ => None,
        }
    }
}

/// The sealing of a write (what its SSE headers ask for, else the
/// bucket's default) and the SSE-C key it carried.
macro_rules! write_sealing {
    ($s3:expr, $cx:expr, $i:expr, $rid:expr) => {{
        let asked = $crate::api::s3::sse::requested!($i);
        let customer = asked.customer();
        let sealing = $s3
            .sse
            .sealing($s3, &$i.bucket, &$i.key, asked, &$cx)
            .await
            .map_err(fail(&$rid))?;
        (sealing, customer)
    }};
}
pub(crate) use write_sealing;

/// The SSE-C key of a request's own headers, checked.
macro_rules! customer_key {
    ($i:expr) => {
        $crate::sse::customer::CustomerKey::from_headers(
            $i.sse_customer_algorithm.as_deref(),
            $i.sse_customer_key.as_deref(),
            $i.sse_customer_key_md5.as_deref(),
        )
        .map_err($crate::api::error::sse_to_s3)?
    };
}
pub(crate) use customer_key;

/// The SSE-C key of a copy's source.
macro_rules! copy_source_key {
    ($i:expr) => {
        $crate::sse::customer::CustomerKey::from_headers(
            $i.copy_source_sse_customer_algorithm.as_deref(),
            $i.copy_source_sse_customer_key.as_deref(),
            $i.copy_source_sse_customer_key_md5.as_deref(),
        )
        .map_err($crate::api::error::sse_to_s3)?
    };
}
pub(crate) use copy_source_key;

/// What a write's headers ask for.
macro_rules! requested {
    ($i:expr) => {
        $crate::api::s3::sse::check_requested(
            $i.server_side_encryption.as_ref().map(|s| s.as_str()),
            $i.ssekms_key_id.as_deref(),
            $i.ssekms_encryption_context.as_deref(),
            $i.bucket_key_enabled,
            $crate::api::s3::sse::customer_key!($i),
        )?
    };
}
pub(crate) use requested;

/// Checks the SSE headers of a write.
pub fn check_requested(
    sse: Option<&str>,
    kms_key: Option<&str>,
    context: Option<&str>,
    bucket_key: Option<bool>,
    customer: Option<CustomerKey>,
) -> S3Result<Requested> {
    let bad = |m: &'static str| invalid(S3ErrorCode::InvalidArgument, m);
    if customer.is_some() && sse.is_some() {
        return Err(bad(
            "Server side encryption specified with both SSE-C and SSE-S3 or SSE-KMS headers",
        ));
    }
    if sse != Some("aws:kms") && sse != Some("aws:kms:dsse") && (kms_key.is_some() || context.is_some()) {
        return Err(bad(
            "x-amz-server-side-encryption-aws-kms-key-id and -context require x-amz-server-side-encryption: aws:kms",
        ));
    }
    Ok(match (sse, customer) {
        (None, None) => Requested::Nothing,
        (None, Some(c)) => Requested::Customer(c),
        (Some("AES256"), _) => Requested::S3,
        (Some("aws:kms" | "aws:kms:dsse"), _) => Requested::Kms {
            key: kms_key.map(key_name).transpose()?,
            context: context.map(parse_context).transpose()?,
            bucket_key: bucket_key.unwrap_or(false),
        },
        (Some(_), _) => return Err(bad("The encryption method specified is not supported")),
    })
}

/// A KMS key id as clients send it (a name, or an ARN ending in
/// `key/NAME` or `alias/NAME`) reduced to the key's name.
fn key_name(id: &str) -> S3Result<String> {
    let name = id
        .rsplit_once(":key/")
        .or_else(|| id.rsplit_once(":alias/"))
        .map_or(id, |(_, n)| n);
    let name = name.strip_prefix("alias/").unwrap_or(name);
    crate::kms::check_key_name(name)
        .map_err(|e| s3s::S3Error::with_message(S3ErrorCode::InvalidArgument, e.to_string()))?;
    Ok(name.to_owned())
}

/// The encryption context header: base64 of a JSON object of strings,
/// kept as canonical JSON.
fn parse_context(b64: &str) -> S3Result<String> {
    let bad = || {
        invalid(
            S3ErrorCode::InvalidArgument,
            "The encryption context is not valid",
        )
    };
    let raw = base64_simd::STANDARD
        .decode_to_vec(b64.trim())
        .map_err(|_| bad())?;
    let ctx: Context = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if ctx.keys().any(|k| k.starts_with("aws:")) {
        return Err(bad());
    }
    Ok(serde_json::to_string(&ctx).unwrap_or_default())
}

/// The context a sealed data key is bound to: the object's ARN and the
/// client's pairs.
fn context(bucket: &str, key: &str, client: &str) -> ObjectResult<Context> {
    let mut ctx: Context = if client.is_empty() {
        Context::new()
    } else {
        serde_json::from_str(client).map_err(|_| ObjectError::Encryption(SseError::Tampered))?
    };
    ctx.insert("aws:s3:arn".into(), format!("arn:aws:s3:::{bucket}/{key}"));
    Ok(ctx)
}

/// The object an SSE-C data key is bound to.
fn bound(bucket: &str, key: &str) -> String {
    format!("{bucket}/{key}")
}

/// Whether the request's caller may do `action` (`kms:GenerateDataKey`,
/// `kms:Decrypt`) with KMS key `key`, as IAM decides (SSE-KMS only:
/// SSE-S3 uses the deployment's own key, as S3 uses its own).
fn kms_allowed(who: Option<&Authorized>, action: &str, key: &str) -> ObjectResult<()> {
    let allowed = who.is_some_and(|a| {
        let (caller, ctx) = &*a.0;
        caller.allows(None, action, &format!("arn:aws:kms:::key/{key}"), ctx)
    });
    if allowed {
        Ok(())
    } else {
        Err(ObjectError::Encryption(SseError::KmsDenied(key.to_owned())))
    }
}

impl Encryption {
    fn kms(&self) -> ObjectResult<&Arc<dyn Kms>> {
        self.kms
            .as_ref()
            .ok_or(ObjectError::Encryption(SseError::Kms(KmsError::NotConfigured)))
    }

    /// The sealing of a new version (or upload) of `bucket`/`key`: what the
    /// request asked for, else the bucket's default; `None` for plain.
    pub async fn sealing(
        &self,
        s3: &StrataS3,
        bucket: &str,
        key: &str,
        asked: Requested,
        cx: &RequestCx,
    ) -> ObjectResult<Option<Sealing>> {
        let asked = match asked {
            Requested::Nothing => match bucket_default(s3, bucket)? {
                None => return Ok(None),
                Some(d) if d.algorithm == "AES256" => Requested::S3,
                Some(d) => Requested::Kms {
                    key: d.key,
                    context: None,
                    bucket_key: d.bucket_key,
                },
            },
            other => other,
        };
        let mut record = EncryptionRecord {
            algo: Algorithm::preferred() as u8,
            ..Default::default()
        };
        let data = match asked {
            Requested::Nothing => return Ok(None),
            Requested::Customer(c) => {
                if !cx.secure && !self.insecure_customer_keys {
                    return Err(ObjectError::Encryption(SseError::Insecure));
                }
                let data = DataKey::random();
                record.mode = Mode::Customer as u8;
                record.sealed_key = c.seal(&data, &bound(bucket, key));
                data
            }
            Requested::S3 => {
                let kms = self.kms()?;
                let name = kms.default_key().to_owned();
                let (data, sealed) = kms
                    .generate(&name, &context(bucket, key, "")?)
                    .await
                    .map_err(SseError::from)?;
                record.mode = Mode::S3 as u8;
                record.key_id = name;
                record.sealed_key = sealed;
                data
            }
            Requested::Kms {
                key: name,
                context: client,
                bucket_key,
            } => {
                let kms = self.kms()?;
                let name = name.unwrap_or_else(|| kms.default_key().to_owned());
                kms_allowed(cx.who.as_ref(), "kms:GenerateDataKey", &name)?;
                let client = client.unwrap_or_default();
                let (data, sealed) = kms
                    .generate(&name, &context(bucket, key, &client)?)
                    .await
                    .map_err(SseError::from)?;
                record.mode = Mode::Kms as u8;
                record.key_id = name;
                record.sealed_key = sealed;
                record.context = client;
                record.bucket_key = bucket_key;
                data
            }
        };
        Ok(Some(Sealing { key: data, record }))
    }

    /// The keys for reading encrypted versions with a request's SSE-C key,
    /// for its caller.
    pub fn keys(&self, cx: &RequestCx, customer: Option<CustomerKey>) -> Arc<RequestKeys> {
        Arc::new(RequestKeys {
            kms: self.kms.clone(),
            customer,
            who: cx.who.clone(),
            server: false,
        })
    }
}

/// Opens data keys for one request: through the KMS, or with the SSE-C
/// key the request carries.
pub struct RequestKeys {
    kms: Option<Arc<dyn Kms>>,
    customer: Option<CustomerKey>,
    who: Option<Authorized>,
    /// The server's own reads (an admin operation already authorized):
    /// no caller's KMS permissions to check.
    server: bool,
}

impl RequestKeys {
    /// Keys for an operation the server runs for an authorized admin
    /// call (a clone copying encrypted versions): KMS keys open without a
    /// caller's `kms:Decrypt`, SSE-C versions do not open.
    pub fn server(kms: Option<Arc<dyn Kms>>) -> Self {
        Self {
            kms,
            customer: None,
            who: None,
            server: true,
        }
    }
}

#[async_trait::async_trait]
impl KeySource for RequestKeys {
    async fn data_key(&self, bucket: &str, key: &str, rec: &EncryptionRecord) -> ObjectResult<DataKey> {
        // A clone's data key stays bound to the name of its origin.
        let (bucket, key) = rec.bound_name(bucket, key);
        match Mode::from_u8(rec.mode).ok_or(SseError::Unknown)? {
            Mode::Customer => {
                let c = self.customer.as_ref().ok_or(SseError::MissingCustomerKey)?;
                Ok(c.open(&rec.sealed_key, &bound(bucket, key))?)
            }
            Mode::S3 | Mode::Kms => {
                if rec.mode == Mode::Kms as u8 && !self.server {
                    kms_allowed(self.who.as_ref(), "kms:Decrypt", &rec.key_id)?;
                }
                let kms = self.kms.as_ref().ok_or(SseError::Kms(KmsError::NotConfigured))?;
                let ctx = context(bucket, key, &rec.context)?;
                Ok(kms
                    .unseal(&rec.key_id, &rec.sealed_key, &ctx)
                    .await
                    .map_err(SseError::from)?)
            }
        }
    }
}

/// Refuses SSE-C headers on a read of an object that is not SSE-C, and
/// a missing key on one that is (before any byte is read).
pub fn check_read_key(rec: Option<&EncryptionRecord>, customer: Option<&CustomerKey>) -> ObjectResult<()> {
    let is_customer = rec.is_some_and(|r| r.mode == Mode::Customer as u8);
    match (is_customer, customer.is_some()) {
        (false, true) => Err(ObjectError::InvalidRequest(
            "The encryption parameters are not applicable to this object.".into(),
        )),
        (true, false) => Err(ObjectError::Encryption(SseError::MissingCustomerKey)),
        _ => Ok(()),
    }
}

/// The encryption headers of a response about a version encrypted so.
#[derive(Debug, Default)]
pub struct Headers {
    pub server_side_encryption: Option<ServerSideEncryption>,
    pub ssekms_key_id: Option<String>,
    pub sse_customer_algorithm: Option<String>,
    pub sse_customer_key_md5: Option<String>,
    pub bucket_key_enabled: Option<bool>,
}

impl Headers {
    /// For a version stored with `rec`; `customer` is the request's SSE-C
    /// key (its MD5 is echoed).
    pub fn of(rec: Option<&EncryptionRecord>, customer: Option<&CustomerKey>) -> Self {
        let Some(rec) = rec else {
            return Self::default();
        };
        match Mode::from_u8(rec.mode) {
            Some(Mode::S3) => Self {
                server_side_encryption: Some(ServerSideEncryption::from_static(ServerSideEncryption::AES256)),
                ..Default::default()
            },
            Some(Mode::Kms) => Self {
                server_side_encryption: Some(ServerSideEncryption::from_static(
                    ServerSideEncryption::AWS_KMS,
                )),
                ssekms_key_id: Some(rec.key_id.clone()),
                bucket_key_enabled: rec.bucket_key.then_some(true),
                ..Default::default()
            },
            Some(Mode::Customer) => Self {
                sse_customer_algorithm: Some("AES256".into()),
                sse_customer_key_md5: customer.map(|c| c.md5().to_owned()),
                ..Default::default()
            },
            None => Self::default(),
        }
    }
}

/// Copies [`Headers`] into an output struct.
macro_rules! set_sse {
    ($out:expr, $h:expr) => {{
        let h: $crate::api::s3::sse::Headers = $h;
        $out.server_side_encryption = h.server_side_encryption;
        $out.ssekms_key_id = h.ssekms_key_id;
        $out.sse_customer_algorithm = h.sse_customer_algorithm;
        $out.sse_customer_key_md5 = h.sse_customer_key_md5;
        $out.bucket_key_enabled = h.bucket_key_enabled;
    }};
}
pub(crate) use set_sse;

fn bucket_default(s3: &StrataS3, bucket: &str) -> ObjectResult<Option<BucketDefault>> {
    let Some(raw) = s3.layer.bucket_setting(bucket, BUCKET_SETTING)? else {
        return Ok(None);
    };
    serde_json::from_slice(&raw)
        .map(Some)
        .map_err(|e| ObjectError::Internal(format!("bucket encryption setting: {e}")))
}

pub async fn put_bucket_encryption(
    s3: &StrataS3,
    req: S3Request<PutBucketEncryptionInput>,
) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
    let rid = rid(&req);
    let i = req.input;
    let bad = |m: &'static str| invalid(S3ErrorCode::InvalidArgument, m);
    let rules = i.server_side_encryption_configuration.rules;
    let [rule] = &rules[..] else {
        return Err(invalid(
            S3ErrorCode::MalformedXML,
            "The server-side encryption configuration must have exactly one rule",
        ));
    };
    let by_default = rule
        .apply_server_side_encryption_by_default
        .as_ref()
        .ok_or_else(|| bad("ApplyServerSideEncryptionByDefault is required"))?;
    let algorithm = by_default.sse_algorithm.as_str().to_owned();
    let key = match (algorithm.as_str(), by_default.kms_master_key_id.as_deref()) {
        ("AES256", None) => None,
        ("AES256", Some(_)) => return Err(bad("KMSMasterKeyID is allowed only with aws:kms")),
        ("aws:kms" | "aws:kms:dsse", k) => k.map(key_name).transpose()?,
        _ => return Err(bad("The encryption method specified is not supported")),
    };
    let kms = s3.sse.kms().map_err(fail(&rid))?;
    if let Some(k) = &key
        && !kms
            .list_keys()
            .await
            .map_err(|e| fail(&rid)(SseError::from(e).into()))?
            .iter()
            .any(|info| &info.name == k)
    {
        return Err(fail(&rid)(SseError::Kms(KmsError::NoSuchKey(k.clone())).into()));
    }
    let setting = BucketDefault {
        algorithm: if algorithm == "AES256" {
            algorithm
        } else {
            "aws:kms".into()
        },
        key,
        bucket_key: rule.bucket_key_enabled.unwrap_or(false),
    };
    s3.layer
        .set_bucket_setting(
            &i.bucket,
            BUCKET_SETTING,
            Some(serde_json::to_vec(&setting).unwrap_or_default()),
        )
        .await
        .map_err(fail(&rid))?;
    Ok(S3Response::new(PutBucketEncryptionOutput::default()))
}

pub async fn get_bucket_encryption(
    s3: &StrataS3,
    req: S3Request<GetBucketEncryptionInput>,
) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
    let rid = rid(&req);
    let d = bucket_default(s3, &req.input.bucket)
        .map_err(fail(&rid))?
        .ok_or_else(|| {
            invalid(
                S3ErrorCode::ServerSideEncryptionConfigurationNotFoundError,
                "The server side encryption configuration was not found",
            )
        })?;
    Ok(S3Response::new(GetBucketEncryptionOutput {
        server_side_encryption_configuration: Some(ServerSideEncryptionConfiguration {
            rules: vec![ServerSideEncryptionRule {
                apply_server_side_encryption_by_default: Some(ServerSideEncryptionByDefault {
                    sse_algorithm: ServerSideEncryption::from(d.algorithm),
                    kms_master_key_id: d.key,
                }),
                bucket_key_enabled: Some(d.bucket_key),
            }],
        }),
    }))
}

pub async fn delete_bucket_encryption(
    s3: &StrataS3,
    req: S3Request<DeleteBucketEncryptionInput>,
) -> S3Result<S3Response<DeleteBucketEncryptionOutput>> {
    super::delete_setting(s3, &req, &req.input.bucket, BUCKET_SETTING).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kms_key_ids_reduce_to_names() {
        assert_eq!(key_name("app").unwrap(), "app");
        assert_eq!(key_name("arn:aws:kms:us-east-1:123:key/app").unwrap(), "app");
        assert_eq!(key_name("alias/app").unwrap(), "app");
        assert!(key_name("arn:aws:kms:us-east-1:123:key/a b").is_err());
    }

    #[test]
    fn write_headers_are_checked() {
        assert!(matches!(
            check_requested(None, None, None, None, None).unwrap(),
            Requested::Nothing
        ));
        assert!(matches!(
            check_requested(Some("AES256"), None, None, None, None).unwrap(),
            Requested::S3
        ));
        assert!(check_requested(Some("AES256"), Some("k"), None, None, None).is_err());
        assert!(check_requested(Some("aws:kms"), None, Some("!!"), None, None).is_err());
        assert!(check_requested(Some("DES"), None, None, None, None).is_err());
        let ctx = base64_simd::STANDARD.encode_to_string(br#"{"b":"2","a":"1"}"#);
        match check_requested(Some("aws:kms"), Some("k"), Some(&ctx), Some(true), None).unwrap() {
            Requested::Kms {
                key,
                context,
                bucket_key,
            } => {
                assert_eq!(key.as_deref(), Some("k"));
                assert_eq!(context.as_deref(), Some(r#"{"a":"1","b":"2"}"#));
                assert!(bucket_key);
            }
            other => panic!("{other:?}"),
        }
        let reserved = base64_simd::STANDARD.encode_to_string(br#"{"aws:s3:arn":"x"}"#);
        assert!(check_requested(Some("aws:kms"), None, Some(&reserved), None, None).is_err());
    }
}
