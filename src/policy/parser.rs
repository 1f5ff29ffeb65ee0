//! Parser for oslo.policy check strings.
//!
//! Operators' `policy.yaml` files are written for oslo.policy, so this parser
//! reproduces its tokenisation and grammar: tokens are split on whitespace,
//! parentheses may be glued to words (`(role:admin`), `and`/`or`/`not` are
//! case-insensitive keywords, `not` binds tighter than `and`, which binds
//! tighter than `or`. A check is `@`, `!`, `rule:NAME`, `role:NAME` or a
//! generic `LEFT:RIGHT`.
//!
//! Where oslo.policy would fail open or crash, we reject the whole rule (and
//! the caller turns a rejected rule into "deny"): a token that is not a check
//! (oslo makes only that token false, so `not foo` would pass), a bare `%` or a
//! `%` conversion other than `%(key)s` in a right-hand side (oslo raises at
//! enforcement time), `http:`/`https:` checks (a remote call on the hot path;
//! not supported), and nesting deeper than [`MAX_NESTING`].

use std::fmt;

/// Deepest nesting of parentheses and `not` accepted; deeper rules are
/// rejected so neither parsing nor evaluation can exhaust the stack.
pub(crate) const MAX_NESTING: usize = 64;

/// A parsed check string.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Check {
    /// `@` or the empty string: always true.
    True,
    /// `!`: always false.
    False,
    /// `role:NAME`: the credentials' roles contain NAME, case-insensitively.
    Role(Template),
    /// `rule:NAME`: the named rule passes. `slot` is filled in when the rule
    /// set is compiled (`None`: no such rule, which is false).
    Rule {
        /// The referenced rule's name.
        name: String,
        /// Index of the referenced rule in the compiled rule table.
        slot: Option<usize>,
    },
    /// `LEFT:RIGHT`: a credential path (or a literal) equals RIGHT.
    Generic {
        /// The left-hand side as written, kept for display.
        raw_left: String,
        /// What the left-hand side means.
        left: Left,
        /// The right-hand side, with `%(key)s` substituted from the target.
        right: Template,
    },
    /// `not X`.
    Not(Box<Check>),
    /// `X and Y and …`.
    And(Vec<Check>),
    /// `X or Y or …`.
    Or(Vec<Check>),
}

/// The left-hand side of a generic check.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Left {
    /// A Python literal (`'member'`, `True`, `20`), as its `str()` form.
    Literal(String),
    /// A dotted path into the credentials; lists fan out.
    Path(Vec<String>),
}

/// A right-hand side with `%(key)s` placeholders (Python `%` formatting with
/// a mapping, as oslo.policy does `match % target`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    /// The text as written, kept for display.
    pub(crate) raw: String,
    /// Literal text and placeholders, in order.
    pub(crate) parts: Vec<Part>,
}

/// One piece of a [`Template`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    /// Literal text (with `%%` already turned into `%`).
    Lit(String),
    /// `%(key)s`: the target's value for `key`.
    Key(String),
}

impl Template {
    /// Parses Python `%`-with-mapping syntax; only `%%` and `%(key)s` are
    /// accepted.
    fn parse(raw: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = raw;
        while let Some(pos) = rest.find('%') {
            lit.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(tail) = after.strip_prefix('%') {
                lit.push('%');
                rest = tail;
            } else if let Some(tail) = after.strip_prefix('(') {
                // Python allows nested parentheses inside the key.
                let mut depth = 1usize;
                let mut end = None;
                for (i, c) in tail.char_indices() {
                    match c {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                end = Some(i);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let end = end.ok_or_else(|| format!("unterminated '%(' in '{raw}'"))?;
                let key = &tail[..end];
                let after_key = &tail[end + 1..];
                let tail = after_key.strip_prefix('s').ok_or_else(|| {
                    format!("only '%(key)s' substitutions are supported, in '{raw}'")
                })?;
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(Part::Key(key.to_string()));
                rest = tail;
            } else {
                return Err(format!(
                    "a '%' must start '%(key)s' or be doubled as '%%', in '{raw}'"
                ));
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() || parts.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template {
            raw: raw.to_string(),
            parts,
        })
    }

    /// The template's text when it has no placeholders.
    pub(crate) fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Lit(s)] => Some(s),
            _ => None,
        }
    }
}

