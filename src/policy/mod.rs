//! Authorization: oslo.policy's rule language and Aetos' rules, natively.
//!
//! Operators of upstream Aetos control access with oslo.policy rules in
//! `policy.yaml`. This module makes those files mean exactly what they meant
//! upstream (same rule names, defaults, check-string language, file lookup,
//! override merging, scope types), and adds what a long-running Rust service
//! needs: a ~1 µs lock-free-ish hot path, reload on file change and on
//! request, failing closed when a reloaded file is broken, and the three
//! oslopolicy tools (sample generator, effective-policy generator, checker).
//!
//! - [`parser`]: check strings → `Check` trees.
//! - [`eval`]: evaluating a tree against target and credentials.
//! - [`defaults`]: the rules registered in code.
//! - [`file`]: finding, reading and watching override files.
//! - [`enforcer`]: the compiled rule set and its reloads.
//! - [`sample`]: the generated sample file, effective policy and reference.

mod defaults;
mod enforcer;
mod eval;
mod file;
mod parser;
mod sample;

pub use defaults::{defaults, RuleDefault};
pub use enforcer::Enforcer;
pub use sample::{effective_policy, sample_policy};

use serde_json::{json, Map, Value};
use std::path::PathBuf;

/// The `[oslo_policy]` options, plus where the config files live (for
/// resolving relative names). Field names follow oslo.config's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyOptions {
    /// `policy_file`: absolute, or relative to the config files'
    /// directories, then `/etc/aetos/`. Default `policy.yaml`.
    pub policy_file: String,
    /// `policy_dirs`: directories whose `*.yaml`/`*.yml`/`*.json` files are
    /// merged after `policy_file`, resolved like it. Default `policy.d`.
    pub policy_dirs: Vec<String>,
    /// Directories of the config files in use (and `--config-dir`s), in
    /// search order.
    pub config_dirs: Vec<PathBuf>,
    /// `policy_default_rule`: the rule used for rules asked for but not
    /// registered. Default `default` (absent in Aetos, so such rules deny).
    pub default_rule: String,
    /// `enforce_scope`: deny tokens whose scope is not among the rule's
    /// scope types. Default true (oslo.policy ≥ 4.0).
    pub enforce_scope: bool,
    /// `enforce_new_defaults`: accepted for compatibility; Aetos has no
    /// deprecated rule defaults, so it changes nothing. Default true.
    pub enforce_new_defaults: bool,
}

impl Default for PolicyOptions {
    fn default() -> Self {
        PolicyOptions {
            policy_file: "policy.yaml".to_string(),
            policy_dirs: vec!["policy.d".to_string()],
            config_dirs: Vec::new(),
            default_rule: "default".to_string(),
            enforce_scope: true,
            enforce_new_defaults: true,
        }
    }
}

/// Why policy files could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A present file or directory could not be read.
    #[error("policy file {}: cannot read: {message}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        message: String,
    },
    /// A file was read but is not a valid policy document.
    #[error("policy file {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

