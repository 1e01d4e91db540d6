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

mod admin_cli;
mod audit_cli;
use admin_cli::{AdminArgs, admin};
use audit_cli::{AuditArgs, secret};

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
    Server(Box<ServerArgs>),
    /// Administer a running server.
    Admin(Box<AdminArgs>),
}

#[derive(Args, Debug)]
struct CredentialArgs {
    /// Root access key (for `objd admin`: the key that signs, the root's
    /// or a user's whose policies grant admin actions).
    #[arg(long, env = "OBJD_ACCESS_KEY", hide_env_values = true)]
    access_key: Option<String>,
    /// Its secret key. Prefer the environment or --secret-key-file: command
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
    /// Give the same drives in the same order at every start. Without
    /// them, the first --pool is the namespace pool.
    #[arg(required_unless_present = "pools", env = "OBJD_DRIVES", value_delimiter = ' ')]
    drives: Vec<String>,
    /// A pool of drives, `NAME=DRIVES` (`capacity=/hdd/d{1...8}`; several
    /// patterns separated by commas), each with its own erasure sets and
    /// parity; repeat for more. The first pool (the positional drives,
    /// called `standard`, or else the first --pool) holds every object's
    /// record and the data of STANDARD objects; each other pool holds the
    /// data of objects written or moved to its class, its name in upper
    /// case (CAPACITY). One-node deployments; see docs/tiering.md.
    #[arg(long = "pool", env = "OBJD_POOLS", value_delimiter = ';')]
    pools: Vec<String>,
    /// Parity of a pool besides the first, `NAME=EC:N` (default as for
    /// --parity); fixed at the pool's first start.
    #[arg(long = "pool-parity", env = "OBJD_POOL_PARITY", value_delimiter = ';')]
    pool_parity: Vec<String>,
    /// A further name for a storage class, `CLASS=PLACE`: a pool's or a
    /// remote tier's name (`STANDARD_IA=capacity`, `GLACIER=cold`).
    /// Objects in a place are reported with its first such name.
    #[arg(long = "storage-class", env = "OBJD_STORAGE_CLASSES", value_delimiter = ';')]
    storage_classes: Vec<String>,
    /// Address to listen on for S3, admin and health requests.
    #[arg(long, env = "OBJD_ADDRESS", default_value = "0.0.0.0:9000")]
    address: String,
    /// With --certs-dir, also serve plain HTTP on this address (the same
    /// S3 service; no node calls), while clients move to HTTPS.
    #[arg(long, env = "OBJD_HTTP_ADDRESS")]
    http_address: Option<String>,
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
    /// Object ownership of buckets created without `x-amz-object-ownership`:
    /// BucketOwnerPreferred (the default) and ObjectWriter honour the
    /// ACLs applications send (`x-amz-acl: public-read`);
    /// BucketOwnerEnforced, S3's default, refuses them. See docs/acl.md.
    #[arg(long, env = "OBJD_DEFAULT_OBJECT_OWNERSHIP", default_value = "BucketOwnerPreferred",
          value_parser = ["BucketOwnerPreferred", "ObjectWriter", "BucketOwnerEnforced"])]
    default_object_ownership: String,
    /// Seconds in a lifecycle day: lifecycle rules count days of this
    /// length. For tests only (a rule of 1 day then expires objects within
    /// seconds); deployments keep 86400.
    #[arg(long, env = "OBJD_LIFECYCLE_DAY_SECONDS", default_value_t = 86_400)]
    lifecycle_day_seconds: u64,
    /// Memory for object data in flight: every upload, download and copy
    /// takes its working set (about 4.4 MiB for a large upload and 11 MiB
    /// for a large download with 1 MiB blocks in 4+2; less for small
    /// objects) from this budget before it reads a byte, and waits while
    /// the budget is spent. Size the container's memory limit at this plus
    /// 64 MiB, plus 64 MiB per drive (index pages), plus about 256 MiB. See
    /// docs/operations.md#memory.
    #[arg(long, env = "OBJD_BUFFER_BUDGET", default_value = "256MiB", value_parser = admin_cli::parse_size)]
    buffer_budget: u64,
    /// Seconds a request may wait for buffer memory before it is refused
    /// with 503 SlowDown (clients retry those with backoff).
    #[arg(long, env = "OBJD_BUFFER_WAIT", default_value_t = 10)]
    buffer_wait: u64,
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
    /// PEM file of CA certificates trusted, besides the system's, when objd
    /// calls other servers over https: OpenID providers, LDAP servers
    /// (ldaps and StartTLS), Vault or OpenBao, audit webhooks and
    /// Elasticsearch.
    #[arg(long, env = "OBJD_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// File holding the root key of the built-in KMS (32 bytes as base64
    /// or 64 hex digits; `openssl rand -base64 32` makes one). It seals
    /// the KMS keys kept on the drives and enables SSE-S3 and SSE-KMS. The
    /// key may instead be given in the environment as OBJD_KMS_ROOT_KEY.
    /// Keep it safe: objects encrypted under it are lost without it. See
    /// docs/encryption.md.
    #[arg(long, env = "OBJD_KMS_ROOT_KEY_FILE")]
    kms_root_key_file: Option<PathBuf>,
    /// The KMS key SSE-S3 uses (and SSE-KMS when the request names none);
    /// the built-in KMS creates it at first use.
    #[arg(long, env = "OBJD_KMS_DEFAULT_KEY", default_value = "strata-default")]
    kms_default_key: String,
    /// Use HashiCorp Vault or OpenBao (its Transit engine) as the KMS
    /// instead of the built-in one: its URL. Trusts `--ca-file` for
    /// https. Log in with a token (OBJD_KMS_VAULT_TOKEN or
    /// `--kms-vault-token-file`) or AppRole (`--kms-vault-approle-role-id`
    /// with the secret id in OBJD_KMS_VAULT_APPROLE_SECRET_ID or
    /// `--kms-vault-approle-secret-id-file`).
    #[arg(long, env = "OBJD_KMS_VAULT_ENDPOINT")]
    kms_vault_endpoint: Option<String>,
    /// Mount path of the Transit engine.
    #[arg(long, env = "OBJD_KMS_VAULT_MOUNT", default_value = "transit")]
    kms_vault_mount: String,
    /// Vault Enterprise namespace, if any.
    #[arg(long, env = "OBJD_KMS_VAULT_NAMESPACE")]
    kms_vault_namespace: Option<String>,
    /// File holding a Vault token.
    #[arg(long, env = "OBJD_KMS_VAULT_TOKEN_FILE")]
    kms_vault_token_file: Option<PathBuf>,
    /// AppRole role id (with the secret id from a file or the environment).
    #[arg(long, env = "OBJD_KMS_VAULT_APPROLE_ROLE_ID")]
    kms_vault_approle_role_id: Option<String>,
    /// File holding the AppRole secret id.
    #[arg(long, env = "OBJD_KMS_VAULT_APPROLE_SECRET_ID_FILE")]
    kms_vault_approle_secret_id_file: Option<PathBuf>,
    /// Mount path of the AppRole auth method.
    #[arg(long, env = "OBJD_KMS_VAULT_APPROLE_MOUNT", default_value = "approle")]
    kms_vault_approle_mount: String,
    /// Serve Prometheus metrics (`/_strata/metrics`) without the bearer
    /// token `objd admin metrics token` prints.
    #[arg(long, env = "OBJD_METRICS_PUBLIC")]
    metrics_public: bool,
    /// Accept SSE-C (customer-provided keys) on plain-HTTP connections. S3
    /// refuses them without TLS; allow it only when TLS ends at a trusted
    /// proxy in front of objd.
    #[arg(long, env = "OBJD_SSE_C_OVER_HTTP")]
    sse_c_over_http: bool,
    /// Log filter (`info`, `debug`, `objd=debug`, ...). The S3 library's
    /// own events stay at `info` whatever the filter: its debug events
    /// print request headers, which carry secrets.
    #[arg(long, env = "OBJD_LOG", default_value = "info")]
    log: String,
    /// Log lines as text, or as JSON objects (one per line: timestamp,
    /// level, target, message and fields) for a log pipeline.
    #[arg(long, env = "OBJD_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(flatten)]
    credentials: CredentialArgs,
    #[command(flatten)]
    audit: AuditArgs,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
