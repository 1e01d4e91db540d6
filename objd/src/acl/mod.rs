//! Access control lists, object ownership and public access blocks: the
//! S3 access settings older than IAM, as values. This module owns their
//! grammar (canned ACLs, `x-amz-grant-*` headers, the grants of an
//! `AccessControlPolicy` body), their stored encodings, what each grant
//! permits, and when a list counts as public. The S3 handlers parse and
//! answer with it; authorization asks it when no policy allowed a request.
//!
//! One deployment is one account, and the account owns every bucket and
//! object. Its canonical user id is derived from the account id. Grants
//! name the owner, or one of S3's groups: everyone (`AllUsers`), every
//! signed request (`AuthenticatedUsers`) and `LogDelivery` (kept and
//! shown, with no effect here). A grant to the owner does not reach the
//! account's IAM users: what they may do is their policies' business, as
//! in S3.

#[cfg(test)]
mod tests;

use crate::meta::codec::{Reader, Writer};
use sha2::Digest;

/// The URI of the group of everyone, signed or not.
pub const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
/// The URI of the group of every signed request.
pub const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
/// The URI of S3's log delivery group.
pub const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

/// Why an ACL or an access setting cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// A grantee or canned ACL this server does not know.
    #[error("{0}")]
    InvalidArgument(String),
    /// A grant to an e-mail address (no account here has one).
    #[error("The e-mail address you provided does not match any account on record.")]
    UnresolvableEmail,
    /// A body that is not an ACL.
    #[error("The XML you provided was not well-formed or did not validate against our published schema.")]
    Malformed,
    /// A canned ACL and grants (headers or a body) in one request.
    #[error("{0}")]
    Conflicting(String),
    /// The bucket's ownership setting disables ACLs.
    #[error("The bucket does not allow ACLs")]
    NotSupported,
    /// BucketOwnerEnforced asked for a bucket whose ACL grants others.
    #[error("Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting")]
    InvalidWithOwnership,
    /// A public ACL or policy where a public access block forbids one.
    #[error("Access Denied")]
    Blocked,
    /// An ownership or public access block setting that is not one.
    #[error("{0}")]
    InvalidSetting(String),
}

pub type AclResult<T> = Result<T, AclError>;

/// What a grant permits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    Read = 1,
    Write = 2,
    ReadAcp = 3,
    WriteAcp = 4,
    FullControl = 5,
}

impl Permission {
    pub const ALL: [Permission; 5] = [
        Permission::Read,
        Permission::Write,
        Permission::ReadAcp,
        Permission::WriteAcp,
        Permission::FullControl,
    ];

    /// S3's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "READ",
            Permission::Write => "WRITE",
            Permission::ReadAcp => "READ_ACP",
            Permission::WriteAcp => "WRITE_ACP",
            Permission::FullControl => "FULL_CONTROL",
        }
    }

    pub fn parse(s: &str) -> AclResult<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or(AclError::Malformed)
    }

    fn from_code(c: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|p| *p as u8 == c)
    }

    /// Whether a grant of `self` includes `wanted`.
    fn covers(self, wanted: Permission) -> bool {
        self == wanted || self == Permission::FullControl
    }
}

/// Whom a grant is to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grantee {
    /// The account that owns the bucket or object.
    Owner = 1,
    AllUsers = 2,
    AuthenticatedUsers = 3,
    LogDelivery = 4,
}

impl Grantee {
    const ALL: [Grantee; 4] = [
        Grantee::Owner,
        Grantee::AllUsers,
        Grantee::AuthenticatedUsers,
        Grantee::LogDelivery,
    ];

    fn from_code(c: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|g| *g as u8 == c)
    }

    /// The group URI, for the groups.
    pub fn uri(self) -> Option<&'static str> {
        match self {
            Grantee::Owner => None,
            Grantee::AllUsers => Some(ALL_USERS),
            Grantee::AuthenticatedUsers => Some(AUTHENTICATED_USERS),
            Grantee::LogDelivery => Some(LOG_DELIVERY),
        }
    }

    fn is_public(self) -> bool {
        matches!(self, Grantee::AllUsers | Grantee::AuthenticatedUsers)
    }
}

