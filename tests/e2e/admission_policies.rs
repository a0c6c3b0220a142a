//! Kubernetes ValidatingAdmissionPolicy and MutatingAdmissionPolicy run by
//! the API server and by egate, side by side.
//!
//! Every file of `tests/admission-policies/` (policies, bindings, params) is
//! installed in the API server, which judges one sequence of requests in a
//! namespace of its own: pods created, `kubectl debug` with every profile
//! and with another image, a Deployment and a ConfigMap (dry-run), a label
//! change. The policies are then removed, and `egate serve` with the same
//! file, registered as a webhook for every resource of a second namespace,
//! judges the same sequence there. Outcomes, messages, warnings and the
//! stored pods must agree; the agreement count is printed (and quoted in
//! docs/vap.md). A difference is a bug, or one [`explained`] documents.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::cluster::{Namespace, Run, cluster, distroless_pod, poll, repo};
use crate::egate::Egate;

/// The profiles of `kubectl debug`.
const PROFILES: [&str; 6] = ["legacy", "general", "baseline", "restricted", "netadmin", "sysadmin"];

/// Files whose outcomes differ from the API server's by design, and why.
fn explained(file: &str, step: &str) -> Option<&'static str> {
    match (file, step) {
        ("authorizer.yaml", _) => Some("authorizer is not available in egate: an error under the failure policy"),
        // The API server finds no params through a paramRef.selector on
        // ConfigMaps (kubernetes#130887, #133827: its param informer); egate
        // selects both, and the tighter limit denies.
        ("docs-params-selector.yaml", "create deployment big (dry run)") => {
            Some("the API server finds no ConfigMap params through paramRef.selector (kubernetes#133827)")
        }
        _ => None,
    }
}

/// The corpus, in name order.
fn corpus() -> Vec<PathBuf> {
    let only = std::env::var("EGATE_E2E_CORPUS").ok();
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo("tests/admission-policies"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        // EGATE_E2E_CORPUS=debug-: only the files whose name holds it.
        .filter(|p| only.as_deref().is_none_or(|part| p.file_name().unwrap().to_string_lossy().contains(part)))
        .collect();
    files.sort();
    files
}

/// What one request came to, as comparable text: `allowed`, or the
/// policy's message; then each warning.
fn outcome(run: &Run, namespace: &str) -> String {
    let normal = |text: &str| text.replace(namespace, "NAMESPACE");
    let mut lines = vec![if run.ok { "allowed".to_string() } else { normal(&denial(&run.stderr)) }];
    let mut warnings: Vec<String> = run.lines("Warning: ").iter().map(|w| normal(w)).collect();
    warnings.sort();
    lines.extend(warnings);
    lines.join("\n")
}

/// The policy's own words in an error, without what the API server or
/// kubectl put around them (which differ between a policy the API server
/// runs and a webhook's answer).
fn denial(stderr: &str) -> String {
    let line =
        stderr.lines().find(|l| l.starts_with("Error from server") || l.starts_with("error:")).unwrap_or(stderr.trim());
    for anchor in ["ValidatingAdmissionPolicy '", "policy '"] {
        if let Some(at) = line.find(anchor) {
            return format!("denied: {}", &line[at..]);
        }
    }
    format!("error: {line}")
}

/// The requests, in order, with what each came to.
fn judge_sequence(ns: &Namespace) -> Vec<(String, String)> {
    let c = cluster();
    let mut results = Vec::new();
    let mut record = |step: &str, run: Run| results.push((step.to_string(), outcome(&run, &ns.name)));
    let create = |object: Value, dry_run: bool| {
        let mut object = object;
        object["metadata"]["namespace"] = json!(ns.name);
        let mut args = vec!["create", "--validate=false", "-f", "-"];
        if dry_run {
            args.push("--dry-run=server");
        }
        c.kubectl_with(&c.kubectl_bin(), "admin", &args, Some(&object.to_string()))
    };
    record("create pod web", create(distroless_pod("web"), false));
    record("create pod legacy", create(legacy_pod(), false));
    record("create deployment small (dry run)", create(deployment("small", 3), true));
    record("create deployment big (dry run)", create(deployment("big", 7), true));
    let config =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"mode": "open"}});
    record("create configmap settings (dry run)", create(config, true));
    for profile in PROFILES {
        let container = format!("dbg-{profile}");
        let run = ns.debug("alice", "web", &container, &[&format!("--profile={profile}")]);
        record(&format!("debug web --profile={profile}"), run);
    }
    let run = ns.debug("alice", "web", "dbg-registry", &["--profile=general", "--image=registry.example/tools:1"]);
    record("debug web --image=registry.example/tools:1", run);
    record("debug legacy as bob --target=app", ns.debug("bob", "legacy", "dbg-bob", &["--target=app"]));
    let label = c.kubectl("admin", &["-n", &ns.name, "label", "pod", "web", "env=prod", "--overwrite"]);
    record("label pod web env=prod", label);
    for pod in ["web", "legacy"] {
        let stored = c.kubectl("admin", &["-n", &ns.name, "get", "pod", pod, "-o", "json", "--ignore-not-found"]);
        results.push((format!("stored pod {pod}"), stored_pod(&stored.stdout, &ns.name)));
    }
    results
}

