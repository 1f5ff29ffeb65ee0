//! Options from the environment, as oslo.config's environment source reads
//! them: `OS_<GROUP>__<OPTION>` (group and option upper-cased, `-` as `_`),
//! e.g. `OS_KEYSTONE_AUTHTOKEN__PASSWORD`, `OS_API__PORT`,
//! `OS_DEFAULT__DEBUG`. They win over every file and lose to the command
//! line, as in oslo.config.
//!
//! A secret need not sit in the environment itself:
//! `OS_<GROUP>__<OPTION>_FILE=/path` reads the value from that file (one
//! trailing newline removed), which is how Kubernetes and container
//! runtimes hand secrets over. The exact option name wins when an option's
//! name itself ends in `_file` (`OS_OSLO_POLICY__POLICY_FILE` is the policy
//! file's path).
//!
//! Each variable becomes one more configuration document, named after the
//! variable, so its value is converted and checked exactly like a file's,
//! and an error says which variable set it. A value is taken literally
//! (`$` is not a reference).

use std::path::PathBuf;

use super::ini::{IniDocument, IniEntry, IniSection};
use super::options::{self, Kind, OptSpec};
use super::{ConfigError, Warning};

/// One option set from the environment, for `check-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSetting {
    /// `[section] option`.
    pub option: String,
    /// The variable that set it (`…_FILE` when read from a file).
    pub variable: String,
    /// What to show: the value, `***` for a secret, or the file's path.
    pub shown: String,
    /// Whether the value was read from the file `shown` names.
    pub from_file: bool,
}

impl std::fmt::Display for EnvSetting {
    /// `[api] port = 9999 (OS_API__PORT)`, `[keystone_authtoken] password =
    /// *** (…)`, or `… read from /run/secrets/pw (…_FILE)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = if self.from_file { "read from" } else { "=" };
        write!(
            f,
            "{} {how} {} ({})",
            self.option, self.shown, self.variable
        )
    }
}

/// The variable name oslo.config reads `spec` from.
pub fn variable_name(spec: &OptSpec) -> String {
    format!(
        "OS_{}__{}",
        spec.section.to_ascii_uppercase(),
        spec.name.to_ascii_uppercase().replace('-', "_")
    )
}

/// The environment's settings of known options, as documents to read after
/// the files (one per variable, in the option table's order), what they
/// set, and a warning for each `OS_<GROUP>__<OPTION>` naming no option.
#[allow(clippy::type_complexity)]
pub(super) fn documents(
    vars: &[(String, String)],
) -> Result<(Vec<(PathBuf, IniDocument)>, Vec<EnvSetting>, Vec<Warning>), ConfigError> {
    let mut docs = Vec::new();
    let mut shown = Vec::new();
    let mut used = std::collections::HashSet::new();
    let get = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    for spec in options::OPTIONS {
        let name = variable_name(spec);
        let file_name = format!("{name}_FILE");
        // An option of that exact name takes the variable (see the module doc).
        let file_var = get(&file_name).filter(|_| !is_option_variable(&file_name));
        let (variable, value, what) = match (get(&name), file_var) {
            (None, None) => continue,
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    spec.section,
                    spec.name,
                    format!("both {name} and {file_name} are set in the environment; set one"),
                ))
            }
            (Some(v), None) => {
                let what = if spec.kind == Kind::Secret {
                    "***".to_owned()
                } else {
                    v.clone()
                };
                (name.clone(), v.clone(), what)
            }
            (None, Some(path)) => (
                file_name.clone(),
                read_value(spec, &file_name, path)?,
                path.clone(),
            ),
        };
        used.insert(variable.clone());
        if value.contains(['\n', '\r']) {
            return Err(ConfigError::new(
                spec.section,
                spec.name,
                format!("{variable}: a value from the environment must be one line"),
            ));
        }
        let label = if variable == name {
            format!("<environment {variable}>")
        } else {
            format!("<environment {variable}={what}>")
        };
        docs.push((
            PathBuf::from(label),
            IniDocument {
                sections: vec![IniSection {
                    name: spec.section.to_owned(),
                    entries: vec![IniEntry {
                        key: spec.name.to_owned(),
                        value: value.replace('$', "$$"),
                        line: 1,
                    }],
                }],
            },
        ));
        shown.push(EnvSetting {
            option: spec.label(),
            from_file: variable != name,
            variable,
            shown: what,
        });
    }
    let warnings = vars
        .iter()
        .filter(|(k, _)| k.starts_with("OS_") && k[3..].contains("__") && !used.contains(k))
        .map(|(k, _)| {
            Warning(format!(
                "environment {k}: names no aetos option (OS_<GROUP>__<OPTION>[_FILE]), ignored"
            ))
        })
        .collect();
    Ok((docs, shown, warnings))
}

fn is_option_variable(var: &str) -> bool {
    options::OPTIONS.iter().any(|s| variable_name(s) == var)
}

