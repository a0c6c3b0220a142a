//! The restricted checks, after Pod Security Admission's `check_*.go`: one
//! function per version of a check, the newest under the check's own name,
//! older ones suffixed with the version they apply from (`run_as_user_1_23`
//! applies from v1.23 until the next one). Doc comments name the fields
//! read and the values allowed.

use std::collections::BTreeSet;

use super::baseline::{confined, proc_mount_1_0};
use super::{Violation, containers, containers_named, join_quote, pluralize};
use crate::view::Pod;

/// Inline volume sources the restricted level allows.
#[rustfmt::skip]
pub const ALLOWED_VOLUME_SOURCES: [&str; 9] = [
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim",
    "projected", "secret",
];

/// The restricted volume sources, in the order Pod Security Admission
/// names the first one a volume has; any other source is `unknown`.
#[rustfmt::skip]
const RESTRICTED_VOLUME_SOURCES: [&str; 21] = [
    "hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi", "glusterfs",
    "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile", "vsphereVolume", "quobyte",
    "azureDisk", "photonPersistentDisk", "portworxVolume", "scaleIO", "storageos",
];

/// `allowPrivilegeEscalation`: no container may gain more privileges than
/// its parent process. Windows pods (`spec.os.name: windows`) are exempt.
///
/// Reads `securityContext.allowPrivilegeEscalation` of every container
/// (required: false).
pub fn allow_privilege_escalation(pod: &Pod) -> Option<Violation> {
    if pod.spec.is_windows() {
        return None;
    }
    allow_privilege_escalation_1_8(pod)
}

/// `allowPrivilegeEscalation` from policy v1.8 to v1.24: Windows pods not
/// exempt.
pub fn allow_privilege_escalation_1_8(pod: &Pod) -> Option<Violation> {
    let bad: Vec<&str> = containers(&pod.spec)
        .filter(|c| c.security_context.as_ref().and_then(|sc| sc.allow_privilege_escalation) != Some(false))
        .map(|c| c.name.as_ref())
        .collect();
    if bad.is_empty() {
        return None;
    }
    Violation::new(
        "allowPrivilegeEscalation != false",
        format!("{} must set securityContext.allowPrivilegeEscalation=false", containers_named(&bad)),
    )
}

/// `capabilities_restricted`: containers drop every capability and may
/// add back only `NET_BIND_SERVICE`. Windows pods are exempt.
///
/// Reads `securityContext.capabilities.drop` (required: includes `ALL`)
/// and `securityContext.capabilities.add` (allowed: `NET_BIND_SERVICE`) of
/// every container.
pub fn capabilities(pod: &Pod) -> Option<Violation> {
    if pod.spec.is_windows() {
        return None;
    }
    capabilities_1_22(pod)
}

/// `capabilities_restricted` from policy v1.22 to v1.24: Windows pods not
/// exempt.
pub fn capabilities_1_22(pod: &Pod) -> Option<Violation> {
    let mut missing_drop_all = Vec::new();
    let mut adding_forbidden = Vec::new();
    let mut forbidden = BTreeSet::new();
    for c in containers(&pod.spec) {
        let Some(caps) = c.security_context.as_ref().and_then(|sc| sc.capabilities.as_ref()) else {
            missing_drop_all.push(c.name.as_ref());
            continue;
        };
        if !caps.drop.iter().any(|d| &**d == "ALL") {
            missing_drop_all.push(c.name.as_ref());
        }
        let mut adds_forbidden = false;
        for cap in caps.add.iter().filter(|a| &***a != "NET_BIND_SERVICE") {
            adds_forbidden = true;
            forbidden.insert(&**cap);
        }
        if adds_forbidden {
            adding_forbidden.push(c.name.as_ref());
        }
    }
    let mut details = Vec::new();
    if !missing_drop_all.is_empty() {
        details.push(format!(
            r#"{} must set securityContext.capabilities.drop=["ALL"]"#,
            containers_named(&missing_drop_all)
        ));
    }
    if !adding_forbidden.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_named(&adding_forbidden),
            join_quote(&forbidden)
        ));
    }
    if details.is_empty() {
        return None;
    }
    Violation::new("unrestricted capabilities", details.join("; "))
}

/// `procMount_restricted`: the default /proc masks stay, even in a user
/// namespace.
///
/// Reads `securityContext.procMount` of every container (allowed:
/// `Default`, unset).
pub fn proc_mount(pod: &Pod) -> Option<Violation> {
    proc_mount_1_0(pod)
}

/// `restrictedVolumes`: only volume types that stay inside the pod or go
/// through a PersistentVolume.
///
/// Reads the source of every `spec.volumes[*]` (allowed:
/// [`ALLOWED_VOLUME_SOURCES`], and none at all: the API server makes a
/// volume without a source an `emptyDir` before admission, and Pod
/// Security Admission's fixtures count on it).
pub fn volumes(pod: &Pod) -> Option<Violation> {
    let mut bad_volumes = Vec::new();
    let mut bad_types = BTreeSet::new();
    for volume in &pod.spec.volumes {
        if volume.sources.is_empty() || ALLOWED_VOLUME_SOURCES.iter().any(|allowed| volume.has(allowed)) {
            continue;
        }
        bad_volumes.push(volume.name.as_ref());
        let kind = RESTRICTED_VOLUME_SOURCES.iter().find(|kind| volume.has(kind)).copied().unwrap_or("unknown");
        bad_types.insert(kind);
    }
    if bad_volumes.is_empty() {
        return None;
    }
    Violation::new(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", bad_volumes.len()),
            join_quote(&bad_volumes),
            pluralize("uses", "use", bad_volumes.len()),
            pluralize("restricted volume type", "restricted volume types", bad_types.len()),
            join_quote(&bad_types)
        ),
    )
}

