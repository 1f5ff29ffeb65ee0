//! Locating, reading and watching the operator's policy override files.
//!
//! Follows oslo.policy: `policy_file` (relative names are searched in the
//! directories of the config files, then `/etc/aetos/`) is read first, then
//! every `*.yaml`/`*.yml`/`*.json` file of each `policy_dirs` entry in sorted
//! order; a later file wins per rule. A missing file or directory means "no
//! overrides from it"; a present file that cannot be read or parsed is an
//! error (the enforcer refuses to start, or fails closed on reload).
//!
//! Change detection compares a [`Fingerprint`] of the involved paths
//! (modification time, size, inode) so the enforcer can notice edits with a
//! few `stat` calls and no reads.

use super::PolicyError;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The project's own config directory, searched after the config files'
/// directories (oslo.config's `/etc/<project>/`).
pub(crate) const PROJECT_CONFIG_DIR: &str = "/etc/aetos";

/// What a policy file says about one rule.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RuleSpec {
    /// A check string.
    Text(String),
    /// The legacy list-of-lists form (outer `or`, inner `and`).
    Legacy(Vec<Vec<String>>),
}

/// The overrides read from all policy files, in the order oslo merges them.
#[derive(Debug, Default)]
pub(crate) struct Overrides {
    /// `(rule name, spec)` in file order; a later entry for the same name
    /// replaces an earlier one.
    pub(crate) rules: Vec<(String, RuleSpec)>,
    /// Every file that was read, in reading order.
    pub(crate) files: Vec<PathBuf>,
}

/// Identity and modification state of one path: `None` when it is absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    ino: u64,
    #[cfg(unix)]
    ctime_ns: i64,
}

/// The stamps of every path that can change the effective policy.
pub(crate) type Fingerprint = Vec<(PathBuf, Option<Stamp>)>;

/// Stats `path` (following symlinks, as a reader would).
fn stamp(path: &Path) -> Option<Stamp> {
    let md = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some(Stamp {
            modified: md.modified().ok(),
            len: md.len(),
            ino: md.ino(),
            ctime_ns: md
                .ctime()
                .saturating_mul(1_000_000_000)
                .saturating_add(md.ctime_nsec()),
        })
    }
    #[cfg(not(unix))]
    {
        Some(Stamp {
            modified: md.modified().ok(),
            len: md.len(),
        })
    }
}

/// Resolves a configured file or directory name like oslo.config's
/// `find_file`: absolute names as they are, relative names in each config
/// directory, then in [`PROJECT_CONFIG_DIR`]. `None` when nothing exists.
pub(crate) fn resolve(name: &str, config_dirs: &[PathBuf], want_dir: bool) -> Option<PathBuf> {
    if name.is_empty() {
        return None;
    }
    let candidate = Path::new(name);
    // Something present that cannot be inspected (e.g. permission denied)
    // still counts as found for a file, so that reading it reports the real
    // problem instead of silently falling back to the defaults.
    let fits = |p: &Path| match std::fs::metadata(p) {
        Ok(m) => m.is_dir() == want_dir,
        Err(e) => !want_dir && e.kind() != std::io::ErrorKind::NotFound,
    };
    if candidate.is_absolute() {
        return Some(candidate.to_path_buf());
    }
    config_dirs
        .iter()
        .map(PathBuf::as_path)
        .chain(std::iter::once(Path::new(PROJECT_CONFIG_DIR)))
        .map(|d| d.join(candidate))
        .find(|p| fits(p))
}

/// The current fingerprint, for the configured names and the directory
/// files found by the last load.
pub(crate) fn fingerprint(
    policy_file: &str,
    policy_dirs: &[String],
    config_dirs: &[PathBuf],
    dir_files: &[PathBuf],
) -> Fingerprint {
    let mut fp = Vec::with_capacity(1 + policy_dirs.len() + dir_files.len());
    let file = resolve(policy_file, config_dirs, false).unwrap_or_default();
    let st = stamp(&file);
    fp.push((file, st));
    for d in policy_dirs {
        let dir = resolve(d, config_dirs, true).unwrap_or_default();
        let st = stamp(&dir);
        fp.push((dir, st));
    }
    for f in dir_files {
        fp.push((f.clone(), stamp(f)));
    }
    fp
}

/// The override files of one policy directory, in the order oslo reads
/// them: sorted by name, dot-files skipped, only `*.yaml`, `*.yml` and
/// `*.json`.
fn list_dir(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let wanted = !name.starts_with('.')
            && [".yaml", ".yml", ".json"]
                .iter()
                .any(|ext| name.ends_with(ext));
        if wanted && !entry.path().is_dir() {
            names.push(name.to_string());
        }
    }
    names.sort();
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}

