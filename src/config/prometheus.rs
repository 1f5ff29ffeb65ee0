//! `[prometheus]`: the backend — where it is, TLS, timeouts, health checks,
//! how requests to it are authenticated and the tenant header. The
//! cross-section checks of the chosen `auth_method` live here too, since
//! this section is what chooses.

use reqwest::header::{HeaderName, HeaderValue};
use url::Url;

use super::resolve::{self, Resolver};
use super::{
    check_readable, non_empty, prometheus_aws, prometheus_azure, AwsSection, AzureSection, Config,
    ConfigError, GoogleSection, Secret, Warning,
};

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
    /// Metric access rules of scoped callers (YAML), found like other files.
    pub metric_rules_file: Option<String>,
    /// Seconds between checks of `metric_rules_file` for changes.
    pub metric_rules_reload_interval: f64,
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
    /// The `dns+…` / `dnssrv+…` entries of `url` and `urls`, resolved
    /// periodically into more backends.
    pub discovered: Vec<DiscoveredBackend>,
    /// Seconds between two resolutions of the discovered entries.
    pub dns_refresh_interval: f64,
    /// The DNS server asked (`None`: the system's, from /etc/resolv.conf).
    pub dns_server: Option<std::net::SocketAddr>,
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

/// A Thanos-style `dns+http://host:port/prefix` (A/AAAA; `dns+host:port`
/// means http) or `dnssrv+http://_name._tcp.domain/prefix` (SRV: the
/// records give the hosts and ports) entry of `[prometheus] url`/`urls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredBackend {
    /// The entry as written, for logs and the health report.
    pub entry: String,
    /// SRV (`dnssrv+`) rather than A/AAAA (`dns+`).
    pub srv: bool,
    /// The URL after the prefix, ending in `/`; its host is the name to
    /// resolve. For `dns+` its port (or the scheme's) is the port used.
    pub template: Url,
}

