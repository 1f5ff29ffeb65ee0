use super::*;
use serde_json::{json, Value};

fn parsed(b: &[u8]) -> Value {
    serde_json::from_slice(b).expect("the output is JSON")
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn gzip_bodies_are_decoded_and_bombs_refused() {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"{\"status\":\"success\"}").unwrap();
    let body = gz.finish().unwrap();
    assert_eq!(
        decode(Encoding::Gzip, body, 1 << 20),
        Decoded::Body(b"{\"status\":\"success\"}".to_vec())
    );
    assert_eq!(
        decode(Encoding::Gzip, b"not gzip".to_vec(), 1 << 20),
        Decoded::Invalid
    );
    let cap = 1 << 20;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b' '; cap + 10]).unwrap();
    assert_eq!(
        decode(Encoding::Gzip, gz.finish().unwrap(), cap),
        Decoded::TooLarge,
        "decompression bomb"
    );
}

/// Serves one HTTP answer with `body` (and optional headers) on a local
/// port, and returns what `read_body` makes of it.
async fn read_served(body: Vec<u8>, headers: &str, cap: usize) -> Result<Vec<u8>, Refusal> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let headers = headers.to_owned();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let _ = s.write_all(head.as_bytes()).await;
        let _ = s.write_all(&body).await;
        let _ = s.shutdown().await;
    });
    let resp = crate::backend::tests::backend(&[port])
        .send(crate::backend::tests::request(
            http::Method::GET,
            "/api/v1/query",
        ))
        .await
        .unwrap();
    let out = read_body(resp, cap).await;
    server.await.unwrap();
    out
}

async fn error_of(r: Refusal) -> (u16, Value) {
    let r = r.render("");
    let status = r.status().as_u16();
    let body = actix_web::body::to_bytes(r.into_body()).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn bodies_over_the_cap_are_refused_with_a_clear_502() {
    let body = vec![b' '; 1000];
    assert_eq!(
        read_served(body.clone(), "", 1000).await.unwrap(),
        body,
        "exactly the cap is read"
    );
    let r = read_served(vec![b' '; 1001], "", 1000).await.unwrap_err();
    let (status, v) = error_of(r).await;
    assert_eq!(status, 502);
    assert_eq!(
        v,
        json!({"status":"error","errorType":"unavailable",
            "error":"backend answer larger than 1000 bytes, too large to filter for a project-scoped caller"})
    );
    // Gzip is decoded, and the cap applies to the decoded size.
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b'x'; 5000]).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 1000);
    let r = read_served(gz.clone(), "content-encoding: gzip\r\n", 1000)
        .await
        .unwrap_err();
    assert_eq!(error_of(r).await.0, 502);
    assert_eq!(
        read_served(gz, "content-encoding: gzip\r\n", 5000)
            .await
            .unwrap(),
        vec![b'x'; 5000]
    );
    let r = read_served(b"{}".to_vec(), "content-encoding: br\r\n", 1000)
        .await
        .unwrap_err();
    let (status, v) = error_of(r).await;
    assert_eq!(status, 502);
    assert!(v["error"].as_str().unwrap().contains("content encoding"));
}

const RULES: &str = r#"{"status":"success","data":{"groups":[
    {"name":"g1","file":"f","rules":[
        {"name":"mine","labels":{"project":"B"},"alerts":[{"labels":{"project":"B"},"state":"firing"},{"labels":{"project":"A"}}],"type":"alerting"},
        {"name":"theirs","labels":{"project":"A"}},
        {"name":"global"}],"interval":15},
    {"name":"g2","rules":[{"name":"x","labels":{}}]},
    {"name":"g3","rules":[{"name":"rec", "labels":{"project":"B"},  "query":"sum(x)"}]},
    {"name":"g4"}]},"warnings":["w"]}"#;

#[test]
fn rules_without_the_project_label_are_dropped_with_empty_groups() {
    let out = filter_rules(RULES.as_bytes(), "project", "B").unwrap();
    let v = parsed(&out);
    let groups = v["data"]["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{v}");
    assert_eq!(groups[0]["name"], "g1");
    assert_eq!(groups[0]["interval"], 15);
    assert_eq!(groups[0]["rules"].as_array().unwrap().len(), 1);
    assert_eq!(groups[0]["rules"][0]["name"], "mine");
    assert_eq!(groups[0]["rules"][0]["type"], "alerting");
    assert_eq!(
        groups[0]["rules"][0]["alerts"],
        json!([{"labels":{"project":"B"},"state":"firing"}])
    );
    assert_eq!(groups[1]["name"], "g3");
    assert_eq!(v["warnings"], json!(["w"]));
    assert_eq!(v["status"], "success");
    // Nothing of project A is left.
    assert!(!contains(&out, "\"A\""));
    assert!(!contains(&out, "theirs"));
}

