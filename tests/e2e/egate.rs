//! `egate serve` as a process on loopback, with a certificate for
//! 127.0.0.1 issued by the control plane's CA, registered with the API
//! server through the webhook configurations of `deploy/webhooks.yaml`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::child::die_with_the_test;
use crate::cluster::{BOUND, Namespace, cluster, poll, repo};

/// A running `egate serve`; stopped, and its webhook configurations
/// removed, when dropped.
pub struct Egate {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    log: Arc<Mutex<Vec<String>>>,
    /// `--policies-from cluster`, as the service account egate-system/egate.
    from_cluster: bool,
    /// `--grants-from cluster` with `--policies`, as that service account.
    grants_from_cluster: bool,
    /// `--params-from cluster` with `--policies`, as that service account.
    params_from_cluster: bool,
}

impl Egate {
    /// Starts `egate serve --policies` with the manifests in `policies`
    /// (YAML text; `builtin:` modules), on a free port.
    pub fn start(policies: &str) -> Self {
        Self::launch(Some(policies), false, |_| {})
    }

    /// Starts `egate serve --policies` with `policies` and `--params-from
    /// cluster`, as the service account egate-system/egate, so it has only
    /// the RBAC of `deploy/params/rbac.yaml`.
    pub fn with_params_from_cluster(policies: &str) -> Self {
        Self::launch(Some(policies), true, |egate| egate.params_from_cluster = true)
    }

    /// Starts `egate serve --policies` with `policies` and `--grants-from
    /// cluster` (a longest grant of 1h), as the service account
    /// egate-system/egate, so it has only the RBAC of `deploy/grants/rbac.yaml`.
    pub fn with_grants(policies: &str) -> Self {
        Self::launch(Some(policies), true, |egate| egate.grants_from_cluster = true)
    }

    /// Starts `egate serve --policies-from cluster`, with a kubeconfig whose
    /// current context is the service account egate-system/egate, so it
    /// has only the RBAC of `deploy/cluster-policies/rbac.yaml`.
    pub fn from_cluster() -> Self {
        Self::launch(None, true, |egate| egate.from_cluster = true)
    }

    /// Writes its directory (the policies, the certificate, and the service
    /// account's kubeconfig when `as_service_account`), sets its mode and
    /// starts it on a free port.
    fn launch(policies: Option<&str>, as_service_account: bool, mode: impl FnOnce(&mut Self)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        if let Some(policies) = policies {
            std::fs::write(dir.path().join("policies.yaml"), policies).unwrap();
        }
        let c = cluster();
        std::fs::copy(c.path("EGATE_WEBHOOK_CERT"), dir.path().join("tls.crt")).unwrap();
        std::fs::copy(c.path("EGATE_WEBHOOK_KEY"), dir.path().join("tls.key")).unwrap();
        if as_service_account {
            write_service_account_kubeconfig(dir.path());
        }
        let mut egate = Self {
            child: None,
            port: 0,
            dir,
            log: Arc::default(),
            from_cluster: false,
            grants_from_cluster: false,
            params_from_cluster: false,
        };
        mode(&mut egate);
        egate.spawn("127.0.0.1:0");
        egate
    }

    /// Starts it with `policies` and registers it, waiting until the API
    /// server calls it for `ns`: the opening of most scenarios.
    pub fn serving(policies: &str, ns: &Namespace) -> Self {
        let egate = Self::start(policies);
        egate.register(ns);
        egate
    }

