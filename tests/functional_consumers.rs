//! The real consumers of aetos, running their own code against a real
//! aetos-api: Watcher 17's `aetos` datasource, Aodh 23's prometheus
//! evaluator, CloudKitty 25's `aetos` collector (all three configured by
//! their own oslo.config files and finding aetos in the Keystone catalog),
//! prometheus-api-client 0.7.2 and promtool (Keystone application
//! credential as basic auth).  Each compares what the consumer gets through
//! aetos with the same request on direct Prometheus, so that any difference
//! for a privileged caller fails.
//!
//! The Python consumers run from the stack's consumers virtualenv
//! (`tools/stack/consumers-requirements.txt`, installed by `tools/stack.sh`);
//! their helpers are `tests/clients/consumer_*.py`.
#![cfg(feature = "functional")]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use common::{json_of, stack, Aetos};
use serde_json::{json, Value};

/// The catalog names one port: tests that need it take turns.
static CATALOG_PORT: Mutex<()> = Mutex::new(());

fn catalog_aetos() -> Aetos {
    let url = url::Url::parse(&stack().s("/aetos_url")).unwrap();
    Aetos::start_on(url.port().unwrap_or(80), "", None)
}

/// The consumers virtualenv's `bin` directory (env.json names it since the
/// stack installs it; older env.json files: its place in the state dir).
fn consumers_bin() -> PathBuf {
    let s = stack();
    let bin = s
        .env
        .pointer("/consumers_venv_bin")
        .and_then(Value::as_str)
        .map(PathBuf::from)
        .unwrap_or_else(|| s.dir.join("consumers-venv/bin"));
    assert!(
        bin.join("python").exists(),
        "{} missing: `tools/stack.sh start` installs the consumers' virtualenv",
        bin.display()
    );
    bin
}

