//! Translations between `s3s` DTOs and object-layer types that several
//! handlers share: timestamps, ETags, bodies, stored headers, user
//! metadata, tags, conditions, version ids, and the refusal of request
//! features objd does not implement (rather than ignoring them).

use crate::meta::{Version, Versioning};
use crate::object::checksum::{Checksum, ChecksumAlgo, ChecksumCheck, ChecksumKind, Expected};
use crate::object::lock::{Retention, RetentionMode};
use crate::object::{ByteStream, EtagMatch, WriteCondition};
use futures::StreamExt;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Result};
use std::time::{Duration, UNIX_EPOCH};

/// A stored time as S3 reports it: to the millisecond (clients such as
/// rclone match version times at that precision).
pub fn ts(ns: i64) -> Timestamp {
    let ms = ns.max(0) as u64 / 1_000_000;
    Timestamp::from(UNIX_EPOCH + Duration::from_millis(ms))
}

/// Seconds since the Unix epoch of a request timestamp.
pub fn secs(t: Timestamp) -> i64 {
    time::OffsetDateTime::from(t).unix_timestamp()
}

/// Nanoseconds since the Unix epoch of a request timestamp.
pub fn nanos(t: Timestamp) -> i64 {
    time::OffsetDateTime::from(t)
        .unix_timestamp_nanos()
        .clamp(0, i128::from(i64::MAX)) as i64
}

/// The Object Lock headers of a write (`x-amz-object-lock-*`).
macro_rules! lock_headers {
    ($i:expr) => {
        $crate::api::s3::convert::lock_request(
            $i.object_lock_mode.as_ref(),
            $i.object_lock_retain_until_date.clone(),
            $i.object_lock_legal_hold_status.as_ref(),
        )?
    };
}
pub(crate) use lock_headers;

pub fn retention_mode(m: &str) -> S3Result<RetentionMode> {
    match m {
        ObjectLockMode::GOVERNANCE => Ok(RetentionMode::Governance),
        ObjectLockMode::COMPLIANCE => Ok(RetentionMode::Compliance),
        _ => Err(invalid(S3ErrorCode::InvalidArgument, "Unknown object lock mode")),
    }
}

/// A retention from a mode and a date, which come together or not at all.
pub fn retention(mode: Option<&str>, until: Option<Timestamp>) -> S3Result<Option<Retention>> {
    match (mode, until) {
        (None, None) => Ok(None),
        (Some(m), Some(u)) => Ok(Some(Retention {
            mode: retention_mode(m)?,
            until_ns: nanos(u),
        })),
        _ => Err(invalid(
            S3ErrorCode::MalformedXML,
            "Retention needs both Mode and RetainUntilDate",
        )),
    }
}

/// Retention and legal hold asked for by a write.
pub fn lock_request(
    mode: Option<&ObjectLockMode>,
    until: Option<Timestamp>,
    hold: Option<&ObjectLockLegalHoldStatus>,
) -> S3Result<(Option<Retention>, bool)> {
    let retention = retention(mode.map(ObjectLockMode::as_str), until).map_err(|_| {
        invalid(
            S3ErrorCode::InvalidArgument,
            "x-amz-object-lock-mode and x-amz-object-lock-retain-until-date must both be supplied",
        )
    })?;
    if retention.is_some_and(|r| r.until_ns <= crate::object::now_ns()) {
        return Err(invalid(
            S3ErrorCode::InvalidArgument,
            "The retain until date must be in the future!",
        ));
    }
    let hold = hold.is_some_and(|h| h.as_str() == ObjectLockLegalHoldStatus::ON);
    Ok((retention, hold))
}

/// Sets the Object Lock fields of a GET or HEAD output from a version.
macro_rules! set_lock_fields {
    ($out:expr, $v:expr) => {{
        if let Some(r) = $crate::object::lock::Retention::of(&$v.extras) {
            $out.object_lock_mode = Some(s3s::dto::ObjectLockMode::from_static(match r.mode {
                $crate::object::lock::RetentionMode::Governance => s3s::dto::ObjectLockMode::GOVERNANCE,
                $crate::object::lock::RetentionMode::Compliance => s3s::dto::ObjectLockMode::COMPLIANCE,
            }));
            $out.object_lock_retain_until_date = Some($crate::api::s3::convert::ts(r.until_ns));
        }
        if $v.extras.legal_hold {
            $out.object_lock_legal_hold_status = Some(s3s::dto::ObjectLockLegalHoldStatus::from_static(
                s3s::dto::ObjectLockLegalHoldStatus::ON,
            ));
        }
    }};
}
pub(crate) use set_lock_fields;

