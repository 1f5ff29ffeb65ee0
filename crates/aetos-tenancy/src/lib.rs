//! Tenancy engine: scope any PromQL expression or series selector to one
//! project, provably.
//!
//! Scoped callers (reader/member of a project) must only ever see series whose
//! project label (`[prometheus] project_label_name`, default `project`) equals
//! their project id. Upstream Aetos splices text around metric names fetched
//! from Prometheus; this module instead parses the query with `promql-parser`,
//! adds the equality matcher `<label>="<project>"` to every vector and matrix
//! selector anywhere in the tree, prints the tree back to PromQL and then
//! *proves* the result on the exact text sent to Prometheus: every matcher
//! list must carry the matcher and there must be one list per selector (see
//! `verify` for this proof and for the full re-parse proof that debug builds,
//! and so every test and fuzz run, add).
//!
//! The module is pure: no I/O, no calls to Prometheus, no global state. Every
//! refusal is a [`TenancyError`] whose `Display` text is meant for the `error`
//! field of a Prometheus-shaped `400 bad_data` answer.
//!
//! Policy decisions an operator can rely on (see `doc/source/admin/tenancy.rst`):
//! - A caller's own matchers on the project label are kept and ANDed with the
//!   enforced one: `{project="other"}` becomes
//!   `{project="other",project="mine"}` and matches nothing. An exact copy of
//!   the enforced matcher is not repeated.
//! - Fail closed: anything that cannot be printed faithfully or that reads data
//!   outside the syntax tree is refused (negative or out-of-range `@`
//!   timestamps, `or` matcher groups, `info()`, extension nodes, functions or
//!   operators this module does not know, `\x80`–`\xff` byte escapes, U+FFFD in
//!   strings, over-long or over-deep input).
//!
//! It is a crate of its own (used by the service as `aetos::tenancy`, by the
//! fuzz target in `fuzz/` and by the benches) so that fuzzing instruments
//! only the engine and the engine cannot reach into the service. Its public
//! surface is what the service needs: the `scope_*` functions,
//! [`validate_label_name`], [`Scoped`], [`TenancyError`] and the two bounds.
#![forbid(unsafe_code)]

mod enforce;
mod prescan;
mod rules;
mod verify;

pub use rules::{Grant, Grants, DENIED_LABEL};

use promql_parser::label::{MatchOp, Matcher, Matchers};
use promql_parser::parser::{Expr, VectorSelector};

/// Largest query or selector text accepted, in bytes.
///
/// The whole stage is linear in the input (regex matchers are not compiled,
/// see `prescan`), but an unbounded input is still a cheap way to burn CPU.
/// 128 KiB is far above any hand-written or dashboard-generated query
/// (Grafana's longest variable expansions stay well below it) and keeps the
/// worst case in the tens of milliseconds. `[limits] max_query_bytes` can
/// lower it per project.
pub const MAX_QUERY_BYTES: usize = 128 * 1024;

/// Largest accepted upper bound of the syntax tree's depth.
///
/// The parser's type checks, the printer, `Drop` and this module's walkers
/// all recurse once per tree level, and a stack overflow aborts the whole
/// process (it is not a catchable panic). The bound is computed from the text
/// *before* parsing (see `prescan`): every operator, `(` and `[` may add one
/// level, so a chain of 200 additions or 200 nested parentheses is accepted,
/// which is far beyond real queries, while the worst accepted tree stays a few
/// hundred KiB of stack below the 2 MiB of a worker thread.
pub const MAX_NESTING: usize = 256;

