//! The mutating built-ins (`harden`, `image-mirror`) and `audit` through
//! their real wasm modules (built by scripts/build-guests.sh and embedded
//! by build.rs): the patch in the AdmissionReview response, applied to the
//! request's object, gives the pod the API server will store.

mod support;

use std::path::PathBuf;

use egate_engine::{AdmissionResponse, PolicySet};
use serde_json::{Value, json};
use support::{debug_review, debug_review_of, judge, load, load_manifests, manifest, patched_object, web_pod};

/// A `manifest` for `builtin:MODULE` with `mutating: true`.
fn mutating(module: &str, settings: Value) -> Value {
    let mut manifest = manifest(module, settings);
    manifest["spec"]["mutating"] = json!(true);
    manifest
}

/// Judges `debug` added to `web_pod` and returns the response and the new
/// debug container (number 1, after `old`) with the response's patch applied.
fn patched_debug(set: &PolicySet, debug: Value) -> (AdmissionResponse, Value) {
    let review = debug_review(debug);
    let response = set.review(&review).unwrap();
    assert!(response.allowed, "{response:?}");
    let object = patched_object(&review, &response);
    // The earlier privileged container `old` is never touched.
    assert_eq!(object["spec"]["ephemeralContainers"][0], web_pod()["spec"]["ephemeralContainers"][0]);
    (response, object["spec"]["ephemeralContainers"][1].clone())
}

/// The response's JSON Patch, decoded.
fn patch_ops(response: &AdmissionResponse) -> Vec<Value> {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.decode(response.patch.as_ref().unwrap()).unwrap();
    serde_json::from_slice(&text).unwrap()
}

fn shipped(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies").join(name).join("policy.yaml")
}

