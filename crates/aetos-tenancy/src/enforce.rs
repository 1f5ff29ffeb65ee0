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

use promql_parser::label::{Labels, MatchOp, Matcher, Matchers};
use promql_parser::parser::token::{
    TokenType, T_ADD, T_ATAN2, T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_DIV, T_EQLC, T_GROUP,
    T_GTE, T_GTR, T_LAND, T_LIMITK, T_LIMIT_RATIO, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MAX, T_MIN,
    T_MOD, T_MUL, T_NEQ, T_POW, T_QUANTILE, T_STDDEV, T_STDVAR, T_SUB, T_SUM, T_TOPK,
};
use promql_parser::parser::{
    AggregateExpr, AtModifier, BinModifier, BinaryExpr, Call, Expr, LabelModifier, MatrixSelector,
    NumberLiteral, Offset, ParenExpr, StringLiteral, SubqueryExpr, UnaryExpr,
    VectorMatchCardinality, VectorMatchFillValues, VectorSelector,
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
/// cannot be scoped or printed faithfully. Returns the number of selectors
/// (vector and matrix) scoped, which the text proof checks the printed query
/// against.
pub(crate) fn enforce(
    expr: &mut Expr,
    scope: &Scope<'_>,
    regexes: &mut Vec<String>,
) -> Result<usize, TenancyError> {
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
            let in_param = match param {
                Some(param) => enforce(param, scope, regexes)?,
                None => 0,
            };
            Ok(in_param + enforce(expr, scope, regexes)?)
        }
        Expr::Unary(UnaryExpr { expr }) => enforce(expr, scope, regexes),
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
            Ok(enforce(lhs, scope, regexes)? + enforce(rhs, scope, regexes)?)
        }
        Expr::Paren(ParenExpr { expr }) => enforce(expr, scope, regexes),
        Expr::Subquery(SubqueryExpr {
            expr,
            offset,
            at,
            range,
            step,
        }) => {
            check_at(at.as_ref())?;
            check_offset(offset.as_ref())?;
            check_duration(range)?;
            if let Some(step) = step {
                check_duration(step)?;
            }
            enforce(expr, scope, regexes)
        }
        Expr::NumberLiteral(NumberLiteral { val: _ }) => Ok(0),
        Expr::StringLiteral(StringLiteral { val }) => check_text(val).map(|()| 0),
        Expr::VectorSelector(vs) => scope_vector_selector(vs, scope, regexes),
        Expr::MatrixSelector(MatrixSelector { vs, range }) => {
            check_duration(range)?;
            scope_vector_selector(vs, scope, regexes)
        }
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
            let mut n = 0;
            for arg in args.args.iter_mut() {
                n += enforce(arg, scope, regexes)?;
            }
            Ok(n)
        }
        Expr::Extension(_) => Err(TenancyError::Unsupported(
            "extension nodes cannot be scoped".to_owned(),
        )),
    }
}

/// Add the project matcher to one selector (ANDed with the caller's own
/// matchers; an exact copy of it is not repeated).
fn scope_vector_selector(
    vs: &mut VectorSelector,
    scope: &Scope<'_>,
    regexes: &mut Vec<String>,
) -> Result<usize, TenancyError> {
    let VectorSelector {
        name,
        matchers: Matchers {
            matchers,
            or_matchers,
        },
        offset,
        at,
    } = vs;
    if !or_matchers.is_empty() {
        return Err(TenancyError::Unsupported(
            "`or` inside a label matcher list is not standard PromQL".to_owned(),
        ));
    }
    check_at(at.as_ref())?;
    check_offset(offset.as_ref())?;
    if let Some(name) = name {
        check_text(name)?;
    }
    for Matcher { op: _, name, value } in matchers.iter() {
        check_text(name)?;
        check_text(value)?;
    }
    if name.is_none() && matchers.iter().all(|m| matches_empty(m, regexes)) {
        // What Prometheus (and the parser, had it seen the real regexes)
        // refuses: without it `{job=~".*"}` would select every series.
        return Err(TenancyError::Parse(
            "vector selector must contain at least one non-empty matcher".to_owned(),
        ));
    }
    if let Some(grants) = scope.grants {
        // The metric access rules, in the same pass: the selector is
        // confined to what the caller may read (or made to match nothing).
        super::rules::confine(name.as_deref(), matchers, grants, regexes)?;
    }
    if !matchers.iter().any(|m| scope.is_enforced(m)) {
        matchers.push(scope.matcher());
    }
    Ok(1)
}

