//! The per-drive object metadata record and its versioned binary format
//! (drawn in `docs/format.md`). One record per object key and drive holds
//! every version of the key, newest first; each version says where its bytes
//! are (inline in the record, or a data directory of shard files) and how
//! they were erasure-coded. Upload and part records of multipart uploads
//! live here too.
//!
//! This module only encodes and decodes; it does no I/O.

pub mod codec;
pub mod summary;

use codec::{DecodeError, Reader, Writer};

/// Magic of an object record.
pub const OBJECT_MAGIC: [u8; 4] = *b"STOM";
/// Magic of a multipart upload record.
pub const UPLOAD_MAGIC: [u8; 4] = *b"STUP";
/// Magic of a bucket record.
pub const BUCKET_MAGIC: [u8; 4] = *b"STBK";
/// Magic of a multipart part record.
pub const PART_MAGIC: [u8; 4] = *b"STPT";
/// The first version of every record format.
pub const FORMAT_VERSION: u16 = 1;
/// Version 2 added the extension list (object and upload records), bucket
/// settings and part checksums; version 1 records stay readable. It is the
/// current version of upload, part and bucket records.
pub const FORMAT_VERSION_2: u16 = 2;
/// Current version of object and part records: version 3 added each
/// entry's write stamp and tombstone entries, so that a record can keep the
/// entry a change replaces until the change is on write quorum, and the
/// shard file tag of multipart parts.
pub const FORMAT_VERSION_3: u16 = 3;
/// Version 4 of object and upload records: written (instead of 3) only
/// for a record holding an encrypted version or upload, so that a build
/// that cannot decrypt refuses the record rather than serve ciphertext.
/// The layout is that of version 3; the encryption extension is allowed.
pub const FORMAT_VERSION_4: u16 = 4;
/// Version 5 of object records: written only for a record holding a
/// version whose data lives in a remote tier (data location 3), so that a
/// build that does not know remote tiers refuses the record rather than
/// take the version for one without data. Otherwise the layout of 4.
pub const FORMAT_VERSION_5: u16 = 5;

/// Extension ids of version 2 records. Entries with an id this build does
/// not know are kept and written back unchanged.
pub mod ext {
    /// Object tags: a pair list.
    pub const TAGS: u16 = 1;
    /// The object's checksum (or, on an upload, the one asked for).
    pub const CHECKSUM: u16 = 2;
    /// Object Lock retention: mode (u8) and retain-until time (i64 ns).
    pub const RETENTION: u16 = 3;
    /// Object Lock legal hold: present when on.
    pub const LEGAL_HOLD: u16 = 4;
    /// Server-side encryption of the version's data (format 4 only).
    pub const ENCRYPTION: u16 = 5;
    /// The name (bucket and key) an encrypted version's data key is bound
    /// to, when it is not the version's own: a version cloned from another
    /// keeps the data, and so the key, of its origin (format 4 only).
    pub const BOUND_NAME: u16 = 6;
    /// The version's access control list, when not the default (only the
    /// owner, with full control): `(grantee, permission)` codes of
    /// [`crate::acl`].
    pub const ACL: u16 = 7;
    /// On a multipart upload: the pool or remote tier (by name) its
    /// object goes to when it completes, as its storage class asked.
    pub const PLACE: u16 = 8;
}

/// Bytes a sealed package adds to its payload: a 96-bit nonce and a
/// 128-bit authentication tag.
pub const PACKAGE_OVERHEAD: u32 = 12 + 16;

