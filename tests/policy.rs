//! Behaviour of the policy engine through its public API: the default rules
//! for every kind of caller, override files, reloads and the generators.

use aetos::policy::{
    check_all, credentials_from_token, defaults, effective_policy, sample_policy, Enforcer,
    PolicyError, PolicyOptions,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "aetos-policy-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Options that only look inside `dir` (never at /etc/aetos).
fn opts_in(dir: &Path) -> PolicyOptions {
    PolicyOptions {
        policy_file: dir.join("policy.yaml").display().to_string(),
        policy_dirs: vec![dir.join("policy.d").display().to_string()],
        config_dirs: vec![dir.to_path_buf()],
        ..PolicyOptions::default()
    }
}

fn defaults_only() -> (Scratch, Enforcer) {
    let s = Scratch::new();
    let e = Enforcer::new(opts_in(&s.0)).expect("defaults load");
    (s, e)
}

/// The target Aetos passes: the token's own project.
fn target_of(creds: &Value) -> Value {
    json!({ "project_id": creds["project_id"] })
}

fn project_token(project: &str, roles: &[&str]) -> Value {
    let roles: Vec<Value> = roles.iter().map(|r| json!({"id": r, "name": r})).collect();
    credentials_from_token(&json!({"token": {
        "user": {"id": "u-1", "name": "someone", "domain": {"id": "default"}},
        "project": {"id": project, "name": project, "domain": {"id": "default"}},
        "roles": roles,
        "is_admin_project": false,
    }}))
}

/// Every caller kind of the brief, as credentials built from Keystone
/// token bodies (roles already expanded through implied roles).
fn personas() -> Vec<(&'static str, Value)> {
    vec![
        ("service", project_token("p-service", &["service"])),
        (
            "admin",
            project_token("p-1", &["admin", "member", "reader"]),
        ),
        ("member", project_token("p-1", &["member", "reader"])),
        ("reader", project_token("p-1", &["reader"])),
        ("no_roles", project_token("p-1", &[])),
        (
            "system_admin",
            credentials_from_token(&json!({"token": {
                "user": {"id": "u-2", "domain": {"id": "default"}},
                "system": {"all": true},
                "roles": [{"name": "admin"}, {"name": "member"}, {"name": "reader"}],
            }})),
        ),
        (
            "domain_admin",
            credentials_from_token(&json!({"token": {
                "user": {"id": "u-3", "domain": {"id": "d-1"}},
                "domain": {"id": "d-1", "name": "D1"},
                "roles": [{"name": "admin"}, {"name": "member"}, {"name": "reader"}],
            }})),
        ),
    ]
}

/// Who passes each default rule, written out by hand per rule family so a
/// changed default shows up here.
fn expected_callers(rule: &str) -> &'static [&'static str] {
    const READERS: &[&str] = &["admin", "member", "reader"];
    const PRIVILEGED: &[&str] = &["service", "admin"];
    const ADMINS_ANY_SCOPE: &[&str] = &["admin", "system_admin", "domain_admin"];
    const AUTHENTICATED_PROJECT: &[&str] = &["service", "admin", "member", "reader", "no_roles"];
    match rule {
        "context_is_admin" | "segregation" => ADMINS_ANY_SCOPE,
        "telemetry:admin_delete_metrics"
        | "telemetry:admin_snapshot"
        | "telemetry:admin_clean_tombstones" => &["admin"],
        "telemetry:status_buildinfo" => AUTHENTICATED_PROJECT,
        "telemetry:targets"
        | "telemetry:status"
        | "telemetry:status_flags"
        | "telemetry:status_config"
        | "telemetry:status_tsdb"
        | "telemetry:metrics"
        | "telemetry:alertmanager:status"
        | "telemetry:alertmanager:receivers" => PRIVILEGED,
        "telemetry:alertmanager:silences:write" => &["admin", "member"],
        "telemetry:admin_delete_metrics:all_projects" => &["admin"],
        r if r.ends_with(":all_projects") => PRIVILEGED,
        "telemetry:query"
        | "telemetry:label"
        | "telemetry:labels"
        | "telemetry:series"
        | "telemetry:query_range"
        | "telemetry:query_exemplars"
        | "telemetry:federate"
        | "telemetry:metadata"
        | "telemetry:targets_metadata"
        | "telemetry:rules"
        | "telemetry:alerts"
        | "telemetry:alertmanager:alerts"
        | "telemetry:alertmanager:silences" => READERS,
        other => panic!("no expectation written for {other}"),
    }
}

