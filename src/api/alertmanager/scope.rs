//! What a project-scoped caller's Alertmanager request becomes — pure
//! functions, no I/O.
//!
//! - `GET alerts`, `GET alerts/groups`: `filter=<label>="<project>"` is
//!   added to the caller's own `filter`s. Alertmanager ANDs every `filter`
//!   matcher, so the caller's can only narrow the answer (one that names
//!   another project makes it empty, as Alertmanager itself would answer);
//!   the query string is rebuilt from what was parsed, so Alertmanager reads
//!   exactly the parameters checked here.
//! - `POST silences`: the body is rebuilt from the fields of a silence
//!   only, each found once whatever its letter case (Go's JSON decoder
//!   matches field names case-insensitively, so `"IsRegex"` would otherwise
//!   slip past a check of `"isRegex"`); a matcher on the project label must
//!   be `<label>="<project>"` (equal, not a regex), and one is added when
//!   there is none.
//! - Ownership: a silence is the project's when one of its matchers is
//!   exactly that equality matcher (so it can only silence the project's
//!   alerts).

use std::borrow::Cow;

use serde_json::value::RawValue;
use url::form_urlencoded;

use crate::api::filter::raw::{self, RawObject};

/// A refused request, answered in Alertmanager's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmRefusal {
    pub status: u16,
    pub message: String,
}

fn refuse(status: u16, message: impl Into<String>) -> AmRefusal {
    AmRefusal {
        status,
        message: message.into(),
    }
}

/// A project id that can be written in a matcher and a JSON string as is
/// (Keystone's ids are hexadecimal); anything else is refused, not escaped.
fn check_project(project: &str) -> Result<(), AmRefusal> {
    let plain = !project.is_empty()
        && project
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain {
        Ok(())
    } else {
        Err(refuse(
            403,
            "this project id cannot be matched in Alertmanager",
        ))
    }
}

/// The `filter` matcher that confines alerts to `project`.
pub fn project_filter(label: &str, project: &str) -> Result<String, AmRefusal> {
    check_project(project)?;
    Ok(format!("{label}=\"{project}\""))
}

/// The query string of a scoped `GET alerts` / `alerts/groups`: the
/// caller's parameters as parsed, plus the project's `filter`.
pub fn scope_alerts_query(query: &str, label: &str, project: &str) -> Result<String, AmRefusal> {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        out.append_pair(&k, &v);
    }
    out.append_pair("filter", &project_filter(label, project)?);
    Ok(out.finish())
}

/// The value of field `name` of `obj`, found as Go's decoder finds it
/// (ASCII case-insensitively; a duplicate is refused, not guessed). A
/// non-ASCII key is refused: Go folds `ſ` to `s` and `K` (Kelvin) to `k`.
fn field<'a>(obj: &RawObject<'a>, name: &str) -> Result<Option<&'a RawValue>, AmRefusal> {
    let mut found = None;
    for (k, v) in &obj.0 {
        if !k.is_ascii() {
            return Err(refuse(400, format!("unexpected field {k:?} in a silence")));
        }
        if k.eq_ignore_ascii_case(name) {
            if found.is_some() {
                return Err(refuse(400, format!("field {name:?} given more than once")));
            }
            found = Some(*v);
        }
    }
    Ok(found)
}

/// One matcher of a silence, as Alertmanager reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher<'a> {
    pub name: Cow<'a, str>,
    pub value: Cow<'a, str>,
    pub is_regex: bool,
    /// `false`: a negative matcher (`!=`, `!~`). Absent means `true`.
    pub is_equal: bool,
}

impl Matcher<'_> {
    /// Whether this is exactly `<label>="<project>"`.
    fn pins(&self, label: &str, project: &str) -> bool {
        self.name == label && self.value == project && !self.is_regex && self.is_equal
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        raw::write_key(out, "name");
        raw::write_str(out, &self.name);
        out.push(b',');
        raw::write_key(out, "value");
        raw::write_str(out, &self.value);
        out.extend_from_slice(if self.is_regex {
            br#","isRegex":true"#
        } else {
            br#","isRegex":false"#
        });
        out.extend_from_slice(if self.is_equal {
            br#","isEqual":true}"#
        } else {
            br#","isEqual":false}"#
        });
    }
}