/// A pod as stored, without what the API server fills in differently each
/// time (uid, times, resource versions, managed fields).
fn stored_pod(json: &str, namespace: &str) -> String {
    let Ok(mut pod) = serde_json::from_str::<Value>(json) else { return "absent".into() };
    let metadata = pod["metadata"].as_object_mut().unwrap();
    for field in ["uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"] {
        metadata.remove(field);
    }
    pod.as_object_mut().unwrap().remove("status");
    let text = serde_json::to_string_pretty(&pod).unwrap().replace(namespace, "NAMESPACE");
    // The service account token volume has a random suffix.
    text.split("kube-api-access-")
        .enumerate()
        .map(
            |(i, part)| {
                if i == 0 { part.to_string() } else { format!("kube-api-access-X{}", &part[5.min(part.len())..]) }
            },
        )
        .collect()
}

/// A pod as old workloads are: root, a shell, no securityContext.
fn legacy_pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "legacy", "labels": {"app": "legacy", "tier": "backend"}},
        "spec": {"containers": [{
            "name": "app", "image": "busybox:1.36", "command": ["sleep", "infinity"],
            "env": [{"name": "MY_ENV", "value": "abc"}]
        }]}
    })
}

fn deployment(name: &str, replicas: u32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}
            }
        }
    })
}

