//! The real `openstack metric …` CLI (python-observabilityclient) and the
//! python client Watcher uses, finding aetos through the Keystone catalog
//! (service type metric-storage) exactly as deployed clients do.
#![cfg(feature = "functional")]

mod common;

use std::process::Command;
use std::sync::Mutex;

use common::{stack, Aetos};
use serde_json::Value;

/// The catalog names one port: tests that need it take turns.
static CATALOG_PORT: Mutex<()> = Mutex::new(());

fn catalog_aetos(policy: Option<&str>) -> Aetos {
    let url = url::Url::parse(&stack().s("/aetos_url")).unwrap();
    Aetos::start_on(url.port().unwrap_or(80), "", policy)
}

/// Runs the venv's `openstack` as `cloud`, with every OS_* variable removed
/// so that nothing in the environment overrides clouds.yaml.
fn openstack(cloud: &str, args: &[&str]) -> (bool, String, String) {
    let s = stack();
    let mut cmd = Command::new(format!("{}/openstack", s.s("/venv_bin")));
    for (k, _) in std::env::vars() {
        if k.starts_with("OS_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .env("OS_CLIENT_CONFIG_FILE", s.s("/clouds_yaml"))
        .arg("--os-cloud")
        .arg(cloud)
        .args(args)
        .output()
        .expect("run openstack");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(cloud: &str, args: &[&str]) -> String {
    let (success, out, err) = openstack(cloud, args);
    assert!(
        success,
        "openstack --os-cloud {cloud} {args:?} failed:\n{out}\n{err}"
    );
    out
}

#[test]
fn cli_admin_list_show_query() {
    let _turn = CATALOG_PORT.lock().unwrap_or_else(|e| e.into_inner());
    let a = catalog_aetos(None);
    let list = ok("admin", &["metric", "list"]);
    for name in ["up", "demo_only_metric", "other_only_metric"] {
        assert!(
            list.contains(name),
            "metric list lacks {name}:\n{list}\n{}",
            a.logs()
        );
    }
    let show = ok("admin", &["metric", "show", "up"]);
    assert!(show.contains('1'), "metric show up:\n{show}");
    let q = ok("admin", &["metric", "query", "up"]);
    assert!(q.contains("prometheus"), "metric query up:\n{q}");
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 10;
    let q = ok(
        "admin",
        &["metric", "query", &format!("prometheus_ready@{ts}")],
    );
    assert!(q.contains('1'), "@ modifier through the CLI:\n{q}");
}

#[test]
fn cli_reader_sees_only_its_project() {
    let _turn = CATALOG_PORT.lock().unwrap_or_else(|e| e.into_inner());
    let _a = catalog_aetos(None);
    let demo = stack().project("demo");
    let other = stack().project("other");
    let list = ok("demo-reader", &["metric", "list"]);
    assert!(list.contains("demo_only_metric"), "{list}");
    for name in ["other_only_metric", "unlabelled_metric", "prometheus_ready"] {
        assert!(
            !list.contains(name),
            "reader's metric list shows {name}:\n{list}"
        );
    }
    let q = ok("demo-reader", &["metric", "query", "ceilometer_cpu"]);
    assert!(q.contains(&demo), "{q}");
    assert!(!q.contains(&other), "reader saw the other project:\n{q}");
    let q = ok("demo-reader", &["metric", "query", "{__name__=~\".+\"}"]);
    assert!(
        !q.contains(&other) && !q.contains("prometheus_ready"),
        "{q}"
    );
    let show = ok("other-member", &["metric", "show", "ceilometer_cpu"]);
    assert!(show.contains(&other) && !show.contains(&demo), "{show}");
}

#[test]
fn cli_admin_commands_and_reader_refused() {
    let _turn = CATALOG_PORT.lock().unwrap_or_else(|e| e.into_inner());
    let _a = catalog_aetos(None);
    let (success, out, err) = openstack("demo-reader", &["metric", "snapshot"]);
    assert!(!success, "reader could snapshot: {out}");
    assert!(
        err.contains("403") || err.to_lowercase().contains("forbidden"),
        "{err}"
    );
    let snap = ok("admin", &["metric", "snapshot"]);
    let year = humantime::format_rfc3339(std::time::SystemTime::now()).to_string()[..4].to_owned();
    assert!(
        snap.contains(&year),
        "snapshot name should carry the date:\n{snap}"
    );
    ok("admin", &["metric", "clean-tombstones"]);
    let (success, _, _) = openstack("demo-member", &["metric", "clean-tombstones"]);
    assert!(!success, "member could clean tombstones");
}

#[test]
fn cli_delete_removes_the_series() {
    let _turn = CATALOG_PORT.lock().unwrap_or_else(|e| e.into_inner());
    let _a = catalog_aetos(None);
    // A past instant that has a sample, then delete everything up to now.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let t0 = now - 5;
    let q = format!("cli_delete_me@{t0}");
    let before = ok("admin", &["metric", "query", &q]);
    assert!(
        before.contains("cli_delete_me"),
        "fixture series missing:\n{before}"
    );
    let (success, out, err) = openstack("demo-reader", &["metric", "delete", "cli_delete_me"]);
    assert!(!success, "reader could delete: {out}{err}");
    ok(
        "admin",
        &[
            "metric",
            "delete",
            "cli_delete_me",
            "--start",
            "0",
            "--end",
            &now.to_string(),
        ],
    );
    let after = ok("admin", &["metric", "query", &q]);
    assert!(
        !after.contains("cli_delete_me"),
        "series still there after delete:\n{after}"
    );
}

#[test]
fn watcher_templates_through_observabilityclient_as_service_user() {
    let _turn = CATALOG_PORT.lock().unwrap_or_else(|e| e.into_inner());
    let a = catalog_aetos(None);
    let s = stack();
    let out = Command::new(format!("{}/python", s.s("/venv_bin")))
        .arg(common::repo_root().join("tests/clients/watcher_queries.py"))
        .arg("aetos")
        .arg(s.s("/watcher/host"))
        .arg(s.s("/watcher/instance_uuid"))
        .env("OS_CLIENT_CONFIG_FILE", s.s("/clouds_yaml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        a.logs()
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    for l in lines {
        assert!(
            l["series"].as_u64().unwrap() >= 1,
            "template returned nothing: {l}"
        );
    }
}
