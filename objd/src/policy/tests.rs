use super::*;
use proptest::prelude::*;

const PUBLIC_READ: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "read", "Effect": "Allow", "Principal": "*",
     "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::site/public/*"},
    {"Effect": "Allow", "Principal": {"AWS": ["*"]},
     "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::site"},
    {"Effect": "Deny", "Principal": "*",
     "Action": "s3:*", "Resource": "arn:aws:s3:::site/public/secret*"}
  ]
}"#;

#[test]
fn allow_deny_and_default() {
    let p = Policy::parse(PUBLIC_READ, "site").unwrap();
    let anon = Principal::Anonymous;
    let obj = |k: &str| resource_arn("site", Some(k));
    assert_eq!(
        p.evaluate(anon, "s3:GetObject", &obj("public/a.html")),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(anon, "S3:getobject", &obj("public/a.html")),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(anon, "s3:GetObject", &obj("private/a")),
        Decision::Neither
    );
    assert_eq!(
        p.evaluate(anon, "s3:PutObject", &obj("public/a.html")),
        Decision::Neither
    );
    assert_eq!(
        p.evaluate(anon, "s3:GetObject", &obj("public/secret.txt")),
        Decision::Deny
    );
    assert_eq!(
        p.evaluate(anon, "s3:ListBucket", &resource_arn("site", None)),
        Decision::Allow
    );
    assert!(p.is_public());
}

#[test]
fn principals_and_negations() {
    let doc = r#"{"Statement": {"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::000000000000:user/alice"},
        "NotAction": "s3:Delete*", "NotResource": "arn:aws:s3:::b/locked/*"}}"#;
    let p = Policy::parse(doc, "b").unwrap();
    let alice = Principal::Arn("arn:aws:iam::000000000000:user/alice");
    let key = resource_arn("b", Some("x"));
    assert_eq!(p.evaluate(alice, "s3:GetObject", &key), Decision::Allow);
    assert_eq!(p.evaluate(alice, "s3:DeleteObject", &key), Decision::Neither);
    assert_eq!(
        p.evaluate(alice, "s3:GetObject", &resource_arn("b", Some("locked/y"))),
        Decision::Neither
    );
    assert_eq!(
        p.evaluate(Principal::Anonymous, "s3:GetObject", &key),
        Decision::Neither
    );
    assert!(!p.is_public());
}

