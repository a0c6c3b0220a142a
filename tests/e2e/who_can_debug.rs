//! `egate who-can-debug` against the API server's own answer. An RBAC
//! fixture (direct rules, wildcards, `pods/*`, resourceNames, aggregation
//! into the built-in `edit` and `admin` and into a role of its own, group
//! bindings, service accounts with and without a namespace, RoleBindings of
//! ClusterRoles) is applied beside the API server's bootstrap roles and
//! bindings (cluster-admin and system:masters, the controllers' service
//! accounts). Then, for every subject of every binding plus subjects bound
//! to nothing, in every fixture namespace, `default`, `kube-system` and all
//! namespaces at once, egate's listing is compared with a
//! SubjectAccessReview of the same identity: none missed, none extra.
//!
//! The control plane runs no kube-controller-manager, so nothing would
//! write the rules of aggregated ClusterRoles (the bootstrap `admin`,
//! `edit` and `view` have none). [`aggregate`] does what its aggregation
//! controller does, with the API server selecting the roles by label, and
//! the stored rules are put back afterwards.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};

use crate::cluster::{Namespace, cluster, distroless_pod, repo};

const RBAC: &str = "rbac.authorization.k8s.io/v1";

/// Runs `egate who-can-debug ARGS -o json` against the control plane.
fn who_can_debug(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_egate"))
        .arg("who-can-debug")
        .args(args)
        .args(["-o", "json"])
        .env("KUBECONFIG", cluster().var("KUBECONFIG"))
        .output()
        .expect("egate runs");
    assert!(out.status.success(), "egate who-can-debug failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn cluster_role(name: &str, labels: Value, rules: Value) -> Value {
    json!({"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": name, "labels": labels}, "rules": rules})
}

fn rule(resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": [""], "resources": resources, "verbs": verbs})
}

fn binding(namespace: Option<&str>, name: &str, role: (&str, &str), subjects: Value) -> Value {
    let kind = if namespace.is_some() { "RoleBinding" } else { "ClusterRoleBinding" };
    json!({"apiVersion": RBAC, "kind": kind, "metadata": {"name": name, "namespace": namespace},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role.0, "name": role.1},
           "subjects": subjects})
}

fn user(name: &str) -> Value {
    json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name})
}

fn group(name: &str) -> Value {
    json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": name})
}

