//! `egate eval` end to end: the real binary, the real built-in modules, the
//! sample kubectl debug requests in examples/.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const POLICIES: &str = "examples/policies/debug-policies.yaml";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn egate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_egate"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("egate runs")
}

/// `egate eval` on one example request with the example policy set.
fn eval(request: &str) -> Value {
    let request = format!("examples/requests/{request}");
    let out = egate(&["eval", "--policy", POLICIES, "--request", &request]);
    assert!(out.status.success(), "egate eval failed: {}", String::from_utf8_lossy(&out.stderr));
    let review: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    let sent: Value = serde_json::from_slice(&std::fs::read(repo(&request)).unwrap()).unwrap();
    assert_eq!(review["response"]["uid"], sent["request"]["uid"], "the uid is echoed");
    review["response"].clone()
}

fn denial_message(response: &Value) -> String {
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 403, "{response}");
    response["status"]["message"].as_str().unwrap().to_string()
}

fn new_container_name(request: &str) -> String {
    let sent: Value =
        serde_json::from_slice(&std::fs::read(repo(&format!("examples/requests/{request}"))).unwrap()).unwrap();
    let containers = sent["request"]["object"]["spec"]["ephemeralContainers"].as_array().unwrap();
    containers.last().unwrap()["name"].as_str().unwrap().to_string()
}

#[test]
fn a_restricted_debug_container_is_allowed() {
    let response = eval("debug-allowed.json");
    assert_eq!(response["allowed"], true, "{response}");
    assert!(response.get("status").is_none());
}

#[test]
fn a_privileged_debug_container_is_denied_naming_policy_container_and_field() {
    let response = eval("debug-privileged.json");
    let message = denial_message(&response);
    let container = new_container_name("debug-privileged.json");
    assert!(message.starts_with("no-privileged-debug: "), "{message}");
    assert!(message.contains(&format!("ephemeral container {container:?}")), "{message}");
    assert!(message.contains("securityContext.privileged: true"), "{message}");
    assert!(message.contains("set it to false"), "{message}");
}

#[test]
fn netadmin_capabilities_are_denied_with_the_allowed_list() {
    let message = denial_message(&eval("debug-netadmin.json"));
    assert!(message.starts_with("debug-capabilities: "), "{message}");
    assert!(message.contains("NET_ADMIN"), "{message}");
    assert!(message.contains("allowed are [AUDIT_WRITE"), "{message}");
}

#[test]
fn an_untagged_image_is_denied_as_latest() {
    let message = denial_message(&eval("debug-latest-image.json"));
    assert!(message.starts_with("debug-images: "), "{message}");
    assert!(message.contains("docker.io/library/busybox:latest"), "{message}");
}

#[test]
fn an_image_outside_the_allowed_registries_is_denied() {
    let message = denial_message(&eval("debug-untrusted-registry.json"));
    assert!(
        message.contains("docker.io/attacker/tools:1.0") && message.contains("matches none of the allowed images"),
        "{message}"
    );
}

#[test]
fn only_new_ephemeral_containers_are_judged() {
    let response = eval("debug-second-container.json");
    assert_eq!(response["allowed"], true, "an earlier privileged debug container is not judged again: {response}");
}

