//! Loading and validation of the backend options: `[prometheus]` urls,
//! auth_method, bearer file and tenant header, `[prometheus_aws]`,
//! `[prometheus_azure]`, `[api] unauthenticated_passthrough`, and options
//! set on the command line.

use std::path::PathBuf;

use super::*;

fn write_conf(text: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("aetos-backend-conf-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let f = dir.join("aetos.conf");
    std::fs::write(&f, format!("[DEFAULT]\nauth_mode = noauth\n{text}")).expect("write");
    (dir, f)
}

fn load_text(text: &str) -> Result<(Config, Vec<Warning>), ConfigError> {
    let (dir, f) = write_conf(text);
    let r = load(&[f], &[]);
    let _ = std::fs::remove_dir_all(dir);
    r
}

fn ok(text: &str) -> (Config, Vec<Warning>) {
    load_text(text).unwrap_or_else(|e| panic!("expected to load, got: {e}"))
}

fn err(text: &str) -> ConfigError {
    match load_text(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn auth_method_auto_keeps_upstream_basic_and_infers_bearer_file() {
    let (c, _) = ok("");
    assert_eq!(c.prometheus.auth_method, BackendAuthMethod::None);
    let (c, _) = ok("[prometheus]\nusername = u\npassword = p\n");
    assert_eq!(c.prometheus.auth_method, BackendAuthMethod::Basic);
    let (c, _) = ok("[prometheus]\nusername = u\n");
    assert_eq!(c.prometheus.auth_method, BackendAuthMethod::None);
    let token = std::env::temp_dir().join(format!("aetos-token-{}", uuid::Uuid::new_v4()));
    std::fs::write(&token, "t").unwrap();
    let (c, _) = ok(&format!(
        "[prometheus]\nbearer_token_file = {}\n",
        token.display()
    ));
    assert_eq!(c.prometheus.auth_method, BackendAuthMethod::BearerFile);
    let e = err(&format!(
        "[prometheus]\nusername = u\npassword = p\nbearer_token_file = {}\n",
        token.display()
    ));
    assert_eq!(
        (e.section.as_str(), e.option.as_str()),
        ("prometheus", "auth_method")
    );
    std::fs::remove_file(&token).unwrap();
}

#[test]
fn each_backend_validation_error_names_section_and_option() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[prometheus]\nauth_method = basic\nusername = u\n",
            "prometheus",
            "password",
        ),
        (
            "[prometheus]\nauth_method = bearer_file\n",
            "prometheus",
            "bearer_token_file",
        ),
        (
            "[prometheus]\nauth_method = bearer_file\nbearer_token_file = /nonexistent/token\n",
            "prometheus",
            "bearer_token_file",
        ),
        (
            "[prometheus]\nauth_method = kerberos\n",
            "prometheus",
            "auth_method",
        ),
        (
            "[prometheus]\nurls = http://a:9090, ftp://b\n",
            "prometheus",
            "urls",
        ),
        (
            "[prometheus]\nurls = http://u:p@a:9090\n",
            "prometheus",
            "urls",
        ),
        (
            "[prometheus]\nhealth_check_path = ready\n",
            "prometheus",
            "health_check_path",
        ),
        (
            "[prometheus]\nhealth_check_interval = 0\n",
            "prometheus",
            "health_check_interval",
        ),
        (
            "[prometheus]\ntenant_header = X-Scope-OrgID\n",
            "prometheus",
            "tenant",
        ),
        (
            "[prometheus]\ntenant_header = X-Scope-OrgID\ntenant_per_project = true\n",
            "prometheus",
            "tenant",
        ),
        (
            "[prometheus]\ntenant_header = X Scope\ntenant = a\n",
            "prometheus",
            "tenant_header",
        ),
        (
            "[prometheus]\nauth_method = sigv4\n[prometheus_aws]\naccess_key_id = AKID\n",
            "prometheus_aws",
            "secret_access_key",
        ),
        (
            "[prometheus]\nauth_method = sigv4\n[prometheus_aws]\ncredential_source = static\n",
            "prometheus_aws",
            "access_key_id",
        ),
        (
            "[prometheus]\nauth_method = sigv4\n[prometheus_aws]\nassume_role_arn = role/x\n",
            "prometheus_aws",
            "assume_role_arn",
        ),
        (
            "[prometheus]\nauth_method = sigv4\n[prometheus_aws]\nrole_duration = 60\n",
            "prometheus_aws",
            "role_duration",
        ),
        (
            "[prometheus]\nauth_method = sigv4\n[prometheus_aws]\nservice =\n",
            "prometheus_aws",
            "service",
        ),
        (
            "[prometheus_aws]\nsts_endpoint = sts.local\n",
            "prometheus_aws",
            "sts_endpoint",
        ),
        (
            "[prometheus]\nauth_method = azure\n[prometheus_azure]\ntenant_id = ../x\n",
            "prometheus_azure",
            "tenant_id",
        ),
        (
            "[prometheus_azure]\nidentity = certificate\n",
            "prometheus_azure",
            "identity",
        ),
        (
            "[prometheus_azure]\nimds_endpoint =\n",
            "prometheus_azure",
            "imds_endpoint",
        ),
        ("[prometheus_azure]\nscope =\n", "prometheus_azure", "scope"),
        (
            "[prometheus]\nauth_method = google\n[prometheus_google]\ncredentials_file = /nonexistent/sa.json\n",
            "prometheus_google",
            "credentials_file",
        ),
        (
            "[prometheus_google]\nservice_account = a/../b\n",
            "prometheus_google",
            "service_account",
        ),
        (
            "[prometheus_google]\nidentity = user\n",
            "prometheus_google",
            "identity",
        ),
        ("[prometheus_google]\nscope =\n", "prometheus_google", "scope"),
        (
            "[prometheus_aws]\ncredential_source = imds\n",
            "prometheus_aws",
            "credential_source",
        ),
        (
            "[prometheus_aws]\nec2_metadata_endpoint = 169.254.169.254\n",
            "prometheus_aws",
            "ec2_metadata_endpoint",
        ),
        (
            "[api]\nunauthenticated_passthrough = perhaps\n",
            "api",
            "unauthenticated_passthrough",
        ),
        ("[api]\ntls_cert_file = /etc/passwd\n", "api", "tls_key_file"),
        ("[api]\ntls_key_file = /etc/passwd\n", "api", "tls_cert_file"),
        (
            "[api]\ntls_cert_file = /nonexistent/c\ntls_key_file = /etc/passwd\n",
            "api",
            "tls_cert_file",
        ),
        ("[api]\ntls_client_ca_file = /etc/passwd\n", "api", "tls_client_ca_file"),
        ("[api]\ninternal_listen = 9191\n", "api", "internal_listen"),
        ("[api]\ninternal_listen = 127.0.0.1:\n", "api", "internal_listen"),
        ("[api]\ninternal_listen = 127.0.0.1:0\n", "api", "internal_listen"),
        ("[api]\ninternal_listen = :9191\n", "api", "internal_listen"),
        ("[api]\ninternal_listen = ::1:9191\n", "api", "internal_listen"),
        ("[api]\ninternal_listen = http://h:9191\n", "api", "internal_listen"),
    ];
    for (text, section, option) in cases {
        let e = err(text);
        assert_eq!(
            (e.section.as_str(), e.option.as_str()),
            (*section, *option),
            "{text}\n→ {e}"
        );
    }
}

