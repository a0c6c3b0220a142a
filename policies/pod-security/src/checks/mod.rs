//! The Pod Security Standards as a table of checks per level, each check
//! with its versions, after Kubernetes' Pod Security Admission (the
//! `k8s.io/pod-security-admission/policy` package): a check applies from
//! the first policy version it has, and at each policy version runs the
//! newest of its versions not newer than it (see [`Check::at`]).
//!
//! Each check reads a [`Pod`] and returns its [`Violation`], if any, worded
//! as Pod Security Admission words it: a short reason and a detail naming
//! the containers and fields (`privileged (container "app" must not set
//! securityContext.privileged=true)`).
//!
//! Checks are reported in Pod Security Admission's order: baseline checks
//! sorted by ID, then restricted checks sorted by ID. At the restricted
//! level a restricted check replaces the baseline checks it
//! [overrides](Check::overrides), at the policy versions it applies: from
//! v1.35 four of them (`hostPathVolumes` by `restrictedVolumes`,
//! `capabilities_baseline` by `capabilities_restricted`,
//! `seccompProfile_baseline` by `seccompProfile_restricted`, `procMount` by
//! `procMount_restricted`), fewer before.

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

/// A check's function at one of its versions.
pub type CheckFn = fn(&Pod) -> Option<Violation>;

/// One Pod Security Standards check, at all its versions.
#[derive(Clone, Copy)]
pub struct Check {
    /// The check's ID in Pod Security Admission.
    pub id: &'static str,
    /// Pod-level only, or about containers.
    pub scope: Scope,
    /// The check's versions, oldest first: the minor `N` of the policy
    /// version v1.N it applies from, and its function there (a violation,
    /// or `None` when the pod passes).
    pub versions: &'static [(u32, CheckFn)],
    /// The baseline checks this restricted check replaces at the restricted
    /// level, wherever it applies.
    pub overrides: &'static [&'static str],
}

impl Check {
    /// The function of this check at policy version v1.`minor`, if the
    /// check applies there.
    pub fn at(&self, minor: u32) -> Option<CheckFn> {
        self.versions.iter().rev().find(|(since, _)| *since <= minor).map(|(_, run)| *run)
    }

    /// The minors of the policy versions where this check changes, its
    /// first one included.
    pub fn changes(&self) -> impl Iterator<Item = u32> {
        self.versions.iter().map(|(since, _)| *since)
    }
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("Check")
            .field("id", &self.id)
            .field("scope", &self.scope)
            .field("changes", &self.changes().collect::<Vec<_>>())
            .finish()
    }
}

const fn check(id: &'static str, scope: Scope, versions: &'static [(u32, CheckFn)]) -> Check {
    Check { id, scope, versions, overrides: &[] }
}

const fn replacing(
    id: &'static str,
    scope: Scope,
    versions: &'static [(u32, CheckFn)],
    overrides: &'static [&'static str],
) -> Check {
    Check { id, scope, versions, overrides }
}

use Scope::{Containers, Pod as PodLevel};

/// The baseline checks, sorted by ID: they prevent known privilege
/// escalations.
#[rustfmt::skip]
pub const BASELINE: &[Check] = &[
    check("appArmorProfile", Containers, &[(0, baseline::app_armor_profile)]),
    check("capabilities_baseline", Containers, &[(0, baseline::capabilities)]),
    check("hostNamespaces", PodLevel, &[(0, baseline::host_namespaces)]),
    check("hostPathVolumes", PodLevel, &[(0, baseline::host_path_volumes)]),
    check("hostPorts", Containers, &[(0, baseline::host_ports)]),
    check("hostProbesAndHostLifecycle", Containers, &[(34, baseline::host_probes_and_host_lifecycle)]),
    check("privileged", Containers, &[(0, baseline::privileged)]),
    check("procMount", Containers, &[(0, baseline::proc_mount_1_0), (35, baseline::proc_mount)]),
    check("seLinuxOptions", Containers, &[(0, baseline::se_linux_options_1_0), (31, baseline::se_linux_options)]),
    check("seccompProfile_baseline", Containers, &[(0, baseline::seccomp_profile_1_0), (19, baseline::seccomp_profile)]),
    check("sysctls", PodLevel, &[
        (0, baseline::sysctls_1_0), (27, baseline::sysctls_1_27), (29, baseline::sysctls_1_29),
        (32, baseline::sysctls_1_32), (37, baseline::sysctls),
    ]),
    check("windowsHostProcess", Containers, &[(0, baseline::windows_host_process)]),
];