/// The value in the file `path` names, without one trailing newline. The
/// error never quotes the content.
fn read_value(spec: &OptSpec, variable: &str, path: &str) -> Result<String, ConfigError> {
    let err = |why: String| ConfigError::new(spec.section, spec.name, format!("{variable}: {why}"));
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read {path}: {e}")))?;
    let mut text = String::from_utf8(bytes).map_err(|_| err(format!("{path} is not UTF-8")))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

/// The process environment's `OS_…` variables. One whose value is not
/// UTF-8 is an error (it could not be an option's value).
pub(super) fn process_vars() -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (k, v) in std::env::vars_os() {
        let Some(k) = k
            .to_str()
            .filter(|k| k.starts_with("OS_"))
            .map(str::to_owned)
        else {
            continue;
        };
        let v = v.into_string().map_err(|_| {
            ConfigError::new(
                "",
                "",
                format!("environment {k}: the value is not valid UTF-8"),
            )
        })?;
        out.push((k, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::load_with_env;
    use crate::test_support::TempDir;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const FILE: &str = "[DEFAULT]\nauth_mode = noauth\ndebug = false\n[api]\nport = 8080\n";

    #[test]
    fn environment_wins_over_files_and_loses_to_the_command_line() {
        let dir = TempDir::new("env-order");
        let f = dir.write("aetos.conf", FILE);
        let env = vars(&[
            ("OS_API__PORT", "9191"),
            ("OS_DEFAULT__DEBUG", "true"),
            ("OS_API__ROOT_PATH", "/p$x"),
        ]);
        let (c, _) = load_with_env(std::slice::from_ref(&f), &[], &[], &env).unwrap();
        assert_eq!(c.api.port, 9191);
        assert!(c.default.debug);
        // Literal: `$` is no reference.
        assert_eq!(c.api.root_path, "/p$x");
        let shown: Vec<String> = c.from_environment.iter().map(|e| e.to_string()).collect();
        assert!(
            shown.contains(&"[api] port = 9191 (OS_API__PORT)".to_owned()),
            "{shown:?}"
        );
        let cli = [("api", "port", "7000".to_owned())];
        let (c, _) = load_with_env(&[f], &[], &cli, &env).unwrap();
        assert_eq!(c.api.port, 7000);
    }

    #[test]
    fn secrets_come_from_files_and_are_never_shown() {
        let dir = TempDir::new("env-secret");
        let f = dir.write(
            "aetos.conf",
            "[DEFAULT]\nauth_mode = noauth\n[keystone_authtoken]\npassword = from-file\n",
        );
        let secret = dir.write("pw", "s3cr3t-from-secret-file\n");
        let env = vars(&[(
            "OS_KEYSTONE_AUTHTOKEN__PASSWORD_FILE",
            secret.to_str().unwrap(),
        )]);
        let (c, _) = load_with_env(std::slice::from_ref(&f), &[], &[], &env).unwrap();
        let pw = c.keystone.password.as_ref().unwrap();
        assert_eq!(
            pw.expose(),
            "s3cr3t-from-secret-file",
            "one trailing newline removed"
        );
        let shown = c.from_environment[0].to_string();
        assert_eq!(
            shown,
            format!(
                "[keystone_authtoken] password read from {} (OS_KEYSTONE_AUTHTOKEN__PASSWORD_FILE)",
                secret.display()
            )
        );
        let env = vars(&[("OS_KEYSTONE_AUTHTOKEN__PASSWORD", "s3cr3t-in-env")]);
        let (c, _) = load_with_env(std::slice::from_ref(&f), &[], &[], &env).unwrap();
        assert_eq!(
            c.keystone.password.as_ref().unwrap().expose(),
            "s3cr3t-in-env"
        );
        let shown = format!("{:?} {}", c.from_environment, c.from_environment[0]);
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(
            shown.contains("password = *** (OS_KEYSTONE_AUTHTOKEN__PASSWORD)"),
            "{shown}"
        );
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        let dir = TempDir::new("env-bad");
        let f = dir.write("aetos.conf", FILE);
        let err = |pairs: &[(&str, &str)]| {
            load_with_env(std::slice::from_ref(&f), &[], &[], &vars(pairs))
                .unwrap_err()
                .to_string()
        };
        let e = err(&[("OS_API__PORT", "eighty")]);
        assert!(
            e.starts_with("[api] port:") && e.contains("<environment OS_API__PORT>"),
            "{e}"
        );
        let e = err(&[("OS_API__PORT", "1"), ("OS_API__PORT_FILE", "/x")]);
        assert!(e.contains("both OS_API__PORT and OS_API__PORT_FILE"), "{e}");
        let e = err(&[("OS_KEYSTONE_AUTHTOKEN__PASSWORD_FILE", "/nonexistent/pw")]);
        assert!(
            e.starts_with("[keystone_authtoken] password: OS_KEYSTONE_AUTHTOKEN__PASSWORD_FILE: cannot read /nonexistent/pw"),
            "{e}"
        );
        let two = dir.write("two-lines", "a\nb\n");
        let e = err(&[(
            "OS_KEYSTONE_AUTHTOKEN__PASSWORD_FILE",
            two.to_str().unwrap(),
        )]);
        assert!(
            e.contains("must be one line") && !e.contains("a\\nb"),
            "{e}"
        );
    }

    #[test]
    fn unknown_option_variables_are_warned_about_and_others_ignored() {
        let dir = TempDir::new("env-unknown");
        let f = dir.write("aetos.conf", FILE);
        let env = vars(&[
            ("OS_API__PORTT", "1"),
            // The openstack CLI's variables: not options, no warning.
            ("OS_AUTH_URL", "http://k/v3"),
            ("OS_CLOUD", "devstack"),
        ]);
        let (c, w) = load_with_env(&[f], &[], &[], &env).unwrap();
        assert!(c.from_environment.is_empty());
        let w: Vec<String> = w.into_iter().map(|w| w.0).collect();
        assert_eq!(
            w,
            ["environment OS_API__PORTT: names no aetos option (OS_<GROUP>__<OPTION>[_FILE]), ignored"]
        );
    }

    #[test]
    fn an_option_named_like_a_file_variable_takes_it() {
        let dir = TempDir::new("env-exact");
        let f = dir.write("aetos.conf", FILE);
        let env = vars(&[("OS_OSLO_POLICY__POLICY_FILE", "other.yaml")]);
        let (c, _) = load_with_env(&[f], &[], &[], &env).unwrap();
        assert_eq!(c.oslo_policy.policy_file, "other.yaml");
    }
}