#[test]
fn secrets_of_the_backend_options_never_show() {
    let (c, _) = ok(
        "[prometheus_aws]\naccess_key_id = AKID\nsecret_access_key = aws-s3cr3t\nsession_token = tok3n\n\
         [prometheus_azure]\nclient_secret = az-s3cr3t\n",
    );
    let debug = format!("{c:?}");
    for s in ["aws-s3cr3t", "tok3n", "az-s3cr3t"] {
        assert!(!debug.contains(s), "{s} in Debug output");
    }
    assert_eq!(
        c.prometheus_aws
            .secret_access_key
            .as_ref()
            .map(Secret::expose),
        Some("aws-s3cr3t")
    );
}

#[test]
fn urls_replace_url_and_keep_each_prefix() {
    let (c, w) =
        ok("[prometheus]\nurl = http://single:9090\nurls = http://a:9092, https://b:9093/thanos\n");
    let urls: Vec<String> = c
        .prometheus
        .base_urls()
        .iter()
        .map(|u| u.to_string())
        .collect();
    assert_eq!(urls, ["http://a:9092/", "https://b:9093/thanos/"]);
    assert!(c.prometheus.uses_tls());
    assert!(w
        .iter()
        .any(|w| w.0 == "[prometheus] url: ignored because urls is set"));
    let (c, _) =
        ok("[prometheus]\nurl = https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1\n");
    assert_eq!(
        c.prometheus.base_urls()[0].as_str(),
        "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/"
    );
}

