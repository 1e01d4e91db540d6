//! Object operations: PUT, browser form uploads (POST), GET, HEAD, DELETE
//! (one or many), CopyObject and object tagging.

use super::convert::*;
use super::sse::{
    Headers, RequestCx, check_read_key, copy_source_key, customer_key, requested, set_sse, write_sealing,
};
use super::{StrataS3, fail, rid};
use crate::meta::Version;
use crate::object::{GetRange, ObjectError, PutOptions};
use s3s::dto::*;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result};

pub async fn put_object(
    s3: &StrataS3,
    req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
    let rid = rid(&req);
    let checksum = checksum_check(
        sent_checksums!(req.input),
        &req.headers,
        req.trailing_headers.clone(),
    )?;
    let cx = RequestCx::of(&req);
    let i = req.input;
    if i.write_offset_bytes.is_some() {
        return Err(invalid(S3ErrorCode::NotImplemented, "Appends are not supported"));
    }
    let (encryption, customer) = write_sealing!(s3, cx, i, rid);
    let opts = PutOptions {
        encryption,
        size: size_of(i.content_length),
        content_md5: content_md5(i.content_md5.as_deref())?,
        condition: write_condition(i.if_match, i.if_none_match)?,
        checksum,
        acl: super::acl::object_acl!(s3, rid, i),
        place: s3.place(&rid, i.storage_class.as_ref()).await?,
        ..write_options!(i)
    };
    let v = s3
        .layer
        .put_object(&i.bucket, &i.key, body_stream(i.body), opts)
        .await
        .map_err(fail(&rid))?;
    let mut out = PutObjectOutput {
        expiration: expiration_of(s3, &i.bucket, &i.key, &v),
        e_tag: Some(etag(&v.etag)),
        version_id: (!v.id.is_null()).then(|| v.id.to_api()),
        ..Default::default()
    };
    if let Some(c) = stored_checksum(&v) {
        set_checksum!(out, &c, typed);
    }
    set_sse!(out, Headers::of(v.extras.encryption.as_ref(), customer.as_ref()));
    Ok(S3Response::new(out))
}

/// When the bucket's lifecycle rules expire `v`, the current version of
/// `key` (`x-amz-expiration`).
pub(super) fn expiration_of(s3: &StrataS3, bucket: &str, key: &str, v: &Version) -> Option<String> {
    super::lifecycle::expiration(s3, bucket, key, v.size, &v.extras.tags, v.mod_time_ns)
}

/// Whether the client asked for checksums (`x-amz-checksum-mode: ENABLED`).
fn checksum_mode(m: Option<&ChecksumMode>) -> bool {
    m.is_some_and(|m| m.as_str() == ChecksumMode::ENABLED)
}

/// The bytes `[start, end)` a GET returns, from `Range` or `partNumber`,
/// with the Content-Range to send.
fn byte_range(
    v: &Version,
    range: Option<Range>,
    part: Option<i32>,
) -> Result<(u64, u64, Option<String>), ObjectError> {
    let (start, end) = match (range, part) {
        (Some(_), Some(_)) => {
            return Err(ObjectError::InvalidRequest(
                "Cannot specify both Range header and partNumber query parameter".into(),
            ));
        }
        (None, None) => return Ok((0, v.size, None)),
        (Some(Range::Int { first, last }), None) => GetRange::From { first, last }.resolve(v.size)?,
        (Some(Range::Suffix { length }), None) => GetRange::Suffix(length).resolve(v.size)?,
        (None, Some(n)) => {
            let n = usize::try_from(n)
                .ok()
                .filter(|n| (1..=v.parts.len()).contains(n));
            let n = n.ok_or(ObjectError::InvalidRange)?;
            let start: u64 = v.parts[..n - 1].iter().map(|p| v.plain_part_size(p)).sum();
            (start, start + v.plain_part_size(&v.parts[n - 1]))
        }
    };
    let cr = format!("bytes {}-{}/{}", start, end.saturating_sub(1), v.size);
    Ok((start, end, Some(cr)))
}

/// Applies the `response-*` query overrides of a GET or HEAD.
macro_rules! apply_overrides {
    ($h:ident, $i:expr) => {
        if $i.response_content_type.is_some() {
            $h.content_type = $i.response_content_type.take();
        }
        if $i.response_content_encoding.is_some() {
            $h.content_encoding = $i.response_content_encoding.take();
        }
        if $i.response_content_disposition.is_some() {
            $h.content_disposition = $i.response_content_disposition.take();
        }
        if $i.response_content_language.is_some() {
            $h.content_language = $i.response_content_language.take();
        }
        if $i.response_cache_control.is_some() {
            $h.cache_control = $i.response_cache_control.take();
        }
        if $i.response_expires.is_some() {
            $h.expires = $i.response_expires.take();
        }
    };
}

