//! The wire form of [`Drive`](super::Drive) calls between nodes, shared by
//! the client ([`super::remote`]) and the server (`server::node`).
//!
//! A call is an HTTP/2 `POST /_strata/node/v1/<op>`. Its small arguments
//! (drive path, keys, ids) travel hex-encoded in the `x-strata-args`
//! header, its payload (commit ops, shard bytes, a format) in the body,
//! streamed for shard writes. A success is `200` with the result in the
//! body; a drive error is `409` with `x-strata-error: <code>` and the
//! message as the body. Every request carries `x-strata-node-auth`: a
//! timestamp and an HMAC-SHA256 over method, path, timestamp and
//! arguments, keyed by a key derived from the root secret, checked within
//! [`AUTH_SKEW`].

use super::{DataDir, DriveError, DriveResult, Entries, KeyRange, Packed, RecordOp, ShardFile, Table};
use crate::meta::codec::{DecodeError, Reader, Writer};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Path prefix of node calls.
pub const PREFIX: &str = "/_strata/node/v1/";
pub const ARGS_HEADER: &str = "x-strata-args";
pub const AUTH_HEADER: &str = "x-strata-node-auth";
pub const ERROR_HEADER: &str = "x-strata-error";
/// Largest clock difference between nodes that authentication accepts.
pub const AUTH_SKEW: Duration = Duration::from_secs(300);

/// The calls, by their path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Health,
    ReadFormat,
    WriteFormat,
    Get,
    Scan,
    ScanSummaries,
    Commit,
    CreateShard,
    ReadShard,
    RemovePart,
    RemoveDataDir,
    LinkData,
    SyncData,
    DataDirs,
    RemoveFile,
    Space,
}

const OPS: &[(Op, &str)] = &[
    (Op::Health, "health"),
    (Op::ReadFormat, "read-format"),
    (Op::WriteFormat, "write-format"),
    (Op::Get, "get"),
    (Op::Scan, "scan"),
    (Op::ScanSummaries, "scan-summaries"),
    (Op::Commit, "commit"),
    (Op::CreateShard, "create-shard"),
    (Op::ReadShard, "read-shard"),
    (Op::RemovePart, "remove-part"),
    (Op::RemoveDataDir, "remove-data-dir"),
    (Op::LinkData, "link-data"),
    (Op::SyncData, "sync-data"),
    (Op::DataDirs, "data-dirs"),
    (Op::RemoveFile, "remove-file"),
    (Op::Space, "space"),
];

impl Op {
    pub fn name(self) -> &'static str {
        OPS.iter().find(|(o, _)| *o == self).map_or("", |(_, n)| n)
    }

    pub fn parse(s: &str) -> Option<Self> {
        OPS.iter().find(|(_, n)| *n == s).map(|(o, _)| *o)
    }
}

/// The key node requests are signed with, derived from the root secret
/// (so the secret itself never crosses the network).
#[derive(Clone)]
pub struct NodeKey([u8; 32]);

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeKey(..)")
    }
}

type HmacSha256 = Hmac<Sha256>;

impl NodeKey {
    pub fn derive(root_secret: &str) -> Self {
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(root_secret.as_bytes()).expect("any key length");
        m.update(b"strata node-to-node v1");
        Self(m.finalize().into_bytes().into())
    }

    fn mac(&self, secs: u64, op: &str, args: &str) -> HmacSha256 {
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(&self.0).expect("any key length");
        m.update(format!("POST\n{PREFIX}{op}\n{secs}\n{args}").as_bytes());
        m
    }

    /// The `x-strata-node-auth` value for a call made now.
    pub fn sign(&self, op: &str, args: &str) -> String {
        let secs = unix_secs(SystemTime::now());
        format!(
            "{secs}:{}",
            hex::encode(self.mac(secs, op, args).finalize().into_bytes())
        )
    }

