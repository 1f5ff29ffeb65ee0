//! A profile of the AWS shared files (`~/.aws/credentials` and
//! `~/.aws/config`, or where `AWS_SHARED_CREDENTIALS_FILE`,
//! `AWS_CONFIG_FILE` and the options say), as the SDKs read it: the
//! credentials file's `[NAME]` wins over the config file's `[profile NAME]`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::backend::env::{env_var, Env};
use crate::config::AwsSection;

/// One profile of the shared files: lower-case keys to values.
type Profile = HashMap<String, String>;

/// The profile in use: its name, its values, and the files it was read
/// from (for messages).
pub(super) struct LoadedProfile {
    pub name: String,
    pub values: Profile,
    pub files: String,
}

/// Reads the sections of an AWS shared file (INI: `[name]`, `key = value`,
/// `#`/`;` comments). A missing file is empty.
fn read_shared_file(path: &Path) -> Result<HashMap<String, Profile>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let mut out: HashMap<String, Profile> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_owned();
            out.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_lowercase(), v.trim().to_owned());
        }
    }
    Ok(out)
}

/// The named profile, merged from the config file (`[profile NAME]`, or
/// `[default]`) and the credentials file (`[NAME]`, which wins).
pub(super) fn load_profile(a: &AwsSection, env: &Env) -> Result<LoadedProfile, String> {
    let name = a
        .profile
        .clone()
        .or_else(|| env_var(env, "AWS_PROFILE").map(str::to_owned))
        .unwrap_or_else(|| "default".to_owned());
    let home = env_var(env, "HOME").map(PathBuf::from);
    let file = |option: &Option<String>, var: &str, default: &str| -> Option<PathBuf> {
        option
            .as_ref()
            .map(PathBuf::from)
            .or_else(|| env_var(env, var).map(PathBuf::from))
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
    };
    let creds_path = file(
        &a.shared_credentials_file,
        "AWS_SHARED_CREDENTIALS_FILE",
        "credentials",
    );
    let config_path = file(&a.config_file, "AWS_CONFIG_FILE", "config");
    let mut profile = Profile::new();
    if let Some(p) = &config_path {
        let sections = read_shared_file(p)?;
        let key = if name == "default" {
            "default".to_owned()
        } else {
            format!("profile {name}")
        };
        if let Some(s) = sections.get(&key) {
            profile.extend(s.clone());
        }
    }
    if let Some(p) = &creds_path {
        if let Some(s) = read_shared_file(p)?.get(&name) {
            profile.extend(s.clone());
        }
    }
    let files = [creds_path, config_path]
        .iter()
        .flatten()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" and ");
    Ok(LoadedProfile {
        name,
        values: profile,
        files,
    })
}
