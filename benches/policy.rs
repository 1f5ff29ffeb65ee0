//! Cost of a policy decision on the request hot path (target: ~1 µs with
//! cached rules), for the rules every scoped and privileged request checks.

use aetos::policy::{credentials_from_token, Enforcer, PolicyOptions};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use std::hint::black_box;

fn enforce(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("aetos-policy-bench-{}", std::process::id()));
    let opts = PolicyOptions {
        policy_file: dir.join("policy.yaml").display().to_string(),
        policy_dirs: vec![dir.join("policy.d").display().to_string()],
        config_dirs: vec![dir.clone()],
        ..PolicyOptions::default()
    };
    let enforcer = Enforcer::new(opts).expect("defaults load");
    let reader = credentials_from_token(&json!({"token": {
        "user": {"id": "u", "name": "n", "domain": {"id": "default"}},
        "project": {"id": "8f1c0ad2a6c84f6c9a8a2b0c1d2e3f40", "name": "demo", "domain": {"id": "default"}},
        "roles": [{"name": "reader"}],
    }}));
    let target = json!({"project_id": reader["project_id"]});
    c.bench_function(
        "enforce telemetry:query:all_projects (denied reader)",
        |b| {
            b.iter(|| enforcer.enforce(black_box("telemetry:query:all_projects"), &target, &reader))
        },
    );
    c.bench_function("enforce telemetry:query (allowed reader)", |b| {
        b.iter(|| enforcer.enforce(black_box("telemetry:query"), &target, &reader))
    });
    c.bench_function("enforce segregation (rule: reference)", |b| {
        b.iter(|| enforcer.enforce(black_box("segregation"), &target, &reader))
    });
}

criterion_group!(benches, enforce);
criterion_main!(benches);