/// The headers GET and HEAD share, as an output struct literal.
macro_rules! object_output {
    ($ty:ident, $layer:expr, $v:expr, $versioning:expr, $h:expr, $len:expr, $range:expr, { $($extra:tt)* }) => {
        $ty {
            content_length: Some($len as i64),
            content_range: $range,
            accept_ranges: Some("bytes".into()),
            e_tag: Some(etag(&$v.etag)),
            last_modified: Some(ts($v.mod_time_ns)),
            content_type: $h.content_type,
            content_encoding: $h.content_encoding,
            content_disposition: $h.content_disposition,
            content_language: $h.content_language,
            cache_control: $h.cache_control,
            expires: $h.expires,
            metadata: meta_map(&$v),
            version_id: version_id_out(&$v, $versioning),
            parts_count: ($v.parts.len() > 1).then_some($v.parts.len() as i32),
            storage_class: $layer.class_of(&$v).map(StorageClass::from),
            $($extra)*
            ..Default::default()
        }
    };
}

pub async fn get_object(
    s3: &StrataS3,
    req: S3Request<GetObjectInput>,
) -> S3Result<S3Response<GetObjectOutput>> {
    let rid = rid(&req);
    let cx = RequestCx::of(&req);
    let mut i = req.input;
    let customer = customer_key!(i);
    let (versioning, mut reader) = s3.open(&rid, &i.bucket, &i.key, i.version_id.as_deref()).await?;
    let v = reader.version().clone();
    check_read_key(v.extras.encryption.as_ref(), customer.as_ref()).map_err(fail(&rid))?;
    read_conditions!(i, if_match, if_none_match, if_modified_since, if_unmodified_since)
        .check(&v)
        .map_err(fail(&rid))?;
    reader
        .unlock(&*s3.sse.keys(&cx, customer.clone()))
        .await
        .map_err(fail(&rid))?;
    let (start, end, range) = byte_range(&v, i.range.take(), i.part_number).map_err(fail(&rid))?;
    let mut h = StoredHeaders::from_version(&v);
    apply_overrides!(h, i);
    let tags = v.extras.tags.len();
    let whole = range.is_none();
    // The read's working set comes from the buffer budget first.
    let body = reader.stream_charged(start, end).await.map_err(fail(&rid))?;
    let mut out = object_output!(GetObjectOutput, s3.layer, v, versioning, h, end - start, range, {
        body: Some(StreamingBlob::wrap(body)),
        tag_count: (tags > 0).then_some(tags as i32),
    });
    set_lock_fields!(out, v);
    if i.version_id.is_none() {
        out.expiration = expiration_of(s3, &i.bucket, &i.key, &v);
    }
    set_sse!(out, Headers::of(v.extras.encryption.as_ref(), customer.as_ref()));
    if whole
        && checksum_mode(i.checksum_mode.as_ref())
        && let Some(c) = stored_checksum(&v)
    {
        set_checksum!(out, &c, typed);
    }
    Ok(S3Response::new(out))
}

pub async fn head_object(
    s3: &StrataS3,
    req: S3Request<HeadObjectInput>,
) -> S3Result<S3Response<HeadObjectOutput>> {
    let rid = rid(&req);
    let cx = RequestCx::of(&req);
    let mut i = req.input;
    let customer = customer_key!(i);
    let (versioning, mut reader) = s3.open(&rid, &i.bucket, &i.key, i.version_id.as_deref()).await?;
    let rec = reader.version().extras.encryption.clone();
    check_read_key(rec.as_ref(), customer.as_ref()).map_err(fail(&rid))?;
    if customer.is_some() {
        // The key must be the object's: proven by opening its data key.
        reader
            .unlock(&*s3.sse.keys(&cx, customer.clone()))
            .await
            .map_err(fail(&rid))?;
    }
    let v = reader.version();
    read_conditions!(i, if_match, if_none_match, if_modified_since, if_unmodified_since)
        .check(v)
        .map_err(fail(&rid))?;
    let (start, end, range) = byte_range(v, i.range.take(), i.part_number).map_err(fail(&rid))?;
    let mut h = StoredHeaders::from_version(v);
    apply_overrides!(h, i);
    let whole = range.is_none();
    let mut out = object_output!(
        HeadObjectOutput,
        s3.layer,
        v,
        versioning,
        h,
        end - start,
        range,
        {}
    );
    set_lock_fields!(out, v);
    if i.version_id.is_none() {
        out.expiration = expiration_of(s3, &i.bucket, &i.key, v);
    }
    set_sse!(out, Headers::of(rec.as_ref(), customer.as_ref()));
    if whole
        && checksum_mode(i.checksum_mode.as_ref())
        && let Some(c) = stored_checksum(v)
    {
        set_checksum!(out, &c, typed);
    }
    let mut resp = S3Response::new(out);
    // HeadObject's output has no field for it; GET's has.
    let tags = v.extras.tags.len();
    if tags > 0 {
        resp.headers
            .insert("x-amz-tagging-count", http::HeaderValue::from(tags));
    }
    Ok(resp)
}

