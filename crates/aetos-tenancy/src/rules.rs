//! Metric access rules: which series a scoped caller may read, on top of
//! the project matcher.
//!
//! A [`Grant`] is one series selector written by the operator
//! (`ceilometer_cpu`, `{__name__=~"ceilometer_.*"}`, `{job="x-exporter"}`,
//! `up{job="x"}`): a constraint on the metric name (none, an exact name or an
//! anchored regex) plus label matchers. The [`Grants`] that apply to a caller
//! allow the union of their selectors. [`confine`] runs on every selector of
//! the caller's query, in the same walk that adds the project matcher, and
//! either leaves the selector alone (it can only read allowed series),
//! narrows it with matchers (so that it can only read allowed series), makes
//! it match nothing (no grant can allow any of its series: an empty success,
//! as Prometheus answers for a metric it does not have), or refuses the query
//! when the union cannot be written into one selector soundly.
//!
//! Soundness argument, per selector S and applicable grants G1..Gn:
//! - S fixes the metric name N (`N{…}` or `__name__="N"`): every series S
//!   reads has name N, so only the grants whose name constraint admits N can
//!   allow any of them. None: S is denied. One of them without matchers:
//!   every series of S is allowed. Exactly one, with matchers M: S ∧ M is S
//!   confined to that grant. Several, all with matchers: the union is not one
//!   selector, refused.
//! - S does not fix the name: a grant without any constraint admits all of
//!   S; if every grant constrains the name only, S ∧ `__name__=~"(g1)|(g2)…"`
//!   is S confined to their union; a single grant is ANDed in whole; any
//!   other mix is refused.

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{Expr, VectorSelector};

use super::TenancyError;

/// The label a denied selector is given: reserved (`__`-prefixed) names never
/// reach stored series, so the selector matches nothing, yet stays a valid
/// selector (it has a non-empty matcher).
pub const DENIED_LABEL: &str = "__aetos_denied__";

/// The metric-name part of a grant.
#[derive(Debug, Clone)]
enum Name {
    /// Any metric name.
    Any,
    /// Exactly this name.
    Exact(String),
    /// Names matching this regex (the source as written; the compiled,
    /// anchored form as Prometheus reads it).
    Regex(String, regex::Regex),
}

/// One label matcher of a grant, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Extra {
    name: String,
    op: Op,
    value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equal,
    NotEqual,
    Re,
    NotRe,
}

/// One allowed series selector.
#[derive(Debug, Clone)]
pub struct Grant {
    text: String,
    name: Name,
    extra: Vec<Extra>,
}

impl Grant {
    /// Parse an operator's selector. Only `name`, `name{…}` or `{…}` are
    /// accepted; the name may be constrained by `=` or `=~` only (a negative
    /// name constraint cannot be combined with others soundly).
    pub fn parse(text: &str) -> Result<Grant, String> {
        let expr = promql_parser::parser::parse(text).map_err(|e| format!("{text:?}: {e}"))?;
        let Expr::VectorSelector(VectorSelector {
            name,
            matchers,
            offset: None,
            at: None,
        }) = expr
        else {
            return Err(format!(
                "{text:?}: only a metric name and/or label matchers are allowed"
            ));
        };
        if !matchers.or_matchers.is_empty() {
            return Err(format!("{text:?}: `or` matcher groups are not allowed"));
        }
        let mut name = name.map(Name::Exact).unwrap_or(Name::Any);
        let mut extra = Vec::new();
        for m in matchers.matchers {
            let op = match &m.op {
                MatchOp::Equal => Op::Equal,
                MatchOp::NotEqual => Op::NotEqual,
                MatchOp::Re(_) => Op::Re,
                MatchOp::NotRe(_) => Op::NotRe,
            };
            if m.name == "__name__" {
                if !matches!(name, Name::Any) {
                    return Err(format!("{text:?}: the metric name is constrained twice"));
                }
                name = match (op, m.op) {
                    (Op::Equal, _) => Name::Exact(m.value),
                    (Op::Re, MatchOp::Re(re)) => Name::Regex(m.value, re),
                    _ => {
                        return Err(format!(
                            "{text:?}: only = and =~ may constrain __name__ in a rule"
                        ))
                    }
                };
                continue;
            }
            if m.name.starts_with("__") {
                return Err(format!("{text:?}: reserved label {} in a rule", m.name));
            }
            extra.push(Extra {
                name: m.name,
                op,
                value: m.value,
            });
        }
        Ok(Grant {
            text: text.to_owned(),
            name,
            extra,
        })
    }

    /// The selector as the operator wrote it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether this grant allows series of metric `name` (some of them,
    /// if it also has label matchers).
    pub fn admits_name(&self, name: &str) -> bool {
        match &self.name {
            Name::Any => true,
            Name::Exact(n) => n == name,
            Name::Regex(_, re) => re.is_match(name),
        }
    }

