//! Shared harness of the functional tests: the local real-component stack
//! (`tools/stack.sh`, described by `$AETOS_STACK_DIR/env.json`) and a real
//! `aetos-api` process started per test file on a free port.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub mod memcached;
pub mod raw;
pub mod relay;

/// The running stack, as `tools/stack.sh start` describes it.
pub struct Stack {
    pub env: Value,
    pub dir: PathBuf,
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Loads `env.json`; panics with the command to run when the stack is not up.
pub fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let dir = std::env::var_os("AETOS_STACK_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".stack"));
        let path = dir.join("env.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}\nThe functional tests need the local stack: run `tools/stack.sh start` \
                 (or `just functional`).",
                path.display()
            )
        });
        Stack {
            env: serde_json::from_str(&text).expect("env.json is JSON"),
            dir,
        }
    })
}

impl Stack {
    pub fn s(&self, ptr: &str) -> String {
        self.env
            .pointer(ptr)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("env.json has no string at {ptr}"))
            .to_owned()
    }
    pub fn keystone_url(&self) -> String {
        self.s("/keystone_url")
    }
    pub fn prometheus_url(&self) -> String {
        self.s("/prometheus_url")
    }
    pub fn project(&self, name: &str) -> String {
        self.s(&format!("/projects/{name}"))
    }
    pub fn password(&self, user: &str) -> String {
        self.s(&format!("/users/{user}/password"))
    }
    /// Runs `tools/stack.sh ARGS…` and asserts it succeeded.
    pub fn ctl(&self, args: &[&str]) {
        let st = Command::new("bash")
            .arg(repo_root().join("tools/stack.sh"))
            .args(args)
            .env("AETOS_STACK_DIR", &self.dir)
            .status()
            .expect("run tools/stack.sh");
        assert!(st.success(), "tools/stack.sh {args:?} failed");
    }
}

/// A Keystone token for a seeded user, project-scoped where the user has a
/// project (cached per user for the test process).
pub async fn token(user: &str) -> String {
    static TOKENS: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let cache = TOKENS.get_or_init(Default::default);
    if let Some(t) = cache.lock().unwrap().get(user) {
        return t.clone();
    }
    let t = fresh_token(user).await;
    cache.lock().unwrap().insert(user.to_owned(), t.clone());
    t
}

