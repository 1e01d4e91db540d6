//! What a volume is: its id (`bucket`, or `bucket/prefix` for a volume in
//! a shared bucket), the bucket name derived from a CSI volume name, the
//! capabilities the driver serves (filesystem mounts in every access
//! mode; no raw block devices), and the credentials taken from CSI
//! secrets.
//!
//! With a `volumeKey` in the secrets, each volume has credentials of its
//! own: a service account made by the controller, narrowed to the
//! volume's bucket (or prefix), whose key and secret are derived from
//! `volumeKey` and the volume id ([`volume_credentials`]). The controller
//! and the node derive the same pair, so no credential travels through
//! the volume's context, creating a volume again is harmless, and a node
//! mounts each volume with credentials that reach that volume only.

use crate::proto::volume_capability::AccessType;
use crate::proto::{CapacityRange, VolumeCapability};
use std::collections::HashMap;
use tonic::Status;

/// Capacity of a volume whose request names none.
pub const DEFAULT_CAPACITY: u64 = 1 << 30;

/// Where a volume's data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeId {
    pub bucket: String,
    /// Empty for a volume that is a whole bucket, else ending in `/`.
    pub prefix: String,
}

impl VolumeId {
    pub fn parse(id: &str) -> Result<VolumeId, Status> {
        if id.is_empty() {
            return Err(Status::invalid_argument("volume_id is required"));
        }
        let (bucket, prefix) = match id.split_once('/') {
            Some((b, p)) if !p.is_empty() => (b, format!("{}/", p.trim_end_matches('/'))),
            Some((b, _)) => (b, String::new()),
            None => (id, String::new()),
        };
        if !valid_bucket(bucket) {
            return Err(Status::not_found(format!("no volume {id}: not a bucket name")));
        }
        Ok(VolumeId {
            bucket: bucket.to_owned(),
            prefix,
        })
    }

    pub fn id(&self) -> String {
        if self.prefix.is_empty() {
            self.bucket.clone()
        } else {
            format!("{}/{}", self.bucket, self.prefix.trim_end_matches('/'))
        }
    }

    /// `bucket` or `bucket/prefix` as fuse-mount takes it.
    pub fn mount_source(&self) -> String {
        self.id()
    }
}

/// S3 bucket naming: 3-63 characters of lower-case letters, digits, `.`
/// and `-`, starting and ending with a letter or digit.
pub fn valid_bucket(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        && b.as_bytes()[0].is_ascii_alphanumeric()
        && b.as_bytes()[b.len() - 1].is_ascii_alphanumeric()
        && !b.contains("..")
}

/// The bucket (or prefix) name for the CSI volume `name`: the name made
/// valid (lower case, other characters as `-`), cut to fit, and followed by
/// a hash of the original name whenever it had to change, so that two
/// names never map to one bucket. Kubernetes names (`pvc-<uuid>`) are kept
/// as they are.
pub fn bucket_for(name: &str) -> String {
    let mut b: String = name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-') => c,
            _ => '-',
        })
        .collect();
    b = b.trim_matches('-').to_owned();
    if b == name && valid_bucket(&b) {
        return b;
    }
    let hash = fnv1a(name.as_bytes());
    b.truncate(63 - 17);
    let b = b.trim_end_matches('-');
    if b.is_empty() {
        format!("vol-{hash:016x}")
    } else {
        format!("{b}-{hash:016x}")
    }
}

/// FNV-1a, a short stable hash for names (not for security).
pub(crate) fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Refuses capabilities the driver cannot serve: block access, or a
/// capability without an access mode.
pub fn check_capabilities(caps: &[VolumeCapability]) -> Result<(), Status> {
    if caps.is_empty() {
        return Err(Status::invalid_argument("volume_capabilities are required"));
    }
    for c in caps {
        check_capability(c)?;
    }
    Ok(())
}

pub fn check_capability(c: &VolumeCapability) -> Result<(), Status> {
    match c.access_type {
        Some(AccessType::Mount(_)) => {}
        Some(AccessType::Block(_)) => {
            return Err(Status::invalid_argument(
                "block volumes are not supported: Strata volumes are filesystems",
            ));
        }
        None => {
            return Err(Status::invalid_argument(
                "volume capability without an access type",
            ));
        }
    }
    match c.access_mode.as_ref().map(|m| m.mode) {
        Some(m) if m > 0 => Ok(()),
        _ => Err(Status::invalid_argument(
            "volume capability without an access mode",
        )),
    }
}