    /// Whether this grant allows every series of a name it admits.
    pub fn whole_metrics(&self) -> bool {
        self.extra.is_empty()
    }
}

/// The grants that apply to one caller (the union of what they allow).
/// Empty: nothing is allowed.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    grants: Vec<std::sync::Arc<Grant>>,
}

impl Grants {
    pub fn new(grants: Vec<std::sync::Arc<Grant>>) -> Grants {
        Grants { grants }
    }

    /// Whether a metric name may appear in an answer (metadata, rules):
    /// some grant admits it.
    pub fn admits_name(&self, name: &str) -> bool {
        self.grants.iter().any(|g| g.admits_name(name))
    }

    /// Whether these grants allow every series: one of them has no label
    /// matchers and a name constraint that admits every name, the
    /// documented `{__name__=~".+"}` (every stored series has a name; `.*`
    /// is accepted too, though it cannot be written as a selector alone).
    /// The answer filters then need not look at expressions: a rule or an
    /// alert of the project is shown as without a rules file.
    pub fn allows_everything(&self) -> bool {
        self.grants.iter().any(|g| {
            g.whole_metrics()
                && match &g.name {
                    Name::Any => true,
                    Name::Regex(src, _) => src == ".*" || src == ".+",
                    Name::Exact(_) => false,
                }
        })
    }

    /// The grants.
    pub fn iter(&self) -> impl Iterator<Item = &Grant> {
        self.grants.iter().map(|g| g.as_ref())
    }

    /// Each grant on its own: a list of selectors (`match[]`) can hold
    /// their union where one selector cannot.
    pub fn each(&self) -> impl Iterator<Item = Grants> + '_ {
        self.grants.iter().map(|g| Grants {
            grants: vec![g.clone()],
        })
    }
}

/// The fixed metric name of a selector, if any. Regex matchers reach this
/// module as placeholders (see `prescan`) and never fix the name.
fn fixed_name<'a>(name: Option<&'a str>, matchers: &'a [Matcher]) -> Option<&'a str> {
    name.or_else(|| {
        matchers
            .iter()
            .find(|m| {
                m.name == "__name__"
                    && m.op == MatchOp::Equal
                    && super::prescan::placeholder(&m.value).is_none()
            })
            .map(|m| m.value.as_str())
    })
}

/// Push a matcher; regex matchers go in as placeholders, their values into
/// `regexes` (restored after printing, like the caller's own).
fn push(matchers: &mut Vec<Matcher>, regexes: &mut Vec<String>, name: &str, op: Op, value: &str) {
    let (op, value) = match op {
        Op::Equal => (MatchOp::Equal, value.to_owned()),
        Op::NotEqual => (MatchOp::NotEqual, value.to_owned()),
        Op::Re | Op::NotRe => {
            regexes.push(value.to_owned());
            let neg = if op == Op::NotRe { "!" } else { "" };
            let mark = super::prescan::MARK;
            (MatchOp::Equal, format!("{mark}{neg}{}", regexes.len() - 1))
        }
    };
    matchers.push(Matcher::new(op, name, &value));
}

/// AND a whole grant into a selector.
fn and_grant(matchers: &mut Vec<Matcher>, regexes: &mut Vec<String>, g: &Grant) {
    match &g.name {
        Name::Any => {}
        Name::Exact(n) => push(matchers, regexes, "__name__", Op::Equal, n),
        Name::Regex(src, _) => push(matchers, regexes, "__name__", Op::Re, src),
    }
    for e in &g.extra {
        push(matchers, regexes, &e.name, e.op, &e.value);
    }
}

fn deny(matchers: &mut Vec<Matcher>) {
    matchers.push(Matcher::new(MatchOp::Equal, DENIED_LABEL, "true"));
}

fn not_confinable(what: &str) -> TenancyError {
    TenancyError::NotConfinable(format!(
        "{what} is allowed by several metric access rules with different label matchers, \
         which one selector cannot express; query each allowed selector separately"
    ))
}

