//! Assembly: `Config → State`, and running it.
//!
//! Everything that can be checked before serving is checked in [`load`],
//! so that `check-config` and start-up fail the same way: one line naming
//! the section, option and problem.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::memcache::{PoolOptions, Protection, SharedCache};
use crate::auth::{
    Authenticator, CacheOptions, Credentials, KeystoneClient, NameOrId, ServiceTokenRules,
};
use crate::backend::auth::aws::{AwsCredentialProvider, SigV4};
use crate::backend::auth::azure::AzureAd;
use crate::backend::auth::basic::Basic;
use crate::backend::auth::bearer_file::BearerFile;
use crate::backend::auth::google::GoogleAuth;
use crate::backend::env::{self, Env};
use crate::backend::{self, Backend, BackendAuth, BackendOptions, TenantHeader};
use crate::cache::{Cache, ResultsOptions, Store};
use crate::config::{
    self, AuthMode, BackendAuthConfig, CacheStore, Config, MemcacheSecurity, Warning,
};
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::policy::{Enforcer, PolicyOptions};
use crate::request::MetricRules;
use crate::server::{self, ListenOptions};
use crate::state::{Authn, HealthOptions, State};
use crate::telemetry::{self, LogOptions};

/// A validated configuration with its policy loaded.
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Warning>,
    pub enforcer: Enforcer,
    /// `[limits]` with its overrides file read (a broken one stops here).
    pub limits: Arc<Limits>,
    /// `[prometheus] metric_rules_file`, read (a broken one stops here).
    pub metric_rules: Arc<MetricRules>,
    /// A `tracing` level from `--log-level`, overriding `[DEFAULT] debug`.
    pub log_level: Option<String>,
}

/// Reads the configuration files and the policy files they name.
pub fn load(files: &[PathBuf], dirs: &[PathBuf]) -> Result<Loaded, String> {
    load_with_overrides(files, dirs, &[])
}

/// Like [`load`], with options set on the command line (they win over
/// every file; see [`config::load_with_overrides`]).
pub fn load_with_overrides(
    files: &[PathBuf],
    dirs: &[PathBuf],
    overrides: &[config::Override],
) -> Result<Loaded, String> {
    let (config, warnings) =
        config::load_with_overrides(files, dirs, overrides).map_err(|e| e.to_string())?;
    crate::tenancy::validate_label_name(&config.prometheus.project_label_name)
        .map_err(|e| format!("[prometheus] project_label_name: {e}"))?;
    let enforcer = Enforcer::new(policy_options(&config))
        .map_err(|e| format!("[oslo_policy] policy_file: {e}"))?;
    let limits = Arc::new(limits_from(&config)?);
    let metric_rules = Arc::new(metric_rules_from(&config)?);
    // The certificate and key are read now, so check-config sees a bad pair.
    tls_config(&config)?;
    Ok(Loaded {
        config,
        warnings,
        enforcer,
        limits,
        metric_rules,
        log_level: None,
    })
}

/// `[prometheus] metric_rules_file`, found like the policy file.
fn metric_rules_from(c: &Config) -> Result<MetricRules, String> {
    let Some(name) = &c.prometheus.metric_rules_file else {
        return Ok(MetricRules::none());
    };
    let path = c
        .find_file(name)
        .ok_or_else(|| format!("[prometheus] metric_rules_file: {name} not found"))?;
    MetricRules::load(path).map_err(|e| format!("[prometheus] metric_rules_file: {e}"))
}

/// Builds the backend's options as serving would (credential sources,
/// region, tenant header), without contacting anything: `check-config`
/// fails the way start-up would.
pub fn check_backend(loaded: &Loaded) -> Result<(), String> {
    backend_options(&loaded.config, &env::process_env())?;
    alertmanager_backend(&loaded.config).map(|_| ())
}

/// `[limits]`, its overrides file found like the policy file.
fn limits_from(c: &Config) -> Result<Limits, String> {
    let l = &c.limits;
    let file = match &l.overrides_file {
        None => None,
        Some(name) => Some(
            c.find_file(name)
                .ok_or_else(|| format!("[limits] overrides_file: {name} not found"))?,
        ),
    };
    Limits::new(l.scoped.clone(), file)
        .map(|limits| limits.with_refusal_delay(l.refusal_delay))
        .map_err(|e| format!("[limits] overrides_file: {e}"))
}