/// Turns a validated Keystone token body (`{"token": {…}}`) into the
/// credentials dict oslo.context would give oslo.policy.
///
/// Roles are lower-cased; `is_admin_project` defaults to true when the token
/// does not say (as keystonemiddleware does); the service-token keys are
/// empty because a single token body carries no service token.
pub fn credentials_from_token(token_body: &Value) -> Value {
    let token = token_body.get("token").unwrap_or(token_body);
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map_or(Value::Null, |s| json!(s));
    let user = token.get("user");
    let project = token.get("project");
    let roles: Vec<Value> = token
        .get("roles")
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .filter_map(|r| r.get("name").and_then(Value::as_str))
                .map(|n| json!(n.to_lowercase()))
                .collect()
        })
        .unwrap_or_default();
    let system_scope = match token.get("system") {
        Some(Value::Object(m)) if m.get("all") == Some(&Value::Bool(true)) => json!("all"),
        _ => Value::Null,
    };
    let domain_id = if project.is_none() && system_scope.is_null() {
        s(token.get("domain").and_then(|d| d.get("id")))
    } else {
        Value::Null
    };
    let mut creds = Map::new();
    creds.insert("user_id".into(), s(user.and_then(|u| u.get("id"))));
    creds.insert("user_name".into(), s(user.and_then(|u| u.get("name"))));
    creds.insert(
        "user_domain_id".into(),
        s(user.and_then(|u| u.get("domain")).and_then(|d| d.get("id"))),
    );
    creds.insert("project_id".into(), s(project.and_then(|p| p.get("id"))));
    creds.insert(
        "project_name".into(),
        s(project.and_then(|p| p.get("name"))),
    );
    creds.insert(
        "project_domain_id".into(),
        s(project
            .and_then(|p| p.get("domain"))
            .and_then(|d| d.get("id"))),
    );
    creds.insert("domain_id".into(), domain_id);
    creds.insert("system_scope".into(), system_scope);
    creds.insert("roles".into(), Value::Array(roles));
    creds.insert(
        "is_admin_project".into(),
        Value::Bool(
            token
                .get("is_admin_project")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        ),
    );
    creds.insert("service_roles".into(), json!([]));
    creds.insert("service_user_id".into(), Value::Null);
    creds.insert("service_project_id".into(), Value::Null);
    Value::Object(creds)
}

/// Like `oslopolicy-checker`: evaluates every effective rule for the given
/// credentials (our credentials dict, or a Keystone `{"token": {…}}` body),
/// with the target Aetos uses, `{"project_id": <the token's project>}`.
/// Sorted by rule name.
pub fn check_all(enforcer: &Enforcer, creds_or_token: &Value) -> Vec<(String, bool)> {
    let creds = if creds_or_token.get("token").is_some_and(Value::is_object) {
        credentials_from_token(creds_or_token)
    } else {
        creds_or_token.clone()
    };
    let target = json!({ "project_id": creds.get("project_id").cloned().unwrap_or(Value::Null) });
    let mut out: Vec<(String, bool)> = enforcer
        .effective_rules()
        .into_iter()
        .map(|(name, _)| {
            let ok = enforcer.enforce(&name, &target, &creds);
            (name, ok)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_token_becomes_oslo_credentials() {
        let body = json!({"token": {
            "user": {"id": "u1", "name": "alice", "domain": {"id": "default", "name": "Default"}},
            "project": {"id": "p1", "name": "demo", "domain": {"id": "default", "name": "Default"}},
            "roles": [{"id": "r1", "name": "Member"}, {"id": "r2", "name": "reader"}],
            "is_admin_project": false,
            "expires_at": "2030-01-01T00:00:00.000000Z",
        }});
        assert_eq!(
            credentials_from_token(&body),
            json!({
                "user_id": "u1", "user_name": "alice", "user_domain_id": "default",
                "project_id": "p1", "project_name": "demo", "project_domain_id": "default",
                "domain_id": null, "system_scope": null, "roles": ["member", "reader"],
                "is_admin_project": false, "service_roles": [],
                "service_user_id": null, "service_project_id": null,
            })
        );
    }

    #[test]
    fn system_and_domain_tokens_carry_their_scope() {
        let sys = credentials_from_token(&json!({"token": {
            "user": {"id": "u"}, "system": {"all": true}, "roles": [{"name": "admin"}]}}));
        assert_eq!(sys["system_scope"], "all");
        assert_eq!(sys["project_id"], Value::Null);
        assert_eq!(sys["is_admin_project"], true);
        let dom = credentials_from_token(&json!({"token": {
            "user": {"id": "u"}, "domain": {"id": "d1", "name": "D"}, "roles": []}}));
        assert_eq!(dom["domain_id"], "d1");
        assert_eq!(dom["system_scope"], Value::Null);
    }

    #[test]
    fn policy_errors_name_the_file() {
        let e = PolicyError::Parse {
            path: PathBuf::from("/etc/aetos/policy.yaml"),
            message: "invalid YAML".into(),
        };
        assert_eq!(
            e.to_string(),
            "policy file /etc/aetos/policy.yaml: invalid YAML"
        );
    }
}
