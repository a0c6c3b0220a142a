//! Kubernetes ValidatingAdmissionPolicy and MutatingAdmissionPolicy loaded
//! from policy files and judging `kubectl debug` requests offline: what
//! loads, what is refused (naming the field), and the API server's
//! messages, actions and mutations. tests/e2e/admission_policies.rs holds
//! the same policies to the real API server.

mod support;

use std::path::Path;

use egate_engine::PolicySet;
use egate_guest::testing::{debug_review, web_pod};
use serde_json::{Value, json};
use support::{patched_object, sandbox};

const HEAD: &str = "apiVersion: admissionregistration.k8s.io/v1\n";

fn load(text: &str) -> Result<PolicySet, String> {
    PolicySet::from_manifests(&sandbox(), Path::new("policies/k8s.yaml"), text).map_err(|e| e.to_string())
}

/// A ValidatingAdmissionPolicy on debug requests with `spec` added, bound
/// with `actions`.
fn policy(spec: &str, actions: &str) -> String {
    format!(
        "{HEAD}kind: ValidatingAdmissionPolicy\nmetadata: {{name: debug}}\nspec:\n  matchConstraints:\n    resourceRules:\n    \
         - {{apiGroups: [\"\"], apiVersions: [v1], operations: [UPDATE], resources: [pods/ephemeralcontainers]}}\n{spec}\
         ---\n{HEAD}kind: ValidatingAdmissionPolicyBinding\nmetadata: {{name: debug-binding}}\n\
         spec: {{policyName: debug, validationActions: {actions}}}\n"
    )
}

fn privileged_debug() -> Vec<u8> {
    let debug = json!({"name": "dbg", "image": "busybox:1.36", "securityContext": {"privileged": true}});
    debug_review(&web_pod(), debug, "alice", &["sre"])
}

const NOT_PRIVILEGED: &str = "  validations:\n  - expression: \"object.spec.ephemeralContainers.all(c, !has(c.securityContext) || \
     !has(c.securityContext.privileged) || !c.securityContext.privileged)\"\n    message: no privileged debug containers\n    \
     reason: Forbidden\n";

#[test]
fn a_denial_is_worded_as_the_api_server_words_it() {
    let set = load(&policy(NOT_PRIVILEGED, "[Deny]")).unwrap();
    let response = set.review(&privileged_debug()).unwrap();
    let status = response.status.unwrap();
    assert_eq!(
        status.message,
        "ValidatingAdmissionPolicy 'debug' with binding 'debug-binding' denied request: no privileged debug containers"
    );
    assert_eq!(status.code, 403, "reason Forbidden");
    let plain = debug_review(&web_pod(), json!({"name": "dbg", "image": "busybox:1.36"}), "alice", &["sre"]);
    assert!(set.review(&plain).unwrap().allowed);
}

#[test]
fn warn_and_audit_actions_admit() {
    let set = load(&policy(NOT_PRIVILEGED, "[Warn, Audit]")).unwrap();
    let response = set.review(&privileged_debug()).unwrap();
    assert!(response.allowed);
    assert_eq!(
        response.warnings,
        [
            "Validation failed for ValidatingAdmissionPolicy 'debug' with binding 'debug-binding': no privileged debug containers"
        ]
    );
    let failure: Value = serde_json::from_str(&response.audit_annotations["debug.validation_failure"]).unwrap();
    assert_eq!(failure[0]["message"], "no privileged debug containers");
    assert_eq!(failure[0]["validationActions"], json!(["Warn", "Audit"]));
}

#[test]
fn variables_params_and_message_expressions() {
    let spec = "  paramKind: {apiVersion: v1, kind: ConfigMap}\n  variables:\n  - {name: images, expression: \
                \"object.spec.ephemeralContainers.map(c, c.image)\"}\n  validations:\n  - expression: \
                \"variables.images.all(i, i in params.data.images.split(','))\"\n    messageExpression: \"'debug images \
                must be one of ' + params.data.images\"\n";
    let mut text = policy(spec, "[Deny]");
    text = text.replace(
        "validationActions: [Deny]",
        "validationActions: [Deny], paramRef: {name: limits, parameterNotFoundAction: Deny}",
    );
    text.push_str("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: limits, namespace: shop}\ndata: {images: \"registry.example/tools:1\"}\n");
    let set = load(&text).unwrap();
    let mut review: Value = serde_json::from_slice(&privileged_debug()).unwrap();
    review["request"]["namespace"] = json!("shop");
    let response = set.review(&serde_json::to_vec(&review).unwrap()).unwrap();
    assert!(
        response
            .status
            .unwrap()
            .message
            .ends_with("denied request: debug images must be one of registry.example/tools:1")
    );
    review["request"]["namespace"] = json!("elsewhere");
    let response = set.review(&serde_json::to_vec(&review).unwrap()).unwrap();
    assert!(
        response.status.unwrap().message.ends_with(
            "denied request: failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction"
        )
    );
}

