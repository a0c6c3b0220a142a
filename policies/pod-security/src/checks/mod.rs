//! The Pod Security Standards as a table of checks per level, one function
//! per check of Kubernetes' Pod Security Admission (the
//! `k8s.io/pod-security-admission/policy` package, policy version v1.35).
//!
//! Each check reads a [`Pod`] and returns its [`Violation`], if any, worded
//! as Pod Security Admission words it: a short reason and a detail naming
//! the containers and fields (`privileged (container "app" must not set
//! securityContext.privileged=true)`).
//!
//! The tables list checks in the order Pod Security Admission reports them:
//! baseline checks sorted by ID, then restricted checks sorted by ID. The
//! restricted level replaces four baseline checks with stricter ones
//! (`hostPathVolumes` by `restrictedVolumes`, `capabilities_baseline` by
//! `capabilities_restricted`, `seccompProfile_baseline` by
//! `seccompProfile_restricted`, `procMount` by `procMount_restricted`).

use std::fmt;

use crate::Level;
use crate::view::{Container, Pod, PodSpec};

pub mod baseline;
pub mod restricted;

/// What one check found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Short reason, the same for every pod (`privileged`).
    pub reason: &'static str,
    /// Which containers or fields, and what is required (`container "app"
    /// must not set securityContext.privileged=true`).
    pub detail: String,
}

impl Violation {
    fn new(reason: &'static str, detail: impl Into<String>) -> Option<Self> {
        Some(Self { reason, detail: detail.into() })
    }
}

/// `reason (detail)`, as Pod Security Admission prints a failed check.
impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.detail.is_empty() { f.write_str(self.reason) } else { write!(f, "{} ({})", self.reason, self.detail) }
    }
}

/// What a check looks at, which decides whether it runs when only new
/// ephemeral containers are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only pod-level fields (host namespaces, volumes, sysctls): the pod
    /// was admitted already, and `kubectl debug` cannot change them, so
    /// these are not judged again on `pods/ephemeralcontainers`.
    Pod,
    /// Container fields, possibly inherited from the pod-level
    /// securityContext: judged for every container a request adds.
    Containers,
}

/// One Pod Security Standards check.
#[derive(Clone, Copy)]
pub struct Check {
    /// The check's ID in Pod Security Admission.
    pub id: &'static str,
    /// Pod-level only, or about containers.
    pub scope: Scope,
    /// The check: a violation, or `None` when the pod passes.
    pub run: fn(&Pod) -> Option<Violation>,
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("Check").field("id", &self.id).field("scope", &self.scope).finish()
    }
}

const fn check(id: &'static str, scope: Scope, run: fn(&Pod) -> Option<Violation>) -> Check {
    Check { id, scope, run }
}

use Scope::{Containers, Pod as PodLevel};

/// The baseline level: prevents known privilege escalations.
pub const BASELINE: &[Check] = &[
    check("appArmorProfile", Containers, baseline::app_armor_profile),
    check("capabilities_baseline", Containers, baseline::capabilities),
    check("hostNamespaces", PodLevel, baseline::host_namespaces),
    check("hostPathVolumes", PodLevel, baseline::host_path_volumes),
    check("hostPorts", Containers, baseline::host_ports),
    check("hostProbesAndHostLifecycle", Containers, baseline::host_probes_and_host_lifecycle),
    check("privileged", Containers, baseline::privileged),
    check("procMount", Containers, baseline::proc_mount),
    check("seLinuxOptions", Containers, baseline::se_linux_options),
    check("seccompProfile_baseline", Containers, baseline::seccomp_profile),
    check("sysctls", PodLevel, baseline::sysctls),
    check("windowsHostProcess", Containers, baseline::windows_host_process),
];

