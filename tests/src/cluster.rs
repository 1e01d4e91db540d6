//! A cluster of real `objd` processes, each in its own network namespace
//! ([`crate::netns`]) on port 9000 of its own address, every node started
//! with the same drive arguments, as an admin would run them, and a real
//! etcd cluster (Debian's `etcd-server`), each member on a host of its
//! own. Nodes and members can be killed (`kill -9`), restarted, cut off
//! and joined back.

use crate::certs::TestCa;
use crate::netns::Net;
use crate::{objd_bin, run_admin, test_log, with_root_credentials};
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
    /// etcd members, on hosts `nodes + 1 ..= nodes + etcd_members`.
    pub etcd_members: usize,
    args: Vec<String>,
    extra: Vec<String>,
    /// `https://` between nodes: node `n`'s certificates are in `certs/n{n}`.
    tls: bool,
    children: Vec<Option<Child>>,
    etcd: Vec<Option<Child>>,
}

const ETCD_PORT: u16 = 2379;

impl Cluster {
    /// Starts `nodes` nodes of `drives` drives each and waits until every
    /// node serves S3.
    pub fn start(nodes: usize, drives: usize, extra: &[&str]) -> Cluster {
        Self::start_with(nodes, drives, 1, extra)
    }

    /// Like [`Cluster::start`] with an etcd cluster of `members`.
    pub fn start_with(nodes: usize, drives: usize, members: usize, extra: &[&str]) -> Cluster {
        Self::launch(nodes, drives, members, extra, None)
    }

    /// Like [`Cluster::start`] with TLS between the nodes (and on their S3
    /// listeners): each node gets a certificate of `ca` for its two
    /// addresses, and `ca` as the cluster CA.
    pub fn start_tls(nodes: usize, drives: usize, ca: &TestCa) -> Cluster {
        Self::launch(nodes, drives, 1, &[], Some(ca))
    }

    fn launch(nodes: usize, drives: usize, members: usize, extra: &[&str], ca: Option<&TestCa>) -> Cluster {
        let net = Net::new(nodes + members);
        let root = tempfile::tempdir().expect("tempdir");
        let scheme = if ca.is_some() { "https" } else { "http" };
        let args = (1..=nodes)
            .map(|n| {
                format!(
                    "{scheme}://{}:{PORT}{}/n{n}/d{{1...{drives}}}",
                    net.addr(n),
                    root.path().display()
                )
            })
            .collect();
        if let Some(ca) = ca {
            for n in 1..=nodes {
                let dir = root.path().join(format!("certs/n{n}"));
                ca.issue(&dir, &format!("IP:{},IP:{}", net.addr(n), net.client_addr(n)));
                std::fs::copy(ca.ca_file(), dir.join("ca.crt")).expect("copy the cluster CA");
            }
        }
        let mut c = Cluster {
            net,
            root,
            nodes,
            drives_per_node: drives,
            etcd_members: members,
            args,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            tls: ca.is_some(),
            children: (0..nodes).map(|_| None).collect(),
            etcd: (0..members).map(|_| None).collect(),
        };
        for m in 1..=members {
            c.start_etcd(m);
        }
        c.wait_etcd();
        let endpoints: Vec<String> = (1..=members)
            .map(|m| format!("http://{}:{ETCD_PORT}", c.net.addr(nodes + m)))
            .collect();
        c.extra.push("--etcd".into());
        c.extra.push(endpoints.join(","));
        let waits: Vec<_> = (1..=nodes).map(|n| c.spawn(n)).collect();
        for (n, w) in waits.into_iter().enumerate() {
            Self::wait(n + 1, w);
        }
        c
    }

    /// Host of etcd member `m` (from 1).
    pub fn etcd_host(&self, m: usize) -> usize {
        self.nodes + m
    }

