//! The whole route table in-process (a test of the wired service, so it
//! sits above `app` on the module map): actix's test service with the real
//! middleware and handler, a `State` built by `app` from a configuration
//! file (noauth, or Keystone for callers without a token, which never
//! reaches Keystone), and a recording backend that answers like a small
//! Prometheus and remembers what it was sent.
//!
//! One table row per route and method says, for each kind of caller, what
//! the status is and what the backend received: the request unchanged
//! (privileged), the request confined to project `A` (scoped), or nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::http::Method;
use actix_web::{test as actix_test, web, App};

use crate::state::State;
use crate::test_support::TempDir;

/// One request the backend received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Path and query string, as sent.
    target: String,
    body: String,
}

impl Seen {
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// Every `query` and `match[]` value, from the URL and the form body.
    fn promql(&self) -> Vec<String> {
        let query = self.target.split_once('?').map_or("", |(_, q)| q);
        [query, self.body.as_str()]
            .into_iter()
            .flat_map(|s| url::form_urlencoded::parse(s.as_bytes()))
            .filter(|(k, _)| k == "query" || k == "match[]")
            .map(|(_, v)| v.into_owned())
            .collect()
    }
}

/// A backend that answers every request 200 with a body shaped for its
/// path (rules and alerts of projects A and B), and records it.
struct Recorder {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

const RULES: &str = r#"{"status":"success","data":{"groups":[{"name":"g","file":"f","rules":[{"name":"rule_of_a","labels":{"project":"A"},"type":"alerting"},{"name":"rule_of_b","labels":{"project":"B"},"type":"alerting"}]}]}}"#;
const ALERTS: &str = r#"{"status":"success","data":{"alerts":[{"labels":{"alertname":"alert_of_a","project":"A"}},{"labels":{"alertname":"alert_of_b","project":"B"}}]}}"#;
const VECTOR: &str = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
const EMPTY: &str = r#"{"status":"success","data":[]}"#;
/// Alertmanager's answers (its base URL has the path prefix `/am`).
const AM_ALERTS: &str = r#"[{"labels":{"alertname":"am_alert_of_a","project":"A"}},{"labels":{"alertname":"am_alert_of_b","project":"B"}},{"labels":{"alertname":"am_alert_of_none"}}]"#;
const AM_SILENCE_OF_B: &str = r#"{"id":"bbbbbbbb-0000-4000-8000-000000000000","matchers":[{"name":"project","value":"B","isRegex":false,"isEqual":true}],"status":{"state":"active"}}"#;
const AM_SILENCE_OF_A: &str = r#"{"id":"aaaaaaaa-0000-4000-8000-000000000000","matchers":[{"name":"project","value":"A","isRegex":false,"isEqual":true}],"status":{"state":"active"}}"#;

impl Recorder {
    fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
        let port = listener.local_addr().expect("a bound port").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let store = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let store = store.clone();
                std::thread::spawn(move || serve(stream, &store));
            }
        });
        Recorder { port, seen }
    }

    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().expect("the recorder's lock"))
    }
}

