//! Multipart upload operations, including UploadPartCopy.

use super::convert::*;
use super::parse::copy_source_range;
use super::sse::{Headers, RequestCx, copy_source_key, customer_key, set_sse, write_sealing};
use super::{StrataS3, fail, rid};
use crate::object::checksum::ChecksumKind;
use crate::object::{CompletePart, ObjectError, PutOptions};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

fn part_number(n: i32) -> S3Result<u32> {
    u32::try_from(n).map_err(|_| {
        S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Part number must be an integer between 1 and 10000",
        )
    })
}

pub async fn create_multipart_upload(
    s3: &StrataS3,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let rid = rid(&req);
    let cx = RequestCx::of(&req);
    let i = req.input;
    let (encryption, customer) = write_sealing!(s3, cx, i, rid);
    let headers = Headers::of(encryption.as_ref().map(|s| &s.record), customer.as_ref());
    let checksum_kind = match i.checksum_type.as_ref().map(ChecksumType::as_str) {
        None => None,
        Some(ChecksumType::FULL_OBJECT) => Some(ChecksumKind::FullObject),
        Some(ChecksumType::COMPOSITE) => Some(ChecksumKind::Composite),
        Some(_) => return Err(invalid(S3ErrorCode::InvalidRequest, "Unknown checksum type")),
    };
    let opts = PutOptions {
        checksum_kind,
        encryption,
        acl: super::acl::object_acl!(s3, rid, i),
        place: s3.place(&rid, i.storage_class.as_ref()).await?,
        ..write_options!(i)
    };
    let id = s3
        .layer
        .create_multipart(&i.bucket, &i.key, opts)
        .await
        .map_err(fail(&rid))?;
    let mut out = CreateMultipartUploadOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(id),
        ..Default::default()
    };
    set_sse!(out, headers);
    Ok(S3Response::new(out))
}

pub async fn upload_part(
    s3: &StrataS3,
    req: S3Request<UploadPartInput>,
) -> S3Result<S3Response<UploadPartOutput>> {
    let rid = rid(&req);
    let check = checksum_check(
        sent_checksums!(req.input),
        &req.headers,
        req.trailing_headers.clone(),
    )?;
    let cx = RequestCx::of(&req);
    let i = req.input;
    let number = part_number(i.part_number)?;
    let md5 = content_md5(i.content_md5.as_deref())?;
    let customer = customer_key!(i);
    let keys = s3.sse.keys(&cx, customer.clone());
    let (e, sum) = s3
        .layer
        .upload_part(
            &i.bucket,
            &i.key,
            &i.upload_id,
            number,
            body_stream(i.body),
            size_of(i.content_length),
            md5,
            check,
            &*keys,
        )
        .await
        .map_err(fail(&rid))?;
    let mut out = UploadPartOutput {
        e_tag: Some(etag(&e)),
        sse_customer_algorithm: customer.as_ref().map(|_| "AES256".into()),
        sse_customer_key_md5: customer.as_ref().map(|c| c.md5().to_owned()),
        ..Default::default()
    };
    if let Some(c) = sum {
        set_checksum!(out, &c);
    }
    Ok(S3Response::new(out))
}

pub async fn upload_part_copy(
    s3: &StrataS3,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let rid = rid(&req);
    let cx = RequestCx::of(&req);
    let i = req.input;
    let number = part_number(i.part_number)?;
    let mut src = copy_source!(i);
    src.keys = Some(s3.sse.keys(&cx, copy_source_key!(i)));
    let keys = s3.sse.keys(&cx, customer_key!(i));
    let range = copy_source_range(i.copy_source_range.as_deref())?;
    let (source, e) = s3
        .layer
        .upload_part_copy(&src, range, &i.bucket, &i.key, &i.upload_id, number, &*keys)
        .await
        .map_err(fail(&rid))?;
    let src_versioning = s3.layer.bucket(&src.bucket).map_err(fail(&rid))?.versioning;
    Ok(S3Response::new(UploadPartCopyOutput {
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(etag(&e)),
            last_modified: Some(ts(crate::object::now_ns())),
            ..Default::default()
        }),
        copy_source_version_id: version_id_out(&source, src_versioning),
        ..Default::default()
    }))
}

