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
            r#"{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}"#,
            "Condition",
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
    }
}
