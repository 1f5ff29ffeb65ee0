//! The plain-text log line in oslo.log's format: `[DEFAULT]
//! logging_context_format_string` for records made while serving a request,
//! `logging_default_format_string` for the others, with Python's
//! `%(key)s` placeholders, so that log pipelines written for OpenStack
//! services (Kolla's fluentd, a Logstash grok) parse aetos' lines.
//!
//! The keys oslo.log defines are filled in: `asctime` (UTC,
//! `%Y-%m-%d %H:%M:%S`), `msecs`, `created`, `process`, `levelname`,
//! `levelno`, `name` (the Rust module, `aetos.server`), `request_id`,
//! `global_request_id` (`None` without one, as oslo.context prints it),
//! `user_identity` (`- - - - - -`: aetos logs no identity), `message` (the
//! text, then the record's fields as `key=value`), `lineno`, `pathname`,
//! `filename`, `module`, `thread`. `instance` and `color` are empty; the
//! identity keys (`user`, `project`, `user_name`, …) are `-`; any other key
//! is empty. Python's conversion flags, width and precision are honoured
//! (`%(msecs)03d`, `%(levelname)-8s`).

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// One piece of a parsed format string.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Key(String, Spec),
}

/// `%(key)<flags><width>.<precision><type>`.
#[derive(Debug, Clone, PartialEq, Default)]
struct Spec {
    left: bool,
    zero: bool,
    width: usize,
    precision: Option<usize>,
    numeric: bool,
}

/// A parsed Python `%`-style format string.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template(Vec<Piece>);

impl Template {
    /// Parses `text`; what is not a well-formed `%(key)…` placeholder (or
    /// `%%`) is kept as text, so no format string is refused.
    pub(crate) fn parse(text: &str) -> Template {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(i) = rest.find('%') {
            lit.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(tail) = after.strip_prefix('%') {
                lit.push('%');
                rest = tail;
                continue;
            }
            match placeholder(after) {
                Some((key, spec, used)) => {
                    if !lit.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut lit)));
                    }
                    pieces.push(Piece::Key(key, spec));
                    rest = &after[used..];
                }
                None => {
                    lit.push('%');
                    rest = after;
                }
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            pieces.push(Piece::Text(lit));
        }
        Template(pieces)
    }

    fn render(&self, out: &mut String, value: impl Fn(&str, &mut String)) {
        let mut v = String::new();
        for p in &self.0 {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Key(k, spec) => {
                    v.clear();
                    value(k, &mut v);
                    spec.apply(&v, out);
                }
            }
        }
    }
}

/// `(key)<spec>` after a `%`: the key, the spec and the bytes used.
fn placeholder(s: &str) -> Option<(String, Spec, usize)> {
    let inner = s.strip_prefix('(')?;
    let close = inner.find(')')?;
    let key = inner[..close].to_owned();
    let b = inner.as_bytes();
    let mut i = close + 1;
    let mut spec = Spec::default();
    while let Some(c) = b.get(i) {
        match c {
            b'-' => spec.left = true,
            b'0' => spec.zero = true,
            b' ' | b'+' | b'#' => {}
            _ => break,
        }
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        inner[start..*i].parse::<usize>().ok()
    };
    spec.width = digits(&mut i).unwrap_or(0).min(256);
    if b.get(i) == Some(&b'.') {
        i += 1;
        spec.precision = Some(digits(&mut i).unwrap_or(0));
    }
    let ty = *b.get(i)?;
    if !b"sdirfFeEgGxXoc".contains(&ty) {
        return None;
    }
    spec.numeric = b"difFeEgGxXo".contains(&ty);
    Some((key, spec, 1 + i + 1))
}

impl Spec {
    fn apply(&self, value: &str, out: &mut String) {
        let value: String = match self.precision {
            Some(p) if !self.numeric => value.chars().take(p).collect(),
            _ => value.to_owned(),
        };
        let len = value.chars().count();
        let pad = self.width.saturating_sub(len);
        if self.left {
            out.push_str(&value);
            out.extend(std::iter::repeat_n(' ', pad));
        } else if self.zero && self.numeric {
            out.extend(std::iter::repeat_n('0', pad));
            out.push_str(&value);
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&value);
        }
    }
}

/// The request ids of a `request` span, kept by [`RequestIds`].
#[derive(Debug, Clone, Default)]
struct Ids {
    request_id: Option<String>,
    global_request_id: Option<String>,
}

impl Visit for Ids {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "request_id" => self.request_id = Some(value.to_owned()),
            "global_request_id" => self.global_request_id = Some(value.to_owned()),
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

/// A layer that keeps the ids of each request span for the formatter.
pub(crate) struct RequestIds;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for RequestIds {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "request" {
            return;
        }
        let mut ids = Ids::default();
        attrs.record(&mut ids);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(ids);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(ids) = span.extensions_mut().get_mut::<Ids>() {
                values.record(ids);
            }
        }
    }
}

/// The message and the other fields of an event, `key=value`.
#[derive(Default)]
struct Message {
    text: String,
    fields: String,
}

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.text, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

/// The event formatter of the plain-text log.
pub(crate) struct OsloFormat {
    context: Template,
    default: Template,
    pid: String,
}

impl OsloFormat {
    pub(crate) fn new(context: &str, default: &str) -> OsloFormat {
        OsloFormat {
            context: Template::parse(context),
            default: Template::parse(default),
            pid: std::process::id().to_string(),
        }
    }

