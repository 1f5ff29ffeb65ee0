use super::*;
use serde_json::json;

fn compiled(overrides: &[(&str, &str)]) -> State {
    let o: Vec<(String, RuleSpec)> = overrides
        .iter()
        .map(|(n, t)| (n.to_string(), RuleSpec::Text(t.to_string())))
        .collect();
    State::compile(&o, "default")
}

fn admin() -> Value {
    json!({"roles": ["admin", "member", "reader"], "project_id": "p1"})
}

#[test]
fn rule_cycles_deny_every_member_and_referrers() {
    let st = compiled(&[
        ("a", "rule:b or @"),
        ("b", "rule:c"),
        ("c", "rule:b"),
        ("self", "rule:self or @"),
        ("uses_cycle", "role:admin and not rule:b"),
        ("fine", "rule:context_is_admin"),
    ]);
    let t = json!({"project_id": "p1"});
    for rule in ["a", "b", "c", "self", "uses_cycle"] {
        assert!(!st.decide(rule, &t, &admin(), true), "{rule}");
    }
    assert!(st.decide("fine", &t, &admin(), true));
    let broken: Vec<&str> = st
        .errors
        .iter()
        .enumerate()
        .filter(|(_, e)| e.is_some())
        .map(|(s, _)| st.names[s].as_str())
        .collect();
    assert!(broken.contains(&"b") && broken.contains(&"c") && broken.contains(&"self"));
    assert!(!broken.contains(&"a"), "a only refers to the cycle");
}

#[test]
fn long_acyclic_chains_compile_without_overflowing() {
    let n = 200_000;
    let rules: Vec<(String, RuleSpec)> = (0..n)
        .map(|i| (format!("r{i}"), RuleSpec::Text(format!("rule:r{}", i + 1))))
        .collect();
    let st = State::compile(&rules, "default");
    assert!(st.errors.iter().all(Option::is_none));
    // deeper than the evaluation limit: denied, not a stack overflow
    assert!(!st.decide("r0", &json!({}), &admin(), true));
}

#[test]
fn unknown_rule_uses_the_default_rule_or_denies() {
    let st = compiled(&[("default", "role:admin")]);
    assert!(st.decide("no:such:rule", &json!({}), &admin(), true));
    assert!(!st.decide(
        "no:such:rule",
        &json!({}),
        &json!({"roles": ["reader"]}),
        true
    ));
    let st = compiled(&[]);
    assert!(!st.decide("no:such:rule", &json!({}), &admin(), true));
}

#[test]
fn effective_order_is_file_rules_then_untouched_defaults() {
    let st = compiled(&[("custom", "@"), ("telemetry:query", "!"), ("custom", "!")]);
    let names: Vec<&str> = st.order.iter().map(|&s| st.names[s].as_str()).collect();
    assert_eq!(names[0], "custom");
    assert_eq!(names[1], "telemetry:query");
    assert_eq!(names.len(), defaults().len() + 1);
    assert_eq!(st.texts[st.index["custom"]], "!");
}

#[test]
fn token_scope_follows_oslo() {
    assert_eq!(token_scope(&json!({"system_scope": "all"})), "system");
    assert_eq!(token_scope(&json!({"system": "all"})), "system");
    assert_eq!(
        token_scope(&json!({"system_scope": "", "domain_id": "d"})),
        "domain"
    );
    assert_eq!(
        token_scope(&json!({"project_id": "p", "domain_id": null})),
        "project"
    );
}
