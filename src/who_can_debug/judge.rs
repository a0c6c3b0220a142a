//! `--policies`: what an egate policy set lets a subject that RBAC allows to
//! debug actually add. Each subject is judged with sample `kubectl debug`
//! requests (the same AdmissionReviews `egate scaffold request` prints):
//! every kubectl profile with and without `--target`, then a `latest` and a
//! digest-pinned image, all against a one-container pod `web` in the
//! namespace of the entry.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use clap::ValueEnum;
use egate_engine::{Mode, PolicySet};
use serde::Serialize;

use super::rbac::Subject;
use crate::debug_request::{DebugContainer, Profile, Requester, admission_review};

/// The profiles judged, from the least to the most powerful.
const PROFILES: [Profile; 5] =
    [Profile::Restricted, Profile::Baseline, Profile::General, Profile::Netadmin, Profile::Sysadmin];

/// A tagged image: the samples' default.
const TAGGED: &str = "busybox:1.36";
const LATEST: &str = "busybox:latest";
const PINNED: &str = "busybox@sha256:1aef7c11d7c1f6e6ed53b8ac9fe70d1e2f3c2e3ef6f74b5a8e1a6b0f9e0d4c21";

/// The container of the sample pod that `--target` names.
const TARGET: &str = "app";

/// One sample request and what the set decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// kubectl debug's `--profile`.
    pub profile: String,
    /// `--image`.
    pub image: String,
    /// `--target`, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The decision.
    pub allowed: bool,
    /// The policies that denied it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub denied_by: Vec<String>,
}

/// What the set lets one subject add in one namespace.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Judgement {
    /// The namespace of the sample pod.
    pub namespace: String,
    /// The requests' user name (for a group, a member of it).
    pub user: String,
    /// The requests' groups.
    pub groups: Vec<String>,
    /// Every sample, in order.
    pub samples: Vec<Sample>,
    /// The samples in a line.
    pub summary: String,
}

/// Who a sample request comes from: the subject itself, a member of a
/// group, a service account with its groups.
pub fn requester(subject: &Subject) -> Requester {
    let username = match (subject.username(), subject) {
        (Some(name), _) => name,
        (None, Subject::Group { name }) => format!("member-of-group:{name}"),
        (None, _) => unreachable!("only a group has no user name"),
    };
    Requester { username, groups: subject.known_groups() }
}

/// Judges the samples for `subject` in `namespace`.
pub fn judge(set: &PolicySet, subject: &Subject, namespace: &str) -> Result<Judgement> {
    let user = requester(subject);
    let mut pod = egate_guest::testing::web_pod();
    pod["metadata"]["namespace"] = namespace.into();
    let mut cases: Vec<(Profile, &str, Option<&str>)> = Vec::new();
    for target in [None, Some(TARGET)] {
        cases.extend(PROFILES.iter().map(|&profile| (profile, TAGGED, target)));
    }
    cases.push((Profile::Restricted, LATEST, None));
    cases.push((Profile::Restricted, PINNED, None));
    let mut samples = Vec::new();
    for (profile, image, target) in cases {
        let debug = DebugContainer {
            name: Some("debugger".into()),
            image: image.into(),
            target: target.map(str::to_string),
            profile: Some(profile),
            ..DebugContainer::default()
        };
        let review = serde_json::to_vec(&admission_review(&pod, &debug, &user)?)?;
        let traced = set
            .review_traced(&review, Mode::All)
            .with_context(|| format!("judging a sample request of {subject} in {namespace}"))?;
        samples.push(Sample {
            profile: profile_name(profile),
            image: image.into(),
            target: target.map(str::to_string),
            allowed: traced.response.allowed,
            denied_by: traced.denied_by().map(str::to_string).collect(),
        });
    }
    let summary = summarise(&samples);
    Ok(Judgement { namespace: namespace.into(), user: user.username, groups: user.groups, samples, summary })
}

fn profile_name(profile: Profile) -> String {
    profile.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default()
}

