//! Every backend mode end to end: a real Keystone token → real policy →
//! tenancy → a signed or authenticated request → an answer with real data.
//!
//! The clouds are replaced by the stand-ins of `tests/standins/` (STS, the
//! AWS container and EC2 metadata services, Azure AD, IMDS, and a managed-Prometheus front door that verifies each
//! signature or token before forwarding to the stack's real Prometheus).
//! The HA test stops and restarts one of the stack's two real HA
//! Prometheus processes. aetos is the real binary, started per test with
//! a clean environment (only the variables a test sets, like IRSA's or
//! AKS's).
#![cfg(feature = "functional")]

mod common;
mod standins;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{enc, json_of, label_values, stack, token, Aetos};
use serde_json::Value;
use standins::aws_metadata::{
    ContainerCredentialsStandin, Ec2ImdsStandin, IMDS_CREDENTIALS_PATH, IMDS_TOKEN_PATH,
};
use standins::azure::{AzureAdStandin, AzureConfig, ImdsStandin, PROMETHEUS_RESOURCE};
use standins::backend::{Check, PrometheusStandin};
use standins::google::{GceMetadataStandin, GoogleOAuthStandin, TestKey, MONITORING_AUDIENCE};
use standins::sts::{StsConfig, StsStandin};
use standins::Registry;

const WEB_IDENTITY_ROLE: &str = "arn:aws:iam::111122223333:role/aetos-irsa";
const AMP_ROLE: &str = "arn:aws:iam::444455556666:role/amp-central-query";
const REGION: &str = "eu-west-1";

fn demo() -> String {
    stack().project("demo")
}
fn other() -> String {
    stack().project("other")
}