#[test]
fn kept_rules_and_alerts_are_copied_byte_for_byte() {
    let out = filter_rules(RULES.as_bytes(), "project", "B").unwrap();
    // A rule all of whose alerts are kept, with its odd spacing.
    assert!(contains(
        &out,
        r#"{"name":"rec", "labels":{"project":"B"},  "query":"sum(x)"}"#
    ));
    // The kept alert of a rule that lost one.
    assert!(contains(
        &out,
        r#"{"labels":{"project":"B"},"state":"firing"}"#
    ));
    let alerts = r#"{"status":"success","data":{"alerts":[{"labels":{"project":"B", "x":"\u00e9"},"value":"1e+00"},{"labels":{"project":"A"}}]}}"#;
    let out = filter_alerts(alerts.as_bytes(), "project", "B").unwrap();
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        r#"{"status":"success","data":{"alerts":[{"labels":{"project":"B", "x":"\u00e9"},"value":"1e+00"}]}}"#
    );
}

#[test]
fn alerts_of_other_projects_are_dropped() {
    let b = br#"{"data":{"alerts":[{"labels":{"project":"B"}},{"labels":{"project":"A"}},{"labels":{}},{"labels":{"project":"B","project":"A"}},{"nolabels":1}]}}"#;
    let v = parsed(&filter_alerts(b, "project", "B").unwrap());
    assert_eq!(v["data"]["alerts"], json!([{"labels":{"project":"B"}}]));
}

#[test]
fn ambiguous_or_repeated_members_fail_closed() {
    // A repeated project label with another value is not the project's.
    let b =
        br#"{"data":{"groups":[{"name":"g","rules":[{"labels":{"project":"B","project":"A"}}]}]}}"#;
    let v = parsed(&filter_rules(b, "project", "B").unwrap());
    assert_eq!(v["data"]["groups"], json!([]));
    // A repeated `data` is written once: the filtered one.
    let b = br#"{"data":{"alerts":[{"labels":{"project":"A"}}]},"data":{"alerts":[]}}"#;
    let out = filter_alerts(b, "project", "B").unwrap();
    assert_eq!(out, br#"{"data":{"alerts":[]}}"#);
    // A repeated `alerts` of a kept rule: only the filtered one is written.
    let b = br#"{"data":{"groups":[{"rules":[{"labels":{"project":"B"},"alerts":[{"labels":{"project":"A"}}],"alerts":[{"labels":{"project":"B"}}]}]}]}}"#;
    let out = filter_rules(b, "project", "B").unwrap();
    assert!(
        !contains(&out, "\"A\""),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn unexpected_shapes_are_errors_not_passed_through() {
    assert_eq!(
        filter_rules(b"not json", "project", "B"),
        Err(FilterError::NotJson)
    );
    assert_eq!(
        filter_rules(
            br#"{"data":{"other":[{"labels":{"project":"A"}}]}}"#,
            "project",
            "B"
        ),
        Err(FilterError::Shape("data.groups"))
    );
    assert_eq!(
        filter_alerts(br#"{"data":[]}"#, "project", "B"),
        Err(FilterError::Shape("data"))
    );
    assert_eq!(
        filter_alerts(b"\xff\xfe", "project", "B"),
        Err(FilterError::NotJson)
    );
    // Go's nil slices: `null` is an empty list.
    let v = parsed(&filter_alerts(br#"{"data":{"alerts":null}}"#, "project", "B").unwrap());
    assert_eq!(v["data"]["alerts"], json!([]));
    // Other members of `data` are dropped, the opaque page token is kept.
    let b = br#"{"data":{"groups":[],"groupNextToken":"abc","extra":"secret"}}"#;
    let v = parsed(&filter_rules(b, "project", "B").unwrap());
    assert_eq!(v["data"], json!({"groups":[],"groupNextToken":"abc"}));
}

/// Two targets: the shared exporter (series of A and B) and B's own target,
/// which exports `shared` with its own HELP text and a histogram.
fn series_of(project: &str) -> ProjectSeries {
    let answer = match project {
        "A" => json!({"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"shared","job":"exp","instance":"h:1"},"value":[1,"1"]},
            {"metric":{"__name__":"lat_bucket","job":"exp","instance":"h:1"},"value":[1,"3"]},
            {"metric":{"__name__":"reqs_total","job":"exp","instance":"h:1"},"value":[1,"1"]},
            {"metric":{"__name__":"recorded"},"value":[1,"1"]}]}}),
        _ => json!({"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"shared","job":"exp","instance":"h:1"},"value":[1,"1"]},
            {"metric":{"__name__":"shared","job":"b-own","instance":"h:2"},"value":[1,"1"]},
            {"metric":{"__name__":"b_only","job":"b-own","instance":"h:2"},"value":[1,"1"]}]}}),
    };
    ProjectSeries::from_query_answer(answer.to_string().as_bytes()).unwrap()
}

const TARGETS_METADATA: &str = r#"{"status":"success","data":[
{"target":{"instance":"h:1","job":"exp"},"metric":"shared","type":"gauge","help":"Shared.","unit":""},
{"target":{"instance":"h:1","job":"exp"},"metric":"lat","type":"histogram","help":"Latency.","unit":"seconds"},
{"target":{"instance":"h:1","job":"exp"},"metric":"reqs","type":"counter","help":"Requests.","unit":""},
{"target":{"instance":"h:1","job":"exp"},"metric":"b_only","type":"gauge","help":"Only B has this.","unit":""},
{"target":{"instance":"h:2","job":"b-own"},"metric":"shared","type":"gauge","help":"SECRET help of B.","unit":""},
{"target":{"instance":"h:2","job":"b-own"},"metric":"b_only","type":"gauge","help":"Only B has this.","unit":""},
{"target":{"instance":"h:3","job":"labelled","project":"B"},"metric":"shared","type":"gauge","help":"Labelled B.","unit":""},
{"target":{"instance":"h:9","job":"none"},"metric":"shared","type":"gauge","help":"Nobody's.","unit":""}]}"#;

