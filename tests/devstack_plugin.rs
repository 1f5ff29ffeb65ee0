//! The devstack plugin (`devstack/plugin.sh`, `devstack/settings`) run
//! through every phase by `devstack/tests/run-phases.sh`, against stand-ins
//! of the devstack functions it calls.
//!
//! devstack itself cannot run in the test environment, so these tests hold
//! the plugin to what devstack would observe: the `aetos.conf` it writes,
//! the Keystone registrations and process it asks devstack for, tempest's
//! configuration, and what unstack and clean leave behind. Keystone
//! registrations are not undone by the plugin: devstack's own clean drops
//! the Keystone database. Needs only bash (and awk) on the machine.
//! `tests/functional_devstack.rs` makes the registrations against the local
//! stack's real Keystone.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The host, Keystone URL and service password the harness' devstack has.
const SERVICE_HOST: &str = "10.0.0.10";
const KEYSTONE_URI: &str = "http://10.0.0.10/identity";
const SERVICE_PASSWORD: &str = "devstack-service-secret";

/// Everything one harness run produced, read into memory (its temporary
/// root is removed right after).
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
    /// The temporary root, as it appears in paths of the calls log.
    root: String,
    /// One entry per recorded call: the phase it happened in ("stack
    /// install", "unstack", …; "" before the first phase of a script), the
    /// script ("stack.sh", …) and the call's words (name first).
    calls: Vec<Call>,
    /// Files of the root's `after-stack/` and `state-after-*`, by name.
    files: HashMap<String, String>,
}

/// One line of the calls log.
#[derive(Debug, Clone)]
struct Call {
    script: String,
    phase: String,
    words: Vec<String>,
}

impl Run {
    /// Calls named `name` in phase `phase` of any script.
    fn calls(&self, phase: &str, name: &str) -> Vec<&Call> {
        self.calls
            .iter()
            .filter(|c| c.phase == phase && c.words[0] == name)
            .collect()
    }

    /// Every call named `name`, wherever it happened.
    fn all_calls(&self, name: &str) -> Vec<&Call> {
        self.calls.iter().filter(|c| c.words[0] == name).collect()
    }