fn serve(mut stream: std::net::TcpStream, store: &Mutex<Vec<Seen>>) {
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut parts = line.split(' ');
    let seen = Seen {
        method: parts.next().unwrap_or("").to_owned(),
        target: parts.next().unwrap_or("").to_owned(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let am_silences = format!("[{AM_SILENCE_OF_A},{AM_SILENCE_OF_B}]");
    let answer = match seen.path() {
        "/am/api/v2/alerts" => AM_ALERTS,
        "/am/api/v2/silences" if seen.method == "GET" => am_silences.as_str(),
        "/am/api/v2/silences" => r#"{"silenceID":"cccccccc-0000-4000-8000-000000000000"}"#,
        p if p.starts_with("/am/api/v2/silence/aaaa") => AM_SILENCE_OF_A,
        p if p.starts_with("/am/api/v2/silence/bbbb") => AM_SILENCE_OF_B,
        "/api/v1/rules" => RULES,
        "/api/v1/alerts" => ALERTS,
        "/api/v1/query" => VECTOR,
        _ => EMPTY,
    };
    store.lock().expect("the recorder's lock").push(seen);
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    );
}

/// A `State` as `app` builds it from `conf` (with `[prometheus]` pointing
/// at the recorder), without serving.
fn state(dir: &TempDir, recorder: &Recorder, conf: &str) -> web::Data<State> {
    crate::backend::install_crypto();
    let policy = dir.write("policy.yaml", "{}\n");
    let text = format!(
        "{conf}\n[prometheus]\nhost = 127.0.0.1\nport = {}\ntimeout = 5\n\
         [oslo_policy]\npolicy_file = {}\n",
        recorder.port,
        policy.display()
    );
    let file = dir.write("aetos.conf", &text);
    let loaded = crate::app::load(&[file], &[]).expect("the test configuration loads");
    web::Data::new(crate::app::build_state(&loaded).expect("the state builds"))
}

const NOAUTH: &str = "[DEFAULT]\nauth_mode = noauth\n";
const KEYSTONE: &str = "[DEFAULT]\nauth_mode = keystone\n[keystone_authtoken]\n\
    auth_url = http://127.0.0.1:9/v3\nwww_authenticate_uri = http://keystone.test/v3\n\
    username = aetos\npassword = x\nuser_domain_id = default\nproject_name = service\n\
    project_domain_id = default\n";

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// `admin` (and the roles it implies) in project A.
    Admin,
    /// `reader` in project A.
    Reader,
    /// `member` in project A, without the `reader` it would imply in Keystone.
    Member,
    /// Project A, no roles.
    NoRoles,
    /// No token (Keystone mode).
    Anonymous,
}

const CALLERS: [Caller; 5] = [
    Caller::Admin,
    Caller::Reader,
    Caller::Member,
    Caller::NoRoles,
    Caller::Anonymous,
];

impl Caller {
    fn headers(self) -> Vec<(&'static str, &'static str)> {
        let roles = match self {
            Caller::Admin => "admin,member,reader",
            Caller::Reader => "reader",
            Caller::Member => "member",
            Caller::NoRoles => "",
            Caller::Anonymous => return Vec::new(),
        };
        vec![
            ("x-user-id", "u1"),
            ("x-project-id", "A"),
            ("x-roles", roles),
        ]
    }
}

/// What a caller gets from one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// 200, and the backend received exactly the request, byte for byte.
    Forwarded,
    /// 200, the backend received requests for these paths, and every
    /// `query` / `match[]` it received carries `project="A"`; `carries`:
    /// there is at least one.
    Scoped(&'static [&'static str], bool),
    /// 200, answered by aetos itself (versions, healthcheck, metrics).
    Own,
    /// This status, and the backend received nothing.
    Refused(u16),
}

use Want::{Forwarded as F, Own, Refused as R, Scoped as S};

/// 403, 401, 405 and 404, with nothing sent to the backend.
const D: Want = R(403);
const U: Want = R(401);
const NA: Want = R(405);

/// One row: a request and what each caller of [`CALLERS`] gets, in order
/// (admin, reader, member, no roles, anonymous).
struct Row {
    method: Method,
    target: &'static str,
    form: Option<&'static str>,
    want: [Want; 5],
}

fn get(target: &'static str, want: [Want; 5]) -> Row {
    Row {
        method: Method::GET,
        target,
        form: None,
        want,
    }
}

fn post(target: &'static str, form: Option<&'static str>, want: [Want; 5]) -> Row {
    Row {
        method: Method::POST,
        target,
        form,
        want,
    }
}

