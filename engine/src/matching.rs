//! Which requests a policy judges: `match` and `exclude` against the
//! request's routing facts, with Kyverno-style globs.

use std::collections::BTreeMap;

use egate_abi::Glob;

use crate::manifest::{LabelOperator, LabelSelector, ResourceFilter, Subjects};
use crate::review::RequestFacts;

/// A policy's `match` and `exclude`, ready to test requests.
#[derive(Debug, Clone)]
pub struct Matcher {
    include: ResourceFilter,
    exclude: Option<ResourceFilter>,
    /// The namespace of a namespaced `Policy`: it judges nothing else.
    namespace: Option<String>,
}

impl Matcher {
    /// From a manifest's `spec.match` and `spec.exclude`.
    pub fn new(include: ResourceFilter, exclude: Option<ResourceFilter>) -> Self {
        Self { include, exclude, namespace: None }
    }

    /// Judges only requests in `namespace`, when it is given.
    pub fn within(self, namespace: Option<String>) -> Self {
        Self { namespace, ..self }
    }

    /// A request is judged when it is in the policy's namespace (if it has
    /// one), matches and is not excluded.
    pub fn judges(&self, facts: &RequestFacts) -> bool {
        self.namespace.as_deref().is_none_or(|own| facts.namespace.as_deref() == Some(own))
            && filter_holds(&self.include, facts, true)
            && !self.exclude.as_ref().is_some_and(|ex| excludes(ex, facts))
    }
}

/// Every list that is set must hold (an empty list places no condition).
/// Unreadable labels count as matching a selector when `unreadable_matches`
/// (so `match` judges the request and `exclude` does not skip it).
fn filter_holds(filter: &ResourceFilter, facts: &RequestFacts, unreadable_matches: bool) -> bool {
    let resource = facts.resource_path();
    let namespace = facts.namespace.as_deref().unwrap_or_default();
    let any = |globs: &[Glob], text: &str| globs.is_empty() || globs.iter().any(|g| g.matches(text));
    any(&filter.resources, resource)
        && (filter.operations.is_empty() || filter.operations.iter().any(|op| op == "*" || *op == facts.operation))
        && any(&filter.namespaces, namespace)
        && filter.subjects.as_ref().is_none_or(|s| subjects_hold(s, facts))
        && filter.selector.as_ref().is_none_or(|s| facts.labels().map_or(unreadable_matches, |l| selector_holds(s, l)))
}

/// An exclude with no condition set excludes nothing.
fn excludes(filter: &ResourceFilter, facts: &RequestFacts) -> bool {
    let constrains = !(filter.resources.is_empty()
        && filter.operations.is_empty()
        && filter.namespaces.is_empty()
        && filter.selector.is_none()
        && filter.subjects.is_none());
    constrains && filter_holds(filter, facts, false)
}

/// The user matches any of the users, groups or service accounts named.
fn subjects_hold(subjects: &Subjects, facts: &RequestFacts) -> bool {
    let user = &facts.user_info.username;
    let service_account = user.strip_prefix("system:serviceaccount:").map(|sa| sa.replacen(':', "/", 1));
    subjects.users.iter().any(|glob| glob.matches(user))
        || subjects.groups.iter().any(|glob| facts.user_info.groups.iter().any(|g| glob.matches(g)))
        || service_account.is_some_and(|sa| subjects.service_accounts.iter().any(|glob| glob.matches(&sa)))
}

