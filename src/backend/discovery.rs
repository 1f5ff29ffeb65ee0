//! DNS discovery of backends: `[prometheus] url`/`urls` entries written
//! `dns+http://NAME:PORT/PREFIX` (every A/AAAA address of NAME) or
//! `dnssrv+http://_NAME._tcp.DOMAIN/PREFIX` (every host:port of the SRV
//! records, each host resolved to its addresses), resolved again every
//! `dns_refresh_interval` with hickory's resolver (the configured
//! `dns_server`, or the system's), and fed to the pool as a whole
//! ([`super::pool::Pool::replace`]).
//!
//! A failed resolution, or an empty answer (NXDOMAIN, no records) for an
//! entry that had addresses, keeps that entry's last known addresses and
//! logs a warning: a DNS outage must not empty the pool.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use url::Url;

pub use crate::config::DiscoveredBackend;

/// What to discover, from `[prometheus]`.
#[derive(Debug, Clone)]
pub struct DiscoveryOptions {
    pub entries: Vec<DiscoveredBackend>,
    /// Time between two resolutions.
    pub refresh_interval: Duration,
    /// The DNS server asked (`None`: /etc/resolv.conf).
    pub server: Option<SocketAddr>,
}

/// The resolver and each entry's last known addresses.
pub(super) struct Discovery {
    pub(super) entries: Vec<DiscoveredBackend>,
    pub(super) interval: Duration,
    resolver: TokioResolver,
    /// Per entry, the base URLs of its last good answer.
    last: Mutex<Vec<Vec<Url>>>,
}

impl Discovery {
    pub(super) fn new(opts: DiscoveryOptions) -> Result<Discovery, String> {
        let mut options = ResolverOpts::default();
        options.timeout = Duration::from_secs(2);
        options.attempts = 2;
        let builder = match opts.server {
            Some(addr) => {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                // Only the named server answers (no /etc/hosts).
                options.use_hosts_file = ResolveHosts::Never;
                Resolver::builder_with_config(
                    ResolverConfig::from_parts(None, Vec::new(), vec![ns]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => Resolver::builder_tokio()
                .map_err(|e| format!("[prometheus] dns_server unset: /etc/resolv.conf: {e}"))?,
        };
        let resolver = builder
            .with_options(options)
            .build()
            .map_err(|e| format!("DNS resolver: {e}"))?;
        Ok(Discovery {
            last: Mutex::new(vec![Vec::new(); opts.entries.len()]),
            entries: opts.entries,
            interval: opts.refresh_interval,
            resolver,
        })
    }

    /// Resolves every entry once; returns every entry's current base URLs
    /// (the new answer, or the last known one when there is none).
    pub(super) async fn resolve_all(&self) -> Vec<(Url, String)> {
        let answers =
            futures_util::future::join_all(self.entries.iter().map(|e| self.resolve(e))).await;
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for ((entry, answer), known) in self.entries.iter().zip(answers).zip(last.iter_mut()) {
            match answer {
                Ok(urls) if !urls.is_empty() => *known = urls,
                Ok(_) if known.is_empty() => {
                    tracing::warn!(entry = %entry.entry, "DNS discovery: no address (yet)");
                }
                Ok(_) => tracing::warn!(
                    entry = %entry.entry,
                    kept = known.len(),
                    "DNS discovery: the name has no address any more; keeping the last known ones"
                ),
                Err(why) => tracing::warn!(
                    entry = %entry.entry,
                    kept = known.len(),
                    reason = %why,
                    "DNS discovery failed; keeping the last known addresses"
                ),
            }
            for u in known.iter() {
                if !out.iter().any(|(o, _)| o == u) {
                    out.push((u.clone(), entry.entry.clone()));
                }
            }
        }
        out
    }

    /// One entry's base URLs now: `Ok(empty)` for NXDOMAIN or no records.
    async fn resolve(&self, entry: &DiscoveredBackend) -> Result<Vec<Url>, String> {
        let name = entry.template.host_str().unwrap_or_default();
        let mut addrs: Vec<SocketAddr> = Vec::new();
        if entry.srv {
            let lookup = match self.resolver.lookup(name, RecordType::SRV).await {
                Ok(l) => l,
                Err(e) if e.is_no_records_found() => return Ok(Vec::new()),
                Err(e) => return Err(e.to_string()),
            };
            let mut targets: Vec<(String, u16)> = lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::SRV(s) => Some((s.target.to_utf8(), s.port)),
                    _ => None,
                })
                .collect();
            targets.sort();
            targets.dedup();
            for (host, port) in targets {
                for ip in self.addresses(&host).await? {
                    addrs.push(SocketAddr::new(ip, port));
                }
            }
        } else {
            let port = entry.template.port_or_known_default().unwrap_or(80);
            for ip in self.addresses(name).await? {
                addrs.push(SocketAddr::new(ip, port));
            }
        }
        addrs.sort();
        addrs.dedup();
        addrs
            .into_iter()
            .map(|a| base_for(&entry.template, a))
            .collect()
    }

    /// The A/AAAA addresses of `host` (empty: none).
    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse() {
            return Ok(vec![ip]);
        }
        match self.resolver.lookup_ip(host).await {
            Ok(l) => Ok(l.iter().collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(format!("{host}: {e}")),
        }
    }
}

/// `template` with its host replaced by `addr` (scheme and path kept), as
/// a pool base URL: no trailing slash.
fn base_for(template: &Url, addr: SocketAddr) -> Result<Url, String> {
    let mut u = template.clone();
    u.set_ip_host(addr.ip())
        .and_then(|()| u.set_port(Some(addr.port())))
        .map_err(|()| format!("{template}: cannot put address {addr} in the URL"))?;
    let trimmed = u.path().trim_end_matches('/').to_owned();
    u.set_path(&trimmed);
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_replaces_the_name_and_keeps_scheme_and_prefix() {
        let t = Url::parse("https://prom.example/api/prom/").unwrap();
        let u = base_for(&t, "10.1.2.3:9090".parse().unwrap()).unwrap();
        assert_eq!(u.as_str(), "https://10.1.2.3:9090/api/prom");
        let u = base_for(&t, "[fd00::1]:443".parse().unwrap()).unwrap();
        // The scheme's own port is not written.
        assert_eq!(u.as_str(), "https://[fd00::1]/api/prom");
    }
}
