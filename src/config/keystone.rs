//! `[keystone_authtoken]`: token validation, its caches and the service
//! user aetos logs in as.

use url::Url;

use super::resolve::Resolver;
use super::{check_readable, non_empty, AuthMode, ConfigError, Secret, Warning};

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

pub(super) fn build_keystone(
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

pub(super) fn validate_keystone(
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
