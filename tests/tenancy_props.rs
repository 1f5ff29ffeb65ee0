//! Property tests for the tenancy engine: random, well-typed PromQL built
//! from every construct the engine knows (nested aggregations with
//! parameters, binary operators with every matching modifier, subqueries,
//! `offset`/`@`, all quote styles, hostile label values and project ids) is
//! scoped and then checked by the independent oracle
//! (`aetos_tenancy_oracle::oracle`, in `crates/aetos-tenancy-oracle/`): the
//! output parses, every selector carries the matcher, it means exactly the
//! input plus the matcher, and re-scoping it is a no-op. Random text and
//! token soup must never panic, and whatever is accepted must hold the
//! invariant. The fuzz harness is also replayed over its seed corpus here.

use aetos::tenancy::{scope_query, scope_selector, TenancyError};
use aetos_tenancy_oracle::{harness, oracle};
use proptest::prelude::*;

const LABEL: &str = "project";

/// The committed failure seeds, by absolute path: proptest's default
/// (`SourceParallel`) looks for a `lib.rs`/`main.rs` above this file, finds
/// none under `tests/`, and only falls back to the sibling file after a
/// warning; naming the file makes every run (whatever its working directory
/// or thread) replay them first.
const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/tenancy_props.proptest-regressions"
);

// ─── Generators ─────────────────────────────────────────────────────────

/// Label values with the characters that break naive quoting.
fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("p1".to_owned()),
        Just("other".to_owned()),
        Just("up".to_owned()),
        "[a-zA-Z0-9 _.:/\"'`\\\\\n\t{}#,=~!()é日🦀-]{1,10}",
    ]
}

/// Write `v` as a PromQL string literal in a random quote style.
fn quoted(v: String) -> impl Strategy<Value = String> {
    let double = format!(
        "\"{}\"",
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
            .replace('\t', "\\t")
    );
    let single = format!(
        "'{}'",
        v.replace('\\', "\\\\")
            .replace('\'', "\\'")
            .replace('\n', "\\n")
    );
    let mut styles = vec![Just(double), Just(single)];
    if !v.contains('`') {
        styles.push(Just(format!("`{v}`")));
    }
    proptest::strategy::Union::new(styles)
}

/// Regexes valid for both RE2 and Rust's regex crate.
fn regex_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(".*".to_owned()),
        Just(".+".to_owned()),
        Just("p1|other".to_owned()),
        Just("[a-z]+".to_owned()),
        Just("\\d+".to_owned()),
        Just("x{2}".to_owned()),
        Just("o.*".to_owned()),
        Just("(?i)UP".to_owned()),
    ]
}

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("project".to_owned()),
        2 => Just("job".to_owned()),
        2 => Just("a".to_owned()),
        1 => Just("\"my.label\"".to_owned()),
        1 => Just("instance".to_owned()),
    ]
}

/// One matcher `name op "value"`.
fn matcher() -> impl Strategy<Value = String> {
    let plain = (
        label_name(),
        prop_oneof![Just("="), Just("!=")],
        label_value(),
    )
        .prop_flat_map(|(n, op, v)| quoted(v).prop_map(move |q| format!("{n}{op}{q}")));
    let regex = (
        label_name(),
        prop_oneof![Just("=~"), Just("!~")],
        regex_value(),
    )
        .prop_flat_map(|(n, op, v)| quoted(v).prop_map(move |q| format!("{n}{op}{q}")));
    prop_oneof![3 => plain, 1 => regex]
}

fn metric_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("up".to_owned()),
        Just("x".to_owned()),
        Just("node_cpu_seconds_total".to_owned()),
        Just("ceilometer_cpu".to_owned()),
        Just(":job:rate5m".to_owned()),
    ]
}

