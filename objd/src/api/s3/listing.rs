//! Listing operations: ListObjects (v1), ListObjectsV2 and
//! ListObjectVersions, over one object-layer listing with markers.

use super::acl::dto_owner;
use super::convert::{etag, ts};
use super::{StrataS3, fail, rid};
use crate::meta::VersionId;
use crate::object::{ListOptions, ListPage};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

/// Percent-encodes a key for `encoding-type=url` listings.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn list_encoder(enc: Option<&EncodingType>) -> S3Result<fn(&str) -> String> {
    match enc.map(EncodingType::as_str) {
        None => Ok(str::to_owned),
        Some(EncodingType::URL) => Ok(url_encode),
        Some(_) => Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Invalid Encoding Method specified in Request",
        )),
    }
}

pub(crate) fn max_keys(v: Option<i32>) -> S3Result<usize> {
    match v {
        None => Ok(1000),
        Some(n) if n < 0 => Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "max-keys cannot be negative",
        )),
        Some(n) => Ok((n as usize).min(1000)),
    }
}

/// The storage class a listing shows for a version.
pub(crate) fn class_name(layer: &crate::object::ObjectLayer, v: &crate::meta::Version) -> String {
    layer
        .class_of(v)
        .unwrap_or_else(|| ObjectStorageClass::STANDARD.to_owned())
}

/// The entries of a page, each with `owner` when the listing shows owners
/// (v1 always, v2 with `fetch-owner`).
fn listed(
    layer: &crate::object::ObjectLayer,
    page: &ListPage,
    enc: fn(&str) -> String,
    owner: Option<Owner>,
) -> (Vec<Object>, Vec<CommonPrefix>) {
    let objects = page
        .objects
        .iter()
        .map(|o| Object {
            key: Some(enc(&o.key)),
            size: Some(o.version.size as i64),
            e_tag: Some(etag(&o.version.etag)),
            last_modified: Some(ts(o.version.mod_time_ns)),
            storage_class: Some(ObjectStorageClass::from(class_name(layer, &o.version))),
            owner: owner.clone(),
            ..Default::default()
        })
        .collect();
    (objects, prefixes(page, enc))
}

fn prefixes(page: &ListPage, enc: fn(&str) -> String) -> Vec<CommonPrefix> {
    page.prefixes
        .iter()
        .map(|p| CommonPrefix { prefix: Some(enc(p)) })
        .collect()
}

/// Continuation tokens are the key to resume after, base64-encoded so that
/// clients treat them as opaque.
pub(crate) fn encode_token(key: &str) -> String {
    base64_simd::URL_SAFE_NO_PAD.encode_to_string(key.as_bytes())
}

pub(crate) fn decode_token(t: &str) -> S3Result<String> {
    base64_simd::URL_SAFE_NO_PAD
        .decode_to_vec(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "The continuation token provided is incorrect",
            )
        })
}

fn options(
    prefix: Option<&str>,
    delimiter: Option<&str>,
    start_after: String,
    max: Option<i32>,
) -> S3Result<ListOptions> {
    Ok(ListOptions {
        prefix: prefix.unwrap_or_default().to_owned(),
        delimiter: delimiter.map(str::to_owned),
        start_after,
        max_keys: max_keys(max)?,
        ..Default::default()
    })
}

pub async fn list_objects_v2(
    s3: &StrataS3,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let rid = rid(&req);
    let i = req.input;
    let enc = list_encoder(i.encoding_type.as_ref())?;
    let after = match &i.continuation_token {
        Some(t) => decode_token(t)?,
        None => i.start_after.clone().unwrap_or_default(),
    };
    let opts = options(i.prefix.as_deref(), i.delimiter.as_deref(), after, i.max_keys)?;
    let page = s3.layer.list_objects(&i.bucket, opts).await.map_err(fail(&rid))?;
    let owner = (i.fetch_owner == Some(true)).then(|| dto_owner(&s3.owner));
    let (contents, prefixes) = listed(&s3.layer, &page, enc, owner);
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(i.bucket),
        prefix: Some(i.prefix.as_deref().map(enc).unwrap_or_default()),
        delimiter: i.delimiter.as_deref().map(enc),
        max_keys: Some(max_keys(i.max_keys)? as i32),
        key_count: Some((contents.len() + prefixes.len()) as i32),
        continuation_token: i.continuation_token,
        next_continuation_token: page
            .next_marker
            .as_deref()
            .filter(|_| page.truncated)
            .map(encode_token),
        is_truncated: Some(page.truncated),
        contents: Some(contents),
        common_prefixes: Some(prefixes),
        start_after: i.start_after.as_deref().map(enc),
        encoding_type: i.encoding_type,
        ..Default::default()
    }))
}

