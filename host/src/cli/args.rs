//! Parsers for option values, each with a message saying what is expected.

/// A list of ef values (one option value, so clap keeps it whole).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EfList(pub Vec<usize>);

/// "10,20,40" -> [10, 20, 40] (sorted, duplicates dropped).
pub fn ef_list(s: &str) -> Result<EfList, String> {
    let mut efs = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.parse::<usize>() {
            Ok(ef) if ef > 0 => efs.push(ef),
            _ => {
                return Err(format!(
                    "{part:?} is not a positive integer (expected a list like 10,20,40)"
                ));
            }
        }
    }
    if efs.is_empty() {
        return Err("expected a list of positive integers like 10,20,40".into());
    }
    efs.sort_unstable();
    efs.dedup();
    Ok(EfList(efs))
}

/// "m=32" -> ("m", "32").
pub fn param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// "0.85,0.95" -> (0.85, 0.95).
pub fn band(s: &str) -> Result<(f64, f64), String> {
    let parsed = s
        .split_once(',')
        .and_then(|(a, b)| Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?)));
    match parsed {
        Some((lo, hi)) if (0.0..1.0).contains(&lo) && lo < hi && hi <= 1.0 => Ok((lo, hi)),
        _ => Err(format!(
            "{s:?} is not a recall band LO,HI with 0 <= LO < HI <= 1 (like 0.85,0.95)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(ef_list("40, 10,10,20"), Ok(EfList(vec![10, 20, 40])));
        assert!(ef_list("10,x").unwrap_err().contains("\"x\""));
        assert!(ef_list("0").is_err());
        assert!(ef_list(",").is_err());
        assert_eq!(param("m=32"), Ok(("m".into(), "32".into())));
        assert!(param("m").is_err());
        assert_eq!(band("0.85,0.95"), Ok((0.85, 0.95)));
        assert!(band("0.95,0.85").is_err());
        assert!(band("0.9").is_err());
    }
}