    /// Checks an `x-strata-node-auth` value (constant-time comparison).
    pub fn verify(&self, header: &str, op: &str, args: &str) -> bool {
        let Some((secs, sig)) = header.split_once(':') else {
            return false;
        };
        let (Ok(secs), Ok(sig)) = (secs.parse::<u64>(), hex::decode(sig)) else {
            return false;
        };
        if unix_secs(SystemTime::now()).abs_diff(secs) > AUTH_SKEW.as_secs() {
            return false;
        }
        self.mac(secs, op, args).verify_slice(&sig).is_ok()
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Error codes of the `x-strata-error` header.
pub fn error_code(e: &DriveError) -> u8 {
    match e {
        DriveError::NotFound => 1,
        DriveError::Full => 2,
        DriveError::Offline => 3,
        DriveError::Timeout => 4,
        DriveError::Conflict => 5,
        DriveError::Io(_) => 6,
        DriveError::Index(_) => 7,
        DriveError::Corrupt(_) => 8,
    }
}

/// The error a code and message stand for.
pub fn error_of(code: u8, msg: String) -> DriveError {
    match code {
        1 => DriveError::NotFound,
        2 => DriveError::Full,
        4 => DriveError::Timeout,
        5 => DriveError::Conflict,
        6 => DriveError::Io(std::io::Error::other(msg)),
        7 => DriveError::Index(msg),
        8 => DriveError::Corrupt(msg),
        _ => DriveError::Offline,
    }
}

fn table_code(t: Table) -> u8 {
    match t {
        Table::Buckets => 0,
        Table::Objects => 1,
        Table::Uploads => 2,
        Table::Parts => 3,
        Table::Usage => 4,
        Table::Config => 5,
    }
}

pub fn table_of(c: u8) -> Result<Table, DecodeError> {
    Ok(match c {
        0 => Table::Buckets,
        1 => Table::Objects,
        2 => Table::Uploads,
        3 => Table::Parts,
        4 => Table::Usage,
        5 => Table::Config,
        _ => return Err(DecodeError::Invalid("table")),
    })
}

/// Arguments, written with [`Writer`] and read back with [`Reader`].
pub fn args(f: impl FnOnce(&mut Writer)) -> String {
    let mut w = Writer::default();
    f(&mut w);
    hex::encode(w.buf)
}

pub fn put_table(w: &mut Writer, t: Table) {
    w.u8(table_code(t));
}

pub fn put_file(w: &mut Writer, f: ShardFile) {
    w.u32(f.part);
    w.u64(f.tag);
}

pub fn read_file(r: &mut Reader<'_>) -> Result<ShardFile, DecodeError> {
    Ok(ShardFile::new(r.u32()?, r.u64()?))
}

pub fn encode_ops(ops: &[RecordOp]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(ops.len() as u32);
    for op in ops {
        match op {
            RecordOp::Put { table, key, value } => {
                w.u8(0);
                put_table(&mut w, *table);
                w.bytes(key);
                w.bytes(value);
            }
            RecordOp::Delete { table, key } => {
                w.u8(1);
                put_table(&mut w, *table);
                w.bytes(key);
            }
            RecordOp::Check { table, key, hash } => {
                w.u8(2);
                put_table(&mut w, *table);
                w.bytes(key);
                put_opt_u64(&mut w, *hash);
            }
            RecordOp::Add { table, key, delta } => {
                w.u8(3);
                put_table(&mut w, *table);
                w.bytes(key);
                w.i64(delta[0]);
                w.i64(delta[1]);
            }
        }
    }
    w.buf
}

pub fn decode_ops(b: &[u8]) -> Result<Vec<RecordOp>, DecodeError> {
    let mut r = Reader::new(b);
    let n = r.count(6)?;
    let mut ops = Vec::with_capacity(n);
    for _ in 0..n {
        let kind = r.u8()?;
        let table = table_of(r.u8()?)?;
        let key = r.bytes()?.to_vec();
        ops.push(match kind {
            0 => RecordOp::Put {
                table,
                key,
                value: r.bytes()?.to_vec(),
            },
            1 => RecordOp::Delete { table, key },
            2 => RecordOp::Check {
                table,
                key,
                hash: read_opt_u64(&mut r)?,
            },
            3 => RecordOp::Add {
                table,
                key,
                delta: [r.i64()?, r.i64()?],
            },
            _ => return Err(DecodeError::Invalid("record op")),
        });
    }
    Ok(ops)
}

fn put_opt_u64(w: &mut Writer, v: Option<u64>) {
    match v {
        Some(h) => {
            w.u8(1);
            w.u64(h);
        }
        None => w.u8(0),
    }
}

fn read_opt_u64(r: &mut Reader<'_>) -> Result<Option<u64>, DecodeError> {
    Ok(match r.u8()? {
        0 => None,
        _ => Some(r.u64()?),
    })
}

/// A list of optional values (a commit's previous values, a `get`).
pub fn encode_values(vals: &[Option<Vec<u8>>]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(vals.len() as u32);
    for v in vals {
        match v {
            Some(v) => {
                w.u8(1);
                w.bytes(v);
            }
            None => w.u8(0),
        }
    }
    w.buf
}

pub fn decode_values(b: &[u8]) -> Result<Vec<Option<Vec<u8>>>, DecodeError> {
    let mut r = Reader::new(b);
    let n = r.count(1)?;
    (0..n)
        .map(|_| {
            Ok(match r.u8()? {
                0 => None,
                _ => Some(r.bytes()?.to_vec()),
            })
        })
        .collect()
}

pub fn encode_entries(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let pairs = entries.iter().map(|(k, v)| (k.as_slice(), v.as_slice()));
    encode_pairs(entries.len(), pairs)
}

/// A count, then each key and value as `bytes`.
fn encode_pairs<'a>(n: usize, pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(n as u32);
    for (k, v) in pairs {
        w.bytes(k);
        w.bytes(v);
    }
    w.buf
}

pub fn decode_entries(b: &[u8]) -> Result<Entries, DecodeError> {
    let mut r = Reader::new(b);
    let n = r.count(8)?;
    (0..n)
        .map(|_| Ok((r.bytes()?.to_vec(), r.bytes()?.to_vec())))
        .collect()
}

/// The key range of a scan call: `start`, whether it is exclusive, `end`,
/// and the most entries wanted.
pub fn put_range(w: &mut Writer, range: KeyRange) {
    w.bytes(range.start);
    w.u8(range.exclusive_start as u8);
    w.bytes(range.end);
    w.u64(range.limit as u64);
}

/// What [`put_range`] wrote.
pub fn read_range<'a>(r: &mut Reader<'a>) -> Result<KeyRange<'a>, DecodeError> {
    let (start, exclusive_start, end) = (r.bytes()?, r.u8()? != 0, r.bytes()?);
    let limit = usize::try_from(r.u64()?).unwrap_or(usize::MAX);
    Ok(KeyRange {
        start,
        exclusive_start,
        end,
        limit,
    })
}

