//! The package format of encrypted data. Each part of an object is sealed
//! on its own as a run of packages; a package is
//! `nonce (12) ‖ ciphertext ‖ tag (16)`, with a random nonce and, as
//! associated data, the part number, the package's index in the part and
//! whether it is the part's last package. Every package but the last of a
//! part carries exactly `package - 28` plain bytes; an empty part is one
//! empty package. So a package moved within a part, between parts or
//! between objects (each version has its own data key), a dropped tail
//! and a part cut at a package boundary all fail authentication, and a
//! range read opens only the packages it overlaps.
//!
//! The sealed size of a package divides the erasure block size, so that
//! erasure blocks hold whole packages.

use super::{Cipher, DataKey, SseError};
use crate::meta::{EncryptionRecord, PACKAGE_OVERHEAD};

/// The sealed package size for writes with erasure blocks of `block`
/// bytes: 64 KiB, or the block itself when 64 KiB does not divide it.
pub fn package_size(block: u32) -> u32 {
    const PACKAGE: u32 = 64 * 1024;
    if block.is_multiple_of(PACKAGE) {
        PACKAGE
    } else {
        assert!(block > PACKAGE_OVERHEAD, "erasure blocks too small to encrypt");
        block
    }
}

fn aad(part: u32, index: u64, last: bool) -> [u8; 17] {
    let mut a = [0u8; 17];
    a[..4].copy_from_slice(&part.to_be_bytes());
    a[4..12].copy_from_slice(&index.to_be_bytes());
    a[12..16].copy_from_slice(b"STPK");
    a[16] = u8::from(last);
    a
}

/// Seals one part's bytes as they stream, package by package.
pub struct Sealer {
    cipher: Cipher,
    part: u32,
    next: u64,
    package: usize,
}

impl Sealer {
    pub fn new(key: &DataKey, rec: &EncryptionRecord, part: u32) -> Result<Self, SseError> {
        let algo = super::Algorithm::from_u8(rec.algo).ok_or(SseError::Unknown)?;
        Ok(Self {
            cipher: Cipher::new(algo, key),
            part,
            next: 0,
            package: rec.package as usize,
        })
    }

    fn payload(&self) -> usize {
        self.package - PACKAGE_OVERHEAD as usize
    }

    /// Plain bytes that seal into `block` bytes (whole packages).
    pub fn plain_per(&self, block: usize) -> usize {
        block / self.package * self.payload()
    }

    /// Seals `plain`, which is a whole number of packages' payload unless
    /// `last` says it ends the part.
    pub fn seal(&mut self, plain: &[u8], last: bool) -> Vec<u8> {
        let payload = self.payload();
        let n = if last {
            plain.len().div_ceil(payload).max(1)
        } else {
            debug_assert!(plain.len().is_multiple_of(payload));
            plain.len() / payload
        };
        // An empty kept buffer (crate::buffers), extended below.
        let mut out = crate::buffers::take_empty(plain.len() + n * PACKAGE_OVERHEAD as usize);
        for i in 0..n {
            let chunk = &plain[(i * payload).min(plain.len())..((i + 1) * payload).min(plain.len())];
            let nonce: [u8; 12] = rand::random();
            out.extend_from_slice(&nonce);
            let at = out.len();
            out.extend_from_slice(chunk);
            let tag = self.cipher.seal(
                &nonce,
                &aad(self.part, self.next, last && i + 1 == n),
                &mut out[at..],
            );
            out.extend_from_slice(&tag);
            self.next += 1;
        }
        out
    }
}

/// Opens the packages of one stored part.
pub struct Opener {
    cipher: Cipher,
    part: u32,
    package: u64,
    /// Packages in the part.
    count: u64,
}

impl Opener {
    /// For part `part`, stored in `sealed_len` bytes.
    pub fn new(key: &DataKey, rec: &EncryptionRecord, part: u32, sealed_len: u64) -> Result<Self, SseError> {
        let algo = super::Algorithm::from_u8(rec.algo).ok_or(SseError::Unknown)?;
        let plain = rec.plain_len(sealed_len).ok_or(SseError::Tampered)?;
        Ok(Self {
            cipher: Cipher::new(algo, key),
            part,
            package: u64::from(rec.package),
            count: rec.packages(plain),
        })
    }

    /// The sealed byte range `[start, end)` holding plain bytes
    /// `[from, to)` of the part, and the index of its first package.
    pub fn sealed_range(&self, from: u64, to: u64, sealed_len: u64) -> (u64, u64, u64) {
        let payload = self.package - u64::from(PACKAGE_OVERHEAD);
        let first = from / payload;
        let end = to.div_ceil(payload).max(first + 1);
        (first * self.package, (end * self.package).min(sealed_len), first)
    }

    /// Sealed size of a package.
    pub fn package(&self) -> usize {
        self.package as usize
    }

    /// The plain bytes of package `index`.
    pub fn open(&self, index: u64, sealed: &[u8]) -> Result<Vec<u8>, SseError> {
        self.open_run(index, bytes::BytesMut::from(sealed))
            .map(|b| b.to_vec())
    }