/// `runAsNonRoot`: containers must run as a non-root user. Pods in their
/// own user namespace (`spec.hostUsers: false`) are exempt (from policy
/// v1.35).
///
/// Reads `spec.securityContext.runAsNonRoot` and every container's
/// `securityContext.runAsNonRoot` (required: true, at container level or
/// inherited from the pod level; false is refused at either level).
pub fn run_as_non_root(pod: &Pod) -> Option<Violation> {
    if pod.spec.in_user_namespace() {
        return None;
    }
    run_as_non_root_1_0(pod)
}

/// `runAsNonRoot` before policy v1.35: no user-namespace exemption.
pub fn run_as_non_root_1_0(pod: &Pod) -> Option<Violation> {
    let mut setters = Vec::new();
    let pod_value = pod.spec.security_context.as_ref().and_then(|sc| sc.run_as_non_root);
    if pod_value == Some(false) {
        setters.push("pod".to_string());
    }
    // Containers that set false, and containers that set nothing without a
    // pod-level true to inherit.
    let mut explicitly_bad = Vec::new();
    let mut implicitly_bad = Vec::new();
    for c in containers(&pod.spec) {
        match c.security_context.as_ref().and_then(|sc| sc.run_as_non_root) {
            Some(true) => {}
            Some(false) => explicitly_bad.push(c.name.as_ref()),
            None if pod_value == Some(true) => {}
            None => implicitly_bad.push(c.name.as_ref()),
        }
    }
    if !explicitly_bad.is_empty() {
        setters.push(containers_named(&explicitly_bad));
    }
    if !setters.is_empty() {
        return Violation::new(
            "runAsNonRoot != true",
            format!("{} must not set securityContext.runAsNonRoot=false", setters.join(" and ")),
        );
    }
    if !implicitly_bad.is_empty() {
        return Violation::new(
            "runAsNonRoot != true",
            format!("pod or {} must set securityContext.runAsNonRoot=true", containers_named(&implicitly_bad)),
        );
    }
    None
}

/// `runAsUser`: nothing may run as UID 0. Pods in their own user namespace
/// (`spec.hostUsers: false`) are exempt (from policy v1.35).
///
/// Reads `spec.securityContext.runAsUser` and every container's
/// `securityContext.runAsUser` (allowed: non-zero, unset).
pub fn run_as_user(pod: &Pod) -> Option<Violation> {
    if pod.spec.in_user_namespace() {
        return None;
    }
    run_as_user_1_23(pod)
}

/// `runAsUser` from policy v1.23 to v1.34: no user-namespace exemption.
pub fn run_as_user_1_23(pod: &Pod) -> Option<Violation> {
    let mut setters = Vec::new();
    if pod.spec.security_context.as_ref().and_then(|sc| sc.run_as_user) == Some(0) {
        setters.push("pod".to_string());
    }
    let bad: Vec<&str> = containers(&pod.spec)
        .filter(|c| c.security_context.as_ref().and_then(|sc| sc.run_as_user) == Some(0))
        .map(|c| c.name.as_ref())
        .collect();
    if !bad.is_empty() {
        setters.push(containers_named(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    Violation::new("runAsUser=0", format!("{} must not set runAsUser=0", setters.join(" and ")))
}

/// `seccompProfile_restricted`: every container runs under a seccomp
/// profile. Windows pods are exempt.
///
/// Reads `spec.securityContext.seccompProfile.type` and every container's
/// `securityContext.seccompProfile.type` (required: `RuntimeDefault` or
/// `Localhost`, at container level or inherited from the pod level).
pub fn seccomp_profile(pod: &Pod) -> Option<Violation> {
    if pod.spec.is_windows() {
        return None;
    }
    seccomp_profile_1_19(pod)
}

/// `seccompProfile_restricted` from policy v1.19 to v1.24: Windows pods
/// not exempt.
pub fn seccomp_profile_1_19(pod: &Pod) -> Option<Violation> {
    let mut setters = Vec::new();
    let mut bad_types = BTreeSet::new();
    let mut pod_confined = false;
    if let Some(profile) = pod.spec.security_context.as_ref().and_then(|sc| sc.seccomp_profile.as_ref()) {
        if confined(&profile.kind) {
            pod_confined = true;
        } else {
            setters.push("pod".to_string());
            bad_types.insert(profile.kind.as_ref());
        }
    }
    let mut explicitly_bad = Vec::new();
    let mut implicitly_bad = Vec::new();
    for c in containers(&pod.spec) {
        match c.security_context.as_ref().and_then(|sc| sc.seccomp_profile.as_ref()) {
            Some(profile) if confined(&profile.kind) => {}
            Some(profile) => {
                explicitly_bad.push(c.name.as_ref());
                bad_types.insert(profile.kind.as_ref());
            }
            None if pod_confined => {}
            None => implicitly_bad.push(c.name.as_ref()),
        }
    }
    if !explicitly_bad.is_empty() {
        setters.push(containers_named(&explicitly_bad));
    }
    if !setters.is_empty() {
        return Violation::new(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters.join(" and "),
                join_quote(&bad_types)
            ),
        );
    }
    if !implicitly_bad.is_empty() {
        return Violation::new(
            "seccompProfile",
            format!(
                r#"pod or {} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#,
                containers_named(&implicitly_bad)
            ),
        );
    }
    None
}