/// The restricted checks, sorted by ID: current pod-hardening practice, on
/// top of the baseline checks they do not replace.
#[rustfmt::skip]
pub const RESTRICTED: &[Check] = &[
    check("allowPrivilegeEscalation", Containers, &[
        (8, restricted::allow_privilege_escalation_1_8), (25, restricted::allow_privilege_escalation),
    ]),
    replacing("capabilities_restricted", Containers, &[
        (22, restricted::capabilities_1_22), (25, restricted::capabilities),
    ], &["capabilities_baseline"]),
    replacing("procMount_restricted", Containers, &[(35, restricted::proc_mount)], &["procMount"]),
    replacing("restrictedVolumes", PodLevel, &[(0, restricted::volumes)], &["hostPathVolumes"]),
    check("runAsNonRoot", Containers, &[(0, restricted::run_as_non_root_1_0), (35, restricted::run_as_non_root)]),
    check("runAsUser", Containers, &[(23, restricted::run_as_user_1_23), (35, restricted::run_as_user)]),
    replacing("seccompProfile_restricted", Containers, &[
        (19, restricted::seccomp_profile_1_19), (25, restricted::seccomp_profile),
    ], &["seccompProfile_baseline"]),
];

/// The checks of `level` at policy version v1.`minor`, in reporting order,
/// each with its function at that version.
pub fn at(level: Level, minor: u32) -> Vec<(&'static Check, CheckFn)> {
    let applying = |checks: &'static [Check]| checks.iter().filter_map(move |c| Some((c, c.at(minor)?)));
    let own: Vec<_> = match level {
        Level::Baseline => Vec::new(),
        Level::Restricted => applying(RESTRICTED).collect(),
    };
    let replaced = |id: &str| own.iter().any(|(c, _)| c.overrides.contains(&id));
    applying(BASELINE).filter(|(c, _)| !replaced(c.id)).chain(own.iter().copied()).collect()
}

/// Runs the checks of `level` at policy version v1.`minor` on `pod`; with
/// `containers_only`, only the checks about containers (see [`Scope`]).
pub fn run(pod: &Pod, level: Level, minor: u32, containers_only: bool) -> Vec<Violation> {
    at(level, minor)
        .into_iter()
        .filter(|(check, _)| !containers_only || check.scope == Scope::Containers)
        .filter_map(|(_, run)| run(pod))
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

    fn ids_at(level: Level, minor: u32) -> Vec<&'static str> {
        at(level, minor).into_iter().map(|(c, _)| c.id).collect()
    }

    fn sorted(mut ids: Vec<&'static str>) -> Vec<&'static str> {
        ids.sort_unstable();
        ids
    }

    #[test]
    fn tables_follow_pod_security_admission_order() {
        // Each table sorted by ID (byte order, as Go sorts), versions oldest first.
        assert_eq!(ids(BASELINE), sorted(ids(BASELINE)));
        assert_eq!(ids(RESTRICTED), sorted(ids(RESTRICTED)));
        for c in BASELINE.iter().chain(RESTRICTED) {
            let changes: Vec<u32> = c.changes().collect();
            assert!(changes.windows(2).all(|w| w[0] < w[1]), "{c:?}");
        }
        // Restricted: the kept baseline checks, then the restricted ones.
        let all = ids_at(Level::Restricted, crate::LATEST_MINOR);
        let (kept, own) = all.split_at(BASELINE.len() - 4);
        assert_eq!(kept, sorted(kept.to_vec()));
        assert_eq!(own, ids(RESTRICTED));
    }

    #[test]
    fn the_newest_change_is_the_latest_version() {
        let newest = BASELINE.iter().chain(RESTRICTED).flat_map(Check::changes).max();
        assert_eq!(newest, Some(crate::LATEST_MINOR));
    }

    #[test]
    fn restricted_replaces_baseline_checks_from_the_version_its_replacement_applies() {
        let replaced = |minor| -> Vec<&str> {
            let restricted = ids_at(Level::Restricted, minor);
            ids_at(Level::Baseline, minor).into_iter().filter(|id| !restricted.contains(id)).collect()
        };
        assert_eq!(replaced(0), ["hostPathVolumes"]);
        assert_eq!(replaced(19), ["hostPathVolumes", "seccompProfile_baseline"]);
        assert_eq!(replaced(22), ["capabilities_baseline", "hostPathVolumes", "seccompProfile_baseline"]);
        assert_eq!(replaced(35), ["capabilities_baseline", "hostPathVolumes", "procMount", "seccompProfile_baseline"]);
        assert_eq!(ids_at(Level::Restricted, 35).len(), BASELINE.len() - 4 + RESTRICTED.len());
    }

    #[test]
    fn checks_join_at_their_first_version() {
        assert!(!ids_at(Level::Baseline, 33).contains(&"hostProbesAndHostLifecycle"));
        assert!(ids_at(Level::Baseline, 34).contains(&"hostProbesAndHostLifecycle"));
        let restricted_at = |minor| ids_at(Level::Restricted, minor);
        assert!(!restricted_at(7).contains(&"allowPrivilegeEscalation"));
        assert!(restricted_at(8).contains(&"allowPrivilegeEscalation"));
        assert!(!restricted_at(22).contains(&"runAsUser"));
        assert!(restricted_at(23).contains(&"runAsUser"));
        assert_eq!(ids_at(Level::Baseline, 0).len(), BASELINE.len() - 1);
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
