//! A ValidatingAdmissionPolicy served by egate with its params and its
//! Namespace read from the cluster (`egate serve --params-from cluster`,
//! as the service account egate-system/egate with only the RBAC of
//! `deploy/params/rbac.yaml`): a ConfigMap created, then changed, and a
//! namespace label changed, each reaching the decisions of `kubectl debug`
//! without a reload; a restart keeps them.

use serde_json::json;

use crate::cluster::{Namespace, Run, cluster, distroless_pod, poll, repo};
use crate::egate::Egate;

/// New debug containers' images come from the registry a ConfigMap `debug-images` of the
/// pod's namespace names; a namespace labelled `debug: locked` takes no
/// debug containers at all.
const POLICIES: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: debug-registry}
spec:
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [UPDATE], resources: [pods/ephemeralcontainers]}
  variables:
  - name: added
    expression: "object.spec.ephemeralContainers.filter(c, !has(oldObject.spec.ephemeralContainers) || !oldObject.spec.ephemeralContainers.exists(o, o.name == c.name))"
  validations:
  - expression: "variables.added.all(c, c.image.startsWith(params.data.registry))"
    messageExpression: "'debug images come from ' + params.data.registry + ' in namespace ' + namespaceObject.metadata.name"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: debug-registry}
spec:
  policyName: debug-registry
  validationActions: [Deny]
  paramRef: {name: debug-images, parameterNotFoundAction: Deny}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: debug-locked}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [UPDATE], resources: [pods/ephemeralcontainers]}
  validations:
  - expression: "false"
    message: "this namespace is locked: no debug containers"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: debug-locked}
spec:
  policyName: debug-locked
  validationActions: [Deny]
  matchResources:
    namespaceSelector: {matchLabels: {debug: locked}}
---
# Params of a kind the cluster does not have: logged, and the policy fails
# under its failure policy (Ignore, so the others can be seen).
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: debug-missing-kind}
spec:
  paramKind: {apiVersion: example.com/v1, kind: DebugLimits}
  failurePolicy: Ignore
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [UPDATE], resources: [pods/ephemeralcontainers]}
  validations:
  - expression: "false"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: debug-missing-kind}
spec:
  policyName: debug-missing-kind
  validationActions: [Deny]
  paramRef: {name: limits, parameterNotFoundAction: Deny}
"#;

fn install() {
    let c = cluster();
    c.apply(&json!([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "egate-system"}}]));
    c.admin(&["apply", "--server-side", "--force-conflicts", "-k", repo("deploy/params").to_str().unwrap()]);
}

fn registry_params(ns: &Namespace, registry: &str) {
    cluster().apply(&json!([{
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "debug-images", "namespace": ns.name},
        "data": {"registry": registry}
    }]));
}

/// `kubectl debug web` as alice with `image`, in a container of its own.
fn debug(ns: &Namespace, image: &str) -> Run {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let container = format!("dbg-{}", SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    ns.debug("alice", "web", &container, &[&format!("--image={image}"), "--profile=general"])
}

fn denied_with(run: &Run, words: &str) -> bool {
    !run.ok && run.stderr.contains(words)
}

#[test]
#[ignore = "needs a control plane: make e2e"]
fn params_and_namespaces_come_from_the_cluster() {
    install();
    let ns = Namespace::new("params", &[]);
    ns.create_pod(&distroless_pod("web"));
    let mut egate = Egate::with_params_from_cluster(POLICIES);
    egate.register(&ns);

    // No ConfigMap yet: parameterNotFoundAction Deny.
    let run = debug(&ns, "registry.example/tools:1");
    assert!(denied_with(&run, "no params found for policy binding with `Deny` parameterNotFoundAction"), "{run:?}");

    // The ConfigMap, once egate has seen it, decides.
    registry_params(&ns, "registry.example/");
    poll("egate to read the new ConfigMap", || debug(&ns, "registry.example/tools:1").ok);
    let run = debug(&ns, "busybox:1.36");
    let message = format!("debug images come from registry.example/ in namespace {}", ns.name);
    assert!(denied_with(&run, &message), "{run:?}");
    assert!(run.stderr.contains("ValidatingAdmissionPolicy 'debug-registry' with binding 'debug-registry'"), "{run:?}");

    // A change of the ConfigMap reaches the next requests, without a reload.
    registry_params(&ns, "mirror.example/");
    poll("egate to read the changed ConfigMap", || {
        denied_with(&debug(&ns, "registry.example/tools:1"), "debug images come from mirror.example/")
    });
    assert!(debug(&ns, "mirror.example/tools:1").ok);

    // A namespace label reaches the binding's namespaceSelector.
    cluster().admin(&["label", "namespace", &ns.name, "debug=locked"]);
    poll("egate to see the namespace label", || {
        denied_with(&debug(&ns, "mirror.example/tools:1"), "this namespace is locked: no debug containers")
    });

    // A restart lists them again: nothing is lost.
    egate.restart();
    let run = debug(&ns, "mirror.example/tools:1");
    assert!(denied_with(&run, "this namespace is locked: no debug containers"), "{run:?}");
    // The kind the cluster lacks is named in the log, and only it.
    let log = egate.log();
    let missing: Vec<&str> = log.lines().filter(|l| l.contains("cannot watch a paramKind")).collect();
    assert!(!missing.is_empty() && missing.iter().all(|l| l.contains("example.com/v1 DebugLimits")), "{log}");
}
