//! Evaluation of parsed checks against a target and credentials.
//!
//! Semantics follow oslo.policy's `_checks` module, with every case where
//! oslo would raise (and upstream Aetos would answer 500) turned into
//! `false`, and one deliberate tightening: a JSON `null` never matches
//! anything (oslo compares Python's string `'None'`, so a token without a
//! project would match `project_id:%(project_id)s` against a target without
//! one).

use super::parser::{Check, Left, Part, Template};
use serde_json::Value;
use std::cell::Cell;

/// How deep `rule:` references may chain before the evaluation gives up.
/// Cycles are rejected when rules are compiled; this bounds long acyclic
/// chains so the stack can never overflow.
pub(crate) const MAX_RULE_DEPTH: usize = 32;

/// How many `rule:` references one decision may follow in total, so a rule
/// set like `r0 = rule:r1 or rule:r1`, `r1 = rule:r2 or rule:r2`, … cannot
/// take exponential time.
pub(crate) const MAX_RULE_EVALS: u32 = 4096;

/// Evaluation stopped without a decision (a limit was hit or a referenced
/// rule is broken). The whole decision is then "deny": returning `false`
/// from the inner check instead would turn into "allow" under a `not`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Abort;

/// Everything a check needs to evaluate: the target, the credentials, and
/// the compiled rules that `rule:` references point into.
pub(crate) struct Ctx<'a> {
    /// The object of the operation, e.g. `{"project_id": "…"}`.
    pub(crate) target: &'a Value,
    /// The caller's credentials (oslo.context's policy values).
    pub(crate) creds: &'a Value,
    /// Compiled rules by slot; `None` is a rule that failed to compile.
    pub(crate) rules: &'a [Option<Check>],
    /// `rule:` references left to follow in this decision.
    pub(crate) budget: Cell<u32>,
}

impl<'a> Ctx<'a> {
    /// A context with a fresh reference budget.
    pub(crate) fn new(target: &'a Value, creds: &'a Value, rules: &'a [Option<Check>]) -> Self {
        Ctx {
            target,
            creds,
            rules,
            budget: Cell::new(MAX_RULE_EVALS),
        }
    }
}

/// Decides `check`: `false` whenever the evaluation aborts.
pub(crate) fn decide(check: &Check, ctx: &Ctx<'_>) -> bool {
    eval(check, ctx, 0).unwrap_or(false)
}

/// Evaluates `check`; `depth` counts the `rule:` references followed so far.
pub(crate) fn eval(check: &Check, ctx: &Ctx<'_>, depth: usize) -> Result<bool, Abort> {
    Ok(match check {
        Check::True => true,
        Check::False => false,
        Check::Role(tpl) => eval_role(tpl, ctx),
        Check::Rule { slot: None, .. } => false,
        Check::Rule { slot: Some(i), .. } => {
            let left = ctx.budget.get();
            if depth >= MAX_RULE_DEPTH || left == 0 {
                return Err(Abort);
            }
            ctx.budget.set(left - 1);
            match ctx.rules.get(*i) {
                Some(Some(rule)) => eval(rule, ctx, depth + 1)?,
                _ => return Err(Abort),
            }
        }
        Check::Generic { left, right, .. } => eval_generic(left, right, ctx),
        Check::Not(inner) => !eval(inner, ctx, depth)?,
        Check::And(items) => {
            for c in items {
                if !eval(c, ctx, depth)? {
                    return Ok(false);
                }
            }
            true
        }
        Check::Or(items) => {
            for c in items {
                if eval(c, ctx, depth)? {
                    return Ok(true);
                }
            }
            false
        }
    })
}

/// `role:NAME`: NAME (after substitution) is among `creds.roles`, compared
/// case-insensitively.
fn eval_role(tpl: &Template, ctx: &Ctx<'_>) -> bool {
    let Some(roles) = ctx.creds.get("roles").and_then(Value::as_array) else {
        return false;
    };
    let matches = |wanted: &str| {
        roles
            .iter()
            .filter_map(Value::as_str)
            .any(|have| caseless_eq(have, wanted))
    };
    match tpl.as_literal() {
        Some(lit) => matches(lit),
        None => match substitute(tpl, ctx.target) {
            Some(wanted) => matches(&wanted),
            None => false,
        },
    }
}