/// Policies the test adds after the corpus, to learn when the API server
/// has taken the corpus in (each informer delivers in order) and when it
/// has let it go. The validating one denies creating the ConfigMap
/// `vap-canary` once it sees its params, a ConfigMap created last (so the
/// params informer has seen the corpus' params too); the mutating one
/// labels the ConfigMap `map-canary`.
fn canary(ns: &Namespace) -> Value {
    let rule = |name: &str| {
        json!({"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                                   "resources": ["configmaps"], "resourceNames": [name]})
    };
    json!([
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": "e2e-canary"},
         "spec": {"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
                  "matchConstraints": {"resourceRules": [rule("vap-canary")]},
                  "validations": [{"expression": "params.data.canary != 'ready'", "message": "canary"}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": "e2e-canary"},
         "spec": {"policyName": "e2e-canary", "validationActions": ["Deny"],
                  "paramRef": {"name": "vap-canary-params", "namespace": ns.name, "parameterNotFoundAction": "Allow"}}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingAdmissionPolicy",
         "metadata": {"name": "e2e-canary"},
         "spec": {"matchConstraints": {"resourceRules": [rule("map-canary")]}, "reinvocationPolicy": "Never",
                  "mutations": [{"patchType": "JSONPatch", "jsonPatch": {"expression":
                      "[JSONPatch{op: 'add', path: '/metadata/labels', value: {'canary': 'seen'}}]"}}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingAdmissionPolicyBinding",
         "metadata": {"name": "e2e-canary"}, "spec": {"policyName": "e2e-canary"}}
    ])
}

fn canary_params(ns: &Namespace) -> Value {
    json!([{"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "vap-canary-params", "namespace": ns.name}, "data": {"canary": "ready"}}])
}

/// Whether the validating canary denies and the mutating one labels.
fn canaries(ns: &Namespace) -> (bool, bool) {
    let c = cluster();
    let create = |name: &str| {
        let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns.name}});
        let args = ["create", "--dry-run=server", "-o", "json", "-f", "-"];
        c.kubectl_with(&c.kubectl_bin(), "admin", &args, Some(&config.to_string()))
    };
    let denied = create("vap-canary");
    let labelled = create("map-canary");
    (!denied.ok && denied.stderr.contains("canary"), labelled.stdout.contains("\"canary\": \"seen\""))
}

/// Objects of the file as JSON, for kubectl.
fn objects(text: &str) -> Value {
    Value::Array(egate_engine::yaml::documents::<Value>(text).unwrap())
}

/// One corpus file: its name, and its text with every binding narrowed to
/// the namespaces labelled `vap-file: STEM`, so that all files can be
/// installed at once and judge side by side, each in its own namespaces.
struct CorpusFile {
    name: String,
    stem: String,
    text: String,
}

impl CorpusFile {
    fn read(path: &std::path::Path) -> Self {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let stem = name.trim_end_matches(".yaml").to_string();
        let mut documents = egate_engine::yaml::documents::<Value>(&std::fs::read_to_string(path).unwrap()).unwrap();
        for document in &mut documents {
            if document["kind"].as_str().is_some_and(|k| k.ends_with("AdmissionPolicyBinding")) {
                let selector = &mut document["spec"]["matchResources"]["namespaceSelector"];
                let expressions = &mut selector["matchExpressions"];
                if expressions.is_null() {
                    *expressions = json!([]);
                }
                expressions
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"key": "vap-file", "operator": "In", "values": [stem]}));
            }
        }
        let text = documents.iter().map(|d| serde_json::to_string(d).unwrap()).collect::<Vec<_>>().join("\n---\n");
        Self { name, stem, text }
    }

    /// A namespace of this file on `side` (`api` or `egate`).
    fn namespace(&self, side: &str) -> Namespace {
        Namespace::new(&format!("e2e-vap-{side}"), &[("team", "shop"), ("vap-file", &self.stem), ("vap-side", side)])
    }
}

/// Runs the sequence in each namespace, a few at a time.
fn judge_all(namespaces: &[Namespace]) -> Vec<Vec<(String, String)>> {
    let mut results: Vec<Vec<(String, String)>> = vec![Vec::new(); namespaces.len()];
    std::thread::scope(|scope| {
        for (chunk, out) in namespaces.chunks(4).zip(results.chunks_mut(4)) {
            let handles: Vec<_> = chunk.iter().map(|ns| scope.spawn(move || judge_sequence(ns))).collect();
            for (handle, slot) in handles.into_iter().zip(out) {
                *slot = handle.join().expect("a sequence ran");
            }
        }
    });
    results
}

/// The API server judges every file's sequence with all the files installed.
fn api_server_judges(files: &[CorpusFile]) -> Vec<Vec<(String, String)>> {
    let c = cluster();
    let namespaces: Vec<Namespace> = files.iter().map(|f| f.namespace("api")).collect();
    let canary_ns = Namespace::new("e2e-vap-canary", &[]);
    let _guard = Installed {
        files: files.iter().map(|f| f.text.clone()).zip(namespaces.iter().map(|n| n.name.clone())).collect(),
    };
    for (file, ns) in files.iter().zip(&namespaces) {
        // Params go to the namespace of the requests, as paramRef reads them.
        let list = json!({"apiVersion": "v1", "kind": "List", "items": objects(&file.text)});
        let args =
            ["apply", "--server-side", "--force-conflicts", "--field-manager=egate-e2e", "-n", &ns.name, "-f", "-"];
        let run = c.kubectl_with(&c.kubectl_bin(), "admin", &args, Some(&list.to_string()));
        assert!(run.ok, "the API server refused {}:\n{}", file.name, run.stderr);
    }
    c.apply(&canary(&canary_ns));
    c.apply(&canary_params(&canary_ns));
    poll("the API server to take the policies in", || canaries(&canary_ns) == (true, true));
    let results = judge_all(&namespaces);
    drop(_guard);
    poll("the API server to drop the policies", || canaries(&canary_ns) == (false, false));
    results
}

/// Removes the files' policies and the canary from the API server when
/// dropped, pass or fail: each file's text with the namespace of its params.
struct Installed {
    files: Vec<(String, String)>,
}

impl Drop for Installed {
    fn drop(&mut self) {
        let c = cluster();
        for (text, namespace) in &self.files {
            let list = json!({"apiVersion": "v1", "kind": "List", "items": objects(text)});
            let args = ["delete", "--ignore-not-found", "--wait=false", "-n", namespace, "-f", "-"];
            c.kubectl_with(&c.kubectl_bin(), "admin", &args, Some(&list.to_string()));
        }
        let kinds = "validatingadmissionpolicy,validatingadmissionpolicybinding,mutatingadmissionpolicy,mutatingadmissionpolicybinding";
        c.kubectl("admin", &["delete", kinds, "e2e-canary", "--ignore-not-found"]);
    }
}

/// One `egate serve` judges every file's sequence, with all the files in
/// one set, as a webhook for every resource of the egate namespaces.
fn egate_judges(files: &[CorpusFile]) -> Vec<Vec<(String, String)>> {
    let namespaces: Vec<Namespace> = files.iter().map(|f| f.namespace("egate")).collect();
    let text: Vec<String> = files.iter().zip(&namespaces).map(|(f, ns)| offline_text(f, ns)).collect();
    let egate = Egate::start(&text.join("\n---\n"));
    register_for_everything(&egate);
    for ns in &namespaces {
        await_both_webhooks(&egate, ns);
    }
    judge_all(&namespaces)
}

/// A file as egate reads it for `ns`: its params in that namespace (as
/// `kubectl apply -n` puts them), and the Namespace object, whose labels a
/// namespaceSelector reads.
fn offline_text(file: &CorpusFile, ns: &Namespace) -> String {
    let mut documents = Vec::new();
    for mut object in egate_engine::yaml::documents::<Value>(&file.text).unwrap() {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        if !api_version.starts_with("admissionregistration.k8s.io/") && object["metadata"]["namespace"].is_null() {
            object["metadata"]["namespace"] = json!(ns.name);
        }
        documents.push(object);
    }
    let labels = json!({"team": "shop", "vap-file": file.stem, "vap-side": "egate"});
    documents.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns.name, "labels": labels}}));
    documents.iter().map(|d| serde_json::to_string(d).unwrap()).collect::<Vec<_>>().join("\n---\n")
}

