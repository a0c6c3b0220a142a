//! The validating built-ins of one set judge a request together, in one
//! instance of the built-in library that parses the request once. These
//! tests hold that to what each policy decides on its own.

mod support;

use std::path::PathBuf;

use egate_engine::{Mode, PolicySet, Verdict};
use serde_json::{Value, json};
use support::{debug_review_of, load_manifests, manifest, web_pod};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// Each judging policy's verdict, messages included, in order.
fn outcomes(set: &PolicySet, request: &[u8]) -> Vec<(String, Verdict)> {
    let results = set.review_traced(request, Mode::Validate).unwrap().results;
    results.into_iter().map(|r| (r.policy, r.verdict)).collect()
}

/// What each policy decides loaded alone (a set of one has no batch).
fn outcomes_alone(manifests: &[Value], request: &[u8]) -> Vec<(String, Verdict)> {
    manifests
        .iter()
        .filter(|m| m["spec"]["mutating"] != true)
        .flat_map(|m| outcomes(&load_manifests(std::slice::from_ref(m)).unwrap(), request))
        .collect()
}

fn default_manifests() -> Vec<Value> {
    let text = std::fs::read_to_string(repo("policies/default.yaml")).unwrap();
    egate_engine::yaml::documents(&text).unwrap()
}

#[test]
fn the_default_set_decides_as_each_of_its_policies_alone() {
    let manifests = default_manifests();
    let together = load_manifests(&manifests).unwrap();
    let mut requests = 0;
    // The hand-written examples and the requests captured from a real API server.
    let files = ["examples/requests", "examples/requests/captured"]
        .into_iter()
        .flat_map(|dir| std::fs::read_dir(repo(dir)).unwrap().map(|e| e.unwrap().path()))
        .filter(|path| path.is_file());
    for path in files {
        let request = std::fs::read(path).unwrap();
        let batched = outcomes(&together, &request);
        assert!(batched.len() >= 5, "{batched:?}");
        assert_eq!(batched, outcomes_alone(&manifests, &request));
        requests += 1;
    }
    assert!(requests >= 10);
}

#[test]
fn a_policy_that_fails_in_a_batch_fails_alone() {
    // pod-security cannot read a request without an object; the others
    // judge it as usual.
    let manifests = [
        manifest("privileged", json!({})),
        json!({
            "apiVersion": "egate.dev/v1", "kind": "ClusterPolicy", "metadata": {"name": "test-pod-security"},
            "spec": {"match": {"resources": ["pods"], "operations": ["CREATE"]},
                     "module": "builtin:pod-security", "settings": {"level": "restricted"}}
        }),
        json!({
            "apiVersion": "egate.dev/v1", "kind": "ClusterPolicy", "metadata": {"name": "test-audit"},
            "spec": {"match": {"resources": ["pods"], "operations": ["CREATE"]}, "module": "builtin:audit"}
        }),
    ];
    let request = support::review(json!({
        "uid": "1", "operation": "CREATE", "namespace": "shop",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "userInfo": {"username": "alice"}
    }));
    let batched = outcomes(&load_manifests(&manifests).unwrap(), &request);
    assert_eq!(batched.len(), 2, "{batched:?}");
    assert!(
        matches!(&batched[0].1, Verdict::Failure { cause } if cause.to_string().contains("request.object is missing")),
        "{batched:?}"
    );
    assert_eq!(batched, outcomes_alone(&manifests, &request));
}

#[test]
fn a_false_match_condition_drops_a_batched_policy() {
    let mut privileged = manifest("privileged", json!({}));
    privileged["spec"]["matchConditions"] = json!([{"name": "never", "expression": "false"}]);
    let manifests = [privileged, manifest("capabilities", json!({})), manifest("images", json!({}))];
    let request = debug_review_of(
        &web_pod(),
        json!({"name": "dbg", "image": "busybox:1.36", "securityContext": {"privileged": true}}),
        "alice",
        &[],
    );
    let batched = outcomes(&load_manifests(&manifests).unwrap(), &request);
    let names: Vec<&str> = batched.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["test-capabilities", "test-images"]);
    assert_eq!(batched, outcomes_alone(&manifests, &request));
}