/// The capacity to give a volume: the required bytes (at least), within
/// the limit.
pub fn capacity(range: Option<&CapacityRange>) -> Result<u64, Status> {
    let (required, limit) = range.map_or((0, 0), |r| (r.required_bytes, r.limit_bytes));
    if required < 0 || limit < 0 {
        return Err(Status::invalid_argument("capacity must not be negative"));
    }
    let (required, limit) = (required as u64, limit as u64);
    if limit > 0 && required > limit {
        return Err(Status::out_of_range("required_bytes exceeds limit_bytes"));
    }
    Ok(match (required, limit) {
        (0, 0) => DEFAULT_CAPACITY,
        (0, l) => l.min(DEFAULT_CAPACITY),
        (r, _) => r,
    })
}

/// The CSI secret from which each volume's credentials are derived.
pub const VOLUME_KEY: &str = "volumeKey";

/// The `volumeKey` of CSI secrets, if any (at least 16 characters).
pub fn volume_key(secrets: &HashMap<String, String>) -> Result<Option<&str>, Status> {
    match secrets.get(VOLUME_KEY).map(String::as_str) {
        None | Some("") => Ok(None),
        Some(k) if k.len() >= 16 => Ok(Some(k)),
        Some(_) => Err(Status::invalid_argument(
            "volumeKey must be at least 16 characters (32 random bytes, base64, are right)",
        )),
    }
}

/// The credentials of volume `id`: an access key (`SKV` and 17 letters
/// and digits) and a 40-character secret, both HMAC-SHA256 of the id
/// under `volume_key`.
pub fn volume_credentials(volume_key: &str, id: &str) -> (String, String) {
    use hmac::{Hmac, KeyInit, Mac};
    let mac = |label: &str| {
        let mut m =
            <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(volume_key.as_bytes()).expect("any key length");
        m.update(label.as_bytes());
        m.update(id.as_bytes());
        m.finalize().into_bytes()
    };
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const ANY: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let key: String = "SKV"
        .chars()
        .chain(
            mac("strata volume access key\0")
                .iter()
                .take(17)
                .map(|b| UPPER[usize::from(b % 32)] as char),
        )
        .collect();
    let secret: String = mac("strata volume secret key\0")
        .iter()
        .take(30)
        .flat_map(|b| {
            [
                ANY[usize::from(b >> 2)] as char,
                ANY[usize::from((b & 3) << 4 | b >> 4)] as char,
            ]
        })
        .take(40)
        .collect();
    (key, secret)
}

/// The policy of a volume's own service account: everything on the
/// volume's objects, listing only inside it, and the bucket's usage (for
/// `df`).
/// The default encryption a StorageClass asks for its volumes' buckets:
/// `encryption` (`AES256` for SSE-S3, `aws:kms` for SSE-KMS) and, with
/// `aws:kms`, the KMS key `kmsKeyId` (required: the volume's credentials
/// are granted that key only). `None` when the class asks for none.
pub fn encryption(params: &HashMap<String, String>) -> Result<Option<(String, Option<String>)>, Status> {
    let key = params.get("kmsKeyId").filter(|k| !k.is_empty());
    match (params.get("encryption").map(String::as_str), key) {
        (None, None) => Ok(None),
        (Some("AES256"), None) => Ok(Some(("AES256".into(), None))),
        (Some("aws:kms"), Some(k)) => Ok(Some(("aws:kms".into(), Some(k.clone())))),
        (Some("aws:kms"), None) => Err(Status::invalid_argument(
            "encryption aws:kms needs the parameter kmsKeyId (the KMS key the volume's data is sealed with)",
        )),
        (Some("AES256") | None, Some(_)) => {
            Err(Status::invalid_argument("kmsKeyId goes with encryption: aws:kms"))
        }
        (Some(other), _) => Err(Status::invalid_argument(format!(
            "encryption {other} is not offered: AES256 (SSE-S3) or aws:kms (SSE-KMS)"
        ))),
    }
}

