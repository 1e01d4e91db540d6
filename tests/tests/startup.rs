//! Starting objd as an operator would, including the mistakes: the answer is
//! one line naming the problem, and nothing on the drives changes.

use std::process::Command;
use strata_tests::{ACCESS_KEY, SECRET_KEY, Server, TmpfsMounts, files_below, objd_bin, s3_client};

fn objd(args: &[&str], creds: bool) -> (bool, String, String) {
    let mut c = Command::new(objd_bin());
    c.args(args)
        .env_remove("OBJD_ACCESS_KEY")
        .env_remove("OBJD_SECRET_KEY");
    if creds {
        c.env("OBJD_ACCESS_KEY", ACCESS_KEY)
            .env("OBJD_SECRET_KEY", SECRET_KEY);
    }
    let out = c.output().expect("run objd");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("objd: ")).collect()
}

/// Runs `objd server ARGS --address ADDRESS` for each case, expecting a
/// refusal whose one error line contains the case's text.
fn refused_in_one_line(cases: Vec<(Vec<String>, &str)>, address: &str) {
    for (args, want) in cases {
        let mut all = vec!["server".to_owned()];
        all.extend(args);
        all.extend(["--address".into(), address.to_owned()]);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let (ok, _, err) = objd(&all, true);
        assert!(!ok, "{all:?} started");
        let lines = error_lines(&err);
        assert!(lines.len() == 1 && lines[0].contains(want), "{all:?}: {err}");
    }
}

#[test]
fn cluster_arguments_that_cannot_work_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = |i: u32| format!("http://127.0.0.1:19431{}/d{i}", dir.path().display());
    let cases: Vec<(Vec<String>, &str)> = vec![
        // A cluster without etcd.
        (vec![d(1), d(2)], "needs etcd"),
        // Directories and URLs mixed.
        (
            vec![
                d(1),
                dir.path().join("d2").display().to_string(),
                "--etcd".into(),
                "http://127.0.0.1:1".into(),
            ],
            "mixed",
        ),
        // No URL is this node (another port).
        (
            vec![
                "http://127.0.0.1:19432/d1".into(),
                "http://127.0.0.1:19432/d2".into(),
                "--etcd".into(),
                "http://127.0.0.1:1".into(),
            ],
            "none of the nodes",
        ),
    ];
    refused_in_one_line(cases, "127.0.0.1:19431");
}

#[test]
fn tls_settings_that_cannot_work_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let ca = strata_tests::certs::TestCa::new("Startup test CA");
    // Good pair, cluster CA present.
    let good = dir.path().join("good");
    ca.issue(&good, "IP:127.0.0.1");
    std::fs::copy(ca.ca_file(), good.join("ca.crt")).unwrap();
    // Good pair, no CA.
    let no_ca = dir.path().join("no-ca");
    ca.issue(&no_ca, "IP:127.0.0.1");
    // A key of another certificate.
    let mismatched = dir.path().join("mismatched");
    ca.issue(&mismatched, "IP:127.0.0.1");
    std::fs::copy(no_ca.join("private.key"), mismatched.join("private.key")).unwrap();
    let show = |p: &std::path::Path| p.display().to_string();
    let d = |scheme: &str, i: u32| format!("{scheme}://127.0.0.1:19441{}/d{i}", dir.path().display());
    let etcd = || vec!["--etcd".to_owned(), "http://127.0.0.1:1".to_owned()];
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            [vec![d("https", 1), d("https", 2)], etcd()].concat(),
            "give --certs-dir",
        ),
        (
            [
                vec![d("http", 1), d("http", 2), "--certs-dir".into(), show(&good)],
                etcd(),
            ]
            .concat(),
            "give the drives as https://",
        ),
        (
            [
                vec![d("https", 1), d("https", 2), "--certs-dir".into(), show(&no_ca)],
                etcd(),
            ]
            .concat(),
            "needs the cluster CA",
        ),
        (
            [vec![d("https", 1), d("http", 2)], etcd()].concat(),
            "mixed http:// and https://",
        ),
        (
            vec![
                dir.path().join("one/d{1...2}").display().to_string(),
                "--certs-dir".into(),
                show(&mismatched),
            ],
            "is not the key of the certificate",
        ),
        (
            vec![
                dir.path().join("one/d{1...2}").display().to_string(),
                "--certs-dir".into(),
                show(&dir.path().join("absent")),
            ],
            "public.crt",
        ),
    ];
    refused_in_one_line(cases, "127.0.0.1:19441");
    assert!(!dir.path().join("one").exists(), "a refused start created drives");
}

#[test]
fn misordered_or_foreign_drives_are_refused_in_one_line() {
    let mut s = Server::start(4, &[]);
    s.kill();
    let d: Vec<String> = s.drives.iter().map(|p| p.display().to_string()).collect();
    // Drives 1 and 2 swapped.
    let (ok, _, err) = objd(
        &["server", &d[1], &d[0], &d[2], &d[3], "--address", "127.0.0.1:0"],
        true,
    );
    assert!(!ok);
    let lines = error_lines(&err);
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains(&d[1]) && lines[0].contains("original order"),
        "{err}"
    );
    // A drive of another deployment.
    let mut other = Server::start(4, &[]);
    other.kill();
    let foreign = other.drives[3].display().to_string();
    let (ok, _, err) = objd(
        &[
            "server",
            &d[0],
            &d[1],
            &d[2],
            &foreign,
            "--address",
            "127.0.0.1:0",
        ],
        true,
    );
    assert!(!ok);
    assert!(error_lines(&err)[0].contains("belongs to deployment"), "{err}");
    // The drives are untouched: the right order starts fine.
    s.restart();
}

