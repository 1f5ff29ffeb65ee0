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

pub mod ini;
mod limits;
pub use limits::LimitsSection;
pub mod options;
mod resolve;
pub mod sample;

#[cfg(test)]
mod backend_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use url::Url;

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

/// How callers are authenticated (`[DEFAULT] auth_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Validate X-Auth-Token with Keystone.
    Keystone,
    /// Trust X-User-Id / X-Project-Id / X-Roles (test environments only).
    Noauth,
}

/// `[DEFAULT]`: authentication mode and logging.
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultSection {
    pub auth_mode: AuthMode,
    pub debug: bool,
    pub log_file: Option<String>,
    pub log_dir: Option<String>,
    pub use_json: bool,
    pub use_stderr: bool,
}

impl DefaultSection {
    /// The log file path, combined from `log_file` and `log_dir` the way
    /// oslo.log does (`<log_dir>/aetos-api.log` when only `log_dir` is set);
    /// `None` logs to standard output (or standard error with `use_stderr`).
    pub fn log_path(&self) -> Option<PathBuf> {
        match (&self.log_file, &self.log_dir) {
            (Some(file), Some(dir)) => Some(Path::new(dir).join(file)),
            (Some(file), None) => Some(PathBuf::from(file)),
            (None, Some(dir)) => Some(Path::new(dir).join("aetos-api.log")),
            (None, None) => None,
        }
    }
}

/// `[api]` (aetos only): where and how the API listens.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiSection {
    pub host: String,
    pub port: u16,
    /// Normalized: empty (no prefix) or `/…` without a trailing slash.
    pub root_path: String,
    /// 0 means one worker per CPU.
    pub workers: usize,
    /// Bytes.
    pub max_request_body_size: usize,
    /// Bytes: largest backend answer filtered for a scoped caller.
    pub max_filtered_response_bytes: usize,
    /// Seconds.
    pub graceful_shutdown_timeout: u64,
    /// Seconds to receive a request's head.
    pub client_header_timeout: f64,
    /// Seconds to receive a whole request body.
    pub client_body_timeout: f64,
    /// Signing-proxy mode: no authentication, no policy, no scoping.
    pub unauthenticated_passthrough: bool,
}

/// `[prometheus]`: the backend.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusSection {
    pub host: String,
    pub port: u16,
    pub use_tls: bool,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub project_label_name: String,
    /// When set, replaces host/port/use_tls.
    pub url: Option<Url>,
    /// Seconds.
    pub timeout: f64,
    /// Seconds.
    pub connect_timeout: f64,
    /// Seconds: longest gap between two pieces of a backend answer's body.
    pub read_timeout: f64,
    /// Several equivalent backends; when non-empty, replaces url/host/port.
    pub urls: Vec<Url>,
    /// Path below each backend URL asked by the background health check.
    pub health_check_path: String,
    /// Seconds between background health checks.
    pub health_check_interval: f64,
    /// How backend requests are authenticated, `auto` already resolved.
    pub auth_method: BackendAuthMethod,
    pub bearer_token_file: Option<String>,
    pub tenant_header: Option<String>,
    pub tenant: Option<String>,
    pub tenant_per_project: bool,
}

/// `[prometheus] auth_method`, after `auto` has been resolved from the
/// options present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendAuthMethod {
    None,
    Basic,
    BearerFile,
    SigV4,
    Azure,
    Google,
}

/// `[prometheus_aws] credential_source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsCredentialSource {
    /// The first configured of the others, in their listed order.
    Auto,
    Static,
    Environment,
    Profile,
    WebIdentity,
    /// ECS task role or EKS Pod Identity (`AWS_CONTAINER_CREDENTIALS_*`).
    Container,
    /// The EC2 instance profile, through IMDSv2.
    InstanceMetadata,
}

/// `[prometheus_aws]`: AWS SigV4 signing and where its credentials come from.
/// Environment fallbacks (AWS_REGION, AWS_ROLE_ARN, …) are applied when the
/// backend is built, not here, so that the file alone says what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsSection {
    pub region: Option<String>,
    pub service: String,
    pub credential_source: AwsCredentialSource,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    pub profile: Option<String>,
    pub shared_credentials_file: Option<String>,
    pub config_file: Option<String>,
    pub web_identity_token_file: Option<String>,
    pub web_identity_role_arn: Option<String>,
    pub assume_role_arn: Option<String>,
    pub external_id: Option<String>,
    pub role_session_name: Option<String>,
    /// Seconds.
    pub role_duration: u64,
    pub sts_endpoint: Option<Url>,
    pub ec2_metadata_endpoint: Option<Url>,
}

/// `[prometheus_azure] identity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AzureIdentityKind {
    /// Chosen from the secrets and files present.
    Auto,
    ClientSecret,
    WorkloadIdentity,
    ManagedIdentity,
}

/// `[prometheus_google] identity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoogleIdentityKind {
    /// A key file when one is named, else the metadata server.
    Auto,
    ServiceAccountKey,
    MetadataServer,
}

