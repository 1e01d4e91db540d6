//! Credentials files of Strata's tools: `access_key=...` and
//! `secret_key=...` lines (the shape of a Kubernetes Secret mounted as a
//! file, or a file written by an admin), or an AWS credentials file's
//! `aws_access_key_id = ...` and `aws_secret_access_key = ...`, so that
//! keys never need to be on a command line.

use std::path::Path;

/// The access and secret key of a credentials file, or why not.
pub fn read_credentials_file(path: &Path) -> Result<(String, String), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let get = |names: [&str; 2]| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| names.contains(&k.trim()))
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    match (
        get(["access_key", "aws_access_key_id"]),
        get(["secret_key", "aws_secret_access_key"]),
    ) {
        (Some(a), Some(s)) => Ok((a, s)),
        _ => Err(format!(
            "{} needs access_key=... and secret_key=... lines",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_files_need_both_keys() {
        let dir = std::env::temp_dir().join(format!("strata-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c");
        std::fs::write(&f, "# keys\naccess_key = AK\nsecret_key=S=K\n").unwrap();
        assert_eq!(read_credentials_file(&f).unwrap(), ("AK".into(), "S=K".into()));
        std::fs::write(
            &f,
            "[default]\naws_access_key_id = AK\naws_secret_access_key = S\n",
        )
        .unwrap();
        assert_eq!(read_credentials_file(&f).unwrap(), ("AK".into(), "S".into()));
        std::fs::write(&f, "access_key=AK\n").unwrap();
        assert!(read_credentials_file(&f).unwrap_err().contains("secret_key"));
        assert!(read_credentials_file(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
