//! RBAC resolution, pure: which subjects the Roles, ClusterRoles,
//! RoleBindings and ClusterRoleBindings of a cluster let use each debugging
//! [`Capability`], in which namespaces, and through which chain of binding,
//! role(s) and rule.
//!
//! The matching follows the API server's RBAC authorizer
//! (`plugin/pkg/auth/authorizer/rbac/rbac.go`, `RuleAllows`, and
//! `pkg/apis/rbac/v1/evaluation_helpers.go`):
//!
//! - verbs: `*` or the verb itself;
//! - apiGroups: `*` or the group itself (`""` is the core group);
//! - resources: `*`, the resource itself (`pods`, or `pods/exec` for a
//!   subresource), or `*/SUBRESOURCE`. `pods/*` is *not* a wildcard: RBAC
//!   compares it as a string, so it grants nothing here;
//! - resourceNames: a rule that names objects grants only those. It is
//!   reported with its names and does not count as a grant in the whole
//!   namespace. A rule with resourceNames never grants `create` on a
//!   top-level resource (`create pods`): the name is not known when the
//!   request is authorized;
//! - nonResourceURLs are not resources and never match.
//!
//! ClusterRoleBindings grant in every namespace (and cluster-scoped
//! resources such as nodes); a RoleBinding grants only in its own
//! namespace, to a Role of that namespace or to a ClusterRole, and never
//! cluster-scoped resources. A service account subject without a
//! namespace in a RoleBinding means the binding's namespace.
//!
//! Aggregated ClusterRoles get their rules as kube-controller-manager's
//! aggregation controller writes them: the rules of every other
//! ClusterRole whose labels match one of the `clusterRoleSelectors`,
//! followed transitively through ClusterRoles that aggregate themselves.
//! Their own stored `rules` are what the controller overwrites; when they
//! differ from the computed ones a [`Resolution::notes`] entry says so.
//!
//! Group `system:masters` is allowed everything by the API server before
//! RBAC is asked; it is listed for every capability whatever the bindings.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Serialize;

/// The RBAC objects of a cluster (or of a set of manifests).
#[derive(Debug, Clone, Default)]
pub struct Rbac {
    /// Namespaced roles.
    pub roles: Vec<Role>,
    /// Cluster roles, aggregated ones included.
    pub cluster_roles: Vec<ClusterRole>,
    /// Namespaced bindings, to Roles or ClusterRoles.
    pub role_bindings: Vec<RoleBinding>,
    /// Cluster-wide bindings.
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
}

impl Rbac {
    /// Whether it holds no object at all.
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
            && self.cluster_roles.is_empty()
            && self.role_bindings.is_empty()
            && self.cluster_role_bindings.is_empty()
    }

    /// Adds every object of `other`.
    pub fn extend(&mut self, other: Rbac) {
        self.roles.extend(other.roles);
        self.cluster_roles.extend(other.cluster_roles);
        self.role_bindings.extend(other.role_bindings);
        self.cluster_role_bindings.extend(other.cluster_role_bindings);
    }
}

/// Who a binding grants to, as the API server authenticates them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind")]
pub enum Subject {
    /// A user name.
    User {
        /// The name, as the authenticator gives it.
        name: String,
    },
    /// A group: the binding covers every member.
    Group {
        /// The group's name.
        name: String,
    },
    /// A service account: user `system:serviceaccount:NAMESPACE:NAME`,
    /// member of `system:serviceaccounts` and `system:serviceaccounts:NAMESPACE`.
    ServiceAccount {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
}

/// The prefix of a service account's user name.
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// The group the API server allows everything, before RBAC.
pub const SYSTEM_MASTERS: &str = "system:masters";

impl Subject {
    /// A user named `name`, or the service account it names
    /// (`system:serviceaccount:NS:NAME` is that account's user name).
    pub fn user(name: &str) -> Self {
        match name.strip_prefix(SERVICE_ACCOUNT_PREFIX).and_then(|rest| rest.split_once(':')) {
            Some((namespace, account)) if !namespace.is_empty() && !account.is_empty() && !account.contains(':') => {
                Subject::ServiceAccount { namespace: namespace.into(), name: account.into() }
            }
            _ => Subject::User { name: name.into() },
        }
    }

    /// A group.
    pub fn group(name: &str) -> Self {
        Subject::Group { name: name.into() }
    }

    /// The user name a request by this subject carries; `None` for a group.
    pub fn username(&self) -> Option<String> {
        match self {
            Subject::User { name } => Some(name.clone()),
            Subject::Group { .. } => None,
            Subject::ServiceAccount { namespace, name } => Some(format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}")),
        }
    }

    /// The groups every request by this subject carries, whatever else its
    /// authenticator adds: `system:authenticated`, and a service account's
    /// own two groups. A group subject is its own group.
    pub fn known_groups(&self) -> Vec<String> {
        let mut groups = Vec::new();
        match self {
            Subject::User { .. } => {}
            Subject::Group { name } => groups.push(name.clone()),
            Subject::ServiceAccount { namespace, .. } => {
                groups.push("system:serviceaccounts".into());
                groups.push(format!("system:serviceaccounts:{namespace}"));
            }
        }
        groups.push("system:authenticated".into());
        groups
    }