#[test]
fn every_default_rule_admits_exactly_the_expected_callers() {
    let (_s, e) = defaults_only();
    for d in defaults() {
        for (who, creds) in personas() {
            let want = expected_callers(d.name).contains(&who);
            assert_eq!(
                e.enforce(d.name, &target_of(&creds), &creds),
                want,
                "{} for {who}",
                d.name
            );
        }
    }
}

#[test]
fn scoped_callers_are_denied_another_projects_target() {
    let (_s, e) = defaults_only();
    let reader = project_token("p-1", &["reader"]);
    let admin = project_token("p-1", &["admin", "member", "reader"]);
    let other = json!({"project_id": "p-2"});
    assert!(!e.enforce("telemetry:query", &other, &reader));
    assert!(!e.enforce("telemetry:query:all_projects", &other, &admin));
    assert!(!e.enforce("telemetry:admin_delete_metrics", &other, &admin));
}

#[test]
fn role_names_match_case_insensitively() {
    let (_s, e) = defaults_only();
    let creds = json!({"project_id": "p-1", "roles": ["READER"]});
    assert!(e.enforce("telemetry:query", &json!({"project_id": "p-1"}), &creds));
}

#[test]
fn enforce_scope_off_lets_the_check_string_alone_decide() {
    let s = Scratch::new();
    let opts = PolicyOptions {
        enforce_scope: false,
        ..opts_in(&s.0)
    };
    let e = Enforcer::new(opts).unwrap();
    let system_admin = personas().remove(5).1;
    assert_eq!(system_admin["system_scope"], "all");
    assert!(e.enforce(
        "telemetry:status_buildinfo",
        &target_of(&system_admin),
        &system_admin
    ));
    // still no project to match, so project-bound rules deny
    assert!(!e.enforce("telemetry:query", &target_of(&system_admin), &system_admin));
}

#[test]
fn upstream_functional_deny_all_file_denies_its_rules_for_everyone() {
    let s = Scratch::new();
    // verbatim copy of upstream Aetos' aetos/tests/functional/policy.yaml-test
    s.write(
        "policy.yaml",
        "\"telemetry:query\": \"!\"\n\"telemetry:query:all_projects\": \"!\"\n\
         \"telemetry:label\": \"!\"\n\"telemetry:label:all_projects\": \"!\"\n\
         \"telemetry:labels\": \"!\"\n\"telemetry:labels:all_projects\": \"!\"\n\
         \"telemetry:series\": \"!\"\n\"telemetry:series:all_projects\": \"!\"\n\
         \"telemetry:targets\": \"!\"\n\"telemetry:status\": \"!\"\n",
    );
    let e = Enforcer::new(opts_in(&s.0)).unwrap();
    for rule in [
        "telemetry:query",
        "telemetry:query:all_projects",
        "telemetry:label",
        "telemetry:label:all_projects",
        "telemetry:labels",
        "telemetry:labels:all_projects",
        "telemetry:series",
        "telemetry:series:all_projects",
        "telemetry:targets",
        "telemetry:status",
    ] {
        for (who, creds) in personas() {
            assert!(
                !e.enforce(rule, &target_of(&creds), &creds),
                "{rule} for {who}"
            );
        }
    }
}

#[test]
fn deny_all_override_of_every_telemetry_rule_denies_every_rule() {
    let s = Scratch::new();
    let text: String = defaults()
        .iter()
        .filter(|d| d.name.starts_with("telemetry:"))
        .map(|d| format!("\"{}\": \"!\"\n", d.name))
        .collect();
    s.write("policy.yaml", &text);
    let e = Enforcer::new(opts_in(&s.0)).unwrap();
    for (who, creds) in personas() {
        for (rule, ok) in check_all(&e, &creds) {
            if rule.starts_with("telemetry:") {
                assert!(!ok, "{rule} passed for {who}");
            }
        }
    }
}

