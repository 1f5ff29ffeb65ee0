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
}

/// Run every pre-parse check on `text`; return the text to parse (the input,
/// with raw backtick strings re-written as double-quoted strings).
pub(crate) fn prescan(text: &str) -> Result<Cow<'_, str>, TenancyError> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(TenancyError::TooLong {
            len: text.len(),
            max: MAX_QUERY_BYTES,
        });
    }
    let mut raw_strings = Vec::new();
    let depth = scan(text.as_bytes(), &mut raw_strings)?;
    if depth > MAX_NESTING {
        return Err(TenancyError::TooDeep { max: MAX_NESTING });
    }
    if raw_strings.is_empty() {
        return Ok(Cow::Borrowed(text));
    }
    Ok(Cow::Owned(requote_raw_strings(text, &raw_strings)))
}

/// Replace each terminated backtick string (`start..end`, quotes included)
/// by a double-quoted string with the same value.
fn requote_raw_strings(text: &str, raw_strings: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut pos = 0;
    for &(start, end) in raw_strings {
        out.push_str(&text[pos..start]);
        out.push('"');
        for c in text[start + 1..end - 1].chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c => out.push(c),
            }
        }
        out.push('"');
        pos = end;
    }
    out.push_str(&text[pos..]);
    out
}

/// Scan the input once; return an upper bound of the syntax tree's depth.
///
/// Why the bound holds: on any root-to-leaf path of the tree, the nodes that
/// belong to one bracket level are binary/unary operators, subqueries and the
/// call/aggregation/parenthesis nodes that open the next level — each owns a
/// distinct token counted in `Frame::ops` of that level — and the path enters
/// at most one nested level from there. So the depth is at most
/// `ops + 1 + (estimate of the deepest nested level)`, computed bottom-up.
fn scan(b: &[u8], raw_strings: &mut Vec<(usize, usize)>) -> Result<usize, TenancyError> {
    let mut frames: Vec<Frame> = vec![Frame::default()];
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
            }
            b'"' | b'\'' => {
                i = scan_string(b, i)?;
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
                    raw_strings.push((start, i));
                }
                after_offset = false;
            }
            b'(' | b'[' | b'{' => {
                if c != b'{' {
                    top(&mut frames).ops += 1;
                }
                if c == b'[' {
                    in_brackets = true;
                }
                frames.push(Frame::default());
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
                top(&mut frames).ops += 1;
                i += 1;
            }
            b'*' | b'/' | b'%' | b'^' | b'=' | b'!' | b'<' | b'>' | b'~' => {
                top(&mut frames).ops += 1;
                after_offset = false;
                i += 1;
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
                    top(&mut frames).ops += 1;
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
/// index after its closing quote. A backslash consumes the next character;
/// byte escapes above 0x7f are refused.
fn scan_string(b: &[u8], start: usize) -> Result<usize, TenancyError> {
    let quote = b[start];
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                check_escape(&b[i + 1..])?;
                i += 2;
            }
            c if c == quote => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Ok(b.len())
}

/// `rest` follows a backslash inside a `"` or `'` string.
fn check_escape(rest: &[u8]) -> Result<(), TenancyError> {
    let value = match rest.first() {
        Some(b'x') => digits_value(rest.get(1..3), 16),
        Some(b'0'..=b'7') => digits_value(rest.get(0..3), 8),
        _ => None,
    };
    match value {
        Some(v) if v >= 0x80 => Err(TenancyError::Unsupported(
            "byte escapes \\x80-\\xff (and octal \\200-\\377) mean raw bytes to Prometheus; \
             write the character itself or use \\u00XX"
                .to_owned(),
        )),
        _ => Ok(()),
    }
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
mod tests {
    use super::*;

    fn depth(q: &str) -> usize {
        scan(q.as_bytes(), &mut Vec::new()).expect("scan")
    }

    #[test]
    fn estimate_is_small_for_ordinary_queries() {
        assert_eq!(depth("up"), 1);
        assert!(depth("sum by (job) (rate(http_requests_total{code=~\"5..\"}[5m]))") < 12);
    }

    #[test]
    fn estimate_counts_binary_chains_and_subquery_chains() {
        let chain = vec!["a"; 101].join(" + ");
        assert!(depth(&chain) > 100);
        let subq = format!("x{}", "[1m:]".repeat(100));
        assert!(depth(&subq) > 100);
        let parens = format!("{}1{}", "(".repeat(100), ")".repeat(100));
        assert!(depth(&parens) > 100);
        let unary = format!("{}x", "-".repeat(100));
        assert!(depth(&unary) > 100);
    }

    #[test]
    fn operators_inside_strings_and_comments_do_not_count() {
        assert_eq!(depth("x{a=\"+-*/(((\"}"), depth("x{a=\"b\"}"));
        assert_eq!(depth("x # ((((+++\n"), 1);
    }

    #[test]
    fn numeric_durations_that_would_panic_are_refused() {
        for q in [
            "x[1e30]",
            "x[5m:1e400]",
            "x offset 1e300",
            "x offset -Inf",
            "x offset NaN",
        ] {
            assert!(prescan(q).is_err(), "{q}");
        }
        for q in ["x[300]", "x > 1e300", "x offset 5m", "x[5m:30]"] {
            assert!(prescan(q).is_ok(), "{q}");
        }
    }

    #[test]
    fn malformed_number_tokens_are_left_to_the_parser_without_panicking() {
        // `promql_parser::util::parse_str_radix("1x")` panics; the scanner
        // must not call it on tokens its lexer would never produce.
        for q in ["1x", "1x[5m]", "x[1x]", "x offset 0x", "9e"] {
            let _ = prescan(q);
        }
        assert!(crate::tenancy::scope_query("1x", "project", "p").is_err());
    }

    #[test]
    fn oversized_duration_components_are_refused() {
        assert!(prescan("x[99999999999s5m]").is_err());
        assert!(prescan("x[4294967295s]").is_ok());
    }

    #[test]
    fn high_byte_escapes_are_refused_outside_raw_strings() {
        assert!(prescan(r#"x{a="\xff"}"#).is_err());
        assert!(prescan(r#"x{a='\377'}"#).is_err());
        assert!(prescan(r#"x{a="\x7f\u00ff"}"#).is_ok());
        assert!(prescan(r"x{a=`\xff`}").is_ok());
    }

    #[test]
    fn raw_strings_become_double_quoted_strings_with_the_same_value() {
        assert_eq!(prescan("x{a=~`\\d+\\.`}").unwrap(), "x{a=~\"\\\\d+\\\\.\"}");
        assert_eq!(
            prescan("x{a=`say \"hi\"\n`}").unwrap(),
            "x{a=\"say \\\"hi\\\"\\n\"}"
        );
        assert_eq!(prescan("x{a=\"`\"}").unwrap(), "x{a=\"`\"}");
        assert_eq!(prescan("x{a=`unterminated}").unwrap(), "x{a=`unterminated}");
    }
}