impl Left {
    /// Interprets a left-hand side like oslo's `ast.literal_eval(kind)`:
    /// quoted strings, `True`/`False`/`None` and numbers are literals,
    /// anything else is a dotted credential path.
    fn parse(kind: &str) -> Left {
        let b = kind.as_bytes();
        if b.len() >= 2 && (b[0] == b'\'' || b[0] == b'"') && b[b.len() - 1] == b[0] {
            return Left::Literal(kind[1..kind.len() - 1].to_string());
        }
        if matches!(kind, "True" | "False" | "None") {
            return Left::Literal(kind.to_string());
        }
        if let Some(lit) = python_number(kind) {
            return Left::Literal(lit);
        }
        Left::Path(kind.split('.').map(str::to_string).collect())
    }
}

/// `str(ast.literal_eval(s))` for a decimal integer or a plain float, else
/// `None`.
fn python_number(s: &str) -> Option<String> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() {
        return None;
    }
    if digits.bytes().all(|c| c.is_ascii_digit()) {
        // Python rejects leading zeros in integer literals.
        if digits.len() > 1 && digits.starts_with('0') {
            return None;
        }
        let trimmed = if s.starts_with('-') && digits.bytes().all(|c| c == b'0') {
            "0".to_string()
        } else {
            s.to_string()
        };
        return Some(trimmed);
    }
    let looks_float = digits
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
        && digits
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == b'.')
        && digits.bytes().any(|c| c.is_ascii_digit());
    if looks_float {
        if let Ok(f) = s.parse::<f64>() {
            if f.is_finite() {
                return Some(python_float_str(f));
            }
        }
    }
    None
}

/// Python's `str(float)` for the common cases (`1.0`, `0.5`, `1e+20`).
pub(crate) fn python_float_str(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else if f.abs() >= 1e16 {
        let s = format!("{f:e}");
        // Rust prints `1e20`; Python prints `1e+20`.
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        }
    } else {
        format!("{f}")
    }
}

/// A token of a check string, as oslo's `_parse_tokenize` yields them.
#[derive(Debug, PartialEq)]
enum Token {
    LParen,
    RParen,
    And,
    Or,
    Not,
    /// A whole token in quotes: oslo yields it as a string, which no grammar
    /// rule accepts.
    Str(String),
    Check(Check),
}

/// Splits a check string into tokens, exactly as oslo does: whitespace first,
/// then leading `(` and trailing `)` peeled off each word.
fn tokenize(rule: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    for tok in rule.split_whitespace() {
        let clean = tok.trim_start_matches('(');
        for _ in 0..(tok.len() - clean.len()) {
            out.push(Token::LParen);
        }
        if clean.is_empty() {
            continue;
        }
        let tok = clean;
        let clean = tok.trim_end_matches(')');
        let trail = tok.len() - clean.len();
        let lowered = clean.to_ascii_lowercase();
        match lowered.as_str() {
            "and" => out.push(Token::And),
            "or" => out.push(Token::Or),
            "not" => out.push(Token::Not),
            _ if !clean.is_empty() => {
                let b = tok.as_bytes();
                if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
                    out.push(Token::Str(tok[1..tok.len() - 1].to_string()));
                } else {
                    out.push(Token::Check(parse_check(clean)?));
                }
            }
            _ => {}
        }
        for _ in 0..trail {
            out.push(Token::RParen);
        }
    }
    Ok(out)
}

/// Parses one check (no operators): `@`, `!`, `rule:`, `role:` or generic.
pub(crate) fn parse_check(text: &str) -> Result<Check, String> {
    match text {
        "!" => return Ok(Check::False),
        "@" => return Ok(Check::True),
        _ => {}
    }
    let (kind, matched) = text
        .split_once(':')
        .ok_or_else(|| format!("'{text}' is not a check (expected KIND:MATCH, '@' or '!')"))?;
    match kind {
        "rule" => Ok(Check::Rule {
            name: matched.to_string(),
            slot: None,
        }),
        "role" => Ok(Check::Role(Template::parse(matched)?)),
        "http" | "https" => Err(format!(
            "'{kind}:' checks (remote policy servers) are not supported: '{text}'"
        )),
        _ => Ok(Check::Generic {
            raw_left: kind.to_string(),
            left: Left::parse(kind),
            right: Template::parse(matched)?,
        }),
    }
}

