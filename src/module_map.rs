//! Checks that the module map in `lib.rs` is true: every top-level module
//! is on it, and every `crate::…` (or `super::…` reaching the crate root)
//! a module names goes to a module on a row below its own. The map is the
//! documentation; this keeps it from drifting, and keeps the layers one-way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The rows of the map, top first.
fn rows(lib_rs: &str) -> Vec<Vec<String>> {
    let doc: Vec<&str> = lib_rs
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    let start = doc
        .iter()
        .position(|l| l.trim() == "## Module map")
        .expect("lib.rs has a `## Module map` section");
    let mut lines = doc[start..]
        .iter()
        .skip_while(|l| l.trim() != "```text")
        .skip(1);
    let mut rows = Vec::new();
    for line in lines.by_ref() {
        if line.trim() == "```" {
            break;
        }
        // The names are what comes before the first `─` or `▼`.
        let names = line.split(['─', '▼']).next().unwrap_or("");
        let row: Vec<String> = names.split_whitespace().map(str::to_owned).collect();
        if !row.is_empty() {
            rows.push(row);
        }
    }
    rows
}

/// Top-level module names a source text refers to through the crate root.
/// `depth` is how many `super::` lead from this file to the crate root.
fn references(text: &str, depth: usize) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut roots = vec!["crate::".to_owned()];
    if depth > 0 {
        roots.push("super::".repeat(depth));
    }
    let mut out = BTreeSet::new();
    for root in &roots {
        for (i, _) in code.match_indices(root.as_str()) {
            // Not the tail of a longer path (`self::super::`, `x_crate::`).
            let before = code[..i].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let rest = &code[i + root.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `crate::{a, b::c, d::{e, f}}`: the first name of each item.
                let mut depth = 0usize;
                let mut item_start = true;
                let mut name = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        c if depth == 0 && item_start && (c.is_alphanumeric() || c == '_') => {
                            name.push(c)
                        }
                        _ if !name.is_empty() => {
                            out.insert(std::mem::take(&mut name));
                            item_start = false;
                        }
                        _ => {}
                    }
                }
                if !name.is_empty() {
                    out.insert(name);
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        }
    }
    out
}

/// `module → modules it refers to`, from every file below `src`.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).expect("below src");
            let parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
                .collect();
            // The crate root, the binary, and this file (whose tests quote paths).
            if parts.len() == 1 && matches!(parts[0].as_str(), "lib" | "main" | "module_map") {
                continue;
            }
            let module = parts[0].clone();
            // `src/a.rs`, `src/a/mod.rs`: one `super::` to the root; each
            // further directory (or a non-mod file in one) adds one.
            let depth = parts.len() - usize::from(parts.last().is_some_and(|p| p == "mod"));
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            let refs = references(&text, depth);
            g.entry(module.clone())
                .or_default()
                .extend(refs.into_iter().filter(|r| *r != module));
        }
    }
    g
}

/// The first cycle in `g`, if any, as `a → b → … → a`.
fn cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut c = path[i..].to_vec();
            c.push(n.to_owned());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_owned());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(n, g, &mut Vec::new(), &mut done))
}

/// Every way the sources break the map (empty: none).
fn violations(lib_rs: &str, g: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let rows = rows(lib_rs);
    let row_of: BTreeMap<&str, usize> = rows
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.iter().map(move |m| (m.as_str(), i)))
        .collect();
    let mut bad = Vec::new();
    for m in g.keys() {
        if !row_of.contains_key(m.as_str()) {
            bad.push(format!("module `{m}` is not on the module map in lib.rs"));
        }
    }
    for (m, refs) in g {
        let Some(&from) = row_of.get(m.as_str()) else {
            continue;
        };
        for r in refs {
            // Names that are not modules on the map (re-exports at the root).
            let Some(&to) = row_of.get(r.as_str()) else {
                continue;
            };
            if to <= from {
                bad.push(format!(
                    "`{m}` uses `{r}`, which is not on a row below it in the module map"
                ));
            }
        }
    }
    if let Some(c) = cycle(g) {
        bad.push(format!("import cycle: {}", c.join(" → ")));
    }
    bad
}

fn sources() -> (String, BTreeMap<String, BTreeSet<String>>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib_rs = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    (lib_rs, graph(&src))
}

#[test]
fn every_import_points_down_the_module_map() {
    let (lib_rs, g) = sources();
    assert!(g.contains_key("api") && g["api"].contains("state"), "{g:?}");
    let bad = violations(&lib_rs, &g);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn an_import_going_up_breaks_the_check() {
    let (lib_rs, mut g) = sources();
    // `state` using `api` (as `api` once used `server` for State).
    g.entry("state".to_owned())
        .or_default()
        .insert("api".to_owned());
    let bad = violations(&lib_rs, &g);
    assert!(
        bad.iter().any(|b| b.contains("`state` uses `api`")),
        "{bad:?}"
    );
    assert!(bad.iter().any(|b| b.starts_with("import cycle")), "{bad:?}");
}

#[test]
fn references_are_read_from_paths_groups_and_super() {
    let text = "use crate::{api::{self, x}, state::State};\n\
                use super::super::limits::Refusal;\n\
                // crate::server is only named in a comment\n\
                let s = crate::metrics::Metrics::new();";
    let r = references(text, 2);
    let r: Vec<&str> = r.iter().map(String::as_str).collect();
    assert_eq!(r, ["api", "limits", "metrics", "state"]);
}
