//! The devstack plugin against the local stack's real Keystone
//! (`tools/stack.sh start`): its registrations — service user,
//! `metric-storage` service, endpoints — made with the openstack CLI exactly
//! as devstack's functions make them, are what python-observabilityclient
//! (`openstack metric …`) discovers for a project reader.
//!
//! `devstack/tests/run-phases.sh --keystone` does the work, in a temporary
//! region that it deletes afterwards, so the stack's own `RegionOne` catalog
//! (which the other functional tests use) is never touched.
#![cfg(feature = "functional")]

use std::path::{Path, PathBuf};
use std::process::Command;

/// `$AETOS_STACK_DIR/env.json` (default `<repo>/.stack`), the stack contract.
fn stack_env() -> serde_json::Value {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir =
        std::env::var_os("AETOS_STACK_DIR").map_or_else(|| repo.join(".stack"), PathBuf::from);
    let text = std::fs::read_to_string(dir.join("env.json"))
        .expect("the local stack is up (tools/stack.sh start)");
    serde_json::from_str(&text).expect("env.json is JSON")
}

#[test]
fn the_registered_endpoint_is_what_openstack_metric_discovers() {
    let env = stack_env();
    let openstack = format!(
        "{}/openstack",
        env["venv_bin"].as_str().expect("env.json venv_bin")
    );
    let clouds = env["clouds_yaml"].as_str().expect("env.json clouds_yaml");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workdir = std::env::temp_dir().join(format!("aetos-devstack-live-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&workdir);

    let mut cmd = Command::new("bash");
    cmd.arg(repo.join("devstack/tests/run-phases.sh"))
        .args(["--workdir"])
        .arg(&workdir)
        .args(["--keystone", "admin", "--discover-as", "demo-reader"]);
    // Nothing in the environment may override clouds.yaml or act as local.conf.
    for (key, _) in std::env::vars() {
        if key.starts_with("OS_") || key.starts_with("AETOS_") {
            cmd.env_remove(key);
        }
    }
    let out = cmd
        .env("OS_CLIENT_CONFIG_FILE", clouds)
        .env("AETOS_HARNESS_OPENSTACK", &openstack)
        .output()
        .expect("bash runs devstack/tests/run-phases.sh");
    let discovered = std::fs::read_to_string(workdir.join("discovered-endpoints"));
    let calls = std::fs::read_to_string(workdir.join("calls.log")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&workdir);
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");

    // devstack registers http://$SERVICE_HOST/prometheus (the harness'
    // SERVICE_HOST is 10.0.0.10) for every interface.
    let url = "http://10.0.0.10/prometheus";
    let discovered = discovered.expect("the harness wrote discovered-endpoints");
    assert_eq!(
        discovered.lines().collect::<Vec<_>>(),
        [
            format!("public {url}"),
            format!("internal {url}"),
            format!("admin {url}")
        ],
        "{report}"
    );

    // The temporary region (named in the endpoint call) is gone again.
    let region = calls
        .lines()
        .find_map(|l| l.strip_prefix("get_or_create_endpoint\tmetric-storage\t"))
        .and_then(|rest| rest.split('\t').next())
        .expect("the plugin registered an endpoint")
        .to_owned();
    assert_ne!(region, "RegionOne");
    let regions = Command::new(&openstack)
        .args([
            "--os-cloud",
            "admin",
            "region",
            "list",
            "-f",
            "value",
            "-c",
            "Region",
        ])
        .env("OS_CLIENT_CONFIG_FILE", clouds)
        .output()
        .expect("openstack region list");
    assert!(
        regions.status.success(),
        "{}",
        String::from_utf8_lossy(&regions.stderr)
    );
    let regions = String::from_utf8_lossy(&regions.stdout);
    assert!(
        !regions.lines().any(|r| r == region),
        "{region} left behind: {regions}"
    );
}
