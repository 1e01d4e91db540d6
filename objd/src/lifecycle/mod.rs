//! Lifecycle rules: a bucket's configuration as a value (validated as S3
//! validates it, stored as JSON in the bucket record), and what the rules
//! say of one object: when its current version expires, whether a
//! noncurrent version or a lone delete marker is due, when an unfinished
//! upload is abandoned. The clock is a [`Clock`], so a test can make a
//! lifecycle day last seconds. [`scan`] applies the rules in the
//! background.
//!
//! Transitions move data to a remote tier, named as the storage class
//! (the tier's name in any case: `COLD` is tier `cold`). As S3 does, a
//! transition leaves objects under 128 KiB where they are unless its
//! rule's filter names a size.

pub mod scan;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

/// The bucket setting holding a bucket's lifecycle configuration.
pub const BUCKET_SETTING: &str = "lifecycle";
/// Most rules in one configuration.
pub const MAX_RULES: usize = 1000;
/// Objects smaller than this do not transition unless a rule's filter
/// has a size condition (S3's default since 2024).
pub const MIN_TRANSITION_SIZE: u64 = 128 * 1024;
const NS: i64 = 1_000_000_000;

/// Why a configuration cannot be taken, in S3's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// What S3's schema refuses.
    #[error("{0}")]
    Malformed(String),
    /// A value S3 refuses.
    #[error("{0}")]
    InvalidArgument(String),
}

pub type LifecycleResult<T> = Result<T, LifecycleError>;

/// How long a lifecycle day is: 86,400 seconds, or less for tests
/// (`objd server --lifecycle-day-seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub day_secs: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock { day_secs: 86_400 }
    }
}

impl Clock {
    fn day_ns(&self) -> i64 {
        (self.day_secs.max(1) as i64).saturating_mul(NS)
    }

    /// When something that began at `start_ns` is `days` old, as S3
    /// counts: the first midnight (UTC) at least `days` days after it.
    pub fn after_days(&self, start_ns: i64, days: u32) -> i64 {
        let day = self.day_ns();
        let t = start_ns.saturating_add(day.saturating_mul(i64::from(days)));
        t.div_euclid(day)
            .saturating_add(i64::from(t.rem_euclid(day) > 0))
            .saturating_mul(day)
    }
}

/// When an action applies: a number of days after an object's time, or
/// a date (midnight UTC, seconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum When {
    Days(u32),
    Date(i64),
}

impl When {
    /// The time (ns) the action applies to something whose time is `t`.
    fn at(self, clock: &Clock, t: i64) -> i64 {
        match self {
            When::Days(d) => clock.after_days(t, d),
            When::Date(secs) => secs.saturating_mul(NS),
        }
    }
}

/// What a rule applies to: a key prefix, tags (all of them), a size range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub prefix: String,
    pub tags: Vec<(String, String)>,
    /// Sizes strictly greater than this.
    pub size_greater_than: Option<u64>,
    /// Sizes strictly less than this.
    pub size_less_than: Option<u64>,
    /// How the client wrote it, to answer it back the same way: the
    /// rule-level `Prefix` of older clients, or an `And` element.
    pub form: FilterForm,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilterForm {
    /// `<Filter>` with one condition, or empty.
    #[default]
    Single,
    /// `<Filter><And>...`.
    And,
    /// The rule's own `<Prefix>`, without `<Filter>`.
    RulePrefix,
}

impl Filter {
    /// Whether an object of `key`, `size` bytes and `tags` matches.
    pub fn matches(&self, key: &str, size: u64, tags: &[(String, String)]) -> bool {
        key.starts_with(&self.prefix)
            && self.size_greater_than.is_none_or(|n| size > n)
            && self.size_less_than.is_none_or(|n| size < n)
            && self.tags.iter().all(|t| tags.contains(t))
    }

    /// Whether matching needs the object's tags (which listings lack).
    pub fn needs_tags(&self) -> bool {
        !self.tags.is_empty()
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    pub enabled: bool,
    pub filter: Filter,
    /// Expiry of current versions.
    pub expiration: Option<When>,
    /// Removal of a delete marker that no version is left behind.
    pub expired_object_delete_marker: bool,
    /// Expiry of noncurrent versions: days after they became noncurrent,
    /// keeping the newest `newer_noncurrent` of them.
    pub noncurrent_days: Option<u32>,
    pub newer_noncurrent: Option<u32>,
    /// Abandoning unfinished multipart uploads, days after they began.
    pub abort_incomplete_days: Option<u32>,
    /// Moves of current versions to other storage classes.
    #[serde(default)]
    pub transitions: Vec<Transition>,
    /// Moves of noncurrent versions, days after they became noncurrent.
    #[serde(default)]
    pub noncurrent_transitions: Vec<NoncurrentTransition>,
}

/// A move of current versions' data to storage class `class`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub when: When,
    pub class: String,
}

