//! Answers that are filtered, not rewritten, for scoped callers:
//! `metadata` (only metric names that have series in the caller's project),
//! `rules` and `alerts` (only those whose labels carry the caller's
//! project). The Prometheus envelope and content type are kept.
// Error answers are returned as ready `HttpResponse`s: they are the rare
// path, and boxing them would only add an allocation.
#![allow(clippy::result_large_err)]

use std::collections::HashSet;

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::Value;

use super::errors;
use super::rewrite::Params;
use super::routes::Api;
use crate::backend::BackendRequest;
use crate::server::State;
use crate::tenancy;

/// Largest backend answer we are willing to filter in memory.
const MAX_FILTERED_BODY: usize = 64 << 20;

/// How a backend body to be filtered is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
}

async fn read_json(resp: reqwest::Response) -> Result<Value, HttpResponse> {
    let encoding = match resp.headers().get("content-encoding").map(|v| v.as_bytes()) {
        None | Some(b"identity") => Encoding::Identity,
        Some(b"gzip") | Some(b"x-gzip") => Encoding::Gzip,
        Some(_) => {
            return Err(errors::prom_error(
                StatusCode::BAD_GATEWAY,
                "unavailable",
                "backend answered with a content encoding that cannot be filtered",
            ))
        }
    };
    let mut buf = Vec::new();
    let mut s = resp.bytes_stream();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|e| {
            errors::prom_error(
                StatusCode::BAD_GATEWAY,
                "unavailable",
                &format!("backend body: {e}"),
            )
        })?;
        if buf.len() + chunk.len() > MAX_FILTERED_BODY {
            return Err(errors::prom_error(
                StatusCode::BAD_GATEWAY,
                "unavailable",
                "backend answer too large to filter",
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    let buf = decode(encoding, buf).ok_or_else(|| {
        errors::prom_error(
            StatusCode::BAD_GATEWAY,
            "unavailable",
            "backend body is not valid gzip",
        )
    })?;
    serde_json::from_slice(&buf).map_err(|_| {
        errors::prom_error(
            StatusCode::BAD_GATEWAY,
            "unavailable",
            "backend answer is not JSON",
        )
    })
}

/// Undoes the backend's content encoding, bounded like the body itself.
fn decode(encoding: Encoding, body: Vec<u8>) -> Option<Vec<u8>> {
    use std::io::Read;
    match encoding {
        Encoding::Identity => Some(body),
        Encoding::Gzip => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body.as_slice())
                .take(MAX_FILTERED_BODY as u64 + 1)
                .read_to_end(&mut out)
                .ok()?;
            (out.len() <= MAX_FILTERED_BODY).then_some(out)
        }
    }
}

/// Filters a successful answer for `project`; errors pass through unchanged.
pub async fn filtered(
    resp: reqwest::Response,
    api: &Api,
    state: &State,
    project: &str,
) -> HttpResponse {
    if !resp.status().is_success() {
        return super::stream_unfiltered(resp);
    }
    let mut head = super::response_head(&resp);
    let mut body = match read_json(resp).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let label = state.scoper.label();
    match api.name {
        "metadata" => {
            let names = match project_metric_names(state, project).await {
                Ok(n) => n,
                Err(r) => return r,
            };
            filter_metadata(&mut body, &names);
        }
        "rules" => filter_rules(&mut body, label, project),
        "alerts" => filter_alerts(&mut body, label, project),
        _ => {}
    }
    // The filtered body is re-encoded by us, uncompressed.
    head.content_type("application/json");
    let mut out = head.body(Bytes::from(body.to_string()));
    out.headers_mut().remove("content-encoding");
    out
}