/// `[prometheus_google]`: how the Google OAuth token is obtained.
/// Environment fallbacks (GOOGLE_APPLICATION_CREDENTIALS, GCE_METADATA_HOST)
/// are applied when the backend is built.
#[derive(Debug, Clone, PartialEq)]
pub struct GoogleSection {
    pub identity: GoogleIdentityKind,
    pub credentials_file: Option<String>,
    pub scope: String,
    pub metadata_endpoint: Option<Url>,
    pub service_account: String,
}

/// `[prometheus_azure]`: how the Azure AD token is obtained. Environment
/// fallbacks (AZURE_TENANT_ID, AZURE_AUTHORITY_HOST, …) are applied when the
/// backend is built.
#[derive(Debug, Clone, PartialEq)]
pub struct AzureSection {
    pub identity: AzureIdentityKind,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub federated_token_file: Option<String>,
    pub authority_host: Option<Url>,
    pub scope: String,
    pub imds_endpoint: Url,
}

impl PrometheusSection {
    /// The base URL requests go to, always ending in `/` so that
    /// `base_url().join("api/v1/query")` keeps any path prefix.
    ///
    /// From `url` when set, otherwise `http(s)://host:port/` with an IPv6
    /// host bracketed. [`load`] has already rejected a host that makes no
    /// URL; if a caller later puts one in, the result is
    /// `http://invalid.invalid/`, which fails to connect (fail closed).
    pub fn base_url(&self) -> Url {
        self.try_base_url()
            .unwrap_or_else(|_| unreachable_backend())
    }

    /// Like [`base_url`](Self::base_url), with the reason when the host is unusable.
    pub fn try_base_url(&self) -> Result<Url, String> {
        if let Some(u) = &self.url {
            let mut u = u.clone();
            if !u.path().ends_with('/') {
                let path = format!("{}/", u.path());
                u.set_path(&path);
            }
            return Ok(u);
        }
        let host = self.host.trim();
        if host.is_empty() {
            return Err("the host is empty".to_owned());
        }
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let scheme = if self.use_tls { "https" } else { "http" };
        let text = format!("{scheme}://{host}:{}/", self.port);
        let u =
            Url::parse(&text).map_err(|e| format!("{host:?} does not make a valid URL ({e})"))?;
        if u.path() != "/"
            || u.query().is_some()
            || u.fragment().is_some()
            || !u.username().is_empty()
        {
            return Err(format!("{host:?} is not a host name or address"));
        }
        Ok(u)
    }

    /// Whether connections to Prometheus use TLS (from `urls`, `url` or `use_tls`).
    pub fn uses_tls(&self) -> bool {
        if !self.urls.is_empty() {
            return self.urls.iter().any(|u| u.scheme() == "https");
        }
        match &self.url {
            Some(u) => u.scheme() == "https",
            None => self.use_tls,
        }
    }

    /// Every backend requests may go to: the `urls`, or the one of
    /// [`base_url`](Self::base_url). Each ends in `/`.
    pub fn base_urls(&self) -> Vec<Url> {
        if self.urls.is_empty() {
            return vec![self.base_url()];
        }
        self.urls
            .iter()
            .map(|u| {
                let mut u = u.clone();
                if !u.path().ends_with('/') {
                    let path = format!("{}/", u.path());
                    u.set_path(&path);
                }
                u
            })
            .collect()
    }
}

/// A URL that can never be connected to (RFC 2606 reserves `.invalid`).
fn unreachable_backend() -> Url {
    Url::parse("http://invalid.invalid/").unwrap_or_else(|_| unreachable!("constant URL parses"))
}

/// `memcache_security_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemcacheSecurity {
    /// Token data stored as is.
    None,
    /// Token data authenticated with HMAC.
    Mac,
    /// Token data encrypted and authenticated.
    Encrypt,
}

