//! Server-side encryption of object data: the per-version data key, the
//! two ciphers, the package format ([`package`]) that seals each part in
//! fixed-size packages so that a range read opens only the packages it
//! returns, and customer-provided keys ([`customer`], SSE-C). Naming and
//! sealing data keys under managed keys is the KMS's ([`crate::kms`]);
//! nothing here stores or logs a key in plain.
//!
//! Encryption happens before erasure coding: the object layer seals the
//! body as it streams and erasure-codes the sealed bytes, so healing and
//! copies of shards never see plaintext.

pub mod customer;
pub mod package;

use hmac::{Hmac, Mac};
use ring::aead::{AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};
use sha2::Sha256;

/// A 256-bit data key in plain: one per object version (and multipart
/// upload). Wiped when dropped; never printed.
pub struct DataKey([u8; 32]);

impl DataKey {
    pub fn random() -> Self {
        Self(rand::random())
    }

    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }

    /// From a slice of exactly 32 bytes.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        Some(Self(b.try_into().ok()?))
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Clone for DataKey {
    fn clone(&self) -> Self {
        Self(self.0)
    }
}

impl Drop for DataKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// How a version's data key is protected, as S3 names the modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// SSE-S3: sealed by the deployment's default KMS key.
    S3 = 1,
    /// SSE-KMS: sealed by a KMS key the client (or the bucket) names.
    Kms = 2,
    /// SSE-C: sealed by a key derived from the client's key.
    Customer = 3,
}

impl Mode {
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::S3),
            2 => Some(Self::Kms),
            3 => Some(Self::Customer),
            _ => None,
        }
    }
}

/// The package cipher, chosen per object and recorded with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Aes256Gcm = 1,
    ChaCha20Poly1305 = 2,
}

impl Algorithm {
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Aes256Gcm),
            2 => Some(Self::ChaCha20Poly1305),
            _ => None,
        }
    }

    /// AES-256-GCM where the CPU has AES and carry-less multiply
    /// instructions, else ChaCha20-Poly1305 (several times faster than
    /// AES in software).
    pub fn preferred() -> Self {
        if hardware_aes() {
            Self::Aes256Gcm
        } else {
            Self::ChaCha20Poly1305
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn hardware_aes() -> bool {
    std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
}

#[cfg(target_arch = "aarch64")]
fn hardware_aes() -> bool {
    std::arch::is_aarch64_feature_detected!("aes") && std::arch::is_aarch64_feature_detected!("pmull")
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn hardware_aes() -> bool {
    false
}

/// An AEAD keyed with a data key: AES-256-GCM or ChaCha20-Poly1305 as
/// the standards define them, computed by `ring` (on this project's
/// benchmark machine its AES-256-GCM runs 2.6 times as fast as the
/// RustCrypto crate's; see docs/benchmarks.md). The unit tests check that
/// RustCrypto's `aes-gcm` opens what this seals.
pub struct Cipher(LessSafeKey);

impl Cipher {
    pub fn new(algo: Algorithm, key: &DataKey) -> Self {
        let alg = match algo {
            Algorithm::Aes256Gcm => &AES_256_GCM,
            Algorithm::ChaCha20Poly1305 => &CHACHA20_POLY1305,
        };
        Self(LessSafeKey::new(
            UnboundKey::new(alg, key.bytes()).expect("256-bit keys"),
        ))
    }

    /// Encrypts `buf` in place; returns the tag.
    pub fn seal(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut [u8]) -> [u8; 16] {
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), buf)
            .expect("buffers below the AEAD limit");
        tag.as_ref().try_into().expect("16-byte tags")
    }

    /// Decrypts `buf` in place if `tag` authenticates it.
    pub fn open(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut [u8], tag: &[u8; 16]) -> Result<(), SseError> {
        self.0
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                Tag::from(*tag),
                buf,
                0..,
            )
            .map(|_| ())
            .map_err(|_| SseError::Tampered)
    }

    /// `nonce ‖ ciphertext ‖ tag` of a small secret (a data key), bound
    /// to `aad`, under a fresh random nonce.
    pub fn wrap(&self, aad: &[u8], secret: &[u8]) -> Vec<u8> {
        let nonce: [u8; 12] = rand::random();
        let mut buf = secret.to_vec();
        let tag = self.seal(&nonce, aad, &mut buf);
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        out.extend_from_slice(&tag);
        out
    }

    /// The secret [`Cipher::wrap`] sealed, if `sealed` opens under this
    /// key and `aad`.
    pub fn unwrap(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SseError> {
        if sealed.len() < 28 {
            return Err(SseError::Tampered);
        }
        let (nonce, rest) = sealed.split_at(12);
        let (body, tag) = rest.split_at(rest.len() - 16);
        let mut buf = body.to_vec();
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SseError::Tampered)?;
        let tag: [u8; 16] = tag.try_into().map_err(|_| SseError::Tampered)?;
        self.open(&nonce, aad, &mut buf, &tag)?;
        Ok(buf)
    }
}