#[test]
fn text_output_is_one_readable_decision_per_request() {
    let out = egate(&[
        "eval",
        "-o",
        "text",
        "--policy",
        POLICIES,
        "--request",
        "examples/requests/debug-allowed.json",
        "--request",
        "examples/requests/debug-privileged.json",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("examples/requests/debug-allowed.json: ALLOWED"), "{text}");
    assert!(text.contains("examples/requests/debug-privileged.json: DENIED (403)"), "{text}");
    assert!(text.contains("  deny: no-privileged-debug: ephemeral container"), "{text}");
}

#[test]
fn a_yaml_request_is_read_too() {
    let dir = tempfile::tempdir().unwrap();
    let json: Value =
        serde_json::from_slice(&std::fs::read(repo("examples/requests/debug-privileged.json")).unwrap()).unwrap();
    let yaml = dir.path().join("request.yaml");
    std::fs::write(&yaml, egate_engine::yaml::to_string(&json).unwrap()).unwrap();
    let out = egate(&["eval", "--policy", POLICIES, "--request", yaml.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let review: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(review["response"]["allowed"], false);
}

/// Runs eval expecting failure; returns stderr.
fn eval_error(policy: &str, request: &str) -> String {
    let out = egate(&["eval", "--policy", policy, "--request", request]);
    assert!(!out.status.success(), "expected failure, got {}", String::from_utf8_lossy(&out.stdout));
    assert!(out.stdout.is_empty(), "no response is printed on error");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn unreadable_or_invalid_requests_are_errors_naming_the_file() {
    let err = eval_error(POLICIES, "examples/requests/missing.json");
    assert!(err.contains("cannot read request file examples/requests/missing.json"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let wrong_kind = dir.path().join("wrong.json");
    std::fs::write(&wrong_kind, r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}}"#).unwrap();
    let err = eval_error(POLICIES, wrong_kind.to_str().unwrap());
    assert!(
        err.contains("wrong.json") && err.contains("expected apiVersion admission.k8s.io/v1 and kind AdmissionReview"),
        "{err}"
    );

    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"apiVersion\": [unclosed").unwrap();
    let err = eval_error(POLICIES, garbage.to_str().unwrap());
    assert!(err.contains("garbage.json"), "{err}");
}

#[test]
fn invalid_manifests_modules_and_settings_are_errors_naming_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let request = "examples/requests/debug-allowed.json";
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let head = "apiVersion: egate.dev/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  match: {resources: [pods/ephemeralcontainers]}\n";

    let typo = write("typo.yaml", &format!("{head}  module: builtin:privileged\n  failurPolicy: Fail\n"));
    let err = eval_error(&typo, request);
    assert!(err.contains("typo.yaml") && err.contains("unknown field `failurPolicy`"), "{err}");

    let settings =
        write("settings.yaml", &format!("{head}  module: builtin:images\n  settings: {{requireDigest: maybe}}\n"));
    let err = eval_error(&settings, request);
    assert!(err.contains(r#"policy "p""#) && err.contains("requireDigest"), "{err}");

    let not_wasm = write("junk.wasm", "this is not wasm");
    let _ = not_wasm;
    let junk = write("junk.yaml", &format!("{head}  module: junk.wasm\n"));
    let err = eval_error(&junk, request);
    assert!(err.contains("junk.wasm") && err.contains("not a valid wasm module"), "{err}");

    let err = eval_error(&dir.path().join("absent.yaml").to_string_lossy(), request);
    assert!(err.contains("cannot read policy manifest") && err.contains("absent.yaml"), "{err}");
}

#[test]
fn mode_splits_mutating_and_validating_policies() {
    let run = |mode: &str| {
        let out = egate(&[
            "eval",
            "--mode",
            mode,
            "--policy",
            "policies/harden/policy.yaml",
            "--policy",
            "policies/privilege-escalation/policy.yaml",
            "--request",
            "examples/requests/debug-latest-image.json",
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["response"].clone()
    };
    // harden alone: the bare debug container gets a patch.
    let mutate = run("mutate");
    assert_eq!(mutate["allowed"], true, "{mutate}");
    assert_eq!(mutate["patchType"], "JSONPatch");
    // privilege-escalation alone judges the object as sent: denied, no patch.
    let validate = run("validate");
    assert_eq!(validate["allowed"], false, "{validate}");
    assert!(validate.get("patch").is_none());
    // Both: harden's patch sets allowPrivilegeEscalation: false first.
    let all = run("all");
    assert_eq!(all["allowed"], true, "{all}");
    assert!(all["patch"].is_string());
}

/// The requests a real kube-apiserver v1.37.2 sent for `kubectl debug -it
/// POD --image=busybox:1.36 --target=app --profile=P` (captured by the
/// end-to-end tests with `egate serve --record`), judged offline by the
/// default set as `egate serve` judges them: the answers of the table in
/// docs/policies.md.
#[test]
fn captured_kubectl_debug_requests_meet_the_default_set() {
    for (profile, refused_by) in [
        ("general", &[][..]),
        ("baseline", &[]),
        ("restricted", &[]),
        ("netadmin", &["capabilities", "pod-security"]),
        ("sysadmin", &["privileged", "pod-security"]),
    ] {
        let request = format!("examples/requests/captured/kubectl-debug-{profile}.json");
        let out = egate(&["eval", "--policy", "policies/default.yaml", "--request", &request]);
        assert!(out.status.success(), "{profile}: {}", String::from_utf8_lossy(&out.stderr));
        let response = serde_json::from_slice::<Value>(&out.stdout).unwrap()["response"].clone();
        if refused_by.is_empty() {
            assert_eq!(response["allowed"], true, "--profile={profile}: {response}");
            // restricted already sets all that harden would write.
            assert_eq!(response["patch"].is_string(), profile != "restricted", "--profile={profile}: {response}");
            assert_eq!(response["auditAnnotations"]["audit.debug-dbg"], "user=alice image=busybox:1.36 target=app");
        } else {
            let message = denial_message(&response);
            let policies: Vec<&str> = message.lines().filter_map(|l| l.split_once(": ").map(|(p, _)| p)).collect();
            assert_eq!(policies, refused_by, "--profile={profile}: {message}");
        }
    }
}

#[test]
fn a_digest_pin_on_a_builtin_holds_on_the_library_that_runs_it() {
    let inspected = egate(&["inspect", "-o", "json", "builtin:images"]);
    assert!(inspected.status.success(), "{}", String::from_utf8_lossy(&inspected.stderr));
    let library: Value = serde_json::from_slice(&inspected.stdout).unwrap();
    let library_digest = format!("sha256:{}", library["sha256"].as_str().unwrap().trim_start_matches("sha256:"));
    let standalone = egate(&["inspect", "-o", "json", "target/builtin/images.wasm"]);
    let standalone: Value = serde_json::from_slice(&standalone.stdout).unwrap();
    let standalone_digest = format!("sha256:{}", standalone["sha256"].as_str().unwrap().trim_start_matches("sha256:"));
    assert_ne!(library_digest, standalone_digest, "builtin:images runs in the built-in library");

    let dir = tempfile::tempdir().unwrap();
    let request = repo("examples/requests/debug-allowed.json");
    let judge = |pin: &str| {
        let manifest = dir.path().join("pinned.yaml");
        std::fs::write(
            &manifest,
            format!(
                "apiVersion: egate.dev/v1\nkind: ClusterPolicy\nmetadata: {{name: pinned}}\nspec:\n  \
                 match: {{resources: [pods/ephemeralcontainers]}}\n  module: builtin:images\n  moduleDigest: \"{pin}\"\n"
            ),
        )
        .unwrap();
        egate(&["eval", "--policy", manifest.to_str().unwrap(), "--request", request.to_str().unwrap()])
    };
    assert!(judge(&library_digest).status.success());
    let refused = judge(&standalone_digest);
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(message.contains(&library_digest) && message.contains(&standalone_digest), "{message}");
    assert!(message.contains("builtin:images (in egate's built-in library)"), "{message}");
}

/// `kubectl get pods -A -o json` of three pods: one with a privileged
/// debug container, one with a plain one, one without.
fn scanned_pods(dir: &Path) -> PathBuf {
    let pod = |name: &str, namespace: &str, debug: Option<Value>| {
        let mut pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}")},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}});
        if let Some(debug) = debug {
            pod["spec"]["ephemeralContainers"] = serde_json::json!([debug]);
        }
        pod
    };
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
        pod("web", "shop", Some(serde_json::json!({"name": "dbg", "image": "busybox:1.36", "securityContext": {"privileged": true}}))),
        pod("api", "shop", Some(serde_json::json!({"name": "dbg", "image": "busybox:1.36"}))),
        pod("db", "data", None),
    ]});
    let path = dir.join("pods.json");
    std::fs::write(&path, list.to_string()).unwrap();
    path
}

#[test]
fn a_scan_reports_existing_debug_containers_per_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let pods = scanned_pods(dir.path());
    let table = egate(&["scan", "--pods", pods.to_str().unwrap()]);
    assert_eq!(table.status.code(), Some(1), "a failing result fails the scan");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("shop/web  privileged    ephemeral-containers  fail"), "{text}");
    assert!(!text.contains("shop/api"), "a plain debug container passes: {text}");

    let json = egate(&["scan", "--pods", pods.to_str().unwrap(), "-o", "json"]);
    let list: Value = serde_json::from_slice(&json.stdout).unwrap();
    let reports = list["items"].as_array().unwrap();
    let namespaces: Vec<&str> = reports.iter().map(|r| r["metadata"]["namespace"].as_str().unwrap()).collect();
    assert_eq!(namespaces, ["data", "shop"]);
    let shop = &reports[1];
    assert_eq!(
        (shop["apiVersion"].as_str(), shop["kind"].as_str()),
        (Some("wgpolicyk8s.io/v1alpha2"), Some("PolicyReport"))
    );
    assert_eq!(shop["summary"]["fail"], 3, "{shop}");
    let policies: Vec<&str> =
        shop["results"].as_array().unwrap().iter().map(|r| r["policy"].as_str().unwrap()).collect();
    for needs_the_requester in ["target", "audit"] {
        assert!(!policies.contains(&needs_the_requester), "{needs_the_requester} needs userInfo: {policies:?}");
    }
    assert!(policies.contains(&"images") && policies.contains(&"max-count"), "{policies:?}");
}

#[test]
fn a_scan_of_something_else_than_pods_says_what_to_give_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deployments.json");
    std::fs::write(&path, r#"{"apiVersion": "apps/v1", "kind": "Deployment"}"#).unwrap();
    let out = egate(&["scan", "--pods", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.contains("holds a Deployment, not pods") && message.contains("kubectl get pods -A -o json"),
        "{message}"
    );
}

#[test]
fn a_scan_reads_a_large_clusters_pod_list() {
    // More nodes than the YAML reader allows one document: a pod list of a
    // large cluster, read as the JSON it is.
    let pod = |i: usize| {
        let annotations: serde_json::Map<String, Value> =
            (0..100).map(|a| (format!("note-{a}"), Value::from("x"))).collect();
        serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("p{i}"), "namespace": "big", "annotations": annotations},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}})
    };
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": (0..3000).map(pod).collect::<Vec<_>>()});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pods.json");
    std::fs::write(&path, list.to_string()).unwrap();
    let out = egate(&["scan", "--pods", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("3000 pods"));
}