    /// Whether a grant to `other` applies to this subject: the same
    /// subject, or a group it is known to be in ([`Subject::known_groups`]).
    pub fn is_covered_by(&self, other: &Subject) -> bool {
        match other {
            Subject::Group { name } => self == other || self.known_groups().contains(name),
            _ => self == other,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Subject::User { name } => write!(f, "User {name}"),
            Subject::Group { name } => write!(f, "Group {name}"),
            Subject::ServiceAccount { namespace, name } => write!(f, "ServiceAccount {namespace}/{name}"),
        }
    }
}

/// Where a grant holds: every namespace, or one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Every namespace (a ClusterRoleBinding, or system:masters), and
    /// cluster-scoped resources.
    Cluster,
    /// One namespace (a RoleBinding).
    Namespace(String),
}

impl Scope {
    /// The namespace, `None` for every namespace.
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Scope::Cluster => None,
            Scope::Namespace(ns) => Some(ns),
        }
    }

    /// Whether a grant in this scope holds in `namespace`.
    pub fn covers(&self, namespace: &str) -> bool {
        match self {
            Scope::Cluster => true,
            Scope::Namespace(ns) => ns == namespace,
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.namespace().serialize(serializer)
    }
}

/// A way to get a shell or a container next to a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// `kubectl debug POD`: add an ephemeral container.
    Debug,
    /// `kubectl exec`.
    Exec,
    /// `kubectl attach` (and `kubectl debug -it`'s attach).
    Attach,
    /// `kubectl debug --copy-to`: create a pod (any pod).
    Copy,
    /// `kubectl debug node/NAME`: a pod on the node with the host's namespaces.
    Node,
    /// The kubelet's own API through `nodes/proxy`: exec in any pod of a node, past admission.
    Kubelet,
}

/// One permission a capability needs: any of `verbs` on the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// API group; `""` is the core group.
    pub group: &'static str,
    /// The resource.
    pub resource: &'static str,
    /// The subresource, if any.
    pub subresource: Option<&'static str>,
    /// Any of these verbs is enough.
    pub verbs: &'static [&'static str],
    /// Namespaced (granted per namespace) or cluster-scoped (only by ClusterRoleBindings).
    pub namespaced: bool,
}

impl Need {
    /// `pods/exec`: resource and subresource, as RBAC rules write them.
    pub fn combined(&self) -> String {
        match self.subresource {
            Some(sub) => format!("{}/{sub}", self.resource),
            None => self.resource.to_string(),
        }
    }
}

const fn pods(subresource: Option<&'static str>, verbs: &'static [&'static str]) -> Need {
    Need { group: "", resource: "pods", subresource, verbs, namespaced: true }
}

impl Capability {
    /// Every capability, in the order they are listed.
    pub const ALL: [Capability; 6] = [
        Capability::Debug,
        Capability::Exec,
        Capability::Attach,
        Capability::Copy,
        Capability::Node,
        Capability::Kubelet,
    ];

    /// What the capability needs: every one of these.
    pub fn needs(self) -> &'static [Need] {
        const DEBUG: [Need; 1] = [pods(Some("ephemeralcontainers"), &["patch", "update"])];
        const EXEC: [Need; 1] = [pods(Some("exec"), &["create"])];
        const ATTACH: [Need; 1] = [pods(Some("attach"), &["create"])];
        const COPY: [Need; 1] = [pods(None, &["create"])];
        const NODE: [Need; 2] = [
            pods(None, &["create"]),
            Need { group: "", resource: "nodes", subresource: None, verbs: &["get"], namespaced: false },
        ];
        const KUBELET: [Need; 1] = [Need {
            group: "",
            resource: "nodes",
            subresource: Some("proxy"),
            verbs: &["get", "create"],
            namespaced: false,
        }];
        match self {
            Capability::Debug => &DEBUG,
            Capability::Exec => &EXEC,
            Capability::Attach => &ATTACH,
            Capability::Copy => &COPY,
            Capability::Node => &NODE,
            Capability::Kubelet => &KUBELET,
        }
    }

    /// The permissions, in a line: `patch or update pods/ephemeralcontainers`.
    pub fn permissions(self) -> String {
        let needs: Vec<String> = self
            .needs()
            .iter()
            .map(|need| {
                let scope = if need.namespaced { "" } else { " (cluster-wide)" };
                format!("{} {}{scope}", need.verbs.join(" or "), need.combined())
            })
            .collect();
        needs.join(" and ")
    }

    /// Why these verbs, for the header of the list.
    pub fn why(self) -> &'static str {
        match self {
            Capability::Debug => {
                "kubectl debug POD sends a PATCH of pods/ephemeralcontainers; a client that sends PUT needs update. \
                 Either verb adds an ephemeral container, which egate's policies then judge."
            }
            Capability::Exec => {
                "kubectl exec: since Kubernetes 1.35 the API server asks for create on pods/exec for SPDY and \
                 WebSocket alike (AuthorizePodWebsocketUpgradeCreatePermission); get alone no longer execs."
            }
            Capability::Attach => {
                "kubectl attach, and kubectl debug -it attaching to the new container: create on pods/attach, \
                 as for exec."
            }
            Capability::Copy => {
                "kubectl debug --copy-to creates a new pod; whoever may create pods may create any pod \
                 admission lets through."
            }
            Capability::Node => {
                "kubectl debug node/NAME reads the node, then creates a pod on it with the host's namespaces \
                 and its root filesystem; without get nodes the same pod can still be written by hand (copy)."
            }
            Capability::Kubelet => {
                "get or create on nodes/proxy reaches the kubelet's API, whose /exec, /run and /attach run \
                 commands in any pod of the node; no admission webhook sees it."
            }
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let name = match self {
            Capability::Debug => "debug",
            Capability::Exec => "exec",
            Capability::Attach => "attach",
            Capability::Copy => "copy",
            Capability::Node => "node",
            Capability::Kubelet => "kubelet",
        };
        f.write_str(name)
    }
}

