//! A test certificate authority made with the openssl CLI: a CA and the
//! leaf certificates it issues (EC P-256, valid two days), each written as
//! `public.crt` and `private.key` the way `objd --certs-dir` reads them.

use crate::run_ok;
use std::path::{Path, PathBuf};

pub struct TestCa {
    dir: tempfile::TempDir,
    serial: std::cell::Cell<u64>,
}

const EC: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa {
            dir,
            serial: std::cell::Cell::new(1),
        };
        let (key, pem) = (ca.path("ca.key"), ca.path("ca.pem"));
        let subject = format!("/CN={name}");
        let mut args = vec!["req", "-x509"];
        args.extend(EC);
        args.extend([
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            &subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ]);
        run_ok("openssl", &args);
        ca
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// The CA certificate (PEM), for clients to trust.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Issues a certificate for `sans` (`IP:10.0.0.1,DNS:objd-0`) usable
    /// by servers and clients, writing `out/public.crt` and
    /// `out/private.key`; returns its serial number (hex, as openssl
    /// prints it).
    pub fn issue(&self, out: &Path, sans: &str) -> String {
        std::fs::create_dir_all(out).expect("mkdir certs");
        let n = self.serial.get();
        self.serial.set(n + 1);
        let serial = format!("{:04X}", 0x1000 + n);
        let (key, csr, crt, ext) = (
            out.join("private.key").to_string_lossy().into_owned(),
            self.path(&format!("{n}.csr")),
            out.join("public.crt").to_string_lossy().into_owned(),
            self.path(&format!("{n}.ext")),
        );
        let mut req = vec!["req"];
        req.extend(EC);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=strata test"]);
        run_ok("openssl", &req);
        std::fs::write(
            &ext,
            format!(
                "subjectAltName={sans}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"
            ),
        )
        .expect("ext file");
        let (ca_pem, ca_key) = (self.path("ca.pem"), self.path("ca.key"));
        run_ok(
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_pem,
                "-CAkey",
                &ca_key,
                "-set_serial",
                &format!("0x{serial}"),
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
        serial
    }
}

/// The serial number of the certificate served at `addr` (`host:port`)
/// for SNI name `sni`, as `openssl s_client` sees it; `None` when the
/// handshake fails.
pub fn served_serial(addr: &str, sni: &str, ca: &Path) -> Option<String> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {addr} -servername {sni} -CAfile {} -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -serial",
            ca.display()
        ))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().strip_prefix("serial=").map(str::to_owned)
}
