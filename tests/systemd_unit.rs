//! `etc/systemd/aetos-api.service`: the unit runs the service the way the
//! installation guide says, reloads and stops it the way aetos-api expects
//! (SIGHUP reloads policy, SIGTERM drains), is sandboxed, and is accepted by
//! systemd's own checker (`systemd-analyze verify`, from Debian's `systemd`
//! package, run against a temporary root so nothing is installed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// [api] graceful_shutdown_timeout's default, in seconds.
const DEFAULT_GRACEFUL_SHUTDOWN: u64 = 30;

fn unit_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/systemd/aetos-api.service")
}

/// The unit's assignments: "Section.Key" → every value in order (systemd
/// keys such as ExecReload= may repeat).
fn unit() -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(unit_path()).expect("the unit file is readable");
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else {
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("not an assignment: {line}"));
            keys.entry(format!("{section}.{key}"))
                .or_default()
                .push(value.to_owned());
        }
    }
    keys
}

/// The single value of a key; panics if it is unset or set twice.
fn one(unit: &BTreeMap<String, Vec<String>>, key: &str) -> String {
    match unit.get(key).map(Vec::as_slice) {
        Some([value]) => value.clone(),
        other => panic!("{key} should be set once, is {other:?}"),
    }
}

#[test]
fn unit_runs_aetos_api_as_its_own_user_on_the_standard_config() {
    let unit = unit();
    assert_eq!(one(&unit, "Service.Type"), "exec");
    assert_eq!(one(&unit, "Service.User"), "aetos");
    assert_eq!(
        one(&unit, "Service.ExecStart"),
        "/usr/local/bin/aetos-api --config-file /etc/aetos/aetos.conf"
    );
    assert_eq!(
        one(&unit, "Service.ExecStartPre"),
        "/usr/local/bin/aetos-api check-config --config-file /etc/aetos/aetos.conf"
    );
    assert_eq!(one(&unit, "Service.Restart"), "on-failure");
    assert_eq!(one(&unit, "Install.WantedBy"), "multi-user.target");
}

#[test]
fn reload_checks_the_configuration_before_sending_sighup() {
    let unit = unit();
    assert_eq!(
        unit["Service.ExecReload"],
        [
            "/usr/local/bin/aetos-api check-config --config-file /etc/aetos/aetos.conf",
            "/bin/kill -HUP $MAINPID",
        ]
    );
}

#[test]
fn stop_sends_sigterm_and_waits_longer_than_the_default_drain() {
    let unit = unit();
    assert_eq!(one(&unit, "Service.KillSignal"), "SIGTERM");
    let timeout: u64 = one(&unit, "Service.TimeoutStopSec")
        .parse()
        .expect("TimeoutStopSec in plain seconds");
    assert!(
        timeout > DEFAULT_GRACEFUL_SHUTDOWN && timeout <= DEFAULT_GRACEFUL_SHUTDOWN * 2,
        "TimeoutStopSec={timeout} should be a bit above graceful_shutdown_timeout's default"
    );
}

#[test]
fn unit_is_sandboxed_to_reading_its_configuration_and_talking_tcp_ip() {
    let unit = unit();
    let expected = [
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("ConfigurationDirectory", "aetos"),
        ("LogsDirectory", "aetos"),
    ];
    for (key, value) in expected {
        assert_eq!(one(&unit, &format!("Service.{key}")), value, "{key}");
    }
    assert_eq!(unit["Service.SystemCallFilter"][0], "@system-service");
    // Nothing but the log directory is writable: no ReadWritePaths beyond it.
    for path in unit.get("Service.ReadWritePaths").into_iter().flatten() {
        assert_eq!(path, "/var/log/aetos");
    }
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("systemd-analyze is needed for this test: apt-get install systemd");
    let units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("sysinit.target").exists())
        .expect("systemd's unit directory (apt-get install systemd)");

    // A root with systemd's units, the unit under test, and executables
    // where its commands point (verify checks they exist).
    let root = std::env::temp_dir().join(format!("aetos-systemd-verify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for dir in [
        "usr/lib/systemd/system",
        "etc/systemd/system",
        "usr/local/bin",
        "bin",
        "tmp",
    ] {
        std::fs::create_dir_all(root.join(dir)).expect("create the temporary root");
    }
    for entry in std::fs::read_dir(units).expect("read systemd's units") {
        let entry = entry.expect("unit directory entry");
        if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
            std::fs::copy(
                entry.path(),
                root.join("usr/lib/systemd/system").join(entry.file_name()),
            )
            .expect("copy a systemd unit");
        }
    }
    std::fs::copy(
        unit_path(),
        root.join("etc/systemd/system/aetos-api.service"),
    )
    .expect("copy the unit");
    for exe in ["usr/local/bin/aetos-api", "bin/kill"] {
        std::fs::write(root.join(exe), "#!/bin/sh\n").expect("write a stand-in executable");
        let status = Command::new("chmod")
            .arg("+x")
            .arg(root.join(exe))
            .status()
            .expect("chmod");
        assert!(status.success());
    }

    let out = Command::new(analyze)
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .arg("--man=no")
        .arg("/etc/systemd/system/aetos-api.service")
        .output()
        .expect("run systemd-analyze");
    let _ = std::fs::remove_dir_all(&root);
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // systemd-analyze exits 0 on unknown keys and bad values, only printing
    // them: any output is a finding.
    assert!(
        out.status.success() && report.trim().is_empty(),
        "systemd-analyze verify:\n{report}"
    );
}
