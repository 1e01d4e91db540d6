//! Where a deployment's drives are. The drive arguments are directories
//! (one node) or `http://host:port/path` URLs (a cluster, every node given
//! the same list; `https://` for TLS between nodes); this module expands them, finds which are this node's,
//! and puts them in erasure-set order: round-robin over the nodes, so that
//! a set of `s` drives over `n` nodes holds at most `ceil(s / n)` drives
//! of any one node.

use super::ClusterError;
use crate::server::ellipsis;
use std::net::{IpAddr, ToSocketAddrs, UdpSocket};

/// Port a URL without one names.
pub const DEFAULT_PORT: u16 = 9000;

/// One drive of the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host:port` of the node serving it; `None` for a one-node deployment.
    pub node: Option<String>,
    /// The directory on that node.
    pub path: String,
    /// Whether this process serves it.
    pub local: bool,
    /// Reached over TLS (`https://`).
    pub tls: bool,
}

impl Endpoint {
    /// `http(s)://host:port/path`, or the path of a one-node deployment.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        match &self.node {
            Some(n) => format!("{scheme}://{n}{}", self.path),
            None => self.path.clone(),
        }
    }
}

/// Whether two drive URLs name the same drive (the scheme aside: a
/// cluster may turn TLS on or off between starts).
pub fn same_drive(a: &str, b: &str) -> bool {
    let bare = |u: &str| {
        u.strip_prefix("https://")
            .or_else(|| u.strip_prefix("http://"))
            .unwrap_or(u)
            .to_owned()
    };
    bare(a) == bare(b)
}

/// The drives in erasure-set order, and the nodes serving them.
#[derive(Debug, Clone)]
pub struct Layout {
    pub drives: Vec<Endpoint>,
    /// `host:port` of every node, in the order the arguments name them
    /// (empty for one node).
    pub nodes: Vec<String>,
    /// This process's node, `host:port`.
    pub this_node: Option<String>,
    /// Nodes talk over TLS (the URLs are `https://`).
    pub tls: bool,
}

impl Layout {
    pub fn is_cluster(&self) -> bool {
        !self.nodes.is_empty()
    }

    /// Every drive's [`Endpoint::url`], in set order: what a cluster's
    /// formats record, so that a node given other arguments is refused.
    pub fn urls(&self) -> Vec<String> {
        self.drives.iter().map(Endpoint::url).collect()
    }

    /// The most drives of one node in any set of `size`, with its node.
    pub fn worst_spread(&self, size: usize) -> Option<(usize, String)> {
        let mut worst: Option<(usize, String)> = None;
        for set in self.drives.chunks(size) {
            for n in &self.nodes {
                let c = set.iter().filter(|d| d.node.as_ref() == Some(n)).count();
                if worst.as_ref().is_none_or(|(w, _)| c > *w) {
                    worst = Some((c, n.clone()));
                }
            }
        }
        worst
    }
}

/// How this process recognises its own endpoints: the port it listens on,
/// and the host names and addresses that are its own.
#[derive(Debug, Clone)]
pub struct SelfId {
    pub port: u16,
    pub hostname: Option<String>,
}

impl SelfId {
    /// This machine's host name, and the port of `--address`.
    pub fn from_listen_address(address: &str) -> Result<Self, ClusterError> {
        let port = address
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .ok_or_else(|| ClusterError::Layout(format!("--address {address} has no port")))?;
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty());
        Ok(Self { port, hostname })
    }

    /// Whether `host:port` is this process: same port, and the host is this
    /// machine's name (`objd-0` or `objd-0.objd.ns.svc` on pod `objd-0`) or
    /// resolves to an address of one of its interfaces.
    fn is_me(&self, host: &str, port: u16) -> bool {
        if port != self.port {
            return false;
        }
        if let Some(h) = &self.hostname
            && (host == h || host.strip_prefix(h.as_str()).is_some_and(|r| r.starts_with('.')))
        {
            return true;
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<IpAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => (bare, port)
                .to_socket_addrs()
                .map(|a| a.map(|s| s.ip()).collect())
                .unwrap_or_default(),
        };
        // Binding succeeds only for an address this host has.
        addrs.iter().any(|ip| UdpSocket::bind((*ip, 0)).is_ok())
    }
}