/// `[keystone_authtoken]`: token validation and the service user.
#[derive(Debug, Clone, PartialEq)]
pub struct KeystoneSection {
    /// As configured (deprecated name `auth_uri`); see
    /// [`KeystoneSection::www_authenticate_uri()`] for the effective value.
    pub www_authenticate_uri: Option<Url>,
    pub auth_url: Option<Url>,
    /// `password`, `v3password` or `v3applicationcredential`; inferred from
    /// the credentials present when the file does not say (with a warning).
    pub auth_type: Option<String>,
    pub username: Option<String>,
    pub user_id: Option<String>,
    pub password: Option<Secret>,
    /// Falls back to `default_domain_name` when neither user domain is set.
    pub user_domain_name: Option<String>,
    /// Falls back to `default_domain_id` when neither user domain is set.
    pub user_domain_id: Option<String>,
    pub project_name: Option<String>,
    pub project_id: Option<String>,
    /// Falls back to `default_domain_name` when neither project domain is set.
    pub project_domain_name: Option<String>,
    /// Falls back to `default_domain_id` when neither project domain is set.
    pub project_domain_id: Option<String>,
    pub application_credential_id: Option<String>,
    pub application_credential_secret: Option<Secret>,
    /// `public`, `internal` or `admin` (a `…URL` spelling is normalized).
    pub cafile: Option<String>,
    pub certfile: Option<String>,
    pub keyfile: Option<String>,
    pub insecure: bool,
    /// Seconds; `None` lets the caller choose.
    pub http_connect_timeout: Option<f64>,
    pub http_request_max_retries: u32,
    pub memcached_servers: Vec<String>,
    /// Seconds; negative (-1) disables the token cache.
    pub token_cache_time: i64,
    pub memcache_security_strategy: MemcacheSecurity,
    pub memcache_secret_key: Option<Secret>,
    /// Seconds a dead memcached server is skipped.
    pub memcache_pool_dead_retry: u64,
    /// Connections per memcached server (at least 1).
    pub memcache_pool_maxsize: u64,
    /// Seconds per memcached operation (at least 1).
    pub memcache_pool_socket_timeout: u64,
    /// Seconds to wait for a free pooled connection.
    pub memcache_pool_conn_get_timeout: u64,
    /// Seconds; 0 disables the negative cache.
    pub negative_cache_time: u64,
    /// Entries.
    pub token_cache_size: u64,
    /// Lower-cased; an `X-Service-Token` counts as a service's with one of them.
    pub service_token_roles: Vec<String>,
    pub service_token_roles_required: bool,
}

impl KeystoneSection {
    /// The URI for `WWW-Authenticate: Keystone uri="…"`:
    /// `www_authenticate_uri`, or `auth_url` when it is unset.
    pub fn www_authenticate_uri(&self) -> Option<&Url> {
        self.www_authenticate_uri
            .as_ref()
            .or(self.auth_url.as_ref())
    }
}

/// `[oslo_policy]`: where the policy lives and how it is evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySection {
    /// As configured; relative paths are found with [`Config::find_file`].
    pub policy_file: String,
    /// Every occurrence of the option, oldest file first; empty entries dropped.
    pub policy_dirs: Vec<String>,
    pub policy_default_rule: String,
    pub enforce_scope: bool,
    pub enforce_new_defaults: bool,
}

/// `[cors]`: browser cross-origin access.
#[derive(Debug, Clone, PartialEq)]
pub struct CorsSection {
    /// Empty disables CORS.
    pub allowed_origin: Vec<String>,
    pub allow_credentials: bool,
    pub expose_headers: Vec<String>,
    /// Seconds.
    pub max_age: u64,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
}

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

/// `[oslo_middleware]`: proxy header handling.
#[derive(Debug, Clone, PartialEq)]
pub struct MiddlewareSection {
    pub enable_proxy_headers_parsing: bool,
}

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
    /// Files read, in the order they were read (`--config-file`s, then the
    /// `*.conf` of each `--config-dir`), as absolute paths.
    pub config_files: Vec<PathBuf>,
    /// The `--config-dir`s, as absolute paths.
    pub config_dirs: Vec<PathBuf>,
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

/// Like [`load`], with command-line values that override every file.
///
/// The overrides are read as one more file, named `<command line>`, after
/// all the others, so they go through exactly the same conversion and
/// validation; a `$` in a value is literal (it is not a reference).
pub fn load_with_overrides(
    files: &[PathBuf],
    dirs: &[PathBuf],
    overrides: &[Override],
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
    if !overrides.is_empty() {
        docs.push((
            PathBuf::from("<command line>"),
            overrides_document(overrides)?,
        ));
    }
    let sources = Sources::from_documents(docs);
    let mut warnings = sources.scan_warnings();
    let mut resolver = Resolver::new(&sources);
    let mut config = build(&mut resolver, &mut warnings)?;
    config.config_files = paths;
    config.config_dirs = dirs;
    validate(&config, &mut warnings)?;
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
        default: build_default(r)?,
        api: build_api(r)?,
        prometheus: build_prometheus(r)?,
        prometheus_aws: build_aws(r)?,
        prometheus_azure: build_azure(r)?,
        prometheus_google: build_google(r)?,
        keystone: build_keystone(r, warnings)?,
        oslo_policy: PolicySection {
            policy_file: r.string("oslo_policy", "policy_file")?,
            policy_dirs: r
                .list("oslo_policy", "policy_dirs")?
                .into_iter()
                .filter(|d| !d.trim().is_empty())
                .collect(),
            policy_default_rule: r.string("oslo_policy", "policy_default_rule")?,
            enforce_scope: r.bool("oslo_policy", "enforce_scope")?,
            enforce_new_defaults: r.bool("oslo_policy", "enforce_new_defaults")?,
        },
        cors: CorsSection {
            allowed_origin: non_empty(r.list("cors", "allowed_origin")?),
            allow_credentials: r.bool("cors", "allow_credentials")?,
            expose_headers: non_empty(r.list("cors", "expose_headers")?),
            max_age: r.uint("cors", "max_age")?,
            allow_methods: non_empty(r.list("cors", "allow_methods")?),
            allow_headers: non_empty(r.list("cors", "allow_headers")?),
        },
        healthcheck: build_healthcheck(r)?,
        limits: limits::build(r)?,
        oslo_middleware: MiddlewareSection {
            enable_proxy_headers_parsing: r
                .bool("oslo_middleware", "enable_proxy_headers_parsing")?,
        },
        config_files: Vec::new(),
        config_dirs: Vec::new(),
    })
}