/// An RBAC object, by kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectRef {
    /// `Role`, `ClusterRole`, `RoleBinding` or `ClusterRoleBinding`.
    pub kind: &'static str,
    /// The namespace of a namespaced object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

impl ObjectRef {
    fn new(kind: &'static str, namespace: Option<&str>, name: &str) -> Self {
        Self { kind, namespace: namespace.map(str::to_string), name: name.to_string() }
    }

    fn cluster_role(name: &str) -> Self {
        Self::new("ClusterRole", None, name)
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// What grants a permission.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "via", rename_all = "camelCase")]
pub enum Via {
    /// The API server's superuser group: allowed before RBAC is asked.
    SystemMasters,
    /// A binding, the role it refers to, and a rule of that role (or of a
    /// role it aggregates).
    #[serde(rename_all = "camelCase")]
    Rbac {
        /// The RoleBinding or ClusterRoleBinding.
        binding: ObjectRef,
        /// The role the binding refers to, then each aggregated
        /// ClusterRole down to the one that holds the rule.
        roles: Vec<ObjectRef>,
        /// The rule's index in the last role's `rules`.
        rule_index: usize,
        /// The rule.
        rule: Box<PolicyRule>,
    },
}

/// One chain that grants (part of) a capability.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Chain {
    /// How.
    #[serde(flatten)]
    pub via: Via,
    /// Which permission of the capability: `pods/ephemeralcontainers`.
    pub resource: String,
    /// The verbs of that permission it grants.
    pub verbs: Vec<String>,
    /// The only objects it grants them on (the rule's resourceNames), or `None` for all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_names: Option<Vec<String>>,
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match &self.via {
            Via::SystemMasters => {
                f.write_str("built in: the API server allows group system:masters everything, before RBAC")?
            }
            Via::Rbac { binding, roles, rule_index, rule } => {
                write!(f, "{binding}")?;
                for role in roles {
                    write!(f, " > {role}")?;
                }
                write!(f, " > rules[{rule_index}] {}", describe_rule(rule))?;
            }
        }
        if let Some(names) = &self.resource_names {
            write!(f, " (only {} named {})", self.resource, names.join(", "))?;
        }
        Ok(())
    }
}

/// `{apiGroups: [""], resources: [pods/*], verbs: [*]}`.
pub fn describe_rule(rule: &PolicyRule) -> String {
    let list = |items: &[String]| {
        let quoted: Vec<String> = items.iter().map(|i| if i.is_empty() { "\"\"".into() } else { i.clone() }).collect();
        format!("[{}]", quoted.join(", "))
    };
    let mut parts = vec![
        format!("apiGroups: {}", list(rule.api_groups.as_deref().unwrap_or_default())),
        format!("resources: {}", list(rule.resources.as_deref().unwrap_or_default())),
    ];
    if let Some(names) = rule.resource_names.as_deref().filter(|n| !n.is_empty()) {
        parts.push(format!("resourceNames: {}", list(names)));
    }
    parts.push(format!("verbs: {}", list(&rule.verbs)));
    format!("{{{}}}", parts.join(", "))
}

/// A subject that may use a capability in a scope, and every chain that lets it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Which capability.
    pub capability: Capability,
    /// Where: `null` for every namespace.
    pub namespace: Scope,
    /// Who.
    pub subject: Subject,
    /// The verbs its chains grant, of those the capability asks for.
    pub verbs: BTreeSet<String>,
    /// When every chain for some permission names objects: only those
    /// objects (pods, or nodes). `None`: any object in the scope.
    pub resource_names: Option<BTreeSet<String>>,
    /// Each chain, as binding > role(s) > rule.
    pub chains: Vec<Chain>,
}

/// What [`resolve`] finds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Resolution {
    /// Every (capability, scope, subject), sorted.
    pub entries: Vec<Entry>,
    /// What looked wrong or worth knowing in the RBAC objects (a binding
    /// to a missing role, stale aggregated rules, ...), one sentence each.
    pub notes: Vec<String>,
}

/// A rule reachable from a role, with the path of roles that leads to it.
struct Reached<'a> {
    path: Vec<ObjectRef>,
    index: usize,
    rule: &'a PolicyRule,
}

/// A permission granted to a subject in a scope.
struct Grant {
    capability: Capability,
    need: usize,
    scope: Scope,
    subject: Subject,
    chain: Chain,
}

