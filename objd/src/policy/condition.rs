//! The `Condition` element: operators, the condition keys objd knows, and
//! evaluation against a request's [`Context`].
//!
//! A condition block holds if every operator in it holds; an operator
//! holds if every key under it holds; a key holds if the request's value
//! matches any of the policy's values (for a negated operator such as
//! `StringNotEquals`: matches none of them). A key the request does not
//! have fails a positive operator and passes a negated one; `...IfExists`
//! passes on a missing key; `Null` tests presence. `ForAnyValue:` and
//! `ForAllValues:` compare a multi-valued key's values as sets (a missing
//! key fails `ForAnyValue` and passes `ForAllValues`). Keys objd does not
//! know are refused when the policy is set, never ignored.

use super::{PolicyError, malformed, wildcard};
use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;

/// The condition keys a request can carry (lower case), and key families
/// ending in `/`.
const KEYS: &[&str] = &[
    "aws:sourceip",
    "aws:securetransport",
    "aws:currenttime",
    "aws:epochtime",
    "aws:useragent",
    "aws:referer",
    "aws:username",
    "aws:userid",
    "aws:principaltype",
    "aws:principalarn",
    "s3:prefix",
    "s3:delimiter",
    "s3:max-keys",
    "s3:x-amz-acl",
    "s3:x-amz-server-side-encryption",
    "s3:x-amz-copy-source",
    "s3:x-amz-metadata-directive",
    "s3:x-amz-storage-class",
    "s3:versionid",
    "s3:signatureversion",
    "s3:authtype",
    "s3:requestobjecttagkeys",
];
const KEY_FAMILIES: &[&str] = &["s3:requestobjecttag/", EXISTING_OBJECT_TAG];

/// The key family of an existing object's tags: read from the object only
/// when a policy that applies uses it.
pub const EXISTING_OBJECT_TAG: &str = "s3:existingobjecttag/";

/// What a request brings to condition evaluation: values by key (lower
/// case), several for multi-valued keys.
#[derive(Debug, Clone, Default)]
pub struct Context {
    values: HashMap<String, Vec<String>>,
}

impl Context {
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.to_ascii_lowercase(), vec![value.into()]);
    }

    pub fn add(&mut self, key: &str, value: impl Into<String>) {
        self.values
            .entry(key.to_ascii_lowercase())
            .or_default()
            .push(value.into());
    }

    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.values.get(&key.to_ascii_lowercase()).map(Vec::as_slice)
    }

    /// `text` with its policy variables (`${aws:username}`, and `${*}`,
    /// `${?}`, `${$}` for the literal characters) replaced; `None` when a
    /// variable names a key the request does not have.
    pub fn substitute(&self, text: &str) -> Option<String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[i..]);
                return Some(out);
            };
            let name = &after[..end];
            match name {
                "*" | "?" | "$" => out.push_str(name),
                key => out.push_str(self.get(key)?.first()?),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Some(out)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    StringIgnoreCase,
    StringLike,
    Numeric(std::cmp::Ordering, bool),
    Date(std::cmp::Ordering, bool),
    Bool,
    Ip,
    ArnEquals,
    ArnLike,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    AnyValue,
    AllValues,
}

/// One key under one operator.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Test {
    kind: Option<Kind>,
    negated: bool,
    if_exists: bool,
    set: Option<SetQualifier>,
    key: String,
    values: Vec<String>,
}

/// A statement's condition block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions(Vec<Test>);

impl Conditions {
    /// Whether a test uses a key starting with `prefix` (lower case).
    pub fn mentions(&self, prefix: &str) -> bool {
        self.0
            .iter()
            .any(|t| t.key.to_ascii_lowercase().starts_with(prefix))
    }
}

