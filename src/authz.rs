//! Authorization stage: `(Identity, endpoint) → Access`.
//!
//! Mirrors upstream Aetos: when `telemetry:<api>:all_projects` passes the
//! caller is privileged and its request is forwarded unmodified; else when
//! `telemetry:<api>` passes it is scoped to its own project; else denied.
//! Any failure to decide (no project to scope to, a rule that cannot be
//! evaluated) denies.

use crate::api::routes::{Api, Guard};
use crate::identity::Identity;
use crate::policy::Enforcer;

/// What the caller may do with this request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Forward unchanged.
    Privileged,
    /// Enforce `<label>="<project>"` on every selector.
    Scoped { project: String },
}

/// Why the request is refused (403 `RBAC Authorization Failed`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("RBAC Authorization Failed")]
pub struct Denied {
    /// The rule that failed, for the log.
    pub rule: String,
}

/// Decides the access mode of `identity` for `api`.
pub fn authorize(enforcer: &Enforcer, identity: &Identity, api: &Api) -> Result<Access, Denied> {
    let creds = identity.credentials();
    let target = identity.policy_target();
    let check = |rule: &str| enforcer.enforce(rule, &target, &creds);
    let all = format!("{}:all_projects", api.rule);
    let denied = |rule: &str| Denied {
        rule: rule.to_owned(),
    };
    match api.guard {
        Guard::Only => {
            if check(api.rule) {
                Ok(Access::Privileged)
            } else {
                Err(denied(api.rule))
            }
        }
        Guard::ScopedOrAll => {
            if check(&all) {
                Ok(Access::Privileged)
            } else if check(api.rule) {
                scoped(identity, api.rule)
            } else {
                Err(denied(api.rule))
            }
        }
        Guard::RequiredThenScope => {
            if !check(api.rule) {
                Err(denied(api.rule))
            } else if check(&all) {
                Ok(Access::Privileged)
            } else {
                scoped(identity, api.rule)
            }
        }
    }
}

/// A scoped caller needs a project; a domain- or system-scoped token that a
/// custom rule let through has none, so it is denied rather than unscoped.
fn scoped(identity: &Identity, rule: &str) -> Result<Access, Denied> {
    match identity.project_id.as_deref() {
        Some(p) if !p.is_empty() => Ok(Access::Scoped {
            project: p.to_owned(),
        }),
        _ => Err(Denied {
            rule: format!("{rule} (no project to scope to)"),
        }),
    }
}

/// The access mode as a word for logs and metrics.
pub fn mode_name(access: &Result<Access, Denied>) -> &'static str {
    match access {
        Ok(Access::Privileged) => "privileged",
        Ok(Access::Scoped { .. }) => "scoped",
        Err(_) => "denied",
    }
}
