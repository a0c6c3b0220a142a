//! Modules from OCI registries, against a real one: Debian's
//! `docker-registry` (the distribution registry) on a free loopback port,
//! data in a temporary directory, stopped when the test ends however it
//! ends; and the real `cosign` (scripts/cosign.sh builds it) for
//! signatures. Without them a test prints how to get them and passes;
//! .ci/run provides both.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

#[path = "support/child.rs"]
mod child;
#[path = "support/token_server.rs"]
mod token_server;
use child::die_with_the_test;
use token_server::TokenServer;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The module the tests publish: the built-in `privileged` policy, alone.
fn module() -> PathBuf {
    repo("target/builtin/privileged.wasm")
}

/// A registry on loopback, killed on drop (and with the test's thread).
struct Registry {
    child: Child,
    port: u16,
    data: PathBuf,
}

/// How a registry protects its repositories.
enum Protection<'a> {
    None,
    /// HTTP basic auth with this htpasswd file.
    Htpasswd(&'a str),
    /// The bearer-token flow with this token server, whose certificate is in this file.
    Token(&'a TokenServer, &'a Path),
}

impl Registry {
    /// Starts one, or `None` (having said how to get it) without docker-registry.
    fn start(dir: &Path, protection: Protection) -> Option<Self> {
        if Command::new("docker-registry").arg("--version").output().is_err() {
            println!("skipped: needs docker-registry (apt-get install docker-registry; .ci/run installs it)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let data = dir.join(format!("registry-{port}"));
        let mut command = Command::new("docker-registry");
        command
            .arg("serve")
            .env("REGISTRY_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", &data)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match protection {
            Protection::None => command.arg(repo("tests/registry/config.yml")),
            Protection::Htpasswd(file) => {
                command.arg(repo("tests/registry/htpasswd.yml")).env("REGISTRY_AUTH_HTPASSWD_PATH", file)
            }
            Protection::Token(server, certificate) => command
                .arg(repo("tests/registry/token.yml"))
                .env("REGISTRY_AUTH_TOKEN_REALM", server.realm())
                .env("REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE", certificate),
        };
        die_with_the_test(&mut command);
        let child = command.spawn().expect("docker-registry starts");
        let registry = Self { child, port, data };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(30), "docker-registry never listened on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(registry)
    }

    /// `oci://127.0.0.1:PORT/PATH`.
    fn oci(&self, path: &str) -> String {
        format!("oci://127.0.0.1:{}/{path}", self.port)
    }

    /// The file a blob is stored in.
    fn blob(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.data.join(format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test's directory: the egate cache, manifests, keys, the registry's data.
struct Scene {
    dir: TempDir,
}

impl Scene {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs egate in the scene's directory with its own cache and no docker config but its own.
    fn egate(&self, args: &[&str]) -> Output {
        self.egate_with_cache(args, "cache")
    }

    fn egate_with_cache(&self, args: &[&str], cache: &str) -> Output {
        self.egate_command(args, cache).output().expect("egate runs")
    }

    fn egate_command(&self, args: &[&str], cache: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_egate"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("EGATE_CACHE_DIR", self.path(cache))
            .env("DOCKER_CONFIG", self.path("docker"))
            .env_remove("COSIGN_PASSWORD");
        command
    }

    /// `egate push`, which must succeed; the digest it prints.
    fn push(&self, module: &Path, reference: &str, extra: &[&str]) -> String {
        let out = self.egate(&[&["push", module.to_str().unwrap(), reference], extra].concat());
        let stdout = succeeded(&out, "egate push");
        line_value(&stdout, "digest").unwrap_or_else(|| panic!("egate push printed no digest: {stdout}"))
    }

    /// A manifest of the privileged policy with this module, and more spec lines.
    fn manifest(&self, name: &str, module: &str, more: &str) -> String {
        let text = format!(
            "apiVersion: egate.dev/v1\nkind: ClusterPolicy\nmetadata: {{name: no-privileged}}\nspec:\n  \
             match: {{resources: [pods/ephemeralcontainers], operations: [UPDATE]}}\n  module: {module}\n{more}"
        );
        std::fs::write(self.path(name), text).unwrap();
        self.path(name).to_str().unwrap().to_string()
    }

    /// Writes a docker config.json at `name` with `user:password` for `registry`.
    fn docker_config(&self, name: &str, registry: &Registry, user_password: &str) {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let auth = base64_of(user_password);
        std::fs::write(path, format!(r#"{{"auths": {{"127.0.0.1:{}": {{"auth": "{auth}"}}}}}}"#, registry.port))
            .unwrap();
    }

    /// `egate eval` of the privileged debug request.
    fn eval(&self, manifest: &str, extra: &[&str]) -> Output {
        let request = repo("examples/requests/debug-privileged.json");
        self.egate(&[&["eval", "--policy", manifest, "--request", request.to_str().unwrap()], extra].concat())
    }
}

fn succeeded(out: &Output, what: &str) -> String {
    assert!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: &Output, what: &str) -> String {
    assert!(!out.status.success(), "{what} succeeded: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The value after `key` on the line that starts with it.
fn line_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| l.strip_prefix(key)).map(|v| v.split_whitespace().next().unwrap_or("").to_string())
}

/// Asserts the privileged debug container is denied by the policy.
fn assert_denied_by_the_module(out: &Output) {
    let stdout = succeeded(out, "egate eval");
    let review: Value = serde_json::from_str(&stdout).expect("eval prints JSON");
    assert_eq!(review["response"]["allowed"], false, "{review}");
    let message = review["response"]["status"]["message"].as_str().unwrap();
    assert!(message.starts_with("no-privileged: "), "{message}");
    assert!(message.contains("privileged: true"), "{message}");
}

#[test]
fn push_pull_inspect_and_load_by_tag_and_by_digest() {
    let scene = Scene::new();
    let Some(registry) = Registry::start(scene.dir.path(), Protection::None) else { return };
    let tag = registry.oci("policies/privileged:v1");
    let digest = scene.push(&module(), &tag, &["--source", "https://example.com/egate/policies"]);
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{digest}");
    let by_digest = registry.oci(&format!("policies/privileged@{digest}"));

    let out = scene.egate(&["pull", &tag, "-o", "pulled.wasm"]);
    assert_eq!(line_value(&succeeded(&out, "egate pull"), "digest"), Some(digest.clone()));
    assert_eq!(std::fs::read(scene.path("pulled.wasm")).unwrap(), std::fs::read(module()).unwrap());

    let out = scene.egate(&["inspect", "-o", "json", &by_digest]);
    let inspection: Value = serde_json::from_str(&succeeded(&out, "egate inspect")).unwrap();
    assert_eq!(inspection["digest"], digest.as_str());
    assert_eq!(inspection["abi_version"], 1);
    assert_eq!(inspection["annotations"]["dev.egate.abi.version"], "1");
    assert_eq!(inspection["annotations"]["dev.egate.policy.name"], "privileged");
    assert_eq!(inspection["annotations"]["org.opencontainers.image.source"], "https://example.com/egate/policies");

    let by_tag = scene.manifest("tag.yaml", &tag, "");
    assert_denied_by_the_module(&scene.eval(&by_tag, &[]));
    let pinned = scene.manifest("pinned.yaml", &by_digest, "");
    assert_denied_by_the_module(&scene.eval(&pinned, &[]));
    let tag_pinned = scene.manifest("tag-pinned.yaml", &tag, &format!("  moduleDigest: {digest}\n"));
    assert_denied_by_the_module(&scene.eval(&tag_pinned, &[]));

    let missing = scene.egate(&["pull", &registry.oci("policies/absent:v1")]);
    let message = failed(&missing, "pulling an absent tag");
    assert!(message.contains(&format!("registry 127.0.0.1:{} has no", registry.port)), "{message}");
    assert!(message.contains("HTTP 404"), "{message}");
}

#[test]
fn a_moved_tag_is_refused_by_the_pin_with_both_digests() {
    let scene = Scene::new();
    let Some(registry) = Registry::start(scene.dir.path(), Protection::None) else { return };
    let tag = registry.oci("policies/privileged:stable");
    let pinned = scene.push(&module(), &tag, &[]);
    let manifest = scene.manifest("p.yaml", &tag, &format!("  moduleDigest: {pinned}\n"));
    assert_denied_by_the_module(&scene.eval(&manifest, &[]));

    // Someone pushes another artifact to the same tag.
    let moved = scene.push(&module(), &tag, &["--policy-name", "something-else"]);
    assert_ne!(moved, pinned);
    let message = failed(&scene.eval(&manifest, &[]), "loading a moved tag");
    assert!(message.contains(&format!("has digest {moved}")), "{message}");
    assert!(message.contains(&format!("spec.moduleDigest pins {pinned}")), "{message}");
    assert!(message.contains(&tag), "{message}");
}

#[test]
fn a_corrupted_blob_is_refused() {
    let scene = Scene::new();
    let Some(registry) = Registry::start(scene.dir.path(), Protection::None) else { return };
    let tag = registry.oci("policies/privileged:v1");
    scene.push(&module(), &tag, &[]);
    let layer = egate_digest(&std::fs::read(module()).unwrap());
    let blob = registry.blob(&layer);
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();

    let message = failed(&scene.egate(&["pull", &tag, "-o", "m.wasm"]), "pulling a corrupted blob");
    assert!(message.contains("corrupt"), "{message}");
    assert!(message.contains(&layer), "names the digest it should have: {message}");
    assert!(!scene.path("m.wasm").exists(), "nothing is written");
    let manifest = scene.manifest("p.yaml", &tag, "");
    let message = failed(&scene.eval(&manifest, &[]), "loading a corrupted blob");
    assert!(message.contains("corrupt") && message.contains("no-privileged"), "{message}");
}

#[test]
fn with_the_registry_down_a_cached_digest_loads_and_an_uncached_one_fails_clearly() {
    let scene = Scene::new();
    let Some(registry) = Registry::start(scene.dir.path(), Protection::None) else { return };
    let tag = registry.oci("policies/privileged:v1");
    let digest = scene.push(&module(), &tag, &[]);
    let other = scene.push(&module(), &registry.oci("policies/other:v1"), &["--policy-name", "other"]);
    let by_digest = scene.manifest("digest.yaml", &registry.oci(&format!("policies/privileged@{digest}")), "");
    let tag_pinned = scene.manifest("tag.yaml", &tag, &format!("  moduleDigest: {digest}\n"));
    let uncached = scene.manifest("other.yaml", &registry.oci(&format!("policies/other@{other}")), "");
    assert_denied_by_the_module(&scene.eval(&by_digest, &[])); // caches it
    let port = registry.port;
    registry.stop();

    assert_denied_by_the_module(&scene.eval(&by_digest, &[]));
    assert_denied_by_the_module(&scene.eval(&tag_pinned, &[]));
    let message = failed(&scene.eval(&uncached, &[]), "loading an uncached module offline");
    assert!(message.contains(&format!("cannot reach registry 127.0.0.1:{port}")), "{message}");
    assert!(message.contains(&other), "{message}");
    let unpinned = scene.manifest("unpinned.yaml", &tag, "");
    let message = failed(&scene.eval(&unpinned, &[]), "resolving a tag offline");
    assert!(message.contains("names a tag") && message.contains("spec.moduleDigest"), "{message}");
}

#[test]
fn a_protected_registry_needs_the_credentials_of_a_docker_config() {
    let scene = Scene::new();
    let htpasswd = scene.path("htpasswd");
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    std::fs::write(&htpasswd, format!("alice:{hash}\n")).unwrap();
    let Some(registry) = Registry::start(scene.dir.path(), Protection::Htpasswd(htpasswd.to_str().unwrap())) else {
        return;
    };
    let tag = registry.oci("team/privileged:v1");

    let out = scene.egate(&["push", module().to_str().unwrap(), &tag]);
    let message = failed(&out, "pushing without credentials");
    assert!(message.contains(&format!("registry 127.0.0.1:{} refused push of {tag}", registry.port)), "{message}");
    assert!(message.contains("401"), "{message}");
    assert!(message.contains("config.json"), "says where credentials go: {message}");

    scene.docker_config("docker/config.json", &registry, "alice:s3cret");
    let digest = scene.push(&module(), &tag, &[]);
    let out = scene.egate(&["pull", &tag, "-o", "m.wasm"]);
    assert_eq!(line_value(&succeeded(&out, "egate pull with credentials"), "digest"), Some(digest));

    scene.docker_config("wrong.json", &registry, "alice:no");
    let out = scene.egate_with_cache(&["pull", "--registry-config", "wrong.json", &tag], "fresh-cache");
    let message = failed(&out, "pulling with a wrong password");
    assert!(message.contains("refused pull") && message.contains("401"), "{message}");
}

#[test]
fn a_token_protected_registry_takes_docker_config_credentials_through_its_token_server() {
    let scene = Scene::new();
    let server = TokenServer::start(&[("alice", "s3cret", &["pull", "push"]), ("bob", "hunter2", &["pull"])]);
    let certificate = scene.path("token-issuer.crt");
    std::fs::write(&certificate, &server.certificate_pem).unwrap();
    let Some(registry) = Registry::start(scene.dir.path(), Protection::Token(&server, &certificate)) else { return };
    let tag = registry.oci("team/privileged:v1");
    let registry_name = format!("127.0.0.1:{}", registry.port);

    // No credentials: the token server refuses anonymous access.
    let message = failed(&scene.egate(&["push", module().to_str().unwrap(), &tag]), "pushing without credentials");
    assert!(message.contains(&format!("registry {registry_name} refused push of {tag}")), "{message}");
    assert!(message.contains("token server") && message.contains("authentication required"), "{message}");
    assert!(message.contains("as anonymous: no credentials for it") && message.contains("config.json"), "{message}");

    // alice's credentials in the docker config go to the token server; its token to the registry.
    scene.docker_config("docker/config.json", &registry, "alice:s3cret");
    let digest = scene.push(&module(), &tag, &[]);
    let out = scene.egate(&["pull", &tag, "-o", "m.wasm"]);
    assert_eq!(line_value(&succeeded(&out, "egate pull through the token flow"), "digest"), Some(digest.clone()));
    assert_eq!(std::fs::read(scene.path("m.wasm")).unwrap(), std::fs::read(module()).unwrap());
    let by_tag = scene.manifest("tag.yaml", &tag, &format!("  moduleDigest: {digest}\n"));
    assert_denied_by_the_module(&scene.eval(&by_tag, &[]));
    let requests = server.requests();
    let push_scope = "repository:team/privileged:pull,push";
    assert!(
        requests.iter().any(|r| r.issued && r.user.as_deref() == Some("alice") && r.scopes == [push_scope]),
        "egate asked the token server for {push_scope} as alice: {requests:?}"
    );

    // bob may pull, not push: his token lacks the push action and the registry refuses it.
    scene.docker_config("bob.json", &registry, "bob:hunter2");
    let out = scene.egate_with_cache(&["pull", "--registry-config", "bob.json", &tag, "-o", "b.wasm"], "bob-cache");
    assert_eq!(line_value(&succeeded(&out, "egate pull as bob"), "digest"), Some(digest));
    let out = scene.egate(&["push", "--registry-config", "bob.json", module().to_str().unwrap(), &tag]);
    let message = failed(&out, "pushing as a user who may only pull");
    assert!(message.contains(&format!("registry {registry_name} refused push of {tag}")), "{message}");
    assert!(message.contains("401") && message.contains("as user \"bob\""), "{message}");

    // A wrong password: the token server's answer, and what to do.
    scene.docker_config("wrong.json", &registry, "alice:no");
    let out = scene.egate_with_cache(&["pull", "--registry-config", "wrong.json", &tag], "fresh-cache");
    let message = failed(&out, "pulling with a wrong password");
    assert!(message.contains(&format!("registry {registry_name} refused pull of {tag}")), "{message}");
    assert!(message.contains("token server refused the credentials"), "{message}");
    assert!(message.contains("incorrect username or password") && message.contains("as user \"alice\""), "{message}");
    assert!(message.contains("wrong.json"), "names the config it read: {message}");
}

/// `scripts/cosign.sh build` (cosign from its Go module), or `None` having said how to get it.
fn cosign() -> Option<PathBuf> {
    let out = Command::new(repo("scripts/cosign.sh")).arg("path").output().expect("scripts/cosign.sh runs");
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if path.is_file() {
        Some(path)
    } else {
        println!("skipped: needs cosign: run scripts/cosign.sh build (it builds {}; .ci/run does)", path.display());
        None
    }
}

/// Runs cosign with no password on its keys, offline (no transparency log).
fn run_cosign(cosign: &Path, dir: &Path, args: &[&str]) -> Output {
    run_cosign_with_password(cosign, dir, "", args)
}

fn run_cosign_with_password(cosign: &Path, dir: &Path, password: &str, args: &[&str]) -> Output {
    Command::new(cosign)
        .args(args)
        .current_dir(dir)
        .env("COSIGN_PASSWORD", password)
        .env("DOCKER_CONFIG", dir.join("docker"))
        .env("SIGSTORE_NO_CACHE", "1")
        .env("TUF_ROOT", dir.join("tuf"))
        .output()
        .expect("cosign runs")
}

/// `cosign sign --key KEY`, offline, of `REGISTRY/REPO@DIGEST`.
fn cosign_sign(cosign: &Path, dir: &Path, key: &str, at: &str) {
    let args = ["sign", "--key", key, "--tlog-upload=false", "--yes", "--allow-http-registry", at];
    succeeded(&run_cosign(cosign, dir, &args), &format!("cosign sign --key {key}"));
}

#[test]
fn signed_modules_load_and_unsigned_or_wrongly_signed_ones_are_refused() {
    let scene = Scene::new();
    let Some(cosign) = cosign() else { return };
    let Some(registry) = Registry::start(scene.dir.path(), Protection::None) else { return };
    let dir = scene.dir.path();
    for prefix in ["team", "stranger"] {
        let out = run_cosign(&cosign, dir, &["generate-key-pair", "--output-key-prefix", prefix]);
        succeeded(&out, "cosign generate-key-pair");
    }
    std::fs::write(
        scene.path("verify.yaml"),
        "apiVersion: egate.dev/v1\nkind: ModuleVerification\nkeys:\n  - {name: platform-team, path: team.pub}\n",
    )
    .unwrap();

    let signed_tag = registry.oci("policies/privileged:signed");
    let signed = scene.push(&module(), &signed_tag, &[]);
    let signed_at = format!("127.0.0.1:{}/policies/privileged@{signed}", registry.port);
    cosign_sign(&cosign, dir, "team.key", &signed_at);
    let verify = ["--insecure-ignore-tlog=true", "--allow-http-registry", &signed_at];
    succeeded(&run_cosign(&cosign, dir, &[&["verify", "--key", "team.pub"], &verify[..]].concat()), "cosign verify");

    let unsigned_tag = registry.oci("policies/privileged:unsigned");
    let unsigned = scene.push(&module(), &unsigned_tag, &["--policy-name", "unsigned"]);
    let stranger_tag = registry.oci("policies/privileged:stranger");
    let by_stranger = scene.push(&module(), &stranger_tag, &["--policy-name", "stranger"]);
    let stranger_at = format!("127.0.0.1:{}/policies/privileged@{by_stranger}", registry.port);
    cosign_sign(&cosign, dir, "stranger.key", &stranger_at);

    let verified = "  moduleVerification: verify.yaml\n";
    assert_denied_by_the_module(&scene.eval(&scene.manifest("signed.yaml", &signed_tag, verified), &[]));
    // Set-wide, as egate serve --verify-modules would.
    let plain = scene.manifest("plain.yaml", &signed_tag, "");
    assert_denied_by_the_module(&scene.eval(&plain, &["--verify-modules", "verify.yaml"]));

    for (name, tag, digest, reason) in [
        ("unsigned.yaml", &unsigned_tag, &unsigned, "it has no cosign signature"),
        ("stranger.yaml", &stranger_tag, &by_stranger, "verifies with none of the keys"),
    ] {
        let message = failed(&scene.eval(&scene.manifest(name, tag, verified), &[]), name);
        assert!(message.contains(tag.as_str()) && message.contains(digest.as_str()), "{message}");
        assert!(message.contains(reason), "{message}");
        assert!(message.contains("keys tried: platform-team"), "{message}");
        let plain = scene.manifest(&format!("plain-{name}"), tag, "");
        let message = failed(&scene.eval(&plain, &["--verify-modules", "verify.yaml"]), name);
        assert!(message.contains(reason), "{message}");
    }

    // A verified module loads again offline: its signature is kept with it.
    registry.stop();
    assert_denied_by_the_module(
        &scene.eval(&scene.manifest("again.yaml", &signed_tag, &format!("{verified}  moduleDigest: {signed}\n")), &[]),
    );
}

#[test]
fn modules_signed_by_egate_verify_with_cosign_and_in_egate() {
    let scene = Scene::new();
    let Some(cosign) = cosign() else { return };
    let Some(registry) = Registry::start(scene.dir.path(), Protection::None) else { return };
    let dir = scene.dir.path();
    // cosign's own encrypted key, with a password; and a plain PKCS#8 PEM key.
    let out = run_cosign_with_password(&cosign, dir, "pw", &["generate-key-pair", "--output-key-prefix", "team"]);
    succeeded(&out, "cosign generate-key-pair");
    let plain = rcgen::KeyPair::generate().unwrap();
    std::fs::write(scene.path("plain.pem"), plain.serialize_pem()).unwrap();
    std::fs::write(scene.path("plain.pub"), plain.public_key_pem()).unwrap();
    // A signature cosign made first, which egate's must not displace.
    succeeded(&run_cosign(&cosign, dir, &["generate-key-pair", "--output-key-prefix", "other"]), "generate-key-pair");

    let tag = registry.oci("policies/privileged:v1");
    let digest = scene.push(&module(), &tag, &[]);
    let at = format!("127.0.0.1:{}/policies/privileged@{digest}", registry.port);
    cosign_sign(&cosign, dir, "other.key", &at);

    let sign = |key: &str, password: Option<&str>| {
        let mut command = scene.egate_command(&["sign", &tag, "--key", key], "cache");
        if let Some(password) = password {
            command.env("COSIGN_PASSWORD", password);
        }
        command.output().expect("egate runs")
    };
    for (key, password) in [("team.key", Some("pw")), ("plain.pem", None)] {
        let stdout = succeeded(&sign(key, password), &format!("egate sign --key {key}"));
        assert_eq!(line_value(&stdout, "digest"), Some(digest.clone()), "{stdout}");
        let sig_tag = format!("{}:sha256-{}.sig", registry.oci("policies/privileged"), &digest[7..]);
        assert_eq!(line_value(&stdout, "signature"), Some(sig_tag), "{stdout}");
    }
    for public in ["team.pub", "plain.pub", "other.pub"] {
        let args = ["verify", "--key", public, "--insecure-ignore-tlog=true", "--allow-http-registry", &at];
        succeeded(&run_cosign(&cosign, dir, &args), &format!("cosign verify --key {public} of egate's signatures"));
    }
    for public in ["team.pub", "plain.pub"] {
        std::fs::write(
            scene.path("verify.yaml"),
            format!("apiVersion: egate.dev/v1\nkind: ModuleVerification\nkeys: [{{name: k, path: {public}}}]\n"),
        )
        .unwrap();
        let manifest = scene.manifest("signed.yaml", &tag, "  moduleVerification: verify.yaml\n");
        assert_denied_by_the_module(&scene.egate_with_cache(
            &[
                "eval",
                "--policy",
                &manifest,
                "--request",
                repo("examples/requests/debug-privileged.json").to_str().unwrap(),
            ],
            &format!("cache-{public}"),
        ));
    }

    let message = failed(&sign("team.key", Some("not-it")), "signing with a wrong password");
    assert!(message.contains("team.key") && message.contains("COSIGN_PASSWORD"), "{message}");
    let message = failed(&sign("team.key", None), "signing with no password");
    assert!(message.contains("team.key") && message.contains("COSIGN_PASSWORD"), "{message}");
    let message = failed(&sign("team.pub", None), "signing with a public key");
    assert!(message.contains("team.pub") && message.contains("not a private key"), "{message}");
    let absent = registry.oci("policies/absent:v1");
    let out = scene.egate(&["sign", &absent, "--key", "plain.pem"]);
    let message = failed(&out, "signing an absent module");
    assert!(message.contains(&absent) && message.contains("HTTP 404"), "{message}");
}

fn egate_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