/// Python's `a.lower() == b.lower()`, without allocating for ASCII.
fn caseless_eq(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

/// A generic `LEFT:RIGHT` check.
fn eval_generic(left: &Left, right: &Template, ctx: &Ctx<'_>) -> bool {
    let owned;
    let wanted: &str = match right.as_literal() {
        Some(lit) => lit,
        None => match substitute(right, ctx.target) {
            Some(s) => {
                owned = s;
                &owned
            }
            None => return false,
        },
    };
    match left {
        Left::Literal(lit) => lit == wanted,
        Left::Path(segments) => find_in(ctx.creds, segments, wanted),
    }
}

/// oslo's `_find_in_dict`: walks `segments` into `value`, fanning out over
/// lists, and compares the leaf's string form with `wanted`.
fn find_in(value: &Value, segments: &[String], wanted: &str) -> bool {
    let Some((key, rest)) = segments.split_first() else {
        return scalar_str(value).is_some_and(|s| s == wanted);
    };
    let Some(next) = value.as_object().and_then(|m| m.get(key)) else {
        return false;
    };
    match next {
        Value::Array(items) => items.iter().any(|v| find_in(v, rest, wanted)),
        other => find_in(other, rest, wanted),
    }
}

/// Python's `str()` of a scalar JSON value; `None` for null, lists and
/// objects, which never match.
fn scalar_str(value: &Value) -> Option<std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    match value {
        Value::String(s) => Some(Cow::Borrowed(s.as_str())),
        Value::Bool(true) => Some(Cow::Borrowed("True")),
        Value::Bool(false) => Some(Cow::Borrowed("False")),
        Value::Number(n) => Some(Cow::Owned(match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) => super::parser::python_float_str(f),
            _ => n.to_string(),
        })),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// `template % target`; `None` when a key is missing or not a scalar.