fn q(s: &str) -> MetadataQuery {
    MetadataQuery::parse(s).unwrap()
}

fn metadata(project: &str, query: &str) -> Value {
    parsed(
        &metadata_answer(
            TARGETS_METADATA.as_bytes(),
            &series_of(project),
            "project",
            project,
            &q(query),
        )
        .unwrap(),
    )
}

#[test]
fn metadata_comes_only_from_the_projects_targets() {
    assert_eq!(
        metadata("A", ""),
        json!({"status":"success","data":{
            "lat":[{"type":"histogram","help":"Latency.","unit":"seconds"}],
            "reqs":[{"type":"counter","help":"Requests.","unit":""}],
            "shared":[{"type":"gauge","help":"Shared.","unit":""}]}})
    );
    // B sees its own target's text too, deduplicated per metric; a target
    // whose own labels name another project is not A's either way.
    assert_eq!(
        metadata("B", ""),
        json!({"status":"success","data":{
            "b_only":[{"type":"gauge","help":"Only B has this.","unit":""}],
            "shared":[{"type":"gauge","help":"Shared.","unit":""},
                      {"type":"gauge","help":"SECRET help of B.","unit":""}]}})
    );
}

#[test]
fn target_labels_naming_another_project_exclude_the_target() {
    let answer = json!({"data":{"result":[
        {"metric":{"__name__":"shared","job":"labelled","instance":"h:3"}}]}});
    let a = ProjectSeries::from_query_answer(answer.to_string().as_bytes()).unwrap();
    let out = metadata_answer(TARGETS_METADATA.as_bytes(), &a, "project", "A", &q("")).unwrap();
    assert_eq!(parsed(&out)["data"], json!({}));
    let out = metadata_answer(TARGETS_METADATA.as_bytes(), &a, "project", "B", &q("")).unwrap();
    assert_eq!(
        parsed(&out)["data"],
        json!({"shared":[{"type":"gauge","help":"Labelled B.","unit":""}]})
    );
}