/// The metric names that have series in `project`, asked of the backend
/// with the same scoped selector a scoped `label/__name__/values` uses.
async fn project_metric_names(
    state: &State,
    project: &str,
) -> Result<HashSet<String>, HttpResponse> {
    let selector = tenancy::scope_match_params(&[], state.scoper.label(), project)
        .map_err(|e| errors::bad_data(&e.to_string()))?;
    let url = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("match[]", &selector.concat())
        .finish();
    let req = BackendRequest {
        method: Method::GET,
        path: "/api/v1/label/__name__/values".into(),
        params: Params { url, body: None },
        raw_body: Bytes::new(),
        headers: vec![("accept".into(), "application/json".into())],
        project: Some(project.to_owned()),
    };
    let resp = state
        .backend
        .send(req)
        .await
        .map_err(super::backend_error)?;
    if !resp.status().is_success() {
        return Err(super::stream_unfiltered(resp));
    }
    let v = read_json(resp).await?;
    Ok(v["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default())
}

fn has_project(labels: &Value, label: &str, project: &str) -> bool {
    labels.get(label).and_then(Value::as_str) == Some(project)
}

/// `data` is `{metric: [..]}`: keep only the caller's metric names.
pub fn filter_metadata(body: &mut Value, names: &HashSet<String>) {
    if let Some(data) = body.get_mut("data").and_then(Value::as_object_mut) {
        data.retain(|k, _| names.contains(k));
    }
}

/// `data.groups[].rules[]`: keep rules whose labels carry the project (and
/// their alerts that do); drop groups left empty.
pub fn filter_rules(body: &mut Value, label: &str, project: &str) {
    let Some(groups) = body
        .pointer_mut("/data/groups")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for g in groups.iter_mut() {
        if let Some(rules) = g.get_mut("rules").and_then(Value::as_array_mut) {
            rules.retain(|r| has_project(&r["labels"], label, project));
            for r in rules.iter_mut() {
                if let Some(alerts) = r.get_mut("alerts").and_then(Value::as_array_mut) {
                    alerts.retain(|a| has_project(&a["labels"], label, project));
                }
            }
        }
    }
    groups.retain(|g| g["rules"].as_array().is_some_and(|r| !r.is_empty()));
}

/// `data.alerts[]`: keep alerts whose labels carry the project.
pub fn filter_alerts(body: &mut Value, label: &str, project: &str) {
    if let Some(alerts) = body
        .pointer_mut("/data/alerts")
        .and_then(Value::as_array_mut)
    {
        alerts.retain(|a| has_project(&a["labels"], label, project));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gzip_bodies_are_decoded_and_bombs_refused() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"status\":\"success\"}").unwrap();
        let body = gz.finish().unwrap();
        assert_eq!(
            decode(Encoding::Gzip, body).unwrap(),
            b"{\"status\":\"success\"}"
        );
        assert_eq!(decode(Encoding::Gzip, b"not gzip".to_vec()), None);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b' '; MAX_FILTERED_BODY + 10]).unwrap();
        assert_eq!(
            decode(Encoding::Gzip, gz.finish().unwrap()),
            None,
            "decompression bomb"
        );
    }

    #[test]
    fn metadata_keeps_only_project_metric_names() {
        let mut b =
            json!({"status":"success","data":{"a":[{"type":"gauge"}],"b":[{"type":"counter"}]}});
        filter_metadata(&mut b, &HashSet::from(["a".to_owned()]));
        assert_eq!(
            b,
            json!({"status":"success","data":{"a":[{"type":"gauge"}]}})
        );
    }

    #[test]
    fn rules_without_the_project_label_are_dropped_with_empty_groups() {
        let mut b = json!({"status":"success","data":{"groups":[
            {"name":"g1","rules":[
                {"name":"mine","labels":{"project":"B"},"alerts":[{"labels":{"project":"B"}},{"labels":{"project":"A"}}]},
                {"name":"theirs","labels":{"project":"A"}},
                {"name":"global"}]},
            {"name":"g2","rules":[{"name":"x","labels":{}}]}]}});
        filter_rules(&mut b, "project", "B");
        let groups = b["data"]["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0]["rules"].as_array().unwrap().len(), 1);
        assert_eq!(groups[0]["rules"][0]["alerts"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn alerts_of_other_projects_are_dropped() {
        let mut b = json!({"data":{"alerts":[{"labels":{"project":"B"}},{"labels":{"project":"A"}},{"labels":{}}]}});
        filter_alerts(&mut b, "project", "B");
        assert_eq!(b["data"]["alerts"].as_array().unwrap().len(), 1);
    }
}