/// How a version's data is encrypted (see `docs/encryption.md`): the mode
/// and key naming of the `sse` module, the cipher, the sealed size of a
/// package, and the data key as the KMS or the customer key sealed it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct EncryptionRecord {
    /// 1 SSE-S3, 2 SSE-KMS, 3 SSE-C.
    pub mode: u8,
    /// 1 AES-256-GCM, 2 ChaCha20-Poly1305.
    pub algo: u8,
    /// Sealed size of a package (the last of a part may be shorter).
    pub package: u32,
    /// The KMS key that sealed the data key (empty for SSE-C).
    pub key_id: String,
    /// The data key, sealed.
    pub sealed_key: Vec<u8>,
    /// The SSE-KMS encryption context the client gave (JSON), if any.
    pub context: String,
    pub bucket_key: bool,
    /// The bucket and key the data key is sealed for, when not the
    /// version's own (a clone's: [`ext::BOUND_NAME`]).
    pub bound: Option<(String, String)>,
}

impl std::fmt::Debug for EncryptionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionRecord")
            .field("mode", &self.mode)
            .field("algo", &self.algo)
            .field("package", &self.package)
            .field("key_id", &self.key_id)
            .field("bound", &self.bound)
            .finish_non_exhaustive()
    }
}

impl EncryptionRecord {
    /// The bucket and key the data key is bound to: the origin's for a
    /// clone, else the version's own `bucket` and `key`.
    pub fn bound_name<'a>(&'a self, bucket: &'a str, key: &'a str) -> (&'a str, &'a str) {
        match &self.bound {
            Some((b, k)) => (b, k),
            None => (bucket, key),
        }
    }

    /// Plain bytes a package carries.
    pub fn payload(&self) -> u64 {
        u64::from(self.package - PACKAGE_OVERHEAD)
    }

    /// Packages of a part of `plain` bytes (an empty part has one).
    pub fn packages(&self, plain: u64) -> u64 {
        plain.div_ceil(self.payload()).max(1)
    }

    /// Stored size of a part of `plain` bytes.
    pub fn sealed_len(&self, plain: u64) -> u64 {
        plain + self.packages(plain) * u64::from(PACKAGE_OVERHEAD)
    }

    /// Plain size of a part stored in `sealed` bytes (`None` if no plain
    /// size seals to it).
    pub fn plain_len(&self, sealed: u64) -> Option<u64> {
        let n = sealed.div_ceil(u64::from(self.package)).max(1);
        let plain = sealed.checked_sub(n * u64::from(PACKAGE_OVERHEAD))?;
        (self.sealed_len(plain) == sealed).then_some(plain)
    }

    fn encode(&self, w: &mut Writer) {
        w.u8(self.mode);
        w.u8(self.algo);
        w.u32(self.package);
        w.str(&self.key_id);
        w.bytes(&self.sealed_key);
        w.str(&self.context);
        w.u8(u8::from(self.bucket_key));
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let rec = Self {
            mode: r.u8()?,
            algo: r.u8()?,
            package: r.u32()?,
            key_id: r.string()?,
            sealed_key: r.bytes()?.to_vec(),
            context: r.string()?,
            bucket_key: match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(DecodeError::Invalid("bucket key")),
            },
            bound: None,
        };
        if !(1..=3).contains(&rec.mode) || !(1..=2).contains(&rec.algo) || rec.package <= PACKAGE_OVERHEAD {
            return Err(DecodeError::Invalid("encryption"));
        }
        Ok(rec)
    }
}

/// A checksum as stored: algorithm and kind ids of the object layer, the
/// digest (empty on an upload record: only the request), part count for
/// composite checksums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumRecord {
    pub algo: u8,
    pub kind: u8,
    pub digest: Vec<u8>,
    pub parts: u32,
}

impl ChecksumRecord {
    fn encode(&self, w: &mut Writer) {
        w.u8(self.algo);
        w.u8(self.kind);
        w.bytes(&self.digest);
        w.u32(self.parts);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            algo: r.u8()?,
            kind: r.u8()?,
            digest: r.bytes()?.to_vec(),
            parts: r.u32()?,
        })
    }
}