#[test]
fn metadata_limits_apply_after_filtering_like_prometheus() {
    let names =
        |v: Value| -> Vec<String> { v["data"].as_object().unwrap().keys().cloned().collect() };
    assert_eq!(names(metadata("A", "limit=1")), ["lat"]);
    assert_eq!(names(metadata("A", "limit=2")), ["lat", "reqs"]);
    assert_eq!(names(metadata("A", "limit=0")), Vec::<String>::new());
    assert_eq!(names(metadata("A", "limit=-1")).len(), 3);
    assert_eq!(names(metadata("A", "limit=")).len(), 3);
    assert_eq!(
        metadata("B", "limit_per_metric=1")["data"]["shared"],
        json!([{"type":"gauge","help":"Shared.","unit":""}])
    );
    assert_eq!(
        metadata("B", "limit_per_metric=0")["data"]["shared"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        MetadataQuery::parse("limit=x"),
        Err("limit must be a number".into())
    );
    assert_eq!(
        MetadataQuery::parse("limit_per_metric=1.5"),
        Err("limit_per_metric must be a number".into())
    );
    assert_eq!(q("limit=%2B3&limit=7").limit, 3, "first value, like Go");
}

#[test]
fn metric_parameter_selects_one_family() {
    // With metric=, Prometheus leaves `metric` out of the entries.
    let body = r#"{"status":"success","data":[
        {"target":{"instance":"h:1","job":"exp"},"type":"gauge","help":"Shared.","unit":""},
        {"target":{"instance":"h:2","job":"b-own"},"type":"gauge","help":"SECRET help of B.","unit":""}]}"#;
    let out = metadata_answer(
        body.as_bytes(),
        &series_of("A"),
        "project",
        "A",
        &q("metric=shared"),
    )
    .unwrap();
    assert_eq!(
        parsed(&out)["data"],
        json!({"shared":[{"type":"gauge","help":"Shared.","unit":""}]})
    );
    assert_eq!(
        metadata("A", "metric=lat")["data"]
            .as_object()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(metadata("A", "metric=b_only")["data"], json!({}));
}

#[test]
fn targets_metadata_keeps_entries_byte_for_byte_and_limits_per_target() {
    let out = targets_metadata_answer(
        TARGETS_METADATA.as_bytes(),
        &series_of("B"),
        "project",
        "B",
        &q(""),
    )
    .unwrap();
    let expected = [
        r#"{"target":{"instance":"h:1","job":"exp"},"metric":"shared","type":"gauge","help":"Shared.","unit":""}"#,
        r#"{"target":{"instance":"h:2","job":"b-own"},"metric":"shared","type":"gauge","help":"SECRET help of B.","unit":""}"#,
        r#"{"target":{"instance":"h:2","job":"b-own"},"metric":"b_only","type":"gauge","help":"Only B has this.","unit":""}"#,
    ];
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        format!(r#"{{"status":"success","data":[{}]}}"#, expected.join(","))
    );
    let a = targets_metadata_answer(
        TARGETS_METADATA.as_bytes(),
        &series_of("A"),
        "project",
        "A",
        &q(""),
    )
    .unwrap();
    assert_eq!(parsed(&a)["data"].as_array().unwrap().len(), 3);
    assert!(!contains(&a, "SECRET") && !contains(&a, "b_only"));
    // limit: no further target once that many entries are listed, as
    // Prometheus counts (a target's entries are not split).
    let n = |query: &str| {
        let out = targets_metadata_answer(
            TARGETS_METADATA.as_bytes(),
            &series_of("B"),
            "project",
            "B",
            &q(query),
        )
        .unwrap();
        parsed(&out)["data"].as_array().unwrap().len()
    };
    assert_eq!(n("limit=0"), 0);
    assert_eq!(n("limit=1"), 1);
    assert_eq!(n("limit=2"), 3);
    assert_eq!(n("limit=-1"), 3);
}

