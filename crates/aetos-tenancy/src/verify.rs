//! The proofs run on every rewrite before its text is returned.
//!
//! `promql-parser`'s printer is not a faithful inverse of its parser in every
//! corner (a negative `@` prints as `@ 0.000`, `or` matcher groups lose the
//! plain matchers next to them). Known corners are refused by the walker;
//! the proofs make sure an unknown one cannot leak data:
//!
//! 1. The text proof (always, ~1 µs): the exact text sent to Prometheus is
//!    scanned with a small reader written independently of the printer.
//!    Every `{…}` matcher group must be a plain comma-separated list (no
//!    `or`), must contain `<label>="<project>"` once its escapes are decoded,
//!    and there must be exactly one group per selector of the scoped tree.
//!    In PromQL only selectors have `{…}` groups, so every selector Prometheus
//!    reads carries the matcher.
//! 2. The re-parse proof (debug builds, hence every test, property test and
//!    fuzz run): the text is parsed again and must be the same tree, up to
//!    the normalisations the printer performs without changing meaning
//!    (matcher order; an empty `ignoring()` or `by ()`; duration spelling;
//!    comments and whitespace). Release builds skip it: it doubles the cost
//!    of a rewrite (a second parse), and the test suites run it on every
//!    case they generate.

use promql_parser::label::{Matcher, Matchers};
use promql_parser::parser::{
    AggregateExpr, BinModifier, BinaryExpr, Call, Expr, LabelModifier, MatrixSelector,
    NumberLiteral, ParenExpr, StringLiteral, SubqueryExpr, UnaryExpr, VectorSelector,
};

use super::{parse_guarded, Scope, TenancyError};

/// Print `scoped` (holding `selectors` selectors), prove the text; return it.
pub(crate) fn print_and_prove(
    scoped: Expr,
    scope: &Scope<'_>,
    selectors: usize,
) -> Result<String, TenancyError> {
    let text = scoped.to_string();
    prove_text(&text, scope, selectors)?;
    if cfg!(debug_assertions) {
        prove_reparse(scoped, &text, scope)?;
    }
    Ok(text)
}

fn unfaithful(what: &str) -> TenancyError {
    TenancyError::Unfaithful(what.to_owned())
}

/// The text proof (see the module documentation).
pub(crate) fn prove_text(
    text: &str,
    scope: &Scope<'_>,
    selectors: usize,
) -> Result<(), TenancyError> {
    let b = text.as_bytes();
    let mut groups = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => i = read_string(b, i)?.1,
            b'{' => {
                i = check_group(b, i, scope)?;
                groups += 1;
            }
            // The printer writes only double-quoted strings, no comments.
            b'\'' | b'`' | b'#' | b'}' => {
                return Err(unfaithful("unexpected character in the rewritten query"))
            }
            _ => i += 1,
        }
    }
    if groups != selectors {
        return Err(unfaithful(
            "the rewritten query does not have one matcher list per selector",
        ));
    }
    Ok(())
}

/// Read the double-quoted string starting at `start`; return its decoded
/// value and the index after the closing quote. Only the escapes the printer
/// writes are accepted.
fn read_string(b: &[u8], start: usize) -> Result<(Vec<u8>, usize), TenancyError> {
    let mut value = Vec::new();
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'"' => return Ok((value, i + 1)),
            b'\\' => {
                let decoded = match b.get(i + 1) {
                    Some(b'\\') => b'\\',
                    Some(b'"') => b'"',
                    Some(b'n') => b'\n',
                    Some(b'r') => b'\r',
                    Some(b't') => b'\t',
                    _ => return Err(unfaithful("unexpected escape in the rewritten query")),
                };
                value.push(decoded);
                i += 2;
            }
            b'\n' | b'\r' => return Err(unfaithful("raw line break in a rewritten string")),
            c => {
                value.push(c);
                i += 1;
            }
        }
    }
    Err(unfaithful("unterminated string in the rewritten query"))
}