/// Operator name (without qualifier and `IfExists`) -> kind and negation;
/// `None` kind is `Null`.
fn operator(name: &str) -> Option<(Option<Kind>, bool)> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    Some(match name {
        "StringEquals" => (Some(Kind::String), false),
        "StringNotEquals" => (Some(Kind::String), true),
        "StringEqualsIgnoreCase" => (Some(Kind::StringIgnoreCase), false),
        "StringNotEqualsIgnoreCase" => (Some(Kind::StringIgnoreCase), true),
        "StringLike" => (Some(Kind::StringLike), false),
        "StringNotLike" => (Some(Kind::StringLike), true),
        "NumericEquals" => (Some(Kind::Numeric(Equal, false)), false),
        "NumericNotEquals" => (Some(Kind::Numeric(Equal, false)), true),
        "NumericLessThan" => (Some(Kind::Numeric(Less, false)), false),
        "NumericLessThanEquals" => (Some(Kind::Numeric(Less, true)), false),
        "NumericGreaterThan" => (Some(Kind::Numeric(Greater, false)), false),
        "NumericGreaterThanEquals" => (Some(Kind::Numeric(Greater, true)), false),
        "DateEquals" => (Some(Kind::Date(Equal, false)), false),
        "DateNotEquals" => (Some(Kind::Date(Equal, false)), true),
        "DateLessThan" => (Some(Kind::Date(Less, false)), false),
        "DateLessThanEquals" => (Some(Kind::Date(Less, true)), false),
        "DateGreaterThan" => (Some(Kind::Date(Greater, false)), false),
        "DateGreaterThanEquals" => (Some(Kind::Date(Greater, true)), false),
        "Bool" => (Some(Kind::Bool), false),
        "IpAddress" => (Some(Kind::Ip), false),
        "NotIpAddress" => (Some(Kind::Ip), true),
        "ArnEquals" => (Some(Kind::ArnEquals), false),
        "ArnNotEquals" => (Some(Kind::ArnEquals), true),
        "ArnLike" => (Some(Kind::ArnLike), false),
        "ArnNotLike" => (Some(Kind::ArnLike), true),
        "Null" => (None, false),
        _ => return None,
    })
}

fn known_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    KEYS.contains(&k.as_str()) || KEY_FAMILIES.iter().any(|f| k.starts_with(f) && k.len() > f.len())
}

/// Policy values: strings, numbers and booleans, one or a list.
fn values(v: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    let one = |x: &Value| match x {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => malformed(format!(
            "the values of {what} must be strings, numbers or booleans"
        )),
    };
    match v {
        Value::Array(a) if !a.is_empty() => a.iter().map(one).collect(),
        Value::Array(_) => malformed(format!("{what} has no values")),
        x => Ok(vec![one(x)?]),
    }
}

fn parse_date(s: &str) -> Option<i64> {
    if let Ok(secs) = s.parse::<i64>() {
        return Some(secs);
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some(t.unix_timestamp())
}

/// A CIDR block (or one address) and whether `ip` is in it; `None` when
/// the block is not one.
fn in_block(block: &str, ip: IpAddr) -> Option<bool> {
    let (addr, bits) = match block.split_once('/') {
        Some((a, b)) => (a.parse::<IpAddr>().ok()?, Some(b.parse::<u32>().ok()?)),
        None => (block.parse::<IpAddr>().ok()?, None),
    };
    let as_bits = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    };
    let (a, width) = as_bits(addr);
    let bits = bits.unwrap_or(width);
    if bits > width {
        return None;
    }
    let (i, ip_width) = as_bits(ip);
    if ip_width != width {
        return Some(false);
    }
    let shift = width - bits;
    Some(shift == 128 || a >> shift == i >> shift)
}

