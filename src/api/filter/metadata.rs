//! `metadata` and `targets/metadata` for a scoped caller: which scrape
//! targets hold the project's series ([`ProjectSeries`]), and the answers
//! built from those targets' metadata, with Prometheus' `limit` and
//! `limit_per_metric`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::value::RawValue;

use super::raw::{self, write_key, write_raw, RawObject};
use super::{parse_top, FilterError};

/// Suffixes by which a series name extends its metric family's name
/// (histograms, summaries, counters, info and gauge histograms in the text
/// and OpenMetrics formats).
pub(super) const FAMILY_SUFFIXES: &[&str] = &[
    "_bucket", "_sum", "_count", "_total", "_created", "_info", "_gcount", "_gsum",
];

/// The caller's `metadata` / `targets/metadata` parameters, read like
/// Prometheus' `r.FormValue` (first value; empty means absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataQuery {
    pub metric: Option<String>,
    pub match_target: Option<String>,
    /// Negative: no limit.
    pub limit: i64,
    /// Zero or negative: no limit.
    pub limit_per_metric: i64,
}

impl MetadataQuery {
    /// Parses a query string; a non-numeric limit is refused as Prometheus does.
    pub fn parse(query: &str) -> Result<MetadataQuery, String> {
        let first = |key: &str| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.into_owned())
                .filter(|v| !v.is_empty())
        };
        let number = |key: &str| match first(key) {
            None => Ok(-1),
            Some(v) => v
                .parse::<i64>()
                .map_err(|_| format!("{key} must be a number")),
        };
        Ok(MetadataQuery {
            metric: first("metric"),
            match_target: first("match_target"),
            limit: number("limit")?,
            limit_per_metric: number("limit_per_metric")?,
        })
    }
}

/// What a project has on each scrape target: `job → instance → series
/// names`, from the answer to `count by (__name__, job, instance)
/// ({<label>="<project>"})`.
///
/// A metadata entry of a target is the project's when the target's
/// (`job`, `instance`) holds a series of the project named like the entry's
/// metric family (equal, or the family plus one of [`FAMILY_SUFFIXES`]) and
/// the target's own labels do not name another project. This fails closed:
/// a series whose `job`/`instance` match no target (recording rules, remote
/// write, `honor_labels` overriding them) yields no metadata.
#[derive(Debug, Default)]
pub struct ProjectSeries {
    targets: HashMap<String, HashMap<String, HashSet<String>>>,
}

impl ProjectSeries {
    /// Reads an instant-vector answer of `count by (__name__, job, instance)`.
    pub fn from_query_answer(body: &[u8]) -> Result<ProjectSeries, FilterError> {
        let top = parse_top(body)?;
        let data = top
            .get("data")
            .and_then(raw::object)
            .ok_or(FilterError::Shape("data"))?;
        let result = data
            .get("result")
            .and_then(raw::array)
            .ok_or(FilterError::Shape("data.result"))?;
        let mut held = ProjectSeries::default();
        for sample in result {
            let Some(metric) = raw::object(sample)
                .as_ref()
                .and_then(|s| s.get("metric"))
                .and_then(raw::object)
            else {
                return Err(FilterError::Shape("data.result[].metric"));
            };
            let (Some(name), Some(job), Some(instance)) = (
                metric.unique_str("__name__"),
                metric.unique_str("job"),
                metric.unique_str("instance"),
            ) else {
                continue;
            };
            held.targets
                .entry(job.into_owned())
                .or_default()
                .entry(instance.into_owned())
                .or_default()
                .insert(name.into_owned());
        }
        Ok(held)
    }

    /// Whether the entry of `target` for `family` may be shown to `project`.
    pub(super) fn allows(
        &self,
        target: &RawObject,
        family: &str,
        label: &str,
        project: &str,
    ) -> bool {
        let other_project = target
            .0
            .iter()
            .filter(|(k, _)| k == label)
            .any(|(_, v)| raw::string(v).as_deref() != Some(project));
        if other_project {
            return false;
        }
        let (Some(job), Some(instance)) = (target.unique_str("job"), target.unique_str("instance"))
        else {
            return false;
        };
        let Some(names) = self
            .targets
            .get(job.as_ref())
            .and_then(|i| i.get(instance.as_ref()))
        else {
            return false;
        };
        names.contains(family)
            || FAMILY_SUFFIXES.iter().any(|s| {
                let mut n = String::with_capacity(family.len() + s.len());
                n.push_str(family);
                n.push_str(s);
                names.contains(&n)
            })
    }
}

/// One `targets/metadata` entry the project may see.
struct Entry<'a> {
    raw: &'a RawValue,
    target: &'a RawValue,
    family: Cow<'a, str>,
    fields: [Option<&'a RawValue>; 3],
}