pub async fn delete_object(
    s3: &StrataS3,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let rid = rid(&req);
    let i = req.input;
    let (version_id, marker) = s3
        .layer
        .delete_object(
            &i.bucket,
            &i.key,
            i.version_id.as_deref(),
            i.bypass_governance_retention.unwrap_or(false),
        )
        .await
        .map_err(fail(&rid))?;
    Ok(S3Response::new(DeleteObjectOutput {
        delete_marker: marker.then_some(true),
        version_id,
        ..Default::default()
    }))
}

pub async fn delete_objects(
    s3: &StrataS3,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let rid = rid(&req);
    let i = req.input;
    s3.layer.bucket(&i.bucket).map_err(fail(&rid))?;
    if i.delete.objects.len() > 1000 {
        return Err(invalid(
            S3ErrorCode::MalformedXML,
            "At most 1000 keys can be deleted at once",
        ));
    }
    let quiet = i.delete.quiet.unwrap_or(false);
    let bypass = i.bypass_governance_retention.unwrap_or(false);
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for o in i.delete.objects {
        match s3
            .layer
            .delete_object(&i.bucket, &o.key, o.version_id.as_deref(), bypass)
            .await
        {
            Ok((version_id, marker)) => {
                if !quiet {
                    deleted.push(DeletedObject {
                        key: Some(o.key),
                        version_id: o.version_id,
                        delete_marker: marker.then_some(true),
                        delete_marker_version_id: if marker { version_id } else { None },
                    });
                }
            }
            Err(e) => {
                let e = crate::api::error::to_s3(e);
                errors.push(Error {
                    code: Some(e.code().as_str().to_owned()),
                    key: Some(o.key),
                    message: e.message().map(str::to_owned),
                    version_id: o.version_id,
                });
            }
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: Some(errors),
        ..Default::default()
    }))
}

/// Whether a COPY/REPLACE directive says REPLACE.
fn replaces(directive: Option<&str>, copy: &str, replace: &str) -> S3Result<bool> {
    match directive {
        None => Ok(false),
        Some(d) if d == copy => Ok(false),
        Some(d) if d == replace => Ok(true),
        Some(_) => Err(invalid(
            S3ErrorCode::InvalidArgument,
            "Unknown metadata or tagging directive",
        )),
    }
}

