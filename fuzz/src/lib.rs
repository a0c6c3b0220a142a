//! Helpers shared by egate's fuzz targets (`fuzz_targets/`): a sandbox and
//! policy sets built once per process, and the "echo" guest through which
//! a fuzz target hands any decision JSON to the engine as if a real module
//! had returned it.
//!
//! ```no_run
//! let sandbox = egate_fuzz::sandbox();
//! let set = egate_fuzz::load_set(&sandbox, &[("p.yaml", "apiVersion: egate.dev/v1 ...")], &[]);
//! let response = set.review(&egate_fuzz::echo_review(r#"{"allowed":true}"#, "{}"));
//! ```

use std::path::{Path, PathBuf};

use egate_engine::{PolicySet, Sandbox, SandboxConfig, builtin};

/// The repository root (fuzz/..).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("fuzz/ has a parent").to_path_buf()
}

/// A sandbox with egate's default limits and no on-disk module cache (a
/// fuzz run must not write to the user's cache). Panics, saying what to
/// do, when the built-in modules were not embedded.
pub fn sandbox() -> Sandbox {
    assert!(
        builtin::module("privileged").is_some(),
        "egate-engine was built without its built-in modules: run scripts/build-guests.sh, then rebuild the fuzz targets \
         (scripts/fuzz.sh does both)"
    );
    Sandbox::new(SandboxConfig { cache_dir: None, ..SandboxConfig::default() }).expect("the wasm sandbox starts")
}

/// Loads a policy set from manifests given as `(file name, text)` and
/// modules as `(file name, wasm bytes)`, all in memory. A manifest may also
/// be an existing file: pass its path as the name and an empty text.
pub fn load_set(sandbox: &Sandbox, manifests: &[(&str, &str)], modules: &[(&str, Vec<u8>)]) -> PolicySet {
    let texts: Vec<(&Path, String)> = manifests
        .iter()
        .map(|(name, text)| {
            let text = if text.is_empty() { std::fs::read_to_string(name).expect("read manifest") } else { text.to_string() };
            (Path::new(*name), text)
        })
        .collect();
    let texts: Vec<(&Path, &str)> = texts.iter().map(|(path, text)| (*path, text.as_str())).collect();
    let modules: Vec<(&Path, &[u8])> = modules.iter().map(|(name, bytes)| (Path::new(*name), bytes.as_slice())).collect();
    PolicySet::from_memory(sandbox, &texts, &modules).unwrap_or_else(|e| panic!("the fuzz policy set does not load: {e}"))
}

/// Digits of the decision length at the start of the request (in `uid`).
const LEN_DIGITS: usize = 8;

/// A guest speaking ABI v1 that returns, as its decision, the bytes of the
/// request's `d` member. It finds them without parsing: requests built by
/// [`echo_review`] start with `{"uid":"NNNNNNNN","d":` where the eight
/// digits are the length of `d`'s text, so `d` starts at byte 22.
pub fn echo_guest() -> Vec<u8> {
    let wat = r#"(module
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (data (i32.const 0) "{\"valid\":true}")
  (func (export "egate_abi_v1"))
  ;; A bump allocator that grows memory as needed.
  (func (export "egate_alloc") (param $len i32) (result i32)
    (local $p i32) (local $end i32) (local $have i32)
    (local.set $p (global.get $next))
    (local.set $end (i32.add (local.get $p) (local.get $len)))
    (local.set $have (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (drop (memory.grow
          (i32.add (i32.shr_u (i32.sub (local.get $end) (local.get $have)) (i32.const 16)) (i32.const 1))))))
    (global.set $next (local.get $end))
    (local.get $p))
  (func (export "egate_validate_settings") (param i32 i32) (result i64) (i64.const 14))
  (func (export "egate_evaluate") (param $req i32) (param $req_len i32) (param i32 i32) (result i64)
    (local $i i32) (local $n i32)
    (loop $digits
      (local.set $n
        (i32.add (i32.mul (local.get $n) (i32.const 10))
                 (i32.sub (i32.load8_u (i32.add (local.get $req) (i32.add (i32.const 8) (local.get $i))))
                          (i32.const 48))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $digits (i32.lt_u (local.get $i) (i32.const 8))))
    (i64.or (i64.shl (i64.extend_i32_u (i32.add (local.get $req) (i32.const 22))) (i64.const 32))
            (i64.extend_i32_u (local.get $n)))))"#;
    wat::parse_str(wat).expect("the echo guest assembles")
}

/// An AdmissionReview of `kubectl debug` (an UPDATE of
/// `pods/ephemeralcontainers` in namespace `fuzz`) whose request carries
/// `decision` for [`echo_guest`] to return, and `object`. Both are JSON
/// text inserted as they are.
pub fn echo_review(decision: &str, object: &str) -> Vec<u8> {
    assert!(decision.len() < 10usize.pow(LEN_DIGITS as u32), "decision too long for the echo guest");
    let mut out = Vec::with_capacity(decision.len() + object.len() + 320);
    out.extend_from_slice(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":"#);
    let request_start = out.len();
    out.extend_from_slice(format!(r#"{{"uid":"{:08}","d":"#, decision.len()).as_bytes());
    debug_assert_eq!(out.len() - request_start, 22, "the echo guest reads `d` at byte 22 of the request");
    out.extend_from_slice(decision.as_bytes());
    out.extend_from_slice(
        br#","operation":"UPDATE","resource":{"group":"","version":"v1","resource":"pods"},"subResource":"ephemeralcontainers","namespace":"fuzz","name":"web","userInfo":{"username":"fuzz"},"object":"#,
    );
    out.extend_from_slice(object.as_bytes());
    out.extend_from_slice(b"}}");
    out
}

/// Whether every line of a denial message names one of `policies`
/// (`NAME: ...`), as `egate_engine::decision::combine` promises.
pub fn lines_name_a_policy(message: &str, policies: &[&str]) -> bool {
    message
        .split('\n')
        .all(|line| policies.iter().any(|p| line.strip_prefix(p).is_some_and(|rest| rest.starts_with(": "))))
}