#[test]
fn missing_credentials_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let d = format!("{}/d{{1...4}}", dir.path().display());
    let (ok, _, err) = objd(&["server", &d, "--address", "127.0.0.1:0"], false);
    assert!(!ok);
    let lines = error_lines(&err);
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("OBJD_ACCESS_KEY"), "{err}");
    // Nothing was formatted.
    assert!(!dir.path().join("d1").join("format.json").exists());
}

#[test]
fn json_logs_are_one_object_per_line() {
    use std::io::{BufRead, BufReader, Read};
    let dir = tempfile::tempdir().unwrap();
    let drives = format!("{}/d{{1...4}}", dir.path().display());
    let mut child = Command::new(objd_bin())
        .args([
            "server",
            &drives,
            "--address",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .env("OBJD_ACCESS_KEY", ACCESS_KEY)
        .env("OBJD_SECRET_KEY", SECRET_KEY)
        .env("OBJD_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("objd listening on "), "{line}");
    // Refused requests (anonymous, and a bad signature) are client errors:
    // logged at no ERROR level.
    let addr = line
        .trim()
        .trim_start_matches("objd listening on http://")
        .to_owned();
    for auth in [
        "",
        "Authorization: AWS4-HMAC-SHA256 Credential=strata-test/20261204/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00\r\nx-amz-date: 20261204T000000Z\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\n",
    ] {
        use std::io::Write;
        let mut conn = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            conn,
            "GET /nobucket/key HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    }
    let _ = child.kill();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let _ = child.wait();
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect();
    let serving = lines
        .iter()
        .find(|l| l["message"] == "serving S3")
        .unwrap_or_else(|| panic!("no start line in {err}"));
    assert_eq!(serving["level"], "INFO");
    assert!(serving["target"].as_str().unwrap().starts_with("objd"));
    assert!(
        serving["addr"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{serving}"
    );
    assert!(serving["timestamp"].is_string());
    assert!(!err.contains(SECRET_KEY));
    let errors: Vec<_> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
    assert!(errors.is_empty(), "client errors logged as errors: {errors:?}");
}

#[test]
fn help_documents_every_flag_with_its_environment_variable() {
    let (ok, out, _) = objd(&["server", "--help"], false);
    assert!(ok);
    for env in [
        "OBJD_ADDRESS",
        "OBJD_ACCESS_KEY",
        "OBJD_SECRET_KEY",
        "OBJD_ACCESS_KEY_FILE",
        "OBJD_SECRET_KEY_FILE",
        "OBJD_PARITY",
        "OBJD_SET_SIZE",
        "OBJD_SCANNER_INTERVAL",
        "OBJD_DRIVE_TIMEOUT",
        "OBJD_ETCD",
        "OBJD_CERTS_DIR",
        "OBJD_LOG",
        "OBJD_LOG_FORMAT",
        "OBJD_AUDIT_FILE",
        "OBJD_AUDIT_WEBHOOK",
        "OBJD_AUDIT_ELASTICSEARCH",
        "OBJD_AUDIT_QUEUE_DIR",
        "OBJD_AUDIT_QUEUE_FULL",
    ] {
        assert!(out.contains(env), "--help does not mention {env}");
    }
    let (ok, out, _) = objd(&["admin", "--help"], false);
    assert!(
        ok && out.contains("heal") && out.contains("OBJD_ENDPOINT"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drive_whose_disk_is_not_mounted_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let mounts = TmpfsMounts::new(root.path(), 4, "32m");
    let mut s = Server::start_in(root, 4, &["--scanner-interval", "0"]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("mounted").send().await.unwrap();
    c.put_object()
        .bucket("mounted")
        .key("k")
        .body(vec![5u8; 300_000].into())
        .send()
        .await
        .unwrap();
    s.kill();
    // The disk of drive 3 is gone: its mount point is an empty directory
    // of the root filesystem.
    mounts.unmount(&s.drives[2]);
    let pattern = format!("{}/d{{1...4}}", s.root.path().display());
    let (ok, _, err) = objd(&["server", &pattern, "--address", "127.0.0.1:0"], true);
    assert!(!ok);
    let lines = error_lines(&err);
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains(&s.drives[2].display().to_string())
            && lines[0].contains("not a mounted filesystem"),
        "{err}"
    );
    assert!(
        std::fs::read_dir(&s.drives[2]).unwrap().next().is_none(),
        "nothing was written below the missing disk's mount point"
    );
    // A new disk there is taken as a replacement and healed.
    mounts.mount(&s.drives[2], "32m");
    s.restart();
    let c = s3_client(&s.endpoint);
    let got = c.get_object().bucket("mounted").key("k").send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().len(), 300_000);
    s.admin(&["heal"]);
    assert!(
        !files_below(&s.drives[2].join("data")).is_empty(),
        "the replacement was healed"
    );
    s.kill();
    drop(mounts);
}
