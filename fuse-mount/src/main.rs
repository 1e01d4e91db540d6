//! `fuse-mount`: mounts a bucket, or a prefix of it, as a POSIX filesystem
//! over S3 (objd or any S3 endpoint). Credentials come from the environment
//! or a file, never from the command line. The mount runs in the
//! foreground until it is unmounted or receives SIGTERM/SIGINT, which
//! unmount it cleanly. Linked as `/sbin/mount.fuse.strata` it is the mount
//! helper of `mount -t fuse.strata` and `/etc/fstab` ([`helper`]).

mod blockcache;
mod fs;
mod helper;
mod inodes;
mod readahead;
mod store;
mod writeback;

use anyhow::{Context, Result, bail};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::time::Duration;
use strata_s3client::{Client, Signer, Tls};

#[derive(Parser, Debug)]
#[command(
    name = "fuse-mount",
    version,
    about = "Mount a Strata (or any S3) bucket as a POSIX filesystem",
    long_about = "Mount a Strata (or any S3) bucket as a POSIX filesystem.\n\n\
        Credentials: STRATA_ACCESS_KEY and STRATA_SECRET_KEY (or AWS_ACCESS_KEY_ID and \
        AWS_SECRET_ACCESS_KEY) in the environment, or --credentials-file. They are never \
        taken from the command line and never logged."
)]
struct Args {
    /// S3 endpoint, `http://host:port` or `https://host:port`.
    endpoint: String,
    /// Bucket to mount, optionally with a key prefix: `bucket` or `bucket/some/prefix`.
    bucket: String,
    /// Directory to mount on.
    mountpoint: PathBuf,
    /// File holding `access_key=...` and `secret_key=...` lines (a Kubernetes Secret).
    #[arg(long, env = "STRATA_CREDENTIALS_FILE")]
    credentials_file: Option<PathBuf>,
    /// PEM file of CA certificates to trust for an https:// endpoint,
    /// besides the system's (certificates are always verified).
    #[arg(long, env = "STRATA_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Region to sign requests for.
    #[arg(long, env = "STRATA_REGION", default_value = "us-east-1")]
    region: String,
    /// Mount read-only: every change fails with EROFS.
    #[arg(long)]
    read_only: bool,
    /// Storage class of the objects this mount writes (`x-amz-storage-class`:
    /// one of the server's, such as a pool's `CAPACITY`); default: the
    /// server's STANDARD.
    #[arg(long, env = "STRATA_STORAGE_CLASS")]
    storage_class: Option<String>,
    /// Directory for the write-back files of files open for writing (they
    /// are removed when closed; size it for the largest files written).
    #[arg(long, env = "STRATA_CACHE_DIR", default_value = "/tmp")]
    cache_dir: PathBuf,
    /// Owner of objects that carry no `x-amz-meta-uid` (default: the caller).
    #[arg(long)]
    uid: Option<u32>,
    /// Group of objects that carry no `x-amz-meta-gid` (default: the caller's).
    #[arg(long)]
    gid: Option<u32>,
    /// Permission bits of files without `x-amz-meta-mode`, octal.
    #[arg(long, default_value = "644", value_parser = parse_mode)]
    file_mode: u16,
    /// Permission bits of directories, octal.
    #[arg(long, default_value = "755", value_parser = parse_mode)]
    dir_mode: u16,
    /// Let other users than the one mounting use the mount.
    #[arg(long)]
    allow_other: bool,
    /// Have the kernel check each file's owner and permission bits, as on
    /// a local filesystem. Without it, everyone who may use the mount (with
    /// --allow-other: every user) may read and change every file in it.
    #[arg(long)]
    default_permissions: bool,
    /// Seconds attributes and lookups are cached; changes made through S3
    /// show after at most this long.
    #[arg(long, default_value_t = 1)]
    attr_ttl: u64,
    /// Size of a read-ahead window, in KiB: a file read in order holds up
    /// to six (the one before the reader's, its own, four fetched ahead).
    #[arg(long, default_value_t = 4096)]
    read_ahead_kib: u64,
    /// Most files open at once; more opens fail with EMFILE.
    #[arg(long, default_value_t = 4096)]
    max_open_files: usize,
    /// Most MiB held in write-back files at once (files open for writing);
    /// writes beyond fail with ENOSPC until files are closed.
    #[arg(long, default_value_t = 4096)]
    write_cache_mib: u64,
    /// MiB of object bytes read through the mount kept on disk under
    /// --cache-dir (per version of each object, the least recently used
    /// dropped first; removed at unmount); 0 turns the cache off.
    #[arg(long, default_value_t = 1024)]
    block_cache_mib: u64,
    /// Entries per directory listing request.
    #[arg(long, default_value_t = 1000)]
    list_page: usize,
    /// Seconds one S3 request may take before it fails (EIO).
    #[arg(long, default_value_t = 30)]
    request_timeout: u64,
    /// Stay in the foreground (the only mode of this version; accepted for scripts).
    #[arg(long)]
    foreground: bool,
    /// Log filter.
    #[arg(long, env = "STRATA_LOG", default_value = "warn")]
    log: String,
}