/// Optional per-version facts kept in the extension list of a record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Extras {
    /// Object tags, in the order the client gave them.
    pub tags: Vec<(String, String)>,
    pub checksum: Option<ChecksumRecord>,
    /// Object Lock retention: mode id of the object layer and the time
    /// (ns since the epoch) until which the version is protected.
    pub retention: Option<(u8, i64)>,
    pub legal_hold: bool,
    /// Set when the data is encrypted (format 4).
    pub encryption: Option<EncryptionRecord>,
    /// The access control list as `(grantee, permission)` codes of
    /// [`crate::acl`]; empty: the default, the owner's full control.
    pub acl: Vec<(u8, u8)>,
    /// On an upload record: where the completed object's data goes (a
    /// pool's or remote tier's name); `None`: the namespace pool.
    pub place: Option<String>,
    /// Extensions of a newer format, preserved as they were read.
    pub unknown: Vec<(u16, Vec<u8>)>,
}

impl Extras {
    fn encode(&self, w: &mut Writer) {
        let mut entries: Vec<(u16, Vec<u8>)> = Vec::new();
        if !self.tags.is_empty() {
            let mut t = Writer::default();
            encode_pairs(&mut t, &self.tags);
            entries.push((ext::TAGS, t.buf));
        }
        if let Some(c) = &self.checksum {
            let mut t = Writer::default();
            c.encode(&mut t);
            entries.push((ext::CHECKSUM, t.buf));
        }
        if let Some((mode, until)) = self.retention {
            let mut t = Writer::default();
            t.u8(mode);
            t.i64(until);
            entries.push((ext::RETENTION, t.buf));
        }
        if self.legal_hold {
            entries.push((ext::LEGAL_HOLD, vec![]));
        }
        if let Some(e) = &self.encryption {
            let mut t = Writer::default();
            e.encode(&mut t);
            entries.push((ext::ENCRYPTION, t.buf));
            if let Some((bucket, key)) = &e.bound {
                let mut t = Writer::default();
                t.str(bucket);
                t.str(key);
                entries.push((ext::BOUND_NAME, t.buf));
            }
        }
        if !self.acl.is_empty() {
            let mut t = Writer::default();
            t.u32(self.acl.len() as u32);
            for (grantee, permission) in &self.acl {
                t.u8(*grantee);
                t.u8(*permission);
            }
            entries.push((ext::ACL, t.buf));
        }
        if let Some(p) = &self.place {
            entries.push((ext::PLACE, p.as_bytes().to_vec()));
        }
        entries.extend(self.unknown.iter().cloned());
        w.u32(entries.len() as u32);
        for (id, body) in &entries {
            w.u16(*id);
            w.bytes(body);
        }
    }

