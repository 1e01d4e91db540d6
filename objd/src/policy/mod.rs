//! Policy documents, bucket policies and identity policies (attached to
//! users and groups): parsing and validation of the IAM policy grammar
//! objd supports, and evaluation of a request against a policy.
//!
//! Supported: `Version`, `Id`, and statements with `Sid`, `Effect`,
//! `Principal` (`"*"`, `{"AWS": "*"}` or principal ARNs), `Action` /
//! `NotAction` and `Resource` / `NotResource` with `*` and `?` wildcards
//! and policy variables (`${aws:username}`), and `Condition`
//! ([`condition`]). `NotPrincipal` and unknown condition keys are refused
//! with a clear message rather than ignored, since ignoring them would
//! grant more than the author meant. Evaluation follows IAM: an explicit
//! deny wins, then an allow, else the request is not granted.

pub mod condition;

use condition::Conditions;
pub use condition::Context;
use serde_json::Value;

/// Name of the bucket setting holding a bucket's policy text.
pub const BUCKET_SETTING: &str = "policy";

/// Largest bucket policy S3 accepts, in bytes.
pub const MAX_POLICY_SIZE: usize = 20 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("policies must be at most 20 KiB")]
    TooLarge,
    #[error("the policy is not valid JSON: {0}")]
    Json(String),
    #[error("{0}")]
    Malformed(String),
}

pub(crate) fn malformed<T>(msg: impl Into<String>) -> Result<T, PolicyError> {
    Err(PolicyError::Malformed(msg.into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// Who a statement applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Principals {
    /// `"*"`: everyone, including anonymous requests.
    Everyone,
    /// Principal ARNs (IAM users and roles).
    Arns(Vec<String>),
}

/// A list of patterns, or (for `Not*` elements) everything except them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Patterns {
    patterns: Vec<String>,
    negated: bool,
}

impl Patterns {
    fn matches(&self, s: &str, ignore_case: bool) -> bool {
        self.patterns.iter().any(|p| wildcard(p, s, ignore_case)) != self.negated
    }

    /// Like [`Patterns::matches`], with policy variables replaced from
    /// `ctx` (a pattern naming a key the request lacks matches nothing).
    fn matches_in(&self, s: &str, ctx: &Context) -> bool {
        let any = self
            .patterns
            .iter()
            .any(|p| ctx.substitute(p).is_some_and(|p| wildcard(&p, s, false)));
        any != self.negated
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    sid: Option<String>,
    effect: Effect,
    principals: Principals,
    actions: Patterns,
    resources: Patterns,
    conditions: Conditions,
}

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal<'a> {
    Anonymous,
    /// An authenticated principal, by ARN.
    Arn(&'a str),
}

/// The outcome of evaluating one policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    /// No statement applies.
    Neither,
}

/// A parsed, validated bucket policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    statements: Vec<Statement>,
}

/// The ARN of a bucket, or of an object in it.
pub fn resource_arn(bucket: &str, key: Option<&str>) -> String {
    match key {
        Some(k) => format!("arn:aws:s3:::{bucket}/{k}"),
        None => format!("arn:aws:s3:::{bucket}"),
    }
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) if !a.is_empty() => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.clone()),
                _ => malformed(format!("{what} entries must be strings")),
            })
            .collect(),
        _ => malformed(format!("{what} must be a string or a non-empty list of strings")),
    }
}

/// What a policy document is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope<'a> {
    /// A bucket: statements name their principals; resources lie in it.
    Bucket(&'a str),
    /// A user or group: statements name no principal; resources are any
    /// S3 ARNs.
    Identity,
}

impl Policy {
    /// Parses and validates a policy for `bucket`: every resource must lie
    /// in that bucket and every action must be an S3 action.
    pub fn parse(text: &str, bucket: &str) -> Result<Self, PolicyError> {
        Self::parse_scoped(text, Scope::Bucket(bucket))
    }

    /// Parses and validates an identity policy: no `Principal`; S3, IAM,
    /// STS, admin and KMS actions on resources of those
    /// (`arn:aws:s3:::...`, `arn:aws:iam::...`, `arn:aws:sts::...`,
    /// `arn:strata:admin:::...`, `arn:aws:kms:...`) or `*`.
    pub fn parse_identity(text: &str) -> Result<Self, PolicyError> {
        Self::parse_scoped(text, Scope::Identity)
    }

