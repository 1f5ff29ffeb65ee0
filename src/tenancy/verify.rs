//! The proof step: print the scoped tree, parse the text again, and accept
//! it only if it is the same tree and every selector carries the matcher.
//!
//! `promql-parser`'s printer is not a faithful inverse of its parser in every
//! corner (a negative `@` prints as `@ 0.000`, `or` matcher groups lose the
//! plain matchers next to them, `fill(NaN)` is not equal to itself). Instead
//! of trusting it, every answer is checked. The comparison ignores exactly
//! the normalisations the printer performs and that do not change meaning:
//! - matchers are printed sorted;
//! - `ignoring()` with an empty list is not printed (it is the default
//!   matching), nor is `by ()` on an aggregation (it is no grouping);
//! - durations are printed in canonical units (compared as `Duration`s);
//! - comments and whitespace are dropped (not part of the tree).

use promql_parser::label::{Matcher, Matchers};
use promql_parser::parser::{
    AggregateExpr, BinModifier, BinaryExpr, Call, Expr, LabelModifier, MatrixSelector,
    NumberLiteral, ParenExpr, StringLiteral, SubqueryExpr, UnaryExpr, VectorSelector,
};

use super::{parse_guarded, Scope, TenancyError};

/// Print `scoped`, re-parse the text and prove it; return the text.
pub(crate) fn print_and_prove(mut scoped: Expr, scope: &Scope<'_>) -> Result<String, TenancyError> {
    let text = scoped.to_string();
    let mut reparsed = parse_guarded(&text).map_err(|e| {
        TenancyError::Unfaithful(format!("the rewritten query does not parse again ({e})"))
    })?;
    if !all_scoped(&reparsed, scope) {
        return Err(TenancyError::Unfaithful(
            "a selector of the rewritten query lacks the project matcher".to_owned(),
        ));
    }
    normalise(&mut scoped);
    normalise(&mut reparsed);
    if scoped != reparsed {
        return Err(TenancyError::Unfaithful(
            "printing the rewritten query would change its meaning".to_owned(),
        ));
    }
    Ok(text)
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
