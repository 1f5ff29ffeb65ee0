//! `aetos.conf`: oslo.config-compatible configuration, read into typed sections.
//!
//! aetos must start from the `aetos.conf` an operator already has for
//! upstream Aetos. So the files are read with oslo.config's semantics (the
//! INI dialect in [`ini`], the multi-file and substitution rules in
//! `resolve`), every upstream option name is accepted, and everything is
//! driven by one option table ([`options::OPTIONS`]) from which the sample
//! file and the reference documentation are also generated ([`sample`]).
//!
//! Loading is all-or-nothing: [`load`] returns a fully typed and validated
//! [`Config`] plus a list of [`Warning`]s (one per unknown or ignored
//! option), or one [`ConfigError`] that names the section, the option and
//! the problem on one line. Nothing in a file can make loading panic.
//!
//! Secrets ([`Secret`]) never appear in `Debug` output or error messages.
//!
//! One file per section holds its struct, its build from the resolver and
//! its checks (`default.rs`, `api.rs`, `prometheus.rs` and the three cloud
//! sections, `keystone.rs`, `policy.rs`, `cors.rs`, `healthcheck.rs`,
//! `middleware.rs`, `limits.rs`); this file finds and reads the files,
//! and assembles and checks the whole [`Config`].

mod alertmanager;
mod api;
mod cache;
mod cors;
mod default;
pub mod env;
mod healthcheck;
pub mod ini;
mod keystone;
mod limits;
mod middleware;
pub mod options;
mod policy;
mod prometheus;
mod prometheus_aws;
mod prometheus_azure;
mod prometheus_google;
mod resolve;
pub mod sample;

pub use alertmanager::AlertmanagerSection;
pub use api::ApiSection;
pub use cache::{CacheSection, CacheStore};
pub use cors::CorsSection;
pub use default::{AuthMode, DefaultSection};
pub use healthcheck::HealthcheckSection;
pub use keystone::{KeystoneSection, MemcacheSecurity};
pub use limits::LimitsSection;
pub use middleware::MiddlewareSection;
pub use policy::PolicySection;
pub use prometheus::{
    BackendAuthConfig, BackendAuthMethod, DiscoveredBackend, PrometheusSection, TenantConfig,
};
pub use prometheus_aws::{AwsCredentialSource, AwsSection};
pub use prometheus_azure::{AzureIdentityKind, AzureSection};
pub use prometheus_google::{GoogleIdentityKind, GoogleSection};

#[cfg(test)]
mod backend_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use resolve::{Resolver, Sources};

pub(crate) use resolve::parse_url;
pub use sample::{reference_rst, sample_config};

/// A value that must never be logged: passwords and keys.
///
/// `Debug` prints `***` and there is no `Display`, so the only way to the
/// text is the explicit [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret text, for the one place that sends it somewhere.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Something in the files that aetos does not use, reported once.
///
/// Text forms: `[section] option: unknown option, ignored`,
/// `[section]: unknown section, ignored`, `[section] option: accepted for
/// compatibility but not implemented by aetos, ignored`, `[section] option:
/// deprecated name, use [section] option`, plus a few about options whose
/// value is ignored in the given combination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Warning(pub String);

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a configuration cannot be used, as one line an operator can act on:
/// `[section] option: problem`.
///
/// Problems not tied to one option (a file that cannot be read, a syntax
/// error) use the option `config_file` or `config_dir`, which is what the
/// command line calls them; a syntax error names the section it is in, or
/// has an empty section before the first header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Section as written in files (`DEFAULT`, `keystone_authtoken`, …).
    pub section: String,
    /// Option name (canonical, even when a deprecated name was used).
    pub option: String,
    /// What is wrong, including the offending value unless it is a secret.
    pub problem: String,
}