fn non_empty(items: Vec<String>) -> Vec<String> {
    items.into_iter().filter(|i| !i.is_empty()).collect()
}

fn build_default(r: &mut Resolver<'_>) -> Result<DefaultSection, ConfigError> {
    let auth_mode = match r.typed("DEFAULT", "auth_mode")?.0 {
        resolve::Typed::Str(s) if s == "noauth" => AuthMode::Noauth,
        resolve::Typed::Str(s) if s == "keystone" => AuthMode::Keystone,
        _ => {
            return Err(ConfigError::new(
                "DEFAULT",
                "auth_mode",
                "expected keystone or noauth",
            ))
        }
    };
    Ok(DefaultSection {
        auth_mode,
        debug: r.bool("DEFAULT", "debug")?,
        log_file: r.opt_string("DEFAULT", "log_file")?,
        log_dir: r.opt_string("DEFAULT", "log_dir")?,
        use_json: r.bool("DEFAULT", "use_json")?,
        use_stderr: r.bool("DEFAULT", "use_stderr")?,
    })
}

fn build_api(r: &mut Resolver<'_>) -> Result<ApiSection, ConfigError> {
    let host = r.string("api", "host")?.trim().to_owned();
    if host.is_empty() {
        return Err(ConfigError::new("api", "host", "must not be empty"));
    }
    let root = r.string("api", "root_path")?;
    let root_path = root.trim().trim_end_matches('/').to_owned();
    if !root_path.is_empty() && !root_path.starts_with('/') {
        return Err(ConfigError::new(
            "api",
            "root_path",
            format!("invalid value {root:?}: must start with '/'"),
        ));
    }
    if root_path.contains(['?', '#', '%', ' ']) {
        return Err(ConfigError::new(
            "api",
            "root_path",
            format!("invalid value {root:?}: must be a plain path"),
        ));
    }
    Ok(ApiSection {
        host,
        port: r.uint("api", "port")?,
        root_path,
        workers: r.uint("api", "workers")?,
        max_request_body_size: r.uint("api", "max_request_body_size")?,
        max_filtered_response_bytes: r.uint("api", "max_filtered_response_bytes")?,
        graceful_shutdown_timeout: r.uint("api", "graceful_shutdown_timeout")?,
        client_header_timeout: r.float("api", "client_header_timeout")?,
        client_body_timeout: r.float("api", "client_body_timeout")?,
        unauthenticated_passthrough: r.bool("api", "unauthenticated_passthrough")?,
    })
}

/// Whether `s` is a valid Prometheus label name.
fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fn build_prometheus(r: &mut Resolver<'_>) -> Result<PrometheusSection, ConfigError> {
    let label = r.string("prometheus", "project_label_name")?;
    if !is_label_name(&label) {
        return Err(ConfigError::new(
            "prometheus",
            "project_label_name",
            format!(
                "invalid value {label:?}: not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"
            ),
        ));
    }
    let url = r.url("prometheus", "url")?;
    if let Some(u) = &url {
        check_backend_url("url", u)?;
    }
    let mut urls = Vec::new();
    for item in non_empty(r.list("prometheus", "urls")?) {
        let u = resolve::parse_url(&item).map_err(|p| ConfigError::new("prometheus", "urls", p))?;
        check_backend_url("urls", &u)?;
        urls.push(u);
    }
    let username = r.opt_string("prometheus", "username")?;
    let password = r.secret("prometheus", "password")?;
    let bearer_token_file = r.opt_string("prometheus", "bearer_token_file")?;
    let auth_method = match r.string("prometheus", "auth_method")?.as_str() {
        "none" => BackendAuthMethod::None,
        "basic" => BackendAuthMethod::Basic,
        "bearer_file" => BackendAuthMethod::BearerFile,
        "sigv4" => BackendAuthMethod::SigV4,
        "azure" => BackendAuthMethod::Azure,
        "google" => BackendAuthMethod::Google,
        _ => match (&username, &password, &bearer_token_file) {
            (Some(_), Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "prometheus",
                    "auth_method",
                    "both username/password and bearer_token_file are set; choose one with \
                     auth_method = basic or bearer_file",
                ))
            }
            (Some(_), Some(_), None) => BackendAuthMethod::Basic,
            (_, _, Some(_)) => BackendAuthMethod::BearerFile,
            _ => BackendAuthMethod::None,
        },
    };
    let health_check_path = r
        .string("prometheus", "health_check_path")?
        .trim()
        .to_owned();
    if !health_check_path.starts_with('/') || health_check_path.contains(['?', '#', ' ']) {
        return Err(ConfigError::new(
            "prometheus",
            "health_check_path",
            format!("invalid value {health_check_path:?}: must be a path starting with '/'"),
        ));
    }
    let section = PrometheusSection {
        host: r.string("prometheus", "host")?.trim().to_owned(),
        port: r.uint("prometheus", "port")?,
        use_tls: r.bool("prometheus", "use_tls")?,
        ca_file: r.opt_string("prometheus", "ca_file")?,
        cert_file: r.opt_string("prometheus", "cert_file")?,
        key_file: r.opt_string("prometheus", "key_file")?,
        username,
        password,
        project_label_name: label,
        url,
        timeout: r.float("prometheus", "timeout")?,
        connect_timeout: r.float("prometheus", "connect_timeout")?,
        read_timeout: r.float("prometheus", "read_timeout")?,
        urls,
        health_check_path,
        health_check_interval: r.float("prometheus", "health_check_interval")?,
        auth_method,
        bearer_token_file,
        tenant_header: r.opt_string("prometheus", "tenant_header")?,
        tenant: r.opt_string("prometheus", "tenant")?,
        tenant_per_project: r.bool("prometheus", "tenant_per_project")?,
    };
    if section.url.is_none() && section.urls.is_empty() {
        section
            .try_base_url()
            .map_err(|p| ConfigError::new("prometheus", "host", format!("invalid value: {p}")))?;
    }
    Ok(section)
}