pub async fn copy_object(
    s3: &StrataS3,
    req: S3Request<CopyObjectInput>,
) -> S3Result<S3Response<CopyObjectOutput>> {
    let rid = rid(&req);
    let cx = RequestCx::of(&req);
    let i = req.input;
    let mut src = copy_source!(i);
    src.keys = Some(s3.sse.keys(&cx, copy_source_key!(i)));
    let customer = customer_key!(i);
    let asked = requested!(i);
    let reencrypt = !matches!(asked, super::sse::Requested::Nothing);
    let replace_meta = replaces(
        i.metadata_directive.as_ref().map(MetadataDirective::as_str),
        MetadataDirective::COPY,
        MetadataDirective::REPLACE,
    )?;
    let replace_tags = replaces(
        i.tagging_directive.as_ref().map(TaggingDirective::as_str),
        TaggingDirective::COPY,
        TaggingDirective::REPLACE,
    )?;
    if src.bucket == i.bucket
        && src.key == i.key
        && src.version.is_none()
        && !replace_meta
        && !replace_tags
        && !reencrypt
        && i.storage_class.is_none()
    {
        return Err(invalid(
            S3ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let mut opts = PutOptions {
        acl: super::acl::object_acl!(s3, rid, i),
        place: s3.place(&rid, i.storage_class.as_ref()).await?,
        ..write_options!(i)
    };
    opts.encryption = s3
        .sse
        .sealing(s3, &i.bucket, &i.key, asked, &cx)
        .await
        .map_err(fail(&rid))?;
    let (source, written) = s3
        .layer
        .copy_object(&src, &i.bucket, &i.key, opts, !replace_meta, !replace_tags)
        .await
        .map_err(fail(&rid))?;
    let src_versioning = s3.layer.bucket(&src.bucket).map_err(fail(&rid))?.versioning;
    let mut out = CopyObjectOutput {
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(etag(&written.etag)),
            last_modified: Some(ts(written.mod_time_ns)),
            ..Default::default()
        }),
        version_id: (!written.id.is_null()).then(|| written.id.to_api()),
        copy_source_version_id: version_id_out(&source, src_versioning),
        ..Default::default()
    };
    set_sse!(
        out,
        Headers::of(written.extras.encryption.as_ref(), customer.as_ref())
    );
    Ok(S3Response::new(out))
}

pub async fn get_object_tagging(
    s3: &StrataS3,
    req: S3Request<GetObjectTaggingInput>,
) -> S3Result<S3Response<GetObjectTaggingOutput>> {
    let rid = rid(&req);
    let i = req.input;
    let (versioning, reader) = s3.open(&rid, &i.bucket, &i.key, i.version_id.as_deref()).await?;
    let v = reader.version();
    Ok(S3Response::new(GetObjectTaggingOutput {
        tag_set: tags_to_dto(&v.extras.tags),
        version_id: version_id_out(v, versioning),
    }))
}

async fn set_object_tags(
    s3: &StrataS3,
    rid: &str,
    bucket: &str,
    key: &str,
    version: Option<&str>,
    tags: Vec<(String, String)>,
) -> S3Result<Option<String>> {
    let versioning = s3.layer.bucket(bucket).map_err(fail(rid))?.versioning;
    let v = s3
        .layer
        .put_object_tags(bucket, key, version, tags)
        .await
        .map_err(fail(rid))?;
    Ok(version_id_out(&v, versioning))
}

pub async fn put_object_tagging(
    s3: &StrataS3,
    req: S3Request<PutObjectTaggingInput>,
) -> S3Result<S3Response<PutObjectTaggingOutput>> {
    let rid = rid(&req);
    let i = req.input;
    let tags = tags_from_dto(i.tagging);
    let version_id = set_object_tags(s3, &rid, &i.bucket, &i.key, i.version_id.as_deref(), tags).await?;
    Ok(S3Response::new(PutObjectTaggingOutput { version_id }))
}

pub async fn delete_object_tagging(
    s3: &StrataS3,
    req: S3Request<DeleteObjectTaggingInput>,
) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
    let rid = rid(&req);
    let i = req.input;
    let version_id = set_object_tags(s3, &rid, &i.bucket, &i.key, i.version_id.as_deref(), vec![]).await?;
    Ok(S3Response::new(DeleteObjectTaggingOutput { version_id }))
}

pub async fn get_object_attributes(
    s3: &StrataS3,
    req: S3Request<GetObjectAttributesInput>,
) -> S3Result<S3Response<GetObjectAttributesOutput>> {
    let rid = rid(&req);
    let i = req.input;
    let (versioning, reader) = s3.open(&rid, &i.bucket, &i.key, i.version_id.as_deref()).await?;
    let v = reader.version();
    // One header may list several attributes, comma-separated.
    let wants = |a: &str| {
        i.object_attributes
            .iter()
            .flat_map(|x| x.as_str().split(','))
            .any(|x| x.trim() == a)
    };
    let mut out = GetObjectAttributesOutput {
        last_modified: Some(ts(v.mod_time_ns)),
        version_id: version_id_out(v, versioning),
        ..Default::default()
    };
    if wants(ObjectAttributes::ETAG) {
        out.e_tag = Some(etag(&v.etag));
    }
    if wants(ObjectAttributes::OBJECT_SIZE) {
        out.object_size = Some(v.size as i64);
    }
    if wants(ObjectAttributes::STORAGE_CLASS) {
        out.storage_class = Some(StorageClass::from(
            s3.layer
                .class_of(v)
                .unwrap_or_else(|| StorageClass::STANDARD.to_owned()),
        ));
    }
    if wants(ObjectAttributes::CHECKSUM)
        && let Some(c) = stored_checksum(v)
    {
        let mut sum = Checksum::default();
        set_checksum!(sum, &c, typed);
        out.checksum = Some(sum);
    }
    if wants(ObjectAttributes::OBJECT_PARTS) && v.parts.len() > 1 {
        let max = i.max_parts.map_or(1000, |m| m.clamp(0, 1000) as usize);
        let after = i.part_number_marker.unwrap_or(0);
        let rest: Vec<_> = v.parts.iter().filter(|p| p.number as i32 > after).collect();
        let page: Vec<ObjectPart> = rest
            .iter()
            .take(max)
            .map(|p| ObjectPart {
                part_number: Some(p.number as i32),
                size: Some(v.plain_part_size(p) as i64),
                ..Default::default()
            })
            .collect();
        out.object_parts = Some(GetObjectAttributesParts {
            total_parts_count: Some(v.parts.len() as i32),
            part_number_marker: i.part_number_marker,
            next_part_number_marker: page.last().and_then(|p| p.part_number),
            max_parts: Some(max as i32),
            is_truncated: Some(rest.len() > max),
            parts: Some(page),
        });
    }
    Ok(S3Response::new(out))
}

