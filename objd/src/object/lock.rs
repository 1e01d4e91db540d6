//! Object Lock (WORM): a bucket created with Object Lock keeps versioning
//! on for good; a version may carry a retention (GOVERNANCE or COMPLIANCE
//! mode, until a date) and a legal hold. While either protects a version,
//! deleting that version is refused: COMPLIANCE and legal holds for
//! everyone, GOVERNANCE unless the request bypasses governance retention.
//! Overwrites and deletes without a version id only add versions or delete
//! markers, so they stay allowed, as in S3. Retention may be extended, and
//! shortened or removed only in GOVERNANCE mode with the bypass.

use super::{ObjectError, ObjectLayer, ObjectResult, check_key, now_ns, parse_version};
use crate::meta::{Extras, Version, Versioning};
use serde::{Deserialize, Serialize};

/// Name of the bucket setting holding the Object Lock configuration.
pub const BUCKET_SETTING: &str = "object-lock";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetentionMode {
    Governance = 1,
    Compliance = 2,
}

impl RetentionMode {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Governance),
            2 => Some(Self::Compliance),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub mode: RetentionMode,
    /// Protected until this time (ns since the Unix epoch).
    pub until_ns: i64,
}

impl Retention {
    pub fn of(x: &Extras) -> Option<Self> {
        let (mode, until_ns) = x.retention?;
        Some(Self {
            mode: RetentionMode::from_u8(mode)?,
            until_ns,
        })
    }

    fn active(&self, now: i64) -> bool {
        self.until_ns > now
    }
}

/// A bucket's Object Lock configuration: enabled, with an optional
/// default retention for new versions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockConfig {
    pub default_mode: Option<RetentionMode>,
    pub default_days: Option<u32>,
    pub default_years: Option<u32>,
}

const DAY_NS: i64 = 86_400 * 1_000_000_000;

impl LockConfig {
    pub fn validate(&self) -> ObjectResult<()> {
        let bad = |m: &str| Err(ObjectError::InvalidArgument(m.into()));
        match (self.default_mode, self.default_days, self.default_years) {
            (None, None, None) => Ok(()),
            (Some(_), Some(d), None) if d > 0 && d <= 36_500 => Ok(()),
            (Some(_), None, Some(y)) if y > 0 && y <= 100 => Ok(()),
            (Some(_), Some(_), Some(_)) => bad("Default retention takes Days or Years, not both"),
            (None, _, _) => bad("Default retention needs a Mode"),
            _ => bad("Default retention needs a positive period of Days or Years"),
        }
    }

    /// The retention a new version gets when the write names none.
    pub fn default_retention(&self, now: i64) -> Option<Retention> {
        let mode = self.default_mode?;
        let days =
            i64::from(self.default_days.unwrap_or(0)) + i64::from(self.default_years.unwrap_or(0)) * 365;
        Some(Retention {
            mode,
            until_ns: now.saturating_add(days.saturating_mul(DAY_NS)),
        })
    }
}

fn missing_lock() -> ObjectError {
    ObjectError::InvalidRequest("Bucket is missing Object Lock Configuration".into())
}

