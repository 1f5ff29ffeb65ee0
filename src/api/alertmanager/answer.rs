//! Alertmanager answers confined to one project — pure functions over the
//! body, the second line of defence behind the request's `filter`: only
//! alerts whose `<label>` is the project, only groups that keep an alert,
//! only silences that pin the project ([`owns`]). Kept entries are copied
//! byte for byte (borrowed views, as `api::filter`).
//!
//! Under metric access rules that restrict the caller, an alert is also
//! kept only if the expression of the rule it comes from is within the
//! caller's grants ([`tenancy::within_grants`], the check the Prometheus
//! `rules` and `alerts` answers make). Alertmanager does not hold the
//! expression; Prometheus writes it into each alert's `generatorURL`
//! (`<external URL>/graph?g0.expr=<expression>&g0.tab=1`), which is where
//! it is read ([`generator_expr`]). An alert without a readable one (another
//! sender, a malformed URL) is hidden from such callers: fail closed.
//! Silences do not read series and stay confined by project only.

use std::collections::HashMap;

use serde_json::value::RawValue;
use url::form_urlencoded;

use super::scope::owns;
use crate::api::filter::raw::{self, RawObject};
use crate::api::filter::FilterError;
use crate::tenancy::{self, Grants};

/// Whom an answer is confined to.
#[derive(Debug, Clone, Copy)]
pub struct Confine<'a> {
    /// The project label's name (`[prometheus] project_label_name`).
    pub label: &'a str,
    pub project: &'a str,
    /// The caller's metric access rules when they restrict it (see
    /// `CallerGrants::restricted`); `None`: by project only.
    pub grants: Option<&'a Grants>,
}

/// An answer filter: `(body, whom) → kept body`.
pub type AnswerFilter = fn(&[u8], &Confine<'_>) -> Result<Vec<u8>, FilterError>;

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

/// The expression of the alerting rule an alert comes from, as Prometheus
/// writes it into the alert's `generatorURL`: the one `g0.expr` parameter
/// of its query string, decoded. `None` when there is no query string, no
/// or more than one `g0.expr`, or an empty one.
pub fn generator_expr(url: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    let mut found = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k == "g0.expr" {
            if found.is_some() {
                return None;
            }
            found = Some(v.into_owned());
        }
    }
    found.filter(|e| !e.trim().is_empty())
}

/// Decides which alerts a caller sees; the verdict on an expression is
/// remembered for the answer (the alerts of one rule share their
/// `generatorURL`), so each is parsed once.
struct Keep<'a> {
    whom: &'a Confine<'a>,
    verdicts: HashMap<String, bool>,
}

impl<'a> Keep<'a> {
    fn new(whom: &'a Confine<'a>) -> Keep<'a> {
        Keep {
            whom,
            verdicts: HashMap::new(),
        }
    }

    /// Whether the alert's `labels` carry the project (unambiguously) and,
    /// under restricting rules, its expression is within them.
    fn keeps(&mut self, alert: &RawValue) -> bool {
        let Some(alert) = raw::object(alert) else {
            return false;
        };
        let projects = alert
            .get("labels")
            .and_then(raw::object)
            .and_then(|l| l.unique_str(self.whom.label))
            .is_some_and(|p| p == self.whom.project);
        if !projects {
            return false;
        }
        let Some(grants) = self.whom.grants else {
            return true;
        };
        let Some(url) = alert.unique_str("generatorURL") else {
            return false;
        };
        if let Some(v) = self.verdicts.get(url.as_ref()) {
            return *v;
        }
        let v = generator_expr(&url).is_some_and(|e| tenancy::within_grants(&e, grants));
        self.verdicts.insert(url.into_owned(), v);
        v
    }
}

/// `GET alerts`: the project's alerts (under restricting metric access
/// rules, of the rules they allow).
pub fn filter_alerts(body: &[u8], whom: &Confine<'_>) -> Result<Vec<u8>, FilterError> {
    let alerts = top_array(body)?;
    let mut keep = Keep::new(whom);
    let mut out = Vec::with_capacity(body.len());
    write_list(&mut out, alerts.into_iter().filter(|a| keep.keeps(a)));
    Ok(out)
}

