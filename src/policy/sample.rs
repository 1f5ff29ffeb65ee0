//! Generated policy documents, all driven by the defaults table: the sample
//! file (`oslopolicy-sample-generator` format, `aetos-api genpolicy`), the
//! effective policy (`oslopolicy-policy-generator`) and the reStructuredText
//! rule reference embedded in `doc/source/configuration/policy.rst`.
//!
//! The committed `etc/aetos/policy.yaml.sample` and the doc's generated part
//! are checked against these functions by unit tests; regenerate them with
//! `AETOS_UPDATE_GOLDEN=1 cargo test --lib policy::sample`.

use super::defaults::{defaults, RuleDefault};
use super::Enforcer;
use std::fmt::Write as _;

/// Width of oslo's comment wrapping (`textwrap.wrap(…, 70)`), prefix
/// included.
const WRAP_WIDTH: usize = 70;

/// Marker lines around the generated part of the policy reference.
#[cfg(test)]
const REFERENCE_BEGIN: &str = ".. BEGIN GENERATED POLICY REFERENCE";
/// See [`REFERENCE_BEGIN`].
#[cfg(test)]
const REFERENCE_END: &str = ".. END GENERATED POLICY REFERENCE";

/// The sample policy file, byte for byte what oslopolicy-sample-generator
/// would print for these defaults: per rule the wrapped description, one
/// `# METHOD  path` line per operation, the intended scopes, and the rule
/// commented out, followed by a blank line.
pub fn sample_policy() -> String {
    let mut out = String::new();
    for d in defaults() {
        out.push_str(&format_rule_default(d));
    }
    out
}

/// One rule's block in the sample file.
fn format_rule_default(d: &RuleDefault) -> String {
    let mut text = String::new();
    if !d.description.is_empty() {
        text.push_str(&format_help_text(d.description));
        text.push('\n');
    }
    for (method, path) in d.operations {
        if !method.is_empty() && !path.is_empty() {
            let _ = writeln!(text, "# {method}  {path}");
        }
    }
    if !d.scope_types.is_empty() {
        let _ = writeln!(text, "# Intended scope(s): {}", d.scope_types.join(", "));
    }
    let _ = writeln!(text, "#{}\n", yaml_entry(d.name, d.check_str));
    text
}

/// `"name": "check"`, with `\` and `"` escaped so any check string stays
/// valid YAML (oslo writes them raw; ours contain neither).
fn yaml_entry(name: &str, check: &str) -> String {
    format!("\"{}\": \"{}\"", yaml_escape(name), yaml_escape(check))
}

fn yaml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

/// oslo's `_format_help_text`: paragraphs wrapped at 70 columns behind
/// `# `, blank lines kept as `#`, indented lines kept verbatim.
fn format_help_text(description: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut paragraph: Vec<&str> = Vec::new();
    for line in description.trim().lines() {
        if line.trim().is_empty() {
            lines.extend(wrap(&paragraph.join(" ")));
            lines.push("#".to_string());
            paragraph.clear();
        } else if line.len() == line.trim_start().len() {
            paragraph.push(line.trim_end());
        } else {
            if !paragraph.is_empty() {
                lines.extend(wrap(&paragraph.join(" ")));
                lines.push("#".to_string());
                paragraph.clear();
            }
            lines.push(format!("# {}", line.trim_end()));
        }
    }
    if !paragraph.is_empty() {
        lines.extend(wrap(&paragraph.join(" ")));
    }
    lines.join("\n")
}

/// Greedy word wrap behind `# ` at [`WRAP_WIDTH`] columns (Python's
/// `textwrap.wrap` without hyphen splitting); overlong words are cut.
fn wrap(text: &str) -> Vec<String> {
    let width = WRAP_WIDTH - 2;
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word;
        loop {
            let need = if line.is_empty() { 0 } else { 1 } + word.chars().count();
            if line.chars().count() + need <= width {
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
                break;
            }
            if !line.is_empty() {
                lines.push(format!("# {line}"));
                line.clear();
                continue;
            }
            // A word longer than a whole line: cut it.
            let cut = word
                .char_indices()
                .nth(width)
                .map_or(word.len(), |(i, _)| i);
            lines.push(format!("# {}", &word[..cut]));
            word = &word[cut..];
            if word.is_empty() {
                break;
            }
        }
    }
    if !line.is_empty() {
        lines.push(format!("# {line}"));
    }
    lines
}

/// The effective policy, as oslopolicy-policy-generator prints it: one
/// `"name": "check"` line per rule in force.
pub fn effective_policy(enforcer: &Enforcer) -> String {
    let mut out = String::new();
    for (name, check) in enforcer.effective_rules() {
        let _ = writeln!(out, "{}", yaml_entry(&name, &check));
    }
    out
}