/// The fixture: two namespaces and the RBAC objects below; removed when
/// dropped, pass or fail, and the aggregated roles' stored rules put back.
struct Fixture {
    shop: Namespace,
    dev: Namespace,
    cluster_objects: Vec<(&'static str, String)>,
    /// Each aggregated ClusterRole's `rules` as found, to put back.
    found_rules: Vec<(String, Value)>,
}

impl Fixture {
    fn new() -> Self {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let prefix = format!("egate-e2e-wcd-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        let shop = Namespace::new("wcd-shop", &[]);
        let dev = Namespace::new("wcd-dev", &[]);
        let (s, d) = (shop.name.as_str(), dev.name.as_str());
        let n = |suffix: &str| format!("{prefix}-{suffix}");
        let debug_bits = n("debug-bits");
        let aggregator = n("aggregator");
        let label = format!("egate.dev/e2e-aggregate-{prefix}");
        let cluster_objects = vec![
            // Added to the built-in edit (and so to admin) by its label, as teams do.
            (
                "clusterrole",
                cluster_role(
                    &debug_bits,
                    json!({"rbac.authorization.k8s.io/aggregate-to-edit": "true"}),
                    json!([rule(&["pods/ephemeralcontainers"], &["patch"])]),
                ),
            ),
            (
                "clusterrole",
                cluster_role(&n("any-verb"), json!({}), json!([rule(&["pods/ephemeralcontainers"], &["*"])])),
            ),
            (
                "clusterrole",
                cluster_role(&n("any-sub"), json!({}), json!([rule(&["*/ephemeralcontainers"], &["update"])])),
            ),
            ("clusterrole", cluster_role(&n("pods-star"), json!({}), json!([rule(&["pods/*"], &["*"])]))),
            ("clusterrole", cluster_role(&n("all-core"), json!({}), json!([rule(&["*"], &["patch", "create"])]))),
            (
                "clusterrole",
                cluster_role(
                    &n("apps-only"),
                    json!({}),
                    json!([{"apiGroups": ["apps"], "resources": ["*"], "verbs": ["*"]}]),
                ),
            ),
            (
                "clusterrole",
                cluster_role(
                    &n("read-only"),
                    json!({}),
                    json!([rule(&["pods/ephemeralcontainers"], &["get", "list"])]),
                ),
            ),
            (
                "clusterrole",
                cluster_role(
                    &n("node-proxy"),
                    json!({}),
                    json!([
                        rule(&["nodes/proxy", "nodes"], &["get"]),
                        rule(&["pods/exec", "pods/attach"], &["create"])
                    ]),
                ),
            ),
            (
                "clusterrole",
                json!({"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": aggregator},
                       "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {label.clone(): "true"}}]}}),
            ),
            (
                "clusterrole",
                cluster_role(
                    &n("aggregated-leaf"),
                    json!({label.clone(): "true"}),
                    json!([rule(&["pods/ephemeralcontainers"], &["update"])]),
                ),
            ),
            (
                "clusterrolebinding",
                binding(
                    None,
                    &n("any-verb"),
                    ("ClusterRole", &n("any-verb")),
                    json!([{"kind": "ServiceAccount", "name": "debugger", "namespace": s}]),
                ),
            ),
            (
                "clusterrolebinding",
                binding(None, &n("apps-only"), ("ClusterRole", &n("apps-only")), json!([user("frank")])),
            ),
            (
                "clusterrolebinding",
                binding(None, &n("aggregator"), ("ClusterRole", &aggregator), json!([group("platform")])),
            ),
            (
                "clusterrolebinding",
                binding(None, &n("node-proxy"), ("ClusterRole", &n("node-proxy")), json!([user("nora")])),
            ),
        ];
        // The ClusterRole deploy/ ships for people who may debug, bound as docs/deploy.md says.
        let shipped = std::fs::read_to_string(repo("deploy/rbac/egate-debugger.yaml")).unwrap();
        let debugger: Value = egate_engine::yaml::from_str(&shipped).unwrap();
        assert_eq!(debugger["metadata"]["name"], "egate-debugger");
        let mut cluster_objects = cluster_objects;
        cluster_objects.push(("clusterrole", debugger));
        let namespaced = vec![
            binding(Some(d), "egate-debuggers", ("ClusterRole", "egate-debugger"), json!([group("debuggers")])),
            json!({"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "only-web", "namespace": s},
                   "rules": [{"apiGroups": [""], "resources": ["pods/ephemeralcontainers", "pods/exec"],
                              "resourceNames": ["web"], "verbs": ["patch", "create"]}]}),
            binding(Some(s), "oncall-edit", ("ClusterRole", "edit"), json!([group("oncall")])),
            binding(Some(d), "carol-admin", ("ClusterRole", "admin"), json!([user("carol")])),
            binding(
                Some(d),
                "shop-accounts",
                ("ClusterRole", &n("any-sub")),
                json!([group(&format!("system:serviceaccounts:{s}"))]),
            ),
            binding(Some(s), "dave", ("ClusterRole", &n("pods-star")), json!([user("dave")])),
            binding(Some(d), "erin", ("ClusterRole", &n("all-core")), json!([user("erin")])),
            binding(Some(s), "gina", ("Role", "only-web"), json!([user("gina")])),
            binding(Some(s), "henry", ("ClusterRole", &n("read-only")), json!([user("henry")])),
            // A service account without a namespace: the binding's own.
            binding(Some(s), "ci", ("ClusterRole", &debug_bits), json!([{"kind": "ServiceAccount", "name": "ci"}])),
            binding(
                Some(d),
                "ci-user",
                ("ClusterRole", &debug_bits),
                json!([user(&format!("system:serviceaccount:{d}:deployer"))]),
            ),
        ];
        let objects: Vec<Value> = cluster_objects.iter().map(|(_, object)| object.clone()).chain(namespaced).collect();
        let mut fixture = Self {
            cluster_objects: cluster_objects
                .iter()
                .map(|(kind, object)| (*kind, object["metadata"]["name"].as_str().unwrap().to_string()))
                .collect(),
            shop,
            dev,
            found_rules: Vec::new(),
        };
        cluster().apply(&Value::Array(objects));
        fixture.found_rules = aggregate();
        fixture
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let c = cluster();
        for ns in [&self.shop.name, &self.dev.name] {
            c.kubectl("admin", &["-n", ns, "delete", "rolebindings,roles", "--all", "--wait=false"]);
        }
        for (kind, name) in &self.cluster_objects {
            c.kubectl("admin", &["delete", kind, name, "--ignore-not-found", "--wait=false"]);
        }
        for (name, rules) in &self.found_rules {
            let patch = json!({"rules": rules}).to_string();
            c.kubectl("admin", &["patch", "clusterrole", name, "--type=merge", "-p", &patch]);
        }
    }
}

/// What kube-controller-manager's ClusterRole aggregation controller does,
/// until nothing changes: each aggregated ClusterRole gets the rules of
/// every other ClusterRole its selectors select (the API server selects by
/// label), without repeats. Returns each aggregated role's rules as found.
fn aggregate() -> Vec<(String, Value)> {
    let c = cluster();
    let found: Vec<(String, Value)> = aggregated_roles(&c.get(&["get", "clusterroles"]))
        .into_iter()
        .map(|role| (role["metadata"]["name"].as_str().unwrap().to_string(), role["rules"].clone()))
        .collect();
    for _pass in 0..10 {
        let mut changed = false;
        for role in aggregated_roles(&c.get(&["get", "clusterroles"])) {
            let name = role["metadata"]["name"].as_str().unwrap();
            let mut rules: Vec<Value> = Vec::new();
            for selector in role["aggregationRule"]["clusterRoleSelectors"].as_array().into_iter().flatten() {
                let selected = c.get(&["get", "clusterroles", "-l", &selector_text(selector)]);
                for other in selected["items"].as_array().unwrap() {
                    if other["metadata"]["name"] == name {
                        continue;
                    }
                    for rule in other["rules"].as_array().into_iter().flatten() {
                        if !rules.contains(rule) {
                            rules.push(rule.clone());
                        }
                    }
                }
            }
            if role["rules"].as_array().cloned().unwrap_or_default() != rules {
                let patch = json!({"rules": rules}).to_string();
                c.admin(&["patch", "clusterrole", name, "--type=merge", "-p", &patch]);
                changed = true;
            }
        }
        if !changed {
            return found;
        }
    }
    panic!("the aggregated ClusterRoles did not settle in 10 passes");
}

fn aggregated_roles(list: &Value) -> Vec<Value> {
    list["items"].as_array().unwrap().iter().filter(|role| !role["aggregationRule"].is_null()).cloned().collect()
}

/// A LabelSelector as `kubectl -l` writes it.
fn selector_text(selector: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    for (key, value) in selector["matchLabels"].as_object().into_iter().flatten() {
        parts.push(format!("{key}={}", value.as_str().unwrap()));
    }
    for expression in selector["matchExpressions"].as_array().into_iter().flatten() {
        let key = expression["key"].as_str().unwrap();
        let values: Vec<&str> =
            expression["values"].as_array().into_iter().flatten().map(|v| v.as_str().unwrap()).collect();
        parts.push(match expression["operator"].as_str().unwrap() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            other => panic!("selector operator {other}"),
        });
    }
    parts.join(",")
}

/// Who a SubjectAccessReview asks about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Identity {
    user: String,
    groups: Vec<String>,
}

impl Identity {
    /// A subject of a binding, as the API server would authenticate it: a
    /// user (in system:authenticated), a member of a group (in that group
    /// only), or a service account (in its two groups and system:authenticated).
    fn of(subject: &Value, binding_namespace: Option<&str>) -> Option<Self> {
        let name = subject["name"].as_str().unwrap();
        match subject["kind"].as_str().unwrap() {
            "User" => Some(match name.strip_prefix("system:serviceaccount:").and_then(|r| r.split_once(':')) {
                Some((namespace, _)) => Self::service_account(namespace, name),
                None => Self { user: name.into(), groups: vec!["system:authenticated".into()] },
            }),
            "Group" => Some(Self { user: "egate-e2e-member".into(), groups: vec![name.into()] }),
            "ServiceAccount" => {
                let namespace = subject["namespace"].as_str().or(binding_namespace)?;
                Some(Self::service_account(namespace, &format!("system:serviceaccount:{namespace}:{name}")))
            }
            _ => None,
        }
    }