/// Calls `f` with every entry of a `targets/metadata` answer that
/// `series` allows, in the backend's order.
fn for_each_allowed<'a>(
    body: &'a [u8],
    series: &ProjectSeries,
    label: &str,
    project: &str,
    metric: Option<&'a str>,
    mut f: impl FnMut(Entry<'a>) -> bool,
) -> Result<(), FilterError> {
    let top = parse_top(body)?;
    let data = top
        .get("data")
        .and_then(raw::array)
        .ok_or(FilterError::Shape("data"))?;
    for e in data {
        let obj = raw::object(e).ok_or(FilterError::Shape("data[]"))?;
        let Some(target_raw) = obj.get("target") else {
            continue;
        };
        let Some(target) = raw::object(target_raw) else {
            continue;
        };
        // With `metric=` Prometheus leaves the family out of each entry.
        let family = match (obj.get("metric").and_then(raw::string), metric) {
            (Some(f), _) => f,
            (None, Some(m)) => Cow::Borrowed(m),
            (None, None) => continue,
        };
        if metric.is_some_and(|m| m != family) {
            continue;
        }
        if !series.allows(&target, &family, label, project) {
            continue;
        }
        let entry = Entry {
            raw: e,
            target: target_raw,
            family,
            fields: [obj.get("type"), obj.get("help"), obj.get("unit")],
        };
        if !f(entry) {
            break;
        }
    }
    Ok(())
}

/// The `/api/v1/metadata` answer for `project`, from a `targets/metadata`
/// answer: `{metric: [{type, help, unit}, …]}` deduplicated per metric,
/// metrics in name order, then `limit_per_metric` (> 0: entries per metric)
/// and `limit` (≥ 0: number of metrics) applied, as Prometheus does.
pub fn metadata_answer(
    targets_body: &[u8],
    series: &ProjectSeries,
    label: &str,
    project: &str,
    q: &MetadataQuery,
) -> Result<Vec<u8>, FilterError> {
    type Fields<'a> = [Option<&'a RawValue>; 3];
    let mut metrics: BTreeMap<Cow<str>, Vec<Fields>> = BTreeMap::new();
    let same = |a: &Fields, b: &Fields| {
        a.iter()
            .zip(b.iter())
            .all(|(x, y)| x.map(RawValue::get) == y.map(RawValue::get))
    };
    for_each_allowed(
        targets_body,
        series,
        label,
        project,
        q.metric.as_deref(),
        |e| {
            let list = metrics.entry(e.family).or_default();
            let full = q.limit_per_metric > 0 && list.len() as i64 >= q.limit_per_metric;
            if !full && !list.iter().any(|f| same(f, &e.fields)) {
                list.push(e.fields);
            }
            true
        },
    )?;
    let mut out = Vec::with_capacity(targets_body.len().min(1 << 16));
    out.extend_from_slice(br#"{"status":"success","data":{"#);
    let limit = usize::try_from(q.limit).ok();
    for (i, (name, list)) in metrics.iter().enumerate() {
        if limit.is_some_and(|l| i >= l) {
            break;
        }
        if i > 0 {
            out.push(b',');
        }
        write_key(&mut out, name);
        out.push(b'[');
        for (j, fields) in list.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.push(b'{');
            for (k, (key, v)) in ["type", "help", "unit"].iter().zip(fields).enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                write_key(&mut out, key);
                match v {
                    Some(v) => write_raw(&mut out, v),
                    None => out.extend_from_slice(b"\"\""),
                }
            }
            out.push(b'}');
        }
        out.push(b']');
    }
    out.extend_from_slice(b"}}");
    Ok(out)
}

/// The `/api/v1/targets/metadata` answer for `project`: the allowed
/// entries byte for byte (target labels included), then `limit` applied as
/// Prometheus does (≥ 0: no further target is started once that many
/// entries are listed).
pub fn targets_metadata_answer(
    targets_body: &[u8],
    series: &ProjectSeries,
    label: &str,
    project: &str,
    q: &MetadataQuery,
) -> Result<Vec<u8>, FilterError> {
    let mut out = Vec::with_capacity(targets_body.len());
    out.extend_from_slice(br#"{"status":"success","data":["#);
    let limit = usize::try_from(q.limit).ok();
    let mut n = 0usize;
    let mut last_target: Option<&str> = None;
    for_each_allowed(
        targets_body,
        series,
        label,
        project,
        q.metric.as_deref(),
        |e| {
            let new_target = last_target != Some(e.target.get());
            if new_target && limit.is_some_and(|l| n >= l) {
                return false;
            }
            last_target = Some(e.target.get());
            if n > 0 {
                out.push(b',');
            }
            write_raw(&mut out, e.raw);
            n += 1;
            true
        },
    )?;
    out.extend_from_slice(b"]}");
    Ok(out)
}