impl Conditions {
    pub fn parse(v: &Value) -> Result<Self, PolicyError> {
        let Value::Object(ops) = v else {
            return malformed("Condition must be an object of operators");
        };
        let mut tests = Vec::new();
        for (op, keys) in ops {
            let (set, rest) = if let Some(r) = op.strip_prefix("ForAnyValue:") {
                (Some(SetQualifier::AnyValue), r)
            } else if let Some(r) = op.strip_prefix("ForAllValues:") {
                (Some(SetQualifier::AllValues), r)
            } else {
                (None, op.as_str())
            };
            let (if_exists, base) = match rest.strip_suffix("IfExists") {
                Some(b) if b != "Null" => (true, b),
                _ => (false, rest),
            };
            let Some((kind, negated)) = operator(base) else {
                return malformed(format!("unknown condition operator {op}"));
            };
            let Value::Object(keys) = keys else {
                return malformed(format!("{op} must map condition keys to values"));
            };
            for (key, v) in keys {
                if !known_key(key) {
                    return malformed(format!("condition key {key} is not supported by this server"));
                }
                let values = values(v, key)?;
                for value in &values {
                    let ok = match kind {
                        None | Some(Kind::Bool) => matches!(value.as_str(), "true" | "false"),
                        Some(Kind::Numeric(..)) => value.parse::<f64>().is_ok(),
                        Some(Kind::Date(..)) => parse_date(value).is_some(),
                        Some(Kind::Ip) => in_block(value, IpAddr::from([0, 0, 0, 0])).is_some(),
                        _ => true,
                    };
                    if !ok {
                        return malformed(format!("{value:?} is not a valid value for {op}"));
                    }
                }
                tests.push(Test {
                    kind,
                    negated,
                    if_exists,
                    set,
                    key: key.clone(),
                    values,
                });
            }
        }
        Ok(Self(tests))
    }

    /// Whether every test holds for `ctx`.
    pub fn hold(&self, ctx: &Context) -> bool {
        self.0.iter().all(|t| t.holds(ctx))
    }
}

impl Test {
    fn holds(&self, ctx: &Context) -> bool {
        let got = ctx.get(&self.key).filter(|v| !v.is_empty());
        let Some(kind) = self.kind else {
            // Null: "true" means the key is absent.
            let absent = got.is_none();
            return self.values.iter().any(|v| (v == "true") == absent);
        };
        let Some(got) = got else {
            return match self.set {
                Some(SetQualifier::AllValues) => true,
                Some(SetQualifier::AnyValue) => false,
                None => self.if_exists || self.negated,
            };
        };
        let one = |value: &str| {
            let m = self.values.iter().any(|p| match ctx.substitute(p) {
                Some(p) => compare(kind, value, &p),
                None => false,
            });
            m != self.negated
        };
        match self.set {
            Some(SetQualifier::AllValues) => got.iter().all(|v| one(v)),
            Some(SetQualifier::AnyValue) => got.iter().any(|v| one(v)),
            None => one(&got[0]),
        }
    }
}

fn compare(kind: Kind, value: &str, policy: &str) -> bool {
    use std::cmp::Ordering;
    let ordered =
        |o: Ordering, want: Ordering, or_equal: bool| o == want || (or_equal && o == Ordering::Equal);
    match kind {
        Kind::String | Kind::ArnEquals => value == policy,
        Kind::StringIgnoreCase => value.eq_ignore_ascii_case(policy),
        Kind::StringLike | Kind::ArnLike => wildcard(policy, value, false),
        Kind::Numeric(want, or_equal) => match (value.parse::<f64>(), policy.parse::<f64>()) {
            (Ok(v), Ok(p)) => v.partial_cmp(&p).is_some_and(|o| ordered(o, want, or_equal)),
            _ => false,
        },
        Kind::Date(want, or_equal) => match (parse_date(value), parse_date(policy)) {
            (Some(v), Some(p)) => ordered(v.cmp(&p), want, or_equal),
            _ => false,
        },
        Kind::Bool => value.eq_ignore_ascii_case(policy),
        Kind::Ip => value
            .parse::<IpAddr>()
            .ok()
            .and_then(|ip| in_block(policy, ip))
            .unwrap_or(false),
    }
}
