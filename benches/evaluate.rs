//! Criterion benches of the hot path: AdmissionReview bytes in, response
//! bytes out, as `egate eval` and the webhook do it (without process start).
//!
//! Run with `make bench`; figures go to docs/performance.md.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use egate_engine::{PolicySet, Sandbox, SandboxConfig};

fn example(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn load(sandbox: &Sandbox, manifest: &str) -> PolicySet {
    PolicySet::load(sandbox, &[example(manifest)]).expect("the bench policies load")
}

fn hot_path(c: &mut Criterion) {
    let sandbox = Sandbox::new(SandboxConfig::default()).unwrap();
    let request = std::fs::read(example("examples/requests/debug-allowed.json")).unwrap();
    let denied = std::fs::read(example("examples/requests/debug-privileged.json")).unwrap();
    let one = load(&sandbox, "benches/one-policy.yaml");
    let set = load(&sandbox, "examples/policies/debug-policies.yaml");
    let unmatched = load(&sandbox, "benches/unmatched.yaml");

    let mut group = c.benchmark_group("review");
    group.bench_function("parse_and_match_only", |b| b.iter(|| unmatched.review_bytes(&request).unwrap()));
    group.bench_function("one_wasm_policy", |b| b.iter(|| one.review_bytes(&request).unwrap()));
    group.bench_function("example_set_allowed", |b| b.iter(|| set.review_bytes(&request).unwrap()));
    group.bench_function("example_set_denied", |b| b.iter(|| set.review_bytes(&denied).unwrap()));
    group.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
