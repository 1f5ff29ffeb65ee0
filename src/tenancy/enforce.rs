//! The exhaustive walker that adds the project matcher to every selector.
//!
//! Every `Expr` variant and every field of every node is named explicitly
//! (no `_` arm, no `..` in patterns), so that a new variant or a new field in
//! a future `promql-parser` is a compile error here instead of a silent hole.
//! `promql_parser::util::walk_expr_mut` is deliberately not used: it skips
//! `AggregateExpr::param` (the `scalar(count(secret))` in
//! `topk(scalar(count(secret)), x)`).
//!
//! Besides enforcing, the walker refuses what cannot be scoped or printed
//! faithfully: `or` matcher groups (printed without the plain matchers next
//! to them), negative or out-of-range `@` timestamps (printed as `@ 0.000`),
//! `info()` (reads `target_info` through a selector that is not in the tree),
//! extension nodes, functions and operators not on the allow-lists below,
//! and strings containing U+FFFD (Prometheus' lexer reads that character as
//! invalid UTF-8 and rejects the query).

use std::time::{Duration, SystemTime};

use promql_parser::label::{Labels, Matcher, Matchers};
use promql_parser::parser::token::{
    TokenType, T_ADD, T_ATAN2, T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_DIV, T_EQLC, T_GROUP,
    T_GTE, T_GTR, T_LAND, T_LIMITK, T_LIMIT_RATIO, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MAX, T_MIN,
    T_MOD, T_MUL, T_NEQ, T_POW, T_QUANTILE, T_STDDEV, T_STDVAR, T_SUB, T_SUM, T_TOPK,
};
use promql_parser::parser::{
    AggregateExpr, AtModifier, BinModifier, BinaryExpr, Call, Expr, LabelModifier, MatrixSelector,
    NumberLiteral, ParenExpr, StringLiteral, SubqueryExpr, UnaryExpr, VectorMatchCardinality,
    VectorSelector,
};

use super::{Scope, TenancyError};

/// Latest `@` timestamp accepted, in milliseconds since the epoch: 2^53, the
/// largest count of milliseconds that the printer's `{:.3}` rendering of an
/// `f64` number of seconds still represents exactly (about year 287,000).
const MAX_AT_MILLIS: u128 = 1 << 53;

/// Functions that read data only through their arguments, i.e. whose every
/// selector is in the tree. Anything else (Prometheus 3's `info()`, functions
/// registered through `promql_parser::parser::register_extra_functions`,
/// functions added by a future parser version) is refused until reviewed.
const ALLOWED_FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "deg",
    "delta",
    "deriv",
    "double_exponential_smoothing",
    "end",
    "exp",
    "first_over_time",
    "floor",
    "histogram_avg",
    "histogram_count",
    "histogram_fraction",
    "histogram_quantile",
    "histogram_quantiles",
    "histogram_stddev",
    "histogram_stdvar",
    "histogram_sum",
    "hour",
    "idelta",
    "increase",
    "integral",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "mad_over_time",
    "max_of",
    "max_over_time",
    "min_of",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "range",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_by_label",
    "sort_by_label_desc",
    "sort_desc",
    "sqrt",
    "start",
    "start_timestamp",
    "stddev_over_time",
    "stdvar_over_time",
    "step",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "ts_of_first_over_time",
    "ts_of_last_over_time",
    "ts_of_max_over_time",
    "ts_of_min_over_time",
    "vector",
    "year",
];

/// Aggregation operators: all read data only through their operands.
const ALLOWED_AGGREGATORS: &[u16] = &[
    T_AVG,
    T_BOTTOMK,
    T_COUNT,
    T_COUNT_VALUES,
    T_GROUP,
    T_LIMITK,
    T_LIMIT_RATIO,
    T_MAX,
    T_MIN,
    T_QUANTILE,
    T_STDDEV,
    T_STDVAR,
    T_SUM,
    T_TOPK,
];

/// Binary operators: arithmetic, comparison, set and `atan2`.
const ALLOWED_BINARY_OPS: &[u16] = &[
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD,
    T_MUL, T_NEQ, T_POW, T_SUB,
];