/// A plain series selector (valid as a `match[]` value).
fn series_selector() -> impl Strategy<Value = String> {
    let named = (metric_name(), proptest::collection::vec(matcher(), 0..3)).prop_map(|(n, ms)| {
        if ms.is_empty() && n.len() % 2 == 0 {
            n
        } else {
            format!("{n}{{{}}}", ms.join(","))
        }
    });
    // Without a name, one matcher must not match the empty string.
    let unnamed = (
        prop_oneof![
            metric_name().prop_map(|n| format!("__name__=\"{n}\"")),
            Just("job=\"a\"".to_owned()),
            Just("{\"my.metric\"}".to_owned()).prop_map(|s| s[1..s.len() - 1].to_owned()),
        ],
        proptest::collection::vec(matcher(), 0..3),
    )
        .prop_map(|(first, mut ms)| {
            ms.insert(0, first);
            format!("{{{}}}", ms.join(","))
        });
    prop_oneof![3 => named, 1 => unnamed]
}

fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("30s".to_owned()),
        Just("300s".to_owned()),
        Just("5m".to_owned()),
        Just("1h30m".to_owned()),
        Just("1d".to_owned()),
        Just("500ms".to_owned()),
        Just("2w".to_owned()),
    ]
}

/// Optional `@` and `offset` suffixes, in either order.
fn modifiers() -> impl Strategy<Value = String> {
    let at = prop_oneof![
        Just(String::new()),
        (0u64..2_000_000_000).prop_map(|t| format!(" @ {t}")),
        (0u64..2_000_000_000, 0u32..1000).prop_map(|(t, ms)| format!(" @ {t}.{ms:03}")),
        Just(" @ start()".to_owned()),
        Just(" @ end()".to_owned()),
    ];
    let offset = prop_oneof![
        Just(String::new()),
        duration().prop_map(|d| format!(" offset {d}")),
        duration().prop_map(|d| format!(" offset -{d}")),
    ];
    (at, offset, any::<bool>()).prop_map(|(a, o, swap)| {
        if swap {
            format!("{o}{a}")
        } else {
            format!("{a}{o}")
        }
    })
}

fn instant_selector() -> impl Strategy<Value = String> {
    (series_selector(), modifiers()).prop_map(|(s, m)| format!("{s}{m}"))
}

/// A range vector built on `vector` (matrix selectors and subqueries).
fn range_of(vector: BoxedStrategy<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        (series_selector(), duration(), modifiers()).prop_map(|(s, d, m)| format!("{s}[{d}]{m}")),
        (
            vector,
            duration(),
            prop_oneof![Just(String::new()), duration()],
            modifiers()
        )
            .prop_map(|(v, r, s, m)| format!("({v})[{r}:{s}]{m}")),
    ]
}

/// A scalar built on `vector`.
fn scalar_of(vector: BoxedStrategy<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..100).prop_map(|n| n.to_string()),
        Just("0.5".to_owned()),
        Just("time()".to_owned()),
        Just("pi()".to_owned()),
        vector.prop_map(|v| format!("scalar({v})")),
    ]
}

fn arith_op() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("+"),
        Just("-"),
        Just("*"),
        Just("/"),
        Just("%"),
        Just("^"),
        Just("atan2")
    ]
}

fn cmp_op() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("=="),
        Just("!="),
        Just(">"),
        Just("<"),
        Just(">="),
        Just("<=")
    ]
}

/// Vector matching modifiers for a non-set binary operator.
fn matching() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(" on (job)".to_owned()),
        Just(" on ()".to_owned()),
        Just(" ignoring (instance)".to_owned()),
        Just(" ignoring ()".to_owned()),
        Just(" on (job) group_left ()".to_owned()),
        Just(" on (job) group_left (instance)".to_owned()),
        Just(" ignoring (a) group_right (project)".to_owned()),
    ]
}

