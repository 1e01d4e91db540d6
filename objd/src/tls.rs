//! Certificates of the listener and of the links between nodes, from a
//! certificate directory that may change under a running server.
//!
//! The directory (`--certs-dir`) holds:
//! - `public.crt` (the certificate chain, leaf first) and `private.key`:
//!   what the listener presents, and, in a cluster, what this node
//!   presents as its client certificate to the other nodes;
//! - optionally one subdirectory per host name with its own `public.crt`
//!   and `private.key`, presented to clients whose SNI name is that name
//!   or a subdomain of it (the longest match wins, the top-level pair
//!   otherwise); names starting with `.` (a Kubernetes volume's `..data`)
//!   and `CAs` are not host names;
//! - `ca.crt` and/or `CAs/*` (PEM): the cluster CA. Between nodes, each
//!   side must present a certificate that chains to it (mutual TLS).
//!
//! [`Certs::watch`] reads the directory again every [`RELOAD_EVERY`] and
//! swaps in what changed, so certificates rotate without a restart: a new
//! handshake gets the new pair, connections already open keep theirs. A
//! pair that does not load (half written, key not matching the
//! certificate) is refused with a logged error and the previous one keeps
//! serving.

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// How often the certificate directory is read again.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {why}")]
    File { path: PathBuf, why: String },
    #[error("{0}")]
    Config(String),
}

fn file_error(path: &Path, why: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        why: why.to_string(),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// One loaded state of the directory.
#[derive(Debug)]
struct Loaded {
    server: Arc<rustls::ServerConfig>,
    /// When each served certificate expires (Unix seconds), by SNI name
    /// (`default` for the one served to other names).
    expiry: Vec<(String, i64)>,
    /// How this node connects to the others (a cluster only).
    client: Option<Arc<rustls::ClientConfig>>,
}

/// The certificates of a running server.
#[derive(Debug)]
pub struct Certs {
    dir: PathBuf,
    mutual: bool,
    current: RwLock<Arc<Loaded>>,
    /// The directory's contents last read, loaded or refused.
    seen: Mutex<Vec<(PathBuf, Vec<u8>)>>,
}

impl Certs {
    /// Loads `dir`. With `mutual` (a cluster) the listener asks for client
    /// certificates chained to the cluster CA, which must then be present.
    pub fn load(dir: &Path, mutual: bool) -> Result<Arc<Self>, TlsError> {
        let files = read_dir_files(dir)?;
        let loaded = build(dir, &files, mutual)?;
        Ok(Arc::new(Self {
            dir: dir.to_owned(),
            mutual,
            current: RwLock::new(Arc::new(loaded)),
            seen: Mutex::new(files),
        }))
    }

    /// What a new incoming connection is served with.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.current.read().expect("certs lock").server)
    }

    /// When each certificate served expires, in Unix seconds, by the SNI
    /// name it is served for (`default`: the certificate for other names).
    pub fn expiry(&self) -> Vec<(String, i64)> {
        self.current.read().expect("certs lock").expiry.clone()
    }

    /// What a new connection to another node uses (`None` on one node).
    pub fn client_config(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.current.read().expect("certs lock").client.clone()
    }

    /// Reads the directory again; `Ok(true)` when a changed directory was
    /// loaded, `Ok(false)` when nothing changed, an error when the change
    /// was refused (the previous certificates stay).
    pub fn reload(&self) -> Result<bool, TlsError> {
        let files = read_dir_files(&self.dir)?;
        let mut seen = self.seen.lock().expect("certs lock");
        if *seen == files {
            return Ok(false);
        }
        let result = build(&self.dir, &files, self.mutual);
        // A refused state is not tried again until the files change again.
        *seen = files;
        let loaded = result?;
        *self.current.write().expect("certs lock") = Arc::new(loaded);
        Ok(true)
    }

    /// Reloads every [`RELOAD_EVERY`] on a background task.
    pub fn watch(self: &Arc<Self>) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let me2 = Arc::clone(&me);
                match tokio::task::spawn_blocking(move || me2.reload()).await {
                    Ok(Ok(true)) => tracing::info!(dir = %me.dir.display(), "new certificates loaded"),
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => tracing::error!(
                        error = %e,
                        "new certificates refused; the previous ones keep serving"
                    ),
                    Err(e) => tracing::error!(error = %e, "certificate reload failed"),
                }
            }
        });
    }
}

