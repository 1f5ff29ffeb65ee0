//! `[prometheus] metric_rules_file`: which metrics a scoped caller may read,
//! by role and/or project (see `doc/source/admin/metric-rules.rst`).
//!
//! The file is read at start-up (a broken one stops start-up and fails
//! `check-config`, with the file and line named), re-read when it changes
//! and on SIGHUP (a broken one keeps the last good rules, logged). The
//! rules that apply to a caller become the tenancy engine's
//! [`Grants`](crate::tenancy::Grants), enforced in the same walk as the
//! project matcher. Without a file every metric of the project is readable,
//! as before.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use serde::Deserialize;

use crate::tenancy::{Grant, Grants};

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileText {
    rules: Vec<RuleText>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleText {
    /// Applies to callers holding any of these roles; empty or absent: any.
    #[serde(default)]
    roles: Vec<String>,
    /// Applies to callers scoped to one of these project ids; empty or
    /// absent: any.
    #[serde(default)]
    projects: Vec<String>,
    /// The series selectors this rule allows.
    allow: Vec<String>,
}

/// One rule, parsed.
#[derive(Debug)]
struct Rule {
    roles: Vec<String>,
    projects: Vec<String>,
    allow: Vec<Arc<Grant>>,
}

impl Rule {
    fn applies(&self, project: &str, roles: &[String]) -> bool {
        (self.projects.is_empty() || self.projects.iter().any(|p| p == project))
            && (self.roles.is_empty()
                || self
                    .roles
                    .iter()
                    .any(|r| roles.iter().any(|c| c.eq_ignore_ascii_case(r))))
    }
}

/// The grants of one caller, with a key naming them for rewrite caches.
#[derive(Debug, Clone)]
pub struct CallerGrants {
    pub grants: Arc<Grants>,
    /// Rules generation and the indices of the rules that apply: two
    /// callers with the same key are allowed exactly the same.
    pub key: String,
}

impl CallerGrants {
    /// The grants when they allow less than every series (see
    /// [`Grants::allows_everything`]): what the answer filters of `rules`,
    /// `alerts` and Alertmanager's alerts must check expressions against.
    /// `None`: they filter by project only, as without a rules file.
    pub fn restricted(&self) -> Option<&Grants> {
        (!self.grants.allows_everything()).then_some(self.grants.as_ref())
    }
}

/// The rules in force, and where they come from.
#[derive(Debug, Default)]
pub struct MetricRules {
    file: Option<PathBuf>,
    current: RwLock<Arc<Vec<Rule>>>,
    generation: AtomicU64,
}

impl MetricRules {
    /// No rules file: every metric of the project is readable.
    pub fn none() -> MetricRules {
        MetricRules::default()
    }

    /// Reads and checks `path`.
    pub fn load(path: PathBuf) -> Result<MetricRules, String> {
        let rules = parse_file(&path)?;
        Ok(MetricRules {
            file: Some(path),
            current: RwLock::new(Arc::new(rules)),
            generation: AtomicU64::new(1),
        })
    }

    /// The rules file, if any (for the reload task).
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Re-reads the file; on failure the last good rules stay.
    pub fn reload(&self) -> Result<(), String> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let rules = parse_file(path)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(rules);
        self.generation.fetch_add(1, Ordering::Relaxed);
        tracing::info!(file = %path.display(), "metric access rules reloaded");
        Ok(())
    }

    /// What a caller scoped to `project` with `roles` may read; `None`
    /// without a rules file (everything of the project).
    pub fn grants(&self, project: &str, roles: &[String]) -> Option<CallerGrants> {
        self.file.as_ref()?;
        let (rules, generation) = {
            let cur = self.current.read().unwrap_or_else(PoisonError::into_inner);
            (cur.clone(), self.generation.load(Ordering::Relaxed))
        };
        let mut key = format!("g{generation}:");
        let mut grants = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            if r.applies(project, roles) {
                key.push_str(&i.to_string());
                key.push(',');
                grants.extend(r.allow.iter().cloned());
            }
        }
        Some(CallerGrants {
            grants: Arc::new(Grants::new(grants)),
            key,
        })
    }
}

/// Reads and checks a rules file; errors name the file and the line.
fn parse_file(path: &Path) -> Result<Vec<Rule>, String> {
    let name = path.display();
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("metric rules file {name}: {e}"))?;
    parse(&text).map_err(|e| format!("metric rules file {name}: {e}"))
}

/// The 1-based line where `needle` first appears at or after line `from`.
fn line_of(text: &str, needle: &str, from: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
}