/// Check the matcher group starting at `start` (a `{`); return the index
/// after its `}`. The group must be `matcher ("," matcher)*` and hold the
/// enforced matcher.
fn check_group(b: &[u8], start: usize, scope: &Scope<'_>) -> Result<usize, TenancyError> {
    let mut found = false;
    let mut i = start + 1;
    loop {
        let (name, after_name) = match b.get(i) {
            Some(b'"') => read_string(b, i)?,
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                let end = (i..b.len())
                    .find(|&j| !(b[j].is_ascii_alphanumeric() || b[j] == b'_'))
                    .unwrap_or(b.len());
                (b[i..end].to_vec(), end)
            }
            _ => return Err(unfaithful("malformed matcher list in the rewritten query")),
        };
        let (op, after_op) = match b.get(after_name..after_name + 2) {
            Some(b"=~") | Some(b"!~") | Some(b"!=") => {
                (&b[after_name..after_name + 2], after_name + 2)
            }
            _ if b.get(after_name) == Some(&b'=') => {
                (&b[after_name..after_name + 1], after_name + 1)
            }
            _ => return Err(unfaithful("malformed matcher in the rewritten query")),
        };
        if b.get(after_op) != Some(&b'"') {
            return Err(unfaithful("malformed matcher value in the rewritten query"));
        }
        let (value, after_value) = read_string(b, after_op)?;
        if op == b"=" && name == scope.label.as_bytes() && value == scope.project.as_bytes() {
            found = true;
        }
        match b.get(after_value) {
            Some(b',') => i = after_value + 1,
            Some(b'}') if found => return Ok(after_value + 1),
            Some(b'}') => {
                return Err(unfaithful(
                    "a selector of the rewritten query lacks the project matcher",
                ))
            }
            _ => return Err(unfaithful("malformed matcher list in the rewritten query")),
        }
    }
}

/// The re-parse proof (see the module documentation).
fn prove_reparse(mut scoped: Expr, text: &str, scope: &Scope<'_>) -> Result<(), TenancyError> {
    let mut reparsed = parse_guarded(text).map_err(|e| {
        TenancyError::Unfaithful(format!("the rewritten query does not parse again ({e})"))
    })?;
    if !all_scoped(&reparsed, scope) {
        return Err(unfaithful(
            "a selector of the rewritten query lacks the project matcher",
        ));
    }
    normalise(&mut scoped);
    normalise(&mut reparsed);
    if scoped != reparsed {
        return Err(unfaithful(
            "printing the rewritten query would change its meaning",
        ));
    }
    Ok(())
}

/// Whether every selector under `expr` carries the enforced matcher and no
/// `or` matcher group (which could widen it). Extension nodes fail.
pub(crate) fn all_scoped(expr: &Expr, scope: &Scope<'_>) -> bool {
    match expr {
        Expr::Aggregate(AggregateExpr {
            op: _,
            expr,
            param,
            modifier: _,
        }) => param.as_ref().is_none_or(|p| all_scoped(p, scope)) && all_scoped(expr, scope),
        Expr::Unary(UnaryExpr { expr }) => all_scoped(expr, scope),
        Expr::Binary(BinaryExpr {
            op: _,
            lhs,
            rhs,
            modifier: _,
        }) => all_scoped(lhs, scope) && all_scoped(rhs, scope),
        Expr::Paren(ParenExpr { expr }) => all_scoped(expr, scope),
        Expr::Subquery(SubqueryExpr {
            expr,
            offset: _,
            at: _,
            range: _,
            step: _,
        }) => all_scoped(expr, scope),
        Expr::NumberLiteral(NumberLiteral { val: _ }) => true,
        Expr::StringLiteral(StringLiteral { val: _ }) => true,
        Expr::VectorSelector(vs) => selector_scoped(vs, scope),
        Expr::MatrixSelector(MatrixSelector { vs, range: _ }) => selector_scoped(vs, scope),
        Expr::Call(Call { func: _, args }) => args.args.iter().all(|a| all_scoped(a, scope)),
        Expr::Extension(_) => false,
    }
}

fn selector_scoped(vs: &VectorSelector, scope: &Scope<'_>) -> bool {
    let VectorSelector {
        name: _,
        matchers: Matchers {
            matchers,
            or_matchers,
        },
        offset: _,
        at: _,
    } = vs;
    or_matchers.is_empty() && matchers.iter().any(|m| scope.is_enforced(m))
}