enum LogFormat {
    Text,
    Json,
}

/// Hands the memory the allocator keeps in its free lists back to the
/// system. glibc's arenas (one per thread, up to eight per core) keep the
/// buffers freed in them for their own threads and give back only what
/// lies at a heap's top, so the resident memory grew to about twice the
/// data in flight under many concurrent uploads (`tests/tests/memory.rs`
/// measures it), and stayed there after the load.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim_allocator() {
    // SAFETY: malloc_trim only returns free pages of the C allocator's
    // heap to the system; it locks the arena it walks.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_allocator() {}

/// Trims the allocator every second. (Each buffer its own mapping, given
/// back when freed, bounds memory as well, but a mapping and its page
/// faults per buffer halved GET throughput; one arena for the process
/// took 30 % of small PUTs' throughput in lock contention.)
fn start_trimmer() {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let _ = tokio::task::spawn_blocking(trim_allocator).await;
        }
    });
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| match cli.command {
            Command::Server(args) => rt.block_on(serve(*args)),
            Command::Admin(args) => rt.block_on(admin(*args)),
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
    let logs = tracing_subscriber::fmt()
        .with_env_filter(log_filter(&args.log)?)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(false).init(),
    }
    let creds = args.credentials.resolve()?;
    let me = layout::SelfId::from_listen_address(&args.address)?;
    let mut pool_specs =
        server::pools::parse(&args.drives, &args.pools, &args.pool_parity).map_err(anyhow::Error::msg)?;
    let classes = server::pools::parse_classes(&args.storage_classes).map_err(anyhow::Error::msg)?;
    let home = pool_specs.remove(0);
    let layout = layout::layout(&home.drives, &me)?;
    if layout.is_cluster() && !pool_specs.is_empty() {
        bail!("pools besides the first are for one-node deployments; a cluster keeps one pool");
    }
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
    if args.http_address.is_some() && certs.is_none() {
        bail!("--http-address serves plain HTTP beside HTTPS: it needs --certs-dir");
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
        budget: objd::object::Budget::new(
            args.buffer_budget,
            Some(Duration::from_secs(args.buffer_wait.max(1))),
        ),
        ..LayerConfig::default()
    };
    let replaced = !deployment.replaced.is_empty();
    let drives = server::pools::metered(deployment.drives);
    let deployment_id = deployment.deployment_id.clone();
    let pool_config = config.clone();
    let layer = ObjectLayer::open(&deployment.deployment_id, drives, deployment.parity, config).await?;
    let recorded = objd::tier::pool::recorded(&layer)
        .await
        .map_err(anyhow::Error::msg)?;
    let mut opened = Vec::new();
    for spec in &pool_specs {
        let budget = objd::object::Budget::new(
            args.buffer_budget,
            Some(Duration::from_secs(args.buffer_wait.max(1))),
        );
        opened.push(server::pools::open(spec, &pool_config, budget, recorded.get(&spec.name)).await?);
    }
    let pool_layers = server::pools::place(&layer, &home.name, (&recorded, opened), classes).await?;
    start_trimmer();
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
    layer.start_cold_sweeper();
    // What a crash left behind: no write of this process is older than now.
    let started = std::time::SystemTime::now();
    for l in std::iter::once(&layer).chain(&pool_layers) {
        if !Arc::ptr_eq(l, &layer) {
            l.start_healer();
            l.start_compactor();
        }
        let sweeper = Arc::clone(l);
        tokio::spawn(async move {
            sweeper.sweep_orphans(started).await;
        });
        if args.scanner_interval > 0 {
            l.start_scanner(Duration::from_secs(args.scanner_interval), args.scanner_pace);
        }
    }
    let lifecycle_clock = objd::lifecycle::Clock {
        day_secs: args.lifecycle_day_seconds.max(1),
    };
    objd::lifecycle::scan::start(Arc::clone(&layer), lifecycle_clock);
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
        encryption: Default::default(),
        metrics_public: args.metrics_public,
        audit: None,
        certs: None,
        default_ownership: objd::acl::Ownership::parse(&args.default_object_ownership)
            .unwrap_or(objd::acl::Ownership::BucketOwnerPreferred),
        lifecycle_clock,
    };
    let outbound = strata_s3client::Tls {
        ca_file: args.ca_file.clone(),
        ..Default::default()
    };
    let kms = open_kms(&args, &layer).await?;
    let node_name = layout
        .this_node
        .clone()
        .unwrap_or_else(|| format!("{}:{}", me.hostname.as_deref().unwrap_or("localhost"), me.port));
    let first_drive = layout
        .drives
        .iter()
        .find(|d| d.local)
        .map(|d| PathBuf::from(&d.path));
    let audit = args
        .audit
        .open(node_name, &deployment_id, first_drive.as_deref(), &outbound)?;
    let options = server::ServiceOptions {
        encryption: objd::api::s3::sse::Encryption {
            kms,
            insecure_customer_keys: args.sse_c_over_http,
        },
        audit: audit.clone(),
        certs: certs.clone(),
        ..options
    };
    let iam = objd::iam::Iam::open(Arc::clone(&layer), &creds.secret_key, &deployment_id, &outbound)
        .await
        .context("loading users and policies")?;
    front.ready(server::build_service(layer, iam, &creds, options));
    let plain = match &args.http_address {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    match bound {
        Some((addr, task)) => {
            tracing::info!(%addr, "serving S3");
            println!("objd listening on {scheme}://{addr}");
            serve_plain_beside(plain, &front)?;
            let _ = task.await;
        }
        None => {
            let listener = bind(&args.address).await?;
            let addr = listener.local_addr()?;
            tracing::info!(%addr, "serving S3");
            // Tests and scripts read the bound address from this line.
            println!("objd listening on {scheme}://{addr}");
            serve_plain_beside(plain, &front)?;
            server::run(listener, front, certs, shutdown_signal()).await;
        }
    }
    if let Some(a) = audit {
        a.flush(Duration::from_secs(5));
    }
    tracing::info!("stopped");
    Ok(())
}