/// Well-typed instant-vector expressions.
fn vector_expr() -> impl Strategy<Value = String> {
    instant_selector().prop_recursive(4, 40, 3, |inner| {
        let inner = inner.boxed();
        let scalar = scalar_of(inner.clone()).boxed();
        let range = range_of(inner.clone()).boxed();
        let grouping = prop_oneof![
            Just(String::new()),
            Just(" by (job)".to_owned()),
            Just(" by ()".to_owned()),
            Just(" without (instance)".to_owned()),
            Just(" by (project)".to_owned()),
        ];
        prop_oneof![
            (
                prop_oneof![
                    Just("sum"),
                    Just("avg"),
                    Just("min"),
                    Just("max"),
                    Just("count"),
                    Just("group"),
                    Just("stddev")
                ],
                grouping.clone(),
                inner.clone()
            )
                .prop_map(|(op, g, v)| format!("{op}{g} ({v})")),
            (
                prop_oneof![Just("topk"), Just("bottomk"), Just("limitk")],
                scalar.clone(),
                inner.clone()
            )
                .prop_map(|(op, s, v)| format!("{op}({s}, {v})")),
            (scalar.clone(), inner.clone(), grouping)
                .prop_map(|(s, v, g)| format!("quantile({s}, {v}){g}")),
            inner
                .clone()
                .prop_map(|v| format!("count_values(\"value\", {v})")),
            (inner.clone(), arith_op(), matching(), inner.clone())
                .prop_map(|(a, op, m, b)| format!("({a}) {op}{m} ({b})")),
            (
                inner.clone(),
                cmp_op(),
                any::<bool>(),
                matching(),
                inner.clone()
            )
                .prop_map(|(a, op, bool_, m, b)| {
                    let b_ = if bool_ { " bool" } else { "" };
                    format!("({a}) {op}{b_}{m} ({b})")
                }),
            (
                inner.clone(),
                prop_oneof![Just("and"), Just("or"), Just("unless")],
                prop_oneof![Just(""), Just(" on (job)"), Just(" ignoring (a)")],
                inner.clone()
            )
                .prop_map(|(a, op, m, b)| format!("{a} {op}{m} {b}")),
            (inner.clone(), arith_op(), scalar.clone())
                .prop_map(|(v, op, s)| format!("{v} {op} {s}")),
            (scalar.clone(), arith_op(), inner.clone())
                .prop_map(|(s, op, v)| format!("{s} {op} {v}")),
            inner.clone().prop_map(|v| format!("-({v})")),
            inner.clone().prop_map(|v| format!("({v})")),
            (
                prop_oneof![
                    Just("abs"),
                    Just("sort_desc"),
                    Just("timestamp"),
                    Just("absent")
                ],
                inner.clone()
            )
                .prop_map(|(f, v)| format!("{f}({v})")),
            (
                prop_oneof![
                    Just("rate"),
                    Just("increase"),
                    Just("max_over_time"),
                    Just("avg_over_time"),
                    Just("last_over_time"),
                    Just("absent_over_time")
                ],
                range
            )
                .prop_map(|(f, r)| format!("{f}({r})")),
            inner
                .clone()
                .prop_map(|v| format!("label_replace({v}, \"dst\", \"$1\", \"src\", \"(.*)\")")),
            scalar.clone().prop_map(|s| format!("vector({s})")),
            (scalar, inner).prop_map(|(s, v)| format!("histogram_quantile({s}, {v})")),
        ]
    })
}

/// Project ids, including the characters that need escaping.
fn project_id() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[0-9a-f]{32}",
        1 => "[a-zA-Z0-9 _\"'`\\\\\n\té日🦀{}-]{1,12}",
    ]
}

// ─── Properties ─────────────────────────────────────────────────────────

