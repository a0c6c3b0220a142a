//! `kubectl debug` (pods/ephemeralcontainers) by alice and bob, judged by
//! the real webhook: every profile kubectl offers, the default set's
//! answers, what a person reads on a denial and a warning, mutation, a
//! second debug container, and egate's audit annotations in the audit log.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::cluster::{Namespace, Run, cluster, distroless_pod, poll};
use crate::egate::{Egate, default_set};

/// Every `--profile` kubectl offers.
const PROFILES: [&str; 6] = ["legacy", "general", "baseline", "restricted", "netadmin", "sysadmin"];

/// The kubectl binaries users have: the pinned release's, and the machine's
/// own (older) one when there is one.
fn kubectls() -> Vec<(String, PathBuf)> {
    let pinned = cluster().kubectl_bin();
    let mut bins = vec![(format!("kubectl {}", cluster().var("EGATE_KUBERNETES_VERSION")), pinned.clone())];
    if let Ok(machine) = which("kubectl")
        && machine.canonicalize().ok() != pinned.canonicalize().ok()
    {
        bins.push(("the machine's kubectl".to_string(), machine));
    }
    bins
}

fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .ok_or(())
}

/// What the default set answers for `profile` with or without `--target`:
/// `Ok(())` admitted, `Err(policies)` the policies that refuse.
fn default_set_answer(profile: &str) -> Result<(), &'static [&'static str]> {
    match profile {
        "netadmin" => Err(&["capabilities", "pod-security"]),
        "sysadmin" => Err(&["privileged", "pod-security"]),
        _ => Ok(()),
    }
}