fn policy_options(c: &Config) -> PolicyOptions {
    PolicyOptions {
        policy_file: c.oslo_policy.policy_file.clone(),
        policy_dirs: c.oslo_policy.policy_dirs.clone(),
        config_dirs: c
            .config_files
            .iter()
            .filter_map(|f| f.parent().map(PathBuf::from))
            .collect(),
        default_rule: c.oslo_policy.policy_default_rule.clone(),
        enforce_scope: c.oslo_policy.enforce_scope,
        enforce_new_defaults: c.oslo_policy.enforce_new_defaults,
    }
}

fn name_or_id(name: &Option<String>, id: &Option<String>) -> Option<NameOrId> {
    match (id, name) {
        (Some(i), _) if !i.is_empty() => Some(NameOrId::Id(i.clone())),
        (_, Some(n)) if !n.is_empty() => Some(NameOrId::Name(n.clone())),
        _ => None,
    }
}

/// The service user's credentials from `[keystone_authtoken]`.
fn keystone_credentials(c: &Config) -> Result<Credentials, String> {
    let k = &c.keystone;
    if k.auth_type.as_deref() == Some("v3applicationcredential") {
        let (Some(id), Some(secret)) = (
            &k.application_credential_id,
            &k.application_credential_secret,
        ) else {
            return Err("[keystone_authtoken] application_credential_id: required with auth_type = v3applicationcredential".into());
        };
        return Ok(Credentials::ApplicationCredential {
            id: id.clone(),
            secret: secret.clone(),
        });
    }
    let user = name_or_id(&k.username, &k.user_id)
        .ok_or("[keystone_authtoken] username: required in keystone mode")?;
    let password = k
        .password
        .clone()
        .ok_or("[keystone_authtoken] password: required in keystone mode")?;
    let user_domain = name_or_id(&k.user_domain_name, &k.user_domain_id)
        .unwrap_or(NameOrId::Id("default".into()));
    let project_domain = name_or_id(&k.project_domain_name, &k.project_domain_id)
        .unwrap_or(NameOrId::Id("default".into()));
    let project = name_or_id(&k.project_name, &k.project_id).map(|p| (p, project_domain));
    Ok(Credentials::Password {
        user,
        user_domain,
        password,
        project,
    })
}

/// The backend as configured: URLs, TLS, timeouts, the authentication
/// method with its credentials (environment fallbacks read from `env`),
/// the tenant header and the health checks. The options were checked when
/// the configuration was loaded; what can still fail here is what depends
/// on `env` (the cloud identities) and the identity-provider HTTP client.
pub fn backend_options(c: &Config, env: &Env) -> Result<BackendOptions, String> {
    let p = &c.prometheus;
    let base_urls = p.base_urls();
    let timeout = Duration::from_secs_f64(p.timeout);
    let connect_timeout = Duration::from_secs_f64(p.connect_timeout);
    // STS and Azure AD are public endpoints: system roots, not [prometheus] ca_file.
    let idp_client = || {
        backend::http_client(
            connect_timeout,
            Some(Duration::from_secs(30)),
            None,
            None,
            false,
        )
        .map_err(|e| format!("identity provider client: {e}"))
    };
    let auth = match &c.backend_auth {
        BackendAuthConfig::None => BackendAuth::None,
        BackendAuthConfig::Basic { username, password } => BackendAuth::Basic(Basic {
            username: username.clone(),
            password: password.clone(),
        }),
        BackendAuthConfig::BearerFile { path } => {
            BackendAuth::BearerFile(Arc::new(BearerFile::new(path)))
        }
        BackendAuthConfig::SigV4(aws) => {
            let resolved = AwsCredentialProvider::resolve(aws, &base_urls, env, idp_client()?)?;
            BackendAuth::SigV4(Arc::new(SigV4 {
                region: resolved.region,
                service: aws.service.clone(),
                credentials: Arc::new(resolved.provider),
            }))
        }
        BackendAuthConfig::Azure(azure) => {
            BackendAuth::Azure(Arc::new(AzureAd::resolve(azure, env, idp_client()?)?))
        }
        BackendAuthConfig::Google(google) => {
            BackendAuth::Google(Arc::new(GoogleAuth::resolve(google, env, idp_client()?)?))
        }
    };
    let tenant = c.backend_tenant.as_ref().map(TenantHeader::from);
    Ok(BackendOptions {
        base_urls,
        timeout,
        read_timeout: Duration::from_secs_f64(p.read_timeout),
        connect_timeout,
        ca_file: p.ca_file.clone(),
        client_cert: match (&p.cert_file, &p.key_file) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            _ => None,
        },
        insecure: false,
        auth,
        tenant,
        health_check_path: p.health_check_path.clone(),
        health_check_interval: Duration::from_secs_f64(p.health_check_interval),
        discovery: (!p.discovered.is_empty()).then(|| backend::DiscoveryOptions {
            entries: p.discovered.clone(),
            refresh_interval: Duration::from_secs_f64(p.dns_refresh_interval),
            server: p.dns_server,
        }),
    })
}