/// A move of noncurrent versions' data, `days` after they became
/// noncurrent, keeping the newest `newer` of them where they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoncurrentTransition {
    pub days: u32,
    pub newer: Option<u32>,
    pub class: String,
}

impl Rule {
    /// Whether objects of `size` bytes may transition under this rule.
    fn moves_size(&self, size: u64) -> bool {
        self.filter.size_greater_than.is_some()
            || self.filter.size_less_than.is_some()
            || size >= MIN_TRANSITION_SIZE
    }
}

/// Of transitions `(when, class)`, the class of the one due last by
/// `now_ns`.
fn last_due<'a>(due: impl Iterator<Item = (i64, &'a str)>, now_ns: i64) -> Option<&'a str> {
    due.filter(|(at, _)| now_ns >= *at)
        .max_by_key(|(at, _)| *at)
        .map(|(_, c)| c)
}

/// A bucket's lifecycle configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    pub rules: Vec<Rule>,
}

/// What the rules say of a current version: when it expires, by which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    pub at_ns: i64,
    pub rule: String,
}

impl Lifecycle {
    /// Checks a configuration as S3 does.
    pub fn validate(&self) -> LifecycleResult<()> {
        let malformed = |m: &str| Err(LifecycleError::Malformed(m.to_owned()));
        let invalid = |m: &str| Err(LifecycleError::InvalidArgument(m.to_owned()));
        if self.rules.is_empty() || self.rules.len() > MAX_RULES {
            return malformed("A lifecycle configuration has 1 to 1000 rules");
        }
        for (i, r) in self.rules.iter().enumerate() {
            if r.id.chars().count() > 255 {
                return invalid("ID length should not exceed allowed limit of 255");
            }
            if !r.id.is_empty() && self.rules[..i].iter().any(|o| o.id == r.id) {
                return invalid("Rule ID must be unique. Found same ID for more than one rule");
            }
            if r.newer_noncurrent.is_some() && r.noncurrent_days.is_none() {
                return malformed("NewerNoncurrentVersions requires NoncurrentDays");
            }
            let acts = r.expiration.is_some()
                || r.expired_object_delete_marker
                || r.noncurrent_days.is_some()
                || r.abort_incomplete_days.is_some()
                || !r.transitions.is_empty()
                || !r.noncurrent_transitions.is_empty();
            if !acts {
                return invalid("At least one action needs to be specified in a rule");
            }
            if r.expiration.is_some() && r.expired_object_delete_marker {
                return malformed(
                    "ExpiredObjectDeleteMarker cannot be specified with Days or Date in a Lifecycle Expiration Policy",
                );
            }
            let expiration_days = match r.expiration {
                Some(When::Days(d)) => Some(d),
                _ => None,
            };
            if [expiration_days, r.noncurrent_days, r.abort_incomplete_days].contains(&Some(0)) {
                return invalid("'Days' for Expiration action must be a positive integer");
            }
            if r.newer_noncurrent.is_some_and(|n| n == 0 || n > 100) {
                return invalid("NewerNoncurrentVersions must be between 1 and 100");
            }
            if let Some(When::Date(secs)) = r.expiration
                && secs.rem_euclid(86_400) != 0
            {
                return invalid("'Date' must be at midnight GMT");
            }
            r.validate_transitions()?;
            if r.abort_incomplete_days.is_some() && !r.filter.tags.is_empty() {
                return invalid("AbortIncompleteMultipartUpload cannot be specified with Tags");
            }
            if let (Some(gt), Some(lt)) = (r.filter.size_greater_than, r.filter.size_less_than)
                && gt >= lt
            {
                return invalid("ObjectSizeGreaterThan must be less than ObjectSizeLessThan");
            }
        }
        Ok(())
    }