    /// A file kept by the harness; panics with the run's output if absent.
    fn file(&self, name: &str) -> &str {
        self.files.get(name).map(String::as_str).unwrap_or_else(|| {
            panic!(
                "{name} was not produced\n--- stdout\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// `aetos.conf` as it was when stack.sh finished.
    fn aetos_conf(&self) -> Ini {
        Ini::parse(self.file("after-stack/aetos.conf"))
    }

    /// The files (relative to the root) listed in `state-after-<script>`.
    fn state_after(&self, script: &str) -> Vec<&str> {
        self.file(&format!("state-after-{script}"))
            .lines()
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// A path of the temporary root, as the plugin was given it.
    fn path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.root)
    }
}

/// A parsed INI file: section → option → value (last assignment wins).
struct Ini(BTreeMap<String, BTreeMap<String, String>>);

impl Ini {
    /// Parse devstack-written INI text (no continuation lines).
    fn parse(text: &str) -> Ini {
        let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut current = String::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = name.to_owned();
                sections.entry(current.clone()).or_default();
            } else if let Some((k, v)) = line.split_once('=') {
                sections
                    .entry(current.clone())
                    .or_default()
                    .insert(k.trim().to_owned(), v.trim().to_owned());
            } else {
                panic!("not an INI line: {line:?}");
            }
        }
        Ini(sections)
    }

    /// The value of `[section] option`, if set.
    fn get(&self, section: &str, option: &str) -> Option<&str> {
        self.0
            .get(section)
            .and_then(|s| s.get(option))
            .map(String::as_str)
    }

    /// The value, or a panic naming the option and showing the file.
    fn value(&self, section: &str, option: &str) -> &str {
        self.get(section, option)
            .unwrap_or_else(|| panic!("[{section}] {option} is not set in {:#?}", self.0))
    }
}

/// Run the harness with extra arguments and environment (local.conf-style
/// AETOS_* settings), and collect what it produced.
fn run_harness(args: &[&str], env: &[(&str, &str)]) -> Run {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workdir: PathBuf = std::env::temp_dir().join(format!(
        "aetos-devstack-test-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&workdir);

    let mut cmd = Command::new("bash");
    cmd.arg(repo.join("devstack/tests/run-phases.sh"))
        .arg("--workdir")
        .arg(&workdir)
        .args(args);
    // The developer's own AETOS_* variables must not act as local.conf.
    for (key, _) in std::env::vars() {
        if key.starts_with("AETOS_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(env.iter().copied());
    let out = cmd
        .output()
        .expect("bash runs devstack/tests/run-phases.sh");

    let root = workdir
        .canonicalize()
        .expect("the harness created its root")
        .display()
        .to_string();
    let mut files = HashMap::new();
    let mut keep = |rel: String| {
        if let Ok(text) = std::fs::read_to_string(workdir.join(&rel)) {
            files.insert(rel, text);
        }
    };
    for name in [
        "aetos.conf",
        "policy.yaml.sample",
        "tempest.conf",
        "apache-aetos.conf",
        "run-aetos-api",
    ] {
        keep(format!("after-stack/{name}"));
    }
    for script in ["stack.sh", "unstack.sh", "clean.sh"] {
        keep(format!("state-after-{script}"));
    }
    let log =
        std::fs::read_to_string(workdir.join("calls.log")).expect("the harness writes calls.log");
    let _ = std::fs::remove_dir_all(&workdir);

    let (mut script, mut phase) = (String::new(), String::new());
    let mut calls = Vec::new();
    for line in log.lines() {
        let words: Vec<String> = line.split('\t').map(str::to_owned).collect();
        match words[0].as_str() {
            "#script" => {
                script = words[1].clone();
                phase.clear();
            }
            "#phase" => phase = words[1].clone(),
            _ => calls.push(Call {
                script: script.clone(),
                phase: phase.clone(),
                words,
            }),
        }
    }

    Run {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        root,
        calls,
        files,
    }
}

/// The default run (prebuilt stand-in binary, Apache in front), shared by
/// the tests that only read it.
fn default_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    let run = RUN.get_or_init(|| run_harness(&[], &[]));
    assert!(
        run.success,
        "the harness failed\n--- stdout\n{}\n--- stderr\n{}",
        run.stdout, run.stderr
    );
    run
}

/// The words of a call, as `&str`s, for comparisons.
fn words(call: &Call) -> Vec<&str> {
    call.words.iter().map(String::as_str).collect()
}

#[test]
fn post_config_writes_keystone_auth_prometheus_and_api_options() {
    let conf = default_run().aetos_conf();
    assert_eq!(conf.value("DEFAULT", "auth_mode"), "keystone");
    assert_eq!(conf.value("DEFAULT", "debug"), "True");

    assert_eq!(conf.value("keystone_authtoken", "auth_type"), "password");
    assert_eq!(conf.value("keystone_authtoken", "auth_url"), KEYSTONE_URI);
    assert_eq!(conf.value("keystone_authtoken", "username"), "aetos");
    assert_eq!(
        conf.value("keystone_authtoken", "password"),
        SERVICE_PASSWORD
    );
    assert_eq!(
        conf.value("keystone_authtoken", "user_domain_name"),
        "Default"
    );
    assert_eq!(conf.value("keystone_authtoken", "project_name"), "service");
    assert_eq!(
        conf.value("keystone_authtoken", "project_domain_name"),
        "Default"
    );
    assert_eq!(
        conf.value("keystone_authtoken", "memcached_servers"),
        "localhost:11211"
    );
    // devstack's CA bundle does not exist without TLS: no cafile naming it.
    assert_eq!(conf.get("keystone_authtoken", "cafile"), None);

    assert_eq!(conf.value("prometheus", "host"), "localhost");
    assert_eq!(conf.value("prometheus", "port"), "9090");

    assert_eq!(conf.value("api", "port"), "8095");
    assert_eq!(conf.value("api", "root_path"), "/prometheus");
    // Behind Apache only Apache has to reach aetos-api.
    assert_eq!(conf.value("api", "host"), "127.0.0.1");
    assert_eq!(
        conf.value("oslo_middleware", "enable_proxy_headers_parsing"),
        "True"
    );
}

#[test]
fn post_config_goes_through_devstacks_authtoken_helper_and_checks_the_result() {
    let run = default_run();
    let conf_path = run.path("etc/aetos/aetos.conf");
    let helper = run.calls(
        "stack post-config",
        "configure_keystone_authtoken_middleware",
    );
    assert_eq!(helper.len(), 1, "{helper:?}");
    assert_eq!(
        words(helper[0]),
        [
            "configure_keystone_authtoken_middleware",
            conf_path.as_str(),
            "aetos"
        ]
    );

    let binary = run.calls("stack post-config", "aetos-api");
    let binary: Vec<Vec<&str>> = binary.iter().map(|c| words(c)).collect();
    assert_eq!(
        binary,
        [
            vec!["aetos-api", "genpolicy"],
            vec![
                "aetos-api",
                "check-config",
                "--config-file",
                conf_path.as_str()
            ]
        ]
    );
    assert_eq!(
        run.file("after-stack/policy.yaml.sample").lines().last(),
        Some("#\"telemetry:query\": \"role:reader and project_id:%(project_id)s\"")
    );
}

#[test]
fn post_config_puts_aetos_behind_apache_at_prometheus() {
    let run = default_run();
    let site = run.file("after-stack/apache-aetos.conf");
    assert!(site.contains("<Location /prometheus>"), "{site}");
    assert!(
        site.contains("ProxyPass \"http://127.0.0.1:8095/prometheus\" retry=0"),
        "{site}"
    );
    assert!(
        site.contains("ProxyPassReverse \"http://127.0.0.1:8095/prometheus\""),
        "{site}"
    );
    let mods: Vec<&str> = run
        .calls("stack post-config", "enable_apache_mod")
        .iter()
        .map(|c| c.words[1].as_str())
        .collect();
    for needed in ["proxy", "proxy_http", "headers"] {
        assert!(mods.contains(&needed), "mod_{needed} not enabled: {mods:?}");
    }
    assert_eq!(
        run.calls("stack post-config", "enable_apache_site").len(),
        1
    );
    assert!(run
        .state_after("stack.sh")
        .contains(&"etc/apache2/sites-enabled/aetos.conf"));
    assert_eq!(run.calls("stack extra", "restart_apache_server").len(), 1);
}

#[test]
fn extra_registers_the_service_user_and_the_metric_storage_endpoint() {
    let run = default_run();
    let url = format!("http://{SERVICE_HOST}/prometheus");

    let user = run.calls("stack extra", "create_service_user");
    assert_eq!(
        user.iter().map(|c| words(c)).collect::<Vec<_>>(),
        [vec!["create_service_user", "aetos", "admin"]]
    );

    let service = run.calls("stack extra", "get_or_create_service");
    assert_eq!(service.len(), 1, "{service:?}");
    assert_eq!(
        &words(service[0])[..3],
        ["get_or_create_service", "aetos", "metric-storage"]
    );

    let endpoint = run.calls("stack extra", "get_or_create_endpoint");
    assert_eq!(endpoint.len(), 1, "{endpoint:?}");
    assert_eq!(
        words(endpoint[0]),
        [
            "get_or_create_endpoint",
            "metric-storage",
            "RegionOne",
            &url,
            &url,
            &url
        ]
    );

    // Nothing is registered outside the extra phase.
    for name in [
        "create_service_user",
        "get_or_create_service",
        "get_or_create_endpoint",
    ] {
        assert_eq!(
            run.all_calls(name).len(),
            1,
            "{name} called outside stack extra"
        );
    }
}

#[test]
fn extra_runs_aetos_api_under_devstacks_process_manager_and_waits_for_it() {
    let run = default_run();
    let command = format!(
        "{} --config-file {}",
        run.path("usr/local/bin/aetos-api"),
        run.path("etc/aetos/aetos.conf")
    );
    let started = run.calls("stack extra", "run_process");
    assert_eq!(
        started.iter().map(|c| words(c)).collect::<Vec<_>>(),
        [vec!["run_process", "aetos-api", command.as_str()]]
    );
    assert_eq!(run.file("after-stack/run-aetos-api").trim_end(), command);

    let wait = run.calls("stack extra", "wait_for_service");
    assert_eq!(wait.len(), 1, "{wait:?}");
    assert_eq!(
        wait[0].words[2],
        format!("http://{SERVICE_HOST}/prometheus/healthcheck")
    );

    // The service user and endpoint exist before the process starts.
    let position = |name: &str| {
        run.calls
            .iter()
            .position(|c| c.words[0] == name)
            .expect(name)
    };
    assert!(position("get_or_create_endpoint") < position("run_process"));
}

#[test]
fn install_puts_the_binary_in_the_bin_dir() {
    let run = default_run();
    assert!(run
        .state_after("stack.sh")
        .contains(&"usr/local/bin/aetos-api"));
    let installs = run.calls("stack install", "sudo");
    assert!(
        installs.iter().any(|c| words(c)[1..3] == ["install", "-D"]
            && c.words.last() == Some(&run.path("usr/local/bin/aetos-api"))),
        "{installs:?}"
    );
}

#[test]
fn test_config_marks_aetos_available_in_tempest() {
    let tempest = Ini::parse(default_run().file("after-stack/tempest.conf"));
    assert_eq!(tempest.value("service_available", "aetos"), "True");
}

#[test]
fn unstack_stops_the_process_and_clean_removes_everything_installed() {
    let run = default_run();
    let stops: Vec<&Call> = run.all_calls("stop_process");
    assert!(
        stops
            .iter()
            .any(|c| c.script == "unstack.sh" && words(c) == ["stop_process", "aetos-api"]),
        "{stops:?}"
    );
    assert!(run.state_after("stack.sh").contains(&"run/aetos-api"));

    let after_unstack = run.state_after("unstack.sh");
    assert!(
        !after_unstack.contains(&"run/aetos-api"),
        "{after_unstack:?}"
    );
    // unstack keeps the installation for the next stack.sh.
    assert!(
        after_unstack.contains(&"etc/aetos/aetos.conf"),
        "{after_unstack:?}"
    );
    assert!(
        after_unstack.contains(&"usr/local/bin/aetos-api"),
        "{after_unstack:?}"
    );

    assert_eq!(run.state_after("clean.sh"), Vec::<&str>::new());
    assert_eq!(run.calls("clean", "disable_apache_site").len(), 1);
}

#[test]
fn pre_install_does_nothing_and_no_phase_warns_or_dies() {
    // pre-install is not one of the plugin's phases: only the dispatch test.
    let run = default_run();
    let pre: Vec<&str> = run
        .calls
        .iter()
        .filter(|c| c.phase == "stack pre-install")
        .map(|c| c.words[0].as_str())
        .collect();
    assert_eq!(pre, ["is_service_enabled"]);
    assert!(
        run.all_calls("die").is_empty() && run.all_calls("warn").is_empty(),
        "{}",
        run.stderr
    );
}

#[test]
fn install_builds_with_cargo_in_the_clone_when_no_binary_is_given() {
    let run = run_harness(&["--fake-cargo"], &[]);
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    let cargo = run.calls("stack install", "cargo");
    assert_eq!(cargo.len(), 1, "{cargo:?}");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .canonicalize()
        .expect("repository path");
    let target = run.path("cargo-target");
    assert_eq!(
        words(cargo[0]),
        [
            "cargo",
            "build",
            "--release",
            "--locked",
            "--bin",
            "aetos-api",
            &format!("cwd={}", repo.display()),
            &format!("CARGO_TARGET_DIR={target}"),
        ]
    );
    let installed = run.calls("stack install", "sudo");
    assert!(
        installed
            .iter()
            .any(|c| c.words.contains(&format!("{target}/release/aetos-api"))),
        "{installed:?}"
    );
}

#[test]
fn install_stops_with_an_explanation_when_cargo_is_missing() {
    let run = run_harness(&["--no-cargo"], &[]);
    assert!(
        !run.success,
        "stack.sh must fail without cargo\n{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("aetos needs cargo to build aetos-api"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("AETOS_PREBUILT_BINARY"),
        "{}",
        run.stderr
    );
    assert_eq!(run.all_calls("die").len(), 1);
    assert!(
        !run.files.contains_key("after-stack/aetos.conf"),
        "post-config ran after a failed install"
    );
}

#[test]
fn alertmanager_is_configured_and_registered_only_when_its_url_is_set() {
    let default = default_run();
    assert_eq!(default.aetos_conf().get("alertmanager", "url"), None);
    assert_eq!(
        default.calls("stack extra", "get_or_create_endpoint").len(),
        1
    );
    let run = run_harness(&[], &[("AETOS_ALERTMANAGER_URL", "http://localhost:9093")]);
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.aetos_conf().value("alertmanager", "url"),
        "http://localhost:9093"
    );
    let services = run.calls("stack extra", "get_or_create_service");
    assert_eq!(
        services
            .iter()
            .map(|c| words(c)[..3].to_vec())
            .collect::<Vec<_>>(),
        [
            vec!["get_or_create_service", "aetos", "metric-storage"],
            vec!["get_or_create_service", "aetos-alertmanager", "alerting"],
        ]
    );
    let url = format!("http://{SERVICE_HOST}/prometheus/alertmanager");
    let endpoints = run.calls("stack extra", "get_or_create_endpoint");
    assert_eq!(
        words(endpoints[1]),
        [
            "get_or_create_endpoint",
            "alerting",
            "RegionOne",
            &url,
            &url,
            &url
        ]
    );
}

#[test]
fn without_apache_the_endpoint_names_aetos_port_and_local_conf_settings_apply() {
    let run = run_harness(
        &[],
        &[
            ("AETOS_USE_APACHE", "False"),
            ("AETOS_SERVICE_PORT", "9876"),
            ("AETOS_PROMETHEUS_HOST", "prometheus.example.org"),
            ("AETOS_PROMETHEUS_PORT", "9091"),
        ],
    );
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    let url = format!("http://{SERVICE_HOST}:9876/prometheus");
    let endpoint = run.calls("stack extra", "get_or_create_endpoint");
    assert_eq!(
        words(endpoint[0]),
        [
            "get_or_create_endpoint",
            "metric-storage",
            "RegionOne",
            &url,
            &url,
            &url
        ]
    );
    assert_eq!(
        run.calls("stack extra", "wait_for_service")[0].words[2],
        format!("{url}/healthcheck")
    );

    let conf = run.aetos_conf();
    assert_eq!(conf.value("api", "port"), "9876");
    assert_eq!(conf.value("api", "host"), "0.0.0.0");
    assert_eq!(conf.value("prometheus", "host"), "prometheus.example.org");
    assert_eq!(conf.value("prometheus", "port"), "9091");
    assert_eq!(
        conf.get("oslo_middleware", "enable_proxy_headers_parsing"),
        None
    );

    let apache: Vec<&Call> = run
        .calls
        .iter()
        .filter(|c| c.words[0].contains("apache"))
        .collect();
    assert!(apache.is_empty(), "{apache:?}");
    assert!(!run.files.contains_key("after-stack/apache-aetos.conf"));
}

#[test]
fn the_config_written_by_devstack_passes_the_real_binarys_check_config() {
    // The plugin runs `aetos-api check-config` on what it wrote; with the
    // real binary, this proves devstack's aetos.conf is one aetos accepts.
    let run = run_harness(&["--binary", env!("CARGO_BIN_EXE_aetos-api")], &[]);
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    assert!(run.all_calls("die").is_empty(), "{}", run.stderr);
}
