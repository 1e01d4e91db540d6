//! The `objd` command line: `objd server` runs the daemon, `objd admin`
//! talks to a running one.

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use objd::cluster::{self, layout};
use objd::drive::rpc::NodeKey;
use objd::object::{LayerConfig, ObjectLayer};
use objd::server::{self, Credentials, startup};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "objd",
    version,
    about = "Strata object daemon: erasure-coded, S3-compatible object storage"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the object server over a set of drives.
    Server(ServerArgs),
    /// Administer a running server.
    Admin(AdminArgs),
}

#[derive(Args, Debug)]
struct CredentialArgs {
    /// Root access key.
    #[arg(long, env = "OBJD_ACCESS_KEY", hide_env_values = true)]
    access_key: Option<String>,
    /// Root secret key. Prefer the environment or --secret-key-file: command
    /// lines are visible to every user of the machine.
    #[arg(long, env = "OBJD_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// File holding the root access key (for example a mounted Kubernetes Secret).
    #[arg(long, env = "OBJD_ACCESS_KEY_FILE")]
    access_key_file: Option<PathBuf>,
    /// File holding the root secret key.
    #[arg(long, env = "OBJD_SECRET_KEY_FILE")]
    secret_key_file: Option<PathBuf>,
}

impl CredentialArgs {
    fn resolve(&self) -> Result<Credentials> {
        let read = |p: &PathBuf| -> Result<String> {
            Ok(std::fs::read_to_string(p)
                .with_context(|| format!("reading {}", p.display()))?
                .trim()
                .to_owned())
        };
        let access_key = match (&self.access_key_file, &self.access_key) {
            (Some(p), _) => read(p)?,
            (None, Some(k)) => k.clone(),
            (None, None) => bail!("no root access key: set OBJD_ACCESS_KEY (or OBJD_ACCESS_KEY_FILE)"),
        };
        let secret_key = match (&self.secret_key_file, &self.secret_key) {
            (Some(p), _) => read(p)?,
            (None, Some(k)) => k.clone(),
            (None, None) => bail!("no root secret key: set OBJD_SECRET_KEY (or OBJD_SECRET_KEY_FILE)"),
        };
        if access_key.len() < 3 {
            bail!("the root access key must be at least 3 characters");
        }
        if secret_key.len() < 8 {
            bail!("the root secret key must be at least 8 characters");
        }
        Ok(Credentials {
            access_key,
            secret_key,
        })
    }
}

#[derive(Args, Debug)]
struct ServerArgs {
    /// Drive directories; `{A...B}` expands (`/data/d{1...6}` is six drives).
    /// For a cluster, every node's drives as URLs, the same on every node
    /// (`http://objd-{0...3}.objd:9000/data/d{1...4}`); see docs/cluster.md.
    /// Give the same drives in the same order at every start.
    #[arg(required = true, env = "OBJD_DRIVES", value_delimiter = ' ')]
    drives: Vec<String>,
    /// Address to listen on for S3, admin and health requests.
    #[arg(long, env = "OBJD_ADDRESS", default_value = "0.0.0.0:9000")]
    address: String,
    /// Parity shards per erasure set, `EC:N` (default: 1 for 2-3 drives,
    /// 2 for 4-5, 3 for 6-7, 4 for 8 or more). Fixed at first start.
    #[arg(long, env = "OBJD_PARITY")]
    parity: Option<String>,
    /// Drives per erasure set (default: all drives up to 16, else the
    /// largest size from 16 down to 4 that divides the drive count).
    #[arg(long, env = "OBJD_SET_SIZE")]
    set_size: Option<usize>,
    /// Seconds between background integrity scans of every object (0 turns
    /// the scanner off; reads and `objd admin heal` still heal).
    #[arg(long, env = "OBJD_SCANNER_INTERVAL", default_value_t = 86_400)]
    scanner_interval: u64,
    /// How much the scanner yields: after each object it sleeps this many
    /// times the time the object took.
    #[arg(long, env = "OBJD_SCANNER_PACE", default_value_t = 10.0)]
    scanner_pace: f64,
    /// Domain names for virtual-host-style requests (`bucket.DOMAIN`),
    /// comma-separated; path-style requests always work.
    #[arg(long = "domain", env = "OBJD_DOMAIN", value_delimiter = ',')]
    domains: Vec<String>,
    /// Seconds a client may send no request body data before the request
    /// fails and its connection is closed.
    #[arg(long, env = "OBJD_IDLE_TIMEOUT", default_value_t = 60)]
    idle_timeout: u64,
    /// Shortest session, in seconds, that STS grants (AssumeRole's
    /// `DurationSeconds`). STS's minimum is 900; lower it only to test
    /// session expiry.
    #[arg(long, env = "OBJD_STS_MIN_DURATION", default_value_t = objd::iam::sts::MIN_DURATION)]
    sts_min_duration: u64,
    /// Objects up to this many bytes are stored inside their metadata.
    #[arg(long, env = "OBJD_INLINE_LIMIT", default_value_t = 128 * 1024)]
    inline_limit: usize,
    /// Seconds a write waits for one drive's shard write or commit before
    /// counting that drive as failed for the request (a hung disk does not
    /// hang writes that the other drives can take).
    #[arg(long, env = "OBJD_DRIVE_TIMEOUT", default_value_t = 30)]
    drive_timeout: u64,
    /// etcd endpoints of a cluster (`http://etcd-0:2379,http://etcd-1:2379`):
    /// bucket changes are serialized and announced through etcd. Required
    /// when the drives are URLs of several nodes; unused by a single node.
    #[arg(long, env = "OBJD_ETCD", value_delimiter = ',')]
    etcd: Vec<String>,
    /// Serve HTTPS with the certificates of this directory: `public.crt` and
    /// `private.key`, per-host-name subdirectories chosen by SNI, and (for
    /// a cluster's https:// drive URLs) the cluster CA as `ca.crt` or in
    /// `CAs/`. Changed files are picked up without a restart; see docs/tls.md.
    #[arg(long, env = "OBJD_CERTS_DIR")]
    certs_dir: Option<PathBuf>,
    /// Log filter (`info`, `debug`, `objd=debug,s3s=info`, ...).
    #[arg(long, env = "OBJD_LOG", default_value = "info")]
    log: String,
    #[command(flatten)]
    credentials: CredentialArgs,
}