/// Whether `m` matches a series without that label (the empty value), as
/// far as can be told without compiling a regex: the regex value (behind its
/// placeholder, see `prescan`) is only parsed into its syntax tree, which is
/// linear in its length. When that cannot tell (look-around assertions,
/// syntax Rust's parser does not share with Go's), the matcher counts as
/// non-empty and Prometheus decides.
fn matches_empty(m: &Matcher, regexes: &[String]) -> bool {
    let regex_matches_empty = |pattern: &str| {
        let hir = regex_syntax::ParserBuilder::new()
            .nest_limit(64)
            .build()
            .parse(pattern)
            .ok()?;
        let props = hir.properties();
        if !props.look_set().is_empty() {
            return None;
        }
        Some(props.minimum_len() == Some(0))
    };
    let regex = super::prescan::placeholder(&m.value)
        .and_then(|(n, negated)| regexes.get(n).map(|p| (p, negated)));
    match (&m.op, regex) {
        (MatchOp::Equal, Some((pattern, false))) => regex_matches_empty(pattern).unwrap_or(false),
        (MatchOp::Equal, Some((pattern, true))) => regex_matches_empty(pattern) == Some(false),
        (MatchOp::Equal, None) => m.value.is_empty(),
        (MatchOp::NotEqual, _) => !m.value.is_empty(),
        // Only the parser's own regexes, which the pre-scan never lets
        // through; they would have been compiled already.
        (MatchOp::Re(r), _) => r.is_match(""),
        (MatchOp::NotRe(r), _) => !r.is_match(""),
    }
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
            Ok(d)
                if d.as_millis() > MAX_AT_MILLIS || !d.subsec_nanos().is_multiple_of(1_000_000) =>
            {
                Err(TenancyError::Unsupported(format!(
                    "@ timestamp out of the supported range (0 to {} s, millisecond precision)",
                    Duration::from_millis(MAX_AT_MILLIS as u64).as_secs()
                )))
            }
            Ok(_) => Ok(()),
        },
    }
}

/// Longest duration accepted: 2^32-1 days (about 11.7 million years). The
/// printer writes durations as `<y|w>…d…h…m…s…ms` and the parser silently
/// reads any component above 2^32-1 as zero, so `[999999999y999m]` would be
/// printed as `[364999999635d16h39m]` and read back as `[16h39m]`. The
/// bound also keeps every duration within Prometheus' own range.
const MAX_DURATION_SECS: u64 = (u32::MAX as u64) * 86_400;

/// Refuse a duration the printer cannot write back: it prints whole
/// milliseconds only (`[1.0005]` would become `[1s]`), `0s` does not parse
/// again, and see [`MAX_DURATION_SECS`].
fn check_duration(d: &Duration) -> Result<(), TenancyError> {
    if d.is_zero() || !d.subsec_nanos().is_multiple_of(1_000_000) {
        return Err(TenancyError::Unsupported(
            "durations must be a positive whole number of milliseconds".to_owned(),
        ));
    }
    if d.as_secs() > MAX_DURATION_SECS {
        return Err(TenancyError::Unsupported(
            "duration out of the supported range (at most 4294967295 days)".to_owned(),
        ));
    }
    Ok(())
}

fn check_offset(offset: Option<&Offset>) -> Result<(), TenancyError> {
    match offset {
        None => Ok(()),
        Some(Offset::Pos(d)) | Some(Offset::Neg(d)) => check_duration(d),
    }
}

/// Check a binary operator's matching modifiers.
fn check_bin_modifier(modifier: &BinModifier) -> Result<(), TenancyError> {
    let BinModifier {
        card,
        matching,
        return_bool: _,
        fill_values: VectorMatchFillValues { rhs, lhs },
    } = modifier;
    if rhs.is_some_and(f64::is_nan) || lhs.is_some_and(f64::is_nan) {
        return Err(TenancyError::Unsupported(
            "fill(NaN) is not supported".to_owned(),
        ));
    }
    match card {
        VectorMatchCardinality::OneToOne | VectorMatchCardinality::ManyToMany => {}
        VectorMatchCardinality::ManyToOne(labels) | VectorMatchCardinality::OneToMany(labels) => {
            // The printer drops an empty `ignoring ()`, which is harmless
            // alone but leaves `group_left`/`group_right` without it.
            if matches!(matching, Some(LabelModifier::Exclude(l)) if l.is_empty()) {
                return Err(TenancyError::Unsupported(
                    "ignoring () with group_left/group_right: name a label to ignore, or use on (...)"
                        .to_owned(),
                ));
            }
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
pub(crate) fn check_text(s: &str) -> Result<(), TenancyError> {
    if s.contains('\u{FFFD}') {
        return Err(TenancyError::Unsupported(
            "U+FFFD in a string or name (Prometheus reads it as invalid UTF-8)".to_owned(),
        ));
    }
    Ok(())
}
