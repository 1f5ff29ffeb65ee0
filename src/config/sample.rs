//! The sample `aetos.conf` and the configuration reference, printed from the
//! option table.
//!
//! The sample follows oslo-config-generator's layout (what operators of
//! upstream Aetos know): `[section]` headers, a `# From <project>` banner per
//! origin, each option's help wrapped at 79 columns as comments with its
//! type, choices, bounds and deprecated names, then `#name = default`.
//! aetos adds one line to options it only accepts, so nobody expects an
//! ignored option to work.

use std::fmt::Write as _;

use super::options::{sections, Kind, OptSpec, Support, OPTIONS};

/// Width oslo-config-generator wraps at (upstream's `wrap_width = 79`).
const WRAP: usize = 79;

/// Greedy word wrap of `text` into lines of at most `width` characters,
/// each starting with `prefix`; words longer than a line are not split.
fn wrap(text: &str, prefix: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && prefix.len() + line.len() + 1 + word.len() > width {
            lines.push(format!("{prefix}{line}"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(format!("{prefix}{line}"));
    }
    lines
}

/// How a default is written on the `#name = …` line (oslo's format:
/// `<None>` when unset, lists comma-joined, strings with surrounding
/// whitespace quoted).
fn default_text(spec: &OptSpec) -> Vec<String> {
    let Some(d) = spec.default else {
        return vec!["<None>".to_owned()];
    };
    match spec.kind {
        Kind::List => vec![super::resolve::parse_list(d).join(",")],
        Kind::MultiString => vec![d.to_owned()],
        Kind::Bool => vec![super::resolve::parse_bool(d).map_or(d.to_owned(), |b| b.to_string())],
        _ if d.trim() != d => vec![format!("\"{d}\"")],
        _ => vec![d.to_owned()],
    }
}

fn bound(v: Option<impl ToString>) -> Option<String> {
    v.map(|v| v.to_string())
}

/// The inclusive bounds of a numeric kind, as printed.
fn bounds(kind: &Kind) -> (Option<String>, Option<String>) {
    match *kind {
        Kind::Int { min, max } => (bound(min), bound(max)),
        Kind::Float { min, max } => (bound(min), bound(max)),
        Kind::Port => (Some("0".to_owned()), Some("65535".to_owned())),
        _ => (None, None),
    }
}

/// The comment lines and default line(s) of one option.
fn sample_option(out: &mut String, spec: &OptSpec) {
    let help = format!("{} ({})", spec.help, spec.kind.type_name());
    for line in wrap(&help, "# ", WRAP) {
        out.push_str(&line);
        out.push('\n');
    }
    let (min, max) = bounds(&spec.kind);
    if let Some(m) = min {
        let _ = writeln!(out, "# Minimum value: {m}");
    }
    if let Some(m) = max {
        let _ = writeln!(out, "# Maximum value: {m}");
    }
    if let Kind::Enum { choices, .. } = spec.kind {
        out.push_str("# Possible values:\n");
        for c in choices {
            let _ = writeln!(out, "# {c}");
        }
    }
    for a in spec.aliases {
        let _ = writeln!(out, "# Deprecated group/name - [{}]/{}", a.section, a.name);
    }
    if spec.support == Support::Accepted {
        out.push_str("# Accepted for compatibility with upstream Aetos; aetos ignores it.\n");
    }
    for d in default_text(spec) {
        if d.is_empty() {
            let _ = writeln!(out, "#{} =", spec.name);
        } else {
            let _ = writeln!(out, "#{} = {d}", spec.name);
        }
    }
    out.push('\n');
}

/// The sample configuration file, as printed by `aetos-api genconfig` and
/// committed as `etc/aetos/aetos.conf.sample`.
pub fn sample_config() -> String {
    let mut out = String::new();
    for (i, section) in sections().into_iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "[{section}]\n");
        let mut origin = "";
        for spec in OPTIONS.iter().filter(|o| o.section == section) {
            if spec.origin != origin {
                origin = spec.origin;
                let _ = writeln!(out, "#\n# From {origin}\n#\n");
            }
            sample_option(&mut out, spec);
        }
    }
    // One trailing newline, like the generator.
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// RST-safe inline literal.
fn literal(s: &str) -> String {
    if s.is_empty() {
        "(empty)".to_owned()
    } else {
        format!("``{s}``")
    }
}

/// The generated part of `doc/source/configuration/index.rst`: every
/// section and option with type, default, status and help.
pub fn reference_rst() -> String {
    let mut out = String::new();
    for section in sections() {
        let title = format!("[{section}]");
        let _ = writeln!(out, "{title}\n{}\n", "~".repeat(title.len()));
        for spec in OPTIONS.iter().filter(|o| o.section == section) {
            let _ = writeln!(out, "``{}``", spec.name);
            let mut facts = vec![format!("*{}*", spec.kind.type_name())];
            let default = match spec.default {
                None => "unset".to_owned(),
                Some(_) => default_text(spec)
                    .iter()
                    .map(|d| literal(d))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            facts.push(format!("default {default}"));
            if let Kind::Enum { choices, .. } = spec.kind {
                facts.push(format!(
                    "one of {}",
                    choices
                        .iter()
                        .map(|c| literal(c))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            let (min, max) = bounds(&spec.kind);
            if let Some(m) = min {
                facts.push(format!("at least {m}"));
            }
            if let Some(m) = max {
                facts.push(format!("at most {m}"));
            }
            if spec.kind == Kind::Secret {
                facts.push("secret".to_owned());
            }
            if !spec.aliases.is_empty() {
                let names: Vec<String> = spec
                    .aliases
                    .iter()
                    .map(|a| format!("``[{}] {}``", a.section, a.name))
                    .collect();
                facts.push(format!("deprecated names {}", names.join(", ")));
            }
            facts.push(match spec.support {
                Support::Implemented => "implemented".to_owned(),
                Support::Accepted => "**accepted and ignored**".to_owned(),
            });
            facts.push(format!("from {}", spec.origin));
            for line in wrap(&facts.join("; "), "   ", WRAP) {
                out.push_str(&line);
                out.push('\n');
            }
            out.push('\n');
            for line in wrap(spec.help, "   ", WRAP) {
                out.push_str(&line);
                out.push('\n');
            }
            out.push('\n');
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_lines_within_width_and_long_words_whole() {
        let lines = wrap("aaa bbb ccc ddd", "# ", 9);
        assert_eq!(lines, ["# aaa bbb", "# ccc ddd"]);
        let lines = wrap("averyveryverylongword x", "# ", 9);
        assert_eq!(lines, ["# averyveryverylongword", "# x"]);
    }

    #[test]
    fn sample_lines_fit_in_79_columns_except_defaults_and_long_words() {
        for line in sample_config().lines() {
            let is_default =
                line.starts_with('#') && !line.starts_with("# ") && line.contains(" =");
            let one_word = line.trim_start_matches("# ").split_whitespace().count() == 1;
            assert!(
                line.chars().count() <= WRAP || is_default || one_word,
                "too long: {line}"
            );
        }
    }

    #[test]
    fn sample_shows_deprecated_names_types_and_defaults() {
        let s = sample_config();
        assert!(s.contains("# Deprecated group/name - [keystone_authtoken]/memcache_servers\n#memcached_servers = <None>\n"));
        assert!(s.contains("#auth_mode = keystone\n"));
        assert!(s.contains("#use_tls = false\n"));
        assert!(s.contains("#instance_format = \"[instance: %(uuid)s] \"\n"));
        assert!(s.contains("#policy_dirs = policy.d\n"));
        assert!(s.contains("#backends =\n"));
        assert!(
            s.contains("(port value)\n# Minimum value: 0\n# Maximum value: 65535\n#port = 9090\n")
        );
        assert!(s.starts_with("[DEFAULT]\n\n#\n# From aetos\n#\n\n"));
        assert!(s.ends_with('\n') && !s.ends_with("\n\n"));
    }

    #[test]
    fn sample_marks_accepted_only_options() {
        let s = sample_config();
        let paste = s
            .find("#paste_config = api-paste.ini")
            .expect("paste_config in sample");
        assert!(s[..paste]
            .ends_with("# Accepted for compatibility with upstream Aetos; aetos ignores it.\n"));
    }

    #[test]
    fn every_option_appears_once_in_the_sample_and_the_reference() {
        let s = sample_config();
        let rst = reference_rst();
        for spec in OPTIONS {
            let line = format!("\n#{} =", spec.name);
            assert!(
                s.contains(&line),
                "{} missing from the sample",
                spec.label()
            );
            assert!(
                rst.contains(&format!("``{}``\n", spec.name)),
                "{} missing from the reference",
                spec.label()
            );
        }
    }
}