fn table() -> Vec<Row> {
    vec![
        // Answered by aetos.
        get("/", [Own, Own, Own, Own, Own]),
        get("/healthcheck", [Own, Own, Own, Own, Own]),
        post("/healthcheck", None, [NA, NA, NA, NA, NA]),
        get("/metrics", [Own, D, D, D, U]),
        // The probes, at the root and below root_path, before authentication.
        get("/-/healthy", [Own, Own, Own, Own, Own]),
        get("/prometheus/-/healthy", [Own, Own, Own, Own, Own]),
        post("/-/healthy", None, [NA, NA, NA, NA, NA]),
        post("/-/ready", None, [NA, NA, NA, NA, NA]),
        // Not a probe: only the exact paths skip authentication.
        get("/-/healthy/x", [R(404), R(404), R(404), R(404), R(404)]),
        get(
            "/prometheus/-/ready/../api/v1/targets",
            [R(404), R(404), R(404), R(404), R(404)],
        ),
        // The query APIs: admin unchanged, reader scoped.
        get(
            "/api/v1/query?query=up",
            [F, S(&["/api/v1/query"], true), D, D, U],
        ),
        post(
            "/api/v1/query",
            Some("query=up&time=1"),
            [F, S(&["/api/v1/query"], true), D, D, U],
        ),
        get(
            "/api/v1/query_range?query=up&start=1&end=2&step=1",
            [F, S(&["/api/v1/query_range"], true), D, D, U],
        ),
        get(
            "/api/v1/query_exemplars?query=up",
            [F, S(&["/api/v1/query_exemplars"], true), D, D, U],
        ),
        get(
            "/api/v1/series?match[]=up",
            [F, S(&["/api/v1/series"], true), D, D, U],
        ),
        post(
            "/api/v1/series",
            Some("match[]=up"),
            [F, S(&["/api/v1/series"], true), D, D, U],
        ),
        // Without match[]: the reader's gets `{project="A"}`.
        get("/api/v1/labels", [F, S(&["/api/v1/labels"], true), D, D, U]),
        get(
            "/api/v1/label/job/values",
            [F, S(&["/api/v1/label/job/values"], true), D, D, U],
        ),
        get(
            "/federate?match[]=up",
            [F, S(&["/federate"], true), D, D, U],
        ),
        // Answers confined to the project.
        get(
            "/api/v1/metadata",
            [
                F,
                S(&["/api/v1/query", "/api/v1/targets/metadata"], true),
                D,
                D,
                U,
            ],
        ),
        get(
            "/api/v1/targets/metadata",
            [
                F,
                S(&["/api/v1/query", "/api/v1/targets/metadata"], true),
                D,
                D,
                U,
            ],
        ),
        get("/api/v1/rules", [F, S(&["/api/v1/rules"], false), D, D, U]),
        get(
            "/api/v1/alerts",
            [F, S(&["/api/v1/alerts"], false), D, D, U],
        ),
        // Privileged only.
        get("/api/v1/targets", [F, D, D, D, U]),
        get("/api/v1/status/runtimeinfo", [F, D, D, D, U]),
        get("/api/v1/status/flags", [F, D, D, D, U]),
        get("/api/v1/status/config", [F, D, D, D, U]),
        get("/api/v1/status/tsdb", [F, D, D, D, U]),
        // Open to every authenticated caller ("@").
        get("/api/v1/status/buildinfo", [F, F, F, F, U]),
        // Admin APIs.
        post(
            "/api/v1/admin/tsdb/delete_series?match[]=up",
            None,
            [F, D, D, D, U],
        ),
        post("/api/v1/admin/tsdb/clean_tombstones", None, [F, D, D, D, U]),
        post("/api/v1/admin/tsdb/snapshot", None, [F, D, D, D, U]),
        // Methods a route does not take: 405 before anything else.
        get("/api/v1/admin/tsdb/snapshot", [NA, NA, NA, NA, NA]),
        post("/api/v1/targets", None, [NA, NA, NA, NA, NA]),
        post("/api/v1/label/job/values", None, [NA, NA, NA, NA, NA]),
        // A label name that would leave the path: 400 after authn and authz.
        get(
            "/api/v1/label/..%2f..%2fadmin/values",
            [R(400), R(400), D, D, U],
        ),
        // Not routes.
        get("/api/v1/nope", [R(404), R(404), R(404), R(404), R(404)]),
        get("/api/v2/query", [R(404), R(404), R(404), R(404), R(404)]),
    ]
}