/// Refuses the permanent deletion of a protected version.
pub fn check_delete(v: &Version, bypass_governance: bool) -> ObjectResult<()> {
    if v.extras.legal_hold {
        return Err(ObjectError::ObjectLocked);
    }
    match Retention::of(&v.extras) {
        Some(r) if r.active(now_ns()) => match r.mode {
            RetentionMode::Compliance => Err(ObjectError::ObjectLocked),
            RetentionMode::Governance if !bypass_governance => Err(ObjectError::ObjectLocked),
            RetentionMode::Governance => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Whether a version's retention may change from `old` to `new`.
fn check_retention_change(old: Option<Retention>, new: Option<Retention>, bypass: bool) -> ObjectResult<()> {
    let Some(old) = old.filter(|o| o.active(now_ns())) else {
        return Ok(());
    };
    let extends = new.is_some_and(|n| n.mode == old.mode && n.until_ns >= old.until_ns);
    match old.mode {
        _ if extends => Ok(()),
        RetentionMode::Governance if bypass => Ok(()),
        _ => Err(ObjectError::ObjectLocked),
    }
}

impl ObjectLayer {
    /// The bucket's Object Lock configuration; `None` when the bucket does
    /// not have Object Lock.
    pub fn lock_config(&self, bucket: &str) -> ObjectResult<Option<LockConfig>> {
        self.bucket_setting(bucket, BUCKET_SETTING)?
            .map(|b| {
                serde_json::from_slice(&b).map_err(|e| ObjectError::Internal(format!("lock config: {e}")))
            })
            .transpose()
    }

    fn require_lock(&self, bucket: &str) -> ObjectResult<LockConfig> {
        self.lock_config(bucket)?.ok_or_else(missing_lock)
    }

    /// Turns Object Lock on (for good) or changes its default retention.
    /// The bucket must have versioning enabled.
    pub async fn set_lock_config(&self, bucket: &str, config: LockConfig) -> ObjectResult<()> {
        config.validate()?;
        let b = self.bucket(bucket)?;
        if b.versioning != Versioning::Enabled {
            return Err(ObjectError::InvalidBucketState(
                "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration".into(),
            ));
        }
        let value = serde_json::to_vec(&config).map_err(|e| ObjectError::Internal(e.to_string()))?;
        self.set_bucket_setting(bucket, BUCKET_SETTING, Some(value)).await
    }

    /// Creates a bucket with Object Lock (and so versioning) enabled.
    pub async fn make_locked_bucket(&self, name: &str, settings: Vec<(String, Vec<u8>)>) -> ObjectResult<()> {
        self.make_bucket_with(name, settings).await?;
        self.set_versioning(name, Versioning::Enabled).await?;
        self.set_lock_config(name, LockConfig::default()).await
    }

    /// The retention and legal hold a new version written to `bucket` gets:
    /// those asked for, else the bucket's default retention. Asking for
    /// either in a bucket without Object Lock is an error.
    pub fn lock_for_write(
        &self,
        bucket: &str,
        retention: Option<Retention>,
        legal_hold: bool,
    ) -> ObjectResult<(Option<Retention>, bool)> {
        match self.lock_config(bucket)? {
            None if retention.is_some() || legal_hold => Err(missing_lock()),
            None => Ok((None, false)),
            Some(c) => Ok((retention.or_else(|| c.default_retention(now_ns())), legal_hold)),
        }
    }

    /// Sets (or with `None` removes) the retention of a version.
    pub async fn put_retention(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        retention: Option<Retention>,
        bypass_governance: bool,
    ) -> ObjectResult<Version> {
        check_key(key)?;
        self.require_lock(bucket)?;
        let vid = parse_version(version)?;
        let value = retention.map(|r| (r.mode as u8, r.until_ns));
        self.set_for(bucket, key)
            .update_extras(
                bucket,
                key,
                vid,
                |v| check_retention_change(Retention::of(&v.extras), retention, bypass_governance),
                move |x| x.retention = value,
            )
            .await
    }

    /// Turns the legal hold of a version on or off.
    pub async fn put_legal_hold(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        on: bool,
    ) -> ObjectResult<Version> {
        check_key(key)?;
        self.require_lock(bucket)?;
        let vid = parse_version(version)?;
        self.set_for(bucket, key)
            .update_extras(bucket, key, vid, |_| Ok(()), move |x| x.legal_hold = on)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(mode: RetentionMode, from_now_s: i64) -> Option<Retention> {
        Some(Retention {
            mode,
            until_ns: now_ns() + from_now_s * 1_000_000_000,
        })
    }

    #[test]
    fn retention_changes() {
        use RetentionMode::*;
        // Extending is always allowed; so is anything once retention ended.
        assert!(check_retention_change(r(Compliance, 100), r(Compliance, 200), false).is_ok());
        assert!(check_retention_change(r(Compliance, -1), None, false).is_ok());
        // Compliance cannot be shortened, removed or weakened, even with the bypass.
        assert!(check_retention_change(r(Compliance, 100), r(Compliance, 50), true).is_err());
        assert!(check_retention_change(r(Compliance, 100), None, true).is_err());
        assert!(check_retention_change(r(Compliance, 100), r(Governance, 500), true).is_err());
        // Governance can be shortened or removed with the bypass only.
        assert!(check_retention_change(r(Governance, 100), None, false).is_err());
        assert!(check_retention_change(r(Governance, 100), None, true).is_ok());
        assert!(check_retention_change(r(Governance, 100), r(Compliance, 500), true).is_ok());
        assert!(check_retention_change(None, r(Governance, 5), false).is_ok());
    }

    #[test]
    fn default_retention_and_validation() {
        let c = LockConfig {
            default_mode: Some(RetentionMode::Governance),
            default_days: Some(2),
            default_years: None,
        };
        assert!(c.validate().is_ok());
        let d = c.default_retention(0).unwrap();
        assert_eq!(d.until_ns, 2 * DAY_NS);
        assert!(LockConfig::default().default_retention(0).is_none());
        let bad = LockConfig {
            default_mode: Some(RetentionMode::Governance),
            default_days: Some(1),
            default_years: Some(1),
        };
        assert!(bad.validate().is_err());
        let no_mode = LockConfig {
            default_days: Some(1),
            ..Default::default()
        };
        assert!(no_mode.validate().is_err());
    }
}
