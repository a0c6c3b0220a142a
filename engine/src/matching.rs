//! Which requests a policy judges: `match` and `exclude` against the
//! request's routing facts, with Kyverno-style globs.

use wildmatch::WildMatch;

use crate::manifest::ResourceFilter;
use crate::review::RequestFacts;

/// Kyverno-style wildcard match: `*` any run of characters (`/` included),
/// `?` exactly one.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    WildMatch::new(pattern).matches(text)
}

/// A policy's `match` and `exclude`, ready to test requests.
#[derive(Debug, Clone)]
pub struct Matcher {
    include: ResourceFilter,
    exclude: Option<ResourceFilter>,
}

impl Matcher {
    /// From a manifest's `spec.match` and `spec.exclude`.
    pub fn new(include: ResourceFilter, exclude: Option<ResourceFilter>) -> Self {
        Self { include, exclude }
    }

    /// A request is judged when it matches and is not excluded.
    pub fn judges(&self, facts: &RequestFacts) -> bool {
        filter_holds(&self.include, facts) && !self.exclude.as_ref().is_some_and(|ex| excludes(ex, facts))
    }
}

/// Every list that is set must hold (an empty list places no condition).
fn filter_holds(filter: &ResourceFilter, facts: &RequestFacts) -> bool {
    let resource = facts.resource_path();
    let namespace = facts.namespace.as_deref().unwrap_or_default();
    let any = |list: &[String], test: &dyn Fn(&str) -> bool| list.is_empty() || list.iter().any(|p| test(p));
    any(&filter.resources, &|p| glob_match(p, &resource))
        && any(&filter.operations, &|op| op == "*" || op == facts.operation)
        && any(&filter.namespaces, &|p| glob_match(p, namespace))
}

/// An exclude with no condition set excludes nothing.
fn excludes(filter: &ResourceFilter, facts: &RequestFacts) -> bool {
    let constrains = !(filter.resources.is_empty() && filter.operations.is_empty() && filter.namespaces.is_empty());
    constrains && filter_holds(filter, facts)
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
        let owned = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        ResourceFilter { resources: owned(resources), operations: owned(operations), namespaces: owned(namespaces) }
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

    #[test]
    fn exclude_wins_and_an_empty_exclude_excludes_nothing() {
        let m = Matcher::new(filter(&["pods/*"], &[], &[]), Some(filter(&[], &[], &["kube-system"])));
        assert!(!judged(&m, &review("pods", Some("ephemeralcontainers"), "UPDATE", "kube-system")));
        assert!(judged(&m, &review("pods", Some("ephemeralcontainers"), "UPDATE", "shop")));
        let empty = Matcher::new(filter(&["pods/*"], &[], &[]), Some(filter(&[], &[], &[])));
        assert!(judged(&empty, &review("pods", Some("ephemeralcontainers"), "UPDATE", "shop")));
    }
}
