//! The on-disk metadata decoders (object, upload, part and bucket records,
//! encrypted versions included, and object records' listing summaries) on
//! arbitrary bytes: never a panic, and whatever decodes re-encodes to
//! bytes that decode to the same record. Each input is tried as it is and
//! with a valid CRC32C seal appended, so that the fuzzer reaches the field
//! decoders behind the checksum.
#![no_main]

use libfuzzer_sys::fuzz_target;
use objd::meta::{BucketRecord, ObjectRecord, PartRecord, UploadRecord};

fn decode_all(data: &[u8]) {
    if let Ok(r) = ObjectRecord::decode(data) {
        assert_eq!(ObjectRecord::decode(&r.encode()).as_ref(), Ok(&r));
        // Its listing summary decodes to the same entries, cut down.
        let summary = objd::meta::summary::summarize(data).expect("summary of a record");
        let s = ObjectRecord::decode(&summary).expect("summary decodes");
        assert_eq!(s.versions.len(), r.versions.len());
        for (a, b) in s.versions.iter().zip(&r.versions) {
            assert_eq!(
                (a.id, a.stamp, a.kind, a.size, &a.etag),
                (b.id, b.stamp, b.kind, b.size, &b.etag)
            );
            // User metadata too, unless a customer's key seals the data.
            let customer = b.sealed_for_customer();
            assert_eq!(a.sealed_for_customer(), customer);
            let kept: &[(String, String)] = if customer { &[] } else { &b.user_meta };
            assert_eq!(a.user_meta, kept);
        }
    } else {
        assert!(objd::meta::summary::summarize(data).is_err());
    }
    if let Ok(r) = UploadRecord::decode(data) {
        assert_eq!(UploadRecord::decode(&r.encode()).as_ref(), Ok(&r));
    }
    if let Ok(r) = PartRecord::decode(data) {
        assert_eq!(PartRecord::decode(&r.encode()).as_ref(), Ok(&r));
    }
    if let Ok(r) = BucketRecord::decode(data) {
        assert_eq!(BucketRecord::decode(&r.encode()).as_ref(), Ok(&r));
    }
    let _ = objd::meta::decode_pair_list(data);
}

fuzz_target!(|data: &[u8]| {
    decode_all(data);
    let mut sealed = objd::meta::codec::Writer::default();
    sealed.raw(data);
    objd::meta::codec::seal(&mut sealed);
    decode_all(&sealed.buf);
});
