//! Conditional requests: the preconditions a read (`If-Match`,
//! `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since`) or a write
//! (`If-Match`, `If-None-Match`) puts on the version it acts on, with
//! the precedence S3 gives them. Writes are checked under the key's commit
//! lock, so two conditional writers cannot both win.

use super::{ObjectError, ObjectResult};
use crate::meta::Version;

/// An entity-tag condition: a specific ETag or `*` (any existing object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtagMatch {
    Any,
    Etag(String),
}

impl EtagMatch {
    fn matches(&self, v: &Version) -> bool {
        match self {
            EtagMatch::Any => true,
            EtagMatch::Etag(e) => e.trim_matches('"') == v.etag,
        }
    }
}

/// Preconditions of a GET or HEAD (or of a copy's source). Times are
/// seconds since the Unix epoch, the resolution of `Last-Modified`.
#[derive(Debug, Clone, Default)]
pub struct ReadConditions {
    pub if_match: Option<EtagMatch>,
    pub if_none_match: Option<EtagMatch>,
    pub if_modified_since: Option<i64>,
    pub if_unmodified_since: Option<i64>,
}

impl ReadConditions {
    /// `Ok` when the request may proceed on `v`; otherwise
    /// `PreconditionFailed` (412) or `NotModified` (304). A failing
    /// If-Unmodified-Since is ignored when If-Match holds, and a failing
    /// If-Modified-Since when If-None-Match holds, as S3 does.
    pub fn check(&self, v: &Version) -> ObjectResult<()> {
        let secs = v.mod_time_ns.div_euclid(1_000_000_000);
        match &self.if_match {
            Some(m) if !m.matches(v) => return Err(ObjectError::PreconditionFailed),
            Some(_) => {}
            None => {
                if self.if_unmodified_since.is_some_and(|t| secs > t) {
                    return Err(ObjectError::PreconditionFailed);
                }
            }
        }
        match &self.if_none_match {
            Some(m) if m.matches(v) => return Err(not_modified(v)),
            Some(_) => {}
            None => {
                if self.if_modified_since.is_some_and(|t| secs <= t) {
                    return Err(not_modified(v));
                }
            }
        }
        Ok(())
    }

    /// As [`check`](Self::check), for a copy source: where a GET answers
    /// 304, a copy fails with 412.
    pub fn check_source(&self, v: &Version) -> ObjectResult<()> {
        self.check(v).map_err(|e| match e {
            ObjectError::NotModified { .. } => ObjectError::PreconditionFailed,
            e => e,
        })
    }
}

fn not_modified(v: &Version) -> ObjectError {
    ObjectError::NotModified {
        etag: v.etag.clone(),
        modified_ns: v.mod_time_ns,
    }
}

/// Preconditions of a write (PutObject, CompleteMultipartUpload, CopyObject).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteCondition {
    /// Write only if the current object has this ETag (`*`: if it exists).
    pub if_match: Option<EtagMatch>,
    /// Write only if no current object exists (`*`), or the current one
    /// has another ETag.
    pub if_none_match: Option<EtagMatch>,
}

impl WriteCondition {
    pub fn is_empty(&self) -> bool {
        self.if_match.is_none() && self.if_none_match.is_none()
    }

