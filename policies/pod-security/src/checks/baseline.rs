//! The baseline checks, after Pod Security Admission's `check_*.go`: one
//! function per version of a check, the newest under the check's own name,
//! older ones suffixed with the version they apply from (`sysctls_1_27`
//! applies from v1.27 until the next one). Doc comments name the fields read
//! and the values allowed.

use std::collections::BTreeSet;

use super::{Violation, containers, containers_named, join_quote, pluralize};
use crate::view::{
    Handler, Pod, SECCOMP_CONTAINER_ANNOTATION_PREFIX, SECCOMP_POD_ANNOTATION, SeLinuxOptions, WindowsOptions,
};

/// Capabilities a container may add at baseline.
#[rustfmt::skip]
pub const ALLOWED_CAPABILITIES: [&str; 13] = [
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
];

/// SELinux types a pod or container may set (`""`: unset), from policy
/// v1.31; before it, all but `container_engine_t`.
#[rustfmt::skip]
pub const ALLOWED_SELINUX_TYPES: [&str; 5] =
    ["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"];

/// Sysctls a pod may set (namespaced, and isolated from other pods), each
/// with the minor version of the first policy version that allows it.
pub const SAFE_SYSCTLS: [(&str, u32); 14] = [
    ("kernel.shm_rmid_forced", 0),
    ("net.ipv4.ip_local_port_range", 0),
    ("net.ipv4.ip_unprivileged_port_start", 0),
    ("net.ipv4.tcp_syncookies", 0),
    ("net.ipv4.ping_group_range", 0),
    ("net.ipv4.ip_local_reserved_ports", 27),
    ("net.ipv4.tcp_keepalive_time", 29),
    ("net.ipv4.tcp_fin_timeout", 29),
    ("net.ipv4.tcp_keepalive_intvl", 29),
    ("net.ipv4.tcp_keepalive_probes", 29),
    ("net.ipv4.tcp_rmem", 32),
    ("net.ipv4.tcp_wmem", 32),
    ("net.ipv4.tcp_slow_start_after_idle", 37),
    ("net.ipv4.tcp_notsent_lowat", 37),
];

/// Values of the seccomp annotations allowed before policy v1.19.
fn confined_annotation(value: &str) -> bool {
    value == "runtime/default" || value == "docker/default" || value.starts_with("localhost/")
}

/// `RuntimeDefault` or `Localhost`: the seccomp and AppArmor profile types
/// that keep a confinement.
pub fn confined(profile_type: &str) -> bool {
    profile_type == "RuntimeDefault" || profile_type == "Localhost"
}

/// `appArmorProfile`: AppArmor may not be disabled.
///
/// Reads `spec.securityContext.appArmorProfile.type` and every container's
/// `securityContext.appArmorProfile.type` (allowed: `RuntimeDefault`,
/// `Localhost`, unset), and the deprecated annotations
/// `container.apparmor.security.beta.kubernetes.io/*` (allowed:
/// `runtime/default`, `localhost/*`, empty).
pub fn app_armor_profile(pod: &Pod) -> Option<Violation> {
    let mut setters = Vec::new();
    let mut bad_types = BTreeSet::new();
    let pod_profile = pod.spec.security_context.as_ref().and_then(|sc| sc.app_armor_profile.as_ref());
    if let Some(profile) = pod_profile.filter(|p| !confined(&p.kind)) {
        setters.push("pod".to_string());
        bad_types.insert(profile.kind.as_ref());
    }
    let mut bad_containers = Vec::new();
    for container in containers(&pod.spec) {
        let profile = container.security_context.as_ref().and_then(|sc| sc.app_armor_profile.as_ref());
        if let Some(profile) = profile.filter(|p| !confined(&p.kind)) {
            bad_containers.push(container.name.as_ref());
            bad_types.insert(profile.kind.as_ref());
        }
    }
    if !bad_containers.is_empty() {
        setters.push(containers_named(&bad_containers));
    }
    let allowed_annotation = |v: &str| v.is_empty() || v == "runtime/default" || v.starts_with("localhost/");
    let bad_annotations: Vec<String> = pod
        .metadata
        .annotations
        .app_armor()
        .filter(|(_, v)| !allowed_annotation(v))
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    let mut bad_values: Vec<String> = bad_types.into_iter().map(str::to_string).collect();
    if !bad_annotations.is_empty() {
        setters.push(pluralize("annotation", "annotations", bad_annotations.len()).to_string());
        bad_values.extend(bad_annotations);
    }
    if setters.is_empty() {
        return None;
    }
    Violation::new(
        pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", bad_values.len()),
        format!("{} must not set AppArmor profile type to {}", setters.join(" and "), join_quote(&bad_values)),
    )
}

