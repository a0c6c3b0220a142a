//! Shared helpers for tests that run built-in policies through their real
//! wasm modules (built by scripts/build-guests.sh, embedded by build.rs).
#![allow(dead_code)]

use std::path::Path;

use base64::Engine as _;
use egate_engine::{AdmissionResponse, LoadError, PolicySet, Sandbox, SandboxConfig, builtin};
use serde_json::{Value, json};

/// A sandbox; fails clearly when the built-in modules were not built.
pub fn sandbox() -> Sandbox {
    assert!(
        builtin::names().count() >= 3,
        "the built-in modules are missing: run scripts/build-guests.sh (make test does) before cargo test"
    );
    Sandbox::new(SandboxConfig::default()).unwrap()
}

/// Loads manifests (JSON values), in order, as one YAML stream (JSON is YAML).
pub fn load_manifests(manifests: &[Value]) -> Result<PolicySet, LoadError> {
    let text: Vec<String> = manifests.iter().map(Value::to_string).collect();
    PolicySet::from_manifests(&sandbox(), Path::new("test-manifests.yaml"), &text.join("\n---\n"))
}

/// A manifest named `test-MODULE` for `builtin:MODULE` on
/// `pods/ephemeralcontainers` UPDATE, with these settings.
pub fn manifest(module: &str, settings: Value) -> Value {
    json!({
        "apiVersion": "egate.dev/v1", "kind": "ClusterPolicy",
        "metadata": {"name": format!("test-{module}")},
        "spec": {"match": {"resources": ["pods/ephemeralcontainers"], "operations": ["UPDATE"]},
                 "module": format!("builtin:{module}"), "settings": settings}
    })
}

/// Loads `builtin:MODULE` with these settings (see [`manifest`]).
pub fn load(module: &str, settings: Value) -> Result<PolicySet, LoadError> {
    load_manifests(&[manifest(module, settings)])
}

/// The AdmissionReview `kubectl debug` causes: an UPDATE of
/// `pods/ephemeralcontainers`, `oldObject` the pod, `object` the pod plus `debug`.
pub use egate_guest::testing::debug_review as debug_review_of;
/// The pod tests debug: `web` in namespace `shop`, with one container
/// `app` and an earlier privileged debug container `old`.
pub use egate_guest::testing::debugged_web_pod as web_pod;

/// [`debug_review_of`] on [`web_pod`] by user `alice`.
pub fn debug_review(debug: Value) -> Vec<u8> {
    debug_review_of(&web_pod(), debug, "alice", &[])
}

/// An AdmissionReview around this request.
pub fn review(request: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}))
        .unwrap()
}

/// Judges `debug` added to [`web_pod`] by `alice`.
pub fn judge(set: &PolicySet, debug: Value) -> AdmissionResponse {
    set.review(&debug_review(debug)).unwrap()
}

/// The denial message; panics when the response allows.
pub fn denial(response: &AdmissionResponse) -> &str {
    assert!(!response.allowed, "expected a denial, got {response:?}");
    &response.status.as_ref().unwrap().message
}

/// The request's `object` after applying the response's base64 JSON Patch.
pub fn patched_object(review_bytes: &[u8], response: &AdmissionResponse) -> Value {
    let review: Value = serde_json::from_slice(review_bytes).unwrap();
    let mut object = review["request"]["object"].clone();
    if let Some(patch) = &response.patch {
        assert_eq!(response.patch_type, Some("JSONPatch"));
        let text = base64::engine::general_purpose::STANDARD.decode(patch).unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&text).unwrap();
        json_patch::patch(&mut object, &patch).unwrap();
    }
    object
}

/// A WAT module speaking ABI v1 that accepts any settings and always
/// returns `decision` (JSON) from `egate_evaluate`.
pub fn fixed_decision_guest(decision: &str) -> String {
    let escape = |text: &str| text.bytes().map(|b| format!("\\{b:02x}")).collect::<String>();
    let verdict = r#"{"valid":true}"#;
    let packed = |ptr: u64, len: usize| (ptr << 32) | len as u64;
    format!(
        r#"(module
  (memory (export "memory") 4)
  (global $next (mut i32) (i32.const 131072))
  (data (i32.const 0) "{verdict_bytes}")
  (data (i32.const 1024) "{decision_bytes}")
  (func (export "egate_abi_v1"))
  (func (export "egate_alloc") (param $len i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $len)))
    (local.get $p))
  (func (export "egate_validate_settings") (param i32 i32) (result i64) (i64.const {verdict_packed}))
  (func (export "egate_evaluate") (param i32 i32 i32 i32) (result i64) (i64.const {decision_packed})))"#,
        verdict_bytes = escape(verdict),
        decision_bytes = escape(decision),
        verdict_packed = packed(0, verdict.len()),
        decision_packed = packed(1024, decision.len()),
    )
}

/// Writes `wat` compiled to `dir/NAME.wasm` and returns a manifest for it.
pub fn wasm_manifest(dir: &std::path::Path, name: &str, wat: &str, spec_extra: Value) -> Value {
    let module = dir.join(format!("{name}.wasm"));
    std::fs::write(&module, wat::parse_str(wat).unwrap()).unwrap();
    let mut manifest = json!({
        "apiVersion": "egate.dev/v1", "kind": "ClusterPolicy", "metadata": {"name": name},
        "spec": {"match": {"resources": ["pods/ephemeralcontainers"]}, "module": module.to_str().unwrap()}
    });
    if let (Some(spec), Some(extra)) = (manifest["spec"].as_object_mut(), spec_extra.as_object()) {
        spec.extend(extra.clone());
    }
    manifest
}

/// A CEL-only manifest with these `spec` fields besides `match`.
pub fn cel_manifest(name: &str, spec: Value) -> Value {
    let mut manifest = json!({
        "apiVersion": "egate.dev/v1", "kind": "ClusterPolicy", "metadata": {"name": name},
        "spec": {"match": {"resources": ["pods/ephemeralcontainers"]}}
    });
    manifest["spec"].as_object_mut().unwrap().extend(spec.as_object().unwrap().clone());
    manifest
}