    fn decode(r: &mut Reader<'_>, format: u16) -> Result<Self, DecodeError> {
        let mut out = Self::default();
        let mut bound = None;
        let n = r.count(6)?;
        for _ in 0..n {
            let id = r.u16()?;
            let body = r.bytes()?;
            match id {
                ext::TAGS => {
                    let mut t = Reader::new(body);
                    out.tags = decode_pairs(&mut t)?;
                    if !t.is_empty() {
                        return Err(DecodeError::Invalid("tags"));
                    }
                }
                ext::CHECKSUM => {
                    let mut t = Reader::new(body);
                    out.checksum = Some(ChecksumRecord::decode(&mut t)?);
                    if !t.is_empty() {
                        return Err(DecodeError::Invalid("checksum"));
                    }
                }
                ext::RETENTION => {
                    let mut t = Reader::new(body);
                    out.retention = Some((t.u8()?, t.i64()?));
                    if !t.is_empty() {
                        return Err(DecodeError::Invalid("retention"));
                    }
                }
                ext::LEGAL_HOLD => out.legal_hold = true,
                ext::ENCRYPTION if format >= FORMAT_VERSION_4 => {
                    let mut t = Reader::new(body);
                    out.encryption = Some(EncryptionRecord::decode(&mut t)?);
                    if !t.is_empty() {
                        return Err(DecodeError::Invalid("encryption"));
                    }
                }
                ext::ENCRYPTION => return Err(DecodeError::Invalid("encryption before format 4")),
                ext::BOUND_NAME if format >= FORMAT_VERSION_4 => {
                    let mut t = Reader::new(body);
                    bound = Some((t.string()?, t.string()?));
                    if !t.is_empty() {
                        return Err(DecodeError::Invalid("bound name"));
                    }
                }
                ext::BOUND_NAME => return Err(DecodeError::Invalid("bound name before format 4")),
                ext::ACL => {
                    let mut t = Reader::new(body);
                    let n = t.count(2)?;
                    out.acl = (0..n)
                        .map(|_| Ok((t.u8()?, t.u8()?)))
                        .collect::<Result<_, DecodeError>>()?;
                    if !t.is_empty() || out.acl.is_empty() {
                        return Err(DecodeError::Invalid("acl"));
                    }
                }
                ext::PLACE => {
                    let p = std::str::from_utf8(body).map_err(|_| DecodeError::Invalid("place"))?;
                    out.place = Some(p.to_owned());
                }
                _ => out.unknown.push((id, body.to_vec())),
            }
        }
        match (&mut out.encryption, bound) {
            (Some(e), b) => e.bound = b,
            (None, Some(_)) => return Err(DecodeError::Invalid("bound name without encryption")),
            (None, None) => {}
        }
        Ok(out)
    }
}

/// A version id: 16 random bytes; all zeroes is the `null` version that
/// unversioned buckets write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct VersionId(pub [u8; 16]);

impl VersionId {
    pub const NULL: VersionId = VersionId([0; 16]);

    pub fn random() -> Self {
        Self(*uuid::Uuid::new_v4().as_bytes())
    }
    pub fn is_null(&self) -> bool {
        *self == Self::NULL
    }
    /// The id as S3 clients see it: `null` or 32 hex digits.
    pub fn to_api(&self) -> String {
        if self.is_null() {
            "null".to_owned()
        } else {
            hex::encode(self.0)
        }
    }
    pub fn from_api(s: &str) -> Option<Self> {
        if s == "null" {
            return Some(Self::NULL);
        }
        let mut out = [0u8; 16];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Self(out))
    }
}

/// How the bytes of a version were erasure-coded, and which shard this
/// drive holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErasureInfo {
    pub data: u8,
    pub parity: u8,
    /// Index of the shard this drive holds (0-based; `< data` is a data shard).
    pub shard_index: u8,
    pub hash_algo: u8,
    pub block_size: u32,
}

/// One part of an object (a single PUT is one part, number 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    pub number: u32,
    pub size: u64,
    pub etag: String,
    /// Tag of the part's shard file (format 3; 0: `part.N`).
    pub tag: u64,
}

impl PartInfo {
    /// The shard file holding this part.
    pub fn file(&self) -> crate::drive::ShardFile {
        crate::drive::ShardFile::new(self.number, self.tag)
    }
}

/// Where a version's shard bytes live on this drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataLoc {
    /// No data (delete markers).
    None,
    /// This drive's shard stream, stored in the record itself (small objects).
    Inline(Vec<u8>),
    /// A data directory `data/<xx>/<uuid>/` holding one file per part.
    Dir([u8; 16]),
    /// An object of a remote tier (format 5): the version's stored bytes,
    /// framed block by block (see `object::cold`), under an opaque name.
    Remote(RemoteLoc),
}