/// [`Packed`] entries, in the form of [`encode_entries`].
pub fn encode_packed(entries: &Packed) -> Vec<u8> {
    encode_pairs(entries.len(), entries.iter())
}

pub fn decode_packed(b: &[u8]) -> Result<Packed, DecodeError> {
    let mut r = Reader::new(b);
    let n = r.count(8)?;
    let mut out = Packed::with_capacity(n, b.len());
    for _ in 0..n {
        out.push(r.bytes()?, r.bytes()?);
    }
    Ok(out)
}

fn put_time(w: &mut Writer, t: SystemTime) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    w.u64(d.as_secs());
    w.u32(d.subsec_nanos());
}

fn read_time(r: &mut Reader<'_>) -> Result<SystemTime, DecodeError> {
    let (s, n) = (r.u64()?, r.u32()?);
    UNIX_EPOCH
        .checked_add(Duration::new(s, n.min(999_999_999)))
        .ok_or(DecodeError::Invalid("time"))
}

pub fn encode_dirs(dirs: &[DataDir]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(dirs.len() as u32);
    for d in dirs {
        w.raw(&d.id);
        put_time(&mut w, d.modified);
        w.u32(d.files.len() as u32);
        for (name, t) in &d.files {
            w.str(name);
            put_time(&mut w, *t);
        }
    }
    w.buf
}

