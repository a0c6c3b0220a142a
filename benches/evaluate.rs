//! Criterion benches of the hot path: AdmissionReview bytes in, response
//! bytes out, as `egate eval` and the webhook do it (without process start).
//!
//! Run with `make bench`; figures go to docs/performance.md.

use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use egate_engine::{PolicySet, Sandbox, SandboxConfig};
use serde_json::{Value, json};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn load(sandbox: &Sandbox, manifest: &str) -> PolicySet {
    PolicySet::load(sandbox, &[repo(manifest)]).expect("the bench policies load")
}

/// The example kubectl debug request, compact (about 9 KB).
fn debug_request() -> Vec<u8> {
    let review: Value =
        serde_json::from_slice(&std::fs::read(repo("examples/requests/debug-allowed.json")).unwrap()).unwrap();
    serde_json::to_vec(&review).unwrap()
}

/// The same request on a pod of 50 containers (about 40 KB).
fn large_request() -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(&debug_request()).unwrap();
    for side in ["object", "oldObject"] {
        let containers = review["request"][side]["spec"]["containers"].as_array_mut().unwrap();
        let template = containers[0].clone();
        for i in containers.len()..50 {
            let mut container = template.clone();
            container["name"] = json!(format!("sidecar-{i}"));
            containers.push(container);
        }
    }
    serde_json::to_vec(&review).unwrap()
}

fn hot_path(c: &mut Criterion) {
    let sandbox = Sandbox::new(SandboxConfig::default()).unwrap();
    let request = debug_request();
    let large = large_request();
    let unmatched = load(&sandbox, "benches/unmatched.yaml");
    let one = load(&sandbox, "benches/one-policy.yaml");
    let cel = load(&sandbox, "benches/one-cel-rule.yaml");
    let mutation = load(&sandbox, "benches/mutation.yaml");
    let default_set = load(&sandbox, "policies/default.yaml");

    let mut group = c.benchmark_group("review");
    group.bench_function("parse_and_match_only", |b| b.iter(|| unmatched.review_bytes(&request).unwrap()));
    group.bench_function("one_wasm_policy", |b| b.iter(|| one.review_bytes(&request).unwrap()));
    group.bench_function("one_cel_rule", |b| b.iter(|| cel.review_bytes(&request).unwrap()));
    group.bench_function("mutation", |b| b.iter(|| mutation.review_bytes(&request).unwrap()));
    group.bench_function("default_set", |b| b.iter(|| default_set.review_bytes(&request).unwrap()));
    group.bench_function("default_set_large_pod", |b| b.iter(|| default_set.review_bytes(&large).unwrap()));
    group.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