/// Why a query or selector was refused; `Display` is the message for a 400
/// `bad_data` answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TenancyError {
    /// The configured project label name cannot be enforced (empty, or a
    /// reserved `__`-prefixed name such as `__name__`). A configuration error,
    /// reported per request so that nothing is ever forwarded unscoped.
    #[error("the project label name {0:?} cannot be enforced (empty or reserved)")]
    InvalidLabelName(String),
    /// The caller's project id is empty (`<label>=""` would match series that
    /// have no project label at all) or cannot be written into PromQL.
    #[error("the caller's project id is empty or contains U+FFFD, it cannot be enforced")]
    InvalidProject,
    /// The input exceeds [`MAX_QUERY_BYTES`].
    #[error("query too long: {len} bytes, at most {max} are accepted")]
    TooLong {
        /// Length of the refused input in bytes.
        len: usize,
        /// The limit, [`MAX_QUERY_BYTES`].
        max: usize,
    },
    /// The input may nest deeper than [`MAX_NESTING`].
    #[error("query nested too deeply: at most {max} levels of operators, parentheses and subqueries are accepted")]
    TooDeep {
        /// The limit, [`MAX_NESTING`].
        max: usize,
    },
    /// The input is not valid PromQL (message from the parser).
    #[error("parse error: {0}")]
    Parse(String),
    /// A `match[]` value that is not a plain series selector.
    #[error("invalid series selector {0:?}: only a metric name and/or label matchers are allowed")]
    NotASelector(String),
    /// Valid PromQL that cannot be scoped safely for a project-scoped caller.
    #[error("not allowed for a project-scoped caller: {0}")]
    Unsupported(String),
    /// A selector the metric access rules allow only in parts that one
    /// selector cannot express (several rules with different matchers).
    #[error("not allowed by the metric access rules as one selector: {0}")]
    NotConfinable(String),
    /// The printed query did not survive the proofs run before it is
    /// returned. This is a refusal, not a crash: the engine would rather
    /// answer 400 than forward text it cannot vouch for.
    #[error("the query cannot be rewritten faithfully for a project-scoped caller: {0}")]
    Unfaithful(String),
}

/// The label and value to enforce, validated once per call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub(crate) label: &'a str,
    pub(crate) project: &'a str,
    /// The metric access rules that apply to the caller; `None`: every
    /// metric of the project.
    pub(crate) grants: Option<&'a Grants>,
}

impl<'a> Scope<'a> {
    /// Refuse a label or project that cannot be enforced faithfully.
    fn new(label: &'a str, project: &'a str) -> Result<Self, TenancyError> {
        if label.is_empty() || label.starts_with("__") || label.contains('\u{FFFD}') {
            return Err(TenancyError::InvalidLabelName(label.to_owned()));
        }
        if project.is_empty() || project.contains('\u{FFFD}') {
            return Err(TenancyError::InvalidProject);
        }
        Ok(Self {
            label,
            project,
            grants: None,
        })
    }

    /// The matcher every selector must carry.
    pub(crate) fn matcher(&self) -> Matcher {
        Matcher::new(MatchOp::Equal, self.label, self.project)
    }

    /// Whether `m` is exactly the enforced matcher.
    pub(crate) fn is_enforced(&self, m: &Matcher) -> bool {
        m.op == MatchOp::Equal && m.name == self.label && m.value == self.project
    }
}

/// Check a project label name at start-up, so that a bad
/// `project_label_name` is reported once instead of on every request.
pub fn validate_label_name(label: &str) -> Result<(), TenancyError> {
    Scope::new(label, "x").map(|_| ())
}

/// Scope a PromQL expression (`query`, `query_range`, `query_exemplars`) to
/// `project`: every selector gains `<label>="<project>"`. Returns the printed
/// expression (matchers sorted, durations normalised, comments dropped).
pub fn scope_query(query: &str, label: &str, project: &str) -> Result<String, TenancyError> {
    scope_query_counted(query, label, project).map(|s| s.text)
}

/// A rewrite and the number of selectors it holds (each carries the
/// enforced matcher), for limits on the number of selectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scoped {
    /// The text to send to the backend.
    pub text: String,
    /// Vector and matrix selectors in it.
    pub selectors: usize,
}

