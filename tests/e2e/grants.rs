//! Debug grants on the real control plane, with three users: alice (group
//! sre) debugs, carol (group approvers) approves, bob (group dev) breaks
//! glass. `egate serve --policies` with `builtin:grants` and
//! `--grants-from cluster`, as the service account egate-system/egate with
//! the RBAC of `deploy/grants/rbac.yaml`, and the grant webhooks of
//! `deploy/webhooks.yaml`.

use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};

use crate::cluster::{Namespace, Run, cluster, distroless_pod, poll, repo};
use crate::debug::audit_event;
use crate::egate::Egate;

/// The CRDs, egate's RBAC for grants and the approver and viewer roles
/// (`deploy/grants/`, idempotent); waits until DebugGrants are served.
fn install() {
    let c = cluster();
    c.apply(&json!([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "egate-system"}}]));
    c.admin(&["apply", "--server-side", "--force-conflicts", "-k", repo("deploy/grants").to_str().unwrap()]);
    c.admin(&["wait", "--for=condition=Established", "crd/debuggrants.egate.dev"]);
}

/// Binds a ClusterRole of `deploy/grants/rbac.yaml` to `user` in the namespace.
fn bind(ns: &Namespace, user: &str, role: &str) {
    cluster().apply(&json!([{
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": format!("{role}-{user}"), "namespace": ns.name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
    }]));
}

/// A grant for alice on pod `web`: busybox images, `--target app`, profile general.
fn alice_grant(ns: &Namespace, name: &str, duration: &str) -> Value {
    json!({
        "apiVersion": "egate.dev/v1", "kind": "DebugGrant",
        "metadata": {"name": name, "namespace": ns.name},
        "spec": {"subjects": {"users": ["alice"]}, "pods": {"names": ["web"]}, "targetContainers": ["app"],
                 "images": ["busybox:*"], "profile": "general", "duration": duration,
                 "reason": "INC-42 checkout latency"}
    })
}

/// `kubectl create -f -` of `object` as `user`.
fn create_as(user: &str, object: &Value) -> Run {
    cluster().kubectl_with(&cluster().kubectl_bin(), user, &["create", "-f", "-"], Some(&object.to_string()))
}

/// `kubectl debug web --profile=general --target=app EXTRA` as `user`,
/// with a container name of its own each time.
fn debug(ns: &Namespace, user: &str, extra: &[&str]) -> (String, Run) {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let container = format!("dbg-{}", SEQ.fetch_add(1, Ordering::Relaxed));
    let args = [&["--profile=general", "--target=app"], extra].concat();
    let run = ns.debug(user, "web", &container, &args);
    (container, run)
}