#[derive(Args, Debug)]
struct AdminArgs {
    /// URL of the server.
    #[arg(
        long,
        env = "OBJD_ENDPOINT",
        default_value = "http://127.0.0.1:9000",
        global = true
    )]
    endpoint: String,
    /// PEM file of CA certificates to trust for an https:// endpoint,
    /// besides the system's.
    #[arg(long, env = "OBJD_CA_FILE", global = true)]
    ca_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    credentials: CredentialArgs,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Heal every object (or one bucket's): rebuild missing or corrupt
    /// shards and restore full redundancy, printing progress.
    Heal {
        /// Only this bucket.
        bucket: Option<String>,
    },
    /// Show drives, erasure sets and the heal queue.
    Info,
    /// Show a bucket's stored bytes and versions, and its quota.
    Usage { bucket: String },
    /// Set a bucket's quota (`10GiB`, `500MiB`, bytes), or remove it with
    /// `none`. Writes that would go beyond it fail with QuotaExceeded.
    Quota {
        bucket: String,
        #[arg(value_parser = parse_quota)]
        size: Quota,
    },
    /// IAM users and their access keys (see docs/iam.md).
    #[command(subcommand)]
    User(UserCommand),
    /// IAM groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// IAM policies, and attaching them to users and groups.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Service accounts: keys under a user, narrowed by a policy.
    #[command(subcommand)]
    Svcacct(SvcacctCommand),
    /// Users, groups, policies and service accounts, as JSON (no secrets).
    Iam,
    /// Who the credentials are: root, or the user (or service account) and
    /// its policies. Any credentials may ask.
    Whoami,
}

