//! The real binary where no stack is needed: configuration errors, an
//! identity service that never answers, a backend that is not there, and
//! hostile input through the HTTP layer (noauth mode).

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, json_of, tempdir, Aetos};

fn run_with_config(conf: &str) -> (i32, String) {
    let dir = tempdir::Dir::new("cfg");
    let path = dir.path().join("aetos.conf");
    std::fs::write(&path, conf).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aetos-api"))
        .arg("--config-file")
        .arg(&path)
        .arg("check-config")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code().unwrap_or(-1), err)
}

#[test]
fn config_errors_exit_non_zero_naming_section_and_option() {
    let cases = [
        ("[DEFAULT]\nauth_mode = sometimes\n", "[DEFAULT] auth_mode"),
        ("[DEFAULT]\nauth_mode = noauth\n[prometheus]\nport = not-a-port\n", "[prometheus] port"),
        ("[DEFAULT]\nauth_mode = keystone\n[keystone_authtoken]\nusername = a\npassword = b\n", "[keystone_authtoken] auth_url"),
        (
            "[DEFAULT]\nauth_mode = keystone\n[keystone_authtoken]\nauth_url = not a url\nusername = a\npassword = b\nproject_name = p\n",
            "[keystone_authtoken] auth_url",
        ),
        ("[DEFAULT]\nauth_mode = noauth\n[oslo_policy]\npolicy_file = /etc\n", "[oslo_policy] policy_file"),
        ("[DEFAULT]\nauth_mode = noauth\n[api]\ntls_cert_file = /etc/passwd\ntls_key_file = /etc/passwd\n", "[api] tls_cert_file"),
    ];
    for (conf, want) in cases {
        let (code, err) = run_with_config(conf);
        assert_ne!(code, 0, "accepted: {conf}");
        assert_eq!(err.trim().lines().count(), 1, "one line expected: {err}");
        assert!(err.contains(want), "{conf}\n=> {err}");
    }
}

#[test]
fn unknown_options_warn_but_load() {
    let (code, _) = run_with_config("[DEFAULT]\nauth_mode = noauth\npaste_config = api-paste.ini\n[nonsense]\nx = 1\n[prometheus]\nfoo = bar\n");
    assert_eq!(code, 0);
}

fn noauth_conf(port: u16, backend_port: u16, extra: &str) -> String {
    format!("[DEFAULT]\nauth_mode = noauth\n[api]\nhost = 127.0.0.1\nport = {port}\n[prometheus]\nhost = 127.0.0.1\nport = {backend_port}\ntimeout = 2\n{extra}")
}