/// Splits `http(s)://host[:port]/path` into whether it is `https`,
/// `host:port` and `/path`.
fn parse_url(url: &str) -> Result<(bool, String, String), ClusterError> {
    let bad = |why: &str| ClusterError::Layout(format!("drive `{url}`: {why}"));
    let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else {
        return Err(bad("expected http://host:port/path or https://host:port/path"));
    };
    let (authority, path) = rest
        .find('/')
        .map(|i| (&rest[..i], &rest[i..]))
        .ok_or_else(|| bad("no drive path after the host"))?;
    if authority.is_empty() {
        return Err(bad("no host"));
    }
    if path.len() < 2 {
        return Err(bad("no drive path after the host"));
    }
    let has_port = match authority.rfind(']') {
        Some(close) => authority[close..].contains(':'),
        None => authority.contains(':'),
    };
    let node = if has_port {
        let (h, p) = authority.rsplit_once(':').unwrap_or((authority, ""));
        let port: u16 = p.parse().map_err(|_| bad("invalid port"))?;
        format!("{h}:{port}")
    } else {
        format!("{authority}:{DEFAULT_PORT}")
    };
    Ok((tls, node, path.to_owned()))
}

/// Expands the drive arguments and lays them out.
pub fn layout(args: &[String], me: &SelfId) -> Result<Layout, ClusterError> {
    let mut expanded = Vec::new();
    for a in args {
        expanded.extend(ellipsis::expand(a).map_err(|e| ClusterError::Layout(e.to_string()))?);
    }
    let urls = expanded.iter().filter(|a| a.contains("://")).count();
    if urls == 0 {
        return Ok(Layout {
            drives: expanded
                .into_iter()
                .map(|path| Endpoint {
                    node: None,
                    path,
                    local: true,
                    tls: false,
                })
                .collect(),
            nodes: vec![],
            this_node: None,
            tls: false,
        });
    }
    if urls != expanded.len() {
        return Err(ClusterError::Layout(
            "mixed drive arguments: give either local directories (one node) or http://host:port/path URLs (a cluster), not both".into(),
        ));
    }
    // Drives per node, nodes in order of first appearance.
    let mut nodes: Vec<(String, Vec<String>)> = Vec::new();
    let mut schemes = Vec::new();
    for u in &expanded {
        let (tls, node, path) = parse_url(u)?;
        schemes.push(tls);
        match nodes.iter_mut().find(|(n, _)| *n == node) {
            Some((_, paths)) => {
                if paths.contains(&path) {
                    return Err(ClusterError::Layout(format!("drive {u} is given twice")));
                }
                paths.push(path);
            }
            None => nodes.push((node, vec![path])),
        }
    }
    let tls = schemes[0];
    if schemes.iter().any(|t| *t != tls) {
        return Err(ClusterError::Layout(
            "mixed http:// and https:// drive URLs: nodes talk either all over TLS or all without".into(),
        ));
    }
    let per_node = nodes[0].1.len();
    if let Some((n, p)) = nodes.iter().find(|(_, p)| p.len() != per_node) {
        return Err(ClusterError::Layout(format!(
            "every node needs the same number of drives: {} has {per_node}, {n} has {}",
            nodes[0].0,
            p.len()
        )));
    }
    let mine: Vec<&String> = nodes
        .iter()
        .map(|(n, _)| n)
        .filter(|n| {
            let (h, p) = n.rsplit_once(':').unwrap_or((n, ""));
            p.parse().is_ok_and(|p| me.is_me(h, p))
        })
        .collect();
    let this_node = match mine.as_slice() {
        [one] => (*one).clone(),
        [] => {
            return Err(ClusterError::Layout(format!(
                "none of the nodes ({}) is this host on port {}: give this node's own name or address among them, and --address with the same port",
                nodes
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                me.port
            )));
        }
        many => {
            return Err(ClusterError::Layout(format!(
                "several nodes ({}) are this host on port {}; each node needs its own address",
                many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                me.port
            )));
        }
    };
    let mut drives = Vec::with_capacity(expanded.len());
    for j in 0..per_node {
        for (node, paths) in &nodes {
            drives.push(Endpoint {
                node: Some(node.clone()),
                path: paths[j].clone(),
                local: *node == this_node,
                tls,
            });
        }
    }
    Ok(Layout {
        drives,
        nodes: nodes.into_iter().map(|(n, _)| n).collect(),
        this_node: Some(this_node),
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me(port: u16) -> SelfId {
        SelfId {
            port,
            hostname: Some("objd-1".into()),
        }
    }

    #[test]
    fn one_node_keeps_paths_in_order() {
        let l = layout(&["/d{1...3}".into()], &me(9000)).unwrap();
        assert!(!l.is_cluster());
        assert_eq!(l.urls(), vec!["/d1", "/d2", "/d3"]);
        assert!(l.drives.iter().all(|d| d.local));
    }

    #[test]
    fn cluster_drives_go_round_robin_over_nodes() {
        let l = layout(
            &["http://objd-{0...3}.objd.ns.svc:9000/data/d{1...2}".into()],
            &me(9000),
        )
        .unwrap();
        assert_eq!(l.nodes.len(), 4);
        assert_eq!(l.this_node.as_deref(), Some("objd-1.objd.ns.svc:9000"));
        let urls = l.urls();
        assert_eq!(urls[0], "http://objd-0.objd.ns.svc:9000/data/d1");
        assert_eq!(urls[1], "http://objd-1.objd.ns.svc:9000/data/d1");
        assert_eq!(urls[4], "http://objd-0.objd.ns.svc:9000/data/d2");
        let local: Vec<usize> = (0..8).filter(|i| l.drives[*i].local).collect();
        assert_eq!(local, vec![1, 5]);
        // Sets of 4: one drive of each node per set.
        assert_eq!(l.worst_spread(4).unwrap().0, 1);
        assert_eq!(l.worst_spread(8).unwrap().0, 2);
    }

    #[test]
    fn https_urls_mean_tls_between_nodes() {
        let l = layout(&["https://objd-{0...1}:9000/d{1...2}".into()], &me(9000)).unwrap();
        assert!(l.tls);
        assert_eq!(l.urls()[0], "https://objd-0:9000/d1");
        assert!(same_drive("https://objd-0:9000/d1", "http://objd-0:9000/d1"));
        assert!(!same_drive("https://objd-0:9000/d1", "https://objd-0:9000/d2"));
        assert!(
            !layout(&["http://objd-{0...1}:9000/d1".into()], &me(9000))
                .unwrap()
                .tls
        );
    }

    #[test]
    fn addresses_of_this_host_are_found_and_ports_tell_nodes_apart() {
        let l = layout(&["http://127.0.0.1:{9001...9003}/d{1...2}".into()], &me(9002)).unwrap();
        assert_eq!(l.this_node.as_deref(), Some("127.0.0.1:9002"));
        assert_eq!(l.drives.iter().filter(|d| d.local).count(), 2);
        // Default port.
        let l = layout(&["http://127.0.0.1/d{1...2}".into()], &me(9000)).unwrap();
        assert_eq!(l.nodes, vec!["127.0.0.1:9000"]);
    }

    #[test]
    fn bad_arguments_are_refused_with_a_reason() {
        let err = |args: &[&str], port| {
            layout(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>(), &me(port))
                .unwrap_err()
                .to_string()
        };
        assert!(err(&["http://10.255.0.1:9000/d1", "/d2"], 9000).contains("mixed"));
        assert!(err(&["http://10.255.0.{1...2}:9000/d1"], 9000).contains("none of the nodes"));
        assert!(
            err(
                &["http://127.0.0.1:9000/d{1...2}", "http://10.255.0.9:9000/d1"],
                9000
            )
            .contains("same number")
        );
        assert!(err(&["https://objd-1:9000/d1", "http://objd-1:9000/d2"], 9000).contains("mixed http"));
        assert!(err(&["ftp://objd-1:9000/d1"], 9000).contains("expected http"));
        assert!(err(&["http://objd-1:9000"], 9000).contains("no drive path"));
        assert!(err(&["http://objd-1:x/d1"], 9000).contains("port"));
        assert!(err(&["http://objd-1:9000/d1", "http://objd-1:9000/d1"], 9000).contains("twice"));
    }
}
