//! oslo.config's rules for turning parsed files into option values.
//!
//! Given the parsed files in load order, this module answers "what is the
//! value of `[section] option`?" exactly as oslo.config would:
//!
//! * section names are compared in lower case, except that only the exact
//!   spelling `DEFAULT` is the default section (`[default]` is another,
//!   unknown, section); option names are case-sensitive;
//! * the newest file that sets an option wins; within that file the last
//!   occurrence wins; the canonical name is looked at before deprecated
//!   names in each file;
//! * a multi-valued option collects every occurrence from every file,
//!   oldest first;
//! * `$name`, `${name}`, `$section.name` and `${section.name}` are replaced
//!   by the value of that option (looked up in the option's own section, then
//!   in `[DEFAULT]`); `$$` and `\$` stand for a literal `$`; a `$` not
//!   followed by a name is kept. A reference to an option that does not exist
//!   is an error, as in oslo (so an upstream file that works has its literal
//!   dollars escaped, and they come out the same here);
//! * values are then converted with oslo's types (see [`Kind`]).
//!
//! It also produces the warnings about what the files contain that aetos
//! does not use (unknown sections and options, accepted-but-ignored options,
//! deprecated names).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::ini::IniDocument;
use super::options::{self, Kind, OptSpec, Support, IGNORED_SECTIONS, OPTIONS};
use super::{ConfigError, Secret, Warning};

/// oslo.config's group-name normalization.
pub(crate) fn normalize_section(name: &str) -> String {
    if name == "DEFAULT" {
        name.to_owned()
    } else {
        name.to_lowercase()
    }
}

/// The values one file sets: normalized section → key → every value in order.
struct FileValues {
    path: PathBuf,
    sections: HashMap<String, HashMap<String, Vec<String>>>,
}

/// All files of one load, oldest first, plus the raw documents (for warnings).
pub(crate) struct Sources {
    files: Vec<FileValues>,
    docs: Vec<(PathBuf, IniDocument)>,
}

impl Sources {
    /// Sources with no file at all: every option has its default.
    pub(crate) fn empty() -> Self {
        Sources {
            files: Vec::new(),
            docs: Vec::new(),
        }
    }

    /// Files parsed by the INI layer, in load order.
    pub(crate) fn from_documents(docs: Vec<(PathBuf, IniDocument)>) -> Self {
        let files = docs
            .iter()
            .map(|(path, doc)| {
                let mut sections: HashMap<String, HashMap<String, Vec<String>>> = HashMap::new();
                for section in &doc.sections {
                    let values = sections
                        .entry(normalize_section(&section.name))
                        .or_default();
                    for entry in &section.entries {
                        values
                            .entry(entry.key.clone())
                            .or_default()
                            .push(entry.value.clone());
                    }
                }
                FileValues {
                    path: path.clone(),
                    sections,
                }
            })
            .collect();
        Sources { files, docs }
    }

    /// One warning per unknown section, unknown option, deprecated name and
    /// accepted-but-ignored option found in the files, in file order.
    pub(crate) fn scan_warnings(&self) -> Vec<Warning> {
        let known = options::sections();
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut push = |key: (String, String), text: String| {
            if seen.insert(key) {
                out.push(Warning(text));
            }
        };
        for (_, doc) in &self.docs {
            for section in &doc.sections {
                let norm = normalize_section(&section.name);
                if !known.contains(&norm.as_str()) {
                    if let Some((_, why)) = IGNORED_SECTIONS.iter().find(|(s, _)| *s == norm) {
                        push(
                            (norm.clone(), String::new()),
                            format!("[{}]: not used by aetos ({why}), ignored", section.name),
                        );
                    } else {
                        let hint = if norm == "default" {
                            " (the default section is spelled [DEFAULT])"
                        } else {
                            ""
                        };
                        push(
                            (norm.clone(), String::new()),
                            format!("[{}]: unknown section, ignored{hint}", section.name),
                        );
                    }
                    continue;
                }
                for entry in &section.entries {
                    let key = (norm.clone(), entry.key.clone());
                    if let Some(spec) = options::find(&norm, &entry.key) {
                        if spec.support == Support::Accepted {
                            push(key, format!(
                                "[{}] {}: accepted for compatibility but not implemented by aetos, ignored",
                                spec.section, spec.name
                            ));
                        }
                    } else if let Some(spec) = options::find_alias(&norm, &entry.key) {
                        let ignored = if spec.support == Support::Accepted {
                            " (which aetos ignores)"
                        } else {
                            ""
                        };
                        push(
                            key,
                            format!(
                                "[{}] {}: deprecated name, use [{}] {}{ignored}",
                                norm, entry.key, spec.section, spec.name
                            ),
                        );
                    } else {
                        push(
                            key,
                            format!("[{}] {}: unknown option, ignored", norm, entry.key),
                        );
                    }
                }
            }
        }
        out
    }
}