#[test]
fn tenant_options_and_their_warnings() {
    let (c, _) = ok("[prometheus]\ntenant_header = X-Scope-OrgID\ntenant = ops|demo\ntenant_per_project = true\n");
    assert_eq!(c.prometheus.tenant_header.as_deref(), Some("X-Scope-OrgID"));
    assert_eq!(c.prometheus.tenant.as_deref(), Some("ops|demo"));
    assert!(c.prometheus.tenant_per_project);
    let (_, w) = ok("[prometheus]\ntenant = lonely\n");
    assert!(w.iter().any(|w| w
        .0
        .contains("tenant: ignored because tenant_header is not set")));
}

#[test]
fn passthrough_does_not_need_keystone_options() {
    let (dir, f) = write_conf("");
    // keystone mode without [keystone_authtoken] fails…
    std::fs::write(&f, "[DEFAULT]\nauth_mode = keystone\n").unwrap();
    assert_eq!(
        load(std::slice::from_ref(&f), &[]).unwrap_err().option,
        "auth_url"
    );
    // …but not in pass-through mode, where Keystone is not used.
    std::fs::write(
        &f,
        "[DEFAULT]\nauth_mode = keystone\n[api]\nunauthenticated_passthrough = true\n",
    )
    .unwrap();
    let (c, _) = load(&[f], &[]).unwrap();
    assert!(c.api.unauthenticated_passthrough);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn command_line_overrides_win_over_files_and_keep_dollars() {
    let (dir, f) = write_conf("[api]\nport = 8080\n[prometheus]\nurl = http://file:9090\n");
    let overrides: Vec<Override> = vec![
        ("api", "port", "9999".into()),
        ("prometheus", "url", "http://flag:9090/prefix".into()),
        ("prometheus", "auth_method", "azure".into()),
        ("prometheus_azure", "client_secret", "a$b${c}".into()),
    ];
    let (c, _) = load_with_overrides(std::slice::from_ref(&f), &[], &overrides).unwrap();
    assert_eq!(c.api.port, 9999);
    assert_eq!(c.prometheus.base_url().as_str(), "http://flag:9090/prefix/");
    assert_eq!(c.prometheus.auth_method, BackendAuthMethod::Azure);
    assert_eq!(
        c.prometheus_azure
            .client_secret
            .as_ref()
            .map(Secret::expose),
        Some("a$b${c}")
    );
    // Bad values are reported like file values.
    let e = load_with_overrides(
        std::slice::from_ref(&f),
        &[],
        &[("api", "port", "http".into())],
    )
    .unwrap_err();
    assert_eq!((e.section.as_str(), e.option.as_str()), ("api", "port"));
    assert!(e.problem.contains("<command line>"), "{e}");
    let e =
        load_with_overrides(&[f], &[], &[("prometheus", "url", "http://a\nb".into())]).unwrap_err();
    assert_eq!(e.option, "url");
    // No file at all: only the flags and the defaults.
    let (c, _) = load_with_overrides(
        &[],
        &[],
        &[
            ("prometheus", "url", "http://only:1".into()),
            ("api", "unauthenticated_passthrough", "true".into()),
        ],
    )
    .unwrap();
    assert_eq!(c.prometheus.base_url().as_str(), "http://only:1/");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_chosen_backend_auth_carries_its_options_and_the_tenant_is_checked_once() {
    let (c, _) = ok("[prometheus]\nusername = u\npassword = p\n");
    assert_eq!(
        c.backend_auth,
        BackendAuthConfig::Basic {
            username: "u".into(),
            password: Secret::new("p"),
        }
    );
    assert_eq!(c.backend_auth.method(), c.prometheus.auth_method);
    assert!(c.backend_tenant.is_none());
    let (c, _) = ok("[prometheus]\nauth_method = azure\n[prometheus_azure]\ntenant_id = t\n");
    match &c.backend_auth {
        BackendAuthConfig::Azure(a) => assert_eq!(a.tenant_id.as_deref(), Some("t")),
        other => panic!("expected azure, got {other:?}"),
    }
    let (c, _) = ok("[prometheus]\ntenant_header = X-Scope-OrgID\ntenant = ops\n");
    let t = c.backend_tenant.expect("a tenant header");
    assert_eq!(
        (t.header.as_str(), t.tenant.to_str().ok(), t.per_project),
        ("x-scope-orgid", Some("ops"), false)
    );
}

#[test]
fn internal_listen_is_off_by_default_and_takes_host_port() {
    assert_eq!(ok("").0.api.internal_listen, None);
    for v in [
        "127.0.0.1:9191",
        "0.0.0.0:9191",
        "[::1]:9191",
        "localhost:1",
    ] {
        let (c, _) = ok(&format!("[api]\ninternal_listen = {v}\n"));
        assert_eq!(c.api.internal_listen.as_deref(), Some(v));
    }
}

#[test]
fn dns_and_dnssrv_entries_are_discovered_not_static() {
    let (c, _) = ok("[prometheus]\nurls = http://a:9092, dns+prom.svc:9090, \
         dnssrv+https://_web._tcp.prom.svc/prefix\ndns_server = 127.0.0.1:5353\n");
    let p = &c.prometheus;
    assert_eq!(p.base_urls().len(), 1);
    assert_eq!(p.base_urls()[0].as_str(), "http://a:9092/");
    let d: Vec<(bool, String)> = p
        .discovered
        .iter()
        .map(|d| (d.srv, d.template.to_string()))
        .collect();
    assert_eq!(
        d,
        [
            (false, "http://prom.svc:9090/".to_owned()),
            (true, "https://_web._tcp.prom.svc/prefix/".to_owned())
        ]
    );
    assert_eq!(p.discovered[0].entry, "dns+prom.svc:9090");
    assert!(p.uses_tls());
    assert_eq!(p.dns_server, Some("127.0.0.1:5353".parse().unwrap()));
    assert_eq!(p.dns_refresh_interval, 30.0);

    // `url` may be one too; then there is no static backend at all.
    let (c, _) = ok("[prometheus]\nurl = dns+http://prom.svc:9090/p\ndns_server = ::1\n");
    assert!(c.prometheus.base_urls().is_empty());
    assert_eq!(c.prometheus.discovered.len(), 1);
    assert_eq!(c.prometheus.dns_server, Some("[::1]:53".parse().unwrap()));
    // `urls` replaces `url`, discovered or not.
    let (c, _) = ok("[prometheus]\nurl = dns+http://x:1\nurls = http://a:9092\n");
    assert!(c.prometheus.discovered.is_empty());
}

#[test]
fn bad_discovered_entries_name_the_option() {
    for (text, option, says) in [
        (
            "urls = dnssrv+_web._tcp.x:9090",
            "urls",
            "takes its ports from the SRV records",
        ),
        (
            "urls = dns+ftp://x:21",
            "urls",
            "the scheme must be http or https",
        ),
        (
            "url = dns+http://u:p@x:1",
            "url",
            "must not contain credentials",
        ),
        ("urls = dns+http://x:1/?a=b", "urls", "no query or fragment"),
        (
            "dns_server = resolver.example",
            "dns_server",
            "not an IP address",
        ),
    ] {
        let e = err(&format!("[prometheus]\n{text}\n"));
        let shown = e.to_string();
        assert!(
            shown.contains(option) && shown.contains(says),
            "{text}: {shown}"
        );
    }
}