#[test]
fn the_table_has_a_row_for_every_route() {
    let rows = table();
    for api in crate::api::routes::ROUTES {
        let covered = rows.iter().any(|r| {
            let path = r.target.split('?').next().unwrap_or("");
            matches!(crate::api::routes::route(path), Some(crate::api::routes::Route::Api(a, _)) if a == *api)
        });
        assert!(covered, "no row for {}", api.name);
    }
}

/// Calls every row as `caller` and checks it; the failures, one line each.
async fn run_table(
    state: web::Data<State>,
    recorder: &Recorder,
    callers: &[Caller],
) -> Vec<String> {
    let app = actix_test::init_service(
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(usize::MAX))
            .wrap_fn(crate::server::with_request_id)
            .default_service(web::to(crate::api::handle)),
    )
    .await;
    let mut failures = Vec::new();
    for row in table() {
        for caller in callers {
            let i = CALLERS.iter().position(|c| c == caller).unwrap_or(0);
            let want = row.want[i];
            let mut req = actix_test::TestRequest::default()
                .method(row.method.clone())
                .uri(row.target);
            for h in caller.headers() {
                req = req.insert_header(h);
            }
            if let Some(form) = row.form {
                req = req
                    .insert_header(("content-type", "application/x-www-form-urlencoded"))
                    .set_payload(form);
            }
            let resp = actix_test::call_service(&app, req.to_request()).await;
            let status = resp.status().as_u16();
            let request_id = resp.headers().contains_key("x-openstack-request-id");
            let _ = actix_test::read_body(resp).await;
            let seen = recorder.take();
            let what = format!("{} {} as {caller:?}", row.method, row.target);
            if !request_id {
                failures.push(format!("{what}: no request id"));
            }
            if let Err(why) = check(want, status, &seen, &row) {
                failures.push(format!("{what}: {why}"));
            }
        }
    }
    failures
}

fn check(want: Want, status: u16, seen: &[Seen], row: &Row) -> Result<(), String> {
    let expected = match want {
        Want::Refused(s) => s,
        _ => 200,
    };
    if status != expected {
        return Err(format!("status {status}, expected {expected} ({want:?})"));
    }
    match want {
        Want::Own | Want::Refused(_) => {
            if !seen.is_empty() {
                return Err(format!("the backend received {seen:?}"));
            }
        }
        Want::Forwarded => {
            let [one] = seen else {
                return Err(format!("expected one backend request, got {seen:?}"));
            };
            let body = row.form.unwrap_or("");
            if one.method != row.method.as_str() || one.target != row.target || one.body != body {
                return Err(format!("not forwarded unchanged: {one:?}"));
            }
        }
        Want::Scoped(paths, carries) => {
            let mut got: Vec<&str> = seen.iter().map(Seen::path).collect();
            got.sort_unstable();
            let mut paths = paths.to_vec();
            paths.sort_unstable();
            if got != paths {
                return Err(format!("backend paths {got:?}, expected {paths:?}"));
            }
            let promql: Vec<String> = seen.iter().flat_map(Seen::promql).collect();
            if carries && promql.is_empty() {
                return Err(format!("no query or match[] sent: {seen:?}"));
            }
            if let Some(p) = promql.iter().find(|p| !p.contains("project=\"A\"")) {
                return Err(format!("not confined to project A: {p}"));
            }
        }
    }
    Ok(())
}

