//! The sandbox against real modules that misbehave: each ends as a clean
//! failure of its policy, decided by its failurePolicy, and the next
//! evaluation on the same engine works.

use std::path::PathBuf;

use egate_engine::{LoadError, PolicySet, Sandbox, SandboxConfig};
use serde_json::{Value, json};

/// A module speaking ABI v1 whose `egate_validate_settings` and
/// `egate_evaluate` bodies are given. Memory holds a settings verdict at 0
/// (14 bytes) and an allowing decision at 64 (16 bytes).
fn guest(validate: &str, evaluate: &str) -> String {
    format!(
        r#"(module
  (memory (export "memory") 2)
  (global $next (mut i32) (i32.const 1024))
  (data (i32.const 0) "{{\"valid\":true}}")
  (data (i32.const 64) "{{\"allowed\":true}}")
  (data (i32.const 128) "not json at all")
  (func (export "egate_abi_v1"))
  (func (export "egate_alloc") (param $len i32) (result i32)
    (local $p i32)
    global.get $next
    local.set $p
    global.get $next
    local.get $len
    i32.add
    global.set $next
    local.get $p)
  (func (export "egate_validate_settings") (param i32 i32) (result i64) {validate})
  (func (export "egate_evaluate") (param i32 i32 i32 i32) (result i64) {evaluate})
)"#
    )
}

const VALID: &str = "i64.const 14";
const ALLOW: &str = "i64.const 0x0000004000000010";

struct Fixture {
    sandbox: Sandbox,
}

impl Fixture {
    fn new() -> Self {
        let config = SandboxConfig { cache_dir: None, memory_limit_bytes: 16 << 20, ..SandboxConfig::default() };
        Self { sandbox: Sandbox::new(config).unwrap() }
    }

    /// Loads `wat` as guests/NAME.wasm with a manifest guests/NAME.yaml for
    /// it, both in memory.
    fn load(&self, name: &str, wat: &str, extra_spec: &str) -> Result<PolicySet, LoadError> {
        let module = wat::parse_str(wat).unwrap();
        let manifest = format!(
            "apiVersion: egate.dev/v1\nkind: ClusterPolicy\nmetadata: {{name: {name}}}\nspec:\n  \
             match: {{resources: [\"pods/*\"]}}\n  module: {name}.wasm\n{extra_spec}"
        );
        let (origin, module_path) =
            (PathBuf::from(format!("guests/{name}.yaml")), PathBuf::from(format!("guests/{name}.wasm")));
        PolicySet::from_memory(&self.sandbox, &[(&origin, &manifest)], &[(&module_path, &module)])
    }
}

fn debug_review() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "abc-123", "operation": "UPDATE", "namespace": "shop", "name": "web",
                    "resource": {"group": "", "version": "v1", "resource": "pods"},
                    "subResource": "ephemeralcontainers",
                    "userInfo": {"username": "alice"},
                    "object": {"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}
    }))
    .unwrap()
}

fn response(set: &PolicySet) -> Value {
    let bytes = set.review_bytes(&debug_review()).unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["response"].clone()
}

fn denial(set: &PolicySet) -> String {
    let r = response(set);
    assert_eq!(r["allowed"], false, "{r}");
    assert_eq!(r["uid"], "abc-123");
    r["status"]["message"].as_str().unwrap().to_string()
}

#[test]
fn a_well_behaved_guest_allows() {
    let f = Fixture::new();
    let set = f.load("fine", &guest(VALID, ALLOW), "").unwrap();
    assert_eq!(response(&set), json!({"uid": "abc-123", "allowed": true}));
}

#[test]
fn a_trap_is_a_failure_named_after_the_policy() {
    let f = Fixture::new();
    let set = f.load("trapper", &guest(VALID, "unreachable"), "").unwrap();
    let message = denial(&set);
    assert!(message.starts_with("trapper: the policy failed (module trapped: "), "{message}");
    assert!(message.contains("unreachable"), "{message}");
}

