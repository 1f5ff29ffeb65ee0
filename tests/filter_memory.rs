//! Memory held while a large `rules` answer is filtered for a scoped
//! caller: at most about twice the backend body (the body itself plus one
//! output buffer), where a `serde_json::Value` tree cost about eleven times.
//!
//! A counting global allocator (this test binary only) records the peak of
//! live heap bytes while `filter_rules` runs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, SeqCst) + by;
    PEAK.fetch_max(now, SeqCst);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), SeqCst);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new >= l.size() {
                grew(new - l.size());
            } else {
                LIVE.fetch_sub(l.size() - new, SeqCst);
            }
        }
        q
    }
}

#[global_allocator]
static A: Counting = Counting;

/// About `target` bytes of a Prometheus rules answer: groups of alerting
/// rules of projects A and B, each rule with a few alerts.
fn rules_body(target: usize) -> Vec<u8> {
    let mut s = String::with_capacity(target + 4096);
    s.push_str(r#"{"status":"success","data":{"groups":["#);
    let mut g = 0;
    while s.len() < target {
        if g > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            r#"{{"name":"group-{g}","file":"/etc/prometheus/rules/{g}.yml","rules":["#
        ));
        for r in 0..10 {
            let p = if (g + r) % 2 == 0 { "A" } else { "B" };
            if r > 0 {
                s.push(',');
            }
            s.push_str(&format!(
                r#"{{"state":"firing","name":"HighLoad{r}","query":"avg(rate(cpu{{project=\"{p}\"}}[5m])) > 0.9","duration":300,"labels":{{"project":"{p}","severity":"warning"}},"annotations":{{"summary":"CPU of {p} is high on {{{{ $labels.instance }}}}"}},"alerts":["#
            ));
            for a in 0..3 {
                if a > 0 {
                    s.push(',');
                }
                s.push_str(&format!(
                    r#"{{"labels":{{"alertname":"HighLoad{r}","instance":"host-{a}:9100","project":"{p}"}},"annotations":{{"summary":"CPU is high"}},"state":"firing","activeAt":"2024-01-01T00:00:00Z","value":"9.5e-01"}}"#
                ));
            }
            s.push_str(r#"],"health":"ok","evaluationTime":0.001,"lastEvaluation":"2024-01-01T00:00:00Z","type":"alerting"}"#);
        }
        s.push_str(
            r#"],"interval":15,"evaluationTime":0.01,"lastEvaluation":"2024-01-01T00:00:00Z"}"#,
        );
        g += 1;
    }
    s.push_str("]}}");
    s.into_bytes()
}

#[test]
fn filtering_a_50_mb_rules_answer_holds_at_most_about_twice_the_body() {
    let body = rules_body(50 << 20);
    let len = body.len();
    let before = LIVE.load(SeqCst);
    PEAK.store(before, SeqCst);
    let out = aetos::api::filter::filter_rules(&body, "project", "A").unwrap();
    let peak = PEAK.load(SeqCst);
    let extra = peak - before;
    // The body is held already; the filter adds one output buffer sized
    // for it plus small per-entry views.
    assert!(
        extra <= len + len / 10,
        "filtering a {len}-byte body allocated {extra} more bytes at its peak"
    );
    let held = before + extra;
    assert!(
        held <= 2 * len + len / 5,
        "held {held} bytes for a {len}-byte body"
    );
    // Half the rules are A's: the answer is about half the body, and JSON.
    assert!(
        out.len() > len / 3 && out.len() < len * 2 / 3,
        "{}",
        out.len()
    );
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let groups = v["data"]["groups"].as_array().unwrap();
    assert!(groups.iter().all(|g| g["rules"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["labels"]["project"] == "A")));
    drop(v);
    drop(out);
    // Nothing of the filter is left behind (the test harness itself may
    // hold a few bytes more, e.g. for captured output).
    let after = LIVE.load(SeqCst);
    assert!(after < before + 4096, "{} bytes still held", after - before);
}