/// Confine one selector (its name and matchers) to `grants`.
pub(crate) fn confine(
    name: Option<&str>,
    matchers: &mut Vec<Matcher>,
    grants: &Grants,
    regexes: &mut Vec<String>,
) -> Result<(), TenancyError> {
    if let Some(n) = fixed_name(name, matchers) {
        let n = n.to_owned();
        let admitting: Vec<&Grant> = grants.iter().filter(|g| g.admits_name(&n)).collect();
        match admitting.as_slice() {
            [] => deny(matchers),
            many if many.iter().any(|g| g.whole_metrics()) => {}
            [one] => {
                for e in &one.extra {
                    push(matchers, regexes, &e.name, e.op, &e.value);
                }
            }
            _ => return Err(not_confinable(&format!("metric {n:?}"))),
        }
        return Ok(());
    }
    let all: Vec<&Grant> = grants.iter().collect();
    match all.as_slice() {
        [] => deny(matchers),
        many if many
            .iter()
            .any(|g| g.whole_metrics() && matches!(g.name, Name::Any)) => {}
        [one] => and_grant(matchers, regexes, one),
        many if many.iter().all(|g| g.whole_metrics()) => {
            let union = many
                .iter()
                .map(|g| match &g.name {
                    Name::Exact(n) => regex_syntax::escape(n),
                    Name::Regex(src, _) => format!("(?:{src})"),
                    // Handled above (a grant of everything); kept exact anyway.
                    Name::Any => ".*".to_owned(),
                })
                .collect::<Vec<_>>()
                .join("|");
            push(matchers, regexes, "__name__", Op::Re, &union);
        }
        _ => return Err(not_confinable("a selector without a fixed metric name")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{scope_match_params_granted, scope_query_granted, scope_selector_granted};

    fn grants(texts: &[&str]) -> Grants {
        Grants::new(
            texts
                .iter()
                .map(|t| Arc::new(Grant::parse(t).expect("valid grant")))
                .collect(),
        )
    }

    fn q(query: &str, allowed: &[&str]) -> Result<String, TenancyError> {
        scope_query_granted(query, "project", "p", Some(&grants(allowed))).map(|s| s.text)
    }

    const DENIED: &str = "__aetos_denied__=\"true\"";

    #[test]
    fn an_exact_name_allowed_by_a_regex_rule_is_unchanged() {
        assert_eq!(
            q(
                "rate(ceilometer_cpu[5m])",
                &["{__name__=~\"ceilometer_.*\"}"]
            )
            .unwrap(),
            "rate(ceilometer_cpu{project=\"p\"}[5m])"
        );
    }

    #[test]
    fn a_name_no_rule_allows_matches_nothing() {
        let out = q(
            "sum(node_cpu_seconds_total)",
            &["{__name__=~\"ceilometer_.*\"}"],
        )
        .unwrap();
        assert!(out.contains(DENIED), "{out}");
        assert!(out.contains("project=\"p\""), "{out}");
    }

    #[test]
    fn a_name_allowed_with_label_matchers_gets_them() {
        let out = q("up", &["{job=\"x-exporter\"}"]).unwrap();
        assert_eq!(out, "up{job=\"x-exporter\",project=\"p\"}");
        let out = q("up", &["up{job=~\"x-.*\"}"]).unwrap();
        assert_eq!(out, "up{job=~\"x-.*\",project=\"p\"}");
    }

    #[test]
    fn the_callers_own_matchers_are_kept_and_anded() {
        let out = q("up{job=\"other\"}", &["{job=\"x-exporter\"}"]).unwrap();
        assert_eq!(out, "up{job=\"other\",job=\"x-exporter\",project=\"p\"}");
    }

    #[test]
    fn a_whole_metric_grant_wins_over_a_narrower_one() {
        let out = q("up", &["{job=\"x-exporter\"}", "up"]).unwrap();
        assert_eq!(out, "up{project=\"p\"}");
    }

    #[test]
    fn two_narrow_grants_for_one_name_are_refused_not_widened() {
        let e = q("up", &["{job=\"a\"}", "{job=\"b\"}"]).unwrap_err();
        assert!(matches!(e, TenancyError::NotConfinable(_)), "{e}");
    }

    #[test]
    fn a_name_regex_is_confined_to_the_union_of_name_rules() {
        let out = q(
            "sum(rate({__name__=~\"ceil.*|node.*\"}[5m]))",
            &["{__name__=~\"ceilometer_.*\"}", "up"],
        )
        .unwrap();
        assert_eq!(
            out,
            "sum(rate({__name__=~\"ceil.*|node.*\",__name__=~\"(?:ceilometer_.*)|up\",project=\"p\"}[5m]))"
        );
    }

    #[test]
    fn a_nameless_selector_under_one_narrow_rule_gets_it_whole() {
        let out = q("{job=~\".+\"}", &["ceilometer_cpu{job=\"c\"}"]).unwrap();
        assert_eq!(
            out,
            "{__name__=\"ceilometer_cpu\",job=\"c\",job=~\".+\",project=\"p\"}"
        );
    }

    #[test]
    fn a_nameless_selector_under_mixed_rules_is_refused() {
        assert!(q("{job=\"a\"}", &["ceilometer_cpu", "{job=\"x\"}"]).is_err());
    }

    #[test]
    fn no_applicable_rule_allows_nothing() {
        let out = q("up + {__name__=~\"a.*\"}", &[]).unwrap();
        assert_eq!(out.matches(DENIED).count(), 2, "{out}");
    }

    #[test]
    fn an_everything_rule_changes_nothing() {
        assert_eq!(
            q("up{job=\"a\"}", &["{__name__=~\".+\"}"]).unwrap(),
            "up{job=\"a\",project=\"p\"}"
        );
        assert_eq!(
            q("{job=\"a\"}", &["{__name__=~\".+\"}"]).unwrap(),
            "{__name__=~\".+\",job=\"a\",project=\"p\"}"
        );
    }

    #[test]
    fn selectors_in_params_and_subqueries_are_confined_too() {
        let out = q(
            "topk(scalar(count(secret)), max_over_time(ceilometer_cpu[5m:1m]))",
            &["ceilometer_cpu"],
        )
        .unwrap();
        assert_eq!(out.matches(DENIED).count(), 1, "{out}");
        assert!(
            out.contains("secret{__aetos_denied__=\"true\",project=\"p\"}"),
            "{out}"
        );
    }

    #[test]
    fn match_params_without_match_get_the_allowed_set() {
        let g = grants(&["{__name__=~\"ceilometer_.*\"}", "up"]);
        assert_eq!(
            scope_match_params_granted(&[], "project", "p", Some(&g)).unwrap(),
            vec!["{__name__=~\"(?:ceilometer_.*)|up\",project=\"p\"}".to_owned()]
        );
        assert_eq!(
            scope_selector_granted("node_load1", "project", "p", Some(&g)).unwrap(),
            "node_load1{__aetos_denied__=\"true\",project=\"p\"}"
        );
    }

    #[test]
    fn match_lists_hold_the_union_one_selector_cannot() {
        let g = grants(&["{__name__=~\"ceilometer_.*\"}", "{job=\"x\"}"]);
        assert_eq!(
            scope_match_params_granted(&[], "project", "p", Some(&g)).unwrap(),
            vec![
                "{__name__=~\"ceilometer_.*\",project=\"p\"}".to_owned(),
                "{job=\"x\",project=\"p\"}".to_owned()
            ]
        );
        let out = crate::scope_match_list_granted(
            &["{instance=\"i\"}".to_owned()],
            "project",
            "p",
            Some(&g),
        )
        .unwrap();
        assert_eq!(
            out,
            vec![
                "{__name__=~\"ceilometer_.*\",instance=\"i\",project=\"p\"}".to_owned(),
                "{instance=\"i\",job=\"x\",project=\"p\"}".to_owned()
            ]
        );
        // One selector alone is still refused: it cannot hold the union.
        assert!(scope_selector_granted("{instance=\"i\"}", "project", "p", Some(&g)).is_err());
    }

    #[test]
    fn bad_rules_are_refused_with_a_reason() {
        for bad in [
            "sum(up)",
            "up[5m]",
            "{__name__!=\"up\"}",
            "up{__name__=\"x\"}",
            "{__meta_x=\"1\"}",
            "up offset 5m",
            "{",
        ] {
            assert!(Grant::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_rule_expression_is_within_grants_only_if_nothing_changes() {
        let g = grants(&["{__name__=~\"ceilometer_.*\"}", "up{job=\"x\"}"]);
        assert!(crate::within_grants("rate(ceilometer_cpu[5m]) > 0", &g));
        assert!(!crate::within_grants("node_load1 > 1", &g));
        assert!(
            !crate::within_grants("up == 0", &g),
            "narrowed is not within"
        );
        assert!(!crate::within_grants("ceilometer_cpu + on() absent(x)", &g));
        assert!(!crate::within_grants("sum(", &g));
    }

    #[test]
    fn only_a_whole_name_wildcard_allows_everything() {
        assert!(grants(&["{__name__=~\".+\"}"]).allows_everything());
        assert!(grants(&["up", "{__name__=~\".+\"}"]).allows_everything());
        for narrower in [
            &["{__name__=~\".+\",job=\"x\"}"][..],
            &["{__name__=~\"..*\"}"],
            &["{__name__=~\"ceilometer_.*\"}", "up"],
            &["{job=~\".+\"}"],
            &[],
        ] {
            assert!(!grants(narrower).allows_everything(), "{narrower:?}");
        }
    }

    #[test]
    fn names_are_admitted_for_answer_filtering() {
        let g = grants(&["{__name__=~\"ceilometer_.*\"}", "up{job=\"x\"}"]);
        assert!(g.admits_name("ceilometer_cpu"));
        assert!(g.admits_name("up"));
        assert!(!g.admits_name("node_load1"));
        assert!(!g.admits_name("xceilometer_cpu"));
    }
}
