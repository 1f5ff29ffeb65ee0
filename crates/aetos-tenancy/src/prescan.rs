//! Lexical checks that must happen *before* the PromQL parser runs.
//!
//! Some inputs cannot be refused after parsing because parsing them is
//! already the damage:
//! - deep nesting: the parser's type checks, the printer and `Drop` recurse
//!   once per tree level, and a stack overflow aborts the process;
//! - numeric durations such as `x[1e30]` or `offset Inf` make `promql-parser`
//!   0.11 panic (`Duration::from_secs_f64`);
//! - a duration component that does not fit in 32 bits (`[99999999999s5m]`)
//!   is silently read as zero by `promql-parser`, while Prometheus reads it,
//!   so the printed query would mean something else;
//! - `\x80`–`\xff` and octal `\200`–`\377` escapes are raw bytes for
//!   Prometheus but Unicode characters U+0080–U+00FF for `promql-parser`, so
//!   the printed query would mean something else.
//!
//! - backtick strings are raw in Prometheus (`` `\d+` `` is the regex `\d+`),
//!   but `promql-parser` 0.11 applies escape rules inside them and refuses
//!   `` `\d` ``; so each raw string is handed to the parser re-written as the
//!   equivalent double-quoted string (same value, exactly).
//! - `promql-parser` compiles every `=~`/`!~` matcher into a Unicode-aware
//!   `regex` while parsing, and a few dozen short matchers such as
//!   `"\w{0,99}"` cost seconds and hundreds of MiB — far more than
//!   Prometheus spends. Scoping never needs the compiled regex (the value is
//!   only printed back), so each regex matcher reaches the parser as an
//!   *equality* matcher whose value is a placeholder: [`MARK`], `!` for `!~`,
//!   and the regex's number (`a=~"x"` → `a="\u{FDD0}0"`), and its decoded
//!   value is kept aside; [`restore`] turns the placeholders back into the
//!   regex matchers in the printed text. Nothing is compiled: the backend
//!   compiles the regex and answers `bad_data` for an invalid one, as it
//!   would without aetos. The cost of the whole stage is therefore linear in
//!   the input, whatever the matchers contain. [`MARK`] itself is refused in
//!   input, so a placeholder can only be one of ours.
//!
//! The scanner mirrors the lexers for what matters here: string boundaries
//! (in `"` and `'` strings a backslash consumes the next character; a
//! backtick string ends at the next backtick, as in Prometheus), `#` comments
//! up to a line end, and number/duration tokens.

use std::borrow::Cow;

use super::{TenancyError, MAX_NESTING, MAX_QUERY_BYTES};

/// Largest number of seconds accepted where a plain number is read as a
/// duration (`[300]`, `offset 60`): about 31,700 years, far below the point
/// where `Duration::from_secs_f64` panics.
const MAX_NUMERIC_DURATION_SECS: f64 = 1e12;

/// One level of brackets while estimating the tree depth.
#[derive(Default)]
struct Frame {
    /// Tokens directly at this level that may each add one tree level:
    /// operators, `and`/`or`/`unless`/`atan2`, and the `(`/`[` opening a
    /// nested level (a call, aggregation, parenthesis or subquery node).
    ops: usize,
    /// Deepest estimate of any nested level.
    child: usize,
    /// A `{…}` matcher list: its `=`, `!=`, `=~`, `!~` are not tree nodes
    /// (the whole selector is one leaf), so they are not counted.
    braces: bool,
}

/// Count one token that may add a tree level at the innermost level.
fn bump(frames: &mut Vec<Frame>) {
    let f = top(frames);
    if !f.braces {
        f.ops += 1;
    }
}

/// The first character of a regex placeholder: a Unicode noncharacter,
/// refused in input (see [`prescan`]).
pub(crate) const MARK: char = '\u{FDD0}';

/// A string literal of the input that is handed to the parser differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Literal {
    /// Byte range of the literal, quotes included.
    start: usize,
    end: usize,
    /// For the value of a `=~` / `!~` matcher: where that operator starts,
    /// and whether it is `!~`.
    regex: Option<(usize, bool)>,
}

/// What the parser is given for one input.
#[derive(Debug)]
pub(crate) struct Prescanned<'a> {
    /// The text to parse: the input, with raw backtick strings re-written as
    /// double-quoted strings and each regex matcher's string replaced by its
    /// placeholder.
    pub(crate) text: Cow<'a, str>,
    /// The decoded value of each regex matcher, indexed by its placeholder.
    pub(crate) regexes: Vec<String>,
}

