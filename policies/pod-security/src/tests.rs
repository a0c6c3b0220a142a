//! Native tests of `pod-security`: one test per check, each at both levels
//! (allowed and denied), then whole pods, pod updates, `kubectl debug`
//! requests and settings.

use egate_guest::testing::debug_request;
use egate_guest::{Decision, Request, settings_from_json};
use serde_json::{Value, json};

use super::*;

// ----- helpers ---------------------------------------------------------

/// A pod that passes the restricted level: pod-level runAsNonRoot and
/// seccomp, a container that drops ALL and cannot escalate.
fn restricted_pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "image": "nginx:1.27",
                            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]
        }
    })
}

/// `pod` with `value` at the JSON Pointer `path`, objects created on the way.
fn with(mut pod: Value, path: &str, value: Value) -> Value {
    let mut at = &mut pod;
    for segment in path.trim_start_matches('/').split('/') {
        at = match at {
            Value::Array(items) => &mut items[segment.parse::<usize>().unwrap()],
            _ => {
                if !at.is_object() {
                    *at = json!({});
                }
                at.as_object_mut().unwrap().entry(segment.replace("~1", "/")).or_insert(Value::Null)
            }
        };
    }
    *at = value;
    pod
}

/// `pod` without the value at `path`.
fn without(mut pod: Value, path: &str) -> Value {
    let (parent, key) = path.rsplit_once('/').unwrap();
    pod.pointer_mut(parent).unwrap().as_object_mut().unwrap().remove(key);
    pod
}

fn request(operation: &str, sub_resource: Option<&str>, object: &Value, old: Option<&Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "uid": "u1", "operation": operation,
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "subResource": sub_resource, "namespace": "shop", "name": "web",
        "userInfo": {"username": "alice"},
        "object": object, "oldObject": old,
    }))
    .unwrap()
}

fn decide(bytes: &[u8], level: Level) -> Decision {
    evaluate(&Request::parse(bytes).unwrap(), &PodSecuritySettings { level, ..Default::default() }).unwrap()
}

/// What a pod CREATE yields at `level`: "" when allowed, else the list of
/// violations after the message's `: `.
fn verdict(pod: &Value, level: Level) -> String {
    let decision = decide(&request("CREATE", None, pod, None), level);
    if decision.allowed {
        return String::new();
    }
    let prefix = format!("violates PodSecurity \"{level}:v1.37\": ");
    decision.message.strip_prefix(&prefix).unwrap_or_else(|| panic!("{}", decision.message)).to_string()
}

/// The verdicts at baseline and at restricted.
fn verdicts(pod: &Value) -> (String, String) {
    (verdict(pod, Level::Baseline), verdict(pod, Level::Restricted))
}

fn both(violation: &str) -> (String, String) {
    (violation.to_string(), violation.to_string())
}

fn restricted_only(violation: &str) -> (String, String) {
    (String::new(), violation.to_string())
}

fn allowed() -> (String, String) {
    (String::new(), String::new())
}

const CONTAINER_SC: &str = "/spec/containers/0/securityContext";

#[test]
fn the_restricted_pod_passes_both_levels() {
    assert_eq!(verdicts(&restricted_pod()), allowed());
}

// ----- baseline checks, judged at both levels -----------------------------