/// Runs `tests/clients/<script>` with the consumers' python and asserts it
/// passed at least `min_checks` checks and failed none.
fn run_helper(script: &str, args: &[&str], aetos: &Aetos, min_checks: u64) {
    let s = stack();
    let mut cmd = Command::new(consumers_bin().join("python"));
    for (k, _) in std::env::vars() {
        if k.starts_with("OS_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .arg(common::repo_root().join("tests/clients").join(script))
        .arg(s.dir.join("env.json"))
        .args(args)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .expect("run the consumers' python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let failed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("\"ok\": false"))
        .collect();
    let summary: Option<Value> = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok());
    let checks = summary
        .as_ref()
        .and_then(|v| v["checks"].as_u64())
        .unwrap_or(0);
    let logs = aetos.logs();
    let tail: Vec<&str> = logs.lines().rev().take(40).collect();
    assert!(
        out.status.success() && failed.is_empty() && checks >= min_checks,
        "{script}: status {}, {checks} checks (want >= {min_checks}), failed:\n{}\n\
         ---- stdout\n{stdout}\n---- stderr (tail)\n{}\n---- aetos log (tail)\n{}",
        out.status,
        failed.join("\n"),
        stderr
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n"),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    );
}

#[tokio::test]
async fn watcher_aetos_datasource_equals_direct_prometheus() {
    // Watcher maps hosts from the fqdn label of active targets: the stack's
    // `node` job (tools/stack.sh) provides them.
    let targets: Value = common::client()
        .get(format!(
            "{}/api/v1/targets?state=active",
            stack().prometheus_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let host = stack().s("/watcher/host");
    assert!(
        targets["data"]["activeTargets"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["labels"]["fqdn"] == host.as_str())),
        "the stack's Prometheus has no active target labelled fqdn={host} (job `node`); a stack \
         started before that job was added needs `tools/stack.sh start` again. Targets: {targets}"
    );
    // Watcher's templates rate over 300 s: give the stack a few samples.
    common::wait_for_history(Duration::from_secs(15)).await;
    let _turn = CATALOG_PORT.lock().unwrap_or_else(|e| e.into_inner());
    let a = catalog_aetos();
    run_helper("consumer_watcher.py", &[], &a, 23);
}

#[test]
fn aodh_prometheus_evaluator_through_aetos() {
    let _turn = CATALOG_PORT.lock().unwrap_or_else(|e| e.into_inner());
    let a = catalog_aetos();
    run_helper("consumer_aodh.py", &[], &a, 17);
}

#[test]
fn cloudkitty_aetos_collector_equals_prometheus_collector() {
    let _turn = CATALOG_PORT.lock().unwrap_or_else(|e| e.into_inner());
    let a = catalog_aetos();
    run_helper("consumer_cloudkitty.py", &[], &a, 14);
}

#[test]
fn prometheus_api_client_privileged_and_reader() {
    let a = Aetos::start("", None);
    let root = format!("{}/prometheus", a.url);
    run_helper("consumer_promapi.py", &[&root], &a, 21);
}

// ---------------------------------------------------------------- promtool

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
        .json(&json!({"application_credential": {"name": format!("promtool-{}", common::free_port())}}))
        .send()
        .await
        .unwrap();
    let (st, v) = json_of(r).await;
    assert_eq!(st, 201, "{v}");
    let field = |k: &str| v["application_credential"][k].as_str().unwrap().to_owned();
    (field("id"), field("secret"))
}

/// `promtool query ARGS… SERVER [EXPR]` with JSON output; the parsed output.
fn promtool(sub: &str, flags: &[String], server: &str, expr: Option<&str>) -> Value {
    let out = Command::new("promtool")
        .arg("query")
        .arg(sub)
        .args(["-o", "json"])
        .args(flags)
        .arg(server)
        .args(expr)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .output()
        .expect("promtool (Debian's prometheus package) is installed by tools/stack.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "promtool query {sub} {flags:?} {expr:?}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("promtool output: {e}: {stdout}"))
}

fn sorted(mut v: Value) -> Value {
    if let Some(a) = v.as_array_mut() {
        a.sort_by_key(|x| x.to_string());
    }
    v
}

#[tokio::test]
async fn promtool_queries_with_application_credential_basic_auth() {
    let a = Aetos::start("", None);
    let s = stack();
    let direct = s.prometheus_url();
    let end = s.env["diff"]["end"].as_u64().unwrap();
    let (start, end) = ((end - 600).to_string(), end.to_string());
    let range = |r: &[&str]| -> Vec<String> { r.iter().map(|x| x.to_string()).collect() };
    let window = range(&["--start", &start, "--end", &end]);

    // Privileged: an application credential of the admin user.
    let (id, secret) = app_credential("admin").await;
    let through = format!("http://{id}:{secret}@127.0.0.1:{}/prometheus", a.port);
    let checks: Vec<(&str, Vec<String>, Option<&str>)> = vec![
        (
            "instant",
            range(&["--time", &end]),
            Some("diff_queue_length"),
        ),
        (
            "instant",
            range(&["--time", &end]),
            Some("sum by (project) (rate(diff_http_requests_total[5m]))"),
        ),
        (
            "range",
            range(&["--start", &start, "--end", &end, "--step", "60s"]),
            Some("diff_memory_used_bytes"),
        ),
        (
            "series",
            [
                window.clone(),
                range(&["--match", "{__name__=~\"diff_.*\"}"]),
            ]
            .concat(),
            None,
        ),
        ("labels", window.clone(), Some("project")),
        ("labels", window.clone(), Some("__name__")),
    ];
    for (sub, flags, expr) in &checks {
        let got = promtool(sub, flags, &through, *expr);
        let want = promtool(sub, flags, &direct, *expr);
        assert!(
            got.as_array().is_some_and(|r| !r.is_empty()),
            "promtool query {sub} {expr:?}: empty: {got}"
        );
        assert_eq!(
            sorted(got),
            sorted(want),
            "promtool query {sub} {flags:?} {expr:?} through aetos differs from direct Prometheus"
        );
    }

    // A reader's application credential: only its project.
    let demo = s.project("demo");
    let (id, secret) = app_credential("demo-reader").await;
    let through = format!("http://{id}:{secret}@127.0.0.1:{}/prometheus", a.port);
    let now = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 2)
    .to_string();
    let v = promtool(
        "instant",
        &range(&["--time", &now]),
        &through,
        Some("ceilometer_cpu"),
    );
    let projects: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["metric"]["project"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(projects, vec![demo.as_str(); 2], "{v}");
    let v = promtool(
        "labels",
        &range(&[
            "--start",
            &(now.parse::<u64>().unwrap() - 60).to_string(),
            "--end",
            &now,
        ]),
        &through,
        Some("project"),
    );
    assert_eq!(v, json!([demo]), "reader's label values");
    let v = promtool(
        "series",
        &range(&["--match", "ceilometer_cpu", "--start", &now, "--end", &now]),
        &through,
        None,
    );
    assert!(
        v.as_array()
            .is_some_and(|r| r.len() == 2 && r.iter().all(|x| x["project"] == demo.as_str())),
        "reader's series: {v}"
    );
    assert!(!a.logs().contains(&secret), "secret in the logs");
}