impl DiscoveredBackend {
    /// `Ok(None)` when `s` is an ordinary URL; the entry, or what is wrong.
    pub fn parse(s: &str) -> Result<Option<DiscoveredBackend>, String> {
        let (srv, rest) = if let Some(r) = s.strip_prefix("dnssrv+") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("dns+") {
            (false, r)
        } else {
            return Ok(None);
        };
        let with_scheme = if rest.contains("://") {
            rest.to_owned()
        } else {
            format!("http://{rest}")
        };
        let mut template = resolve::parse_url(&with_scheme).map_err(|p| format!("{s:?}: {p}"))?;
        if srv && template.port().is_some() {
            return Err(format!(
                "{s:?}: a dnssrv+ entry takes its ports from the SRV records; remove the port"
            ));
        }
        if !template.path().ends_with('/') {
            let path = format!("{}/", template.path());
            template.set_path(&path);
        }
        Ok(Some(DiscoveredBackend {
            entry: s.to_owned(),
            srv,
            template,
        }))
    }
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
        if !self.urls.is_empty() || !self.discovered.is_empty() {
            return self
                .urls
                .iter()
                .chain(self.discovered.iter().map(|d| &d.template))
                .any(|u| u.scheme() == "https");
        }
        match &self.url {
            Some(u) => u.scheme() == "https",
            None => self.use_tls,
        }
    }

    /// Every configured backend requests may go to: the `urls`, or the one
    /// of [`base_url`](Self::base_url) (none when `url`/`urls` only have
    /// discovered entries: see [`discovered`](Self::discovered)). Each ends in `/`.
    pub fn base_urls(&self) -> Vec<Url> {
        if self.urls.is_empty() {
            if !self.discovered.is_empty() {
                return Vec::new();
            }
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

/// Whether `s` is a valid Prometheus label name.
fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

pub(super) fn build_prometheus(r: &mut Resolver<'_>) -> Result<PrometheusSection, ConfigError> {
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
    let mut discovered = Vec::new();
    let mut url = None;
    if let Some(text) = r.opt_string("prometheus", "url")? {
        match DiscoveredBackend::parse(&text)
            .map_err(|p| ConfigError::new("prometheus", "url", p))?
        {
            Some(d) => {
                check_backend_url("url", &d.template)?;
                discovered.push(d);
            }
            None => {
                let u = resolve::parse_url(&text)
                    .map_err(|p| ConfigError::new("prometheus", "url", p))?;
                check_backend_url("url", &u)?;
                url = Some(u);
            }
        }
    }
    let mut urls = Vec::new();
    let mut discovered_in_urls = Vec::new();
    for item in non_empty(r.list("prometheus", "urls")?) {
        if let Some(d) = DiscoveredBackend::parse(&item)
            .map_err(|p| ConfigError::new("prometheus", "urls", p))?
        {
            check_backend_url("urls", &d.template)?;
            discovered_in_urls.push(d);
            continue;
        }
        let u = resolve::parse_url(&item).map_err(|p| ConfigError::new("prometheus", "urls", p))?;
        check_backend_url("urls", &u)?;
        urls.push(u);
    }
    // `urls` replaces `url`, discovered entries included.
    if !urls.is_empty() || !discovered_in_urls.is_empty() {
        discovered = discovered_in_urls;
    }
    let dns_server = match r.opt_string("prometheus", "dns_server")? {
        None => None,
        Some(text) => Some(parse_dns_server(&text).map_err(|p| {
            ConfigError::new(
                "prometheus",
                "dns_server",
                format!("invalid value {text:?}: {p}"),
            )
        })?),
    };
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
        metric_rules_file: r.opt_string("prometheus", "metric_rules_file")?,
        metric_rules_reload_interval: r.float("prometheus", "metric_rules_reload_interval")?,
        url,
        timeout: r.float("prometheus", "timeout")?,
        connect_timeout: r.float("prometheus", "connect_timeout")?,
        read_timeout: r.float("prometheus", "read_timeout")?,
        urls,
        discovered,
        dns_refresh_interval: r.float("prometheus", "dns_refresh_interval")?,
        dns_server,
        health_check_path,
        health_check_interval: r.float("prometheus", "health_check_interval")?,
        auth_method,
        bearer_token_file,
        tenant_header: r.opt_string("prometheus", "tenant_header")?,
        tenant: r.opt_string("prometheus", "tenant")?,
        tenant_per_project: r.bool("prometheus", "tenant_per_project")?,
    };
    if section.url.is_none() && section.urls.is_empty() && section.discovered.is_empty() {
        section
            .try_base_url()
            .map_err(|p| ConfigError::new("prometheus", "host", format!("invalid value: {p}")))?;
    }
    Ok(section)
}

/// `IP` or `IP:PORT` (`[IPv6]:PORT`) of a DNS server; port 53 by default.
fn parse_dns_server(text: &str) -> Result<std::net::SocketAddr, String> {
    let text = text.trim();
    if let Ok(a) = text.parse::<std::net::SocketAddr>() {
        return Ok(a);
    }
    let ip = text.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<std::net::IpAddr>()
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .map_err(|_| "not an IP address or IP:port (a DNS server is given by address)".to_owned())
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

/// How backend requests are authenticated, with everything the chosen
/// method needs from the files: decided once, when the configuration is
/// checked, so that building the backend cannot find a missing option.
/// What is still open (environment fallbacks of the cloud identities) is
/// resolved in one place, `crate::backend::auth`, with the environment.
#[derive(Debug, Clone, PartialEq)]
pub enum BackendAuthConfig {
    None,
    Basic {
        username: String,
        password: Secret,
    },
    /// A readable file (checked at load).
    BearerFile {
        path: String,
    },
    SigV4(AwsSection),
    Azure(AzureSection),
    Google(GoogleSection),
}

impl BackendAuthConfig {
    /// Which method this is.
    pub fn method(&self) -> BackendAuthMethod {
        match self {
            BackendAuthConfig::None => BackendAuthMethod::None,
            BackendAuthConfig::Basic { .. } => BackendAuthMethod::Basic,
            BackendAuthConfig::BearerFile { .. } => BackendAuthMethod::BearerFile,
            BackendAuthConfig::SigV4(_) => BackendAuthMethod::SigV4,
            BackendAuthConfig::Azure(_) => BackendAuthMethod::Azure,
            BackendAuthConfig::Google(_) => BackendAuthMethod::Google,
        }
    }
}

/// `[prometheus] tenant_header` / `tenant` / `tenant_per_project`, checked:
/// a valid header name and value.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantConfig {
    pub header: HeaderName,
    /// Sent for every request (static), or for privileged ones (per project).
    pub tenant: HeaderValue,
    pub per_project: bool,
}

/// The options of the chosen `auth_method` and of the tenant header,
/// checked and turned into what the backend is built from.
pub(super) fn validate_backend_auth(
    c: &Config,
    warnings: &mut Vec<Warning>,
) -> Result<(BackendAuthConfig, Option<TenantConfig>), ConfigError> {
    const S: &str = "prometheus";
    let p = &c.prometheus;
    if !p.urls.is_empty() && p.url.is_some() {
        warnings.push(Warning(format!("[{S}] url: ignored because urls is set")));
    }
    let auth = match p.auth_method {
        BackendAuthMethod::Basic => match (&p.username, &p.password) {
            (Some(username), Some(password)) => BackendAuthConfig::Basic {
                username: username.clone(),
                password: password.clone(),
            },
            (username, _) => {
                return Err(ConfigError::new(
                    S,
                    if username.is_none() {
                        "username"
                    } else {
                        "password"
                    },
                    "required with auth_method = basic",
                ))
            }
        },
        BackendAuthMethod::BearerFile => match &p.bearer_token_file {
            None => {
                return Err(ConfigError::new(
                    S,
                    "bearer_token_file",
                    "required with auth_method = bearer_file",
                ))
            }
            Some(path) => {
                check_readable(S, "bearer_token_file", path)?;
                BackendAuthConfig::BearerFile { path: path.clone() }
            }
        },
        BackendAuthMethod::SigV4 => {
            prometheus_aws::validate_aws(&c.prometheus_aws, warnings)?;
            BackendAuthConfig::SigV4(c.prometheus_aws.clone())
        }
        BackendAuthMethod::Azure => {
            prometheus_azure::validate_azure(&c.prometheus_azure)?;
            BackendAuthConfig::Azure(c.prometheus_azure.clone())
        }
        BackendAuthMethod::Google => {
            if let Some(path) = &c.prometheus_google.credentials_file {
                check_readable("prometheus_google", "credentials_file", path)?;
            }
            BackendAuthConfig::Google(c.prometheus_google.clone())
        }
        BackendAuthMethod::None => BackendAuthConfig::None,
    };
    if p.auth_method != BackendAuthMethod::BearerFile && p.bearer_token_file.is_some() {
        warnings.push(Warning(format!(
            "[{S}] bearer_token_file: ignored because auth_method is not bearer_file"
        )));
    }
    let tenant = match &p.tenant_header {
        Some(name) => {
            let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
                return Err(ConfigError::new(
                    S,
                    "tenant_header",
                    format!("invalid value {name:?}: not an HTTP header name"),
                ));
            };
            let tenant = if let Some(t) = &p.tenant {
                HeaderValue::from_str(t).map_err(|_| {
                    ConfigError::new(
                        S,
                        "tenant",
                        format!("invalid value {t:?}: not a valid header value"),
                    )
                })?
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
            };
            Some(TenantConfig {
                header,
                tenant,
                per_project: p.tenant_per_project,
            })
        }
        None => {
            if p.tenant.is_some() || p.tenant_per_project {
                warnings.push(Warning(format!(
                    "[{S}] tenant: ignored because tenant_header is not set"
                )));
            }
            None
        }
    };
    Ok((auth, tenant))
}

pub(super) fn validate_prometheus(
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
