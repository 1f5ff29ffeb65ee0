//! Metric access rules (`[prometheus] metric_rules_file`) against the real
//! Keystone and Prometheus of the stack: what a scoped caller reads through
//! aetos equals the same query sent to Prometheus restricted by hand; denied
//! metrics answer empty successes and never leak through series, labels or
//! label values; the rules reload without a restart (file change and
//! SIGHUP); a broken file is refused with its file and line named; alerts
//! (Prometheus `alerts`, Alertmanager `alerts` and `alerts/groups`) are
//! shown only for the alerting rules whose expression the rules allow.
#![cfg(feature = "functional")]

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{enc, free_port, json_of, stack, tempdir, token, Aetos};
use serde_json::Value;

/// Readers see the Ceilometer metrics; demo's readers also see
/// demo_only_metric, but only its `kind="demo"` series.
fn rules(demo: &str) -> String {
    format!(
        "rules:\n  - roles: [reader]\n    allow:\n      - '{{__name__=~\"ceilometer_.*\"}}'\n  \
         - roles: [reader]\n    projects: [{demo}]\n    allow:\n      - 'demo_only_metric{{kind=\"demo\"}}'\n"
    )
}

fn start(file: &std::path::Path, interval: &str) -> Aetos {
    Aetos::start(
        &format!(
            "[prometheus]\nmetric_rules_file = {}\nmetric_rules_reload_interval = {interval}\n",
            file.display()
        ),
        None,
    )
}

/// A fixed evaluation time a little in the past, so that aetos and the
/// direct query read exactly the same samples.
fn at() -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (now - 30).to_string()
}

async fn through(a: &Aetos, tok: &str, query: &str, time: &str) -> (u16, Value) {
    let path = format!("/api/v1/query?query={}&time={time}", enc(query));
    json_of(a.get(&path, Some(tok)).await).await
}

/// The result as a sorted list of (labels, value) texts.
fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("not a vector: {v}"))
        .iter()
        .map(|s| format!("{} {}", s["metric"], s["value"][1]))
        .collect();
    out.sort();
    out
}