pub(crate) fn build_state(loaded: &Loaded) -> Result<State, String> {
    let c = &loaded.config;
    let metrics = Metrics::new();
    let backend = Backend::new(backend_options(c, &env::process_env())?)
        .map_err(|e| format!("[prometheus] ca_file/cert_file: {e}"))?;
    let urls: Vec<String> = backend_urls(c);
    tracing::info!(
        backends = %urls.join(", "),
        auth = %backend.auth().describe(),
        tenant_header = c.prometheus.tenant_header.as_deref().unwrap_or("-"),
        "backend configured"
    );
    let authn = match c.default.auth_mode {
        _ if c.api.unauthenticated_passthrough => {
            tracing::warn!(
                "[api] unauthenticated_passthrough = true: EVERY CALLER IS LET THROUGH WITHOUT \
                 AUTHENTICATION, POLICY OR PROJECT SCOPING, and its requests are forwarded to {} \
                 with aetos' backend credentials ({}). Only a trusted network may reach this \
                 listener. auth_mode and [keystone_authtoken] are not used.",
                urls.join(", "),
                backend.auth().method()
            );
            Authn::Passthrough
        }
        AuthMode::Noauth => {
            tracing::warn!(
                "auth_mode = noauth: identity is taken from X-User-Id / X-Project-Id / X-Roles \
                 headers WITHOUT any check. Never use this outside a test environment."
            );
            Authn::Noauth
        }
        AuthMode::Keystone => {
            let k = &c.keystone;
            let timeout = Duration::from_secs_f64(k.http_connect_timeout.unwrap_or(10.0).max(0.1));
            let http = backend::http_client(
                timeout,
                Some(timeout),
                k.cafile.as_deref(),
                match (&k.certfile, &k.keyfile) {
                    (Some(c), Some(kf)) => Some((c.as_str(), kf.as_str())),
                    _ => None,
                },
                k.insecure,
            )
            .map_err(|e| format!("[keystone_authtoken] cafile/certfile: {e}"))?;
            let auth_url = k
                .auth_url
                .clone()
                .ok_or("[keystone_authtoken] auth_url: required in keystone mode")?;
            let client = Arc::new(KeystoneClient::new(
                http,
                &auth_url,
                keystone_credentials(c)?,
                k.http_request_max_retries,
            ));
            let cache = CacheOptions {
                token_cache_time: (k.token_cache_time >= 0)
                    .then(|| Duration::from_secs(k.token_cache_time as u64)),
                max_entries: k.token_cache_size,
                negative_cache_time: Duration::from_secs(k.negative_cache_time),
            };
            let shared = (!k.memcached_servers.is_empty()).then(|| {
                let protection = memcache_protection(c);
                let pool = PoolOptions {
                    socket_timeout: Duration::from_secs(k.memcache_pool_socket_timeout),
                    dead_retry: Duration::from_secs(k.memcache_pool_dead_retry),
                    maxsize: usize::try_from(k.memcache_pool_maxsize).unwrap_or(usize::MAX),
                    conn_get_timeout: Duration::from_secs(k.memcache_pool_conn_get_timeout),
                };
                SharedCache::with_pool(&k.memcached_servers, protection, pool)
            });
            Authn::Keystone(Arc::new(Authenticator::new(
                client,
                cache,
                shared,
                ServiceTokenRules {
                    roles: k.service_token_roles.clone(),
                    required: k.service_token_roles_required,
                },
                metrics.clone(),
            )))
        }
    };
    let alertmanager = alertmanager_backend(c)?;
    let cache = results_cache(c, &metrics, &urls)?;
    if let Some(am) = &alertmanager {
        tracing::info!(alertmanager = %am.base_url(), auth = %am.auth().describe(),
            "Alertmanager configured: serving /alertmanager/api/v2");
    }
    Ok(State {
        authn,
        enforcer: loaded.enforcer.clone(),
        backend,
        alertmanager,
        scoper: crate::request::Scoper::with_rules(
            c.prometheus.project_label_name.clone(),
            loaded.metric_rules.clone(),
        ),
        root_path: c.api.root_path.clone(),
        www_authenticate_uri: c
            .keystone
            .www_authenticate_uri()
            .map(|u| u.to_string())
            .unwrap_or_default(),
        proxy_headers: c.oslo_middleware.enable_proxy_headers_parsing,
        max_body: c.api.max_request_body_size,
        max_filtered: c.api.max_filtered_response_bytes,
        client_body_timeout: Duration::from_secs_f64(c.api.client_body_timeout),
        health: health_options(c),
        cors: c.cors.clone(),
        listen_host: format_host(&c.api.host, c.api.port),
        metrics,
        limits: loaded.limits.clone(),
        cache,
    })
}