/// A backend URL carries no credentials, query or fragment (they would be
/// logged, or lost when paths are appended).
fn check_backend_url(option: &str, u: &Url) -> Result<(), ConfigError> {
    if !u.username().is_empty() || u.password().is_some() {
        return Err(ConfigError::new(
            "prometheus",
            option,
            "must not contain credentials; use the username and password options",
        ));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(ConfigError::new(
            "prometheus",
            option,
            format!(
                "invalid value {:?}: no query or fragment allowed",
                u.as_str()
            ),
        ));
    }
    Ok(())
}

fn build_aws(r: &mut Resolver<'_>) -> Result<AwsSection, ConfigError> {
    const S: &str = "prometheus_aws";
    let credential_source = match r.string(S, "credential_source")?.as_str() {
        "static" => AwsCredentialSource::Static,
        "environment" => AwsCredentialSource::Environment,
        "profile" => AwsCredentialSource::Profile,
        "web_identity" => AwsCredentialSource::WebIdentity,
        "container" => AwsCredentialSource::Container,
        "instance_metadata" => AwsCredentialSource::InstanceMetadata,
        _ => AwsCredentialSource::Auto,
    };
    Ok(AwsSection {
        region: r.opt_string(S, "region")?.map(|s| s.trim().to_owned()),
        service: r.string(S, "service")?.trim().to_owned(),
        credential_source,
        access_key_id: r.opt_string(S, "access_key_id")?,
        secret_access_key: r.secret(S, "secret_access_key")?,
        session_token: r.secret(S, "session_token")?,
        profile: r.opt_string(S, "profile")?,
        shared_credentials_file: r.opt_string(S, "shared_credentials_file")?,
        config_file: r.opt_string(S, "config_file")?,
        web_identity_token_file: r.opt_string(S, "web_identity_token_file")?,
        web_identity_role_arn: r.opt_string(S, "web_identity_role_arn")?,
        assume_role_arn: r.opt_string(S, "assume_role_arn")?,
        external_id: r.opt_string(S, "external_id")?,
        role_session_name: r.opt_string(S, "role_session_name")?,
        role_duration: r.uint(S, "role_duration")?,
        sts_endpoint: r.url(S, "sts_endpoint")?,
        ec2_metadata_endpoint: r.url(S, "ec2_metadata_endpoint")?,
    })
}

fn build_azure(r: &mut Resolver<'_>) -> Result<AzureSection, ConfigError> {
    const S: &str = "prometheus_azure";
    let identity = match r.string(S, "identity")?.as_str() {
        "client_secret" => AzureIdentityKind::ClientSecret,
        "workload_identity" => AzureIdentityKind::WorkloadIdentity,
        "managed_identity" => AzureIdentityKind::ManagedIdentity,
        _ => AzureIdentityKind::Auto,
    };
    let scope = r.string(S, "scope")?.trim().to_owned();
    if scope.is_empty() {
        return Err(ConfigError::new(S, "scope", "must not be empty"));
    }
    let imds_endpoint = r
        .url(S, "imds_endpoint")?
        .ok_or_else(|| ConfigError::new(S, "imds_endpoint", "must not be empty"))?;
    Ok(AzureSection {
        identity,
        tenant_id: r.opt_string(S, "tenant_id")?,
        client_id: r.opt_string(S, "client_id")?,
        client_secret: r.secret(S, "client_secret")?,
        federated_token_file: r.opt_string(S, "federated_token_file")?,
        authority_host: r.url(S, "authority_host")?,
        scope,
        imds_endpoint,
    })
}

