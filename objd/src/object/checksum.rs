//! End-to-end object checksums (S3's `x-amz-checksum-*`): CRC32, CRC32C,
//! CRC64NVME, SHA-1 and SHA-256 of the object's bytes, computed on the
//! write path, checked against what the client sent (in a header or an
//! `aws-chunked` trailer), stored with the version and returned on reads so
//! that clients can verify what they received.
//!
//! Every object gets one: the algorithm the client asked for, else
//! CRC64NVME (as S3 does). Multipart objects get a full-object checksum
//! for CRC algorithms (part CRCs are combined arithmetically) or a
//! composite one (`checksum-of-part-checksums-N`) for SHA algorithms or
//! when the client asks for it.

use super::{ObjectError, ObjectResult};
use sha2::Digest as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumAlgo {
    Crc32 = 1,
    Crc32c = 2,
    Crc64Nvme = 3,
    Sha1 = 4,
    Sha256 = 5,
}

impl ChecksumAlgo {
    pub const ALL: [ChecksumAlgo; 5] = [
        ChecksumAlgo::Crc32,
        ChecksumAlgo::Crc32c,
        ChecksumAlgo::Crc64Nvme,
        ChecksumAlgo::Sha1,
        ChecksumAlgo::Sha256,
    ];

    /// The name S3 uses (`CRC32`, ..., `SHA256`).
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgo::Crc32 => "CRC32",
            ChecksumAlgo::Crc32c => "CRC32C",
            ChecksumAlgo::Crc64Nvme => "CRC64NVME",
            ChecksumAlgo::Sha1 => "SHA1",
            ChecksumAlgo::Sha256 => "SHA256",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name().eq_ignore_ascii_case(s))
    }

    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|a| *a as u8 == v)
    }

    fn crc(self) -> Option<crc_fast::CrcAlgorithm> {
        match self {
            ChecksumAlgo::Crc32 => Some(crc_fast::CrcAlgorithm::Crc32IsoHdlc),
            ChecksumAlgo::Crc32c => Some(crc_fast::CrcAlgorithm::Crc32Iscsi),
            ChecksumAlgo::Crc64Nvme => Some(crc_fast::CrcAlgorithm::Crc64Nvme),
            _ => None,
        }
    }

    /// Whether part checksums of this algorithm can be combined into the
    /// checksum of the whole object.
    pub fn combinable(self) -> bool {
        self.crc().is_some()
    }

    fn width(self) -> usize {
        match self {
            ChecksumAlgo::Crc32 | ChecksumAlgo::Crc32c => 4,
            ChecksumAlgo::Crc64Nvme => 8,
            ChecksumAlgo::Sha1 => 20,
            ChecksumAlgo::Sha256 => 32,
        }
    }
}

/// Whether a checksum covers the object's bytes or its parts' checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumKind {
    FullObject = 1,
    Composite = 2,
}

/// A stored checksum: the digest (big-endian for CRCs, as S3 encodes it)
/// and, for composite checksums, the number of parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub algo: ChecksumAlgo,
    pub kind: ChecksumKind,
    pub digest: Vec<u8>,
    pub parts: u32,
}

impl Checksum {
    /// The value as S3 sends it: base64, with `-N` for composite ones.
    pub fn value(&self) -> String {
        let b = base64_simd::STANDARD.encode_to_string(&self.digest);
        match self.kind {
            ChecksumKind::FullObject => b,
            ChecksumKind::Composite => format!("{b}-{}", self.parts),
        }
    }
}

/// Decodes a checksum value sent by a client (base64 of the digest).
pub fn decode_value(algo: ChecksumAlgo, v: &str) -> ObjectResult<Vec<u8>> {
    base64_simd::STANDARD
        .decode_to_vec(v.trim())
        .ok()
        .filter(|d| d.len() == algo.width())
        .ok_or_else(|| {
            ObjectError::InvalidRequest(format!(
                "Value for x-amz-checksum-{} header is invalid.",
                algo.name().to_ascii_lowercase()
            ))
        })
}