/// How memcached entries are protected (`[keystone_authtoken]
/// memcache_security_strategy`), for tokens and results alike.
fn memcache_protection(c: &Config) -> Protection {
    let k = &c.keystone;
    let secret = k
        .memcache_secret_key
        .as_ref()
        .map(|s| s.expose())
        .unwrap_or_default();
    match k.memcache_security_strategy {
        MemcacheSecurity::None => Protection::None,
        MemcacheSecurity::Mac => Protection::mac(secret),
        MemcacheSecurity::Encrypt => Protection::encrypt(secret),
    }
}

/// `[cache]`, when enabled: its store and how it answers.
fn results_cache(c: &Config, metrics: &Metrics, urls: &[String]) -> Result<Option<Cache>, String> {
    let cc = &c.cache;
    if !cc.enabled {
        return Ok(None);
    }
    let store = match cc.store {
        CacheStore::Memory => Store::memory(cc.max_bytes),
        CacheStore::Memcached => {
            let servers = if cc.memcached_servers.is_empty() {
                &c.keystone.memcached_servers
            } else {
                &cc.memcached_servers
            };
            if servers.is_empty() {
                return Err(
                    "[cache] backend = memcached needs [cache] memcached_servers or \
                     [keystone_authtoken] memcached_servers"
                        .to_owned(),
                );
            }
            let k = &c.keystone;
            let pool = PoolOptions {
                socket_timeout: cc.memcached_timeout,
                dead_retry: Duration::from_secs(k.memcache_pool_dead_retry),
                maxsize: usize::try_from(k.memcache_pool_maxsize).unwrap_or(usize::MAX),
                conn_get_timeout: cc.memcached_timeout,
            };
            let shared = SharedCache::with_pool(servers, memcache_protection(c), pool);
            Store::memcached(shared, cc.memcached_max_item_bytes)
        }
    };
    let backend_timeout = Duration::from_secs_f64(c.prometheus.timeout);
    let store_timeout = match cc.store {
        CacheStore::Memory => Duration::ZERO,
        CacheStore::Memcached => cc.memcached_timeout,
    };
    tracing::info!(store = ?cc.store, split_interval = ?cc.split_interval,
        freshness = ?cc.freshness, "results cache enabled");
    let opts = ResultsOptions {
        split_interval: cc.split_interval,
        freshness: cc.freshness,
        align_to_step: cc.align_to_step,
        max_parallel: cc.max_parallel,
        ttl: cc.ttl,
        instant_ttl: cc.instant_ttl,
        max_answer_bytes: c.api.max_filtered_response_bytes,
        backend_timeout,
        // A request waiting for an identical one's answer waits what that
        // one may take: its store lookup, and its backend request, tried
        // on a second backend after the first failed.
        wait_limit: store_timeout + 2 * backend_timeout,
    };
    // The backend's identity in every key: its URLs and the tenant it is
    // asked as (a static tenant header changes the answers).
    let mut backend_id = urls.join(",");
    if let Some(t) = &c.backend_tenant {
        backend_id.push_str(&format!(
            "\ntenant:{}={}:{}",
            t.header,
            String::from_utf8_lossy(t.tenant.as_bytes()),
            t.per_project
        ));
    }
    Ok(Some(Cache::new(store, opts, backend_id, metrics.clone())))
}