    /// Every storage class the rules move data to.
    pub fn classes(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().flat_map(|r| {
            r.transitions
                .iter()
                .map(|t| t.class.as_str())
                .chain(r.noncurrent_transitions.iter().map(|t| t.class.as_str()))
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    fn enabled(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(|r| r.enabled)
    }

    /// Whether some enabled rule matches on tags (so applying the rules to
    /// a listing needs each candidate's tags).
    pub fn needs_tags(&self) -> bool {
        self.enabled().any(|r| r.filter.needs_tags())
    }

    /// When the current version of `key` (`size` bytes, `tags`, modified at
    /// `modified_ns`) expires, by the earliest rule that says so.
    pub fn expiry(
        &self,
        clock: &Clock,
        key: &str,
        size: u64,
        tags: &[(String, String)],
        modified_ns: i64,
    ) -> Option<Expiry> {
        self.enabled()
            .filter(|r| r.filter.matches(key, size, tags))
            .filter_map(|r| {
                Some(Expiry {
                    at_ns: r.expiration?.at(clock, modified_ns),
                    rule: r.id.clone(),
                })
            })
            .min_by_key(|e| e.at_ns)
    }

    /// Whether a noncurrent version of `key` is due at `now_ns`: it became
    /// noncurrent at `since_ns` and `newer` noncurrent versions are newer.
    pub fn noncurrent_due(
        &self,
        clock: &Clock,
        (key, size, tags): (&str, u64, &[(String, String)]),
        since_ns: i64,
        newer: usize,
        now_ns: i64,
    ) -> bool {
        self.enabled()
            .filter(|r| r.filter.matches(key, size, tags))
            .any(|r| {
                let Some(days) = r.noncurrent_days else {
                    return false;
                };
                let kept = r.newer_noncurrent.unwrap_or(0) as usize;
                newer >= kept && now_ns >= clock.after_days(since_ns, days)
            })
    }

    /// The storage class the current version of `key` belongs in at
    /// `now_ns` by the transitions due: the one that came due last.
    pub fn transition_due(
        &self,
        clock: &Clock,
        (key, size, tags): (&str, u64, &[(String, String)]),
        modified_ns: i64,
        now_ns: i64,
    ) -> Option<&str> {
        let due = self
            .enabled()
            .filter(|r| r.filter.matches(key, size, tags) && r.moves_size(size))
            .flat_map(|r| &r.transitions)
            .map(|t| (t.when.at(clock, modified_ns), t.class.as_str()));
        last_due(due, now_ns)
    }

    /// The storage class a noncurrent version belongs in at `now_ns`: it
    /// became noncurrent at `since_ns` and `newer` noncurrent versions are
    /// newer.
    pub fn noncurrent_transition_due(
        &self,
        clock: &Clock,
        (key, size, tags): (&str, u64, &[(String, String)]),
        since_ns: i64,
        newer: usize,
        now_ns: i64,
    ) -> Option<&str> {
        let due = self
            .enabled()
            .filter(|r| r.filter.matches(key, size, tags) && r.moves_size(size))
            .flat_map(|r| &r.noncurrent_transitions)
            .filter(|t| newer >= t.newer.unwrap_or(0) as usize)
            .map(|t| (clock.after_days(since_ns, t.days), t.class.as_str()));
        last_due(due, now_ns)
    }

    /// Whether a delete marker of `key` left with no version behind it may
    /// go.
    pub fn removes_lone_marker(&self, key: &str) -> bool {
        self.enabled().any(|r| {
            r.expired_object_delete_marker && r.filter.tags.is_empty() && key.starts_with(&r.filter.prefix)
        })
    }

    /// Whether an upload of `key` begun at `initiated_ns` is abandoned at
    /// `now_ns`.
    pub fn upload_abandoned(&self, clock: &Clock, key: &str, initiated_ns: i64, now_ns: i64) -> bool {
        self.enabled().any(|r| {
            r.abort_incomplete_days.is_some_and(|d| {
                key.starts_with(&r.filter.prefix) && now_ns >= clock.after_days(initiated_ns, d)
            })
        })
    }
}

impl Rule {
    /// S3's checks of a rule's transitions.
    fn validate_transitions(&self) -> LifecycleResult<()> {
        let invalid = |m: &str| Err(LifecycleError::InvalidArgument(m.to_owned()));
        let classes: Vec<&str> = self.transitions.iter().map(|t| t.class.as_str()).collect();
        if classes.iter().any(|c| c.is_empty())
            || self.noncurrent_transitions.iter().any(|t| t.class.is_empty())
        {
            return Err(LifecycleError::Malformed(
                "A transition needs a StorageClass".into(),
            ));
        }
        if classes.iter().enumerate().any(|(i, c)| classes[..i].contains(c)) {
            return invalid("'StorageClass' must be different for 'Transition' actions in same 'Rule'");
        }
        let nc: Vec<&str> = self
            .noncurrent_transitions
            .iter()
            .map(|t| t.class.as_str())
            .collect();
        if nc.iter().enumerate().any(|(i, c)| nc[..i].contains(c)) {
            return invalid(
                "'StorageClass' must be different for 'NoncurrentVersionTransition' actions in same 'Rule'",
            );
        }
        for t in &self.transitions {
            match t.when {
                When::Date(secs) if secs.rem_euclid(86_400) != 0 => {
                    return invalid("'Date' must be at midnight GMT");
                }
                When::Days(d) if matches!(self.expiration, Some(When::Days(e)) if e <= d) => {
                    return invalid(
                        "'Days' in the Expiration action must be greater than 'Days' in the Transition action",
                    );
                }
                _ => {}
            }
        }
        if let Some(e) = self.noncurrent_days
            && self.noncurrent_transitions.iter().any(|t| t.days >= e)
        {
            return invalid(
                "'NoncurrentDays' in the NoncurrentVersionExpiration action must be greater than 'NoncurrentDays' in the NoncurrentVersionTransition action",
            );
        }
        if self
            .noncurrent_transitions
            .iter()
            .any(|t| t.newer.is_some_and(|n| n == 0 || n > 100))
        {
            return invalid("NewerNoncurrentVersions must be between 1 and 100");
        }
        Ok(())
    }
}
