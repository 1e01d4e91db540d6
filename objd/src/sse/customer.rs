//! SSE-C: keys the client sends with every request. The key itself is
//! never stored: a version's random data key is sealed under a key
//! derived from the customer key (HMAC-SHA256 with a fixed label), bound
//! to the object's bucket and key, so only the same customer key opens it
//! and a wrong key is told apart from damaged data by the seal alone.

use super::{Algorithm, Cipher, DataKey, SseError, derive};
use md5::{Digest, Md5};

/// A customer key from the `x-amz-server-side-encryption-customer-*` (or
/// `x-amz-copy-source-server-side-encryption-customer-*`) headers, checked.
#[derive(Clone)]
pub struct CustomerKey {
    key: DataKey,
    /// The key's MD5 as the client sent it (base64), echoed in responses.
    md5: String,
}

impl std::fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomerKey(..)")
    }
}

impl CustomerKey {
    /// The key the three headers give, `None` when none is present.
    pub fn from_headers(
        algorithm: Option<&str>,
        key: Option<&str>,
        md5: Option<&str>,
    ) -> Result<Option<Self>, SseError> {
        if algorithm.is_none() && key.is_none() && md5.is_none() {
            return Ok(None);
        }
        match algorithm {
            Some("AES256") => {}
            Some(_) => return Err(SseError::BadAlgorithm),
            None => {
                return Err(SseError::BadCustomerKey(
                    "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.",
                ));
            }
        }
        let key = key.ok_or(SseError::BadCustomerKey(
            "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.",
        ))?;
        let md5 = md5.ok_or(SseError::BadCustomerKey(
            "Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key.",
        ))?;
        let invalid = SseError::BadCustomerKey("The secret key was invalid for the specified algorithm.");
        let raw = base64_simd::STANDARD.decode_to_vec(key.trim()).map_err(|_| {
            SseError::BadCustomerKey("The secret key was invalid for the specified algorithm.")
        })?;
        let key = DataKey::from_slice(&raw).ok_or(invalid)?;
        let sum = base64_simd::STANDARD.encode_to_string(Md5::digest(key.bytes()));
        if sum != md5.trim() {
            return Err(SseError::BadCustomerKey(
                "The calculated MD5 hash of the key did not match the hash that was provided.",
            ));
        }
        Ok(Some(Self { key, md5: sum }))
    }

    /// Base64 MD5 of the key.
    pub fn md5(&self) -> &str {
        &self.md5
    }

    fn sealer(&self) -> Cipher {
        Cipher::new(
            Algorithm::Aes256Gcm,
            &derive(self.key.bytes(), b"strata sse-c v1"),
        )
    }

    /// `data` sealed for the object `bound` (its bucket and key).
    pub fn seal(&self, data: &DataKey, bound: &str) -> Vec<u8> {
        self.sealer().wrap(bound.as_bytes(), data.bytes())
    }

    /// The data key `sealed` holds, or `WrongCustomerKey`.
    pub fn open(&self, sealed: &[u8], bound: &str) -> Result<DataKey, SseError> {
        let plain = self
            .sealer()
            .unwrap(bound.as_bytes(), sealed)
            .map_err(|_| SseError::WrongCustomerKey)?;
        DataKey::from_slice(&plain).ok_or(SseError::WrongCustomerKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(key: &[u8]) -> (String, String) {
        (
            base64_simd::STANDARD.encode_to_string(key),
            base64_simd::STANDARD.encode_to_string(Md5::digest(key)),
        )
    }

    #[test]
    fn headers_are_checked_as_s3_checks_them() {
        let (k, m) = headers(&[5u8; 32]);
        assert!(CustomerKey::from_headers(None, None, None).unwrap().is_none());
        let c = CustomerKey::from_headers(Some("AES256"), Some(&k), Some(&m))
            .unwrap()
            .unwrap();
        assert_eq!(c.md5(), m);
        assert!(matches!(
            CustomerKey::from_headers(Some("AES128"), Some(&k), Some(&m)),
            Err(SseError::BadAlgorithm)
        ));
        assert!(CustomerKey::from_headers(Some("AES256"), Some(&k), None).is_err());
        assert!(CustomerKey::from_headers(None, Some(&k), Some(&m)).is_err());
        let (short, short_md5) = headers(&[5u8; 16]);
        assert!(CustomerKey::from_headers(Some("AES256"), Some(&short), Some(&short_md5)).is_err());
        let (_, other_md5) = headers(&[6u8; 32]);
        assert!(CustomerKey::from_headers(Some("AES256"), Some(&k), Some(&other_md5)).is_err());
        assert!(CustomerKey::from_headers(Some("AES256"), Some("!!"), Some(&m)).is_err());
        assert_eq!(format!("{c:?}"), "CustomerKey(..)");
    }

    #[test]
    fn only_the_same_key_and_object_open_the_data_key() {
        let (k, m) = headers(&[5u8; 32]);
        let c = CustomerKey::from_headers(Some("AES256"), Some(&k), Some(&m))
            .unwrap()
            .unwrap();
        let data = DataKey::random();
        let sealed = c.seal(&data, "b/k");
        assert_eq!(c.open(&sealed, "b/k").unwrap().bytes(), data.bytes());
        assert!(matches!(
            c.open(&sealed, "b/other"),
            Err(SseError::WrongCustomerKey)
        ));
        let (k2, m2) = headers(&[6u8; 32]);
        let c2 = CustomerKey::from_headers(Some("AES256"), Some(&k2), Some(&m2))
            .unwrap()
            .unwrap();
        assert!(matches!(c2.open(&sealed, "b/k"), Err(SseError::WrongCustomerKey)));
    }
}