/// Resolves who may use each capability, where, and through what.
pub fn resolve(rbac: &Rbac) -> Resolution {
    let mut notes = Vec::new();
    let aggregated = ClusterRoles::new(&rbac.cluster_roles, &mut notes);
    let roles: HashMap<(&str, &str), &Role> =
        rbac.roles.iter().map(|role| ((namespace_of(&role.metadata), name_of(&role.metadata)), role)).collect();
    let mut grants = Vec::new();

    for binding in &rbac.cluster_role_bindings {
        let name = name_of(&binding.metadata);
        let binding_ref = ObjectRef::new("ClusterRoleBinding", None, name);
        let role_ref = &binding.role_ref;
        if role_ref.kind != "ClusterRole" {
            notes.push(format!(
                "{binding_ref} refers to a {} {:?}: a ClusterRoleBinding can only refer to a ClusterRole, so it grants nothing",
                role_ref.kind, role_ref.name
            ));
            continue;
        }
        let Some(rules) = aggregated.rules(&role_ref.name) else {
            notes.push(format!(
                "{binding_ref} refers to ClusterRole {:?}, which does not exist: it grants nothing",
                role_ref.name
            ));
            continue;
        };
        let subjects = subjects_of(binding.subjects.as_deref(), None, &binding_ref, &mut notes);
        grant_rules(&mut grants, &binding_ref, &rules, &subjects, &Scope::Cluster);
    }

    for binding in &rbac.role_bindings {
        let namespace = namespace_of(&binding.metadata);
        let binding_ref = ObjectRef::new("RoleBinding", Some(namespace), name_of(&binding.metadata));
        let role_ref = &binding.role_ref;
        let rules = match role_ref.kind.as_str() {
            "Role" => roles.get(&(namespace, role_ref.name.as_str())).map(|role| {
                let role_ref = ObjectRef::new("Role", Some(namespace), &role_ref.name);
                own_rules(role_ref, role.rules.as_deref())
            }),
            "ClusterRole" => aggregated.rules(&role_ref.name),
            other => {
                notes.push(format!(
                    "{binding_ref} refers to a {other} {:?}: only Role and ClusterRole grant",
                    role_ref.name
                ));
                continue;
            }
        };
        let Some(rules) = rules else {
            let missing = if role_ref.kind == "Role" {
                format!("Role {namespace}/{}", role_ref.name)
            } else {
                format!("ClusterRole {}", role_ref.name)
            };
            notes.push(format!("{binding_ref} refers to {missing}, which does not exist: it grants nothing"));
            continue;
        };
        let subjects = subjects_of(binding.subjects.as_deref(), Some(namespace), &binding_ref, &mut notes);
        grant_rules(&mut grants, &binding_ref, &rules, &subjects, &Scope::Namespace(namespace.to_string()));
    }

    for capability in Capability::ALL {
        for (need, permission) in capability.needs().iter().enumerate() {
            grants.push(Grant {
                capability,
                need,
                scope: Scope::Cluster,
                subject: Subject::group(SYSTEM_MASTERS),
                chain: Chain {
                    via: Via::SystemMasters,
                    resource: permission.combined(),
                    verbs: permission.verbs.iter().map(|v| v.to_string()).collect(),
                    resource_names: None,
                },
            });
        }
    }

    Resolution { entries: entries(grants), notes }
}

/// Name and namespace of an object, empty when absent.
fn name_of(metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    metadata.name.as_deref().unwrap_or_default()
}

fn namespace_of(metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    metadata.namespace.as_deref().unwrap_or_default()
}

fn own_rules(role: ObjectRef, rules: Option<&[PolicyRule]>) -> Vec<Reached<'_>> {
    rules
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(index, rule)| Reached { path: vec![role.clone()], index, rule })
        .collect()
}

/// The subjects of a binding; those that cannot match anyone become notes.
fn subjects_of(
    subjects: Option<&[k8s_openapi::api::rbac::v1::Subject]>,
    binding_namespace: Option<&str>,
    binding: &ObjectRef,
    notes: &mut Vec<String>,
) -> Vec<Subject> {
    let mut out = Vec::new();
    for subject in subjects.unwrap_or_default() {
        match subject.kind.as_str() {
            "User" => out.push(Subject::user(&subject.name)),
            "Group" => out.push(Subject::group(&subject.name)),
            "ServiceAccount" => match subject.namespace.as_deref().filter(|ns| !ns.is_empty()).or(binding_namespace) {
                Some(namespace) => {
                    out.push(Subject::ServiceAccount { namespace: namespace.into(), name: subject.name.clone() })
                }
                None => notes.push(format!(
                    "{binding} names ServiceAccount {:?} without a namespace: in a ClusterRoleBinding that matches no one",
                    subject.name
                )),
            },
            other => notes.push(format!("{binding} names a subject of kind {other:?}, which RBAC ignores")),
        }
    }
    out
}

fn grant_rules(grants: &mut Vec<Grant>, binding: &ObjectRef, rules: &[Reached], subjects: &[Subject], scope: &Scope) {
    for reached in rules {
        for capability in Capability::ALL {
            for (need, permission) in capability.needs().iter().enumerate() {
                if !permission.namespaced && *scope != Scope::Cluster {
                    continue;
                }
                let Some((verbs, resource_names)) = rule_grants(reached.rule, permission) else { continue };
                for subject in subjects {
                    grants.push(Grant {
                        capability,
                        need,
                        scope: scope.clone(),
                        subject: subject.clone(),
                        chain: Chain {
                            via: Via::Rbac {
                                binding: binding.clone(),
                                roles: reached.path.clone(),
                                rule_index: reached.index,
                                rule: Box::new(reached.rule.clone()),
                            },
                            resource: permission.combined(),
                            verbs: verbs.clone(),
                            resource_names: resource_names.clone(),
                        },
                    });
                }
            }
        }
    }
}