#[actix_web::test]
async fn every_route_for_every_caller_with_identity_from_headers() {
    let dir = TempDir::new("routes");
    let recorder = Recorder::start();
    let state = state(&dir, &recorder, NOAUTH);
    let callers = [
        Caller::Admin,
        Caller::Reader,
        Caller::Member,
        Caller::NoRoles,
    ];
    let failures = run_table(state, &recorder, &callers).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[actix_web::test]
async fn every_route_without_a_token_is_401_and_never_reaches_keystone() {
    let dir = TempDir::new("routes-anon");
    let recorder = Recorder::start();
    let state = state(&dir, &recorder, KEYSTONE);
    let failures = run_table(state, &recorder, &[Caller::Anonymous]).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One answer, as status, headers and body text.
async fn call(
    state: &web::Data<State>,
    req: actix_test::TestRequest,
) -> (u16, actix_web::http::header::HeaderMap, String) {
    let app = actix_test::init_service(
        App::new()
            .app_data(state.clone())
            .wrap_fn(crate::server::with_request_id)
            .default_service(web::to(crate::api::handle)),
    )
    .await;
    let resp = actix_test::call_service(&app, req.to_request()).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = actix_test::read_body(resp).await;
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn reader(target: &str) -> actix_test::TestRequest {
    actix_test::TestRequest::get()
        .uri(target)
        .insert_header(("x-project-id", "A"))
        .insert_header(("x-roles", "reader"))
}

#[actix_web::test]
async fn scoped_rules_and_alerts_keep_only_the_project_s_entries() {
    let dir = TempDir::new("filtered");
    let recorder = Recorder::start();
    let state = state(&dir, &recorder, NOAUTH);
    let (status, _, body) = call(&state, reader("/api/v1/rules")).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("rule_of_a") && !body.contains("rule_of_b"),
        "{body}"
    );
    let (status, _, body) = call(&state, reader("/api/v1/alerts")).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("alert_of_a") && !body.contains("alert_of_b"),
        "{body}"
    );
    let admin = reader("/api/v1/rules").insert_header(("x-roles", "admin"));
    let (_, _, body) = call(&state, admin).await;
    assert_eq!(
        body, RULES,
        "privileged answers are the backend's, byte for byte"
    );
}

#[actix_web::test]
async fn refusals_are_answered_as_clients_expect_them() {
    let dir = TempDir::new("refusals");
    let recorder = Recorder::start();
    let noauth = state(&dir, &recorder, NOAUTH);
    let (status, h, body) = call(&noauth, reader("/api/v1/targets")).await;
    assert_eq!(
        (status, body.as_str()),
        (
            403,
            r#"{"error":"RBAC Authorization Failed","errorType":"forbidden","status":"error"}"#
        )
    );
    assert_eq!(
        h.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    let (status, h, body) = call(&noauth, reader("/api/v1/admin/tsdb/snapshot")).await;
    assert_eq!(
        (status, body.as_str()),
        (
            405,
            r#"{"error":"method not allowed; use POST or PUT","errorType":"bad_data","status":"error"}"#
        )
    );
    assert_eq!(
        h.get("allow").map(|v| v.as_bytes()),
        Some(&b"POST, PUT"[..])
    );
    let (status, _, body) = call(&noauth, reader("/api/v1/nope")).await;
    assert_eq!(
        (status, body.as_str()),
        (
            404,
            r#"{"error":"404 page not found","errorType":"not_found","status":"error"}"#
        )
    );
    let (status, _, body) = call(&noauth, reader("/api/v1/query?query=sum(")).await;
    assert_eq!(status, 400);
    assert!(
        body.starts_with(r#"{"error":"#)
            && body.ends_with(r#""errorType":"bad_data","status":"error"}"#),
        "{body}"
    );
    let form = actix_test::TestRequest::post()
        .uri("/api/v1/query")
        .insert_header(("x-project-id", "A"))
        .insert_header(("x-roles", "reader"))
        .insert_header(("content-type", "multipart/form-data; boundary=x"))
        .set_payload("--x--");
    let (status, _, body) = call(&noauth, form).await;
    assert_eq!(
        (status, body.as_str()),
        (
            415,
            r#"{"error":"request bodies must be application/x-www-form-urlencoded","errorType":"bad_data","status":"error"}"#
        )
    );
    let keystone = state(&dir, &recorder, KEYSTONE);
    let (status, h, body) = call(
        &keystone,
        actix_test::TestRequest::get().uri("/api/v1/query?query=up"),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (
            401,
            r#"{"error":{"code":401,"message":"The request you have made requires authentication.","title":"Unauthorized"}}"#
        )
    );
    assert_eq!(
        h.get("www-authenticate").map(|v| v.as_bytes()),
        Some(&b"Keystone uri=\"http://keystone.test/v3\""[..])
    );
    assert!(recorder.take().is_empty());
}

#[actix_web::test]
async fn requests_are_counted_by_route_and_access_mode() {
    let dir = TempDir::new("counted");
    let recorder = Recorder::start();
    let state = state(&dir, &recorder, NOAUTH);
    call(&state, reader("/api/v1/query?query=up")).await;
    call(&state, reader("/api/v1/targets")).await;
    let text = state.metrics.encode();
    for line in [
        r#"aetos_requests_total{route="query",method="GET",status="200",access="scoped"} 1"#,
        r#"aetos_requests_total{route="targets",method="GET",status="403",access="denied"} 1"#,
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
}

#[actix_web::test]
async fn a_signing_proxy_forwards_everything_unchanged() {
    let dir = TempDir::new("passthrough");
    let recorder = Recorder::start();
    let state = state(
        &dir,
        &recorder,
        "[DEFAULT]\nauth_mode = noauth\n[api]\nunauthenticated_passthrough = true\n",
    );
    let (status, _, _) = call(
        &state,
        actix_test::TestRequest::get().uri("/api/v1/query?query=up"),
    )
    .await;
    assert_eq!(status, 200);
    let seen = recorder.take();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].target, "/api/v1/query?query=up");
    let text = state.metrics.encode();
    assert!(
        text.contains(r#"route="query",method="GET",status="200",access="passthrough""#),
        "{text}"
    );
}

/// `[alertmanager]` pointing at the recorder, below the prefix `/am`.
fn with_alertmanager(recorder: &Recorder) -> String {
    format!(
        "{NOAUTH}[alertmanager]\nurl = http://127.0.0.1:{}/am\n",
        recorder.port
    )
}

fn as_caller(method: Method, target: &str, roles: &str) -> actix_test::TestRequest {
    actix_test::TestRequest::default()
        .method(method)
        .uri(target)
        .insert_header(("x-user-id", "u1"))
        .insert_header(("x-project-id", "A"))
        .insert_header(("x-roles", roles))
}

#[actix_web::test]
async fn alertmanager_routes_forward_privileged_callers_and_confine_scoped_ones() {
    const SILENCE_A: &str = "/alertmanager/api/v2/silence/aaaaaaaa-0000-4000-8000-000000000000";
    const SILENCE_B: &str = "/alertmanager/api/v2/silence/bbbbbbbb-0000-4000-8000-000000000000";
    let dir = TempDir::new("alertmanager");
    let recorder = Recorder::start();
    let state = state(&dir, &recorder, &with_alertmanager(&recorder));
    let admin = "admin,member,reader";
    // Every row of the Alertmanager table is reached below.
    let targets = [
        "/alertmanager/api/v2/alerts",
        "/alertmanager/api/v2/alerts/groups",
        "/alertmanager/api/v2/silences",
        SILENCE_A,
        "/alertmanager/api/v2/status",
        "/alertmanager/api/v2/receivers",
    ];
    for api in crate::api::routes::AM_ROUTES {
        assert!(
            targets.iter().any(|t| matches!(crate::api::routes::route(t), Some(crate::api::routes::Route::Api(a, _)) if a == *api)),
            "no request for {}",
            api.name
        );
    }
    // Privileged: forwarded byte for byte, below the base URL's prefix.
    for t in targets {
        let target = format!("{t}?filter=%7Bx%3D%22y%22%7D");
        let (status, _, _) = call(&state, as_caller(Method::GET, &target, admin)).await;
        let seen = recorder.take();
        assert_eq!(status, 200, "{t}");
        assert_eq!(seen.len(), 1, "{t}: {seen:?}");
        assert_eq!(
            seen[0].target,
            format!("/am{}", target.trim_start_matches("/alertmanager"))
        );
    }
    // Scoped: the project's filter is sent and the answer filtered.
    let (status, _, body) = call(
        &state,
        as_caller(
            Method::GET,
            "/alertmanager/api/v2/alerts?filter=alertname%3D%22x%22",
            "reader",
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body.contains("am_alert_of_a")
            && !body.contains("am_alert_of_b")
            && !body.contains("of_none"),
        "{body}"
    );
    let seen = recorder.take();
    assert_eq!(
        seen[0].target,
        "/am/api/v2/alerts?filter=alertname%3D%22x%22&filter=project%3D%22A%22"
    );
    let (_, _, body) = call(
        &state,
        as_caller(Method::GET, "/alertmanager/api/v2/silences", "reader"),
    )
    .await;
    assert!(
        body.contains("aaaaaaaa") && !body.contains("bbbbbbbb"),
        "{body}"
    );
    let (status, _, _) = call(&state, as_caller(Method::GET, SILENCE_B, "reader")).await;
    assert_eq!(status, 404);
    recorder.take();
    // Privileged-only endpoints refuse a reader without asking anything.
    for t in [
        "/alertmanager/api/v2/status",
        "/alertmanager/api/v2/receivers",
    ] {
        let (status, _, _) = call(&state, as_caller(Method::GET, t, "reader")).await;
        assert_eq!(status, 403, "{t}");
    }
    assert!(recorder.take().is_empty());
    // A member's silence gets the project matcher; a reader cannot write.
    let silence =
        r#"{"matchers":[{"name":"alertname","value":"x","isRegex":false}],"comment":"c"}"#;
    let post = |roles: &str| {
        as_caller(Method::POST, "/alertmanager/api/v2/silences", roles)
            .insert_header(("content-type", "application/json"))
            .set_payload(silence)
    };
    let (status, _, _) = call(&state, post("member")).await;
    assert_eq!(status, 200);
    let seen = recorder.take();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].body,
        r#"{"matchers":[{"name":"alertname","value":"x","isRegex":false,"isEqual":true},{"name":"project","value":"A","isRegex":false,"isEqual":true}],"comment":"c"}"#
    );
    let (status, _, _) = call(&state, post("reader")).await;
    assert_eq!(status, 403);
    assert!(recorder.take().is_empty());
    // Another project's silence: looked up, never expired.
    let (status, _, body) = call(&state, as_caller(Method::DELETE, SILENCE_B, "member")).await;
    assert_eq!((status, body.as_str()), (404, r#""silence not found""#));
    let seen = recorder.take();
    assert!(seen.iter().all(|s| s.method == "GET"), "{seen:?}");
    let (status, _, _) = call(&state, as_caller(Method::DELETE, SILENCE_A, "member")).await;
    assert_eq!(status, 200);
    let methods: Vec<String> = recorder.take().into_iter().map(|s| s.method).collect();
    assert_eq!(methods, ["GET", "DELETE"]);
    // Only JSON bodies.
    let form = as_caller(Method::POST, "/alertmanager/api/v2/silences", "member")
        .insert_header(("content-type", "application/x-www-form-urlencoded"))
        .set_payload("a=b");
    let (status, _, body) = call(&state, form).await;
    assert_eq!(
        (status, body.as_str()),
        (415, r#""request bodies must be application/json""#)
    );
    assert!(recorder.take().is_empty());
}

#[actix_web::test]
async fn alertmanager_routes_answer_404_when_it_is_not_configured() {
    let dir = TempDir::new("no-alertmanager");
    let recorder = Recorder::start();
    let state = state(&dir, &recorder, NOAUTH);
    let (status, _, body) = call(
        &state,
        as_caller(Method::GET, "/alertmanager/api/v2/alerts", "admin"),
    )
    .await;
    assert_eq!(status, 404);
    assert!(body.contains("[alertmanager] url"), "{body}");
    assert!(recorder.take().is_empty());
}

/// A backend port where nothing listens.
fn dead_backend() -> Recorder {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a local port")
        .port();
    Recorder {
        port,
        seen: Arc::new(Mutex::new(Vec::new())),
    }
}

#[actix_web::test]
async fn ready_asks_the_single_backend_without_authenticating_the_caller() {
    let dir = TempDir::new("ready");
    let recorder = Recorder::start();
    let state = state(&dir, &recorder, KEYSTONE);
    for target in ["/-/ready", "/prometheus/-/ready"] {
        let (status, _, body) = call(&state, actix_test::TestRequest::get().uri(target)).await;
        assert_eq!((status, body.as_str()), (200, "OK"), "{target}");
        let seen = recorder.take();
        assert_eq!(seen.len(), 1, "{target}: {seen:?}");
        assert_eq!(
            (seen[0].method.as_str(), seen[0].target.as_str()),
            ("GET", "/-/ready")
        );
    }
    let (status, _, body) = call(
        &state,
        actix_test::TestRequest::default()
            .method(Method::HEAD)
            .uri("/-/ready"),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, ""));
}

#[actix_web::test]
async fn ready_is_503_when_no_backend_answers_and_healthy_stays_200() {
    let dir = TempDir::new("not-ready");
    let state = state(&dir, &dead_backend(), KEYSTONE);
    let (status, _, body) = call(&state, actix_test::TestRequest::get().uri("/-/ready")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body, "NOT READY: no backend is ready");
    let (status, _, body) = call(&state, actix_test::TestRequest::get().uri("/-/healthy")).await;
    assert_eq!((status, body.as_str()), (200, "OK"));
}

/// One answer of the internal listener's app.
async fn call_internal(state: &web::Data<State>, req: actix_test::TestRequest) -> (u16, String) {
    let app = actix_test::init_service(
        App::new()
            .app_data(state.clone())
            .default_service(web::to(crate::api::probes::internal)),
    )
    .await;
    let resp = actix_test::call_service(&app, req.to_request()).await;
    let status = resp.status().as_u16();
    let body = actix_test::read_body(resp).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[actix_web::test]
async fn the_internal_listener_serves_metrics_and_probes_only_and_never_the_api() {
    let dir = TempDir::new("internal");
    let recorder = Recorder::start();
    let state = state(&dir, &recorder, KEYSTONE);
    // A request on the API port, so that there is something to count.
    call(
        &state,
        actix_test::TestRequest::get().uri("/api/v1/query?query=up"),
    )
    .await;
    let (status, body) =
        call_internal(&state, actix_test::TestRequest::get().uri("/metrics")).await;
    assert_eq!(status, 200);
    assert!(
        body.contains(r#"aetos_requests_total{route="query",method="GET",status="401",access="unauthenticated"} 1"#),
        "{body}"
    );
    let (status, body) =
        call_internal(&state, actix_test::TestRequest::get().uri("/-/healthy")).await;
    assert_eq!((status, body.as_str()), (200, "OK"));
    let (status, body) =
        call_internal(&state, actix_test::TestRequest::get().uri("/-/ready")).await;
    assert_eq!((status, body.as_str()), (200, "OK"));
    assert_eq!(recorder.take().len(), 1, "one readiness check");
    for target in [
        "/api/v1/query?query=up",
        "/prometheus/metrics",
        "/prometheus/api/v1/targets",
        "/healthcheck",
        "/",
        "/-/ready/",
    ] {
        let (status, _) = call_internal(&state, actix_test::TestRequest::get().uri(target)).await;
        assert_eq!(status, 404, "{target}");
    }
    let (status, _) = call_internal(&state, actix_test::TestRequest::post().uri("/metrics")).await;
    assert_eq!(status, 405);
    assert!(
        recorder.take().is_empty(),
        "nothing but the readiness check reaches the backend"
    );
}
