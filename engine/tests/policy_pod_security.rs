//! The built-in policy `pod-security` through its real wasm module (built by
//! scripts/build-guests.sh and embedded by build.rs): pod CREATEs at both
//! levels, and `kubectl debug` requests judged by what the new container
//! inherits from the pod; then Kubernetes' own Pod Security Admission
//! fixtures, each at its policy version.

mod support;

use std::path::{Path, PathBuf};

use egate_engine::PolicySet;
use serde_json::{Value, json};
use support::{debug_review_of, denial, load_manifests, manifest, review, sandbox, web_pod};

/// `builtin:pod-security` at `level`, named `pod-security`, matching what the
/// shipped manifest matches.
fn pod_security(level: &str) -> PolicySet {
    let mut manifest = manifest("pod-security", json!({"level": level}));
    manifest["metadata"]["name"] = json!("pod-security");
    manifest["spec"]["match"] =
        json!({"resources": ["pods", "pods/ephemeralcontainers"], "operations": ["CREATE", "UPDATE"]});
    load_manifests(&[manifest]).unwrap()
}

/// A pod that passes the restricted level.
fn hardened_pod() -> Value {
    let mut pod = web_pod();
    pod["spec"].as_object_mut().unwrap().remove("ephemeralContainers");
    pod["spec"]["securityContext"] = json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}});
    pod["spec"]["containers"][0]["securityContext"] =
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
    pod
}

/// [`hardened_pod`] running, with an earlier privileged debug container
/// `old` (added before this policy was loaded).
fn running_hardened_pod() -> Value {
    let mut pod = hardened_pod();
    pod["spec"]["ephemeralContainers"] = web_pod()["spec"]["ephemeralContainers"].clone();
    pod
}

/// A pods CREATE of `pod`.
fn create(pod: &Value) -> Vec<u8> {
    review(json!({
        "uid": "c1", "operation": "CREATE", "namespace": "shop", "name": pod["metadata"]["name"],
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "userInfo": {"username": "alice"},
        "object": pod
    }))
}

