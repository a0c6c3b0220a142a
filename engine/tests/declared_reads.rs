//! Declared reads (`egate.reads`): a built-in that declares what it reads
//! of the request is handed only those members. Its decisions must be the
//! ones it makes on the whole request: messages, warnings, annotations and
//! patches. Held on every example and captured request with each
//! built-in's shipped manifest, and on generated `kubectl debug` requests.

mod support;

use std::path::PathBuf;

use egate_engine::{AdmissionResponse, Inputs, Mode, PolicySet};
use egate_guest::testing::{debug_review, web_pod};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::load_manifests;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// Every built-in, each with its shipped manifest (`policies/NAME/policy.yaml`).
fn shipped() -> Vec<(String, PolicySet)> {
    let mut sets = Vec::new();
    for entry in std::fs::read_dir(repo("policies")).unwrap() {
        let path = entry.unwrap().path().join("policy.yaml");
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let manifests: Vec<Value> = egate_engine::yaml::documents(&text).unwrap();
        sets.push((path.display().to_string(), load_manifests(&manifests).unwrap()));
    }
    assert!(sets.len() >= 14, "{} built-ins", sets.len());
    sets
}

/// The response on the declared members, and on the whole request.
fn both_ways(set: &PolicySet, review: &[u8]) -> (AdmissionResponse, AdmissionResponse) {
    let cut = Inputs::default();
    let whole = Inputs { whole_requests: true, ..Inputs::default() };
    let judge = |inputs: &Inputs| set.review_traced_with(review, Mode::All, inputs).unwrap().response;
    (judge(&cut), judge(&whole))
}

#[test]
fn every_built_in_decides_the_same_on_what_it_declares_as_on_the_whole_request() {
    let sets = shipped();
    let files: Vec<PathBuf> = ["examples/requests", "examples/requests/captured"]
        .into_iter()
        .flat_map(|dir| std::fs::read_dir(repo(dir)).unwrap().map(|e| e.unwrap().path()))
        .filter(|path| path.is_file())
        .collect();
    let mut judged = 0;
    for path in &files {
        let review = std::fs::read(path).unwrap();
        for (name, set) in &sets {
            let (cut, whole) = both_ways(set, &review);
            assert_eq!(cut, whole, "{name} on {}", path.display());
            judged += 1;
        }
    }
    assert!(judged >= 14 * 10, "{judged}");
    // The default set (batched built-ins, mutation first) too.
    let text = std::fs::read_to_string(repo("policies/default.yaml")).unwrap();
    let default_set = load_manifests(&egate_engine::yaml::documents(&text).unwrap()).unwrap();
    for path in &files {
        let (cut, whole) = both_ways(&default_set, &std::fs::read(path).unwrap());
        assert_eq!(cut, whole, "the default set on {}", path.display());
    }
}

/// A debug container with any of the fields the built-ins judge.
fn debug_container() -> impl Strategy<Value = Value> {
    let capability = prop::sample::select(vec!["SYS_PTRACE", "NET_ADMIN", "NET_RAW", "SYS_ADMIN", "CHOWN", "ALL"]);
    let image = prop::sample::select(vec![
        "busybox",
        "busybox:1.36",
        "busybox:latest",
        "docker.io/nicolaka/netshoot:v0.13",
        "registry.example.com/debug/tools@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ]);
    (
        image,
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
        prop::option::of(0i64..2),
        prop::collection::vec(capability.clone(), 0..3),
        prop::collection::vec(capability, 0..2),
        prop::option::of(prop::sample::select(vec!["app", "sidecar"])),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(image, privileged, escalation, non_root, user, add, drop, target, secret_env, mount)| {
            let mut security_context = json!({"capabilities": {"add": add, "drop": drop}});
            for (key, value) in
                [("privileged", privileged), ("allowPrivilegeEscalation", escalation), ("runAsNonRoot", non_root)]
            {
                if let Some(value) = value {
                    security_context[key] = json!(value);
                }
            }
            if let Some(user) = user {
                security_context["runAsUser"] = json!(user);
            }
            let mut container = json!({"name": "dbg", "image": image, "securityContext": security_context});
            if let Some(target) = target {
                container["targetContainerName"] = json!(target);
            }
            if secret_env {
                container["env"] = json!([{"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]);
            }
            if mount {
                container["volumeMounts"] = json!([{"name": "creds", "mountPath": "/creds"}]);
            }
            container
        })
}

/// The pod it is added to: labels, namespace, a pod-level securityContext,
/// volumes, and earlier debug containers.
fn pod() -> impl Strategy<Value = Value> {
    (prop::sample::select(vec!["shop", "kube-system", "prod-eu"]), any::<bool>(), any::<bool>(), 0usize..4).prop_map(
        |(namespace, deny_label, pod_non_root, earlier)| {
            let mut pod = web_pod();
            pod["metadata"]["namespace"] = json!(namespace);
            if deny_label {
                pod["metadata"]["labels"]["egate.dev/debug"] = json!("deny");
            }
            if pod_non_root {
                pod["spec"]["securityContext"] = json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}});
            }
            pod["spec"]["containers"].as_array_mut().unwrap().push(json!({"name": "sidecar", "image": "vault:1"}));
            pod["spec"]["volumes"] = json!([{"name": "creds", "secret": {"secretName": "s"}}]);
            let earlier: Vec<Value> = (0..earlier)
                .map(|i| json!({"name": format!("old-{i}"), "image": "busybox", "securityContext": {"privileged": true}}))
                .collect();
            if !earlier.is_empty() {
                pod["spec"]["ephemeralContainers"] = json!(earlier);
            }
            pod
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn generated_debug_requests_get_the_same_decisions_both_ways(
        pod in pod(),
        container in debug_container(),
        groups in prop::collection::vec(prop::sample::select(vec!["sre", "dev", "system:authenticated"]), 0..3),
    ) {
        let groups: Vec<&str> = groups.into_iter().collect();
        let review = debug_review(&pod, container, "alice", &groups);
        for (name, set) in shipped_once() {
            let (cut, whole) = both_ways(set, &review);
            prop_assert_eq!(cut, whole, "{}", name);
        }
    }
}

/// [`shipped`], loaded once for every generated case.
fn shipped_once() -> &'static [(String, PolicySet)] {
    static SETS: std::sync::OnceLock<Vec<(String, PolicySet)>> = std::sync::OnceLock::new();
    SETS.get_or_init(shipped)
}