    fn service_account(namespace: &str, user: &str) -> Self {
        let groups = vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{namespace}"),
            "system:authenticated".into(),
        ];
        Self { user: user.into(), groups }
    }

    /// Whether egate's entry subject covers this identity.
    fn is(&self, subject: &Value) -> bool {
        let name = subject["name"].as_str().unwrap();
        match subject["kind"].as_str().unwrap() {
            "User" => self.user == name,
            "Group" => self.groups.iter().any(|g| g == name),
            "ServiceAccount" => {
                self.user == format!("system:serviceaccount:{}:{name}", subject["namespace"].as_str().unwrap())
            }
            other => panic!("subject kind {other}"),
        }
    }
}

/// One question, to egate's listing and to the API server.
#[derive(Debug, Clone)]
struct Check {
    identity: Identity,
    capability: &'static str,
    verb: &'static str,
    resource: &'static str,
    subresource: Option<&'static str>,
    /// `""`: every namespace (only ClusterRoleBindings count).
    namespace: String,
    name: Option<String>,
}

impl Check {
    fn review(&self) -> Value {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
               "spec": {"user": self.identity.user, "groups": self.identity.groups,
                        "resourceAttributes": {"namespace": self.namespace, "verb": self.verb, "group": "",
                                               "resource": self.resource, "subresource": self.subresource,
                                               "name": self.name}}})
    }

    /// egate's answer: a chain of an entry for this identity, capability
    /// and namespace grants the verb, on every object or on this one.
    fn egate(&self, listing: &Value) -> bool {
        let list = listing["lists"].as_array().unwrap().iter().find(|l| l["capability"] == self.capability).unwrap();
        list["entries"].as_array().unwrap().iter().any(|entry| {
            let here = entry["namespace"].is_null() || entry["namespace"] == self.namespace.as_str();
            here && self.identity.is(&entry["subject"])
                && entry["chains"].as_array().unwrap().iter().any(|chain| {
                    let verb = chain["verbs"].as_array().unwrap().iter().any(|v| v == self.verb);
                    let names = &chain["resourceNames"];
                    let object = names.is_null()
                        || self
                            .name
                            .as_ref()
                            .is_some_and(|n| names.as_array().unwrap().iter().any(|x| x == n.as_str()));
                    verb && object
                })
        })
    }
}