    /// Checks the condition against the key's current version (`None` when
    /// the key does not exist or its latest version is a delete marker).
    pub fn check(&self, current: Option<&Version>) -> ObjectResult<()> {
        if let (Some(m), Some(v)) = (&self.if_none_match, current)
            && m.matches(v)
        {
            return Err(ObjectError::PreconditionFailed);
        }
        match (&self.if_match, current) {
            (None, _) => Ok(()),
            (Some(_), None) => Err(ObjectError::NoSuchKey),
            (Some(m), Some(v)) if m.matches(v) => Ok(()),
            (Some(_), Some(_)) => Err(ObjectError::PreconditionFailed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{DataLoc, ErasureInfo, VersionId, VersionKind};

    fn version(etag: &str, secs: i64) -> Version {
        Version {
            id: VersionId::NULL,
            mod_time_ns: secs * 1_000_000_000 + 500_000_000,
            stamp: secs * 1_000_000_000 + 500_000_000,
            kind: VersionKind::Object,
            size: 1,
            etag: etag.into(),
            headers: vec![],
            user_meta: vec![],
            erasure: ErasureInfo {
                data: 1,
                parity: 1,
                shard_index: 0,
                hash_algo: 1,
                block_size: 1,
            },
            parts: vec![],
            data: DataLoc::None,
            extras: Default::default(),
        }
    }

    fn etag(e: &str) -> Option<EtagMatch> {
        Some(EtagMatch::Etag(e.into()))
    }

    #[test]
    fn read_conditions_follow_s3_precedence() {
        let v = version("abc", 1000);
        let ok = |c: ReadConditions| c.check(&v);
        assert!(ok(ReadConditions::default()).is_ok());
        assert!(
            ok(ReadConditions {
                if_match: etag("\"abc\""),
                ..Default::default()
            })
            .is_ok()
        );
        assert!(matches!(
            ok(ReadConditions {
                if_match: etag("xyz"),
                ..Default::default()
            }),
            Err(ObjectError::PreconditionFailed)
        ));
        assert!(matches!(
            ok(ReadConditions {
                if_none_match: etag("abc"),
                ..Default::default()
            }),
            Err(ObjectError::NotModified { .. })
        ));
        assert!(matches!(
            ok(ReadConditions {
                if_none_match: Some(EtagMatch::Any),
                ..Default::default()
            }),
            Err(ObjectError::NotModified { .. })
        ));
        // Modified in second 1000: not modified since 1000, modified since 999.
        assert!(matches!(
            ok(ReadConditions {
                if_modified_since: Some(1000),
                ..Default::default()
            }),
            Err(ObjectError::NotModified { .. })
        ));
        assert!(
            ok(ReadConditions {
                if_modified_since: Some(999),
                ..Default::default()
            })
            .is_ok()
        );
        assert!(matches!(
            ok(ReadConditions {
                if_unmodified_since: Some(999),
                ..Default::default()
            }),
            Err(ObjectError::PreconditionFailed)
        ));
        // If-Match true overrides a failing If-Unmodified-Since.
        assert!(
            ok(ReadConditions {
                if_match: etag("abc"),
                if_unmodified_since: Some(999),
                ..Default::default()
            })
            .is_ok()
        );
        // If-None-Match false with If-Modified-Since true is still 304.
        assert!(matches!(
            ok(ReadConditions {
                if_none_match: etag("abc"),
                if_modified_since: Some(999),
                ..Default::default()
            }),
            Err(ObjectError::NotModified { .. })
        ));
        // If-None-Match true overrides a failing If-Modified-Since.
        assert!(
            ok(ReadConditions {
                if_none_match: etag("other"),
                if_modified_since: Some(2000),
                ..Default::default()
            })
            .is_ok()
        );
        assert!(matches!(
            ReadConditions {
                if_none_match: etag("abc"),
                ..Default::default()
            }
            .check_source(&v),
            Err(ObjectError::PreconditionFailed)
        ));
    }

    #[test]
    fn write_conditions() {
        let v = version("abc", 1);
        let none_match = WriteCondition {
            if_none_match: Some(EtagMatch::Any),
            ..Default::default()
        };
        assert!(none_match.check(None).is_ok());
        assert!(matches!(
            none_match.check(Some(&v)),
            Err(ObjectError::PreconditionFailed)
        ));
        // An ETag: refused only while the current object has it.
        let not_this = WriteCondition {
            if_none_match: etag("\"abc\""),
            ..Default::default()
        };
        assert!(matches!(
            not_this.check(Some(&v)),
            Err(ObjectError::PreconditionFailed)
        ));
        assert!(not_this.check(Some(&version("def", 1))).is_ok());
        assert!(not_this.check(None).is_ok());
        let if_match = WriteCondition {
            if_match: etag("abc"),
            ..Default::default()
        };
        assert!(if_match.check(Some(&v)).is_ok());
        assert!(matches!(if_match.check(None), Err(ObjectError::NoSuchKey)));
        let wrong = WriteCondition {
            if_match: etag("zzz"),
            ..Default::default()
        };
        assert!(matches!(
            wrong.check(Some(&v)),
            Err(ObjectError::PreconditionFailed)
        ));
        assert!(WriteCondition::default().check(Some(&v)).is_ok());
    }
}