/// Scope and prove; `Ok(())` or a description of the violation.
fn scoped_and_proven(query: &str, project: &str) -> Result<(), String> {
    let out = scope_query(query, LABEL, project).map_err(|e| format!("refused {query:?}: {e}"))?;
    oracle::check_scoped(&out, LABEL, project)?;
    if !oracle::same_meaning(query, &out, LABEL, project)? {
        return Err(format!("the oracle cannot parse {query:?}"));
    }
    let again =
        scope_query(&out, LABEL, project).map_err(|e| format!("re-scoping {out:?}: {e}"))?;
    if again != out {
        return Err(format!("not idempotent: {out:?} became {again:?}"));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 768,
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::Direct(REGRESSIONS))),
        ..ProptestConfig::default()
    })]

    fn every_selector_of_a_random_query_is_scoped(q in vector_expr(), project in project_id()) {
        prop_assert_eq!(scoped_and_proven(&q, &project), Ok(()));
    }

    fn random_scalar_and_range_expressions_are_scoped(
        q in vector_expr().prop_flat_map(|v| {
            let v = Just(v).boxed();
            prop_oneof![
                scalar_of(v.clone()).boxed(),
                range_of(v).boxed(),
            ]
        }),
        project in project_id(),
    ) {
        prop_assert_eq!(scoped_and_proven(&q, &project), Ok(()));
    }

    fn random_series_selectors_are_scoped(s in series_selector(), project in project_id()) {
        let out = scope_selector(&s, LABEL, &project);
        prop_assert!(out.is_ok(), "refused {:?}: {:?}", s, out);
        let out = out.unwrap_or_default();
        prop_assert_eq!(oracle::check_scoped(&out, LABEL, &project).map(|n| n == 1), Ok(true));
        prop_assert_eq!(oracle::same_meaning(&s, &out, LABEL, &project), Ok(true));
    }

    fn selectors_with_modifiers_or_operators_are_not_series_selectors(q in vector_expr()) {
        // Read as Prometheus does (raw strings included), not by promql-parser alone.
        let is_plain = matches!(oracle::parse(&q), Ok(promql_parser::parser::Expr::VectorSelector(ref vs)) if vs.offset.is_none() && vs.at.is_none());
        if !is_plain {
            prop_assert!(matches!(scope_selector(&q, LABEL, "p"), Err(TenancyError::NotASelector(_)) | Err(TenancyError::Parse(_))));
        }
    }

    fn arbitrary_text_never_panics_and_accepted_text_is_scoped(s in "\\PC{0,80}") {
        harness::run(s.as_bytes());
    }

    fn token_soup_never_panics_and_accepted_soup_is_scoped(
        tokens in proptest::collection::vec(prop_oneof![
            Just("up"), Just("x"), Just("{"), Just("}"), Just("("), Just(")"), Just("["), Just("]"),
            Just("project"), Just("="), Just("!="), Just("=~"), Just("\"p1\""), Just("'o'"), Just("`\\d`"),
            Just(","), Just(" or "), Just(" and "), Just("+"), Just("-"), Just("*"), Just("@"),
            Just(" offset "), Just("5m"), Just("1e30"), Just(":"), Just("sum"), Just("by"), Just("rate"),
            Just("info"), Just("topk"), Just("1"), Just("-1"), Just("#"), Just("\n"), Just(" "),
            Just("__name__"), Just("bool"), Just("on"), Just("group_left"), Just("\"\\xff\""), Just("Inf"),
        ], 0..30),
    ) {
        harness::run(tokens.concat().as_bytes());
    }
}

/// proptest builds the value tree of `vector_expr()` recursively, and in an
/// unoptimised build each of those generic frames is tens of kilobytes: deep
/// draws overflow libtest's 2 MiB thread stack inside proptest, before any
/// aetos code runs (CI saw it once in ~5000 draws). The properties therefore
/// run on a thread with a generous stack. The product's own stack use is
/// bounded separately: see `deepest_accepted_queries_fit_in_a_quarter_of_a_
/// worker_thread_stack` in `src/tenancy`.
fn on_a_big_stack(property: fn()) {
    let outcome = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(property)
        .expect("spawn the property thread")
        .join();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Each property above, run as a test on a big stack.
mod big_stack {
    #[test]
    fn every_selector_of_a_random_query_is_scoped() {
        super::on_a_big_stack(super::every_selector_of_a_random_query_is_scoped);
    }

    #[test]
    fn random_scalar_and_range_expressions_are_scoped() {
        super::on_a_big_stack(super::random_scalar_and_range_expressions_are_scoped);
    }

    #[test]
    fn random_series_selectors_are_scoped() {
        super::on_a_big_stack(super::random_series_selectors_are_scoped);
    }

    #[test]
    fn selectors_with_modifiers_or_operators_are_not_series_selectors() {
        super::on_a_big_stack(
            super::selectors_with_modifiers_or_operators_are_not_series_selectors,
        );
    }

    #[test]
    fn arbitrary_text_never_panics_and_accepted_text_is_scoped() {
        super::on_a_big_stack(super::arbitrary_text_never_panics_and_accepted_text_is_scoped);
    }

    #[test]
    fn token_soup_never_panics_and_accepted_soup_is_scoped() {
        super::on_a_big_stack(super::token_soup_never_panics_and_accepted_soup_is_scoped);
    }
}

/// Replay the fuzz seeds (and any local `fuzz/corpus/scope_query` entries
/// left by a fuzzing run) through the fuzz harness.
#[test]
fn fuzz_harness_holds_on_the_seed_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for dir in ["seeds/scope_query", "corpus/scope_query"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let data = std::fs::read(entry.path()).expect("read seed");
            harness::run(&data);
            replayed += 1;
        }
    }
    assert!(
        replayed >= 50,
        "only {replayed} seeds found under fuzz/seeds"
    );
}