pub fn etag(v: &str) -> ETag {
    ETag::Strong(v.to_owned())
}

pub fn body_stream(blob: Option<StreamingBlob>) -> ByteStream {
    match blob {
        Some(b) => Box::pin(b.map(|r| r.map_err(std::io::Error::other))),
        None => Box::pin(futures::stream::empty()),
    }
}

pub fn invalid(code: S3ErrorCode, msg: &'static str) -> S3Error {
    S3Error::with_message(code, msg)
}

pub fn content_md5(v: Option<&str>) -> S3Result<Option<[u8; 16]>> {
    let Some(v) = v else { return Ok(None) };
    let bad = || {
        invalid(
            S3ErrorCode::InvalidDigest,
            "The Content-MD5 you specified is not valid",
        )
    };
    let raw = base64_simd::STANDARD.decode_to_vec(v.trim()).map_err(|_| bad())?;
    let arr: [u8; 16] = raw.try_into().map_err(|_| bad())?;
    Ok(Some(arr))
}

pub fn size_of(len: Option<i64>) -> Option<u64> {
    len.and_then(|l| u64::try_from(l).ok())
}

/// The system headers a write stores and a read returns.
#[derive(Default)]
pub struct StoredHeaders {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<Timestamp>,
}

pub fn http_date(t: &Timestamp) -> Option<String> {
    let mut b = Vec::new();
    t.format(TimestampFormat::HttpDate, &mut b).ok()?;
    String::from_utf8(b).ok()
}

impl StoredHeaders {
    pub fn into_pairs(self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut add = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                out.push((k.to_owned(), v));
            }
        };
        add("content-type", self.content_type);
        add("content-encoding", self.content_encoding);
        add("content-disposition", self.content_disposition);
        add("content-language", self.content_language);
        add("cache-control", self.cache_control);
        add("expires", self.expires.as_ref().and_then(http_date));
        out
    }

    pub fn from_version(v: &Version) -> Self {
        let get = |k: &str| v.header(k).map(str::to_owned);
        Self {
            content_type: get("content-type"),
            content_encoding: get("content-encoding"),
            content_disposition: get("content-disposition"),
            content_language: get("content-language"),
            cache_control: get("cache-control"),
            expires: v
                .header("expires")
                .and_then(|s| Timestamp::parse(TimestampFormat::HttpDate, s).ok()),
        }
    }
}

/// The bucket, key and version a copy reads, from `x-amz-copy-source`.
pub fn copy_source_path(c: &CopySource) -> S3Result<(String, String, Option<String>)> {
    match c {
        CopySource::Bucket {
            bucket,
            key,
            version_id,
        } => Ok((
            bucket.to_string(),
            key.to_string(),
            version_id.as_deref().map(str::to_owned),
        )),
        _ => Err(invalid(
            S3ErrorCode::NotImplemented,
            "Access point copy sources are not supported",
        )),
    }
}

/// The source of a copy (CopyObject, UploadPartCopy) with its
/// `x-amz-copy-source-if-*` conditions.
macro_rules! copy_source {
    ($i:expr) => {{
        let (bucket, key, version) = $crate::api::s3::convert::copy_source_path(&$i.copy_source)?;
        $crate::object::CopySource {
            bucket,
            key,
            version,
            conditions: $crate::api::s3::convert::read_conditions!(
                $i,
                copy_source_if_match,
                copy_source_if_none_match,
                copy_source_if_modified_since,
                copy_source_if_unmodified_since
            ),
            keys: None,
        }
    }};
}
pub(crate) use copy_source;

