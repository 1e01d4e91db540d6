//! Listing summaries: an object record cut down to what a listing and its
//! quorum resolution read. A drive keeps one beside each record, made when
//! the record is committed, so a listing page reads, moves and decodes
//! about a hundred bytes per entry instead of whole records (inline shard
//! bytes, headers, parts, tags).
//!
//! A summary is itself an object record in the ordinary format, so
//! [`ObjectRecord::decode`] reads it; each entry keeps its id, times, kind,
//! size, ETag, erasure layout, data location, user metadata (what a
//! listing with metadata answers: a mount's `ls -l` reads POSIX
//! attributes there) and how its data is sealed (mode, cipher, package
//! size; not the sealed key), and loses headers, parts, inline bytes and
//! the other extensions. The user metadata of a version encrypted with a
//! customer's key is left out: S3 shows it only to a caller that gives
//! the key. The shard index is zeroed:
//! it is the one field that differs between drives by design, so healthy
//! drives give byte-identical summaries of a key, which the listing uses to
//! resolve such a key from one of them.

use super::codec::DecodeError;
use super::{DataLoc, EncryptionRecord, Extras, ObjectRecord};

/// What the drive's summary-table marker row holds when every summary is
/// in this form: summaries of another form (before user metadata was
/// kept) are made again when a drive opens.
pub const FORM: &[u8] = &[2];

/// The summary of a stored object record (checksum verified). Summaries
/// are made when records are committed, so this reads the record whole.
pub fn summarize(record: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut r = ObjectRecord::decode(record)?;
    for v in &mut r.versions {
        v.headers = Vec::new();
        if v.sealed_for_customer() {
            v.user_meta = Vec::new();
        }
        v.parts = Vec::new();
        v.erasure.shard_index = 0;
        if let DataLoc::Inline(b) = &mut v.data {
            *b = Vec::new();
        }
        // How the data is sealed, without the sealed key.
        let encryption = v.extras.encryption.take().map(|e| EncryptionRecord {
            mode: e.mode,
            algo: e.algo,
            package: e.package,
            ..Default::default()
        });
        v.extras = Extras {
            encryption,
            ..Default::default()
        };
    }
    Ok(r.encode())
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
                acl: vec![(2, 1)],
                place: None,
                unknown: vec![(99, vec![7])],
            },
        }
    }

    fn stripped(mut v: Version) -> Version {
        v.headers.clear();
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
    fn user_metadata_is_kept_unless_a_customer_key_seals_the_data() {
        let mut sealed = version(2, VersionKind::Object, 1, DataLoc::Dir([2; 16]));
        sealed.extras.encryption = Some(EncryptionRecord {
            mode: crate::sse::Mode::Customer as u8,
            algo: 1,
            package: 65_564,
            sealed_key: vec![7; 60],
            ..Default::default()
        });
        let mut by_kms = sealed.clone();
        by_kms.id = VersionId([3; 16]);
        by_kms.extras.encryption = Some(EncryptionRecord {
            mode: crate::sse::Mode::Kms as u8,
            algo: 1,
            package: 65_564,
            ..Default::default()
        });
        let rec = ObjectRecord {
            versions: vec![by_kms, sealed],
        };
        let back = ObjectRecord::decode(&summarize(&rec.encode()).unwrap()).unwrap();
        assert_eq!(
            back.versions[0].user_meta,
            vec![("mode".to_owned(), "0644".to_owned())]
        );
        assert!(back.versions[1].user_meta.is_empty());
        // How the data is sealed is kept, the sealed key is not.
        assert!(back.versions[1].sealed_for_customer() && !back.versions[0].sealed_for_customer());
        let kept = back.versions[1].extras.encryption.as_ref().unwrap();
        assert_eq!((kept.algo, kept.package, kept.sealed_key.len()), (1, 65_564, 0));
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
