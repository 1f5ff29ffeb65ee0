//! oslo.config's INI dialect, plugged into config-rs as a [`config::Format`].
//!
//! Existing `aetos.conf` files were written for oslo.config, whose parser is
//! not the INI most libraries implement. The differences matter for real
//! deployments (a service password is just a string in this file):
//!
//! * no escape processing at all: `\` is an ordinary character, also at the
//!   end of a line (rust-ini joins a line ending in `\` with the next one even
//!   with escapes off, which swallows the next option: see below);
//! * a line starting with a space or tab continues the previous value; the
//!   pieces are joined with `\n`; a blank line ends the value, and a
//!   continuation line with no value to continue is an error;
//! * `#` and `;` start a comment only at the very start of a line, so
//!   `password = a#b;c` is the value `a#b;c`;
//! * the key ends at the first `=` or `:`, whichever comes first;
//! * the value is stripped, and one pair of matching surrounding quotes is
//!   removed (`"x"` or `'x'`, only when the first and last characters are the
//!   same quote); quotes anywhere else stay;
//! * a key may repeat: every occurrence is kept, in order (the resolver takes
//!   the last one for ordinary options and all of them for multi-valued ones);
//! * an assignment before any `[section]` is an error.
//!
//! rust-ini was tried first (with escapes off and multi-line values on) and
//! rejected: it still treats a trailing `\` as a line continuation
//! (`password = abc\` followed by `next = x` becomes `password = abcnext = x`,
//! and `next` disappears), glues a line without `=` onto the next key's name,
//! keeps blank lines inside multi-line values and accepts assignments before
//! any section. The dialect is small, so it is implemented here line by line.
//!
//! The parsed file travels through config-rs: [`OsloIni`] implements
//! [`config::Format`] and encodes the document as an ordered list of sections
//! and entries, which [`load_document`] builds with `config::Config` and
//! deserializes back. An ordered list (rather than config-rs tables keyed by
//! section and option) keeps file order for warnings, keeps repeated keys,
//! and keeps section names that contain `.` out of config-rs's path syntax.
//! Merging several files is done by the resolver with oslo's rules, which
//! config-rs's merge (last table wins, arrays replaced) cannot express.

use std::error::Error;
use std::fmt;

use config::{FileStoredFormat, Format, Map, Value, ValueKind};
use serde::Deserialize;

/// One parsed configuration file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IniDocument {
    /// Sections in order of first appearance. A section header repeated in
    /// the same file continues the earlier section, as in oslo.config.
    pub sections: Vec<IniSection>,
}

/// One `[section]` of a file, with its name exactly as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IniSection {
    /// The text between the brackets, unmodified (oslo does not trim it).
    pub name: String,
    /// Every assignment, repeated keys included, in file order.
    pub entries: Vec<IniEntry>,
}

/// One assignment `key = value` (continuation lines already joined).
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct IniEntry {
    /// The key, stripped of surrounding whitespace; case is kept.
    pub key: String,
    /// The value after oslo's stripping and quote removal.
    pub value: String,
    /// 1-based line number of the key, for messages.
    pub line: usize,
}

impl fmt::Debug for IniEntry {
    // Values may be passwords; a Debug print of a parsed file must not leak them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IniEntry")
            .field("key", &self.key)
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("line", &self.line)
            .finish()
    }
}

/// A syntax error, located by line. The offending line is deliberately not
/// quoted: it may be (part of) a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniSyntaxError {
    /// 1-based line number.
    pub line: usize,
    /// The section the line is in, if any.
    pub section: Option<String>,
    /// The key concerned, when the error is about an assignment.
    pub key: Option<String>,
    /// What is wrong, in oslo.config's words where it has them.
    pub message: String,
}

impl fmt::Display for IniSyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl Error for IniSyntaxError {}

/// The oslo.config INI dialect as a config-rs format.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsloIni;

