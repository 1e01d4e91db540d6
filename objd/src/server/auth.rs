//! Authentication, the pipeline stage before authorization: the secret
//! key of a request's access key, against which `s3s` checks the SigV4
//! signature (header, presigned URL, streaming chunks). The root
//! credentials, then the enabled access keys of enabled IAM users; any
//! other key answers `InvalidAccessKeyId`.

use super::Credentials;
use crate::iam::Iam;
use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Result, s3_error};
use std::sync::Arc;

pub struct Auth {
    root: Credentials,
    iam: Arc<Iam>,
}

impl Auth {
    pub fn new(root: Credentials, iam: Arc<Iam>) -> Self {
        Self { root, iam }
    }
}

#[async_trait::async_trait]
impl S3Auth for Auth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if access_key == self.root.access_key {
            return Ok(SecretKey::from(self.root.secret_key.as_str()));
        }
        match self.iam.secret_of(access_key).await {
            Some((_, secret)) => Ok(SecretKey::from(secret)),
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}
