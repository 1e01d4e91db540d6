//! Bucket lifecycle configuration over S3 (Put/Get/Delete), converted to
//! and from [`crate::lifecycle`]'s rules, and the `x-amz-expiration`
//! header writes and reads answer with.

use super::convert::{http_date, tags_to_dto, ts};
use super::{StrataS3, fail, rid};
use crate::lifecycle::{
    BUCKET_SETTING, Filter, FilterForm, Lifecycle, LifecycleError, NoncurrentTransition, Rule, Transition,
    When,
};
use crate::object::placement::Place;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

fn to_s3(e: LifecycleError) -> S3Error {
    let code = match &e {
        LifecycleError::Malformed(_) => S3ErrorCode::MalformedXML,
        LifecycleError::InvalidArgument(_) => S3ErrorCode::InvalidArgument,
    };
    S3Error::with_message(code, e.to_string())
}

fn days(n: i32) -> Result<u32, LifecycleError> {
    u32::try_from(n).map_err(|_| LifecycleError::InvalidArgument("'Days' must be a positive integer".into()))
}

fn size(n: i64) -> Result<u64, LifecycleError> {
    u64::try_from(n).map_err(|_| LifecycleError::InvalidArgument("Object size must be non-negative".into()))
}

fn tag(t: &Tag) -> Result<(String, String), LifecycleError> {
    match (&t.key, &t.value) {
        (Some(k), v) => Ok((k.clone(), v.clone().unwrap_or_default())),
        (None, _) => Err(LifecycleError::Malformed("A Tag needs a Key".into())),
    }
}

/// The filter of a rule: its `Filter` element, or (older clients) its
/// `Prefix`; exactly one of them.
fn filter(r: &LifecycleRule) -> Result<Filter, LifecycleError> {
    let malformed = |m: &str| Err(LifecycleError::Malformed(m.into()));
    match (&r.filter, &r.prefix) {
        (Some(_), Some(_)) => malformed("A rule takes a Filter or a Prefix, not both"),
        (None, None) => malformed("A rule needs a Filter or a Prefix"),
        (None, Some(p)) => Ok(Filter {
            prefix: p.clone(),
            form: FilterForm::RulePrefix,
            ..Default::default()
        }),
        (Some(f), None) => {
            let single = [
                f.prefix.is_some(),
                f.tag.is_some(),
                f.object_size_greater_than.is_some(),
                f.object_size_less_than.is_some(),
                f.and.is_some(),
            ];
            if single.iter().filter(|x| **x).count() > 1 {
                return malformed("A Filter takes one condition; combine several with And");
            }
            if let Some(a) = &f.and {
                return Ok(Filter {
                    prefix: a.prefix.clone().unwrap_or_default(),
                    tags: a.tags.iter().flatten().map(tag).collect::<Result<_, _>>()?,
                    size_greater_than: a.object_size_greater_than.map(size).transpose()?,
                    size_less_than: a.object_size_less_than.map(size).transpose()?,
                    form: FilterForm::And,
                });
            }
            Ok(Filter {
                prefix: f.prefix.clone().unwrap_or_default(),
                tags: f.tag.iter().map(tag).collect::<Result<_, _>>()?,
                size_greater_than: f.object_size_greater_than.map(size).transpose()?,
                size_less_than: f.object_size_less_than.map(size).transpose()?,
                form: FilterForm::Single,
            })
        }
    }
}

fn class(c: &Option<TransitionStorageClass>) -> String {
    c.as_ref().map(|c| c.as_str().to_owned()).unwrap_or_default()
}

fn transition(t: &s3s::dto::Transition) -> Result<Transition, LifecycleError> {
    let when = match (t.days, &t.date) {
        (Some(d), None) => When::Days(days(d)?),
        (None, Some(d)) => When::Date(super::convert::secs(d.clone())),
        _ => {
            return Err(LifecycleError::Malformed(
                "A Transition takes Days or Date".into(),
            ));
        }
    };
    Ok(Transition {
        when,
        class: class(&t.storage_class),
    })
}

fn noncurrent_transition(t: &NoncurrentVersionTransition) -> Result<NoncurrentTransition, LifecycleError> {
    Ok(NoncurrentTransition {
        days: days(t.noncurrent_days.ok_or_else(|| {
            LifecycleError::Malformed("A NoncurrentVersionTransition needs NoncurrentDays".into())
        })?)?,
        newer: t.newer_noncurrent_versions.map(days).transpose()?,
        class: class(&t.storage_class),
    })
}

