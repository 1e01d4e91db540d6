//! A cluster of real `objd` processes, each in its own network namespace
//! ([`crate::netns`]) on port 9000 of its own address, every node started
//! with the same drive arguments, as an admin would run them. Nodes can be
//! killed (`kill -9`), restarted, cut off and joined back.

use crate::netns::Net;
use crate::{ACCESS_KEY, SECRET_KEY, objd_bin};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const PORT: u16 = 9000;

pub struct Cluster {
    pub net: Net,
    pub root: tempfile::TempDir,
    pub nodes: usize,
    pub drives_per_node: usize,
    args: Vec<String>,
    extra: Vec<String>,
    children: Vec<Option<Child>>,
}

impl Cluster {
    /// Starts `nodes` nodes of `drives` drives each and waits until every
    /// node serves S3.
    pub fn start(nodes: usize, drives: usize, extra: &[&str]) -> Cluster {
        let net = Net::new(nodes);
        let root = tempfile::tempdir().expect("tempdir");
        let args = (1..=nodes)
            .map(|n| {
                format!(
                    "http://{}:{PORT}{}/n{n}/d{{1...{drives}}}",
                    net.addr(n),
                    root.path().display()
                )
            })
            .collect();
        let mut c = Cluster {
            net,
            root,
            nodes,
            drives_per_node: drives,
            args,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            children: (0..nodes).map(|_| None).collect(),
        };
        let waits: Vec<_> = (1..=nodes).map(|n| c.spawn(n)).collect();
        for (n, w) in waits.into_iter().enumerate() {
            Self::wait(n + 1, w);
        }
        c
    }

    /// The S3 endpoint of node `n` (from 1), as the test reaches it.
    pub fn endpoint(&self, n: usize) -> String {
        format!("http://{}:{PORT}", self.net.client_addr(n))
    }

    /// The drive directories of node `n`.
    pub fn drives(&self, n: usize) -> Vec<PathBuf> {
        (1..=self.drives_per_node)
            .map(|d| self.root.path().join(format!("n{n}/d{d}")))
            .collect()
    }

    /// Starts node `n`; the receiver gets its first stdout line.
    fn spawn(&mut self, n: usize) -> mpsc::Receiver<String> {
        let mut child = self
            .net
            .command(n, &objd_bin())
            .arg("server")
            .args(&self.args)
            .arg("--address")
            .arg(format!("0.0.0.0:{PORT}"))
            .args(&self.extra)
            .env("OBJD_ACCESS_KEY", ACCESS_KEY)
            .env("OBJD_SECRET_KEY", SECRET_KEY)
            .env(
                "OBJD_LOG",
                std::env::var("OBJD_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn objd");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        self.children[n - 1] = Some(child);
        rx
    }

    fn wait(n: usize, rx: mpsc::Receiver<String>) {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("node {n} did not start within 60 s"));
        assert!(
            line.starts_with("objd listening on "),
            "node {n} did not start: {line:?}"
        );
    }

    /// `kill -9` of node `n`.
    pub fn kill(&mut self, n: usize) {
        if let Some(mut c) = self.children[n - 1].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts node `n` again (after [`Cluster::kill`]) and waits for it.
    pub fn restart(&mut self, n: usize) {
        self.kill(n);
        let rx = self.spawn(n);
        Self::wait(n, rx);
    }

    /// Runs `objd admin ARGS` against node `n`; returns stdout.
    pub fn admin(&self, n: usize, args: &[&str]) -> String {
        let out = std::process::Command::new(objd_bin())
            .arg("admin")
            .arg("--endpoint")
            .arg(self.endpoint(n))
            .args(args)
            .env("OBJD_ACCESS_KEY", ACCESS_KEY)
            .env("OBJD_SECRET_KEY", SECRET_KEY)
            .output()
            .expect("run objd admin");
        assert!(
            out.status.success(),
            "objd admin {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in 1..=self.nodes {
            self.kill(n);
        }
    }
}