impl ConfigError {
    /// An error about `[section] option`.
    pub fn new(
        section: impl Into<String>,
        option: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        ConfigError {
            section: section.into(),
            option: option.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may span lines (continuation lines); the message must not.
        let problem = self.problem.replace('\n', "\\n");
        match (self.section.is_empty(), self.option.is_empty()) {
            (false, false) => write!(f, "[{}] {}: {}", self.section, self.option, problem),
            (false, true) => write!(f, "[{}]: {}", self.section, problem),
            (true, false) => write!(f, "{}: {}", self.option, problem),
            (true, true) => f.write_str(&problem),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Everything aetos reads from its configuration files.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub default: DefaultSection,
    pub api: ApiSection,
    pub prometheus: PrometheusSection,
    pub prometheus_aws: AwsSection,
    pub prometheus_azure: AzureSection,
    pub prometheus_google: GoogleSection,
    pub keystone: KeystoneSection,
    pub oslo_policy: PolicySection,
    pub cors: CorsSection,
    pub healthcheck: HealthcheckSection,
    pub oslo_middleware: MiddlewareSection,
    pub limits: LimitsSection,
    /// `[cache]`: the results cache (off unless enabled).
    pub cache: CacheSection,
    /// `[alertmanager]` (off while its url is unset).
    pub alertmanager: AlertmanagerSection,
    /// How requests to Alertmanager are authenticated, checked with the
    /// rest in [`load`].
    pub alertmanager_auth: BackendAuthConfig,
    /// How backend requests are authenticated, decided from `[prometheus]`
    /// and the cloud sections when the configuration is checked ([`load`];
    /// [`default_config`] has the defaults' `None`).
    pub backend_auth: BackendAuthConfig,
    /// The tenant header, checked (`None`: no tenant header).
    pub backend_tenant: Option<TenantConfig>,
    /// Files read, in the order they were read (`--config-file`s, then the
    /// `*.conf` of each `--config-dir`), as absolute paths.
    pub config_files: Vec<PathBuf>,
    /// The `--config-dir`s, as absolute paths.
    pub config_dirs: Vec<PathBuf>,
    /// Options set by `OS_<GROUP>__<OPTION>` variables (see [`env`]).
    pub from_environment: Vec<env::EnvSetting>,
}

impl Config {
    /// Finds a file named in the configuration (a policy file, …) the way
    /// oslo.config's `find_file` does: an absolute path as is; a relative
    /// one in the config dirs, then next to the config files (newest
    /// first), then in `~/.aetos`, `~`, `/etc/aetos` and `/etc`.
    pub fn find_file(&self, name: &str) -> Option<PathBuf> {
        let path = Path::new(name);
        if path.is_absolute() {
            return path.exists().then(|| path.to_path_buf());
        }
        let mut dirs: Vec<PathBuf> = self.config_dirs.clone();
        dirs.extend(
            self.config_files
                .iter()
                .rev()
                .filter_map(|f| f.parent().map(Path::to_path_buf)),
        );
        dirs.extend(search_dirs());
        dirs.into_iter().map(|d| d.join(path)).find(|p| p.exists())
    }
}

/// oslo.config's default search directories for project `aetos`.
fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        dirs.push(home.join(".aetos"));
        dirs.push(home);
    }
    dirs.push(PathBuf::from("/etc/aetos"));
    dirs.push(PathBuf::from("/etc"));
    dirs
}

/// The configuration files used when no `--config-file` is given, found as
/// oslo.config does for project `aetos` and program `aetos-api`: the first
/// `aetos.conf` and the first `aetos-api.conf` in `~/.aetos`, `~`,
/// `/etc/aetos`, `/etc` (typically just `/etc/aetos/aetos.conf`).
pub fn default_config_files() -> Vec<PathBuf> {
    ["aetos.conf", "aetos-api.conf"]
        .iter()
        .filter_map(|name| {
            search_dirs()
                .into_iter()
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .collect()
}

/// The configuration directories used when no `--config-dir` is given
/// (`aetos.conf.d` and `aetos-api.conf.d`, found like [`default_config_files`]).
pub fn default_config_dirs() -> Vec<PathBuf> {
    ["aetos.conf.d", "aetos-api.conf.d"]
        .iter()
        .filter_map(|name| {
            search_dirs()
                .into_iter()
                .map(|d| d.join(name))
                .find(|p| p.is_dir())
        })
        .collect()
}

/// Expands `~/` and makes a path absolute (oslo's `_fixpath`).
fn fix_path(p: &Path) -> PathBuf {
    let expanded = match (p.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => p.to_path_buf(),
    };
    std::path::absolute(&expanded).unwrap_or(expanded)
}

/// The `*.conf` files of a config dir, in name order (hidden files skipped,
/// as Python's glob does).
fn conf_files_in(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        ConfigError::new(
            "DEFAULT",
            "config_dir",
            format!("cannot read {}: {e}", dir.display()),
        )
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            ConfigError::new(
                "DEFAULT",
                "config_dir",
                format!("cannot read {}: {e}", dir.display()),
            )
        })?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        if name.ends_with(".conf") && !name.starts_with('.') && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads and parses one file.
fn read_document(path: &Path) -> Result<ini::IniDocument, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| {
        ConfigError::new(
            "DEFAULT",
            "config_file",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        ConfigError::new(
            "DEFAULT",
            "config_file",
            format!("{} is not valid UTF-8: {e}", path.display()),
        )
    })?;
    ini::load_document(&text).map_err(|e| match e {
        ini::LoadError::Syntax(s) => ConfigError::new(
            s.section.unwrap_or_default(),
            s.key.unwrap_or_default(),
            format!("{}, line {}: {}", path.display(), s.line, s.message),
        ),
        ini::LoadError::Other(o) => {
            ConfigError::new("DEFAULT", "config_file", format!("{}: {o}", path.display()))
        }
    })
}

/// Reads the configuration the way `aetos-api --config-file F… --config-dir D…`
/// does: every file in order, then each directory's `*.conf` files in name
/// order; later files override earlier ones.
///
/// Returns the typed, validated configuration and one warning per unknown
/// section, unknown option, deprecated name and accepted-but-ignored option
/// (deduplicated), or the first problem found.
pub fn load(files: &[PathBuf], dirs: &[PathBuf]) -> Result<(Config, Vec<Warning>), ConfigError> {
    load_with_overrides(files, dirs, &[])
}

/// One option set on the command line: `(section, option, value)`.
pub type Override = (&'static str, &'static str, String);

/// Like [`load`], with command-line values that override every file and
/// the process environment's `OS_<GROUP>__<OPTION>` variables.
///
/// The overrides are read as one more file, named `<command line>`, after
/// all the others, so they go through exactly the same conversion and
/// validation; a `$` in a value is literal (it is not a reference).
pub fn load_with_overrides(
    files: &[PathBuf],
    dirs: &[PathBuf],
    overrides: &[Override],
) -> Result<(Config, Vec<Warning>), ConfigError> {
    load_with_env(files, dirs, overrides, &env::process_vars()?)
}

/// Like [`load_with_overrides`], with the environment given: `vars` are
/// read after the files and before the command line (oslo.config's order).
pub fn load_with_env(
    files: &[PathBuf],
    dirs: &[PathBuf],
    overrides: &[Override],
    vars: &[(String, String)],
) -> Result<(Config, Vec<Warning>), ConfigError> {
    let mut paths: Vec<PathBuf> = files.iter().map(|f| fix_path(f)).collect();
    let dirs: Vec<PathBuf> = dirs.iter().map(|d| fix_path(d)).collect();
    for dir in &dirs {
        paths.extend(conf_files_in(dir)?);
    }
    let mut docs = paths
        .iter()
        .map(|p| read_document(p).map(|d| (p.clone(), d)))
        .collect::<Result<Vec<_>, _>>()?;
    let (env_docs, from_environment, env_warnings) = env::documents(vars)?;
    docs.extend(env_docs);
    if !overrides.is_empty() {
        docs.push((
            PathBuf::from("<command line>"),
            overrides_document(overrides)?,
        ));
    }
    let sources = Sources::from_documents(docs);
    let mut warnings = sources.scan_warnings();
    warnings.extend(env_warnings);
    let mut resolver = Resolver::new(&sources);
    let mut config = build(&mut resolver, &mut warnings)?;
    config.from_environment = from_environment;
    config.config_files = paths;
    config.config_dirs = dirs;
    let (backend_auth, backend_tenant) = validate(&config, &mut warnings)?;
    config.backend_auth = backend_auth;
    config.backend_tenant = backend_tenant;
    config.alertmanager_auth = config.alertmanager.auth(&mut warnings)?;
    let mut seen = std::collections::HashSet::new();
    warnings.retain(|w| seen.insert(w.0.clone()));
    Ok((config, warnings))
}

/// The command-line values as an INI document, one section per option.
fn overrides_document(overrides: &[Override]) -> Result<ini::IniDocument, ConfigError> {
    let mut sections: Vec<ini::IniSection> = Vec::new();
    for (line, (section, option, value)) in overrides.iter().enumerate() {
        if value.contains(['\n', '\r']) {
            return Err(ConfigError::new(
                *section,
                *option,
                "a command-line value must be one line",
            ));
        }
        let entry = ini::IniEntry {
            key: (*option).to_owned(),
            value: value.replace('$', "$$"),
            line: line + 1,
        };
        match sections.iter_mut().find(|s| s.name == *section) {
            Some(s) => s.entries.push(entry),
            None => sections.push(ini::IniSection {
                name: (*section).to_owned(),
                entries: vec![entry],
            }),
        }
    }
    Ok(ini::IniDocument { sections })
}

/// Every option at its default (no file read, nothing validated beyond the
/// defaults themselves): for tests and for starts driven only by flags.
pub fn default_config() -> Config {
    let sources = Sources::empty();
    let mut resolver = Resolver::new(&sources);
    let mut warnings = Vec::new();
    match build(&mut resolver, &mut warnings) {
        Ok(config) => config,
        // The option table's defaults are converted by a unit test; this
        // cannot depend on any input.
        Err(e) => unreachable!("the option table has an invalid default: {e}"),
    }
}

/// Converts every implemented option into the typed sections, and checks
/// the values of the accepted-only ones.
fn build(r: &mut Resolver<'_>, warnings: &mut Vec<Warning>) -> Result<Config, ConfigError> {
    let config = build_sections(r, warnings)?;
    for spec in options::OPTIONS
        .iter()
        .filter(|o| o.support == options::Support::Accepted)
    {
        r.check(spec)?;
    }
    Ok(config)
}

fn build_sections(
    r: &mut Resolver<'_>,
    warnings: &mut Vec<Warning>,
) -> Result<Config, ConfigError> {
    Ok(Config {
        default: default::build_default(r)?,
        api: api::build_api(r)?,
        prometheus: prometheus::build_prometheus(r)?,
        prometheus_aws: prometheus_aws::build_aws(r)?,
        prometheus_azure: prometheus_azure::build_azure(r)?,
        prometheus_google: prometheus_google::build_google(r)?,
        keystone: keystone::build_keystone(r, warnings)?,
        oslo_policy: policy::build_policy(r)?,
        cors: cors::build_cors(r)?,
        healthcheck: healthcheck::build_healthcheck(r)?,
        limits: limits::build(r)?,
        cache: cache::build(r)?,
        alertmanager: alertmanager::build_alertmanager(r)?,
        alertmanager_auth: BackendAuthConfig::None,
        backend_auth: BackendAuthConfig::None,
        backend_tenant: None,
        oslo_middleware: middleware::build_middleware(r)?,
        config_files: Vec::new(),
        config_dirs: Vec::new(),
        from_environment: Vec::new(),
    })
}

pub(super) fn non_empty(items: Vec<String>) -> Vec<String> {
    items.into_iter().filter(|i| !i.is_empty()).collect()
}

/// Checks that a file named by an option can be opened for reading.
pub(super) fn check_readable(section: &str, option: &str, path: &str) -> Result<(), ConfigError> {
    let p = Path::new(path);
    if p.is_dir() {
        return Err(ConfigError::new(
            section,
            option,
            format!("{path} is a directory, not a file"),
        ));
    }
    File::open(p)
        .map(|_| ())
        .map_err(|e| ConfigError::new(section, option, format!("cannot read {path}: {e}")))
}

/// Cross-option checks that need the whole typed configuration.
///
/// Returns what the backend is built from: its authentication and tenant
/// header, decided here once from `[prometheus]` and the cloud sections.
fn validate(
    c: &Config,
    warnings: &mut Vec<Warning>,
) -> Result<(BackendAuthConfig, Option<TenantConfig>), ConfigError> {
    if c.api.tls_client_ca.is_some() && c.api.tls.is_none() {
        return Err(ConfigError::new(
            "api",
            "tls_client_ca_file",
            "requires tls_cert_file and tls_key_file",
        ));
    }
    prometheus::validate_prometheus(&c.prometheus, warnings)?;
    let backend = prometheus::validate_backend_auth(c, warnings)?;
    if c.api.unauthenticated_passthrough {
        // Keystone is not used at all: nothing of it needs to be valid.
        return Ok(backend);
    }
    keystone::validate_keystone(&c.keystone, c.default.auth_mode, warnings)?;
    Ok(backend)
}
