//! The answers of a range's pieces merged into the answer of the whole
//! range, on the bytes Prometheus sent (pure functions, no I/O).
//!
//! A warm dashboard panel is answered from its stored pieces alone, so
//! this is the cache's hot path: the pieces are read in place — each
//! series' `metric` object and each `[t, "v"]` point kept as the slice of
//! the stored text it is — and the answer is written by copying those
//! slices, never building a JSON tree (whose allocations were most of a
//! hit's cost). Only the labels (to tell series apart and order them) and
//! each point's time (to order points and drop repeats) are read.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// Why an answer cannot be cached (or merged).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// Not `"status":"success"`, or it carries `warnings` / `infos`.
    NotClean,
    /// Not a matrix of float samples (e.g. native histograms), or not
    /// the JSON Prometheus sends.
    Shape,
}

/// Whether a parsed answer is a clean success: `status` is `success` and
/// it carries neither `warnings` nor `infos`. Only those are cached.
pub(crate) fn is_clean(answer: &Value) -> bool {
    answer.get("status").and_then(Value::as_str) == Some("success")
        && answer.get("warnings").is_none()
        && answer.get("infos").is_none()
}

/// An answer as read here: the rest of its fields (`errorType`, …) are
/// not looked at.
#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow)]
    status: Cow<'a, str>,
    warnings: Option<IgnoredAny>,
    infos: Option<IgnoredAny>,
    #[serde(borrow)]
    data: Option<Data<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data<'a> {
    #[serde(borrow)]
    result_type: Cow<'a, str>,
    #[serde(borrow)]
    result: &'a RawValue,
}

/// One series of a matrix: only `metric` and `values` (a series with
/// `histograms`, or anything new, is not merged).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Series<'a> {
    #[serde(borrow)]
    metric: &'a RawValue,
    #[serde(borrow)]
    values: Vec<&'a RawValue>,
}

/// Label pairs sorted by name: how series are told apart and ordered.
type Labels<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// The series of one piece's answer.
fn series(body: &[u8]) -> Result<Vec<Series<'_>>, Unusable> {
    let answer: Answer<'_> = serde_json::from_slice(body).map_err(|_| Unusable::Shape)?;
    if answer.status != "success" || answer.warnings.is_some() || answer.infos.is_some() {
        return Err(Unusable::NotClean);
    }
    let data = answer.data.ok_or(Unusable::Shape)?;
    if data.result_type != "matrix" {
        return Err(Unusable::Shape);
    }
    serde_json::from_str(data.result.get()).map_err(|_| Unusable::Shape)
}

fn labels<'a>(metric: &'a RawValue) -> Result<Labels<'a>, Unusable> {
    let map: BTreeMap<Cow<'a, str>, Cow<'a, str>> =
        serde_json::from_str(metric.get()).map_err(|_| Unusable::Shape)?;
    Ok(map.into_iter().collect())
}

/// A point's time in milliseconds, from its text `[t, "v"]`.
fn point_ms(point: &RawValue) -> Option<i64> {
    let text = point.get().strip_prefix('[')?;
    let t: f64 = text[..text.find(',')?].trim().parse().ok()?;
    t.is_finite().then(|| (t * 1000.0).round() as i64)
}

/// Whether a backend answer is one the cache may store and merge: a clean
/// matrix of float samples.
pub(crate) fn check(body: &[u8]) -> Result<(), Unusable> {
    for s in series(body)? {
        labels(s.metric)?;
        if s.values.iter().any(|p| point_ms(p).is_none()) {
            return Err(Unusable::Shape);
        }
    }
    Ok(())
}