fn parse_mode(s: &str) -> Result<u16, String> {
    u16::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{s} is not an octal mode"))
}

/// Access and secret key from the file, else the environment.
fn credentials(file: Option<&Path>) -> Result<(String, String)> {
    if let Some(f) = file {
        return strata_s3client::read_credentials_file(f).map_err(anyhow::Error::msg);
    }
    let env = |a: &str, b: &str| std::env::var(a).or_else(|_| std::env::var(b)).ok();
    match (
        env("STRATA_ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
        env("STRATA_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(a), Some(s)) => Ok((a, s)),
        _ => bail!("no credentials: set STRATA_ACCESS_KEY and STRATA_SECRET_KEY, or --credentials-file"),
    }
}

/// Runs `fusermount3 -u` (lazy when `lazy`) on a mount point: whether it
/// did, and what it said when it did not.
fn unmount(mountpoint: &Path, lazy: bool) -> Result<(), String> {
    let mut args = vec!["-u"];
    if lazy {
        args.push("-z");
    }
    match std::process::Command::new("fusermount3")
        .args(&args)
        .arg(mountpoint)
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        Err(e) => Err(format!("fusermount3: {e}")),
    }
}

/// Unmounts at once, lazily if something still uses the mount. A mount
/// point already unmounted (by `umount` before the signal) is not an
/// error worth a line.
fn unmount_now(mountpoint: &Path) {
    if unmount(mountpoint, false).is_ok() {
        return;
    }
    if let Err(why) = unmount(mountpoint, true)
        && mounted(mountpoint)
    {
        tracing::warn!(path = %mountpoint.display(), %why, "could not unmount");
    }
}

/// Whether something is mounted on `path` (as this process sees mounts;
/// true when that cannot be read).
fn mounted(path: &Path) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return true;
    };
    let Ok(path) = std::path::absolute(path) else {
        return true;
    };
    // The mount point is the fifth field, with space, tab, newline and
    // backslash written as octal escapes.
    let wanted = path
        .to_string_lossy()
        .replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('\t', "\\011")
        .replace('\n', "\\012");
    table
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(wanted.as_str()))
}

/// A mount point left behind by a mount that died answers ENOTCONN
/// ("Transport endpoint is not connected"): detach it so that it can be
/// mounted again.
fn recover_stale(mountpoint: &Path) {
    if let Err(e) = std::fs::metadata(mountpoint)
        && e.raw_os_error() == Some(libc::ENOTCONN)
    {
        tracing::warn!(path = %mountpoint.display(), "recovering a stale mount point");
        if let Err(why) = unmount(mountpoint, true) {
            tracing::warn!(path = %mountpoint.display(), %why, "could not detach the stale mount point");
        }
    }
}

