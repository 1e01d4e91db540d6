//! An `aws-sdk-s3` client for a test server: path-style, plain HTTP, the
//! test root credentials (or others, to test refusals).

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};

pub fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    s3_client_with(endpoint, crate::ACCESS_KEY, crate::SECRET_KEY)
}

pub fn s3_client_with(endpoint: &str, access: &str, secret: &str) -> aws_sdk_s3::Client {
    let creds = Credentials::new(access, secret, None, None, "strata-tests");
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .force_path_style(true)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}
