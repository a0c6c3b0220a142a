//! The policy model end to end: CEL conditions and rules, actions,
//! mutation order and the combined patch, modes, many policies at once.

mod support;

use egate_engine::Mode;
use serde_json::{Value, json};
use support::{
    cel_manifest, debug_review, debug_review_of, denial, fixed_decision_guest, load_manifests, manifest,
    patched_object, wasm_manifest, web_pod,
};

fn privileged_debug() -> Value {
    json!({"name": "dbg", "image": "busybox:1.36", "securityContext": {"privileged": true}})
}

fn plain_debug() -> Value {
    json!({"name": "dbg", "image": "busybox:1.36"})
}

const AT_MOST_TWO: &str = "object.spec.ephemeralContainers.size() <= 2";

#[test]
fn a_cel_only_policy_is_complete() {
    let set = load_manifests(&[cel_manifest(
        "max-two",
        json!({"validations": [{"expression": AT_MOST_TWO, "message": "at most 2 debug containers per pod"}]}),
    )])
    .unwrap();
    // web_pod has one ephemeral container; a second is fine, a third is not.
    assert!(set.review(&debug_review(plain_debug())).unwrap().allowed);
    let mut pod = web_pod();
    pod["spec"]["ephemeralContainers"].as_array_mut().unwrap().push(json!({"name": "two", "image": "busybox:1.36"}));
    let response = set.review(&debug_review_of(&pod, plain_debug(), "alice", &[])).unwrap();
    assert_eq!(denial(&response), "max-two: at most 2 debug containers per pod");
}

#[test]
fn message_expression_then_message_then_the_expression() {
    let rules = json!({"validations": [
        {"expression": "request.userInfo.username != 'alice'",
         "messageExpression": "'user ' + request.userInfo.username + ' may not debug in ' + request.namespace",
         "message": "unused"},
        {"expression": "false", "message": "plain message"},
        {"expression": "object.metadata.name == 'other'"}
    ]});
    let set = load_manifests(&[cel_manifest("who", rules)]).unwrap();
    let message = set.review(&debug_review(plain_debug())).unwrap().status.unwrap().message;
    assert_eq!(
        message,
        "who: user alice may not debug in shop\nwho: plain message\nwho: failed expression: object.metadata.name == 'other'"
    );
}

#[test]
fn params_are_the_settings() {
    let set = load_manifests(&[cel_manifest(
        "registries",
        json!({"settings": {"prefixes": ["ghcr.io/acme/"]},
               "validations": [{"expression":
                   "object.spec.ephemeralContainers.all(c, c.name == 'old' || params.prefixes.exists(p, c.image.startsWith(p)))",
                   "message": "debug images come from ghcr.io/acme/"}]}),
    )])
    .unwrap();
    assert!(!set.review(&debug_review(plain_debug())).unwrap().allowed);
    let acme = json!({"name": "dbg", "image": "ghcr.io/acme/debug:1"});
    assert!(set.review(&debug_review(acme)).unwrap().allowed);
}

