//! How the driver reaches objd: the endpoint, the CAs it trusts, and the
//! credentials it uses when a request carries none in its CSI secrets.

use crate::volume::credentials;
use std::collections::HashMap;
use strata_s3client::{Client, Signer, Tls};
use tonic::Status;

#[derive(Debug, Clone)]
pub struct Backend {
    pub endpoint: String,
    pub tls: Tls,
    /// Credentials of the driver itself (controller), if configured.
    pub credentials: Option<(String, String)>,
}

impl Backend {
    /// A client with the request's secrets, else the driver's own
    /// credentials; a request that needs credentials and has neither is
    /// `INVALID_ARGUMENT`.
    pub fn client(&self, secrets: &HashMap<String, String>) -> Result<Client, Status> {
        let (access, secret) = credentials(secrets)
            .or_else(|| self.credentials.clone())
            .ok_or_else(|| Status::invalid_argument("secrets with accessKey and secretKey are required"))?;
        Client::with_tls(
            &self.endpoint,
            Signer::new(access, secret, "us-east-1"),
            &self.tls,
        )
        .map(|c| c.with_timeout(std::time::Duration::from_secs(30)))
        .map_err(|e| Status::internal(format!("objd endpoint: {e}")))
    }
}