/// The verbs of `need` that `rule` grants, and the only names it grants
/// them on; `None` when it grants none of them.
pub fn rule_grants(rule: &PolicyRule, need: &Need) -> Option<(Vec<String>, Option<Vec<String>>)> {
    let groups = rule.api_groups.as_deref().unwrap_or_default();
    if !groups.iter().any(|g| g == "*" || g == need.group) {
        return None;
    }
    let combined = need.combined();
    let resources = rule.resources.as_deref().unwrap_or_default();
    let resource_matches = resources
        .iter()
        .any(|r| r == "*" || *r == combined || need.subresource.is_some_and(|sub| r.strip_prefix("*/") == Some(sub)));
    if !resource_matches {
        return None;
    }
    let names = rule.resource_names.as_deref().filter(|names| !names.is_empty());
    let verbs: Vec<String> = need
        .verbs
        .iter()
        .filter(|verb| rule.verbs.iter().any(|v| v == "*" || v == *verb))
        // The name of an object being created is not known when RBAC is asked.
        .filter(|verb| !(names.is_some() && need.subresource.is_none() && **verb == "create"))
        .map(|verb| verb.to_string())
        .collect();
    if verbs.is_empty() {
        return None;
    }
    Some((verbs, names.map(<[String]>::to_vec)))
}

/// Groups grants into entries: per capability and subject, a cluster-wide
/// entry when ClusterRoleBindings grant every permission, and an entry per
/// namespace whose RoleBindings grant some permission when, with the
/// cluster-wide grants, every permission is granted there.
fn entries(grants: Vec<Grant>) -> Vec<Entry> {
    type PerNeed = BTreeMap<usize, Vec<Chain>>;
    let mut by_subject: BTreeMap<(Capability, Subject), BTreeMap<Scope, PerNeed>> = BTreeMap::new();
    for grant in grants {
        by_subject
            .entry((grant.capability, grant.subject))
            .or_default()
            .entry(grant.scope)
            .or_default()
            .entry(grant.need)
            .or_default()
            .push(grant.chain);
    }
    let mut out = Vec::new();
    for ((capability, subject), scopes) in by_subject {
        let needs = capability.needs().len();
        let empty = PerNeed::new();
        let cluster = scopes.get(&Scope::Cluster).unwrap_or(&empty);
        for (scope, granted) in &scopes {
            let mut chains = Vec::new();
            let mut limited_names = BTreeSet::new();
            let mut limited = false;
            let mut complete = true;
            for need in 0..needs {
                let here = match granted.get(&need) {
                    Some(chains) => chains,
                    None => match cluster.get(&need) {
                        Some(chains) => chains,
                        None => {
                            complete = false;
                            break;
                        }
                    },
                };
                if here.iter().all(|chain| chain.resource_names.is_some()) {
                    limited = true;
                    limited_names.extend(here.iter().flat_map(|c| c.resource_names.iter().flatten().cloned()));
                }
                chains.extend(here.iter().cloned());
            }
            if !complete {
                continue;
            }
            out.push(Entry {
                capability,
                namespace: scope.clone(),
                subject: subject.clone(),
                verbs: chains.iter().flat_map(|c| c.verbs.iter().cloned()).collect(),
                resource_names: limited.then_some(limited_names),
                chains,
            });
        }
    }
    out.sort_by(|a, b| (a.capability, &a.namespace, &a.subject).cmp(&(b.capability, &b.namespace, &b.subject)));
    out
}

/// The ClusterRoles by name, with the rules each one grants: its own, or
/// for an aggregated role those the aggregation controller gives it.
struct ClusterRoles<'a> {
    by_name: BTreeMap<&'a str, &'a ClusterRole>,
    /// Roles each aggregated role selects directly, by name (not itself).
    selected: BTreeMap<&'a str, Vec<&'a str>>,
}

impl<'a> ClusterRoles<'a> {
    fn new(cluster_roles: &'a [ClusterRole], notes: &mut Vec<String>) -> Self {
        let by_name: BTreeMap<&str, &ClusterRole> =
            cluster_roles.iter().map(|role| (name_of(&role.metadata), role)).collect();
        let mut selected = BTreeMap::new();
        for (name, role) in &by_name {
            let Some(aggregation) = &role.aggregation_rule else { continue };
            let selectors = aggregation.cluster_role_selectors.as_deref().unwrap_or_default();
            let mut chosen = Vec::new();
            for (other_name, other) in &by_name {
                if other_name == name {
                    continue;
                }
                let labels = other.metadata.labels.clone().unwrap_or_default();
                let mut matched = false;
                for selector in selectors {
                    match selector_matches(selector, &labels) {
                        Ok(true) => matched = true,
                        Ok(false) => {}
                        Err(problem) => {
                            notes.push(format!(
                                "ClusterRole {name}: a clusterRoleSelector {problem}; it selects nothing"
                            ));
                        }
                    }
                }
                if matched {
                    chosen.push(*other_name);
                }
            }
            selected.insert(*name, chosen);
        }
        notes.dedup();
        let roles = Self { by_name, selected };
        roles.note_stale_aggregates(notes);
        roles
    }

