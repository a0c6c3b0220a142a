//! The background scan: existing pods, their ephemeral containers
//! included, judged by the policies with `background: true`, as
//! PolicyReport results. `egate scan` runs it once; `egate serve
//! --policies-from cluster` runs it at start and every `--scan-interval`.
//!
//! A pod that exists was admitted long ago, perhaps before the policy
//! existed. The scan judges it with two requests the API server could have
//! sent: its CREATE (rule `pod`, for policies on `pods`), and, when it has
//! ephemeral containers, the UPDATE of `pods/ephemeralcontainers` adding
//! all of them (rule `ephemeral-containers`, for policies on `kubectl
//! debug`). Policies that need the requester (userInfo) do not run in a
//! scan: there is none.

use egate_engine::manifest::ViolationAction;
use egate_engine::{Mode, PolicySet, Verdict};
use serde_json::{Value, json};

use super::report::{Outcome, ReportResult, ResourceRef, SOURCE, Timestamp};

/// Who the scan's requests come from.
const SCANNER: &str = "system:egate:background-scan";

/// Judges every pod; one result per pod, rule and policy that judged it.
pub fn scan(set: &PolicySet, pods: &[Value]) -> Vec<ReportResult> {
    let timestamp = Timestamp::now();
    let mut results = Vec::new();
    for pod in pods {
        for (rule, review) in reviews_of(pod) {
            let Ok(traced) = set.review_traced(&review, Mode::Background) else { continue };
            for judged in traced.results {
                results.push(ReportResult {
                    source: SOURCE.into(),
                    policy: judged.policy.clone(),
                    rule: rule.into(),
                    result: outcome(&judged.verdict, judged.action),
                    severity: if judged.action == ViolationAction::Enforce { "high" } else { "medium" }.into(),
                    message: message(&judged.verdict),
                    scored: true,
                    resources: vec![resource_ref(pod)],
                    timestamp,
                });
            }
        }
    }
    results
}

fn outcome(verdict: &Verdict, action: ViolationAction) -> Outcome {
    match verdict {
        Verdict::Pass { .. } => Outcome::Pass,
        Verdict::Violation { .. } if action == ViolationAction::Enforce => Outcome::Fail,
        Verdict::Violation { .. } => Outcome::Warn,
        Verdict::Failure { .. } => Outcome::Error,
    }
}

fn message(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Pass { .. } => String::new(),
        Verdict::Violation { message, .. } => message.clone(),
        Verdict::Failure { cause } => format!("the policy failed: {cause}"),
    }
}

fn resource_ref(pod: &Value) -> ResourceRef {
    let field = |name: &str| pod["metadata"][name].as_str().unwrap_or_default().to_string();
    ResourceRef {
        api_version: "v1".into(),
        kind: "Pod".into(),
        namespace: field("namespace"),
        name: field("name"),
        uid: field("uid"),
    }
}

/// The AdmissionReviews a scan judges `pod` with, by rule.
fn reviews_of(pod: &Value) -> Vec<(&'static str, Vec<u8>)> {
    let mut reviews = vec![("pod", review(pod, "CREATE", None, pod, &Value::Null))];
    let has_debug_containers = pod["spec"]["ephemeralContainers"].as_array().is_some_and(|list| !list.is_empty());
    if has_debug_containers {
        let mut before = pod.clone();
        before["spec"].as_object_mut().map(|spec| spec.remove("ephemeralContainers"));
        reviews.push(("ephemeral-containers", review(pod, "UPDATE", Some("ephemeralcontainers"), pod, &before)));
    }
    reviews
}

fn review(pod: &Value, operation: &str, sub_resource: Option<&str>, object: &Value, old_object: &Value) -> Vec<u8> {
    let metadata = &pod["metadata"];
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("background-scan-{}", metadata["uid"].as_str().unwrap_or_default()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "subResource": sub_resource,
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "operation": operation,
            "userInfo": {"username": SCANNER},
            "object": object,
            "oldObject": old_object,
        }
    });
    serde_json::to_vec(&review).expect("JSON values serialise")
}