/// Parses a whole check string. The empty (or all-blank) string is `@`.
pub(crate) fn parse_rule(rule: &str) -> Result<Check, String> {
    let tokens = tokenize(rule)?;
    if tokens.is_empty() {
        return Ok(Check::True);
    }
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let check = p.or_expr()?;
    if p.pos != p.tokens.len() {
        return Err(format!("unexpected {} in '{rule}'", p.describe_current()));
    }
    Ok(check)
}

/// Translates the legacy list-of-lists syntax (outer list joined by `or`,
/// inner lists by `and`), which oslo.policy still accepts in policy files.
pub(crate) fn parse_legacy(rule: &[Vec<String>]) -> Result<Check, String> {
    if rule.is_empty() {
        return Ok(Check::True);
    }
    let mut ors = Vec::new();
    for inner in rule {
        if inner.is_empty() {
            continue;
        }
        let mut ands = inner
            .iter()
            .map(|c| parse_check(c))
            .collect::<Result<Vec<_>, _>>()?;
        ors.push(if ands.len() == 1 {
            ands.remove(0)
        } else {
            Check::And(ands)
        });
    }
    Ok(match ors.len() {
        0 => Check::False,
        1 => ors.remove(0),
        _ => Check::Or(ors),
    })
}

/// Recursive-descent parser over oslo's tokens; accepts the same language as
/// oslo's shift-reduce parser.
struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn describe_current(&self) -> String {
        match self.tokens.get(self.pos) {
            None => "end of rule".to_string(),
            Some(Token::LParen) => "'('".to_string(),
            Some(Token::RParen) => "')'".to_string(),
            Some(Token::And) => "'and'".to_string(),
            Some(Token::Or) => "'or'".to_string(),
            Some(Token::Not) => "'not'".to_string(),
            Some(Token::Str(s)) => format!("quoted string '{s}' (a check needs KIND:MATCH)"),
            Some(Token::Check(c)) => format!("check '{c}'"),
        }
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(format!("rule nests deeper than {MAX_NESTING} levels"));
        }
        Ok(())
    }

    fn or_expr(&mut self) -> Result<Check, String> {
        let mut items = vec![self.and_expr()?];
        while self.tokens.get(self.pos) == Some(&Token::Or) {
            self.pos += 1;
            items.push(self.and_expr()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Check::Or(items)
        })
    }

    fn and_expr(&mut self) -> Result<Check, String> {
        let mut items = vec![self.not_expr()?];
        while self.tokens.get(self.pos) == Some(&Token::And) {
            self.pos += 1;
            items.push(self.not_expr()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Check::And(items)
        })
    }

    fn not_expr(&mut self) -> Result<Check, String> {
        match self.tokens.get(self.pos) {
            Some(Token::Not) => {
                self.pos += 1;
                self.enter()?;
                let inner = self.not_expr()?;
                self.depth -= 1;
                Ok(Check::Not(Box::new(inner)))
            }
            Some(Token::LParen) => {
                self.pos += 1;
                self.enter()?;
                let inner = self.or_expr()?;
                if self.tokens.get(self.pos) != Some(&Token::RParen) {
                    return Err(format!(
                        "expected ')' but found {}",
                        self.describe_current()
                    ));
                }
                self.pos += 1;
                self.depth -= 1;
                Ok(inner)
            }
            Some(Token::Check(_)) => {
                let tok = std::mem::replace(&mut self.tokens[self.pos], Token::RParen);
                self.pos += 1;
                match tok {
                    Token::Check(c) => Ok(c),
                    _ => Err("internal parser error".to_string()),
                }
            }
            _ => Err(format!(
                "expected a check but found {}",
                self.describe_current()
            )),
        }
    }
}