    /// One record as a line (without the newline).
    fn line(&self, event: &Event<'_>, ids: Option<&Ids>, now: std::time::SystemTime) -> String {
        let meta = event.metadata();
        let mut msg = Message::default();
        event.record(&mut msg);
        let stamp = humantime::format_rfc3339_millis(now).to_string();
        // `2026-12-01T23:54:21.815Z`
        let (date, time) = stamp.split_once('T').unwrap_or((&stamp, ""));
        let (secs, millis) = time
            .trim_end_matches('Z')
            .split_once('.')
            .unwrap_or((time, "000"));
        let (levelname, levelno) = match *meta.level() {
            Level::ERROR => ("ERROR", "40"),
            Level::WARN => ("WARNING", "30"),
            Level::INFO => ("INFO", "20"),
            Level::DEBUG | Level::TRACE => ("DEBUG", "10"),
        };
        let target = meta.target();
        let template = if ids.is_some() {
            &self.context
        } else {
            &self.default
        };
        let mut out = String::with_capacity(160);
        template.render(&mut out, |key, v| match key {
            "asctime" => {
                v.push_str(date);
                v.push(' ');
                v.push_str(secs);
            }
            "msecs" => {
                let _ = write!(v, "{}", millis.parse::<u32>().unwrap_or(0));
            }
            "created" => {
                let t = now
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                let _ = write!(v, "{:.3}", t.as_secs_f64());
            }
            "process" => v.push_str(&self.pid),
            "levelname" => v.push_str(levelname),
            "levelno" => v.push_str(levelno),
            "name" => v.push_str(&target.replace("::", ".")),
            "module" => v.push_str(target.rsplit("::").next().unwrap_or(target)),
            "pathname" => v.push_str(meta.file().unwrap_or("")),
            "filename" => v.push_str(meta.file().and_then(|f| f.rsplit('/').next()).unwrap_or("")),
            "lineno" => {
                let _ = write!(v, "{}", meta.line().unwrap_or(0));
            }
            "thread" => {
                let _ = write!(v, "{:?}", std::thread::current().id());
            }
            "request_id" => v.push_str(ids.and_then(|i| i.request_id.as_deref()).unwrap_or("-")),
            "global_request_id" => v.push_str(
                ids.and_then(|i| i.global_request_id.as_deref())
                    .unwrap_or("None"),
            ),
            "user_identity" => v.push_str("- - - - - -"),
            "user" | "project" | "domain" | "system_scope" | "user_domain" | "project_domain"
            | "user_name" | "project_name" | "user_id" | "project_id" | "tenant"
            | "tenant_name" | "domain_name" => v.push('-'),
            "message" => {
                v.push_str(&msg.text);
                v.push_str(&msg.fields);
            }
            // `instance`, `color`, `funcName` and anything unknown.
            _ => {}
        });
        // One record, one line: a value with a newline must not start a
        // line that looks like a record of its own.
        if out.contains(['\n', '\r']) {
            out = out.replace('\n', "\\n").replace('\r', "\\r");
        }
        out
    }
}

impl<S, N> FormatEvent<S, N> for OsloFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let ids = ctx.event_scope().and_then(|scope| {
            scope
                .into_iter()
                .find_map(|span| span.extensions().get::<Ids>().cloned())
        });
        writeln!(
            writer,
            "{}",
            self.line(event, ids.as_ref(), std::time::SystemTime::now())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(format: &str, values: &[(&str, &str)]) -> String {
        let mut out = String::new();
        Template::parse(format).render(&mut out, |k, v| {
            if let Some((_, x)) = values.iter().find(|(key, _)| *key == k) {
                v.push_str(x);
            }
        });
        out
    }

    #[test]
    fn python_placeholders_with_flags_width_and_precision() {
        let v = [
            ("msecs", "7"),
            ("levelname", "INFO"),
            ("name", "aetos.server"),
        ];
        assert_eq!(render("%(msecs)03d", &v), "007");
        assert_eq!(render("[%(levelname)-8s]", &v), "[INFO    ]");
        assert_eq!(render("[%(levelname)8s]", &v), "[    INFO]");
        assert_eq!(render("%(name).5s", &v), "aetos");
        assert_eq!(render("100%% %(unknown)s|", &v), "100% |");
        // Not placeholders: kept as written.
        assert_eq!(render("%(name %d %(name)q %", &v), "%(name %d %(name)q %");
    }

    #[test]
    fn oslo_default_formats_render_as_oslo_log_writes_them() {
        let f = OsloFormat::new(
            "%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s [%(global_request_id)s %(request_id)s %(user_identity)s] %(instance)s%(message)s",
            "%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s [-] %(instance)s%(message)s",
        );
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_764_633_261_042);
        let pid = std::process::id();
        let ids = Ids {
            request_id: Some("req-1".into()),
            global_request_id: None,
        };
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        struct Capture(
            OsloFormat,
            Option<Ids>,
            std::time::SystemTime,
            std::sync::Arc<std::sync::Mutex<Vec<String>>>,
        );
        impl<S: Subscriber> Layer<S> for Capture {
            fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
                let line = self.0.line(event, self.1.as_ref(), self.2);
                self.3.lock().unwrap().push(line);
            }
        }
        use tracing_subscriber::prelude::*;
        let sub = tracing_subscriber::registry().with(Capture(f, Some(ids), t, lines.clone()));
        tracing::subscriber::with_default(sub, || {
            tracing::info!(status = 200u16, path = %"/api/v1/query", "request");
            tracing::warn!(reason = "a\nb", "two\nlines");
        });
        let lines = lines.lock().unwrap().clone();
        assert_eq!(
            lines[0],
            format!("2025-12-01 23:54:21.042 {pid} INFO aetos.telemetry.oslo_format.tests [None req-1 - - - - - -] request status=200 path=/api/v1/query")
        );
        assert_eq!(
            lines[1],
            format!("2025-12-01 23:54:21.042 {pid} WARNING aetos.telemetry.oslo_format.tests [None req-1 - - - - - -] two\\nlines reason=\"a\\nb\"")
        );
    }
}