/// The answers of consecutive pieces (in time order) merged into the
/// answer of the whole range: each series' points in time order, a point
/// at a time already seen dropped, series ordered by their labels as
/// Prometheus orders a matrix, each with its `metric` as first answered.
pub(crate) fn merge<B: AsRef<[u8]>>(bodies: &[B]) -> Result<Vec<u8>, Unusable> {
    struct Merged<'a> {
        metric: &'a RawValue,
        points: Vec<&'a RawValue>,
        last: i64,
    }
    let mut merged: BTreeMap<Labels<'_>, Merged<'_>> = BTreeMap::new();
    let mut size = 0;
    for body in bodies {
        let body = body.as_ref();
        size += body.len();
        for s in series(body)? {
            let entry = merged.entry(labels(s.metric)?).or_insert_with(|| Merged {
                metric: s.metric,
                points: Vec::with_capacity(s.values.len()),
                last: i64::MIN,
            });
            for p in s.values {
                let t = point_ms(p).ok_or(Unusable::Shape)?;
                if t > entry.last {
                    entry.points.push(p);
                    entry.last = t;
                }
            }
        }
    }
    let mut out = Vec::with_capacity(size + 64);
    out.extend_from_slice(br#"{"status":"success","data":{"resultType":"matrix","result":["#);
    for (i, s) in merged.values().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"metric":"#);
        out.extend_from_slice(s.metric.get().as_bytes());
        out.extend_from_slice(br#","values":["#);
        for (j, p) in s.points.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.extend_from_slice(p.get().as_bytes());
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"]}}");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn matrix(series: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({"status": "success",
            "data": {"resultType": "matrix", "result": series}}))
        .unwrap()
    }

    fn parsed(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn merge_joins_series_in_time_order_and_drops_repeated_points() {
        let a = matrix(vec![
            json!({"metric": {"job": "b"}, "values": [[1, "1"], [2, "2"]]}),
            json!({"metric": {"job": "a"}, "values": [[1, "10"]]}),
        ]);
        let b = matrix(vec![
            json!({"metric": {"job": "b"}, "values": [[2, "2"], [3, "3"]]}),
            json!({"metric": {"x": "1", "job": "c"}, "values": [[3.5, "7"]]}),
        ]);
        let merged = merge(&[a, b]).unwrap();
        assert_eq!(
            parsed(&merged),
            parsed(&matrix(vec![
                json!({"metric": {"job": "a"}, "values": [[1, "10"]]}),
                json!({"metric": {"job": "b"}, "values": [[1, "1"], [2, "2"], [3, "3"]]}),
                json!({"metric": {"job": "c", "x": "1"}, "values": [[3.5, "7"]]}),
            ]))
        );
    }

    #[test]
    fn merge_keeps_the_backends_text_of_labels_and_points() {
        // Go escapes `<` and `&` in JSON strings; the answer keeps them so.
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a\u003cb"},"values":[[1700000000,"1"],[1700000015.5,"NaN"]]}]}}"#;
        assert_eq!(merge(&[&body[..]]).unwrap(), body.to_vec());
        let later = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a\u003cb"},"values":[[1700000030,"+Inf"]]}]}}"#;
        let both = merge(&[&body[..], &later[..]]).unwrap();
        assert!(
            std::str::from_utf8(&both).unwrap().contains(
                r#""job":"a\u003cb"},"values":[[1700000000,"1"],[1700000015.5,"NaN"],[1700000030,"+Inf"]]"#
            ),
            "{}",
            String::from_utf8_lossy(&both)
        );
    }

    #[test]
    fn series_are_told_apart_by_their_labels_not_their_text() {
        // The same labels written in another order (or escaped otherwise)
        // are one series.
        let a = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"1","b":"2"},"values":[[1,"1"]]}]}}"#;
        let b = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"b":"2","a":"\u0031"},"values":[[2,"2"]]}]}}"#;
        let merged = parsed(&merge(&[&a[..], &b[..]]).unwrap());
        assert_eq!(
            merged["data"]["result"],
            json!([{"metric": {"a": "1", "b": "2"}, "values": [[1, "1"], [2, "2"]]}])
        );
    }

    #[test]
    fn merge_of_nothing_is_an_empty_matrix() {
        let merged = merge(&[matrix(vec![]), matrix(vec![])]).unwrap();
        assert_eq!(parsed(&merged), parsed(&matrix(vec![])));
    }

    #[test]
    fn answers_with_warnings_errors_or_histograms_are_not_merged() {
        let bytes = |v: Value| serde_json::to_vec(&v).unwrap();
        let warned = bytes(json!({"status": "success", "warnings": ["w"],
            "data": {"resultType": "matrix", "result": []}}));
        let infos = bytes(json!({"status": "success", "infos": ["i"],
            "data": {"resultType": "matrix", "result": []}}));
        let error = bytes(json!({"status": "error", "errorType": "bad_data", "error": "x"}));
        let hist = matrix(vec![
            json!({"metric": {}, "histograms": [[1, {"count": "1"}]]}),
        ]);
        let both = matrix(vec![
            json!({"metric": {}, "values": [[1, "1"]], "histograms": [[2, {"count": "1"}]]}),
        ]);
        let vector = bytes(json!({"status": "success",
            "data": {"resultType": "vector", "result": []}}));
        let not_a_label = matrix(vec![json!({"metric": {"a": 1}, "values": []})]);
        let bad_point = matrix(vec![json!({"metric": {}, "values": [["x", "1"]]})]);
        for (body, why) in [
            (&warned, Unusable::NotClean),
            (&infos, Unusable::NotClean),
            (&error, Unusable::NotClean),
            (&hist, Unusable::Shape),
            (&both, Unusable::Shape),
            (&vector, Unusable::Shape),
            (&not_a_label, Unusable::Shape),
            (&bad_point, Unusable::Shape),
        ] {
            let text = String::from_utf8_lossy(body);
            assert_eq!(merge(std::slice::from_ref(body)), Err(why), "{text}");
            assert!(check(body).is_err(), "{text}");
        }
        assert_eq!(merge(&[&b"not json"[..]]), Err(Unusable::Shape));
        assert_eq!(check(&matrix(vec![])), Ok(()));
    }
}