/// Run every pre-parse check on `text`; return what to parse.
pub(crate) fn prescan(text: &str) -> Result<Prescanned<'_>, TenancyError> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(TenancyError::TooLong {
            len: text.len(),
            max: MAX_QUERY_BYTES,
        });
    }
    if text.contains(MARK) {
        return Err(reserved_mark());
    }
    let mut literals = Vec::new();
    let depth = scan(text.as_bytes(), &mut literals)?;
    if depth > MAX_NESTING {
        return Err(TenancyError::TooDeep { max: MAX_NESTING });
    }
    if literals.is_empty() {
        return Ok(Prescanned {
            text: Cow::Borrowed(text),
            regexes: Vec::new(),
        });
    }
    substitute(text, &literals)
}

/// Replace each literal: a raw string by a double-quoted string with the
/// same value, a regex matcher's string by its placeholder.
fn substitute<'a>(text: &'a str, literals: &[Literal]) -> Result<Prescanned<'a>, TenancyError> {
    let mut out = String::with_capacity(text.len() + 16);
    let mut regexes = Vec::new();
    let mut pos = 0;
    for lit in literals {
        let source = &text[lit.start..lit.end];
        match lit.regex {
            Some((op, negated)) => {
                regexes.push(literal_value(source)?);
                // `=~` / `!~` become `=`; what stands between the operator
                // and the string (white space, a comment) stays.
                out.push_str(&text[pos..op]);
                out.push('=');
                out.push_str(&text[op + 2..lit.start]);
                out.push('"');
                out.push(MARK);
                if negated {
                    out.push('!');
                }
                out.push_str(&(regexes.len() - 1).to_string());
                out.push('"');
            }
            None => {
                out.push_str(&text[pos..lit.start]);
                requote_raw(&source[1..source.len() - 1], &mut out);
            }
        }
        pos = lit.end;
    }
    out.push_str(&text[pos..]);
    Ok(Prescanned {
        text: Cow::Owned(out),
        regexes,
    })
}

/// The value of a string literal (quotes included), as Prometheus reads it:
/// a backtick string verbatim, others with the lexer's escape rules (the
/// parser's own `unquote_string`, so the value is the one it would have
/// built).
fn literal_value(source: &str) -> Result<String, TenancyError> {
    if let Some(raw) = source.strip_prefix('`') {
        return Ok(raw.strip_suffix('`').unwrap_or(raw).to_owned());
    }
    promql_parser::util::unquote_string(source)
        .map_err(|e| TenancyError::Parse(format!("invalid string {source}: {e}")))
}

/// Write the raw string content `raw` as a double-quoted string.
fn requote_raw(raw: &str, out: &mut String) {
    out.push('"');
    for c in raw.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A regex placeholder's number and whether it stands for `!~`, or `None`
/// for any other value.
pub(crate) fn placeholder(value: &str) -> Option<(usize, bool)> {
    let rest = value.strip_prefix(MARK)?;
    let (negated, digits) = match rest.strip_prefix('!') {
        Some(d) => (true, d),
        None => (false, rest),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, negated))
}

/// Put the regex matchers back into `printed`, the printer's text of a tree
/// parsed from a [`Prescanned`] text: every placeholder must stand as the
/// value of a `=` matcher, and each must appear exactly once. Anything else
/// is refused rather than guessed at.
pub(crate) fn restore(printed: &str, regexes: &[String]) -> Result<String, TenancyError> {
    if regexes.is_empty() {
        return Ok(printed.to_owned());
    }
    let unfaithful = |what: &str| TenancyError::Unfaithful(what.to_owned());
    let b = printed.as_bytes();
    let mut used = vec![false; regexes.len()];
    let mut out =
        String::with_capacity(printed.len() + regexes.iter().map(String::len).sum::<usize>());
    let mut pos = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'"' {
            i += 1;
            continue;
        }
        // The printer writes only double-quoted strings with `\\` escapes.
        let start = i;
        i += 1;
        while i < b.len() && b[i] != b'"' {
            i += if b[i] == b'\\' { 2 } else { 1 };
        }
        let end = (i + 1).min(b.len());
        i = end;
        let Some((n, negated)) = placeholder(&printed[start + 1..end - 1]) else {
            continue;
        };
        let is_value_of_equal =
            start >= 1 && b[start - 1] == b'=' && (start < 2 || b[start - 2] != b'!');
        if !is_value_of_equal || n >= regexes.len() || used[n] {
            return Err(unfaithful(
                "a regex matcher of the rewritten query was not restored",
            ));
        }
        used[n] = true;
        out.push_str(&printed[pos..start - 1]);
        out.push_str(if negated { "!~\"" } else { "=~\"" });
        out.push_str(&promql_parser::util::escape_string(&regexes[n]));
        out.push('"');
        pos = end;
    }
    if used.iter().any(|u| !u) {
        return Err(unfaithful(
            "a regex matcher of the query is missing from the rewrite",
        ));
    }
    out.push_str(&printed[pos..]);
    Ok(out)
}

