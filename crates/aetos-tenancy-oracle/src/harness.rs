//! The fuzz harness logic, shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/scope_query.rs`) and by a plain test that replays the
//! seed corpus (`tests/tenancy_props.rs`), so that the stable test suite
//! exercises exactly what the fuzzer runs.
//!
//! Input layout: the bytes are read as UTF-8 (other inputs are skipped). If
//! the text contains a `\u{0}`, the part before it is the project id and the
//! rest the query; otherwise the project id is `fuzz-p`. For every input:
//! scoping must not panic; when it is accepted, the output must satisfy the
//! invariant (oracle), mean exactly the input plus the matcher, and be a
//! fixed point of scoping. The same holds for the `match[]` path. A refusal
//! as `Unfaithful` is a failure too: it means one of the engine's proofs
//! caught a printer corner that the walker does not refuse explicitly.

use aetos_tenancy::{scope_query, scope_selector, TenancyError};

use crate::oracle;

/// Label name used by the harness (the default `project_label_name`).
pub const LABEL: &str = "project";

/// Run one fuzz input; panics (the fuzzer's crash signal) on any violation.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (project, query) = match text.split_once('\u{0}') {
        Some((p, q)) if !p.is_empty() => (p, q),
        _ => ("fuzz-p", text),
    };
    match scope_query(query, LABEL, project) {
        Ok(out) => {
            prove(query, &out, project);
            assert_eq!(
                scope_query(&out, LABEL, project).as_deref(),
                Ok(out.as_str()),
                "scoping is not idempotent for {query:?}"
            );
        }
        Err(e) => no_printer_gap(query, &e),
    }
    match scope_selector(query, LABEL, project) {
        Ok(out) => {
            prove(query, &out, project);
            assert_eq!(
                scope_selector(&out, LABEL, project).as_deref(),
                Ok(out.as_str()),
                "selector scoping is not idempotent for {query:?}"
            );
        }
        Err(e) => no_printer_gap(query, &e),
    }
}

/// `Unfaithful` means a proof caught what the walker should have refused
/// with a clear reason (a printer corner nobody listed yet): report it.
fn no_printer_gap(query: &str, e: &TenancyError) {
    if let TenancyError::Unfaithful(why) = e {
        panic!("unlisted printer corner for {query:?}: {why}");
    }
}

fn prove(query: &str, out: &str, project: &str) {
    if let Err(e) = oracle::check_scoped(out, LABEL, project) {
        panic!("invariant broken for {query:?}: {e}");
    }
    if let Err(e) = oracle::same_meaning(query, out, LABEL, project) {
        panic!("{e}");
    }
}
