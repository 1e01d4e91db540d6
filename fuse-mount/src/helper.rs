//! Mount helper mode: `mount -t fuse.strata SOURCE DIR -o OPTIONS` (and so
//! `/etc/fstab`) runs `/sbin/mount.fuse.strata SOURCE DIR [-sfnv] [-o
//! OPTIONS]`, a link to this binary. SOURCE is `ENDPOINT/BUCKET[/PREFIX]`;
//! OPTIONS are fuse-mount's long options without their dashes
//! (`credentials_file=/etc/strata/credentials,ca_file=...,allow_other`),
//! `ro`, and mount(8)'s generic options, which are ignored. The helper
//! starts fuse-mount in its own process group and returns once the mount is
//! in place (or with fuse-mount's error), as mount(8) expects.

use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether this binary was started under a mount helper's name.
pub fn invoked_as_helper(argv0: &Path) -> bool {
    argv0
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("mount.fuse.strata") || n.starts_with("mount.strata"))
}

/// mount(8)'s own options, which mean nothing to fuse-mount.
const GENERIC: &[&str] = &[
    "rw",
    "defaults",
    "auto",
    "noauto",
    "user",
    "nouser",
    "users",
    "owner",
    "group",
    "_netdev",
    "nofail",
    "exec",
    "noexec",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "atime",
    "noatime",
    "relatime",
    "strictatime",
    "sync",
    "async",
    "dirsync",
];

/// fuse-mount's arguments for a helper call's arguments (after argv[0]);
/// `None` for `-f` (mount(8)'s "fake": do everything but mount).
pub fn translate(args: &[String]) -> Result<Option<Vec<String>>> {
    let mut positional = Vec::new();
    let mut options = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-o" => options.extend(
                it.next()
                    .context("-o needs options")?
                    .split(',')
                    .map(str::to_owned),
            ),
            "-t" | "-N" => {
                it.next();
            }
            "-f" => return Ok(None),
            "-s" | "-n" | "-v" => {}
            o if o.starts_with("-o") => options.extend(o[2..].split(',').map(str::to_owned)),
            o if o.starts_with('-') => bail!("unknown mount helper flag {o}"),
            _ => positional.push(a.clone()),
        }
    }
    let [source, dir] = positional.as_slice() else {
        bail!("usage: mount.fuse.strata ENDPOINT/BUCKET[/PREFIX] DIR [-o OPTIONS]");
    };
    let (scheme, rest) = source
        .split_once("://")
        .with_context(|| format!("{source}: the source is ENDPOINT/BUCKET, like http://objd:9000/photos"))?;
    let (authority, bucket) = rest
        .split_once('/')
        .filter(|(_, b)| !b.is_empty())
        .with_context(|| format!("{source}: no bucket after the endpoint"))?;
    let mut out = Vec::new();
    for o in options.iter().filter(|o| !o.is_empty()) {
        let (key, value) = match o.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (o.as_str(), None),
        };
        if GENERIC.contains(&key) || key.starts_with("x-") || key == "comment" {
            continue;
        }
        let key = if key == "ro" { "read_only" } else { key };
        out.push(format!("--{}", key.replace('_', "-")));
        if let Some(v) = value {
            out.push(v.to_owned());
        }
    }
    out.extend([format!("{scheme}://{authority}"), bucket.to_owned(), dir.clone()]);
    Ok(Some(out))
}

/// Whether `dir` is a mount point of this process's namespace.
fn mounted(dir: &Path) -> bool {
    let want = dir.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(&*want))
}

/// Runs the helper: starts fuse-mount with the translated arguments, in
/// its own process group so that it outlives mount(8), and waits until
/// the mount is in place or fuse-mount has failed.
pub fn run(args: &[String]) -> Result<()> {
    let Some(translated) = translate(args)? else {
        return Ok(());
    };
    let dir = translated.last().context("no mount point")?;
    let dir = std::fs::canonicalize(dir).with_context(|| format!("mount point {dir}"))?;
    let exe = std::env::current_exe().context("locating fuse-mount")?;
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(exe)
        .arg0("fuse-mount")
        .args(translated.iter().map(OsString::from))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .context("starting fuse-mount")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait()? {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            let err = err.trim().trim_start_matches("fuse-mount: ");
            if err.is_empty() {
                bail!("fuse-mount ended ({status})");
            }
            bail!("{err}");
        }
        if mounted(&dir) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("{} was not mounted within 60 s", dir.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(args: &[&str]) -> Result<Option<Vec<String>>> {
        translate(&args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn helper_arguments_become_fuse_mount_arguments() {
        let got = t(&[
            "https://objd.example:9000/photos/2026",
            "/mnt/p",
            "-o",
            "rw,_netdev,nofail,credentials_file=/etc/strata/c,ca_file=/etc/ca.pem,allow_other,ro,x-systemd.automount",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            got,
            [
                "--credentials-file",
                "/etc/strata/c",
                "--ca-file",
                "/etc/ca.pem",
                "--allow-other",
                "--read-only",
                "https://objd.example:9000",
                "photos/2026",
                "/mnt/p"
            ]
        );
        assert_eq!(
            t(&["http://h:1/b", "/m", "-n", "-t", "fuse.strata"])
                .unwrap()
                .unwrap(),
            ["http://h:1", "b", "/m"]
        );
        assert!(t(&["http://h:1/b", "/m", "-f"]).unwrap().is_none());
        assert!(t(&["http://h:1", "/m"]).is_err());
        assert!(t(&["h:1/b", "/m"]).is_err());
        assert!(t(&["http://h:1/b"]).is_err());
        assert!(t(&["http://h:1/b", "/m", "-x"]).is_err());
        assert!(invoked_as_helper(Path::new("/sbin/mount.fuse.strata")));
        assert!(!invoked_as_helper(Path::new("/usr/bin/fuse-mount")));
    }
}