#[derive(Subcommand, Debug)]
enum SvcacctCommand {
    /// Create a service account of USER; prints its key and secret
    /// (shown this once). It never has more rights than USER.
    Add {
        user: String,
        /// A policy file that narrows the account's rights further.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Delete a service account.
    Remove { access_key: String },
    /// Refuse its requests (or with `--enable`, take them again).
    Disable {
        access_key: String,
        #[arg(long)]
        enable: bool,
    },
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create a user with an access key; prints the key and its secret
    /// (shown this once).
    Add { name: String },
    /// Delete a user and its access keys.
    Remove { name: String },
    /// Refuse every request signed with the user's keys.
    Disable { name: String },
    /// Take the user's requests again.
    Enable { name: String },
    /// Another access key for the user (at most two).
    AddKey { name: String },
    /// Delete an access key.
    RemoveKey { access_key: String },
    /// Refuse requests signed with this key (or with `--enable`, take them again).
    DisableKey {
        access_key: String,
        #[arg(long)]
        enable: bool,
    },
}

#[derive(Subcommand, Debug)]
enum GroupCommand {
    /// Create a group.
    Add { name: String },
    /// Delete a group (its members stay).
    Remove { name: String },
    /// Add a user to a group.
    AddMember { group: String, user: String },
    /// Take a user out of a group.
    RemoveMember { group: String, user: String },
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct PolicyHolder {
    /// The user.
    #[arg(long)]
    user: Option<String>,
    /// The group.
    #[arg(long)]
    group: Option<String>,
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Create or replace a policy from a JSON file (`-` for standard input).
    Add { name: String, file: PathBuf },
    /// Delete a policy attached to no one.
    Remove { name: String },
    /// Attach a policy to a user or a group.
    Attach {
        name: String,
        #[command(flatten)]
        to: PolicyHolder,
    },
    /// Detach a policy from a user or a group.
    Detach {
        name: String,
        #[command(flatten)]
        from: PolicyHolder,
    },
    /// Whether USER may do ACTION (`s3:GetObject`) on RESOURCE
    /// (`arn:aws:s3:::bucket/key`), and the statement that decided.
    Simulate {
        user: String,
        action: String,
        resource: String,
        /// A condition key's value for the request (`aws:SourceIp=10.0.0.1`);
        /// repeat for several.
        #[arg(long = "context", value_parser = parse_context)]
        context: Vec<(String, String)>,
    },
}

fn parse_context(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s}: expected KEY=VALUE"))
}

/// A quota given on the command line.
#[derive(Debug, Clone, Copy)]
enum Quota {
    Bytes(u64),
    None,
}

fn parse_quota(s: &str) -> Result<Quota, String> {
    if s == "none" {
        return Ok(Quota::None);
    }
    let units = [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("", 1),
    ];
    let (num, unit) = units
        .iter()
        .find_map(|(u, m)| s.strip_suffix(u).map(|n| (n, *m)))
        .unwrap_or((s, 1));
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .map(Quota::Bytes)
        .ok_or_else(|| {
            format!("{s} is not a size (bytes, or a number with KiB, MiB, GiB or TiB), nor `none`")
        })
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| match cli.command {
            Command::Server(args) => rt.block_on(serve(args)),
            Command::Admin(args) => rt.block_on(admin(args)),
        });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line: what failed and why.
            eprintln!("objd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServerArgs) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log).context("invalid --log filter")?)
        .with_writer(std::io::stderr)
        .init();
    let creds = args.credentials.resolve()?;
    let me = layout::SelfId::from_listen_address(&args.address)?;
    let layout = layout::layout(&args.drives, &me)?;
    let parity = args
        .parity
        .as_deref()
        .map(startup::parse_parity)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let set_size = args.set_size;
    let certs = match &args.certs_dir {
        Some(dir) => {
            let c = objd::tls::Certs::load(dir, layout.is_cluster())
                .with_context(|| format!("certificates in {}", dir.display()))?;
            c.watch();
            Some(c)
        }
        None => None,
    };
    match (layout.tls, layout.is_cluster(), certs.is_some()) {
        (true, _, false) => bail!("https:// drive URLs need the nodes' certificates: give --certs-dir"),
        (false, true, true) => {
            bail!("with --certs-dir the nodes serve HTTPS to each other: give the drives as https:// URLs")
        }
        _ => {}
    }
    let scheme = if certs.is_some() { "https" } else { "http" };
    // A cluster node serves its drives to the others from the start; a
    // single node listens once it is open.
    let mut bound = None;
    let mut peers = Vec::new();
    if layout.is_cluster() && args.etcd.is_empty() {
        bail!("a cluster needs etcd: give its endpoints with --etcd (OBJD_ETCD)");
    }
    let (deployment, front) = if layout.is_cluster() {
        let key = NodeKey::derive(&creds.secret_key);
        let node = cluster::Node::open(layout.clone(), key, certs.clone())?;
        let front = Arc::new(server::Front::new(Some(node.service())));
        let listener = bind(&args.address).await?;
        tracing::info!(addr = %listener.local_addr()?, node = ?layout.this_node, "serving this node's drives to the cluster");
        let addr = listener.local_addr()?;
        let task = tokio::spawn(server::run(
            listener,
            Arc::clone(&front),
            certs.clone(),
            shutdown_signal(),
        ));
        bound = Some((addr, task));
        peers = node.peers().to_vec();
        (node.deployment(set_size, parity).await?, front)
    } else {
        let paths: Vec<PathBuf> = layout.drives.iter().map(|d| PathBuf::from(&d.path)).collect();
        let d =
            tokio::task::spawn_blocking(move || startup::open_deployment(&paths, set_size, parity)).await??;
        (d, Arc::new(server::Front::new(None)))
    };
    let config = LayerConfig {
        inline_limit: args.inline_limit,
        drive_timeout: Some(Duration::from_secs(args.drive_timeout.max(1))),
        cluster: layout.is_cluster(),
        ..LayerConfig::default()
    };
    let replaced = !deployment.replaced.is_empty();
    let deployment_id = deployment.deployment_id.clone();
    let layer = ObjectLayer::open(
        &deployment.deployment_id,
        deployment.drives,
        deployment.parity,
        config,
    )
    .await?;
    if let Some(node) = &layout.this_node {
        let etcd = cluster::etcd::Etcd::new(args.etcd.clone());
        let coord = cluster::coord::EtcdCoordinator::start(etcd, &deployment_id, node, &layer);
        layer.set_coordinator(coord);
        layer.start_usage_refresh();
    }
    layer.start_healer();
    for peer in &peers {
        layer.heal_on_return(peer.subscribe(), 1.0);
    }
    layer.start_compactor();
    // What a crash left behind: no write of this process is older than now.
    let started = std::time::SystemTime::now();
    let sweeper = Arc::clone(&layer);
    tokio::spawn(async move {
        sweeper.sweep_orphans(started).await;
    });
    if args.scanner_interval > 0 {
        layer.start_scanner(Duration::from_secs(args.scanner_interval), args.scanner_pace);
    }
    if replaced {
        let l = Arc::clone(&layer);
        tokio::spawn(async move {
            match l.heal_all(None, 1.0, |_| {}).await {
                Ok(r) => tracing::info!(repaired = r.repaired, "replacement drives repopulated"),
                Err(e) => {
                    tracing::warn!(error = %e, "repopulating replacement drives failed; run `objd admin heal`")
                }
            }
        });
    }
    let options = server::ServiceOptions {
        domains: args.domains.clone(),
        idle_timeout: Duration::from_secs(args.idle_timeout.max(1)),
        sts_min_duration: args.sts_min_duration.clamp(1, objd::iam::sts::MIN_DURATION),
    };
    let iam = objd::iam::Iam::open(Arc::clone(&layer), &creds.secret_key, &deployment_id)
        .await
        .context("loading users and policies")?;
    front.ready(server::build_service(layer, iam, &creds, options));
    match bound {
        Some((addr, task)) => {
            tracing::info!(%addr, "serving S3");
            println!("objd listening on {scheme}://{addr}");
            let _ = task.await;
        }
        None => {
            let listener = bind(&args.address).await?;
            let addr = listener.local_addr()?;
            tracing::info!(%addr, "serving S3");
            // Tests and scripts read the bound address from this line.
            println!("objd listening on {scheme}://{addr}");
            server::run(listener, front, certs, shutdown_signal()).await;
        }
    }
    tracing::info!("stopped");
    Ok(())
}

async fn bind(address: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// A policy document from a file (`-`: standard input).
fn read_policy(file: &std::path::Path) -> Result<String> {
    if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("reading the policy")?;
        Ok(s)
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
    }
}

/// An admin request: method, operation, query and body.
type AdminRequest = (&'static str, &'static str, Vec<(String, String)>, bytes::Bytes);

/// An admin command as a request.
fn admin_request(cmd: &AdminCommand) -> Result<AdminRequest> {
    let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let holder = |h: &PolicyHolder| match (&h.user, &h.group) {
        (Some(u), _) => ("user", u.clone()),
        (_, Some(g)) => ("group", g.clone()),
        _ => unreachable!("clap requires one"),
    };
    let none = bytes::Bytes::new();
    // Enabling or disabling what `param` names.
    let toggle = |op: &'static str, param: &str, value: &str, on: bool| {
        let on = if on { "true" } else { "false" };
        (
            "POST",
            op,
            q(&[(param, value), ("enabled", on)]),
            bytes::Bytes::new(),
        )
    };
    Ok(match cmd {
        AdminCommand::Heal { bucket } => {
            let b: Vec<(&str, &str)> = bucket.iter().map(|b| ("bucket", b.as_str())).collect();
            ("POST", "heal", q(&b), none)
        }
        AdminCommand::Info => ("GET", "info", vec![], none),
        AdminCommand::Usage { bucket } => ("GET", "bucket-usage", q(&[("bucket", bucket)]), none),
        AdminCommand::Quota { bucket, size } => match size {
            Quota::Bytes(n) => (
                "PUT",
                "bucket-quota",
                q(&[("bucket", bucket), ("bytes", &n.to_string())]),
                none,
            ),
            Quota::None => ("DELETE", "bucket-quota", q(&[("bucket", bucket)]), none),
        },
        AdminCommand::Iam => ("GET", "iam", vec![], none),
        AdminCommand::Whoami => ("GET", "iam/whoami", vec![], none),
        AdminCommand::User(u) => match u {
            UserCommand::Add { name } => ("PUT", "iam/user", q(&[("name", name)]), none),
            UserCommand::Remove { name } => ("DELETE", "iam/user", q(&[("name", name)]), none),
            UserCommand::Disable { name } => toggle("iam/user", "name", name, false),
            UserCommand::Enable { name } => toggle("iam/user", "name", name, true),
            UserCommand::AddKey { name } => ("PUT", "iam/access-key", q(&[("user", name)]), none),
            UserCommand::RemoveKey { access_key } => {
                ("DELETE", "iam/access-key", q(&[("key", access_key)]), none)
            }
            UserCommand::DisableKey { access_key, enable } => {
                toggle("iam/access-key", "key", access_key, *enable)
            }
        },
        AdminCommand::Group(g) => match g {
            GroupCommand::Add { name } => ("PUT", "iam/group", q(&[("name", name)]), none),
            GroupCommand::Remove { name } => ("DELETE", "iam/group", q(&[("name", name)]), none),
            GroupCommand::AddMember { group, user } => {
                ("PUT", "iam/member", q(&[("group", group), ("user", user)]), none)
            }
            GroupCommand::RemoveMember { group, user } => (
                "DELETE",
                "iam/member",
                q(&[("group", group), ("user", user)]),
                none,
            ),
        },
        AdminCommand::Svcacct(a) => match a {
            SvcacctCommand::Add { user, policy } => {
                let text = policy
                    .as_deref()
                    .map(read_policy)
                    .transpose()?
                    .unwrap_or_default();
                (
                    "PUT",
                    "iam/svcacct",
                    q(&[("user", user)]),
                    bytes::Bytes::from(text),
                )
            }
            SvcacctCommand::Remove { access_key } => {
                ("DELETE", "iam/svcacct", q(&[("key", access_key)]), none)
            }
            SvcacctCommand::Disable { access_key, enable } => {
                toggle("iam/svcacct", "key", access_key, *enable)
            }
        },
        AdminCommand::Policy(p) => match p {
            PolicyCommand::Add { name, file } => (
                "PUT",
                "iam/policy",
                q(&[("name", name)]),
                bytes::Bytes::from(read_policy(file)?),
            ),
            PolicyCommand::Remove { name } => ("DELETE", "iam/policy", q(&[("name", name)]), none),
            PolicyCommand::Simulate {
                user,
                action,
                resource,
                context,
            } => {
                let context: std::collections::BTreeMap<&str, &str> =
                    context.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let body = serde_json::json!({
                    "user": user, "action": action, "resource": resource, "context": context,
                });
                (
                    "POST",
                    "iam/simulate",
                    vec![],
                    bytes::Bytes::from(body.to_string()),
                )
            }
            PolicyCommand::Attach { name, to } => {
                let (kind, who) = holder(to);
                (
                    "PUT",
                    "iam/attachment",
                    q(&[("policy", name), (kind, &who)]),
                    none,
                )
            }
            PolicyCommand::Detach { name, from } => {
                let (kind, who) = holder(from);
                (
                    "DELETE",
                    "iam/attachment",
                    q(&[("policy", name), (kind, &who)]),
                    none,
                )
            }
        },
    })
}