// egate who-can-debug, offline: examples/rbac/who-can-debug.yaml.

const RBAC_EXAMPLE: &str = "examples/rbac/who-can-debug.yaml";

fn who_can_debug(args: &[&str]) -> Value {
    let out = egate(&[&["who-can-debug", "--from", RBAC_EXAMPLE, "-o", "json"], args].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// `NAMESPACE SUBJECT` of each entry of one list (`*` for every namespace).
fn listed(report: &Value, capability: &str) -> Vec<String> {
    let list = report["lists"].as_array().unwrap().iter().find(|l| l["capability"] == capability).unwrap();
    list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let subject = &e["subject"];
            let name = match subject["namespace"].as_str() {
                Some(ns) => format!("{ns}/{}", subject["name"].as_str().unwrap()),
                None => subject["name"].as_str().unwrap().to_string(),
            };
            format!("{} {} {name}", e["namespace"].as_str().unwrap_or("*"), subject["kind"].as_str().unwrap())
        })
        .collect()
}

#[test]
fn who_can_debug_lists_subjects_per_namespace_with_their_chains() {
    let report = who_can_debug(&[]);
    assert_eq!(
        listed(&report, "debug"),
        ["* Group system:masters", "dev User bob", "dev ServiceAccount dev/deployer", "shop Group sre"]
    );
    assert_eq!(listed(&report, "kubelet"), ["* Group oncall", "* Group system:masters"]);
    let debug = &report["lists"][0];
    assert_eq!(debug["permissions"], "patch or update pods/ephemeralcontainers");
    let sre = &debug["entries"][3];
    let roles: Vec<&str> =
        sre["chains"][0]["roles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(roles, ["edit", "debug-in-edit"], "through the aggregation into edit");
    assert_eq!(sre["chains"][0]["binding"]["name"], "sre-edit");
    let bob = &debug["entries"][1];
    assert_eq!(bob["resourceNames"], serde_json::json!(["web"]), "resourceNames grant only those pods");
    assert_eq!(bob["chains"].as_array().unwrap().len(), 1, "pods/* is no wildcard: {bob}");
    assert!(
        report["notes"][0].as_str().unwrap().starts_with("ClusterRole edit: its aggregationRule selects 3 rule(s)")
    );
}

#[test]
fn who_can_debug_filters_by_namespace_subject_and_verb() {
    let shop = who_can_debug(&["--namespace", "shop"]);
    assert_eq!(listed(&shop, "debug"), ["* Group system:masters", "shop Group sre"]);
    let deployer = who_can_debug(&["--subject", "system:serviceaccount:dev:deployer"]);
    assert_eq!(listed(&deployer, "debug"), ["dev ServiceAccount dev/deployer"]);
    let update = who_can_debug(&["--verb", "update"]);
    let lists: Vec<&str> =
        update["lists"].as_array().unwrap().iter().map(|l| l["capability"].as_str().unwrap()).collect();
    assert_eq!(lists, ["debug"]);
    assert!(!listed(&update, "debug").contains(&"dev User bob".to_string()), "bob may only patch");
}

#[test]
fn who_can_debug_with_policies_says_what_egate_lets_each_subject_add() {
    let report = who_can_debug(&["--policies", POLICIES]);
    let sre = &report["lists"][0]["entries"][3];
    let egate = &sre["egate"];
    assert_eq!(egate["namespace"], "shop");
    assert_eq!(egate["user"], "member-of-group:sre");
    let summary = egate["summary"].as_str().unwrap();
    assert!(summary.starts_with("restricted, baseline allowed;"), "{summary}");
    assert!(summary.contains("sysadmin denied (no-privileged-debug)"), "{summary}");
    let samples = egate["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 12);
    assert!(report["lists"][1]["entries"][0].get("egate").is_none(), "only debug entries are judged");
    let table = egate_table(&["--policies", POLICIES, "--namespace", "shop"]);
    assert!(table.contains("egate in shop: restricted, baseline allowed;"), "{table}");
}

fn egate_table(args: &[&str]) -> String {
    let out = egate(&[&["who-can-debug", "--from", RBAC_EXAMPLE], args].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn who_can_debug_names_the_file_and_object_of_malformed_rbac() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roles.yaml");
    std::fs::write(
        &path,
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: fine, namespace: a}\nrules: []\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: broken, namespace: a}\n\
         roleRef: {kind: Role, name: fine}\nsubjects: {kind: User, name: alice}\n",
    )
    .unwrap();
    let out = egate(&["who-can-debug", "--from", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains("roles.yaml: document 1 (RoleBinding \"broken\")"), "{message}");
    assert!(message.contains("subjects") && message.contains("fix the object"), "{message}");
}

/// `egate grant ARGS` with a kubeconfig of its own: a cluster at a port
/// nothing listens on, so no command of these tests reaches a real one.
fn grant(dir: &Path, args: &[&str]) -> Output {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n\
         users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u, namespace: team}}]\n\
         current-context: x\n",
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_egate"))
        .arg("grant")
        .args(args)
        .env("KUBECONFIG", &kubeconfig)
        .env("HOME", dir)
        .output()
        .expect("egate runs")
}

