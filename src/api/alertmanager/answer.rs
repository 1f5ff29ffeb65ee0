//! Alertmanager answers confined to one project — pure functions over the
//! body, the second line of defence behind the request's `filter`: only
//! alerts whose `<label>` is the project, only groups that keep an alert,
//! only silences that pin the project ([`owns`]). Kept entries are copied
//! byte for byte (borrowed views, as `api::filter`).

use serde_json::value::RawValue;

use super::scope::owns;
use crate::api::filter::raw::{self, RawObject};
use crate::api::filter::FilterError;

/// An answer filter: `(body, label, project) → kept body`.
pub type AnswerFilter = fn(&[u8], &str, &str) -> Result<Vec<u8>, FilterError>;

fn top_array(body: &[u8]) -> Result<Vec<&RawValue>, FilterError> {
    let text = std::str::from_utf8(body).map_err(|_| FilterError::NotJson)?;
    let v: &RawValue = serde_json::from_str(text).map_err(|_| FilterError::NotJson)?;
    raw::array(v).ok_or(FilterError::Shape("the top level (not a list)"))
}

fn write_list<'a>(out: &mut Vec<u8>, items: impl Iterator<Item = &'a RawValue>) {
    out.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        raw::write_raw(out, item);
    }
    out.push(b']');
}

/// Whether an alert's `labels` carry `project` (unambiguously).
fn alert_is_projects(alert: &RawValue, label: &str, project: &str) -> bool {
    raw::object(alert)
        .and_then(|a| a.get("labels"))
        .and_then(raw::object)
        .and_then(|l| l.unique_str(label))
        .is_some_and(|p| p == project)
}

/// `GET alerts`: the project's alerts.
pub fn filter_alerts(body: &[u8], label: &str, project: &str) -> Result<Vec<u8>, FilterError> {
    let alerts = top_array(body)?;
    let mut out = Vec::with_capacity(body.len());
    write_list(
        &mut out,
        alerts
            .into_iter()
            .filter(|a| alert_is_projects(a, label, project)),
    );
    Ok(out)
}

/// `GET alerts/groups`: each group with only the project's alerts; a group
/// left without any is dropped.
pub fn filter_groups(body: &[u8], label: &str, project: &str) -> Result<Vec<u8>, FilterError> {
    let groups = top_array(body)?;
    let mut out = Vec::with_capacity(body.len());
    out.push(b'[');
    let mut first = true;
    for g in groups {
        let group: RawObject = raw::object(g).ok_or(FilterError::Shape("a group"))?;
        let mut kept_any = false;
        let mut one = Vec::new();
        one.push(b'{');
        for (i, (k, v)) in group.0.iter().enumerate() {
            if i > 0 {
                one.push(b',');
            }
            raw::write_key(&mut one, k);
            if k == "alerts" {
                let alerts = raw::array(v).ok_or(FilterError::Shape("a group's alerts"))?;
                let kept: Vec<&RawValue> = alerts
                    .into_iter()
                    .filter(|a| alert_is_projects(a, label, project))
                    .collect();
                kept_any |= !kept.is_empty();
                write_list(&mut one, kept.into_iter());
            } else {
                raw::write_raw(&mut one, v);
            }
        }
        one.push(b'}');
        if kept_any {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(&one);
        }
    }
    out.push(b']');
    Ok(out)
}

/// `GET silences`: the silences that pin the project.
pub fn filter_silences(body: &[u8], label: &str, project: &str) -> Result<Vec<u8>, FilterError> {
    let silences = top_array(body)?;
    let mut out = Vec::with_capacity(body.len());
    write_list(
        &mut out,
        silences
            .into_iter()
            .filter(|s| raw::object(s).is_some_and(|o| owns(&o, label, project))),
    );
    Ok(out)
}

/// `GET silence/{id}`: whether the one silence pins the project.
pub fn silence_is_projects(body: &[u8], label: &str, project: &str) -> bool {
    std::str::from_utf8(body)
        .ok()
        .and_then(|t| serde_json::from_str::<RawObject>(t).ok())
        .is_some_and(|o| owns(&o, label, project))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const L: &str = "project";

    fn alert(p: &str, name: &str) -> Value {
        json!({"labels": {"alertname": name, "project": p}, "annotations": {},
               "fingerprint": format!("{p}{name}"), "status": {"state": "active"}})
    }

    fn run(f: AnswerFilter, v: &Value) -> Value {
        serde_json::from_slice(&f(v.to_string().as_bytes(), L, "A").unwrap()).unwrap()
    }

    #[test]
    fn alerts_of_other_projects_and_without_a_project_are_dropped() {
        let no_project = json!({"labels": {"alertname": "X"}});
        let ambiguous: Value =
            serde_json::from_str(r#"{"labels": {"project": "A", "project": "B"}}"#)
                .unwrap_or(json!(null));
        let body = json!([
            alert("A", "X"),
            alert("B", "X"),
            no_project,
            alert("A", "Y"),
            ambiguous
        ]);
        assert_eq!(
            run(filter_alerts, &body),
            json!([alert("A", "X"), alert("A", "Y")])
        );
        // Duplicate keys as text: neither value is trusted.
        let text = r#"[{"labels":{"project":"A","project":"B"}},{"labels":{"project":"A"}}]"#;
        let out = filter_alerts(text.as_bytes(), L, "A").unwrap();
        assert_eq!(out, br#"[{"labels":{"project":"A"}}]"#);
        assert_eq!(run(filter_alerts, &json!(null)), json!([]));
    }

    #[test]
    fn groups_keep_only_the_projects_alerts_and_drop_empty_groups() {
        let g = |alerts: Vec<Value>| json!({"labels": {"alertname": "X"}, "receiver": {"name": "r"}, "alerts": alerts});
        let body = json!([
            g(vec![alert("A", "X"), alert("B", "X")]),
            g(vec![alert("B", "Y")]),
            g(vec![])
        ]);
        assert_eq!(run(filter_groups, &body), json!([g(vec![alert("A", "X")])]));
    }

    #[test]
    fn silences_are_kept_when_they_pin_the_project() {
        let s =
            |id: &str, ms: Value| json!({"id": id, "matchers": ms, "status": {"state": "active"}});
        let pin =
            |p: &str| json!([{"name": "project", "value": p, "isRegex": false, "isEqual": true}]);
        let body = json!([
            s("1", pin("A")),
            s("2", pin("B")),
            s(
                "3",
                json!([{"name": "project", "value": "A|B", "isRegex": true, "isEqual": true}])
            ),
            s(
                "4",
                json!([{"name": "alertname", "value": "X", "isRegex": false}])
            ),
        ]);
        assert_eq!(run(filter_silences, &body), json!([s("1", pin("A"))]));
        let one = s("1", pin("A")).to_string();
        assert!(silence_is_projects(one.as_bytes(), L, "A"));
        assert!(!silence_is_projects(one.as_bytes(), L, "B"));
        assert!(!silence_is_projects(b"not json", L, "A"));
    }

    #[test]
    fn answers_that_are_not_lists_are_refused() {
        for f in [filter_alerts, filter_groups, filter_silences] {
            assert_eq!(
                f(b"{}", L, "A"),
                Err(FilterError::Shape("the top level (not a list)"))
            );
            assert_eq!(f(b"<html>", L, "A"), Err(FilterError::NotJson));
        }
        assert!(filter_groups(b"[1]", L, "A").is_err());
    }
}