#[test]
fn series_without_job_or_instance_give_no_metadata() {
    // `recorded` of A has neither: nothing of it in the answer.
    let body = r#"{"status":"success","data":[{"target":{"instance":"h:1","job":"exp"},"metric":"recorded","type":"gauge","help":"R.","unit":""}]}"#;
    let out = metadata_answer(body.as_bytes(), &series_of("A"), "project", "A", &q("")).unwrap();
    assert_eq!(parsed(&out)["data"], json!({}));
    assert_eq!(
        ProjectSeries::from_query_answer(br#"{"data":{"result":[1]}}"#).unwrap_err(),
        FilterError::Shape("data.result[].metric")
    );
}

#[test]
fn family_suffixes_and_metric_names() {
    let s = series_of("A");
    let t: RawObject = serde_json::from_str(r#"{"job":"exp","instance":"h:1"}"#).unwrap();
    assert!(s.allows(&t, "lat", "project", "A"));
    assert!(s.allows(&t, "reqs", "project", "A"));
    assert!(s.allows(&t, "shared", "project", "A"));
    assert!(!s.allows(&t, "la", "project", "A"));
    assert!(!s.allows(&t, "lat_bucket_x", "project", "A"));
    let dup: RawObject =
        serde_json::from_str(r#"{"job":"exp","instance":"h:1","job":"other"}"#).unwrap();
    assert!(!s.allows(&dup, "shared", "project", "A"));
    assert!(is_metric_name("a:b_c9"));
    assert!(!is_metric_name("9a") && !is_metric_name("a.b") && !is_metric_name(""));
}

#[test]
fn rules_reading_metrics_outside_the_grants_are_dropped() {
    use std::sync::Arc;

    use crate::tenancy::{Grant, Grants};
    let g = Grants::new(vec![Arc::new(
        Grant::parse("{__name__=~\"ceilometer_.*\"}").unwrap(),
    )]);
    let b = br#"{"data":{"groups":[{"name":"g","rules":[
        {"name":"ok","labels":{"project":"B"},"query":"rate(ceilometer_cpu[5m]) > 0"},
        {"name":"hidden","labels":{"project":"B"},"query":"node_secret_total > 1"},
        {"name":"noquery","labels":{"project":"B"}}]}]}}"#;
    let v = parsed(&filter_rules_granted(b, "project", "B", Some(&g)).unwrap());
    let rules = v["data"]["groups"][0]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "{v}");
    assert_eq!(rules[0]["name"], "ok");
    // Without rules file, all three stay.
    let v = parsed(&filter_rules_granted(b, "project", "B", None).unwrap());
    assert_eq!(v["data"]["groups"][0]["rules"].as_array().unwrap().len(), 3);
}

fn grants_of(texts: &[&str]) -> crate::tenancy::Grants {
    crate::tenancy::Grants::new(
        texts
            .iter()
            .map(|t| std::sync::Arc::new(crate::tenancy::Grant::parse(t).unwrap()))
            .collect(),
    )
}

/// A `rules?type=alert` answer as Prometheus 2.42 writes it (the stack's
/// rules, shortened), with a denied rule, a narrowed one and odd ones.
const ALERTING_RULES_BODY: &str = r#"{"status":"success","data":{"groups":[
{"name":"g1","file":"f","rules":[
 {"state":"firing","name":"Busy","query":"ceilometer_cpu \u003e 0","duration":0,"labels":{"severity":"info"},
  "alerts":[
   {"labels":{"alertname":"Busy","project":"A","resource":"r1"},"annotations":{"summary":"s"},"state":"firing","activeAt":"2026-01-01T00:00:00Z","value":"5e+12"},
   {"labels":{"alertname":"Busy","project":"B","resource":"r2"},"annotations":{},"state":"firing","activeAt":"2026-01-01T00:00:00Z","value":"1e+00"},
   {"labels":{"alertname":"Busy","project":"A","resource":"r3"},"annotations":{},"state":"pending","activeAt":"2026-01-01T00:00:01Z","value":"2e+00"}],
  "health":"ok","type":"alerting"},
 {"state":"firing","name":"Secret","query":"label_lookalike_info > 0","labels":{"project":"A"},
  "alerts":[{"labels":{"alertname":"Secret","project":"A","looks_like":"x"},"annotations":{},"state":"firing","activeAt":"2026-01-01T00:00:00Z","value":"1e+00"}],
  "type":"alerting"},
 {"state":"firing","name":"Narrowed","query":"up == 0",
  "alerts":[{"labels":{"alertname":"Narrowed","project":"A"},"annotations":{},"state":"firing","activeAt":"2026-01-01T00:00:00Z","value":"0e+00"}],
  "type":"alerting"},
 {"state":"firing","name":"NoQuery",
  "alerts":[{"labels":{"alertname":"NoQuery","project":"A"},"annotations":{},"state":"firing","value":"1e+00"}]},
 {"state":"firing","name":"BadQuery","query":"sum(",
  "alerts":[{"labels":{"alertname":"BadQuery","project":"A"},"annotations":{},"state":"firing","value":"1e+00"}]},
 {"state":"inactive","name":"Quiet","query":"ceilometer_memory_usage > 1e99","alerts":[],"type":"alerting"},
 {"name":"recorded","query":"sum(ceilometer_cpu)","type":"recording"}]},
{"name":"g2","file":"f","rules":[
 {"state":"firing","name":"Memory","query":"ceilometer_memory_usage > 0","alerts":null},
 {"state":"firing","name":"Memory2","query":"ceilometer_memory_usage > 0",
  "alerts":[{"labels":{"alertname":"Memory2","project":"A"},"annotations":{},"state":"firing","activeAt":"2026-01-01T00:00:00Z","value":"3e+00","keepFiringSince":"2026-01-01T00:00:05Z"}]}]}]}}"#;