/// [`scope_query`], with the number of selectors.
pub fn scope_query_counted(
    query: &str,
    label: &str,
    project: &str,
) -> Result<Scoped, TenancyError> {
    scope_query_granted(query, label, project, None)
}

/// [`scope_query_counted`], with every selector also confined to the
/// metric access rules `grants` (see `rules`): in the same walk that adds
/// the project matcher, a selector no grant allows is made to match
/// nothing, one that some grant allows only in part is narrowed, and one
/// that cannot be confined soundly is refused.
pub fn scope_query_granted(
    query: &str,
    label: &str,
    project: &str,
    grants: Option<&Grants>,
) -> Result<Scoped, TenancyError> {
    let mut scope = Scope::new(label, project)?;
    scope.grants = grants;
    let (mut expr, mut regexes) = parse_checked(query)?;
    let selectors = enforce::enforce(&mut expr, &scope, &mut regexes)?;
    finish(expr, &scope, selectors, &regexes)
}

/// Print and prove a scoped tree parsed with regex placeholders, then put
/// the regex values back and prove the final text once more.
fn finish(
    expr: Expr,
    scope: &Scope<'_>,
    selectors: usize,
    regexes: &[String],
) -> Result<Scoped, TenancyError> {
    for r in regexes {
        enforce::check_text(r)?;
    }
    let printed = verify::print_and_prove(expr, scope, selectors)?;
    if regexes.is_empty() {
        return Ok(Scoped {
            text: printed,
            selectors,
        });
    }
    let text = prescan::restore(&printed, regexes)?;
    verify::prove_text(&text, scope, selectors)?;
    Ok(Scoped { text, selectors })
}

/// Scope one series selector (a `match[]` value of `series`, `labels`,
/// `label/<name>/values`, `federate`, `admin/tsdb/delete_series`).
///
/// Like Prometheus' `match[]`, only `metric`, `metric{…}` or `{…}` is
/// accepted: no operators, functions, ranges, `offset` or `@`.
pub fn scope_selector(selector: &str, label: &str, project: &str) -> Result<String, TenancyError> {
    scope_selector_granted(selector, label, project, None)
}

/// [`scope_selector`], confined to `grants` as [`scope_query_granted`] is.
pub fn scope_selector_granted(
    selector: &str,
    label: &str,
    project: &str,
    grants: Option<&Grants>,
) -> Result<String, TenancyError> {
    let mut scope = Scope::new(label, project)?;
    scope.grants = grants;
    let (mut expr, mut regexes) = parse_checked(selector)?;
    match &expr {
        Expr::VectorSelector(VectorSelector {
            offset: None,
            at: None,
            ..
        }) => {}
        _ => return Err(TenancyError::NotASelector(selector.to_owned())),
    }
    let selectors = enforce::enforce(&mut expr, &scope, &mut regexes)?;
    finish(expr, &scope, selectors, &regexes).map(|s| s.text)
}

/// For `match[]` lists: each scoped; an empty list becomes one
/// `{<label>="<project>"}` (what upstream Aetos sends, and the only way to
/// keep `series`/`labels`/`label values` without `match[]` inside the project).
pub fn scope_match_params(
    matches: &[String],
    label: &str,
    project: &str,
) -> Result<Vec<String>, TenancyError> {
    scope_match_params_granted(matches, label, project, None)
}