fn build_google(r: &mut Resolver<'_>) -> Result<GoogleSection, ConfigError> {
    const S: &str = "prometheus_google";
    let identity = match r.string(S, "identity")?.as_str() {
        "service_account_key" => GoogleIdentityKind::ServiceAccountKey,
        "metadata_server" => GoogleIdentityKind::MetadataServer,
        _ => GoogleIdentityKind::Auto,
    };
    let scope = r.string(S, "scope")?.trim().to_owned();
    if scope.is_empty() {
        return Err(ConfigError::new(S, "scope", "must not be empty"));
    }
    let service_account = r.string(S, "service_account")?.trim().to_owned();
    if service_account.is_empty() || service_account.contains(['/', '?', '#']) {
        return Err(ConfigError::new(
            S,
            "service_account",
            format!("invalid value {service_account:?}: expected 'default' or an e-mail address"),
        ));
    }
    Ok(GoogleSection {
        identity,
        credentials_file: r.opt_string(S, "credentials_file")?,
        scope,
        metadata_endpoint: r.url(S, "metadata_endpoint")?,
        service_account,
    })
}

fn build_keystone(
    r: &mut Resolver<'_>,
    warnings: &mut Vec<Warning>,
) -> Result<KeystoneSection, ConfigError> {
    const S: &str = "keystone_authtoken";
    let default_domain_id = r.opt_string(S, "default_domain_id")?;
    let default_domain_name = r.opt_string(S, "default_domain_name")?;
    let mut user_domain_id = r.opt_string(S, "user_domain_id")?;
    let mut user_domain_name = r.opt_string(S, "user_domain_name")?;
    if user_domain_id.is_none() && user_domain_name.is_none() {
        user_domain_id.clone_from(&default_domain_id);
        user_domain_name.clone_from(&default_domain_name);
    }
    let mut project_domain_id = r.opt_string(S, "project_domain_id")?;
    let mut project_domain_name = r.opt_string(S, "project_domain_name")?;
    if project_domain_id.is_none() && project_domain_name.is_none() {
        project_domain_id = default_domain_id;
        project_domain_name = default_domain_name;
    }
    let memcache_security_strategy = match r.string(S, "memcache_security_strategy")?.as_str() {
        "MAC" => MemcacheSecurity::Mac,
        "ENCRYPT" => MemcacheSecurity::Encrypt,
        _ => MemcacheSecurity::None,
    };
    let mut k = KeystoneSection {
        www_authenticate_uri: r.url(S, "www_authenticate_uri")?,
        auth_url: r.url(S, "auth_url")?,
        auth_type: r.opt_string(S, "auth_type")?,
        username: r.opt_string(S, "username")?,
        user_id: r.opt_string(S, "user_id")?,
        password: r.secret(S, "password")?,
        user_domain_name,
        user_domain_id,
        project_name: r.opt_string(S, "project_name")?,
        project_id: r.opt_string(S, "project_id")?,
        project_domain_name,
        project_domain_id,
        application_credential_id: r.opt_string(S, "application_credential_id")?,
        application_credential_secret: r.secret(S, "application_credential_secret")?,
        cafile: r.opt_string(S, "cafile")?,
        certfile: r.opt_string(S, "certfile")?,
        keyfile: r.opt_string(S, "keyfile")?,
        insecure: r.bool(S, "insecure")?,
        http_connect_timeout: r.opt_float(S, "http_connect_timeout")?,
        http_request_max_retries: r.uint(S, "http_request_max_retries")?,
        memcached_servers: non_empty(r.list(S, "memcached_servers")?),
        token_cache_time: r.int(S, "token_cache_time")?,
        memcache_security_strategy,
        memcache_secret_key: r.secret(S, "memcache_secret_key")?,
        memcache_pool_dead_retry: r.uint(S, "memcache_pool_dead_retry")?,
        memcache_pool_maxsize: r.uint(S, "memcache_pool_maxsize")?,
        memcache_pool_socket_timeout: r.uint(S, "memcache_pool_socket_timeout")?,
        memcache_pool_conn_get_timeout: r.uint(S, "memcache_pool_conn_get_timeout")?,
        negative_cache_time: r.uint(S, "negative_cache_time")?,
        token_cache_size: r.uint(S, "token_cache_size")?,
        service_token_roles: r
            .list(S, "service_token_roles")?
            .into_iter()
            .map(|role| role.trim().to_lowercase())
            .filter(|role| !role.is_empty())
            .collect(),
        service_token_roles_required: r.bool(S, "service_token_roles_required")?,
    };
    if k.auth_type.is_none() {
        let inferred = if k.application_credential_id.is_some() {
            Some("v3applicationcredential")
        } else if k.username.is_some() || k.user_id.is_some() || k.password.is_some() {
            Some("password")
        } else {
            None
        };
        if let Some(t) = inferred {
            warnings.push(Warning(format!(
                "[{S}] auth_type: not set, using {t} from the credentials present"
            )));
            k.auth_type = Some(t.to_owned());
        }
    }
    Ok(k)
}