/// The options every write shares (PutObject, CreateMultipartUpload,
/// CopyObject) from its input: the stored headers, user metadata, tags,
/// Object Lock headers and checksum algorithm. Callers add what is
/// particular to them (the storage class's place, through
/// `StrataS3::place`).
macro_rules! write_options {
    ($i:expr) => {{
        let user_meta = $crate::api::s3::convert::user_meta($i.metadata);
        $crate::api::s3::convert::check_user_meta(&user_meta)?;
        let (retention, legal_hold) = $crate::api::s3::convert::lock_headers!($i);
        $crate::object::PutOptions {
            headers: $crate::api::s3::convert::stored_headers!($i),
            user_meta,
            tags: $crate::api::s3::parse::tagging_header($i.tagging.as_deref())?,
            checksum_algo: $crate::api::s3::convert::checksum_algorithm($i.checksum_algorithm.as_ref())?,
            retention,
            legal_hold,
            ..Default::default()
        }
    }};
}
pub(crate) use write_options;

/// The headers a write stores, from any input that carries them
/// (PutObject, CreateMultipartUpload, CopyObject with REPLACE).
macro_rules! stored_headers {
    ($i:expr) => {
        $crate::api::s3::convert::StoredHeaders {
            content_type: $i.content_type,
            content_encoding: $i.content_encoding,
            content_disposition: $i.content_disposition,
            content_language: $i.content_language,
            cache_control: $i.cache_control,
            expires: $i.expires,
        }
        .into_pairs()
    };
}
pub(crate) use stored_headers;

/// The preconditions of a read, from any input that carries the four
/// conditional headers under `$prefix` names (`if_match`, or
/// `copy_source_if_match` for a copy source).
macro_rules! read_conditions {
    ($i:expr, $m:ident, $nm:ident, $ms:ident, $us:ident) => {
        $crate::object::ReadConditions {
            if_match: $i.$m.clone().map($crate::api::s3::convert::etag_match),
            if_none_match: $i.$nm.clone().map($crate::api::s3::convert::etag_match),
            if_modified_since: $i.$ms.clone().map($crate::api::s3::convert::secs),
            if_unmodified_since: $i.$us.clone().map($crate::api::s3::convert::secs),
        }
    };
}
pub(crate) use read_conditions;

pub fn etag_match(c: ETagCondition) -> EtagMatch {
    match c {
        ETagCondition::Any => EtagMatch::Any,
        ETagCondition::ETag(e) => EtagMatch::Etag(e.value().to_owned()),
    }
}

/// `If-Match` / `If-None-Match` of a write. S3 supports only `*` for
/// If-None-Match on writes.
pub fn write_condition(
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
) -> S3Result<WriteCondition> {
    Ok(WriteCondition {
        if_match: if_match.map(etag_match),
        if_none_match: if_none_match.map(etag_match),
    })
}

pub fn user_meta(m: Option<Metadata>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = m
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_lowercase(), v))
        .collect();
    v.sort();
    v
}

/// S3's limit on the size of user metadata (names and values).
const MAX_USER_META: usize = 2048;

pub fn check_user_meta(m: &[(String, String)]) -> S3Result<()> {
    let total: usize = m.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > MAX_USER_META {
        return Err(invalid(
            S3ErrorCode::MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size",
        ));
    }
    Ok(())
}

pub fn meta_map(v: &Version) -> Option<Metadata> {
    (!v.user_meta.is_empty()).then(|| v.user_meta.iter().cloned().collect())
}

/// The version id a response names: none in a bucket that never had
/// versioning; `null` for the null version once it has.
pub fn version_id_out(v: &Version, versioning: Versioning) -> Option<String> {
    (versioning != Versioning::Unversioned || !v.id.is_null()).then(|| v.id.to_api())
}

pub fn tags_from_dto(t: Tagging) -> Vec<(String, String)> {
    t.tag_set
        .into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect()
}