/// The restricted level: the baseline checks, four of them replaced by
/// stricter ones, plus current pod-hardening practice.
pub const RESTRICTED: &[Check] = &[
    // Baseline checks the restricted level keeps.
    check("appArmorProfile", Containers, baseline::app_armor_profile),
    check("hostNamespaces", PodLevel, baseline::host_namespaces),
    check("hostPorts", Containers, baseline::host_ports),
    check("hostProbesAndHostLifecycle", Containers, baseline::host_probes_and_host_lifecycle),
    check("privileged", Containers, baseline::privileged),
    check("seLinuxOptions", Containers, baseline::se_linux_options),
    check("sysctls", PodLevel, baseline::sysctls),
    check("windowsHostProcess", Containers, baseline::windows_host_process),
    // Restricted checks.
    check("allowPrivilegeEscalation", Containers, restricted::allow_privilege_escalation),
    check("capabilities_restricted", Containers, restricted::capabilities),
    check("procMount_restricted", Containers, restricted::proc_mount),
    check("restrictedVolumes", PodLevel, restricted::volumes),
    check("runAsNonRoot", Containers, restricted::run_as_non_root),
    check("runAsUser", Containers, restricted::run_as_user),
    check("seccompProfile_restricted", Containers, restricted::seccomp_profile),
];

/// The checks of `level`, in reporting order.
pub fn for_level(level: Level) -> &'static [Check] {
    match level {
        Level::Baseline => BASELINE,
        Level::Restricted => RESTRICTED,
    }
}

/// Runs the checks of `level` on `pod`; with `containers_only`, only the
/// checks about containers (see [`Scope`]).
pub fn run(pod: &Pod, level: Level, containers_only: bool) -> Vec<Violation> {
    for_level(level)
        .iter()
        .filter(|check| !containers_only || check.scope == Scope::Containers)
        .filter_map(|check| (check.run)(pod))
        .collect()
}

// Helpers shared by the checks, named after Pod Security Admission's own.

/// Every container, in Pod Security Admission's order: init containers,
/// containers, ephemeral containers.
fn containers<'p, 'a>(spec: &'p PodSpec<'a>) -> impl Iterator<Item = &'p Container<'a>> {
    spec.init_containers.iter().chain(&spec.containers).chain(&spec.ephemeral_containers)
}

/// `"a", "b"`.
fn join_quote<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    items.into_iter().map(|s| format!("\"{}\"", s.as_ref())).collect::<Vec<_>>().join(", ")
}

fn pluralize(singular: &'static str, plural: &'static str, count: usize) -> &'static str {
    if count == 1 { singular } else { plural }
}

/// `container "a"` or `containers "a", "b"`.
fn containers_named<S: AsRef<str>>(names: &[S]) -> String {
    format!("{} {}", pluralize("container", "containers", names.len()), join_quote(names))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(checks: &[Check]) -> Vec<&'static str> {
        checks.iter().map(|c| c.id).collect()
    }

    #[test]
    fn tables_follow_pod_security_admission_order() {
        // Baseline: sorted by ID (byte order, as Go sorts).
        let mut sorted = ids(BASELINE);
        sorted.sort_unstable();
        assert_eq!(ids(BASELINE), sorted);
        // Restricted: the kept baseline checks sorted, then restricted ones sorted.
        let (kept, own) = RESTRICTED.split_at(8);
        let mut sorted = ids(kept);
        sorted.sort_unstable();
        assert_eq!(ids(kept), sorted);
        let mut sorted = ids(own);
        sorted.sort_unstable();
        assert_eq!(ids(own), sorted);
    }

    #[test]
    fn restricted_replaces_exactly_four_baseline_checks() {
        let replaced: Vec<_> = ids(BASELINE).into_iter().filter(|id| !ids(RESTRICTED).contains(id)).collect();
        assert_eq!(replaced, ["capabilities_baseline", "hostPathVolumes", "procMount", "seccompProfile_baseline"]);
        assert_eq!(RESTRICTED.len(), BASELINE.len() - 4 + 7);
    }

    #[test]
    fn wording_helpers() {
        assert_eq!(join_quote(["a", "b"]), r#""a", "b""#);
        assert_eq!(containers_named(&["a"]), r#"container "a""#);
        assert_eq!(containers_named(&["a", "b"]), r#"containers "a", "b""#);
        let v = Violation { reason: "privileged", detail: "x".into() };
        assert_eq!(v.to_string(), "privileged (x)");
    }
}