/// Where in a remote tier a version's data lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RemoteLoc {
    /// The tier's name (`tier::Tiers`).
    pub tier: String,
    /// The object's id there; its name is derived from it.
    pub id: [u8; 16],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionKind {
    Object = 1,
    DeleteMarker = 2,
    /// Says that the version `id` was removed at `stamp` (format 3). It has
    /// no data and is never listed; it wins over older entries of its id
    /// once it has quorum, and is dropped with them afterwards.
    Tombstone = 3,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub id: VersionId,
    /// Nanoseconds since the Unix epoch; orders versions of a key.
    pub mod_time_ns: i64,
    /// When this entry was written (ns since the epoch): orders the entries
    /// of one version id, newest first. Equal to `mod_time_ns` for a new
    /// version; later for a metadata change or a tombstone of it.
    pub stamp: i64,
    pub kind: VersionKind,
    pub size: u64,
    pub etag: String,
    /// System headers (`content-type`, `cache-control`, ...), lower-case names.
    pub headers: Vec<(String, String)>,
    /// User metadata (`x-amz-meta-*` without the prefix).
    pub user_meta: Vec<(String, String)>,
    pub erasure: ErasureInfo,
    pub parts: Vec<PartInfo>,
    pub data: DataLoc,
    pub extras: Extras,
}

impl Version {
    pub fn is_delete_marker(&self) -> bool {
        self.kind == VersionKind::DeleteMarker
    }
    /// Whether the data is sealed with a key the client gives (SSE-C).
    pub fn sealed_for_customer(&self) -> bool {
        self.extras
            .encryption
            .as_ref()
            .is_some_and(|e| e.mode == crate::sse::Mode::Customer as u8)
    }
    pub fn is_tombstone(&self) -> bool {
        self.kind == VersionKind::Tombstone
    }
    /// A tombstone of version `id` written at `stamp`.
    pub fn tombstone(id: VersionId, stamp: i64, erasure: ErasureInfo) -> Self {
        Self::without_data(VersionKind::Tombstone, id, stamp, erasure)
    }

    /// A delete marker or tombstone: an entry that holds no data.
    pub fn without_data(kind: VersionKind, id: VersionId, stamp: i64, erasure: ErasureInfo) -> Self {
        Version {
            id,
            mod_time_ns: stamp,
            stamp,
            kind,
            size: 0,
            etag: String::new(),
            headers: vec![],
            user_meta: vec![],
            erasure,
            parts: vec![],
            data: DataLoc::None,
            extras: Extras::default(),
        }
    }
    /// The data directory this copy's shards live in, if any.
    pub fn dir(&self) -> Option<[u8; 16]> {
        match self.data {
            DataLoc::Dir(d) => Some(d),
            _ => None,
        }
    }
    /// The remote tier object holding this version's data, if any.
    pub fn remote(&self) -> Option<&RemoteLoc> {
        match &self.data {
            DataLoc::Remote(r) => Some(r),
            _ => None,
        }
    }
    /// Plain size of a part of this version (stored sizes of encrypted
    /// versions are their sealed sizes).
    pub fn plain_part_size(&self, part: &PartInfo) -> u64 {
        match &self.extras.encryption {
            Some(e) => e.plain_len(part.size).unwrap_or(0),
            None => part.size,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// True when two drives' copies describe the same version (the shard
    /// index and inline bytes differ per drive by design).
    pub fn same_version(&self, other: &Version) -> bool {
        self.id == other.id
            && self.mod_time_ns == other.mod_time_ns
            && self.stamp == other.stamp
            && self.kind == other.kind
            && self.size == other.size
            && self.etag == other.etag
            && std::mem::discriminant(&self.data) == std::mem::discriminant(&other.data)
            && match (&self.data, &other.data) {
                (DataLoc::Dir(a), DataLoc::Dir(b)) => a == b,
                (DataLoc::Remote(a), DataLoc::Remote(b)) => a == b,
                _ => true,
            }
    }
}

/// Every entry of one key on one drive, newest `stamp` first: the versions
/// of the key, and for a while after a change also the entries it replaced
/// and tombstones of removed versions (see `object::resolve`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectRecord {
    pub versions: Vec<Version>,
}

impl ObjectRecord {
    /// Adds an entry in stamp order (an equal stamp goes after the present
    /// ones, keeping decode order stable).
    pub fn add(&mut self, v: Version) {
        let pos = self
            .versions
            .iter()
            .position(|x| x.stamp < v.stamp)
            .unwrap_or(self.versions.len());
        self.versions.insert(pos, v);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.raw(&OBJECT_MAGIC);
        let sealed = self.versions.iter().any(|v| v.extras.encryption.is_some());
        let remote = self.versions.iter().any(|v| v.remote().is_some());
        w.u16(if remote {
            FORMAT_VERSION_5
        } else if sealed {
            FORMAT_VERSION_4
        } else {
            FORMAT_VERSION_3
        });
        w.u32(self.versions.len() as u32);
        for v in &self.versions {
            encode_version(&mut w, v);
        }
        codec::seal(&mut w);
        w.buf
    }

    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let body = codec::unseal(buf)?;
        let mut r = Reader::new(body);
        let format = header(&mut r, OBJECT_MAGIC, FORMAT_VERSION_5)?;
        let n = r.count(40)?;
        let mut versions = Vec::with_capacity(n);
        for _ in 0..n {
            versions.push(decode_version(&mut r, format)?);
        }
        if !r.is_empty() {
            return Err(DecodeError::Invalid("trailing bytes"));
        }
        Ok(Self { versions })
    }
}