fn rule_of(r: LifecycleRule) -> Result<Rule, LifecycleError> {
    let enabled = match r.status.as_str() {
        ExpirationStatus::ENABLED => true,
        ExpirationStatus::DISABLED => false,
        _ => {
            return Err(LifecycleError::Malformed(
                "Status must be Enabled or Disabled".into(),
            ));
        }
    };
    let (expiration, marker) = match &r.expiration {
        None => (None, false),
        Some(e) => {
            let when = match (e.days, &e.date) {
                (Some(_), Some(_)) => {
                    return Err(LifecycleError::Malformed(
                        "Expiration takes Days or Date, not both".into(),
                    ));
                }
                (Some(d), None) => Some(When::Days(days(d)?)),
                (None, Some(t)) => Some(When::Date(super::convert::secs(t.clone()))),
                (None, None) => None,
            };
            let marker = e.expired_object_delete_marker.unwrap_or(false);
            if when.is_none() && e.expired_object_delete_marker.is_none() {
                return Err(LifecycleError::Malformed(
                    "Expiration needs Days, Date or ExpiredObjectDeleteMarker".into(),
                ));
            }
            (when, marker)
        }
    };
    let nve = r.noncurrent_version_expiration.as_ref();
    Ok(Rule {
        id: r.id.clone().unwrap_or_default(),
        enabled,
        filter: filter(&r)?,
        expiration,
        expired_object_delete_marker: marker,
        noncurrent_days: nve.and_then(|n| n.noncurrent_days).map(days).transpose()?,
        newer_noncurrent: nve
            .and_then(|n| n.newer_noncurrent_versions)
            .map(days)
            .transpose()?,
        abort_incomplete_days: r
            .abort_incomplete_multipart_upload
            .as_ref()
            .map(|a| {
                a.days_after_initiation
                    .ok_or_else(|| LifecycleError::Malformed("DaysAfterInitiation is required".into()))
                    .and_then(days)
            })
            .transpose()?,
        transitions: r
            .transitions
            .iter()
            .flatten()
            .map(transition)
            .collect::<Result<_, _>>()?,
        noncurrent_transitions: r
            .noncurrent_version_transitions
            .iter()
            .flatten()
            .map(noncurrent_transition)
            .collect::<Result<_, _>>()?,
    })
}

/// A rule as S3 answers it, its filter in the form it was given.
fn dto_rule(r: &Rule) -> LifecycleRule {
    let f = &r.filter;
    let (filter, prefix) = match f.form {
        FilterForm::RulePrefix => (None, Some(f.prefix.clone())),
        FilterForm::And => (
            Some(LifecycleRuleFilter {
                and: Some(LifecycleRuleAndOperator {
                    prefix: Some(f.prefix.clone()).filter(|p| !p.is_empty()),
                    tags: Some(tags_to_dto(&f.tags)).filter(|t| !t.is_empty()),
                    object_size_greater_than: f.size_greater_than.map(|n| n as i64),
                    object_size_less_than: f.size_less_than.map(|n| n as i64),
                }),
                ..Default::default()
            }),
            None,
        ),
        FilterForm::Single => (
            Some(LifecycleRuleFilter {
                prefix: Some(f.prefix.clone()).filter(|p| {
                    !p.is_empty()
                        || f.tags.is_empty() && f.size_greater_than.is_none() && f.size_less_than.is_none()
                }),
                tag: tags_to_dto(&f.tags).into_iter().next(),
                object_size_greater_than: f.size_greater_than.map(|n| n as i64),
                object_size_less_than: f.size_less_than.map(|n| n as i64),
                ..Default::default()
            }),
            None,
        ),
    };
    let expiration =
        (r.expiration.is_some() || r.expired_object_delete_marker).then(|| LifecycleExpiration {
            days: match r.expiration {
                Some(When::Days(d)) => Some(d as i32),
                _ => None,
            },
            date: match r.expiration {
                Some(When::Date(s)) => Some(ts(s.saturating_mul(1_000_000_000))),
                _ => None,
            },
            expired_object_delete_marker: r.expired_object_delete_marker.then_some(true),
        });
    LifecycleRule {
        id: Some(r.id.clone()).filter(|i| !i.is_empty()),
        status: ExpirationStatus::from_static(if r.enabled {
            ExpirationStatus::ENABLED
        } else {
            ExpirationStatus::DISABLED
        }),
        filter,
        prefix,
        expiration,
        noncurrent_version_expiration: r.noncurrent_days.map(|d| NoncurrentVersionExpiration {
            noncurrent_days: Some(d as i32),
            newer_noncurrent_versions: r.newer_noncurrent.map(|n| n as i32),
        }),
        abort_incomplete_multipart_upload: r.abort_incomplete_days.map(|d| AbortIncompleteMultipartUpload {
            days_after_initiation: Some(d as i32),
        }),
        transitions: Some(
            r.transitions
                .iter()
                .map(|t| s3s::dto::Transition {
                    days: match t.when {
                        When::Days(d) => Some(d as i32),
                        When::Date(_) => None,
                    },
                    date: match t.when {
                        When::Date(s) => Some(ts(s.saturating_mul(1_000_000_000))),
                        When::Days(_) => None,
                    },
                    storage_class: Some(TransitionStorageClass::from(t.class.clone())),
                })
                .collect(),
        )
        .filter(|t: &Vec<_>| !t.is_empty()),
        noncurrent_version_transitions: Some(
            r.noncurrent_transitions
                .iter()
                .map(|t| NoncurrentVersionTransition {
                    noncurrent_days: Some(t.days as i32),
                    newer_noncurrent_versions: t.newer.map(|n| n as i32),
                    storage_class: Some(TransitionStorageClass::from(t.class.clone())),
                })
                .collect(),
        )
        .filter(|t: &Vec<_>| !t.is_empty()),
    }
}