/// Where a StorageClass sends its volumes' data as it ages:
/// `tierAfterDays` days after an object is written (or overwritten, for
/// the version it replaced), its data moves to the remote tier named by
/// `tierClass` (objd's storage class for the tier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiering {
    pub days: u32,
    pub class: String,
}

impl Tiering {
    /// The parameters' tiering; `None` when they ask for none.
    pub fn of(params: &HashMap<String, String>) -> Result<Option<Self>, Status> {
        match (params.get("tierAfterDays"), params.get("tierClass")) {
            (None, None) => Ok(None),
            (Some(d), Some(c)) if !c.is_empty() => {
                let days = d.parse::<u32>().map_err(|_| {
                    Status::invalid_argument(format!("tierAfterDays {d:?} is not a number of days"))
                })?;
                Ok(Some(Tiering {
                    days,
                    class: c.clone(),
                }))
            }
            _ => Err(Status::invalid_argument(
                "tierAfterDays and tierClass go together: the days after which data moves, and the tier it moves to",
            )),
        }
    }

    /// The bucket lifecycle configuration that does it (every object of
    /// the bucket, whatever its size).
    pub fn lifecycle_xml(&self) -> String {
        let class = strata_s3client::xml_escape(&self.class);
        format!(
            "<LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Rule>\
             <ID>strata-csi-tiering</ID><Status>Enabled</Status>\
             <Filter><ObjectSizeGreaterThan>0</ObjectSizeGreaterThan></Filter>\
             <Transition><Days>{days}</Days><StorageClass>{class}</StorageClass></Transition>\
             <NoncurrentVersionTransition><NoncurrentDays>{days}</NoncurrentDays>\
             <StorageClass>{class}</StorageClass></NoncurrentVersionTransition></Rule></LifecycleConfiguration>",
            days = self.days
        )
    }
}

pub fn volume_policy(id: &VolumeId, kms_key: Option<&str>) -> String {
    volume_policy_keys(id, kms_key, &[])
}