/// How a grantee is named in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named<'a> {
    /// A canonical user id.
    Id(&'a str),
    /// A group URI.
    Uri(&'a str),
    Email(&'a str),
}

/// The account that owns everything: its canonical user id and display
/// name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub id: String,
    pub display_name: String,
}

impl Owner {
    /// The owner for the account `account` (its 12-digit id): a 64-digit
    /// canonical id derived from it, and the display name `strata`.
    pub fn of_account(account: &str) -> Self {
        let digest = sha2::Sha256::digest(format!("strata canonical user {account}").as_bytes());
        Owner {
            id: hex::encode(digest),
            display_name: "strata".into(),
        }
    }

    /// The grantee a request names.
    pub fn resolve(&self, named: Named<'_>) -> AclResult<Grantee> {
        match named {
            Named::Id(id) if id == self.id => Ok(Grantee::Owner),
            Named::Id(_) => Err(AclError::InvalidArgument("Invalid id".into())),
            Named::Uri(uri) => Grantee::ALL
                .into_iter()
                .find(|g| g.uri() == Some(uri))
                .ok_or_else(|| AclError::InvalidArgument("Invalid group uri".into())),
            Named::Email(_) => Err(AclError::UnresolvableEmail),
        }
    }
}

/// Who asks, as ACL grants tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    Anonymous,
    /// Any signed request.
    Authenticated,
}

/// An access control list: grants in the order given. The owner is
/// always the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    grants: Vec<(Grantee, Permission)>,
}

impl Default for Acl {
    /// `private`: the owner's full control.
    fn default() -> Self {
        Acl {
            grants: vec![(Grantee::Owner, Permission::FullControl)],
        }
    }
}

impl Acl {
    /// The list a canned ACL stands for (`bucket`: set on a bucket, where
    /// only the bucket names apply).
    pub fn canned(name: &str, bucket: bool) -> AclResult<Self> {
        use Grantee::*;
        use Permission::*;
        let mut grants = vec![(Owner, FullControl)];
        match name {
            "private" => {}
            "public-read" => grants.push((AllUsers, Read)),
            "public-read-write" => grants.extend([(AllUsers, Read), (AllUsers, Write)]),
            "authenticated-read" => grants.push((AuthenticatedUsers, Read)),
            "log-delivery-write" if bucket => {
                grants.extend([(LogDelivery, Write), (LogDelivery, ReadAcp)]);
            }
            // The bucket owner is the object owner, who has full control
            // already; there is no EC2 here to grant a read to.
            "bucket-owner-read" | "bucket-owner-full-control" | "aws-exec-read" if !bucket => {}
            _ => {
                return Err(AclError::InvalidArgument(format!(
                    "The canned ACL {name} is not valid here"
                )));
            }
        }
        Ok(Acl { grants })
    }

    /// The list of explicit grants; at least one.
    pub fn from_grants(grants: Vec<(Grantee, Permission)>) -> AclResult<Self> {
        if grants.is_empty() {
            return Err(AclError::Malformed);
        }
        Ok(Acl { grants })
    }

