//! `[cache]`: the results cache (see `crate::cache`).

use std::time::Duration;

use super::resolve::Resolver;
use super::{non_empty, ConfigError};
use crate::limits::parse_duration;

/// Where cached answers are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStore {
    Memory,
    Memcached,
}

/// `[cache]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheSection {
    pub enabled: bool,
    pub store: CacheStore,
    /// Empty: `[keystone_authtoken] memcached_servers`.
    pub memcached_servers: Vec<String>,
    pub memcached_timeout: Duration,
    pub memcached_max_item_bytes: usize,
    pub max_bytes: u64,
    pub split_interval: Duration,
    pub freshness: Duration,
    pub align_to_step: bool,
    pub max_parallel: usize,
    pub ttl: Duration,
    /// Zero: instant queries are not cached.
    pub instant_ttl: Duration,
}

const S: &str = "cache";

fn duration(r: &mut Resolver<'_>, name: &str) -> Result<Duration, ConfigError> {
    let text = r.string(S, name)?;
    parse_duration(&text).map_err(|e| ConfigError::new(S, name, e))
}

pub(crate) fn build(r: &mut Resolver<'_>) -> Result<CacheSection, ConfigError> {
    let store = match r.string(S, "backend")?.as_str() {
        "memcached" => CacheStore::Memcached,
        _ => CacheStore::Memory,
    };
    let split_interval = duration(r, "split_interval")?;
    if split_interval < Duration::from_secs(1) {
        return Err(ConfigError::new(
            S,
            "split_interval",
            "must be at least one second".to_owned(),
        ));
    }
    let ttl = duration(r, "ttl")?;
    if ttl < Duration::from_secs(1) {
        return Err(ConfigError::new(
            S,
            "ttl",
            "must be at least one second".to_owned(),
        ));
    }
    Ok(CacheSection {
        enabled: r.bool(S, "enabled")?,
        store,
        memcached_servers: non_empty(r.list(S, "memcached_servers")?),
        memcached_timeout: Duration::from_secs_f64(r.float(S, "memcached_timeout")?),
        memcached_max_item_bytes: r.uint(S, "memcached_max_item_bytes")?,
        max_bytes: r.uint(S, "max_bytes")?,
        split_interval,
        freshness: duration(r, "freshness")?,
        align_to_step: r.bool(S, "align_to_step")?,
        max_parallel: r.uint(S, "max_parallel")?,
        ttl,
        instant_ttl: duration(r, "instant_ttl")?,
    })
}
