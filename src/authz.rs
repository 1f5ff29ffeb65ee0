//! Authorization stage: `(Identity, rule, Guard) → Access | Denied`.
//!
//! Mirrors upstream Aetos: when `telemetry:<api>:all_projects` passes the
//! caller is privileged and its request is forwarded unmodified; else when
//! `telemetry:<api>` passes it is scoped to its own project; else denied.
//! Any failure to decide (no project to scope to, a rule that cannot be
//! evaluated) denies.

use crate::identity::Identity;
use crate::policy::Enforcer;

/// How the policy decides between privileged and scoped for one endpoint
/// (a column of the route table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// `<rule>:all_projects` → privileged, else `<rule>` → scoped, else 403
    /// (upstream's query/series/labels/label).
    ScopedOrAll,
    /// `<rule>` → privileged, else 403 (targets, status, snapshot, …).
    Only,
    /// `<rule>` must pass; then `<rule>:all_projects` → privileged, else
    /// scoped (delete_series: a project admin allowed to delete by an
    /// operator's override may delete only its own series).
    RequiredThenScope,
}

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

/// Decides the access mode of `identity` for an endpoint guarded by the
/// base policy rule `rule` as `guard` says.
pub fn authorize(
    enforcer: &Enforcer,
    identity: &Identity,
    rule: &str,
    guard: Guard,
) -> Result<Access, Denied> {
    let creds = identity.credentials();
    let target = identity.policy_target();
    let check = |rule: &str| enforcer.enforce(rule, &target, &creds);
    let all = format!("{rule}:all_projects");
    let denied = |rule: &str| Denied {
        rule: rule.to_owned(),
    };
    match guard {
        Guard::Only => {
            if check(rule) {
                Ok(Access::Privileged)
            } else {
                Err(denied(rule))
            }
        }
        Guard::ScopedOrAll => {
            if check(&all) {
                Ok(Access::Privileged)
            } else if check(rule) {
                scoped(identity, rule)
            } else {
                Err(denied(rule))
            }
        }
        Guard::RequiredThenScope => {
            if !check(rule) {
                Err(denied(rule))
            } else if check(&all) {
                Ok(Access::Privileged)
            } else {
                scoped(identity, rule)
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