/// Checks the magic and returns the format version (1 to `newest`).
fn header(r: &mut Reader<'_>, magic: [u8; 4], newest: u16) -> Result<u16, DecodeError> {
    if r.array::<4>()? != magic {
        return Err(DecodeError::Magic);
    }
    match r.u16()? {
        v @ 1.. if v <= newest => Ok(v),
        v => Err(DecodeError::Version(v)),
    }
}

/// A list of name/value pairs on its own (bucket settings such as tags),
/// with a CRC32C seal.
pub fn encode_pair_list(pairs: &[(String, String)]) -> Vec<u8> {
    let mut w = Writer::default();
    encode_pairs(&mut w, pairs);
    codec::seal(&mut w);
    w.buf
}

pub fn decode_pair_list(buf: &[u8]) -> Result<Vec<(String, String)>, DecodeError> {
    let mut r = Reader::new(codec::unseal(buf)?);
    let pairs = decode_pairs(&mut r)?;
    if !r.is_empty() {
        return Err(DecodeError::Invalid("trailing bytes"));
    }
    Ok(pairs)
}

fn encode_pairs(w: &mut Writer, pairs: &[(String, String)]) {
    w.u32(pairs.len() as u32);
    for (k, v) in pairs {
        w.str(k);
        w.str(v);
    }
}

fn decode_pairs(r: &mut Reader<'_>) -> Result<Vec<(String, String)>, DecodeError> {
    let n = r.count(8)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push((r.string()?, r.string()?));
    }
    Ok(out)
}

fn encode_erasure(w: &mut Writer, e: &ErasureInfo) {
    w.u8(e.data);
    w.u8(e.parity);
    w.u8(e.shard_index);
    w.u8(e.hash_algo);
    w.u32(e.block_size);
}

fn decode_erasure(r: &mut Reader<'_>) -> Result<ErasureInfo, DecodeError> {
    let e = ErasureInfo {
        data: r.u8()?,
        parity: r.u8()?,
        shard_index: r.u8()?,
        hash_algo: r.u8()?,
        block_size: r.u32()?,
    };
    if e.data == 0
        || e.block_size == 0
        || usize::from(e.shard_index) >= usize::from(e.data) + usize::from(e.parity)
    {
        return Err(DecodeError::Invalid("erasure layout"));
    }
    Ok(e)
}

