//! Behaviour of loading, warnings, validation and the generated files.
//!
//! Set `AETOS_BLESS=1` to rewrite `etc/aetos/aetos.conf.sample` and the
//! generated part of `doc/source/configuration/index.rst` instead of
//! failing when they differ from the option table.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::options::{Support, OPTIONS};
use super::resolve::{Resolver, Sources};
use super::*;
use url::Url;

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("aetos-config-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, text).expect("write file");
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Minimal keystone credentials so that keystone-mode files load.
const CREDS: &str = "[keystone_authtoken]\nauth_url = http://keystone.example/identity\nauth_type = password\n\
username = aetos\npassword = pw\nuser_domain_name = Default\nproject_name = service\nproject_domain_name = Default\n";

fn load_text(text: &str) -> Result<(Config, Vec<Warning>), ConfigError> {
    let dir = TempDir::new();
    let f = dir.write("aetos.conf", text);
    load(&[f], &[])
}

fn load_ok(text: &str) -> (Config, Vec<Warning>) {
    match load_text(text) {
        Ok(x) => x,
        Err(e) => panic!("expected to load, got: {e}"),
    }
}

fn load_err(text: &str) -> ConfigError {
    match load_text(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

fn noauth(text: &str) -> String {
    format!("[DEFAULT]\nauth_mode = noauth\n{text}")
}

fn texts(warnings: &[Warning]) -> Vec<&str> {
    warnings.iter().map(|w| w.0.as_str()).collect()
}

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn bless() -> bool {
    std::env::var_os("AETOS_BLESS").is_some_and(|v| v == "1")
}

// ------------------------------------------------------------ generated files

#[test]
fn committed_sample_matches_the_generated_one() {
    let path = repo_file("etc/aetos/aetos.conf.sample");
    let generated = sample_config();
    if bless() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, &generated).expect("write sample");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "etc/aetos/aetos.conf.sample differs from sample_config(); regenerate it with \
         `AETOS_BLESS=1 cargo test --lib config::tests::committed_sample` (or `aetos-api genconfig`)"
    );
}

const BEGIN: &str = ".. BEGIN GENERATED REFERENCE (do not edit; AETOS_BLESS=1 cargo test --lib config regenerates it)\n";
const END: &str = ".. END GENERATED REFERENCE\n";

#[test]
fn committed_reference_matches_the_generated_one() {
    let path = repo_file("doc/source/configuration/index.rst");
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    let (Some(b), Some(e)) = (doc.find(BEGIN), doc.find(END)) else {
        panic!("{} lacks the generated-reference markers", path.display());
    };
    let generated = format!("\n{}\n\n", reference_rst());
    let current = &doc[b + BEGIN.len()..e];
    if current != generated && bless() {
        let updated = format!("{}{generated}{}", &doc[..b + BEGIN.len()], &doc[e..]);
        std::fs::write(&path, updated).expect("write reference");
        return;
    }
    assert!(
        current == generated,
        "the configuration reference is stale; regenerate it with AETOS_BLESS=1"
    );
}

// ------------------------------------------------------------------ defaults

#[test]
fn every_default_in_the_table_converts() {
    let sources = Sources::empty();
    let mut r = Resolver::new(&sources);
    for spec in OPTIONS {
        if let Err(e) = r.typed(spec.section, spec.name) {
            panic!("default of {} does not convert: {e}", spec.label());
        }
    }
}

#[test]
fn every_implemented_option_reaches_config_and_no_accepted_one_does() {
    let sources = Sources::empty();
    let mut r = Resolver::new(&sources);
    let mut warnings = Vec::new();
    build(&mut r, &mut warnings).expect("defaults build");
    for (i, spec) in OPTIONS.iter().enumerate() {
        match spec.support {
            Support::Implemented => assert!(
                r.read.contains(&i),
                "{} is implemented but never read",
                spec.label()
            ),
            Support::Accepted => assert!(
                !r.read.contains(&i),
                "{} is read but marked accepted-only",
                spec.label()
            ),
        }
    }
}

#[test]
fn default_config_has_the_documented_defaults() {
    let c = default_config();
    assert_eq!(c.default.auth_mode, AuthMode::Keystone);
    assert!(!c.default.debug);
    assert_eq!((c.api.host.as_str(), c.api.port), ("0.0.0.0", 8080));
    assert_eq!(c.api.root_path, "/prometheus");
    assert_eq!(c.api.workers, 0);
    assert_eq!(c.api.max_request_body_size, 1024 * 1024);
    assert_eq!(c.api.graceful_shutdown_timeout, 30);
    assert_eq!(c.prometheus.base_url().as_str(), "http://localhost:9090/");
    assert_eq!(c.prometheus.project_label_name, "project");
    assert_eq!(
        (c.prometheus.timeout, c.prometheus.connect_timeout),
        (60.0, 5.0)
    );
    assert_eq!(c.keystone.token_cache_time, 300);
    assert_eq!(c.keystone.negative_cache_time, 15);
    assert_eq!(c.keystone.token_cache_size, 10_000);
    assert_eq!(c.keystone.http_request_max_retries, 3);
    assert_eq!(
        c.keystone.memcache_security_strategy,
        MemcacheSecurity::None
    );
    assert_eq!(c.oslo_policy.policy_file, "policy.yaml");
    assert_eq!(c.oslo_policy.policy_dirs, ["policy.d"]);
    assert_eq!(c.oslo_policy.policy_default_rule, "default");
    assert!(c.oslo_policy.enforce_scope && c.oslo_policy.enforce_new_defaults);
    assert_eq!(
        c.cors.expose_headers,
        ["X-Auth-Token", "X-Openstack-Request-Id", "X-Subject-Token"]
    );
    assert_eq!(c.cors.allow_headers, c.cors.expose_headers);
    assert_eq!(
        c.cors.allow_methods,
        ["GET", "PUT", "POST", "DELETE", "PATCH"]
    );
    assert_eq!(c.cors.max_age, 3600);
    assert!(c.cors.allow_credentials && c.cors.allowed_origin.is_empty());
    assert!(!c.healthcheck.detailed && c.healthcheck.backends.is_empty());
    assert!(!c.oslo_middleware.enable_proxy_headers_parsing);
}

// ------------------------------------------------------------ upstream files

#[test]
fn devstack_written_aetos_conf_loads_without_error() {
    let dir = TempDir::new();
    let missing_bundle = dir.path("ca-bundle.pem");
    let text = format!(
        "[DEFAULT]\n\
debug = True\n\
use_syslog = False\n\
logging_context_format_string = %(color)s%(levelname)s %(name)s [%(global_request_id)s %(request_id)s %(project_name)s %(user_name)s%(color)s] %(instance)s%(color)s%(message)s\n\
logging_default_format_string = %(color)s%(levelname)s %(name)s [-%(color)s] %(instance)s%(color)s%(message)s\n\
logging_debug_format_suffix = {{{{(pid=%(process)d) %(funcName)s %(pathname)s:%(lineno)d}}}}\n\
logging_exception_prefix = ERROR %(name)s %(instance)s\n\
auth_mode = keystone\n\
\n\
[service_credentials]\n\
auth_type = password\n\
username = aetos\n\
user_domain_id = default\n\
project_domain_id = default\n\
password = secretservice\n\
project_name = service\n\
region_name = RegionOne\n\
auth_url = http://10.0.0.5/identity\n\
\n\
[keystone_authtoken]\n\
memcached_servers = localhost:11211\n\
cafile = {bundle}\n\
project_domain_name = Default\n\
project_name = service\n\
user_domain_name = Default\n\
password = secretservice\n\
username = aetos\n\
auth_url = http://10.0.0.5/identity\n\
interface = public\n\
auth_type = password\n\
www_authenticate_uri = http://10.0.0.5/identity\n\
service_token_roles_required = True\n\
service_type = metric-storage\n\
region_name = RegionOne\n\
\n\
[prometheus]\n\
host = localhost\n\
port = 9090\n",
        bundle = missing_bundle.display()
    );
    let f = dir.write("aetos.conf", &text);
    let (c, warnings) = load(std::slice::from_ref(&f), &[])
        .unwrap_or_else(|e| panic!("devstack file rejected: {e}"));
    assert!(c.default.debug);
    assert_eq!(c.default.auth_mode, AuthMode::Keystone);
    let k = &c.keystone;
    assert!(k.service_token_roles_required);
    assert_eq!(k.service_token_roles, vec!["service"]);
    assert_eq!(
        k.auth_url.as_ref().map(Url::as_str),
        Some("http://10.0.0.5/identity")
    );
    assert_eq!(
        k.www_authenticate_uri().map(Url::as_str),
        Some("http://10.0.0.5/identity")
    );
    assert_eq!(k.auth_type.as_deref(), Some("password"));
    assert_eq!(k.username.as_deref(), Some("aetos"));
    assert_eq!(
        k.password.as_ref().map(Secret::expose),
        Some("secretservice")
    );
    assert_eq!(k.user_domain_name.as_deref(), Some("Default"));
    assert_eq!(k.project_name.as_deref(), Some("service"));
    assert_eq!(k.project_domain_name.as_deref(), Some("Default"));
    assert_eq!(k.memcached_servers, ["localhost:11211"]);
    assert_eq!(c.prometheus.base_url().as_str(), "http://localhost:9090/");
    assert_eq!(c.config_files, [f]);
    let w = texts(&warnings);
    assert!(
        w.iter()
            .any(|t| t.starts_with("[service_credentials]: not used by aetos")),
        "{w:?}"
    );
    assert!(w.contains(&"[DEFAULT] use_syslog: accepted for compatibility but not implemented by aetos, ignored"), "{w:?}");
    assert!(
        w.iter()
            .any(|t| t.starts_with("[keystone_authtoken] cafile:") && t.contains("not https")),
        "{w:?}"
    );
    assert!(!w.iter().any(|t| t.contains("unknown")), "{w:?}");
}

#[test]
fn upstream_dollar_escapes_come_out_as_upstream_reads_them() {
    let (c, _) = load_ok(&format!("{CREDS}password = pa$$wo\\$rd$\n"));
    assert_eq!(
        c.keystone.password.as_ref().map(Secret::expose),
        Some("pa$wo$rd$")
    );
}

// ---------------------------------------------------------- INI semantics

#[test]
fn password_with_backslashes_percent_hash_semicolon_and_quotes_survives() {
    let password = r#"a\b\\c\nd%(x)s%%e#f;g"h'i\"#;
    let (c, _) = load_ok(&format!(
        "{CREDS}password = {password}\n[prometheus]\npassword = {password}\nusername = u\n"
    ));
    assert_eq!(
        c.keystone.password.as_ref().map(Secret::expose),
        Some(password)
    );
    assert_eq!(
        c.prometheus.password.as_ref().map(Secret::expose),
        Some(password)
    );
}

#[test]
fn surrounding_quotes_are_removed_like_oslo() {
    let (c, _) = load_ok(&format!("{CREDS}password = \"quoted pw\"\n"));
    assert_eq!(
        c.keystone.password.as_ref().map(Secret::expose),
        Some("quoted pw")
    );
}

#[test]
fn continuation_lines_extend_list_values() {
    let (c, _) = load_ok(&noauth(
        "[keystone_authtoken]\nmemcached_servers = a:11211,\n    b:11211,\n\tc:11211\n",
    ));
    assert_eq!(
        c.keystone.memcached_servers,
        ["a:11211", "b:11211", "c:11211"]
    );
}

#[test]
fn repeated_key_last_one_wins_for_ordinary_options() {
    let (c, _) = load_ok(&noauth(
        "[prometheus]\nport = 1\nport = 2\n[api]\n[prometheus]\nport = 3\n",
    ));
    assert_eq!(c.prometheus.port, 3);
}

#[test]
fn repeated_key_keeps_every_value_for_multi_valued_options_across_files() {
    let dir = TempDir::new();
    let a = dir.write(
        "a.conf",
        "[DEFAULT]\nauth_mode = noauth\n[oslo_policy]\npolicy_dirs = one\npolicy_dirs = two\n",
    );
    let b = dir.write("b.conf", "[oslo_policy]\npolicy_dirs = three\n");
    let (c, _) = load(&[a, b], &[]).expect("loads");
    assert_eq!(c.oslo_policy.policy_dirs, ["one", "two", "three"]);
}

#[test]
fn comments_and_inline_hashes_follow_oslo() {
    let (c, w) = load_ok(&noauth(
        "# a comment\n; another\n[prometheus]\n#host = commented.example\n;port = 1\n\
         username = u#not-a-comment\npassword = p;not-a-comment\n",
    ));
    assert_eq!(c.prometheus.username.as_deref(), Some("u#not-a-comment"));
    assert_eq!(
        c.prometheus.password.as_ref().map(Secret::expose),
        Some("p;not-a-comment")
    );
    assert_eq!(c.prometheus.host, "localhost");
    assert_eq!(c.prometheus.port, 9090);
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn section_names_are_case_insensitive_except_default() {
    let (c, w) = load_ok(&noauth(
        "[Prometheus]\nport = 1234\n[default]\ndebug = true\n",
    ));
    assert_eq!(c.prometheus.port, 1234);
    assert!(
        !c.default.debug,
        "[default] is not [DEFAULT] in oslo.config"
    );
    assert!(
        texts(&w).contains(
            &"[default]: unknown section, ignored (the default section is spelled [DEFAULT])"
        ),
        "{w:?}"
    );
}

#[test]
fn option_names_are_case_sensitive() {
    let (c, w) = load_ok(&noauth("[prometheus]\nPort = 1234\n"));
    assert_eq!(c.prometheus.port, 9090);
    assert_eq!(texts(&w), ["[prometheus] Port: unknown option, ignored"]);
}

#[test]
fn booleans_accept_oslo_spellings_in_any_case() {
    for (word, expected) in [
        ("True", true),
        ("yes", true),
        ("ON", true),
        ("1", true),
        ("false", false),
        ("No", false),
        ("off", false),
        ("0", false),
    ] {
        let (c, _) = load_ok(&noauth(&format!("debug = {word}\n")));
        assert_eq!(c.default.debug, expected, "{word}");
    }
}

// ------------------------------------------------------------- substitution

#[test]
fn dollar_references_are_substituted_from_the_same_section_then_default() {
    let (c, _) = load_ok(&noauth(
        "log_dir = /var/log/aetos\n[prometheus]\nhost = prom.example\nusername = ${host}-user\npassword = pw\n\
         [healthcheck]\ndisable_by_file_path = $log_dir/disabled\n[oslo_policy]\npolicy_file = ${prometheus.host}.yaml\n",
    ));
    assert_eq!(c.prometheus.username.as_deref(), Some("prom.example-user"));
    assert_eq!(
        c.healthcheck.disable_by_file_path.as_deref(),
        Some("/var/log/aetos/disabled")
    );
    assert_eq!(c.oslo_policy.policy_file, "prom.example.yaml");
}

#[test]
fn dollar_not_followed_by_a_name_is_kept() {
    let (c, _) = load_ok(&format!("{CREDS}password = a$ b$1 c$-{{}}$\n"));
    assert_eq!(
        c.keystone.password.as_ref().map(Secret::expose),
        Some("a$ b$1 c$-{}$")
    );
}

#[test]
fn reference_to_an_unknown_option_is_an_error_that_hides_the_secret() {
    let e = load_err(&format!("{CREDS}password = s3cret$xyzzy\n"));
    assert_eq!(
        (e.section.as_str(), e.option.as_str()),
        ("keystone_authtoken", "password")
    );
    assert!(e.problem.contains("$$"), "{e}");
    let line = e.to_string();
    assert!(!line.contains("s3cret") && !line.contains("xyzzy"), "{e}");
}

#[test]
fn reference_to_an_unknown_option_names_it_for_ordinary_options() {
    let e = load_err(&noauth("[prometheus]\nhost = $nosuch\n"));
    assert_eq!(
        (e.section.as_str(), e.option.as_str()),
        ("prometheus", "host")
    );
    assert!(e.problem.contains("$nosuch, which is not an option"), "{e}");
}

#[test]
fn reference_loops_are_errors() {
    let e = load_err(&noauth(
        "[prometheus]\nhost = $username\nusername = $host\n",
    ));
    assert_eq!(e.section, "prometheus");
    assert!(e.problem.contains("refers back"), "{e}");
}

// ---------------------------------------------------------- files and dirs

#[test]
fn later_config_files_override_earlier_ones() {
    let dir = TempDir::new();
    let a = dir.write(
        "a.conf",
        "[DEFAULT]\nauth_mode = noauth\ndebug = true\n[prometheus]\nport = 1\nhost = a\n",
    );
    let b = dir.write("b.conf", "[prometheus]\nport = 2\n");
    let (c, _) = load(&[a.clone(), b.clone()], &[]).expect("loads");
    assert_eq!((c.prometheus.host.as_str(), c.prometheus.port), ("a", 2));
    let (c, _) = load(&[b, a], &[]).expect("loads");
    assert_eq!(c.prometheus.port, 1);
}

#[test]
fn config_dir_files_are_read_in_name_order_after_the_config_files() {
    let dir = TempDir::new();
    let main = dir.write(
        "aetos.conf",
        "[DEFAULT]\nauth_mode = noauth\n[prometheus]\nport = 1\nhost = main\n",
    );
    dir.write("conf.d/20-b.conf", "[prometheus]\nport = 20\n");
    dir.write("conf.d/10-a.conf", "[prometheus]\nport = 10\nhost = dir\n");
    dir.write("conf.d/30-c.conf.disabled", "[prometheus]\nport = 30\n");
    dir.write("conf.d/.99-hidden.conf", "[prometheus]\nport = 99\n");
    let confd = dir.path("conf.d");
    let (c, _) = load(std::slice::from_ref(&main), std::slice::from_ref(&confd)).expect("loads");
    assert_eq!((c.prometheus.host.as_str(), c.prometheus.port), ("dir", 20));
    assert_eq!(
        c.config_files,
        [main, confd.join("10-a.conf"), confd.join("20-b.conf")]
    );
    assert_eq!(c.config_dirs, [confd]);
}

#[test]
fn newest_file_wins_even_through_a_deprecated_name() {
    let dir = TempDir::new();
    let a = dir.write(
        "a.conf",
        "[DEFAULT]\nauth_mode = noauth\n[keystone_authtoken]\nmemcached_servers = new:1\n",
    );
    let b = dir.write("b.conf", "[keystone_authtoken]\nmemcache_servers = old:1\n");
    let (c, w) = load(&[a, b], &[]).expect("loads");
    assert_eq!(c.keystone.memcached_servers, ["old:1"]);
    assert!(texts(&w).contains(&"[keystone_authtoken] memcache_servers: deprecated name, use [keystone_authtoken] memcached_servers"));
}

#[test]
fn canonical_name_wins_over_a_deprecated_one_in_the_same_file() {
    let (c, _) = load_ok(&noauth("[keystone_authtoken]\nmemcache_servers = old:1\nmemcached_servers = new:1\nmemcache_servers = old:2\n"));
    assert_eq!(c.keystone.memcached_servers, ["new:1"]);
}

#[test]
fn deprecated_group_sets_the_option_with_a_warning() {
    let (c, w) = load_ok(&noauth("policy_file = /etc/aetos/p.yaml\n[keystone_authtoken]\nauth_uri = http://ks.example:5000\n"));
    assert_eq!(c.oslo_policy.policy_file, "/etc/aetos/p.yaml");
    assert_eq!(
        c.keystone.www_authenticate_uri().map(Url::as_str),
        Some("http://ks.example:5000/")
    );
    assert!(
        texts(&w)
            .contains(&"[DEFAULT] policy_file: deprecated name, use [oslo_policy] policy_file"),
        "{w:?}"
    );
}

#[test]
fn missing_config_file_names_config_file() {
    let dir = TempDir::new();
    let e = load(&[dir.path("nope.conf")], &[]).expect_err("missing file");
    assert_eq!(
        (e.section.as_str(), e.option.as_str()),
        ("DEFAULT", "config_file")
    );
    assert!(e.problem.contains("nope.conf"), "{e}");
}

#[test]
fn missing_config_dir_names_config_dir() {
    let dir = TempDir::new();
    let e = load(&[], &[dir.path("nope.d")]).expect_err("missing dir");
    assert_eq!(
        (e.section.as_str(), e.option.as_str()),
        ("DEFAULT", "config_dir")
    );
}

#[test]
fn syntax_error_names_file_line_and_section() {
    let e = load_err("[DEFAULT]\nauth_mode = noauth\n[prometheus]\nhost localhost\n");
    assert_eq!(e.section, "prometheus");
    assert!(e.problem.contains("aetos.conf, line 4"), "{e}");
}

// ----------------------------------------------------------------- warnings

#[test]
fn unknown_options_and_sections_produce_one_warning_each() {
    let dir = TempDir::new();
    let a = dir.write(
        "a.conf",
        "[DEFAULT]\nauth_mode = noauth\nbogus = 1\nbogus = 2\n[prometheus]\nhots = x\n[nosuch]\na = 1\nb = 2\n[nosuch]\nc = 3\n",
    );
    let b = dir.write("b.conf", "[DEFAULT]\nbogus = 3\n[NoSuch]\nd = 4\n");
    let (_, w) = load(&[a, b], &[]).expect("loads");
    assert_eq!(
        texts(&w),
        [
            "[DEFAULT] bogus: unknown option, ignored",
            "[prometheus] hots: unknown option, ignored",
            "[nosuch]: unknown section, ignored",
        ]
    );
}

#[test]
fn accepted_options_warn_only_when_set() {
    let (_, w) = load_ok(&noauth(
        "paste_config = api-paste.ini\n[healthcheck]\npath = /hc\n",
    ));
    assert_eq!(
        texts(&w),
        [
            "[DEFAULT] paste_config: accepted for compatibility but not implemented by aetos, ignored",
            "[healthcheck] path: accepted for compatibility but not implemented by aetos, ignored",
        ]
    );
    let (_, w) = load_ok(&noauth(""));
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn auth_type_is_inferred_with_a_warning_when_missing() {
    let (c, w) = load_ok("[keystone_authtoken]\nauth_url = http://k/\napplication_credential_id = id\napplication_credential_secret = s\n");
    assert_eq!(
        c.keystone.auth_type.as_deref(),
        Some("v3applicationcredential")
    );
    assert!(
        texts(&w)
            .iter()
            .any(|t| t.starts_with("[keystone_authtoken] auth_type: not set")),
        "{w:?}"
    );
}

#[test]
fn default_domain_fills_missing_user_and_project_domains() {
    let (c, _) = load_ok(
        "[keystone_authtoken]\nauth_url = http://k/\nauth_type = password\nusername = u\npassword = p\n\
         project_name = service\ndefault_domain_id = default\n",
    );
    assert_eq!(c.keystone.user_domain_id.as_deref(), Some("default"));
    assert_eq!(c.keystone.project_domain_id.as_deref(), Some("default"));
}

// --------------------------------------------------------------- validation

/// Every validation failure names its section and option.
#[test]
fn each_validation_error_names_section_and_option() {
    let dir = TempDir::new();
    let missing = dir.path("missing.pem");
    let missing = missing.display();
    let cert = dir.write("cert.pem", "x");
    let cert = cert.display();
    let cases: Vec<(String, &str, &str)> = vec![
        ("[DEFAULT]\nauth_mode = keystonee\n".into(), "DEFAULT", "auth_mode"),
        ("[DEFAULT]\nauth_mode =\n".into(), "DEFAULT", "auth_mode"),
        (noauth("debug = maybe\n"), "DEFAULT", "debug"),
        (noauth("[api]\nworkers = many\n"), "api", "workers"),
        (noauth("[api]\nworkers = -1\n"), "api", "workers"),
        (noauth("[api]\nport = 65536\n"), "api", "port"),
        (noauth("[api]\nroot_path = prometheus\n"), "api", "root_path"),
        (noauth("[api]\nhost =\n"), "api", "host"),
        (noauth("[prometheus]\nport = http\n"), "prometheus", "port"),
        (noauth("[prometheus]\ntimeout = 0\n"), "prometheus", "timeout"),
        (noauth("[prometheus]\ntimeout = nan\n"), "prometheus", "timeout"),
        (noauth("[prometheus]\nurl = localhost:9090\n"), "prometheus", "url"),
        (noauth("[prometheus]\nurl = ftp://prom/\n"), "prometheus", "url"),
        (noauth("[prometheus]\nurl = http://u:p@prom/\n"), "prometheus", "url"),
        (noauth("[prometheus]\nhost = a b\n"), "prometheus", "host"),
        (noauth("[prometheus]\nproject_label_name = project-id\n"), "prometheus", "project_label_name"),
        (noauth(&format!("[prometheus]\nuse_tls = true\nca_file = {missing}\n")), "prometheus", "ca_file"),
        (noauth(&format!("[prometheus]\nuse_tls = true\ncert_file = {cert}\n")), "prometheus", "key_file"),
        (noauth(&format!("[prometheus]\nurl = https://prom/\nkey_file = {cert}\n")), "prometheus", "cert_file"),
        (noauth("[keystone_authtoken]\nauth_url = keystone:5000\n"), "keystone_authtoken", "auth_url"),
        (noauth("[keystone_authtoken]\nwww_authenticate_uri = //nohost\n"), "keystone_authtoken", "www_authenticate_uri"),
        (noauth("[keystone_authtoken]\nmemcache_security_strategy = mac\n"), "keystone_authtoken", "memcache_secret_key"),
        (noauth("[keystone_authtoken]\nmemcache_security_strategy = sign\n"), "keystone_authtoken", "memcache_security_strategy"),
        (noauth("[keystone_authtoken]\nauth_type = v3token\n"), "keystone_authtoken", "auth_type"),
        (noauth("[keystone_authtoken]\ninterface = private\n"), "keystone_authtoken", "interface"),
        (noauth("[keystone_authtoken]\ntoken_cache_time = -2\n"), "keystone_authtoken", "token_cache_time"),
        ("[keystone_authtoken]\nusername = u\n".into(), "keystone_authtoken", "auth_url"),
        ("[keystone_authtoken]\nauth_url = http://k/\n".into(), "keystone_authtoken", "username"),
        ("[keystone_authtoken]\nauth_url = http://k/\nusername = u\n".into(), "keystone_authtoken", "password"),
        ("[keystone_authtoken]\nauth_url = http://k/\nusername = u\npassword = p\n".into(), "keystone_authtoken", "user_domain_name"),
        ("[keystone_authtoken]\nauth_url = http://k/\nuser_id = u\npassword = p\n".into(), "keystone_authtoken", "project_name"),
        ("[keystone_authtoken]\nauth_url = http://k/\nuser_id = u\npassword = p\nproject_name = s\n".into(), "keystone_authtoken", "project_domain_name"),
        ("[keystone_authtoken]\nauth_url = http://k/\nauth_type = v3applicationcredential\n".into(), "keystone_authtoken", "application_credential_id"),
        ("[keystone_authtoken]\nauth_url = http://k/\napplication_credential_id = i\n".into(), "keystone_authtoken", "application_credential_secret"),
        (format!("{CREDS}auth_url = https://k/\ncafile = {missing}\n"), "keystone_authtoken", "cafile"),
        (format!("{CREDS}auth_url = https://k/\ncertfile = {dir}\n", dir = dir.0.display()), "keystone_authtoken", "certfile"),
        (format!("{CREDS}auth_url = https://k/\nkeyfile = {cert}\n"), "keystone_authtoken", "certfile"),
        (noauth("[healthcheck]\nbackends = disable_by_file,bogus\n"), "healthcheck", "backends"),
        (noauth("[healthcheck]\ndisable_by_file_paths = 80/tmp/x\n"), "healthcheck", "disable_by_file_paths"),
        (noauth("[cors]\nmax_age = -5\n"), "cors", "max_age"),
        (noauth("[oslo_policy]\nenforce_scope = sometimes\n"), "oslo_policy", "enforce_scope"),
        (noauth("use_syslog = perhaps\n"), "DEFAULT", "use_syslog"),
    ];
    for (text, section, option) in cases {
        let e = load_err(&text);
        assert_eq!(
            (e.section.as_str(), e.option.as_str()),
            (section, option),
            "for:\n{text}\ngot: {e}"
        );
        let line = e.to_string();
        assert!(
            line.starts_with(&format!("[{section}] {option}: ")),
            "{line}"
        );
        assert!(!line.contains('\n'), "{line}");
    }
}

#[test]
fn invalid_value_errors_quote_the_value_and_its_file() {
    let e = load_err(&noauth("[prometheus]\nport = 90x\n"));
    assert!(
        e.problem.contains("\"90x\"") && e.problem.contains("aetos.conf"),
        "{e}"
    );
}

#[test]
fn multi_line_value_errors_stay_on_one_line() {
    let e = load_err(&noauth("[prometheus]\nport = 1\n  2\n"));
    assert!(!e.to_string().contains('\n'), "{e}");
}

#[test]
fn tls_files_are_ignored_with_a_warning_when_tls_is_off() {
    let (_, w) = load_ok(&noauth("[prometheus]\nca_file = /nonexistent/ca.pem\n"));
    assert_eq!(
        texts(&w),
        ["[prometheus] ca_file: ignored because TLS is not used (use_tls = false)"]
    );
}

#[test]
fn readable_tls_files_load_and_url_decides_tls() {
    let dir = TempDir::new();
    let ca = dir.write("ca.pem", "ca");
    let cert = dir.write("c.pem", "c");
    let key = dir.write("k.pem", "k");
    let (c, w) = load_ok(&noauth(&format!(
        "[prometheus]\nurl = https://prom.example:9443/prom\nca_file = {}\ncert_file = {}\nkey_file = {}\n",
        ca.display(),
        cert.display(),
        key.display()
    )));
    assert!(w.is_empty(), "{w:?}");
    assert!(c.prometheus.uses_tls());
    assert_eq!(
        c.prometheus.base_url().as_str(),
        "https://prom.example:9443/prom/"
    );
    assert_eq!(
        c.prometheus
            .base_url()
            .join("api/v1/query")
            .map(String::from)
            .as_deref(),
        Ok("https://prom.example:9443/prom/api/v1/query")
    );
}

#[test]
fn half_configured_basic_auth_is_ignored_with_a_warning() {
    let (_, w) = load_ok(&noauth("[prometheus]\nusername = u\n"));
    assert_eq!(
        texts(&w),
        ["[prometheus] username: ignored because password is not set (basic auth needs both)"]
    );
}

#[test]
fn noauth_mode_needs_no_keystone_credentials() {
    let (c, w) = load_ok(&noauth(""));
    assert_eq!(c.default.auth_mode, AuthMode::Noauth);
    assert!(w.is_empty());
}

#[test]
fn enum_values_follow_oslo_case_rules() {
    let (c, _) = load_ok(&noauth("[keystone_authtoken]\nmemcache_security_strategy = encrypt\nmemcache_secret_key = k\ninterface = adminURL\n"));
    assert_eq!(
        c.keystone.memcache_security_strategy,
        MemcacheSecurity::Encrypt
    );
    assert_eq!(
        load_err("[DEFAULT]\nauth_mode = Noauth\n").option,
        "auth_mode"
    );
}

#[test]
fn empty_numbers_keep_their_default() {
    let (c, _) = load_ok(&noauth("[prometheus]\nport =\n"));
    assert_eq!(c.prometheus.port, 9090);
}

// ---------------------------------------------------------------- helpers

#[test]
fn base_url_brackets_ipv6_hosts_and_uses_https_with_tls() {
    let mut p = default_config().prometheus;
    p.host = "::1".into();
    assert_eq!(p.base_url().as_str(), "http://[::1]:9090/");
    p.host = "[fe80::1]".into();
    p.use_tls = true;
    p.port = 443;
    assert_eq!(p.base_url().as_str(), "https://[fe80::1]/");
    p.host = "bad host".into();
    assert!(p.try_base_url().is_err());
    assert_eq!(p.base_url().as_str(), "http://invalid.invalid/");
}

#[test]
fn www_authenticate_uri_falls_back_to_auth_url() {
    let (c, _) = load_ok(CREDS);
    assert_eq!(
        c.keystone.www_authenticate_uri().map(Url::as_str),
        Some("http://keystone.example/identity")
    );
    let (c, _) = load_ok(&format!(
        "{CREDS}www_authenticate_uri = https://public.example/identity\n"
    ));
    assert_eq!(
        c.keystone.www_authenticate_uri().map(Url::as_str),
        Some("https://public.example/identity")
    );
}

#[test]
fn log_path_combines_log_dir_and_log_file_like_oslo_log() {
    let mut d = default_config().default;
    assert_eq!(d.log_path(), None);
    d.log_dir = Some("/var/log/aetos".into());
    assert_eq!(
        d.log_path(),
        Some(PathBuf::from("/var/log/aetos/aetos-api.log"))
    );
    d.log_file = Some("api.log".into());
    assert_eq!(d.log_path(), Some(PathBuf::from("/var/log/aetos/api.log")));
    d.log_file = Some("/tmp/abs.log".into());
    assert_eq!(d.log_path(), Some(PathBuf::from("/tmp/abs.log")));
    d.log_dir = None;
    assert_eq!(d.log_path(), Some(PathBuf::from("/tmp/abs.log")));
}

#[test]
fn root_path_is_normalized() {
    let (c, _) = load_ok(&noauth("[api]\nroot_path = /metrics/\n"));
    assert_eq!(c.api.root_path, "/metrics");
    let (c, _) = load_ok(&noauth("[api]\nroot_path =\n"));
    assert_eq!(c.api.root_path, "");
}

#[test]
fn find_file_looks_next_to_the_config_files() {
    let dir = TempDir::new();
    let f = dir.write("etc/aetos.conf", "[DEFAULT]\nauth_mode = noauth\n");
    let policy = dir.write("etc/policy.yaml", "{}");
    let (c, _) = load(&[f], &[]).expect("loads");
    assert_eq!(c.find_file("policy.yaml"), Some(policy.clone()));
    assert_eq!(c.find_file(&policy.display().to_string()), Some(policy));
    assert_eq!(c.find_file("no-such-file-anywhere.yaml"), None);
}

#[test]
fn secrets_never_show_in_debug_output() {
    let (c, _) = load_ok(&format!(
        "{CREDS}password = hunter2-ks\nmemcache_secret_key = hunter2-mc\n[prometheus]\nusername = u\npassword = hunter2-prom\n"
    ));
    let shown = format!("{c:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("***"));
    assert_eq!(format!("{:?}", Secret::new("x")), "***");
}

#[test]
fn config_error_display_forms() {
    assert_eq!(ConfigError::new("s", "o", "p").to_string(), "[s] o: p");
    assert_eq!(ConfigError::new("s", "", "p").to_string(), "[s]: p");
    assert_eq!(ConfigError::new("", "o", "p").to_string(), "o: p");
    assert_eq!(ConfigError::new("", "", "p\nq").to_string(), "p\\nq");
}

#[test]
fn warnings_are_deduplicated() {
    let (_, w) = load_ok(&noauth("x = 1\nx = 2\n[DEFAULT]\nx = 3\n"));
    let unique: HashSet<_> = w.iter().collect();
    assert_eq!(unique.len(), w.len());
    assert_eq!(w.len(), 1);
}
