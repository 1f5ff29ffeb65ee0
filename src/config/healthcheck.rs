//! `[healthcheck]`: the `/healthcheck` endpoint and oslo.middleware's
//! file-based backends.

use super::resolve::Resolver;
use super::{non_empty, ConfigError};

/// `[healthcheck]`: the `/healthcheck` endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthcheckSection {
    pub detailed: bool,
    /// Among `disable_by_file`, `disable_by_files_ports`, `enable_by_files`.
    pub backends: Vec<String>,
    pub disable_by_file_path: Option<String>,
    /// `(port, path)` pairs from `port:path` items.
    pub disable_by_file_paths: Vec<(u16, String)>,
    pub enable_by_file_paths: Vec<String>,
}

pub(super) fn build_healthcheck(r: &mut Resolver<'_>) -> Result<HealthcheckSection, ConfigError> {
    const S: &str = "healthcheck";
    const KNOWN: &[&str] = &[
        "disable_by_file",
        "disable_by_files_ports",
        "enable_by_files",
    ];
    let backends = non_empty(r.list(S, "backends")?);
    if let Some(b) = backends.iter().find(|b| !KNOWN.contains(&b.as_str())) {
        return Err(ConfigError::new(
            S,
            "backends",
            format!("unknown backend {b:?} (known: {})", KNOWN.join(", ")),
        ));
    }
    let mut pairs = Vec::new();
    for item in non_empty(r.list(S, "disable_by_file_paths")?) {
        let parsed = item
            .split_once(':')
            .and_then(|(port, path)| {
                Some((port.trim().parse::<u16>().ok()?, path.trim().to_owned()))
            })
            .filter(|(_, path)| !path.is_empty());
        match parsed {
            Some(pair) => pairs.push(pair),
            None => {
                return Err(ConfigError::new(
                    S,
                    "disable_by_file_paths",
                    format!("invalid item {item:?}: expected port:path"),
                ))
            }
        }
    }
    Ok(HealthcheckSection {
        detailed: r.bool(S, "detailed")?,
        backends,
        disable_by_file_path: r.opt_string(S, "disable_by_file_path")?,
        disable_by_file_paths: pairs,
        enable_by_file_paths: non_empty(r.list(S, "enable_by_file_paths")?),
    })
}