/// The log filter `--log` asks for, with the S3 library held at `info`:
/// its debug events print whole requests, headers included, and those
/// carry secrets (SSE-C keys, session tokens, signatures). Its request
/// errors are silenced: it logs every refused request (a bad signature, a
/// missing key) at ERROR, and every 5xx answer with the whole response
/// (a `503 SlowDown` of a saturated buffer budget too), and client errors
/// and expected refusals are no server errors; objd logs its own failures
/// where they happen.
fn log_filter(spec: &str) -> Result<tracing_subscriber::EnvFilter> {
    let mut filter = tracing_subscriber::EnvFilter::try_new(spec).context("invalid --log filter")?;
    for quiet in ["s3s=info", "s3s_aws=info", "s3s::ops=off", "s3s::service=off"] {
        filter = filter.add_directive(quiet.parse().context("log directive")?);
    }
    Ok(filter)
}

/// The Vault KMS the flags configure.
async fn open_vault(args: &ServerArgs, endpoint: &str) -> Result<Arc<dyn objd::kms::Kms>> {
    use objd::kms::vault::{Auth, Config, Vault};
    let token = secret(args.kms_vault_token_file.as_ref(), "OBJD_KMS_VAULT_TOKEN")?;
    let auth = match (&args.kms_vault_approle_role_id, token) {
        (Some(role_id), None) => Auth::AppRole {
            mount: args.kms_vault_approle_mount.clone(),
            role_id: role_id.clone(),
            secret_id: secret(
                args.kms_vault_approle_secret_id_file.as_ref(),
                "OBJD_KMS_VAULT_APPROLE_SECRET_ID",
            )?
            .context("AppRole needs its secret id (OBJD_KMS_VAULT_APPROLE_SECRET_ID or --kms-vault-approle-secret-id-file)")?,
        },
        (None, Some(t)) => Auth::Token(t),
        (Some(_), Some(_)) => bail!("give Vault a token or an AppRole, not both"),
        (None, None) => bail!(
            "Vault needs a token (OBJD_KMS_VAULT_TOKEN or --kms-vault-token-file) or an AppRole (--kms-vault-approle-role-id)"
        ),
    };
    let config = Config {
        endpoint: endpoint.to_owned(),
        mount: args.kms_vault_mount.trim_matches('/').to_owned(),
        namespace: args.kms_vault_namespace.clone(),
        auth,
        default_key: args.kms_default_key.clone(),
    };
    let tls = strata_s3client::Tls {
        ca_file: args.ca_file.clone(),
        ..Default::default()
    };
    let vault = Vault::open(config, &tls).await.context("connecting to Vault")?;
    Ok(vault)
}

