//! Instant queries through the results cache: an identical `query` with
//! an explicit `time` (same rewritten query, same backend, same mode)
//! within `instant_ttl` is answered from the store. Without `time` the
//! answer is of "now", which moves: never cached.

use http::HeaderValue;
use serde_json::Value;

use super::coalesce::Coalescer;
use super::params::read_params;
use super::{
    format_ms, merge, split, Answer, Cache, Directive, Failed, FlightKey, Key, Outcome, Passed,
};
use crate::backend::{Backend, BackendRequest};

/// The instant queries being looked up and fetched.
pub(super) type Flights = Coalescer<FlightKey, Result<(Passed, Outcome), Failed>>;

impl Cache {
    /// Answers an instant `query` with an explicit `time` from the cache
    /// (entries kept `instant_ttl`), or `None` when it is not cached.
    pub async fn instant(
        &self,
        backend: &Backend,
        req: &BackendRequest,
        directive: Directive,
    ) -> Option<Result<Answer, Failed>> {
        if directive == Directive::Bypass || self.opts.instant_ttl.is_zero() {
            return None;
        }
        let p = read_params(&req.params, &["query", "time", "timeout"])?;
        let query = p.get("query")?;
        // Without `time` the answer is of "now", which moves.
        let time = split::parse_ms(p.get("time")?)?;
        let key = self.key_base(req, query).instant(time);
        let timeout = p.get("timeout");
        let read = directive == Directive::Normal;
        let got = if read {
            let flight = FlightKey {
                digest: key.digest,
                storable: true,
                timeout: timeout.map(str::to_owned),
            };
            let joined = self
                .instants
                .run(flight, self.opts.wait_limit, || {
                    self.instant_answer(backend, req, query, time, timeout, key, read)
                })
                .await;
            self.joined(joined).unwrap_or_else(Err)
        } else {
            self.instant_answer(backend, req, query, time, timeout, key, read)
                .await
        };
        let (sent, outcome) = match got {
            Ok(got) => got,
            Err(f) => return Some(Err(f)),
        };
        self.count(Some(outcome), sent.body.len());
        Some(Ok(Answer {
            status: sent.status,
            content_type: sent.content_type,
            body: sent.body,
            outcome,
        }))
    }

    /// An instant query's answer from the store (when `read`) or the
    /// backend, stored when it is clean.
    #[allow(clippy::too_many_arguments)]
    async fn instant_answer(
        &self,
        backend: &Backend,
        req: &BackendRequest,
        query: &str,
        time: i64,
        timeout: Option<&str>,
        key: Key,
        read: bool,
    ) -> Result<(Passed, Outcome), Failed> {
        if read {
            if let Some(body) = self.store.get(&key.digest).await {
                let hit = Passed {
                    status: 200,
                    content_type: HeaderValue::from_static("application/json"),
                    body,
                };
                return Ok((hit, Outcome::Hit));
            }
        }
        let pairs = [("query", query.to_owned()), ("time", format_ms(time))];
        let sent = self.send(backend, req, &pairs, timeout).await?;
        if sent.status == 200
            && serde_json::from_slice::<Value>(&sent.body).is_ok_and(|v| merge::is_clean(&v))
        {
            self.store_entry(key, sent.body.clone(), self.opts.instant_ttl)
                .await;
        }
        Ok((sent, Outcome::Miss))
    }
}
