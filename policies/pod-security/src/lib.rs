//! Built-in policy `pod-security` (`builtin:pod-security`): the Kubernetes
//! Pod Security Standards, `baseline` or `restricted`, judged as Pod
//! Security Admission judges them at a policy version (setting `version`:
//! `latest`, the default, which is v1.37, or any of v1.0 to v1.37), with the
//! same reasons and details in its messages.
//!
//! - On `pods` CREATE, and on an UPDATE that changes an image, it judges
//!   the whole pod: every container, init container and ephemeral
//!   container, and every pod-level field. Other pod UPDATEs are allowed
//!   unjudged, as Pod Security Admission allows them.
//! - On `pods/ephemeralcontainers` (`kubectl debug`) it judges only the
//!   ephemeral containers the request adds, with the container checks and
//!   the pod-level securityContext values those containers inherit; checks
//!   of pod-level fields only (host namespaces, volumes, sysctls) are not
//!   run again, since the pod was admitted already.
//! - Pod Security Admission's [`exemptions`] (setting `exemptions`:
//!   `namespaces`, `usernames`, `runtimeClasses`): an exempt request is
//!   allowed unjudged, with the audit annotation `exempt` naming why.
//!
//! The code reads top-down: [`subject`] decides what a request asks to
//! judge, [`exemptions`] what is not judged at all, [`checks`] holds one function per Pod Security Standards check
//! and the table of checks of each level, [`view`] the few Pod fields they
//! read.
//!
//! ```
//! use egate_guest::Request;
//! use egate_policy_pod_security::{evaluate, Level, PodSecuritySettings};
//!
//! let create = br#"{"uid": "1", "operation": "CREATE", "resource": {"resource": "pods"},
//!   "object": {"spec": {"containers": [{"name": "app", "image": "nginx",
//!                                       "securityContext": {"privileged": true}}]}}}"#;
//! let request = Request::parse(create).unwrap();
//! let decision = evaluate(&request, &PodSecuritySettings { level: Level::Baseline, ..Default::default() }).unwrap();
//! assert_eq!(
//!     decision.message,
//!     r#"violates PodSecurity "baseline:v1.37": privileged (container "app" must not set securityContext.privileged=true)"#
//! );
//! ```

use std::fmt;

use egate_guest::{Decision, Error, Request, Settings};
use serde::{Deserialize, Deserializer};

pub mod checks;
pub mod exemptions;
pub mod subject;
pub mod view;

#[cfg(test)]
mod tests;

pub use exemptions::{Exemption, Exemptions};
use subject::Subject;

/// The newest Pod Security Admission policy version this policy
/// implements, which `latest` means: v1.`LATEST_MINOR`.
pub const LATEST_MINOR: u32 = 37;

/// [`LATEST_MINOR`] as it is written: `v1.37`.
pub const POLICY_VERSION: &str = "v1.37";

/// A Pod Security Admission policy version: `latest` or `v1.0` to `v1.37`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Version {
    /// The newest policy version ([`POLICY_VERSION`]); named as that
    /// version in messages.
    #[default]
    Latest,
    /// `v1.N`, N from 0 to [`LATEST_MINOR`].
    V1(u32),
}

impl Version {
    /// The minor of the policy version this is (`latest`: [`LATEST_MINOR`]).
    pub fn minor(self) -> u32 {
        match self {
            Version::Latest => LATEST_MINOR,
            Version::V1(minor) => minor,
        }
    }

    /// Every version the setting accepts, as written.
    pub fn valid() -> impl Iterator<Item = String> {
        std::iter::once("latest".to_string()).chain((0..=LATEST_MINOR).map(|minor| format!("v1.{minor}")))
    }
}

/// The policy version judged, as messages name it: `v1.37` for `latest`.
impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "v1.{}", self.minor())
    }
}

impl std::str::FromStr for Version {
    type Err = String;
    fn from_str(value: &str) -> Result<Version, String> {
        if value == "latest" {
            return Ok(Version::Latest);
        }
        // `v1.N`, N without a sign or leading zero, at most LATEST_MINOR.
        let minor = value
            .strip_prefix("v1.")
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (n.len() == 1 || !n.starts_with('0')))
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|minor| *minor <= LATEST_MINOR);
        minor.map(Version::V1).ok_or_else(|| {
            let valid: Vec<String> = Version::valid().map(|v| format!("{v:?}")).collect();
            format!("{value:?} is not a policy version: use one of {}", valid.join(", "))
        })
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct VersionVisitor;
        impl serde::de::Visitor<'_> for VersionVisitor {
            type Value = Version;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, r#""latest" or a policy version "v1.0" to "v1.{LATEST_MINOR}""#)
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Version, E> {
                value.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(VersionVisitor)
    }
}

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Level {
    /// Prevents known privilege escalations; runs most workloads unchanged.
    #[default]
    Baseline,
    /// Baseline plus current pod-hardening practice.
    Restricted,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        })
    }
}

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LevelVisitor;
        impl serde::de::Visitor<'_> for LevelVisitor {
            type Value = Level;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#""baseline" or "restricted""#)
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Level, E> {
                match value {
                    "baseline" => Ok(Level::Baseline),
                    "restricted" => Ok(Level::Restricted),
                    "privileged" => Err(E::custom(
                        r#""privileged" is not a level this policy enforces: use "baseline" or "restricted" (the privileged level allows everything: exclude those namespaces instead)"#,
                    )),
                    other => Err(E::custom(format!(r#"{other:?} is not a level: use "baseline" or "restricted""#))),
                }
            }
        }
        deserializer.deserialize_str(LevelVisitor)
    }
}