/// The bucket's rules, if it has any.
pub fn rules(s3: &StrataS3, bucket: &str) -> Option<Lifecycle> {
    let raw = s3.layer.bucket_setting(bucket, BUCKET_SETTING).ok()??;
    Lifecycle::decode(&raw)
}

/// The `x-amz-expiration` value for a current version of `key` in
/// `bucket`: when the rules expire it, and which rule.
pub fn expiration(
    s3: &StrataS3,
    bucket: &str,
    key: &str,
    size: u64,
    tags: &[(String, String)],
    modified_ns: i64,
) -> Option<String> {
    let e = rules(s3, bucket)?.expiry(&s3.clock, key, size, tags, modified_ns)?;
    let date = http_date(&ts(e.at_ns))?;
    Some(format!("expiry-date=\"{date}\", rule-id=\"{}\"", e.rule))
}

pub async fn put_bucket_lifecycle_configuration(
    s3: &StrataS3,
    req: S3Request<PutBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
    let rid = rid(&req);
    let i = req.input;
    s3.layer.bucket(&i.bucket).map_err(fail(&rid))?;
    let config = i.lifecycle_configuration.ok_or_else(|| {
        to_s3(LifecycleError::Malformed(
            "The lifecycle configuration is missing".into(),
        ))
    })?;
    let rules = config
        .rules
        .into_iter()
        .map(rule_of)
        .collect::<Result<Vec<_>, _>>()
        .map_err(to_s3)?;
    let lifecycle = Lifecycle { rules };
    lifecycle.validate().map_err(to_s3)?;
    for c in lifecycle.classes() {
        let place = s3.layer.place_of(c).await.map_err(fail(&rid))?;
        if !matches!(place, Some(Place::Store(_))) {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidStorageClass,
                format!(
                    "The storage class you specified is not valid: {c} names no pool or remote tier data can move to"
                ),
            ));
        }
    }
    s3.layer
        .set_bucket_setting(&i.bucket, BUCKET_SETTING, Some(lifecycle.encode()))
        .await
        .map_err(fail(&rid))?;
    Ok(S3Response::new(PutBucketLifecycleConfigurationOutput::default()))
}

pub async fn get_bucket_lifecycle_configuration(
    s3: &StrataS3,
    req: S3Request<GetBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
    let rid = rid(&req);
    s3.layer.bucket(&req.input.bucket).map_err(fail(&rid))?;
    let l = rules(s3, &req.input.bucket).ok_or_else(|| {
        S3Error::with_message(
            S3ErrorCode::NoSuchLifecycleConfiguration,
            "The lifecycle configuration does not exist",
        )
    })?;
    Ok(S3Response::new(GetBucketLifecycleConfigurationOutput {
        rules: Some(l.rules.iter().map(dto_rule).collect()),
        ..Default::default()
    }))
}

pub async fn delete_bucket_lifecycle(
    s3: &StrataS3,
    req: S3Request<DeleteBucketLifecycleInput>,
) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
    super::delete_setting(s3, &req, &req.input.bucket, BUCKET_SETTING).await
}