pub fn tags_to_dto(tags: &[(String, String)]) -> TagSet {
    tags.iter()
        .map(|(k, v)| Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

/// The `x-amz-checksum-*` values of an input, by algorithm.
macro_rules! sent_checksums {
    ($i:expr) => {
        [
            (
                $crate::object::checksum::ChecksumAlgo::Crc32,
                $i.checksum_crc32.clone(),
            ),
            (
                $crate::object::checksum::ChecksumAlgo::Crc32c,
                $i.checksum_crc32c.clone(),
            ),
            (
                $crate::object::checksum::ChecksumAlgo::Crc64Nvme,
                $i.checksum_crc64nvme.clone(),
            ),
            (
                $crate::object::checksum::ChecksumAlgo::Sha1,
                $i.checksum_sha1.clone(),
            ),
            (
                $crate::object::checksum::ChecksumAlgo::Sha256,
                $i.checksum_sha256.clone(),
            ),
        ]
    };
}
pub(crate) use sent_checksums;

/// The checksum a client sent with a body: one `x-amz-checksum-*` header,
/// or a trailer of an `aws-chunked` body that `x-amz-trailer` announces.
pub fn checksum_check(
    sent: [(ChecksumAlgo, Option<String>); 5],
    headers: &http::HeaderMap,
    trailers: Option<s3s::TrailingHeaders>,
) -> S3Result<Option<ChecksumCheck>> {
    let mut given = sent.into_iter().filter_map(|(a, v)| v.map(|v| (a, v)));
    let first = given.next();
    if given.next().is_some() {
        return Err(invalid(
            S3ErrorCode::InvalidRequest,
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        ));
    }
    if let Some((algo, v)) = first {
        return Ok(Some(ChecksumCheck {
            algo,
            expected: Expected::Value(v),
        }));
    }
    let Some(name) = headers.get("x-amz-trailer").and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let name = name.trim().to_ascii_lowercase();
    let Some(algo) = name
        .strip_prefix("x-amz-checksum-")
        .and_then(ChecksumAlgo::from_name)
    else {
        return Err(invalid(
            S3ErrorCode::InvalidRequest,
            "The x-amz-trailer header names no supported checksum",
        ));
    };
    let Some(trailers) = trailers else {
        return Err(invalid(
            S3ErrorCode::InvalidRequest,
            "x-amz-trailer requires an aws-chunked body with trailers",
        ));
    };
    let read = move || {
        trailers
            .read(|h| {
                h.get(name.as_str())
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
            .flatten()
    };
    Ok(Some(ChecksumCheck {
        algo,
        expected: Expected::Trailer(Box::new(read)),
    }))
}

/// `x-amz-checksum-algorithm` of a request.
pub fn checksum_algorithm(a: Option<&ChecksumAlgorithm>) -> S3Result<Option<ChecksumAlgo>> {
    a.map(|a| {
        ChecksumAlgo::from_name(a.as_str())
            .ok_or_else(|| invalid(S3ErrorCode::InvalidRequest, "Checksum algorithm is not supported"))
    })
    .transpose()
}

/// A version's stored checksum, if it has one.
pub fn stored_checksum(v: &Version) -> Option<Checksum> {
    let c = v.extras.checksum.as_ref()?;
    Some(Checksum {
        algo: ChecksumAlgo::from_u8(c.algo)?,
        kind: if c.kind == ChecksumKind::Composite as u8 {
            ChecksumKind::Composite
        } else {
            ChecksumKind::FullObject
        },
        digest: c.digest.clone(),
        parts: c.parts,
    })
}

pub fn checksum_type(k: ChecksumKind) -> ChecksumType {
    ChecksumType::from_static(match k {
        ChecksumKind::FullObject => ChecksumType::FULL_OBJECT,
        ChecksumKind::Composite => ChecksumType::COMPOSITE,
    })
}

/// Sets the `checksum_<algo>` field of an output struct that has all five
/// (and `checksum_type` with a second argument) from a stored checksum.
macro_rules! set_checksum {
    ($out:expr, $c:expr) => {{
        use $crate::object::checksum::ChecksumAlgo as A;
        let c: &$crate::object::checksum::Checksum = $c;
        let v = Some(c.value());
        match c.algo {
            A::Crc32 => $out.checksum_crc32 = v,
            A::Crc32c => $out.checksum_crc32c = v,
            A::Crc64Nvme => $out.checksum_crc64nvme = v,
            A::Sha1 => $out.checksum_sha1 = v,
            A::Sha256 => $out.checksum_sha256 = v,
        }
    }};
    ($out:expr, $c:expr, typed) => {{
        set_checksum!($out, $c);
        $out.checksum_type = Some($crate::api::s3::convert::checksum_type($c.kind));
    }};
}
pub(crate) use set_checksum;