/// Where a value came from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    Default,
    Unset,
    File(PathBuf),
}

/// An option's raw value(s) after lookup and substitution.
#[derive(Debug, Clone)]
pub(crate) struct Setting {
    /// One value for scalars (none when unset), every value for multi options.
    pub values: Vec<String>,
    pub origin: Origin,
}

/// A converted value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Typed {
    Unset,
    Str(String),
    Bool(bool),
    Int(i64),
    Float(f64),
    List(Vec<String>),
}

/// Looks options up across the files, with memoization and loop detection
/// for `$` references.
pub(crate) struct Resolver<'a> {
    sources: &'a Sources,
    memo: HashMap<usize, Setting>,
    active: Vec<usize>,
    /// Options read through the typed getters (lets a test prove that every
    /// implemented option reaches `Config`).
    pub(crate) read: HashSet<usize>,
}

fn index_of(section: &str, name: &str) -> Option<usize> {
    OPTIONS
        .iter()
        .position(|o| o.section == section && o.name == name)
}

fn error(spec: &OptSpec, problem: impl Into<String>) -> ConfigError {
    ConfigError::new(spec.section, spec.name, problem)
}

fn internal(section: &str, name: &str) -> ConfigError {
    ConfigError::new(
        section,
        name,
        "internal error: option missing from the option table",
    )
}