/// The table of docs/policies.md ("The default set and kubectl debug"):
/// every profile, with and without --target, with both kubectls, by alice
/// (group sre) and bob (group dev), each on a fresh distroless pod.
#[test]
#[ignore = "needs a control plane: make e2e"]
fn profiles_meet_the_default_set() {
    let ns = Namespace::new("e2e-profiles", &[]);
    let _egate = Egate::serving(&default_set(), &ns);
    let mut table = String::from("| kubectl | user | profile | --target | answer |\n|---|---|---|---|---|\n");
    let mut seq = 0;
    for (kubectl, bin) in kubectls() {
        for user in ["alice", "bob"] {
            for profile in PROFILES {
                for target in [false, true] {
                    seq += 1;
                    let pod = format!("web-{seq}");
                    ns.create_pod(&distroless_pod(&pod));
                    let mut extra = vec![format!("--profile={profile}")];
                    if target {
                        extra.push("--target=app".into());
                    }
                    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
                    let run = ns.debug_with(&bin, user, &pod, "dbg", &extra);
                    let answer = if run.ok { "admitted".to_string() } else { refusal(&run) };
                    table.push_str(&format!("| {kubectl} | {user} | {profile} | {target} | {answer} |\n"));
                    match default_set_answer(profile) {
                        Ok(()) => assert!(run.ok, "{kubectl} --profile={profile} target={target} by {user}: {run:?}"),
                        Err(policies) => {
                            assert!(!run.ok, "{kubectl} --profile={profile} by {user} was admitted");
                            for policy in policies {
                                assert!(
                                    run.stderr.contains(&format!("\n{policy}: "))
                                        || run.stderr.contains(&format!(": {policy}: ")),
                                    "{policy} should refuse --profile={profile}: {}",
                                    run.stderr
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    println!("{table}");
}

/// The policies named at the start of the lines of a refusal.
fn refusal(run: &Run) -> String {
    let names: Vec<&str> = run
        .stderr
        .lines()
        .filter_map(|line| line.rsplit("denied the request: ").next())
        .filter_map(|line| line.split_once(": ").map(|(policy, _)| policy))
        .filter(|policy| !policy.contains(' '))
        .collect();
    format!("refused by {}", names.join(", "))
}

/// The line a person reads when `kubectl debug --profile=sysadmin` is
/// refused: the webhook, the policy, the container, the field and what to
/// do instead.
#[test]
#[ignore = "needs a control plane: make e2e"]
fn a_denial_says_policy_container_field_and_remedy() {
    let ns = Namespace::new("e2e-denial", &[]);
    let _egate = Egate::serving(&default_set(), &ns);
    ns.create_pod(&distroless_pod("web"));
    let run = ns.debug("alice", "web", "dbg", &["--profile=sysadmin"]);
    assert!(!run.ok);
    assert_eq!(
        run.lines("Error from server").first().copied(),
        Some(
            "Error from server: admission webhook \"ephemeralcontainers.validate.egate.dev\" denied the request: \
             privileged: ephemeral container \"dbg\" sets securityContext.privileged: true, but debug containers \
             may not be privileged: remove securityContext.privileged or set it to false"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "pod-security: ephemeral container \"dbg\" violates PodSecurity \"baseline:v1.37\" (with the securityContext it inherits from the pod): privileged (container \"dbg\" must not set securityContext.privileged=true)"
        ),
        "{}",
        run.stderr
    );
    // The pod is unchanged: no ephemeral container was added.
    assert!(ns.pod("web")["spec"]["ephemeralContainers"].is_null());
}

/// Warn mode: kubectl prints the policy's warning, and the container is added.
#[test]
#[ignore = "needs a control plane: make e2e"]
fn warn_mode_prints_kubectl_warnings() {
    let ns = Namespace::new("e2e-warn", &[]);
    let set = r#"
apiVersion: egate.dev/v1
kind: ClusterPolicy
metadata:
  name: pinned-images
spec:
  failureAction: Warn
  match:
    resources: [pods/ephemeralcontainers]
    operations: [UPDATE]
  module: builtin:images
  settings:
    requireDigest: true
"#;
    let egate = Egate::start(set);
    egate.register(&ns);
    ns.create_pod(&distroless_pod("web"));
    let run = ns.debug("bob", "web", "dbg", &["--profile=general"]);
    assert!(run.ok, "{run:?}");
    let warnings = run.lines("Warning:");
    assert!(
        warnings.iter().any(|w| w.starts_with("Warning: pinned-images: ephemeral container \"dbg\"") && w.contains("busybox:1.36")),
        "{}",
        run.stderr
    );
    assert_eq!(ns.pod("web")["spec"]["ephemeralContainers"][0]["name"], "dbg");
}

/// A `--custom` file: what it asks for is judged like a profile's.
#[test]
#[ignore = "needs a control plane: make e2e"]
fn custom_files_are_judged() {
    let ns = Namespace::new("e2e-custom", &[]);
    let _egate = Egate::serving(&default_set(), &ns);
    let dir = tempfile::tempdir().unwrap();
    let custom = |name: &str, spec: Value| {
        let path = dir.path().join(name);
        std::fs::write(&path, spec.to_string()).unwrap();
        format!("--custom={}", path.display())
    };
    let env = custom("env.json", json!({"env": [{"name": "DEBUG", "value": "1"}]}));
    let sys_admin = custom("sys-admin.json", json!({"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}));
    let unconfined = custom("unconfined.json", json!({"securityContext": {"seccompProfile": {"type": "Unconfined"}}}));

    ns.create_pod(&distroless_pod("web-env"));
    let run = ns.debug("alice", "web-env", "dbg", &["--profile=general", &env]);
    assert!(run.ok, "{run:?}");
    assert_eq!(ns.pod("web-env")["spec"]["ephemeralContainers"][0]["env"][0]["name"], "DEBUG");

    ns.create_pod(&distroless_pod("web-sys-admin"));
    let run = ns.debug("alice", "web-sys-admin", "dbg", &[&sys_admin]);
    assert!(!run.ok);
    assert!(
        run.stderr.contains("capabilities: ephemeral container \"dbg\" adds capabilities [SYS_ADMIN]"),
        "{}",
        run.stderr
    );

    ns.create_pod(&distroless_pod("web-unconfined"));
    let run = ns.debug("alice", "web-unconfined", "dbg", &[&unconfined]);
    assert!(!run.ok);
    assert!(run.stderr.contains("pod-security: ephemeral container \"dbg\" violates PodSecurity"), "{}", run.stderr);
    assert!(run.stderr.contains("seccompProfile"), "{}", run.stderr);
}

/// The set of the mutation scenario: the default set, with image-mirror
/// sending Docker Hub images to a mirror.
fn mirrored_set() -> String {
    default_set()
        + r#"
---
apiVersion: egate.dev/v1
kind: ClusterPolicy
metadata:
  name: image-mirror
spec:
  mutating: true
  match:
    resources: [pods/ephemeralcontainers]
    operations: [UPDATE]
  module: builtin:image-mirror
  settings:
    mirrors:
      docker.io: mirror.example.com/hub
"#
}

/// The pod the API server stores carries harden's securityContext and
/// image-mirror's image; a second debug container on the same pod is
/// admitted and hardened too, and the first is left exactly as it was
/// (kyverno#9152 broke on this).
#[test]
#[ignore = "needs a control plane: make e2e"]
fn the_stored_pod_is_hardened_and_mirrored_twice() {
    let ns = Namespace::new("e2e-mutation", &[]);
    let _egate = Egate::serving(&mirrored_set(), &ns);
    ns.create_pod(&distroless_pod("web"));
    let kubectl = cluster().kubectl_bin();

    let first = ns.debug_with(&kubectl, "alice", "web", "dbg-1", &["--profile=general", "--target=app"]);
    assert!(first.ok, "{first:?}");
    let stored = ns.pod("web");
    let dbg1 = stored["spec"]["ephemeralContainers"][0].clone();
    assert_eq!(dbg1["name"], "dbg-1");
    assert_eq!(dbg1["image"], "mirror.example.com/hub/library/busybox:1.36");
    assert_eq!(dbg1["targetContainerName"], "app");
    let sc = &dbg1["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{sc}");
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{sc}");
    assert_eq!(sc["capabilities"]["add"], json!(["SYS_PTRACE"]), "{sc}");
    // The pod sets seccompProfile RuntimeDefault, which the container
    // inherits: harden writes one only where neither does.
    assert!(sc["seccompProfile"].is_null(), "{sc}");
    assert_eq!(stored["spec"]["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(dbg1["stdin"], true);

    let second = ns.debug_with(&kubectl, "bob", "web", "dbg-2", &["--profile=restricted"]);
    assert!(second.ok, "{second:?}");
    let stored = ns.pod("web");
    let containers = stored["spec"]["ephemeralContainers"].as_array().unwrap();
    assert_eq!(containers.len(), 2);
    assert_eq!(containers[0], dbg1, "the first debug container must not be patched again");
    assert_eq!(containers[1]["name"], "dbg-2");
    assert_eq!(containers[1]["image"], "mirror.example.com/hub/library/busybox:1.36");
    assert_eq!(containers[1]["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
}

/// egate's audit annotations land in the API server's audit log, on the
/// event of that very request.
#[test]
#[ignore = "needs a control plane: make e2e"]
fn audit_annotations_reach_the_audit_log() {
    let ns = Namespace::new("e2e-audit", &[]);
    let _egate = Egate::serving(&default_set(), &ns);
    ns.create_pod(&distroless_pod("web"));
    let run = ns.debug("alice", "web", "dbg", &["--profile=baseline", "--target=app"]);
    assert!(run.ok, "{run:?}");
    let event = audit_event(|event| {
        event["stage"] == "ResponseComplete"
            && event["objectRef"]["namespace"] == ns.name.as_str()
            && event["objectRef"]["subresource"] == "ephemeralcontainers"
            && event["verb"] == "patch"
            && event["responseStatus"]["code"] == 200
    });
    assert_eq!(event["user"]["username"], "alice");
    let annotations = event["annotations"].as_object().unwrap();
    let (key, value) = annotations
        .iter()
        .find(|(key, _)| key.starts_with("ephemeralcontainers.validate.egate.dev/"))
        .unwrap_or_else(|| panic!("no egate annotation in {annotations:?}"));
    assert_eq!(key, "ephemeralcontainers.validate.egate.dev/audit.debug-dbg");
    assert_eq!(value, "user=alice image=busybox:1.36 target=app");
    // RequestResponse level: the pod as stored, with the hardened container.
    assert_eq!(
        event["responseObject"]["spec"]["ephemeralContainers"][0]["securityContext"]["capabilities"]["drop"],
        json!(["ALL"])
    );
}

/// The first event of the API server's audit log that `matches`, once it is written.
pub fn audit_event(matches: impl Fn(&Value) -> bool) -> Value {
    let log = cluster().path("EGATE_AUDIT_LOG");
    let mut found = None;
    poll("the audit event of the request", || {
        found = audit_events(&log).into_iter().find(|event| matches(event));
        found.is_some()
    });
    found.unwrap()
}

fn audit_events(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}