#[test]
fn an_endless_loop_is_cut_by_the_deadline_and_the_engine_goes_on() {
    let f = Fixture::new();
    let looping = guest(VALID, "(loop (br 0)) unreachable");
    let set = f.load("spinner", &looping, "  timeoutMs: 50\n").unwrap();
    assert!(denial(&set).contains("module timed out after 50 ms"));
    // failurePolicy Ignore lets the request through with a warning.
    let ignoring = f.load("spinner-ignored", &looping, "  timeoutMs: 20\n  failurePolicy: Ignore\n").unwrap();
    let r = response(&ignoring);
    assert_eq!(r["allowed"], true);
    assert!(r["warnings"][0].as_str().unwrap().contains("timed out after 20 ms"), "{r}");
    // The same sandbox still evaluates a sound guest.
    let fine = f.load("fine", &guest(VALID, ALLOW), "").unwrap();
    assert_eq!(response(&fine)["allowed"], true);
}

#[test]
fn a_memory_bomb_is_cut_by_the_cap() {
    let f = Fixture::new();
    let bomb = guest(VALID, "(loop (drop (memory.grow (i32.const 16))) (br 0)) unreachable");
    let set = f.load("bomb", &bomb, "").unwrap();
    let message = denial(&set);
    assert!(message.contains("exceeded the memory limit of 16 MiB"), "{message}");
}