/// Scan the input once; return an upper bound of the syntax tree's depth.
///
/// Why the bound holds: on any root-to-leaf path of the tree, the nodes that
/// belong to one bracket level are binary/unary operators, subqueries and the
/// call/aggregation/parenthesis nodes that open the next level — each owns a
/// distinct token counted in `Frame::ops` of that level — and the path enters
/// at most one nested level from there. So the depth is at most
/// `ops + 1 + (estimate of the deepest nested level)`, computed bottom-up.
fn scan(b: &[u8], literals: &mut Vec<Literal>) -> Result<usize, TenancyError> {
    let mut frames: Vec<Frame> = vec![Frame::default()];
    // The last significant token was `=~` or `!~`: the next string (after
    // any white space or comment, as the lexer allows) is a regex.
    let mut after_regex_op = false;
    let mut negated = false;
    let mut op_at = 0;
    // Inside `[...]`, where a plain number is a duration.
    let mut in_brackets = false;
    // The last significant token was `offset` (possibly followed by a sign),
    // so a number here is a duration too.
    let mut after_offset = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'#' => {
                while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' => {
                let start = i;
                let terminated;
                (i, terminated) = scan_string(b, i)?;
                if after_regex_op && terminated {
                    literals.push(Literal {
                        start,
                        end: i,
                        regex: Some((op_at, negated)),
                    });
                }
                after_offset = false;
            }
            b'`' => {
                // Raw string: ends at the next backtick, no escapes.
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
                if i < b.len() {
                    i += 1;
                    literals.push(Literal {
                        start,
                        end: i,
                        regex: after_regex_op.then_some((op_at, negated)),
                    });
                }
                after_offset = false;
            }
            b'(' | b'[' | b'{' => {
                if c != b'{' {
                    bump(&mut frames);
                }
                if c == b'[' {
                    in_brackets = true;
                }
                frames.push(Frame {
                    braces: c == b'{',
                    ..Frame::default()
                });
                after_offset = false;
                i += 1;
            }
            b')' | b']' | b'}' => {
                if c == b']' {
                    in_brackets = false;
                }
                close(&mut frames);
                after_offset = false;
                i += 1;
            }
            b'+' | b'-' => {
                // A sign keeps an `offset` context: `offset -5m`.
                bump(&mut frames);
                i += 1;
            }
            b'*' | b'/' | b'%' | b'^' | b'=' | b'!' | b'<' | b'>' | b'~' => {
                bump(&mut frames);
                after_offset = false;
                i += 1;
                if c == b'~' && i >= 2 && matches!(b[i - 2], b'=' | b'!') {
                    after_regex_op = true;
                    negated = b[i - 2] == b'!';
                    op_at = i - 2;
                    continue;
                }
            }
            b'0'..=b'9' => {
                let end = number_end(b, i);
                check_number(&b[i..end], in_brackets || after_offset)?;
                after_offset = false;
                i = end;
            }
            b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let end = number_end(b, i);
                check_number(&b[i..end], in_brackets || after_offset)?;
                after_offset = false;
                i = end;
            }
            // Inside brackets `:` separates range and step; elsewhere it may
            // start a recording-rule name such as `:job:rate5m`.
            b':' if in_brackets => {
                after_offset = false;
                i += 1;
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' | b':' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                let word = &b[start..i];
                if after_offset
                    && (word.eq_ignore_ascii_case(b"inf") || word.eq_ignore_ascii_case(b"nan"))
                {
                    return Err(duration_out_of_range());
                }
                if [&b"and"[..], b"or", b"unless", b"atan2"]
                    .iter()
                    .any(|k| word.eq_ignore_ascii_case(k))
                {
                    bump(&mut frames);
                }
                after_offset = word.eq_ignore_ascii_case(b"offset");
            }
            _ => {
                // Whitespace keeps the context; anything else (`,`, `@`,
                // non-ASCII bytes the lexer will reject) ends it.
                if !c.is_ascii_whitespace() {
                    after_offset = false;
                }
                i += 1;
            }
        }
        if !c.is_ascii_whitespace() {
            after_regex_op = false;
        }
    }
    // Unbalanced input is refused by the lexer before anything is built;
    // fold what is left so that the estimate stays an upper bound anyway.
    while frames.len() > 1 {
        close(&mut frames);
    }
    let root = top(&mut frames);
    Ok(root.ops + root.child + 1)
}

/// The innermost open level (the root is never popped).
fn top(frames: &mut Vec<Frame>) -> &mut Frame {
    if frames.is_empty() {
        frames.push(Frame::default());
    }
    let last = frames.len() - 1;
    &mut frames[last]
}

/// Close the innermost level and fold its estimate into its parent.
fn close(frames: &mut Vec<Frame>) {
    if frames.len() < 2 {
        return; // a stray closer: the lexer refuses it
    }
    if let Some(f) = frames.pop() {
        let d = f.ops + f.child + 1;
        let parent = top(frames);
        parent.child = parent.child.max(d);
    }
}

