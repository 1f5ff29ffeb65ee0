//! Alertmanager API v2 through aetos, against the stack's real
//! Alertmanager fed by the real Prometheus' alerting rules
//! (tools/stack.sh: `AetosStack*` alerts for both demo projects, and one
//! without any project label): a member or reader of one project never
//! sees, silences or expires another project's alerts or silences, by any
//! route; admins see everything; amtool works with an application
//! credential as HTTP basic.
#![cfg(feature = "functional")]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{enc, json_of, stack, token, Aetos};
use serde_json::{json, Value};

fn am_url() -> String {
    stack().s("/alertmanager_url")
}

fn demo() -> String {
    stack().project("demo")
}

fn other() -> String {
    stack().project("other")
}

fn start() -> Aetos {
    Aetos::start(&format!("[alertmanager]\nurl = {}\n", am_url()), None)
}

/// Every alert Alertmanager holds, asked directly (no aetos).
async fn direct(path: &str) -> Value {
    let r = common::client()
        .get(format!("{}/api/v2/{path}", am_url()))
        .send()
        .await
        .expect("Alertmanager answers");
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// The `project` label of each alert in a list (`-` for none).
fn projects_of(alerts: &Value) -> Vec<String> {
    alerts
        .as_array()
        .expect("a list of alerts")
        .iter()
        .map(|a| a["labels"]["project"].as_str().unwrap_or("-").to_owned())
        .collect()
}

/// Waits until Alertmanager holds alerts of both projects and one without
/// a project (Prometheus evaluates every second and resends every 2 s).
async fn alerts_of_both_projects() -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let alerts = direct("alerts").await;
        let ps = projects_of(&alerts);
        if ps.contains(&demo()) && ps.contains(&other()) && ps.iter().any(|p| p == "-") {
            return alerts;
        }
        assert!(
            Instant::now() < deadline,
            "Alertmanager has not received the stack's alerts: {alerts}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn get(a: &Aetos, path: &str, user: &str) -> (u16, Value) {
    let r = common::client()
        .get(format!("{}{path}", a.url))
        .header("X-Auth-Token", token(user).await)
        .send()
        .await
        .unwrap();
    json_of(r).await
}

async fn post_silence(a: &Aetos, user: &str, silence: &Value) -> (u16, Value) {
    let r = common::client()
        .post(format!("{}/alertmanager/api/v2/silences", a.url))
        .header("X-Auth-Token", token(user).await)
        .json(silence)
        .send()
        .await
        .unwrap();
    json_of(r).await
}

/// DELETE: the status and the body text (Alertmanager answers 200 with none).
async fn delete(a: &Aetos, path: &str, user: &str) -> (u16, String) {
    let r = common::client()
        .delete(format!("{}{path}", a.url))
        .header("X-Auth-Token", token(user).await)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn matcher(name: &str, value: &str, is_regex: bool, is_equal: bool) -> Value {
    json!({"name": name, "value": value, "isRegex": is_regex, "isEqual": is_equal})
}

fn silence_of(matchers: Vec<Value>, comment: &str) -> Value {
    let now = chrono_like_now();
    json!({"matchers": matchers, "startsAt": now.0, "endsAt": now.1,
           "createdBy": "functional_alertmanager", "comment": comment})
}

/// `(now, now + 1 h)` as RFC 3339 UTC, from the system clock.
fn chrono_like_now() -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (rfc3339(secs), rfc3339(secs + 3600))
}

fn rfc3339(secs: u64) -> String {
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The silence with `id`, asked directly; `None` when Alertmanager has none.
async fn direct_silence(id: &str) -> Option<Value> {
    let r = common::client()
        .get(format!("{}/api/v2/silence/{id}", am_url()))
        .send()
        .await
        .unwrap();
    (r.status() == 200).then_some(r.json().await.unwrap())
}

/// Creates a silence directly in Alertmanager (as an operator would).
async fn direct_silence_for(project: &str, comment: &str) -> String {
    let s = silence_of(
        vec![
            matcher("alertname", "AetosStackProjectUp", false, true),
            matcher("project", project, false, true),
        ],
        comment,
    );
    let r = common::client()
        .post(format!("{}/api/v2/silences", am_url()))
        .json(&s)
        .send()
        .await
        .unwrap();
    let (st, v) = json_of(r).await;
    assert_eq!(st, 200, "{v}");
    v["silenceID"].as_str().unwrap().to_owned()
}

fn state_of(s: &Value) -> &str {
    s["status"]["state"].as_str().unwrap_or("-")
}

fn pins(s: &Value, project: &str) -> bool {
    s["matchers"].as_array().unwrap().iter().any(|m| {
        m["name"] == "project"
            && m["value"] == project
            && m["isRegex"] == false
            && m["isEqual"] != false
    })
}

#[tokio::test]
async fn scoped_readers_see_only_their_projects_alerts_and_groups() {
    let all = alerts_of_both_projects().await;
    assert!(projects_of(&all).contains(&other()));
    let a = start();
    for user in ["demo-reader", "demo-member"] {
        for path in [
            "/alertmanager/api/v2/alerts".to_owned(),
            "/prometheus/alertmanager/api/v2/alerts".to_owned(),
            // The caller's own filters can only narrow the answer.
            format!(
                "/alertmanager/api/v2/alerts?filter={}",
                enc("project=~\".+\"")
            ),
            format!(
                "/alertmanager/api/v2/alerts?filter={}&filter={}",
                enc("project!=\"x\""),
                enc("alertname=~\"Aetos.*\"")
            ),
        ] {
            let (st, v) = get(&a, &path, user).await;
            assert_eq!(st, 200, "{path}: {v}");
            let ps = projects_of(&v);
            assert!(!ps.is_empty(), "{user} {path}: {v}");
            assert!(ps.iter().all(|p| *p == demo()), "{user} {path}: {ps:?}");
        }
        // Asking for the other project's alerts finds nothing.
        let path = format!(
            "/alertmanager/api/v2/alerts?filter={}",
            enc(&format!("project=\"{}\"", other()))
        );
        let (st, v) = get(&a, &path, user).await;
        assert_eq!((st, v.clone()), (200, json!([])), "{path}");
        let (st, groups) = get(&a, "/alertmanager/api/v2/alerts/groups", user).await;
        assert_eq!(st, 200, "{groups}");
        let groups = groups.as_array().unwrap();
        assert!(!groups.is_empty());
        for g in groups {
            let ps = projects_of(&g["alerts"]);
            assert!(!ps.is_empty() && ps.iter().all(|p| *p == demo()), "{g}");
        }
    }
    let (st, v) = get(&a, "/alertmanager/api/v2/alerts", "other-member").await;
    assert_eq!(st, 200);
    assert!(projects_of(&v).iter().all(|p| *p == other()), "{v}");
}

#[tokio::test]
async fn admins_see_every_alert_and_the_privileged_endpoints() {
    alerts_of_both_projects().await;
    let a = start();
    let (st, v) = get(&a, "/alertmanager/api/v2/alerts", "admin").await;
    assert_eq!(st, 200);
    let ps = projects_of(&v);
    assert!(ps.contains(&demo()) && ps.contains(&other()) && ps.contains(&"-".to_owned()));
    for ep in ["status", "receivers"] {
        let path = format!("/alertmanager/api/v2/{ep}");
        let (st, v) = get(&a, &path, "admin").await;
        assert_eq!(st, 200, "{ep}: {v}");
        for user in ["demo-reader", "demo-member"] {
            let (st, _) = get(&a, &path, user).await;
            assert_eq!(st, 403, "{user} {ep}");
        }
    }
}

#[tokio::test]
async fn a_member_silences_only_its_project() {
    let a = start();
    // Without a project matcher: aetos adds it.
    let (st, v) = post_silence(
        &a,
        "demo-member",
        &silence_of(
            vec![matcher("alertname", "AetosStackInstanceBusy", false, true)],
            "member, no project matcher",
        ),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let id = v["silenceID"].as_str().unwrap().to_owned();
    let s = direct_silence(&id).await.expect("the silence exists");
    assert!(pins(&s, &demo()), "{s}");
    // Seen by its project, not by the other one.
    let (st, list) = get(&a, "/alertmanager/api/v2/silences", "demo-reader").await;
    assert_eq!(st, 200);
    let list = list.as_array().unwrap();
    assert!(list.iter().any(|s| s["id"] == id.as_str()));
    assert!(list.iter().all(|s| pins(s, &demo())), "{list:?}");
    let path = format!("/alertmanager/api/v2/silence/{id}");
    let (st, one) = get(&a, &path, "demo-reader").await;
    assert_eq!((st, one["id"].as_str()), (200, Some(id.as_str())));
    let (st, _) = get(&a, &path, "other-member").await;
    assert_eq!(st, 404);
    let (st, list) = get(&a, "/alertmanager/api/v2/silences", "other-member").await;
    assert_eq!(st, 200);
    assert!(!list
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["id"] == id.as_str()));
    // The other project cannot expire it; its own project can.
    let (st, _) = delete(&a, &path, "other-member").await;
    assert_eq!(st, 404);
    assert_eq!(state_of(&direct_silence(&id).await.unwrap()), "active");
    // A reader may read silences but not write them.
    let (st, _) = delete(&a, &path, "demo-reader").await;
    assert_eq!(st, 403);
    let (st, _) = delete(&a, &path, "demo-member").await;
    assert_eq!(st, 200);
    assert_eq!(state_of(&direct_silence(&id).await.unwrap()), "expired");
}

#[tokio::test]
async fn silences_that_reach_another_project_are_refused_and_never_created() {
    let a = start();
    // Unique to this run: other tests create silences at the same time.
    let refused = format!("must be refused {}", common::free_port());
    let d = demo();
    let o = other();
    for (m, status) in [
        (vec![matcher("project", &o, false, true)], 403),
        (vec![matcher("project", ".*", true, true)], 403),
        (vec![matcher("project", &d, true, true)], 403),
        (vec![matcher("project", &d, false, false)], 403),
        (vec![matcher("project", &o, false, false)], 403),
        (vec![matcher("project", "x.*", true, false)], 403),
        (
            vec![
                matcher("project", &d, false, true),
                matcher("project", &o, false, true),
            ],
            403,
        ),
        // A second spelling of a field, as Go's decoder would read it.
        (
            vec![json!({"name": "project", "value": d, "isRegex": false, "IsRegex": true})],
            400,
        ),
        (
            vec![json!({"NAME": "project", "VALUE": o, "ISREGEX": false})],
            403,
        ),
    ] {
        let body = silence_of(m.clone(), &refused);
        let (st, v) = post_silence(&a, "demo-member", &body).await;
        assert_eq!(st, status, "{m:?}: {v}");
        assert!(v.is_string(), "Alertmanager's error format: {v}");
    }
    // The readers' role cannot create silences at all.
    let body = silence_of(vec![matcher("alertname", "X", false, true)], &refused);
    let (st, _) = post_silence(&a, "demo-reader", &body).await;
    assert_eq!(st, 403);
    let after = direct("silences").await;
    let created: Vec<&Value> = after
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["comment"] == refused.as_str())
        .collect();
    assert!(created.is_empty(), "{created:?}");
}

#[tokio::test]
async fn another_projects_silence_cannot_be_read_updated_or_expired() {
    let a = start();
    let theirs = direct_silence_for(&other(), "the other project's").await;
    let path = format!("/alertmanager/api/v2/silence/{theirs}");
    let (st, _) = get(&a, &path, "demo-member").await;
    assert_eq!(st, 404);
    let (st, _) = delete(&a, &path, "demo-member").await;
    assert_eq!(st, 404);
    // An update naming their id, with our project's matcher.
    let mut update = silence_of(
        vec![matcher("alertname", "AetosStackProjectUp", false, true)],
        "hijack",
    );
    update["id"] = json!(theirs);
    let (st, _) = post_silence(&a, "demo-member", &update).await;
    assert_eq!(st, 404);
    let s = direct_silence(&theirs).await.unwrap();
    assert_eq!(state_of(&s), "active");
    assert!(
        pins(&s, &other()) && s["comment"] == "the other project's",
        "{s}"
    );
    let (_, list) = get(&a, "/alertmanager/api/v2/silences", "demo-member").await;
    assert!(!list
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["id"] == theirs.as_str()));
    // Their own member and an admin may update and expire it.
    let mut update = silence_of(
        vec![
            matcher("alertname", "AetosStackProjectUp", false, true),
            matcher("project", &other(), false, true),
        ],
        "updated by its project",
    );
    update["id"] = json!(theirs);
    let (st, v) = post_silence(&a, "other-member", &update).await;
    assert_eq!(st, 200, "{v}");
    let id = v["silenceID"].as_str().unwrap().to_owned();
    let (st, list) = get(&a, "/alertmanager/api/v2/silences", "admin").await;
    assert_eq!(st, 200);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["id"] == id.as_str()));
    let (st, _) = delete(&a, &format!("/alertmanager/api/v2/silence/{id}"), "admin").await;
    assert_eq!(st, 200);
    assert_eq!(state_of(&direct_silence(&id).await.unwrap()), "expired");
}