/// A new token (not cached), e.g. to revoke it.
pub async fn fresh_token(user: &str) -> String {
    let s = stack();
    let project = s
        .env
        .pointer(&format!("/users/{user}/project"))
        .and_then(Value::as_str);
    let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": s.password(user)}}}});
    if let Some(p) = project {
        auth["scope"] = json!({"project": {"name": p, "domain": {"id": "default"}}});
    }
    let resp = client()
        .post(format!(
            "{}/auth/tokens?nocatalog",
            s.keystone_url().trim_end_matches('/')
        ))
        .json(&json!({ "auth": auth }))
        .send()
        .await
        .expect("Keystone reachable");
    assert!(
        resp.status().is_success(),
        "login of {user}: {}",
        resp.status()
    );
    resp.headers()["x-subject-token"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// Revokes a token the way a user would: `DELETE /v3/auth/tokens` with
/// itself as both headers.
pub async fn revoke(token: &str) {
    let s = stack();
    let r = client()
        .delete(format!(
            "{}/auth/tokens",
            s.keystone_url().trim_end_matches('/')
        ))
        .header("X-Auth-Token", token)
        .header("X-Subject-Token", token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "revoke: {}", r.status());
}

pub fn client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `aetos-api` with its own config directory.
pub struct Aetos {
    pub url: String,
    pub port: u16,
    pub dir: tempdir::Dir,
    pub child: Child,
    pub log: PathBuf,
}

pub mod tempdir {
    //! A throw-away directory removed on drop (no extra crate for this).
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!(
                "aetos-test-{tag}-{}-{}",
                std::process::id(),
                super::free_port()
            ));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The `[keystone_authtoken]` section for the stack's `aetos` service user.
pub fn keystone_section() -> String {
    let s = stack();
    let ks = s.keystone_url();
    format!(
        "[keystone_authtoken]\nwww_authenticate_uri = {ks}\nauth_url = {ks}\nauth_type = password\n\
         username = aetos\npassword = {}\nuser_domain_id = default\nproject_name = service\n\
         project_domain_id = default\nmemcached_servers = {}\nservice_token_roles_required = True\n",
        s.password("aetos"),
        s.s("/memcached"),
    )
}

/// The `[prometheus]` section pointing at the stack's main Prometheus.
pub fn prometheus_section() -> String {
    let url = url::Url::parse(&stack().prometheus_url()).unwrap();
    format!(
        "[prometheus]\nhost = {}\nport = {}\n",
        url.host_str().unwrap(),
        url.port().unwrap()
    )
}

impl Aetos {
    /// Starts aetos in keystone mode against the stack, with `extra` INI
    /// text appended (later keys win) and an optional policy file.
    pub fn start(extra: &str, policy: Option<&str>) -> Aetos {
        Self::start_on(free_port(), extra, policy)
    }

    pub fn start_on(port: u16, extra: &str, policy: Option<&str>) -> Aetos {
        let conf = format!(
            "[DEFAULT]\nauth_mode = keystone\ndebug = true\n\n[api]\nhost = 127.0.0.1\nport = {port}\nworkers = 2\n\n{}\n{}\n{extra}\n",
            keystone_section(),
            prometheus_section()
        );
        Self::start_with_config(port, &conf, policy)
    }

    pub fn start_with_config(port: u16, conf: &str, policy: Option<&str>) -> Aetos {
        let dir = tempdir::Dir::new("aetos");
        let conf_path = dir.path().join("aetos.conf");
        std::fs::write(&conf_path, conf).unwrap();
        if let Some(p) = policy {
            std::fs::write(dir.path().join("policy.yaml"), p).unwrap();
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_aetos-api"));
        cmd.arg("--config-file").arg(&conf_path);
        Self::launch(cmd, port, dir)
    }

    /// Spawns `cmd` (an `aetos-api` command line) with its output in
    /// `dir/aetos.log`, and waits until it listens on `port`.
    pub fn launch(mut cmd: Command, port: u16, dir: tempdir::Dir) -> Aetos {
        let log = dir.path().join("aetos.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            // Logs go to stdout by default (oslo.log): keep both in one file.
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("spawn aetos-api");
        let mut a = Aetos {
            url: format!("http://127.0.0.1:{port}"),
            port,
            dir,
            child,
            log,
        };
        a.wait_ready();
        a
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("aetos-api exited with {status}:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("aetos-api did not start:\n{}", self.logs());
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    /// GET `path` (below `/prometheus`) with an optional token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut r = client().get(format!("{}/prometheus{path}", self.url));
        if let Some(t) = token {
            r = r.header("X-Auth-Token", t);
        }
        r.send().await.expect("aetos answers")
    }

    /// POST to `path` (below `/prometheus`) without a body.
    pub async fn post(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut r = client().post(format!("{}/prometheus{path}", self.url));
        if let Some(t) = token {
            r = r.header("X-Auth-Token", t);
        }
        r.send().await.expect("aetos answers")
    }

    /// Form POST of `body` to `path` (below `/prometheus`).
    pub async fn post_form(
        &self,
        path: &str,
        body: &str,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut r = client()
            .post(format!("{}/prometheus{path}", self.url))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if let Some(t) = token {
            r = r.header("X-Auth-Token", t);
        }
        r.send().await.expect("aetos answers")
    }
}

impl Drop for Aetos {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let _ = writeln!(std::io::stderr(), "--- aetos-api log ---\n{}", self.logs());
        }
    }
}

/// JSON body of a response, with the status.
pub async fn json_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, v)
}

/// Waits (at most 90 s) until the main Prometheus holds exporter samples
/// at least `age` old, for tests that query the recent past: right after
/// `tools/stack.sh start` the history is only seconds long.
pub async fn wait_for_history(age: Duration) {
    let started = Instant::now();
    loop {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .saturating_sub(age)
            .as_secs()
            .to_string();
        let v = prom_query("up{job=\"exporter\"}", Some(&at)).await;
        if v["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "Prometheus has no samples {age:?} old after 90 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Direct query to the main Prometheus (the baseline).
pub async fn prom_query(query: &str, time: Option<&str>) -> Value {
    let mut url = url::Url::parse(&format!("{}/api/v1/query", stack().prometheus_url())).unwrap();
    url.query_pairs_mut().append_pair("query", query);
    if let Some(t) = time {
        url.query_pairs_mut().append_pair("time", t);
    }
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Every value of `label` in a vector result.
pub fn label_values(result: &Value, label: &str) -> Vec<String> {
    result["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("not a vector result: {result}"))
        .iter()
        .map(|s| s["metric"][label].as_str().unwrap_or("").to_owned())
        .collect()
}

/// URL-encodes one query parameter value.
pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A recording HTTP endpoint standing in for the backend *only* where a test
/// must see exactly what aetos sends out (headers, raw query, body). It
/// answers every request with an empty Prometheus vector.
pub struct Recorder {
    pub port: u16,
    pub requests: std::sync::Arc<Mutex<Vec<RecordedRequest>>>,
}

#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The request line, e.g. `GET /api/v1/query?query=up HTTP/1.1`.
    pub line: String,
    /// Header lines, lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// The raw path and query string of the request line.
    pub fn target(&self) -> &str {
        self.line.split(' ').nth(1).unwrap_or("")
    }
}

impl Recorder {
    pub fn start() -> Recorder {
        Self::start_with_delay(Duration::ZERO)
    }

    /// Like [`Recorder::start`], but each answer comes after `delay` (a slow
    /// backend, to keep requests in flight).
    pub fn start_with_delay(delay: Duration) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = std::sync::Arc::new(Mutex::new(Vec::new()));
        let store = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let store = store.clone();
                std::thread::spawn(move || serve_one(stream, &store, delay));
            }
        });
        Recorder { port, requests }
    }

    pub fn take(&self) -> Vec<RecordedRequest> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }
}

fn serve_one(
    mut stream: std::net::TcpStream,
    store: &Mutex<Vec<RecordedRequest>>,
    delay: Duration,
) {
    use std::io::{BufRead, BufReader, Read};
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    let _ = reader.read_exact(&mut body);
    store.lock().unwrap().push(RecordedRequest {
        line: line.trim_end().to_owned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    std::thread::sleep(delay);
    let payload = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    );
}

/// Whether the tests run in CI (`CI` set to anything but empty, `0` or
/// `false`, as GitHub, GitLab and Zuul's jobs set it).
pub fn in_ci() -> bool {
    std::env::var("CI")
        .is_ok_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"))
}

/// The path of `name`, a program a test needs beyond the stack (a load
/// balancer…), searched in the usual system directories and `PATH`. When
/// it is missing, outside CI the test is to be skipped (`None`, after
/// saying so on stderr); in CI it fails, so that CI never passes without
/// running it. `package` is the Debian package that provides it.
pub fn optional_binary(name: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        .into_iter()
        .map(PathBuf::from)
        .chain(std::env::split_paths(&path))
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        let why = format!(
            "{name} is not installed (Debian package {package}; `tools/stack.sh install` installs it)"
        );
        assert!(!in_ci(), "{why}: CI must run this test");
        // Not eprintln!: the test harness would swallow it for a passing test.
        let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
    }
    found
}
