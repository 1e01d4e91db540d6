//! Authentication, the pipeline stage before authorization: the secret
//! key of a request's access key, against which `s3s` checks the SigV4
//! signature (header, presigned URL, streaming chunks). The root
//! credentials, temporary access keys (whose session token authorization
//! checks), then the enabled access keys of enabled IAM users; any other
//! key answers `InvalidAccessKeyId`.

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

    /// The secret a request signed with `access_key` was signed with.
    pub async fn secret(&self, access_key: &str) -> Option<String> {
        if access_key == self.root.access_key {
            return Some(self.root.secret_key.clone());
        }
        if let Some(secret) = self.iam.session_secret(access_key) {
            return Some(secret);
        }
        self.iam.secret_of(access_key).await.map(|(_, s)| s)
    }
}

#[async_trait::async_trait]
impl S3Auth for Auth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.secret(access_key).await {
            Some(secret) => Ok(SecretKey::from(secret)),
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}
