//! POSIX attributes as object metadata, in the form s3fs reads and
//! writes, so that either mount sees the other's files alike: `mode`
//! (decimal, with the file type bits: a FIFO is `S_IFIFO | 0644`), `uid`,
//! `gid`, and `mtime`: seconds since the epoch, followed by `.` and nine
//! digits when the time has nanoseconds, preceded by `-` before 1970;
//! `atime` and `ctime` in the same form where they differ from `mtime`.
//! Device nodes also keep their device number in `rdev` (s3fs keeps
//! none: its device nodes read back as 0, 0).

use crate::inodes::{Attrs, Kind};
use std::time::{Duration, SystemTime};

/// The file type bits of `kind`.
pub(super) fn type_bits(kind: Kind) -> u32 {
    match kind {
        Kind::File => libc::S_IFREG,
        Kind::Dir => libc::S_IFDIR,
        Kind::Symlink => libc::S_IFLNK,
        Kind::Fifo => libc::S_IFIFO,
        Kind::Socket => libc::S_IFSOCK,
        Kind::CharDevice => libc::S_IFCHR,
        Kind::BlockDevice => libc::S_IFBLK,
    }
}

/// The kind a mode's file type bits name, if any.
pub(super) fn kind_of(mode: u32) -> Option<Kind> {
    Some(match mode & libc::S_IFMT {
        libc::S_IFREG => Kind::File,
        libc::S_IFDIR => Kind::Dir,
        libc::S_IFLNK => Kind::Symlink,
        libc::S_IFIFO => Kind::Fifo,
        libc::S_IFSOCK => Kind::Socket,
        libc::S_IFCHR => Kind::CharDevice,
        libc::S_IFBLK => Kind::BlockDevice,
        _ => return None,
    })
}

/// A time as `mtime` metadata holds it.
pub(super) fn format_time(t: SystemTime) -> String {
    let (sign, d) = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => ("", d),
        Err(before) => ("-", before.duration()),
    };
    match d.subsec_nanos() {
        0 => format!("{sign}{}", d.as_secs()),
        n => format!("{sign}{}.{n:09}", d.as_secs()),
    }
}

/// A time from `mtime` metadata: whole seconds, or seconds and a
/// fraction (digits past the ninth are dropped); `None` if it is not one.
pub(super) fn parse_time(s: &str) -> Option<SystemTime> {
    let (before, s) = s.strip_prefix('-').map_or((false, s), |rest| (true, rest));
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if secs.is_empty() || !(secs.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac = &frac[..frac.len().min(9)];
    let nanos = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    let d = Duration::new(secs.parse().ok()?, nanos);
    if before {
        SystemTime::UNIX_EPOCH.checked_sub(d)
    } else {
        SystemTime::UNIX_EPOCH.checked_add(d)
    }
}

/// The metadata that stores `a`.
pub(super) fn posix_meta(a: &Attrs) -> Vec<(String, String)> {
    let mut meta = vec![
        ("mode".into(), (type_bits(a.kind) | u32::from(a.mode)).to_string()),
        ("uid".into(), a.uid.to_string()),
        ("gid".into(), a.gid.to_string()),
        ("mtime".into(), format_time(a.mtime)),
    ];
    for (name, t) in [("atime", a.atime), ("ctime", a.ctime)] {
        if t != a.mtime {
            meta.push((name.into(), format_time(t)));
        }
    }
    if a.rdev != 0 {
        meta.push(("rdev".into(), a.rdev.to_string()));
    }
    meta
}

/// The metadata names [`posix_meta`] writes.
const POSIX_NAMES: [&str; 7] = ["mode", "uid", "gid", "mtime", "atime", "ctime", "rdev"];

/// `existing` metadata with its POSIX attributes replaced by those of `a`
/// (what else S3 clients set stays).
pub(super) fn with_posix(existing: &[(String, String)], a: &Attrs) -> Vec<(String, String)> {
    let others = existing
        .iter()
        .filter(|(k, _)| !POSIX_NAMES.contains(&k.as_str()));
    others.cloned().chain(posix_meta(a)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_to_the_nanosecond_before_1970_and_after_2038() {
        let epoch = SystemTime::UNIX_EPOCH;
        for t in [
            epoch,
            epoch + Duration::new(1_650_000_000, 0),
            epoch + Duration::new(1_650_000_000, 123_456_789),
            epoch + Duration::new(4_102_444_800, 1),
            epoch - Duration::new(86_400, 0),
            epoch - Duration::new(1, 500_000_000),
        ] {
            assert_eq!(parse_time(&format_time(t)), Some(t), "{}", format_time(t));
        }
        assert_eq!(format_time(epoch + Duration::new(1_650_000_000, 0)), "1650000000");
        assert_eq!(format_time(epoch + Duration::new(5, 120)), "5.000000120");
        assert_eq!(format_time(epoch - Duration::new(1, 500_000_000)), "-1.500000000");
        // What s3fs and others write: short fractions, long ones.
        assert_eq!(parse_time("7.5"), Some(epoch + Duration::new(7, 500_000_000)));
        assert_eq!(
            parse_time("7.1234567891"),
            Some(epoch + Duration::new(7, 123_456_789))
        );
        for bad in ["", "-", ".5", "1e9", "12a", "1.2.3", "+5", "1. 5"] {
            assert_eq!(parse_time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_kind_has_its_type_bits() {
        for k in [
            Kind::File,
            Kind::Dir,
            Kind::Symlink,
            Kind::Fifo,
            Kind::Socket,
            Kind::CharDevice,
            Kind::BlockDevice,
        ] {
            assert_eq!(kind_of(type_bits(k) | 0o644), Some(k));
        }
        assert_eq!(kind_of(0o644), None);
        // As s3fs writes a FIFO of mode 0644.
        assert_eq!(kind_of(4516), Some(Kind::Fifo));
    }
}