fn parse(text: &str) -> Result<Vec<Rule>, String> {
    // yaml_serde's messages carry "at line L column C".
    let f: FileText = yaml_serde::from_str(text).map_err(|e| e.to_string())?;
    let mut rules = Vec::with_capacity(f.rules.len());
    let mut cursor = 1;
    for (i, r) in f.rules.into_iter().enumerate() {
        let n = i + 1;
        let at = |needle: &str, cursor: usize| match line_of(text, needle, cursor) {
            Some(l) => format!("line {l}: rule {n}"),
            None => format!("rule {n}"),
        };
        if r.allow.is_empty() {
            return Err(format!(
                "{}: allow must list at least one series selector",
                at("allow", cursor)
            ));
        }
        if let Some(bad) = r.roles.iter().chain(&r.projects).find(|s| s.is_empty()) {
            return Err(format!(
                "{}: empty role or project {bad:?}",
                at("roles", cursor)
            ));
        }
        let mut allow = Vec::with_capacity(r.allow.len());
        for a in &r.allow {
            let line = line_of(text, a, cursor);
            let grant = Grant::parse(a).map_err(|e| format!("{}: allow: {e}", at(a, cursor)))?;
            if let Some(l) = line {
                cursor = l;
            }
            allow.push(Arc::new(grant));
        }
        rules.push(Rule {
            roles: r.roles,
            projects: r.projects,
            allow,
        });
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
rules:
  - roles: [reader, member]
    allow:
      - '{__name__=~"ceilometer_.*"}'
  - projects: [p-x]
    allow:
      - '{job="x-exporter"}'
"#;

    fn rules(text: &str) -> MetricRules {
        MetricRules {
            file: Some(PathBuf::from("rules.yaml")),
            current: RwLock::new(Arc::new(parse(text).expect("valid"))),
            generation: AtomicU64::new(1),
        }
    }

    fn roles(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_union_of_the_rules_that_apply_is_granted() {
        let r = rules(GOOD);
        let g = r.grants("p-x", &roles(&["Reader"])).unwrap();
        assert_eq!(g.grants.iter().count(), 2);
        assert_eq!(g.key, "g1:0,1,");
        let g = r.grants("p-y", &roles(&["reader"])).unwrap();
        assert_eq!(g.grants.iter().count(), 1);
        assert!(g.grants.admits_name("ceilometer_cpu"));
        assert!(!g.grants.admits_name("node_load1"));
    }

    #[test]
    fn a_caller_no_rule_applies_to_is_granted_nothing() {
        let g = rules(GOOD).grants("p-y", &roles(&["observer"])).unwrap();
        assert_eq!(g.grants.iter().count(), 0);
        assert!(g.restricted().is_some(), "nothing is a restriction");
    }

    #[test]
    fn an_everything_rule_restricts_no_answer() {
        let r = rules(
            "rules:\n  - allow: ['{__name__=~\".+\"}']\n  - roles: [reader]\n    allow: [up]\n",
        );
        assert!(r
            .grants("p", &roles(&["reader"]))
            .unwrap()
            .restricted()
            .is_none());
        assert!(rules(GOOD)
            .grants("p-x", &roles(&["reader"]))
            .unwrap()
            .restricted()
            .is_some());
    }

    #[test]
    fn without_a_file_everything_is_allowed() {
        assert!(MetricRules::none()
            .grants("p", &roles(&["reader"]))
            .is_none());
    }

    #[test]
    fn a_bad_selector_is_refused_with_its_line() {
        let text =
            "rules:\n  - allow:\n      - up\n  - roles: [reader]\n    allow:\n      - 'sum(up)'\n";
        let e = parse(text).unwrap_err();
        assert!(e.starts_with("line 6: rule 2: allow:"), "{e}");
    }

    #[test]
    fn yaml_errors_name_the_line() {
        let e = parse("rules:\n  - allow: [up\n").unwrap_err();
        assert!(e.contains("line"), "{e}");
        let e = parse("rules:\n  - alow: [up]\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        assert!(parse("rules:\n  - roles: [reader]\n    allow: []\n").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn a_failed_reload_keeps_the_last_good_rules() {
        let dir = std::env::temp_dir().join(format!("aetos-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rules.yaml");
        std::fs::write(&path, GOOD).unwrap();
        let r = MetricRules::load(path.clone()).unwrap();
        std::fs::write(&path, "rules: [").unwrap();
        assert!(r.reload().is_err());
        let g = r.grants("p-x", &roles(&["reader"])).unwrap();
        assert_eq!(g.grants.iter().count(), 2);
        std::fs::write(&path, "rules:\n  - allow: [up]\n").unwrap();
        r.reload().unwrap();
        let g = r.grants("p-x", &roles(&["reader"])).unwrap();
        assert_eq!(g.key, "g2:0,");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