/// `capabilities_baseline`: containers may add only the default
/// capabilities.
///
/// Reads `securityContext.capabilities.add` of every container (allowed:
/// [`ALLOWED_CAPABILITIES`], compared exactly, as Kubernetes does).
pub fn capabilities(pod: &Pod) -> Option<Violation> {
    let mut bad_containers = Vec::new();
    let mut forbidden = BTreeSet::new();
    for container in containers(&pod.spec) {
        let Some(caps) = container.security_context.as_ref().and_then(|sc| sc.capabilities.as_ref()) else {
            continue;
        };
        let mut valid = true;
        for cap in caps.add.iter().filter(|c| !ALLOWED_CAPABILITIES.contains(&&***c)) {
            valid = false;
            forbidden.insert(&**cap);
        }
        if !valid {
            bad_containers.push(container.name.as_ref());
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    Violation::new(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_named(&bad_containers),
            join_quote(&forbidden)
        ),
    )
}

/// `hostNamespaces`: the pod may not share the host's namespaces.
///
/// Reads `spec.hostNetwork`, `spec.hostPID`, `spec.hostIPC` (allowed:
/// false, unset).
pub fn host_namespaces(pod: &Pod) -> Option<Violation> {
    let spec = &pod.spec;
    let shared: Vec<&str> =
        [(spec.host_network, "hostNetwork=true"), (spec.host_pid, "hostPID=true"), (spec.host_ipc, "hostIPC=true")]
            .into_iter()
            .filter(|(set, _)| *set == Some(true))
            .map(|(_, field)| field)
            .collect();
    if shared.is_empty() {
        return None;
    }
    Violation::new("host namespaces", shared.join(", "))
}

/// `hostPathVolumes`: no hostPath volumes.
///
/// Reads `spec.volumes[*].hostPath` (allowed: unset).
pub fn host_path_volumes(pod: &Pod) -> Option<Violation> {
    let volumes: Vec<&str> = pod.spec.volumes.iter().filter(|v| v.has("hostPath")).map(|v| v.name.as_ref()).collect();
    if volumes.is_empty() {
        return None;
    }
    Violation::new(
        "hostPath volumes",
        format!("{} {}", pluralize("volume", "volumes", volumes.len()), join_quote(&volumes)),
    )
}

/// `hostPorts`: containers may not bind host ports.
///
/// Reads `ports[*].hostPort` of every container (allowed: unset, 0).
pub fn host_ports(pod: &Pod) -> Option<Violation> {
    let mut bad_containers = Vec::new();
    // Sorted as text, as Pod Security Admission sorts them.
    let mut ports = BTreeSet::new();
    for container in containers(&pod.spec) {
        let mut valid = true;
        for port in container.ports.iter().filter_map(|p| p.host_port).filter(|p| *p != 0) {
            valid = false;
            ports.insert(port.to_string());
        }
        if !valid {
            bad_containers.push(container.name.as_ref());
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    Violation::new(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_named(&bad_containers),
            pluralize("uses", "use", bad_containers.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.into_iter().collect::<Vec<_>>().join(", ")
        ),
    )
}

/// `hostProbesAndHostLifecycle`: probes and lifecycle handlers may not
/// reach another host.
///
/// Reads `host` of `httpGet` and `tcpSocket` in `livenessProbe`,
/// `readinessProbe`, `startupProbe`, `lifecycle.postStart` and
/// `lifecycle.preStop` of every container (allowed: empty, unset).
pub fn host_probes_and_host_lifecycle(pod: &Pod) -> Option<Violation> {
    fn hosts<'h>(handler: Option<&'h Handler>) -> impl Iterator<Item = &'h str> {
        let handler = handler.into_iter();
        let http = handler.clone().filter_map(|h| h.http_get.as_ref());
        let tcp = handler.filter_map(|h| h.tcp_socket.as_ref());
        http.chain(tcp).filter_map(|action| action.host.as_deref()).filter(|host| !host.is_empty())
    }
    let mut bad_containers = BTreeSet::new();
    let mut bad_hosts = BTreeSet::new();
    for c in containers(&pod.spec) {
        let lifecycle = c.lifecycle.as_ref();
        let handlers = [
            c.liveness_probe.as_ref(),
            c.readiness_probe.as_ref(),
            c.startup_probe.as_ref(),
            lifecycle.and_then(|l| l.post_start.as_ref()),
            lifecycle.and_then(|l| l.pre_stop.as_ref()),
        ];
        for host in handlers.into_iter().flat_map(hosts) {
            bad_containers.insert(c.name.as_ref());
            bad_hosts.insert(host);
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    let names: Vec<&str> = bad_containers.into_iter().collect();
    Violation::new(
        "probe or lifecycle host",
        format!(
            "{} {} {} {}",
            containers_named(&names),
            pluralize("uses", "use", names.len()),
            pluralize("probe or lifecycle host", "probe or lifecycle hosts", bad_hosts.len()),
            join_quote(&bad_hosts)
        ),
    )
}

/// `privileged`: no privileged containers.
///
/// Reads `securityContext.privileged` of every container (allowed: false,
/// unset).
pub fn privileged(pod: &Pod) -> Option<Violation> {
    let bad: Vec<&str> = containers(&pod.spec)
        .filter(|c| c.security_context.as_ref().and_then(|sc| sc.privileged) == Some(true))
        .map(|c| c.name.as_ref())
        .collect();
    if bad.is_empty() {
        return None;
    }
    Violation::new("privileged", format!("{} must not set securityContext.privileged=true", containers_named(&bad)))
}

/// `procMount`: the default /proc masks stay, unless the pod runs in its
/// own user namespace (`spec.hostUsers: false`, from policy v1.35).
///
/// Reads `securityContext.procMount` of every container (allowed:
/// `Default`, unset).
pub fn proc_mount(pod: &Pod) -> Option<Violation> {
    if pod.spec.in_user_namespace() {
        return None;
    }
    proc_mount_1_0(pod)
}

/// `procMount` before policy v1.35: no user-namespace exemption (also the
/// restricted level's `procMount_restricted`).
pub fn proc_mount_1_0(pod: &Pod) -> Option<Violation> {
    let mut bad_containers = Vec::new();
    let mut bad_types = BTreeSet::new();
    for c in containers(&pod.spec) {
        let proc_mount = c.security_context.as_ref().and_then(|sc| sc.proc_mount.as_deref());
        if let Some(proc_mount) = proc_mount.filter(|p| *p != "Default") {
            bad_containers.push(c.name.as_ref());
            bad_types.insert(proc_mount);
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    Violation::new(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            containers_named(&bad_containers),
            join_quote(&bad_types)
        ),
    )
}

/// `seLinuxOptions`: only the container SELinux types, and no custom user
/// or role.
///
/// Reads `seLinuxOptions.type` (allowed: [`ALLOWED_SELINUX_TYPES`]),
/// `.user` and `.role` (allowed: empty, unset) of
/// `spec.securityContext` and of every container's `securityContext`.
pub fn se_linux_options(pod: &Pod) -> Option<Violation> {
    se_linux_options_allowing(pod, &ALLOWED_SELINUX_TYPES)
}

/// `seLinuxOptions` before policy v1.31: `container_engine_t` not allowed.
pub fn se_linux_options_1_0(pod: &Pod) -> Option<Violation> {
    se_linux_options_allowing(pod, &ALLOWED_SELINUX_TYPES[..4])
}

fn se_linux_options_allowing(pod: &Pod, allowed_types: &[&str]) -> Option<Violation> {
    let mut bad_types = BTreeSet::new();
    let (mut set_user, mut set_role) = (false, false);
    let mut valid = |options: &SeLinuxOptions<'_>| {
        let kind = options.kind.as_deref().unwrap_or_default();
        let mut ok = true;
        if !allowed_types.contains(&kind) {
            ok = false;
            bad_types.insert(kind.to_string());
        }
        if options.user.as_deref().is_some_and(|u| !u.is_empty()) {
            ok = false;
            set_user = true;
        }
        if options.role.as_deref().is_some_and(|r| !r.is_empty()) {
            ok = false;
            set_role = true;
        }
        ok
    };
    let mut setters = Vec::new();
    let pod_options = pod.spec.security_context.as_ref().and_then(|sc| sc.se_linux_options.as_ref());
    if pod_options.is_some_and(|options| !valid(options)) {
        setters.push("pod".to_string());
    }
    let mut bad_containers = Vec::new();
    for c in containers(&pod.spec) {
        let options = c.security_context.as_ref().and_then(|sc| sc.se_linux_options.as_ref());
        if options.is_some_and(|options| !valid(options)) {
            bad_containers.push(c.name.as_ref());
        }
    }
    if !bad_containers.is_empty() {
        setters.push(containers_named(&bad_containers));
    }
    if setters.is_empty() {
        return None;
    }
    let mut data = Vec::new();
    if !bad_types.is_empty() {
        data.push(format!("{} {}", pluralize("type", "types", bad_types.len()), join_quote(&bad_types)));
    }
    if set_user {
        data.push("user may not be set".to_string());
    }
    if set_role {
        data.push("role may not be set".to_string());
    }
    Violation::new(
        "seLinuxOptions",
        format!("{} set forbidden securityContext.seLinuxOptions: {}", setters.join(" and "), data.join("; ")),
    )
}

/// `seccompProfile_baseline`: seccomp may not be disabled.
///
/// Reads `spec.securityContext.seccompProfile.type` and every container's
/// `securityContext.seccompProfile.type` (allowed: `RuntimeDefault`,
/// `Localhost`, unset).
pub fn seccomp_profile(pod: &Pod) -> Option<Violation> {
    let mut setters = Vec::new();
    let mut bad_types = BTreeSet::new();
    let pod_profile = pod.spec.security_context.as_ref().and_then(|sc| sc.seccomp_profile.as_ref());
    if let Some(profile) = pod_profile.filter(|p| !confined(&p.kind)) {
        setters.push("pod".to_string());
        bad_types.insert(profile.kind.as_ref());
    }
    let mut bad_containers = Vec::new();
    for c in containers(&pod.spec) {
        let profile = c.security_context.as_ref().and_then(|sc| sc.seccomp_profile.as_ref());
        if let Some(profile) = profile.filter(|p| !confined(&p.kind)) {
            bad_containers.push(c.name.as_ref());
            bad_types.insert(profile.kind.as_ref());
        }
    }
    if !bad_containers.is_empty() {
        setters.push(containers_named(&bad_containers));
    }
    if setters.is_empty() {
        return None;
    }
    Violation::new(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            setters.join(" and "),
            join_quote(&bad_types)
        ),
    )
}

/// `seccompProfile_baseline` before policy v1.19, when seccomp was set by
/// annotations.
///
/// Reads the annotations `seccomp.security.alpha.kubernetes.io/pod` and
/// `container.seccomp.security.alpha.kubernetes.io/NAME` of every container
/// (allowed: `runtime/default`, `docker/default`, `localhost/*`, unset).
pub fn seccomp_profile_1_0(pod: &Pod) -> Option<Violation> {
    let annotations = &pod.metadata.annotations;
    let mut forbidden = BTreeSet::new();
    let mut judge = |key: String| {
        if let Some(value) = annotations.get(&key).filter(|v| !confined_annotation(v)) {
            forbidden.insert(format!("{key}={value:?}"));
        }
    };
    judge(SECCOMP_POD_ANNOTATION.to_string());
    for c in containers(&pod.spec) {
        judge(format!("{SECCOMP_CONTAINER_ANNOTATION_PREFIX}{}", c.name));
    }
    if forbidden.is_empty() {
        return None;
    }
    Violation::new(
        "seccompProfile",
        format!(
            "forbidden {} {}",
            pluralize("annotation", "annotations", forbidden.len()),
            forbidden.into_iter().collect::<Vec<_>>().join(", ")
        ),
    )
}

/// `sysctls`: only the safe sysctls.
///
/// Reads `spec.securityContext.sysctls[*].name` (allowed:
/// [`SAFE_SYSCTLS`], from policy v1.37 all of them).
pub fn sysctls(pod: &Pod) -> Option<Violation> {
    sysctls_safe_at(pod, 37)
}

/// `sysctls` from policy v1.32: all but the two of v1.37.
pub fn sysctls_1_32(pod: &Pod) -> Option<Violation> {
    sysctls_safe_at(pod, 32)
}

/// `sysctls` from policy v1.29.
pub fn sysctls_1_29(pod: &Pod) -> Option<Violation> {
    sysctls_safe_at(pod, 29)
}

/// `sysctls` from policy v1.27.
pub fn sysctls_1_27(pod: &Pod) -> Option<Violation> {
    sysctls_safe_at(pod, 27)
}

/// `sysctls` from policy v1.0: the first five.
pub fn sysctls_1_0(pod: &Pod) -> Option<Violation> {
    sysctls_safe_at(pod, 0)
}

/// The sysctls of `pod` not safe at policy version v1.`minor`.
fn sysctls_safe_at(pod: &Pod, minor: u32) -> Option<Violation> {
    let safe = |name: &str| SAFE_SYSCTLS.iter().any(|(safe, since)| *safe == name && *since <= minor);
    let forbidden: Vec<&str> = pod
        .spec
        .security_context
        .iter()
        .flat_map(|sc| &sc.sysctls)
        .map(|s| s.name.as_ref())
        .filter(|name| !safe(name))
        .collect();
    if forbidden.is_empty() {
        return None;
    }
    Violation::new("forbidden sysctls", forbidden.join(", "))
}

/// `windowsHostProcess`: no Windows HostProcess containers.
///
/// Reads `windowsOptions.hostProcess` of `spec.securityContext` and of
/// every container's `securityContext` (allowed: false, unset).
pub fn windows_host_process(pod: &Pod) -> Option<Violation> {
    let host_process = |options: Option<WindowsOptions>| options.and_then(|o| o.host_process) == Some(true);
    let mut setters = Vec::new();
    if host_process(pod.spec.security_context.as_ref().and_then(|sc| sc.windows_options)) {
        setters.push("pod".to_string());
    }
    let bad: Vec<&str> = containers(&pod.spec)
        .filter(|c| host_process(c.security_context.as_ref().and_then(|sc| sc.windows_options)))
        .map(|c| c.name.as_ref())
        .collect();
    if !bad.is_empty() {
        setters.push(containers_named(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    Violation::new(
        "hostProcess",
        format!("{} must not set securityContext.windowsOptions.hostProcess=true", setters.join(" and ")),
    )
}