/// Python's `repr` of a list of strings, which is what oslo substitutes for
/// a reference to a list option.
fn python_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("'{i}'")).collect();
    format!("[{}]", quoted.join(", "))
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(sources: &'a Sources) -> Self {
        Resolver {
            sources,
            memo: HashMap::new(),
            active: Vec::new(),
            read: HashSet::new(),
        }
    }

    /// The raw value(s) of option `idx` from the files, or its default.
    fn lookup(&self, spec: &OptSpec) -> Setting {
        let mut names: Vec<(String, &str)> = vec![(normalize_section(spec.section), spec.name)];
        names.extend(
            spec.aliases
                .iter()
                .map(|a| (normalize_section(a.section), a.name)),
        );
        let multi = spec.kind == Kind::MultiString;
        let mut collected: Vec<String> = Vec::new();
        let mut newest: Option<&Path> = None;
        for file in self.sources.files.iter().rev() {
            for (section, name) in &names {
                let Some(values) = file.sections.get(section).and_then(|s| s.get(*name)) else {
                    continue;
                };
                if multi {
                    let mut v = values.clone();
                    v.append(&mut collected);
                    collected = v;
                    newest.get_or_insert(&file.path);
                } else if let Some(last) = values.last() {
                    return Setting {
                        values: vec![last.clone()],
                        origin: Origin::File(file.path.clone()),
                    };
                }
            }
        }
        if let Some(path) = newest {
            return Setting {
                values: collected,
                origin: Origin::File(path.to_path_buf()),
            };
        }
        match spec.default {
            Some(d) => Setting {
                values: vec![d.to_owned()],
                origin: Origin::Default,
            },
            None => Setting {
                values: Vec::new(),
                origin: Origin::Unset,
            },
        }
    }

    /// The value(s) of option `idx` after `$` substitution.
    pub(crate) fn setting(&mut self, idx: usize) -> Result<Setting, ConfigError> {
        if let Some(s) = self.memo.get(&idx) {
            return Ok(s.clone());
        }
        let Some(spec) = OPTIONS.get(idx) else {
            return Err(ConfigError::new(
                "DEFAULT",
                "",
                "internal error: bad option index",
            ));
        };
        if self.active.contains(&idx) {
            return Err(error(
                spec,
                "its value refers back to itself through $ references",
            ));
        }
        self.active.push(idx);
        let raw = self.lookup(spec);
        let substituted: Result<Vec<String>, ConfigError> = raw
            .values
            .iter()
            .map(|v| self.substitute(spec, v))
            .collect();
        self.active.pop();
        let setting = Setting {
            values: substituted?,
            origin: raw.origin,
        };
        self.memo.insert(idx, setting.clone());
        Ok(setting)
    }

    /// oslo.config's template substitution (Python `string.Template` with
    /// names `[_a-z][._a-z0-9]*`, case-insensitive, and `\$` meaning `$$`).
    fn substitute(&mut self, spec: &OptSpec, value: &str) -> Result<String, ConfigError> {
        if !value.contains('$') {
            return Ok(value.to_owned());
        }
        let text = value.replace("\\$", "$$");
        let chars: Vec<char> = text.chars().collect();
        let is_start = |c: char| c == '_' || c.is_ascii_alphabetic();
        let is_rest = |c: char| c == '_' || c == '.' || c.is_ascii_alphanumeric();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c != '$' {
                out.push(c);
                i += 1;
                continue;
            }
            match chars.get(i + 1) {
                Some('$') => {
                    out.push('$');
                    i += 2;
                }
                Some('{') => {
                    let start = i + 2;
                    let mut end = start;
                    if chars.get(start).is_some_and(|c| is_start(*c)) {
                        end += 1;
                        while chars.get(end).is_some_and(|c| is_rest(*c)) {
                            end += 1;
                        }
                    }
                    if end > start && chars.get(end) == Some(&'}') {
                        let name: String = chars[start..end].iter().collect();
                        out.push_str(&self.reference(spec, &name)?);
                        i = end + 1;
                    } else {
                        out.push('$');
                        i += 1;
                    }
                }
                Some(c) if is_start(*c) => {
                    let start = i + 1;
                    let mut end = start + 1;
                    while chars.get(end).is_some_and(|c| is_rest(*c)) {
                        end += 1;
                    }
                    let name: String = chars[start..end].iter().collect();
                    out.push_str(&self.reference(spec, &name)?);
                    i = end;
                }
                _ => {
                    out.push('$');
                    i += 1;
                }
            }
        }
        Ok(out)
    }

    /// The text a `$name` reference in option `spec` stands for.
    fn reference(&mut self, spec: &OptSpec, name: &str) -> Result<String, ConfigError> {
        let (section, option) = match name.split_once('.') {
            Some((group, option)) => (group, option),
            None => (spec.section, name),
        };
        let target = index_of(section, option)
            .or_else(|| {
                options::find_alias(section, option).and_then(|s| index_of(s.section, s.name))
            })
            .or_else(|| index_of("DEFAULT", name));
        let Some(target) = target else {
            // The name after `$` is part of the value: never show it for a secret.
            let shown = if spec.kind == Kind::Secret {
                "an option that does not exist".to_owned()
            } else {
                format!("${name}, which is not an option")
            };
            return Err(error(
                spec,
                format!("its value refers to {shown} (write $$ for a literal $)"),
            ));
        };
        let setting = self.setting(target)?;
        let target_spec = &OPTIONS[target];
        Ok(match target_spec.kind {
            Kind::MultiString => python_list(&setting.values),
            Kind::List => match convert(target_spec, &setting)? {
                Typed::List(items) => python_list(&items),
                _ => String::new(),
            },
            Kind::Bool => match convert(target_spec, &setting)? {
                Typed::Bool(true) => "True".to_owned(),
                Typed::Bool(false) => "False".to_owned(),
                _ => String::new(),
            },
            _ => setting.values.into_iter().next().unwrap_or_default(),
        })
    }

    /// The converted value of `[section] name`.
    pub(crate) fn typed(
        &mut self,
        section: &str,
        name: &str,
    ) -> Result<(Typed, &'static OptSpec), ConfigError> {
        let idx = index_of(section, name).ok_or_else(|| internal(section, name))?;
        self.read.insert(idx);
        let spec = &OPTIONS[idx];
        let setting = self.setting(idx)?;
        Ok((convert(spec, &setting)?, spec))
    }

    /// Converts `[section] name` only to check its value (for options aetos
    /// accepts but ignores: upstream would fail on a bad value, so does aetos).
    pub(crate) fn check(&mut self, spec: &OptSpec) -> Result<(), ConfigError> {
        let idx =
            index_of(spec.section, spec.name).ok_or_else(|| internal(spec.section, spec.name))?;
        let setting = self.setting(idx)?;
        convert(spec, &setting).map(|_| ())
    }

    /// A string option; empty or unset is `None`.
    pub(crate) fn opt_string(
        &mut self,
        section: &str,
        name: &str,
    ) -> Result<Option<String>, ConfigError> {
        match self.typed(section, name)?.0 {
            Typed::Str(s) if !s.is_empty() => Ok(Some(s)),
            _ => Ok(None),
        }
    }

    /// A string option that has a default; empty stays empty.
    pub(crate) fn string(&mut self, section: &str, name: &str) -> Result<String, ConfigError> {
        match self.typed(section, name)?.0 {
            Typed::Str(s) => Ok(s),
            _ => Ok(String::new()),
        }
    }

    /// A secret option; empty or unset is `None`.
    pub(crate) fn secret(
        &mut self,
        section: &str,
        name: &str,
    ) -> Result<Option<Secret>, ConfigError> {
        Ok(self.opt_string(section, name)?.map(Secret::new))
    }

    /// A boolean option (every boolean has a default).
    pub(crate) fn bool(&mut self, section: &str, name: &str) -> Result<bool, ConfigError> {
        match self.typed(section, name)? {
            (Typed::Bool(b), _) => Ok(b),
            (_, spec) => Err(error(
                spec,
                "internal error: boolean option without a value",
            )),
        }
    }

    /// An integer option that has a default.
    pub(crate) fn int(&mut self, section: &str, name: &str) -> Result<i64, ConfigError> {
        match self.typed(section, name)? {
            (Typed::Int(i), _) => Ok(i),
            (_, spec) => Err(error(
                spec,
                "internal error: integer option without a value",
            )),
        }
    }

    /// An integer option with a default, converted to an unsigned type
    /// (its minimum in the table keeps it in range).
    pub(crate) fn uint<T: TryFrom<i64>>(
        &mut self,
        section: &str,
        name: &str,
    ) -> Result<T, ConfigError> {
        let v = self.int(section, name)?;
        T::try_from(v)
            .map_err(|_| ConfigError::new(section, name, format!("value {v} is out of range")))
    }

    /// A float option; unset is `None`.
    pub(crate) fn opt_float(
        &mut self,
        section: &str,
        name: &str,
    ) -> Result<Option<f64>, ConfigError> {
        match self.typed(section, name)?.0 {
            Typed::Float(f) => Ok(Some(f)),
            _ => Ok(None),
        }
    }

    /// A float option that has a default.
    pub(crate) fn float(&mut self, section: &str, name: &str) -> Result<f64, ConfigError> {
        match self.typed(section, name)? {
            (Typed::Float(f), _) => Ok(f),
            (_, spec) => Err(error(spec, "internal error: float option without a value")),
        }
    }

    /// A list or multi-valued option; unset is empty.
    pub(crate) fn list(&mut self, section: &str, name: &str) -> Result<Vec<String>, ConfigError> {
        match self.typed(section, name)?.0 {
            Typed::List(items) => Ok(items),
            _ => Ok(Vec::new()),
        }
    }

    /// A URL option; unset or empty is `None`.
    pub(crate) fn url(
        &mut self,
        section: &str,
        name: &str,
    ) -> Result<Option<url::Url>, ConfigError> {
        match self.opt_string(section, name)? {
            Some(s) => parse_url(&s)
                .map(Some)
                .map_err(|p| ConfigError::new(section, name, p)),
            None => Ok(None),
        }
    }
}