/// Rewrite `expr` into the canonical form the printer produces.
fn normalise(expr: &mut Expr) {
    match expr {
        Expr::Aggregate(AggregateExpr {
            op: _,
            expr,
            param,
            modifier,
        }) => {
            if matches!(modifier, Some(LabelModifier::Include(l)) if l.is_empty()) {
                *modifier = None;
            }
            if let Some(param) = param {
                normalise(param);
            }
            normalise(expr);
        }
        Expr::Unary(UnaryExpr { expr }) => normalise(expr),
        Expr::Binary(BinaryExpr {
            op: _,
            lhs,
            rhs,
            modifier,
        }) => {
            if let Some(m) = modifier {
                let BinModifier {
                    card: _,
                    matching,
                    return_bool: _,
                    fill_values: _,
                } = m;
                if matches!(matching, Some(LabelModifier::Exclude(l)) if l.is_empty()) {
                    *matching = None;
                }
                if *m == BinModifier::default() {
                    *modifier = None;
                }
            }
            normalise(lhs);
            normalise(rhs);
        }
        Expr::Paren(ParenExpr { expr }) => normalise(expr),
        Expr::Subquery(SubqueryExpr {
            expr,
            offset: _,
            at: _,
            range: _,
            step: _,
        }) => normalise(expr),
        Expr::NumberLiteral(NumberLiteral { val: _ }) => {}
        Expr::StringLiteral(StringLiteral { val: _ }) => {}
        Expr::VectorSelector(vs) => sort_matchers(vs),
        Expr::MatrixSelector(MatrixSelector { vs, range: _ }) => sort_matchers(vs),
        Expr::Call(Call { func: _, args }) => args.args.iter_mut().for_each(|a| normalise(a)),
        Expr::Extension(_) => {}
    }
}

fn sort_matchers(vs: &mut VectorSelector) {
    vs.matchers.matchers.sort_by(|a, b| key(a).cmp(&key(b)));
}

fn key(m: &Matcher) -> (&str, String, &str) {
    (m.name.as_str(), m.op.to_string(), m.value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prove(text: &str, project: &str, selectors: usize) -> Result<(), TenancyError> {
        prove_text(
            text,
            &Scope {
                label: "project",
                project,
                grants: None,
            },
            selectors,
        )
    }

    #[test]
    fn text_proof_accepts_every_list_with_the_matcher() {
        assert!(prove("x{a=\"b\",project=\"p1\"}", "p1", 1).is_ok());
        assert!(prove(
            "sum(x{project=\"p1\"}) + {__name__=~\"y\",project=\"p1\"}[5m]",
            "p1",
            2
        )
        .is_ok());
        assert!(prove("x{project=\"a\\\"b\\\\c\\nd\"}", "a\"b\\c\nd", 1).is_ok());
        assert!(prove("x{\"tenant.id\"=\"p1\",project=\"p1\"}", "p1", 1).is_ok());
        assert!(prove(
            "label_replace(x{project=\"p1\"}, \"d\", \"{}\", \"s\", \"}\")",
            "p1",
            1
        )
        .is_ok());
        assert!(prove("1 + 1", "p1", 0).is_ok());
    }

    #[test]
    fn text_proof_refuses_a_list_without_the_matcher() {
        assert!(prove("x{a=\"b\"}", "p1", 1).is_err());
        assert!(prove("x{project=\"p2\"}", "p1", 1).is_err());
        assert!(prove("x{project!=\"p1\"}", "p1", 1).is_err());
        assert!(prove("x{project=~\"p1\"}", "p1", 1).is_err());
        assert!(prove("x{project=\"p1\"} + y{a=\"b\"}", "p1", 2).is_err());
    }

    #[test]
    fn text_proof_refuses_or_groups_and_unknown_syntax() {
        assert!(prove("x{project=\"p1\" or a=\"b\"}", "p1", 1).is_err());
        assert!(prove("x{a=\"b\" or project=\"p1\", c=\"d\"}", "p1", 1).is_err());
        assert!(prove("x{project='p1'}", "p1", 1).is_err());
        assert!(prove("x{project=\"\\x70\\x31\"}", "p1", 1).is_err());
        assert!(prove("x{project=\"p1\"} # }", "p1", 1).is_err());
        assert!(prove("x{project=\"p1\"", "p1", 1).is_err());
    }

    #[test]
    fn text_proof_refuses_a_selector_count_mismatch() {
        assert!(prove("x{project=\"p1\"}", "p1", 2).is_err());
        assert!(prove("x{project=\"p1\"} + y{project=\"p1\"}", "p1", 1).is_err());
    }
}