/// What `kubectl debug --profile=restricted` adds.
fn restricted_debug_container() -> Value {
    json!({"name": "dbg", "image": "busybox:1.36", "targetContainerName": "app",
           "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}})
}

#[test]
fn the_shipped_manifest_loads_and_judges_pod_creates_at_baseline() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies/pod-security/policy.yaml");
    let set = PolicySet::load(&sandbox(), &[path]).unwrap();
    assert!(set.review(&create(&hardened_pod())).unwrap().allowed);
    let mut privileged = hardened_pod();
    privileged["spec"]["containers"][0]["securityContext"]["privileged"] = json!(true);
    let response = set.review(&create(&privileged)).unwrap();
    assert!(denial(&response).starts_with(r#"pod-security: violates PodSecurity "baseline:v1.37": privileged"#));
    // The same manifest judges kubectl debug.
    let response =
        set.review(&debug_review_of(&running_hardened_pod(), json!({"name": "dbg", "image": "busybox"}), "alice", &[]));
    assert!(response.unwrap().allowed);
}

#[test]
fn a_restricted_pod_is_allowed_at_both_levels() {
    for level in ["baseline", "restricted"] {
        let response = pod_security(level).review(&create(&hardened_pod())).unwrap();
        assert!(response.allowed, "{level}: {response:?}");
    }
}

#[test]
fn a_privileged_pod_is_denied_at_baseline() {
    let mut pod = hardened_pod();
    pod["spec"]["hostPID"] = json!(true);
    pod["spec"]["containers"][0]["securityContext"]["privileged"] = json!(true);
    pod["spec"]["volumes"] = json!([{"name": "root", "hostPath": {"path": "/"}}]);
    let response = pod_security("baseline").review(&create(&pod)).unwrap();
    assert_eq!(response.status.as_ref().unwrap().code, 403);
    assert_eq!(
        denial(&response),
        r#"pod-security: violates PodSecurity "baseline:v1.37": host namespaces (hostPID=true), hostPath volumes (volume "root"), privileged (container "app" must not set securityContext.privileged=true)"#
    );
}

#[test]
fn a_pod_failing_only_restricted_checks() {
    // The Kubernetes default: no securityContext at all.
    let pod = json!({"metadata": {"name": "plain", "namespace": "shop"},
                     "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}});
    assert!(pod_security("baseline").review(&create(&pod)).unwrap().allowed);
    let response = pod_security("restricted").review(&create(&pod)).unwrap();
    assert_eq!(
        denial(&response),
        [
            r#"pod-security: violates PodSecurity "restricted:v1.37": allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false)"#,
            r#"unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"])"#,
            r#"runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true)"#,
            r#"seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#,
        ]
        .join(", ")
    );
}

#[test]
fn a_debug_container_inheriting_the_pod_run_as_non_root_is_allowed_at_restricted() {
    // runAsNonRoot and seccompProfile come from the pod; the earlier
    // privileged debug container "old" is not judged again.
    let review = debug_review_of(&running_hardened_pod(), restricted_debug_container(), "alice", &[]);
    let response = pod_security("restricted").review(&review).unwrap();
    assert!(response.allowed, "{response:?}");
}

#[test]
fn a_debug_container_with_nothing_to_inherit_is_denied_at_restricted() {
    let mut pod = running_hardened_pod();
    pod["spec"]["securityContext"] = json!({"seccompProfile": {"type": "RuntimeDefault"}});
    let review = debug_review_of(&pod, restricted_debug_container(), "alice", &[]);
    let response = pod_security("restricted").review(&review).unwrap();
    assert_eq!(
        denial(&response),
        r#"pod-security: ephemeral container "dbg" violates PodSecurity "restricted:v1.37" (with the securityContext it inherits from the pod): runAsNonRoot != true (pod or container "dbg" must set securityContext.runAsNonRoot=true)"#
    );
    // Setting it on the debug container itself is enough.
    let mut own = restricted_debug_container();
    own["securityContext"]["runAsNonRoot"] = json!(true);
    let review = debug_review_of(&pod, own, "alice", &[]);
    assert!(pod_security("restricted").review(&review).unwrap().allowed);
}

#[test]
fn a_debug_request_does_not_judge_pod_level_fields_again() {
    // A pod admitted elsewhere with host namespaces and a hostPath volume:
    // a baseline debug container is still allowed.
    let mut pod = web_pod();
    pod["spec"]["hostNetwork"] = json!(true);
    pod["spec"]["volumes"] = json!([{"name": "root", "hostPath": {"path": "/"}}]);
    let review = debug_review_of(&pod, json!({"name": "dbg", "image": "busybox:1.36"}), "alice", &[]);
    assert!(pod_security("baseline").review(&review).unwrap().allowed);
    let netadmin = json!({"name": "dbg", "image": "busybox:1.36",
                          "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}});
    let response = pod_security("baseline").review(&debug_review_of(&pod, netadmin, "alice", &[])).unwrap();
    assert!(
        denial(&response).ends_with(r#"non-default capabilities (container "dbg" must not include "NET_ADMIN" in securityContext.capabilities.add)"#),
        "{response:?}"
    );
}

#[test]
fn a_label_update_of_a_running_pod_is_allowed() {
    let mut pod = web_pod();
    pod["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    let mut relabelled = pod.clone();
    relabelled["metadata"]["labels"]["tier"] = json!("web");
    let update = review(json!({
        "uid": "u1", "operation": "UPDATE", "namespace": "shop", "name": "web",
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "userInfo": {"username": "system:serviceaccount:kube-system:controller"},
        "object": relabelled, "oldObject": pod
    }));
    assert!(pod_security("restricted").review(&update).unwrap().allowed);
}

#[test]
fn a_level_other_than_baseline_or_restricted_is_refused_at_load() {
    let mut bad = manifest("pod-security", json!({"level": "strict"}));
    bad["metadata"]["name"] = json!("pod-security");
    let err = load_manifests(&[bad]).err().unwrap().to_string();
    assert!(err.contains(r#"policy "pod-security""#), "{err}");
    assert!(err.contains(r#""strict" is not a level: use "baseline" or "restricted""#), "{err}");
}

#[test]
fn a_version_outside_v1_0_to_v1_37_is_refused_at_load() {
    let mut bad = manifest("pod-security", json!({"level": "baseline", "version": "v1.38"}));
    bad["metadata"]["name"] = json!("pod-security");
    let err = load_manifests(&[bad]).err().unwrap().to_string();
    assert!(err.contains(r#""v1.38" is not a policy version: use one of "latest", "v1.0", "v1.1","#), "{err}");
    assert!(err.contains(r#""v1.37""#), "{err}");
}

#[test]
fn a_pinned_version_judges_with_its_checks_and_names_itself() {
    // runAsUser=0 is refused by the restricted level from v1.23 on.
    let mut root = hardened_pod();
    root["spec"]["securityContext"]["runAsUser"] = json!(0);
    let at = |version: &str| {
        let mut manifest = manifest("pod-security", json!({"level": "restricted", "version": version}));
        manifest["spec"]["match"] = json!({"resources": ["pods"], "operations": ["CREATE"]});
        load_manifests(&[manifest]).unwrap().review(&create(&root)).unwrap()
    };
    assert!(at("v1.22").allowed);
    assert_eq!(
        denial(&at("v1.23")),
        r#"test-pod-security: violates PodSecurity "restricted:v1.23": runAsUser=0 (pod must not set runAsUser=0)"#
    );
    assert!(denial(&at("latest")).contains(r#"PodSecurity "restricted:v1.37": runAsUser=0"#));
}

/// Kubernetes' own Pod Security Admission fixtures
/// (`../shared/psa-fixtures/{baseline,restricted}/v1.N/{pass,fail}/*.yaml`,
/// one Pod each), every one judged at its level and version as a pod CREATE
/// through the real module: `pass/` must be allowed, `fail/` denied.
#[test]
fn every_psa_fixture_is_judged_as_pod_security_admission_judges_it() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/psa-fixtures");
    if !root.is_dir() {
        println!("psa fixtures: skipped, {} is absent", root.display());
        return;
    }
    let sandbox = sandbox();
    let mut disagreements = Vec::new();
    let mut total = 0;
    let mut summary = Vec::new();
    for level in ["baseline", "restricted"] {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root.join(level))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter_map(|path| Some((path.file_name()?.to_str()?.strip_prefix("v1.")?.parse().ok()?, path)))
            .collect();
        versions.sort();
        assert_eq!(versions.len(), 38, "{level}: v1.0 to v1.37");
        let (mut judged, mut agreed) = (0, 0);
        for (minor, dir) in versions {
            let version = format!("v1.{minor}");
            let mut manifest = manifest("pod-security", json!({"level": level, "version": version}));
            manifest["spec"]["match"] = json!({"resources": ["pods"], "operations": ["CREATE"]});
            let set = PolicySet::from_manifests(&sandbox, Path::new("psa.yaml"), &manifest.to_string()).unwrap();
            for expect in ["pass", "fail"] {
                let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(expect))
                    .unwrap()
                    .map(|entry| entry.unwrap().path())
                    .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
                    .collect();
                files.sort();
                for file in files {
                    let pod: Value = egate_engine::yaml::from_str(&std::fs::read_to_string(&file).unwrap())
                        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                    let response = set.review(&create(&pod)).unwrap();
                    judged += 1;
                    if response.allowed == (expect == "pass") {
                        agreed += 1;
                    } else {
                        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
                        let why = if response.allowed { "allowed".to_string() } else { denial(&response).to_string() };
                        disagreements.push(format!("{level}/{version}/{expect}/{name}: {why}"));
                    }
                }
            }
        }
        summary.push(format!("{level} {agreed}/{judged}"));
        total += judged;
    }
    let agreed = total - disagreements.len();
    println!("psa fixtures: {agreed}/{total} agree ({})", summary.join(", "));
    assert!(total > 0, "no fixtures under {}", root.display());
    assert!(disagreements.is_empty(), "{} disagree:\n{}", disagreements.len(), disagreements.join("\n"));
}
