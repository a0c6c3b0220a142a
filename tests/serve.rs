//! `egate serve` end to end: the real binary on a free loopback port, over
//! real TLS (a self-signed certificate made here with rcgen), spoken to by
//! a real HTTPS client (reqwest with rustls), HTTP/1.1 and HTTP/2. No
//! assertion is timed: whatever takes time is polled under a generous
//! overall bound.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::blocking::{Body, Client};
use reqwest::{StatusCode, Version};
use serde_json::{Value, json};

/// The name the test certificates are for; the client resolves it to the server.
const HOST: &str = "egate.test";
/// Overall bound of every wait (start-up, reloads, rotation, shutdown).
const BOUND: Duration = Duration::from_secs(120);

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A self-signed certificate for [`HOST`], as PEM.
struct Cert {
    cert_pem: String,
    key_pem: String,
}

impl Cert {
    fn new() -> Self {
        let certified = rcgen::generate_simple_self_signed(vec![HOST.to_string()]).expect("rcgen makes a certificate");
        Self { cert_pem: certified.cert.pem(), key_pem: certified.signing_key.serialize_pem() }
    }

    /// Writes the key, then the certificate, in place (as a careless rotation would).
    fn write(&self, dir: &Path) {
        std::fs::write(dir.join("tls.key"), &self.key_pem).unwrap();
        std::fs::write(dir.join("tls.crt"), &self.cert_pem).unwrap();
    }
}

/// A running `egate serve`, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    tls: bool,
    /// The working directory: the certificate lives there.
    dir: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `egate serve` with TLS from `dir/tls.crt` and `dir/tls.key`,
    /// in `dir` as working directory, and waits until it is ready.
    fn start(dir: &Path, extra: &[&str]) -> Self {
        let cert = dir.join("tls.crt");
        let key = dir.join("tls.key");
        let args = ["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()];
        Self::start_with(dir, &[&args[..], extra].concat(), true)
    }

    fn start_with(dir: &Path, args: &[&str], tls: bool) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_egate"))
            .args(["serve", "--addr", "127.0.0.1:0", "--watch-interval", "200ms"])
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("egate serve starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        thread::spawn({
            let log = log.clone();
            move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Ok(event) = serde_json::from_str::<Value>(&line)
                        && event["message"] == "listening"
                    {
                        let _ = addr_tx.send(event["addr"].as_str().unwrap().parse::<SocketAddr>().unwrap());
                    }
                    log.lock().unwrap().push(line);
                }
            }
        });
        let addr = addr_rx
            .recv_timeout(BOUND)
            .unwrap_or_else(|_| panic!("egate serve never listened: {:?}", log.lock().unwrap()));
        let server = Self { child, addr, tls, dir: dir.to_path_buf(), log };
        let client = server.client(&[]);
        server
            .poll("/readyz to say ready", || client.get(server.url("/readyz")).send().is_ok_and(|r| r.status() == 200));
        server
    }

    fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{HOST}:{}{path}", self.addr.port())
    }

    /// An HTTP/1.1 client trusting only `trust` (the server's own
    /// certificate, read from its directory, when empty).
    fn client(&self, trust: &[&str]) -> Client {
        self.client_with(trust, false)
    }

    fn client_with(&self, trust: &[&str], http2: bool) -> Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = Client::builder().resolve(HOST, self.addr).timeout(BOUND).tls_built_in_root_certs(false);
        let own;
        let trust = if trust.is_empty() && self.tls {
            own = std::fs::read_to_string(self.dir.join("tls.crt")).unwrap();
            vec![own.as_str()]
        } else {
            trust.to_vec()
        };
        for pem in trust {
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
        }
        builder = if http2 { builder.http2_prior_knowledge() } else { builder.http1_only() };
        builder.build().unwrap()
    }

    /// Polls `done` until it holds, panicking with the server's log after [`BOUND`].
    fn poll(&self, what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < BOUND, "gave up waiting for {what}; server log:\n{}", self.log());
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The log lines that are JSON events with this message.
    fn events(&self, message: &str) -> Vec<Value> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|e| e["message"] == message)
            .collect()
    }

    fn metrics(&self, client: &Client) -> String {
        client.get(self.url("/metrics")).send().unwrap().text().unwrap()
    }

    /// Sends a signal with kill(1).
    fn kill(&self, signal: &str) {
        let status = Command::new("kill").args([format!("-{signal}"), self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < BOUND, "egate serve did not exit; log:\n{}", self.log());
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of a metric line that starts with `series` (name and labels), 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0.0)
}