/// Webhook configurations named `egate` (so dropping the server removes
/// them) that send egate every request in the namespaces labelled
/// `vap-side: egate`.
fn register_for_everything(egate: &Egate) {
    let ca = std::fs::read_to_string(cluster().path("EGATE_CA_CERT")).unwrap();
    let bundle = base64::engine::general_purpose::STANDARD.encode(ca);
    let webhook = |name: &str, path: &str| {
        json!({
            "name": name, "admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": "Fail",
            "timeoutSeconds": 10,
            "clientConfig": {"url": format!("https://127.0.0.1:{}{path}", egate.port), "caBundle": bundle},
            "rules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*/*"]}],
            "namespaceSelector": {"matchLabels": {"vap-side": "egate"}}
        })
    };
    let mut mutating = webhook("all.mutate.egate.dev", "/mutate");
    mutating["reinvocationPolicy"] = json!("IfNeeded");
    cluster().apply(&json!([
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
         "metadata": {"name": "egate"}, "webhooks": [mutating]},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
         "metadata": {"name": "egate"}, "webhooks": [webhook("all.validate.egate.dev", "/validate")]}
    ]));
}

/// Waits until a request in `ns` reaches egate through both webhook
/// configurations: the API server takes each in on its own.
fn await_both_webhooks(egate: &Egate, ns: &Namespace) {
    static PROBE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let c = cluster();
    poll("the API server to call egate through both webhooks", || {
        let name = format!("probe-{}", PROBE.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns.name}});
        c.kubectl_with(
            &c.kubectl_bin(),
            "admin",
            &["create", "--dry-run=server", "-f", "-"],
            Some(&config.to_string()),
        );
        let log = egate.log();
        let reached = |endpoint: &str| {
            log.lines().any(|l| {
                l.contains(&format!("\"name\":\"{name}\"")) && l.contains(&format!("\"endpoint\":\"{endpoint}\""))
            })
        };
        reached("mutate") && reached("validate")
    });
}

#[test]
#[ignore = "needs a control plane: make e2e"]
fn kubernetes_admission_policies_agree_with_the_api_server() {
    let mut agree = 0;
    let mut differences: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut explained_count = 0;
    let files: Vec<CorpusFile> = corpus().iter().map(|p| CorpusFile::read(p)).collect();
    let api = api_server_judges(&files);
    let egate = egate_judges(&files);
    for ((file, api), egate) in files.iter().zip(&api).zip(&egate) {
        let name = &file.name;
        for ((step, expected), (_, got)) in api.iter().zip(egate) {
            if std::env::var_os("EGATE_E2E_VERBOSE").is_some() {
                eprintln!("{name}: {step}\n  API server: {expected}\n  egate:      {got}");
            }
            if expected == got {
                agree += 1;
            } else if let Some(why) = explained(name, step) {
                explained_count += 1;
                eprintln!("{name}: {step}: differs as documented ({why})");
            } else {
                differences.insert(format!("{name}: {step}"), (expected.clone(), got.clone()));
            }
        }
    }
    let total = agree + explained_count + differences.len();
    eprintln!(
        "admission policies: {agree}/{total} outcomes agree with the API server over {} files ({explained_count} documented differences)",
        files.len()
    );
    let report: Vec<String> = differences
        .iter()
        .map(|(what, (api, egate))| format!("{what}\n  API server: {api}\n  egate:      {egate}"))
        .collect();
    assert!(differences.is_empty(), "{} outcomes differ:\n{}", differences.len(), report.join("\n"));
}