/// Add the project matcher to every selector under `expr`, refusing what
/// cannot be scoped or printed faithfully.
pub(crate) fn enforce(expr: &mut Expr, scope: &Scope<'_>) -> Result<(), TenancyError> {
    match expr {
        Expr::Aggregate(AggregateExpr {
            op,
            expr,
            param,
            modifier,
        }) => {
            check_op(*op, ALLOWED_AGGREGATORS, "aggregation")?;
            if let Some(modifier) = modifier {
                check_labels(label_modifier_labels(modifier))?;
            }
            if let Some(param) = param {
                enforce(param, scope)?;
            }
            enforce(expr, scope)
        }
        Expr::Unary(UnaryExpr { expr }) => enforce(expr, scope),
        Expr::Binary(BinaryExpr {
            op,
            lhs,
            rhs,
            modifier,
        }) => {
            check_op(*op, ALLOWED_BINARY_OPS, "binary operator")?;
            if let Some(modifier) = modifier {
                check_bin_modifier(modifier)?;
            }
            enforce(lhs, scope)?;
            enforce(rhs, scope)
        }
        Expr::Paren(ParenExpr { expr }) => enforce(expr, scope),
        Expr::Subquery(SubqueryExpr {
            expr,
            offset: _,
            at,
            range: _,
            step: _,
        }) => {
            check_at(at.as_ref())?;
            enforce(expr, scope)
        }
        Expr::NumberLiteral(NumberLiteral { val: _ }) => Ok(()),
        Expr::StringLiteral(StringLiteral { val }) => check_text(val),
        Expr::VectorSelector(vs) => scope_vector_selector(vs, scope),
        Expr::MatrixSelector(MatrixSelector { vs, range: _ }) => scope_vector_selector(vs, scope),
        Expr::Call(Call { func, args }) => {
            if func.name == "info" {
                return Err(TenancyError::Unsupported(
                    "info() reads target_info through a selector outside the query".to_owned(),
                ));
            }
            if !ALLOWED_FUNCTIONS.contains(&func.name) {
                return Err(TenancyError::Unsupported(format!(
                    "function {}() is not known to read data only through its arguments",
                    func.name
                )));
            }
            for arg in args.args.iter_mut() {
                enforce(arg, scope)?;
            }
            Ok(())
        }
        Expr::Extension(_) => Err(TenancyError::Unsupported(
            "extension nodes cannot be scoped".to_owned(),
        )),
    }
}

/// Add the project matcher to one selector (ANDed with the caller's own
/// matchers; an exact copy of it is not repeated).
fn scope_vector_selector(vs: &mut VectorSelector, scope: &Scope<'_>) -> Result<(), TenancyError> {
    let VectorSelector {
        name,
        matchers: Matchers {
            matchers,
            or_matchers,
        },
        offset: _,
        at,
    } = vs;
    if !or_matchers.is_empty() {
        return Err(TenancyError::Unsupported(
            "`or` inside a label matcher list is not standard PromQL".to_owned(),
        ));
    }
    check_at(at.as_ref())?;
    if let Some(name) = name {
        check_text(name)?;
    }
    for Matcher { op: _, name, value } in matchers.iter() {
        check_text(name)?;
        check_text(value)?;
    }
    if !matchers.iter().any(|m| scope.is_enforced(m)) {
        matchers.push(scope.matcher());
    }
    Ok(())
}

/// Refuse an operator that is not on `allowed`.
fn check_op(op: TokenType, allowed: &[u16], what: &str) -> Result<(), TenancyError> {
    if allowed.contains(&op.id()) {
        Ok(())
    } else {
        Err(TenancyError::Unsupported(format!("unknown {what} {op}")))
    }
}

/// Refuse an `@` timestamp that the printer cannot write back exactly.
fn check_at(at: Option<&AtModifier>) -> Result<(), TenancyError> {
    match at {
        None | Some(AtModifier::Start) | Some(AtModifier::End) => Ok(()),
        Some(AtModifier::At(t)) => match t.duration_since(SystemTime::UNIX_EPOCH) {
            Err(_) => Err(TenancyError::Unsupported(
                "negative @ timestamps (before 1970) are not supported".to_owned(),
            )),
            Ok(d) if d.as_millis() > MAX_AT_MILLIS || d.subsec_nanos() % 1_000_000 != 0 => {
                Err(TenancyError::Unsupported(format!(
                    "@ timestamp out of the supported range (0 to {} s, millisecond precision)",
                    Duration::from_millis(MAX_AT_MILLIS as u64).as_secs()
                )))
            }
            Ok(_) => Ok(()),
        },
    }
}

/// Check the label lists of a binary operator's matching modifiers.
fn check_bin_modifier(modifier: &BinModifier) -> Result<(), TenancyError> {
    let BinModifier {
        card,
        matching,
        return_bool: _,
        fill_values: _,
    } = modifier;
    match card {
        VectorMatchCardinality::OneToOne | VectorMatchCardinality::ManyToMany => {}
        VectorMatchCardinality::ManyToOne(labels) | VectorMatchCardinality::OneToMany(labels) => {
            check_labels(labels)?;
        }
    }
    if let Some(matching) = matching {
        check_labels(label_modifier_labels(matching))?;
    }
    Ok(())
}

fn label_modifier_labels(modifier: &LabelModifier) -> &Labels {
    match modifier {
        LabelModifier::Include(labels) | LabelModifier::Exclude(labels) => labels,
    }
}

fn check_labels(labels: &Labels) -> Result<(), TenancyError> {
    labels.labels.iter().try_for_each(|l| check_text(l))
}

/// Refuse text Prometheus would read differently from `promql-parser`.
fn check_text(s: &str) -> Result<(), TenancyError> {
    if s.contains('\u{FFFD}') {
        return Err(TenancyError::Unsupported(
            "U+FFFD in a string or name (Prometheus reads it as invalid UTF-8)".to_owned(),
        ));
    }
    Ok(())
}