impl Format for OsloIni {
    fn parse(
        &self,
        uri: Option<&String>,
        text: &str,
    ) -> Result<Map<String, Value>, Box<dyn Error + Send + Sync>> {
        let doc = parse(text)?;
        let sections = doc
            .sections
            .into_iter()
            .map(|section| {
                let entries = section
                    .entries
                    .into_iter()
                    .map(|e| {
                        let mut t = Map::new();
                        t.insert("key".to_owned(), Value::new(uri, e.key));
                        t.insert("value".to_owned(), Value::new(uri, e.value));
                        let line = i64::try_from(e.line).unwrap_or(i64::MAX);
                        t.insert("line".to_owned(), Value::new(uri, line));
                        Value::new(uri, ValueKind::Table(t))
                    })
                    .collect::<Vec<_>>();
                let mut t = Map::new();
                t.insert("name".to_owned(), Value::new(uri, section.name));
                t.insert(
                    "entries".to_owned(),
                    Value::new(uri, ValueKind::Array(entries)),
                );
                Value::new(uri, ValueKind::Table(t))
            })
            .collect::<Vec<_>>();
        let mut root = Map::new();
        root.insert(
            "sections".to_owned(),
            Value::new(uri, ValueKind::Array(sections)),
        );
        Ok(root)
    }
}

impl FileStoredFormat for OsloIni {
    fn file_extensions(&self) -> &'static [&'static str] {
        &["conf", "ini"]
    }
}

/// Why a document could not be loaded through config-rs.
#[derive(Debug)]
pub enum LoadError {
    /// The text is not valid oslo INI.
    Syntax(IniSyntaxError),
    /// config-rs failed in a way that is not a syntax error (not expected
    /// for documents produced by [`OsloIni`]; kept as text for the message).
    Other(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Syntax(e) => e.fmt(f),
            LoadError::Other(s) => f.write_str(s),
        }
    }
}

/// Parses `text` through config-rs with the [`OsloIni`] format and returns
/// the document it produced.
pub fn load_document(text: &str) -> Result<IniDocument, LoadError> {
    let built = config::Config::builder()
        .add_source(config::File::from_str(text, OsloIni))
        .build()
        .map_err(|e| match e {
            config::ConfigError::FileParse { cause, .. } => {
                match cause.downcast::<IniSyntaxError>() {
                    Ok(syntax) => LoadError::Syntax(*syntax),
                    Err(other) => LoadError::Other(other.to_string()),
                }
            }
            other => LoadError::Other(other.to_string()),
        })?;
    // A file with no sections yields an empty root table, which has no
    // `sections` key to deserialize.
    if built.get::<Value>("sections").is_err() {
        return Ok(IniDocument {
            sections: Vec::new(),
        });
    }
    built
        .try_deserialize::<IniDocument>()
        .map_err(|e| LoadError::Other(e.to_string()))
}

/// An assignment being collected (its first line plus continuation lines).
struct Pending {
    key: String,
    parts: Vec<String>,
    line: usize,
}

/// Parser state: the document so far and where new entries go.
struct Parser {
    doc: IniDocument,
    current: Option<usize>,
}

impl Parser {
    fn section_name(&self) -> Option<String> {
        self.current
            .and_then(|i| self.doc.sections.get(i))
            .map(|s| s.name.clone())
    }

    fn error(&self, line: usize, key: Option<String>, message: &str) -> IniSyntaxError {
        IniSyntaxError {
            line,
            section: self.section_name(),
            key,
            message: message.to_owned(),
        }
    }

    fn open_section(&mut self, name: &str) {
        let existing = self.doc.sections.iter().position(|s| s.name == name);
        self.current = Some(existing.unwrap_or_else(|| {
            self.doc.sections.push(IniSection {
                name: name.to_owned(),
                entries: Vec::new(),
            });
            self.doc.sections.len() - 1
        }));
    }

    fn flush(&mut self, pending: Option<Pending>) -> Result<(), IniSyntaxError> {
        let Some(p) = pending else { return Ok(()) };
        let Some(section) = self.current.and_then(|i| self.doc.sections.get_mut(i)) else {
            return Err(self.error(
                p.line,
                Some(p.key),
                "section must be started before assignment",
            ));
        };
        section.entries.push(IniEntry {
            key: p.key,
            value: p.parts.join("\n"),
            line: p.line,
        });
        Ok(())
    }
}