    /// The rules a binding to ClusterRole `name` grants; `None` when there is no such role.
    fn rules(&self, name: &str) -> Option<Vec<Reached<'a>>> {
        let role = self.by_name.get(name)?;
        let start = ObjectRef::cluster_role(name);
        if role.aggregation_rule.is_none() {
            return Some(own_rules(start, role.rules.as_deref()));
        }
        // Breadth first through the roles it aggregates, each visited once.
        let mut out = Vec::new();
        let mut seen = BTreeSet::from([name]);
        let mut queue = std::collections::VecDeque::from([(name, vec![start])]);
        while let Some((current, path)) = queue.pop_front() {
            for &next in self.selected.get(current).into_iter().flatten() {
                if !seen.insert(next) {
                    continue;
                }
                let mut next_path = path.clone();
                next_path.push(ObjectRef::cluster_role(next));
                let next_role = self.by_name[next];
                if next_role.aggregation_rule.is_some() {
                    queue.push_back((next, next_path));
                } else {
                    for (index, rule) in next_role.rules.as_deref().unwrap_or_default().iter().enumerate() {
                        out.push(Reached { path: next_path.clone(), index, rule });
                    }
                }
            }
        }
        Some(out)
    }

    /// A note for each aggregated role whose stored rules are not the ones
    /// the aggregation controller would write: the API server authorizes
    /// with what is stored until the controller catches up.
    fn note_stale_aggregates(&self, notes: &mut Vec<String>) {
        for (name, role) in &self.by_name {
            if role.aggregation_rule.is_none() {
                continue;
            }
            let computed: Vec<&PolicyRule> = self.rules(name).unwrap_or_default().iter().map(|r| r.rule).collect();
            let stored: Vec<&PolicyRule> = role.rules.iter().flatten().collect();
            let same =
                computed.iter().all(|rule| stored.contains(rule)) && stored.iter().all(|rule| computed.contains(rule));
            if !same {
                notes.push(format!(
                    "ClusterRole {name}: its aggregationRule selects {} rule(s), it stores {}: the API server \
                     authorizes with the stored rules until kube-controller-manager's aggregation controller \
                     rewrites them; this listing uses the aggregated ones",
                    distinct(&computed),
                    distinct(&stored)
                ));
            }
        }
    }
}

fn distinct(rules: &[&PolicyRule]) -> usize {
    let mut seen: Vec<&PolicyRule> = Vec::new();
    for rule in rules {
        if !seen.contains(rule) {
            seen.push(rule);
        }
    }
    seen.len()
}