#[test]
fn alerts_under_restricting_rules_are_those_of_the_rules_they_allow() {
    let g = grants_of(&["{__name__=~\"ceilometer_.*\"}", "up{job=\"x\"}"]);
    let out = alerts_from_rules(ALERTING_RULES_BODY.as_bytes(), "project", "A", &g).unwrap();
    // Each kept alert byte for byte, in the order of the rules.
    let alert = |name: &str, nth: usize| {
        let start = ALERTING_RULES_BODY
            .match_indices(&format!(r#"{{"labels":{{"alertname":"{name}""#))
            .nth(nth)
            .unwrap()
            .0;
        let len = ALERTING_RULES_BODY[start..].find(r#""value":""#).unwrap();
        let rest = &ALERTING_RULES_BODY[start + len..];
        let end = rest.find('}').unwrap();
        ALERTING_RULES_BODY[start..start + len + end + 1].to_owned()
    };
    let expected = format!(
        r#"{{"status":"success","data":{{"alerts":[{},{},{}]}}}}"#,
        alert("Busy", 0),
        alert("Busy", 2),
        alert("Memory2", 0)
    );
    assert_eq!(String::from_utf8(out.clone()).unwrap(), expected);
    assert!(!contains(&out, "looks_like") && !contains(&out, "Narrowed"));
    // Nothing granted: no alert; another project's caller: its own only.
    let none = grants_of(&[]);
    let out = alerts_from_rules(ALERTING_RULES_BODY.as_bytes(), "project", "A", &none).unwrap();
    assert_eq!(
        parsed(&out),
        json!({"status":"success","data":{"alerts":[]}})
    );
    let out = alerts_from_rules(ALERTING_RULES_BODY.as_bytes(), "project", "B", &g).unwrap();
    let v = parsed(&out);
    assert_eq!(v["data"]["alerts"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["data"]["alerts"][0]["labels"]["resource"], "r2");
    // Not a rules answer: refused (502), never passed through.
    for bad in [
        r#"{"status":"success","data":{"alerts":[]}}"#,
        r#"{"status":"success","data":{"groups":[{"rules":[{"alerts":{}}]}]}}"#,
        r#"{"status":"success","data":{"groups":[1]}}"#,
        "<html>",
    ] {
        assert!(
            alerts_from_rules(bad.as_bytes(), "project", "A", &g).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn only_restricting_rules_send_alerts_to_the_alerting_rules() {
    use crate::request::CallerGrants;
    let request = || BackendRequest {
        method: Method::GET,
        path: "/api/v1/alerts".into(),
        params: Params {
            url: "x=1".into(),
            body: None,
        },
        headers: vec![],
        project: Some("A".into()),
    };
    let caller = |texts: &[&str]| CallerGrants {
        grants: std::sync::Arc::new(grants_of(texts)),
        key: "g1:0,".into(),
    };
    let restricted = caller(&["ceilometer_cpu"]);
    let mut r = request();
    assert!(answers_alerts_from_rules(
        Filter::Alerts,
        Some(&restricted),
        &mut r
    ));
    assert_eq!((r.path.as_str(), r.params.url.as_str()), ALERTING_RULES);
    for (filter, grants) in [
        (Filter::Alerts, None),
        (Filter::Alerts, Some(caller(&["{__name__=~\".+\"}"]))),
        (Filter::Rules, Some(restricted.clone())),
    ] {
        let mut r = request();
        assert!(!answers_alerts_from_rules(filter, grants.as_ref(), &mut r));
        assert_eq!(
            (r.path.as_str(), r.params.url.as_str()),
            ("/api/v1/alerts", "x=1")
        );
    }
}