/// The files currently present in the policy directories (for watching;
/// directories that cannot be listed contribute nothing here, and the load
/// reports them).
pub(crate) fn scan_dir_files(policy_dirs: &[String], config_dirs: &[PathBuf]) -> Vec<PathBuf> {
    policy_dirs
        .iter()
        .filter_map(|d| resolve(d, config_dirs, true))
        .filter_map(|dir| list_dir(&dir).ok())
        .flatten()
        .collect()
}

/// Reads every override file. Missing files and directories are skipped;
/// anything present that cannot be read or parsed is an error.
pub(crate) fn load(
    policy_file: &str,
    policy_dirs: &[String],
    config_dirs: &[PathBuf],
) -> Result<Overrides, PolicyError> {
    let mut out = Overrides::default();
    if let Some(path) = resolve(policy_file, config_dirs, false) {
        match std::fs::read(&path) {
            Ok(bytes) => {
                out.rules.extend(parse_document(&path, &bytes)?);
                out.files.push(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(PolicyError::Read {
                    path,
                    message: e.to_string(),
                })
            }
        }
    }
    for d in policy_dirs {
        let Some(dir) = resolve(d, config_dirs, true) else {
            continue;
        };
        let files = match list_dir(&dir) {
            Ok(files) => files,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(PolicyError::Read {
                    path: dir,
                    message: e.to_string(),
                })
            }
        };
        for path in files {
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                // Removed between listing and reading: it no longer counts.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(PolicyError::Read {
                        path,
                        message: e.to_string(),
                    })
                }
            };
            out.rules.extend(parse_document(&path, &bytes)?);
            out.files.push(path);
        }
    }
    Ok(out)
}