    fn parse_scoped(text: &str, scope: Scope<'_>) -> Result<Self, PolicyError> {
        if text.len() > MAX_POLICY_SIZE {
            return Err(PolicyError::TooLarge);
        }
        let doc: Value = serde_json::from_str(text).map_err(|e| PolicyError::Json(e.to_string()))?;
        let Value::Object(doc) = doc else {
            return malformed("the policy must be a JSON object");
        };
        for (k, v) in &doc {
            match k.as_str() {
                "Version" => {
                    if !matches!(v.as_str(), Some("2012-10-17" | "2008-10-17")) {
                        return malformed("Version must be 2012-10-17 or 2008-10-17");
                    }
                }
                "Id" | "Statement" => {}
                other => return malformed(format!("unknown policy element {other}")),
            }
        }
        let statements = match doc.get("Statement") {
            Some(Value::Array(a)) if !a.is_empty() => a.iter().collect::<Vec<_>>(),
            Some(s @ Value::Object(_)) => vec![s],
            _ => return malformed("the policy must have at least one Statement"),
        };
        let statements = statements
            .into_iter()
            .map(|s| parse_statement(s, scope))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { statements })
    }

    /// Whether a condition of the policy uses a key starting with `prefix`
    /// (lower case).
    pub fn mentions(&self, prefix: &str) -> bool {
        self.statements.iter().any(|s| s.conditions.mentions(prefix))
    }

    /// Evaluates `action` (e.g. `s3:GetObject`) on `resource` (an ARN from
    /// [`resource_arn`]) for `who`, with no request context.
    pub fn evaluate(&self, who: Principal<'_>, action: &str, resource: &str) -> Decision {
        self.evaluate_in(who, action, resource, &Context::default())
    }

    /// [`Policy::evaluate`] for a request whose condition keys are `ctx`.
    pub fn evaluate_in(&self, who: Principal<'_>, action: &str, resource: &str, ctx: &Context) -> Decision {
        self.explain(who, action, resource, ctx).0
    }

    /// [`Policy::evaluate_in`], with the statement that decided (its
    /// `Sid`, or its position from 1).
    pub fn explain(
        &self,
        who: Principal<'_>,
        action: &str,
        resource: &str,
        ctx: &Context,
    ) -> (Decision, Option<String>) {
        let mut allowed = None;
        for (i, s) in self.statements.iter().enumerate() {
            let applies_to = match (&s.principals, who) {
                (Principals::Everyone, _) => true,
                (Principals::Arns(arns), Principal::Arn(arn)) => arns.iter().any(|a| wildcard(a, arn, false)),
                (Principals::Arns(_), Principal::Anonymous) => false,
            };
            if applies_to
                && s.actions.matches(action, true)
                && s.resources.matches_in(resource, ctx)
                && s.conditions.hold(ctx)
            {
                let name = s.sid.clone().unwrap_or_else(|| format!("#{}", i + 1));
                match s.effect {
                    Effect::Deny => return (Decision::Deny, Some(name)),
                    Effect::Allow => {
                        allowed.get_or_insert(name);
                    }
                }
            }
        }
        match allowed {
            Some(name) => (Decision::Allow, Some(name)),
            None => (Decision::Neither, None),
        }
    }

    /// True when the policy grants anything to everyone.
    pub fn is_public(&self) -> bool {
        self.statements
            .iter()
            .any(|s| s.effect == Effect::Allow && s.principals == Principals::Everyone)
    }
}

