//! Who is calling: the output of the authentication stage.
//!
//! An [`Identity`] is built either from a Keystone token validation body
//! (keystone mode) or from `X-*` headers (noauth mode, for tests only). The
//! policy stage never sees a request, only [`Identity::credentials`], the
//! oslo.policy credentials dictionary upstream Aetos builds through
//! oslo.context.

use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

/// The validated caller of one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Identity {
    pub(crate) user_id: Option<String>,
    pub(crate) user_name: Option<String>,
    pub(crate) user_domain_id: Option<String>,
    pub(crate) project_id: Option<String>,
    pub(crate) project_name: Option<String>,
    pub(crate) project_domain_id: Option<String>,
    /// Set for domain-scoped tokens.
    pub(crate) domain_id: Option<String>,
    /// Set for system-scoped tokens (`"all"`).
    pub(crate) system_scope: Option<String>,
    /// Role names, lower-cased, already expanded through implied roles.
    pub(crate) roles: Vec<String>,
    pub(crate) is_admin_project: bool,
    /// When the token stops being valid; `None` in noauth mode.
    pub(crate) expires_at: Option<SystemTime>,
    /// Roles of a valid `X-Service-Token`, if the client sent one.
    pub(crate) service_roles: Vec<String>,
    pub(crate) service_user_id: Option<String>,
    pub(crate) service_project_id: Option<String>,
    /// The policy dictionaries, built once per identity (a cached token's
    /// identity serves every request made with it).
    pub(crate) policy: PolicyDicts,
    /// Policy decisions on it, remembered per rule set.
    pub(crate) decisions: Decisions,
}

/// The credentials and target dictionaries of an [`Identity`], built on
/// first use. A clone starts empty, so that a changed copy
/// (`Identity { service_roles, ..id.clone() }`) never carries the
/// dictionaries of the identity it was copied from.
#[derive(Default)]
pub(crate) struct PolicyDicts(OnceLock<(Value, Value)>);

impl Clone for PolicyDicts {
    fn clone(&self) -> Self {
        PolicyDicts::default()
    }
}

impl PartialEq for PolicyDicts {
    /// Derived data: identities are equal by their fields alone.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for PolicyDicts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PolicyDicts")
    }
}