/// [`volume_policy`] that also lets the volume open data sealed under
/// `older` KMS keys (the keys of its encryption before a change).
pub fn volume_policy_keys(id: &VolumeId, kms_key: Option<&str>, older: &[String]) -> String {
    let bucket = format!("arn:aws:s3:::{}", id.bucket);
    let statements = if id.prefix.is_empty() {
        serde_json::json!([
            {"Effect": "Allow", "Action": "s3:*", "Resource": [bucket.clone(), format!("{bucket}/*")]},
        ])
    } else {
        serde_json::json!([
            {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:ListBucketMultipartUploads"], "Resource": bucket.clone(),
             "Condition": {"StringLike": {"s3:prefix": format!("{}*", id.prefix)}}},
            {"Effect": "Allow", "Action": "s3:*", "Resource": format!("{bucket}/{}*", id.prefix)},
        ])
    };
    let mut statements = statements.as_array().cloned().unwrap_or_default();
    statements
        .push(serde_json::json!({"Effect": "Allow", "Action": "admin:GetBucketUsage", "Resource": bucket}));
    if let Some(k) = kms_key {
        statements.push(
            serde_json::json!({"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": format!("{KMS_KEY_ARN}{k}")}),
        );
    }
    let older: Vec<String> = older
        .iter()
        .filter(|k| Some(k.as_str()) != kms_key)
        .map(|k| format!("{KMS_KEY_ARN}{k}"))
        .collect();
    if !older.is_empty() {
        statements.push(serde_json::json!({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": older}));
    }
    serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

const KMS_KEY_ARN: &str = "arn:aws:kms:::key/";

/// The KMS keys a volume policy lets the volume open data with.
pub fn policy_kms_keys(policy: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(policy) else {
        return Vec::new();
    };
    let mut keys: Vec<String> = v["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|st| match &st["Resource"] {
            serde_json::Value::Array(a) => a.clone(),
            r => vec![r.clone()],
        })
        .filter_map(|r| r.as_str()?.strip_prefix(KMS_KEY_ARN).map(str::to_owned))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Access and secret key from CSI secrets (`accessKey`, `secretKey`).
pub fn credentials(secrets: &HashMap<String, String>) -> Option<(String, String)> {
    match (secrets.get("accessKey"), secrets.get("secretKey")) {
        (Some(a), Some(s)) if !a.is_empty() && !s.is_empty() => Some((a.clone(), s.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_from_volume_names_are_valid_and_distinct() {
        let pvc = "pvc-6f1c2a9e-6a65-4c3b-9b1e-1d2f3a4b5c6d";
        assert_eq!(bucket_for(pvc), pvc);
        let names = [
            "PVC-Upper",
            "pvc-upper",
            "a_b",
            "a-b",
            "x",
            &"long-name-".repeat(10),
            "..",
            "ünïcode",
        ];
        let buckets: Vec<String> = names.iter().map(|n| bucket_for(n)).collect();
        for (n, b) in names.iter().zip(&buckets) {
            assert!(valid_bucket(b), "{n} -> {b}");
        }
        let mut unique = buckets.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), buckets.len(), "{buckets:?}");
    }

    #[test]
    fn a_changed_kms_key_keeps_the_older_ones_for_reading() {
        let id = VolumeId::parse("vol").unwrap();
        let first = volume_policy(&id, Some("tenant/a"));
        assert_eq!(policy_kms_keys(&first), vec!["tenant/a".to_owned()]);
        let second = volume_policy_keys(&id, Some("tenant/b"), &policy_kms_keys(&first));
        assert_eq!(
            policy_kms_keys(&second),
            vec!["tenant/a".to_owned(), "tenant/b".to_owned()]
        );
        let v: serde_json::Value = serde_json::from_str(&second).unwrap();
        let a = v["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Resource"][0] == "arn:aws:kms:::key/tenant/a")
            .unwrap();
        assert_eq!(a["Action"], "kms:Decrypt", "an older key only opens");
        // To SSE-S3: both keys still open what they sealed.
        let third = volume_policy_keys(&id, None, &policy_kms_keys(&second));
        assert_eq!(
            policy_kms_keys(&third),
            vec!["tenant/a".to_owned(), "tenant/b".to_owned()]
        );
        assert!(policy_kms_keys(&volume_policy(&id, None)).is_empty());
    }

    #[test]
    fn volume_credentials_are_stable_distinct_and_well_formed() {
        let (k1, s1) = volume_credentials("a-volume-key-of-32-characters!!", "pvc-1");
        assert_eq!((k1.len(), s1.len()), (20, 40));
        assert!(k1.starts_with("SKV") && k1.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        assert_eq!(
            volume_credentials("a-volume-key-of-32-characters!!", "pvc-1"),
            (k1.clone(), s1.clone())
        );
        let (k2, s2) = volume_credentials("a-volume-key-of-32-characters!!", "pvc-2");
        assert!(k1 != k2 && s1 != s2);
        assert_ne!(volume_credentials("another-volume-key-entirely!!", "pvc-1").0, k1);
        let short: HashMap<String, String> = [(VOLUME_KEY.to_owned(), "short".to_owned())].into();
        assert_eq!(
            volume_key(&short).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        assert_eq!(volume_key(&HashMap::new()).unwrap(), None);
    }

    #[test]
    fn volume_ids_and_capacities() {
        let v = VolumeId::parse("shared/team-a").unwrap();
        assert_eq!((v.bucket.as_str(), v.prefix.as_str()), ("shared", "team-a/"));
        assert_eq!(v.id(), "shared/team-a");
        assert_eq!(VolumeId::parse("whole").unwrap().prefix, "");
        assert_eq!(
            VolumeId::parse("").unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        assert_eq!(
            VolumeId::parse("No_Such").unwrap_err().code(),
            tonic::Code::NotFound
        );
        let r = |required_bytes, limit_bytes| CapacityRange {
            required_bytes,
            limit_bytes,
        };
        assert_eq!(capacity(None).unwrap(), DEFAULT_CAPACITY);
        assert_eq!(capacity(Some(&r(5, 0))).unwrap(), 5);
        assert_eq!(capacity(Some(&r(0, 7))).unwrap(), 7);
        assert_eq!(
            capacity(Some(&r(9, 7))).unwrap_err().code(),
            tonic::Code::OutOfRange
        );
        assert_eq!(
            capacity(Some(&r(-1, 0))).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }
}