#[test]
fn errors_follow_the_failure_policy_and_authorizer_is_named() {
    let failing = "  validations:\n  - expression: \"object.spec.nothing == 1\"\n";
    let denied = load(&policy(failing, "[Deny]")).unwrap().review(&privileged_debug()).unwrap();
    assert!(denied.status.unwrap().message.contains("resulted in error: no such key: nothing"));
    let ignored = load(&policy(&format!("  failurePolicy: Ignore\n{failing}"), "[Deny]")).unwrap();
    assert!(ignored.review(&privileged_debug()).unwrap().allowed);
    let asks = "  validations:\n  - expression: \"authorizer.group('').resource('pods').check('get').allowed()\"\n";
    let denied = load(&policy(asks, "[Deny]")).unwrap().review(&privileged_debug()).unwrap();
    let message = denied.status.unwrap().message;
    assert!(message.contains("authorizer is not available in egate"), "{message}");
}

#[test]
fn what_egate_does_not_support_or_the_api_server_refuses_is_refused_at_load() {
    let cases = [
        (
            policy(NOT_PRIVILEGED, "[Deny]").replace("  validations:", "  typoField: 1\n  validations:"),
            "unknown field `typoField`",
        ),
        (policy(NOT_PRIVILEGED, "[Deny, Warn]"), "both Deny and Warn"),
        (policy(NOT_PRIVILEGED, "[]"), "validationActions of the binding is empty"),
        (
            policy(NOT_PRIVILEGED, "[Deny]").replace("policyName: debug,", "policyName: other,"),
            "there is no ValidatingAdmissionPolicy \"other\"",
        ),
        (policy(NOT_PRIVILEGED, "[Deny]").replace("reason: Forbidden", "reason: Teapot"), "reason is \"Teapot\""),
        (policy("  validations:\n  - expression: \"object.spec ==\"\n", "[Deny]"), "spec.validations[0].expression"),
        (policy("  validations:\n  - expression: \"variables.x == 1\"\n", "[Deny]"), "unknown variable `variables.x`"),
        (
            policy(NOT_PRIVILEGED, "[Deny]").replace(
                "admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\n",
                "admissionregistration.k8s.io/v1alpha1\nkind: ValidatingAdmissionPolicy\n",
            ),
            "write apiVersion: admissionregistration.k8s.io/v1",
        ),
        (
            format!("{}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\n", policy(NOT_PRIVILEGED, "[Deny]")),
            "nor the params of one",
        ),
        (policy(NOT_PRIVILEGED, "[Deny]").split("---").next().unwrap().to_string(), "has no binding in these files"),
    ];
    for (text, expected) in cases {
        let err = load(&text).err().unwrap_or_else(|| panic!("loads:\n{text}"));
        assert!(err.contains(expected), "{expected:?} not in: {err}");
        assert!(err.contains("policies/k8s.yaml"), "the file is named: {err}");
    }
}

