//! The policy author's workflow end to end, with the real binary: `egate
//! test` (exit codes, text, JSON and JUnit output), `egate scaffold request`,
//! `egate inspect`, and `egate new` → `egate build` → `egate test`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn egate_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_egate")).args(args).current_dir(dir).output().expect("egate runs")
}

fn egate(args: &[&str]) -> Output {
    egate_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("egate exits with a code")
}

/// A temp dir holding a pod and a suite (the given cases) over the
/// built-in privileged policy.
fn suite_dir(cases: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("web.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\n\
         spec: {containers: [{name: app, image: \"nginx:1.27\"}]}\n",
    )
    .unwrap();
    let policy = repo("policies/privileged/policy.yaml");
    let suite =
        format!("apiVersion: egate.dev/v1\nkind: Test\nname: demo\npolicies: [{}]\ncases:\n{cases}", policy.display());
    std::fs::write(dir.path().join("demo.egate-test.yaml"), suite).unwrap();
    dir
}

const PASSING: &str = "  - name: restricted is allowed
    pod: web.yaml
    debug: {name: dbg, image: \"busybox:1.36\", target: app, profile: restricted}
    expect: {allowed: true, warnings: []}
  - name: sysadmin is denied
    pod: web.yaml
    debug: {name: dbg, image: \"busybox:1.36\", profile: sysadmin}
    userInfo: {username: alice, groups: [developers]}
    expect: {allowed: false, messageContains: 'ephemeral container \"dbg\" sets securityContext.privileged: true'}
";

const FAILING: &str = "  - name: restricted is allowed
    pod: web.yaml
    debug: {name: dbg, image: \"busybox:1.36\", profile: restricted}
    expect: {allowed: true}
  - name: sysadmin wrongly expected to pass
    pod: web.yaml
    debug: {name: dbg, image: \"busybox:1.36\", profile: sysadmin}
    expect: {allowed: true}
  - name: wrong message
    pod: web.yaml
    debug: {name: dbg, image: \"busybox:1.36\", profile: sysadmin}
    expect: {allowed: false, messageContains: no such words}
";

#[test]
fn a_passing_suite_exits_0_with_a_table_and_a_count() {
    let dir = suite_dir(PASSING);
    let out = egate_in(dir.path(), &["test"]);
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}{}", stderr(&out));
    assert!(text.contains("demo (./demo.egate-test.yaml)"), "{text}");
    assert!(
        text.contains("CASE") && text.contains("EXPECTED") && text.contains("GOT") && text.contains("TIME"),
        "{text}"
    );
    assert!(text.contains("restricted is allowed") && text.contains("denied (403)"), "{text}");
    assert_eq!(text.lines().last(), Some("2 passed, 0 failed"), "{text}");
}

#[test]
fn a_failing_case_exits_1_and_says_what_differed() {
    let dir = suite_dir(FAILING);
    let out = egate_in(dir.path(), &["test", "."]);
    let text = stdout(&out);
    assert_eq!(code(&out), 1, "{text}{}", stderr(&out));
    assert!(text.contains("FAIL  sysadmin wrongly expected to pass"), "{text}");
    assert!(text.contains("expected allowed, got denied: privileged: ephemeral container \"dbg\""), "{text}");
    assert!(text.contains("the message does not contain \"no such words\""), "{text}");
    assert_eq!(text.lines().last(), Some("1 passed, 2 failed"), "{text}");
}

#[test]
fn json_output_has_suites_cases_expectations_and_decisions() {
    let dir = suite_dir(FAILING);
    let out = egate_in(dir.path(), &["test", "-o", "json"]);
    assert_eq!(code(&out), 1);
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(report["passed"], 1);
    assert_eq!(report["failed"], 2);
    assert_eq!(report["invalid"], json!([]));
    let suite = &report["suites"][0];
    assert_eq!(suite["name"], "demo");
    assert!(suite["file"].as_str().unwrap().ends_with("demo.egate-test.yaml"));
    let cases = suite["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    assert_eq!(cases[0]["passed"], true);
    assert_eq!(cases[0]["failures"], json!([]));
    assert_eq!(cases[1]["name"], "sysadmin wrongly expected to pass");
    assert_eq!(cases[1]["passed"], false);
    assert_eq!(cases[1]["expected"], json!({"allowed": true}));
    assert_eq!(cases[1]["got"]["allowed"], false);
    assert_eq!(cases[1]["got"]["code"], 403);
    assert!(cases[1]["got"]["message"].as_str().unwrap().starts_with("privileged: "));
    assert!(cases[1]["timeMs"].as_f64().unwrap() >= 0.0);
    assert_eq!(cases[2]["expected"]["messageContains"], "no such words");
}

#[test]
fn junit_output_has_a_testsuite_per_suite_and_a_failure_per_failed_case() {
    let dir = suite_dir(FAILING);
    let out = egate_in(dir.path(), &["test", "-o", "junit"]);
    assert_eq!(code(&out), 1);
    let xml = stdout(&out);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "), "{xml}");
    let suites = opening_tag(&xml, "<testsuites ");
    for attribute in [r#"name="egate test""#, r#"tests="3""#, r#"failures="2""#, r#"errors="0""#] {
        assert!(suites.contains(attribute), "{attribute} in {suites}");
    }
    let suite = opening_tag(&xml, "<testsuite ");
    for attribute in
        [r#"name="demo""#, r#"file="./demo.egate-test.yaml""#, r#"tests="3""#, r#"failures="2""#, r#"errors="0""#]
    {
        assert!(suite.contains(attribute), "{attribute} in {suite}");
    }
    assert_eq!(xml.matches("<testcase ").count(), 3, "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 2, "{xml}");
    assert!(xml.contains(r#"<testcase name="restricted is allowed" classname="demo""#), "{xml}");
    assert!(xml.contains("&quot;dbg&quot;"), "quotes in messages are escaped: {xml}");
    assert!(xml.trim_end().ends_with("</testsuites>"), "{xml}");
    assert_eq!(xml.matches("<testsuite ").count(), xml.matches("</testsuite>").count());
}

/// The first tag of `xml` that starts with `start`, up to its `>`: its
/// attributes, in whatever order the writer put them.
fn opening_tag<'a>(xml: &'a str, start: &str) -> &'a str {
    let at = xml.find(start).unwrap_or_else(|| panic!("no {start} in {xml}"));
    let len = xml[at..].find('>').expect("the tag ends");
    &xml[at..at + len]
}

/// Runs `egate test` on a suite with these cases, expecting exit 2; returns stderr.
fn invalid(cases: &str) -> String {
    let dir = suite_dir(cases);
    let out = egate_in(dir.path(), &["test"]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    stderr(&out)
}

#[test]
fn an_invalid_suite_exits_2_with_file_line_and_what_is_wrong() {
    let err = invalid("  - name: a\n    pod: web.yaml\n    debug: {image: busybox}\n    expct: {allowed: true}\n");
    assert!(err.contains("demo.egate-test.yaml:9:5: invalid test suite: cases[0]: unknown field `expct`"), "{err}");

    let err = invalid("  - name: a\n    pod: missing.yaml\n    debug: {image: busybox}\n    expect: {allowed: true}\n");
    assert!(err.contains("demo.egate-test.yaml:7:10:") && err.contains("cannot read pod file"), "{err}");
    assert!(err.contains("missing.yaml"), "{err}");

    let err = invalid("  - name: a\n    pod: web.yaml\n    expect: {allowed: true}\n");
    assert!(err.contains("demo.egate-test.yaml:6:5:") && err.contains("has a pod but no debug"), "{err}");

    let err = invalid(
        "  - name: a\n    pod: web.yaml\n    debug: {image: busybox, target: db}\n    expect: {allowed: true}\n",
    );
    assert!(err.contains(r#"the pod has no container "db" to target"#), "{err}");

    let err = invalid(
        "  - name: a\n    request: r.json\n    pod: web.yaml\n    debug: {image: busybox}\n    expect: {allowed: true}\n",
    );
    assert!(err.contains("demo.egate-test.yaml:7:14:") && err.contains("r.json"), "{err}");

    let err = invalid("  []\n");
    assert!(err.contains("demo.egate-test.yaml:6:") && err.contains("a suite needs at least one case"), "{err}");
}

#[test]
fn a_wrong_api_version_or_a_policy_that_does_not_load_is_an_invalid_suite() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("x.egate-test.yaml");
    std::fs::write(&suite, "apiVersion: egate.dev/v2\nkind: Test\nname: x\npolicies: [p.yaml]\ncases: []\n").unwrap();
    let out = egate_in(dir.path(), &["test"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("x.egate-test.yaml:1:13: invalid test suite: apiVersion: unknown variant `egate.dev/v2`"),
        "{}",
        stderr(&out)
    );

    std::fs::write(dir.path().join("p.yaml"), "apiVersion: egate.dev/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec: {match: {resources: [pods]}, module: builtin:nope}\n").unwrap();
    std::fs::write(dir.path().join("web.yaml"), "metadata: {name: web}\nspec: {containers: [{name: app}]}\n").unwrap();
    std::fs::write(
        &suite,
        "apiVersion: egate.dev/v1\nkind: Test\nname: x\npolicies: [p.yaml]\ncases:\n  - name: a\n    pod: web.yaml\n    debug: {image: busybox}\n    expect: {allowed: true}\n",
    )
    .unwrap();
    let out = egate_in(dir.path(), &["test", "-o", "junit"]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("x.egate-test.yaml:4: invalid test suite: policies: ") && err.contains("nope"), "{err}");
    let xml = stdout(&out);
    assert!(xml.contains(r#"errors="1""#) && xml.contains("<error message="), "{xml}");
}

#[test]
fn suites_are_found_recursively_and_none_found_is_an_error() {
    let dir = suite_dir(PASSING);
    let nested = dir.path().join("a/b");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::rename(dir.path().join("demo.egate-test.yaml"), nested.join("demo.egate-test.yaml")).unwrap();
    std::fs::rename(dir.path().join("web.yaml"), nested.join("web.yaml")).unwrap();
    let out = egate(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).ends_with("2 passed, 0 failed\n"));

    let empty = tempfile::tempdir().unwrap();
    let out = egate(&["test", empty.path().to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no *.egate-test.yaml files under"), "{}", stderr(&out));
}

#[test]
fn a_patched_expectation_compares_the_object_after_the_combined_patch() {
    let dir = tempfile::tempdir().unwrap();
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  containers: [{name: app, image: \"nginx:1.27\"}]\n";
    std::fs::write(dir.path().join("web.yaml"), pod).unwrap();
    let container = "  ephemeralContainers:\n  - name: dbg\n    image: \"busybox:1.36\"\n    resources: {}\n    terminationMessagePath: /dev/termination-log\n    terminationMessagePolicy: File\n    imagePullPolicy: IfNotPresent\n    stdin: true\n    tty: true\n";
    let hardened = format!(
        "{pod}{container}    securityContext:\n      allowPrivilegeEscalation: false\n      capabilities: {{drop: [ALL]}}\n      seccompProfile: {{type: RuntimeDefault}}\n"
    );
    std::fs::write(dir.path().join("hardened.yaml"), &hardened).unwrap();
    std::fs::write(dir.path().join("wrong.yaml"), hardened.replace("RuntimeDefault", "Unconfined")).unwrap();
    let suite = format!(
        "apiVersion: egate.dev/v1\nkind: Test\nname: harden\npolicies: [{}]\ncases:\n\
         - name: right\n  pod: web.yaml\n  debug: {{name: dbg, image: \"busybox:1.36\", profile: legacy}}\n  expect: {{allowed: true, patched: hardened.yaml}}\n\
         - name: wrong\n  pod: web.yaml\n  debug: {{name: dbg, image: \"busybox:1.36\", profile: legacy}}\n  expect: {{allowed: true, patched: wrong.yaml}}\n",
        repo("policies/harden/policy.yaml").display()
    );
    std::fs::write(dir.path().join("h.egate-test.yaml"), suite).unwrap();
    let out = egate_in(dir.path(), &["test"]);
    let text = stdout(&out);
    assert_eq!(code(&out), 1, "{text}{}", stderr(&out));
    assert!(text.contains("allowed +patch"), "{text}");
    assert!(text.contains("the patched object differs from wrong.yaml"), "{text}");
    assert!(
        text.contains(r#"/spec/ephemeralContainers/0/securityContext/seccompProfile/type: expected "Unconfined", got "RuntimeDefault""#),
        "{text}"
    );
    assert!(text.ends_with("1 passed, 1 failed\n"), "{text}");
}

#[test]
fn every_built_in_policy_has_a_passing_suite() {
    let policies: Vec<String> = std::fs::read_dir(repo("policies"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for name in &policies {
        let suite = repo(&format!("policies/{name}/tests/{name}.egate-test.yaml"));
        assert!(suite.is_file(), "policies/{name} has no suite {}", suite.display());
    }
    let out = egate(&["test", "policies/"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
}

/// `egate scaffold request` on the repo's sample pod.
fn scaffold(args: &[&str]) -> Value {
    let dir = suite_dir(PASSING);
    let pod = dir.path().join("web.yaml");
    let mut all = vec!["scaffold", "request", "--pod", pod.to_str().unwrap(), "--image", "busybox:1.36"];
    all.extend_from_slice(args);
    let out = egate(&all);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn new_container(review: &Value) -> Value {
    review["request"]["object"]["spec"]["ephemeralContainers"][0].clone()
}

#[test]
fn scaffold_request_is_what_kubectl_debug_sends() {
    let review =
        scaffold(&["--target", "app", "--user", "alice", "--group", "developers", "--group", "system:authenticated"]);
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    let request = &review["request"];
    assert_eq!(request["operation"], "UPDATE");
    assert_eq!(request["resource"]["resource"], "pods");
    assert_eq!(request["subResource"], "ephemeralcontainers");
    assert_eq!((request["namespace"].as_str(), request["name"].as_str()), (Some("shop"), Some("web")));
    assert_eq!(request["userInfo"], json!({"username": "alice", "groups": ["developers", "system:authenticated"]}));
    assert_eq!(request["uid"].as_str().unwrap().len(), 36);
    assert!(request["oldObject"]["spec"].get("ephemeralContainers").is_none(), "oldObject is the pod as given");
    assert_eq!(request["object"]["spec"]["containers"], request["oldObject"]["spec"]["containers"]);
    let container = new_container(&review);
    let name = container["name"].as_str().unwrap();
    let suffix = name.strip_prefix("debugger-").expect("kubectl's name");
    assert!(suffix.len() == 5 && suffix.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)), "{name}");
    assert_eq!(container["image"], "busybox:1.36");
    assert_eq!(container["targetContainerName"], "app");
    assert_eq!((container["stdin"].as_bool(), container["tty"].as_bool()), (Some(true), Some(true)));
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");

    let named = scaffold(&["--name", "dbg"]);
    assert_eq!(new_container(&named)["name"], "dbg");
    assert!(new_container(&named).get("targetContainerName").is_none());
    assert_eq!(named["request"]["userInfo"]["username"], "kubernetes-admin");
}

#[test]
fn scaffold_request_profiles_set_the_security_context_as_kubectl_does() {
    let context = |profile: &str, extra: &[&str]| {
        let mut args = vec!["--profile", profile];
        args.extend_from_slice(extra);
        new_container(&scaffold(&args)).get("securityContext").cloned()
    };
    assert_eq!(context("legacy", &[]), None);
    assert_eq!(context("baseline", &[]), None);
    assert_eq!(context("general", &[]), Some(json!({"capabilities": {"add": ["SYS_PTRACE"]}})));
    assert_eq!(
        context("restricted", &[]),
        Some(json!({"runAsNonRoot": true, "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}))
    );
    assert_eq!(context("netadmin", &[]), Some(json!({"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}})));
    assert_eq!(context("sysadmin", &[]), Some(json!({"privileged": true})));
    assert_eq!(context("baseline", &["--privileged"]), Some(json!({"privileged": true})));
    assert_eq!(
        new_container(&scaffold(&[])).get("securityContext"),
        context("general", &[]).as_ref(),
        "general is the default"
    );
}

#[test]
fn scaffold_request_refuses_a_target_the_pod_does_not_have() {
    let dir = suite_dir(PASSING);
    let pod = dir.path().join("web.yaml");
    let out = egate(&["scaffold", "request", "--pod", pod.to_str().unwrap(), "--image", "busybox", "--target", "db"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains(r#"the pod has no container "db" to target"#), "{}", stderr(&out));
}

#[test]
fn inspect_shows_abi_exports_imports_size_and_sha256_of_a_built_in_module() {
    let module = repo("target/builtin/privileged.wasm");
    let bytes = std::fs::read(&module).expect("the built-in modules are built (scripts/build-guests.sh)");
    let sha256: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();

    let out = egate(&["inspect", module.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(&format!("sha256  {sha256}")), "{text}");
    assert!(text.contains(&format!("size    {} bytes", bytes.len())), "{text}");
    assert!(text.contains("abi     egate guest ABI v1: egate can load it"), "{text}");
    for line in [
        "egate_abi_v1             func () -> ()",
        "egate_alloc              func (i32) -> (i32)",
        "egate_validate_settings  func (i32, i32) -> (i64)",
        "egate_evaluate           func (i32, i32, i32, i32) -> (i64)",
    ] {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }
    assert!(text.contains("wasi_snapshot_preview1::fd_write"), "{text}");

    let out = egate(&["inspect", "-o", "json", module.to_str().unwrap()]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["sha256"], sha256.as_str());
    assert_eq!(report["size"], bytes.len());
    assert_eq!(report["abi_version"], 1);
    assert_eq!(report["problems"], json!([]));
    let memory = report["exports"].as_array().unwrap().iter().find(|e| e["name"] == "memory").unwrap();
    assert_eq!(memory["kind"], "memory");
    assert!(report["imports"].as_array().unwrap().iter().all(|i| i["granted"] == true));
}

#[test]
fn inspect_refuses_what_egate_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.wasm");
    std::fs::write(&empty, b"\0asm\x01\0\0\0").unwrap();
    let out = egate(&["inspect", empty.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "a wasm module without the ABI: {}", stdout(&out));
    assert!(stdout(&out).contains("no egate_abi_vN marker"), "{}", stdout(&out));

    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, "not wasm").unwrap();
    let out = egate(&["inspect", junk.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("junk.wasm") && stderr(&out).contains("not a wasm module"), "{}", stderr(&out));
}

/// Slow: compiles a guest to wasm. Shares target/wasm-guests (and so the
/// std built for wasm there) with scripts/build-guests.sh.
#[test]
fn a_new_policy_builds_and_passes_its_tests_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let out = egate_in(dir.path(), &["new", "no-foreign-images"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let policy = dir.path().join("no-foreign-images");
    for file in ["Cargo.toml", "src/lib.rs", "policy.yaml", "tests/no-foreign-images.egate-test.yaml", "README.md"] {
        assert!(policy.join(file).is_file(), "egate new wrote no {file}");
    }
    let cargo_toml = std::fs::read_to_string(policy.join("Cargo.toml")).unwrap();
    assert!(
        cargo_toml.contains("crate-type = [\"cdylib\", \"rlib\"]") && cargo_toml.contains("\n[workspace]\n"),
        "{cargo_toml}"
    );
    assert!(cargo_toml.contains(&format!("path = \"{}\"", repo("wasm-guest").display())), "{cargo_toml}");

    let out = Command::new(env!("CARGO_BIN_EXE_egate"))
        .args(["build", "no-foreign-images"])
        .current_dir(dir.path())
        .env("CARGO_TARGET_DIR", repo("target/wasm-guests"))
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}{}", stderr(&out));
    let module = policy.join("policy.wasm").canonicalize().unwrap();
    let bytes = std::fs::read(&module).unwrap();
    let sha256: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    assert!(text.contains(&format!("module  {}", module.display())), "{text}");
    assert!(text.contains(&format!("size    {} bytes", bytes.len())), "{text}");
    assert!(text.contains(&format!("sha256  {sha256}")), "{text}");

    let out = egate_in(dir.path(), &["test", "no-foreign-images"]);
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}{}", stderr(&out));
    assert!(text.ends_with("2 passed, 0 failed\n"), "{text}");
}