    fn spawn(&mut self, addr: &str) {
        let dir = self.dir.path();
        let mut command = Command::new(env!("CARGO_BIN_EXE_egate"));
        command.args(["serve", "--addr", addr, "--watch-interval", "200ms"]);
        if self.from_cluster {
            // A short lease, so a handover is quick to see.
            command
                .args(["--policies-from", "cluster", "--lease-duration", "3s"])
                .env("KUBECONFIG", dir.join("kubeconfig"));
        } else {
            command.args(["--policies", "policies.yaml"]);
        }
        if self.grants_from_cluster {
            command
                .args(["--grants-from", "cluster", "--max-grant-duration", "1h"])
                .env("KUBECONFIG", dir.join("kubeconfig"));
        }
        if self.params_from_cluster {
            command.args(["--params-from", "cluster"]).env("KUBECONFIG", dir.join("kubeconfig"));
        }
        command
            .args(["--tls-cert", "tls.crt", "--tls-key", "tls.key", "--record", "record"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        die_with_the_test(&mut command);
        let mut child = command.spawn().expect("egate serve starts");
        let stderr = child.stderr.take().unwrap();
        let (addr_tx, addr_rx) = mpsc::channel();
        let log = self.log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str::<Value>(&line)
                    && event["message"] == "listening"
                {
                    let _ = addr_tx.send(event["addr"].as_str().unwrap().to_string());
                }
                log.lock().unwrap().push(line);
            }
        });
        self.child = Some(child);
        let addr =
            addr_rx.recv_timeout(BOUND).unwrap_or_else(|_| panic!("egate serve never listened:\n{}", self.log()));
        self.port = addr.rsplit(':').next().unwrap().parse().unwrap();
        poll("egate serve to be ready", || self.is_ready());
    }

    fn is_ready(&self) -> bool {
        let ca = cluster().var("EGATE_CA_CERT").to_string();
        let out = Command::new("curl")
            .args(["-fsS", "--cacert", &ca, &format!("https://127.0.0.1:{}/readyz", self.port)])
            .output()
            .expect("curl runs");
        out.status.success()
    }

    /// The directory egate runs in: `policies.yaml`, `tls.crt`, `tls.key`, `record/`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The AdmissionReviews received so far (`--record`), in order.
    pub fn recorded(&self) -> Vec<(PathBuf, Value)> {
        let Ok(entries) = std::fs::read_dir(self.dir().join("record")) else { return Vec::new() };
        let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        files
            .into_iter()
            .map(|path| {
                let review = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
                (path, review)
            })
            .collect()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// How many log lines carry `message`.
    pub fn count(&self, message: &str) -> usize {
        let needle = format!("\"message\":\"{message}");
        self.log.lock().unwrap().iter().filter(|line| line.contains(&needle)).count()
    }

    /// Registers the webhooks of `deploy/webhooks.yaml` as they are, but for
    /// `clientConfig`: this server's URL and the CA that issued its
    /// certificate. Then waits until the API server calls it.
    pub fn register(&self, ns: &Namespace) {
        self.register_with_ca(&std::fs::read_to_string(cluster().path("EGATE_CA_CERT")).unwrap());
        self.await_called(ns);
    }

    /// Registers the webhooks, trusting the CAs of `ca_bundle` (PEM).
    pub fn register_with_ca(&self, ca_bundle: &str) {
        let bundle = base64::engine::general_purpose::STANDARD.encode(ca_bundle);
        let text = std::fs::read_to_string(repo("deploy/webhooks.yaml")).unwrap();
        let mut configs = Vec::new();
        for mut config in egate_engine::yaml::documents::<Value>(&text).unwrap() {
            for webhook in config["webhooks"].as_array_mut().unwrap() {
                let path = webhook["clientConfig"]["service"]["path"].as_str().unwrap().to_string();
                webhook["clientConfig"] =
                    json!({"url": format!("https://127.0.0.1:{}{path}", self.port), "caBundle": bundle});
            }
            configs.push(config);
        }
        cluster().apply(&Value::Array(configs));
    }

    /// Waits until a pod CREATE in `ns` reaches this server: the API
    /// server's webhook cache has taken the registration in.
    pub fn await_called(&self, ns: &Namespace) {
        static PROBE: AtomicU32 = AtomicU32::new(0);
        poll("the API server to call egate", || {
            let name = format!("probe-{}", PROBE.fetch_add(1, Ordering::Relaxed));
            let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns.name},
                             "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}});
            cluster().kubectl_with(
                &cluster().kubectl_bin(),
                "admin",
                &["create", "--dry-run=server", "-f", "-"],
                Some(&pod.to_string()),
            );
            self.log.lock().unwrap().iter().any(|line| line.contains(&format!("\"name\":\"{name}\"")))
        });
    }

    /// The identity it holds the scan Lease with (host name and pid).
    pub fn lease_identity(&self) -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        format!("{}-{}", host.trim(), self.child.as_ref().expect("egate serve runs").id())
    }

    /// Stops the server (SIGKILL: as if it crashed), leaving the webhooks registered.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let addr = format!("127.0.0.1:{}", self.port);
        self.spawn(&addr);
    }
}

impl Drop for Egate {
    fn drop(&mut self) {
        self.kill();
        cluster().kubectl(
            "admin",
            &["delete", "mutatingwebhookconfiguration,validatingwebhookconfiguration", "egate", "--ignore-not-found"],
        );
    }
}

/// `DIR/kubeconfig`: the control plane's, with the service account
/// egate-system/egate as its current context.
fn write_service_account_kubeconfig(dir: &Path) {
    let kubeconfig = std::fs::read_to_string(cluster().path("KUBECONFIG")).unwrap();
    let as_egate = kubeconfig.replace("current-context: admin", "current-context: egate");
    assert_ne!(kubeconfig, as_egate, "the control plane's kubeconfig has an egate context");
    std::fs::write(dir.join("kubeconfig"), as_egate).unwrap();
}

/// The built-in default set (what `egate serve` serves without --policies).
pub fn default_set() -> String {
    std::fs::read_to_string(repo("policies/default.yaml")).unwrap()
}
