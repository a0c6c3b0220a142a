//! Debug grants: a `DebugGrant` (`egate.dev/v1`, namespaced) lets named
//! users or groups add a debug container to chosen pods, with chosen
//! images and at most a chosen profile, for a while. This module holds the
//! grant's spec (the CRD's schema comes from it), what makes a stored grant
//! usable ([`Grant::from_object`]), and the index the request path reads
//! ([`GrantIndex`]): a policy that declares the `debugGrants` input gets
//! the live grants of the request's namespace that select its pod, with no
//! API call.
//!
//! ```
//! use egate_engine::grants::{Grant, GrantIndex, GrantSpec};
//! use jiff::Timestamp;
//!
//! let spec: GrantSpec = serde_json::from_value(serde_json::json!({
//!     "subjects": {"users": ["alice"]}, "pods": {"names": ["web"]},
//!     "images": ["busybox:*"], "profile": "general", "duration": "30m", "reason": "INC-42"
//! })).unwrap();
//! let created: Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
//! let grant = Grant::from_object("shop", "alice-web", &spec, Some("carol"), created).unwrap();
//! let index = GrantIndex::new([grant]);
//! let during: Timestamp = "2026-12-03T10:10:00Z".parse().unwrap();
//! assert_eq!(index.live("shop", "web", None, during).count(), 1);
//! assert_eq!(index.live("shop", "web", None, "2026-12-03T10:31:00Z".parse().unwrap()).count(), 0);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use egate_abi::inputs::{GrantInput, GrantSubjects, Profile};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::manifest::LabelSelector;
use crate::matching::selector_holds;

/// The annotation egate's webhook writes on a grant when it is created:
/// the user who created it, its approver. Nobody else may set or change it.
pub const APPROVED_BY: &str = "egate.dev/approved-by";

/// What a `DebugGrant` allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GrantSpec {
    /// Who may use it: users and groups, exact names.
    pub subjects: GrantSubjects,
    /// Which pods of the grant's namespace.
    pub pods: GrantPods,
    /// Containers the debug container may target (`kubectl debug
    /// --target`); empty (the default): it may target none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_containers: Vec<String>,
    /// Images the debug container may run, as globs (`busybox:1.36`,
    /// `registry.example.com/debug/*`).
    pub images: Vec<String>,
    /// The most the debug container may ask for, named after kubectl's
    /// `--profile`s.
    pub profile: Profile,
    /// How long the grant lasts from its creation, as Go writes durations
    /// (`30m`, `1h30m`); at most the webhook's `--max-grant-duration`.
    pub duration: String,
    /// Why it is needed (an incident, a ticket); recorded in the audit trail.
    pub reason: String,
}

/// The pods a grant selects: by name, by labels, or both (either selects).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GrantPods {
    /// Pod names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// A label selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// Why a stored grant cannot be used, or a new one not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// No approver recorded: it was not created through egate's webhook.
    #[error(
        "it has no {APPROVED_BY} annotation, so nobody approved it through egate's webhook: \
         delete it and have an approver create it again with `egate grant approve`"
    )]
    NotApproved,
    /// `spec.duration` is not a duration.
    #[error("spec.duration: {0}")]
    Duration(String),
    /// `spec.duration` is longer than the cluster allows.
    #[error("spec.duration {asked} is longer than this cluster's --max-grant-duration {max}: ask for {max} or less")]
    TooLong {
        /// What the grant asks for.
        asked: String,
        /// The most allowed, as Go writes it.
        max: String,
    },
    /// A field that must not be empty is.
    #[error("{0} is empty: {1}")]
    Empty(&'static str, &'static str),
}

/// A stored grant the request path can use: approved, with its end and
/// the JSON a policy receives for it written once.
#[derive(Debug, Clone)]
pub struct Grant {
    namespace: String,
    name: String,
    pods: GrantPods,
    expires_at: Timestamp,
    /// [`GrantInput`] as JSON.
    input: Box<RawValue>,
}

