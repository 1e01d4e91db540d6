//! `csi-driver`: Strata's CSI plugin, serving the CSI Identity, Controller
//! and Node services over a UNIX socket as kubelet and the CSI sidecars
//! expect. In node mode it first mounts again every volume it had
//! published (state under `--state-dir`) whose mount is gone or dead.

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use strata_csi::backend::Backend;
use strata_csi::controller::ControllerService;
use strata_csi::identity::IdentityService;
use strata_csi::mounts::Mounter;
use strata_csi::node::NodeService;
use strata_csi::proto::controller_server::ControllerServer;
use strata_csi::proto::identity_server::IdentityServer;
use strata_csi::proto::node_server::NodeServer;
use strata_s3client::Tls;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Identity and Controller (the Deployment with the provisioner and
    /// resizer sidecars).
    Controller,
    /// Identity and Node (the DaemonSet on every node).
    Node,
    /// All three services.
    All,
}

#[derive(Parser, Debug)]
#[command(
    name = "csi-driver",
    version,
    about = "Strata's CSI plugin: buckets as Kubernetes volumes, mounted with fuse-mount",
    long_about = "Strata's CSI plugin: buckets as Kubernetes volumes, mounted with fuse-mount.\n\n\
        The controller's credentials (an objd admin user) come from STRATA_ACCESS_KEY and \
        STRATA_SECRET_KEY or --credentials-file, or per request from the CSI secrets accessKey \
        and secretKey. Nodes mount with the node-publish secret's keys, passed to fuse-mount \
        through its environment. Credentials are never logged."
)]
struct Args {
    /// Where to serve gRPC: `unix:///csi/csi.sock` (or a plain path).
    #[arg(long, env = "CSI_ENDPOINT", default_value = "unix:///csi/csi.sock")]
    endpoint: String,
    /// This node's id (the Kubernetes node name).
    #[arg(long, env = "CSI_NODE_ID", default_value = "")]
    node_id: String,
    /// Which services to serve.
    #[arg(long, value_enum, default_value = "all")]
    mode: Mode,
    /// objd's S3 endpoint.
    #[arg(long, env = "STRATA_ENDPOINT")]
    objd_endpoint: String,
    /// PEM file of CA certificates to trust for an https:// objd endpoint.
    #[arg(long, env = "STRATA_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// File holding `access_key=...` and `secret_key=...` lines for the controller.
    #[arg(long, env = "STRATA_CREDENTIALS_FILE")]
    credentials_file: Option<PathBuf>,
    /// Host directory recording published volumes (kept across restarts).
    #[arg(long, env = "CSI_STATE_DIR", default_value = "/var/lib/strata-csi")]
    state_dir: PathBuf,
    /// The fuse-mount binary.
    #[arg(long, env = "STRATA_FUSE_MOUNT", default_value = "fuse-mount")]
    fuse_mount: PathBuf,
    /// Start fuse-mount through this command (split on spaces), which must
    /// exec it in place; for mounts that outlive the plugin container:
    /// `nsenter --target 1 --mount -- systemd-run --scope --collect --quiet --`
    /// (with hostPID and fuse-mount installed on the host).
    #[arg(long, env = "STRATA_MOUNT_LAUNCHER", default_value = "")]
    mount_launcher: String,
    /// Log filter.
    #[arg(long, env = "STRATA_LOG", default_value = "info")]
    log: String,
}

/// The controller's own credentials: the file, else the environment.
fn credentials(file: Option<&PathBuf>) -> Result<Option<(String, String)>> {
    if let Some(f) = file {
        return strata_s3client::read_credentials_file(f)
            .map(Some)
            .map_err(anyhow::Error::msg);
    }
    let env = |a: &str| std::env::var(a).ok().filter(|v| !v.is_empty());
    Ok(env("STRATA_ACCESS_KEY").zip(env("STRATA_SECRET_KEY")))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("csi-driver: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log).context("invalid --log filter")?)
        .with_writer(std::io::stderr)
        .init();
    let socket = PathBuf::from(args.endpoint.strip_prefix("unix://").unwrap_or(&args.endpoint));
    let backend = Backend {
        endpoint: args.objd_endpoint.clone(),
        tls: Tls {
            ca_file: args.ca_file.clone(),
            ..Default::default()
        },
        credentials: credentials(args.credentials_file.as_ref())?,
    };
    let controller = matches!(args.mode, Mode::Controller | Mode::All);
    let node = matches!(args.mode, Mode::Node | Mode::All);
    if node && args.node_id.is_empty() {
        bail!("--node-id is required to serve the node service");
    }
    let mut server = tonic::transport::Server::builder();
    let mut router = server.add_service(IdentityServer::new(IdentityService {
        backend: backend.clone(),
        controller,
    }));
    if controller {
        router = router.add_service(ControllerServer::new(ControllerService {
            backend: backend.clone(),
        }));
    }
    if node {
        let mounter = Mounter {
            state_dir: args.state_dir.clone(),
            fuse_mount: args.fuse_mount.clone(),
            launcher: args
                .mount_launcher
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            endpoint: args.objd_endpoint.clone(),
            ca_file: args.ca_file.clone(),
        };
        mounter.restore().await;
        router = router.add_service(NodeServer::new(NodeService {
            node_id: args.node_id.clone(),
            mounter,
        }));
    }
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // A socket left by an earlier instance.
    let _ = std::fs::remove_file(&socket);
    let listener = tokio::net::UnixListener::bind(&socket)
        .with_context(|| format!("listening on {}", socket.display()))?;
    tracing::info!(socket = %socket.display(), mode = ?args.mode, "serving CSI");
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {},
        }
    };
    router
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .context("serving gRPC")?;
    let _ = std::fs::remove_file(&socket);
    Ok(())
}