/// A browser form upload: the PutObject its fields describe (the key with
/// `${filename}` resolved by authorization, [`crate::server::form`]).
pub async fn post_object(
    s3: &StrataS3,
    req: S3Request<PostObjectInput>,
) -> S3Result<S3Response<PostObjectOutput>> {
    // S3's form field names for the ACL and tags (`s3s` reads the header
    // names `x-amz-acl` and `x-amz-tagging`).
    let form = req.extensions.get::<crate::server::form::FormUpload>().cloned();
    let fields = form.as_ref().and_then(|f| f.fields());
    let acl = fields
        .and_then(|f| f.get("acl"))
        .map(|a| ObjectCannedACL::from(a.to_owned()));
    let tagging = fields.and_then(|f| f.tagging_header());
    let put = put_object(
        s3,
        req.map_input(|f| {
            let mut put = form_to_put(f);
            put.acl = put.acl.or(acl);
            put.tagging = put.tagging.or(tagging);
            put
        }),
    )
    .await?;
    Ok(put.map_output(|o| PostObjectOutput {
        bucket_key_enabled: o.bucket_key_enabled,
        checksum_crc32: o.checksum_crc32,
        checksum_crc32c: o.checksum_crc32c,
        checksum_crc64nvme: o.checksum_crc64nvme,
        checksum_sha1: o.checksum_sha1,
        checksum_sha256: o.checksum_sha256,
        checksum_type: o.checksum_type,
        e_tag: o.e_tag,
        sse_customer_algorithm: o.sse_customer_algorithm,
        sse_customer_key_md5: o.sse_customer_key_md5,
        ssekms_key_id: o.ssekms_key_id,
        server_side_encryption: o.server_side_encryption,
        size: o.size,
        version_id: o.version_id,
        ..Default::default()
    }))
}

/// The PutObject a form's fields describe.
fn form_to_put(f: PostObjectInput) -> PutObjectInput {
    PutObjectInput {
        acl: f.acl,
        body: f.body,
        bucket: f.bucket,
        bucket_key_enabled: f.bucket_key_enabled,
        cache_control: f.cache_control,
        checksum_algorithm: f.checksum_algorithm,
        checksum_crc32: f.checksum_crc32,
        checksum_crc32c: f.checksum_crc32c,
        checksum_crc64nvme: f.checksum_crc64nvme,
        checksum_sha1: f.checksum_sha1,
        checksum_sha256: f.checksum_sha256,
        content_disposition: f.content_disposition,
        content_encoding: f.content_encoding,
        content_language: f.content_language,
        content_length: f.content_length,
        content_md5: f.content_md5,
        content_type: f.content_type,
        expires: f.expires,
        grant_full_control: f.grant_full_control,
        grant_read: f.grant_read,
        grant_read_acp: f.grant_read_acp,
        grant_write_acp: f.grant_write_acp,
        if_match: f.if_match,
        if_none_match: f.if_none_match,
        key: f.key,
        metadata: f.metadata,
        object_lock_legal_hold_status: f.object_lock_legal_hold_status,
        object_lock_mode: f.object_lock_mode,
        object_lock_retain_until_date: f.object_lock_retain_until_date,
        sse_customer_algorithm: f.sse_customer_algorithm,
        sse_customer_key: f.sse_customer_key,
        sse_customer_key_md5: f.sse_customer_key_md5,
        ssekms_encryption_context: f.ssekms_encryption_context,
        ssekms_key_id: f.ssekms_key_id,
        server_side_encryption: f.server_side_encryption,
        storage_class: f.storage_class,
        tagging: f.tagging,
        website_redirect_location: f.website_redirect_location,
        write_offset_bytes: f.write_offset_bytes,
        ..Default::default()
    }
}
