//! Expansion of drive arguments with ellipses: `/data/d{1...6}` names six
//! drives, `/mnt/disk{01...16}/x` sixteen with zero-padded numbers, and
//! several ellipses in one argument multiply.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EllipsisError {
    #[error("invalid range in `{0}`: expected {{A...B}} with A <= B")]
    BadRange(String),
}

/// Expands every `{A...B}` in `arg`, left to right.
pub fn expand(arg: &str) -> Result<Vec<String>, EllipsisError> {
    let Some(open) = arg.find('{') else {
        return Ok(vec![arg.to_owned()]);
    };
    let Some(close_rel) = arg[open..].find('}') else {
        return Ok(vec![arg.to_owned()]);
    };
    let close = open + close_rel;
    let inner = &arg[open + 1..close];
    let Some((a, b)) = inner.split_once("...") else {
        // Not an ellipsis: keep the braces and expand what follows.
        let rest = expand(&arg[close + 1..])?;
        return Ok(rest
            .into_iter()
            .map(|r| format!("{}{}", &arg[..=close], r))
            .collect());
    };
    let bad = || EllipsisError::BadRange(arg.to_owned());
    let (lo, hi): (u64, u64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if lo > hi || hi - lo > 10_000 {
        return Err(bad());
    }
    let width = if a.starts_with('0') && a.len() > 1 {
        a.len()
    } else {
        0
    };
    let rest = expand(&arg[close + 1..])?;
    let mut out = Vec::new();
    for n in lo..=hi {
        for r in &rest {
            out.push(format!("{}{:0width$}{}", &arg[..open], n, r, width = width));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_ranges_padding_and_products() {
        assert_eq!(expand("/d{1...3}").unwrap(), vec!["/d1", "/d2", "/d3"]);
        assert_eq!(expand("/d{08...10}").unwrap(), vec!["/d08", "/d09", "/d10"]);
        assert_eq!(
            expand("/h{1...2}/d{1...2}").unwrap(),
            vec!["/h1/d1", "/h1/d2", "/h2/d1", "/h2/d2"]
        );
        assert_eq!(expand("/plain").unwrap(), vec!["/plain"]);
        assert_eq!(expand("/x{a,b}").unwrap(), vec!["/x{a,b}"]);
        assert!(expand("/d{3...1}").is_err());
        assert!(expand("/d{a...b}").is_err());
    }
}