const REQUEST: [&str; 10] =
    ["request", "web", "-n", "shop", "--user", "alice", "--image", "busybox:1.36", "--profile", "general"];

#[test]
fn grant_request_prints_the_proposal_and_how_to_approve_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = grant(dir.path(), &[&REQUEST[..], &["--reason", "INC-42: it's down"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let proposal: Value = egate_engine::yaml::from_slice(&out.stdout).expect("stdout is one YAML manifest");
    assert_eq!(
        proposal,
        serde_json::json!({
            "apiVersion": "egate.dev/v1", "kind": "DebugGrant",
            "metadata": {"generateName": "alice-web-", "namespace": "shop"},
            "spec": {"subjects": {"users": ["alice"]}, "pods": {"names": ["web"]}, "images": ["busybox:1.36"],
                     "profile": "general", "duration": "30m", "reason": "INC-42: it's down"}
        })
    );
    let hint = String::from_utf8_lossy(&out.stderr);
    assert!(hint.contains("#   egate grant approve -f FILE"), "{hint}");
    assert!(
        hint.contains(
            "#   egate grant approve web -n shop --user alice --image busybox:1.36 --profile general --duration 30m \
             --reason 'INC-42: it'\\''s down'"
        ),
        "{hint}"
    );

    let file = dir.path().join("grant.json");
    let out =
        grant(dir.path(), &[&REQUEST[..], &["--reason", "x", "-o", "json", "--file", file.to_str().unwrap()]].concat());
    assert!(out.status.success() && out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let written: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(written["spec"]["reason"], "x");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("grant approve -f {}", file.display())));
}

#[test]
fn grant_request_takes_the_namespace_of_the_kubeconfig_context() {
    let dir = tempfile::tempdir().unwrap();
    let out = grant(
        dir.path(),
        &[
            "request",
            "--group",
            "sre",
            "--selector",
            "app=web",
            "--image",
            "busybox:*",
            "--profile",
            "baseline",
            "--reason",
            "x",
            "-o",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let proposal: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(proposal["metadata"], serde_json::json!({"generateName": "sre-web-", "namespace": "team"}));
    assert_eq!(proposal["spec"]["pods"]["selector"]["matchLabels"], serde_json::json!({"app": "web"}));
}

#[test]
fn grant_usage_errors_say_what_to_give_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let error = |args: &[&str]| {
        let out = grant(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(error(&REQUEST).contains("egate: error: --reason is missing or blank"));
    assert!(
        error(&["request", "web", "--user", "alice", "--image", "x", "--reason", "x"]).contains("--profile is missing")
    );
    assert!(
        error(&["request", "--user", "alice", "--image", "x", "--profile", "general", "--reason", "x"])
            .contains("which pods?")
    );
    assert!(
        error(&[&REQUEST[..], &["--reason", "x", "--duration", "soon"]].concat())
            .contains("--duration: \"soon\" is not a duration")
    );
    assert!(error(&[&REQUEST[..4], &["--profile", "root"]].concat()).contains("\"root\" is not a profile"));
    assert!(error(&["approve", "-f", "g.yaml", "--user", "alice"]).contains("'--file <FILE>' cannot be used with"));
    assert!(error(&["list", "-A", "-n", "shop"]).contains("cannot be used with"));
    let not_a_grant = dir.path().join("pod.yaml");
    std::fs::write(&not_a_grant, "apiVersion: v1\nkind: Pod\n").unwrap();
    assert!(
        error(&["approve", "-f", not_a_grant.to_str().unwrap()])
            .contains("holds a Pod of v1, not one egate.dev/v1 DebugGrant")
    );
}

#[test]
fn grant_commands_that_cannot_reach_the_cluster_name_its_server() {
    let dir = tempfile::tempdir().unwrap();
    let out = grant(dir.path(), &["list"]);
    assert_eq!(out.status.code(), Some(2));
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.starts_with("egate: error: cannot reach the Kubernetes API server at https://127.0.0.1:1"),
        "{message}"
    );
    assert!(message.contains("check that it is up, and the cluster of your kubeconfig context"), "{message}");
    let out = grant(dir.path(), &["list", "--context", "elsewhere"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot use the kubeconfig"), "{out:?}");
}

#[test]
fn kubectl_egate_is_the_same_command_as_a_kubectl_plugin() {
    let kubectl = repo("target/control-plane/v1.37.2/kubectl");
    let kubectl = std::env::var_os("KUBEBUILDER_ASSETS").map_or(kubectl, |d| Path::new(&d).join("kubectl"));
    if !kubectl.exists() {
        println!("skipped: no kubectl at {} (scripts/control-plane.sh build makes it)", kubectl.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_egate"), dir.path().join("kubectl-egate")).unwrap();
    let path = std::env::join_paths(
        std::iter::once(dir.path().to_path_buf())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let kubectl_egate = |args: &[&str]| {
        Command::new(&kubectl)
            .arg("egate")
            .args(args)
            .env("PATH", &path)
            .env("KUBECONFIG", dir.path().join("none"))
            .env("HOME", dir.path())
            .output()
            .expect("kubectl runs")
    };
    let out = kubectl_egate(&[&["grant"], &REQUEST[..], &["--reason", "x"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let proposal: Value = egate_engine::yaml::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (proposal["kind"].as_str(), proposal["metadata"]["namespace"].as_str()),
        (Some("DebugGrant"), Some("shop"))
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("#   kubectl egate grant approve -f FILE"));
    let usage = kubectl_egate(&["grant", "request", "--help"]);
    assert!(String::from_utf8_lossy(&usage.stdout).contains("Usage: kubectl egate grant request [OPTIONS] [POD]"));
    let refused = kubectl_egate(&["grant", "request", "web"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).starts_with("kubectl egate: error: who is the grant for?"));
}
