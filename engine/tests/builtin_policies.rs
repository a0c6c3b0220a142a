//! The built-in policies through their real wasm modules (built by
//! scripts/build-guests.sh and embedded by build.rs).

mod support;

use egate_engine::AdmissionResponse;
use serde_json::{Value, json};
use support::{denial, judge, load};

#[test]
fn privileged_denies_only_the_new_privileged_container() {
    let set = load("privileged", Value::Null).unwrap();
    let response =
        judge(&set, json!({"name": "dbg", "image": "busybox:1.36", "securityContext": {"privileged": true}}));
    let message = denial(&response);
    assert!(
        message.starts_with(r#"test-privileged: ephemeral container "dbg" sets securityContext.privileged: true"#),
        "{message}"
    );
    assert_eq!(response.status.as_ref().unwrap().code, 403);
    // The earlier privileged container "old" is not judged again.
    assert!(judge(&set, json!({"name": "dbg", "image": "busybox:1.36"})).allowed);
}

#[test]
fn privileged_takes_no_settings() {
    let err = load("privileged", json!({"strict": true})).err().unwrap().to_string();
    assert!(err.contains(r#"policy "test-privileged""#) && err.contains("unknown field `strict`"), "{err}");
}

#[test]
fn capabilities_defaults_and_settings() {
    let set = load("capabilities", json!({})).unwrap();
    let netadmin = json!({"name": "dbg", "image": "busybox:1.36",
                          "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_BIND_SERVICE"]}}});
    let message = denial(&judge(&set, netadmin.clone())).to_string();
    assert!(message.contains(r#""dbg" adds capabilities [NET_ADMIN]"#), "{message}");
    assert!(message.contains("allowed are [AUDIT_WRITE, CHOWN"), "{message}");

    let permissive = load("capabilities", json!({"allowedCapabilities": ["NET_ADMIN", "NET_BIND_SERVICE"]})).unwrap();
    assert!(judge(&permissive, netadmin).allowed);

    let drop_all = load("capabilities", json!({"requireDropAll": true})).unwrap();
    let message = denial(&judge(&drop_all, json!({"name": "dbg", "image": "busybox:1.36"}))).to_string();
    assert!(message.contains("must drop all capabilities"), "{message}");
}

#[test]
fn capabilities_settings_of_the_wrong_type_are_refused() {
    let err = load("capabilities", json!({"requireDropAll": "yes"})).err().unwrap().to_string();
    assert!(err.contains("invalid spec.settings") && err.contains("requireDropAll"), "{err}");
}

#[test]
fn images_judges_the_normalised_reference() {
    let set = load("images", json!({"allowedImages": ["docker.io/library/busybox:*"]})).unwrap();
    assert!(judge(&set, json!({"name": "dbg", "image": "busybox:1.36"})).allowed);
    let latest = denial(&judge(&set, json!({"name": "dbg", "image": "busybox"}))).to_string();
    assert!(latest.contains(r#""docker.io/library/busybox:latest""#) && latest.contains("latest tag"), "{latest}");
    let elsewhere = denial(&judge(&set, json!({"name": "dbg", "image": "ghcr.io/x/y:1"}))).to_string();
    assert!(elsewhere.contains("matches none of the allowed images [docker.io/library/busybox:*]"), "{elsewhere}");

    let digests = load("images", json!({"requireDigest": true})).unwrap();
    assert!(!judge(&digests, json!({"name": "dbg", "image": "busybox:1.36"})).allowed);
    assert!(judge(&digests, json!({"name": "dbg", "image": "busybox:1.36@sha256:0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd"})).allowed);
}

#[test]
fn images_refuses_an_empty_pattern_at_load() {
    let err = load("images", json!({"allowedImages": [""]})).err().unwrap().to_string();
    assert!(err.contains("allowedImages holds an empty pattern"), "{err}");
}

#[test]
fn an_unknown_builtin_lists_the_built_ins() {
    let err = load("nonesuch", Value::Null).err().unwrap().to_string();
    assert!(err.contains(r#"there is no built-in policy "nonesuch""#) && err.contains("privileged"), "{err}");
}

#[test]
fn requests_the_policies_do_not_match_are_allowed_untouched() {
    let set = load("privileged", Value::Null).unwrap();
    let create = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "c1", "operation": "CREATE", "resource": {"resource": "pods"}, "namespace": "shop",
                    "object": {"spec": {"containers": [{"name": "app", "securityContext": {"privileged": true}}]}}}});
    let response = set.review(create.to_string().as_bytes()).unwrap();
    assert_eq!(response, AdmissionResponse::allow("c1"));
}

/// Each built-in is also a module of its own (what `egate build` and
/// authors see); loaded by path it judges like the bundled library does.
#[test]
fn a_built_in_module_also_works_on_its_own() {
    let module = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/builtin/privileged.wasm");
    let mut by_path = support::manifest("privileged", Value::Null);
    by_path["spec"]["module"] = json!(module.canonicalize().unwrap().to_str().unwrap());
    let set = support::load_manifests(&[by_path]).unwrap();
    let response =
        judge(&set, json!({"name": "dbg", "image": "busybox:1.36", "securityContext": {"privileged": true}}));
    assert!(denial(&response).contains("securityContext.privileged: true"));
}
