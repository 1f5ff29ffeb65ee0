//! `[limits]`: what one project may cost the service (see [`crate::limits`]).

use std::time::Duration;

use super::resolve::Resolver;
use super::ConfigError;
use crate::limits::{parse_duration, LimitValues};

/// `[limits]`, as the limiter needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsSection {
    /// The limits of every scoped caller's project, unless overridden.
    pub scoped: LimitValues,
    /// Per-project and privileged overrides (YAML), found like other files.
    pub overrides_file: Option<String>,
    pub overrides_reload_interval: Duration,
    /// How long a 429 is held before it is sent.
    pub refusal_delay: Duration,
}

const S: &str = "limits";

fn duration(r: &mut Resolver<'_>, name: &str) -> Result<Option<Duration>, ConfigError> {
    let text = r.string(S, name)?;
    let d = parse_duration(&text).map_err(|e| ConfigError::new(S, name, e))?;
    Ok((!d.is_zero()).then_some(d))
}

pub(crate) fn build(r: &mut Resolver<'_>) -> Result<LimitsSection, ConfigError> {
    let scoped = LimitValues {
        max_concurrent_requests: r.uint(S, "max_concurrent_requests_per_project")?,
        max_queued_requests: r.uint(S, "max_queued_requests_per_project")?,
        max_queue_time: Duration::from_secs_f64(r.float(S, "max_queue_time")?),
        requests_per_second: r.float(S, "requests_per_second_per_project")?,
        request_burst: r.uint(S, "request_burst_per_project")?,
        max_query_length: duration(r, "max_query_length")?,
        max_query_lookback: duration(r, "max_query_lookback")?,
        max_query_bytes: r.uint(S, "max_query_bytes")?,
        max_selectors: r.uint(S, "max_selectors")?,
    };
    Ok(LimitsSection {
        scoped,
        overrides_file: r.opt_string(S, "overrides_file")?,
        overrides_reload_interval: Duration::from_secs_f64(
            r.float(S, "overrides_reload_interval")?,
        ),
        refusal_delay: Duration::from_secs_f64(r.float(S, "refusal_delay")?),
    })
}