/// Every file the configuration is built from, with its contents, in a
/// fixed order (so two reads of an unchanged directory compare equal).
fn read_dir_files(dir: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>, TlsError> {
    let mut out = Vec::new();
    let mut read = |p: PathBuf, required: bool| -> Result<(), TlsError> {
        match std::fs::read(&p) {
            Ok(b) => out.push((p, b)),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(file_error(&p, e)),
        }
        Ok(())
    };
    read(dir.join("public.crt"), true)?;
    read(dir.join("private.key"), true)?;
    read(dir.join("ca.crt"), false)?;
    for (name, path) in subdirs(dir)? {
        if name == "CAs" {
            for (_, f) in entries(&path)? {
                if f.is_file() {
                    read(f, true)?;
                }
            }
        } else {
            read(path.join("public.crt"), true)?;
            read(path.join("private.key"), true)?;
        }
    }
    Ok(out)
}

/// A directory's entries by name, sorted, skipping names starting with `.`.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, TlsError> {
    let rd = std::fs::read_dir(dir).map_err(|e| file_error(dir, e))?;
    let mut v: Vec<(String, PathBuf)> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (!name.starts_with('.')).then(|| (name, e.path()))
        })
        .collect();
    v.sort();
    Ok(v)
}

fn subdirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, TlsError> {
    Ok(entries(dir)?.into_iter().filter(|(_, p)| p.is_dir()).collect())
}

fn contents<'a>(files: &'a [(PathBuf, Vec<u8>)], path: &Path) -> &'a [u8] {
    files
        .iter()
        .find(|(p, _)| p == path)
        .map_or(&[][..], |(_, b)| b.as_slice())
}

/// A certificate chain and its key, checked to belong together.
fn certified_key(
    files: &[(PathBuf, Vec<u8>)],
    dir: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let (crt, key) = (dir.join("public.crt"), dir.join("private.key"));
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(contents(files, &crt))
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(&crt, e))?;
    if chain.is_empty() {
        return Err(file_error(&crt, "no certificate in it"));
    }
    let der = PrivateKeyDer::from_pem_slice(contents(files, &key)).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => file_error(&key, "no PEM private key in it"),
        e => file_error(&key, e),
    })?;
    CertifiedKey::from_der(chain, der, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => file_error(
            &key,
            format!("is not the key of the certificate in {}", crt.display()),
        ),
        e => file_error(&key, e),
    })
}

/// The CA certificates in `ca.crt` and `CAs/`.
fn roots(files: &[(PathBuf, Vec<u8>)], dir: &Path) -> Result<RootCertStore, TlsError> {
    let cas = dir.join("CAs");
    let mut roots = RootCertStore::empty();
    for (path, bytes) in files {
        if *path != dir.join("ca.crt") && path.parent() != Some(cas.as_path()) {
            continue;
        }
        for cert in CertificateDer::pem_slice_iter(bytes) {
            let cert = cert.map_err(|e| file_error(path, e))?;
            roots.add(cert).map_err(|e| file_error(path, e))?;
        }
    }
    Ok(roots)
}

/// Picks the certificate by SNI name.
#[derive(Debug)]
struct ByName<T> {
    default: T,
    /// Lower-case host names, longest first.
    named: Vec<(String, T)>,
}

impl<T> ByName<T> {
    fn pick(&self, sni: Option<&str>) -> &T {
        let Some(sni) = sni.map(str::to_ascii_lowercase) else {
            return &self.default;
        };
        self.named
            .iter()
            .find(|(name, _)| {
                sni == *name || sni.strip_suffix(name.as_str()).is_some_and(|p| p.ends_with('.'))
            })
            .map_or(&self.default, |(_, v)| v)
    }
}

impl ResolvesServerCert for ByName<Arc<CertifiedKey>> {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(self.pick(hello.server_name())))
    }
}

/// Presents this node's own certificate to the nodes it connects to.
#[derive(Debug)]
struct ClientCert(Arc<CertifiedKey>);

impl rustls::client::ResolvesClientCert for ClientCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// One DER element of `input`: its tag, its contents and what follows.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, b| (a << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The end of an X.509 certificate's validity (RFC 5280 §4.1.2.5), in
/// Unix seconds.
pub fn not_after(cert: &[u8]) -> Option<i64> {
    let (_, cert, _) = der(cert)?;
    let (_, tbs, _) = der(cert)?;
    let (tag, _, after_version) = der(tbs)?;
    // The explicit [0] version is absent from version-1 certificates.
    let rest = if tag == 0xa0 { after_version } else { tbs };
    let (_, _, rest) = der(rest)?; // serialNumber
    let (_, _, rest) = der(rest)?; // signature
    let (_, _, rest) = der(rest)?; // issuer
    let (_, validity, _) = der(rest)?;
    let (_, _, rest) = der(validity)?; // notBefore
    let (tag, t, _) = der(rest)?;
    let t = std::str::from_utf8(t).ok()?;
    let t = match tag {
        // UTCTime, YYMMDDHHMMSSZ: years 50..99 are 19xx.
        0x17 => format!("{}{t}", if t.get(..2)? >= "50" { "19" } else { "20" }),
        // GeneralizedTime, YYYYMMDDHHMMSSZ.
        0x18 => t.to_owned(),
        _ => return None,
    };
    let n = |r: std::ops::Range<usize>| t.get(r)?.parse::<u32>().ok();
    let month = time::Month::try_from(u8::try_from(n(4..6)?).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(i32::try_from(n(0..4)?).ok()?, month, u8::try_from(n(6..8)?).ok()?)
            .ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(n(8..10)?).ok()?,
        u8::try_from(n(10..12)?).ok()?,
        u8::try_from(n(12..14)?).ok()?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_utc()
            .unix_timestamp(),
    )
}