impl Grant {
    /// A stored grant, from its namespace, name, spec, approver annotation
    /// and creation time (set by the API server); its end is its creation
    /// plus `spec.duration`.
    pub fn from_object(
        namespace: &str,
        name: &str,
        spec: &GrantSpec,
        approved_by: Option<&str>,
        created: Timestamp,
    ) -> Result<Self, GrantError> {
        let approved_by = approved_by.filter(|a| !a.is_empty()).ok_or(GrantError::NotApproved)?;
        let duration = spec.checked_duration(None)?;
        let expires_at = created.checked_add(duration).unwrap_or(Timestamp::MAX);
        let input = GrantInput {
            name: name.to_string(),
            approved_by: approved_by.to_string(),
            expires_at: expires_at.to_string(),
            subjects: spec.subjects.clone(),
            target_containers: spec.target_containers.clone(),
            images: spec.images.clone(),
            profile: spec.profile,
        };
        Ok(Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
            pods: spec.pods.clone(),
            expires_at,
            input: serde_json::value::to_raw_value(&input).expect("a grant serialises"),
        })
    }

    /// `NAMESPACE/NAME`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// When it ends.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    /// Whether it selects the pod.
    fn selects(&self, pod: &str, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.pods.names.iter().any(|n| n == pod)
            || self.pods.selector.as_ref().zip(labels).is_some_and(|(s, labels)| selector_holds(s, labels))
    }
}

impl GrantSpec {
    /// The spec's duration, checked: it parses, and is at most `max` when
    /// given; the other fields a grant needs are not empty.
    pub fn checked_duration(&self, max: Option<Duration>) -> Result<Duration, GrantError> {
        if self.subjects.users.is_empty() && self.subjects.groups.is_empty() {
            return Err(GrantError::Empty("spec.subjects", "name at least one user or group"));
        }
        if self.pods.names.is_empty() && self.pods.selector.is_none() {
            return Err(GrantError::Empty("spec.pods", "name pods in spec.pods.names, or give spec.pods.selector"));
        }
        if self.images.is_empty() {
            return Err(GrantError::Empty("spec.images", "name the images the debug container may run"));
        }
        let duration = parse_duration(&self.duration).map_err(GrantError::Duration)?;
        match max {
            Some(max) if duration > max => {
                Err(GrantError::TooLong { asked: self.duration.clone(), max: format_duration(max) })
            }
            _ => Ok(duration),
        }
    }
}

/// The live grants, by namespace, for the request path: a pod's grants are
/// found by its name in one lookup, and those that select by labels by
/// each of the pod's labels (a selector is filed under its first
/// `matchLabels` pair); only selectors with no `matchLabels` are tried one
/// by one.
#[derive(Debug, Default)]
pub struct GrantIndex {
    namespaces: HashMap<String, NamespaceGrants>,
    len: usize,
}

#[derive(Debug, Default)]
struct NamespaceGrants {
    by_pod: HashMap<String, Vec<Grant>>,
    /// Selector grants by their first `matchLabels` pair.
    by_label: HashMap<String, HashMap<String, Vec<Grant>>>,
    /// Selector grants with only `matchExpressions`.
    by_expressions: Vec<Grant>,
}

impl GrantIndex {
    /// Indexes grants.
    pub fn new(grants: impl IntoIterator<Item = Grant>) -> Self {
        let mut index = Self::default();
        for grant in grants {
            let namespace = index.namespaces.entry(grant.namespace.clone()).or_default();
            for pod in &grant.pods.names {
                namespace.by_pod.entry(pod.clone()).or_default().push(grant.clone());
            }
            match grant.pods.selector.as_ref().and_then(|s| s.match_labels.iter().next()) {
                Some((key, value)) => {
                    let values = namespace.by_label.entry(key.clone()).or_default();
                    values.entry(value.clone()).or_default().push(grant.clone());
                }
                None if grant.pods.selector.is_some() => namespace.by_expressions.push(grant.clone()),
                None => {}
            }
            index.len += 1;
        }
        index
    }

    /// How many grants it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The grants of `namespace` that select the pod and have not ended by
    /// `now`, each once, as the JSON a policy receives.
    pub fn live<'a>(
        &'a self,
        namespace: &str,
        pod: &'a str,
        labels: Option<&'a BTreeMap<String, String>>,
        now: Timestamp,
    ) -> impl Iterator<Item = &'a RawValue> + 'a {
        let grants = self.namespaces.get(namespace);
        let named = grants.and_then(|g| g.by_pod.get(pod)).into_iter().flatten();
        let filed = grants
            .into_iter()
            .flat_map(move |g| labels.into_iter().flatten().filter_map(|(k, v)| g.by_label.get(k)?.get(v)).flatten());
        let by_expressions = grants.into_iter().flat_map(|g| &g.by_expressions);
        // A grant that names the pod and also selects it by labels is listed once, by name.
        let by_labels = filed
            .chain(by_expressions)
            .filter(move |g| !g.pods.names.iter().any(|n| n == pod) && g.selects(pod, labels));
        named.chain(by_labels).filter(move |g| g.expires_at > now).map(|g| &*g.input)
    }
}