#[test]
fn refusals_name_the_problem() {
    let cases = [
        ("not json", "valid JSON"),
        ("[]", "JSON object"),
        (r#"{"Statement": []}"#, "at least one Statement"),
        (r#"{"Version": "2020-01-01", "Statement": []}"#, "Version"),
        (
            r#"{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::other/*"}]}"#,
            "invalid resource",
        ),
        (
            r#"{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ec2:RunInstances", "Resource": "arn:aws:s3:::b/*"}]}"#,
            "invalid action",
        ),
        (
            r#"{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*", "Condition": {"StringEquals": {"aws:NoSuchKey": "x"}}}]}"#,
            "aws:NoSuchKey is not supported",
        ),
        (
            r#"{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*", "Condition": {"StringSorta": {"aws:UserAgent": "x"}}}]}"#,
            "unknown condition operator StringSorta",
        ),
        (
            r#"{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/40"}}}]}"#,
            "not a valid value for IpAddress",
        ),
        (
            r#"{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*", "Condition": {"NumericLessThan": {"s3:max-keys": "ten"}}}]}"#,
            "not a valid value",
        ),
        (
            r#"{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*", "Condition": {"DateLessThan": {"aws:CurrentTime": "tomorrow"}}}]}"#,
            "not a valid value",
        ),
        (
            r#"{"Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}"#,
            "Effect",
        ),
        (
            r#"{"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}"#,
            "Principal",
        ),
        (
            r#"{"Statement": [{"Effect": "Allow", "Principal": "*", "Resource": "arn:aws:s3:::b/*"}]}"#,
            "Action",
        ),
        (
            r#"{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::bb/*"}]}"#,
            "invalid resource",
        ),
    ];
    for (doc, needle) in cases {
        let e = Policy::parse(doc, "b").unwrap_err().to_string();
        assert!(e.contains(needle), "{doc}: {e}");
    }
    assert_eq!(
        Policy::parse(&" ".repeat(MAX_POLICY_SIZE + 1), "b"),
        Err(PolicyError::TooLarge)
    );
}

fn conditioned(condition: &str) -> Policy {
    let doc = format!(
        r#"{{"Statement": [{{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*", "Condition": {condition}}}]}}"#
    );
    Policy::parse(&doc, "b").unwrap()
}

fn allows(p: &Policy, ctx: &[(&str, &str)]) -> bool {
    let mut c = Context::default();
    for (k, v) in ctx {
        c.add(k, *v);
    }
    p.evaluate_in(Principal::Anonymous, "s3:GetObject", "arn:aws:s3:::b/k", &c) == Decision::Allow
}

#[test]
fn conditions_decide_as_iam_does() {
    let ip = conditioned(r#"{"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]}}"#);
    assert!(allows(&ip, &[("aws:SourceIp", "10.1.2.3")]));
    assert!(allows(&ip, &[("aws:SourceIp", "2001:db8::1")]));
    assert!(!allows(&ip, &[("aws:SourceIp", "192.168.0.1")]));
    assert!(!allows(&ip, &[]), "a missing key fails a positive operator");
    let not_ip = conditioned(r#"{"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#);
    assert!(!allows(&not_ip, &[("aws:SourceIp", "10.1.2.3")]));
    assert!(allows(&not_ip, &[("aws:SourceIp", "192.168.0.1")]));
    assert!(allows(&not_ip, &[]), "a missing key passes a negated operator");
    // Several values: any for a positive operator, none for a negated one.
    let ne = conditioned(r#"{"StringNotEquals": {"aws:UserAgent": ["a", "b"]}}"#);
    assert!(!allows(&ne, &[("aws:UserAgent", "a")]));
    assert!(allows(&ne, &[("aws:UserAgent", "c")]));
    // Every operator and every key must hold.
    let both = conditioned(
        r#"{"Bool": {"aws:SecureTransport": "true"}, "StringLike": {"aws:UserAgent": "aws-cli/*", "aws:Referer": "https://*.example.com/*"}}"#,
    );
    let full = [
        ("aws:SecureTransport", "true"),
        ("aws:UserAgent", "aws-cli/2.15"),
        ("aws:Referer", "https://www.example.com/page"),
    ];
    assert!(allows(&both, &full));
    assert!(!allows(&both, &full[..2]));
    assert!(!allows(
        &both,
        &[("aws:SecureTransport", "false"), full[1], full[2]]
    ));
    // IfExists passes on a missing key; Null tests presence.
    let if_exists = conditioned(r#"{"StringEqualsIfExists": {"s3:x-amz-acl": "private"}}"#);
    assert!(allows(&if_exists, &[]));
    assert!(!allows(&if_exists, &[("s3:x-amz-acl", "public-read")]));
    let null = conditioned(r#"{"Null": {"s3:x-amz-server-side-encryption": "true"}}"#);
    assert!(allows(&null, &[]));
    assert!(!allows(&null, &[("s3:x-amz-server-side-encryption", "AES256")]));
    // Numbers and dates.
    let n = conditioned(r#"{"NumericLessThanEquals": {"s3:max-keys": 100}}"#);
    assert!(allows(&n, &[("s3:max-keys", "100")]) && !allows(&n, &[("s3:max-keys", "101")]));
    let d = conditioned(r#"{"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}"#);
    assert!(allows(&d, &[("aws:CurrentTime", "2029-12-31T23:59:59Z")]));
    assert!(!allows(&d, &[("aws:CurrentTime", "2030-01-01T00:00:00Z")]));
    let e = conditioned(r#"{"NumericGreaterThan": {"aws:EpochTime": 1000}}"#);
    assert!(allows(&e, &[("aws:EpochTime", "1001")]));
    // Set qualifiers over a multi-valued key.
    let any = conditioned(r#"{"ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys": ["team", "owner"]}}"#);
    let all = conditioned(r#"{"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["team", "owner"]}}"#);
    let tags = [
        ("s3:RequestObjectTagKeys", "team"),
        ("s3:RequestObjectTagKeys", "cost"),
    ];
    assert!(allows(&any, &tags) && !allows(&all, &tags));
    assert!(allows(&all, &tags[..1]));
    assert!(!allows(&any, &[]) && allows(&all, &[]));
    // Keys and operator names: keys case-insensitive, like AWS.
    let ci = conditioned(r#"{"StringEquals": {"S3:PREFIX": "home/"}}"#);
    assert!(allows(&ci, &[("s3:prefix", "home/")]));
}

#[test]
fn policy_variables_stand_for_the_caller() {
    let doc = r#"{"Statement": [{"Effect": "Allow", "Action": "s3:*",
        "Resource": "arn:aws:s3:::home/${aws:username}/*",
        "Condition": {"StringLike": {"s3:prefix": ["${aws:username}/*", "$${*}"]}}}]}"#;
    let p = Policy::parse_identity(doc).unwrap();
    let mut ctx = Context::default();
    ctx.set("aws:username", "alice");
    ctx.set("s3:prefix", "alice/docs");
    let anon = Principal::Anonymous;
    assert_eq!(
        p.evaluate_in(anon, "s3:GetObject", "arn:aws:s3:::home/alice/x", &ctx),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate_in(anon, "s3:GetObject", "arn:aws:s3:::home/bob/x", &ctx),
        Decision::Neither
    );
    // Without a user name the resource names no one.
    let mut anonymous = Context::default();
    anonymous.set("s3:prefix", "alice/docs");
    assert_eq!(
        p.evaluate_in(anon, "s3:GetObject", "arn:aws:s3:::home/alice/x", &anonymous),
        Decision::Neither
    );
    assert_eq!(ctx.substitute("a${*}b${?}${$}"), Some("a*b?$".into()));
}

#[test]
fn wildcards() {
    assert!(wildcard("a*c", "abbbc", false));
    assert!(wildcard("a*", "a", false));
    assert!(wildcard("*", "", false));
    assert!(wildcard("a?c", "abc", false));
    assert!(!wildcard("a?c", "ac", false));
    assert!(!wildcard("a*c", "abd", false));
    assert!(wildcard("*/*.jpg", "x/y/z.jpg", false));
    assert!(!wildcard("ABC", "abc", false));
    assert!(wildcard("ABC", "abc", true));
}

proptest! {
    #[test]
    fn a_star_pattern_matches_what_it_was_cut_from(s in "[a-c/]{0,12}", a in 0usize..13, b in 0usize..13) {
        let (a, b) = (a.min(s.len()), b.min(s.len()));
        let (a, b) = (a.min(b), a.max(b));
        let pattern = format!("{}*{}", &s[..a], &s[b..]);
        prop_assert!(wildcard(&pattern, &s, false));
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(s in ".{0,200}") {
        let _ = Policy::parse(&s, "b");
        let _ = Policy::parse_identity(&s);
    }

    #[test]
    fn arbitrary_conditions_parse_or_refuse_and_evaluate_without_panics(
        op in "(ForAnyValue:|ForAllValues:)?(String|Numeric|Date|Bool|Ip|Arn|Null|Not)[A-Za-z]{0,12}",
        key in "(aws|s3):[A-Za-z/-]{1,20}",
        value in ".{0,20}",
        got in ".{0,20}",
    ) {
        let cond = serde_json::json!({ op: { key.clone(): value } });
        let doc = serde_json::json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": cond}]});
        if let Ok(p) = Policy::parse_identity(&doc.to_string()) {
            let mut ctx = Context::default();
            ctx.set(&key, got);
            let _ = p.evaluate_in(Principal::Anonymous, "s3:GetObject", "arn:aws:s3:::b/k", &ctx);
        }
    }
}