#[tokio::test]
async fn alertmanager_routes_answer_404_when_it_is_not_configured() {
    let a = Aetos::start("", None);
    let (st, v) = get(&a, "/alertmanager/api/v2/alerts", "admin").await;
    assert_eq!(st, 404, "{v}");
    assert!(v.as_str().unwrap().contains("[alertmanager] url"), "{v}");
}

// ---------------------------------------------------------------- amtool

/// Creates an application credential for `user` in the real Keystone.
async fn app_credential(user: &str) -> (String, String) {
    let s = stack();
    let t = common::fresh_token(user).await;
    let uid = s.s(&format!("/users/{user}/id"));
    let r = common::client()
        .post(format!(
            "{}/users/{uid}/application_credentials",
            s.keystone_url().trim_end_matches('/')
        ))
        .header("X-Auth-Token", &t)
        .json(
            &json!({"application_credential": {"name": format!("amtool-{}", common::free_port())}}),
        )
        .send()
        .await
        .unwrap();
    let (st, v) = json_of(r).await;
    assert_eq!(st, 201, "{v}");
    let field = |k: &str| v["application_credential"][k].as_str().unwrap().to_owned();
    (field("id"), field("secret"))
}

/// `amtool ARGS…` against aetos' Alertmanager root with HTTP basic
/// credentials in the URL; `(success, stdout, stderr)`.
fn amtool(a: &Aetos, (id, secret): &(String, String), args: &[&str]) -> (bool, String, String) {
    let url = format!("http://{id}:{secret}@127.0.0.1:{}/alertmanager", a.port);
    let out = Command::new(stack().s("/amtool"))
        .arg(format!("--alertmanager.url={url}"))
        .args(args)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .output()
        .expect("amtool (Debian's prometheus-alertmanager) is installed by tools/stack.sh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn amtool_json(a: &Aetos, cred: &(String, String), args: &[&str]) -> Value {
    let (ok, out, err) = amtool(a, cred, args);
    assert!(ok, "amtool {args:?}: {err}\n{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("amtool {args:?} output: {e}: {out}"))
}

#[tokio::test]
async fn amtool_as_a_project_member_and_as_admin() {
    alerts_of_both_projects().await;
    let a = start();
    let member = app_credential("demo-member").await;
    let admin = app_credential("admin").await;

    let alerts = amtool_json(&a, &member, &["-o", "json", "alert", "query"]);
    let ps = projects_of(&alerts);
    assert!(!ps.is_empty() && ps.iter().all(|p| *p == demo()), "{ps:?}");
    let alerts = amtool_json(&a, &admin, &["-o", "json", "alert", "query"]);
    let ps = projects_of(&alerts);
    assert!(ps.contains(&demo()) && ps.contains(&other()), "{ps:?}");

    // silence add: the project matcher is added by aetos.
    let (ok, out, err) = amtool(
        &a,
        &member,
        &[
            "silence",
            "add",
            "alertname=AetosStackInstanceBusy",
            "--comment=amtool as a member",
            "--duration=1h",
        ],
    );
    assert!(ok, "{err}");
    let id = out.trim().to_owned();
    assert!(pins(&direct_silence(&id).await.expect("created"), &demo()));
    // A silence on another project (or any project by regex) is refused.
    for m in [
        format!("project={}", other()),
        "project=~.+".to_owned(),
        format!("project!={}", demo()),
    ] {
        let (ok, _, err) = amtool(
            &a,
            &member,
            &[
                "silence",
                "add",
                "alertname=AetosStackInstanceBusy",
                &m,
                "--comment=x",
            ],
        );
        assert!(!ok, "{m} was accepted");
        assert!(
            err.contains("403")
                || err.to_lowercase().contains("forbidden")
                || err.contains("only as"),
            "{m}: {err}"
        );
    }
    let silences = amtool_json(&a, &member, &["-o", "json", "silence", "query"]);
    let list = silences.as_array().unwrap();
    assert!(list.iter().any(|s| s["id"] == id.as_str()), "{silences}");
    assert!(list.iter().all(|s| pins(s, &demo())), "{silences}");

    // The other project's silence is out of reach of amtool too.
    let theirs = direct_silence_for(&other(), "amtool must not expire this").await;
    let (ok, _, _) = amtool(&a, &member, &["silence", "expire", &theirs]);
    assert!(!ok);
    assert_eq!(state_of(&direct_silence(&theirs).await.unwrap()), "active");
    let (ok, _, err) = amtool(&a, &member, &["silence", "expire", &id]);
    assert!(ok, "{err}");
    assert_eq!(state_of(&direct_silence(&id).await.unwrap()), "expired");

    // The admin sees and expires every project's silences.
    let silences = amtool_json(&a, &admin, &["-o", "json", "silence", "query"]);
    assert!(silences
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["id"] == theirs.as_str()));
    let (ok, _, err) = amtool(&a, &admin, &["silence", "expire", &theirs]);
    assert!(ok, "{err}");
    assert_eq!(state_of(&direct_silence(&theirs).await.unwrap()), "expired");
}