#[test]
fn a_mutating_policy_patches_the_new_debug_container() {
    let text = format!(
        "{HEAD}kind: MutatingAdmissionPolicy\nmetadata: {{name: harden}}\nspec:\n  reinvocationPolicy: Never\n  \
         matchConstraints:\n    resourceRules:\n    - {{apiGroups: [\"\"], apiVersions: [v1], operations: [UPDATE], \
         resources: [pods/ephemeralcontainers]}}\n  mutations:\n  - patchType: ApplyConfiguration\n    \
         applyConfiguration:\n      expression: \"Object{{spec: Object.spec{{ephemeralContainers: [Object.spec.ephemeralContainers{{\
         name: 'dbg', securityContext: Object.spec.ephemeralContainers.securityContext{{allowPrivilegeEscalation: false}}}}]}}}}\"\n\
         ---\n{HEAD}kind: MutatingAdmissionPolicyBinding\nmetadata: {{name: harden}}\nspec: {{policyName: harden}}\n"
    );
    let set = load(&text).unwrap();
    let review = debug_review(&web_pod(), json!({"name": "dbg", "image": "busybox:1.36"}), "alice", &["sre"]);
    let response = set.review(&review).unwrap();
    assert!(response.allowed);
    let pod = patched_object(&review, &response);
    let added = pod["spec"]["ephemeralContainers"].as_array().unwrap().iter().find(|c| c["name"] == "dbg").unwrap();
    assert_eq!(added["securityContext"], json!({"allowPrivilegeEscalation": false}));
    assert_eq!(added["image"], "busybox:1.36");
}

/// A MutatingAdmissionPolicy on pod CREATEs that applies `labels` when `condition` holds.
fn labelling(name: &str, reinvocation: &str, condition: &str, labels: &str) -> String {
    format!(
        "{HEAD}kind: MutatingAdmissionPolicy\nmetadata: {{name: {name}}}\nspec:\n  reinvocationPolicy: {reinvocation}\n  \
         matchConstraints:\n    resourceRules:\n    - {{apiGroups: [\"\"], apiVersions: [v1], operations: [CREATE], \
         resources: [pods]}}\n  matchConditions:\n  - {{name: when, expression: \"{condition}\"}}\n  mutations:\n  \
         - patchType: ApplyConfiguration\n    applyConfiguration:\n      expression: \"Object{{metadata: \
         Object.metadata{{labels: {labels}}}}}\"\n---\n{HEAD}kind: MutatingAdmissionPolicyBinding\nmetadata: \
         {{name: {name}}}\nspec: {{policyName: {name}}}\n---\n"
    )
}

#[test]
fn if_needed_runs_a_policy_again_after_a_later_change() {
    let copy = |reinvocation| {
        labelling("copy", reinvocation, "'team' in object.metadata.labels", "{'owner': object.metadata.labels.team}")
    };
    let team = labelling("team", "Never", "true", "{'team': 'shop'}");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "p"}},
                     "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    let request = json!({"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "operation": "CREATE", "namespace": "shop",
        "name": "p", "userInfo": {"username": "alice"}, "object": pod});
    let review = support::review(request);
    for (reinvocation, owner) in [("IfNeeded", json!("shop")), ("Never", Value::Null)] {
        let set = load(&format!("{}{team}", copy(reinvocation))).unwrap();
        let response = set.review(&review).unwrap();
        let labels = patched_object(&review, &response)["metadata"]["labels"].clone();
        assert_eq!(labels["team"], "shop");
        assert_eq!(labels["owner"], owner, "{reinvocation}");
    }
}

/// The API server's CEL cost limits, on the corpus files the e2e test holds
/// to the API server (tests/admission-policies/cost-*.yaml).
#[test]
fn cel_cost_limits_are_the_api_servers() {
    let judge = |file: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/admission-policies").join(file);
        let set = load(&std::fs::read_to_string(path).unwrap()).unwrap();
        let plain = debug_review(&web_pod(), json!({"name": "dbg", "image": "busybox:1.36"}), "alice", &["sre"]);
        let response = set.review(&plain).unwrap();
        response.status.map(|s| s.message)
    };
    let denied = |file: &str, policy: &str, message: &str| {
        let expected =
            format!("ValidatingAdmissionPolicy '{policy}' with binding '{policy}-binding' denied request: {message}");
        assert_eq!(judge(file).as_deref(), Some(expected.as_str()), "{file}");
    };
    let out_of_budget = "validation failed due to running out of cost budget, no further validation rules will be run";
    denied("cost-budget-over.yaml", "cost-budget-over", out_of_budget);
    assert_eq!(judge("cost-budget-under.yaml"), None, "eleven rules fit the budget");
    denied("cost-message-budget.yaml", "cost-message-budget", &format!("failed messageExpression: {out_of_budget}"));
    let runaway = judge("cost-per-call-limit.yaml").unwrap();
    assert!(runaway.ends_with("resulted in error: operation cancelled: actual cost limit exceeded"), "{runaway}");
}