/// Splits `key = value` (or `key: value`) at whichever separator comes first,
/// strips both sides and removes one pair of matching surrounding quotes.
fn split_assignment(line: &str) -> Option<(String, String)> {
    let at = line.find(['=', ':'])?;
    let key = line[..at].trim();
    let mut value = line[at + 1..].trim();
    if let (Some(first), Some(last)) = (value.chars().next(), value.chars().next_back()) {
        if (first == '"' || first == '\'') && first == last {
            // One character long: oslo's value[1:-1] of a lone quote is "".
            value = if value.len() == 1 {
                ""
            } else {
                &value[1..value.len() - 1]
            };
        }
    }
    Some((key.to_owned(), value.to_owned()))
}

/// Parses one file's text with oslo.config's rules (see the module docs).
pub fn parse(text: &str) -> Result<IniDocument, IniSyntaxError> {
    // Python reads config files in universal-newline mode.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut parser = Parser {
        doc: IniDocument {
            sections: Vec::new(),
        },
        current: None,
    };
    let mut pending: Option<Pending> = None;

    for (index, raw) in normalized.split('\n').enumerate() {
        let lineno = index + 1;
        let line = raw.trim_end();
        if line.is_empty() {
            // A blank line ends a multi-line value.
            parser.flush(pending.take())?;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match pending.as_mut() {
                Some(p) => p.parts.push(line.trim_start().to_owned()),
                None => return Err(parser.error(lineno, None, "unexpected continuation line")),
            }
            continue;
        }
        parser.flush(pending.take())?;
        if let Some(rest) = line.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(parser.error(lineno, None, "invalid section (must end with ']')"));
            };
            if name.is_empty() {
                return Err(parser.error(lineno, None, "empty section name"));
            }
            parser.open_section(name);
        } else if line.starts_with(['#', ';']) {
            // Comment line.
        } else {
            let Some((key, value)) = split_assignment(line) else {
                return Err(parser.error(lineno, None, "no ':' or '=' found in assignment"));
            };
            if key.is_empty() {
                return Err(parser.error(lineno, None, "key cannot be empty"));
            }
            pending = Some(Pending {
                key,
                parts: vec![value],
                line: lineno,
            });
        }
    }
    parser.flush(pending.take())?;
    Ok(parser.doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Vec<(String, String, String)> {
        let doc = load_document(text).expect("parses");
        doc.sections
            .iter()
            .flat_map(|s| {
                s.entries
                    .iter()
                    .map(move |e| (s.name.clone(), e.key.clone(), e.value.clone()))
            })
            .collect()
    }

    fn one(text: &str) -> String {
        let all = entries(text);
        assert_eq!(all.len(), 1, "{all:?}");
        all[0].2.clone()
    }

    fn syntax_error(text: &str) -> IniSyntaxError {
        match load_document(text) {
            Err(LoadError::Syntax(e)) => e,
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn backslashes_are_kept_everywhere_including_at_end_of_line() {
        assert_eq!(
            one("[s]\npassword = a\\nb\\tc\\\\d\\\n"),
            "a\\nb\\tc\\\\d\\"
        );
        let all = entries("[s]\npassword = abc\\\nnext = x\n");
        assert_eq!(all[0].2, "abc\\");
        assert_eq!(all[1].1, "next");
    }

    #[test]
    fn hash_and_semicolon_inside_a_value_are_not_comments() {
        assert_eq!(one("[s]\nk = a#b ;c # d\n"), "a#b ;c # d");
    }

    #[test]
    fn comment_lines_start_with_hash_or_semicolon() {
        assert_eq!(one("# top\n[s]\n; one\n#k = 1\nk = 2\n"), "2");
    }

    #[test]
    fn indented_lines_continue_the_value_joined_with_newlines() {
        assert_eq!(one("[s]\nk = a,\n    b,\n\tc\n"), "a,\nb,\nc");
    }

    #[test]
    fn indented_hash_line_is_a_continuation_not_a_comment() {
        assert_eq!(one("[s]\nk = a\n  # b\n"), "a\n# b");
    }

    #[test]
    fn blank_line_ends_a_value_and_a_later_indent_is_an_error() {
        let e = syntax_error("[s]\nk = a\n\n  b\n");
        assert_eq!(e.line, 4);
        assert!(e.message.contains("continuation"));
    }

    #[test]
    fn continuation_after_a_section_header_is_an_error() {
        assert_eq!(syntax_error("[s]\n  k = a\n").line, 2);
    }

    #[test]
    fn surrounding_matching_quotes_are_removed_once() {
        assert_eq!(one("[s]\nk = \"a b\"\n"), "a b");
        assert_eq!(one("[s]\nk = 'a'\n"), "a");
        assert_eq!(one("[s]\nk = \"\"x\"\"\n"), "\"x\"");
        assert_eq!(one("[s]\nk = \"\n"), "");
    }

    #[test]
    fn unmatched_or_inner_quotes_are_kept() {
        assert_eq!(one("[s]\nk = \"a'\n"), "\"a'");
        assert_eq!(one("[s]\nk = a\"b\"\n"), "a\"b\"");
        assert_eq!(one("[s]\nk = 'a\n"), "'a");
    }

    #[test]
    fn only_the_first_line_of_a_multiline_value_is_unquoted() {
        assert_eq!(one("[s]\nk = \"a\"\n  \"b\"\n"), "a\n\"b\"");
    }

    #[test]
    fn key_ends_at_the_first_equals_or_colon() {
        let all = entries("[s]\nurl: http://h:1/x=y\nm = h:11211\n");
        assert_eq!(all[0].1, "url");
        assert_eq!(all[0].2, "http://h:1/x=y");
        assert_eq!(all[1].1, "m");
        assert_eq!(all[1].2, "h:11211");
    }

    #[test]
    fn repeated_keys_are_all_kept_in_order() {
        let all = entries("[s]\nk = 1\nk = 2\n[t]\n[s]\nk = 3\n");
        let ks: Vec<_> = all
            .iter()
            .filter(|e| e.0 == "s")
            .map(|e| e.2.as_str())
            .collect();
        assert_eq!(ks, ["1", "2", "3"]);
    }

    #[test]
    fn crlf_and_bom_are_accepted() {
        assert_eq!(one("\u{feff}[s]\r\nk = v \r\n"), "v");
    }

    #[test]
    fn section_and_key_case_and_spacing_are_kept_verbatim() {
        let all = entries("[Keystone_AuthToken]\n  \nAuth_URL = x\n");
        assert_eq!(all[0].0, "Keystone_AuthToken");
        assert_eq!(all[0].1, "Auth_URL");
    }

    #[test]
    fn empty_value_is_an_empty_string() {
        assert_eq!(one("[s]\nk =\n"), "");
    }

    #[test]
    fn line_without_separator_is_an_error_naming_the_line() {
        let e = syntax_error("[s]\nfoo\nbar = 1\n");
        assert_eq!(e.line, 2);
        assert_eq!(e.section.as_deref(), Some("s"));
        assert!(e.message.contains("'='"));
    }

    #[test]
    fn assignment_before_any_section_is_an_error() {
        let e = syntax_error("k = 1\n[s]\n");
        assert_eq!(e.line, 1);
        assert_eq!(e.key.as_deref(), Some("k"));
    }

    #[test]
    fn malformed_section_headers_are_errors() {
        assert!(syntax_error("[s\n").message.contains("must end"));
        assert!(syntax_error("[s] # c\n").message.contains("must end"));
        assert!(syntax_error("[]\n").message.contains("empty section"));
    }

    #[test]
    fn empty_key_is_an_error() {
        assert!(syntax_error("[s]\n= v\n").message.contains("empty"));
    }

    #[test]
    fn syntax_errors_do_not_quote_the_line() {
        let e = syntax_error("[s]\nk = a\n\n  s3cr3t-part\n");
        assert!(!e.to_string().contains("s3cr3t"));
    }

    #[test]
    fn debug_of_an_entry_hides_the_value() {
        let doc = load_document("[s]\npassword = hunter2\n").expect("parses");
        assert!(!format!("{doc:?}").contains("hunter2"));
    }

    #[test]
    fn empty_and_comment_only_files_have_no_sections() {
        assert!(load_document("").expect("parses").sections.is_empty());
        assert!(load_document("# nothing\n\n")
            .expect("parses")
            .sections
            .is_empty());
    }

    #[test]
    fn section_names_with_dots_survive_config_rs() {
        let all = entries("[a.b]\nk = v\n");
        assert_eq!(all[0].0, "a.b");
    }
}