/// `egate grant ARGS --context USER` with the control plane's kubeconfig.
fn egate_grant(user: &str, args: &[&str]) -> Run {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_egate"))
        .env("KUBECONFIG", cluster().var("KUBECONFIG"))
        .arg("grant")
        .args(args)
        .args(["--context", user])
        .output()
        .expect("egate runs");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The stored grant.
fn stored(ns: &Namespace, name: &str) -> Value {
    cluster().get(&["-n", &ns.name, "get", "debuggrant", name])
}

/// The annotations egate's validating webhook put on the audit event of the
/// `kubectl debug` that added `container`.
fn audit_annotations(ns: &Namespace, container: &str) -> serde_json::Map<String, Value> {
    let event = audit_event(|event| {
        event["stage"] == "ResponseComplete"
            && event["objectRef"]["namespace"] == ns.name.as_str()
            && event["objectRef"]["subresource"] == "ephemeralcontainers"
            && event["responseStatus"]["code"] == 200
            && event["requestObject"].to_string().contains(&format!("\"name\":\"{container}\""))
    });
    event["annotations"].as_object().cloned().unwrap_or_default()
}

fn grants_policy() -> String {
    r#"apiVersion: egate.dev/v1
kind: ClusterPolicy
metadata: {name: grants}
spec:
  match: {resources: [pods/ephemeralcontainers], operations: [UPDATE]}
  module: builtin:grants
  settings: {breakGlassGroups: [dev]}
"#
    .to_string()
}

#[test]
#[ignore = "needs a control plane: make e2e"]
fn kubectl_debug_needs_an_approved_live_grant_that_covers_it() {
    install();
    let ns = Namespace::new("e2e-grants", &[]);
    ns.create_pod(&distroless_pod("web"));
    for user in ["alice", "carol"] {
        bind(&ns, user, "egate-grant-approver");
    }
    let mut egate = Egate::with_grants(&grants_policy());
    egate.register(&ns);

    // Without a grant alice is denied, and told how to get one.
    let (_, denied) = debug(&ns, "alice", &[]);
    assert!(!denied.ok, "{denied:?}");
    assert!(denied.stderr.contains(r#"no live DebugGrant lets "alice" add ephemeral container"#), "{}", denied.stderr);
    let command = format!("egate grant request web -n {} --user alice --image busybox:1.36 --target app", ns.name);
    assert!(denied.stderr.contains(&command), "{}", denied.stderr);

    // alice cannot approve her own grant, even with the approver role.
    let own = create_as("alice", &alice_grant(&ns, "alice-own", "30m"));
    assert!(!own.ok);
    assert!(own.stderr.contains(r#""alice" cannot approve a grant they could use themselves"#), "{}", own.stderr);
    // Nor can anyone approve longer than --max-grant-duration.
    let long = create_as("carol", &alice_grant(&ns, "alice-long", "2h"));
    assert!(!long.ok && long.stderr.contains("longer than this cluster's --max-grant-duration 1h"), "{long:?}");

    // carol approves: she is recorded as the approver, whatever she wrote.
    let mut forged = alice_grant(&ns, "alice-web", "30m");
    forged["metadata"]["annotations"] = json!({"egate.dev/approved-by": "the-ciso"});
    let approved = create_as("carol", &forged);
    assert!(approved.ok, "{approved:?}");
    assert_eq!(stored(&ns, "alice-web")["metadata"]["annotations"]["egate.dev/approved-by"], "carol");

    // alice's debug is admitted once egate's cache has the grant.
    let mut admitted = None;
    poll("alice's debug to be admitted under the grant", || {
        let (container, run) = debug(&ns, "alice", &[]);
        admitted = Some(container);
        run.ok
    });
    let container = admitted.unwrap();
    let annotations = audit_annotations(&ns, &container);
    assert_eq!(
        annotations[&format!("ephemeralcontainers.validate.egate.dev/grants.grant.{container}")],
        format!("{}/alice-web approved by carol", ns.name)
    );
    poll("the use to be recorded in the grant's status", || stored(&ns, "alice-web")["status"]["useCount"] == 1);
    let uses = stored(&ns, "alice-web")["status"]["uses"].clone();
    assert_eq!((uses[0]["user"].as_str(), uses[0]["container"].as_str()), (Some("alice"), Some(container.as_str())));

    // Broader than the grant: another image, another profile, no --target match.
    let (_, image) = debug(&ns, "alice", &["--image=alpine:3.20"]);
    assert!(!image.ok && image.stderr.contains(r#"image "alpine:3.20" is not one of ["busybox:*"]"#), "{image:?}");
    let (_, profile) = debug(&ns, "alice", &["--profile=sysadmin"]);
    assert!(
        !profile.ok && profile.stderr.contains("asks for more than profile general allows: privileged"),
        "{profile:?}"
    );
    // A grant cannot change, even for an admin: the API server (CEL) and egate both refuse.
    let patch = cluster().kubectl(
        "admin",
        &["-n", &ns.name, "patch", "debuggrant", "alice-web", "--type=merge", "-p", r#"{"spec":{"duration":"59m"}}"#],
    );
    assert!(!patch.ok && patch.stderr.contains("cannot change"), "{patch:?}");

    // alice sees it with `egate grant list`, with its remaining time and use.
    let listed = egate_grant("alice", &["list", "-n", &ns.name, "-o", "json"]);
    assert!(listed.ok, "{listed:?}");
    let rows: Value = serde_json::from_str(&listed.stdout).unwrap();
    let row = rows.as_array().unwrap().iter().find(|r| r["name"] == "alice-web").expect("alice-web is listed");
    assert_eq!((row["state"].as_str(), row["approvedBy"].as_str()), (Some("live"), Some("carol")), "{row}");
    assert!(row["remainingSeconds"].as_u64().is_some_and(|s| s > 0 && s <= 1800), "{row}");
    assert_eq!(row["useCount"], 1);

    // egate restarted mid-way still honours the grant, and records each use once.
    egate.restart();
    let mut after_restart = None;
    poll("a debug admitted after the restart", || {
        let (container, run) = debug(&ns, "alice", &[]);
        after_restart = Some(container);
        run.ok
    });
    poll("the second use to be recorded", || stored(&ns, "alice-web")["status"]["useCount"] == 2);
    let uses = stored(&ns, "alice-web")["status"]["uses"].as_array().unwrap().clone();
    assert_eq!(uses.len(), 2, "{uses:?}");
    assert_eq!(uses[1]["container"].as_str(), after_restart.as_deref());

    // Revoking is deleting: the next debug is denied.
    let revoked = egate_grant("carol", &["revoke", "alice-web", "-n", &ns.name]);
    assert!(revoked.ok && revoked.stdout.contains(&format!("revoked DebugGrant {}/alice-web", ns.name)), "{revoked:?}");
    poll("a debug denied once the grant is revoked", || !debug(&ns, "alice", &[]).1.ok);
    let gone = egate_grant("carol", &["revoke", "alice-web", "-n", &ns.name]);
    assert!(!gone.ok && gone.stderr.contains("no DebugGrant"), "{gone:?}");

    // The proposal alice prints, approved by carol through `kubectl egate`
    // (the plugin), admits until it expires, and not after.
    let proposal = egate_grant(
        "alice",
        &["request", "web", "-n", &ns.name, "--user", "alice", "--image", "busybox:*", "--target", "app"],
    );
    assert!(!proposal.ok, "--profile and --reason are required: {proposal:?}");
    let proposal = egate_grant(
        "alice",
        &[
            "request",
            "web",
            "-n",
            &ns.name,
            "--user",
            "alice",
            "--image",
            "busybox:*",
            "--target",
            "app",
            "--profile",
            "general",
            "--duration",
            "15s",
            "--reason",
            "INC-43",
            "--name",
            "alice-short",
        ],
    );
    assert!(proposal.ok, "{proposal:?}");
    let plugin_dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_egate"), plugin_dir.path().join("kubectl-egate")).unwrap();
    let path = format!("{}:{}", plugin_dir.path().display(), std::env::var("PATH").unwrap_or_default());
    let approve = std::process::Command::new(cluster().kubectl_bin())
        .env("KUBECONFIG", cluster().var("KUBECONFIG"))
        .env("PATH", path)
        .args(["egate", "grant", "approve", "-f", "-", "--context", "carol"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(proposal.stdout.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let said = String::from_utf8_lossy(&approve.stdout);
    assert!(approve.status.success(), "{said}{}", String::from_utf8_lossy(&approve.stderr));
    assert!(said.contains(&format!("approved DebugGrant {}/alice-short for alice", ns.name)), "{said}");
    poll("a debug admitted under the short grant", || debug(&ns, "alice", &[]).1.ok);
    poll("a debug denied once the short grant expired", || {
        let (_, run) = debug(&ns, "alice", &[]);
        !run.ok && run.stderr.contains("there is none for this pod")
    });

    // Break-glass: bob (group dev) is admitted without a grant, loudly.
    let (container, glass) = debug(&ns, "bob", &["--profile=sysadmin"]);
    assert!(glass.ok, "{glass:?}");
    assert!(glass.stderr.contains(r#"used break-glass group "dev""#), "the warning reaches kubectl: {}", glass.stderr);
    let annotations = audit_annotations(&ns, &container);
    let note = annotations["ephemeralcontainers.validate.egate.dev/grants.break-glass"].as_str().unwrap();
    assert!(note.contains(r#"user "bob" used break-glass group "dev""#), "{note}");
}
