//! Malformed and hostile AdmissionReviews against the built-in policies:
//! each is answered with a clear error or a decision, never a crash or a hang.

mod support;

use egate_engine::PolicySet;
use serde_json::{Value, json};
use support::{debug_review_of, load_manifests, manifest, web_pod};

fn every_builtin() -> PolicySet {
    let modules = [
        "privileged",
        "capabilities",
        "images",
        "target",
        "run-as-non-root",
        "privilege-escalation",
        "namespaces",
        "max-count",
        "volume-mounts",
        "env-secrets",
        "pod-security",
        "audit",
    ];
    let mut manifests: Vec<Value> = modules.iter().map(|m| manifest(m, Value::Null)).collect();
    // pod-security also judges plain pods.
    manifests[10]["spec"]["match"]["resources"] = json!(["pods", "pods/ephemeralcontainers"]);
    load_manifests(&manifests).unwrap()
}

/// Judges bytes; returns "error: ..." or "allowed" / "denied: ...".
fn outcome(set: &PolicySet, bytes: &[u8]) -> String {
    match set.review(bytes) {
        Ok(r) if r.allowed => "allowed".into(),
        Ok(r) => format!("denied: {}", r.status.unwrap().message),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn malformed_reviews_are_clear_errors() {
    let set = every_builtin();
    let valid = debug_review_of(&web_pod(), json!({"name": "dbg", "image": "busybox:1.36"}), "alice", &[]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", b"".to_vec(), "not valid JSON"),
        ("truncated", valid[..valid.len() / 2].to_vec(), "not valid JSON"),
        ("non-UTF-8", [&valid[..20], b"\xff\xfe", &valid[20..]].concat(), "not valid JSON"),
        ("non-UTF-8 in an unknown member", [&valid[..valid.len() - 1], b",\"x\": \"\xff\"}"].concat(), "not UTF-8"),
        ("array", b"[1, 2, 3]".to_vec(), "not valid JSON"),
        ("wrong kind", br#"{"apiVersion": "v1", "kind": "Pod"}"#.to_vec(), "expected apiVersion admission.k8s.io/v1"),
        ("no request", br#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}"#.to_vec(), "has no request"),
        (
            "uid of the wrong type",
            br#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": 7, "operation": "UPDATE", "resource": {"resource": "pods"}}}"#.to_vec(),
            "request is invalid",
        ),
    ];
    for (name, bytes, expected) in cases {
        let got = outcome(&set, &bytes);
        assert!(got.starts_with("error: ") && got.contains(expected), "{name}: {got}");
    }
}

#[test]
fn objects_of_the_wrong_shape_are_policy_failures_not_crashes() {
    let set = every_builtin();
    let mut review: Value =
        serde_json::from_slice(&debug_review_of(&web_pod(), json!({"name": "dbg"}), "alice", &[])).unwrap();
    review["request"]["object"]["spec"]["ephemeralContainers"] = json!("not a list");
    let got = outcome(&set, &serde_json::to_vec(&review).unwrap());
    assert!(
        got.starts_with("denied: ") && got.contains("the policy failed") && got.contains("could not decide"),
        "{got}"
    );
}

#[test]
fn huge_and_deep_inputs_get_a_decision_or_an_error() {
    let set = every_builtin();
    // 10,000 containers in the pod.
    let mut pod = web_pod();
    pod["spec"]["containers"] =
        Value::Array((0..10_000).map(|i| json!({"name": format!("c{i}"), "image": "nginx:1.27"})).collect());
    let got = outcome(&set, &debug_review_of(&pod, json!({"name": "dbg", "image": "busybox:1.36"}), "alice", &[]));
    assert!(got.starts_with("allowed") || got.starts_with("denied: "), "{got}");

    // A 1 MiB string in a label.
    let mut pod = web_pod();
    pod["metadata"]["labels"]["huge"] = json!("x".repeat(1 << 20));
    let got = outcome(&set, &debug_review_of(&pod, json!({"name": "dbg", "image": "busybox:1.36"}), "alice", &[]));
    assert!(got.starts_with("allowed") || got.starts_with("denied: "), "{got}");

    // Nesting 10,000 deep inside the labels: the host skips it unparsed;
    // guests that read labels refuse it, each a clean failure of its policy.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let text =
        String::from_utf8(debug_review_of(&web_pod(), json!({"name": "dbg", "image": "busybox:1.36"}), "alice", &[]))
            .unwrap();
    let text = text.replacen(r#""labels":{"#, &format!(r#""labels":{{"deep":{deep},"#), 1);
    let got = outcome(&set, text.as_bytes());
    assert!(got.starts_with("error: ") || got.contains("the policy failed"), "{got}");
}