/// Kubernetes label selector semantics: every label and requirement holds.
pub fn selector_holds(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    selector.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
        && selector.match_expressions.iter().all(|req| {
            let value = labels.get(&req.key);
            match req.operator {
                LabelOperator::In => value.is_some_and(|v| req.values.contains(v)),
                LabelOperator::NotIn => value.is_none_or(|v| !req.values.contains(v)),
                LabelOperator::Exists => value.is_some(),
                LabelOperator::DoesNotExist => value.is_none(),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::Review;

    fn review(resource: &str, sub: Option<&str>, op: &str, ns: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "resource": {"resource": resource}, "subResource": sub,
                        "operation": op, "namespace": ns}
        }))
        .unwrap()
    }

    fn filter(resources: &[&str], operations: &[&str], namespaces: &[&str]) -> ResourceFilter {
        let globs = |l: &[&str]| l.iter().map(|s| Glob::new(*s)).collect();
        ResourceFilter {
            resources: globs(resources),
            operations: operations.iter().map(|s| s.to_string()).collect(),
            namespaces: globs(namespaces),
            ..ResourceFilter::default()
        }
    }

    fn judged(m: &Matcher, bytes: &[u8]) -> bool {
        m.judges(&Review::parse(bytes).unwrap().facts)
    }

    #[test]
    fn resources_match_subresources_only_when_named() {
        let debug = review("pods", Some("ephemeralcontainers"), "UPDATE", "shop");
        let create = review("pods", None, "CREATE", "shop");
        let pods = Matcher::new(filter(&["pods"], &[], &[]), None);
        assert!(!judged(&pods, &debug));
        assert!(judged(&pods, &create));
        let any_sub = Matcher::new(filter(&["pods/*"], &[], &[]), None);
        assert!(judged(&any_sub, &debug));
        assert!(!judged(&any_sub, &create));
        assert!(judged(&Matcher::new(filter(&["*"], &[], &[]), None), &debug));
    }

    #[test]
    fn operations_and_namespace_globs() {
        let m = Matcher::new(filter(&["pods/ephemeralcontainers"], &["UPDATE"], &["team-*"]), None);
        assert!(judged(&m, &review("pods", Some("ephemeralcontainers"), "UPDATE", "team-a")));
        assert!(!judged(&m, &review("pods", Some("ephemeralcontainers"), "UPDATE", "shop")));
        assert!(!judged(&m, &review("pods", Some("ephemeralcontainers"), "CREATE", "team-a")));
    }

    fn from_yaml(text: &str) -> ResourceFilter {
        crate::yaml::from_str(text).unwrap()
    }

    fn debug_by(user: &str, groups: &[&str], labels: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "resource": {"resource": "pods"}, "subResource": "ephemeralcontainers",
                        "operation": "UPDATE", "namespace": "shop",
                        "userInfo": {"username": user, "groups": groups},
                        "object": {"metadata": {"labels": labels}}}
        }))
        .unwrap()
    }

    #[test]
    fn selectors_follow_kubernetes_semantics() {
        let m = Matcher::new(
            from_yaml(
                "resources: ['pods/*']\nselector:\n  matchLabels: {app: web}\n  matchExpressions:\n  \
                 - {key: tier, operator: In, values: [front, edge]}\n  - {key: env, operator: NotIn, values: [prod]}\n  \
                 - {key: team, operator: Exists}\n  - {key: legacy, operator: DoesNotExist}",
            ),
            None,
        );
        let labels = serde_json::json!({"app": "web", "tier": "front", "env": "dev", "team": "a"});
        assert!(judged(&m, &debug_by("alice", &[], labels.clone())));
        for (key, value) in [("app", "api"), ("tier", "db"), ("env", "prod"), ("legacy", "yes")] {
            let mut other = labels.clone();
            other[key] = value.into();
            assert!(!judged(&m, &debug_by("alice", &[], other)), "{key}={value}");
        }
        let mut no_team = labels;
        no_team.as_object_mut().unwrap().remove("team");
        assert!(!judged(&m, &debug_by("alice", &[], no_team)));
    }

    #[test]
    fn unreadable_labels_fail_closed() {
        let include = Matcher::new(from_yaml("resources: ['pods/*']\nselector: {matchLabels: {env: prod}}"), None);
        let bad_labels = serde_json::json!({"env": 1});
        assert!(judged(&include, &debug_by("alice", &[], bad_labels.clone())), "an unreadable label is judged");
        let exclude =
            Matcher::new(from_yaml("resources: ['pods/*']"), Some(from_yaml("selector: {matchLabels: {env: dev}}")));
        assert!(judged(&exclude, &debug_by("alice", &[], bad_labels)), "and not excluded");
    }

    #[test]
    fn subjects_match_users_groups_and_service_accounts() {
        let m = Matcher::new(
            from_yaml(
                "resources: ['pods/*']\nsubjects: {users: [alice], groups: ['oncall-*'], serviceAccounts: [ci/deployer]}",
            ),
            None,
        );
        let none = serde_json::json!({});
        assert!(judged(&m, &debug_by("alice", &[], none.clone())));
        assert!(judged(&m, &debug_by("bob", &["oncall-shop"], none.clone())));
        assert!(judged(&m, &debug_by("system:serviceaccount:ci:deployer", &[], none.clone())));
        assert!(!judged(&m, &debug_by("system:serviceaccount:ci:other", &[], none.clone())));
        assert!(!judged(&m, &debug_by("bob", &["dev"], none)));
    }

    #[test]
    fn exclude_wins_and_an_empty_exclude_excludes_nothing() {
        let m = Matcher::new(filter(&["pods/*"], &[], &[]), Some(filter(&[], &[], &["kube-system"])));
        assert!(!judged(&m, &review("pods", Some("ephemeralcontainers"), "UPDATE", "kube-system")));
        assert!(judged(&m, &review("pods", Some("ephemeralcontainers"), "UPDATE", "shop")));
        let empty = Matcher::new(filter(&["pods/*"], &[], &[]), Some(filter(&[], &[], &[])));
        assert!(judged(&empty, &review("pods", Some("ephemeralcontainers"), "UPDATE", "shop")));
    }
}