pub fn decode_dirs(b: &[u8]) -> Result<Vec<DataDir>, DecodeError> {
    let mut r = Reader::new(b);
    let n = r.count(32)?;
    (0..n)
        .map(|_| {
            let id = r.array::<16>()?;
            let modified = read_time(&mut r)?;
            let m = r.count(16)?;
            let files = (0..m)
                .map(|_| Ok((r.string()?, read_time(&mut r)?)))
                .collect::<Result<_, DecodeError>>()?;
            Ok(DataDir { id, modified, files })
        })
        .collect()
}

/// A malformed message from a peer.
pub fn malformed(e: DecodeError) -> DriveError {
    DriveError::Corrupt(format!("malformed node message: {e}"))
}

/// Decodes hex arguments.
pub fn unhex(args: &str) -> DriveResult<Vec<u8>> {
    hex::decode(args).map_err(|_| DriveError::Corrupt("malformed node arguments".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let ops = vec![
            RecordOp::Put {
                table: Table::Objects,
                key: b"b\0k".to_vec(),
                value: vec![1, 2, 3],
            },
            RecordOp::Delete {
                table: Table::Parts,
                key: vec![9; 20],
            },
            RecordOp::Check {
                table: Table::Buckets,
                key: b"b".to_vec(),
                hash: Some(7),
            },
            RecordOp::Check {
                table: Table::Uploads,
                key: vec![],
                hash: None,
            },
            RecordOp::Add {
                table: Table::Usage,
                key: b"b".to_vec(),
                delta: [-5, 1],
            },
        ];
        let back = decode_ops(&encode_ops(&ops)).unwrap();
        assert_eq!(format!("{ops:?}"), format!("{back:?}"));
        let vals = vec![None, Some(vec![]), Some(b"x".to_vec())];
        assert_eq!(decode_values(&encode_values(&vals)).unwrap(), vals);
        let dirs = vec![DataDir {
            id: [3; 16],
            modified: UNIX_EPOCH + Duration::new(5, 6),
            files: vec![("part.1".into(), UNIX_EPOCH + Duration::new(7, 8))],
        }];
        let d = decode_dirs(&encode_dirs(&dirs)).unwrap();
        assert_eq!(
            (d[0].id, d[0].modified, d[0].files.clone()),
            (dirs[0].id, dirs[0].modified, dirs[0].files.clone())
        );
        // Hostile input is an error, never a panic or a huge allocation.
        assert!(decode_ops(&[0xff, 0xff, 0xff, 0xff]).is_err());
        let mut far = vec![1, 0, 0, 0];
        far.extend_from_slice(&[0; 16]);
        far.extend_from_slice(&u64::MAX.to_le_bytes());
        far.extend_from_slice(&[0; 8]);
        assert!(decode_dirs(&far).is_err());
        assert!(decode_entries(&[1, 0, 0, 0, 5]).is_err());
        assert!(decode_packed(&[1, 0, 0, 0, 5]).is_err());
        // Packed and plain entries share a wire form.
        let entries = vec![(b"b\0a".to_vec(), vec![1, 2]), (b"b\0b".to_vec(), vec![])];
        let packed = Packed::from(entries.clone());
        assert_eq!(encode_packed(&packed), encode_entries(&entries));
        let back = decode_packed(&encode_entries(&entries)).unwrap();
        assert_eq!(back, packed);
        assert_eq!(back.get(1), Some((&b"b\0b"[..], &[][..])));
        assert_eq!(back.last_key(), Some(&b"b\0b"[..]));
    }

    #[test]
    fn signatures_bind_the_call_and_the_key() {
        let k = NodeKey::derive("secret-one");
        let a = args(|w| w.str("/d1"));
        let s = k.sign("get", &a);
        assert!(k.verify(&s, "get", &a));
        assert!(!k.verify(&s, "commit", &a));
        assert!(!k.verify(&s, "get", &args(|w| w.str("/d2"))));
        assert!(!NodeKey::derive("secret-two").verify(&s, "get", &a));
        let old = format!("1:{}", s.split_once(':').unwrap().1);
        assert!(!k.verify(&old, "get", &a));
        assert!(!k.verify("garbage", "get", &a));
    }
}