fn parse_statement(v: &Value, scope: Scope<'_>) -> Result<Statement, PolicyError> {
    let Value::Object(s) = v else {
        return malformed("each Statement must be an object");
    };
    for k in s.keys() {
        match k.as_str() {
            "Sid" | "Effect" | "Principal" | "Action" | "NotAction" | "Resource" | "NotResource"
            | "Condition" => {}
            "NotPrincipal" => return malformed("NotPrincipal is not supported by this server"),
            other => return malformed(format!("unknown statement element {other}")),
        }
    }
    let effect = match s.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return malformed("Effect must be Allow or Deny"),
    };
    let principals = match (scope, s.get("Principal")) {
        // An identity policy applies to whoever holds it.
        (Scope::Identity, None) => Principals::Everyone,
        (Scope::Identity, Some(_)) => {
            return malformed("an identity policy names no Principal (it applies to its user or group)");
        }
        (_, Some(Value::String(p))) if p == "*" => Principals::Everyone,
        (_, Some(Value::Object(m))) => {
            let mut arns = Vec::new();
            for (k, v) in m {
                if k != "AWS" {
                    return malformed(format!("unsupported principal type {k}"));
                }
                arns.extend(strings(v, "Principal")?);
            }
            if arns.iter().any(|a| a == "*") {
                Principals::Everyone
            } else {
                Principals::Arns(arns)
            }
        }
        _ => return malformed("a bucket policy statement needs a Principal"),
    };
    let actions = match (s.get("Action"), s.get("NotAction")) {
        (Some(a), None) => Patterns {
            patterns: strings(a, "Action")?,
            negated: false,
        },
        (None, Some(a)) => Patterns {
            patterns: strings(a, "NotAction")?,
            negated: true,
        },
        _ => return malformed("a statement needs exactly one of Action and NotAction"),
    };
    // Bucket policies are about S3; identity policies may also grant the
    // IAM, STS and admin APIs.
    let services: &[&str] = match scope {
        Scope::Bucket(_) => &["s3:"],
        Scope::Identity => &["s3:", "iam:", "sts:", "admin:", "kms:"],
    };
    for a in &actions.patterns {
        let lower = a.to_ascii_lowercase();
        if a != "*" && !services.iter().any(|s| lower.starts_with(s)) {
            return malformed(format!("Policy has an invalid action: {a}"));
        }
    }
    let resources = match (s.get("Resource"), s.get("NotResource")) {
        (Some(r), None) => Patterns {
            patterns: strings(r, "Resource")?,
            negated: false,
        },
        (None, Some(r)) => Patterns {
            patterns: strings(r, "NotResource")?,
            negated: true,
        },
        _ => return malformed("a statement needs exactly one of Resource and NotResource"),
    };
    for r in &resources.patterns {
        let valid = match scope {
            Scope::Bucket(bucket) => {
                let own = resource_arn(bucket, None);
                r == &own
                    || r.strip_prefix(own.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }
            Scope::Identity => {
                r == "*"
                    || [
                        "arn:aws:s3:::",
                        "arn:aws:iam::",
                        "arn:aws:sts::",
                        "arn:strata:admin:::",
                        "arn:aws:kms:",
                    ]
                    .iter()
                    .any(|p| r.starts_with(p))
            }
        };
        if !valid {
            return malformed(format!("Policy has invalid resource: {r}"));
        }
    }
    let conditions = match s.get("Condition") {
        Some(c) => Conditions::parse(c)?,
        None => Conditions::default(),
    };
    let sid = s.get("Sid").and_then(Value::as_str).map(str::to_owned);
    Ok(Statement {
        sid,
        effect,
        principals,
        actions,
        resources,
        conditions,
    })
}

/// How a request was decided over several policies, as IAM combines
/// them: an explicit deny in any refuses, else an allow in any grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// `policy statement` that decided (`None`: nothing allowed it).
    pub decided_by: Option<String>,
}

/// Decides over `policies`, each with a name for [`Verdict::decided_by`].
pub fn decide<'a>(
    policies: impl IntoIterator<Item = (&'a str, &'a Policy)>,
    who: Principal<'_>,
    action: &str,
    resource: &str,
    ctx: &Context,
) -> Verdict {
    let mut allow = None;
    for (name, p) in policies {
        match p.explain(who, action, resource, ctx) {
            (Decision::Deny, s) => {
                return Verdict {
                    allowed: false,
                    decided_by: Some(format!("{name} {}", s.unwrap_or_default())),
                };
            }
            (Decision::Allow, s) => {
                allow.get_or_insert(format!("{name} {}", s.unwrap_or_default()));
            }
            (Decision::Neither, _) => {}
        }
    }
    Verdict {
        allowed: allow.is_some(),
        decided_by: allow,
    }
}

/// Matches `text` against `pattern` where `*` matches any run of
/// characters and `?` any one character.
pub fn wildcard(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let eq = |a: char, b: char| {
        if ignore_case {
            a.to_lowercase().eq(b.to_lowercase())
        } else {
            a == b
        }
    };
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || (p[i] != '*' && eq(p[i], t[j]))) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests;