#[test]
fn missing_policy_file_means_defaults() {
    let (_s, e) = defaults_only();
    assert!(e.policy_files().is_empty());
    let want: Vec<(String, String)> = defaults()
        .iter()
        .map(|d| (d.name.to_string(), d.check_str.to_string()))
        .collect();
    assert_eq!(e.effective_rules(), want);
}

#[test]
fn relative_policy_file_is_found_next_to_the_config_files() {
    let s = Scratch::new();
    s.write(
        "etc/policy-custom.yaml",
        "\"telemetry:query\": \"role:member\"\n",
    );
    let opts = PolicyOptions {
        policy_file: "policy-custom.yaml".into(),
        policy_dirs: vec![],
        config_dirs: vec![s.path("elsewhere"), s.path("etc")],
        ..PolicyOptions::default()
    };
    let e = Enforcer::new(opts).unwrap();
    assert_eq!(e.policy_files(), vec![s.path("etc/policy-custom.yaml")]);
    let reader = project_token("p-1", &["reader"]);
    assert!(!e.enforce("telemetry:query", &target_of(&reader), &reader));
}

#[test]
fn json_policy_file_is_accepted() {
    let s = Scratch::new();
    s.write(
        "policy.yaml",
        r#"{"telemetry:query": "role:member and project_id:%(project_id)s"}"#,
    );
    let e = Enforcer::new(opts_in(&s.0)).unwrap();
    let reader = project_token("p-1", &["reader"]);
    let member = project_token("p-1", &["member", "reader"]);
    assert!(!e.enforce("telemetry:query", &target_of(&reader), &reader));
    assert!(e.enforce("telemetry:query", &target_of(&member), &member));
}

#[test]
fn policy_dir_files_merge_in_name_order_after_the_policy_file() {
    let s = Scratch::new();
    s.write("policy.yaml", "a: '!'\nb: '!'\nc: '!'\n");
    s.write("policy.d/20-second.json", r#"{"b": "@", "c": "!"}"#);
    s.write("policy.d/10-first.yaml", "b: '!'\nc: '@'\nd: '@'\n");
    s.write("policy.d/30-third.yml", "c: '@'\n");
    s.write("policy.d/.hidden.yaml", "a: '@'\n");
    s.write("policy.d/README.txt", "a: '@'\n");
    let e = Enforcer::new(opts_in(&s.0)).unwrap();
    let creds = project_token("p-1", &[]);
    let t = target_of(&creds);
    assert!(
        !e.enforce("a", &t, &creds),
        "hidden and non-YAML files are ignored"
    );
    assert!(
        e.enforce("b", &t, &creds),
        "20-second.json overrides 10-first.yaml"
    );
    assert!(e.enforce("c", &t, &creds), "30-third.yml is read last");
    assert!(e.enforce("d", &t, &creds));
    assert_eq!(
        e.policy_files(),
        vec![
            s.path("policy.yaml"),
            s.path("policy.d/10-first.yaml"),
            s.path("policy.d/20-second.json"),
            s.path("policy.d/30-third.yml"),
        ]
    );
    let eff = e.effective_rules();
    assert_eq!(eff[0], ("a".to_string(), "!".to_string()));
    assert_eq!(eff[2], ("c".to_string(), "@".to_string()));
    assert!(effective_policy(&e)
        .starts_with("\"a\": \"!\"\n\"b\": \"@\"\n\"c\": \"@\"\n\"d\": \"@\"\n"));
}

#[test]
fn unregistered_rules_use_the_configured_default_rule() {
    let s = Scratch::new();
    s.write("policy.yaml", "fallback: 'role:admin'\n");
    let opts = PolicyOptions {
        default_rule: "fallback".into(),
        ..opts_in(&s.0)
    };
    let e = Enforcer::new(opts).unwrap();
    let admin = project_token("p-1", &["admin"]);
    let reader = project_token("p-1", &["reader"]);
    assert!(e.enforce("telemetry:not_registered", &target_of(&admin), &admin));
    assert!(!e.enforce("telemetry:not_registered", &target_of(&reader), &reader));
    // the default `default` rule does not exist in Aetos: deny
    let (_s2, plain) = defaults_only();
    assert!(!plain.enforce("telemetry:not_registered", &target_of(&admin), &admin));
}

#[test]
fn broken_rules_deny_and_are_reported_while_the_rest_works() {
    let s = Scratch::new();
    s.write(
        "policy.yaml",
        "\"telemetry:query\": \"role:reader and\"\n\
         \"telemetry:series\": \"not bogus\"\n\
         loop_a: rule:loop_b\nloop_b: rule:loop_a\n\
         \"telemetry:labels\": \"rule:loop_a or role:reader\"\n",
    );
    let e = Enforcer::new(opts_in(&s.0)).unwrap();
    let reader = project_token("p-1", &["reader"]);
    let t = target_of(&reader);
    assert!(!e.enforce("telemetry:query", &t, &reader));
    assert!(!e.enforce("telemetry:series", &t, &reader));
    assert!(!e.enforce("telemetry:labels", &t, &reader));
    assert!(e.enforce("telemetry:label", &t, &reader));
    let broken: Vec<String> = e.broken_rules().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        broken,
        vec!["telemetry:query", "telemetry:series", "loop_a", "loop_b"]
    );
}