#[test]
fn an_initial_memory_past_the_cap_is_refused_at_load() {
    let f = Fixture::new();
    // 512 pages: 32 MiB, twice the fixture's cap, before any code runs.
    let big = guest(VALID, ALLOW).replace(r#"(memory (export "memory") 2)"#, r#"(memory (export "memory") 512)"#);
    let error = f.load("big", &big, "").err().expect("a module whose memory cannot fit is refused").to_string();
    assert!(error.contains("big.wasm is refused") && error.contains("exceeds the limit"), "{error}");
}

#[test]
fn garbage_and_out_of_bounds_output_are_failures() {
    let f = Fixture::new();
    let garbage = f.load("garbage", &guest(VALID, "i64.const 0x000000800000000f"), "").unwrap();
    assert!(denial(&garbage).contains("not decision JSON"));
    let outside = f.load("outside", &guest(VALID, "i64.const 0x7fff000000000010"), "").unwrap();
    assert!(denial(&outside).contains("outside its memory"));
    let huge = f.load("huge", &guest(VALID, "i64.const 0x0000000000f00000"), "").unwrap();
    assert!(denial(&huge).contains("more than the limit"));
}

#[test]
fn a_module_without_the_abi_is_refused_at_load() {
    let f = Fixture::new();
    let no_abi = r#"(module (memory (export "memory") 1)
        (func (export "egate_alloc") (param i32) (result i32) i32.const 0))"#;
    let err = f.load("no-abi", no_abi, "").err().unwrap().to_string();
    assert!(err.contains(r#"policy "no-abi""#), "{err}");
    assert!(err.contains("does not export `egate_abi_v1`"), "{err}");

    let wrong_type = guest(VALID, ALLOW).replace("(param i32 i32 i32 i32) (result i64)", "(param i32) (result i64)");
    let err = f.load("wrong-type", &wrong_type.replace(ALLOW, "i64.const 0"), "").err().unwrap().to_string();
    assert!(err.contains("`egate_evaluate` has type"), "{err}");
}

#[test]
fn imports_beyond_wasi_std_are_refused_at_load() {
    let f = Fixture::new();
    let sneaky = guest(VALID, ALLOW).replacen(
        "(module",
        r#"(module (import "wasi_snapshot_preview1" "path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))"#,
        1,
    );
    let err = f.load("sneaky", &sneaky, "").err().unwrap().to_string();
    assert!(err.contains("imports `wasi_snapshot_preview1::path_open`, which egate does not provide"), "{err}");
}

#[test]
fn settings_are_checked_by_the_module_at_load() {
    let f = Fixture::new();
    let picky = guest("i64.const 0x0000000000000000", ALLOW).replace(
        r#"(data (i32.const 0) "{\"valid\":true}")"#,
        r#"(data (i32.const 0) "{\"valid\":false,\"message\":\"max must be positive\"}")"#,
    );
    // 48 bytes of verdict at offset 0.
    let picky = picky.replace("i64.const 0x0000000000000000", "i64.const 48");
    let err = f.load("picky", &picky, "  settings: {max: -1}\n").err().unwrap().to_string();
    assert!(err.contains(r#"policy "picky""#) && err.contains("invalid spec.settings: max must be positive"), "{err}");
}

#[test]
fn a_missing_module_file_is_named() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let manifest: PathBuf = dir.path().join("lost.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: egate.dev/v1\nkind: ClusterPolicy\nmetadata: {name: lost}\nspec:\n  match: {resources: [pods]}\n  module: nowhere.wasm\n",
    )
    .unwrap();
    let err = PolicySet::load(&f.sandbox, &[manifest]).err().unwrap().to_string();
    assert!(err.contains("cannot read module") && err.contains("nowhere.wasm"), "{err}");
}

#[test]
fn deep_recursion_is_a_clean_failure() {
    let f = Fixture::new();
    let recursive = guest(VALID, "(call $deep (i32.const 0)) drop i64.const 0").replace(
        "(func (export \"egate_abi_v1\"))",
        "(func (export \"egate_abi_v1\"))\n  (func $deep (param i32) (result i32) (call $deep (i32.add (local.get 0) (i32.const 1))))",
    );
    let set = f.load("deep", &recursive, "").unwrap();
    let message = denial(&set);
    assert!(message.contains("module trapped") && message.contains("stack"), "{message}");
}

#[test]
fn a_trap_in_egate_alloc_is_a_failure() {
    let f = Fixture::new();
    let broken_alloc = guest(VALID, ALLOW).replace("    global.get $next\n    local.set $p", "    unreachable");
    // Settings are written through egate_alloc too: the load itself fails, naming the policy.
    let err = f.load("bad-alloc", &broken_alloc, "").err().unwrap().to_string();
    assert!(
        err.contains(r#"policy "bad-alloc""#)
            && err.contains("failed while checking them")
            && err.contains("unreachable"),
        "{err}"
    );
}

#[test]
fn invalid_utf8_output_is_a_failure() {
    let f = Fixture::new();
    let bytes = guest(VALID, "i64.const 0x0000010000000002").replace(
        r#"(data (i32.const 128) "not json at all")"#,
        r#"(data (i32.const 128) "not json at all") (data (i32.const 256) "\ff\fe")"#,
    );
    let set = f.load("binary", &bytes, "").unwrap();
    assert!(denial(&set).contains("not UTF-8"));
}

/// A guest that counts requests in a global and in memory: every
/// evaluation starts from a fresh instance, so it never sees a previous one.
#[test]
fn no_request_sees_state_left_by_another() {
    let f = Fixture::new();
    // Deny when the global or the memory cell at 512 was already set.
    let stateful = guest(
        VALID,
        "(if (i32.or (global.get $seen) (i32.load (i32.const 512))) (then (return (i64.const 0x000000800000000f)))) \
         (global.set $seen (i32.const 1)) (i32.store (i32.const 512) (i32.const 1)) i64.const 0x0000004000000010",
    )
    .replace("(global $next", "(global $seen (mut i32) (i32.const 0))\n  (global $next");
    let set = f.load("stateful", &stateful, "").unwrap();
    for _ in 0..5 {
        assert_eq!(response(&set)["allowed"], true, "state leaked between evaluations");
    }
}

#[test]
fn a_pinned_digest_must_match() {
    let f = Fixture::new();
    let wasm = wat::parse_str(guest(VALID, ALLOW)).unwrap();
    let actual = {
        use sha2::Digest;
        format!("sha256:{}", egate_engine::hex(&sha2::Sha256::digest(&wasm)))
    };
    assert!(f.load("pinned", &guest(VALID, ALLOW), &format!("  moduleDigest: \"{actual}\"\n")).is_ok());
    let wrong = format!("sha256:{}", "0".repeat(64));
    let err =
        f.load("pinned", &guest(VALID, ALLOW), &format!("  moduleDigest: \"{wrong}\"\n")).err().unwrap().to_string();
    assert!(err.contains(&actual) && err.contains(&wrong), "both digests are named: {err}");
}