fn substitute(tpl: &Template, target: &Value) -> Option<String> {
    let mut out = String::new();
    for part in &tpl.parts {
        match part {
            Part::Lit(s) => out.push_str(s),
            Part::Key(k) => out.push_str(&scalar_str(target.get(k.as_str())?)?),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parser::parse_rule;
    use serde_json::json;

    fn check(rule: &str, target: Value, creds: Value) -> bool {
        let parsed = parse_rule(rule).expect("rule parses");
        decide(&parsed, &Ctx::new(&target, &creds, &[]))
    }

    #[test]
    fn at_and_bang_are_constants() {
        assert!(check("@", json!({}), json!({})));
        assert!(!check("!", json!({}), json!({})));
        assert!(check("", json!({}), json!({})));
    }

    #[test]
    fn role_match_ignores_case_and_supports_substitution() {
        let creds = json!({"roles": ["Reader", "ADMIN"]});
        assert!(check("role:reader", json!({}), creds.clone()));
        assert!(check("role:admin", json!({}), creds.clone()));
        assert!(!check("role:member", json!({}), creds.clone()));
        assert!(check("role:%(r)s", json!({"r": "READER"}), creds.clone()));
        assert!(!check("role:%(r)s", json!({}), creds));
        assert!(!check("role:admin", json!({}), json!({"roles": "admin"})));
        assert!(!check("role:admin", json!({}), json!({})));
        assert!(check(
            "role:straße",
            json!({}),
            json!({"roles": ["STRASSE", "Straße"]})
        ));
    }

    #[test]
    fn generic_check_compares_credentials_with_substituted_target() {
        let creds = json!({"project_id": "p1", "is_admin_project": true, "n": 3});
        assert!(check(
            "project_id:%(project_id)s",
            json!({"project_id": "p1"}),
            creds.clone()
        ));
        assert!(!check(
            "project_id:%(project_id)s",
            json!({"project_id": "p2"}),
            creds.clone()
        ));
        assert!(check("is_admin_project:True", json!({}), creds.clone()));
        assert!(!check("is_admin_project:true", json!({}), creds.clone()));
        assert!(check("n:3", json!({}), creds.clone()));
        assert!(check("project_id:p%(x)s", json!({"x": 1}), creds));
    }

    #[test]
    fn missing_target_key_makes_the_check_false_even_under_not_or_and() {
        let creds = json!({"project_id": "p1"});
        assert!(!check(
            "project_id:%(project_id)s",
            json!({}),
            creds.clone()
        ));
        assert!(!check(
            "project_id:%(project_id)s",
            json!("scalar"),
            creds.clone()
        ));
        // the check itself is false; `not` of it is true, as in oslo
        assert!(check("not project_id:%(project_id)s", json!({}), creds));
    }

    #[test]
    fn null_never_matches_its_python_spelling() {
        let creds = json!({"project_id": null});
        assert!(!check(
            "project_id:%(project_id)s",
            json!({"project_id": null}),
            creds.clone()
        ));
        assert!(!check("project_id:None", json!({}), creds));
    }

    #[test]
    fn literal_left_side_is_compared_with_the_right_side() {
        assert!(check(
            "'member':%(role)s",
            json!({"role": "member"}),
            json!({})
        ));
        assert!(!check(
            "'member':%(role)s",
            json!({"role": "admin"}),
            json!({})
        ));
        assert!(check(
            "True:%(enabled)s",
            json!({"enabled": true}),
            json!({})
        ));
        assert!(!check(
            "True:%(enabled)s",
            json!({"enabled": false}),
            json!({})
        ));
    }

    #[test]
    fn dotted_paths_walk_objects_and_fan_out_over_lists() {
        let creds = json!({
            "token": {"user": {"id": "u1"}, "roles": [{"name": "a"}, {"name": "b"}]},
            "groups": [["x"], ["y", "z"]],
            "tags": ["t1", "t2"],
        });
        assert!(check("token.user.id:u1", json!({}), creds.clone()));
        assert!(!check("token.user.id:u2", json!({}), creds.clone()));
        assert!(check("token.roles.name:b", json!({}), creds.clone()));
        assert!(!check("token.roles.name:c", json!({}), creds.clone()));
        assert!(check("tags:t2", json!({}), creds.clone()));
        // oslo fans out one list level per path segment, not nested lists
        assert!(!check("groups:z", json!({}), creds.clone()));
        assert!(!check("token.user.id.deeper:u1", json!({}), creds.clone()));
        assert!(!check("tags.x:t1", json!({}), creds));
    }

    #[test]
    fn unknown_rule_reference_is_false() {
        // oslo: a reference to a rule that does not exist is false
        assert!(!check("rule:nowhere", json!({}), json!({})));
        assert!(check("not rule:nowhere", json!({}), json!({})));
    }

    fn rule(i: usize) -> Check {
        Check::Rule {
            name: format!("r{i}"),
            slot: Some(i),
        }
    }

    #[test]
    fn rule_reference_chains_beyond_the_depth_limit_deny_even_under_not() {
        // rule i refers to rule i+1; the last one is `!`.
        let n = MAX_RULE_DEPTH + 5;
        let mut rules: Vec<Option<Check>> = (0..n).map(|i| Some(rule(i + 1))).collect();
        rules.push(Some(Check::False));
        let ctx = Ctx::new(&Value::Null, &Value::Null, &rules);
        assert!(!decide(&Check::Not(Box::new(rule(0))), &ctx));
        let ctx = Ctx::new(&Value::Null, &Value::Null, &rules);
        assert!(decide(&Check::Not(Box::new(rule(n - 3))), &ctx));
    }

    #[test]
    fn exponential_rule_fan_out_is_cut_off_and_denied() {
        // r_i = rule:r_{i+1} or rule:r_{i+1}, r_last = `!`: 2^25 paths.
        let n = 25;
        let mut rules: Vec<Option<Check>> = (0..n)
            .map(|i| Some(Check::Or(vec![rule(i + 1), rule(i + 1)])))
            .collect();
        rules.push(Some(Check::False));
        let ctx = Ctx::new(&Value::Null, &Value::Null, &rules);
        let started = std::time::Instant::now();
        assert!(!decide(&Check::Not(Box::new(rule(0))), &ctx));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn reference_to_a_broken_rule_denies_the_whole_decision() {
        let rules = vec![None];
        let ctx = Ctx::new(&Value::Null, &Value::Null, &rules);
        assert!(!decide(&Check::Not(Box::new(rule(0))), &ctx));
        assert!(!decide(&Check::Or(vec![rule(0), Check::True]), &ctx));
    }
}
