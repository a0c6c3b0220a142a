//! The validating built-in policies `target`, `run-as-non-root`,
//! `privilege-escalation`, `namespaces`, `max-count`, `volume-mounts` and
//! `env-secrets`, through their real wasm modules (built by
//! scripts/build-guests.sh and embedded by build.rs).

mod support;

use std::path::PathBuf;

use egate_engine::{AdmissionResponse, PolicySet};
use serde_json::{Value, json};
use support::{debug_review_of, denial, judge, load, web_pod};

/// The policies of this file, by directory name under policies/.
const POLICIES: [&str; 7] =
    ["target", "run-as-non-root", "privilege-escalation", "namespaces", "max-count", "volume-mounts", "env-secrets"];

/// Judges `debug` added to `pod` by `user` in `groups`.
fn judge_as(set: &PolicySet, pod: &Value, debug: Value, user: &str, groups: &[&str]) -> AdmissionResponse {
    set.review(&debug_review_of(pod, debug, user, groups)).unwrap()
}

fn busybox() -> Value {
    json!({"name": "dbg", "image": "busybox:1.36"})
}

fn with_security_context(security_context: Value) -> Value {
    json!({"name": "dbg", "image": "busybox:1.36", "securityContext": security_context})
}

/// The load error's text; panics when the set loads.
fn load_error(module: &str, settings: Value) -> String {
    match load(module, settings) {
        Ok(_) => panic!("builtin:{module} should refuse these settings"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_shipped_manifest_loads_with_its_defaults() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies");
    for name in POLICIES {
        let path = root.join(name).join("policy.yaml");
        let set = PolicySet::load(&support::sandbox(), std::slice::from_ref(&path))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(set.policies().len(), 1, "{name}");
        assert_eq!(set.policies()[0].name(), name);
    }
}

// ---- target ----

#[test]
fn target_by_default_nobody_may_target_a_container() {
    let set = load("target", Value::Null).unwrap();
    assert!(judge(&set, busybox()).allowed);
    let targeting = json!({"name": "dbg", "image": "busybox:1.36", "targetContainerName": "app"});
    let response = judge_as(&set, &web_pod(), targeting, "alice", &["sre"]);
    assert_eq!(
        denial(&response),
        r#"test-target: ephemeral container "dbg" sets targetContainerName: "app", but user "alice" may not target a container (no one may target a container here): run kubectl debug without --target"#
    );
}

#[test]
fn target_allowed_users_and_groups_and_protected_containers() {
    let set = load(
        "target",
        json!({"allowedUsers": ["bob"], "allowedGroups": ["sre"], "protectedContainers": ["vault-agent"]}),
    )
    .unwrap();
    let targeting = |target: &str| json!({"name": "dbg", "image": "busybox:1.36", "targetContainerName": target});
    assert!(judge_as(&set, &web_pod(), targeting("app"), "bob", &[]).allowed);
    assert!(judge_as(&set, &web_pod(), targeting("app"), "carol", &["sre"]).allowed);
    let message = denial(&judge_as(&set, &web_pod(), targeting("app"), "alice", &["dev"])).to_string();
    assert!(message.contains("only users [bob] and members of groups [sre] may target containers"), "{message}");
    let message = denial(&judge_as(&set, &web_pod(), targeting("vault-agent"), "bob", &["sre"])).to_string();
    assert!(message.contains(r#"container "vault-agent" is protected"#), "{message}");
}

#[test]
fn target_refuses_empty_entries_at_load() {
    let err = load_error("target", json!({"allowedGroups": [""]}));
    assert!(err.contains("invalid spec.settings") && err.contains("allowedGroups holds an empty entry"), "{err}");
    let err = load_error("target", json!({"allowedGroup": ["sre"]}));
    assert!(err.contains("unknown field `allowedGroup`"), "{err}");
}

// ---- run-as-non-root ----

#[test]
fn run_as_non_root_container_or_pod_value() {
    let set = load("run-as-non-root", Value::Null).unwrap();
    assert!(judge(&set, with_security_context(json!({"runAsNonRoot": true}))).allowed);
    assert_eq!(
        denial(&judge(&set, busybox())),
        r#"test-run-as-non-root: ephemeral container "dbg" does not set securityContext.runAsNonRoot, and neither does the pod: set securityContext.runAsNonRoot: true (kubectl debug --profile=restricted does)"#
    );
    let mut pod = web_pod();
    pod["spec"]["securityContext"] = json!({"runAsNonRoot": true});
    assert!(judge_as(&set, &pod, busybox(), "alice", &[]).allowed);
    let message =
        denial(&judge_as(&set, &pod, with_security_context(json!({"runAsNonRoot": false})), "alice", &[])).to_string();
    assert!(message.contains(r#""dbg" sets securityContext.runAsNonRoot: false"#), "{message}");
}

#[test]
fn run_as_non_root_denies_uid_zero() {
    let set = load("run-as-non-root", Value::Null).unwrap();
    let message =
        denial(&judge(&set, with_security_context(json!({"runAsNonRoot": true, "runAsUser": 0})))).to_string();
    assert!(message.contains(r#""dbg" runs as root (securityContext.runAsUser: 0)"#), "{message}");
    assert!(judge(&set, with_security_context(json!({"runAsNonRoot": true, "runAsUser": 1000}))).allowed);
    let err = load_error("run-as-non-root", json!({"strict": true}));
    assert!(err.contains("unknown field `strict`"), "{err}");
}

// ---- privilege-escalation ----

#[test]
fn privilege_escalation_must_be_explicitly_false() {
    let set = load("privilege-escalation", Value::Null).unwrap();
    assert!(judge(&set, with_security_context(json!({"allowPrivilegeEscalation": false}))).allowed);
    assert_eq!(
        denial(&judge(&set, busybox())),
        r#"test-privilege-escalation: ephemeral container "dbg" does not set securityContext.allowPrivilegeEscalation (unset means true): set securityContext.allowPrivilegeEscalation: false (kubectl debug --profile=restricted does)"#
    );
    let message = denial(&judge(&set, with_security_context(json!({"allowPrivilegeEscalation": true})))).to_string();
    assert!(message.contains("sets securityContext.allowPrivilegeEscalation: true"), "{message}");
    let err = load_error("privilege-escalation", json!({"allow": true}));
    assert!(err.contains("unknown field `allow`"), "{err}");
}

// ---- namespaces ----

#[test]
fn namespaces_denied_globs_and_the_deny_label() {
    let defaults = load("namespaces", Value::Null).unwrap();
    assert!(judge(&defaults, busybox()).allowed);

    let set = load("namespaces", json!({"deniedNamespaces": ["kube-*", "shop"]})).unwrap();
    assert_eq!(
        denial(&judge(&set, busybox())),
        r#"test-namespaces: ephemeral container "dbg" may not be added: namespace "shop" matches the denied namespace glob "shop"; no one may debug here (no breakGlassGroups are configured)"#
    );
    let mut elsewhere = web_pod();
    elsewhere["metadata"]["namespace"] = json!("payments");
    assert!(judge_as(&set, &elsewhere, busybox(), "alice", &[]).allowed);

    let mut labelled = elsewhere.clone();
    labelled["metadata"]["labels"]["egate.dev/debug"] = json!("deny");
    let message = denial(&judge_as(&defaults, &labelled, busybox(), "alice", &[])).to_string();
    assert!(message.contains(r#"pod "web" is labelled egate.dev/debug: deny"#), "{message}");
}

#[test]
fn namespaces_break_glass_groups() {
    let set = load("namespaces", json!({"deniedNamespaces": ["shop"], "breakGlassGroups": ["sre"]})).unwrap();
    let message = denial(&judge_as(&set, &web_pod(), busybox(), "alice", &["dev"])).to_string();
    assert!(message.contains("only members of the break-glass groups [sre] may debug here"), "{message}");

    let response = judge_as(&set, &web_pod(), busybox(), "alice", &["sre"]);
    assert!(response.allowed);
    assert_eq!(response.warnings.len(), 1, "{response:?}");
    assert!(
        response.warnings[0].starts_with(r#"test-namespaces: user "alice" used break-glass group "sre""#),
        "{response:?}"
    );
    assert!(response.audit_annotations["test-namespaces.break-glass"].contains(r#"namespace "shop""#), "{response:?}");

    let err = load_error("namespaces", json!({"deniedNamespaces": [""]}));
    assert!(err.contains("deniedNamespaces holds an empty glob"), "{err}");
}

// ---- max-count ----

#[test]
fn max_count_counts_every_ephemeral_container_of_the_pod() {
    // support::web_pod already holds one ephemeral container, "old".
    let set = load("max-count", Value::Null).unwrap();
    assert!(judge(&set, busybox()).allowed);
    let mut crowded = web_pod();
    crowded["spec"]["ephemeralContainers"] = json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]);
    let message = denial(&judge_as(&set, &crowded, busybox(), "alice", &[])).to_string();
    assert!(
        message.starts_with(r#"test-max-count: adding ephemeral container "dbg" would give pod "web" 4 ephemeral containers, more than the maximum of 3: ephemeral containers cannot be removed, so delete the pod"#),
        "{message}"
    );

    let one = load("max-count", json!({"max": 1})).unwrap();
    let message = denial(&judge(&one, busybox())).to_string();
    assert!(message.contains("2 ephemeral containers, more than the maximum of 1"), "{message}");

    let none = load("max-count", json!({"max": 0})).unwrap();
    let mut fresh = web_pod();
    fresh["spec"].as_object_mut().unwrap().remove("ephemeralContainers");
    let message = denial(&judge_as(&none, &fresh, busybox(), "alice", &[])).to_string();
    assert!(message.contains("the maximum is 0 ephemeral containers per pod"), "{message}");
}

#[test]
fn max_count_refuses_a_negative_max() {
    let err = load_error("max-count", json!({"max": -1}));
    assert!(err.contains("invalid spec.settings") && err.contains("max: invalid value: integer `-1`"), "{err}");
}

// ---- volume-mounts ----

fn pod_with_volumes() -> Value {
    let mut pod = web_pod();
    pod["spec"]["volumes"] = json!([
        {"name": "creds", "secret": {"secretName": "db"}},
        {"name": "node-root", "hostPath": {"path": "/"}},
        {"name": "cache", "emptyDir": {}}
    ]);
    pod
}

fn mounting(volume: &str, path: &str) -> Value {
    json!({"name": "dbg", "image": "busybox:1.36", "volumeMounts": [{"name": volume, "mountPath": path}]})
}

#[test]
fn volume_mounts_denies_secret_host_path_and_projected_by_default() {
    let set = load("volume-mounts", Value::Null).unwrap();
    let pod = pod_with_volumes();
    assert!(judge_as(&set, &pod, mounting("cache", "/cache"), "alice", &[]).allowed);
    assert_eq!(
        denial(&judge_as(&set, &pod, mounting("creds", "/creds"), "alice", &[])),
        r#"test-volume-mounts: ephemeral container "dbg" mounts the secret volume "creds" at "/creds": debug containers may not mount secret, hostPath or projected volumes; remove that entry from volumeMounts"#
    );
    let message = denial(&judge_as(&set, &pod, mounting("node-root", "/host"), "alice", &[])).to_string();
    assert!(message.contains(r#"mounts the hostPath volume "node-root" at "/host""#), "{message}");
}

#[test]
fn volume_mounts_denied_sources_setting() {
    let set = load("volume-mounts", json!({"deniedVolumeSources": ["emptyDir"]})).unwrap();
    let pod = pod_with_volumes();
    assert!(judge_as(&set, &pod, mounting("creds", "/creds"), "alice", &[]).allowed);
    let message = denial(&judge_as(&set, &pod, mounting("cache", "/cache"), "alice", &[])).to_string();
    assert!(message.contains("may not mount emptyDir volumes"), "{message}");

    let err = load_error("volume-mounts", json!({"deniedVolumeSources": [""]}));
    assert!(err.contains("deniedVolumeSources holds an empty entry"), "{err}");
    let err = load_error("volume-mounts", json!({"deniedVolumeSources": ["hostpath"]}));
    assert!(err.contains(r#"write \"hostPath\""#) || err.contains(r#"write "hostPath""#), "{err}");
}

// ---- env-secrets ----

#[test]
fn env_secrets_denies_secret_key_refs_and_env_from_secrets() {
    let set = load("env-secrets", Value::Null).unwrap();
    let config = json!({"name": "dbg", "image": "busybox:1.36",
        "env": [{"name": "MODE", "value": "debug"},
                {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "level"}}}],
        "envFrom": [{"configMapRef": {"name": "cfg"}}]});
    assert!(judge(&set, config).allowed);

    let secrets = json!({"name": "dbg", "image": "busybox:1.36",
        "env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}],
        "envFrom": [{"secretRef": {"name": "api-keys"}}]});
    let message = denial(&judge(&set, secrets)).to_string();
    assert!(
        message.starts_with(r#"test-env-secrets: ephemeral container "dbg" sets environment variable "DB_PASSWORD" from key "password" of secret "db" (env[].valueFrom.secretKeyRef)"#),
        "{message}"
    );
    assert!(message.contains(concat!("\n", r#"test-env-secrets: ephemeral container "dbg" loads every key of secret "api-keys" as environment variables (envFrom[].secretRef)"#)), "{message}");
    let err = load_error("env-secrets", json!({"allowedSecrets": []}));
    assert!(err.contains("unknown field `allowedSecrets`"), "{err}");
}

#[test]
fn the_policies_judge_only_new_ephemeral_containers() {
    // An earlier debug container breaking every rule is not judged again.
    let mut pod = pod_with_volumes();
    pod["spec"]["ephemeralContainers"] = json!([{"name": "old", "image": "busybox", "targetContainerName": "app",
        "securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": true},
        "volumeMounts": [{"name": "creds", "mountPath": "/creds"}],
        "envFrom": [{"secretRef": {"name": "db"}}]}]);
    let good = json!({"name": "dbg", "image": "busybox:1.36",
        "securityContext": {"runAsNonRoot": true, "allowPrivilegeEscalation": false}});
    for name in ["target", "run-as-non-root", "privilege-escalation", "volume-mounts", "env-secrets"] {
        let set = load(name, Value::Null).unwrap();
        let response = judge_as(&set, &pod, good.clone(), "alice", &[]);
        assert!(response.allowed, "{name}: {response:?}");
    }
}
