//! An `aws-sdk-s3` client for a test server: path-style, plain HTTP, the
//! test root credentials (or others, to test refusals).

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};

pub fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    s3_client_with(endpoint, crate::ACCESS_KEY, crate::SECRET_KEY)
}

pub fn s3_client_with(endpoint: &str, access: &str, secret: &str) -> aws_sdk_s3::Client {
    s3_client_with_token(endpoint, access, secret, None)
}

/// A client for temporary credentials (with their session token).
pub fn s3_client_with_token(
    endpoint: &str,
    access: &str,
    secret: &str,
    token: Option<String>,
) -> aws_sdk_s3::Client {
    let creds = Credentials::new(access, secret, token, None, "strata-tests");
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

/// A client that waits as long as the server makes it: the SDK's stalled
/// stream protection (which gives up on a body that does not move for five
/// seconds) is off, for tests of a server that makes requests queue.
pub fn s3_client_patient(endpoint: &str) -> aws_sdk_s3::Client {
    patient(&s3_client(endpoint))
}

/// `c` without the SDK's stalled stream protection (see
/// [`s3_client_patient`]).
pub fn patient(c: &aws_sdk_s3::Client) -> aws_sdk_s3::Client {
    let conf = c
        .config()
        .to_builder()
        .stalled_stream_protection(aws_sdk_s3::config::StalledStreamProtectionConfig::disabled())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// GET an object's whole body.
pub async fn get_object(c: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Vec<u8>, String> {
    let o = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| format!("GET {key}: {e:?}"))?;
    Ok(o.body
        .collect()
        .await
        .map_err(|e| format!("GET {key} body: {e}"))?
        .into_bytes()
        .to_vec())
}

/// PUT an object from memory.
pub async fn put_object(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    data: Vec<u8>,
) -> Result<(), String> {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from(data))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("PUT {key}: {e:?}"))
}

/// The S3 error code of a failed SDK call (`<no code>` if it has none).
pub fn err_code<E: aws_sdk_s3::error::ProvideErrorMetadata>(
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> String {
    e.as_service_error()
        .and_then(|s| s.code())
        .unwrap_or("<no code>")
        .to_owned()
}

/// The HTTP status of a failed SDK call (0 if there was no response).
pub fn err_status<E>(e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> u16 {
    e.raw_response().map_or(0, |r| r.status().as_u16())
}

/// Sets a bucket's versioning state.
pub async fn set_versioning(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    status: aws_sdk_s3::types::BucketVersioningStatus,
) {
    c.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(status)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// Uploads `parts` as parts 1, 2, ... of upload `id`; returns them as the
/// completion lists them.
pub async fn upload_parts(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    id: &str,
    parts: &[Vec<u8>],
) -> Vec<aws_sdk_s3::types::CompletedPart> {
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let r = c
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .part_number(n)
            .body(aws_sdk_s3::primitives::ByteStream::from(p.clone()))
            .send()
            .await
            .unwrap();
        done.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap())
                .build(),
        );
    }
    done
}

/// The names ListBuckets answers, in its order.
pub async fn bucket_names(c: &aws_sdk_s3::Client) -> Vec<String> {
    c.list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_owned))
        .collect()
}