fn request(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(repo(&format!("examples/requests/{name}"))).unwrap()).unwrap()
}

/// `debug-allowed.json` without `--target`, which the default set allows.
fn allowed_request() -> Value {
    let mut review = request("debug-allowed.json");
    let containers = review["request"]["object"]["spec"]["ephemeralContainers"].as_array_mut().unwrap();
    containers.last_mut().unwrap().as_object_mut().unwrap().remove("targetContainerName");
    review
}

/// POSTs an AdmissionReview; the status and the JSON body.
fn post(client: &Client, server: &Server, endpoint: &str, review: &Value) -> (StatusCode, Value) {
    let response = client.post(server.url(endpoint)).json(review).send().unwrap();
    let status = response.status();
    (status, response.json().unwrap())
}

/// The `response` of an AdmissionReview answer, checked to echo the uid.
fn admission(sent: &Value, answer: &(StatusCode, Value)) -> Value {
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    assert_eq!(answer.1["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer.1["kind"], "AdmissionReview");
    assert_eq!(answer.1["response"]["uid"], sent["request"]["uid"]);
    answer.1["response"].clone()
}

fn temp_dir_with_cert() -> (tempfile::TempDir, Cert) {
    let dir = tempfile::tempdir().unwrap();
    let cert = Cert::new();
    cert.write(dir.path());
    (dir, cert)
}

#[test]
fn the_builtin_default_set_allows_denies_and_mutates_over_tls() {
    // The working directory holds nothing but the certificate: the default
    // set and its modules come from the binary.
    let (dir, _) = temp_dir_with_cert();
    let server = Server::start(dir.path(), &[]);
    let client = server.client(&[]);

    assert_eq!(client.get(server.url("/healthz")).send().unwrap().status(), 200);

    let allowed = allowed_request();
    let response = admission(&allowed, &post(&client, &server, "/validate", &allowed));
    assert_eq!(response["allowed"], true, "{response}");
    assert!(
        response["auditAnnotations"]["audit.debug-debugger-7vq2w"]
            .as_str()
            .unwrap()
            .contains("user=alice@acme.example")
    );

    let privileged = request("debug-privileged.json");
    let response = admission(&privileged, &post(&client, &server, "/validate", &privileged));
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 403);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.lines().any(|l| l.starts_with("privileged: ephemeral container \"debugger-9hx4k\"")), "{message}");

    // /mutate runs only `harden`: the untagged image is validate's business.
    let latest = request("debug-latest-image.json");
    let response = admission(&latest, &post(&client, &server, "/mutate", &latest));
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(response["patchType"], "JSONPatch");
    let patch = base64::engine::general_purpose::STANDARD.decode(response["patch"].as_str().unwrap()).unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch).expect("the patch is RFC 6902 JSON Patch");
    let mut pod = latest["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch).expect("the patch applies to the object");
    let hardened = &pod["spec"]["ephemeralContainers"].as_array().unwrap().last().unwrap()["securityContext"];
    assert_eq!(hardened["allowPrivilegeEscalation"], false, "{hardened}");
    assert_eq!(hardened["capabilities"]["drop"], json!(["ALL"]), "{hardened}");
    assert_eq!(hardened["seccompProfile"]["type"], "RuntimeDefault", "{hardened}");

    // HTTP/2, negotiated by ALPN.
    let h2 = server.client_with(&[], true);
    let answer = h2.post(server.url("/validate")).json(&allowed).send().unwrap();
    assert_eq!(answer.version(), Version::HTTP_2);
    assert_eq!(answer.json::<Value>().unwrap()["response"]["allowed"], true);

    let metrics = server.metrics(&client);
    assert_eq!(
        metric(&metrics, r#"egate_admission_requests_total{endpoint="validate",decision="allowed"}"#),
        2.0,
        "{metrics}"
    );
    assert_eq!(metric(&metrics, r#"egate_admission_requests_total{endpoint="validate",decision="denied"}"#), 1.0);
    assert_eq!(metric(&metrics, r#"egate_admission_requests_total{endpoint="mutate",decision="mutated"}"#), 1.0);
    assert_eq!(metric(&metrics, r#"egate_review_duration_seconds_count{endpoint="validate"}"#), 3.0);
    assert_eq!(metric(&metrics, "egate_policies_loaded"), 10.0);
    // Per-policy latency: privileged judged the three /validate reviews.
    assert_eq!(
        metric(&metrics, r#"egate_policy_evaluation_duration_seconds_count{policy="privileged"}"#),
        3.0,
        "{metrics}"
    );

    // One structured log line per decision.
    server.poll("the decision log line", || {
        server.events("decision").iter().any(|e| {
            e["decision"] == "denied"
                && e["uid"] == privileged["request"]["uid"]
                && e["namespace"] == "shop"
                && e["name"] == "web-7d4b9c6f8-x2x9k"
                && e["resource"] == "pods/ephemeralcontainers"
                && e["user"] == "bob@acme.example"
                && e["denied_by"].as_str().unwrap().split(',').any(|p| p == "privileged")
                && e["latency_ms"].is_number()
        })
    });
}

#[test]
fn malformed_and_oversized_requests_get_a_json_error() {
    let (dir, _) = temp_dir_with_cert();
    let server = Server::start(dir.path(), &[]);
    let client = server.client(&[]);
    let error = |response: reqwest::blocking::Response, code: u16| {
        assert_eq!(response.status(), code);
        let body: Value = response.json().expect("the error body is JSON");
        assert_eq!(body["kind"], "Status");
        assert_eq!(body["code"], code);
        body["message"].as_str().unwrap().to_string()
    };

    let message = error(client.post(server.url("/validate")).body("{not json").send().unwrap(), 400);
    assert!(message.contains("not valid JSON"), "{message}");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
    let message = error(client.post(server.url("/mutate")).json(&pod).send().unwrap(), 400);
    assert!(message.contains("expected apiVersion admission.k8s.io/v1 and kind AdmissionReview"), "{message}");

    // 3 MiB and a byte, with a Content-Length, then streamed (chunked).
    let oversized = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","pad":"{}"}}}}"#,
        "x".repeat(3 << 20)
    );
    let message = error(client.post(server.url("/validate")).body(oversized.clone()).send().unwrap(), 413);
    assert!(message.contains("larger than 3145728 bytes"), "{message}");
    let streamed = Body::new(std::io::Cursor::new(oversized.into_bytes()));
    error(client.post(server.url("/validate")).body(streamed).send().unwrap(), 413);

    // The server is none the worse.
    let allowed = allowed_request();
    assert_eq!(admission(&allowed, &post(&client, &server, "/validate", &allowed))["allowed"], true);
    let metrics = server.metrics(&client);
    assert_eq!(
        metric(&metrics, r#"egate_admission_requests_total{endpoint="validate",decision="bad_request"}"#),
        1.0,
        "{metrics}"
    );
    assert_eq!(metric(&metrics, r#"egate_admission_requests_total{endpoint="mutate",decision="bad_request"}"#), 1.0);
    assert_eq!(metric(&metrics, r#"egate_admission_requests_total{endpoint="validate",decision="too_large"}"#), 2.0);
}

const IMAGES_V1: &str = r#"
apiVersion: egate.dev/v1
kind: ClusterPolicy
metadata: {name: no-privileged-debug}
spec:
  match: {resources: [pods/ephemeralcontainers], operations: [UPDATE]}
  module: builtin:privileged
---
apiVersion: egate.dev/v1
kind: ClusterPolicy
metadata: {name: debug-images}
spec:
  match: {resources: [pods/ephemeralcontainers], operations: [UPDATE]}
  module: builtin:images
  settings: {allowedImages: ["docker.io/library/busybox:*"]}
"#;

#[test]
fn a_policy_file_rewritten_under_load_is_reloaded_without_a_failed_request() {
    let (dir, _) = temp_dir_with_cert();
    let policy = dir.path().join("policies.yaml");
    std::fs::write(&policy, IMAGES_V1).unwrap();
    let server = Arc::new(Server::start(dir.path(), &["--policies", policy.to_str().unwrap()]));
    let allowed = request("debug-allowed.json");

    // Load: three clients, each on its keep-alive connection, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let load: Vec<_> = (0..3)
        .map(|_| {
            let (server, stop, sent, failures, review) =
                (server.clone(), stop.clone(), sent.clone(), failures.clone(), allowed.clone());
            thread::spawn(move || {
                let client = server.client(&[]);
                while !stop.load(Ordering::Relaxed) {
                    let outcome = client.post(server.url("/validate")).json(&review).send();
                    let failure = match outcome {
                        Err(error) => Some(format!("transport: {error}")),
                        Ok(r) if r.status() != 200 => Some(format!("status {}", r.status())),
                        Ok(r) => {
                            let response = r.json::<Value>().unwrap()["response"].clone();
                            let message = response["status"]["message"].as_str().unwrap_or_default().to_string();
                            // Allowed by the old set, or denied by the new one; nothing else.
                            let consistent = response["allowed"] == true || message.starts_with("debug-images: ");
                            (!consistent).then(|| format!("unexpected response {response}"))
                        }
                    };
                    if let Some(failure) = failure {
                        failures.lock().unwrap().push(failure);
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let client = server.client(&[]);
    let reloads = |result: &str| {
        metric(&server.metrics(&client), &format!(r#"egate_reloads_total{{what="policies",result="{result}"}}"#))
    };
    server.poll("load to flow", || sent.load(Ordering::Relaxed) >= 30);

    // A broken set is refused; the old one keeps serving.
    std::fs::write(&policy, IMAGES_V1.replace("builtin:images", "builtin:no-such-policy")).unwrap();
    server.poll("the broken set to be refused", || reloads("failure") >= 1.0);
    let response = admission(&allowed, &post(&client, &server, "/validate", &allowed));
    assert_eq!(response["allowed"], true, "the old set still serves: {response}");
    assert!(server.log().contains("policy set refused: the previous set keeps serving"));
    assert!(server.log().contains("there is no built-in policy \\\"no-such-policy\\\""), "{}", server.log());

    // A good set takes over: busybox is no longer allowed.
    let before = sent.load(Ordering::Relaxed);
    std::fs::write(&policy, IMAGES_V1.replace("docker.io/library/busybox:*", "ghcr.io/acme/*")).unwrap();
    server.poll("the new set to deny busybox", || {
        let response = admission(&allowed, &post(&client, &server, "/validate", &allowed));
        response["allowed"] == false
    });
    server.poll("more load after the swap", || sent.load(Ordering::Relaxed) >= before + 30);

    // SIGHUP reloads too.
    let successes = reloads("success");
    server.kill("HUP");
    server.poll("the SIGHUP reload", || reloads("success") > successes);

    stop.store(true, Ordering::Relaxed);
    for thread in load {
        thread.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {:?}",
        failures.len(),
        sent.load(Ordering::Relaxed),
        &failures[..failures.len().min(5)]
    );
}

#[test]
fn a_rotated_certificate_is_served_without_restart_or_dropped_connections() {
    let (dir, first) = temp_dir_with_cert();
    let second = Cert::new();
    let server = Server::start(dir.path(), &[]);
    let allowed = allowed_request();

    let trusts_first = server.client(&[&first.cert_pem]);
    let trusts_second = server.client(&[&second.cert_pem]);
    assert_eq!(admission(&allowed, &post(&trusts_first, &server, "/validate", &allowed))["allowed"], true);
    assert!(trusts_second.get(server.url("/healthz")).send().is_err(), "the second certificate is not served yet");

    second.write(dir.path());
    server.poll("the second certificate to be served", || trusts_second.get(server.url("/healthz")).send().is_ok());
    // New connections get the new certificate...
    let fresh = server.client(&[&first.cert_pem]);
    assert!(fresh.get(server.url("/healthz")).send().is_err(), "the first certificate is no longer served");
    // ...while the connection opened with the first one is still up (a new
    // connection from this client would fail: it trusts only the first).
    assert_eq!(admission(&allowed, &post(&trusts_first, &server, "/validate", &allowed))["allowed"], true);

    let metrics = server.metrics(&trusts_second);
    assert!(metric(&metrics, r#"egate_reloads_total{what="certificate",result="success"}"#) >= 1.0, "{metrics}");
}

/// A request body that arrives in two parts: the second when the test says.
struct HeldBody {
    parts: mpsc::Receiver<Vec<u8>>,
    current: std::io::Cursor<Vec<u8>>,
}

impl Read for HeldBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.current.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            match self.parts.recv() {
                Ok(part) => self.current = std::io::Cursor::new(part),
                Err(_) => return Ok(0),
            }
        }
    }
}

#[test]
fn sigterm_lets_the_requests_in_flight_finish_then_exits_0() {
    let (dir, _) = temp_dir_with_cert();
    let mut server = Server::start(dir.path(), &["--request-timeout", "120s"]);
    let client = server.client(&[]);
    let allowed = serde_json::to_vec(&allowed_request()).unwrap();

    // Four requests whose bodies stop half-way: in flight until released.
    let (first_half, second_half) = allowed.split_at(allowed.len() / 2);
    let held: Vec<_> = (0..4)
        .map(|_| {
            let (tx, rx) = mpsc::channel();
            tx.send(first_half.to_vec()).unwrap();
            let body = HeldBody { parts: rx, current: Default::default() };
            let (client, url) = (server.client(&[]), server.url("/validate"));
            let answer = thread::spawn(move || {
                let response = client.post(url).body(Body::new(body)).send().map_err(|e| e.to_string())?;
                let status = response.status();
                let body = response.json::<Value>().map_err(|e| e.to_string())?;
                Ok::<_, String>((status, body))
            });
            (tx, answer)
        })
        .collect();
    let in_flight = || metric(&server.metrics(&client), "egate_admission_requests_in_flight");
    server.poll("four requests in flight", || in_flight() >= 4.0);

    // Meanwhile, ordinary traffic. Once SIGTERM is sent, new connections
    // may be refused, but any answer must be a good one.
    let terminating = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let traffic = {
        let (client, url, review, terminating, answered) =
            (server.client(&[]), server.url("/validate"), allowed_request(), terminating.clone(), answered.clone());
        thread::spawn(move || {
            loop {
                let signalled = terminating.load(Ordering::SeqCst);
                match client.post(&url).json(&review).send() {
                    Ok(r) => {
                        assert_eq!(r.status(), 200);
                        assert_eq!(r.json::<Value>().unwrap()["response"]["allowed"], true);
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => {
                        assert!(signalled || terminating.load(Ordering::SeqCst), "failed before SIGTERM: {error}");
                        if signalled {
                            return; // the server is gone
                        }
                    }
                }
            }
        })
    };
    server.poll("traffic to flow", || answered.load(Ordering::Relaxed) >= 10);

    terminating.store(true, Ordering::SeqCst);
    server.kill("TERM");
    // Once it stops accepting, the server is draining.
    let fresh = server.client(&[]);
    server.poll("the listener to close", || fresh.get(server.url("/healthz")).send().is_err());
    assert!(server.child.try_wait().unwrap().is_none(), "egate exited with requests in flight");

    for (tx, answer) in held {
        tx.send(second_half.to_vec()).unwrap();
        drop(tx);
        let (status, body) = answer.join().unwrap().expect("a request in flight at SIGTERM got its answer");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["response"]["allowed"], true, "{body}");
    }
    traffic.join().unwrap();
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
    assert_eq!(server.events("drained: every request in flight was answered; exiting").len(), 1, "{}", server.log());
}

#[test]
fn insecure_http_serves_plain_http_and_says_so_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--insecure-http"], false);
    let client = server.client(&[]);
    let allowed = allowed_request();
    assert_eq!(admission(&allowed, &post(&client, &server, "/validate", &allowed))["allowed"], true);
    let warning = server
        .log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["level"] == "WARN");
    assert!(
        warning.is_some_and(|w| w["message"].as_str().unwrap().contains("PLAIN HTTP WITHOUT TLS")),
        "{}",
        server.log()
    );
}

#[test]
fn serve_without_a_certificate_is_refused_with_a_hint() {
    let out = Command::new(env!("CARGO_BIN_EXE_egate")).args(["serve", "--addr", "127.0.0.1:0"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--tls-cert") && stderr.contains("--tls-key"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tls.crt"), Cert::new().cert_pem).unwrap();
    std::fs::write(dir.path().join("tls.key"), Cert::new().key_pem).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_egate"))
        .args(["serve", "--addr", "127.0.0.1:0", "--tls-cert", "tls.crt", "--tls-key", "tls.key"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TLS key tls.key cannot serve certificate tls.crt"), "{stderr}");
}

/// A guest (ABI v1) that accepts its settings and then spins until its
/// policy's `timeoutMs` stops it.
const SPINNER: &str = r#"(module
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"valid\":true}")
  (func (export "egate_abi_v1"))
  (func (export "egate_alloc") (param i32) (result i32) i32.const 1024)
  (func (export "egate_validate_settings") (param i32 i32) (result i64) i64.const 14)
  (func (export "egate_evaluate") (param i32 i32 i32 i32) (result i64) (loop (br 0)) unreachable)
)"#;

#[test]
fn a_request_past_its_deadline_gets_504_and_the_policy_failure_is_counted() {
    let (dir, _) = temp_dir_with_cert();
    std::fs::write(dir.path().join("spinner.wasm"), wat::parse_str(SPINNER).unwrap()).unwrap();
    std::fs::write(
        dir.path().join("slow.yaml"),
        "apiVersion: egate.dev/v1\nkind: ClusterPolicy\nmetadata: {name: spinner}\nspec:\n  \
         timeoutMs: 2000\n  match: {resources: [pods/ephemeralcontainers]}\n  module: spinner.wasm\n",
    )
    .unwrap();
    let server = Server::start(dir.path(), &["--policies", "slow.yaml", "--request-timeout", "10s"]);
    let client = server.client(&[]);
    let allowed = allowed_request();

    // The API server's ?timeout= shortens the deadline below the policy's 2 s.
    let answer = client.post(server.url("/validate?timeout=300ms")).json(&allowed).send().unwrap();
    assert_eq!(answer.status(), 504);
    let body: Value = answer.json().unwrap();
    assert_eq!((body["kind"].as_str(), body["reason"].as_str()), (Some("Status"), Some("Timeout")), "{body}");

    // Without it, the policy's own deadline ends the review: its failurePolicy (Fail) denies.
    let response = admission(&allowed, &post(&client, &server, "/validate", &allowed));
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.starts_with("spinner: the policy failed (module timed out after 2000 ms)"), "{message}");

    let metrics = server.metrics(&client);
    assert_eq!(
        metric(&metrics, r#"egate_admission_requests_total{endpoint="validate",decision="timeout"}"#),
        1.0,
        "{metrics}"
    );
    assert_eq!(metric(&metrics, r#"egate_admission_requests_total{endpoint="validate",decision="denied"}"#), 1.0);
    // Both reviews ran to the policy's deadline, the first after its answer was sent.
    server.poll("both failures to be counted", || {
        metric(&server.metrics(&client), r#"egate_policy_failures_total{policy="spinner",cause="timeout"}"#) == 2.0
    });
}

#[test]
fn a_policy_set_that_does_not_load_at_start_is_an_error_naming_the_file() {
    let (dir, _) = temp_dir_with_cert();
    std::fs::write(dir.path().join("broken.yaml"), IMAGES_V1.replace("builtin:images", "builtin:no-such-policy"))
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_egate"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--tls-cert",
            "tls.crt",
            "--tls-key",
            "tls.key",
            "--policies",
            "broken.yaml",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("egate: error: cannot serve: the policy set did not load: policy \"debug-images\" (broken.yaml)"),
        "{stderr}"
    );
}

/// examples/minimal_webhook.rs, built for the profile under test and run.
#[test]
fn the_minimal_webhook_example_embeds_the_engine() {
    let egate = Path::new(env!("CARGO_BIN_EXE_egate"));
    let profile_dir = egate.parent().unwrap();
    let target_dir = profile_dir.parent().unwrap();
    let profile = match profile_dir.file_name().unwrap().to_str().unwrap() {
        "debug" => "dev",
        other => other,
    };
    // `cargo test` builds examples, `cargo test --test serve` does not: make
    // sure. Without the variables cargo set for this test (build scripts
    // such as ring's watch CARGO_MANIFEST_DIR), the nested build reuses the
    // outer build's artifacts instead of rebuilding them.
    let mut cargo = Command::new(option_env!("CARGO").unwrap_or("cargo"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let set_by_cargo_for_tests =
            ["CARGO_MANIFEST_", "CARGO_PKG_", "CARGO_BIN_", "CARGO_CRATE_", "CARGO_PRIMARY_", "CARGO_TARGET_TMPDIR"]
                .iter()
                .any(|prefix| key.starts_with(prefix));
        if set_by_cargo_for_tests {
            cargo.env_remove(key.as_ref());
        }
    }
    let built = cargo
        .args(["build", "--quiet", "--example", "minimal_webhook", "--profile", profile])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(built.success(), "cargo build --example minimal_webhook failed");

    let policies = repo("examples/policies/debug-policies.yaml");
    let mut child = Command::new(profile_dir.join("examples/minimal_webhook"))
        .args([policies.to_str().unwrap(), "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _child = Kill(child);
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();

    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::builder().timeout(BOUND).build().unwrap();
    let judge = |name: &str| -> Value {
        let review = request(name);
        let answer = client.post(format!("{base}/validate")).json(&review).send().unwrap();
        assert_eq!(answer.status(), 200);
        let body: Value = answer.json().unwrap();
        assert_eq!(body["response"]["uid"], review["request"]["uid"]);
        body["response"].clone()
    };
    assert_eq!(judge("debug-allowed.json")["allowed"], true);
    let denied = judge("debug-privileged.json");
    assert_eq!(denied["allowed"], false);
    assert!(denied["status"]["message"].as_str().unwrap().starts_with("no-privileged-debug: "), "{denied}");
    let answer = client.post(format!("{base}/validate")).body("nope").send().unwrap();
    assert_eq!(answer.status(), 400);
}

#[test]
fn record_writes_each_review_as_received_in_order() {
    let (dir, _) = temp_dir_with_cert();
    let server = Server::start(dir.path(), &["--record", "captured"]);
    let client = server.client(&[]);
    // Sent as bytes with odd spacing: the file must hold them unchanged.
    let first = format!("{}\n", serde_json::to_string_pretty(&allowed_request()).unwrap());
    let second = request("debug-privileged.json").to_string();
    for (endpoint, body) in [("/mutate", &first), ("/validate", &second)] {
        let response = client.post(server.url(endpoint)).body(body.clone()).send().unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir.path().join("captured")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let name = |i: usize| files[i].file_name().unwrap().to_string_lossy().into_owned();
    let uid = |body: &str| serde_json::from_str::<Value>(body).unwrap()["request"]["uid"].as_str().unwrap().to_string();
    assert_eq!(name(0), format!("000001-mutate-{}.json", uid(&first)));
    assert_eq!(name(1), format!("000002-validate-{}.json", uid(&second)));
    assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), first);
    assert_eq!(std::fs::read_to_string(&files[1]).unwrap(), second);
}