    fn start_etcd(&mut self, m: usize) {
        let host = self.etcd_host(m);
        let name = |i: usize| format!("e{i}");
        let peers: Vec<String> = (1..=self.etcd_members)
            .map(|i| format!("{}=http://{}:2380", name(i), self.net.addr(self.etcd_host(i))))
            .collect();
        let addr = self.net.addr(host);
        let child = self
            .net
            .command(host, std::path::Path::new("etcd"))
            .args(["--name", &name(m)])
            .arg("--data-dir")
            .arg(self.root.path().join(format!("etcd{m}")))
            .args(["--listen-client-urls", &format!("http://0.0.0.0:{ETCD_PORT}")])
            .args(["--advertise-client-urls", &format!("http://{addr}:{ETCD_PORT}")])
            .args(["--listen-peer-urls", &format!("http://{addr}:2380")])
            .args(["--initial-advertise-peer-urls", &format!("http://{addr}:2380")])
            .args(["--initial-cluster", &peers.join(",")])
            .args([
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                "strata-test",
            ])
            .args([
                "--heartbeat-interval",
                "100",
                "--election-timeout",
                "1000",
                "--log-level",
                "error",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn etcd (Debian package etcd-server)");
        self.etcd[m - 1] = Some(child);
    }

    /// Waits until every etcd member answers with a leader.
    fn wait_etcd(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        for m in 1..=self.etcd_members {
            loop {
                if self.etcd_status(m).is_some_and(|(_, leader)| leader != "0") {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "etcd member {m} did not start"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Member id and the leader it knows, from `/v3/maintenance/status`
    /// (asked over the client network).
    pub fn etcd_status(&self, m: usize) -> Option<(String, String)> {
        let url = format!(
            "http://{}:{ETCD_PORT}/v3/maintenance/status",
            self.net.client_addr(self.etcd_host(m))
        );
        let out = std::process::Command::new("curl")
            .args(["-s", "-m", "2", "-X", "POST", "-d", "{}", &url])
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let member = v["header"]["member_id"].as_str()?.to_owned();
        let leader = v["leader"].as_str().unwrap_or("0").to_owned();
        Some((member, leader))
    }

    /// The etcd member that leads now.
    pub fn etcd_leader(&self) -> Option<usize> {
        (1..=self.etcd_members).find(|m| self.etcd_status(*m).is_some_and(|(id, leader)| id == leader))
    }

    /// The S3 endpoint of node `n` (from 1), as the test reaches it.
    pub fn endpoint(&self, n: usize) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}:{PORT}", self.net.client_addr(n))
    }

    /// Node `n`'s certificate directory (a TLS cluster).
    pub fn certs_dir(&self, n: usize) -> PathBuf {
        self.root.path().join(format!("certs/n{n}"))
    }

    /// The drive directories of node `n`.
    pub fn drives(&self, n: usize) -> Vec<PathBuf> {
        (1..=self.drives_per_node)
            .map(|d| self.root.path().join(format!("n{n}/d{d}")))
            .collect()
    }

    /// `objd server` for node `n` over the drive arguments `args`.
    fn server(&self, n: usize, args: &[String], log: &str) -> std::process::Command {
        let mut c = self.net.command(n, &objd_bin());
        c.arg("server")
            .args(args)
            .arg("--address")
            .arg(format!("0.0.0.0:{PORT}"))
            .args(&self.extra)
            .env("OBJD_LOG", log);
        if self.tls {
            c.arg("--certs-dir").arg(self.certs_dir(n));
        }
        with_root_credentials(&mut c);
        c
    }

    /// Starts node `n`; the receiver gets its first stdout line.
    fn spawn(&mut self, n: usize) -> mpsc::Receiver<String> {
        let mut child = self
            .server(n, &self.args, &test_log())
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

    /// The drive arguments every node is started with.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// Runs node `n` with other drive arguments (after [`Cluster::kill`]),
    /// expecting it to refuse to start; returns what it printed on stderr.
    pub fn refused_start(&self, n: usize, args: &[String]) -> String {
        let mut child = self
            .server(n, args, "error")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn objd");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                assert!(!status.success(), "node {n} started with other arguments");
                break;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("node {n} neither started nor refused within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut err = String::new();
        use std::io::Read;
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut err)
            .expect("stderr");
        err
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
        run_admin(&self.endpoint(n), args)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in 1..=self.nodes {
            self.kill(n);
        }
        for e in self.etcd.iter_mut().filter_map(Option::take) {
            let mut e = e;
            let _ = e.kill();
            let _ = e.wait();
        }
    }
}
