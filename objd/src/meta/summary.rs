//! Listing summaries: an object record cut down to what a listing and its
//! quorum resolution read. A drive makes them while it scans, so a listing
//! page moves and decodes about a hundred bytes per entry instead of whole
//! records (inline shard bytes, metadata, parts, tags, keys).
//!
//! A summary is itself an object record in the ordinary format, so
//! [`ObjectRecord::decode`] reads it; each entry keeps its id, times, kind,
//! size, ETag, erasure layout and data location, and loses headers, user
//! metadata, parts, inline bytes and extensions. The shard index is zeroed:
//! it is the one field that differs between drives by design, so healthy
//! drives give byte-identical summaries of a key, which the listing uses to
//! resolve such a key from one of them.

use super::codec::{self, DecodeError, Reader, Writer};
use super::{FORMAT_VERSION_3, FORMAT_VERSION_4, OBJECT_MAGIC, header};

/// The summary of a stored object record (checksum verified).
pub fn summarize(record: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut r = Reader::new(codec::unseal(record)?);
    let format = header(&mut r, OBJECT_MAGIC, FORMAT_VERSION_4)?;
    let n = r.count(40)?;
    let mut w = Writer {
        buf: Vec::with_capacity(16 + n * 112),
    };
    w.raw(&OBJECT_MAGIC);
    w.u16(FORMAT_VERSION_3);
    w.u32(n as u32);
    for _ in 0..n {
        skim_version(&mut r, format, &mut w)?;
    }
    if !r.is_empty() {
        return Err(DecodeError::Invalid("trailing bytes"));
    }
    codec::seal(&mut w);
    Ok(w.buf)
}

/// Reads one entry as `decode_version` does and writes its summary.
fn skim_version(r: &mut Reader<'_>, format: u16, w: &mut Writer) -> Result<(), DecodeError> {
    w.raw(r.raw(16)?); // id
    let mod_time = r.i64()?;
    w.i64(mod_time);
    w.i64(if format >= 3 { r.i64()? } else { mod_time });
    let kind = r.u8()?;
    let known = match kind {
        1 | 2 => true,
        3 => format >= 3,
        _ => false,
    };
    if !known {
        return Err(DecodeError::Invalid("version kind"));
    }
    w.u8(kind);
    w.u64(r.u64()?); // size
    let etag = r.bytes()?;
    std::str::from_utf8(etag).map_err(|_| DecodeError::Invalid("utf-8"))?;
    w.bytes(etag);
    skip_pairs(r)?; // headers
    skip_pairs(r)?; // user metadata
    w.u32(0);
    w.u32(0);
    let (data, parity, shard, hash, block) = (r.u8()?, r.u8()?, r.u8()?, r.u8()?, r.u32()?);
    if data == 0 || block == 0 || usize::from(shard) >= usize::from(data) + usize::from(parity) {
        return Err(DecodeError::Invalid("erasure layout"));
    }
    w.raw(&[data, parity, 0, hash]);
    w.u32(block);
    let parts = r.count(16)?;
    for _ in 0..parts {
        r.raw(4 + 8)?;
        r.bytes()?;
        if format >= 3 {
            r.raw(8)?;
        }
    }
    w.u32(0);
    match r.u8()? {
        0 => w.u8(0),
        1 => {
            r.bytes()?;
            w.u8(1);
            w.u32(0);
        }
        2 => {
            w.u8(2);
            w.raw(r.raw(16)?);
        }
        _ => return Err(DecodeError::Invalid("data location")),
    }
    if format >= 2 {
        let n = r.count(6)?;
        for _ in 0..n {
            r.u16()?;
            r.bytes()?;
        }
    }
    w.u32(0); // no extensions
    Ok(())
}

fn skip_pairs(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    let n = r.count(8)?;
    for _ in 0..n {
        r.bytes()?;
        r.bytes()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::summarize;

    fn version(id: u8, kind: VersionKind, shard: u8, data: DataLoc) -> Version {
        Version {
            id: VersionId([id; 16]),
            mod_time_ns: 1_700_000_000_000_000_000 + i64::from(id),
            stamp: 1_700_000_000_000_000_500 + i64::from(id),
            kind,
            size: 4096 * u64::from(id),
            etag: format!("etag-{id}"),
            headers: vec![("content-type".into(), "text/plain".into())],
            user_meta: vec![("mode".into(), "0644".into())],
            erasure: ErasureInfo {
                data: 4,
                parity: 2,
                shard_index: shard,
                hash_algo: 1,
                block_size: 1 << 20,
            },
            parts: vec![PartInfo {
                number: 1,
                size: 4096,
                etag: "p".into(),
                tag: 9,
            }],
            data,
            extras: Extras {
                tags: vec![("k".into(), "v".into())],
                checksum: Some(ChecksumRecord {
                    algo: 1,
                    kind: 1,
                    digest: vec![1, 2, 3, 4],
                    parts: 0,
                }),
                retention: Some((1, 5)),
                legal_hold: true,
                encryption: None,
                unknown: vec![(99, vec![7])],
            },
        }
    }

    fn stripped(mut v: Version) -> Version {
        v.headers.clear();
        v.user_meta.clear();
        v.parts.clear();
        v.erasure.shard_index = 0;
        if let DataLoc::Inline(b) = &mut v.data {
            b.clear();
        }
        v.extras = Extras::default();
        v
    }

    #[test]
    fn a_summary_is_the_record_without_what_listings_never_read() {
        let rec = ObjectRecord {
            versions: vec![
                version(3, VersionKind::Object, 5, DataLoc::Inline(vec![9; 700])),
                version(2, VersionKind::DeleteMarker, 1, DataLoc::None),
                version(1, VersionKind::Object, 2, DataLoc::Dir([7; 16])),
                version(4, VersionKind::Tombstone, 0, DataLoc::None),
            ],
        };
        let summary = summarize(&rec.encode()).unwrap();
        let back = ObjectRecord::decode(&summary).unwrap();
        let want: Vec<Version> = rec.versions.iter().cloned().map(stripped).collect();
        assert_eq!(back.versions, want);
        assert!(summary.len() < 500, "{} bytes", summary.len());
    }

    #[test]
    fn drives_holding_the_same_entries_give_the_same_summary() {
        let on = |shard| {
            ObjectRecord {
                versions: vec![version(
                    1,
                    VersionKind::Object,
                    shard,
                    DataLoc::Inline(vec![shard; 64]),
                )],
            }
            .encode()
        };
        assert_ne!(on(0), on(3));
        assert_eq!(summarize(&on(0)).unwrap(), summarize(&on(3)).unwrap());
    }

    #[test]
    fn damaged_records_are_refused() {
        let rec = ObjectRecord {
            versions: vec![version(1, VersionKind::Object, 0, DataLoc::Dir([1; 16]))],
        }
        .encode();
        let mut flipped = rec.clone();
        flipped[30] ^= 1;
        assert_eq!(summarize(&flipped), Err(DecodeError::Checksum));
        assert!(summarize(&rec[..rec.len() - 9]).is_err());
        assert!(summarize(b"").is_err());
    }
}