#[test]
fn harden_patches_a_bare_debug_container() {
    let set = load_manifests(&[mutating("harden", json!({}))]).unwrap();
    let (response, debug) =
        patched_debug(&set, json!({"name": "dbg", "image": "busybox:1.36", "targetContainerName": "app"}));
    assert_eq!(
        debug,
        json!({"name": "dbg", "image": "busybox:1.36", "targetContainerName": "app",
               "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                                   "seccompProfile": {"type": "RuntimeDefault"}}})
    );
    assert_eq!(
        patch_ops(&response),
        [json!({"op": "add", "path": "/spec/ephemeralContainers/1/securityContext",
                "value": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                          "seccompProfile": {"type": "RuntimeDefault"}}})]
    );
    assert!(response.warnings.is_empty(), "{:?}", response.warnings);
}

#[test]
fn harden_adds_only_missing_fields_and_never_overrides() {
    let set = load_manifests(&[mutating("harden", json!({"runAsNonRoot": true}))]).unwrap();
    let (_, debug) = patched_debug(
        &set,
        json!({"name": "dbg", "image": "busybox:1.36",
               "securityContext": {"allowPrivilegeEscalation": true, "capabilities": {"add": ["NET_ADMIN"]}}}),
    );
    assert_eq!(
        debug["securityContext"],
        json!({"allowPrivilegeEscalation": true, "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
               "runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}})
    );
}

#[test]
fn harden_leaves_a_fully_set_container_untouched() {
    let set = load_manifests(&[mutating("harden", json!({"runAsNonRoot": true}))]).unwrap();
    let response = judge(
        &set,
        json!({"name": "dbg", "image": "busybox:1.36",
               "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["NET_RAW"]},
                                   "runAsNonRoot": false, "seccompProfile": {"type": "Unconfined"}}}),
    );
    assert!(response.allowed);
    assert_eq!(response.patch, None);
    assert_eq!(response.patch_type, None);
}

#[test]
fn harden_does_not_make_a_privileged_debug_container_invalid() {
    // allowPrivilegeEscalation: false next to privileged: true is refused by
    // the API server's validation, which runs after mutating webhooks.
    let set = load_manifests(&[mutating("harden", json!({}))]).unwrap();
    let (_, debug) =
        patched_debug(&set, json!({"name": "dbg", "image": "busybox:1.36", "securityContext": {"privileged": true}}));
    assert_eq!(
        debug["securityContext"],
        json!({"privileged": true, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}})
    );
}

#[test]
fn harden_refuses_a_seccomp_profile_it_cannot_set() {
    let err = load_manifests(&[mutating("harden", json!({"seccompProfile": "Localhost"}))]).err().unwrap().to_string();
    assert!(err.contains(r#"policy "test-harden""#) && err.contains("needs a localhostProfile path"), "{err}");
}

#[test]
fn a_patch_from_a_policy_not_marked_mutating_is_a_failure() {
    let set = load("harden", json!({})).unwrap();
    let response = judge(&set, json!({"name": "dbg", "image": "busybox:1.36"}));
    let message = &response.status.as_ref().unwrap().message;
    assert!(message.contains("the policy is not `mutating: true`"), "{message}");
}

#[test]
fn image_mirror_rewrites_docker_hub_and_leaves_other_registries() {
    let set = load_manifests(&[mutating("image-mirror", json!({"mirrors": {"docker.io": "mirror.example.com/hub"}}))])
        .unwrap();
    let (response, debug) = patched_debug(&set, json!({"name": "dbg", "image": "busybox:1.36"}));
    assert_eq!(debug["image"], "mirror.example.com/hub/library/busybox:1.36");
    assert_eq!(
        patch_ops(&response),
        [json!({"op": "replace", "path": "/spec/ephemeralContainers/1/image",
                "value": "mirror.example.com/hub/library/busybox:1.36"})]
    );
    let (_, untagged) = patched_debug(&set, json!({"name": "dbg", "image": "nicolaka/netshoot"}));
    assert_eq!(untagged["image"], "mirror.example.com/hub/nicolaka/netshoot:latest");

    let ghcr = judge(&set, json!({"name": "dbg", "image": "ghcr.io/acme/debug:1"}));
    assert!(ghcr.allowed);
    assert_eq!(ghcr.patch, None);
}

#[test]
fn image_mirror_refuses_a_mirror_with_a_scheme() {
    let err =
        load_manifests(&[mutating("image-mirror", json!({"mirrors": {"docker.io": "https://mirror.example.com"}}))])
            .err()
            .unwrap()
            .to_string();
    assert!(err.contains("image references have no scheme"), "{err}");
}

#[test]
fn audit_records_each_new_debug_container() {
    let set = load("audit", json!({})).unwrap();
    let review = debug_review_of(
        &web_pod(),
        json!({"name": "dbg", "image": "nicolaka/netshoot:v0.13", "targetContainerName": "app"}),
        "bob",
        &["sre"],
    );
    let response = set.review(&review).unwrap();
    assert!(response.allowed && response.patch.is_none() && response.warnings.is_empty(), "{response:?}");
    assert_eq!(
        response.audit_annotations,
        [("test-audit.debug-dbg".to_string(), "user=bob image=nicolaka/netshoot:v0.13 target=app".to_string())].into()
    );
    let untargeted = judge(&set, json!({"name": "dbg", "image": "busybox"}));
    assert_eq!(untargeted.audit_annotations["test-audit.debug-dbg"], "user=alice image=busybox target=none");
}

#[test]
fn harden_and_image_mirror_combine_into_one_patch() {
    let set = load_manifests(&[
        manifest("audit", json!({})),
        mutating("harden", json!({})),
        mutating("image-mirror", json!({"mirrors": {"docker.io": "mirror.example.com/hub"}})),
    ])
    .unwrap();
    let (response, debug) = patched_debug(&set, json!({"name": "dbg", "image": "busybox:1.36"}));
    assert_eq!(patch_ops(&response).len(), 2, "{:?}", patch_ops(&response));
    assert_eq!(
        debug,
        json!({"name": "dbg", "image": "mirror.example.com/hub/library/busybox:1.36",
               "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                                   "seccompProfile": {"type": "RuntimeDefault"}}})
    );
    // Validating policies run after the mutating ones and see the patched object.
    assert_eq!(
        response.audit_annotations["test-audit.debug-dbg"],
        "user=alice image=mirror.example.com/hub/library/busybox:1.36 target=none"
    );
}

#[test]
fn the_shipped_manifests_load_with_their_defaults() {
    let set =
        PolicySet::load(&support::sandbox(), &[shipped("harden"), shipped("image-mirror"), shipped("audit")]).unwrap();
    let names: Vec<&str> = set.policies().iter().map(|p| p.name()).collect();
    assert_eq!(names, ["harden", "image-mirror", "audit"]);
    let review = debug_review(json!({"name": "dbg", "image": "busybox:1.36"}));
    let response = set.review(&review).unwrap();
    assert!(response.allowed);
    let debug = &patched_object(&review, &response)["spec"]["ephemeralContainers"][1];
    // image-mirror ships with no mirrors; harden with its defaults.
    assert_eq!(debug["image"], "busybox:1.36");
    assert_eq!(debug["securityContext"]["capabilities"], json!({"drop": ["ALL"]}));
    assert_eq!(response.audit_annotations["audit.debug-dbg"], "user=alice image=busybox:1.36 target=none");
}