pub async fn complete_multipart_upload(
    s3: &StrataS3,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let rid = rid(&req);
    let i = req.input;
    let condition = write_condition(i.if_match, i.if_none_match)?;
    // The client's whole-object checksum, checked against the combined one.
    let whole = checksum_check(sent_checksums!(i), &http::HeaderMap::new(), None)?;
    // An upload already completed has no record left: the completion
    // below answers it (the same version again, or NoSuchUpload).
    let upload_algo = match s3
        .layer
        .upload_checksum_algo(&i.bucket, &i.key, &i.upload_id)
        .await
    {
        Err(ObjectError::NoSuchUpload) => None,
        r => r.map_err(fail(&rid))?,
    };
    let parts = i
        .multipart_upload
        .and_then(|m| m.parts)
        .unwrap_or_default()
        .into_iter()
        .map(|p| CompletePart {
            number: p.part_number.and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
            checksum: sent_checksums!(p)
                .into_iter()
                .find(|(a, _)| Some(*a) == upload_algo)
                .and_then(|(_, v)| v),
            etag: p.e_tag.map(|e| e.value().to_owned()).unwrap_or_default(),
        })
        .collect();
    let v = s3
        .layer
        .complete_multipart(&i.bucket, &i.key, &i.upload_id, parts, &condition, whole)
        .await
        .map_err(fail(&rid))?;
    let mut out = CompleteMultipartUploadOutput {
        expiration: super::object::expiration_of(s3, &i.bucket, &i.key, &v),
        bucket: Some(i.bucket.clone()),
        key: Some(i.key.clone()),
        e_tag: Some(etag(&v.etag)),
        location: Some(format!("/{}/{}", i.bucket, i.key)),
        version_id: (!v.id.is_null()).then(|| v.id.to_api()),
        ..Default::default()
    };
    if let Some(c) = stored_checksum(&v) {
        set_checksum!(out, &c, typed);
    }
    let h = Headers::of(v.extras.encryption.as_ref(), None);
    out.server_side_encryption = h.server_side_encryption;
    out.ssekms_key_id = h.ssekms_key_id;
    out.bucket_key_enabled = h.bucket_key_enabled;
    Ok(S3Response::new(out))
}

pub async fn abort_multipart_upload(
    s3: &StrataS3,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let rid = rid(&req);
    let i = req.input;
    s3.layer
        .abort_multipart(&i.bucket, &i.key, &i.upload_id)
        .await
        .map_err(fail(&rid))?;
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}

pub async fn list_parts(
    s3: &StrataS3,
    req: S3Request<ListPartsInput>,
) -> S3Result<S3Response<ListPartsOutput>> {
    let rid = rid(&req);
    let i = req.input;
    let max = i.max_parts.map_or(1000, |m| m.clamp(0, 1000) as usize);
    let marker = i
        .part_number_marker
        .and_then(|m| u32::try_from(m).ok())
        .unwrap_or(0);
    let (parts, truncated) = s3
        .layer
        .list_parts(&i.bucket, &i.key, &i.upload_id, marker, max)
        .await
        .map_err(fail(&rid))?;
    let next = parts.last().map(|p| p.number as i32);
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(i.upload_id),
        max_parts: Some(max as i32),
        part_number_marker: i.part_number_marker,
        next_part_number_marker: next,
        is_truncated: Some(truncated),
        parts: Some(
            parts
                .into_iter()
                .map(|p| Part {
                    part_number: Some(p.number as i32),
                    size: Some(p.size as i64),
                    e_tag: Some(etag(&p.etag)),
                    last_modified: Some(ts(p.mod_time_ns)),
                    ..Default::default()
                })
                .collect(),
        ),
        owner: Some(super::acl::dto_owner(&s3.owner)),
        initiator: Some(initiator(&s3.owner)),
        ..Default::default()
    }))
}

pub async fn list_multipart_uploads(
    s3: &StrataS3,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let rid = rid(&req);
    let i = req.input;
    let max = i.max_uploads.map_or(1000, |m| m.clamp(0, 1000) as usize);
    let prefix = i.prefix.clone().unwrap_or_default();
    let mut uploads = s3
        .layer
        .list_uploads(
            &i.bucket,
            &prefix,
            i.key_marker
                .as_deref()
                .filter(|k| !k.is_empty())
                .map(|k| (k, i.upload_id_marker.as_deref().filter(|u| !u.is_empty()))),
            max + 1,
        )
        .await
        .map_err(fail(&rid))?;
    let truncated = uploads.len() > max;
    uploads.truncate(max);
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(i.bucket),
        prefix: i.prefix,
        key_marker: i.key_marker,
        upload_id_marker: i.upload_id_marker,
        max_uploads: Some(max as i32),
        is_truncated: Some(truncated),
        next_key_marker: uploads.last().filter(|_| truncated).map(|u| u.key.clone()),
        next_upload_id_marker: uploads.last().filter(|_| truncated).map(|u| u.upload_id.clone()),
        uploads: Some(
            uploads
                .into_iter()
                .map(|u| MultipartUpload {
                    key: Some(u.key),
                    upload_id: Some(u.upload_id),
                    initiated: Some(ts(u.initiated_ns)),
                    owner: Some(super::acl::dto_owner(&s3.owner)),
                    initiator: Some(initiator(&s3.owner)),
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    }))
}

/// Who started an upload, as listings name it: the account.
fn initiator(owner: &crate::acl::Owner) -> Initiator {
    Initiator {
        display_name: Some(owner.display_name.clone()),
        id: Some(owner.id.clone()),
    }
}
