//! `rules` and `alerts` for a scoped caller: the backend's answer copied
//! byte for byte, keeping only the rules, alerts and groups whose labels
//! carry the caller's project.
//!
//! Under metric access rules that restrict the caller, a rule is also
//! dropped unless its expression is within the caller's grants, and
//! `alerts` is answered from the backend's `rules?type=alert` instead
//! ([`alerts_from_rules`]): an alert carries labels, not the expression it
//! comes from, while each alerting rule of that answer carries its query
//! and its active alerts, as Prometheus lists them in `alerts` (both are
//! `rulesAlertsToAPIAlerts` of the rule's `ActiveAlerts()`).

use serde_json::value::RawValue;

use super::raw::{self, write_key, write_raw, RawObject};
use super::{parse_top, FilterError};
use crate::tenancy::{self, Grants};

/// Whether `labels` (an object) gives `label` the value `project`, and
/// only that value.
fn labels_have(labels: Option<&RawValue>, label: &str, project: &str) -> bool {
    labels
        .and_then(raw::object)
        .and_then(|o| o.unique_str(label))
        .is_some_and(|v| v == project)
}

/// Copies the envelope of `body` (every top-level member as it is) with
/// `data` replaced by what `write_data` writes for it.
fn rewrite_data<'a>(
    body: &'a [u8],
    write_data: impl FnOnce(&mut Vec<u8>, &RawObject<'a>) -> Result<(), FilterError>,
) -> Result<Vec<u8>, FilterError> {
    let top = parse_top(body)?;
    let data = top
        .get("data")
        .and_then(raw::object)
        .ok_or(FilterError::Shape("data"))?;
    let mut out = Vec::with_capacity(body.len());
    out.push(b'{');
    let mut write_data = Some(write_data);
    let mut first = true;
    for (k, v) in &top.0 {
        if k == "data" {
            // Only once, even if the backend repeated the member.
            let Some(w) = write_data.take() else { continue };
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            write_key(&mut out, k);
            w(&mut out, &data)?;
        } else {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            write_key(&mut out, k);
            write_raw(&mut out, v);
        }
    }
    out.push(b'}');
    Ok(out)
}

/// `data.groups[].rules[]`: keep rules whose labels carry the project (and
/// of their alerts those that do); drop groups left empty. Of `data`, only
/// `groups` and the opaque `groupNextToken` are kept.
pub fn filter_rules(body: &[u8], label: &str, project: &str) -> Result<Vec<u8>, FilterError> {
    filter_rules_granted(body, label, project, None)
}

/// [`filter_rules`], also dropping the rules whose expression reads series
/// the caller's metric access rules do not allow as they are (see
/// [`tenancy::within_grants`]), so that their names never show.
pub fn filter_rules_granted(
    body: &[u8],
    label: &str,
    project: &str,
    grants: Option<&Grants>,
) -> Result<Vec<u8>, FilterError> {
    let who = Who {
        label,
        project,
        grants,
    };
    rewrite_data(body, |out, data| {
        let groups = data
            .get("groups")
            .and_then(raw::array)
            .ok_or(FilterError::Shape("data.groups"))?;
        out.extend_from_slice(br#"{"groups":["#);
        let mut kept = 0;
        for g in groups {
            if write_group(out, g, kept > 0, &who)? {
                kept += 1;
            }
        }
        out.push(b']');
        if let Some(token) = data.get("groupNextToken") {
            out.push(b',');
            write_key(out, "groupNextToken");
            write_raw(out, token);
        }
        out.push(b'}');
        Ok(())
    })
}

/// Whose rules are kept.
struct Who<'a> {
    label: &'a str,
    project: &'a str,
    grants: Option<&'a Grants>,
}

/// Writes a group with its project's rules; nothing (and `false`) when
/// none is left.
fn write_group(
    out: &mut Vec<u8>,
    g: &RawValue,
    comma: bool,
    who: &Who<'_>,
) -> Result<bool, FilterError> {
    let obj = raw::object(g).ok_or(FilterError::Shape("data.groups[]"))?;
    let Some(rules) = obj.get("rules").and_then(raw::array) else {
        return Ok(false);
    };
    let mark = out.len();
    if comma {
        out.push(b',');
    }
    out.push(b'{');
    let mut kept = 0;
    let mut rules = Some(rules);
    let mut first = true;
    for (k, v) in &obj.0 {
        if k == "rules" {
            let Some(rules) = rules.take() else { continue };
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            write_key(out, k);
            out.push(b'[');
            for r in rules {
                if write_rule(out, r, kept > 0, who)? {
                    kept += 1;
                }
            }
            out.push(b']');
        } else {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            write_key(out, k);
            write_raw(out, v);
        }
    }
    out.push(b'}');
    if kept == 0 {
        out.truncate(mark);
        return Ok(false);
    }
    Ok(true)
}