/// Settings of `pod-security`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct PodSecuritySettings {
    /// `baseline` (the default) or `restricted`.
    pub level: Level,
    /// The Pod Security Admission policy version whose checks apply:
    /// `latest` (the default, v1.37) or `v1.0` to `v1.37`, as in a
    /// namespace's `pod-security.kubernetes.io/enforce-version` label.
    pub version: Version,
    /// Capabilities a new ephemeral container (`kubectl debug`) may add on
    /// top of what the level allows, such as `SYS_PTRACE`, which kubectl's
    /// `general` profile asks for. Compared exactly, as the capability
    /// checks compare. Empty (the default) judges debug containers exactly
    /// as Pod Security Admission judges containers; whole pods are always
    /// judged that way.
    pub debug_capabilities: Vec<String>,
    /// Requests allowed without any check, as Pod Security Admission's
    /// `exemptions`: by namespace, requester or the pod's runtime class.
    /// None by default.
    pub exemptions: Exemptions,
}

impl Settings for PodSecuritySettings {
    fn validate(&self) -> Result<(), String> {
        self.exemptions.validate()
    }
}

/// Judges a request against the Pod Security Standards level of `settings`.
///
/// In Pod Security Admission's order: a request it would not look at is
/// allowed; then one in an exempt namespace or by an exempt user is allowed
/// with the audit annotation `exempt`; then one that asks nothing to be
/// judged (an update that changes no image) is allowed; then a pod of an
/// exempt runtime class is allowed with the annotation; the rest is judged.
pub fn evaluate(request: &Request, settings: &PodSecuritySettings) -> Result<Decision, Error> {
    if !subject::concerns(request) {
        return Ok(Decision::allow());
    }
    if let Some(exemption) = settings.exemptions.of_request(request) {
        return Ok(exemption.decision());
    }
    let subject = subject::of(request)?;
    let runtime_class = match &subject {
        Subject::Nothing => return Ok(Decision::allow()),
        Subject::WholePod(pod) | Subject::NewEphemeralContainers(pod) => pod.spec.runtime_class_name.as_deref(),
    };
    if let Some(exemption) = settings.exemptions.of_runtime_class(runtime_class) {
        return Ok(exemption.decision());
    }
    let level = settings.level;
    let version = settings.version;
    let minor = version.minor();
    let message = match subject {
        Subject::Nothing => return Ok(Decision::allow()),
        Subject::WholePod(pod) => {
            let violations = checks::run(&pod, level, minor, false);
            if violations.is_empty() {
                return Ok(Decision::allow());
            }
            format!("violates PodSecurity \"{level}:{version}\": {}", list(&violations))
        }
        Subject::NewEphemeralContainers(mut pod) => {
            allow_debug_capabilities(&mut pod, &settings.debug_capabilities);
            let violations = checks::run(&pod, level, minor, true);
            if violations.is_empty() {
                return Ok(Decision::allow());
            }
            let names: Vec<String> = pod.spec.ephemeral_containers.iter().map(|c| format!("{:?}", c.name)).collect();
            let one = names.len() == 1;
            format!(
                "{} {} {} PodSecurity \"{level}:{version}\" (with the securityContext {} from the pod): {}",
                if one { "ephemeral container" } else { "ephemeral containers" },
                names.join(", "),
                if one { "violates" } else { "violate" },
                if one { "it inherits" } else { "they inherit" },
                list(&violations)
            )
        }
    };
    Ok(Decision::deny(message))
}

/// Takes `allowed` out of what the new ephemeral containers add, so the
/// capability checks judge only the rest.
fn allow_debug_capabilities(pod: &mut view::Pod, allowed: &[String]) {
    if allowed.is_empty() {
        return;
    }
    let caps =
        pod.spec.ephemeral_containers.iter_mut().filter_map(|c| c.security_context.as_mut()?.capabilities.as_mut());
    for caps in caps {
        caps.add.retain(|cap| !allowed.iter().any(|a| *a == cap.0));
    }
}

/// `reason (detail), reason (detail)`, as Pod Security Admission lists
/// failed checks.
fn list(violations: &[checks::Violation]) -> String {
    violations.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

// Left out for a policy that uses these checks in a module of its own
// (`default-features = false`), whose exports would clash with these.
#[cfg(feature = "module")]
egate_guest::policy!(evaluate);
// What Pod Security reads: the pod's annotations and spec, before and
// after, and who asks where (exemptions); not managedFields, labels or
// status, most of a stored pod's bytes.
#[cfg(feature = "module")]
egate_guest::declare_reads!(
    "uid",
    "kind",
    "resource",
    "subResource",
    "operation",
    "namespace",
    "name",
    "userInfo",
    "dryRun",
    "object.metadata.name",
    "object.metadata.namespace",
    "object.metadata.annotations",
    "object.spec",
    "oldObject.metadata.annotations",
    "oldObject.spec",
);