/// `GET alerts/groups`: each group with only the alerts [`filter_alerts`]
/// keeps; a group left without any is dropped.
pub fn filter_groups(body: &[u8], whom: &Confine<'_>) -> Result<Vec<u8>, FilterError> {
    let groups = top_array(body)?;
    let mut keep = Keep::new(whom);
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
                let kept: Vec<&RawValue> = alerts.into_iter().filter(|a| keep.keeps(a)).collect();
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

/// `GET silences`: the silences that pin the project. Silences do not read
/// series: metric access rules do not apply to them.
pub fn filter_silences(body: &[u8], whom: &Confine<'_>) -> Result<Vec<u8>, FilterError> {
    let silences = top_array(body)?;
    let mut out = Vec::with_capacity(body.len());
    write_list(
        &mut out,
        silences
            .into_iter()
            .filter(|s| raw::object(s).is_some_and(|o| owns(&o, whom.label, whom.project))),
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

    const WHOM: Confine<'static> = Confine {
        label: L,
        project: "A",
        grants: None,
    };

    fn run(f: AnswerFilter, v: &Value) -> Value {
        serde_json::from_slice(&f(v.to_string().as_bytes(), &WHOM).unwrap()).unwrap()
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
        let out = filter_alerts(text.as_bytes(), &WHOM).unwrap();
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

    /// An alert as Alertmanager lists one sent by Prometheus for `expr`
    /// (`generatorURL` as Prometheus writes it: Go's `url.QueryEscape`).
    fn sent(p: &str, name: &str, url: Option<&str>) -> Value {
        let mut a = alert(p, name);
        if let Some(u) = url {
            a["generatorURL"] = json!(u);
        }
        a
    }

    fn prometheus_url(expr: &str) -> String {
        let q: String = form_urlencoded::byte_serialize(expr.as_bytes()).collect();
        format!("http://prom:9090/graph?g0.expr={q}&g0.tab=1")
    }

    fn grants(texts: &[&str]) -> Grants {
        Grants::new(
            texts
                .iter()
                .map(|t| std::sync::Arc::new(crate::tenancy::Grant::parse(t).unwrap()))
                .collect(),
        )
    }

    #[test]
    fn the_expression_is_read_from_the_generator_url_as_prometheus_writes_it() {
        let expr = "count by (project, project_name) (ceilometer_cpu{job=~\"a|b\"}) > 0 and x & y";
        assert_eq!(generator_expr(&prometheus_url(expr)).as_deref(), Some(expr));
        assert_eq!(
            generator_expr("http://p/graph?g0.tab=1&g0.expr=up+%3D%3D+0#frag").as_deref(),
            Some("up == 0")
        );
        for bad in [
            "",
            "http://p/graph",
            "http://p/graph?g0.tab=1",
            "http://p/graph?g0.expr=",
            "http://p/graph?g0.expr=+",
            "http://p/graph?g0.expr=up&g0.expr=secret",
            "vmalert/alert?group_id=1&alert_id=2",
        ] {
            assert_eq!(generator_expr(bad), None, "{bad}");
        }
    }

    #[test]
    fn restricted_callers_see_only_alerts_of_expressions_within_their_grants() {
        let g = grants(&["{__name__=~\"ceilometer_.*\"}", "up{job=\"x\"}"]);
        let allowed = prometheus_url("ceilometer_cpu > 0");
        let body = json!([
            sent("A", "Allowed", Some(&allowed)),
            sent(
                "A",
                "Denied",
                Some(&prometheus_url("label_lookalike_info > 0"))
            ),
            sent("A", "Narrowed", Some(&prometheus_url("up == 0"))),
            sent(
                "A",
                "Mixed",
                Some(&prometheus_url("ceilometer_cpu > on() secret"))
            ),
            sent("A", "NoUrl", None),
            sent("A", "NoExpr", Some("http://prom:9090/graph?g0.tab=1")),
            sent(
                "A",
                "Malformed",
                Some("http://prom:9090/graph?g0.expr=sum%28%zz")
            ),
            sent("A", "Twice", Some(&format!("{allowed}&g0.expr=secret"))),
            sent("B", "Allowed", Some(&allowed)),
            sent("A", "Allowed2", Some(&allowed)),
        ]);
        let whom = Confine {
            grants: Some(&g),
            ..WHOM
        };
        let out = filter_alerts(body.to_string().as_bytes(), &whom).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!([
                sent("A", "Allowed", Some(&allowed)),
                sent("A", "Allowed2", Some(&allowed))
            ])
        );
        // Without restricting rules: every alert of the project, as before.
        assert_eq!(run(filter_alerts, &body).as_array().unwrap().len(), 9);
        // Nothing granted: nothing is shown.
        let none = grants(&[]);
        let whom = Confine {
            grants: Some(&none),
            ..WHOM
        };
        let out = filter_alerts(body.to_string().as_bytes(), &whom).unwrap();
        assert_eq!(out, b"[]");
    }

    #[test]
    fn restricted_groups_drop_denied_alerts_and_groups_left_empty() {
        let g = grants(&["{__name__=~\"ceilometer_.*\"}"]);
        let ok = prometheus_url("ceilometer_cpu > 0");
        let denied = prometheus_url("label_lookalike_info > 0");
        let group =
            |alerts: Vec<Value>| json!({"labels": {}, "receiver": {"name": "r"}, "alerts": alerts});
        let body = json!([
            group(vec![
                sent("A", "X", Some(&ok)),
                sent("A", "Y", Some(&denied))
            ]),
            group(vec![sent("A", "Y", Some(&denied)), sent("A", "Z", None)]),
        ]);
        let whom = Confine {
            grants: Some(&g),
            ..WHOM
        };
        let out = filter_groups(body.to_string().as_bytes(), &whom).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, json!([group(vec![sent("A", "X", Some(&ok))])]));
        assert_eq!(run(filter_groups, &body).as_array().unwrap().len(), 2);
    }

    #[test]
    fn silences_ignore_the_metric_access_rules() {
        let none = grants(&[]);
        let whom = Confine {
            grants: Some(&none),
            ..WHOM
        };
        let body =
            json!([{"id": "1", "matchers": [{"name": "project", "value": "A", "isRegex": false}]}]);
        let out = filter_silences(body.to_string().as_bytes(), &whom).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), body);
    }

    #[test]
    fn answers_that_are_not_lists_are_refused() {
        for f in [filter_alerts, filter_groups, filter_silences] {
            assert_eq!(
                f(b"{}", &WHOM),
                Err(FilterError::Shape("the top level (not a list)"))
            );
            assert_eq!(f(b"<html>", &WHOM), Err(FilterError::NotJson));
        }
        assert!(filter_groups(b"[1]", &WHOM).is_err());
    }
}