/// A key derived from `key` for one purpose (HMAC-SHA256 of the label).
pub fn derive(key: &[u8], label: &[u8]) -> DataKey {
    let mut m = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(key).expect("any key length");
    m.update(label);
    DataKey(m.finalize().into_bytes().into())
}

/// The ETag of an SSE-KMS or SSE-C object (or part): S3 does not give
/// the MD5 of the plaintext for those modes (it would let anyone who
/// sees listings confirm a guessed content), so it is a keyed digest of
/// it, stable for the version.
pub fn keyed_etag(key: &DataKey, md5: &[u8; 16]) -> String {
    let mut m = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(key.bytes()).expect("any key length");
    m.update(b"strata etag v1");
    m.update(md5);
    hex::encode(&m.finalize().into_bytes()[..16])
}

/// Encryption failures, each with its S3 answer (mapped in `api::error`).
#[derive(Debug, thiserror::Error)]
pub enum SseError {
    /// The object is SSE-C and the request has no key for it.
    #[error("the object is encrypted with a customer key and the request has none")]
    MissingCustomerKey,
    /// The SSE-C key given does not open the object's data key.
    #[error("the customer key does not match the object's")]
    WrongCustomerKey,
    /// SSE-C headers that are incomplete or malformed.
    #[error("{0}")]
    BadCustomerKey(&'static str),
    #[error("the encryption algorithm is not valid")]
    BadAlgorithm,
    /// The caller may not use the KMS key (`kms:GenerateDataKey` to
    /// write, `kms:Decrypt` to read).
    #[error("not authorized to use KMS key {0}")]
    KmsDenied(String),
    /// SSE-C over a connection without TLS.
    #[error("customer keys need a secure connection")]
    Insecure,
    /// Sealed bytes or a sealed key that fail authentication.
    #[error("encrypted data failed authentication")]
    Tampered,
    /// The encryption record names a mode, cipher or key this build does
    /// not know.
    #[error("unknown encryption parameters")]
    Unknown,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Kms(#[from] crate::kms::KmsError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_binds_the_associated_data_and_the_key() {
        let k = DataKey::random();
        let c = Cipher::new(Algorithm::Aes256Gcm, &k);
        let sealed = c.wrap(b"a/b", b"secret data key material 32 byte");
        assert_eq!(
            c.unwrap(b"a/b", &sealed).unwrap(),
            b"secret data key material 32 byte"
        );
        assert!(c.unwrap(b"a/c", &sealed).is_err());
        let other = Cipher::new(Algorithm::Aes256Gcm, &DataKey::random());
        assert!(other.unwrap(b"a/b", &sealed).is_err());
        let chacha = Cipher::new(Algorithm::ChaCha20Poly1305, &k);
        assert!(chacha.unwrap(b"a/b", &sealed).is_err());
        assert!(c.unwrap(b"a/b", &sealed[..20]).is_err());
    }

    #[test]
    fn packages_are_standard_aes_256_gcm() {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        let k = DataKey::random();
        let sealed = Cipher::new(Algorithm::Aes256Gcm, &k).wrap(b"aad", b"plain bytes");
        let rc = aes_gcm::Aes256Gcm::new(k.bytes().into());
        let plain = rc
            .decrypt(
                aes_gcm::Nonce::from_slice(&sealed[..12]),
                Payload {
                    msg: &sealed[12..],
                    aad: b"aad",
                },
            )
            .unwrap();
        assert_eq!(plain, b"plain bytes");
    }

    #[test]
    fn keyed_etags_differ_per_key_and_hide_the_md5() {
        let md5 = [7u8; 16];
        let (a, b) = (DataKey::random(), DataKey::random());
        assert_eq!(keyed_etag(&a, &md5), keyed_etag(&a.clone(), &md5));
        assert_ne!(keyed_etag(&a, &md5), keyed_etag(&b, &md5));
        assert_ne!(keyed_etag(&a, &md5), hex::encode(md5));
        assert_eq!(keyed_etag(&a, &md5).len(), 32);
    }

    #[test]
    fn data_keys_do_not_print() {
        assert_eq!(format!("{:?}", DataKey::from_bytes([1; 32])), "DataKey(..)");
    }
}