fn build_healthcheck(r: &mut Resolver<'_>) -> Result<HealthcheckSection, ConfigError> {
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

/// Checks that a file named by an option can be opened for reading.
fn check_readable(section: &str, option: &str, path: &str) -> Result<(), ConfigError> {
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
fn validate(c: &Config, warnings: &mut Vec<Warning>) -> Result<(), ConfigError> {
    validate_prometheus(&c.prometheus, warnings)?;
    validate_backend_auth(c, warnings)?;
    if c.api.unauthenticated_passthrough {
        // Keystone is not used at all: nothing of it needs to be valid.
        return Ok(());
    }
    validate_keystone(&c.keystone, c.default.auth_mode, warnings)
}

/// The options of the chosen `auth_method` and of the tenant header.
fn validate_backend_auth(c: &Config, warnings: &mut Vec<Warning>) -> Result<(), ConfigError> {
    const S: &str = "prometheus";
    let p = &c.prometheus;
    if !p.urls.is_empty() && p.url.is_some() {
        warnings.push(Warning(format!("[{S}] url: ignored because urls is set")));
    }
    match p.auth_method {
        BackendAuthMethod::Basic => {
            if p.username.is_none() || p.password.is_none() {
                return Err(ConfigError::new(
                    S,
                    if p.username.is_none() {
                        "username"
                    } else {
                        "password"
                    },
                    "required with auth_method = basic",
                ));
            }
        }
        BackendAuthMethod::BearerFile => match &p.bearer_token_file {
            None => {
                return Err(ConfigError::new(
                    S,
                    "bearer_token_file",
                    "required with auth_method = bearer_file",
                ))
            }
            Some(path) => check_readable(S, "bearer_token_file", path)?,
        },
        BackendAuthMethod::SigV4 => validate_aws(&c.prometheus_aws, warnings)?,
        BackendAuthMethod::Azure => validate_azure(&c.prometheus_azure)?,
        BackendAuthMethod::Google => {
            if let Some(path) = &c.prometheus_google.credentials_file {
                check_readable("prometheus_google", "credentials_file", path)?;
            }
        }
        BackendAuthMethod::None => {}
    }
    if p.auth_method != BackendAuthMethod::BearerFile && p.bearer_token_file.is_some() {
        warnings.push(Warning(format!(
            "[{S}] bearer_token_file: ignored because auth_method is not bearer_file"
        )));
    }
    match &p.tenant_header {
        Some(name) => {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(ConfigError::new(
                    S,
                    "tenant_header",
                    format!("invalid value {name:?}: not an HTTP header name"),
                ));
            }
            if let Some(t) = &p.tenant {
                if reqwest::header::HeaderValue::from_str(t).is_err() {
                    return Err(ConfigError::new(
                        S,
                        "tenant",
                        format!("invalid value {t:?}: not a valid header value"),
                    ));
                }
            } else if p.tenant_per_project {
                return Err(ConfigError::new(
                    S,
                    "tenant",
                    "required with tenant_per_project: the tenant sent for privileged callers",
                ));
            } else {
                return Err(ConfigError::new(
                    S,
                    "tenant",
                    "required with tenant_header (or set tenant_per_project)",
                ));
            }
        }
        None => {
            if p.tenant.is_some() || p.tenant_per_project {
                warnings.push(Warning(format!(
                    "[{S}] tenant: ignored because tenant_header is not set"
                )));
            }
        }
    }
    Ok(())
}

fn validate_aws(a: &AwsSection, warnings: &mut Vec<Warning>) -> Result<(), ConfigError> {
    const S: &str = "prometheus_aws";
    if a.service.is_empty() {
        return Err(ConfigError::new(S, "service", "must not be empty"));
    }
    match (&a.access_key_id, &a.secret_access_key) {
        (Some(_), None) => {
            return Err(ConfigError::new(
                S,
                "secret_access_key",
                "required when access_key_id is set",
            ))
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                S,
                "access_key_id",
                "required when secret_access_key is set",
            ))
        }
        (None, None) if a.credential_source == AwsCredentialSource::Static => {
            return Err(ConfigError::new(
                S,
                "access_key_id",
                "required with credential_source = static",
            ))
        }
        _ => {}
    }
    if a.external_id.is_some() && a.assume_role_arn.is_none() {
        warnings.push(Warning(format!(
            "[{S}] external_id: ignored because assume_role_arn is not set"
        )));
    }
    for (option, value) in [
        ("web_identity_role_arn", &a.web_identity_role_arn),
        ("assume_role_arn", &a.assume_role_arn),
    ] {
        if let Some(arn) = value {
            if !arn.starts_with("arn:") {
                return Err(ConfigError::new(
                    S,
                    option,
                    format!("invalid value {arn:?}: expected a role ARN (arn:aws:iam::<account>:role/<name>)"),
                ));
            }
        }
    }
    Ok(())
}