#[test]
fn app_armor_profile() {
    let pod = with(restricted_pod(), &format!("{CONTAINER_SC}/appArmorProfile"), json!({"type": "Unconfined"}));
    assert_eq!(
        verdicts(&pod),
        both(r#"forbidden AppArmor profile (container "app" must not set AppArmor profile type to "Unconfined")"#)
    );
    let pod = with(pod, "/spec/securityContext/appArmorProfile", json!({"type": "Unconfined"}));
    let pod =
        with(pod, "/metadata/annotations/container.apparmor.security.beta.kubernetes.io~1app", json!("unconfined"));
    assert_eq!(
        verdict(&pod, Level::Baseline),
        r#"forbidden AppArmor profiles (pod and container "app" and annotation must not set AppArmor profile type to "Unconfined", "container.apparmor.security.beta.kubernetes.io/app="unconfined"")"#
    );

    let pod = with(
        restricted_pod(),
        &format!("{CONTAINER_SC}/appArmorProfile"),
        json!({"type": "Localhost", "localhostProfile": "k8s"}),
    );
    let pod = with(pod, "/spec/securityContext/appArmorProfile", json!({"type": "RuntimeDefault"}));
    let pod =
        with(pod, "/metadata/annotations/container.apparmor.security.beta.kubernetes.io~1app", json!("localhost/k8s"));
    assert_eq!(verdicts(&pod), allowed());
}

#[test]
fn capabilities_baseline_and_restricted() {
    let adding = |caps: Value| with(restricted_pod(), &format!("{CONTAINER_SC}/capabilities/add"), caps);
    assert_eq!(
        verdicts(&adding(json!(["SYS_ADMIN", "NET_RAW"]))),
        (
            r#"non-default capabilities (container "app" must not include "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add)"#.into(),
            r#"unrestricted capabilities (container "app" must not include "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add)"#.into()
        )
    );
    // Baseline allows its default set; restricted only NET_BIND_SERVICE.
    assert_eq!(
        verdicts(&adding(json!(["CHOWN"]))),
        restricted_only(
            r#"unrestricted capabilities (container "app" must not include "CHOWN" in securityContext.capabilities.add)"#
        )
    );
    assert_eq!(verdicts(&adding(json!(["NET_BIND_SERVICE"]))), allowed());
    // Names are compared exactly, as Kubernetes compares them.
    assert!(verdict(&adding(json!(["CAP_CHOWN"])), Level::Baseline).starts_with("non-default capabilities"));
}

#[test]
fn host_namespaces() {
    let pod = with(with(restricted_pod(), "/spec/hostNetwork", json!(true)), "/spec/hostPID", json!(true));
    assert_eq!(verdicts(&pod), both("host namespaces (hostNetwork=true, hostPID=true)"));
    let pod = with(with(restricted_pod(), "/spec/hostIPC", json!(false)), "/spec/hostNetwork", json!(false));
    assert_eq!(verdicts(&pod), allowed());
}

#[test]
fn host_path_volumes() {
    let pod = with(restricted_pod(), "/spec/volumes", json!([{"name": "root", "hostPath": {"path": "/"}}]));
    assert_eq!(
        verdicts(&pod),
        (
            r#"hostPath volumes (volume "root")"#.into(),
            r#"restricted volume types (volume "root" uses restricted volume type "hostPath")"#.into()
        )
    );
    let pod = with(restricted_pod(), "/spec/volumes", json!([{"name": "tmp", "emptyDir": {}}]));
    assert_eq!(verdicts(&pod), allowed());
}

#[test]
fn host_ports() {
    let pod = with(
        restricted_pod(),
        "/spec/containers/0/ports",
        json!([{"containerPort": 80, "hostPort": 8080}, {"containerPort": 443, "hostPort": 10443}]),
    );
    // Ports sort as text, as Pod Security Admission sorts them.
    assert_eq!(verdicts(&pod), both(r#"hostPort (container "app" uses hostPorts 10443, 8080)"#));
    let pod = with(restricted_pod(), "/spec/containers/0/ports", json!([{"containerPort": 80, "hostPort": 0}]));
    assert_eq!(verdicts(&pod), allowed());
}

#[test]
fn host_probes_and_host_lifecycle() {
    let pod = with(
        restricted_pod(),
        "/spec/containers/0/livenessProbe",
        json!({"httpGet": {"host": "10.0.0.1", "port": 80}}),
    );
    assert_eq!(
        verdicts(&pod),
        both(r#"probe or lifecycle host (container "app" uses probe or lifecycle host "10.0.0.1")"#)
    );
    let init = json!({"name": "init", "image": "busybox",
                      "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
                      "lifecycle": {"preStop": {"tcpSocket": {"host": "db", "port": 5432}}},
                      "startupProbe": {"tcpSocket": {"host": "10.0.0.1", "port": 1}}});
    let pod = with(pod, "/spec/initContainers", json!([init]));
    assert_eq!(
        verdict(&pod, Level::Baseline),
        r#"probe or lifecycle host (containers "app", "init" use probe or lifecycle hosts "10.0.0.1", "db")"#
    );
    let pod = with(restricted_pod(), "/spec/containers/0/readinessProbe", json!({"httpGet": {"host": "", "port": 80}}));
    assert_eq!(verdicts(&pod), allowed());
}

#[test]
fn privileged() {
    let pod = with(restricted_pod(), &format!("{CONTAINER_SC}/privileged"), json!(true));
    assert_eq!(verdicts(&pod), both(r#"privileged (container "app" must not set securityContext.privileged=true)"#));
    let pod = with(restricted_pod(), &format!("{CONTAINER_SC}/privileged"), json!(false));
    assert_eq!(verdicts(&pod), allowed());
}

#[test]
fn proc_mount() {
    let pod = with(restricted_pod(), &format!("{CONTAINER_SC}/procMount"), json!("Unmasked"));
    let violation = r#"procMount (container "app" must not set securityContext.procMount to "Unmasked")"#;
    assert_eq!(verdicts(&pod), both(violation));
    // A pod in its own user namespace may unmask /proc at baseline, not at restricted.
    assert_eq!(verdicts(&with(pod, "/spec/hostUsers", json!(false))), restricted_only(violation));
    let pod = with(restricted_pod(), &format!("{CONTAINER_SC}/procMount"), json!("Default"));
    assert_eq!(verdicts(&pod), allowed());
}

#[test]
fn se_linux_options() {
    let pod =
        with(restricted_pod(), &format!("{CONTAINER_SC}/seLinuxOptions"), json!({"type": "spc_t", "user": "root"}));
    assert_eq!(
        verdicts(&pod),
        both(
            r#"seLinuxOptions (container "app" set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set)"#
        )
    );
    let pod = with(restricted_pod(), "/spec/securityContext/seLinuxOptions", json!({"role": "sysadm_r"}));
    assert_eq!(
        verdicts(&pod),
        both("seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: role may not be set)")
    );
    let pod = with(
        restricted_pod(),
        "/spec/securityContext/seLinuxOptions",
        json!({"type": "container_engine_t", "level": "s0:c1"}),
    );
    let pod = with(pod, &format!("{CONTAINER_SC}/seLinuxOptions"), json!({"type": "container_t"}));
    assert_eq!(verdicts(&pod), allowed());
}

#[test]
fn seccomp_profile_baseline_and_restricted() {
    let pod = with(restricted_pod(), &format!("{CONTAINER_SC}/seccompProfile"), json!({"type": "Unconfined"}));
    assert_eq!(
        verdicts(&pod),
        both(r#"seccompProfile (container "app" must not set securityContext.seccompProfile.type to "Unconfined")"#)
    );
    let pod = with(restricted_pod(), "/spec/securityContext/seccompProfile", json!({"type": "Unconfined"}));
    assert_eq!(
        verdicts(&pod),
        both(r#"seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")"#)
    );
    // Unset passes baseline; restricted requires it at pod or container level.
    let pod = without(restricted_pod(), "/spec/securityContext/seccompProfile");
    assert_eq!(
        verdicts(&pod),
        restricted_only(
            r#"seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
        )
    );
    let pod = with(
        pod,
        &format!("{CONTAINER_SC}/seccompProfile"),
        json!({"type": "Localhost", "localhostProfile": "p.json"}),
    );
    assert_eq!(verdicts(&pod), allowed());
}

#[test]
fn sysctls() {
    let pod = with(
        restricted_pod(),
        "/spec/securityContext/sysctls",
        json!([{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"}, {"name": "kernel.msgmax", "value": "65536"},
               {"name": "net.core.somaxconn", "value": "1024"}]),
    );
    assert_eq!(verdicts(&pod), both("forbidden sysctls (kernel.msgmax, net.core.somaxconn)"));
    let pod = with(
        restricted_pod(),
        "/spec/securityContext/sysctls",
        json!([{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]),
    );
    assert_eq!(verdicts(&pod), allowed());
}

#[test]
fn windows_host_process() {
    let pod = with(restricted_pod(), &format!("{CONTAINER_SC}/windowsOptions"), json!({"hostProcess": true}));
    let pod = with(pod, "/spec/securityContext/windowsOptions", json!({"hostProcess": true}));
    assert_eq!(
        verdict(&pod, Level::Baseline),
        r#"hostProcess (pod and container "app" must not set securityContext.windowsOptions.hostProcess=true)"#
    );
    assert!(verdict(&pod, Level::Restricted).starts_with("hostProcess (pod and container \"app\""));
    let pod = with(restricted_pod(), &format!("{CONTAINER_SC}/windowsOptions"), json!({"hostProcess": false}));
    assert_eq!(verdicts(&pod), allowed());
}

// ----- restricted checks: allowed at baseline -----------------------------

#[test]
fn allow_privilege_escalation() {
    let pod = without(restricted_pod(), &format!("{CONTAINER_SC}/allowPrivilegeEscalation"));
    assert_eq!(
        verdicts(&pod),
        restricted_only(
            r#"allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false)"#
        )
    );
    let pod = with(restricted_pod(), &format!("{CONTAINER_SC}/allowPrivilegeEscalation"), json!(true));
    assert!(verdict(&pod, Level::Restricted).starts_with("allowPrivilegeEscalation != false"));
    // Windows pods are exempt (the field does not exist there).
    let windows = with(
        without(restricted_pod(), &format!("{CONTAINER_SC}/allowPrivilegeEscalation")),
        "/spec/os/name",
        json!("windows"),
    );
    assert_eq!(verdicts(&windows), allowed());
}

#[test]
fn capabilities_restricted_requires_dropping_all() {
    let pod = without(restricted_pod(), &format!("{CONTAINER_SC}/capabilities"));
    assert_eq!(
        verdicts(&pod),
        restricted_only(
            r#"unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"])"#
        )
    );
    let pod = with(
        restricted_pod(),
        &format!("{CONTAINER_SC}/capabilities"),
        json!({"drop": ["NET_RAW"], "add": ["NET_ADMIN"]}),
    );
    assert_eq!(
        verdicts(&pod),
        (
            r#"non-default capabilities (container "app" must not include "NET_ADMIN" in securityContext.capabilities.add)"#.into(),
            r#"unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"]; container "app" must not include "NET_ADMIN" in securityContext.capabilities.add)"#.into()
        )
    );
    let pod = with(
        restricted_pod(),
        &format!("{CONTAINER_SC}/capabilities"),
        json!({"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}),
    );
    assert_eq!(verdicts(&pod), allowed());
}

#[test]
fn restricted_volumes() {
    let pod = with(
        restricted_pod(),
        "/spec/volumes",
        json!([{"name": "share", "nfs": {"server": "nas", "path": "/"}}, {"name": "config", "configMap": {"name": "c"}},
               {"name": "code", "gitRepo": {"repository": "r"}}]),
    );
    assert_eq!(
        verdicts(&pod),
        restricted_only(
            r#"restricted volume types (volumes "share", "code" use restricted volume types "gitRepo", "nfs")"#
        )
    );
    let pod = with(
        restricted_pod(),
        "/spec/volumes",
        json!([{"name": "a", "configMap": {}}, {"name": "b", "csi": {"driver": "d"}}, {"name": "c", "downwardAPI": {}},
               {"name": "d", "emptyDir": {}}, {"name": "e", "ephemeral": {}}, {"name": "f", "image": {"reference": "x"}},
               {"name": "g", "persistentVolumeClaim": {"claimName": "c"}}, {"name": "h", "projected": {}},
               {"name": "i", "secret": {"secretName": "s"}}]),
    );
    assert_eq!(verdicts(&pod), allowed());
}

#[test]
fn run_as_non_root() {
    let pod = without(restricted_pod(), "/spec/securityContext/runAsNonRoot");
    assert_eq!(
        verdicts(&pod),
        restricted_only(r#"runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true)"#)
    );
    assert_eq!(verdicts(&with(pod.clone(), &format!("{CONTAINER_SC}/runAsNonRoot"), json!(true))), allowed());
    let pod = with(restricted_pod(), "/spec/securityContext/runAsNonRoot", json!(false));
    assert_eq!(
        verdicts(&pod),
        restricted_only("runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)")
    );
    // A container cannot opt out of a pod-level true.
    let pod = with(restricted_pod(), &format!("{CONTAINER_SC}/runAsNonRoot"), json!(false));
    assert_eq!(
        verdicts(&pod),
        restricted_only(r#"runAsNonRoot != true (container "app" must not set securityContext.runAsNonRoot=false)"#)
    );
    // Pods in their own user namespace are exempt (policy v1.35).
    let userns = with(without(restricted_pod(), "/spec/securityContext/runAsNonRoot"), "/spec/hostUsers", json!(false));
    assert_eq!(verdicts(&userns), allowed());
}

#[test]
fn run_as_user() {
    let pod = with(restricted_pod(), &format!("{CONTAINER_SC}/runAsUser"), json!(0));
    assert_eq!(verdicts(&pod), restricted_only(r#"runAsUser=0 (container "app" must not set runAsUser=0)"#));
    let pod = with(pod, "/spec/securityContext/runAsUser", json!(0));
    assert_eq!(verdicts(&pod), restricted_only(r#"runAsUser=0 (pod and container "app" must not set runAsUser=0)"#));
    assert_eq!(verdicts(&with(pod, "/spec/hostUsers", json!(false))), allowed());
    let pod = with(restricted_pod(), &format!("{CONTAINER_SC}/runAsUser"), json!(1000));
    assert_eq!(verdicts(&pod), allowed());
}

// ----- whole pods -----------------------------------------------------------

/// A pod breaking most rules, with an init container and an earlier
/// ephemeral container.
fn wild_pod() -> Value {
    json!({
        "metadata": {"name": "wild"},
        "spec": {
            "hostNetwork": true,
            "initContainers": [{"name": "setup", "image": "busybox", "securityContext": {"runAsUser": 0}}],
            "containers": [{"name": "app", "image": "nginx", "ports": [{"containerPort": 80, "hostPort": 80}],
                            "securityContext": {"privileged": true, "capabilities": {"add": ["NET_ADMIN"]}}}],
            "ephemeralContainers": [{"name": "dbg", "image": "busybox", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}],
            "volumes": [{"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}]
        }
    })
}

#[test]
fn a_pod_create_lists_every_violation_in_pod_security_admission_order() {
    let (baseline, restricted) = verdicts(&wild_pod());
    assert_eq!(
        baseline,
        [
            r#"non-default capabilities (container "app" must not include "NET_ADMIN" in securityContext.capabilities.add)"#,
            "host namespaces (hostNetwork=true)",
            r#"hostPath volumes (volume "docker")"#,
            r#"hostPort (container "app" uses hostPort 80)"#,
            r#"privileged (container "app" must not set securityContext.privileged=true)"#,
            r#"seccompProfile (container "dbg" must not set securityContext.seccompProfile.type to "Unconfined")"#,
        ]
        .join(", ")
    );
    assert_eq!(
        restricted,
        [
            "host namespaces (hostNetwork=true)",
            r#"hostPort (container "app" uses hostPort 80)"#,
            r#"privileged (container "app" must not set securityContext.privileged=true)"#,
            r#"allowPrivilegeEscalation != false (containers "setup", "app", "dbg" must set securityContext.allowPrivilegeEscalation=false)"#,
            r#"unrestricted capabilities (containers "setup", "app", "dbg" must set securityContext.capabilities.drop=["ALL"]; container "app" must not include "NET_ADMIN" in securityContext.capabilities.add)"#,
            r#"restricted volume types (volume "docker" uses restricted volume type "hostPath")"#,
            r#"runAsNonRoot != true (pod or containers "setup", "app", "dbg" must set securityContext.runAsNonRoot=true)"#,
            r#"runAsUser=0 (container "setup" must not set runAsUser=0)"#,
            r#"seccompProfile (container "dbg" must not set securityContext.seccompProfile.type to "Unconfined")"#,
        ]
        .join(", ")
    );
    // The whole message, as a user reads it.
    let decision = decide(&request("CREATE", None, &wild_pod(), None), Level::Baseline);
    assert!(!decision.allowed);
    assert!(
        decision
            .message
            .starts_with(r#"violates PodSecurity "baseline:v1.37": non-default capabilities (container "app""#)
    );
}

#[test]
fn a_pod_update_is_judged_only_when_an_image_changes() {
    // A label change on a pod that would not be admitted today passes, as with
    // Pod Security Admission: controllers must be able to update running pods.
    let old = wild_pod();
    let relabelled = with(old.clone(), "/metadata/labels/tier", json!("web"));
    assert!(decide(&request("UPDATE", None, &relabelled, Some(&old)), Level::Restricted).allowed);
    let reimaged = with(old.clone(), "/spec/containers/0/image", json!("nginx:1.28"));
    let decision = decide(&request("UPDATE", None, &reimaged, Some(&old)), Level::Baseline);
    assert!(!decision.allowed && decision.message.contains("privileged (container \"app\""), "{}", decision.message);
    let seccomp =
        with(old.clone(), "/metadata/annotations/seccomp.security.alpha.kubernetes.io~1pod", json!("unconfined"));
    assert!(!decide(&request("UPDATE", None, &seccomp, Some(&old)), Level::Baseline).allowed);
    // Without an oldObject the update is judged.
    assert!(!decide(&request("UPDATE", None, &relabelled, None), Level::Baseline).allowed);
}

#[test]
fn requests_pod_security_admission_ignores_are_allowed() {
    let pod = wild_pod();
    let reimaged = with(pod.clone(), "/spec/containers/0/image", json!("nginx:1.28"));
    assert!(decide(&request("UPDATE", Some("status"), &reimaged, Some(&pod)), Level::Restricted).allowed);
    // Other subresources are judged as pod updates, failing safe.
    assert!(decide(&request("UPDATE", Some("resize"), &pod, Some(&pod)), Level::Restricted).allowed);
    assert!(!decide(&request("UPDATE", Some("resize"), &reimaged, Some(&pod)), Level::Restricted).allowed);
    assert!(decide(&request("DELETE", None, &Value::Null, Some(&pod)), Level::Restricted).allowed);
    let deployment = serde_json::to_vec(&json!({"uid": "u", "operation": "CREATE",
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"}, "object": {"spec": {}}}))
    .unwrap();
    assert!(decide(&deployment, Level::Restricted).allowed);
}

#[test]
fn a_pod_create_without_an_object_is_a_failure_of_the_policy() {
    let bytes = request("CREATE", None, &Value::Null, None);
    let err = evaluate(&Request::parse(&bytes).unwrap(), &PodSecuritySettings::default()).unwrap_err();
    assert!(err.message().contains("request.object is missing"), "{err}");
    let bytes = request("CREATE", None, &json!({"spec": {"containers": {"name": "x"}}}), None);
    let err = evaluate(&Request::parse(&bytes).unwrap(), &PodSecuritySettings::default()).unwrap_err();
    assert!(err.message().contains("cannot read request.object as a Pod"), "{err}");
}

// ----- kubectl debug: pods/ephemeralcontainers -------------------------------

fn debug(pod: &Value, container: Value, level: Level) -> Decision {
    decide(&debug_request(pod, container, "alice", &[]), level)
}

/// What `kubectl debug --profile=restricted` adds: no escalation, ALL dropped.
fn restricted_debug_container() -> Value {
    json!({"name": "dbg", "image": "busybox:1.36", "targetContainerName": "app",
           "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}})
}

#[test]
fn a_debug_container_inherits_the_pod_level_security_context() {
    // runAsNonRoot and seccompProfile come from the pod.
    assert!(debug(&restricted_pod(), restricted_debug_container(), Level::Restricted).allowed);

    // Without them at pod level, the debug container must set them itself.
    let bare = without(
        without(restricted_pod(), "/spec/securityContext/runAsNonRoot"),
        "/spec/securityContext/seccompProfile",
    );
    let decision = debug(&bare, restricted_debug_container(), Level::Restricted);
    assert_eq!(
        decision.message,
        r#"ephemeral container "dbg" violates PodSecurity "restricted:v1.37" (with the securityContext it inherits from the pod): runAsNonRoot != true (pod or container "dbg" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "dbg" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
    );
    let own = with(restricted_debug_container(), "/securityContext/runAsNonRoot", json!(true));
    let own = with(own, "/securityContext/seccompProfile", json!({"type": "RuntimeDefault"}));
    assert!(debug(&bare, own, Level::Restricted).allowed);

    // An inherited bad value is the container's own.
    let root = with(restricted_pod(), "/spec/securityContext/runAsUser", json!(0));
    let decision = debug(&root, restricted_debug_container(), Level::Restricted);
    assert!(
        decision.message.ends_with(r#": runAsUser=0 (container "dbg" must not set runAsUser=0)"#),
        "{}",
        decision.message
    );
    let user = with(restricted_debug_container(), "/securityContext/runAsUser", json!(1000));
    assert!(debug(&root, user, Level::Restricted).allowed);
    let unconfined = with(restricted_pod(), "/spec/securityContext/appArmorProfile", json!({"type": "Unconfined"}));
    let decision = debug(&unconfined, json!({"name": "dbg", "image": "busybox"}), Level::Baseline);
    assert!(
        decision.message.ends_with(
            r#"forbidden AppArmor profile (container "dbg" must not set AppArmor profile type to "Unconfined")"#
        ),
        "{}",
        decision.message
    );
    let selinux = with(restricted_pod(), "/spec/securityContext/seLinuxOptions", json!({"type": "spc_t"}));
    assert!(!debug(&selinux, json!({"name": "dbg", "image": "busybox"}), Level::Baseline).allowed);
}

#[test]
fn a_debug_request_does_not_judge_the_pod_again() {
    // The pod breaks pod-level rules (host namespaces, hostPath, sysctls) and
    // has a privileged container and an earlier privileged debug container:
    // none of that is judged when a compliant debug container is added.
    let mut pod = with(wild_pod(), "/spec/securityContext/sysctls", json!([{"name": "kernel.msgmax", "value": "1"}]));
    pod = with(pod, "/spec/ephemeralContainers/0/securityContext/privileged", json!(true));
    pod = with(pod, "/metadata/annotations/container.apparmor.security.beta.kubernetes.io~1app", json!("unconfined"));
    assert!(debug(&pod, json!({"name": "dbg2", "image": "busybox"}), Level::Baseline).allowed);

    // Only the new container is named.
    let decision = debug(
        &pod,
        json!({"name": "dbg2", "image": "busybox", "securityContext": {"privileged": true}}),
        Level::Baseline,
    );
    assert_eq!(
        decision.message,
        r#"ephemeral container "dbg2" violates PodSecurity "baseline:v1.37" (with the securityContext it inherits from the pod): privileged (container "dbg2" must not set securityContext.privileged=true)"#
    );
}

#[test]
fn a_debug_container_is_judged_by_its_own_apparmor_annotation() {
    let pod = with(
        restricted_pod(),
        "/metadata/annotations/container.apparmor.security.beta.kubernetes.io~1dbg",
        json!("unconfined"),
    );
    let decision = debug(&pod, json!({"name": "dbg", "image": "busybox"}), Level::Baseline);
    assert!(
        decision.message.ends_with(r#"forbidden AppArmor profile (annotation must not set AppArmor profile type to "container.apparmor.security.beta.kubernetes.io/dbg="unconfined"")"#),
        "{}",
        decision.message
    );
}

#[test]
fn a_debug_container_in_a_user_namespace_pod_may_run_as_root() {
    let pod = with(without(restricted_pod(), "/spec/securityContext/runAsNonRoot"), "/spec/hostUsers", json!(false));
    let root = with(restricted_debug_container(), "/securityContext/runAsUser", json!(0));
    assert!(debug(&pod, root, Level::Restricted).allowed);
}

#[test]
fn an_update_adding_no_ephemeral_container_is_allowed() {
    let pod = with(wild_pod(), "/spec/ephemeralContainers/0/securityContext/privileged", json!(true));
    let bytes = request("UPDATE", Some("ephemeralcontainers"), &pod, Some(&pod));
    assert!(decide(&bytes, Level::Restricted).allowed);
}

#[test]
fn several_debug_containers_are_named_together() {
    let old = restricted_pod();
    let new = with(
        old.clone(),
        "/spec/ephemeralContainers",
        json!([{"name": "a", "image": "busybox", "securityContext": {"privileged": true}},
               {"name": "b", "image": "busybox", "securityContext": {"privileged": true}}]),
    );
    let decision = decide(&request("UPDATE", Some("ephemeralcontainers"), &new, Some(&old)), Level::Baseline);
    assert!(
        decision.message.starts_with(r#"ephemeral containers "a", "b" violate PodSecurity "baseline:v1.37" (with the securityContext they inherit from the pod): privileged (containers "a", "b""#),
        "{}",
        decision.message
    );
}

// ----- settings ---------------------------------------------------------------

#[test]
fn level_defaults_to_baseline() {
    assert_eq!(settings_from_json::<PodSecuritySettings>(b"").unwrap().level, Level::Baseline);
    assert_eq!(settings_from_json::<PodSecuritySettings>(b"{}").unwrap().level, Level::Baseline);
    let restricted: PodSecuritySettings = settings_from_json(br#"{"level": "restricted"}"#).unwrap();
    assert_eq!(restricted.level, Level::Restricted);
}

#[test]
fn other_levels_are_refused_with_the_two_values() {
    for (settings, says) in [
        (&br#"{"level": "strict"}"#[..], r#"level: "strict" is not a level: use "baseline" or "restricted""#),
        (br#"{"level": "Restricted"}"#, r#""Restricted" is not a level: use "baseline" or "restricted""#),
        (
            br#"{"level": "privileged"}"#,
            r#""privileged" is not a level this policy enforces: use "baseline" or "restricted""#,
        ),
        (br#"{"level": 3}"#, r#"invalid type: integer `3`, expected "baseline" or "restricted""#),
        (br#"{"level": null}"#, r#"expected "baseline" or "restricted""#),
    ] {
        let err = settings_from_json::<PodSecuritySettings>(settings).unwrap_err();
        assert!(err.message().contains(says), "{err}");
    }
    let err = settings_from_json::<PodSecuritySettings>(br#"{"levle": "restricted"}"#).unwrap_err();
    assert!(err.message().contains("unknown field `levle`"), "{err}");
    // What the host sees at load.
    let verdict = egate_guest::abi::validate_settings_json(&evaluate, br#"{"level": "strict"}"#);
    assert!(String::from_utf8(verdict).unwrap().starts_with(r#"{"valid":false"#));
}

#[test]
fn debug_capabilities_admit_what_they_name_on_debug_containers_only() {
    let pod = json!({"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}});
    // What `kubectl debug --profile=general` adds.
    let general = json!({"name": "dbg", "image": "busybox:1.36",
                         "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}});
    let ptrace = PodSecuritySettings {
        level: Level::Baseline,
        debug_capabilities: vec!["SYS_PTRACE".into()],
        ..Default::default()
    };
    let judge = |container: &Value, settings: &PodSecuritySettings| {
        evaluate(&Request::parse(&debug_request(&pod, container.clone(), "alice", &[])).unwrap(), settings).unwrap()
    };
    assert!(!judge(&general, &PodSecuritySettings::default()).allowed, "PSA's own answer: SYS_PTRACE is not baseline");
    assert!(judge(&general, &ptrace).allowed);
    // Only the named capability: NET_ADMIN beside it is still judged.
    let more = json!({"name": "dbg", "image": "busybox:1.36",
                      "securityContext": {"capabilities": {"add": ["SYS_PTRACE", "NET_ADMIN"]}}});
    let denied = judge(&more, &ptrace);
    assert!(!denied.allowed);
    assert!(denied.message.contains("NET_ADMIN") && !denied.message.contains("SYS_PTRACE"), "{}", denied.message);
    // A whole pod is judged as Pod Security Admission judges it.
    let pod_with_ptrace = json!({"spec": {"containers": [{"name": "app", "image": "nginx:1.27",
        "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}}]}});
    let create = evaluate(&Request::parse(&request("CREATE", None, &pod_with_ptrace, None)).unwrap(), &ptrace).unwrap();
    assert!(!create.allowed);
}

// ----- policy versions ----------------------------------------------------

/// What a pod CREATE yields at `level` and policy `version`: "" when
/// allowed, else the whole message.
fn at_version(pod: &Value, level: Level, version: &str) -> String {
    let settings: PodSecuritySettings =
        settings_from_json(json!({"level": level.to_string(), "version": version}).to_string().as_bytes()).unwrap();
    let decision = evaluate(&Request::parse(&request("CREATE", None, pod, None)).unwrap(), &settings).unwrap();
    if decision.allowed { String::new() } else { decision.message }
}

#[test]
fn version_defaults_to_latest_which_is_named_v1_37() {
    let settings = settings_from_json::<PodSecuritySettings>(b"{}").unwrap();
    assert_eq!(settings.version, Version::Latest);
    assert_eq!(settings.version.to_string(), "v1.37");
    assert_eq!(POLICY_VERSION, format!("v1.{LATEST_MINOR}"));
    let pod = with(restricted_pod(), &format!("{CONTAINER_SC}/privileged"), json!(true));
    for version in ["latest", "v1.37"] {
        assert!(at_version(&pod, Level::Baseline, version).starts_with(r#"violates PodSecurity "baseline:v1.37": "#));
    }
}

#[test]
fn messages_name_the_version_judged() {
    let pod = with(restricted_pod(), &format!("{CONTAINER_SC}/privileged"), json!(true));
    assert_eq!(
        at_version(&pod, Level::Baseline, "v1.28"),
        r#"violates PodSecurity "baseline:v1.28": privileged (container "app" must not set securityContext.privileged=true)"#
    );
    let review = debug_request(&restricted_pod(), json!({"name": "dbg", "image": "busybox"}), "alice", &[]);
    let settings: PodSecuritySettings = settings_from_json(br#"{"level": "restricted", "version": "v1.24"}"#).unwrap();
    let decision = evaluate(&Request::parse(&review).unwrap(), &settings).unwrap();
    assert!(
        decision.message.starts_with(r#"ephemeral container "dbg" violates PodSecurity "restricted:v1.24" "#),
        "{}",
        decision.message
    );
}

#[test]
fn versions_outside_v1_0_to_v1_37_are_refused_listing_the_valid_ones() {
    for version in ["v1.38", "1.28", "v1.028", "v2.0", "v1.", "Latest", "v1.-1"] {
        let settings = json!({"version": version}).to_string();
        let err = settings_from_json::<PodSecuritySettings>(settings.as_bytes()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("{version:?} is not a policy version: use one of \"latest\", \"v1.0\", \"v1.1\",")),
            "{err}"
        );
        assert!(err.contains(r#""v1.36", "v1.37""#), "{err}");
    }
    assert!(settings_from_json::<PodSecuritySettings>(br#"{"version": 35}"#).is_err());
    for version in ["v1.0", "v1.9", "v1.10", "v1.37"] {
        let settings = json!({"version": version}).to_string();
        assert_eq!(
            settings_from_json::<PodSecuritySettings>(settings.as_bytes()).unwrap().version.to_string(),
            version
        );
    }
}

#[test]
fn sysctls_become_safe_at_their_version() {
    let pod =
        |name: &str| with(restricted_pod(), "/spec/securityContext/sysctls", json!([{"name": name, "value": "1"}]));
    for (name, since) in [
        ("kernel.shm_rmid_forced", 0),
        ("net.ipv4.ip_local_reserved_ports", 27),
        ("net.ipv4.tcp_fin_timeout", 29),
        ("net.ipv4.tcp_wmem", 32),
        ("net.ipv4.tcp_notsent_lowat", 37),
    ] {
        assert_eq!(at_version(&pod(name), Level::Baseline, &format!("v1.{since}")), "", "{name}");
        if since > 0 {
            assert_eq!(
                at_version(&pod(name), Level::Baseline, &format!("v1.{}", since - 1)),
                format!(r#"violates PodSecurity "baseline:v1.{}": forbidden sysctls ({name})"#, since - 1)
            );
        }
    }
}

#[test]
fn seccomp_was_set_by_annotations_before_v1_19() {
    let pod = with(
        with(restricted_pod(), "/metadata/annotations/seccomp.security.alpha.kubernetes.io~1pod", json!("unconfined")),
        "/metadata/annotations/container.seccomp.security.alpha.kubernetes.io~1app",
        json!("docker/default"),
    );
    assert_eq!(
        at_version(&pod, Level::Baseline, "v1.18"),
        r#"violates PodSecurity "baseline:v1.18": seccompProfile (forbidden annotation seccomp.security.alpha.kubernetes.io/pod="unconfined")"#
    );
    assert_eq!(at_version(&pod, Level::Baseline, "v1.19"), "");
    // The field is not read before v1.19, at either level.
    let field = with(restricted_pod(), "/spec/securityContext/seccompProfile", json!({"type": "Unconfined"}));
    assert_eq!(at_version(&field, Level::Baseline, "v1.18"), "");
    assert!(at_version(&field, Level::Baseline, "v1.19").contains("seccompProfile (pod must not set"));
}

#[test]
fn restricted_checks_join_at_their_versions() {
    // The Kubernetes default pod: nothing set.
    let plain = json!({"metadata": {"name": "plain"}, "spec": {"containers": [{"name": "app", "image": "nginx"}]}});
    let reasons = |version: &str| -> Vec<String> {
        let message = at_version(&plain, Level::Restricted, version);
        let list = message.split_once("\": ").map_or("", |(_, list)| list).to_string();
        list.split(", ").filter_map(|v| v.split_once(" (").map(|(reason, _)| reason.to_string())).collect()
    };
    assert_eq!(reasons("v1.7"), ["runAsNonRoot != true"]);
    assert_eq!(reasons("v1.8"), ["allowPrivilegeEscalation != false", "runAsNonRoot != true"]);
    assert_eq!(reasons("v1.19"), ["allowPrivilegeEscalation != false", "runAsNonRoot != true", "seccompProfile"]);
    assert_eq!(
        reasons("v1.22"),
        ["allowPrivilegeEscalation != false", "unrestricted capabilities", "runAsNonRoot != true", "seccompProfile"]
    );
    // runAsUser=0 is refused from v1.23.
    let root = with(restricted_pod(), "/spec/securityContext/runAsUser", json!(0));
    assert_eq!(at_version(&root, Level::Restricted, "v1.22"), "");
    assert!(at_version(&root, Level::Restricted, "v1.23").ends_with("runAsUser=0 (pod must not set runAsUser=0)"));
}

#[test]
fn before_v1_22_restricted_judges_capabilities_as_baseline_does() {
    let pod = with(restricted_pod(), &format!("{CONTAINER_SC}/capabilities"), json!({"add": ["NET_RAW"]}));
    assert_eq!(
        at_version(&pod, Level::Restricted, "v1.21"),
        r#"violates PodSecurity "restricted:v1.21": non-default capabilities (container "app" must not include "NET_RAW" in securityContext.capabilities.add)"#
    );
    assert!(at_version(&pod, Level::Restricted, "v1.22").contains("unrestricted capabilities ("));
}

#[test]
fn windows_pods_are_exempt_from_three_restricted_checks_from_v1_25() {
    let windows = json!({"metadata": {"name": "win"},
                         "spec": {"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": true},
                                  "containers": [{"name": "app", "image": "nanoserver"}]}});
    assert_eq!(at_version(&windows, Level::Restricted, "v1.25"), "");
    let message = at_version(&windows, Level::Restricted, "v1.24");
    for reason in ["allowPrivilegeEscalation != false (", "unrestricted capabilities (", "seccompProfile ("] {
        assert!(message.contains(reason), "{message}");
    }
}

#[test]
fn user_namespaces_relax_proc_mount_run_as_non_root_and_run_as_user_from_v1_35() {
    let pod = with(
        with(
            with(restricted_pod(), "/spec/hostUsers", json!(false)),
            "/spec/securityContext/runAsNonRoot",
            json!(false),
        ),
        &format!("{CONTAINER_SC}/procMount"),
        json!("Unmasked"),
    );
    let pod = with(pod, "/spec/securityContext/runAsUser", json!(0));
    assert_eq!(at_version(&pod, Level::Baseline, "v1.35"), "");
    assert!(at_version(&pod, Level::Baseline, "v1.34").contains("procMount ("));
    let restricted = at_version(&pod, Level::Restricted, "v1.34");
    for reason in ["procMount (", "runAsNonRoot != true (", "runAsUser=0 ("] {
        assert!(restricted.contains(reason), "{restricted}");
    }
    // From v1.35 the restricted level still refuses an unmasked /proc.
    let restricted = at_version(&pod, Level::Restricted, "v1.35");
    assert!(
        restricted.ends_with(r#"procMount (container "app" must not set securityContext.procMount to "Unmasked")"#),
        "{restricted}"
    );
    assert!(!restricted.contains("runAs"), "{restricted}");
}

#[test]
fn container_engine_t_is_allowed_from_v1_31_and_host_probes_refused_from_v1_34() {
    let engine =
        with(restricted_pod(), &format!("{CONTAINER_SC}/seLinuxOptions"), json!({"type": "container_engine_t"}));
    assert_eq!(at_version(&engine, Level::Baseline, "v1.31"), "");
    assert!(at_version(&engine, Level::Baseline, "v1.30").contains(
        r#"seLinuxOptions (container "app" set forbidden securityContext.seLinuxOptions: type "container_engine_t")"#
    ));
    let probe = with(
        restricted_pod(),
        "/spec/containers/0/livenessProbe",
        json!({"tcpSocket": {"host": "10.0.0.1", "port": 80}}),
    );
    assert_eq!(at_version(&probe, Level::Baseline, "v1.33"), "");
    assert!(at_version(&probe, Level::Baseline, "v1.34").contains("probe or lifecycle host ("));
}

#[test]
fn a_volume_without_a_source_is_the_empty_dir_the_api_server_makes_it() {
    let pod = with(restricted_pod(), "/spec/volumes", json!([{"name": "scratch"}]));
    assert_eq!(verdicts(&pod), allowed());
    assert_eq!(at_version(&pod, Level::Restricted, "v1.0"), "");
}

#[test]
fn a_debug_container_is_judged_by_the_seccomp_annotations_it_inherits_before_v1_19() {
    // Before v1.19 seccomp is read from annotations: the pod's applies to a
    // new debug container, and so does one naming it.
    let settings: PodSecuritySettings = settings_from_json(br#"{"version": "v1.18"}"#).unwrap();
    let judge = |pod: &Value| {
        let bytes = debug_request(pod, json!({"name": "dbg", "image": "busybox"}), "alice", &[]);
        evaluate(&Request::parse(&bytes).unwrap(), &settings).unwrap()
    };
    assert!(judge(&restricted_pod()).allowed);
    let pod_wide =
        with(restricted_pod(), "/metadata/annotations/seccomp.security.alpha.kubernetes.io~1pod", json!("unconfined"));
    assert!(
        judge(&pod_wide).message.ends_with(
            r#"seccompProfile (forbidden annotation seccomp.security.alpha.kubernetes.io/pod="unconfined")"#
        )
    );
    let named = |name: &str| {
        let key = format!("/metadata/annotations/container.seccomp.security.alpha.kubernetes.io~1{name}");
        with(restricted_pod(), &key, json!("unconfined"))
    };
    assert!(!judge(&named("dbg")).allowed);
    // One naming another container is not the new container's.
    assert!(judge(&named("app")).allowed);
}

// ----- exemptions -------------------------------------------------------------

fn exempting(exemptions: Value) -> PodSecuritySettings {
    settings_from_json(json!({"level": "restricted", "exemptions": exemptions}).to_string().as_bytes()).unwrap()
}

/// The decision on `bytes`, as (allowed, the `exempt` annotation).
fn exempt_answer(bytes: &[u8], settings: &PodSecuritySettings) -> (bool, Option<String>) {
    let decision = evaluate(&Request::parse(bytes).unwrap(), settings).unwrap();
    (decision.allowed, decision.audit_annotations.get("exempt").cloned())
}

#[test]
fn an_exempt_namespace_user_or_runtime_class_is_allowed_unjudged_and_annotated() {
    // A pod that breaks restricted, created by alice in namespace shop.
    let wild = wild_pod();
    let create = request("CREATE", None, &wild, None);
    let denied = (false, None);
    assert_eq!(exempt_answer(&create, &exempting(json!({}))), denied);
    assert_eq!(exempt_answer(&create, &exempting(json!({"namespaces": ["shop"]}))), (true, Some("namespace".into())));
    assert_eq!(exempt_answer(&create, &exempting(json!({"namespaces": ["shop-dev"]}))), denied);
    assert_eq!(exempt_answer(&create, &exempting(json!({"usernames": ["alice"]}))), (true, Some("user".into())));
    assert_eq!(exempt_answer(&create, &exempting(json!({"usernames": ["Alice"]}))), denied, "names match exactly");
    let kata = with(wild.clone(), "/spec/runtimeClassName", json!("kata"));
    let kata_create = request("CREATE", None, &kata, None);
    let by_class = exempting(json!({"runtimeClasses": ["kata"]}));
    assert_eq!(exempt_answer(&kata_create, &by_class), (true, Some("runtimeClass".into())));
    assert_eq!(exempt_answer(&create, &by_class), denied, "a pod without that runtime class is judged");
    // Namespace first, then user, then runtime class, as Pod Security Admission.
    let all = exempting(json!({"namespaces": ["shop"], "usernames": ["alice"], "runtimeClasses": ["kata"]}));
    assert_eq!(exempt_answer(&kata_create, &all).1.as_deref(), Some("namespace"));
    let user_and_class = exempting(json!({"usernames": ["alice"], "runtimeClasses": ["kata"]}));
    assert_eq!(exempt_answer(&kata_create, &user_and_class).1.as_deref(), Some("user"));
}

#[test]
fn exemptions_apply_to_kubectl_debug_too() {
    let privileged = json!({"name": "dbg", "image": "busybox", "securityContext": {"privileged": true}});
    let kata = with(restricted_pod(), "/spec/runtimeClassName", json!("kata"));
    let debug_bob = debug_request(&kata, privileged.clone(), "bob", &[]);
    assert!(!exempt_answer(&debug_bob, &exempting(json!({}))).0);
    assert_eq!(exempt_answer(&debug_bob, &exempting(json!({"usernames": ["bob"]}))), (true, Some("user".into())));
    let by_class = exempting(json!({"runtimeClasses": ["kata"]}));
    assert_eq!(exempt_answer(&debug_bob, &by_class), (true, Some("runtimeClass".into())));
    let plain = debug_request(&restricted_pod(), privileged, "bob", &[]);
    assert!(!exempt_answer(&plain, &by_class).0);
}

#[test]
fn what_pod_security_admission_ignores_carries_no_exemption() {
    // Not a request it looks at: no annotation, even in an exempt namespace.
    let settings = exempting(json!({"namespaces": ["shop"], "runtimeClasses": ["kata"]}));
    let status = request("UPDATE", Some("status"), &wild_pod(), Some(&wild_pod()));
    assert_eq!(exempt_answer(&status, &settings), (true, None));
    // An update that changes nothing judged: the namespace exemption comes
    // first and annotates; the runtime class one comes after and does not.
    let kata = with(wild_pod(), "/spec/runtimeClassName", json!("kata"));
    let relabel = with(kata.clone(), "/metadata/labels/tier", json!("web"));
    let update = request("UPDATE", None, &relabel, Some(&kata));
    assert_eq!(exempt_answer(&update, &settings), (true, Some("namespace".into())));
    let by_class = exempting(json!({"runtimeClasses": ["kata"]}));
    assert_eq!(exempt_answer(&update, &by_class), (true, None));
}

#[test]
fn exemption_settings_are_checked_at_load() {
    let refused = |settings: Value| {
        let verdict = egate_guest::abi::validate_settings_json(&evaluate, settings.to_string().as_bytes());
        let verdict: Value = serde_json::from_slice(&verdict).unwrap();
        assert_eq!(verdict["valid"], json!(false), "{settings}");
        verdict["message"].as_str().unwrap().to_string()
    };
    let says = refused(json!({"exemptions": {"namespace": ["kube-system"]}}));
    assert!(
        says.contains("unknown field `namespace`, expected one of `usernames`, `runtimeClasses`, `namespaces`"),
        "{says}"
    );
    let says = refused(json!({"exemptions": {"namespaces": ["Kube_System"]}}));
    assert!(
        says.contains(r#"exemptions.namespaces[0]: "Kube_System" is invalid: a namespace name is a DNS-1123 label"#),
        "{says}"
    );
    let says = refused(json!({"exemptions": {"usernames": ["alice", "alice"]}}));
    assert!(says.contains(r#"exemptions.usernames[1]: "alice" is listed twice"#), "{says}");
    let says = refused(json!({"exemptions": {"runtimeClasses": "kata"}}));
    assert!(says.contains("exemptions.runtimeClasses: invalid type: string \"kata\", expected a sequence"), "{says}");
    let fine = egate_guest::abi::validate_settings_json(
        &evaluate,
        br#"{"exemptions": {"namespaces": ["kube-system"], "usernames": ["system:admin"], "runtimeClasses": ["kata"]}}"#,
    );
    assert!(String::from_utf8(fine).unwrap().starts_with(r#"{"valid":true"#));
}