/// Durations as Go writes them (`10s`, `500ms`, `1m30s`, `1h`), or plain
/// seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("{text:?} is not a duration: write e.g. 10s, 30m or 1h30m");
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).map_err(|_| invalid());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(invalid)?;
        let value: f64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let (unit, scale) =
            [("ms", 1e-3), ("us", 1e-6), ("µs", 1e-6), ("ns", 1e-9), ("h", 3600.0), ("m", 60.0), ("s", 1.0)]
                .into_iter()
                .find(|(unit, _)| rest.starts_with(unit))
                .ok_or_else(invalid)?;
        rest = &rest[unit.len()..];
        total += Duration::try_from_secs_f64(value * scale).map_err(|_| invalid())?;
    }
    if text.is_empty() { Err(invalid()) } else { Ok(total) }
}

/// A whole-second duration as Go writes it: `4h`, `1h30m`, `45s`.
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let mut text = String::new();
    for (value, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if value > 0 {
            text.push_str(&format!("{value}{unit}"));
        }
    }
    if text.is_empty() { "0s".into() } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(pods: serde_json::Value) -> GrantSpec {
        serde_json::from_value(serde_json::json!({
            "subjects": {"users": ["alice"]}, "pods": pods, "images": ["busybox:*"],
            "profile": "baseline", "duration": "1h", "reason": "test"
        }))
        .unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn durations_parse_as_go_writes_them() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("ten seconds").is_err());
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("-1").is_err());
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn a_grant_needs_an_approver_a_duration_under_the_most_and_what_it_is_for() {
        let created = at("2026-12-03T10:00:00Z");
        let good = spec(serde_json::json!({"names": ["web"]}));
        assert_eq!(Grant::from_object("shop", "g", &good, None, created).unwrap_err(), GrantError::NotApproved);
        let grant = Grant::from_object("shop", "g", &good, Some("carol"), created).unwrap();
        assert_eq!(grant.expires_at(), at("2026-12-03T11:00:00Z"));
        let too_long = good.checked_duration(Some(Duration::from_secs(1800))).unwrap_err();
        assert_eq!(
            too_long.to_string(),
            "spec.duration 1h is longer than this cluster's --max-grant-duration 30m: ask for 30m or less"
        );
        let mut no_pods = good.clone();
        no_pods.pods = GrantPods::default();
        assert!(matches!(no_pods.checked_duration(None), Err(GrantError::Empty("spec.pods", _))));
        let mut bad = good;
        bad.duration = "soon".into();
        assert!(matches!(Grant::from_object("shop", "g", &bad, Some("carol"), created), Err(GrantError::Duration(_))));
    }

    #[test]
    fn the_index_finds_live_grants_by_name_and_by_labels_once_each() {
        let created = at("2026-12-03T10:00:00Z");
        let by_name = spec(serde_json::json!({"names": ["web"]}));
        let by_labels = spec(serde_json::json!({"selector": {"matchLabels": {"app": "web"}}}));
        let both = spec(serde_json::json!({"names": ["web"], "selector": {"matchLabels": {"app": "web"}}}));
        let grants = [("a", &by_name), ("b", &by_labels), ("c", &both)]
            .map(|(name, spec)| Grant::from_object("shop", name, spec, Some("carol"), created).unwrap());
        let index = GrantIndex::new(grants);
        let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
        let names = |ns: &str, pod: &str, labels: Option<&BTreeMap<String, String>>, now: &str| -> Vec<String> {
            index
                .live(ns, pod, labels, at(now))
                .map(|raw| serde_json::from_str::<GrantInput>(raw.get()).unwrap().name)
                .collect()
        };
        assert_eq!(names("shop", "web", Some(&labels), "2026-12-03T10:30:00Z"), ["a", "c", "b"]);
        assert_eq!(names("shop", "web", None, "2026-12-03T10:30:00Z"), ["a", "c"]);
        assert_eq!(names("shop", "api", Some(&labels), "2026-12-03T10:30:00Z"), ["b", "c"]);
        assert!(names("dev", "web", Some(&labels), "2026-12-03T10:30:00Z").is_empty(), "another namespace");
        assert!(names("shop", "web", Some(&labels), "2026-12-03T11:00:00Z").is_empty(), "expired at its end");
        assert_eq!(index.len(), 3);
    }
}