fn bad(what: &str) -> AmRefusal {
    refuse(400, format!("invalid silence: {what}"))
}

fn bool_field(obj: &RawObject<'_>, name: &str, absent: Option<bool>) -> Result<bool, AmRefusal> {
    match field(obj, name)? {
        None => absent.ok_or_else(|| bad(&format!("a matcher has no {name}"))),
        Some(v) => {
            serde_json::from_str(v.get()).map_err(|_| bad(&format!("{name} is not a boolean")))
        }
    }
}

fn str_field<'a>(obj: &RawObject<'a>, name: &str) -> Result<Cow<'a, str>, AmRefusal> {
    field(obj, name)?
        .and_then(raw::string)
        .ok_or_else(|| bad(&format!("a matcher's {name} is missing or not a string")))
}

/// The matchers of a silence object.
pub fn matchers<'a>(silence: &RawObject<'a>) -> Result<Vec<Matcher<'a>>, AmRefusal> {
    let list = field(silence, "matchers")?
        .and_then(raw::array)
        .ok_or_else(|| bad("matchers is missing or not a list"))?;
    list.into_iter()
        .map(|m| {
            let m = raw::object(m).ok_or_else(|| bad("a matcher is not an object"))?;
            Ok(Matcher {
                name: str_field(&m, "name")?,
                value: str_field(&m, "value")?,
                is_regex: bool_field(&m, "isRegex", None)?,
                is_equal: bool_field(&m, "isEqual", Some(true))?,
            })
        })
        .collect()
}

/// Whether a silence (as Alertmanager answers it) is `project`'s: one of
/// its matchers is exactly `<label>="<project>"`. Anything unreadable is
/// not the project's.
pub fn owns(silence: &RawObject<'_>, label: &str, project: &str) -> bool {
    matchers(silence).is_ok_and(|ms| ms.iter().any(|m| m.pins(label, project)))
}

/// A scoped caller's `POST silences`, checked and rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedSilence {
    /// The body to send: only a silence's fields, the project pinned.
    pub body: String,
    /// The silence it updates, when it updates one: it must be the
    /// project's (checked against Alertmanager by the caller of this).
    pub updates: Option<String>,
}

/// The fields of a silence besides `id` and `matchers`, passed on as they
/// are (Alertmanager checks their types and values).
const PASSED_FIELDS: &[&str] = &["startsAt", "endsAt", "createdBy", "comment"];

