//! Helpers for native tests of policies and of the engine: the
//! AdmissionRequest `kubectl debug` sends, built from the pod and the
//! container it adds, and the pods tests use. The engine's tests build
//! their requests here too, so there is one shape of a debug request.

use serde_json::{Value, json};

/// The AdmissionRequest of `kubectl debug`: an UPDATE of
/// `pods/ephemeralcontainers` whose `object` is `pod` plus `debug` among its
/// ephemeral containers, and whose `oldObject` is `pod` as given.
pub fn debug_request(pod: &Value, debug: Value, username: &str, groups: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&debug_request_json(pod, debug, username, groups)).expect("JSON values serialise")
}

/// [`debug_request`] inside an AdmissionReview, as the API server sends it
/// to a webhook.
pub fn debug_review(pod: &Value, debug: Value, username: &str, groups: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&debug_review_json(pod, debug, username, groups)).expect("JSON values serialise")
}

/// [`debug_review`] as a JSON value: what `egate scaffold request` starts
/// from, so that tests and scaffolded requests have the one shape the API
/// server sends.
pub fn debug_review_json(pod: &Value, debug: Value, username: &str, groups: &[&str]) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": debug_request_json(pod, debug, username, groups),
    })
}

fn debug_request_json(pod: &Value, debug: Value, username: &str, groups: &[&str]) -> Value {
    let mut object = pod.clone();
    let spec = &mut object["spec"];
    match spec.get_mut("ephemeralContainers").and_then(Value::as_array_mut) {
        Some(list) => list.push(debug),
        None => spec["ephemeralContainers"] = json!([debug]),
    }
    let kind = json!({"group": "", "version": "v1", "kind": "Pod"});
    let resource = json!({"group": "", "version": "v1", "resource": "pods"});
    json!({
        "uid": "00000000-0000-0000-0000-000000000001",
        "kind": kind,
        "resource": resource,
        "subResource": "ephemeralcontainers",
        "requestKind": kind,
        "requestResource": resource,
        "requestSubResource": "ephemeralcontainers",
        "name": pod["metadata"]["name"].as_str().unwrap_or("web"),
        "namespace": pod["metadata"]["namespace"].as_str().unwrap_or("default"),
        "operation": "UPDATE",
        "userInfo": {"username": username, "groups": groups},
        "object": object,
        "oldObject": pod,
        "dryRun": false,
        "options": {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"},
    })
}

/// A small pod with one container `app`, for tests.
pub fn web_pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}
    })
}

/// [`web_pod`] after an earlier `kubectl debug --profile=sysadmin`: it
/// already has a privileged ephemeral container `old`, which a policy must
/// not judge again.
pub fn debugged_web_pod() -> Value {
    let mut pod = web_pod();
    pod["spec"]["ephemeralContainers"] =
        json!([{"name": "old", "image": "busybox", "securityContext": {"privileged": true}}]);
    pod
}

/// Runs a policy function on the request that adds `debug` to [`web_pod`]
/// as user `alice`, and returns its decision (an error becomes a failure).
pub fn judge_debug<S, F, D>(policy: F, debug: Value, settings: &S) -> crate::Decision
where
    F: Fn(&crate::Request<'_>, &S) -> D,
    D: crate::IntoDecision,
{
    let bytes = debug_request(&web_pod(), debug, "alice", &[]);
    let request = crate::Request::parse(&bytes).expect("debug_request builds a valid request");
    policy(&request, settings).into_decision()
}
