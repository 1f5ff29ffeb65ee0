//! Authentication stage: `request headers → Identity`.
//!
//! In keystone mode the caller's `X-Auth-Token` is validated against
//! Keystone (with a bounded cache of successes, a short negative cache of
//! failures and one in-flight validation per token); nothing the client
//! sends about its own identity is believed. In noauth mode (tests only)
//! the identity is read from `X-User-Id`, `X-Project-Id` and `X-Roles`.

pub(crate) mod keystone;
pub mod memcache;
mod recent;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix_web::http::header::{HeaderMap, HeaderName};
use moka::future::Cache;

use crate::identity::Identity;
use crate::metrics::Metrics;
pub(crate) use keystone::{Credentials, KeystoneClient, KeystoneError, NameOrId};

/// A short, non-reversible name for a token, safe to log
/// (first 16 hex digits of its SHA-256).
pub(crate) fn token_hash(token: &str) -> String {
    sha256(&[token.as_bytes()])
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// SHA-256 of the concatenated `parts` (ring's, already linked for TLS).
fn sha256(parts: &[&[u8]]) -> TokenKey {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

/// Why a request has no identity.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum AuthError {
    /// No `X-Auth-Token` (and no usable basic credentials): 401.
    #[error("no token")]
    MissingToken,
    /// Keystone says the token is not valid: 401.
    #[error("invalid token")]
    InvalidToken,
    /// We cannot tell: 503.
    #[error("{0}")]
    Unavailable(String),
}

impl From<KeystoneError> for AuthError {
    fn from(e: KeystoneError) -> Self {
        match e {
            KeystoneError::Refused => AuthError::InvalidToken,
            KeystoneError::Unavailable(why) => AuthError::Unavailable(why),
        }
    }
}

/// What makes an `X-Service-Token` a service's token, from
/// `[keystone_authtoken] service_token_roles(_required)`.
#[derive(Debug, Clone)]
pub(crate) struct ServiceTokenRules {
    /// Lower-cased role names.
    pub(crate) roles: Vec<String>,
    pub(crate) required: bool,
}

/// Cache tuning, from `[keystone_authtoken]`.
#[derive(Debug, Clone)]
pub(crate) struct CacheOptions {
    /// `token_cache_time`; `None` disables the positive cache (`-1`).
    pub(crate) token_cache_time: Option<Duration>,
    /// Bound on cached identities.
    pub(crate) max_entries: u64,
    /// How long an invalid token is remembered as invalid.
    pub(crate) negative_cache_time: Duration,
}

type TokenKey = [u8; 32];

#[derive(Clone)]
struct Cached {
    identity: Arc<Identity>,
    ttl: Duration,
    /// When its `ttl` runs out (made just before it is cached, so never
    /// after the cache's own expiry of it).
    expires: Instant,
}

impl Cached {
    fn new(identity: Identity, ttl: Duration) -> Cached {
        Cached {
            identity: Arc::new(identity),
            ttl,
            expires: Instant::now() + ttl,
        }
    }
}

struct PerEntryTtl;

impl moka::Expiry<String, Cached> for PerEntryTtl {
    fn expire_after_create(&self, _k: &String, v: &Cached, _at: Instant) -> Option<Duration> {
        Some(v.ttl)
    }
}

/// A token obtained for an application credential sent as HTTP Basic.
#[derive(Clone)]
struct Exchanged {
    token: Arc<str>,
    ttl: Duration,
}

struct ExchangedTtl;

impl moka::Expiry<TokenKey, Exchanged> for ExchangedTtl {
    fn expire_after_create(&self, _k: &TokenKey, v: &Exchanged, _at: Instant) -> Option<Duration> {
        Some(v.ttl)
    }
}

/// Validates Keystone tokens, with caching and request coalescing.
pub struct Authenticator {
    /// Tells its remembered tokens ([`recent`]) from other authenticators'.
    id: u64,
    keystone: Arc<KeystoneClient>,
    /// Keyed by the token itself: a hit costs a hash of it, not a SHA-256
    /// (the in-process map holds what every request's buffers hold anyway;
    /// memcached, outside the process, gets only digests).
    positive: Option<Cache<String, Cached>>,
    /// Keyed by SHA-256 of the token: looked up only when `positive` misses.
    negative: Cache<TokenKey, ()>,
    /// Basic credentials (hashed) → the token they were exchanged for.
    exchanged: Cache<TokenKey, Exchanged>,
    cache_time: Duration,
    /// memcached, shared with other replicas (`memcached_servers`).
    shared: Option<memcache::SharedCache>,
    service_tokens: ServiceTokenRules,
    metrics: Metrics,
}

/// Exchanged tokens are renewed this long before Keystone would expire them.
const EXCHANGE_MARGIN: Duration = Duration::from_secs(300);

impl Authenticator {
    pub(crate) fn new(
        keystone: Arc<KeystoneClient>,
        opts: CacheOptions,
        shared: Option<memcache::SharedCache>,
        service_tokens: ServiceTokenRules,
        metrics: Metrics,
    ) -> Self {
        let evictions = metrics.token_cache_evictions.clone();
        let positive = opts.token_cache_time.map(|_| {
            Cache::builder()
                .max_capacity(opts.max_entries)
                .expire_after(PerEntryTtl)
                .eviction_listener(move |_k, _v, cause| {
                    if cause != moka::notification::RemovalCause::Explicit {
                        evictions.inc();
                    }
                })
                .build()
        });
        let negative = Cache::builder()
            .max_capacity(opts.max_entries)
            .time_to_live(opts.negative_cache_time.max(Duration::from_millis(1)))
            .build();
        let exchanged = Cache::builder()
            .max_capacity(opts.max_entries)
            .expire_after(ExchangedTtl)
            .build();
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Authenticator {
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            keystone,
            positive,
            negative,
            exchanged,
            cache_time: opts.token_cache_time.unwrap_or(Duration::ZERO),
            // A shared entry outlives no local one: without a cache time there is no sharing.
            shared: shared.filter(|_| opts.token_cache_time.is_some()),
            service_tokens,
            metrics,
        }
    }

    /// The Keystone client, for logins on behalf of callers (Grafana basic auth).
    pub(crate) fn keystone(&self) -> &Arc<KeystoneClient> {
        &self.keystone
    }

    /// Validates `token` and returns who it belongs to.
    pub(crate) async fn authenticate(&self, token: &str) -> Result<Arc<Identity>, AuthError> {
        // The common case first: a token this thread has seen just now,
        // no digest computed.
        let recent = self.positive.as_ref().and_then(|_| self.recent(token));
        if let Some(c) = &recent {
            if c.identity.time_left(SystemTime::now()) != Some(Duration::ZERO) {
                self.metrics.token_cache_hits.inc();
                return Ok(c.identity.clone());
            }
        }
        // Everything else on the heap: the shared caches' and Keystone's
        // futures are kilobytes, which every request's future would carry
        // (and copy) if they were inline.
        Box::pin(self.authenticate_further(token, recent)).await
    }

    /// [`Authenticator::authenticate`] past this thread's recent tokens
    /// (`recent`: this thread's entry for `token`, expired since).
    async fn authenticate_further(
        &self,
        token: &str,
        recent: Option<Cached>,
    ) -> Result<Arc<Identity>, AuthError> {
        if let Some(cache) = &self.positive {
            if let Some(c) = recent {
                self.metrics.token_cache_hits.inc();
                return self.unexpired(cache, token, c).await;
            }
            if let Some(c) = cache.get(token).await {
                self.metrics.token_cache_hits.inc();
                self.remember(token, &c);
                return self.unexpired(cache, token, c).await;
            }
        }
        let key = sha256(&[token.as_bytes()]);
        if self.negative.contains_key(&key) {
            self.metrics.token_negative_hits.inc();
            return Err(AuthError::InvalidToken);
        }
        let Some(cache) = &self.positive else {
            self.metrics.token_cache_misses.inc();
            return self.validate(key, token).await.map(|c| c.identity);
        };
        let mut missed = false;
        let result = cache
            .try_get_with_by_ref(token, async {
                missed = true;
                self.validate(key, token).await
            })
            .await;
        if missed {
            self.metrics.token_cache_misses.inc();
        } else {
            self.metrics.token_cache_hits.inc();
        }
        match result {
            Ok(c) => {
                self.remember(token, &c);
                self.unexpired(cache, token, c).await
            }
            Err(e) => Err((*e).clone()),
        }
    }

    fn recent(&self, token: &str) -> Option<Cached> {
        recent::get(self.id, token)
    }

    fn remember(&self, token: &str, c: &Cached) {
        recent::remember(self.id, token, c)
    }

    fn forget(&self, token: &str) {
        recent::forget(self.id, token)
    }

    /// A cached token may have expired since it was cached: then it is
    /// dropped and refused.
    async fn unexpired(
        &self,
        cache: &Cache<String, Cached>,
        token: &str,
        c: Cached,
    ) -> Result<Arc<Identity>, AuthError> {
        if c.identity.time_left(SystemTime::now()) == Some(Duration::ZERO) {
            self.forget(token);
            cache.invalidate(token).await;
            return Err(AuthError::InvalidToken);
        }
        Ok(c.identity)
    }

    /// `caller` with the service whose `X-Service-Token` came with the
    /// request: the service token is validated like any token (invalid:
    /// 401), must carry one of `service_token_roles` when they are required,
    /// and its user, project and roles are added to the caller's identity as
    /// `service_*` (nothing of it changes the caller's own roles or project).
    pub(crate) async fn with_service_token(
        &self,
        caller: Arc<Identity>,
        service_token: &str,
    ) -> Result<Arc<Identity>, AuthError> {
        let hash = token_hash(service_token);
        let service = self.authenticate(service_token).await.inspect_err(|e| {
            if *e == AuthError::InvalidToken {
                tracing::info!(token = %hash, "invalid X-Service-Token");
            }
        })?;
        let rules = &self.service_tokens;
        if !service.roles.iter().any(|r| rules.roles.contains(r)) {
            if rules.required {
                tracing::info!(token = %hash, user = service.user_id.as_deref().unwrap_or("-"),
                    "X-Service-Token refused: none of service_token_roles {:?}", rules.roles);
                return Err(AuthError::InvalidToken);
            }
            tracing::warn!(token = %hash, user = service.user_id.as_deref().unwrap_or("-"),
                "X-Service-Token without any of service_token_roles {:?} accepted \
                 (service_token_roles_required = false)", rules.roles);
        }
        Ok(Arc::new(caller.with_service(&service)))
    }

    /// HTTP Basic with a Keystone application credential (`id:secret`), as
    /// Grafana sends it: exchanged once for a token (cached until shortly
    /// before it expires, one exchange at a time per credential), which
    /// then follows the normal token path.
    pub(crate) async fn authenticate_basic(
        &self,
        id: &str,
        secret: &str,
    ) -> Result<Arc<Identity>, AuthError> {
        let key = sha256(&[b"basic\0", id.as_bytes(), b"\0", secret.as_bytes()]);
        if self.negative.contains_key(&key) {
            return Err(AuthError::InvalidToken);
        }
        let creds = Credentials::ApplicationCredential {
            id: id.to_owned(),
            secret: crate::config::Secret::new(secret),
        };
        let exchanged = self
            .exchanged
            .try_get_with(key, async {
                match self.keystone.login(&creds).await {
                    Ok(t) => {
                        let left = t
                            .expires_at
                            .duration_since(SystemTime::now())
                            .unwrap_or(Duration::ZERO);
                        tracing::info!(credential = %id, "exchanged an application credential for a token");
                        Ok(Exchanged {
                            token: t.token.into(),
                            ttl: left.saturating_sub(EXCHANGE_MARGIN).max(Duration::from_secs(1)),
                        })
                    }
                    Err(KeystoneError::Refused) => {
                        tracing::info!(credential = %id, "Keystone refused an application credential");
                        self.negative.insert(key, ()).await;
                        Err(AuthError::InvalidToken)
                    }
                    Err(e) => Err(AuthError::from(e)),
                }
            })
            .await
            .map_err(|e| (*e).clone())?;
        self.authenticate(&exchanged.token).await
    }

    async fn validate(&self, key: TokenKey, token: &str) -> Result<Cached, AuthError> {
        if let Some(shared) = &self.shared {
            if let Some(body) = shared.get(token).await {
                if let Ok(identity) = Identity::from_token_body(&body) {
                    let left = identity
                        .time_left(SystemTime::now())
                        .unwrap_or(Duration::ZERO);
                    if !left.is_zero() {
                        self.metrics.token_shared_hits.inc();
                        return Ok(Cached::new(identity, self.cache_time.min(left)));
                    }
                }
            }
        }
        let started = Instant::now();
        let outcome = self.keystone.validate(token).await;
        self.metrics
            .keystone_validation_duration
            .observe(started.elapsed().as_secs_f64());
        let hash = token_hash(token);
        match outcome {
            Ok(body) => {
                let identity = Identity::from_token_body(&body)
                    .map_err(|e| AuthError::Unavailable(e.to_string()))?;
                let left = identity
                    .time_left(SystemTime::now())
                    .unwrap_or(self.cache_time);
                if left.is_zero() {
                    self.negative.insert(key, ()).await;
                    return Err(AuthError::InvalidToken);
                }
                tracing::debug!(token = %hash, elapsed_ms = started.elapsed().as_millis() as u64,
                    user = identity.user_id.as_deref().unwrap_or("-"), "token validated");
                let ttl = self.cache_time.min(left);
                if let Some(shared) = &self.shared {
                    shared.set(token, &body, ttl);
                }
                Ok(Cached::new(identity, ttl))
            }
            Err(KeystoneError::Refused) => {
                self.metrics.kind(&self.metrics.keystone_errors, "invalid");
                tracing::info!(token = %hash, "Keystone rejected the token");
                self.negative.insert(key, ()).await;
                Err(AuthError::InvalidToken)
            }
            Err(KeystoneError::Unavailable(why)) => {
                self.metrics
                    .kind(&self.metrics.keystone_errors, "unavailable");
                tracing::warn!(token = %hash, "cannot validate token: {why}");
                Err(AuthError::Unavailable(why))
            }
        }
    }
}

/// Names looked up on every request, built once (a name given as a
/// string is parsed, and a non-standard one allocated, per lookup).
const X_AUTH_TOKEN: HeaderName = HeaderName::from_static("x-auth-token");
const X_SERVICE_TOKEN: HeaderName = HeaderName::from_static("x-service-token");

/// The `X-Service-Token` of a request, whitespace stripped.
pub(crate) fn service_token_from_headers(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(X_SERVICE_TOKEN)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The caller's token, whitespace stripped; `None` when absent, empty or
/// not visible ASCII (what `HeaderValue::to_str` accepts).
pub(crate) fn token_from_headers(headers: &HeaderMap) -> Option<&str> {
    let t = visible_ascii(headers.get(X_AUTH_TOKEN)?.as_bytes())?.trim();
    (!t.is_empty()).then_some(t)
}

/// `v` as text when every byte is a tab or visible ASCII, as
/// `HeaderValue::to_str` checks, but over the whole value without a branch
/// per byte (so that it runs as vector compares: a token is a few hundred
/// bytes, checked on every request).
fn visible_ascii(v: &[u8]) -> Option<&str> {
    let ok = v.iter().fold(true, |ok, &b| {
        ok & (b == b'\t' || (0x20..0x7f).contains(&b))
    });
    if ok {
        std::str::from_utf8(v).ok()
    } else {
        None
    }
}

/// `Authorization: Basic base64(id:secret)`, decoded; `None` when absent
/// or malformed.
pub(crate) fn basic_from_headers(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let v = headers
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    (!id.is_empty() && !secret.is_empty()).then(|| (id.to_owned(), secret.to_owned()))
}

/// noauth mode: identity from `X-User-Id`, `X-Project-Id`, `X-Roles`, as
/// upstream's functional tests send them.
pub(crate) fn noauth_identity(headers: &HeaderMap) -> Identity {
    let get = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Identity {
        user_id: get("x-user-id"),
        project_id: get("x-project-id"),
        roles: get("x-roles")
            .map(|r| {
                r.split(',')
                    .map(|s| s.trim().to_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        is_admin_project: true,
        ..Identity::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::headers;

    #[test]
    fn token_hash_is_short_and_stable() {
        assert_eq!(token_hash("abc").len(), 16);
        assert_eq!(token_hash("abc"), token_hash("abc"));
        assert_ne!(token_hash("abc"), token_hash("abd"));
    }

    #[test]
    fn tokens_are_read_as_header_values_read_as_text() {
        for b in 0..=255u8 {
            let v = [b'a', b, b'z'];
            let Ok(h) = actix_web::http::header::HeaderValue::from_bytes(&v) else {
                continue;
            };
            assert_eq!(visible_ascii(h.as_bytes()), h.to_str().ok(), "byte {b:#x}");
        }
        assert_eq!(visible_ascii(&[b'x'; 300]).map(str::len), Some(300));
        assert_eq!(visible_ascii("gAAAAAB-é".as_bytes()), None);
    }

    #[test]
    fn token_is_trimmed_and_empty_means_none() {
        assert_eq!(
            token_from_headers(&headers(&[("X-Auth-Token", "  tok ")])),
            Some("tok")
        );
        assert_eq!(
            token_from_headers(&headers(&[("X-Auth-Token", "   ")])),
            None
        );
        assert_eq!(token_from_headers(&headers(&[])), None);
    }

    #[test]
    fn basic_credentials_are_decoded_and_malformed_ones_ignored() {
        // "app:s3:cret" — the secret may itself contain a colon.
        let h = headers(&[("Authorization", "Basic YXBwOnMzOmNyZXQ=")]);
        assert_eq!(
            basic_from_headers(&h),
            Some(("app".into(), "s3:cret".into()))
        );
        assert_eq!(
            basic_from_headers(&headers(&[("Authorization", "Basic !!!")])),
            None
        );
        assert_eq!(
            basic_from_headers(&headers(&[("Authorization", "Bearer abc")])),
            None
        );
        // ":" alone, no id.
        assert_eq!(
            basic_from_headers(&headers(&[("Authorization", "Basic Og==")])),
            None
        );
    }

    #[test]
    fn noauth_reads_the_upstream_test_headers() {
        let id = noauth_identity(&headers(&[
            ("X-User-Id", "u"),
            ("X-Project-Id", "p"),
            ("X-Roles", "Reader, member,,"),
        ]));
        assert_eq!(id.project_id.as_deref(), Some("p"));
        assert_eq!(id.roles, vec!["reader", "member"]);
    }
}