pub async fn list_objects(
    s3: &StrataS3,
    req: S3Request<ListObjectsInput>,
) -> S3Result<S3Response<ListObjectsOutput>> {
    let rid = rid(&req);
    let i = req.input;
    let enc = list_encoder(i.encoding_type.as_ref())?;
    let after = i.marker.clone().unwrap_or_default();
    let opts = options(i.prefix.as_deref(), i.delimiter.as_deref(), after, i.max_keys)?;
    let page = s3.layer.list_objects(&i.bucket, opts).await.map_err(fail(&rid))?;
    let (contents, prefixes) = listed(&s3.layer, &page, enc, Some(dto_owner(&s3.owner)));
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(i.bucket),
        prefix: Some(i.prefix.as_deref().map(enc).unwrap_or_default()),
        delimiter: i.delimiter.as_deref().map(enc),
        marker: Some(i.marker.as_deref().map(enc).unwrap_or_default()),
        max_keys: Some(max_keys(i.max_keys)? as i32),
        is_truncated: Some(page.truncated),
        next_marker: page.next_marker.as_deref().filter(|_| page.truncated).map(enc),
        contents: Some(contents),
        common_prefixes: Some(prefixes),
        encoding_type: i.encoding_type,
        request_charged: None,
    }))
}

pub async fn list_object_versions(
    s3: &StrataS3,
    req: S3Request<ListObjectVersionsInput>,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let rid = rid(&req);
    let i = req.input;
    let enc = list_encoder(i.encoding_type.as_ref())?;
    let version_marker = match i.version_id_marker.as_deref().filter(|m| !m.is_empty()) {
        None => None,
        Some(_) if i.key_marker.as_deref().unwrap_or_default().is_empty() => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "A version-id marker cannot be specified without a key marker.",
            ));
        }
        Some(m) => Some(VersionId::from_api(m).ok_or_else(|| {
            S3Error::with_message(S3ErrorCode::InvalidArgument, "Invalid version id specified")
        })?),
    };
    let mut opts = options(
        i.prefix.as_deref(),
        i.delimiter.as_deref(),
        i.key_marker.clone().unwrap_or_default(),
        i.max_keys,
    )?;
    opts.versions = true;
    opts.version_marker = version_marker;
    let page = s3.layer.list_objects(&i.bucket, opts).await.map_err(fail(&rid))?;
    let mut versions = Vec::new();
    let mut markers = Vec::new();
    for o in &page.objects {
        let v = &o.version;
        if v.is_delete_marker() {
            markers.push(DeleteMarkerEntry {
                key: Some(enc(&o.key)),
                version_id: Some(v.id.to_api()),
                is_latest: Some(o.is_latest),
                last_modified: Some(ts(v.mod_time_ns)),
                owner: Some(dto_owner(&s3.owner)),
            });
        } else {
            versions.push(ObjectVersion {
                key: Some(enc(&o.key)),
                version_id: Some(v.id.to_api()),
                is_latest: Some(o.is_latest),
                last_modified: Some(ts(v.mod_time_ns)),
                e_tag: Some(etag(&v.etag)),
                size: Some(v.size as i64),
                storage_class: Some(ObjectVersionStorageClass::from(class_name(&s3.layer, v))),
                owner: Some(dto_owner(&s3.owner)),
                ..Default::default()
            });
        }
    }
    Ok(S3Response::new(ListObjectVersionsOutput {
        name: Some(i.bucket),
        prefix: Some(i.prefix.as_deref().map(enc).unwrap_or_default()),
        delimiter: i.delimiter.as_deref().map(enc),
        key_marker: Some(i.key_marker.as_deref().map(enc).unwrap_or_default()),
        version_id_marker: Some(i.version_id_marker.unwrap_or_default()),
        max_keys: Some(max_keys(i.max_keys)? as i32),
        is_truncated: Some(page.truncated),
        next_key_marker: page.next_marker.as_deref().map(enc),
        next_version_id_marker: page.next_version_marker.map(|v| v.to_api()),
        versions: Some(versions),
        delete_markers: Some(markers),
        common_prefixes: Some(prefixes(&page, enc)),
        encoding_type: i.encoding_type,
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_of_listed_keys() {
        assert_eq!(url_encode("a b/c+d%é"), "a%20b/c%2Bd%25%C3%A9");
        assert_eq!(decode_token(&encode_token("x/ y")).unwrap(), "x/ y");
        assert!(decode_token("!!!").is_err());
    }
}
