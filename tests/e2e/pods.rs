//! Pods, judged as pods: a privileged CREATE, `kubectl debug node/NAME` and
//! `kubectl debug POD --copy-to` (both create a pod rather than adding an
//! ephemeral container).

use serde_json::json;

use crate::cluster::{Namespace, cluster, distroless_pod};
use crate::egate::{Egate, default_set};

#[test]
#[ignore = "needs a control plane: make e2e"]
fn a_privileged_pod_is_refused_by_pod_security() {
    let ns = Namespace::new("e2e-pods", &[]);
    let _egate = Egate::serving(&default_set(), &ns);
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "root", "namespace": ns.name},
                     "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                                              "securityContext": {"privileged": true}}]}});
    let run = cluster().kubectl_with(&cluster().kubectl_bin(), "alice", &["create", "-f", "-"], Some(&pod.to_string()));
    assert!(!run.ok);
    assert_eq!(
        run.lines("Error from server").first().copied(),
        Some(
            "Error from server: error when creating \"STDIN\": admission webhook \"pods.validate.egate.dev\" denied the request: \
             pod-security: violates PodSecurity \"baseline:v1.37\": privileged (container \"app\" must not set securityContext.privileged=true)"
        ),
        "{}",
        run.stderr
    );
}

/// `kubectl debug node/NAME` creates a pod bound to the node. With the
/// general and sysadmin profiles it joins the host's namespaces and mounts
/// the host's root filesystem, and pod-security refuses it at baseline;
/// with baseline (or restricted) it is a plain pod on that node, admitted.
#[test]
#[ignore = "needs a control plane: make e2e"]
fn node_debugging_pods_are_judged_as_pods() {
    let ns = Namespace::new("e2e-node", &[]);
    let _egate = Egate::serving(&default_set(), &ns);
    let node = format!("{}-node", ns.name);
    cluster().apply(&json!([{"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}]));
    for profile in ["general", "sysadmin", "netadmin", "baseline", "restricted"] {
        let run = cluster().kubectl(
            "admin",
            &[
                "-n",
                &ns.name,
                "debug",
                &format!("node/{node}"),
                "--image=busybox:1.36",
                "-it",
                "--attach=false",
                &format!("--profile={profile}"),
            ],
        );
        if profile == "baseline" || profile == "restricted" {
            assert!(run.ok, "--profile={profile}: {run:?}");
            continue;
        }
        assert!(!run.ok, "--profile={profile}: {run:?}");
        assert!(run.stderr.contains("admission webhook \"pods.validate.egate.dev\" denied the request: pod-security: violates PodSecurity \"baseline:v1.37\""), "{}", run.stderr);
        assert!(run.stderr.contains("host namespaces"), "--profile={profile}: {}", run.stderr);
    }
    cluster().kubectl("admin", &["delete", "node", &node, "--wait=false"]);
}

/// `kubectl debug POD --copy-to=NAME` creates a copy of the pod with the
/// debug container as an ordinary container: judged as a pod CREATE. The
/// baseline and restricted profiles are admitted; general's SYS_PTRACE is
/// not (the debugCapabilities exception applies to ephemeral containers only).
#[test]
#[ignore = "needs a control plane: make e2e"]
fn copy_to_pods_are_judged_as_pods() {
    let ns = Namespace::new("e2e-copy", &[]);
    let _egate = Egate::serving(&default_set(), &ns);
    ns.create_pod(&distroless_pod("web"));
    for (profile, admitted) in [("baseline", true), ("restricted", true), ("general", false), ("sysadmin", false)] {
        let copy = format!("web-copy-{profile}");
        let run = ns.debug("alice", "web", "dbg", &[&format!("--copy-to={copy}"), &format!("--profile={profile}")]);
        assert_eq!(run.ok, admitted, "--copy-to --profile={profile}: {run:?}");
        if admitted {
            let pod = ns.pod(&copy);
            let names: Vec<&str> =
                pod["spec"]["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
            assert_eq!(names, ["app", "dbg"]);
        } else {
            assert!(
                run.stderr.contains("pods.validate.egate.dev\" denied the request: pod-security"),
                "{}",
                run.stderr
            );
        }
    }
}