    /// The grants of `x-amz-grant-*` header values: each a comma-separated
    /// list of `id="..."`, `uri="..."` or `emailAddress="..."`.
    pub fn from_headers(owner: &Owner, headers: &[(Permission, &str)]) -> AclResult<Self> {
        let mut grants = Vec::new();
        for (permission, value) in headers {
            for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (kind, v) = item
                    .split_once('=')
                    .ok_or_else(|| AclError::InvalidArgument(format!("Invalid grant {item}")))?;
                let v = v.trim().trim_matches('"');
                let named = match kind.trim() {
                    "id" => Named::Id(v),
                    "uri" => Named::Uri(v),
                    "emailAddress" => Named::Email(v),
                    other => {
                        return Err(AclError::InvalidArgument(format!("Invalid grantee type {other}")));
                    }
                };
                grants.push((owner.resolve(named)?, *permission));
            }
        }
        Self::from_grants(grants)
    }

    pub fn grants(&self) -> &[(Grantee, Permission)] {
        &self.grants
    }

    /// Whether any grant is to everyone or to every signed request (what
    /// S3 calls a public ACL).
    pub fn is_public(&self) -> bool {
        self.grants.iter().any(|(g, _)| g.is_public())
    }

    /// Whether the list grants nothing but to the owner (what a bucket
    /// whose ownership setting disables ACLs still accepts).
    pub fn owner_only(&self) -> bool {
        self.grants.iter().all(|(g, _)| *g == Grantee::Owner)
    }

    /// Whether the list lets `who` do what `wanted` covers. Grants to the
    /// owner count for nobody here (the account's users have their
    /// policies); `ignore_public` disregards the public ones.
    pub fn allows(&self, who: Requester, wanted: Permission, ignore_public: bool) -> bool {
        self.grants.iter().any(|(g, p)| {
            let to = match g {
                Grantee::AllUsers => true,
                Grantee::AuthenticatedUsers => who == Requester::Authenticated,
                Grantee::Owner | Grantee::LogDelivery => false,
            };
            to && !(ignore_public && g.is_public()) && p.covers(wanted)
        })
    }

    /// The codes stored in a version record (empty for the default).
    pub fn to_codes(&self) -> Vec<(u8, u8)> {
        if *self == Self::default() {
            return Vec::new();
        }
        self.grants.iter().map(|(g, p)| (*g as u8, *p as u8)).collect()
    }

    /// The list a version record's codes stand for; codes this version
    /// does not know are skipped.
    pub fn from_codes(codes: &[(u8, u8)]) -> Self {
        let grants: Vec<_> = codes
            .iter()
            .filter_map(|(g, p)| Some((Grantee::from_code(*g)?, Permission::from_code(*p)?)))
            .collect();
        if grants.is_empty() {
            return Self::default();
        }
        Acl { grants }
    }

    /// The stored form of a bucket's list.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        let codes = self.to_codes();
        w.u32(codes.len() as u32);
        for (g, p) in codes {
            w.u8(g);
            w.u8(p);
        }
        w.buf
    }

    /// A bucket's list from its stored form; the default when unreadable.
    pub fn decode(bytes: &[u8]) -> Self {
        let mut r = Reader::new(bytes);
        let codes: Option<Vec<(u8, u8)>> = r
            .count(2)
            .ok()
            .and_then(|n| (0..n).map(|_| Some((r.u8().ok()?, r.u8().ok()?))).collect());
        Self::from_codes(&codes.unwrap_or_default())
    }
}

/// The permission a bucket's ACL must grant for an IAM action on the
/// bucket or on objects in it, if any does.
pub fn bucket_permission(action: &str) -> Option<Permission> {
    Some(match action {
        "s3:ListBucket" | "s3:ListBucketVersions" | "s3:ListBucketMultipartUploads" => Permission::Read,
        "s3:PutObject" | "s3:DeleteObject" | "s3:AbortMultipartUpload" | "s3:ListMultipartUploadParts" => {
            Permission::Write
        }
        "s3:GetBucketAcl" => Permission::ReadAcp,
        "s3:PutBucketAcl" => Permission::WriteAcp,
        _ => return None,
    })
}

/// The permission an object's ACL must grant for an IAM action on it, if
/// any does.
pub fn object_permission(action: &str) -> Option<Permission> {
    Some(match action {
        "s3:GetObject" | "s3:GetObjectVersion" => Permission::Read,
        "s3:GetObjectAcl" | "s3:GetObjectVersionAcl" => Permission::ReadAcp,
        "s3:PutObjectAcl" | "s3:PutObjectVersionAcl" => Permission::WriteAcp,
        _ => return None,
    })
}

/// Who owns the objects of a bucket, and whether ACLs apply in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// ACLs are disabled: they neither grant nor can be set (beyond the
    /// owner's full control).
    BucketOwnerEnforced,
    BucketOwnerPreferred,
    ObjectWriter,
}

impl Ownership {
    pub fn as_str(self) -> &'static str {
        match self {
            Ownership::BucketOwnerEnforced => "BucketOwnerEnforced",
            Ownership::BucketOwnerPreferred => "BucketOwnerPreferred",
            Ownership::ObjectWriter => "ObjectWriter",
        }
    }

    pub fn parse(s: &str) -> AclResult<Self> {
        [
            Ownership::BucketOwnerEnforced,
            Ownership::BucketOwnerPreferred,
            Ownership::ObjectWriter,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
        .ok_or_else(|| AclError::InvalidSetting(format!("Invalid object ownership {s}")))
    }

    /// Whether ACLs take part in authorization and can be set.
    pub fn acls_enabled(self) -> bool {
        self != Ownership::BucketOwnerEnforced
    }
}