impl fmt::Display for Check {
    /// Renders like oslo's `str(check)`: operators parenthesised, leaves as
    /// written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::True => f.write_str("@"),
            Check::False => f.write_str("!"),
            Check::Role(t) => write!(f, "role:{}", t.raw),
            Check::Rule { name, .. } => write!(f, "rule:{name}"),
            Check::Generic {
                raw_left, right, ..
            } => write!(f, "{raw_left}:{}", right.raw),
            Check::Not(c) => write!(f, "not {c}"),
            Check::And(items) | Check::Or(items) => {
                let op = if matches!(self, Check::And(_)) {
                    " and "
                } else {
                    " or "
                };
                f.write_str("(")?;
                for (i, c) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(op)?;
                    }
                    write!(f, "{c}")?;
                }
                f.write_str(")")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> String {
        parse_rule(s)
            .map(|c| c.to_string())
            .unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn empty_and_blank_rules_are_always_true() {
        assert_eq!(parse_rule("").unwrap(), Check::True);
        assert_eq!(parse_rule("   ").unwrap(), Check::True);
    }

    #[test]
    fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
        assert_eq!(p("a:1 or b:2 and c:3"), "(a:1 or (b:2 and c:3))");
        assert_eq!(p("a:1 and b:2 or c:3"), "((a:1 and b:2) or c:3)");
        assert_eq!(p("not a:1 and b:2"), "(not a:1 and b:2)");
        assert_eq!(p("not not a:1"), "not not a:1");
        assert_eq!(p("a:1 or not b:2 and c:3"), "(a:1 or (not b:2 and c:3))");
    }

    #[test]
    fn parentheses_attached_to_words_are_split_off_like_oslo() {
        assert_eq!(
            p("(role:admin and project_id:%(project_id)s) or (role:service)"),
            "((role:admin and project_id:%(project_id)s) or role:service)"
        );
        assert_eq!(p("((a:1))"), "a:1");
        assert_eq!(p("( a:1 or b:2 ) and c:3"), "((a:1 or b:2) and c:3)");
        assert_eq!(p("not (a:1 or b:2)"), "not (a:1 or b:2)");
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(p("a:1 AND b:2 Or NOT c:3"), "((a:1 and b:2) or not c:3)");
    }

    #[test]
    fn substitution_keeps_literal_text_around_placeholders() {
        match parse_rule("x:pre-%(a)s-%%-%(b)s").unwrap() {
            Check::Generic { right, .. } => assert_eq!(
                right.parts,
                vec![
                    Part::Lit("pre-".into()),
                    Part::Key("a".into()),
                    Part::Lit("-%-".into()),
                    Part::Key("b".into())
                ]
            ),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn literals_on_the_left_follow_python_literal_eval() {
        let left = |s: &str| match parse_rule(s).unwrap() {
            Check::Generic { left, .. } => left,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(left("'member':%(x)s"), Left::Literal("member".into()));
        assert_eq!(left("\"member\":%(x)s"), Left::Literal("member".into()));
        assert_eq!(left("True:%(x)s"), Left::Literal("True".into()));
        assert_eq!(left("20:%(x)s"), Left::Literal("20".into()));
        assert_eq!(left("1.50:%(x)s"), Left::Literal("1.5".into()));
        assert_eq!(
            left("token.user.id:%(x)s"),
            Left::Path(vec!["token".into(), "user".into(), "id".into()])
        );
        assert_eq!(left("007:%(x)s"), Left::Path(vec!["007".into()]));
    }

    #[test]
    fn malformed_rules_are_rejected() {
        for bad in [
            "role:admin and",
            "and role:admin",
            "(role:admin",
            "role:admin)",
            "()",
            "role:admin or or role:x",
            "'admin'",
            "admin",
            "role:admin or foo",
            "not foo",
            "role:admin role:reader",
            "project_id:%(project_id)d",
            "project_id:%(project_id",
            "x:50%",
            "x:%s",
            "http://example.invalid:8080/check",
        ] {
            assert!(parse_rule(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn deep_nesting_is_rejected_not_overflowing() {
        let deep = format!("{}a:1{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(parse_rule(&deep).is_err());
        let nots = format!("{}a:1", "not ".repeat(100_000));
        assert!(parse_rule(&nots).is_err());
        let ok = format!("{}a:1{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert!(parse_rule(&ok).is_ok());
    }

    #[test]
    fn legacy_list_of_lists_is_or_of_ands() {
        let rule = vec![
            vec!["role:admin".to_string()],
            vec![
                "role:reader".to_string(),
                "project_id:%(project_id)s".to_string(),
            ],
        ];
        assert_eq!(
            parse_legacy(&rule).unwrap().to_string(),
            "(role:admin or (role:reader and project_id:%(project_id)s))"
        );
        assert_eq!(parse_legacy(&[]).unwrap(), Check::True);
        assert_eq!(parse_legacy(&[vec![]]).unwrap(), Check::False);
    }
}