/// The KMS the flags configure, if any.
async fn open_kms(args: &ServerArgs, layer: &Arc<ObjectLayer>) -> Result<Option<Arc<dyn objd::kms::Kms>>> {
    if let Some(endpoint) = &args.kms_vault_endpoint {
        if args.kms_root_key_file.is_some() || std::env::var("OBJD_KMS_ROOT_KEY").is_ok() {
            bail!("configure one KMS: the built-in one (a root key) or Vault, not both");
        }
        return open_vault(args, endpoint).await.map(Some);
    }
    let root = match (&args.kms_root_key_file, std::env::var("OBJD_KMS_ROOT_KEY")) {
        (Some(path), _) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the KMS root key file {}", path.display()))?,
        ),
        (None, Ok(v)) => Some(v),
        (None, Err(_)) => None,
    };
    let Some(root) = root else {
        return Ok(None);
    };
    let root = objd::kms::builtin::RootKey::parse(&root).map_err(anyhow::Error::msg)?;
    let kms = objd::kms::builtin::Builtin::open(Arc::clone(layer), root, &args.kms_default_key)
        .await
        .context("opening the built-in KMS")?;
    Ok(Some(kms))
}

/// Starts the plain-HTTP listener of `--http-address`, if any (after the
/// main listener's line, which scripts read first).
fn serve_plain_beside(plain: Option<tokio::net::TcpListener>, front: &Arc<server::Front>) -> Result<()> {
    if let Some(l) = plain {
        let addr = l.local_addr()?;
        tracing::info!(%addr, "serving S3 over plain HTTP too");
        println!("objd also listening on http://{addr}");
        tokio::spawn(server::run_plain_beside(l, Arc::clone(front), shutdown_signal()));
    }
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
