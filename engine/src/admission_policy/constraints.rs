//! Which requests a Kubernetes policy or binding judges: `matchConstraints`
//! and `matchResources`, with the API server's matching rules.
//!
//! - A rule matches on operation, API group, version, resource (with
//!   `pods/*`, `*/ephemeralcontainers`, `*` and `*/*`), scope and
//!   `resourceNames`. `pods` alone does not match a subresource.
//! - `namespaceSelector` reads the labels of the request's namespace: the
//!   `kubernetes.io/metadata.name` label the API server gives every
//!   namespace is always known; any other label needs the Namespace object
//!   in the policy files. A cluster-scoped object other than a Namespace
//!   always matches it.
//! - `objectSelector` matches when the object's labels or the old object's
//!   labels match.
//! - `matchPolicy: Equivalent` is read as `Exact`: the core resources egate
//!   judges have one version.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::objects::Objects;
use super::types::{MatchResources, NamedRule};
use crate::manifest::LabelSelector;
use crate::matching::selector_holds;
use crate::review::RequestFacts;

/// The label the API server puts on every namespace.
const NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A `matchConstraints` or `matchResources`, ready to test requests.
#[derive(Debug, Clone, Default)]
pub(super) struct Constraints {
    rules: Vec<NamedRule>,
    exclude: Vec<NamedRule>,
    namespace_selector: Option<LabelSelector>,
    object_selector: Option<LabelSelector>,
}

impl Constraints {
    /// From the resource's spec.
    pub(super) fn new(resources: &MatchResources) -> Self {
        Self {
            rules: resources.resource_rules.clone(),
            exclude: resources.exclude_resource_rules.clone(),
            namespace_selector: resources.namespace_selector.clone().filter(|s| !is_empty(s)),
            object_selector: resources.object_selector.clone().filter(|s| !is_empty(s)),
        }
    }

    /// Whether the request matches; `empty_rules_match`: a binding's
    /// `matchResources` without rules narrows nothing. The error says what
    /// is missing to decide.
    pub(super) fn matches(
        &self,
        facts: &RequestFacts,
        namespaces: &Objects,
        empty_rules_match: bool,
    ) -> Result<bool, String> {
        let ruled = (self.rules.is_empty() && empty_rules_match) || self.rules.iter().any(|r| rule_matches(r, facts));
        if !ruled || self.exclude.iter().any(|r| rule_matches(r, facts)) {
            return Ok(false);
        }
        if let Some(selector) = &self.object_selector
            && !object_labels(facts).iter().any(|labels| selector_holds(selector, labels))
        {
            return Ok(false);
        }
        match &self.namespace_selector {
            Some(selector) => namespace_matches(selector, facts, namespaces),
            None => Ok(true),
        }
    }
}

fn is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.is_empty() && selector.match_expressions.is_empty()
}

/// One rule against the request.
fn rule_matches(rule: &NamedRule, facts: &RequestFacts) -> bool {
    let any = |list: &[String], value: &str| list.iter().any(|item| item == "*" || item == value);
    let namespaced = facts.namespace.as_deref().is_some_and(|n| !n.is_empty());
    let scope = match rule.scope.as_deref().unwrap_or("*") {
        "Cluster" => !namespaced,
        "Namespaced" => namespaced,
        _ => true,
    };
    any(&rule.operations, &facts.operation)
        && any(&rule.api_groups, &facts.resource.group)
        && any(&rule.api_versions, &facts.resource.version)
        && rule.resources.iter().any(|r| resource_matches(r, facts))
        && scope
        && (rule.resource_names.is_empty()
            || facts.name.as_deref().is_some_and(|name| rule.resource_names.iter().any(|n| n == name)))
}

/// `pods`, `pods/ephemeralcontainers`, `pods/*` (pods and all its
/// subresources), `*/ephemeralcontainers`, `*` (every resource, no
/// subresource) and `*/*`.
fn resource_matches(pattern: &str, facts: &RequestFacts) -> bool {
    let resource = facts.resource.resource.as_ref();
    let sub = facts.sub_resource.as_deref().unwrap_or_default();
    let (want_resource, want_sub) = pattern.split_once('/').unwrap_or((pattern, ""));
    // As the API server splits them: `pods/*` matches `pods` itself too.
    (want_resource == "*" || want_resource == resource) && (want_sub == "*" || want_sub == sub)
}

/// The labels of the object and of the old object, those that are there.
fn object_labels(facts: &RequestFacts) -> Vec<BTreeMap<String, String>> {
    let labels = |raw: Option<&str>| {
        let metadata = egate_json::member(raw?.as_bytes(), "metadata")?;
        let labels = egate_json::member(metadata, "labels").unwrap_or(b"{}");
        serde_json::from_slice::<BTreeMap<String, String>>(labels).ok()
    };
    let object = facts.object.filter(|o| !egate_json::is_null(o.as_bytes()));
    let old = facts.old_object.filter(|o| !egate_json::is_null(o.as_bytes()));
    let mut all: Vec<_> = [labels(object), labels(old)].into_iter().flatten().collect();
    if all.is_empty() {
        all.push(BTreeMap::new());
    }
    all
}

/// The namespace's labels against the selector; a Namespace request is
/// matched on its own labels, another cluster-scoped request always is.
fn namespace_matches(selector: &LabelSelector, facts: &RequestFacts, namespaces: &Objects) -> Result<bool, String> {
    if facts.resource.group.is_empty() && facts.resource.resource == "namespaces" {
        return Ok(object_labels(facts).iter().any(|labels| selector_holds(selector, labels)));
    }
    let Some(namespace) = facts.namespace.as_deref().filter(|n| !n.is_empty()) else { return Ok(true) };
    let labels = namespace_labels(namespace, namespaces);
    let only_name =
        selector.match_labels.keys().chain(selector.match_expressions.iter().map(|e| &e.key)).all(|k| k == NAME_LABEL);
    match labels {
        Some(labels) => Ok(selector_holds(selector, &labels)),
        None if only_name => {
            Ok(selector_holds(selector, &BTreeMap::from([(NAME_LABEL.to_string(), namespace.to_string())])))
        }
        None if namespaces.reads_cluster() => Err(format!(
            "its namespaceSelector reads the labels of namespace {namespace:?}, which is not in the cluster"
        )),
        None => Err(format!(
            "its namespaceSelector reads the labels of namespace {namespace:?}, which egate does not know: add the \
             v1 Namespace object {namespace:?} to the policy files, or serve with --params-from cluster"
        )),
    }
}

/// The labels of a namespace egate knows, with the name label.
pub(super) fn namespace_labels(namespace: &str, namespaces: &Objects) -> Option<BTreeMap<String, String>> {
    let object = namespaces.namespace(namespace)?;
    let mut labels: BTreeMap<String, String> =
        serde_json::from_value(object.pointer("/metadata/labels").cloned().unwrap_or(Json::Object(Default::default())))
            .unwrap_or_default();
    labels.insert(NAME_LABEL.to_string(), namespace.to_string());
    Some(labels)
}