/// The Alertmanager of `[alertmanager]`, when its url is set: one backend
/// of the same forwarding layer as Prometheus (one URL, so never a retry:
/// a silence is never created twice).
fn alertmanager_backend(c: &Config) -> Result<Option<Backend>, String> {
    let a = &c.alertmanager;
    let Some(base) = a.base_url() else {
        return Ok(None);
    };
    let auth = match &c.alertmanager_auth {
        BackendAuthConfig::Basic { username, password } => BackendAuth::Basic(Basic {
            username: username.clone(),
            password: password.clone(),
        }),
        BackendAuthConfig::BearerFile { path } => {
            BackendAuth::BearerFile(Arc::new(BearerFile::new(path)))
        }
        // Only the shapes above are configurable for Alertmanager.
        _ => BackendAuth::None,
    };
    let timeout = Duration::from_secs_f64(a.timeout);
    Backend::new(BackendOptions {
        base_urls: vec![base],
        timeout,
        read_timeout: timeout,
        connect_timeout: Duration::from_secs_f64(a.connect_timeout),
        ca_file: a.ca_file.clone(),
        client_cert: None,
        insecure: false,
        auth,
        tenant: None,
        health_check_path: "/-/ready".to_owned(),
        health_check_interval: Duration::from_secs(5),
        discovery: None,
    })
    .map(Some)
    .map_err(|e| format!("[alertmanager] url/ca_file: {e}"))
}

/// oslo.middleware's healthcheck backends: each file check counts only when
/// its backend is listed in `[healthcheck] backends`, as upstream.
fn health_options(c: &Config) -> HealthOptions {
    let h = &c.healthcheck;
    let on = |name: &str| h.backends.iter().any(|b| b == name);
    HealthOptions {
        detailed: h.detailed,
        disable_by_file: h
            .disable_by_file_path
            .as_ref()
            .filter(|_| on("disable_by_file"))
            .map(PathBuf::from),
        disable_by_port_files: if on("disable_by_files_ports") {
            h.disable_by_file_paths
                .iter()
                .map(|(p, f)| (*p, PathBuf::from(f)))
                .collect()
        } else {
            Vec::new()
        },
        enable_by_files: if on("enable_by_files") {
            h.enable_by_file_paths.iter().map(PathBuf::from).collect()
        } else {
            Vec::new()
        },
        port: c.api.port,
    }
}

/// The backend URLs as configured (DNS entries as written), for logs.
fn backend_urls(c: &Config) -> Vec<String> {
    c.prometheus
        .base_urls()
        .iter()
        .map(|u| u.as_str().trim_end_matches('/').to_owned())
        .chain(c.prometheus.discovered.iter().map(|d| d.entry.clone()))
        .collect()
}

fn format_host(host: &str, port: u16) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
        _ => format!("{host}:{port}"),
    }
}

fn listen_options(c: &Config) -> Result<ListenOptions, String> {
    let addr: SocketAddr = (c.api.host.as_str(), c.api.port)
        .to_socket_addrs()
        .map_err(|e| format!("[api] host: cannot resolve {}: {e}", c.api.host))?
        .next()
        .ok_or_else(|| format!("[api] host: no address for {}", c.api.host))?;
    let workers = if c.api.workers == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        c.api.workers
    };
    let internal = match &c.api.internal_listen {
        None => None,
        Some(hostport) => {
            let a: SocketAddr = hostport
                .to_socket_addrs()
                .map_err(|e| format!("[api] internal_listen: cannot resolve {hostport}: {e}"))?
                .next()
                .ok_or_else(|| format!("[api] internal_listen: no address for {hostport}"))?;
            if a == addr {
                return Err(format!(
                    "[api] internal_listen: {hostport} is the API's own address ([api] host and port)"
                ));
            }
            Some(a)
        }
    };
    Ok(ListenOptions {
        addr,
        internal,
        tls: tls_config(c)?,
        workers,
        shutdown_timeout: Duration::from_secs(c.api.graceful_shutdown_timeout),
        client_header_timeout: Duration::from_secs_f64(c.api.client_header_timeout),
    })
}

/// `[api] tls_*` as the listener's TLS configuration (the files read and
/// checked now), or `None` for plain HTTP.
fn tls_config(c: &Config) -> Result<Option<rustls::ServerConfig>, String> {
    let Some((cert, key)) = &c.api.tls else {
        return Ok(None);
    };
    server::tls::server_config(&server::tls::TlsFiles {
        cert: PathBuf::from(cert),
        key: PathBuf::from(key),
        client_ca: c.api.tls_client_ca.as_ref().map(PathBuf::from),
    })
    .map(Some)
}