// ─── Raw strings: what the oracle and aetos read is what Prometheus reads ──

/// The value of the `job` matcher of `q`, as the oracle reads it.
fn oracle_job_value(q: &str) -> Result<String, String> {
    match oracle::parse(q)? {
        promql_parser::parser::Expr::VectorSelector(vs) => vs
            .matchers
            .matchers
            .iter()
            .find(|m| m.name == "job")
            .map(|m| m.value.clone())
            .ok_or_else(|| format!("no job matcher in {q:?}")),
        e => Err(format!("{q:?} read as {e}")),
    }
}

/// Prometheus reads a backtick string verbatim, whatever backslashes or
/// escape-like sequences it holds; aetos (scoping it) and the oracle (saying
/// what it means) must both read exactly that. The first is the case
/// `selectors_with_modifiers_or_operators_are_not_series_selectors` once
/// found, when its oracle asked promql-parser alone.
#[test]
fn raw_strings_with_backslashes_mean_their_text() {
    for raw in [
        "\\",
        "\\\\",
        "\\d+",
        "a\\",
        "\\x41",
        "\\u0041",
        "\\U00000041",
        "\\101",
        "\\n",
        "\\t",
        "\\'",
        "\\\"",
        "\\a\\b\\f\\v\\r",
        "\\0",
        "\\\n",
        "'\"",
        "#x",
    ] {
        let q = format!("up{{job=`{raw}`}}");
        assert_eq!(oracle_job_value(&q).as_deref(), Ok(raw), "oracle on {q:?}");
        assert!(matches!(
            oracle::parse(&format!("up{{project=`{raw}`}}")),
            Ok(promql_parser::parser::Expr::VectorSelector(_))
        ));
        let out = scope_selector(&q, LABEL, "p").unwrap_or_else(|e| panic!("refused {q:?}: {e}"));
        assert_eq!(
            oracle_job_value(&out).as_deref(),
            Ok(raw),
            "aetos on {q:?} gave {out:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::Direct(REGRESSIONS))),
        ..ProptestConfig::default()
    })]

    /// Any backtick string (escape-like sequences, quotes, line breaks, any
    /// character but U+FFFD) means its text to the oracle and to aetos, and
    /// the plain-selector oracle of the property above agrees with aetos.
    #[test]
    fn any_raw_string_means_its_text_to_aetos_and_the_oracle(
        raw in proptest::collection::vec(prop_oneof![
            3 => Just("\\".to_owned()),
            3 => "[abfnrtvxuU0-7'\"\\\n\r\t{}#,=]",
            // U+FFFD is refused on purpose (Prometheus reads it as invalid UTF-8).
            2 => "[^`\u{FFFD}]",
        ], 0..12).prop_map(|parts| parts.concat()),
    ) {
        let q = format!("up{{job=`{raw}`}}");
        prop_assert_eq!(oracle_job_value(&q), Ok(raw.clone()));
        let out = scope_selector(&q, LABEL, "p");
        prop_assert!(out.is_ok(), "aetos refused {:?}: {:?}", q, out);
        let out = out.unwrap_or_default();
        prop_assert_eq!(oracle_job_value(&out), Ok(raw));
        prop_assert_eq!(oracle::check_scoped(&out, LABEL, "p"), Ok(1));
    }
}
