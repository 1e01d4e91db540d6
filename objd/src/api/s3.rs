//! The S3 API over the object layer, as an implementation of `s3s::S3`.
//! `s3s` parses requests, verifies SigV4 (headers, presigned URLs,
//! `aws-chunked` bodies with signed chunks or trailing checksums) and
//! renders responses; the handlers here only translate.

use super::error::to_s3;
use crate::meta::Version;
use crate::object::{
    ByteStream, CompletePart, GetRange, ListOptions, ListPage, ObjectError, ObjectLayer, PutOptions,
};
use futures::StreamExt;
use s3s::dto::*;
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// Request id carried in request extensions by the server layer, echoed in
/// error bodies.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

#[derive(Debug, Clone)]
pub struct StrataS3 {
    layer: Arc<ObjectLayer>,
}

impl StrataS3 {
    pub fn new(layer: Arc<ObjectLayer>) -> Self {
        Self { layer }
    }

    /// One page of a ListObjects (v1 or v2), rendered with `enc`.
    #[allow(clippy::too_many_arguments)]
    async fn list_page(
        &self,
        rid: &str,
        bucket: &str,
        prefix: Option<&str>,
        delimiter: Option<&str>,
        start_after: String,
        max: Option<i32>,
        enc: fn(&str) -> String,
    ) -> S3Result<(ListPage, Vec<Object>, Vec<CommonPrefix>)> {
        let opts = ListOptions {
            prefix: prefix.unwrap_or_default().to_owned(),
            delimiter: delimiter.map(str::to_owned),
            start_after,
            max_keys: max_keys(max)?,
            include_versions: false,
        };
        let page = self.layer.list_objects(bucket, opts).await.map_err(fail(rid))?;
        let (contents, prefixes) = listed(&page, enc);
        Ok((page, contents, prefixes))
    }
}

fn rid<T>(req: &S3Request<T>) -> String {
    req.extensions
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default()
}

fn fail(rid: &str) -> impl Fn(ObjectError) -> S3Error + '_ {
    move |e| {
        let mut err = to_s3(e);
        err.set_request_id(rid);
        err
    }
}

fn ts(ns: i64) -> Timestamp {
    Timestamp::from(UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64))
}

fn etag(v: &str) -> ETag {
    ETag::Strong(v.to_owned())
}

fn body_stream(blob: Option<StreamingBlob>) -> ByteStream {
    match blob {
        Some(b) => Box::pin(b.map(|r| r.map_err(std::io::Error::other))),
        None => Box::pin(futures::stream::empty()),
    }
}

fn content_md5(v: Option<&str>) -> S3Result<Option<[u8; 16]>> {
    let Some(v) = v else { return Ok(None) };
    let raw = base64_simd::STANDARD.decode_to_vec(v.trim()).map_err(|_| {
        S3Error::with_message(
            S3ErrorCode::InvalidDigest,
            "The Content-MD5 you specified is not valid",
        )
    })?;
    let arr: [u8; 16] = raw.try_into().map_err(|_| {
        S3Error::with_message(
            S3ErrorCode::InvalidDigest,
            "The Content-MD5 you specified is not valid",
        )
    })?;
    Ok(Some(arr))
}

fn size_of(len: Option<i64>) -> Option<u64> {
    len.and_then(|l| u64::try_from(l).ok())
}

/// The system headers a PUT stores and a GET returns.
struct StoredHeaders {
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<Timestamp>,
}

impl StoredHeaders {
    fn into_pairs(self) -> Vec<(String, String)> {
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
        let expires = self.expires.and_then(|t| {
            let mut b = Vec::new();
            t.format(TimestampFormat::HttpDate, &mut b).ok()?;
            String::from_utf8(b).ok()
        });
        add("expires", expires);
        out
    }

