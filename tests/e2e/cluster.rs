//! The control plane `scripts/control-plane.sh up` started: its
//! kubeconfig, users and audit log, kubectl, and a namespace per scenario.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Overall bound of every wait.
pub const BOUND: Duration = Duration::from_secs(120);

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Polls `done` until it holds; panics naming `what` after [`BOUND`].
pub fn poll(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < BOUND, "gave up waiting for {what}");
        thread::sleep(Duration::from_millis(100));
    }
}

/// What `scripts/control-plane.sh env` prints, read once.
pub struct Cluster {
    env: HashMap<String, String>,
}

pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let out = Command::new(repo("scripts/control-plane.sh")).arg("env").output().expect("bash runs");
        assert!(
            out.status.success(),
            "no control plane is up: run `scripts/control-plane.sh up` first, or `make e2e`\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Cluster { env }
    })
}

/// The result of one kubectl run.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The lines of stderr that start with `prefix` (`Warning:`, `Error from server`).
    pub fn lines(&self, prefix: &str) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.starts_with(prefix)).collect()
    }
}

impl Cluster {
    pub fn var(&self, key: &str) -> &str {
        self.env.get(key).unwrap_or_else(|| panic!("scripts/control-plane.sh env printed no {key}"))
    }

    pub fn path(&self, key: &str) -> PathBuf {
        PathBuf::from(self.var(key))
    }

    /// The kubectl of the pinned release.
    pub fn kubectl_bin(&self) -> PathBuf {
        self.path("EGATE_KUBECTL")
    }

    /// Runs `kubectl` as `user` (a context of the kubeconfig).
    pub fn kubectl(&self, user: &str, args: &[&str]) -> Run {
        self.kubectl_with(&self.kubectl_bin(), user, args, None)
    }

    pub fn kubectl_with(&self, bin: &Path, user: &str, args: &[&str], stdin: Option<&str>) -> Run {
        let mut child = Command::new(bin)
            .env("KUBECONFIG", self.var("KUBECONFIG"))
            .args(["--context", user])
            .args(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        if let Some(text) = stdin {
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs kubectl as admin and insists that it succeeds.
    pub fn admin(&self, args: &[&str]) -> String {
        let run = self.kubectl("admin", args);
        assert!(run.ok, "kubectl {} failed:\n{}", args.join(" "), run.stderr);
        run.stdout
    }

    /// `kubectl apply --server-side` of `objects` as admin.
    pub fn apply(&self, objects: &Value) {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
        let run = self.kubectl_with(
            &self.kubectl_bin(),
            "admin",
            &["apply", "--server-side", "--force-conflicts", "--field-manager=egate-e2e", "-f", "-"],
            Some(&list.to_string()),
        );
        assert!(run.ok, "kubectl apply --server-side failed:\n{}", run.stderr);
    }

    /// An object, as JSON.
    pub fn get(&self, args: &[&str]) -> Value {
        let out = self.admin(&[args, &["-o", "json"]].concat());
        serde_json::from_str(&out).unwrap()
    }
}

/// A namespace of one scenario, with a default service account (the
/// ServiceAccount admission plugin needs it, and no controller manager makes
/// it) and RBAC that lets groups `sre` (alice) and `dev` (bob) create pods
/// and add ephemeral containers. Deleted, with its pods, when dropped.
pub struct Namespace {
    pub name: String,
}

impl Namespace {
    pub fn new(prefix: &str, labels: &[(&str, &str)]) -> Self {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!("{prefix}-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        let labels: serde_json::Map<String, Value> = labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        let ns = name.as_str();
        cluster().apply(&json!([
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}},
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": "debugger", "namespace": ns},
             "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "create", "delete"]},
                {"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["get", "patch", "update"]},
                {"apiGroups": [""], "resources": ["pods/attach", "pods/log"], "verbs": ["get", "create"]}
             ]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "debuggers", "namespace": ns},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "debugger"},
             "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "sre"},
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "dev"}
             ]}
        ]));
        Self { name }
    }

    /// Creates a pod as admin from `pod` (its metadata.namespace is set here).
    pub fn create_pod(&self, pod: &Value) {
        let mut pod = pod.clone();
        pod["metadata"]["namespace"] = json!(self.name);
        cluster().apply(&json!([pod]));
    }

    /// The stored pod.
    pub fn pod(&self, name: &str) -> Value {
        cluster().get(&["-n", &self.name, "get", "pod", name])
    }

    /// `kubectl debug -it --attach=false POD --image=busybox:1.36 -c
    /// CONTAINER EXTRA...` as `user`. `--attach=false`: attaching needs a
    /// kubelet, and the admission request is the same as `-it`'s.
    pub fn debug(&self, user: &str, pod: &str, container: &str, extra: &[&str]) -> Run {
        self.debug_with(&cluster().kubectl_bin(), user, pod, container, extra)
    }

    /// [`Namespace::debug`] with the kubectl at `bin`.
    pub fn debug_with(&self, bin: &Path, user: &str, pod: &str, container: &str, extra: &[&str]) -> Run {
        let base =
            ["-n", self.name.as_str(), "debug", pod, "--image=busybox:1.36", "-it", "--attach=false", "-c", container];
        cluster().kubectl_with(bin, user, &[&base[..], extra].concat(), None)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Pods never scheduled are deleted at once. The namespace itself
        // stays Terminating (no controller manager finalizes it) until the
        // control plane goes down; its name is never reused.
        let c = cluster();
        c.kubectl("admin", &["-n", &self.name, "delete", "pods", "--all", "--wait=false", "--grace-period=0"]);
        c.kubectl("admin", &["delete", "namespace", &self.name, "--wait=false"]);
    }
}

/// A pod like a distroless workload: one container `app`, no shell, and a
/// securityContext the restricted level accepts.
pub fn distroless_pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "app", "image": "gcr.io/distroless/static-debian12:nonroot",
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}
            }]
        }
    })
}