/// Logs, builds the state and serves until SIGTERM/SIGINT.
pub fn serve(loaded: Loaded) -> Result<(), String> {
    let c = &loaded.config;
    let log_handle = telemetry::init_logging(&LogOptions {
        debug: c.default.debug,
        use_json: c.default.use_json,
        log_file: c.default.log_path(),
        level: loaded.log_level.clone(),
        use_stderr: c.default.use_stderr,
        context_format: c.default.logging_context_format_string.clone(),
        default_format: c.default.logging_default_format_string.clone(),
    })?;
    for w in &loaded.warnings {
        tracing::warn!("{}", w.0);
    }
    // reqwest is built without a default TLS provider (no aws-lc C build).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listen = listen_options(c)?;
    actix_web::rt::System::new().block_on(async move {
        let state = build_state(&loaded)?;
        state.backend.start_health_checks();
        if let Authn::Keystone(a) = &state.authn {
            let ks = a.keystone().clone();
            actix_web::rt::spawn(async move {
                if let Err(e) = ks.warm_up().await {
                    tracing::error!("initial Keystone login failed (will retry per request): {e}");
                }
            });
        }
        spawn_limits_reload(
            state.limits.clone(),
            loaded.config.limits.overrides_reload_interval,
        );
        spawn_rules_reload(
            loaded.metric_rules.clone(),
            Duration::from_secs_f64(loaded.config.prometheus.metric_rules_reload_interval),
        );
        spawn_sighup(
            loaded.enforcer.clone(),
            state.limits.clone(),
            loaded.metric_rules.clone(),
            log_handle,
            loaded.config.config_files.clone(),
            loaded.config.config_dirs.clone(),
        );
        server::run(state, listen).await.map_err(|e| e.to_string())
    })
}

/// Re-reads `[limits] overrides_file` when its modification time or size
/// changes. A failed reload keeps the last good overrides.
fn spawn_limits_reload(limits: Arc<Limits>, interval: Duration) {
    let Some(path) = limits.overrides_file().map(PathBuf::from) else {
        return;
    };
    spawn_file_watch(path, interval, move || {
        if let Err(e) = limits.reload() {
            tracing::error!("limits overrides not reloaded, keeping the last good ones: {e}");
        }
    });
}

/// Re-reads `[prometheus] metric_rules_file` when it changes. A failed
/// reload keeps the last good rules.
fn spawn_rules_reload(rules: Arc<MetricRules>, interval: Duration) {
    let Some(path) = rules.file().map(PathBuf::from) else {
        return;
    };
    spawn_file_watch(path, interval, move || {
        if let Err(e) = rules.reload() {
            tracing::error!("metric access rules not reloaded, keeping the last good ones: {e}");
        }
    });
}

/// Calls `changed` whenever the modification time or size of `path`
/// changes, checked every `interval`.
fn spawn_file_watch(path: PathBuf, interval: Duration, changed: impl Fn() + 'static) {
    let stamp = |p: &PathBuf| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    // Stamped now, before serving starts: a change made once the server
    // answers is always seen as one.
    let mut seen = stamp(&path);
    // The first check one interval from now (an interval's first tick is
    // immediate, and may come after a change it must not count as seen).
    let first = tokio::time::Instant::now() + interval;
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval_at(first, interval);
        loop {
            tick.tick().await;
            let now = stamp(&path);
            if now == seen {
                continue;
            }
            seen = now;
            changed();
        }
    });
}

/// SIGHUP re-reads the policy files (a broken file denies until fixed) and
/// the log level (`[DEFAULT] debug`) from the configuration files.
fn spawn_sighup(
    enforcer: Enforcer,
    limits: Arc<Limits>,
    rules: Arc<MetricRules>,
    log: telemetry::LogHandle,
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
) {
    #[cfg(unix)]
    actix_web::rt::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; policy reloads only on file change");
            return;
        };
        while hup.recv().await.is_some() {
            match enforcer.reload() {
                Ok(()) => tracing::info!("SIGHUP: policy reloaded"),
                Err(e) => tracing::error!("SIGHUP: policy reload failed, denying until fixed: {e}"),
            }
            if let Err(e) = limits.reload() {
                tracing::error!(
                    "SIGHUP: limits overrides not reloaded, keeping the last good ones: {e}"
                );
            }
            if let Err(e) = rules.reload() {
                tracing::error!(
                    "SIGHUP: metric access rules not reloaded, keeping the last good ones: {e}"
                );
            }
            match config::load(&files, &dirs) {
                Ok((c, _)) => match log.set_debug(c.default.debug) {
                    Ok(()) => tracing::info!(debug = c.default.debug, "SIGHUP: log level reloaded"),
                    Err(e) => tracing::error!("SIGHUP: cannot change the log level: {e}"),
                },
                Err(e) => tracing::error!("SIGHUP: configuration not reloaded: {e}"),
            }
        }
    });
}