/// The rule reference (reStructuredText) for the policy documentation,
/// including the marker lines. Only the golden test below uses it: it
/// checks (or, with `AETOS_UPDATE_GOLDEN`, rewrites) the generated part of
/// `doc/source/configuration/policy.rst`.
#[cfg(test)]
fn reference_rst() -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{REFERENCE_BEGIN} (generated from the defaults table; do not edit by hand)\n"
    );
    for d in defaults() {
        let _ = writeln!(out, "``{}``", d.name);
        let _ = writeln!(out, "    :Default: ``{}``", d.check_str);
        if !d.operations.is_empty() {
            let _ = writeln!(out, "    :Operations:");
            for (method, path) in d.operations {
                let _ = writeln!(out, "        - **{method}** ``{path}``");
            }
        }
        if !d.scope_types.is_empty() {
            let _ = writeln!(out, "    :Scope Types:");
            for scope in d.scope_types {
                let _ = writeln!(out, "        - **{scope}**");
            }
        }
        let _ = writeln!(out, "\n    {}\n", d.description);
    }
    let _ = writeln!(out, "{REFERENCE_END}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn repo_file(rel: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
    }

    fn update_golden() -> bool {
        std::env::var_os("AETOS_UPDATE_GOLDEN").is_some()
    }

    #[test]
    fn committed_sample_policy_matches_the_generated_one() {
        let path = repo_file("etc/aetos/policy.yaml.sample");
        let generated = sample_policy();
        if update_golden() {
            std::fs::write(&path, &generated).expect("write sample");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is stale; regenerate with `AETOS_UPDATE_GOLDEN=1 cargo test --lib policy::sample` \
             (or `aetos-api genpolicy > {}`)",
            path.display(),
            path.display()
        );
    }

    #[test]
    fn committed_policy_reference_matches_the_defaults_table() {
        let path = repo_file("doc/source/configuration/policy.rst");
        let doc = std::fs::read_to_string(&path).expect("policy.rst exists");
        let (Some(start), Some(end_marker)) = (doc.find(REFERENCE_BEGIN), doc.find(REFERENCE_END))
        else {
            panic!("{} lacks the generated-reference markers", path.display());
        };
        let end = doc[end_marker..]
            .find('\n')
            .map_or(doc.len(), |i| end_marker + i + 1);
        let generated = reference_rst();
        if update_golden() && doc[start..end] != generated {
            let updated = format!("{}{}{}", &doc[..start], generated, &doc[end..]);
            std::fs::write(&path, updated).expect("write policy.rst");
            return;
        }
        assert!(
            doc[start..end] == generated,
            "the generated part of {} is stale; regenerate with \
             `AETOS_UPDATE_GOLDEN=1 cargo test --lib policy::sample`",
            path.display()
        );
    }

    #[test]
    fn sample_blocks_follow_oslo_generator_format() {
        let sample = sample_policy();
        assert!(sample.contains(
            "# Prometheus Query endpoint with tenancy enforced.\n\
             # GET  /api/v1/query\n\
             # POST  /api/v1/query\n\
             # Intended scope(s): project\n\
             #\"telemetry:query\": \"role:reader and project_id:%(project_id)s\"\n\n"
        ));
        assert!(sample.contains("#\"segregation\": \"rule:context_is_admin\"\n\n"));
        for d in defaults() {
            assert!(sample.contains(&format!("#\"{}\": \"{}\"\n", d.name, d.check_str)));
        }
    }

    #[test]
    fn sample_is_valid_yaml_once_uncommented_and_restores_the_defaults() {
        let uncommented: String = sample_policy()
            .lines()
            .filter_map(|l| l.strip_prefix("#\""))
            .map(|l| format!("\"{l}\n"))
            .collect();
        let parsed: yaml_serde::Mapping = yaml_serde::from_str(&uncommented).expect("valid YAML");
        assert_eq!(parsed.len(), defaults().len());
        for d in defaults() {
            assert_eq!(
                parsed.get(d.name).and_then(|v| v.as_str()),
                Some(d.check_str)
            );
        }
    }

    #[test]
    fn descriptions_wrap_at_seventy_columns() {
        let long = "word ".repeat(40);
        let text = format_help_text(&long);
        for line in text.lines() {
            assert!(line.len() <= 70, "{line:?}");
            assert!(line.starts_with("# "));
        }
        assert_eq!(text.split_whitespace().filter(|w| *w == "word").count(), 40);
        assert_eq!(
            format_help_text("First.\n\n    literal  block\nMore."),
            "# First.\n#\n#     literal  block\n# More."
        );
        let huge = "x".repeat(150);
        let lines = wrap(&huge);
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.len() <= 70));
    }
}
