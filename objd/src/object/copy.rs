//! Server-side copies: CopyObject and UploadPartCopy. The source version is
//! resolved once (so a concurrent overwrite of the source cannot mix two
//! versions into the copy) and its bytes stream through the write path of
//! the destination, block by block, with the same bounded memory as a PUT.
//! A copy onto the same key reads the old version while writing the new
//! one; the old data is removed only after the new version commits.

use super::{KeySource, ObjectError, ObjectLayer, ObjectResult, PutOptions, ReadConditions};
use crate::meta::Version;

/// S3's largest CopyObject source; larger objects are copied part by part
/// with UploadPartCopy.
pub const MAX_COPY_SIZE: u64 = 5 << 30;

/// The object a copy reads from, the conditions it must meet, and where
/// its data key comes from if it is encrypted.
#[derive(Clone, Default)]
pub struct CopySource {
    pub bucket: String,
    pub key: String,
    pub version: Option<String>,
    pub conditions: ReadConditions,
    pub keys: Option<std::sync::Arc<dyn KeySource>>,
}

impl std::fmt::Debug for CopySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopySource")
            .field("bucket", &self.bucket)
            .field("key", &self.key)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl ObjectLayer {
    /// Resolves a copy source and checks its conditions; a delete marker or
    /// a failed condition is an error.
    async fn open_source(&self, src: &CopySource) -> ObjectResult<super::ObjectReader> {
        let reader = self
            .head_object(&src.bucket, &src.key, src.version.as_deref())
            .await
            .map_err(|e| match e {
                // A copy of a deleted key fails like a missing key.
                ObjectError::DeleteMarker { requested: false, .. } => ObjectError::NoSuchKey,
                ObjectError::DeleteMarker { requested: true, .. } => ObjectError::InvalidRequest(
                    "The source of a copy request may not be a delete marker".into(),
                ),
                e => e,
            })?;
        src.conditions.check_source(reader.version())?;
        let mut reader = reader;
        if reader.encrypted() {
            let keys = src
                .keys
                .as_deref()
                .ok_or(ObjectError::Encryption(crate::sse::SseError::MissingCustomerKey))?;
            reader.unlock(keys).await?;
        }
        Ok(reader)
    }

    /// Copies `src` to `bucket/key`. Headers and user metadata come from
    /// the source when `keep_meta` is set (else from `opts`), and so do
    /// the tags with `keep_tags`. Returns the source version read and the
    /// version written.
    pub async fn copy_object(
        &self,
        src: &CopySource,
        bucket: &str,
        key: &str,
        mut opts: PutOptions,
        keep_meta: bool,
        keep_tags: bool,
    ) -> ObjectResult<(Version, Version)> {
        self.bucket(bucket)?;
        let reader = self.open_source(src).await?;
        let source = reader.version().clone();
        if source.size > MAX_COPY_SIZE {
            return Err(ObjectError::InvalidRequest(format!(
                "The specified copy source is larger than the maximum allowable size for a copy source: {MAX_COPY_SIZE}"
            )));
        }
        if keep_meta {
            opts.headers = source.headers.clone();
            opts.user_meta = source.user_meta.clone();
        }
        if keep_tags {
            opts.tags = source.extras.tags.clone();
        }
        opts.size = Some(source.size);
        opts.content_md5 = None;
        // The reader and the writer are paid for together, once.
        let cost = reader.read_cost(0, source.size)
            + self
                .set_for(bucket, key)
                .write_cost(Some(source.size), opts.encryption.is_some());
        let body = reader.stream(0, source.size);
        let written = self
            .budget()
            .paid(cost, self.put_object(bucket, key, body, opts))
            .await??;
        Ok((source, written))
    }

    /// Copies bytes `range` (`[start, end)`, the whole object when `None`)
    /// of `src` into part `number` of an upload. Returns the source version
    /// and the part's ETag.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part_copy(
        &self,
        src: &CopySource,
        range: Option<(u64, u64)>,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        keys: &dyn KeySource,
    ) -> ObjectResult<(Version, String)> {
        let reader = self.open_source(src).await?;
        let source = reader.version().clone();
        let (start, end) = match range {
            None => (0, source.size),
            Some((s, e)) if s < e && e <= source.size => (s, e),
            Some(_) => {
                return Err(ObjectError::InvalidArgument(
                    "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy, within the source object".into(),
                ));
            }
        };
        // The reader and the writer are paid for together, once (an
        // encrypted upload's parts are sealed: counted as such).
        let cost =
            reader.read_cost(start, end) + self.set_for(bucket, key).write_cost(Some(end - start), true);
        let body = reader.stream(start, end);
        let upload = self.upload_part(
            bucket,
            key,
            upload_id,
            number,
            body,
            Some(end - start),
            None,
            None,
            keys,
        );
        let (etag, _) = self.budget().paid(cost, upload).await??;
        Ok((source, etag))
    }
}