/// Whether `labels` match a label selector (matchLabels and
/// matchExpressions, all of them; an empty selector matches everything).
fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> Result<bool, String> {
    for (key, value) in selector.match_labels.iter().flatten() {
        if labels.get(key) != Some(value) {
            return Ok(false);
        }
    }
    for requirement in selector.match_expressions.iter().flatten() {
        let values = requirement.values.as_deref().unwrap_or_default();
        let present = labels.get(&requirement.key);
        let holds = match requirement.operator.as_str() {
            "In" => present.is_some_and(|v| values.contains(v)),
            "NotIn" => present.is_none_or(|v| !values.contains(v)),
            "Exists" => present.is_some(),
            "DoesNotExist" => present.is_none(),
            other => return Err(format!("has operator {other:?}, not In, NotIn, Exists or DoesNotExist")),
        };
        if !holds {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn rbac(objects: Value) -> Rbac {
        let mut rbac = Rbac::default();
        for object in objects.as_array().unwrap() {
            let object = object.clone();
            match object["kind"].as_str().unwrap() {
                "Role" => rbac.roles.push(serde_json::from_value(object).unwrap()),
                "ClusterRole" => rbac.cluster_roles.push(serde_json::from_value(object).unwrap()),
                "RoleBinding" => rbac.role_bindings.push(serde_json::from_value(object).unwrap()),
                "ClusterRoleBinding" => rbac.cluster_role_bindings.push(serde_json::from_value(object).unwrap()),
                other => panic!("{other}"),
            }
        }
        rbac
    }

    fn cluster_role(name: &str, labels: Value, rules: Value) -> Value {
        json!({"kind": "ClusterRole", "metadata": {"name": name, "labels": labels}, "rules": rules})
    }

    fn binding(kind: &str, namespace: Option<&str>, name: &str, role: (&str, &str), subjects: Value) -> Value {
        json!({"kind": kind, "metadata": {"name": name, "namespace": namespace},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role.0, "name": role.1},
               "subjects": subjects})
    }

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
        json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
    }

    /// (namespace or "*", subject) of each entry of a capability, system:masters left out.
    fn who(resolution: &Resolution, capability: Capability) -> Vec<(String, String)> {
        resolution
            .entries
            .iter()
            .filter(|e| e.capability == capability && e.subject != Subject::group(SYSTEM_MASTERS))
            .map(|e| (e.namespace.namespace().unwrap_or("*").to_string(), e.subject.to_string()))
            .collect()
    }

    fn pair(ns: &str, subject: &str) -> (String, String) {
        (ns.to_string(), subject.to_string())
    }

    #[test]
    fn wildcards_match_as_the_api_server_matches_them() {
        let need = Capability::Debug.needs()[0];
        let grants = |groups: &[&str], resources: &[&str], verbs: &[&str]| {
            let rule: PolicyRule = serde_json::from_value(rule(groups, resources, verbs)).unwrap();
            rule_grants(&rule, &need).map(|(verbs, _)| verbs)
        };
        let both = Some(vec!["patch".to_string(), "update".to_string()]);
        assert_eq!(grants(&[""], &["pods/ephemeralcontainers"], &["patch", "update"]), both);
        assert_eq!(grants(&["*"], &["*"], &["*"]), both);
        assert_eq!(grants(&[""], &["*/ephemeralcontainers"], &["*"]), both);
        assert_eq!(grants(&[""], &["pods/ephemeralcontainers"], &["patch"]), Some(vec!["patch".to_string()]));
        assert_eq!(grants(&[""], &["pods/*"], &["*"]), None, "pods/* is no wildcard in RBAC");
        assert_eq!(grants(&[""], &["pods"], &["*"]), None, "pods does not cover its subresources");
        assert_eq!(grants(&["apps"], &["*"], &["*"]), None, "another API group");
        assert_eq!(grants(&[""], &["*/ephemeral"], &["*"]), None);
        assert_eq!(grants(&[""], &["pods/ephemeralcontainers"], &["get", "create"]), None);
    }

    #[test]
    fn resource_names_limit_a_grant_and_never_grant_create_of_a_top_level_resource() {
        let named: PolicyRule = serde_json::from_value(json!({
            "apiGroups": [""], "resources": ["pods", "pods/ephemeralcontainers"],
            "resourceNames": ["web"], "verbs": ["*"]
        }))
        .unwrap();
        let (verbs, names) = rule_grants(&named, &Capability::Debug.needs()[0]).unwrap();
        assert_eq!(verbs, ["patch", "update"]);
        assert_eq!(names, Some(vec!["web".to_string()]));
        assert_eq!(rule_grants(&named, &Capability::Copy.needs()[0]), None);
    }

    #[test]
    fn bindings_grant_in_their_scope_through_roles_and_cluster_roles() {
        let resolution = resolve(&rbac(json!([
            cluster_role("debugger", json!({}), json!([rule(&[""], &["pods/ephemeralcontainers"], &["patch"])])),
            {"kind": "Role", "metadata": {"name": "local", "namespace": "dev"},
             "rules": [rule(&[""], &["pods/ephemeralcontainers"], &["update"])]},
            binding("ClusterRoleBinding", None, "sre", ("ClusterRole", "debugger"),
                    json!([{"kind": "Group", "name": "sre"}])),
            binding("RoleBinding", Some("shop"), "alice", ("ClusterRole", "debugger"),
                    json!([{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "ci"}])),
            binding("RoleBinding", Some("dev"), "bob", ("Role", "local"), json!([{"kind": "User", "name": "bob"}])),
            binding("RoleBinding", Some("shop"), "bob", ("Role", "local"), json!([{"kind": "User", "name": "bob"}])),
        ])));
        assert_eq!(
            who(&resolution, Capability::Debug),
            [
                pair("*", "Group sre"),
                pair("dev", "User bob"),
                pair("shop", "User alice"),
                pair("shop", "ServiceAccount shop/ci"),
            ]
        );
        let bob = resolution.entries.iter().find(|e| e.subject == Subject::user("bob")).unwrap();
        assert_eq!(bob.verbs, BTreeSet::from(["update".to_string()]));
        assert_eq!(
            bob.chains[0].to_string(),
            "RoleBinding dev/bob > Role dev/local > rules[0] {apiGroups: [\"\"], resources: [pods/ephemeralcontainers], verbs: [update]}"
        );
        assert!(
            resolution.notes.iter().any(|n| n.contains("RoleBinding shop/bob") && n.contains("does not exist")),
            "{:?}",
            resolution.notes
        );
    }

    #[test]
    fn system_masters_may_do_everything_whatever_the_bindings() {
        let resolution = resolve(&Rbac::default());
        for capability in Capability::ALL {
            let masters: Vec<&Entry> = resolution.entries.iter().filter(|e| e.capability == capability).collect();
            assert_eq!(masters.len(), 1);
            assert_eq!(masters[0].subject, Subject::group(SYSTEM_MASTERS));
            assert_eq!(masters[0].namespace, Scope::Cluster);
        }
    }

    #[test]
    fn aggregation_is_followed_transitively_and_stale_stored_rules_are_noted() {
        let agg = |to: &str| json!({"clusterRoleSelectors": [{"matchLabels": {format!("example.com/aggregate-to-{to}"): "true"}}]});
        let resolution = resolve(&rbac(json!([
            {"kind": "ClusterRole", "metadata": {"name": "admin"}, "aggregationRule": agg("admin")},
            {"kind": "ClusterRole", "metadata": {"name": "edit", "labels": {"example.com/aggregate-to-admin": "true"}},
             "aggregationRule": agg("edit"), "rules": [rule(&[""], &["pods"], &["get"])]},
            cluster_role("debug-bits", json!({"example.com/aggregate-to-edit": "true"}),
                         json!([rule(&[""], &["pods/ephemeralcontainers"], &["patch"])])),
            cluster_role("other", json!({"example.com/aggregate-to-edit": "false"}),
                         json!([rule(&[""], &["pods/exec"], &["create"])])),
            binding("RoleBinding", Some("shop"), "admins", ("ClusterRole", "admin"), json!([{"kind": "Group", "name": "ops"}])),
        ])));
        assert_eq!(who(&resolution, Capability::Debug), [pair("shop", "Group ops")]);
        assert_eq!(who(&resolution, Capability::Exec), [], "a label of another value is not selected");
        let ops = resolution.entries.iter().find(|e| e.subject == Subject::group("ops")).unwrap();
        let Via::Rbac { roles, .. } = &ops.chains[0].via else { panic!() };
        let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["admin", "edit", "debug-bits"]);
        assert!(
            resolution
                .notes
                .iter()
                .any(|n| n.starts_with("ClusterRole edit: its aggregationRule selects 1 rule(s), it stores 1"))
        );
        assert!(
            resolution
                .notes
                .iter()
                .any(|n| n.starts_with("ClusterRole admin: its aggregationRule selects 1 rule(s), it stores 0"))
        );
    }

    #[test]
    fn aggregation_cycles_end_and_expressions_select() {
        // a selects b (tier In [y]); b selects every role with a tier, a and leaf among them.
        let resolution = resolve(&rbac(json!([
            {"kind": "ClusterRole", "metadata": {"name": "a", "labels": {"tier": "x"}},
             "aggregationRule": {"clusterRoleSelectors": [
                {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["y"]}]}]}},
            {"kind": "ClusterRole", "metadata": {"name": "b", "labels": {"tier": "y"}},
             "aggregationRule": {"clusterRoleSelectors": [{"matchExpressions": [{"key": "tier", "operator": "Exists"}]}]}},
            cluster_role("leaf", json!({"tier": "z"}), json!([rule(&["*"], &["*"], &["*"])])),
            cluster_role("untiered", json!({}), json!([rule(&["*"], &["*"], &["*"])])),
            binding("ClusterRoleBinding", None, "a", ("ClusterRole", "a"), json!([{"kind": "User", "name": "u"}])),
        ])));
        assert_eq!(who(&resolution, Capability::Debug), [pair("*", "User u")]);
        let u = resolution.entries.iter().find(|e| e.subject == Subject::user("u")).unwrap();
        assert_eq!(u.chains.len(), 1, "leaf once, untiered not at all: {:?}", u.chains);
        let Via::Rbac { roles, .. } = &u.chains[0].via else { panic!() };
        let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "leaf"]);
    }

    #[test]
    fn node_debugging_needs_both_halves_and_nodes_only_cluster_wide() {
        let resolution = resolve(&rbac(json!([
            cluster_role("pods", json!({}), json!([rule(&[""], &["pods"], &["create"])])),
            cluster_role(
                "nodes",
                json!({}),
                json!([rule(&[""], &["nodes"], &["get"]), rule(&[""], &["nodes/proxy"], &["get"])])
            ),
            binding(
                "ClusterRoleBinding",
                None,
                "nodes",
                ("ClusterRole", "nodes"),
                json!([{"kind": "User", "name": "carol"}, {"kind": "User", "name": "dan"}])
            ),
            binding(
                "RoleBinding",
                Some("shop"),
                "pods",
                ("ClusterRole", "pods"),
                json!([{"kind": "User", "name": "carol"}])
            ),
            binding(
                "RoleBinding",
                Some("shop"),
                "nodes",
                ("ClusterRole", "nodes"),
                json!([{"kind": "User", "name": "erin"}])
            ),
        ])));
        assert_eq!(who(&resolution, Capability::Node), [pair("shop", "User carol")]);
        assert_eq!(who(&resolution, Capability::Copy), [pair("shop", "User carol")]);
        assert_eq!(
            who(&resolution, Capability::Kubelet),
            [pair("*", "User carol"), pair("*", "User dan")],
            "a RoleBinding never grants nodes"
        );
    }

    #[test]
    fn service_account_users_and_groups() {
        assert_eq!(
            Subject::user("system:serviceaccount:ci:deployer"),
            Subject::ServiceAccount { namespace: "ci".into(), name: "deployer".into() }
        );
        assert_eq!(
            Subject::user("system:serviceaccount:ci"),
            Subject::User { name: "system:serviceaccount:ci".into() }
        );
        let sa = Subject::user("system:serviceaccount:ci:deployer");
        assert_eq!(sa.username().unwrap(), "system:serviceaccount:ci:deployer");
        assert!(sa.is_covered_by(&Subject::group("system:serviceaccounts:ci")));
        assert!(sa.is_covered_by(&Subject::group("system:authenticated")));
        assert!(!sa.is_covered_by(&Subject::group("system:serviceaccounts:dev")));
        assert!(!Subject::user("alice").is_covered_by(&Subject::group("sre")), "membership is not known");
    }
}