    fn from_version(v: &Version) -> Self {
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

/// The headers a write stores, from any input that carries them (PutObject,
/// CreateMultipartUpload).
macro_rules! stored_headers {
    ($i:expr) => {
        StoredHeaders {
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

fn user_meta(m: Option<Metadata>) -> Vec<(String, String)> {
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

fn check_user_meta(m: &[(String, String)]) -> S3Result<()> {
    let total: usize = m.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > MAX_USER_META {
        return Err(S3Error::with_message(
            S3ErrorCode::MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size",
        ));
    }
    Ok(())
}

fn meta_map(v: &Version) -> Option<Metadata> {
    (!v.user_meta.is_empty()).then(|| v.user_meta.iter().cloned().collect())
}

fn version_id_out(v: &Version) -> Option<String> {
    (!v.id.is_null()).then(|| v.id.to_api())
}

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

fn max_keys(v: Option<i32>) -> S3Result<usize> {
    match v {
        None => Ok(1000),
        Some(n) if n < 0 => Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "max-keys cannot be negative",
        )),
        Some(n) => Ok((n as usize).min(1000)),
    }
}

fn listed(page: &ListPage, enc: fn(&str) -> String) -> (Vec<Object>, Vec<CommonPrefix>) {
    let objects = page
        .objects
        .iter()
        .map(|o| Object {
            key: Some(enc(&o.key)),
            size: Some(o.version.size as i64),
            e_tag: Some(etag(&o.version.etag)),
            last_modified: Some(ts(o.version.mod_time_ns)),
            storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
            ..Default::default()
        })
        .collect();
    let prefixes = page
        .prefixes
        .iter()
        .map(|p| CommonPrefix { prefix: Some(enc(p)) })
        .collect();
    (objects, prefixes)
}

/// Continuation tokens are the key to resume after, base64-encoded so that
/// clients treat them as opaque.
fn encode_token(key: &str) -> String {
    base64_simd::URL_SAFE_NO_PAD.encode_to_string(key.as_bytes())
}

fn decode_token(t: &str) -> S3Result<String> {
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

#[async_trait::async_trait]
impl S3 for StrataS3 {
    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let buckets = self
            .layer
            .list_buckets()
            .into_iter()
            .map(|b| Bucket {
                name: Some(b.name),
                creation_date: Some(ts(b.created_ns)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(Owner {
                display_name: Some("strata".into()),
                id: Some("strata".into()),
            }),
            ..Default::default()
        }))
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let rid = rid(&req);
        let name = req.input.bucket;
        self.layer.make_bucket(&name).await.map_err(fail(&rid))?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{name}")),
        }))
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        let rid = rid(&req);
        self.layer.bucket(&req.input.bucket).map_err(fail(&rid))?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let rid = rid(&req);
        self.layer
            .delete_bucket(&req.input.bucket)
            .await
            .map_err(fail(&rid))?;
        Ok(S3Response::new(DeleteBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let rid = rid(&req);
        self.layer.bucket(&req.input.bucket).map_err(fail(&rid))?;
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let rid = rid(&req);
        let i = req.input;
        let meta = user_meta(i.metadata);
        check_user_meta(&meta)?;
        let opts = PutOptions {
            headers: stored_headers!(i),
            user_meta: meta,
            size: size_of(i.content_length),
            content_md5: content_md5(i.content_md5.as_deref())?,
        };
        let v = self
            .layer
            .put_object(&i.bucket, &i.key, body_stream(i.body), opts)
            .await
            .map_err(fail(&rid))?;
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(etag(&v.etag)),
            version_id: version_id_out(&v),
            ..Default::default()
        }))
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let rid = rid(&req);
        let i = req.input;
        let reader = self
            .layer
            .head_object(&i.bucket, &i.key, i.version_id.as_deref())
            .await
            .map_err(fail(&rid))?;
        let v = reader.version().clone();
        if v.is_delete_marker() {
            return Err(fail(&rid)(if i.version_id.is_some() {
                ObjectError::InvalidArgument("the specified version is a delete marker".into())
            } else {
                ObjectError::NoSuchKey
            }));
        }
        let (start, end, content_range) = match i.range {
            None => (0, v.size, None),
            Some(r) => {
                let r = match r {
                    Range::Int { first, last } => GetRange::From { first, last },
                    Range::Suffix { length } => GetRange::Suffix(length),
                };
                let (s, e) = r.resolve(v.size).map_err(fail(&rid))?;
                (
                    s,
                    e,
                    Some(format!("bytes {}-{}/{}", s, e.saturating_sub(1), v.size)),
                )
            }
        };
        let h = StoredHeaders::from_version(&v);
        let body = reader.stream(start, end);
        Ok(S3Response::new(GetObjectOutput {
            body: Some(StreamingBlob::wrap(body)),
            content_length: Some((end - start) as i64),
            content_range,
            accept_ranges: Some("bytes".into()),
            e_tag: Some(etag(&v.etag)),
            last_modified: Some(ts(v.mod_time_ns)),
            content_type: h.content_type,
            content_encoding: h.content_encoding,
            content_disposition: h.content_disposition,
            content_language: h.content_language,
            cache_control: h.cache_control,
            expires: h.expires,
            metadata: meta_map(&v),
            version_id: version_id_out(&v),
            parts_count: (v.parts.len() > 1).then_some(v.parts.len() as i32),
            ..Default::default()
        }))
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        let rid = rid(&req);
        let i = req.input;
        let reader = self
            .layer
            .head_object(&i.bucket, &i.key, i.version_id.as_deref())
            .await
            .map_err(fail(&rid))?;
        let v = reader.version();
        if v.is_delete_marker() {
            return Err(fail(&rid)(ObjectError::NoSuchKey));
        }
        let h = StoredHeaders::from_version(v);
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(v.size as i64),
            accept_ranges: Some("bytes".into()),
            e_tag: Some(etag(&v.etag)),
            last_modified: Some(ts(v.mod_time_ns)),
            content_type: h.content_type,
            content_encoding: h.content_encoding,
            content_disposition: h.content_disposition,
            content_language: h.content_language,
            cache_control: h.cache_control,
            expires: h.expires,
            metadata: meta_map(v),
            version_id: version_id_out(v),
            parts_count: (v.parts.len() > 1).then_some(v.parts.len() as i32),
            ..Default::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let rid = rid(&req);
        let i = req.input;
        let (version_id, marker) = self
            .layer
            .delete_object(&i.bucket, &i.key, i.version_id.as_deref())
            .await
            .map_err(fail(&rid))?;
        Ok(S3Response::new(DeleteObjectOutput {
            delete_marker: marker.then_some(true),
            version_id,
            ..Default::default()
        }))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let rid = rid(&req);
        let i = req.input;
        self.layer.bucket(&i.bucket).map_err(fail(&rid))?;
        if i.delete.objects.len() > 1000 {
            return Err(S3Error::with_message(
                S3ErrorCode::MalformedXML,
                "At most 1000 keys can be deleted at once",
            ));
        }
        let quiet = i.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for o in i.delete.objects {
            match self
                .layer
                .delete_object(&i.bucket, &o.key, o.version_id.as_deref())
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
                    let e = to_s3(e);
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

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let rid = rid(&req);
        let i = req.input;
        let enc = list_encoder(i.encoding_type.as_ref())?;
        let after = match &i.continuation_token {
            Some(t) => decode_token(t)?,
            None => i.start_after.clone().unwrap_or_default(),
        };
        let (page, contents, prefixes) = self
            .list_page(
                &rid,
                &i.bucket,
                i.prefix.as_deref(),
                i.delimiter.as_deref(),
                after,
                i.max_keys,
                enc,
            )
            .await?;
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

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let rid = rid(&req);
        let i = req.input;
        let enc = list_encoder(i.encoding_type.as_ref())?;
        let after = i.marker.clone().unwrap_or_default();
        let (page, contents, prefixes) = self
            .list_page(
                &rid,
                &i.bucket,
                i.prefix.as_deref(),
                i.delimiter.as_deref(),
                after,
                i.max_keys,
                enc,
            )
            .await?;
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

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let rid = rid(&req);
        let i = req.input;
        let meta = user_meta(i.metadata);
        check_user_meta(&meta)?;
        let opts = PutOptions {
            headers: stored_headers!(i),
            user_meta: meta,
            ..Default::default()
        };
        let id = self
            .layer
            .create_multipart(&i.bucket, &i.key, opts)
            .await
            .map_err(fail(&rid))?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            upload_id: Some(id),
            ..Default::default()
        }))
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        let rid = rid(&req);
        let i = req.input;
        let number = u32::try_from(i.part_number).map_err(|_| {
            S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "Part number must be an integer between 1 and 10000",
            )
        })?;
        let md5 = content_md5(i.content_md5.as_deref())?;
        let e = self
            .layer
            .upload_part(
                &i.bucket,
                &i.key,
                &i.upload_id,
                number,
                body_stream(i.body),
                size_of(i.content_length),
                md5,
            )
            .await
            .map_err(fail(&rid))?;
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(etag(&e)),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let rid = rid(&req);
        let i = req.input;
        let parts = i
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default()
            .into_iter()
            .map(|p| CompletePart {
                number: p.part_number.and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
                etag: p.e_tag.map(|e| e.value().to_owned()).unwrap_or_default(),
            })
            .collect();
        let v = self
            .layer
            .complete_multipart(&i.bucket, &i.key, &i.upload_id, parts)
            .await
            .map_err(fail(&rid))?;
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(i.bucket.clone()),
            key: Some(i.key.clone()),
            e_tag: Some(etag(&v.etag)),
            location: Some(format!("/{}/{}", i.bucket, i.key)),
            version_id: version_id_out(&v),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let rid = rid(&req);
        let i = req.input;
        self.layer
            .abort_multipart(&i.bucket, &i.key, &i.upload_id)
            .await
            .map_err(fail(&rid))?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        let rid = rid(&req);
        let i = req.input;
        let max = i.max_parts.map_or(1000, |m| m.clamp(0, 1000) as usize);
        let marker = i
            .part_number_marker
            .and_then(|m| u32::try_from(m).ok())
            .unwrap_or(0);
        let (parts, truncated) = self
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
            ..Default::default()
        }))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let rid = rid(&req);
        let i = req.input;
        let max = i.max_uploads.map_or(1000, |m| m.clamp(0, 1000) as usize);
        let prefix = i.prefix.clone().unwrap_or_default();
        let mut uploads = self
            .layer
            .list_uploads(&i.bucket, &prefix, max + 1)
            .await
            .map_err(fail(&rid))?;
        let truncated = uploads.len() > max;
        uploads.truncate(max);
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(i.bucket),
            prefix: i.prefix,
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
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let rid = rid(&req);
        let b = self.layer.bucket(&req.input.bucket).map_err(fail(&rid))?;
        let status = match b.versioning {
            crate::meta::Versioning::Unversioned => None,
            crate::meta::Versioning::Enabled => Some(BucketVersioningStatus::from_static(
                BucketVersioningStatus::ENABLED,
            )),
            crate::meta::Versioning::Suspended => Some(BucketVersioningStatus::from_static(
                BucketVersioningStatus::SUSPENDED,
            )),
        };
        Ok(S3Response::new(GetBucketVersioningOutput {
            status,
            ..Default::default()
        }))
    }
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
