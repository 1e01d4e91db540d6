//! Several hosts on one machine: a network namespace per host with two
//! interfaces, one on a "cluster" bridge (host to host) and one on a
//! "client" bridge, both bridges in a switch namespace of their own. The
//! test's namespace has a port on the client bridge only, so the test's
//! clients reach every host directly. Cutting a host off is taking its
//! cluster bridge port down: a real partition between hosts, seen by its
//! peers as a silent link, while the test can still talk to the host (a
//! client on its side of the partition). Everything is removed when the
//! [`Net`] drops.
//!
//! Cluster addresses are `10.201.<k>.<host>`, client addresses
//! `10.202.<k>.<host>`, with `k` drawn per [`Net`] (several test processes
//! run at once); the test's own address is `10.202.<k>.254`.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(args: &[&str]) {
    if let Err(e) = ip(args) {
        panic!("{e}");
    }
}

/// A bridge with hosts on it.
pub struct Net {
    k: u32,
    hosts: usize,
}

impl Net {
    /// Creates `hosts` hosts (numbered from 1).
    pub fn new(hosts: usize) -> Net {
        // Claim a number no other test process holds: creating the switch
        // namespace fails when it exists.
        let first = (std::process::id() * 7 + NEXT.fetch_add(1, Ordering::Relaxed) * 31) % 250;
        let k = (0..250)
            .map(|i| (first + i) % 250)
            .find(|k| ip(&["netns", "add", &format!("st{k}sw")]).is_ok())
            .expect("no free test network number (leftover st*sw namespaces? `ip netns` lists them)");
        let net = Net { k, hosts };
        // Leftovers of a run with this number that was killed before it
        // could clean up (the number is ours now).
        net.remove_hosts();
        let sw = net.switch();
        for br in ["br0", "br1"] {
            must(&["-n", &sw, "link", "add", br, "type", "bridge"]);
            must(&["-n", &sw, "link", "set", br, "up"]);
        }
        for h in 1..=hosts {
            let ns = net.ns(h);
            must(&["netns", "add", &ns]);
            must(&["-n", &ns, "link", "set", "lo", "up"]);
            net.plug(&ns, &format!("st{k}h{h}"), "eth0", "br0", &net.addr(h));
            net.plug(&ns, &format!("st{k}h{h}c"), "eth1", "br1", &net.client_addr(h));
        }
        let (c, cb) = (net.client_if(), format!("st{k}cb"));
        must(&["link", "add", &c, "type", "veth", "peer", "name", &cb]);
        must(&["link", "set", &cb, "netns", &sw]);
        must(&["-n", &sw, "link", "set", &cb, "master", "br1"]);
        must(&["-n", &sw, "link", "set", &cb, "up"]);
        must(&["addr", "add", &format!("10.202.{k}.254/24"), "dev", &c]);
        must(&["link", "set", &c, "up"]);
        net
    }

    /// A veth pair `<pair>a`/`<pair>b`: `a` into `ns` as `name` with
    /// `addr`, `b` onto `bridge`.
    fn plug(&self, ns: &str, pair: &str, name: &str, bridge: &str, addr: &str) {
        let sw = self.switch();
        let (a, b) = (format!("{pair}a"), format!("{pair}b"));
        must(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
        must(&["link", "set", &a, "netns", ns]);
        must(&["-n", ns, "link", "set", &a, "name", name]);
        must(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", name]);
        must(&["-n", ns, "link", "set", name, "up"]);
        must(&["link", "set", &b, "netns", &sw]);
        must(&["-n", &sw, "link", "set", &b, "master", bridge]);
        must(&["-n", &sw, "link", "set", &b, "up"]);
    }

    fn switch(&self) -> String {
        format!("st{}sw", self.k)
    }

    fn client_if(&self) -> String {
        format!("st{}c", self.k)
    }

    /// The namespace of host `h`.
    pub fn ns(&self, h: usize) -> String {
        format!("st{}h{h}", self.k)
    }

    /// The address of host `h` on the cluster network.
    pub fn addr(&self, h: usize) -> String {
        format!("10.201.{}.{h}", self.k)
    }

    /// The address of host `h` that the test's clients use.
    pub fn client_addr(&self, h: usize) -> String {
        format!("10.202.{}.{h}", self.k)
    }

    /// A command run inside host `h`'s namespace.
    pub fn command(&self, h: usize, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(h)]).arg(program);
        c
    }

    /// Cuts host `h` off from every other host (its cluster link goes
    /// silent: packets are dropped, nothing is refused); the test's
    /// clients still reach it.
    pub fn cut(&self, h: usize) {
        self.cluster_port(h, "down");
    }

    /// Joins host `h` back.
    pub fn join(&self, h: usize) {
        self.cluster_port(h, "up");
    }

    /// Sets host `h`'s port on the cluster bridge `down` or `up`.
    fn cluster_port(&self, h: usize, state: &str) {
        let port = format!("st{}h{h}b", self.k);
        must(&["-n", &self.switch(), "link", "set", &port, state]);
    }

    /// Removes the hosts' namespaces and the test's own port.
    fn remove_hosts(&self) {
        for h in 1..=self.hosts.max(16) {
            let _ = ip(&["netns", "del", &self.ns(h)]);
            // Pairs not yet moved out of this namespace.
            for end in ["a", "ca"] {
                let _ = ip(&["link", "del", &format!("st{}h{h}{end}", self.k)]);
            }
        }
        let _ = ip(&["link", "del", &self.client_if()]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.remove_hosts();
        let _ = ip(&["netns", "del", &self.switch()]);
    }
}