#[tokio::test]
async fn keystone_that_never_answers_gives_503_within_the_timeout() {
    // Accepts connections and never answers: a hung identity service.
    let blackhole = TcpListener::bind("127.0.0.1:0").unwrap();
    let ks = format!(
        "http://127.0.0.1:{}/v3",
        blackhole.local_addr().unwrap().port()
    );
    let port = free_port();
    let conf = format!(
        "[DEFAULT]\nauth_mode = keystone\n[api]\nhost = 127.0.0.1\nport = {port}\n[keystone_authtoken]\nauth_url = {ks}\nwww_authenticate_uri = {ks}\nusername = aetos\npassword = x\nuser_domain_id = default\nproject_name = service\nproject_domain_id = default\nhttp_connect_timeout = 1\n"
    );
    let a = Aetos::start_with_config(port, &conf, None);
    let started = Instant::now();
    let (st, v) = json_of(a.get("/api/v1/query?query=up", Some("some-token")).await).await;
    assert_eq!(st, 503, "{v}");
    assert_eq!(v["errorType"], "unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    drop(blackhole);
}

#[tokio::test]
async fn backend_down_is_a_502_json_error() {
    let port = free_port();
    let dead = free_port();
    let a = Aetos::start_with_config(port, &noauth_conf(port, dead, ""), None);
    let r = common::client()
        .get(format!("{}/api/v1/query?query=up", a.url))
        .header("X-Roles", "admin")
        .header("X-Project-Id", "p1")
        .send()
        .await
        .unwrap();
    let (st, v) = json_of(r).await;
    assert_eq!(st, 502, "{v}");
    assert_eq!(v["status"], "error");
}

#[tokio::test]
async fn hostile_input_gets_400_not_a_crash() {
    let port = free_port();
    let dead = free_port();
    let a = Aetos::start_with_config(
        port,
        &noauth_conf(port, dead, "[api]\nmax_request_body_size = 65536\n"),
        None,
    );
    let reader =
        |rb: reqwest::RequestBuilder| rb.header("X-Roles", "reader").header("X-Project-Id", "p1");
    let deep = format!("{}up{}", "(".repeat(5_000), ")".repeat(5_000));
    let cases = vec![
        format!("query={}", common::enc(&deep)),
        format!("query={}", common::enc("up @ -5")),
        format!("query={}", common::enc("sum(")),
        "query=%ff%fe".to_owned(),
    ];
    for q in cases {
        let r = reader(common::client().post(format!("{}/api/v1/query", a.url)))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(q.clone())
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        assert!(st == 400 || st == 413, "{st} for {}", &q[..q.len().min(60)]);
    }
    // Multipart bodies would carry parameters past the tenancy stage.
    let r = reader(common::client().post(format!("{}/api/v1/query", a.url)))
        .header("Content-Type", "multipart/form-data; boundary=x")
        .body("--x\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\nup\r\n--x--\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    // The service is still alive.
    let r = common::client()
        .get(format!("{}/healthcheck", a.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

fn aetos_cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_aetos-api"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn genconfig_and_genpolicy_print_the_committed_samples() {
    let root = common::repo_root();
    let (code, out, _) = aetos_cli(&["genconfig"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        std::fs::read_to_string(root.join("etc/aetos/aetos.conf.sample")).unwrap()
    );
    let (code, out, _) = aetos_cli(&["genpolicy"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        std::fs::read_to_string(root.join("etc/aetos/policy.yaml.sample")).unwrap()
    );
}

#[test]
fn policy_check_and_effective_policy_use_the_override_file() {
    let dir = tempdir::Dir::new("pc");
    std::fs::write(
        dir.path().join("aetos.conf"),
        "[DEFAULT]\nauth_mode = noauth\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("policy.yaml"),
        "\"telemetry:query\": \"role:member\"\n",
    )
    .unwrap();
    let token = serde_json::json!({"token": {"user": {"id": "u"}, "project": {"id": "p"},
        "roles": [{"name": "member"}], "expires_at": "2099-01-01T00:00:00Z"}});
    let creds = dir.path().join("token.json");
    std::fs::write(&creds, token.to_string()).unwrap();
    let conf = dir.path().join("aetos.conf");
    let conf = conf.to_str().unwrap();
    let (code, out, err) = aetos_cli(&[
        "--config-file",
        conf,
        "policy-check",
        "--credentials",
        creds.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l == "passed: telemetry:query"), "{out}");
    assert!(
        out.lines().any(|l| l == "failed: telemetry:targets"),
        "{out}"
    );
    let (code, out, _) = aetos_cli(&["--config-file", conf, "genpolicy", "--effective"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("\"telemetry:query\": \"role:member\""),
        "{out}"
    );
    // A rule that cannot be parsed is reported, and check-config fails.
    std::fs::write(
        dir.path().join("policy.yaml"),
        "\"telemetry:query\": \"role:member and (\"\n",
    )
    .unwrap();
    let (code, _, err) = aetos_cli(&["--config-file", conf, "check-config"]);
    assert_ne!(code, 0);
    assert!(err.contains("telemetry:query"), "{err}");
}

#[test]
fn check_config_shows_what_the_environment_set_without_secret_values() {
    let dir = tempdir::Dir::new("envcfg");
    let conf = dir.path().join("aetos.conf");
    std::fs::write(
        &conf,
        "[DEFAULT]\nauth_mode = keystone\n[keystone_authtoken]\nauth_url = http://127.0.0.1:9/v3\n\
         username = aetos\nuser_domain_id = default\nproject_name = service\nproject_domain_id = default\n",
    )
    .unwrap();
    let secret_file = dir.path().join("password");
    std::fs::write(&secret_file, "pw-from-a-mounted-secret\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aetos-api"))
        .arg("--config-file")
        .arg(&conf)
        .arg("check-config")
        .env("OS_API__PORT", "9999")
        .env("OS_KEYSTONE_AUTHTOKEN__PASSWORD_FILE", &secret_file)
        .env("OS_PROMETHEUS__USERNAME", "basic-user")
        .env("OS_PROMETHEUS__PASSWORD", "pw-in-the-environment")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Without the password from the environment, keystone mode would not load.
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for line in [
        "from the environment: [api] port = 9999 (OS_API__PORT)".to_owned(),
        format!(
            "from the environment: [keystone_authtoken] password read from {} (OS_KEYSTONE_AUTHTOKEN__PASSWORD_FILE)",
            secret_file.display()
        ),
        "from the environment: [prometheus] password = *** (OS_PROMETHEUS__PASSWORD)".to_owned(),
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line} not in\n{stdout}");
    }
    assert!(
        !format!("{stdout}{stderr}").contains("pw-"),
        "{stdout}{stderr}"
    );
}

#[test]
fn log_lines_follow_the_oslo_format_strings() {
    let recorder = common::Recorder::start();
    let port = free_port();
    let conf = format!(
        "[DEFAULT]\nauth_mode = noauth\n\
         logging_context_format_string = CTX %(levelname)-7s|%(request_id)s|%(global_request_id)s|%(nonsense)s|%(message)s\n\
         logging_default_format_string = DEF %(process)d %(name)s %(message)s\n\
         [api]\nhost = 127.0.0.1\nport = {port}\n[prometheus]\nhost = 127.0.0.1\nport = {}\n",
        recorder.port
    );
    let a = Aetos::start_with_config(port, &conf, None);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let id = rt.block_on(async {
        let r = common::client()
            .get(format!("{}/api/v1/query?query=up", a.url))
            .header("X-Project-Id", "p")
            .header("X-Roles", "admin")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.headers()["x-openstack-request-id"]
            .to_str()
            .unwrap()
            .to_owned()
    });
    let pid = a.child.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    let want = format!("CTX INFO   |{id}|None||request method=GET path=/api/v1/query status=200");
    while !a.logs().lines().any(|l| l.starts_with(&want)) {
        assert!(
            Instant::now() < deadline,
            "no line starting {want:?}:\n{}",
            a.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let logs = a.logs();
    assert!(
        logs.lines()
            .any(|l| l.starts_with(&format!("DEF {pid} aetos.server aetos-api listening "))),
        "{logs}"
    );
}

#[test]
fn a_taken_internal_listen_port_stops_start_up_naming_the_option() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().port();
    let dir = tempdir::Dir::new("internal-taken");
    let conf = dir.path().join("aetos.conf");
    let port = free_port();
    std::fs::write(
        &conf,
        noauth_conf(
            port,
            9,
            &format!("[api]\ninternal_listen = 127.0.0.1:{busy}\n"),
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aetos-api"))
        .arg("--config-file")
        .arg(&conf)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(&format!("[api] internal_listen 127.0.0.1:{busy}:")),
        "{text}"
    );
    // The same address as the API is refused before anything is bound.
    std::fs::write(
        &conf,
        noauth_conf(
            port,
            9,
            &format!("[api]\ninternal_listen = 127.0.0.1:{port}\n"),
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aetos-api"))
        .arg("--config-file")
        .arg(&conf)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("is the API's own address"), "{text}");
    drop(taken);
}
