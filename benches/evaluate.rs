//! Criterion benches of the hot path: AdmissionReview bytes in, response
//! bytes out, as `egate eval` and the webhook do it (without process start).
//!
//! Run with `make bench`; figures go to docs/performance.md.

use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use egate_engine::grants::{Grant, GrantIndex, GrantSpec};
use egate_engine::{Inputs, Mode, PolicySet, Sandbox, SandboxConfig};
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

/// A grant in namespace `shop` for alice@acme.example on `pods` (names or
/// a selector), as the cluster would hold it.
fn grant(name: &str, pods: Value) -> Grant {
    let spec: GrantSpec = serde_json::from_value(json!({
        "subjects": {"users": ["alice@acme.example"]}, "pods": pods, "targetContainers": ["app"],
        "images": ["busybox:*"], "profile": "restricted", "duration": "1h", "reason": "bench"
    }))
    .unwrap();
    Grant::from_object("shop", name, &spec, Some("carol"), jiff::Timestamp::now()).unwrap()
}

/// 1,000 grants in the request's namespace: one for its pod, 599 for other
/// pods by name, 400 by labels of other apps; and the one alone.
fn grant_indexes() -> (GrantIndex, GrantIndex) {
    let matching = || grant("for-web", json!({"names": ["web-7d4b9c6f8-x2x9k"]}));
    let mut many = vec![matching()];
    many.extend((0..599).map(|i| grant(&format!("pod-{i}"), json!({"names": [format!("web-{i}")]}))));
    many.extend(
        (0..400).map(|i| grant(&format!("app-{i}"), json!({"selector": {"matchLabels": {"app": format!("app-{i}")}}}))),
    );
    (GrantIndex::new(many), GrantIndex::new([matching()]))
}

/// The cost of debug grants on the request path: finding the pod's live
/// grants among 1,000 in its namespace, and a whole review by
/// builtin:grants with those 1,000 and with the one that matches alone.
fn grants(c: &mut Criterion) {
    let sandbox = Sandbox::new(SandboxConfig::default()).unwrap();
    let request = debug_request();
    let policy = load(&sandbox, "benches/grants.yaml");
    let (many, one) = grant_indexes();
    let labels = std::collections::BTreeMap::from([("app".to_string(), "web".to_string())]);
    let now = jiff::Timestamp::now();
    let review = |index: &GrantIndex| {
        let inputs = Inputs::with_grants(index);
        let traced = policy.review_traced_with(&request, Mode::All, &inputs).unwrap();
        assert!(traced.response.allowed, "the bench grant admits the request");
        traced
    };
    let mut group = c.benchmark_group("grants");
    group.bench_function("lookup_among_1000", |b| {
        b.iter(|| many.live("shop", "web-7d4b9c6f8-x2x9k", Some(&labels), now).count())
    });
    group.bench_function("review_1000_grants", |b| b.iter(|| review(&many)));
    group.bench_function("review_1_grant", |b| b.iter(|| review(&one)));
    group.finish();
}

/// Kubernetes' ValidatingAdmissionPolicy beside the same three rules as an
/// egate CEL policy (issue: the VAP costs no more).
fn kubernetes_policies(c: &mut Criterion) {
    let sandbox = Sandbox::new(SandboxConfig::default()).unwrap();
    let request = debug_request();
    let egate = load(&sandbox, "benches/three-cel-rules.yaml");
    let vap = load(&sandbox, "benches/three-rules-vap.yaml");
    assert!(egate.review(&request).unwrap().allowed && vap.review(&request).unwrap().allowed, "every rule runs");
    let mut group = c.benchmark_group("kubernetes_policies");
    group.bench_function("three_rules_egate_cel", |b| b.iter(|| egate.review_bytes(&request).unwrap()));
    group.bench_function("three_rules_vap", |b| b.iter(|| vap.review_bytes(&request).unwrap()));
    group.finish();
}

criterion_group!(benches, hot_path, grants, kubernetes_policies);
criterion_main!(benches);
