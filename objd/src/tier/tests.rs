use super::*;

#[test]
fn names_and_failures_read_as_an_operator_needs() {
    assert!(check_name("cold-1").is_ok());
    for bad in ["", "Cold", "a/b", &"x".repeat(64)] {
        assert!(matches!(check_name(bad), Err(TierError::Invalid(_))), "{bad:?}");
    }
    let refused = failure(strata_s3client::Error::S3 {
        status: 403,
        code: "InvalidAccessKeyId".into(),
        message: "no".into(),
    });
    assert!(
        refused
            .to_string()
            .contains("check the credentials given for the tier"),
        "{refused}"
    );
    let down = failure(strata_s3client::Error::Transport("connection refused".into()));
    assert!(matches!(down, TierError::Unreachable(_)));
}

#[test]
fn a_spec_never_shows_its_secret() {
    let spec: TierSpec = serde_json::from_str(
        r#"{"name":"cold","endpoint":"http://h","bucket":"b","access_key":"AK","secret_key":"very-secret"}"#,
    )
    .unwrap();
    assert_eq!(spec.region, "us-east-1");
    assert!(!format!("{spec:?}").contains("very-secret"));
}