async fn wait_for_log(a: &Aetos, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !a.logs().contains(what) {
        assert!(Instant::now() < deadline, "no {what:?} in:\n{}", a.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn allowed_subset_equals_prometheus_restricted_by_hand() {
    let demo = stack().project("demo");
    let dir = tempdir::Dir::new("rules");
    let file = dir.path().join("metric-rules.yaml");
    std::fs::write(&file, rules(&demo)).unwrap();
    let a = start(&file, "5");
    let reader = token("demo-reader").await;
    let t = at();
    let p = format!("project=\"{demo}\"");
    let cases = [
        ("ceilometer_cpu", format!("ceilometer_cpu{{{p}}}")),
        (
            "sum by (resource) (ceilometer_memory_usage)",
            format!("sum by (resource) (ceilometer_memory_usage{{{p}}})"),
        ),
        (
            "demo_only_metric",
            format!("demo_only_metric{{kind=\"demo\",{p}}}"),
        ),
        (
            "count(ceilometer_cpu) + count(demo_only_metric)",
            format!("count(ceilometer_cpu{{{p}}}) + count(demo_only_metric{{kind=\"demo\",{p}}})"),
        ),
    ];
    for (query, by_hand) in &cases {
        let (st, got) = through(&a, &reader, query, &t).await;
        assert_eq!(st, 200, "{query}: {got}");
        let direct = common::prom_query(by_hand, Some(&t)).await;
        assert!(
            !sorted(&direct).is_empty(),
            "the fixture data has {by_hand}"
        );
        assert_eq!(sorted(&got), sorted(&direct), "{query}");
    }
    // Denied: an empty success, though the project has the series.
    for denied in ["label_lookalike_info", "sum(cli_delete_me)", "ALERTS"] {
        let (st, got) = through(&a, &reader, denied, &t).await;
        assert_eq!(st, 200, "{denied}: {got}");
        assert_eq!(sorted(&got), Vec::<String>::new(), "{denied}");
    }
    let direct = common::prom_query(&format!("label_lookalike_info{{{p}}}"), Some(&t)).await;
    assert!(!sorted(&direct).is_empty());
    // Another project's reader: only the first rule applies.
    let other = token("other-member").await;
    let (st, got) = through(&a, &other, "demo_only_metric", &t).await;
    assert_eq!((st, sorted(&got)), (200, vec![]));
    // A nameless selector under a name rule and a label rule together
    // cannot be one selector: refused, not widened.
    let (st, got) = through(&a, &reader, "count({job=\"exporter\"})", &t).await;
    assert_eq!(st, 400, "{got}");
    assert!(
        got["error"]
            .as_str()
            .unwrap()
            .contains("metric access rules"),
        "{got}"
    );
    // Privileged callers are not affected.
    let admin = token("admin").await;
    let (st, got) = through(&a, &admin, &format!("label_lookalike_info{{{p}}}"), &t).await;
    assert_eq!(st, 200);
    assert_eq!(sorted(&got), sorted(&direct));
}

#[tokio::test]
async fn series_labels_and_label_values_never_show_a_denied_metric() {
    let demo = stack().project("demo");
    let dir = tempdir::Dir::new("rules");
    let file = dir.path().join("metric-rules.yaml");
    std::fs::write(&file, rules(&demo)).unwrap();
    let a = start(&file, "5");
    let reader = token("demo-reader").await;
    let (st, v) = json_of(a.get("/api/v1/label/__name__/values", Some(&reader)).await).await;
    assert_eq!(st, 200, "{v}");
    let names: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(names.contains(&"ceilometer_cpu"), "{names:?}");
    assert!(names.contains(&"demo_only_metric"), "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("ceilometer_") || *n == "demo_only_metric"),
        "{names:?}"
    );
    // `looks_like` is a label of label_lookalike_info only.
    let (st, v) = json_of(a.get("/api/v1/labels", Some(&reader)).await).await;
    assert_eq!(st, 200, "{v}");
    assert!(!v.to_string().contains("looks_like"), "{v}");
    assert!(v.to_string().contains("resource_name"), "{v}");
    let (st, v) = json_of(
        a.get("/api/v1/label/looks_like/values", Some(&reader))
            .await,
    )
    .await;
    assert_eq!((st, v["data"].clone()), (200, serde_json::json!([])), "{v}");
    // An explicit nameless match[]: the union of the rules, as two match[].
    let m = enc("{job=\"exporter\"}");
    let (st, v) = json_of(
        a.get(&format!("/api/v1/series?match[]={m}"), Some(&reader))
            .await,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let series = v["data"].as_array().unwrap();
    assert!(!series.is_empty());
    for s in series {
        let name = s["__name__"].as_str().unwrap();
        assert!(
            name.starts_with("ceilometer_") || (name == "demo_only_metric" && s["kind"] == "demo"),
            "{s}"
        );
    }
    // The same without rules shows what the rules hide (the test can fail).
    let plain = Aetos::start("", None);
    let (_, v) = json_of(plain.get("/api/v1/labels", Some(&reader)).await).await;
    assert!(v.to_string().contains("looks_like"), "{v}");
}

#[tokio::test]
async fn rules_reload_on_change_and_on_sighup_and_a_broken_file_keeps_the_last_good() {
    let demo = stack().project("demo");
    let dir = tempdir::Dir::new("rules");
    let file = dir.path().join("metric-rules.yaml");
    std::fs::write(&file, rules(&demo)).unwrap();
    let a = start(&file, "0.2");
    let reader = token("demo-reader").await;
    let t = at();
    let count = |v: &Value| sorted(v).len();
    let (_, v) = through(&a, &reader, "label_lookalike_info", &t).await;
    assert_eq!(count(&v), 0);
    // Changed on disk: applied without a restart.
    std::fs::write(&file, "rules:\n  - allow: [label_lookalike_info]\n").unwrap();
    wait_for_log(&a, "metric access rules reloaded").await;
    let (_, v) = through(&a, &reader, "label_lookalike_info", &t).await;
    assert_eq!(count(&v), 1, "{v}");
    let (_, v) = through(&a, &reader, "ceilometer_cpu", &t).await;
    assert_eq!(count(&v), 0, "{v}");
    // Broken: logged, the last good rules stay.
    std::fs::write(&file, "rules:\n  - allow: ['sum(up)']\n").unwrap();
    wait_for_log(&a, "metric access rules not reloaded").await;
    assert!(a.logs().contains("line 2"), "{}", a.logs());
    let (_, v) = through(&a, &reader, "label_lookalike_info", &t).await;
    assert_eq!(count(&v), 1, "{v}");

    // SIGHUP, with a watch interval too long to be the cause.
    std::fs::write(&file, "rules:\n  - allow: [label_lookalike_info]\n").unwrap();
    let b = start(&file, "3600");
    std::fs::write(&file, rules(&demo)).unwrap();
    let (_, v) = through(&b, &reader, "ceilometer_cpu", &t).await;
    assert_eq!(count(&v), 0, "{v}");
    let st = Command::new("kill")
        .arg("-HUP")
        .arg(b.child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
    wait_for_log(&b, "metric access rules reloaded").await;
    let (_, v) = through(&b, &reader, "ceilometer_cpu", &t).await;
    assert_eq!(count(&v), 2, "{v}");
}

#[test]
fn check_config_names_the_file_and_line_of_a_bad_rule() {
    let dir = tempdir::Dir::new("rules");
    let file = dir.path().join("metric-rules.yaml");
    std::fs::write(
        &file,
        "rules:\n  - roles: [reader]\n    allow:\n      - up\n      - 'rate(up[5m])'\n",
    )
    .unwrap();
    let conf = dir.path().join("aetos.conf");
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\nauth_mode = noauth\n[prometheus]\nmetric_rules_file = {}\n",
            file.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aetos-api"))
        .arg("--config-file")
        .arg(&conf)
        .arg("check-config")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("[prometheus] metric_rules_file"), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("line 5"), "{err}");
    // A YAML error carries the parser's line too.
    std::fs::write(&file, "rules:\n  - allow: [up\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aetos-api"))
        .arg("--config-file")
        .arg(&conf)
        .arg("check-config")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("line"), "{err}");
}

// ------------------------------------------------------------------ alerts

/// The alerting rules of [`Alerting`]: one on a metric the readers' rules
/// allow, one on a metric they do not, one on a metric demo's readers may
/// read only narrowed (`kind="demo"`), so its expression is not within.
const ALERT_RULES: &str = r#"groups:
  - name: aetos-metric-rules
    interval: 1s
    rules:
      - alert: AetosRulesCpu
        expr: ceilometer_cpu > 0
        labels: {severity: info}
        annotations: {summary: "{{ $labels.resource_name }} uses CPU"}
      - alert: AetosRulesLookalike
        expr: label_lookalike_info > 0
        labels: {severity: info}
      - alert: AetosRulesDemoOnly
        expr: demo_only_metric > 0
        labels: {severity: info}
"#;

const ALLOWED: &str = "AetosRulesCpu";
const ALL_RULES: [&str; 3] = ["AetosRulesCpu", "AetosRulesLookalike", "AetosRulesDemoOnly"];

/// A Prometheus and an Alertmanager of our own (free ports, own directory;
/// the Debian binaries tools/stack.sh installs): the Prometheus scrapes the
/// stack's exporter, evaluates [`ALERT_RULES`] every second and sends the
/// alerts to the Alertmanager. (The stack's own alerting rules all read
/// `ceilometer_cpu`: no metric access rule can allow one and deny another.)
struct Alerting {
    prometheus: Child,
    alertmanager: Child,
    prom_port: u16,
    am_port: u16,
    dir: tempdir::Dir,
}

impl Alerting {
    async fn start() -> Alerting {
        let dir = tempdir::Dir::new("alerting");
        let d = dir.path();
        let (prom_port, am_port) = (free_port(), free_port());
        let exporter = url::Url::parse(&stack().s("/exporter_url")).unwrap();
        let target = format!(
            "{}:{}",
            exporter.host_str().unwrap(),
            exporter.port().unwrap()
        );
        std::fs::write(d.join("rules.yml"), ALERT_RULES).unwrap();
        std::fs::write(
            d.join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files: [\"{rules}\"]\n\
                 alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [\"127.0.0.1:{am_port}\"]\n\
                 scrape_configs:\n  - job_name: exporter\n    honor_labels: true\n    \
                 metrics_path: {path}\n    static_configs:\n      - targets: [\"{target}\"]\n",
                rules = d.join("rules.yml").display(),
                path = exporter.path(),
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("alertmanager.yml"),
            "route:\n  receiver: nobody\n  group_by: [alertname, project]\n  group_wait: 0s\n  \
             group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: nobody\n",
        )
        .unwrap();
        let log = |name: &str| std::fs::File::create(d.join(name)).unwrap();
        let alertmanager = Command::new("prometheus-alertmanager")
            .arg(format!(
                "--config.file={}",
                d.join("alertmanager.yml").display()
            ))
            .arg(format!("--storage.path={}", d.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(log("alertmanager.log"))
            .stderr(log("alertmanager.err"))
            .spawn()
            .expect("prometheus-alertmanager (Debian package) is installed");
        let prometheus = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                d.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                d.join("prom-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .arg("--rules.alert.resend-delay=1s")
            .stdin(Stdio::null())
            .stdout(log("prometheus.log"))
            .stderr(log("prometheus.err"))
            .spawn()
            .expect("prometheus (Debian package) is installed");
        let a = Alerting {
            prometheus,
            alertmanager,
            prom_port,
            am_port,
            dir,
        };
        for port in [am_port, prom_port] {
            a.wait_ready(port).await;
        }
        a
    }

    async fn wait_ready(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = common::client()
                .get(format!("http://127.0.0.1:{port}/-/ready"))
                .send()
                .await;
            if r.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "port {port} not ready; logs: {}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn logs(&self) -> String {
        ["prometheus.err", "alertmanager.err"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// aetos in front of these two, with `extra` configuration.
    fn aetos(&self, extra: &str) -> Aetos {
        Aetos::start(
            &format!(
                "[prometheus]\nhost = 127.0.0.1\nport = {}\n{extra}\n[alertmanager]\nurl = http://127.0.0.1:{}\n",
                self.prom_port, self.am_port
            ),
            None,
        )
    }

    /// `path` asked of our Prometheus (`prom`) or Alertmanager directly.
    async fn direct(&self, prom: bool, path: &str) -> Value {
        let port = if prom { self.prom_port } else { self.am_port };
        let r = common::client()
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }

    /// Waits until both hold the alerts of every rule for both projects.
    async fn wait_for_alerts(&self) {
        let (demo, other) = (stack().project("demo"), stack().project("other"));
        let mut want: BTreeSet<(String, String)> = ALL_RULES
            .iter()
            .map(|r| (r.to_string(), demo.clone()))
            .collect();
        want.insert((ALLOWED.to_owned(), other.clone()));
        want.insert(("AetosRulesLookalike".to_owned(), other));
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let prom = self.direct(true, "/api/v1/alerts").await;
            let am = self.direct(false, "/api/v2/alerts").await;
            let (p, m) = (named(&prom["data"]["alerts"]), named(&am));
            if want.is_subset(&p) && want.is_subset(&m) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the alerts did not arrive: Prometheus {p:?}, Alertmanager {m:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Alerting {
    fn drop(&mut self) {
        for c in [&mut self.prometheus, &mut self.alertmanager] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The (alertname, project) of each alert of a list.
fn named(alerts: &Value) -> BTreeSet<(String, String)> {
    alerts
        .as_array()
        .unwrap_or_else(|| panic!("a list of alerts: {alerts}"))
        .iter()
        .map(|a| {
            let l = &a["labels"];
            (
                l["alertname"].as_str().unwrap_or("-").to_owned(),
                l["project"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect()
}

/// Each alert's labels as text, sorted (values and timestamps move).
fn labels_of(alerts: &[&Value]) -> Vec<String> {
    let mut out: Vec<String> = alerts.iter().map(|a| a["labels"].to_string()).collect();
    out.sort();
    out
}

/// An Alertmanager answer's fingerprints, sorted.
fn fingerprints<'a>(alerts: impl Iterator<Item = &'a Value>) -> Vec<String> {
    let mut out: Vec<String> = alerts
        .map(|a| a["fingerprint"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

/// What a caller sees: Prometheus `alerts`, Alertmanager `alerts`, and
/// the alerts of Alertmanager's `alerts/groups` (with the groups' names).
struct Seen {
    prom: Value,
    am: Value,
    groups: Vec<Value>,
    group_names: BTreeSet<String>,
}

async fn seen_by(a: &Aetos, tok: &str) -> Seen {
    let (st, prom) = json_of(a.get("/api/v1/alerts", Some(tok)).await).await;
    assert_eq!(st, 200, "{prom}");
    assert_eq!(prom["status"], "success", "{prom}");
    let am_get = |path: &'static str| async move {
        let r = common::client()
            .get(format!("{}/alertmanager/api/v2/{path}", a.url))
            .header("X-Auth-Token", tok)
            .send()
            .await
            .unwrap();
        let (st, v) = json_of(r).await;
        assert_eq!(st, 200, "{path}: {v}");
        v
    };
    let am = am_get("alerts").await;
    let g = am_get("alerts/groups").await;
    let groups: Vec<Value> = g
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["alerts"].as_array().unwrap().clone())
        .collect();
    let group_names = g
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["labels"]["alertname"].as_str().unwrap_or("-").to_owned())
        .collect();
    Seen {
        prom,
        am,
        groups,
        group_names,
    }
}

#[tokio::test]
async fn alerts_are_shown_only_for_rules_whose_expression_is_allowed() {
    let demo = stack().project("demo");
    let alerting = Alerting::start().await;
    alerting.wait_for_alerts().await;
    let dir = tempdir::Dir::new("rules");
    let file = dir.path().join("metric-rules.yaml");
    // Readers: the Ceilometer metrics (and demo's, demo_only_metric
    // narrowed); members (who are readers too): everything.
    std::fs::write(
        &file,
        format!(
            "{}  - roles: [member]\n    allow: ['{{__name__=~\".+\"}}']\n",
            rules(&demo)
        ),
    )
    .unwrap();
    let a = alerting.aetos(&format!("metric_rules_file = {}\n", file.display()));
    let plain = alerting.aetos("");
    let (reader, member, admin) = (
        token("demo-reader").await,
        token("demo-member").await,
        token("admin").await,
    );
    let allowed: BTreeSet<(String, String)> = [(ALLOWED.to_owned(), demo.clone())].into();
    let all_of_demo: BTreeSet<(String, String)> = ALL_RULES
        .iter()
        .map(|r| (r.to_string(), demo.clone()))
        .collect();

    // Restricted: the allowed rule's alerts, all of them, nothing else.
    let direct_prom = alerting.direct(true, "/api/v1/alerts").await;
    let direct_am = alerting.direct(false, "/api/v2/alerts").await;
    let is_allowed =
        |a: &&Value| a["labels"]["alertname"] == ALLOWED && a["labels"]["project"] == demo.as_str();
    let s = seen_by(&a, &reader).await;
    assert_eq!(named(&s.prom["data"]["alerts"]), allowed, "{}", s.prom);
    assert_eq!(
        labels_of(
            &s.prom["data"]["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .collect::<Vec<_>>()
        ),
        labels_of(
            &direct_prom["data"]["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .filter(is_allowed)
                .collect::<Vec<_>>()
        ),
        "the allowed rule's alerts, every one of them"
    );
    for alert in s.prom["data"]["alerts"].as_array().unwrap() {
        for field in ["labels", "annotations", "state", "activeAt", "value"] {
            assert!(alert.get(field).is_some(), "{field} in {alert}");
        }
    }
    assert_eq!(named(&s.am), allowed, "{}", s.am);
    assert_eq!(
        fingerprints(s.am.as_array().unwrap().iter()),
        fingerprints(direct_am.as_array().unwrap().iter().filter(is_allowed))
    );
    assert_eq!(named(&Value::Array(s.groups.clone())), allowed);
    assert_eq!(s.group_names, [ALLOWED.to_owned()].into());
    for text in [s.prom.to_string(), s.am.to_string()] {
        assert!(
            !text.contains("looks_like") && !text.contains("AetosRulesDemoOnly"),
            "{text}"
        );
    }

    // Unrestricted readers of the same project: every alert of demo, with
    // the everything rule (member) and without a rules file (reader).
    for (aetos, tok, who) in [
        (&a, &member, "member, everything rule"),
        (&plain, &reader, "reader, no rules"),
    ] {
        let s = seen_by(aetos, tok).await;
        assert_eq!(
            named(&s.prom["data"]["alerts"]),
            all_of_demo,
            "{who}: {}",
            s.prom
        );
        assert_eq!(named(&s.am), all_of_demo, "{who}: {}", s.am);
        assert_eq!(named(&Value::Array(s.groups)), all_of_demo, "{who}");
    }

    // Admin: unchanged, every alert of every project.
    let s = seen_by(&a, &admin).await;
    assert_eq!(
        named(&s.prom["data"]["alerts"]),
        named(&alerting.direct(true, "/api/v1/alerts").await["data"]["alerts"])
    );
    assert_eq!(
        fingerprints(s.am.as_array().unwrap().iter()),
        fingerprints(
            alerting
                .direct(false, "/api/v2/alerts")
                .await
                .as_array()
                .unwrap()
                .iter()
        )
    );
}