fn validate_azure(a: &AzureSection) -> Result<(), ConfigError> {
    const S: &str = "prometheus_azure";
    let id_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
    };
    for (option, value) in [("tenant_id", &a.tenant_id), ("client_id", &a.client_id)] {
        if let Some(v) = value {
            if !id_ok(v) {
                return Err(ConfigError::new(
                    S,
                    option,
                    format!("invalid value {v:?}: expected a GUID or a domain name"),
                ));
            }
        }
    }
    // Missing tenant, client or secret may still come from AZURE_* variables:
    // that is checked when the backend is built, with the environment.
    Ok(())
}

fn validate_prometheus(
    p: &PrometheusSection,
    warnings: &mut Vec<Warning>,
) -> Result<(), ConfigError> {
    const S: &str = "prometheus";
    let files = [
        ("ca_file", &p.ca_file),
        ("cert_file", &p.cert_file),
        ("key_file", &p.key_file),
    ];
    if p.uses_tls() {
        for (option, value) in files {
            if let Some(path) = value {
                check_readable(S, option, path)?;
            }
        }
        match (&p.cert_file, &p.key_file) {
            (Some(_), None) => {
                return Err(ConfigError::new(
                    S,
                    "key_file",
                    "required when cert_file is set",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    S,
                    "cert_file",
                    "required when key_file is set",
                ))
            }
            _ => {}
        }
    } else {
        for (option, value) in files {
            if value.is_some() {
                warnings.push(Warning(format!(
                    "[{S}] {option}: ignored because TLS is not used (use_tls = false)"
                )));
            }
        }
    }
    match (&p.username, &p.password) {
        (Some(_), None) => warnings.push(Warning(format!(
            "[{S}] username: ignored because password is not set (basic auth needs both)"
        ))),
        (None, Some(_)) => warnings.push(Warning(format!(
            "[{S}] password: ignored because username is not set (basic auth needs both)"
        ))),
        _ => {}
    }
    Ok(())
}

fn validate_keystone(
    k: &KeystoneSection,
    mode: AuthMode,
    warnings: &mut Vec<Warning>,
) -> Result<(), ConfigError> {
    const S: &str = "keystone_authtoken";
    if k.memcache_security_strategy != MemcacheSecurity::None && k.memcache_secret_key.is_none() {
        return Err(ConfigError::new(
            S,
            "memcache_secret_key",
            "required when memcache_security_strategy is MAC or ENCRYPT",
        ));
    }
    if mode == AuthMode::Noauth {
        return Ok(());
    }
    let Some(auth_url) = &k.auth_url else {
        return Err(ConfigError::new(
            S,
            "auth_url",
            "required with auth_mode = keystone",
        ));
    };
    // The TLS files are only read for https connections: devstack writes a
    // cafile that does not exist when TLS is off, and upstream starts fine.
    let tls = auth_url.scheme() == "https";
    for (option, value) in [
        ("cafile", &k.cafile),
        ("certfile", &k.certfile),
        ("keyfile", &k.keyfile),
    ] {
        if let Some(path) = value {
            if tls {
                check_readable(S, option, path)?;
            } else if check_readable(S, option, path).is_err() {
                warnings.push(Warning(format!(
                    "[{S}] {option}: {path} is not readable; ignored because auth_url is not https"
                )));
            }
        }
    }
    if k.keyfile.is_some() && k.certfile.is_none() {
        return Err(ConfigError::new(
            S,
            "certfile",
            "required when keyfile is set",
        ));
    }
    let required =
        |option: &str, why: &str| Err(ConfigError::new(S, option, format!("required {why}")));
    if k.auth_type.as_deref() == Some("v3applicationcredential") {
        let why = "with auth_type = v3applicationcredential (auth_mode = keystone)";
        if k.application_credential_id.is_none() {
            return required("application_credential_id", why);
        }
        if k.application_credential_secret.is_none() {
            return required("application_credential_secret", why);
        }
        return Ok(());
    }
    let t = k.auth_type.as_deref().unwrap_or("password");
    let why = format!("with auth_type = {t} (auth_mode = keystone)");
    if k.username.is_none() && k.user_id.is_none() {
        return required("username", &format!("(or user_id) {why}"));
    }
    if k.password.is_none() {
        return required("password", &why);
    }
    if k.user_id.is_none() && k.user_domain_name.is_none() && k.user_domain_id.is_none() {
        return required(
            "user_domain_name",
            &format!("(or user_domain_id) with username {why}"),
        );
    }
    if k.project_id.is_none() && k.project_name.is_none() {
        return required(
            "project_name",
            &format!("(or project_id): the service token must be project-scoped {why}"),
        );
    }
    if k.project_id.is_none() && k.project_domain_name.is_none() && k.project_domain_id.is_none() {
        return required(
            "project_domain_name",
            &format!("(or project_domain_id) with project_name {why}"),
        );
    }
    Ok(())
}
