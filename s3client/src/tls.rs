//! Trust for `https://` endpoints: the system's root certificates, plus
//! the certificates of a PEM file given by the operator (a cluster's own
//! CA, say). Certificates are always verified; there is no way to turn
//! verification off.

use crate::error::{Error, Result};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::PathBuf;
use std::sync::Arc;

/// How the client trusts servers.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// PEM file of CA certificates trusted besides the system's.
    pub ca_file: Option<PathBuf>,
    /// PEM text of CA certificates trusted besides the system's (a
    /// configuration that travels between nodes, where a file would not).
    pub ca_pem: Option<Vec<u8>>,
}

impl Tls {
    /// The TLS client configuration: verified certificates, trusted as
    /// this says.
    pub fn client_config(&self) -> Result<rustls::ClientConfig> {
        let mut roots = RootCertStore::empty();
        // Unreadable system certificates are skipped; a server signed by
        // none of the rest fails its handshake with a clear error.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(path) = &self.ca_file {
            let bad = |e: String| Error::Endpoint(format!("CA file {}: {e}", path.display()));
            let mut added = 0;
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
                let cert = cert.map_err(|e| bad(e.to_string()))?;
                roots.add(cert).map_err(|e| bad(e.to_string()))?;
                added += 1;
            }
            if added == 0 {
                return Err(bad("no certificates in it".into()));
            }
        }
        if let Some(pem) = &self.ca_pem {
            let bad = |e: String| Error::Endpoint(format!("CA certificates: {e}"));
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| bad(e.to_string()))?;
                roots.add(cert).map_err(|e| bad(e.to_string()))?;
                added += 1;
            }
            if added == 0 {
                return Err(bad("no certificates in them".into()));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Endpoint(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth())
    }

    /// The connector for both `http://` and `https://` endpoints.
    pub(crate) fn connector(&self, http: HttpConnector) -> Result<HttpsConnector<HttpConnector>> {
        let config = self.client_config()?;
        Ok(HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http))
    }
}