/// A running digest of one algorithm.
pub enum Hasher {
    Crc(crc_fast::Digest, ChecksumAlgo),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    pub fn new(algo: ChecksumAlgo) -> Self {
        match algo.crc() {
            Some(c) => Hasher::Crc(crc_fast::Digest::new(c), algo),
            None if algo == ChecksumAlgo::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            None => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc(d, _) => d.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Crc(d, algo) => crc_bytes(algo, d.finalize()),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

fn crc_bytes(algo: ChecksumAlgo, v: u64) -> Vec<u8> {
    if algo.width() == 4 {
        (v as u32).to_be_bytes().to_vec()
    } else {
        v.to_be_bytes().to_vec()
    }
}

fn crc_value(d: &[u8]) -> u64 {
    d.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

/// The full-object CRC of a multipart object from its parts' CRCs and
/// sizes; `None` for algorithms that cannot be combined.
pub fn combine(algo: ChecksumAlgo, parts: &[(Vec<u8>, u64)]) -> Option<Vec<u8>> {
    let c = algo.crc()?;
    let mut it = parts.iter();
    let (first, _) = it.next()?;
    let mut acc = crc_value(first);
    for (d, len) in it {
        acc = crc_fast::checksum_combine(c, acc, crc_value(d), *len);
    }
    Some(crc_bytes(algo, acc))
}

/// The composite checksum of a multipart object: the digest of the
/// concatenated part digests.
pub fn composite(algo: ChecksumAlgo, parts: &[Vec<u8>]) -> Vec<u8> {
    let mut h = Hasher::new(algo);
    for p in parts {
        h.update(p);
    }
    h.finish()
}

/// What the client says the checksum of a body is.
pub enum Expected {
    /// Nothing to check against.
    None,
    /// A value from a request header (base64).
    Value(String),
    /// A value that arrives after the body, in a trailer; read once the
    /// body has ended (`None`: the trailer was announced but not sent).
    Trailer(Box<dyn FnOnce() -> Option<String> + Send + Sync>),
}

impl std::fmt::Debug for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expected::None => f.write_str("None"),
            Expected::Value(v) => write!(f, "Value({v})"),
            Expected::Trailer(_) => f.write_str("Trailer"),
        }
    }
}

/// A checksum a client sent with a body, to verify once it is read.
#[derive(Debug)]
pub struct ChecksumCheck {
    pub algo: ChecksumAlgo,
    pub expected: Expected,
}

impl ChecksumCheck {
    /// Compares the digest computed over the body with the client's value.
    pub fn verify(self, digest: &[u8]) -> ObjectResult<()> {
        let value = match self.expected {
            Expected::None => return Ok(()),
            Expected::Value(v) => v,
            Expected::Trailer(read) => read().ok_or_else(|| {
                ObjectError::InvalidRequest(format!(
                    "The x-amz-checksum-{} trailer announced in x-amz-trailer was not sent",
                    self.algo.name().to_ascii_lowercase()
                ))
            })?,
        };
        if decode_value(self.algo, &value)? != digest {
            return Err(ObjectError::BadChecksum(self.algo.name()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(algo: ChecksumAlgo, data: &[u8]) -> Vec<u8> {
        let mut h = Hasher::new(algo);
        h.update(data);
        h.finish()
    }

    #[test]
    fn known_values() {
        // Check values of each algorithm for "123456789".
        let d = b"123456789";
        assert_eq!(digest(ChecksumAlgo::Crc32, d), 0xCBF4_3926u32.to_be_bytes());
        assert_eq!(digest(ChecksumAlgo::Crc32c, d), 0xE306_9283u32.to_be_bytes());
        assert_eq!(
            digest(ChecksumAlgo::Crc64Nvme, d),
            0xAE8B_1486_0A79_9888u64.to_be_bytes()
        );
        assert_eq!(
            hex::encode(digest(ChecksumAlgo::Sha1, d)),
            "f7c3bc1d808e04732adf679965ccc34ca7ae3441"
        );
        assert_eq!(
            hex::encode(digest(ChecksumAlgo::Sha256, d)),
            "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225"
        );
    }

    #[test]
    fn combined_part_crcs_equal_the_crc_of_the_whole() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for algo in [ChecksumAlgo::Crc32, ChecksumAlgo::Crc32c, ChecksumAlgo::Crc64Nvme] {
            let parts: Vec<(Vec<u8>, u64)> = data
                .chunks(30_001)
                .map(|c| (digest(algo, c), c.len() as u64))
                .collect();
            assert_eq!(combine(algo, &parts).unwrap(), digest(algo, &data), "{algo:?}");
        }
        assert!(combine(ChecksumAlgo::Sha256, &[(vec![0; 32], 1)]).is_none());
    }

    #[test]
    fn values_and_verification() {
        let c = Checksum {
            algo: ChecksumAlgo::Crc32,
            kind: ChecksumKind::Composite,
            digest: vec![0, 0, 0, 1],
            parts: 3,
        };
        assert_eq!(c.value(), "AAAAAQ==-3");
        let d = digest(ChecksumAlgo::Crc32, b"abc");
        let good = base64_simd::STANDARD.encode_to_string(&d);
        let check = |expected| ChecksumCheck {
            algo: ChecksumAlgo::Crc32,
            expected,
        };
        assert!(check(Expected::Value(good.clone())).verify(&d).is_ok());
        assert!(matches!(
            check(Expected::Value("AAAAAA==".into())).verify(&d),
            Err(ObjectError::BadChecksum("CRC32"))
        ));
        assert!(matches!(
            check(Expected::Value("not base64".into())).verify(&d),
            Err(ObjectError::InvalidRequest(_))
        ));
        assert!(
            check(Expected::Trailer(Box::new(move || Some(good))))
                .verify(&d)
                .is_ok()
        );
        assert!(check(Expected::Trailer(Box::new(|| None))).verify(&d).is_err());
        assert!(check(Expected::None).verify(&d).is_ok());
        assert_eq!(
            ChecksumAlgo::from_name("crc64nvme"),
            Some(ChecksumAlgo::Crc64Nvme)
        );
    }
}