fn main() -> std::process::ExitCode {
    let argv0 = std::env::args_os().next().map(PathBuf::from).unwrap_or_default();
    let result = if helper::invoked_as_helper(&argv0) {
        let args: Vec<String> = std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        helper::run(&args)
    } else {
        run(Args::parse())
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fuse-mount: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log).context("invalid --log filter")?)
        .with_writer(std::io::stderr)
        .init();
    let (access, secret) = credentials(args.credentials_file.as_deref())?;
    let (bucket, prefix) = match args.bucket.split_once('/') {
        Some((b, p)) => {
            let p = p.trim_matches('/');
            (
                b.to_owned(),
                if p.is_empty() {
                    String::new()
                } else {
                    format!("{p}/")
                },
            )
        }
        None => (args.bucket.clone(), String::new()),
    };
    if bucket.is_empty() {
        bail!("no bucket given");
    }
    let tls = Tls {
        ca_file: args.ca_file.clone(),
        ..Default::default()
    };
    let client = Client::with_tls(
        &args.endpoint,
        Signer::new(access, secret, args.region.clone()),
        &tls,
    )
    .map_err(anyhow::Error::msg)?
    .with_timeout(Duration::from_secs(args.request_timeout.max(1)))
    .with_storage_class(args.storage_class.clone());
    let opts = fs::Options {
        prefix,
        uid: args.uid.unwrap_or_else(|| caller_ids().0),
        gid: args.gid.unwrap_or_else(|| caller_ids().1),
        file_mode: args.file_mode,
        dir_mode: args.dir_mode,
        attr_ttl: Duration::from_secs(args.attr_ttl),
        read_ahead: args.read_ahead_kib.max(4) * 1024,
        list_page: args.list_page.clamp(1, 1000),
        read_only: args.read_only,
        cache_dir: args.cache_dir.clone(),
        max_open_files: args.max_open_files.max(1),
        write_cache_bytes: args.write_cache_mib.saturating_mul(1 << 20),
        block_cache_bytes: args.block_cache_mib.saturating_mul(1 << 20),
    };
    let filesystem = fs::Fs::new(store::Bucket::new(client, bucket.clone()), opts)?;
    // Endpoint, certificates, credentials and bucket, checked once before
    // mounting, so that a mistake is one line here rather than EIO later.
    filesystem
        .check_bucket()
        .map_err(|e| anyhow::anyhow!("cannot use bucket {bucket} at {}: {e}", args.endpoint))?;
    recover_stale(&args.mountpoint);
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName(format!("strata:{}", args.bucket)),
        fuser::MountOption::Subtype("strata".into()),
        if args.read_only {
            fuser::MountOption::RO
        } else {
            fuser::MountOption::RW
        },
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
    ];
    if args.allow_other {
        config.acl = fuser::SessionACL::All;
    }
    if args.default_permissions {
        config.mount_options.push(fuser::MountOption::DefaultPermissions);
    }
    config.n_threads = Some(4);
    let mountpoint = args.mountpoint.clone();
    let session =
        std::thread::spawn(move || fuser::mount(fs::Adapter::new(filesystem), &mountpoint, &config));
    // Unmount on SIGTERM/SIGINT; the session then ends by itself.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mountpoint = args.mountpoint.clone();
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<()>();
    let waiter = std::thread::spawn(move || {
        let r = session.join();
        let _ = done_tx.send(());
        r
    });
    let signalled = rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let signalled = tokio::select! {
            _ = term.recv() => true,
            _ = tokio::signal::ctrl_c() => true,
            _ = &mut done_rx => false,
        };
        if signalled {
            unmount_now(&mountpoint);
            // A lazy unmount ends the session only when the last open file
            // closes; do not wait for that forever.
            if tokio::time::timeout(Duration::from_secs(5), done_rx)
                .await
                .is_err()
            {
                tracing::warn!("files still open on the unmounted mount point; exiting");
            }
        }
        anyhow::Ok(signalled)
    })?;
    if signalled {
        return Ok(());
    }
    match waiter.join() {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => {
            Err(anyhow::Error::from(e).context(format!("mounting on {}", args.mountpoint.display())))
        }
        _ => bail!("the filesystem thread failed"),
    }
}

/// The caller's uid and gid, for objects without ownership metadata.
fn caller_ids() -> (u32, u32) {
    let meta = std::fs::metadata("/proc/self");
    use std::os::unix::fs::MetadataExt;
    meta.map_or((0, 0), |m| (m.uid(), m.gid()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounted_tells_mount_points_from_plain_directories() {
        assert!(mounted(Path::new("/")));
        assert!(mounted(Path::new("/proc")));
        let plain = tempfile::tempdir().expect("temporary directory");
        let inside = plain.path().join("with space");
        std::fs::create_dir(&inside).expect("mkdir");
        assert!(!mounted(&inside));
    }
}