fn build(dir: &Path, files: &[(PathBuf, Vec<u8>)], mutual: bool) -> Result<Loaded, TlsError> {
    let provider = provider();
    let config = |e: rustls::Error| TlsError::Config(e.to_string());
    let default = Arc::new(certified_key(files, dir, &provider)?);
    let mut named = Vec::new();
    for (name, path) in subdirs(dir)? {
        if name != "CAs" {
            named.push((
                name.to_ascii_lowercase(),
                Arc::new(certified_key(files, &path, &provider)?),
            ));
        }
    }
    named.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    let expires = |k: &CertifiedKey| k.end_entity_cert().ok().and_then(|c| not_after(c)).unwrap_or(0);
    let expiry = std::iter::once(("default".to_owned(), expires(&default)))
        .chain(named.iter().map(|(n, k)| (n.clone(), expires(k))))
        .collect();
    let resolver = Arc::new(ByName {
        default: Arc::clone(&default),
        named,
    });
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(config)?;
    let (mut server, client) = if mutual {
        let roots = Arc::new(roots(files, dir)?);
        if roots.is_empty() {
            return Err(TlsError::Config(format!(
                "TLS between nodes needs the cluster CA: put it in {} or {}",
                dir.join("ca.crt").display(),
                dir.join("CAs").display()
            )));
        }
        // Clients without a certificate (S3 applications) are let in;
        // the node endpoint then refuses them.
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let server = builder
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(resolver);
        let mut client = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(config)?
            .with_root_certificates(Arc::clone(&roots))
            .with_client_cert_resolver(Arc::new(ClientCert(default)));
        client.alpn_protocols = vec![b"h2".to_vec()];
        (server, Some(Arc::new(client)))
    } else {
        (builder.with_no_client_auth().with_cert_resolver(resolver), None)
    };
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Loaded {
        server: Arc::new(server),
        expiry,
        client,
    })
}

/// The name to verify a node's certificate against, from `host:port`.
pub fn server_name(addr: &str) -> Result<ServerName<'static>, TlsError> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|e| TlsError::Config(format!("{host}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_read_from_utc_and_generalized_times() {
        // Made with `openssl req -x509 -days 30` and `-days 10000`; the
        // figures are what `openssl x509 -enddate` printed, as Unix time.
        for (file, want) in [
            ("expiry-2027-01-03.crt", 1_798_949_670),
            ("expiry-2054-04-21.crt", 2_660_357_670),
        ] {
            let pem = std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures")
                    .join(file),
            )
            .unwrap();
            let cert = CertificateDer::pem_slice_iter(&pem).next().unwrap().unwrap();
            assert_eq!(not_after(&cert), Some(want), "{file}");
        }
        assert_eq!(not_after(b"\x30\x03\x02\x01"), None);
        assert_eq!(not_after(b""), None);
    }

    #[test]
    fn sni_picks_the_longest_matching_name() {
        let by = ByName {
            default: "default",
            named: vec![("s3.example.com".into(), "s3"), ("example.com".into(), "apex")],
        };
        let picked = |sni: Option<&str>| *by.pick(sni);
        assert_eq!(picked(None), "default");
        assert_eq!(picked(Some("other.org")), "default");
        assert_eq!(picked(Some("example.com")), "apex");
        assert_eq!(picked(Some("www.EXAMPLE.com")), "apex");
        assert_eq!(picked(Some("s3.example.com")), "s3");
        assert_eq!(picked(Some("bucket.s3.example.com")), "s3");
        // A suffix that is not a whole label does not match.
        assert_eq!(picked(Some("notexample.com")), "default");
    }

    #[test]
    fn node_addresses_name_the_server() {
        assert!(matches!(
            server_name("objd-1.objd:9000").unwrap(),
            ServerName::DnsName(_)
        ));
        assert!(matches!(
            server_name("10.1.2.3:9000").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[::1]:9000").unwrap(),
            ServerName::IpAddress(_)
        ));
    }
}