fn encode_version(w: &mut Writer, v: &Version) {
    w.raw(&v.id.0);
    w.i64(v.mod_time_ns);
    w.i64(v.stamp);
    w.u8(v.kind as u8);
    w.u64(v.size);
    w.str(&v.etag);
    encode_pairs(w, &v.headers);
    encode_pairs(w, &v.user_meta);
    encode_erasure(w, &v.erasure);
    w.u32(v.parts.len() as u32);
    for p in &v.parts {
        w.u32(p.number);
        w.u64(p.size);
        w.str(&p.etag);
        w.u64(p.tag);
    }
    match &v.data {
        DataLoc::None => w.u8(0),
        DataLoc::Inline(b) => {
            w.u8(1);
            w.bytes(b);
        }
        DataLoc::Dir(d) => {
            w.u8(2);
            w.raw(d);
        }
        DataLoc::Remote(loc) => {
            w.u8(3);
            w.str(&loc.tier);
            w.raw(&loc.id);
        }
    }
    v.extras.encode(w);
}

fn decode_version(r: &mut Reader<'_>, format: u16) -> Result<Version, DecodeError> {
    let id = VersionId(r.array()?);
    let mod_time_ns = r.i64()?;
    // Before format 3 a record held one entry per version, written with it.
    let stamp = if format >= 3 { r.i64()? } else { mod_time_ns };
    let kind = match r.u8()? {
        1 => VersionKind::Object,
        2 => VersionKind::DeleteMarker,
        3 if format >= 3 => VersionKind::Tombstone,
        _ => return Err(DecodeError::Invalid("version kind")),
    };
    let size = r.u64()?;
    let etag = r.string()?;
    let headers = decode_pairs(r)?;
    let user_meta = decode_pairs(r)?;
    let erasure = decode_erasure(r)?;
    let np = r.count(16)?;
    let mut parts = Vec::with_capacity(np);
    for _ in 0..np {
        parts.push(PartInfo {
            number: r.u32()?,
            size: r.u64()?,
            etag: r.string()?,
            tag: if format >= 3 { r.u64()? } else { 0 },
        });
    }
    let data = match r.u8()? {
        0 => DataLoc::None,
        1 => DataLoc::Inline(r.bytes()?.to_vec()),
        2 => DataLoc::Dir(r.array()?),
        3 if format >= FORMAT_VERSION_5 => DataLoc::Remote(RemoteLoc {
            tier: r.string()?,
            id: r.array()?,
        }),
        _ => return Err(DecodeError::Invalid("data location")),
    };
    let extras = if format >= 2 {
        Extras::decode(r, format)?
    } else {
        Extras::default()
    };
    Ok(Version {
        id,
        mod_time_ns,
        stamp,
        kind,
        size,
        etag,
        headers,
        user_meta,
        erasure,
        parts,
        data,
        extras,
    })
}

/// A multipart upload in progress, as each drive of its set records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    pub upload_id: [u8; 16],
    pub initiated_ns: i64,
    pub headers: Vec<(String, String)>,
    pub user_meta: Vec<(String, String)>,
    pub erasure: ErasureInfo,
    /// Extras the completed object will carry (its tags).
    pub extras: Extras,
    /// Set in the same commit as the version the upload became (format 3):
    /// an upload that read quorum of drives mark completed is gone, even
    /// after its version is replaced, until its records are cleaned up.
    pub completed: bool,
}

impl UploadRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.raw(&UPLOAD_MAGIC);
        w.u16(if self.extras.encryption.is_some() {
            FORMAT_VERSION_4
        } else {
            FORMAT_VERSION_3
        });
        w.raw(&self.upload_id);
        w.i64(self.initiated_ns);
        encode_pairs(&mut w, &self.headers);
        encode_pairs(&mut w, &self.user_meta);
        encode_erasure(&mut w, &self.erasure);
        self.extras.encode(&mut w);
        w.u8(u8::from(self.completed));
        codec::seal(&mut w);
        w.buf
    }

    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(codec::unseal(buf)?);
        let format = header(&mut r, UPLOAD_MAGIC, FORMAT_VERSION_4)?;
        let rec = Self {
            upload_id: r.array()?,
            initiated_ns: r.i64()?,
            headers: decode_pairs(&mut r)?,
            user_meta: decode_pairs(&mut r)?,
            erasure: decode_erasure(&mut r)?,
            extras: if format >= 2 {
                Extras::decode(&mut r, format)?
            } else {
                Extras::default()
            },
            completed: match if format >= 3 { r.u8()? } else { 0 } {
                0 => false,
                1 => true,
                _ => return Err(DecodeError::Invalid("upload completed")),
            },
        };
        if !r.is_empty() {
            return Err(DecodeError::Invalid("trailing bytes"));
        }
        Ok(rec)
    }
}

