//! Independent oracle for the tenancy invariant.
//!
//! Shared by the spec table, the property tests and the fuzz target. It
//! deliberately re-implements what it checks instead of calling
//! `aetos_tenancy` at all (this module uses only `promql-parser`): the walk
//! is iterative with an explicit stack (not the library's recursion), and the
//! expected tree is built from the *input* independently of the library's
//! rewrite. If both agree, two separately written walkers agree.

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{self, BinModifier, Expr, LabelModifier, VectorSelector};

/// Every expression node under `root`, parents before children, including
/// `AggregateExpr::param` (which `promql_parser::util::walk_expr` skips).
pub fn nodes(root: &Expr) -> Vec<&Expr> {
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(e) = stack.pop() {
        out.push(e);
        match e {
            Expr::Aggregate(a) => {
                stack.push(&a.expr);
                if let Some(p) = &a.param {
                    stack.push(p);
                }
            }
            Expr::Unary(u) => stack.push(&u.expr),
            Expr::Binary(b) => {
                stack.push(&b.lhs);
                stack.push(&b.rhs);
            }
            Expr::Paren(p) => stack.push(&p.expr),
            Expr::Subquery(s) => stack.push(&s.expr),
            Expr::Call(c) => stack.extend(c.args.args.iter().map(|a| a.as_ref())),
            Expr::NumberLiteral(_)
            | Expr::StringLiteral(_)
            | Expr::VectorSelector(_)
            | Expr::MatrixSelector(_)
            | Expr::Extension(_) => {}
        }
    }
    out
}

/// Every vector selector (including the one inside each matrix selector).
pub fn selectors(root: &Expr) -> Vec<&VectorSelector> {
    nodes(root)
        .into_iter()
        .filter_map(|e| match e {
            Expr::VectorSelector(vs) => Some(vs),
            Expr::MatrixSelector(ms) => Some(&ms.vs),
            _ => None,
        })
        .collect()
}

fn is_enforced(m: &Matcher, label: &str, project: &str) -> bool {
    m.op == MatchOp::Equal && m.name == label && m.value == project
}

/// Parse `output` and check the security invariant: every selector carries
/// `label="project"` as a plain (ANDed) matcher, with no `or` group that
/// could widen it, and the tree holds no extension node. Returns the number
/// of selectors checked.
pub fn check_scoped(output: &str, label: &str, project: &str) -> Result<usize, String> {
    let tree =
        parser::parse(output).map_err(|e| format!("output does not parse: {e}: {output}"))?;
    if nodes(&tree).iter().any(|e| matches!(e, Expr::Extension(_))) {
        return Err(format!("extension node in output: {output}"));
    }
    let sels = selectors(&tree);
    for vs in &sels {
        if !vs.matchers.or_matchers.is_empty() {
            return Err(format!("or matcher group in output: {output}"));
        }
        if !vs
            .matchers
            .matchers
            .iter()
            .any(|m| is_enforced(m, label, project))
        {
            return Err(format!(
                "selector without {label}={project:?}: {vs} in {output}"
            ));
        }
    }
    Ok(sels.len())
}

/// Apply `f` to every node of `root`, iteratively.
fn for_each_mut(root: &mut Expr, f: &mut dyn FnMut(&mut Expr)) {
    let mut stack: Vec<&mut Expr> = vec![root];
    while let Some(e) = stack.pop() {
        f(e);
        match e {
            Expr::Aggregate(a) => {
                stack.push(&mut a.expr);
                if let Some(p) = &mut a.param {
                    stack.push(p);
                }
            }
            Expr::Unary(u) => stack.push(&mut u.expr),
            Expr::Binary(b) => {
                stack.push(&mut b.lhs);
                stack.push(&mut b.rhs);
            }
            Expr::Paren(p) => stack.push(&mut p.expr),
            Expr::Subquery(s) => stack.push(&mut s.expr),
            Expr::Call(c) => stack.extend(c.args.args.iter_mut().map(|a| a.as_mut())),
            Expr::NumberLiteral(_)
            | Expr::StringLiteral(_)
            | Expr::VectorSelector(_)
            | Expr::MatrixSelector(_)
            | Expr::Extension(_) => {}
        }
    }
}