/// A bucket's public access block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublicAccessBlock {
    /// Refuse requests that set a public ACL.
    pub block_public_acls: bool,
    /// Disregard public grants when authorizing.
    pub ignore_public_acls: bool,
    /// Refuse a public bucket policy.
    pub block_public_policy: bool,
    /// A public policy grants nothing to callers outside the account.
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    pub fn encode(&self) -> Vec<u8> {
        vec![
            self.block_public_acls as u8
                | (self.ignore_public_acls as u8) << 1
                | (self.block_public_policy as u8) << 2
                | (self.restrict_public_buckets as u8) << 3,
        ]
    }

    /// The block from its stored form; everything blocked when unreadable
    /// (the safe reading of a setting that was meant to block).
    pub fn decode(bytes: &[u8]) -> Self {
        let b = match bytes {
            [b] => *b,
            _ => 0b1111,
        };
        PublicAccessBlock {
            block_public_acls: b & 1 != 0,
            ignore_public_acls: b & 2 != 0,
            block_public_policy: b & 4 != 0,
            restrict_public_buckets: b & 8 != 0,
        }
    }

    /// Refuses `acl` if it is public and public ACLs are blocked.
    pub fn check_acl(&self, acl: &Acl) -> AclResult<()> {
        if self.block_public_acls && acl.is_public() {
            return Err(AclError::Blocked);
        }
        Ok(())
    }
}

/// The bucket setting holding a bucket's ACL ([`Acl::encode`]), when not
/// the default.
pub const ACL_SETTING: &str = "acl";
/// The bucket setting holding its ownership control ([`Ownership::as_str`]).
pub const OWNERSHIP_SETTING: &str = "ownership";
/// The bucket setting holding its public access block.
pub const PUBLIC_ACCESS_BLOCK_SETTING: &str = "public-access-block";

/// A bucket's access settings, as its record stores them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketAccess {
    pub acl: Acl,
    /// `None`: never set (a bucket made before ownership controls existed
    /// here; ACLs apply in it).
    pub ownership: Option<Ownership>,
    /// `None`: no block.
    pub block: Option<PublicAccessBlock>,
}

impl BucketAccess {
    /// The settings from a bucket record's setting map.
    pub fn of(settings: &std::collections::BTreeMap<String, Vec<u8>>) -> Self {
        BucketAccess {
            acl: settings
                .get(ACL_SETTING)
                .map(|b| Acl::decode(b))
                .unwrap_or_default(),
            // An unreadable value is the safest reading: ACLs disabled.
            ownership: settings.get(OWNERSHIP_SETTING).map(|b| {
                Ownership::parse(&String::from_utf8_lossy(b)).unwrap_or(Ownership::BucketOwnerEnforced)
            }),
            block: settings
                .get(PUBLIC_ACCESS_BLOCK_SETTING)
                .map(|b| PublicAccessBlock::decode(b)),
        }
    }

    pub fn acls_enabled(&self) -> bool {
        self.ownership.is_none_or(Ownership::acls_enabled)
    }

    /// The public access block in force (nothing blocked without one).
    pub fn block(&self) -> PublicAccessBlock {
        self.block.unwrap_or_default()
    }

    /// Refuses to set `acl` on the bucket or an object in it when ACLs
    /// are disabled (beyond the owner's full control) or a public ACL is
    /// blocked.
    pub fn check_set(&self, acl: &Acl) -> AclResult<()> {
        if !self.acls_enabled() && !acl.owner_only() {
            return Err(AclError::NotSupported);
        }
        self.block().check_acl(acl)
    }

    /// Whether `acl` (the bucket's or an object's) lets `who` do what
    /// `wanted` covers, with ownership and the block applied.
    pub fn grants(&self, acl: &Acl, who: Requester, wanted: Permission) -> bool {
        self.acls_enabled() && acl.allows(who, wanted, self.block().ignore_public_acls)
    }
}