/// One uploaded part of a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRecord {
    pub number: u32,
    pub size: u64,
    pub etag: String,
    pub mod_time_ns: i64,
    /// The part's checksum in the upload's algorithm (format version 2).
    pub checksum: Option<ChecksumRecord>,
    /// Tag of the part's shard file (format version 3; 0 before).
    pub tag: u64,
}

impl PartRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.raw(&PART_MAGIC);
        w.u16(FORMAT_VERSION_3);
        w.u32(self.number);
        w.u64(self.size);
        w.str(&self.etag);
        w.i64(self.mod_time_ns);
        match &self.checksum {
            None => w.u8(0),
            Some(c) => {
                w.u8(1);
                c.encode(&mut w);
            }
        }
        w.u64(self.tag);
        codec::seal(&mut w);
        w.buf
    }

    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(codec::unseal(buf)?);
        let format = header(&mut r, PART_MAGIC, FORMAT_VERSION_3)?;
        let rec = Self {
            number: r.u32()?,
            size: r.u64()?,
            etag: r.string()?,
            mod_time_ns: r.i64()?,
            checksum: match (format, if format >= 2 { r.u8()? } else { 0 }) {
                (_, 0) => None,
                (_, 1) => Some(ChecksumRecord::decode(&mut r)?),
                _ => return Err(DecodeError::Invalid("part checksum")),
            },
            tag: if format >= 3 { r.u64()? } else { 0 },
        };
        if !r.is_empty() {
            return Err(DecodeError::Invalid("trailing bytes"));
        }
        Ok(rec)
    }
}

/// Versioning state of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Versioning {
    #[default]
    Unversioned = 0,
    Enabled = 1,
    Suspended = 2,
}

/// A bucket, as every drive records it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BucketRecord {
    pub created_ns: i64,
    pub versioning: Versioning,
    /// Bucket settings by name (`tagging`, `policy`, ...), each in the
    /// encoding its owner in the object layer chose (format version 2).
    pub settings: std::collections::BTreeMap<String, Vec<u8>>,
}

impl BucketRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.raw(&BUCKET_MAGIC);
        w.u16(FORMAT_VERSION_2);
        w.i64(self.created_ns);
        w.u8(self.versioning as u8);
        w.u32(self.settings.len() as u32);
        for (k, v) in &self.settings {
            w.str(k);
            w.bytes(v);
        }
        codec::seal(&mut w);
        w.buf
    }

    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(codec::unseal(buf)?);
        let format = header(&mut r, BUCKET_MAGIC, FORMAT_VERSION_2)?;
        let created_ns = r.i64()?;
        let versioning = match r.u8()? {
            0 => Versioning::Unversioned,
            1 => Versioning::Enabled,
            2 => Versioning::Suspended,
            _ => return Err(DecodeError::Invalid("versioning")),
        };
        let mut settings = std::collections::BTreeMap::new();
        if format >= 2 {
            let n = r.count(8)?;
            for _ in 0..n {
                let k = r.string()?;
                settings.insert(k, r.bytes()?.to_vec());
            }
        }
        if !r.is_empty() {
            return Err(DecodeError::Invalid("trailing bytes"));
        }
        Ok(Self {
            created_ns,
            versioning,
            settings,
        })
    }
}

#[cfg(test)]
mod tests;