/// The API server's answers to `checks`, in order (SubjectAccessReviews, created as admin).
fn reviews(checks: &[Check]) -> Vec<bool> {
    let list =
        json!({"apiVersion": "v1", "kind": "List", "items": checks.iter().map(Check::review).collect::<Vec<_>>()});
    let c = cluster();
    let run = c.kubectl_with(&c.kubectl_bin(), "admin", &["create", "-f", "-", "-o", "json"], Some(&list.to_string()));
    assert!(run.ok, "creating SubjectAccessReviews failed:\n{}", run.stderr);
    let answers: Vec<bool> = serde_json::Deserializer::from_str(&run.stdout)
        .into_iter::<Value>()
        .map(|review| review.unwrap()["status"]["allowed"].as_bool().unwrap())
        .collect();
    assert_eq!(answers.len(), checks.len());
    answers
}

/// Every identity bound by any binding of the cluster, and some bound to nothing.
fn identities(nobody: &Namespace) -> BTreeSet<Identity> {
    let mut out = BTreeSet::new();
    let bindings = cluster().get(&["get", "rolebindings,clusterrolebindings", "-A"]);
    for binding in bindings["items"].as_array().unwrap() {
        let namespace = binding["metadata"]["namespace"].as_str();
        for subject in binding["subjects"].as_array().into_iter().flatten() {
            out.extend(Identity::of(subject, namespace));
        }
    }
    for subject in [
        user("nobody"),
        group("nobody-group"),
        group("system:authenticated"),
        json!({"kind": "ServiceAccount", "name": "nobody", "namespace": nobody.name}),
    ] {
        out.extend(Identity::of(&subject, None));
    }
    out
}