/// A token body Keystone answered with that we cannot use.
#[derive(Debug, thiserror::Error)]
#[error("unusable token body from Keystone: {0}")]
pub(crate) struct TokenBodyError(pub &'static str);

fn str_at(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str().map(str::to_owned)
}

impl Identity {
    /// Builds an identity from a Keystone v3 `{"token": {...}}` body.
    pub(crate) fn from_token_body(body: &Value) -> Result<Identity, TokenBodyError> {
        let token = body
            .get("token")
            .ok_or(TokenBodyError("no `token` object"))?;
        let expires_at = match token.get("expires_at").and_then(Value::as_str) {
            Some(s) => Some(
                humantime::parse_rfc3339_weak(s.trim_end_matches('Z'))
                    .map_err(|_| TokenBodyError("bad `expires_at`"))?,
            ),
            None => None,
        };
        let roles = token
            .get("roles")
            .and_then(Value::as_array)
            .map(|rs| {
                rs.iter()
                    .filter_map(|r| r.get("name").and_then(Value::as_str))
                    .map(str::to_lowercase)
                    .collect()
            })
            .unwrap_or_default();
        let system_scope = token.get("system").and_then(|s| {
            if s.get("all").and_then(Value::as_bool) == Some(true) {
                Some("all".to_owned())
            } else {
                None
            }
        });
        Ok(Identity {
            user_id: str_at(token, &["user", "id"]),
            user_name: str_at(token, &["user", "name"]),
            user_domain_id: str_at(token, &["user", "domain", "id"]),
            project_id: str_at(token, &["project", "id"]),
            project_name: str_at(token, &["project", "name"]),
            project_domain_id: str_at(token, &["project", "domain", "id"]),
            domain_id: str_at(token, &["domain", "id"]),
            system_scope,
            roles,
            is_admin_project: token
                .get("is_admin_project")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            expires_at,
            ..Identity::default()
        })
    }

    /// Time left before the token expires (zero when already expired);
    /// `None` when the identity does not expire (noauth).
    pub(crate) fn time_left(&self, now: SystemTime) -> Option<Duration> {
        self.expires_at
            .map(|e| e.duration_since(now).unwrap_or(Duration::ZERO))
    }

    /// The oslo.policy credentials dictionary (keys as oslo.context's
    /// `to_policy_values()`).
    pub(crate) fn credentials(&self) -> &Value {
        &self.dicts().0
    }

    fn dicts(&self) -> &(Value, Value) {
        self.policy.0.get_or_init(|| {
            (
                self.build_credentials(),
                json!({ "project_id": self.project_id }),
            )
        })
    }

    fn build_credentials(&self) -> Value {
        json!({
            "user_id": self.user_id,
            "user_name": self.user_name,
            "user_domain_id": self.user_domain_id,
            "project_id": self.project_id,
            "project_name": self.project_name,
            "project_domain_id": self.project_domain_id,
            "domain_id": self.domain_id,
            "system_scope": self.system_scope,
            "roles": self.roles,
            "is_admin_project": self.is_admin_project,
            "service_roles": self.service_roles,
            "service_user_id": self.service_user_id,
            "service_project_id": self.service_project_id,
        })
    }

    /// This caller, with `service` (the identity of an `X-Service-Token`)
    /// as its service: only the `service_*` fields change.
    pub(crate) fn with_service(&self, service: &Identity) -> Identity {
        Identity {
            service_roles: service.roles.clone(),
            service_user_id: service.user_id.clone(),
            service_project_id: service.project_id.clone(),
            ..self.clone()
        }
    }

    /// The target upstream Aetos passes to every check.
    pub(crate) fn policy_target(&self) -> &Value {
        &self.dicts().1
    }
}

/// Bound on the decisions kept per identity (the route table asks a
/// handful of rules; a full memo is emptied, never grown).
const MAX_DECISIONS: usize = 32;

/// Policy decisions remembered for one identity: a cached token's identity
/// asks the same few rules on every request, and the answers change only
/// with the rule set, so they are kept tagged with the rule set's
/// generation ([`crate::authz`] does the remembering).
/// Remembered `(rule → allowed)` under one rule set.
/// A clone starts empty, like the policy dictionaries it is derived from.
#[derive(Debug, Default)]
pub(crate) struct Decisions(Mutex<Memo>);

#[derive(Debug, Default)]
struct Memo {
    generation: u64,
    entries: Vec<(Box<str>, bool)>,
}

impl Clone for Decisions {
    fn clone(&self) -> Self {
        Decisions::default()
    }
}

impl PartialEq for Decisions {
    /// Derived data: identities are equal by their fields alone.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Decisions {
    /// The decision on `rule` under rule set `generation`, if remembered.
    pub(crate) fn get(&self, generation: u64, rule: &str) -> Option<bool> {
        let memo = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if memo.generation != generation {
            return None;
        }
        memo.entries
            .iter()
            .find(|(r, _)| &**r == rule)
            .map(|&(_, d)| d)
    }

    /// Remembers `allowed` for `rule` under rule set `generation`.
    pub(crate) fn put(&self, generation: u64, rule: &str, allowed: bool) {
        let mut memo = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if memo.generation != generation || memo.entries.len() >= MAX_DECISIONS {
            memo.generation = generation;
            memo.entries.clear();
        }
        memo.entries.push((rule.into(), allowed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_kept_per_generation_and_bounded() {
        let d = Decisions::default();
        assert_eq!(d.get(1, "a"), None);
        d.put(1, "a", true);
        d.put(1, "b", false);
        assert_eq!(d.get(1, "a"), Some(true));
        assert_eq!(d.get(1, "b"), Some(false));
        // Another rule set: nothing remembered applies.
        assert_eq!(d.get(2, "a"), None);
        d.put(2, "a", false);
        assert_eq!(d.get(2, "a"), Some(false));
        assert_eq!(d.get(1, "b"), None);
        for i in 0..100 {
            d.put(2, &format!("r{i}"), true);
        }
        assert!(d.0.lock().unwrap().entries.len() <= MAX_DECISIONS);
        assert_eq!(d.clone().get(2, "r99"), None, "a clone starts empty");
    }

    #[test]
    fn token_body_maps_to_identity_and_credentials() {
        let body = json!({"token": {
            "expires_at": "2030-01-01T00:00:00.000000Z",
            "user": {"id": "u1", "name": "alice", "domain": {"id": "default", "name": "Default"}},
            "project": {"id": "p1", "name": "demo", "domain": {"id": "default"}},
            "roles": [{"id": "r1", "name": "Reader"}, {"id": "r2", "name": "member"}],
            "is_admin_project": false
        }});
        let id = Identity::from_token_body(&body).unwrap();
        assert_eq!(id.project_id.as_deref(), Some("p1"));
        assert_eq!(id.roles, vec!["reader", "member"]);
        assert!(!id.is_admin_project);
        let exp = id.expires_at.unwrap();
        assert_eq!(
            exp.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            1_893_456_000
        );
        let creds = id.credentials();
        assert_eq!(creds["user_id"], "u1");
        assert_eq!(creds["roles"][1], "member");
        assert_eq!(id.policy_target(), &json!({"project_id": "p1"}));
    }

    #[test]
    fn a_service_adds_only_service_fields() {
        let caller = Identity {
            user_id: Some("u".into()),
            project_id: Some("p".into()),
            roles: vec!["reader".into()],
            ..Identity::default()
        };
        let service = Identity {
            user_id: Some("nova".into()),
            project_id: Some("service".into()),
            roles: vec!["service".into(), "admin".into()],
            ..Identity::default()
        };
        // The caller's dictionaries were built before the copy was made:
        // the copy must build its own, with the service in them.
        assert_eq!(caller.credentials()["service_roles"], json!([]));
        let both = caller.with_service(&service);
        assert_eq!(both.roles, vec!["reader"]);
        assert_eq!(both.project_id.as_deref(), Some("p"));
        let creds = both.credentials();
        assert_eq!(creds["service_roles"], json!(["service", "admin"]));
        assert_eq!(creds["service_user_id"], "nova");
        assert_eq!(creds["service_project_id"], "service");
        assert_eq!(creds["roles"], json!(["reader"]));
    }

    #[test]
    fn system_scoped_token_has_no_project() {
        let body = json!({"token": {"system": {"all": true}, "roles": [{"name": "admin"}],
            "user": {"id": "u"}, "expires_at": "2030-01-01T00:00:00Z"}});
        let id = Identity::from_token_body(&body).unwrap();
        assert_eq!(id.system_scope.as_deref(), Some("all"));
        assert_eq!(id.project_id, None);
    }

    #[test]
    fn garbage_body_is_an_error_not_a_panic() {
        assert!(Identity::from_token_body(&json!({"nope": 1})).is_err());
        assert!(Identity::from_token_body(&json!({"token": {"expires_at": "yesterday"}})).is_err());
    }
}
