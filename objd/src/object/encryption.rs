//! What the object layer needs of encryption: the data key and record of
//! a write ([`Sealing`]), and a [`KeySource`] that yields the data key of
//! an encrypted version or upload (from the KMS or the request's SSE-C
//! key, which live above this layer). The layer seals bodies before
//! erasure coding and opens packages on the read path.

use super::{ObjectError, ObjectResult};
use crate::meta::EncryptionRecord;
use crate::sse::{DataKey, Mode, SseError, keyed_etag};

/// How to encrypt a write: the new version's data key in plain (kept in
/// memory only) and the record stored with the version.
#[derive(Debug, Clone)]
pub struct Sealing {
    pub key: DataKey,
    pub record: EncryptionRecord,
}

impl Sealing {
    /// The ETag of a body with MD5 `md5` under this sealing: the MD5 for
    /// SSE-S3, a keyed digest for SSE-KMS and SSE-C (as S3, not the MD5).
    pub fn etag(&self, md5: &[u8; 16]) -> String {
        etag_for(&self.record, &self.key, md5)
    }
}

pub(super) fn etag_for(rec: &EncryptionRecord, key: &DataKey, md5: &[u8; 16]) -> String {
    match Mode::from_u8(rec.mode) {
        Some(Mode::S3) | None => hex::encode(md5),
        Some(Mode::Kms | Mode::Customer) => keyed_etag(key, md5),
    }
}

/// Yields the data keys of encrypted versions and uploads.
#[async_trait::async_trait]
pub trait KeySource: Send + Sync {
    /// The data key `rec` seals for the object `bucket`/`key` (or for the
    /// name `rec` is bound to, [`EncryptionRecord::bound_name`]).
    async fn data_key(&self, bucket: &str, key: &str, rec: &EncryptionRecord) -> ObjectResult<DataKey>;
}

impl From<SseError> for ObjectError {
    fn from(e: SseError) -> Self {
        ObjectError::Encryption(e)
    }
}

/// A key source that opens nothing: for writers of plain data only.
pub struct NoKeys;

#[async_trait::async_trait]
impl KeySource for NoKeys {
    async fn data_key(&self, _: &str, _: &str, _: &EncryptionRecord) -> ObjectResult<DataKey> {
        Err(ObjectError::Encryption(SseError::MissingCustomerKey))
    }
}