/// Canonical form: what the printer normalises away without changing the
/// meaning (matcher order, empty `ignoring()`, empty `by ()`).
fn canonical(mut e: Expr) -> Expr {
    for_each_mut(&mut e, &mut |node| match node {
        Expr::VectorSelector(vs) => sort(vs),
        Expr::MatrixSelector(ms) => sort(&mut ms.vs),
        Expr::Aggregate(a) => {
            if matches!(&a.modifier, Some(LabelModifier::Include(l)) if l.is_empty()) {
                a.modifier = None;
            }
        }
        Expr::Binary(b) => {
            if let Some(m) = &mut b.modifier {
                if matches!(&m.matching, Some(LabelModifier::Exclude(l)) if l.is_empty()) {
                    m.matching = None;
                }
                if *m == BinModifier::default() {
                    b.modifier = None;
                }
            }
        }
        _ => {}
    });
    e
}

fn sort(vs: &mut VectorSelector) {
    vs.matchers
        .matchers
        .sort_by_key(|m| (m.name.clone(), m.op.to_string(), m.value.clone()));
}

/// The tree the output must have: the input's tree with `label="project"`
/// added to every selector (unless that exact matcher is already there).
pub fn expected_tree(input: &Expr, label: &str, project: &str) -> Expr {
    let mut e = input.clone();
    for_each_mut(&mut e, &mut |node| {
        let vs = match node {
            Expr::VectorSelector(vs) => vs,
            Expr::MatrixSelector(ms) => &mut ms.vs,
            _ => return,
        };
        if !vs
            .matchers
            .matchers
            .iter()
            .any(|m| is_enforced(m, label, project))
        {
            vs.matchers
                .matchers
                .push(Matcher::new(MatchOp::Equal, label, project));
        }
    });
    e
}

/// Prometheus reads backtick strings raw (no escapes); `promql-parser` 0.11
/// does not, so rewrite each as a double-quoted string with the same value
/// before parsing the input here.
fn requote_raw(input: &str) -> String {
    let mut out = String::new();
    let mut chars = input.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                out.push(c);
                while let Some(d) = chars.next() {
                    out.push(d);
                    if d == '\\' {
                        out.extend(chars.next());
                    } else if d == c {
                        break;
                    }
                }
            }
            '#' => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' || d == '\r' {
                        break;
                    }
                }
            }
            '`' => {
                out.push('"');
                for d in chars.by_ref().take_while(|&d| d != '`') {
                    match d {
                        '\\' => out.push_str("\\\\"),
                        '"' => out.push_str("\\\""),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        d => out.push(d),
                    }
                }
                out.push('"');
            }
            c => out.push(c),
        }
    }
    out
}

/// Parse `input` as Prometheus reads it: backtick strings are raw (every
/// backslash is itself), which `promql-parser` alone gets wrong.
pub fn parse(input: &str) -> Result<Expr, String> {
    parser::parse(&requote_raw(input))
}

/// Check that `output` means exactly `input` plus the matcher: parse both,
/// add the matcher to the input's tree, and compare canonical forms.
/// `Ok(false)` when `input` does not parse here at all.
pub fn same_meaning(input: &str, output: &str, label: &str, project: &str) -> Result<bool, String> {
    let Ok(input_tree) = parse(input) else {
        return Ok(false);
    };
    let out_tree = parser::parse(output).map_err(|e| format!("output does not parse: {e}"))?;
    let want = canonical(expected_tree(&input_tree, label, project));
    let got = canonical(out_tree);
    if want == got {
        Ok(true)
    } else {
        Err(format!(
            "meaning changed:\n input:  {input}\n output: {output}\n want:   {want}\n got:    {got}"
        ))
    }
}
