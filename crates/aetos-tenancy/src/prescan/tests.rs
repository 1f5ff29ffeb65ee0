use super::*;

fn depth(q: &str) -> usize {
    scan(q.as_bytes(), &mut Vec::new()).expect("scan")
}

fn text(q: &str) -> String {
    prescan(q).unwrap().text.into_owned()
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
fn matchers_inside_braces_do_not_count() {
    let many = (0..500)
        .map(|i| format!("l{i}=~\"a\""))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(depth(&format!("x{{{many}}}")), depth("x{a=\"b\"}"));
    // Braces nested in parentheses still count the parentheses.
    assert!(
        depth(&format!(
            "{}x{{a!=\"b\"}}{}",
            "(".repeat(100),
            ")".repeat(100)
        )) > 100
    );
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
    assert!(crate::scope_query("1x", "project", "p").is_err());
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
    assert_eq!(text("x{a=`\\d+\\.`}"), "x{a=\"\\\\d+\\\\.\"}");
    assert_eq!(text("x{a=`say \"hi\"\n`}"), "x{a=\"say \\\"hi\\\"\\n\"}");
    assert_eq!(text("x{a=\"`\"}"), "x{a=\"`\"}");
    assert_eq!(text("x{a=`unterminated}"), "x{a=`unterminated}");
}

#[test]
fn regex_matchers_reach_the_parser_as_numbered_placeholders() {
    let p = prescan("x{a=~\"\\\\w{0,99}\", b!~ # c\n 'd.*', c=\"e\"} + y{z=~`\\d`}").unwrap();
    assert_eq!(
        p.text,
        "x{a=\"\u{FDD0}0\", b= # c\n \"\u{FDD0}!1\", c=\"e\"} + y{z=\"\u{FDD0}2\"}"
    );
    assert_eq!(p.regexes, vec!["\\w{0,99}", "d.*", "\\d"]);
    // Not after a regex operator: left alone.
    let p = prescan("x{a=\"~\", b!=\"c\"} == 1").unwrap();
    assert!(p.regexes.is_empty());
    assert_eq!(p.text, "x{a=\"~\", b!=\"c\"} == 1");
    // An unterminated string is left for the parser to refuse.
    assert!(prescan("x{a=~\"abc}").unwrap().regexes.is_empty());
    // A string the lexer would refuse is refused here too.
    assert!(prescan("x{a=~\"\\q\"}").is_err());
    // The mark is reserved.
    assert!(prescan("x{a=\"\u{FDD0}0\"}").is_err());
    // ... also when written as an escape, which only the parser decodes.
    for q in [
        r#"x{a="\uFDD00"}"#,
        r#"x{a='\ufdd0!0'}"#,
        r#"x{a=~"r", b="\U0000FDD00"}"#,
        r#"label_replace(x, "d", "\uFdD00", "s", "")"#,
    ] {
        assert!(prescan(q).is_err(), "{q}");
    }
    assert!(prescan(r#"x{a="\uFDD1\u00e9"}"#).is_ok());
}

#[test]
fn restore_puts_back_each_value_once_and_refuses_anything_else() {
    let re = vec!["a\"b".to_owned(), "\\d+\n".to_owned()];
    assert_eq!(
        restore("x{a=\"\u{FDD0}1\",b=\"\u{FDD0}!0\",p=\"0\"}", &re).unwrap(),
        "x{a=~\"\\\\d+\\n\",b!~\"a\\\"b\",p=\"0\"}"
    );
    for bad in [
        "x{a=\"\u{FDD0}0\"}",                                 // one missing
        "x{a=\"\u{FDD0}0\",b=\"\u{FDD0}0\",c=\"\u{FDD0}1\"}", // one twice
        "x{a=\"\u{FDD0}2\",b=\"\u{FDD0}0\"}",                 // out of range
        "x{a!=\"\u{FDD0}1\",b=\"\u{FDD0}0\"}",                // not after =
        "f(x{b=\"\u{FDD0}0\"}, \"\u{FDD0}1\")",               // not a matcher
    ] {
        assert!(restore(bad, &re).is_err(), "{bad}");
    }
    assert_eq!(restore("up", &[]).unwrap(), "up");
}