/// [`scope_match_params`], confined to `grants`: with no `match[]`, the one
/// added is `{<label>="<project>"}` confined like any other selector.
pub fn scope_match_params_granted(
    matches: &[String],
    label: &str,
    project: &str,
    grants: Option<&Grants>,
) -> Result<Vec<String>, TenancyError> {
    if matches.is_empty() {
        let only = |grants: Option<&Grants>| {
            let mut scope = Scope::new(label, project)?;
            scope.grants = grants;
            let mut only = Expr::VectorSelector(VectorSelector::new(
                None,
                Matchers::new(vec![scope.matcher()]),
            ));
            let mut regexes = Vec::new();
            let selectors = enforce::enforce(&mut only, &scope, &mut regexes)?;
            finish(only, &scope, selectors, &regexes).map(|s| s.text)
        };
        return match (only(grants), grants) {
            (Err(TenancyError::NotConfinable(_)), Some(g)) => {
                g.each().map(|one| only(Some(&one))).collect()
            }
            (r, _) => r.map(|s| vec![s]),
        };
    }
    matches
        .iter()
        .map(|m| scope_selector_granted(m, label, project, grants))
        .collect()
}

/// Like [`scope_match_params_granted`], but a selector the rules allow only
/// in parts becomes one selector per rule selector (their union, which a
/// `match[]` list, or an `or`, expresses).
pub fn scope_match_list_granted(
    matches: &[String],
    label: &str,
    project: &str,
    grants: Option<&Grants>,
) -> Result<Vec<String>, TenancyError> {
    if matches.is_empty() {
        return scope_match_params_granted(matches, label, project, grants);
    }
    let mut out = Vec::with_capacity(matches.len());
    for m in matches {
        match (scope_selector_granted(m, label, project, grants), grants) {
            (Err(TenancyError::NotConfinable(_)), Some(g)) => {
                for one in g.each() {
                    out.push(scope_selector_granted(m, label, project, Some(&one))?);
                }
            }
            (r, _) => out.push(r?),
        }
    }
    Ok(out)
}

/// Whether every selector of `query` (a rule's expression, say) reads only
/// series `grants` allow as they are: confining it to the grants changes
/// nothing. A query that is refused, or that the grants would narrow or
/// deny, is not within them. For filtering answers that quote PromQL.
pub fn within_grants(query: &str, grants: &Grants) -> bool {
    // Any valid label and project: only the difference matters.
    let plain = scope_query_granted(query, "project", "p", None);
    let granted = scope_query_granted(query, "project", "p", Some(grants));
    matches!((plain, granted), (Ok(a), Ok(b)) if a == b)
}

/// Bound the input lexically, then parse it; return the tree (whose regex
/// matchers hold placeholders) and the regex values (see `prescan`).
///
/// The parser is wrapped in `catch_unwind` as a backstop: the pre-scan already
/// refuses the inputs known to make `promql-parser` 0.11 panic (a numeric
/// duration such as `x[1e30]` or `offset Inf`), but a parser panic must never
/// take a request thread down with it.
fn parse_checked(text: &str) -> Result<(Expr, Vec<String>), TenancyError> {
    let p = prescan::prescan(text)?;
    Ok((parse_guarded(&p.text)?, p.regexes))
}

