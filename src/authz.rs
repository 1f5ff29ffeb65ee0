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
    // A cached identity asks the same rules on every request: the answers
    // are remembered with it until the rule set changes.
    let generation = enforcer.generation();
    let memo = &identity.decisions;
    let check = |rule: &str| {
        memo.get(generation, rule).unwrap_or_else(|| {
            let (allowed, decided_in) = enforcer.enforce_in_generation(rule, target, creds);
            memo.put(decided_in, rule, allowed);
            allowed
        })
    };
    let mut buf = [0u8; 128];
    let all = all_projects(rule, &mut buf);
    let all: &str = &all;
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
            if check(all) {
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
            } else if check(all) {
                Ok(Access::Privileged)
            } else {
                scoped(identity, rule)
            }
        }
    }
}

/// `<rule>:all_projects`, written into `buf` (every rule of the route table
/// fits), else allocated.
fn all_projects<'a>(rule: &str, buf: &'a mut [u8; 128]) -> std::borrow::Cow<'a, str> {
    const SUFFIX: &str = ":all_projects";
    let n = rule.len() + SUFFIX.len();
    if n > buf.len() {
        return format!("{rule}{SUFFIX}").into();
    }
    buf[..rule.len()].copy_from_slice(rule.as_bytes());
    buf[rule.len()..n].copy_from_slice(SUFFIX.as_bytes());
    // Two UTF-8 strings joined: UTF-8.
    std::str::from_utf8(&buf[..n]).map_or_else(|_| format!("{rule}{SUFFIX}").into(), Into::into)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_projects_rule_names_short_and_long() {
        let mut buf = [0u8; 128];
        assert_eq!(
            all_projects("telemetry:query", &mut buf),
            "telemetry:query:all_projects"
        );
        let long = "r".repeat(200);
        assert_eq!(
            all_projects(&long, &mut buf),
            format!("{long}:all_projects")
        );
        let edge = "x".repeat(128 - ":all_projects".len());
        assert_eq!(
            all_projects(&edge, &mut buf),
            format!("{edge}:all_projects")
        );
    }
    use crate::policy::PolicyOptions;
    use crate::test_support::TempDir;

    /// Rules named after their outcome: `t:<base>_<all>` passes its base
    /// rule when `<base>` is `pass`, its `:all_projects` when `<all>` is.
    const POLICY: &str = r#"
"t:pass_pass": "@"
"t:pass_pass:all_projects": "@"
"t:pass_fail": "@"
"t:pass_fail:all_projects": "!"
"t:fail_pass": "!"
"t:fail_pass:all_projects": "@"
"t:fail_fail": "!"
"t:fail_fail:all_projects": "!"
"#;

    fn enforcer(dir: &TempDir) -> Enforcer {
        let file = dir.write("policy.yaml", POLICY);
        Enforcer::new(PolicyOptions {
            policy_file: file.display().to_string(),
            ..PolicyOptions::default()
        })
        .expect("the test policy loads")
    }

    fn caller(project: Option<&str>) -> Identity {
        Identity {
            user_id: Some("u".into()),
            project_id: project.map(str::to_owned),
            roles: vec!["reader".into()],
            ..Identity::default()
        }
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Want {
        Privileged,
        Scoped,
        /// Denied, naming the base rule.
        Denied,
        /// Denied because a scoped caller has no project.
        NoProject,
    }

    #[test]
    fn authorize_over_guard_and_policy_outcome() {
        use Guard::*;
        use Want::*;
        // guard, rule, with a project, without one
        let table = [
            (ScopedOrAll, "t:pass_pass", Privileged, Privileged),
            (ScopedOrAll, "t:pass_fail", Scoped, NoProject),
            (ScopedOrAll, "t:fail_pass", Privileged, Privileged),
            (ScopedOrAll, "t:fail_fail", Denied, Denied),
            (Only, "t:pass_pass", Privileged, Privileged),
            (Only, "t:pass_fail", Privileged, Privileged),
            (Only, "t:fail_pass", Denied, Denied),
            (Only, "t:fail_fail", Denied, Denied),
            (RequiredThenScope, "t:pass_pass", Privileged, Privileged),
            (RequiredThenScope, "t:pass_fail", Scoped, NoProject),
            (RequiredThenScope, "t:fail_pass", Denied, Denied),
            (RequiredThenScope, "t:fail_fail", Denied, Denied),
        ];
        let dir = TempDir::new("authz");
        let e = enforcer(&dir);
        for (guard, rule, with_project, without) in table {
            for (project, want) in [(Some("A"), with_project), (None, without)] {
                let got = authorize(&e, &caller(project), rule, guard);
                let expected = match want {
                    Privileged => Ok(Access::Privileged),
                    Scoped => Ok(Access::Scoped {
                        project: "A".into(),
                    }),
                    Denied => Err(super::Denied {
                        rule: rule.to_owned(),
                    }),
                    NoProject => Err(super::Denied {
                        rule: format!("{rule} (no project to scope to)"),
                    }),
                };
                assert_eq!(got, expected, "{guard:?} {rule} project {project:?}");
            }
        }
    }

    #[test]
    fn an_empty_project_is_no_project() {
        let dir = TempDir::new("authz");
        let e = enforcer(&dir);
        let got = authorize(&e, &caller(Some("")), "t:pass_fail", Guard::ScopedOrAll);
        assert!(got.is_err(), "{got:?}");
    }

    #[test]
    fn a_remembered_decision_ends_with_the_rule_set() {
        let dir = TempDir::new("authz-memo");
        let e = enforcer(&dir);
        e.set_reload_check_interval(std::time::Duration::ZERO);
        // One identity for every request, as a cached token's is.
        let who = caller(Some("p"));
        let ask = || authorize(&e, &who, "t:pass_pass", Guard::ScopedOrAll);
        assert_eq!(ask(), Ok(Access::Privileged));
        assert_eq!(ask(), Ok(Access::Privileged), "remembered");
        // The operator takes `:all_projects` away: the same identity is
        // scoped on its next request, not privileged from memory.
        std::thread::sleep(std::time::Duration::from_millis(20));
        dir.write(
            "policy.yaml",
            &POLICY.replace(
                r#""t:pass_pass:all_projects": "@""#,
                r#""t:pass_pass:all_projects": "!""#,
            ),
        );
        e.reload().expect("the changed policy loads");
        assert_eq!(
            ask(),
            Ok(Access::Scoped {
                project: "p".into()
            })
        );
        // A broken file denies everything, remembered or not.
        dir.write("policy.yaml", "\"t:pass_pass\": [[[");
        assert!(e.reload().is_err());
        assert!(ask().is_err());
    }
}