#[test]
fn match_conditions_gate_the_policy_and_their_errors_follow_failure_policy() {
    let not_sre = json!({"matchConditions": [{"name": "not-sre", "expression": "!('sre' in request.userInfo.groups)"}],
                         "validations": [{"expression": "false", "message": "no debugging"}]});
    let set = load_manifests(&[cel_manifest("gate", not_sre)]).unwrap();
    assert!(!set.review(&debug_review_of(&web_pod(), plain_debug(), "alice", &["dev"])).unwrap().allowed);
    assert!(set.review(&debug_review_of(&web_pod(), plain_debug(), "bob", &["sre"])).unwrap().allowed);

    let broken = |failure_policy: &str| {
        cel_manifest(
            "broken",
            json!({"failurePolicy": failure_policy,
                   "matchConditions": [{"name": "labels", "expression": "object.metadata.annotations.team == 'a'"}],
                   "validations": [{"expression": "true"}]}),
        )
    };
    let failing = load_manifests(&[broken("Fail")]).unwrap();
    let message = denial(&failing.review(&debug_review(plain_debug())).unwrap()).to_string();
    assert!(
        message.starts_with(r#"broken: the policy failed (matchCondition "labels" could not be evaluated"#),
        "{message}"
    );
    let ignoring = load_manifests(&[broken("Ignore")]).unwrap();
    let response = ignoring.review(&debug_review(plain_debug())).unwrap();
    assert!(response.allowed && response.warnings[0].contains("failurePolicy Ignore"), "{response:?}");
}

#[test]
fn cel_errors_at_load_name_the_policy_the_rule_and_the_position() {
    let syntax = cel_manifest("typo", json!({"validations": [{"expression": "object.spec.containers.size( > 1"}]}));
    let err = load_manifests(&[syntax]).err().unwrap().to_string();
    assert!(err.contains(r#"policy "typo""#) && err.contains("validations[0].expression: at 1:"), "{err}");

    let unknown = cel_manifest(
        "unknown",
        json!({"matchConditions": [{"name": "c", "expression": "pod.spec.hostPID"}],
                                                 "validations": [{"expression": "true"}]}),
    );
    let err = load_manifests(&[unknown]).err().unwrap().to_string();
    assert!(err.contains(r#"matchConditions "c": at 1:0: unknown variable `pod`"#), "{err}");
}

#[test]
fn selectors_and_subjects_choose_requests() {
    let mut deny_web = cel_manifest("deny-web", json!({"validations": [{"expression": "false", "message": "no"}]}));
    deny_web["spec"]["match"]["selector"] = json!({"matchLabels": {"app": "web"}});
    deny_web["spec"]["exclude"] = json!({"subjects": {"groups": ["sre"]}});
    let set = load_manifests(&[deny_web]).unwrap();
    assert!(!set.review(&debug_review(plain_debug())).unwrap().allowed);
    assert!(set.review(&debug_review_of(&web_pod(), plain_debug(), "bob", &["sre"])).unwrap().allowed);
    let mut other = web_pod();
    other["metadata"]["labels"]["app"] = json!("api");
    assert!(set.review(&debug_review_of(&other, plain_debug(), "alice", &[])).unwrap().allowed);
}

/// Twelve policies, wasm and CEL, every action: the response lists every
/// denying policy with its reason and merges warnings and annotations.
#[test]
fn many_policies_combine_into_one_response() {
    let cel = |name: &str, action: &str, expression: &str, message: &str| {
        cel_manifest(
            name,
            json!({"failureAction": action, "validations": [{"expression": expression, "message": message}]}),
        )
    };
    let builtin = |module: &str, name: &str, action: &str| {
        let mut m = manifest(module, Value::Null);
        m["metadata"]["name"] = json!(name);
        m["spec"]["failureAction"] = json!(action);
        m
    };
    let set = load_manifests(
        &[
            builtin("privileged", "enforce-privileged", "Enforce"),
            builtin("privileged", "audit-privileged", "Audit"),
            builtin("privileged", "warn-privileged", "Warn"),
            builtin("capabilities", "caps", "Enforce"),
            builtin("images", "images", "Enforce"),
            builtin("audit", "who-debugs", "Audit"),
            cel(
                "cel-enforce",
                "Enforce",
                "!object.spec.ephemeralContainers.exists(c, has(c.securityContext) && c.securityContext.privileged)",
                "privileged containers are refused by CEL too",
            ),
            cel("cel-audit", "Audit", "request.userInfo.username == 'root'", "only root may debug unnoticed"),
            cel("cel-warn", "Warn", "request.namespace != 'shop'", "debugging in shop is discouraged"),
            cel("cel-pass", "Enforce", AT_MOST_TWO, "unused"),
            cel("cel-other-namespace", "Enforce", "false", "never shown"),
            cel("cel-passes-too", "Warn", "true", "never shown"),
        ]
        .map(|mut m| {
            if m["metadata"]["name"] == "cel-other-namespace" {
                m["spec"]["match"]["namespaces"] = json!(["kube-*"]);
            }
            m
        }),
    )
    .unwrap();
    assert_eq!(set.policies().len(), 12);
    let response = set.review(&debug_review(privileged_debug())).unwrap();
    let message = denial(&response);
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines.len(), 2, "{message}");
    assert!(
        lines[0].starts_with(r#"enforce-privileged: ephemeral container "dbg" sets securityContext.privileged: true"#)
    );
    assert_eq!(lines[1], "cel-enforce: privileged containers are refused by CEL too");
    assert_eq!(response.status.as_ref().unwrap().code, 403);
    assert!(response.audit_annotations["audit-privileged"].contains("privileged: true"));
    assert_eq!(response.audit_annotations["cel-audit"], "only root may debug unnoticed");
    assert!(response.audit_annotations.contains_key("who-debugs.debug-dbg"), "{:?}", response.audit_annotations);
    assert!(response.warnings.iter().any(|w| w.starts_with("warn-privileged: ephemeral container \"dbg\"")));
    assert!(response.warnings.contains(&"cel-warn: debugging in shop is discouraged".to_string()));
}

/// A mutating policy that returns `patch` (a JSON array) for any request.
fn patcher(dir: &std::path::Path, name: &str, patch: Value) -> Value {
    let decision = json!({"allowed": true, "patch": patch}).to_string();
    wasm_manifest(dir, name, &fixed_decision_guest(&decision), json!({"mutating": true}))
}

#[test]
fn validating_policies_judge_the_object_as_mutated_and_modes_split_the_set() {
    let dir = tempfile::tempdir().unwrap();
    let labeller =
        patcher(dir.path(), "labeller", json!([{"op": "add", "path": "/metadata/labels/debugged", "value": "yes"}]));
    // Listed first, but validating: it runs after the mutation and sees it.
    let wants_label = cel_manifest(
        "wants-label",
        json!({"validations": [{"expression": "has(object.metadata.labels.debugged)", "message": "not labelled"}]}),
    );
    let set = load_manifests(&[wants_label, labeller]).unwrap();
    assert_eq!(set.policies()[0].name(), "labeller");
    let review = debug_review(plain_debug());
    let all = set.review(&review).unwrap();
    assert!(all.allowed, "{all:?}");
    assert_eq!(patched_object(&review, &all)["metadata"]["labels"]["debugged"], "yes");

    let mutate = set.review_with(&review, Mode::Mutate).unwrap();
    assert!(mutate.allowed && mutate.patch.is_some());
    // Validate alone sees the object without the label, as a validating
    // webhook would if the mutating one were absent.
    let validate = set.review_with(&review, Mode::Validate).unwrap();
    assert_eq!(denial(&validate), "wants-label: not labelled");
    assert!(validate.patch.is_none());
}

#[test]
fn a_patch_that_does_not_apply_is_a_failure_of_its_policy() {
    let dir = tempfile::tempdir().unwrap();
    let bad = patcher(dir.path(), "bad-patch", json!([{"op": "remove", "path": "/metadata/nothing/here"}]));
    let set = load_manifests(&[bad]).unwrap();
    let message = denial(&set.review(&debug_review(plain_debug())).unwrap()).to_string();
    assert!(
        message.starts_with("bad-patch: the policy failed (module returned a patch that does not apply"),
        "{message}"
    );
}

#[test]
fn a_patch_that_fails_halfway_is_a_failure_not_a_panic() {
    // json-patch's atomic `patch` panics when it cannot undo this one
    // (found by fuzzing): egate applies patches to a copy it drops instead.
    let dir = tempfile::tempdir().unwrap();
    let halfway = json!([
        {"op": "add", "path": "", "value": {}},
        {"op": "add", "path": "/-", "value": 1},
        {"op": "move", "from": "/-", "path": "/a/0"}
    ]);
    let set = load_manifests(&[patcher(dir.path(), "halfway", halfway)]).unwrap();
    let message = denial(&set.review(&debug_review(plain_debug())).unwrap()).to_string();
    assert!(
        message.starts_with("halfway: the policy failed (module returned a patch that does not apply"),
        "{message}"
    );
}

/// A small deterministic generator, so the property test is repeatable.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Property: for any order and subset of mutating policies, the combined
/// patch applied to the original object equals applying each policy's
/// patch in turn.
#[test]
fn the_combined_patch_equals_each_patch_in_turn() {
    let dir = tempfile::tempdir().unwrap();
    let patches: Vec<Value> = vec![
        json!([{"op": "add", "path": "/metadata/labels/a", "value": "1"}]),
        json!([{"op": "add", "path": "/metadata/labels/app", "value": "replaced"}]),
        json!([{"op": "add", "path": "/metadata/annotations", "value": {}},
               {"op": "add", "path": "/metadata/annotations/seen", "value": "x"}]),
        json!([{"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:1.28"}]),
        json!([{"op": "add", "path": "/spec/ephemeralContainers/1/env", "value": [{"name": "DEBUG", "value": "1"}]}]),
        json!([{"op": "remove", "path": "/metadata/labels/app"}, {"op": "add", "path": "/metadata/labels/app", "value": "again"}]),
    ];
    let review = debug_review(plain_debug());
    let original: Value = serde_json::from_slice::<Value>(&review).unwrap()["request"]["object"].clone();
    let mut rng = Lcg(7);
    for round in 0..25 {
        let count = 1 + rng.below(patches.len());
        let chosen: Vec<usize> = (0..count).map(|_| rng.below(patches.len())).collect();
        let manifests: Vec<Value> = chosen
            .iter()
            .enumerate()
            .map(|(i, &p)| patcher(dir.path(), &format!("m{round}-{i}"), patches[p].clone()))
            .collect();
        let set = load_manifests(&manifests).unwrap();
        let response = set.review(&review).unwrap();

        let mut expected = original.clone();
        let mut applied = Vec::new();
        for &p in &chosen {
            let patch: json_patch::Patch = serde_json::from_value(patches[p].clone()).unwrap();
            let mut next = expected.clone();
            if json_patch::patch(&mut next, &patch).is_ok() {
                expected = next;
                applied.push(p);
            }
        }
        if applied.len() == chosen.len() {
            assert!(response.allowed, "round {round}: {response:?}");
            assert_eq!(patched_object(&review, &response), expected, "round {round}, patches {chosen:?}");
        } else {
            // A patch that cannot apply (e.g. `add` under a removed parent)
            // fails its policy, which denies under failurePolicy Fail.
            assert!(denial(&response).contains("does not apply"), "round {round}: {response:?}");
        }
    }
}