/// Skip a `"` or `'` string starting at `start` (the quote); return the
/// index after its closing quote and whether there was one. A backslash
/// consumes the next character; byte escapes above 0x7f are refused.
fn scan_string(b: &[u8], start: usize) -> Result<(usize, bool), TenancyError> {
    let quote = b[start];
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                check_escape(&b[i + 1..])?;
                i += 2;
            }
            c if c == quote => return Ok((i + 1, true)),
            _ => i += 1,
        }
    }
    Ok((b.len(), false))
}

/// `rest` follows a backslash inside a `"` or `'` string.
fn check_escape(rest: &[u8]) -> Result<(), TenancyError> {
    let value = match rest.first() {
        Some(b'x') => digits_value(rest.get(1..3), 16),
        Some(b'0'..=b'7') => digits_value(rest.get(0..3), 8),
        Some(b'u') => digits_value(rest.get(1..5), 16),
        Some(b'U') => digits_value(rest.get(1..9), 16),
        _ => None,
    };
    match value {
        // Written as an escape, the mark would reach the tree without ever
        // standing in the text: refused like the character itself.
        Some(v) if v == u32::from(MARK) && matches!(rest.first(), Some(b'u' | b'U')) => {
            Err(reserved_mark())
        }
        Some(v) if v >= 0x80 && matches!(rest.first(), Some(b'x' | b'0'..=b'7')) => {
            Err(TenancyError::Unsupported(
                "byte escapes \\x80-\\xff (and octal \\200-\\377) mean raw bytes to Prometheus; \
             write the character itself or use \\u00XX"
                    .to_owned(),
            ))
        }
        _ => Ok(()),
    }
}

fn reserved_mark() -> TenancyError {
    TenancyError::Unsupported("the noncharacter U+FDD0 is reserved".to_owned())
}

/// Value of `digits` in `radix`, if they all are digits of it.
fn digits_value(digits: Option<&[u8]>, radix: u32) -> Option<u32> {
    let digits = digits?;
    let mut v: u32 = 0;
    for &d in digits {
        v = v * radix + char::from(d).to_digit(radix)?;
    }
    Some(v)
}

/// End of a number or duration token starting at `start`, mirroring the
/// lexer: alphanumerics, `_` and `.`, plus a sign right after a decimal
/// exponent `e`/`E`.
fn number_end(b: &[u8], start: usize) -> usize {
    let hex = b.get(start) == Some(&b'0') && matches!(b.get(start + 1), Some(b'x' | b'X'));
    let mut i = start;
    while i < b.len() {
        let c = b[i];
        let sign_after_exponent =
            (c == b'+' || c == b'-') && !hex && i > start && matches!(b[i - 1], b'e' | b'E');
        if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || sign_after_exponent {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// Refuse number tokens the parser would panic on or misread.
fn check_number(token: &[u8], duration_context: bool) -> Result<(), TenancyError> {
    let Ok(text) = std::str::from_utf8(token) else {
        return Ok(()); // ASCII by construction; the lexer decides otherwise
    };
    match numeric_value(text) {
        Some(v) => {
            // A plain number: only dangerous where it becomes a duration.
            if duration_context
                && !(v.is_finite() && (0.0..=MAX_NUMERIC_DURATION_SECS).contains(&v))
            {
                return Err(duration_out_of_range());
            }
            Ok(())
        }
        None => {
            // A duration such as `1y2w3d4h5m6s7ms` (or garbage the lexer
            // refuses): every digit run must fit in 32 bits, or
            // `promql-parser` silently drops it.
            let too_big = token
                .split(|c| !c.is_ascii_digit())
                .filter(|run| !run.is_empty())
                .any(|run| {
                    std::str::from_utf8(run)
                        .ok()
                        .and_then(|s| s.parse::<u32>().ok())
                        .is_none()
                });
            if too_big {
                return Err(duration_out_of_range());
            }
            Ok(())
        }
    }
}

/// The value of a plain number token (decimal, exponent or hex), `None` for
/// anything else (durations, garbage). Written here rather than calling
/// `promql_parser::util::parse_str_radix`, which panics on tokens such as
/// `1x` that its lexer never produces but this scanner may see. Octal-looking
/// tokens are read as decimal: only the magnitude matters here.
fn numeric_value(text: &str) -> Option<f64> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return i64::from_str_radix(hex, 16).ok().map(|v| v as f64);
    }
    if !text
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    text.parse::<f64>().ok()
}

fn duration_out_of_range() -> TenancyError {
    TenancyError::Unsupported(
        "duration out of the supported range (each component at most 4294967295, \
         a plain number of seconds at most 1e12)"
            .to_owned(),
    )
}

#[cfg(test)]
mod tests;