/// Writes a rule of the project, as it is unless some of its alerts are
/// another project's.
fn write_rule(
    out: &mut Vec<u8>,
    r: &RawValue,
    comma: bool,
    who: &Who<'_>,
) -> Result<bool, FilterError> {
    let (label, project) = (who.label, who.project);
    let obj = raw::object(r).ok_or(FilterError::Shape("data.groups[].rules[]"))?;
    if !labels_have(obj.get("labels"), label, project) {
        return Ok(false);
    }
    if let Some(g) = who.grants {
        let query = obj
            .get("query")
            .and_then(|q| serde_json::from_str::<String>(q.get()).ok());
        if !query.is_some_and(|q| tenancy::within_grants(&q, g)) {
            return Ok(false);
        }
    }
    if comma {
        out.push(b',');
    }
    let alerts_members = obj.0.iter().filter(|(k, _)| k == "alerts").count();
    let alerts = match obj.get("alerts") {
        None => {
            write_raw(out, r);
            return Ok(true);
        }
        Some(a) => raw::array(a).ok_or(FilterError::Shape("data.groups[].rules[].alerts"))?,
    };
    let keep: Vec<bool> = alerts
        .iter()
        .map(|a| labels_have(raw::object(a).and_then(|o| o.get("labels")), label, project))
        .collect();
    if alerts_members == 1 && keep.iter().all(|k| *k) {
        write_raw(out, r);
        return Ok(true);
    }
    out.push(b'{');
    let mut first = true;
    let mut pending = true;
    for (k, v) in &obj.0 {
        if k == "alerts" {
            if !std::mem::take(&mut pending) {
                continue;
            }
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            write_key(out, k);
            out.push(b'[');
            let kept = alerts.iter().zip(&keep).filter(|(_, k)| **k);
            for (n, (a, _)) in kept.enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_raw(out, a);
            }
            out.push(b']');
        } else {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            write_key(out, k);
            write_raw(out, v);
        }
    }
    out.push(b'}');
    Ok(true)
}

/// `data.alerts[]`: keep alerts whose labels carry the project. Of `data`,
/// only `alerts` is kept.
pub fn filter_alerts(body: &[u8], label: &str, project: &str) -> Result<Vec<u8>, FilterError> {
    rewrite_data(body, |out, data| {
        let alerts = data
            .get("alerts")
            .and_then(raw::array)
            .ok_or(FilterError::Shape("data.alerts"))?;
        out.extend_from_slice(br#"{"alerts":["#);
        let mut n = 0;
        write_projects_alerts(out, &alerts, label, project, &mut n);
        out.extend_from_slice(b"]}");
        Ok(())
    })
}

/// Appends, comma-separated after the `n` already written, the alerts whose
/// labels carry `project`, byte for byte.
fn write_projects_alerts(
    out: &mut Vec<u8>,
    alerts: &[&RawValue],
    label: &str,
    project: &str,
    n: &mut usize,
) {
    for a in alerts {
        if labels_have(raw::object(a).and_then(|o| o.get("labels")), label, project) {
            if *n > 0 {
                out.push(b',');
            }
            write_raw(out, a);
            *n += 1;
        }
    }
}

/// The path and parameters that replace a restricted caller's `alerts`
/// (see [`alerts_from_rules`]). `alerts` takes no parameters, so nothing of
/// the caller's request is lost.
pub const ALERTING_RULES: (&str, &str) = ("/api/v1/rules", "type=alert");

/// `alerts` for a caller whose metric access rules restrict it, built from
/// a `rules?type=alert` answer: the active alerts of each alerting rule
/// whose expression is within `grants` ([`tenancy::within_grants`], the
/// check `rules` makes), of those the alerts whose labels carry the project
/// (as [`filter_alerts`] keeps them: an alert is the project's by its own
/// labels, a rule need not carry the project label). A rule without a
/// readable expression gives none (fail closed). The answer is
/// `{"status":"success","data":{"alerts":[…]}}` with each kept alert
/// copied byte for byte, the envelope's other members as the backend sent
/// them.
pub fn alerts_from_rules(
    body: &[u8],
    label: &str,
    project: &str,
    grants: &Grants,
) -> Result<Vec<u8>, FilterError> {
    rewrite_data(body, |out, data| {
        let groups = data
            .get("groups")
            .and_then(raw::array)
            .ok_or(FilterError::Shape("data.groups"))?;
        out.extend_from_slice(br#"{"alerts":["#);
        let mut n = 0;
        for g in groups {
            let group = raw::object(g).ok_or(FilterError::Shape("data.groups[]"))?;
            let Some(rules) = group.get("rules") else {
                continue;
            };
            let rules = raw::array(rules).ok_or(FilterError::Shape("data.groups[].rules"))?;
            for r in rules {
                let rule = raw::object(r).ok_or(FilterError::Shape("data.groups[].rules[]"))?;
                // Recording rules (a backend that ignores `type`) have none.
                let Some(alerts) = rule.get("alerts") else {
                    continue;
                };
                let alerts =
                    raw::array(alerts).ok_or(FilterError::Shape("data.groups[].rules[].alerts"))?;
                if alerts.is_empty() {
                    continue;
                }
                let within = rule
                    .unique_str("query")
                    .is_some_and(|q| tenancy::within_grants(&q, grants));
                if !within {
                    continue;
                }
                write_projects_alerts(out, &alerts, label, project, &mut n);
            }
        }
        out.extend_from_slice(b"]}");
        Ok(())
    })
}