/// (capability, verb, resource, subresource, named): what is compared.
const QUESTIONS: [(&str, &str, &str, Option<&str>, bool); 7] = [
    ("debug", "patch", "pods", Some("ephemeralcontainers"), true),
    ("debug", "update", "pods", Some("ephemeralcontainers"), true),
    ("exec", "create", "pods", Some("exec"), true),
    ("attach", "create", "pods", Some("attach"), false),
    ("copy", "create", "pods", None, false),
    ("kubelet", "get", "nodes", Some("proxy"), false),
    ("kubelet", "create", "nodes", Some("proxy"), false),
];

#[test]
#[ignore = "needs the control plane: make e2e"]
fn who_can_debug_agrees_with_subject_access_reviews() {
    let fixture = Fixture::new();
    let listing = who_can_debug(&[]);
    assert_eq!(listing["source"], "cluster");
    assert!(listing["notes"].as_array().unwrap().is_empty(), "aggregated roles are settled: {}", listing["notes"]);
    let namespaces = [fixture.shop.name.as_str(), fixture.dev.name.as_str(), "default", "kube-system"];
    let identities = identities(&fixture.shop);
    let mut checks = Vec::new();
    for identity in &identities {
        for &(capability, verb, resource, subresource, named) in &QUESTIONS {
            let namespaced = resource == "pods";
            let scopes: Vec<&str> = if namespaced { [&namespaces[..], &[""]].concat() } else { vec![""] };
            for namespace in scopes {
                let names: Vec<Option<&str>> =
                    if named && !namespace.is_empty() { vec![None, Some("web"), Some("db")] } else { vec![None] };
                for name in names {
                    checks.push(Check {
                        identity: identity.clone(),
                        capability,
                        verb,
                        resource,
                        subresource,
                        namespace: namespace.into(),
                        name: name.map(str::to_string),
                    });
                }
            }
        }
    }
    let answers = reviews(&checks);
    let mut disagreements = Vec::new();
    let (mut debug_total, mut debug_agree, mut allowed) = (0, 0, 0);
    for (check, &server) in checks.iter().zip(&answers) {
        let egate = check.egate(&listing);
        allowed += usize::from(server);
        if check.capability == "debug" {
            debug_total += 1;
            debug_agree += usize::from(egate == server);
        }
        if egate != server {
            disagreements.push(format!(
                "{} {} {}{} in {:?} name {:?} as {} {:?}: egate {egate}, SubjectAccessReview {server}",
                check.capability,
                check.verb,
                check.resource,
                check.subresource.map(|s| format!("/{s}")).unwrap_or_default(),
                check.namespace,
                check.name,
                check.identity.user,
                check.identity.groups
            ));
        }
    }
    let agree = checks.len() - disagreements.len();
    println!(
        "who-can-debug: {debug_agree}/{debug_total} debug answers agree with SubjectAccessReview; \
         {agree}/{} over every capability ({} identities, {allowed} allowed)",
        checks.len(),
        identities.len()
    );
    assert!(disagreements.is_empty(), "egate and the API server disagree:\n{}", disagreements.join("\n"));

    // The fixture's cases, by name: what each one exists for.
    let debuggers = |namespace: Option<&str>| -> BTreeSet<String> {
        let list = &listing["lists"][0];
        assert_eq!(list["capability"], "debug");
        list["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["namespace"].as_str() == namespace)
            .map(|e| format!("{}:{}", e["subject"]["kind"].as_str().unwrap(), e["subject"]["name"].as_str().unwrap()))
            .collect()
    };
    let (shop, dev) = (fixture.shop.name.as_str(), fixture.dev.name.as_str());
    let in_shop = debuggers(Some(shop));
    for expected in ["Group:oncall", "ServiceAccount:ci", "User:gina", "Group:sre", "Group:dev"] {
        assert!(in_shop.contains(expected), "{expected} may debug in {shop}: {in_shop:?}");
    }
    assert!(!in_shop.contains("User:dave"), "pods/* is no wildcard");
    assert!(!in_shop.contains("User:henry"), "get and list do not add containers");
    let in_dev = debuggers(Some(dev));
    let shop_accounts = format!("Group:system:serviceaccounts:{shop}");
    for expected in ["User:carol", "User:erin", &shop_accounts, "ServiceAccount:deployer", "Group:debuggers"] {
        assert!(in_dev.contains(expected), "{expected} may debug in {dev}: {in_dev:?}");
    }
    let everywhere = debuggers(None);
    for expected in [
        "Group:system:masters",
        "Group:platform",
        "ServiceAccount:debugger",
        "ServiceAccount:generic-garbage-collector",
    ] {
        assert!(everywhere.contains(expected), "{expected} may debug everywhere: {everywhere:?}");
    }
    assert!(!everywhere.contains("User:frank"), "another API group's wildcard");

    // kubectl auth can-i (impersonation and a SelfSubjectAccessReview)
    // answers as the SubjectAccessReviews did, for the fixture's subjects.
    let mut compared = 0;
    for (check, &server) in checks.iter().zip(&answers) {
        let fixture_subject = ["oncall", "carol", "gina", "dave", "platform", "erin"]
            .iter()
            .any(|s| check.identity.user == *s || check.identity.groups.iter().any(|g| g == s));
        if check.capability != "debug" || check.verb != "patch" || !fixture_subject || check.namespace.is_empty() {
            continue;
        }
        let mut args = vec!["auth".to_string(), "can-i".into(), "patch".into()];
        args.push(match &check.name {
            Some(name) => format!("pods/{name}"),
            None => "pods".into(),
        });
        args.extend(["--subresource=ephemeralcontainers".to_string(), "-n".into(), check.namespace.clone()]);
        args.push(format!("--as={}", check.identity.user));
        args.extend(check.identity.groups.iter().map(|g| format!("--as-group={g}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = cluster().kubectl("admin", &args);
        assert_eq!(run.stdout.trim() == "yes", server, "kubectl {}: {}{}", args.join(" "), run.stdout, run.stderr);
        compared += 1;
    }
    println!("who-can-debug: kubectl auth can-i answered as the SubjectAccessReviews {compared} times");

    // egate-debugger is enough for kubectl debug (no webhook is registered here).
    fixture.dev.create_pod(&distroless_pod("web"));
    let debug_as = |group: &str| {
        let args = ["-n", dev, "debug", "web", "--image=busybox:1.36", "-it", "--attach=false", "--as=someone"];
        cluster().kubectl("admin", &[&args[..], &[&format!("--as-group={group}")]].concat())
    };
    let run = debug_as("debuggers");
    assert!(run.ok, "a member of a group bound to egate-debugger debugs: {}", run.stderr);
    let run = debug_as("nobody-group");
    assert!(!run.ok && run.stderr.contains("forbidden"), "{run:?}");
}

#[test]
#[ignore = "needs the control plane: make e2e"]
fn who_can_debug_reads_a_dump_as_it_reads_the_cluster() {
    let _fixture = Fixture::new();
    let dump = cluster().admin(&["get", "clusterroles,clusterrolebindings,roles,rolebindings", "-A", "-o", "yaml"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rbac.yaml");
    std::fs::write(&file, dump).unwrap();
    let mut live = who_can_debug(&[]);
    let mut offline = who_can_debug(&["--from", file.to_str().unwrap()]);
    assert_eq!(offline["source"], file.to_str().unwrap());
    live.as_object_mut().unwrap().remove("source");
    offline.as_object_mut().unwrap().remove("source");
    let entries = |v: &Value| {
        v["lists"].as_array().unwrap().iter().map(|l| l["entries"].as_array().unwrap().len()).sum::<usize>()
    };
    assert!(entries(&live) > 20, "{live}");
    assert_eq!(live, offline, "the dump gives the cluster's answer");
    println!("who-can-debug: a dump of the cluster gives the same {} entries", entries(&live));
}

#[test]
#[ignore = "needs the control plane: make e2e"]
fn who_can_debug_says_which_list_permission_is_missing() {
    let c = cluster();
    let kubeconfig = std::fs::read_to_string(c.path("KUBECONFIG")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let as_alice = dir.path().join("kubeconfig");
    std::fs::write(&as_alice, kubeconfig.replace("current-context: admin", "current-context: alice")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_egate"))
        .args(["who-can-debug"])
        .env("KUBECONFIG", &as_alice)
        .output()
        .expect("egate runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot list roles, clusterroles, rolebindings, clusterrolebindings"), "{stderr}");
    assert!(stderr.contains(r#"User "alice" cannot list resource "clusterroles""#), "the server's reason: {stderr}");
    assert!(
        stderr.contains("needs only list on roles, clusterroles, rolebindings and clusterrolebindings"),
        "{stderr}"
    );
}