/// Parses an absolute http(s) URL with a host, or says what is wrong.
pub(crate) fn parse_url(s: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(s).map_err(|e| format!("malformed URL {s:?}: {e}"))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!(
            "malformed URL {s:?}: the scheme must be http or https"
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("malformed URL {s:?}: no host"));
    }
    Ok(u)
}

fn where_from(setting: &Setting) -> String {
    match &setting.origin {
        Origin::File(p) => format!(" (set in {})", p.display()),
        Origin::Default => " (the default)".to_owned(),
        Origin::Unset => String::new(),
    }
}

/// oslo's boolean values.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s.to_lowercase().as_str() {
        "true" | "1" | "on" | "yes" => Some(true),
        "false" | "0" | "off" | "no" => Some(false),
        _ => None,
    }
}

/// oslo's ListOpt: strip, drop trailing commas, split on commas, strip items.
pub(crate) fn parse_list(s: &str) -> Vec<String> {
    let s = s.trim().trim_end_matches(',');
    if s.is_empty() {
        return Vec::new();
    }
    s.split(',').map(|i| i.trim().to_owned()).collect()
}

/// Converts a setting with the option's type, checking bounds and choices.
pub(crate) fn convert(spec: &OptSpec, setting: &Setting) -> Result<Typed, ConfigError> {
    if spec.kind == Kind::MultiString {
        return Ok(Typed::List(setting.values.clone()));
    }
    let Some(raw) = setting.values.last() else {
        return Ok(Typed::Unset);
    };
    let shown = |v: &str| {
        if spec.kind == Kind::Secret {
            "(secret)".to_owned()
        } else {
            format!("{v:?}")
        }
    };
    let bad = |what: String| {
        error(
            spec,
            format!(
                "invalid value {}: {what}{}",
                shown(raw),
                where_from(setting)
            ),
        )
    };
    // oslo turns an empty number into None; aetos keeps the default instead
    // of a value the rest of the service cannot use.
    let numeric_default = || -> Result<Typed, ConfigError> {
        match spec.default {
            Some(d) if !d.trim().is_empty() && setting.origin != Origin::Default => convert(
                spec,
                &Setting {
                    values: vec![d.to_owned()],
                    origin: Origin::Default,
                },
            ),
            _ => Ok(Typed::Unset),
        }
    };
    match spec.kind {
        Kind::String | Kind::Secret => Ok(Typed::Str(raw.clone())),
        Kind::Url => {
            if raw.trim().is_empty() {
                return Ok(Typed::Str(String::new()));
            }
            parse_url(raw.trim())
                .map_err(|p| error(spec, format!("{p}{}", where_from(setting))))?;
            Ok(Typed::Str(raw.trim().to_owned()))
        }
        Kind::Bool => parse_bool(raw)
            .map(Typed::Bool)
            .ok_or_else(|| bad("expected true/false, yes/no, on/off or 1/0".to_owned())),
        Kind::Enum {
            choices,
            ignore_case,
        } => {
            let found = choices.iter().find(|c| {
                if ignore_case {
                    c.eq_ignore_ascii_case(raw)
                } else {
                    **c == raw.as_str()
                }
            });
            match found {
                Some(c) => Ok(Typed::Str((*c).to_owned())),
                None => Err(bad(format!("expected one of {}", choices.join(", ")))),
            }
        }
        Kind::Int { min, max } => {
            let t = raw.trim();
            if t.is_empty() {
                return numeric_default();
            }
            let v: i64 = t
                .parse()
                .map_err(|_| bad("expected an integer".to_owned()))?;
            if let Some(m) = min.filter(|m| v < *m) {
                return Err(bad(format!("must be at least {m}")));
            }
            if let Some(m) = max.filter(|m| v > *m) {
                return Err(bad(format!("must be at most {m}")));
            }
            Ok(Typed::Int(v))
        }
        Kind::Port => {
            let t = raw.trim();
            if t.is_empty() {
                return numeric_default();
            }
            match t.parse::<i64>() {
                Ok(v) if (0..=65535).contains(&v) => Ok(Typed::Int(v)),
                Ok(_) => Err(bad("a port must be between 0 and 65535".to_owned())),
                Err(_) => Err(bad("expected a port number".to_owned())),
            }
        }
        Kind::Float { min, max } => {
            let t = raw.trim();
            if t.is_empty() {
                return numeric_default();
            }
            let v: f64 = t.parse().map_err(|_| bad("expected a number".to_owned()))?;
            if !v.is_finite() {
                return Err(bad("expected a finite number".to_owned()));
            }
            if let Some(m) = min.filter(|m| v < *m) {
                return Err(bad(format!("must be at least {m}")));
            }
            if let Some(m) = max.filter(|m| v > *m) {
                return Err(bad(format!("must be at most {m}")));
            }
            Ok(Typed::Float(v))
        }
        Kind::List => Ok(Typed::List(parse_list(raw))),
        Kind::MultiString => Ok(Typed::List(setting.values.clone())),
    }
}