/// Checks a scoped caller's silence and rebuilds it with the project's
/// matcher: a matcher on `label` other than `<label>="<project>"` (another
/// value, a regex, a negative one) is refused with 403.
pub fn scope_silence(body: &str, label: &str, project: &str) -> Result<ScopedSilence, AmRefusal> {
    check_project(project)?;
    let obj: RawObject<'_> =
        serde_json::from_str(body).map_err(|_| bad("the body is not a JSON object"))?;
    let mut ms = matchers(&obj)?;
    if let Some(m) = ms
        .iter()
        .find(|m| m.name == label && !m.pins(label, project))
    {
        let op = match (m.is_equal, m.is_regex) {
            (true, false) => "=",
            (false, false) => "!=",
            (true, true) => "=~",
            (false, true) => "!~",
        };
        return Err(refuse(
            403,
            format!(
                "a silence of a project-scoped caller may match {label} only as \
                 {label}=\"{project}\" (got {label}{op}{:?})",
                m.value
            ),
        ));
    }
    if !ms.iter().any(|m| m.pins(label, project)) {
        ms.push(Matcher {
            name: Cow::Borrowed(label),
            value: Cow::Borrowed(project),
            is_regex: false,
            is_equal: true,
        });
    }
    let updates = match field(&obj, "id")? {
        None => None,
        Some(v) => match raw::string(v) {
            Some(id) if id.is_empty() => None,
            Some(id) if crate::api::routes::is_silence_id(&id) => Some(id.into_owned()),
            _ => return Err(refuse(404, "silence not found")),
        },
    };
    let mut out = Vec::with_capacity(body.len() + 96);
    out.push(b'{');
    if let Some(id) = &updates {
        raw::write_key(&mut out, "id");
        raw::write_str(&mut out, id);
        out.push(b',');
    }
    raw::write_key(&mut out, "matchers");
    out.push(b'[');
    for (i, m) in ms.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        m.write(&mut out);
    }
    out.push(b']');
    for name in PASSED_FIELDS {
        if let Some(v) = field(&obj, name)? {
            out.push(b',');
            raw::write_key(&mut out, name);
            raw::write_raw(&mut out, v);
        }
    }
    out.push(b'}');
    let body = String::from_utf8(out).map_err(|_| bad("the body is not UTF-8"))?;
    Ok(ScopedSilence { body, updates })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const L: &str = "project";
    const A: &str = "aaaa";

    fn silence(matchers: Value) -> String {
        json!({"matchers": matchers, "startsAt": "2026-01-01T00:00:00Z",
               "endsAt": "2026-01-02T00:00:00Z", "createdBy": "me", "comment": "c"})
        .to_string()
    }

    fn sent(body: &str) -> Value {
        let s = scope_silence(body, L, A).unwrap();
        serde_json::from_str(&s.body).unwrap()
    }

    #[test]
    fn alerts_queries_keep_the_callers_filters_and_add_the_project() {
        assert_eq!(
            scope_alerts_query("", L, A).unwrap(),
            "filter=project%3D%22aaaa%22"
        );
        assert_eq!(
            scope_alerts_query("active=true&filter=alertname%3D%22X%22&filter=project%3D~%22.%2A%22", L, A).unwrap(),
            "active=true&filter=alertname%3D%22X%22&filter=project%3D%7E%22.*%22&filter=project%3D%22aaaa%22"
        );
        // What cannot be parsed the same way twice is re-encoded as parsed.
        assert_eq!(
            scope_alerts_query("filter=%zz&a;b=1", L, A).unwrap(),
            "filter=%25zz&a%3Bb=1&filter=project%3D%22aaaa%22"
        );
        assert!(scope_alerts_query("", L, "a\"b").is_err());
        assert!(scope_alerts_query("", L, "").is_err());
    }

    #[test]
    fn a_silence_without_a_project_matcher_gets_one() {
        let v = sent(&silence(
            json!([{"name": "alertname", "value": "X", "isRegex": false}]),
        ));
        assert_eq!(
            v["matchers"],
            json!([
                {"name": "alertname", "value": "X", "isRegex": false, "isEqual": true},
                {"name": "project", "value": A, "isRegex": false, "isEqual": true},
            ])
        );
        assert_eq!(v["createdBy"], "me");
        assert_eq!(v["endsAt"], "2026-01-02T00:00:00Z");
        assert!(v.get("id").is_none());
    }

    #[test]
    fn the_callers_own_project_matcher_is_kept_once() {
        let v = sent(&silence(
            json!([{"name": "project", "value": A, "isRegex": false, "isEqual": true}]),
        ));
        assert_eq!(v["matchers"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn project_matchers_that_reach_beyond_the_project_are_refused() {
        for m in [
            json!({"name": "project", "value": "bbbb", "isRegex": false}),
            json!({"name": "project", "value": ".*", "isRegex": true}),
            json!({"name": "project", "value": A, "isRegex": true}),
            json!({"name": "project", "value": "bbbb", "isRegex": false, "isEqual": false}),
            json!({"name": "project", "value": A, "isRegex": false, "isEqual": false}),
            json!({"name": "project", "value": "b.*", "isRegex": true, "isEqual": false}),
        ] {
            let body =
                silence(json!([m.clone(), {"name": "project", "value": A, "isRegex": false}]));
            let e = scope_silence(&body, L, A).unwrap_err();
            assert_eq!(e.status, 403, "{m}");
            assert!(
                e.message.contains("only as project=\"aaaa\""),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn field_names_are_read_as_go_reads_them() {
        // A second spelling of isRegex would be what Go decodes: refused.
        let body =
            silence(json!([{"name": "project", "value": A, "isRegex": false, "ISREGEX": true}]));
        assert_eq!(scope_silence(&body, L, A).unwrap_err().status, 400);
        // Kelvin sign / long s fold to ASCII in Go: refused.
        let body =
            silence(json!([{"name": "project", "value": A, "iſRegex": true, "isRegex": false}]));
        assert_eq!(scope_silence(&body, L, A).unwrap_err().status, 400);
        // Another case is the same field: checked (and refused here).
        let body = silence(json!([{"NAME": "project", "Value": "bbbb", "IsRegex": false}]));
        assert_eq!(scope_silence(&body, L, A).unwrap_err().status, 403);
        let body = r#"{"Matchers": [{"name": "project", "value": "bbbb", "isRegex": false}]}"#;
        assert_eq!(scope_silence(body, L, A).unwrap_err().status, 403);
        // Duplicate keys are refused rather than guessed.
        let body = r#"{"matchers": [], "matchers": [{"name": "project", "value": "bbbb", "isRegex": false}]}"#;
        assert_eq!(scope_silence(body, L, A).unwrap_err().status, 400);
        let body = r#"{"matchers": [{"name": "project", "value": "bbbb", "value": "aaaa", "isRegex": false}]}"#;
        assert_eq!(scope_silence(body, L, A).unwrap_err().status, 400);
    }

    #[test]
    fn unknown_fields_are_not_sent() {
        let body = r#"{"matchers": [], "status": {"state": "expired"}, "x": 1, "comment": "c"}"#;
        let v = sent(body);
        assert_eq!(
            v,
            json!({"matchers": [{"name": "project", "value": A, "isRegex": false, "isEqual": true}], "comment": "c"})
        );
    }

    #[test]
    fn malformed_silences_are_refused_as_bad_requests() {
        for body in [
            "",
            "[]",
            "{",
            r#"{"comment": "no matchers"}"#,
            r#"{"matchers": {}}"#,
            r#"{"matchers": [1]}"#,
            r#"{"matchers": [{"name": "a", "value": "b"}]}"#,
            r#"{"matchers": [{"name": "a", "value": 1, "isRegex": false}]}"#,
            r#"{"matchers": [{"name": "a", "value": "b", "isRegex": "no"}]}"#,
        ] {
            assert_eq!(scope_silence(body, L, A).unwrap_err().status, 400, "{body}");
        }
    }

    #[test]
    fn updates_name_the_silence_they_update() {
        let id = "0b0c6a4e-3f1d-4c1e-9c2b-1a2b3c4d5e6f";
        let s = scope_silence(&format!(r#"{{"id": "{id}", "matchers": []}}"#), L, A).unwrap();
        assert_eq!(s.updates.as_deref(), Some(id));
        assert!(s.body.starts_with(&format!(r#"{{"id":"{id}","#)));
        let s = scope_silence(r#"{"id": "", "matchers": []}"#, L, A).unwrap();
        assert_eq!(s.updates, None);
        let e = scope_silence(r#"{"id": "../x", "matchers": []}"#, L, A).unwrap_err();
        assert_eq!(e.status, 404);
        let e = scope_silence(r#"{"id": 7, "matchers": []}"#, L, A).unwrap_err();
        assert_eq!(e.status, 404);
    }

    #[test]
    fn a_silence_is_the_projects_only_when_it_pins_the_project() {
        let own = |ms: Value| {
            let text = json!({"id": "x", "matchers": ms}).to_string();
            let o: RawObject = serde_json::from_str(&text).unwrap();
            owns(&o, L, A)
        };
        assert!(own(
            json!([{"name": "project", "value": A, "isRegex": false, "isEqual": true}])
        ));
        assert!(own(
            json!([{"name": "a", "value": "b", "isRegex": true}, {"name": "project", "value": A, "isRegex": false}])
        ));
        assert!(!own(
            json!([{"name": "project", "value": A, "isRegex": true, "isEqual": true}])
        ));
        assert!(!own(
            json!([{"name": "project", "value": A, "isRegex": false, "isEqual": false}])
        ));
        assert!(!own(
            json!([{"name": "project", "value": "bbbb", "isRegex": false}])
        ));
        assert!(!own(
            json!([{"name": "alertname", "value": "X", "isRegex": false}])
        ));
        assert!(!own(json!([])));
        assert!(!own(json!("nope")));
    }
}