    /// Opens consecutive packages starting at `first` where they lie (all
    /// full but, at the part's end, the last) and moves their plain bytes
    /// together: one buffer, no copy to another.
    pub fn open_run(&self, first: u64, mut run: bytes::BytesMut) -> Result<bytes::Bytes, SseError> {
        let size = self.package as usize;
        let overhead = PACKAGE_OVERHEAD as usize;
        let (mut read, mut write, mut index) = (0, 0, first);
        while read < run.len() {
            let n = (run.len() - read).min(size);
            let last = index + 1 == self.count;
            if index >= self.count || n < overhead || (!last && n != size) {
                return Err(SseError::Tampered);
            }
            let (nonce, rest) = run[read..read + n].split_at_mut(12);
            let (body, tag) = rest.split_at_mut(n - overhead);
            let nonce: [u8; 12] = (&*nonce).try_into().map_err(|_| SseError::Tampered)?;
            let tag: [u8; 16] = (&*tag).try_into().map_err(|_| SseError::Tampered)?;
            self.cipher
                .open(&nonce, &aad(self.part, index, last), body, &tag)?;
            run.copy_within(read + 12..read + n - 16, write);
            write += n - overhead;
            read += n;
            index += 1;
        }
        run.truncate(write);
        Ok(run.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(package: u32, algo: u8) -> EncryptionRecord {
        EncryptionRecord {
            mode: 1,
            algo,
            package,
            ..Default::default()
        }
    }

    /// Seals `data` in blocks of `block` sealed bytes, as the write path does.
    fn seal_all(key: &DataKey, rec: &EncryptionRecord, part: u32, data: &[u8], block: usize) -> Vec<u8> {
        let mut s = Sealer::new(key, rec, part).unwrap();
        let per = s.plain_per(block);
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let end = (at + per).min(data.len());
            let last = end == data.len();
            out.extend(s.seal(&data[at..end], last));
            at = end;
            if last {
                break;
            }
        }
        out
    }

    fn open_range(
        key: &DataKey,
        rec: &EncryptionRecord,
        part: u32,
        sealed: &[u8],
        from: u64,
        to: u64,
    ) -> Result<Vec<u8>, SseError> {
        let o = Opener::new(key, rec, part, sealed.len() as u64)?;
        let (s, e, first) = o.sealed_range(from, to, sealed.len() as u64);
        let payload = rec.payload();
        let mut out = Vec::new();
        for (i, p) in sealed[s as usize..e as usize].chunks(o.package()).enumerate() {
            out.extend(o.open(first + i as u64, p)?);
        }
        let skip = (from - first * payload) as usize;
        Ok(out[skip..skip + (to - from) as usize].to_vec())
    }

    #[test]
    fn sizes_round_trip() {
        let rec = record(65536, 1);
        for plain in [0, 1, 65507, 65508, 65509, 1 << 20, 5 << 30] {
            let sealed = rec.sealed_len(plain);
            assert_eq!(rec.plain_len(sealed), Some(plain), "{plain}");
        }
        assert_eq!(rec.sealed_len(0), 28);
        assert_eq!(rec.sealed_len(65508), 65536);
        assert_eq!(rec.plain_len(27), None);
        assert_eq!(rec.plain_len(65537), None);
        assert_eq!(package_size(1 << 20), 65536);
        assert_eq!(package_size(1000), 1000);
    }

    #[test]
    fn tampering_is_detected() {
        let key = DataKey::random();
        let rec = record(256, 1);
        let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let sealed = seal_all(&key, &rec, 1, &data, 1024);
        assert_eq!(open_range(&key, &rec, 1, &sealed, 0, 1000).unwrap(), data);
        // Another part number, another key.
        assert!(open_range(&key, &rec, 2, &sealed, 0, 1000).is_err());
        assert!(open_range(&DataKey::random(), &rec, 1, &sealed, 0, 10).is_err());
        // A flipped bit.
        let mut bad = sealed.clone();
        bad[300] ^= 1;
        assert!(open_range(&key, &rec, 1, &bad, 228, 456).is_err());
        assert_eq!(open_range(&key, &rec, 1, &bad, 0, 228).unwrap(), data[..228]);
        // Two packages swapped.
        let mut swapped = sealed.clone();
        let (a, b) = swapped.split_at_mut(256);
        a.swap_with_slice(&mut b[..256]);
        assert!(open_range(&key, &rec, 1, &swapped, 0, 10).is_err());
        // Cut at a package boundary: the new last package is not marked last.
        let cut = &sealed[..512];
        assert!(open_range(&key, &rec, 1, cut, 0, 456).is_err());
    }

    #[test]
    fn empty_parts_are_one_package() {
        let key = DataKey::random();
        let rec = record(65536, 2);
        let sealed = seal_all(&key, &rec, 3, &[], 1 << 20);
        assert_eq!(sealed.len(), 28);
        let o = Opener::new(&key, &rec, 3, 28).unwrap();
        assert!(o.open(0, &sealed).unwrap().is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_range_opens_to_the_plain_bytes(
            len in 0usize..5000,
            package in 40u32..700,
            algo in 1u8..=2,
            a in 0u64..5000,
            b in 0u64..5000,
        ) {
            let key = DataKey::random();
            let rec = record(package, algo);
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let sealed = seal_all(&key, &rec, 1, &data, package as usize * 3);
            prop_assert_eq!(sealed.len() as u64, rec.sealed_len(len as u64));
            let (from, to) = (a.min(b).min(len as u64), a.max(b).min(len as u64));
            if from < to {
                let got = open_range(&key, &rec, 1, &sealed, from, to).unwrap();
                prop_assert_eq!(&got[..], &data[from as usize..to as usize]);
            }
        }
    }
}