/// The samples in a line: which profiles pass, whether `--target` does,
/// how `latest` and digest-pinned images fare.
pub fn summarise(samples: &[Sample]) -> String {
    if samples.iter().all(|s| !s.allowed) {
        let by: BTreeSet<&str> = samples.iter().flat_map(|s| s.denied_by.iter().map(String::as_str)).collect();
        return format!("every sample denied ({})", by.into_iter().collect::<Vec<_>>().join(", "));
    }
    let plain: Vec<&Sample> = samples.iter().filter(|s| s.target.is_none() && s.image == TAGGED).collect();
    let allowed: Vec<&str> = plain.iter().filter(|s| s.allowed).map(|s| s.profile.as_str()).collect();
    let mut parts = Vec::new();
    if !allowed.is_empty() {
        parts.push(format!("{} allowed", allowed.join(", ")));
    }
    for denied in plain.iter().filter(|s| !s.allowed) {
        parts.push(format!("{} denied ({})", denied.profile, denied.denied_by.join(", ")));
    }
    // --target, judged with the profiles that pass without it.
    let targeted: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.target.is_some() && s.image == TAGGED && allowed.contains(&s.profile.as_str()))
        .collect();
    match targeted.iter().find(|s| !s.allowed) {
        None if !targeted.is_empty() => parts.push("--target allowed".into()),
        None => {}
        Some(denied) => parts.push(format!("--target denied ({})", denied.denied_by.join(", "))),
    }
    let restricted_passes = allowed.contains(&"restricted");
    for (image, label) in [(LATEST, "image :latest"), (PINNED, "image pinned by digest")] {
        let Some(sample) = samples.iter().find(|s| s.image == image).filter(|_| restricted_passes) else { continue };
        if sample.allowed {
            parts.push(format!("{label} allowed"));
        } else {
            parts.push(format!("{label} denied ({})", sample.denied_by.join(", ")));
        }
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use egate_engine::{Sandbox, SandboxConfig};

    fn set(yaml: &str) -> PolicySet {
        let sandbox = Sandbox::new(SandboxConfig::default()).unwrap();
        PolicySet::from_manifests(&sandbox, std::path::Path::new("policies.yaml"), yaml).unwrap()
    }

    #[test]
    fn a_group_is_judged_as_a_member_and_policies_that_deny_are_named() {
        let policies = set(r#"
apiVersion: egate.dev/v1
kind: ClusterPolicy
metadata: {name: no-privileged}
spec:
  match: {resources: [pods/ephemeralcontainers], operations: [UPDATE]}
  module: builtin:privileged
---
apiVersion: egate.dev/v1
kind: ClusterPolicy
metadata: {name: only-sre-targets}
spec:
  match: {resources: [pods/ephemeralcontainers], operations: [UPDATE]}
  module: builtin:target
  settings: {allowedGroups: [sre]}
---
apiVersion: egate.dev/v1
kind: ClusterPolicy
metadata: {name: not-in-prod}
spec:
  match: {resources: [pods/ephemeralcontainers], operations: [UPDATE], namespaces: [prod]}
  module: builtin:namespaces
  settings: {deniedNamespaces: [prod]}
"#);
        let sre = judge(&policies, &Subject::group("sre"), "shop").unwrap();
        assert_eq!(sre.user, "member-of-group:sre");
        assert!(sre.groups.contains(&"sre".to_string()));
        assert_eq!(
            sre.summary,
            "restricted, baseline, general, netadmin allowed; sysadmin denied (no-privileged); --target allowed; \
             image :latest allowed; image pinned by digest allowed"
        );
        let bob = judge(&policies, &Subject::user("bob"), "shop").unwrap();
        assert!(bob.summary.contains("--target denied (only-sre-targets)"), "{}", bob.summary);
        let prod = judge(&policies, &Subject::user("bob"), "prod").unwrap();
        assert!(prod.samples.iter().all(|s| s.denied_by.contains(&"not-in-prod".to_string())), "{prod:?}");
        assert!(prod.summary.starts_with("every sample denied (") && prod.summary.contains("not-in-prod"));
        assert_eq!(prod.samples.len(), 12);
    }
}