async fn admin(args: AdminArgs) -> Result<()> {
    let creds = args.credentials.resolve()?;
    let (method, op, query, body) = admin_request(&args.command)?;
    let path = format!("{}{op}", objd::api::admin::ADMIN_PREFIX);
    let signer =
        strata_s3client::Signer::new(creds.access_key.clone(), creds.secret_key.clone(), "us-east-1");
    let tls = strata_s3client::Tls {
        ca_file: args.ca_file.clone(),
    };
    let client = strata_s3client::Client::with_tls(&args.endpoint, signer, &tls)
        .map_err(anyhow::Error::msg)?
        .with_timeout(std::time::Duration::from_secs(30));
    let method = http::Method::from_bytes(method.as_bytes())?;
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (status, mut body) = client
        .stream(method, &path, &query, body)
        .await
        .with_context(|| format!("cannot reach {}", args.endpoint))?;
    use http_body_util::BodyExt;
    let mut failed = !status.is_success();
    let mut ends_with_newline = true;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            let text = String::from_utf8_lossy(&data);
            if text.contains("\"error\"") {
                failed = true;
            }
            print!("{text}");
            ends_with_newline = text.ends_with('\n');
        }
    }
    if !ends_with_newline {
        println!();
    }
    if failed {
        bail!("the server answered {status}");
    }
    Ok(())
}