/// `promql_parser::parser::parse` with panics turned into refusals.
pub(crate) fn parse_guarded(text: &str) -> Result<Expr, TenancyError> {
    match std::panic::catch_unwind(|| promql_parser::parser::parse(text)) {
        Ok(Ok(expr)) => Ok(expr),
        Ok(Err(msg)) => Err(TenancyError::Parse(msg)),
        Err(_) => Err(TenancyError::Parse(
            "the PromQL parser could not handle this input".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Largest `k` for which `shape(k)` is accepted (the shapes grow by one
    /// tree level per step).
    fn largest_accepted(shape: &dyn Fn(usize) -> String) -> usize {
        let mut k = 1;
        while k <= 4 * MAX_NESTING && scope_query(&shape(k + 1), "project", "p").is_ok() {
            k += 1;
        }
        k
    }

    fn worst_shapes() -> Vec<String> {
        let shapes: Vec<Box<dyn Fn(usize) -> String>> = vec![
            Box::new(|k| vec!["a"; k + 1].join(" + ")),
            Box::new(|k| vec!["a"; k + 1].join(" ^ ")),
            Box::new(|k| format!("{}a{}", "(".repeat(k), ")".repeat(k))),
            Box::new(|k| format!("{}a{}", "abs(".repeat(k), ")".repeat(k))),
            Box::new(|k| format!("{}a{}", "sum(".repeat(k), ")".repeat(k))),
            Box::new(|k| format!("{}a", "-".repeat(k))),
            Box::new(|k| format!("{}a{}", "-(".repeat(k), ")".repeat(k))),
            Box::new(|k| format!("{}a{}", "max_over_time(".repeat(k), "[1m:])".repeat(k))),
        ];
        shapes
            .iter()
            .map(|shape| shape(largest_accepted(shape.as_ref())))
            .collect()
    }

    #[test]
    fn deepest_accepted_queries_fit_in_a_quarter_of_a_worker_thread_stack() {
        // Worker threads get 2 MiB; prove the worst accepted shapes need less
        // than 1 MiB even in an unoptimised build (release needs < 64 KiB).
        for q in worst_shapes() {
            let handle = std::thread::Builder::new()
                .stack_size(1024 * 1024)
                .spawn(move || scope_query(&q, "project", "p").map(|_| ()))
                .expect("spawn");
            assert_eq!(handle.join().expect("no panic"), Ok(()));
        }
    }

    #[test]
    fn fifty_thousand_nested_parentheses_are_refused_before_parsing() {
        let q = format!("{}1{}", "(".repeat(50_000), ")".repeat(50_000));
        let handle = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || scope_query(&q, "project", "p"))
            .expect("spawn");
        assert_eq!(
            handle.join().expect("no panic"),
            Err(TenancyError::TooDeep { max: MAX_NESTING })
        );
    }

    #[test]
    fn long_flat_chains_are_refused_before_parsing() {
        let q = vec!["a"; 20_000].join(" + ");
        assert_eq!(
            scope_query(&q, "project", "p"),
            Err(TenancyError::TooDeep { max: MAX_NESTING })
        );
    }

    #[test]
    fn regexes_are_carried_not_compiled() {
        // Invalid for Rust's and Go's regex engines alike: the backend
        // refuses it with bad_data, as it would without aetos.
        assert_eq!(
            scope_query("x{a=~\"[\"}", "project", "p").unwrap(),
            "x{a=~\"[\",project=\"p\"}"
        );
        // A few dozen matchers that the parser would compile into hundreds
        // of MiB of Unicode automata: here they are only carried, so the
        // cost is that of any other 3 KiB of text.
        let heavy = (0..120)
            .map(|i| format!("l{i}=~\"\\\\w{{0,99}}\\\\p{{L}}{{1,40}}\""))
            .collect::<Vec<_>>()
            .join(",");
        let q = format!("sum(rate(x{{{heavy}}}[5m]))");
        let out = scope_query_counted(&q, "project", "p").unwrap();
        assert_eq!(out.selectors, 1);
        assert!(out.text.contains("l119=~\"\\\\w{0,99}\\\\p{L}{1,40}\""));
        assert_eq!(out.text.matches("=~").count(), 120);
    }

    #[test]
    fn oversized_input_is_refused() {
        let q = format!("x{{a=\"{}\"}}", "a".repeat(MAX_QUERY_BYTES));
        assert!(matches!(
            scope_query(&q, "project", "p"),
            Err(TenancyError::TooLong { .. })
        ));
    }

    #[test]
    fn label_and_project_are_validated() {
        assert!(validate_label_name("project").is_ok());
        assert!(validate_label_name("project_id").is_ok());
        for bad in ["", "__name__", "__tenant"] {
            assert_eq!(
                validate_label_name(bad),
                Err(TenancyError::InvalidLabelName(bad.to_owned()))
            );
        }
        assert_eq!(
            scope_query("up", "project", ""),
            Err(TenancyError::InvalidProject)
        );
        assert_eq!(
            scope_match_params(&[], "project", ""),
            Err(TenancyError::InvalidProject)
        );
    }
}