/// Starts `aetos-api ARGS…` with only `env` (plus HOME, a fresh directory)
/// in its environment, and `conf` as its configuration file when given.
fn spawn_aetos(conf: Option<&str>, args: &[String], env: &[(&str, String)]) -> Aetos {
    let dir = common::tempdir::Dir::new("backends");
    let port = match args.iter().position(|a| a == "--port") {
        Some(i) => args[i + 1].parse().unwrap(),
        None => common::free_port(),
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aetos-api"));
    cmd.env_clear().env("HOME", dir.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(extra) = conf {
        let text = format!(
            "[DEFAULT]\nauth_mode = keystone\ndebug = true\n\n[api]\nhost = 127.0.0.1\nport = {port}\n\
             workers = 2\n\n[healthcheck]\ndetailed = true\n\n{}\n{extra}\n",
            common::keystone_section()
        );
        let path = dir.path().join("aetos.conf");
        std::fs::write(&path, text).unwrap();
        cmd.arg("--config-file").arg(path);
    }
    cmd.args(args);
    Aetos::launch(cmd, port, dir)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// An OpenShift-style backend below `/openshift-monitoring` that accepts
/// only the bearer tokens in `valid` (the first token at first), and aetos
/// reading that token from `token_file`.
struct TokenBackend {
    valid: Arc<Mutex<HashSet<String>>>,
    prom: PrometheusStandin,
    dir: common::tempdir::Dir,
    token_file: String,
    aetos: Aetos,
}

fn behind_token_checking_proxy(token: &str, tag: &str) -> TokenBackend {
    let valid = Arc::new(Mutex::new(HashSet::from([token.to_owned()])));
    let prom = PrometheusStandin::start(
        Check::Tokens(valid.clone()),
        "/openshift-monitoring",
        &stack().prometheus_url(),
        Arc::new(Registry::default()),
    );
    let dir = common::tempdir::Dir::new(tag);
    let token_file = write(dir.path(), "token", &format!("{token}\n"));
    let conf = format!(
        "[prometheus]\nurl = {}\nbearer_token_file = {token_file}\n",
        prom.url()
    );
    let aetos = spawn_aetos(Some(&conf), &[], &[]);
    TokenBackend {
        valid,
        prom,
        dir,
        token_file,
        aetos,
    }
}

/// The same three requests through any mode: a reader's GET and a
/// member's form POST see only project demo, the service user sees both.
async fn tenancy_holds_end_to_end(a: &Aetos) {
    let q = "ceilometer_cpu";
    let (st, v) = json_of(
        a.get(
            &format!("/api/v1/query?query={q}"),
            Some(&token("demo-reader").await),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200, "{v}\n{}", a.logs());
    let projects = label_values(&v, "project");
    assert!(!projects.is_empty(), "no data for the reader: {v}");
    assert!(projects.iter().all(|p| *p == demo()), "{projects:?}");
    let (st, v) = json_of(
        a.post_form(
            "/api/v1/query",
            &format!("query={}", enc("sum by (project) (ceilometer_cpu)")),
            Some(&token("demo-member").await),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(label_values(&v, "project"), vec![demo()]);
    let (st, v) = json_of(
        a.get(
            &format!("/api/v1/query?query={q}"),
            Some(&token("aetos").await),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let all: HashSet<String> = label_values(&v, "project").into_iter().collect();
    assert!(all.contains(&demo()) && all.contains(&other()), "{all:?}");
}

/// Nothing the registry issued, nor `extra`, appears in the log.
fn assert_no_secrets_in_logs(a: &Aetos, registry: &Registry, extra: &[&str]) {
    let logs = a.logs();
    for s in registry.secrets() {
        assert!(!logs.contains(&s), "a credential reached the log");
    }
    for s in extra {
        assert!(!logs.contains(s), "{s:?} reached the log");
    }
}

/// A reader's `up` query every 100 ms for `how_long`, each answered 200:
/// the number of requests made.
async fn query_every_100ms_for(a: &Aetos, how_long: Duration) -> usize {
    let t = token("demo-reader").await;
    let started = Instant::now();
    let mut requests = 0;
    while started.elapsed() < how_long {
        let (st, v) = json_of(a.get("/api/v1/query?query=up", Some(&t)).await).await;
        assert_eq!(
            st,
            200,
            "request {requests} after {:?}: {v}",
            started.elapsed()
        );
        requests += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    requests
}

async fn health(a: &Aetos) -> (u16, Value) {
    json_of(
        common::client()
            .get(format!("{}/healthcheck?detailed", a.url))
            .send()
            .await
            .unwrap(),
    )
    .await
}

// ------------------------------------------------------------------ SigV4

#[test]
fn sigv4_verifier_accepts_the_aws_test_vectors_and_rejects_tampering() {
    // The stand-in's verifier is independent of the signer aetos uses; it
    // must agree with AWS's published vectors before it may judge aetos.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sigv4");
    let mut checked = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let ctx: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("context.json")).unwrap())
                .unwrap();
        let signed = std::fs::read_to_string(dir.join("header-signed-request.txt")).unwrap();
        let (head, body) = signed.split_once("\n\n").unwrap_or((&signed, ""));
        let body = body.trim_end_matches('\n');
        let mut lines = head.lines();
        let first = lines.next().unwrap();
        let (method, rest) = first.split_once(' ').unwrap();
        let target = rest.rsplit_once(' ').unwrap().0;
        // On the wire the target is percent-encoded.
        let target = url::Url::parse(&format!("http://h{target}")).unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect();
        let registry = Registry::default();
        let c = &ctx["credentials"];
        registry.add_aws_key(
            c["access_key_id"].as_str().unwrap(),
            standins::AwsKey {
                secret: c["secret_access_key"].as_str().unwrap().to_owned(),
                session_token: c["token"].as_str().map(str::to_owned),
                expires: None,
                principal: "test-suite".into(),
            },
        );
        let now = humantime::parse_rfc3339(ctx["timestamp"].as_str().unwrap()).unwrap();
        let region = ctx["region"].as_str().unwrap();
        let service = ctx["service"].as_str().unwrap();
        let query = target.query().unwrap_or("").to_owned();
        let verify = |body: &[u8], query: &str, at: std::time::SystemTime| {
            let received = standins::sigv4_verify::Received {
                method,
                raw_path: target.path(),
                raw_query: query,
                headers: headers.clone(),
                body,
            };
            standins::sigv4_verify::verify(&received, &registry, region, service, at)
        };
        let v = verify(body.as_bytes(), &query, now)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let expected_creq =
            std::fs::read_to_string(dir.join("header-canonical-request.txt")).unwrap();
        assert_eq!(
            v.canonical_request,
            expected_creq.trim_end_matches('\n'),
            "{}",
            dir.display()
        );
        // Tampering with the body or the query breaks the signature.
        assert!(verify(b"tampered", &query, now).is_err());
        assert!(verify(body.as_bytes(), &format!("{query}&x=1"), now).is_err());
        // So does a signature that is too old.
        assert!(verify(body.as_bytes(), &query, now + Duration::from_secs(600)).is_err());
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} vectors");
}

struct AmpSetup {
    registry: Arc<Registry>,
    sts: StsStandin,
    amp: PrometheusStandin,
    token_file: String,
    token: String,
    _dir: common::tempdir::Dir,
}

/// An STS stand-in trusting an IRSA token for WEB_IDENTITY_ROLE, which may
/// assume AMP_ROLE with external id `ext-7`, and an AMP stand-in that
/// accepts only AMP_ROLE's signatures.
fn amp_setup(lifetime: Duration) -> AmpSetup {
    let dir = common::tempdir::Dir::new("irsa");
    let token = format!(
        "eyJhbGciOiJSUzI1NiJ9.{}.standin-irsa",
        standins::random("", 48)
    );
    let token_file = write(dir.path(), "token", &token);
    let registry = Arc::new(Registry::default());
    let sts = StsStandin::start(
        StsConfig {
            region: REGION.into(),
            web_identity_role: WEB_IDENTITY_ROLE.into(),
            web_identity_token: token.clone(),
            target_role: AMP_ROLE.into(),
            external_id: Some("ext-7".into()),
            lifetime,
        },
        registry.clone(),
    );
    let amp = PrometheusStandin::start(
        Check::SigV4 {
            region: REGION.into(),
            service: "aps".into(),
            principal: Some(AMP_ROLE.into()),
        },
        "/workspaces/ws-standin-0001",
        &stack().prometheus_url(),
        registry.clone(),
    );
    AmpSetup {
        registry,
        sts,
        amp,
        token_file,
        token,
        _dir: dir,
    }
}

fn irsa_env(s: &AmpSetup) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ROLE_ARN", WEB_IDENTITY_ROLE.to_owned()),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", s.token_file.clone()),
        ("AWS_REGION", REGION.to_owned()),
    ]
}

fn amp_conf(s: &AmpSetup, extra_aws: &str) -> String {
    format!(
        "[prometheus]\nurl = {}\nauth_method = sigv4\n\n[prometheus_aws]\nsts_endpoint = {}\n\
         assume_role_arn = {AMP_ROLE}\nexternal_id = ext-7\nrole_session_name = aetos-functional\n{extra_aws}",
        s.amp.url(),
        s.sts.url()
    )
}

#[tokio::test]
async fn amp_with_irsa_and_a_cross_account_role_signs_every_request() {
    let s = amp_setup(Duration::from_secs(3600));
    let a = spawn_aetos(Some(&amp_conf(&s, "")), &[], &irsa_env(&s));
    tenancy_holds_end_to_end(&a).await;
    // query_range as a POST: the signature covers the scoped form body.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let body = format!(
        "query={}&start={}&end={now}&step=15",
        enc("rate(ceilometer_cpu[1m])"),
        now - 120
    );
    let (st, v) = json_of(
        a.post_form(
            "/api/v1/query_range",
            &body,
            Some(&token("demo-reader").await),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert!(label_values(&v, "project").iter().all(|p| *p == demo()));

    let seen = s.amp.seen();
    assert!(s.amp.refused().is_empty(), "refused: {:?}", s.amp.refused());
    assert!(seen.len() >= 4);
    for r in &seen {
        assert_eq!(r.principal.as_deref(), Some(AMP_ROLE));
        assert!(
            r.path.starts_with("/workspaces/ws-standin-0001/api/v1/"),
            "{}",
            r.path
        );
        assert!(
            r.header("x-auth-token").is_none(),
            "the caller's token was forwarded"
        );
        assert!(r.header("x-amz-security-token").is_some());
    }
    let scoped_post = seen
        .iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/query_range"))
        .expect("the POST reached the workspace");
    assert!(
        scoped_post.body.contains(&demo()),
        "body: {}",
        scoped_post.body
    );
    assert!(scoped_post
        .signed_headers
        .as_deref()
        .unwrap()
        .contains("content-type"));
    // One web identity exchange and one AssumeRole for all of it.
    assert_eq!(
        s.sts.count("AssumeRoleWithWebIdentity"),
        1,
        "{:?}",
        s.sts.calls()
    );
    assert_eq!(s.sts.count("AssumeRole"), 1, "{:?}", s.sts.calls());
    let ar = s
        .sts
        .calls()
        .into_iter()
        .find(|c| c.action == "AssumeRole")
        .unwrap();
    assert_eq!(ar.caller.as_deref(), Some(WEB_IDENTITY_ROLE));
    assert_eq!(ar.external_id.as_deref(), Some("ext-7"));
    assert_eq!(ar.session_name, "aetos-functional");

    let (st, h) = health(&a).await;
    assert_eq!(st, 200, "{h}");
    assert_eq!(h["reasons"][0]["details"]["ready"], true);
    assert_eq!(h["reasons"][0]["details"]["auth"], "sigv4");
    assert_eq!(h["reasons"][1]["class"], "BackendCredentials");
    assert_eq!(h["reasons"][1]["details"]["credentials"], "valid");
    let text = h.to_string();
    for secret in s.registry.secrets() {
        assert!(!text.contains(&secret));
    }
    assert_no_secrets_in_logs(&a, &s.registry, &[&s.token]);
    assert!(a
        .logs()
        .contains("AssumeRole arn:aws:iam::444455556666:role/amp-central-query"));
}

#[tokio::test]
async fn sigv4_short_lived_credentials_are_refreshed_before_expiry_not_per_request() {
    // Static base keys, then AssumeRole credentials that live 3 seconds:
    // the AMP stand-in refuses expired keys, so a late refresh fails a request.
    let s = amp_setup(Duration::from_secs(3));
    s.registry.add_aws_key(
        "AKIASTANDINSTATIC01",
        standins::AwsKey {
            secret: "static/secret+key".into(),
            session_token: None,
            expires: None,
            principal: WEB_IDENTITY_ROLE.into(),
        },
    );
    let a = spawn_aetos(
        Some(&amp_conf(
            &s,
            "credential_source = static\naccess_key_id = AKIASTANDINSTATIC01\nsecret_access_key = static/secret+key\nregion = eu-west-1\n",
        )),
        &[],
        &[],
    );
    let requests = query_every_100ms_for(&a, Duration::from_secs(8)).await;
    let refreshes = s.sts.count("AssumeRole");
    assert!(requests >= 40, "{requests}");
    // ~8 s of 2–3 s credentials: 3 to 5 fetches, never one per request.
    assert!(
        (3..=6).contains(&refreshes),
        "{refreshes} AssumeRole calls for {requests} requests"
    );
    assert_eq!(s.sts.count("AssumeRoleWithWebIdentity"), 0);
    assert!(s.amp.refused().is_empty(), "{:?}", s.amp.refused());
    assert_no_secrets_in_logs(&a, &s.registry, &["static/secret+key"]);
}

#[tokio::test]
async fn sigv4_environment_and_profile_credentials_sign_directly() {
    let registry = Arc::new(Registry::default());
    for (akid, who) in [
        ("AKIAENVSTANDIN00001", "env-user"),
        ("AKIAPROFILESTANDIN1", "profile-user"),
    ] {
        registry.add_aws_key(
            akid,
            standins::AwsKey {
                secret: format!("{who}-secret"),
                session_token: (who == "env-user").then(|| "env-session-token".to_owned()),
                expires: None,
                principal: who.into(),
            },
        );
    }
    let amp = PrometheusStandin::start(
        Check::SigV4 {
            region: "us-east-2".into(),
            service: "aps".into(),
            principal: None,
        },
        "/workspaces/ws-direct",
        &stack().prometheus_url(),
        registry.clone(),
    );
    let conf = format!("[prometheus]\nurl = {}\nauth_method = sigv4\n", amp.url());
    // Environment, with a session token.
    let a = spawn_aetos(
        Some(&conf),
        &[],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAENVSTANDIN00001".into()),
            ("AWS_SECRET_ACCESS_KEY", "env-user-secret".into()),
            ("AWS_SESSION_TOKEN", "env-session-token".into()),
            ("AWS_DEFAULT_REGION", "us-east-2".into()),
        ],
    );
    tenancy_holds_end_to_end(&a).await;
    drop(a);
    // A named profile of the shared files, its region from the config file.
    let dir = common::tempdir::Dir::new("aws-profile");
    let creds = write(
        dir.path(),
        "credentials",
        "[default]\naws_access_key_id = AKIAWRONG\naws_secret_access_key = wrong\n\n\
         [metrics]\naws_access_key_id = AKIAPROFILESTANDIN1\naws_secret_access_key = profile-user-secret\n",
    );
    let config = write(
        dir.path(),
        "config",
        "[profile metrics]\nregion = us-east-2\n",
    );
    let a = spawn_aetos(
        Some(&conf),
        &[],
        &[
            ("AWS_PROFILE", "metrics".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", creds),
            ("AWS_CONFIG_FILE", config),
        ],
    );
    tenancy_holds_end_to_end(&a).await;
    let principals: HashSet<String> = amp
        .accepted()
        .into_iter()
        .filter_map(|s| s.principal)
        .collect();
    assert_eq!(
        principals,
        ["env-user", "profile-user"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    assert!(amp.refused().is_empty(), "{:?}", amp.refused());
    assert_no_secrets_in_logs(&a, &registry, &["env-session-token"]);
}

#[tokio::test]
async fn failing_to_obtain_credentials_is_a_503_naming_the_method_then_recovers() {
    let s = amp_setup(Duration::from_secs(3600));
    s.sts.state.refuse.store(true, Ordering::SeqCst);
    let a = spawn_aetos(Some(&amp_conf(&s, "")), &[], &irsa_env(&s));
    let t = token("demo-reader").await;
    let (st, v) = json_of(a.get("/api/v1/query?query=up", Some(&t)).await).await;
    assert_eq!(st, 503, "{v}");
    assert_eq!(v["status"], "error");
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains("(sigv4)") && msg.contains("AccessDenied"),
        "{msg}"
    );
    assert!(!msg.contains(&s.token));
    let (st, h) = health(&a).await;
    assert_eq!(st, 503, "{h}");
    assert!(a.child.id() > 0);
    // STS recovers: after the retry pause the next request works.
    s.sts.state.refuse.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (st, v) = json_of(a.get("/api/v1/query?query=up", Some(&t)).await).await;
    assert_eq!(st, 200, "{v}");
    assert_no_secrets_in_logs(&a, &s.registry, &[&s.token]);
}

const POD_IDENTITY_ROLE: &str = "arn:aws:iam::444455556666:role/amp-pod-identity";
const INSTANCE_ROLE: &str = "arn:aws:iam::111122223333:role/aetos-ec2";

#[tokio::test]
async fn amp_with_eks_pod_identity_refreshes_and_follows_a_rotated_token_file() {
    let registry = Arc::new(Registry::default());
    // Credentials that live 3 s: every refresh is a call to the agent.
    let agent = ContainerCredentialsStandin::start(
        POD_IDENTITY_ROLE,
        Duration::from_secs(3),
        registry.clone(),
    );
    let amp = PrometheusStandin::start(
        Check::SigV4 {
            region: REGION.into(),
            service: "aps".into(),
            principal: Some(POD_IDENTITY_ROLE.into()),
        },
        "/workspaces/ws-pod-identity",
        &stack().prometheus_url(),
        registry.clone(),
    );
    let dir = common::tempdir::Dir::new("pod-identity");
    let first = format!(
        "eyJhbGciOiJSUzI1NiJ9.{}.standin-sa",
        standins::random("", 40)
    );
    let second = format!(
        "eyJhbGciOiJSUzI1NiJ9.{}.standin-sa",
        standins::random("", 40)
    );
    agent.accept(&first);
    let token_file = write(dir.path(), "eks-pod-identity-token", &first);
    let conf = format!("[prometheus]\nurl = {}\nauth_method = sigv4\n", amp.url());
    // What the Pod Identity webhook injects into the pod.
    let a = spawn_aetos(
        Some(&conf),
        &[],
        &[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", agent.full_uri()),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file.clone()),
            ("AWS_REGION", REGION.into()),
        ],
    );
    tenancy_holds_end_to_end(&a).await;
    // The kubelet rotates the token; the old one is then refused.
    agent.accept(&second);
    write(dir.path(), "eks-pod-identity-token", &second);
    agent.revoke(&first);
    let requests = query_every_100ms_for(&a, Duration::from_secs(6)).await;
    let calls = agent.state.calls();
    assert!(calls.iter().all(|c| c.status == 200), "{calls:?}");
    let fetches = agent.state.count("GET", "/v1/credentials");
    // ~7 s of 3 s credentials: a few fetches, never one per request.
    assert!(
        (3..=6).contains(&fetches),
        "{fetches} fetches for {requests} requests"
    );
    assert_eq!(
        calls.last().unwrap().authorization.as_deref(),
        Some(second.as_str()),
        "the rotated token file was not read again"
    );
    assert!(amp.refused().is_empty(), "{:?}", amp.refused());
    let (st, h) = health(&a).await;
    assert_eq!(st, 200, "{h}");
    assert_eq!(h["reasons"][1]["details"]["credentials"], "valid");
    assert!(a
        .logs()
        .contains("container credentials from http://127.0.0.1:"));
    assert_no_secrets_in_logs(&a, &registry, &[&first, &second]);
}

#[tokio::test]
async fn amp_with_the_ec2_instance_profile_over_imdsv2_then_a_cross_account_role() {
    let s = amp_setup(Duration::from_secs(3600));
    // Nothing else configured: auto falls back to the instance profile.
    let closed = format!("http://127.0.0.1:{}", common::free_port());
    let down = spawn_aetos(
        Some(&amp_conf(
            &s,
            &format!("ec2_metadata_endpoint = {closed}\n"),
        )),
        &[],
        &[("AWS_REGION", REGION.into())],
    );
    let started = Instant::now();
    let (st, v) = json_of(
        down.get("/api/v1/query?query=up", Some(&token("demo-reader").await))
            .await,
    )
    .await;
    assert_eq!(st, 503, "{v}");
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains("(sigv4)") && msg.contains("EC2 instance metadata"),
        "{msg}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(down);

    let imds = Ec2ImdsStandin::start(
        INSTANCE_ROLE,
        Duration::from_secs(6 * 3600),
        s.registry.clone(),
    );
    let a = spawn_aetos(
        Some(&amp_conf(
            &s,
            &format!("ec2_metadata_endpoint = {}\n", imds.endpoint()),
        )),
        &[],
        &[("AWS_REGION", REGION.into())],
    );
    tenancy_holds_end_to_end(&a).await;
    let creds_path = format!("{IMDS_CREDENTIALS_PATH}{}", imds.role_name());
    assert_eq!(
        imds.state.count("PUT", IMDS_TOKEN_PATH),
        1,
        "{:?}",
        imds.state.calls()
    );
    assert_eq!(imds.state.count("GET", IMDS_CREDENTIALS_PATH), 1);
    assert_eq!(imds.state.count("GET", &creds_path), 1);
    // IMDSv2 only: no request went without a session token.
    assert!(
        imds.state.calls().iter().all(|c| c.status == 200),
        "{:?}",
        imds.state.calls()
    );
    // The instance role signed the AssumeRole into the workspace's account.
    let ar: Vec<_> = s
        .sts
        .calls()
        .into_iter()
        .filter(|c| c.action == "AssumeRole")
        .collect();
    assert_eq!(ar.len(), 1, "{ar:?}");
    assert_eq!(ar[0].caller.as_deref(), Some(INSTANCE_ROLE));
    assert_eq!(ar[0].status, 200);
    assert!(s.amp.refused().is_empty(), "{:?}", s.amp.refused());
    assert!(s
        .amp
        .seen()
        .iter()
        .all(|r| r.principal.as_deref() == Some(AMP_ROLE)));
    assert!(a.logs().contains("EC2 instance metadata (IMDSv2) at"));
    assert_no_secrets_in_logs(&a, &s.registry, &[]);
}

// ------------------------------------------------------------------ Azure

fn azure_config(lifetime: Duration) -> AzureConfig {
    AzureConfig {
        tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
        client_id: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".into(),
        client_secret: "Q~standin.client.secret~value".into(),
        federated_token: format!("eyJhbGciOiJSUzI1NiJ9.{}.aks-sa", standins::random("", 40)),
        managed_identity_client_id: "a1b2c3d4-0000-4000-8000-000000000001".into(),
        lifetime,
    }
}

fn azure_monitor(registry: &Arc<Registry>) -> PrometheusStandin {
    PrometheusStandin::start(
        Check::IssuedBearer {
            audience: PROMETHEUS_RESOURCE.into(),
        },
        "",
        &stack().prometheus_url(),
        registry.clone(),
    )
}

#[tokio::test]
async fn azure_app_registration_with_client_secret() {
    let registry = Arc::new(Registry::default());
    let cfg = azure_config(Duration::from_secs(3600));
    let aad = AzureAdStandin::start(cfg.clone(), registry.clone());
    let amw = azure_monitor(&registry);
    let conf = format!(
        "[prometheus]\nurl = {}\nauth_method = azure\n\n[prometheus_azure]\nidentity = client_secret\n\
         tenant_id = {}\nclient_id = {}\nclient_secret = {}\nauthority_host = {}\n",
        amw.url(),
        cfg.tenant_id,
        cfg.client_id,
        cfg.client_secret,
        aad.authority()
    );
    let a = spawn_aetos(Some(&conf), &[], &[]);
    tenancy_holds_end_to_end(&a).await;
    assert_eq!(aad.state.count("client_secret"), 1);
    assert!(amw.refused().is_empty(), "{:?}", amw.refused());
    assert!(amw
        .accepted()
        .iter()
        .all(|s| s.principal.as_deref() == Some(cfg.client_id.as_str())));
    let (st, h) = health(&a).await;
    assert_eq!(st, 200, "{h}");
    assert_eq!(h["reasons"][1]["details"]["method"], "azure");
    assert_no_secrets_in_logs(&a, &registry, &[&cfg.client_secret]);
}

#[tokio::test]
async fn azure_workload_identity_honours_azure_authority_host_and_refreshes() {
    let registry = Arc::new(Registry::default());
    // Tokens living 3 s: refreshed a few times, not per request.
    let cfg = azure_config(Duration::from_secs(3));
    let aad = AzureAdStandin::start(cfg.clone(), registry.clone());
    let amw = azure_monitor(&registry);
    let dir = common::tempdir::Dir::new("aks");
    let token_file = write(dir.path(), "azure-identity-token", &cfg.federated_token);
    // As the AKS workload identity webhook injects it.
    let env = [
        ("AZURE_CLIENT_ID", cfg.client_id.clone()),
        ("AZURE_TENANT_ID", cfg.tenant_id.clone()),
        ("AZURE_FEDERATED_TOKEN_FILE", token_file),
        ("AZURE_AUTHORITY_HOST", aad.authority()),
    ];
    let conf = format!("[prometheus]\nurl = {}\nauth_method = azure\n", amw.url());
    let a = spawn_aetos(Some(&conf), &[], &env);
    tenancy_holds_end_to_end(&a).await;
    let n = query_every_100ms_for(&a, Duration::from_secs(7)).await;
    let fetched = aad.state.count("client_assertion");
    assert!(
        (3..=5).contains(&fetched),
        "{fetched} token requests for {n} requests"
    );
    assert_eq!(aad.state.count("client_secret"), 0);
    assert!(amw.refused().is_empty(), "{:?}", amw.refused());
    assert_no_secrets_in_logs(&a, &registry, &[&cfg.federated_token]);
}

#[tokio::test]
async fn azure_managed_identity_from_a_configurable_imds_endpoint() {
    let registry = Arc::new(Registry::default());
    let cfg = azure_config(Duration::from_secs(86400));
    let imds = ImdsStandin::start(cfg.clone(), registry.clone());
    let amw = azure_monitor(&registry);
    let conf = format!(
        "[prometheus]\nurl = {}\nauth_method = azure\n\n[prometheus_azure]\nidentity = managed_identity\n\
         client_id = {}\nimds_endpoint = {}\n",
        amw.url(),
        cfg.managed_identity_client_id,
        imds.endpoint()
    );
    let a = spawn_aetos(Some(&conf), &[], &[]);
    tenancy_holds_end_to_end(&a).await;
    let calls = imds.state.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].status, 200);
    assert_eq!(
        calls[0].client_id.as_deref(),
        Some(cfg.managed_identity_client_id.as_str())
    );
    assert!(amw.refused().is_empty());
    assert_no_secrets_in_logs(&a, &registry, &[]);
}

// --------------------------------------------------------- bearer, tenant

#[tokio::test]
async fn openshift_service_account_token_file_is_read_again_after_rotation() {
    let TokenBackend {
        valid,
        prom,
        dir,
        token_file,
        aetos: a,
    } = behind_token_checking_proxy("sa-token-one", "sa");
    tenancy_holds_end_to_end(&a).await;
    // Kubernetes rotates the token: a new file swapped in, the old token revoked.
    *valid.lock().unwrap() = HashSet::from(["sa-token-two-rotated".to_owned()]);
    let next = write(dir.path(), "token.new", "sa-token-two-rotated\n");
    std::fs::rename(&next, &token_file).unwrap();
    tenancy_holds_end_to_end(&a).await;
    let accepted = prom.accepted();
    assert_eq!(
        accepted.first().unwrap().principal.as_deref(),
        Some("token:sa-token")
    );
    assert!(prom.refused().is_empty(), "{:?}", prom.refused());
    assert!(accepted
        .iter()
        .any(|s| s.header("authorization") == Some("Bearer sa-token-two-rotated")));
    let logs = a.logs();
    assert!(!logs.contains("sa-token-one") && !logs.contains("sa-token-two-rotated"));
}

#[tokio::test]
async fn tenant_header_is_per_project_for_scoped_callers_and_operator_for_privileged() {
    let registry = Arc::new(Registry::default());
    let mimir = PrometheusStandin::start(
        Check::Nothing,
        "/prometheus",
        &stack().prometheus_url(),
        registry.clone(),
    );
    let conf = format!(
        "[prometheus]\nurl = {}\ntenant_header = X-Scope-OrgID\ntenant = openstack-operators\n\
         tenant_per_project = true\n",
        mimir.url()
    );
    let a = spawn_aetos(Some(&conf), &[], &[]);
    // A caller's own X-Scope-OrgID is never forwarded.
    let r = common::client()
        .get(format!("{}/api/v1/query?query=up", a.url))
        .header("X-Auth-Token", token("demo-reader").await)
        .header("X-Scope-OrgID", "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tenancy_holds_end_to_end(&a).await;
    let seen = mimir.accepted();
    let tenants: Vec<&str> = seen
        .iter()
        .map(|s| s.header("x-scope-orgid").unwrap())
        .collect();
    assert_eq!(tenants[0], demo());
    assert!(!tenants.contains(&"someone-else"));
    assert!(tenants.contains(&"openstack-operators"), "{tenants:?}");
    for s in &seen {
        let t = s.header("x-scope-orgid").unwrap();
        assert!(t == demo() || t == "openstack-operators", "{t}");
        assert_eq!(
            s.headers
                .iter()
                .filter(|(k, _)| k == "x-scope-orgid")
                .count(),
            1
        );
    }
    drop(a);
    // A static Thanos tenant for everyone.
    let thanos = PrometheusStandin::start(Check::Nothing, "", &stack().prometheus_url(), registry);
    let conf = format!(
        "[prometheus]\nurl = {}\ntenant_header = THANOS-TENANT\ntenant = openstack\n",
        thanos.url()
    );
    let a = spawn_aetos(Some(&conf), &[], &[]);
    tenancy_holds_end_to_end(&a).await;
    assert!(thanos
        .accepted()
        .iter()
        .all(|s| s.header("thanos-tenant") == Some("openstack")));
}

// ------------------------------------------------------------------ Google

const GMP_PREFIX: &str = "/v1/projects/aetos-standin/location/global/prometheus";
const GMP_ACCOUNT: &str = "aetos-query@aetos-standin.iam.gserviceaccount.com";

fn gmp(registry: &Arc<Registry>) -> PrometheusStandin {
    PrometheusStandin::start(
        Check::IssuedBearer {
            audience: MONITORING_AUDIENCE.into(),
        },
        GMP_PREFIX,
        &stack().prometheus_url(),
        registry.clone(),
    )
}

fn gmp_conf(gmp: &PrometheusStandin) -> String {
    format!("[prometheus]\nurl = {}\nauth_method = google\n", gmp.url())
}

#[tokio::test]
async fn google_service_account_key_signs_a_jwt_and_refreshes() {
    let registry = Arc::new(Registry::default());
    let dir = common::tempdir::Dir::new("gcp-key");
    let key = TestKey::generate(dir.path(), GMP_ACCOUNT);
    let pem_body: String = key.pem.lines().nth(1).unwrap().to_owned();
    let oauth = GoogleOAuthStandin::start(key, Duration::from_secs(3), registry.clone());
    let key_file = write(
        dir.path(),
        "sa.json",
        &oauth
            .state
            .key
            .as_ref()
            .unwrap()
            .key_file(&oauth.token_uri()),
    );
    let backend = gmp(&registry);
    let a = spawn_aetos(
        Some(&gmp_conf(&backend)),
        &[],
        &[("GOOGLE_APPLICATION_CREDENTIALS", key_file)],
    );
    tenancy_holds_end_to_end(&a).await;
    let requests = query_every_100ms_for(&a, Duration::from_secs(5)).await;
    let calls = oauth.state.calls();
    assert!(calls.iter().all(|c| c.status == 200), "{calls:?}");
    // ~6 s of 3 s tokens: a few exchanges, never one per request.
    assert!(
        (2..=5).contains(&calls.len()),
        "{} exchanges for {requests} requests",
        calls.len()
    );
    assert!(backend.refused().is_empty(), "{:?}", backend.refused());
    assert!(backend
        .accepted()
        .iter()
        .all(|r| r.principal.as_deref() == Some(GMP_ACCOUNT) && r.path.starts_with(GMP_PREFIX)));
    let (st, h) = health(&a).await;
    assert_eq!(st, 200, "{h}");
    assert_eq!(h["reasons"][1]["details"]["method"], "google");
    assert!(a
        .logs()
        .contains(&format!("service account key of {GMP_ACCOUNT}")));
    assert_no_secrets_in_logs(&a, &registry, &[&pem_body]);
}

#[tokio::test]
async fn google_metadata_server_of_gke_workload_identity() {
    let registry = Arc::new(Registry::default());
    let md = GceMetadataStandin::start(GMP_ACCOUNT, Duration::from_secs(3600), registry.clone());
    let backend = gmp(&registry);
    let a = spawn_aetos(
        Some(&gmp_conf(&backend)),
        &[],
        &[("GCE_METADATA_HOST", md.host())],
    );
    tenancy_holds_end_to_end(&a).await;
    assert_eq!(md.state.issued(), 1, "{:?}", md.state.calls());
    assert!(md.state.calls().iter().all(|c| c.status == 200));
    assert!(backend.refused().is_empty(), "{:?}", backend.refused());
    assert!(a.logs().contains("metadata server http://127.0.0.1:"));
    assert_no_secrets_in_logs(&a, &registry, &[]);
    // A wrong key file stops aetos at start-up with a line naming it.
    let dir = common::tempdir::Dir::new("gcp-bad");
    let bad = write(dir.path(), "sa.json", r#"{"type":"authorized_user"}"#);
    let conf = write(
        dir.path(),
        "aetos.conf",
        &format!("[DEFAULT]\nauth_mode = noauth\n\n{}", gmp_conf(&backend)),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_aetos-api"))
        .env_clear()
        .env("GOOGLE_APPLICATION_CREDENTIALS", &bad)
        .args(["--config-file", &conf, "check-config"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&bad) && stderr.contains("authorized_user"),
        "{stderr}"
    );
}

// --------------------------------------------------------------------- HA

/// Restarts prometheus-ha-1 when dropped, so that a failing test does not
/// leave the shared stack's HA pair broken.
struct RestartHa1;
impl Drop for RestartHa1 {
    fn drop(&mut self) {
        stack().ctl(&["start-component", "prometheus-ha-1"]);
    }
}

/// The `replica` external label of the Prometheus that answered.
async fn replica(a: &Aetos, t: &str) -> String {
    let (st, v) = json_of(a.get("/api/v1/status/config", Some(t)).await).await;
    assert_eq!(st, 200, "{v}");
    let yaml = v["data"]["yaml"].as_str().unwrap();
    let line = yaml
        .lines()
        .find(|l| l.trim_start().starts_with("replica:"))
        .unwrap();
    line.split(':')
        .nth(1)
        .unwrap()
        .trim()
        .trim_matches('"')
        .to_owned()
}

#[tokio::test]
async fn ha_pair_round_robin_failover_without_failed_requests_and_rejoin() {
    let urls: Vec<String> = stack().env["prometheus_ha_urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_owned())
        .collect();
    let conf = format!(
        "[prometheus]\nurls = {}\nhealth_check_interval = 0.5\n",
        urls.join(", ")
    );
    let a = Arc::new(spawn_aetos(Some(&conf), &[], &[]));
    let admin = token("aetos").await;
    // Round robin: both replicas answer.
    let mut seen = HashSet::new();
    for _ in 0..6 {
        seen.insert(replica(&a, &admin).await);
    }
    assert_eq!(seen, HashSet::from(["1".to_owned(), "2".to_owned()]));

    // Steady load from a reader (GET) and the service user (form POST).
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let reader = token("demo-reader").await;
    let load = {
        let (a, stop, ok, failures) = (a.clone(), stop.clone(), ok.clone(), failures.clone());
        let admin = admin.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let r1 = a
                    .get("/api/v1/query?query=ceilometer_cpu", Some(&reader))
                    .await;
                let r2 = a.post_form("/api/v1/query", "query=up", Some(&admin)).await;
                for r in [r1, r2] {
                    let st = r.status().as_u16();
                    let body = r.text().await.unwrap_or_default();
                    if st == 200 {
                        ok.fetch_add(1, Ordering::SeqCst);
                    } else {
                        failures.lock().unwrap().push(format!("{st}: {body}"));
                    }
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };
    // The load is running (some requests answered) before the replica goes.
    let deadline = Instant::now() + Duration::from_secs(30);
    while ok.load(Ordering::SeqCst) < 4 {
        assert!(Instant::now() < deadline, "the load never got answers");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _restart = RestartHa1;
    tokio::task::spawn_blocking(|| stack().ctl(&["stop-component", "prometheus-ha-1"]))
        .await
        .unwrap();
    let during = ok.load(Ordering::SeqCst);
    let state = |h: &Value, port: &str| {
        h["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["details"]["backend"].as_str().unwrap().contains(port))
            .map(|r| r["details"]["ready"].as_bool().unwrap())
            .unwrap()
    };
    let port1 = url::Url::parse(&urls[0])
        .unwrap()
        .port()
        .unwrap()
        .to_string();
    let port2 = url::Url::parse(&urls[1])
        .unwrap()
        .port()
        .unwrap()
        .to_string();
    // Until the health check reports the stopped one down and the load has
    // kept running through the failover (20 more answers).
    let deadline = Instant::now() + Duration::from_secs(30);
    let h = loop {
        let (st, h) = health(&a).await;
        if !state(&h, &port1) && ok.load(Ordering::SeqCst) > during + 20 {
            break (st, h);
        }
        assert!(
            Instant::now() < deadline,
            "replica 1 not reported down, or the load stalled ({} answers, {during} before): {h}",
            ok.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The stopped one is reported down, the other up; still healthy overall.
    let (st, h) = h;
    assert_eq!(st, 200, "{h}");
    assert!(state(&h, &port2), "{h}");
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "failed requests during failover: {failures:?}\n{}",
        a.logs()
    );
    assert!(
        ok.load(Ordering::SeqCst) > during + 20,
        "the load kept running"
    );
    // Only replica 2 answers now.
    for _ in 0..4 {
        assert_eq!(replica(&a, &admin).await, "2");
    }

    // Restarted: the background health check brings it back.
    tokio::task::spawn_blocking(|| stack().ctl(&["start-component", "prometheus-ha-1"]))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut back = false;
    while Instant::now() < deadline && !back {
        back = replica(&a, &admin).await == "1";
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(back, "replica 1 did not rejoin:\n{}", a.logs());
    let logs = a.logs();
    assert!(
        logs.contains("backend is down, taken out of rotation"),
        "{logs}"
    );
    assert!(logs.contains("backend is up again"), "{logs}");
    let (st, h) = health(&a).await;
    assert_eq!(st, 200);
    assert!(state(&h, &port1) && state(&h, &port2), "{h}");
}

// ---------------------------------------------------- signing proxy flags

/// The signing proxy's flags, as its users start it: `--prometheus-url`,
/// a free `--port`, `--log-level info` and the `--azure-*` ids, with a
/// client secret when given.
fn proxy_flags(amw: &PrometheusStandin, cfg: &AzureConfig, secret: Option<&str>) -> Vec<String> {
    let mut args = vec![
        "--prometheus-url".to_owned(),
        amw.url(),
        "--port".to_owned(),
        common::free_port().to_string(),
        "--log-level".to_owned(),
        "info".to_owned(),
        "--azure-tenant-id".to_owned(),
        cfg.tenant_id.clone(),
        "--azure-client-id".to_owned(),
        cfg.client_id.clone(),
    ];
    if let Some(s) = secret {
        args.extend(["--azure-client-secret".to_owned(), s.to_owned()]);
    }
    args
}

#[tokio::test]
async fn signing_proxy_starts_from_flags_alone_and_forwards_unauthenticated_requests() {
    let registry = Arc::new(Registry::default());
    let cfg = azure_config(Duration::from_secs(3600));
    let aad = AzureAdStandin::start(cfg.clone(), registry.clone());
    let amw = azure_monitor(&registry);
    let a = spawn_aetos(
        None,
        &proxy_flags(&amw, &cfg, Some(&cfg.client_secret)),
        &[("AZURE_AUTHORITY_HOST", aad.authority())],
    );
    // No token at all: forwarded unchanged (every project), signed for Azure.
    let (st, v) = json_of(a.get("/api/v1/query?query=ceilometer_cpu", None).await).await;
    assert_eq!(st, 200, "{v}\n{}", a.logs());
    let projects: HashSet<String> = label_values(&v, "project").into_iter().collect();
    assert!(
        projects.contains(&demo()) && projects.contains(&other()),
        "{projects:?}"
    );
    let r = common::client()
        .post(format!("{}/api/v1/query", a.url))
        .form(&[("query", "sum(up)")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = amw.accepted();
    assert_eq!(
        seen[0].query, "query=ceilometer_cpu",
        "not forwarded unchanged"
    );
    assert_eq!(seen[1].body, "query=sum%28up%29");
    assert_eq!(aad.state.count("client_secret"), 1);
    let logs = a.logs();
    assert!(
        logs.contains("unauthenticated_passthrough = true"),
        "{logs}"
    );
    // The access-log line of each request says how it was let through.
    assert!(logs.contains("\"passthrough\""), "{logs}");
    // --log-level info: no debug lines.
    assert!(!logs.contains("DEBUG"), "{logs}");
    assert_no_secrets_in_logs(&a, &registry, &[&cfg.client_secret]);
    drop(a);

    // Without a secret, on AKS: workload identity from the injected variables.
    let dir = common::tempdir::Dir::new("aks-flags");
    let token_file = write(dir.path(), "token", &cfg.federated_token);
    let a = spawn_aetos(
        None,
        &proxy_flags(&amw, &cfg, None),
        &[
            ("AZURE_AUTHORITY_HOST", aad.authority()),
            ("AZURE_FEDERATED_TOKEN_FILE", token_file),
        ],
    );
    let (st, v) = json_of(a.get("/api/v1/query?query=up", None).await).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(aad.state.count("client_assertion"), 1);
}

#[tokio::test]
async fn passthrough_from_the_configuration_file_is_refused_by_default() {
    // Without the option, the same unauthenticated request is a 401.
    let registry = Arc::new(Registry::default());
    let prom = PrometheusStandin::start(Check::Nothing, "", &stack().prometheus_url(), registry);
    let conf = format!("[prometheus]\nurl = {}\n", prom.url());
    let a = spawn_aetos(Some(&conf), &[], &[]);
    assert_eq!(a.get("/api/v1/query?query=up", None).await.status(), 401);
    drop(a);
    let a = spawn_aetos(
        Some(&format!(
            "{conf}\n[api]\nunauthenticated_passthrough = true\n"
        )),
        &[],
        &[],
    );
    let (st, v) = json_of(a.get("/api/v1/query?query=up", None).await).await;
    assert_eq!(st, 200, "{v}");
    assert!(prom.accepted().iter().all(|s| s.query == "query=up"));
}

// ------------------------------------------------------------ safe paths

/// Label "names" that try to leave `/api/v1/label/<name>/values`, as sent
/// on the wire (no client would send most of them as written): each must
/// be refused by aetos with Prometheus' `invalid label name` (400), never
/// reach the backend.
const LABEL_PATH_TRICKS: &[&str] = &[
    "..",
    ".",
    "%2e%2e",
    "%2E%2e",
    ".%2e",
    "%2e.",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2fstolen",
    "..%2f..%2f..%2fstolen",
    "..%2F..%2F..%2Fapi%2Fv1%2Fadmin%2Ftsdb%2Fsnapshot",
    "%2f",
    "job%2f..",
    "\\",
    "..\\..\\..\\stolen",
    "\\..\\stolen",
    "%5c",
    "..%5c..%5c..%5cstolen",
    "%5C..%5C..%5Cstolen",
    "%00",
    "job%00",
    "job%0d%0aX-Injected:%20yes",
    "%C3%A9t%C3%A9",
    "été",
    "%ff",
    "",
    "%",
    "%zz",
    "job%3Fmatch[]=up",
    "job%23frag",
    "job;x",
    "9job",
    "job-name",
    "%40evil.example",
];

/// Paths that are not one label-values segment at all: no such route (404).
const NOT_A_ROUTE: &[&str] = &[
    "/api/v1/label/../../../stolen/values",
    "/api/v1/label/x/../../../stolen/values",
    "/api/v1/label/%2e%2e/../values/values",
];

/// Proves, for one backend kind configured with a base URL below `prefix`,
/// that only `<prefix>/api/v1/label/<valid name>/values` is ever asked of
/// the backend: every trick is answered 400/404 by aetos itself (for a
/// privileged and a scoped caller, with and without the root path), valid
/// names (also percent-encoded) reach exactly their path, and a redirect of
/// the backend, relative or to another server, is not followed: 502 to the
/// caller, and no request (with or without credentials) goes there.
async fn label_paths_stay_below(a: &Aetos, backend: &PrometheusStandin, prefix: &str) {
    let tokens = [token("aetos").await, token("demo-reader").await];
    let before = backend.seen().len();
    let long = "a".repeat(2000);
    let tricks = LABEL_PATH_TRICKS.iter().copied().chain([long.as_str()]);
    for trick in tricks {
        for root in ["/prometheus", ""] {
            for t in &tokens {
                let target = format!("{root}/api/v1/label/{trick}/values");
                let r = common::raw::get(a.port, &target, t).await;
                assert_eq!(r.status, 400, "{target}: {r:?}\n{}", a.logs());
                if !trick.is_ascii() {
                    // Raw UTF-8 in the request line: the HTTP parser refuses it.
                    continue;
                }
                let v = r.json();
                assert_eq!(v["status"], "error", "{target}: {v}");
                assert_eq!(v["errorType"], "bad_data", "{target}: {v}");
                let why = v["error"].as_str().unwrap();
                assert!(why.starts_with("invalid label name: "), "{target}: {why}");
                assert!(why.len() < 100, "{target}: the whole name was quoted");
            }
        }
    }
    for path in NOT_A_ROUTE {
        let r = common::raw::get(a.port, &format!("/prometheus{path}"), &tokens[0]).await;
        assert_eq!(r.status, 404, "{path}: {r:?}");
    }
    // Not authenticated: 401 first, as for any API request.
    let r = common::raw::get(
        a.port,
        "/prometheus/api/v1/label/%2e%2e/values",
        "bad-token",
    )
    .await;
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(
        backend.seen().len(),
        before,
        "a trick reached the backend: {:?}",
        &backend.seen()[before..]
    );
    // Valid names, plain and percent-encoded, for both callers.
    for t in &tokens {
        for (name, sent) in [
            ("job", "job"),
            ("%5F%5Fname%5F%5F", "__name__"),
            ("U__http_2e_status", "U__http_2e_status"),
        ] {
            let (st, v) = json_of(
                a.get(&format!("/api/v1/label/{name}/values"), Some(t))
                    .await,
            )
            .await;
            assert_eq!(st, 200, "{name}: {v}");
            assert_eq!(v["status"], "success", "{name}: {v}");
            let last = backend.seen().last().cloned().unwrap();
            assert_eq!(last.path, format!("{prefix}/api/v1/label/{sent}/values"));
        }
    }
    let (st, v) = json_of(a.get("/api/v1/label/job/values", Some(&tokens[0])).await).await;
    assert_eq!(st, 200, "{v}");
    assert!(
        label_values_list(&v).contains(&"exporter".to_owned()),
        "real data from the backend: {v}"
    );
    // A redirect out of the prefix, then to another server: not followed.
    let elsewhere = common::Recorder::start();
    for location in [
        standins::backend::STOLEN_PATH.to_owned(),
        format!(
            "http://127.0.0.1:{}/steal/api/v1/label/job/values",
            elsewhere.port
        ),
    ] {
        backend.redirect_to(&location);
        for t in &tokens {
            let (st, v) = json_of(
                a.get(
                    &format!("/api/v1/label/{}/values", standins::backend::REDIRECT_PROBE),
                    Some(t),
                )
                .await,
            )
            .await;
            assert_eq!(st, 502, "{location}: {v}");
            assert_eq!(v["errorType"], "unavailable", "{v}");
            assert!(v["error"].as_str().unwrap().contains("302"), "{v}");
        }
    }
    assert!(
        elsewhere.take().is_empty(),
        "a redirect was followed to another server"
    );
    assert!(a
        .logs()
        .contains("backend answered a redirect; not followed"));
    // Everything the backend ever saw from this aetos: the valid paths only,
    // every one with valid credentials.
    let allowed: Vec<String> = [
        "job",
        "__name__",
        "U__http_2e_status",
        standins::backend::REDIRECT_PROBE,
    ]
    .iter()
    .map(|n| format!("{prefix}/api/v1/label/{n}/values"))
    .collect();
    for s in &backend.seen()[before..] {
        assert!(
            allowed.contains(&s.path),
            "the backend was asked {}",
            s.path
        );
        assert!(s.refused.is_none(), "{s:?}");
        assert!(s.header("x-auth-token").is_none());
    }
}

/// The values of a label-values answer.
fn label_values_list(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

const WS_PREFIX: &str = "/workspaces/ws-1";

#[tokio::test]
async fn label_paths_stay_below_the_prefix_without_backend_auth() {
    let registry = Arc::new(Registry::default());
    let backend = PrometheusStandin::start(
        Check::Nothing,
        WS_PREFIX,
        &stack().prometheus_url(),
        registry,
    );
    let conf = format!("[prometheus]\nurl = {}\n", backend.url());
    let a = spawn_aetos(Some(&conf), &[], &[]);
    label_paths_stay_below(&a, &backend, WS_PREFIX).await;
    assert!(backend
        .seen()
        .iter()
        .all(|s| s.header("authorization").is_none()));
}

#[tokio::test]
async fn label_paths_stay_below_the_prefix_with_basic_auth() {
    let registry = Arc::new(Registry::default());
    let backend = PrometheusStandin::start(
        Check::Nothing,
        WS_PREFIX,
        &stack().prometheus_url(),
        registry,
    );
    let conf = format!(
        "[prometheus]\nurl = {}/\nusername = aetos-reader\npassword = basic-Secret-42\n",
        backend.url()
    );
    let a = spawn_aetos(Some(&conf), &[], &[]);
    label_paths_stay_below(&a, &backend, WS_PREFIX).await;
    // base64("aetos-reader:basic-Secret-42")
    let basic = "Basic YWV0b3MtcmVhZGVyOmJhc2ljLVNlY3JldC00Mg==";
    assert!(backend
        .seen()
        .iter()
        .all(|s| s.header("authorization") == Some(basic)));
    assert!(!a.logs().contains("basic-Secret-42"));
}

#[tokio::test]
async fn label_paths_stay_below_the_prefix_with_a_bearer_token_file() {
    let b = behind_token_checking_proxy("sa-token-paths", "sa-paths");
    label_paths_stay_below(&b.aetos, &b.prom, "/openshift-monitoring").await;
}

#[tokio::test]
async fn label_paths_stay_below_the_workspace_with_sigv4() {
    let registry = Arc::new(Registry::default());
    registry.add_aws_key(
        "AKIAPATHSSTANDIN0001",
        standins::AwsKey {
            secret: "paths-user-secret".into(),
            session_token: None,
            expires: None,
            principal: "paths-user".into(),
        },
    );
    let amp = PrometheusStandin::start(
        Check::SigV4 {
            region: REGION.into(),
            service: "aps".into(),
            principal: Some("paths-user".into()),
        },
        "/workspaces/ws-paths",
        &stack().prometheus_url(),
        registry.clone(),
    );
    let conf = format!("[prometheus]\nurl = {}\nauth_method = sigv4\n", amp.url());
    let a = spawn_aetos(
        Some(&conf),
        &[],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAPATHSSTANDIN0001".into()),
            ("AWS_SECRET_ACCESS_KEY", "paths-user-secret".into()),
            ("AWS_REGION", REGION.into()),
        ],
    );
    label_paths_stay_below(&a, &amp, "/workspaces/ws-paths").await;
    assert_no_secrets_in_logs(&a, &registry, &[]);
}

#[tokio::test]
async fn label_paths_stay_below_the_prefix_with_azure() {
    let registry = Arc::new(Registry::default());
    let cfg = azure_config(Duration::from_secs(3600));
    let aad = AzureAdStandin::start(cfg.clone(), registry.clone());
    let amw = PrometheusStandin::start(
        Check::IssuedBearer {
            audience: PROMETHEUS_RESOURCE.into(),
        },
        WS_PREFIX,
        &stack().prometheus_url(),
        registry.clone(),
    );
    let conf = format!(
        "[prometheus]\nurl = {}\nauth_method = azure\n\n[prometheus_azure]\nidentity = client_secret\n\
         tenant_id = {}\nclient_id = {}\nclient_secret = {}\nauthority_host = {}\n",
        amw.url(),
        cfg.tenant_id,
        cfg.client_id,
        cfg.client_secret,
        aad.authority()
    );
    let a = spawn_aetos(Some(&conf), &[], &[]);
    label_paths_stay_below(&a, &amw, WS_PREFIX).await;
    assert_no_secrets_in_logs(&a, &registry, &[&cfg.client_secret]);
}

#[tokio::test]
async fn label_paths_stay_below_the_prefix_with_google() {
    let registry = Arc::new(Registry::default());
    let md = GceMetadataStandin::start(GMP_ACCOUNT, Duration::from_secs(3600), registry.clone());
    let backend = gmp(&registry);
    let a = spawn_aetos(
        Some(&gmp_conf(&backend)),
        &[],
        &[("GCE_METADATA_HOST", md.host())],
    );
    label_paths_stay_below(&a, &backend, GMP_PREFIX).await;
    assert_no_secrets_in_logs(&a, &registry, &[]);
}

#[tokio::test]
async fn label_paths_stay_below_the_prefix_with_a_tenant_header() {
    let registry = Arc::new(Registry::default());
    let mimir = PrometheusStandin::start(
        Check::Nothing,
        "/prometheus",
        &stack().prometheus_url(),
        registry,
    );
    let conf = format!(
        "[prometheus]\nurl = {}\ntenant_header = X-Scope-OrgID\ntenant = openstack-operators\n\
         tenant_per_project = true\n",
        mimir.url()
    );
    let a = spawn_aetos(Some(&conf), &[], &[]);
    label_paths_stay_below(&a, &mimir, "/prometheus").await;
    assert!(mimir.seen().iter().all(|s| {
        let t = s.header("x-scope-orgid");
        t == Some("openstack-operators") || t == Some(demo().as_str())
    }));
}