/// Parses a policy document: JSON first, then YAML (as oslo does), into
/// `(rule name, spec)` pairs in document order.
pub(crate) fn parse_document(
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<(String, RuleSpec)>, PolicyError> {
    let bad = |message: String| PolicyError::Parse {
        path: path.to_path_buf(),
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8: {e}")))?;
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    // JSON first, then YAML, as oslo does; both keep document order and,
    // like Python's loaders, let a repeated key's last value win.
    let entries = match serde_json::from_str::<Entries>(text) {
        Ok(entries) => entries.0,
        Err(json_err) => match yaml_serde::from_str::<Entries>(text) {
            Ok(entries) => entries.0,
            Err(yaml_err) => {
                let is_json = path.extension().is_some_and(|e| e == "json");
                return Err(bad(if is_json {
                    format!("invalid JSON: {json_err}")
                } else {
                    format!("invalid YAML: {yaml_err}")
                }));
            }
        },
    };
    let mut rules = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        let name = match k {
            yaml_serde::Value::String(s) => s,
            other => {
                return Err(bad(format!(
                    "rule names must be strings, found {}",
                    yaml_brief(&other)
                )))
            }
        };
        let spec = match v {
            yaml_serde::Value::String(s) => RuleSpec::Text(s),
            // `"rule":` with no value: oslo parses Python's None like the
            // empty string, i.e. "always allowed". Kept for compatibility,
            // but said out loud.
            yaml_serde::Value::Null => {
                tracing::warn!(
                    file = %path.display(),
                    rule = %name,
                    "policy rule has no value; like oslo.policy, an empty rule allows everyone"
                );
                RuleSpec::Text(String::new())
            }
            yaml_serde::Value::Sequence(outer) => {
                RuleSpec::Legacy(legacy(&name, outer).map_err(bad)?)
            }
            other => {
                return Err(bad(format!(
                    "rule \"{name}\": expected a check string, found {}",
                    yaml_brief(&other)
                )))
            }
        };
        rules.push((name, spec));
    }
    Ok(rules)
}

/// A document's top-level mapping as ordered entries. Unlike
/// `yaml_serde::Mapping`, repeated keys are kept (the later one wins when
/// merged, as with Python's loaders) and JSON objects keep their order.
struct Entries(Vec<(yaml_serde::Value, yaml_serde::Value)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping of rule names to check strings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Entries, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(Entries(out))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Entries, E> {
                Ok(Entries(Vec::new()))
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Entries, E> {
                Ok(Entries(Vec::new()))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// Converts the legacy `[["a", "b"], ["c"]]` form; a bare string inside the
/// outer list counts as a one-element inner list, as in oslo.
fn legacy(name: &str, outer: Vec<yaml_serde::Value>) -> Result<Vec<Vec<String>>, String> {
    let mut out = Vec::with_capacity(outer.len());
    for inner in outer {
        match inner {
            yaml_serde::Value::String(s) => out.push(vec![s]),
            yaml_serde::Value::Sequence(items) => {
                let mut checks = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        yaml_serde::Value::String(s) => checks.push(s),
                        other => {
                            return Err(format!(
                                "rule \"{name}\": list entries must be strings, found {}",
                                yaml_brief(&other)
                            ))
                        }
                    }
                }
                out.push(checks);
            }
            other => {
                return Err(format!(
                    "rule \"{name}\": list entries must be strings or lists, found {}",
                    yaml_brief(&other)
                ))
            }
        }
    }
    Ok(out)
}

/// A short description of a YAML value's kind, for error messages.
fn yaml_brief(v: &yaml_serde::Value) -> &'static str {
    match v {
        yaml_serde::Value::Null => "null",
        yaml_serde::Value::Bool(_) => "a boolean",
        yaml_serde::Value::Number(_) => "a number",
        yaml_serde::Value::String(_) => "a string",
        yaml_serde::Value::Sequence(_) => "a list",
        yaml_serde::Value::Mapping(_) => "a mapping",
        yaml_serde::Value::Tagged(_) => "a tagged value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Result<Vec<(String, RuleSpec)>, PolicyError> {
        parse_document(Path::new("/x/policy.yaml"), text.as_bytes())
    }

    #[test]
    fn yaml_and_json_documents_give_the_same_rules_in_order() {
        let y = doc("\"b\": \"role:x\"\na: '!'\n").unwrap();
        let j = doc("{\"b\": \"role:x\", \"a\": \"!\"}").unwrap();
        assert_eq!(y, j);
        assert_eq!(
            y,
            vec![
                ("b".to_string(), RuleSpec::Text("role:x".into())),
                ("a".to_string(), RuleSpec::Text("!".into()))
            ]
        );
    }

    #[test]
    fn repeated_keys_keep_the_last_value_like_python() {
        for text in ["a: '!'\na: '@'\n", "{\"a\": \"!\", \"a\": \"@\"}"] {
            let rules = doc(text).unwrap();
            assert_eq!(
                rules.last(),
                Some(&("a".to_string(), RuleSpec::Text("@".into())))
            );
        }
    }

    #[test]
    fn empty_and_comment_only_documents_have_no_rules() {
        assert!(doc("").unwrap().is_empty());
        assert!(doc("# nothing here\n").unwrap().is_empty());
    }

    #[test]
    fn rule_without_value_is_the_empty_rule_like_oslo() {
        assert_eq!(
            doc("a:\nb: ~\n").unwrap(),
            vec![
                ("a".to_string(), RuleSpec::Text(String::new())),
                ("b".to_string(), RuleSpec::Text(String::new()))
            ]
        );
    }

    #[test]
    fn legacy_lists_are_accepted() {
        assert_eq!(
            doc("a: [[\"role:x\", \"role:y\"], \"role:z\"]").unwrap(),
            vec![(
                "a".to_string(),
                RuleSpec::Legacy(vec![
                    vec!["role:x".into(), "role:y".into()],
                    vec!["role:z".into()]
                ])
            )]
        );
    }

    #[test]
    fn malformed_documents_name_the_file_and_problem() {
        for bad in [
            "a: [",
            "- a\n- b\n",
            "a: 3\n",
            "a: {b: c}\n",
            "1: '@'\n",
            "a: [[1]]",
        ] {
            let err = doc(bad).expect_err(bad).to_string();
            assert!(err.contains("/x/policy.yaml"), "{err}");
        }
    }

    #[test]
    fn relative_names_resolve_in_config_dirs_first() {
        let tmp = std::env::temp_dir().join(format!("aetos-policy-resolve-{}", std::process::id()));
        let a = tmp.join("a");
        let b = tmp.join("b");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("p.yaml"), "").unwrap();
        assert_eq!(
            resolve("p.yaml", &[a.clone(), b.clone()], false),
            Some(b.join("p.yaml"))
        );
        std::fs::write(a.join("p.yaml"), "").unwrap();
        assert_eq!(
            resolve("p.yaml", &[a.clone(), b.clone()], false),
            Some(a.join("p.yaml"))
        );
        assert_eq!(resolve("p.yaml", &[a.clone(), b.clone()], true), None);
        assert_eq!(resolve("", std::slice::from_ref(&a), false), None);
        assert_eq!(
            resolve("/abs/p.yaml", &[a], false),
            Some(PathBuf::from("/abs/p.yaml"))
        );
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