#[test]
fn unparseable_or_unreadable_policy_file_at_start_is_an_error_naming_it() {
    let s = Scratch::new();
    let p = s.write("policy.yaml", "\"telemetry:query\": [unclosed\n");
    let err = Enforcer::new(opts_in(&s.0)).expect_err("broken YAML");
    assert!(matches!(err, PolicyError::Parse { .. }));
    assert!(err.to_string().contains(&p.display().to_string()), "{err}");

    let s = Scratch::new();
    std::fs::create_dir_all(s.path("policy.yaml")).unwrap();
    let opts = opts_in(&s.0);
    let err = Enforcer::new(opts).expect_err("a directory is not readable as a file");
    assert!(matches!(err, PolicyError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("policy.yaml"), "{err}");

    let s = Scratch::new();
    let p = s.write("policy.d/bad.json", "{\"a\": ");
    let err = Enforcer::new(opts_in(&s.0)).expect_err("broken JSON");
    assert!(err.to_string().contains(&p.display().to_string()), "{err}");
    assert!(err.to_string().contains("invalid JSON"), "{err}");
}

/// Rewrites `path` and makes sure its modification time moves even on file
/// systems with coarse timestamps.
fn rewrite(path: &Path, text: &str) {
    let before = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    std::fs::write(path, text).expect("rewrite");
    let after = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    if before.is_some() && before == after {
        std::thread::sleep(Duration::from_millis(1100));
        std::fs::write(path, text).expect("rewrite");
    }
}

#[test]
fn edited_policy_file_is_picked_up_within_about_a_second() {
    let s = Scratch::new();
    let p = s.write("policy.yaml", "\"telemetry:query\": \"!\"\n");
    let e = Enforcer::new(opts_in(&s.0)).unwrap();
    let reader = project_token("p-1", &["reader"]);
    let t = target_of(&reader);
    assert!(!e.enforce("telemetry:query", &t, &reader));
    rewrite(&p, "\"telemetry:query\": \"role:reader\"\n");
    std::thread::sleep(Duration::from_millis(1100));
    assert!(e.enforce("telemetry:query", &t, &reader));
}

#[test]
fn broken_rewrite_fails_closed_until_fixed() {
    let s = Scratch::new();
    let p = s.write("policy.yaml", "\"telemetry:query\": \"role:reader\"\n");
    let e = Enforcer::new(opts_in(&s.0)).unwrap();
    e.set_reload_check_interval(Duration::ZERO);
    let reader = project_token("p-1", &["reader"]);
    let admin = project_token("p-1", &["admin", "member", "reader"]);
    assert!(e.enforce("telemetry:query", &target_of(&reader), &reader));

    rewrite(&p, "\"telemetry:query\": [\n");
    for rule in [
        "telemetry:query",
        "telemetry:query:all_projects",
        "telemetry:status_buildinfo",
    ] {
        assert!(
            !e.enforce(rule, &target_of(&admin), &admin),
            "{rule} must deny"
        );
    }
    assert!(e.load_error().is_some_and(|m| m.contains("policy.yaml")));
    assert!(e.reload().is_err(), "an explicit reload reports the error");
    assert!(!e.enforce("telemetry:query", &target_of(&reader), &reader));

    rewrite(&p, "\"telemetry:query\": \"role:reader\"\n");
    assert!(e.enforce("telemetry:query", &target_of(&reader), &reader));
    assert!(e.load_error().is_none());
}

#[test]
fn broken_new_file_in_policy_dir_fails_closed_and_recovers_when_edited_in_place() {
    let s = Scratch::new();
    std::fs::create_dir_all(s.path("policy.d")).unwrap();
    let e = Enforcer::new(opts_in(&s.0)).unwrap();
    e.set_reload_check_interval(Duration::ZERO);
    let reader = project_token("p-1", &["reader"]);
    let t = target_of(&reader);
    assert!(e.enforce("telemetry:query", &t, &reader));
    let p = s.write("policy.d/50-new.yaml", "\"telemetry:query\": [\n");
    assert!(!e.enforce("telemetry:query", &t, &reader));
    rewrite(&p, "\"telemetry:query\": \"role:member\"\n");
    assert!(
        !e.enforce("telemetry:query", &t, &reader),
        "member-only now"
    );
    assert!(e.load_error().is_none());
    let member = project_token("p-1", &["member", "reader"]);
    assert!(e.enforce("telemetry:query", &target_of(&member), &member));
    std::fs::remove_file(&p).unwrap();
    assert!(
        e.enforce("telemetry:query", &t, &reader),
        "defaults again once removed"
    );
}

#[test]
fn explicit_reload_picks_up_changes_immediately() {
    let s = Scratch::new();
    let e = Enforcer::new(opts_in(&s.0)).unwrap();
    let reader = project_token("p-1", &["reader"]);
    let t = target_of(&reader);
    assert!(e.enforce("telemetry:query", &t, &reader));
    s.write("policy.yaml", "\"telemetry:query\": \"!\"\n");
    e.reload().unwrap();
    assert!(!e.enforce("telemetry:query", &t, &reader));
    assert_eq!(e.policy_files(), vec![s.path("policy.yaml")]);
}

#[test]
fn clones_share_rules_and_decide_concurrently_during_reloads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Enforcer>();

    let s = Scratch::new();
    let p = s.write("policy.yaml", "\"telemetry:query\": \"role:reader\"\n");
    let e = Enforcer::new(opts_in(&s.0)).unwrap();
    e.set_reload_check_interval(Duration::ZERO);
    let reader = project_token("p-1", &["reader"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let e = e.clone();
            let creds = reader.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // no panics; the answer is allowed to flip with the file
                    let _ = e.enforce("telemetry:query", &target_of(&creds), &creds);
                    n += 1;
                }
                n
            })
        })
        .collect();
    for i in 0..20 {
        let text = if i % 2 == 0 {
            "\"telemetry:query\": \"!\"\n"
        } else {
            "\"telemetry:query\": \"@\"\n"
        };
        rewrite(&p, text);
        e.reload().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        assert!(w.join().expect("worker did not panic") > 0);
    }
    // last write was "@"
    assert!(e
        .clone()
        .enforce("telemetry:query", &target_of(&reader), &reader));
}

#[test]
fn checker_accepts_a_keystone_token_body_or_credentials() {
    let (_s, e) = defaults_only();
    let token = json!({"token": {
        "user": {"id": "u", "name": "r", "domain": {"id": "default"}},
        "project": {"id": "p-1", "name": "demo", "domain": {"id": "default"}},
        "roles": [{"name": "reader"}],
    }});
    let from_token = check_all(&e, &token);
    let from_creds = check_all(&e, &credentials_from_token(&token));
    assert_eq!(from_token, from_creds);
    assert_eq!(from_token.len(), defaults().len());
    let passed: Vec<&str> = from_token
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(passed.contains(&"telemetry:query"));
    assert!(passed.contains(&"telemetry:status_buildinfo"));
    assert!(!passed.contains(&"telemetry:query:all_projects"));
    let mut sorted = from_token.clone();
    sorted.sort();
    assert_eq!(sorted, from_token, "sorted by rule name");
}

#[test]
fn sample_lists_every_default_commented_out() {
    let sample = sample_policy();
    for d in defaults() {
        assert!(sample.contains(&format!("#\"{}\": \"{}\"\n", d.name, d.check_str)));
    }
}
