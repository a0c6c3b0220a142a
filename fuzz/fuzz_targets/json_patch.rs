//! JSON Patch, end to end through egate's own code: a structured input
//! (an object and a list of RFC 6902 operations, well-formed or not) is
//! put in a `kubectl debug` request; a mutating policy whose module is the
//! echo guest returns the operations as its decision; the engine parses
//! them, applies them to the request's object (policy.rs, `apply_patch`),
//! hands the patched request to a validating built-in guest, and encodes
//! the combined patch as base64 in the response.
//!
//! The oracle is `json_patch` itself, run here on the same object: the
//! request is allowed exactly when the operations are RFC 6902 and apply
//! (otherwise the policy fails, naming itself and the cause), and an
//! allowed response's patch decodes to the same operations, which turn the
//! object into the same result.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use base64::Engine as _;
use egate_engine::PolicySet;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

const MUTATING: &str = r#"
apiVersion: egate.dev/v1
kind: ClusterPolicy
metadata: {name: fuzz-patch}
spec:
  mutating: true
  failureAction: Enforce
  failurePolicy: Fail
  timeoutMs: 1000
  match: {resources: [pods/ephemeralcontainers], operations: [UPDATE]}
  module: echo.wasm
"#;

/// Runs the real `privileged` guest on the patched object; it only warns,
/// so that whether the request is allowed depends on the patch alone.
const VALIDATING: &str = r#"
apiVersion: egate.dev/v1
kind: ClusterPolicy
metadata: {name: privileged-after-patch}
spec:
  failureAction: Warn
  failurePolicy: Ignore
  timeoutMs: 1000
  match: {resources: [pods/ephemeralcontainers], operations: [UPDATE]}
  module: builtin:privileged
"#;

fn policies() -> &'static PolicySet {
    static SET: OnceLock<PolicySet> = OnceLock::new();
    SET.get_or_init(|| {
        let sandbox = egate_fuzz::sandbox();
        egate_fuzz::load_set(
            &sandbox,
            &[("mutating.yaml", MUTATING), ("validating.yaml", VALIDATING)],
            &[("echo.wasm", egate_fuzz::echo_guest())],
        )
    })
}

/// Keys that paths and objects share, so that paths often exist.
const KEYS: [&str; 20] = [
    "metadata",
    "spec",
    "ephemeralContainers",
    "containers",
    "labels",
    "name",
    "image",
    "securityContext",
    "privileged",
    "a",
    "b",
    "",
    "~",
    "/",
    "~0",
    "~1",
    "0",
    "1",
    "-",
    "01",
];

#[derive(Arbitrary, Debug)]
enum Key {
    Known(u8),
    Any(String),
}

impl Key {
    fn text(&self) -> String {
        match self {
            Key::Known(i) => KEYS[*i as usize % KEYS.len()].to_string(),
            Key::Any(s) => s.clone(),
        }
    }
}

/// JSON without floats (so values round-trip exactly through text).
#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Str(Key),
    Array(Vec<Json>),
    Object(Vec<(Key, Json)>),
}

impl Json {
    fn value(&self, depth: u32) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => json!(b),
            Json::Int(i) => json!(i),
            Json::Uint(u) => json!(u),
            Json::Str(k) => Value::String(k.text()),
            _ if depth == 0 => Value::Null,
            Json::Array(items) => Value::Array(items.iter().map(|j| j.value(depth - 1)).collect()),
            Json::Object(fields) => {
                Value::Object(fields.iter().map(|(k, j)| (k.text(), j.value(depth - 1))).collect::<Map<_, _>>())
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Segment {
    /// A key, escaped as RFC 6901 says.
    Key(Key),
    /// A key as it is: `~` and `/` make it a different or invalid pointer.
    Raw(Key),
    Index(u8),
    End,
}

#[derive(Arbitrary, Debug)]
enum Pointer {
    Segments(Vec<Segment>),
    /// Any text, e.g. without the leading `/`.
    Text(String),
}

impl Pointer {
    fn text(&self) -> String {
        match self {
            Pointer::Text(t) => t.clone(),
            Pointer::Segments(segments) => segments
                .iter()
                .map(|s| match s {
                    Segment::Key(k) => format!("/{}", k.text().replace('~', "~0").replace('/', "~1")),
                    Segment::Raw(k) => format!("/{}", k.text()),
                    Segment::Index(i) => format!("/{i}"),
                    Segment::End => "/-".into(),
                })
                .collect(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum OpName {
    Add,
    Remove,
    Replace,
    Move,
    Copy,
    Test,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// An object with `op`, and each member possibly missing.
    Operation {
        op: Option<OpName>,
        path: Option<Pointer>,
        from: Option<Pointer>,
        value: Option<Json>,
        extra: Option<(Key, Json)>,
    },
    /// Anything else where an operation should be.
    Other(Json),
}

impl Op {
    fn value(&self) -> Value {
        match self {
            Op::Other(j) => j.value(3),
            Op::Operation { op, path, from, value, extra } => {
                let mut fields = Map::new();
                if let Some((k, v)) = extra {
                    fields.insert(k.text(), v.value(3));
                }
                if let Some(op) = op {
                    let name = match op {
                        OpName::Add => "add",
                        OpName::Remove => "remove",
                        OpName::Replace => "replace",
                        OpName::Move => "move",
                        OpName::Copy => "copy",
                        OpName::Test => "test",
                        OpName::Other(s) => s,
                    };
                    fields.insert("op".into(), json!(name));
                }
                if let Some(p) = path {
                    fields.insert("path".into(), json!(p.text()));
                }
                if let Some(p) = from {
                    fields.insert("from".into(), json!(p.text()));
                }
                if let Some(v) = value {
                    fields.insert("value".into(), v.value(4));
                }
                Value::Object(fields)
            }
        }
    }
}

/// `EGATE_FUZZ_SHOW=1` prints each input's outcome (applied, or why it
/// was refused), to see what a corpus exercises:
/// `EGATE_FUZZ_SHOW=1 cargo fuzz run json_patch -s none -- -runs=0 2>&1 | grep outcome | sort | uniq -c`
fn show_outcomes() -> bool {
    static SHOW: OnceLock<bool> = OnceLock::new();
    *SHOW.get_or_init(|| std::env::var_os("EGATE_FUZZ_SHOW").is_some())
}

#[derive(Arbitrary, Debug)]
struct Input {
    object: Json,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let object = input.object.value(6);
    let ops: Vec<Value> = input.ops.iter().map(Op::value).collect();
    let decision = json!({"allowed": true, "patch": ops}).to_string();
    let review = egate_fuzz::echo_review(&decision, &object.to_string());

    let response = policies().review(&review).expect("the request is well-formed");

    // What json_patch says of the same operations on the same object.
    let expected: Result<Value, String> = serde_json::from_value::<json_patch::Patch>(Value::Array(ops.clone()))
        .map_err(|e| format!("not RFC 6902 JSON Patch: {e}"))
        .and_then(|patch| {
            if ops.is_empty() {
                return Ok(object.clone());
            }
            if object.is_null() {
                return Err("the request has no object to patch".into());
            }
            let mut patched = object.clone();
            json_patch::patch_unsafe(&mut patched, &patch).map_err(|e| format!("does not apply: {e}"))?;
            Ok(patched)
        });

    if show_outcomes() {
        let outcome = match &expected {
            Ok(_) if ops.is_empty() => "no-ops".to_string(),
            Ok(_) => format!("applied {} ops", ops.len()),
            Err(cause) => format!("refused: {}", cause.split(':').next().unwrap_or_default()),
        };
        eprintln!("json_patch outcome: {outcome}");
    }
    match expected {
        Ok(patched) => {
            assert!(response.allowed, "json_patch applies it, egate denies: {response:?}");
            match &response.patch {
                None => assert!(ops.is_empty(), "an applied patch is missing from the response"),
                Some(encoded) => {
                    assert_eq!(response.patch_type, Some("JSONPatch"));
                    let text = base64::engine::general_purpose::STANDARD.decode(encoded).expect("base64");
                    let sent: Value = serde_json::from_slice(&text).expect("the patch is JSON");
                    assert_eq!(sent, Value::Array(ops.clone()), "the response's patch is the module's");
                    let patch: json_patch::Patch = serde_json::from_value(sent).expect("RFC 6902");
                    let mut object_after = object.clone();
                    json_patch::patch_unsafe(&mut object_after, &patch).expect("the response's patch applies");
                    assert_eq!(object_after, patched);
                }
            }
            for warning in &response.warnings {
                assert!(warning.starts_with("privileged-after-patch: "), "{warning:?}");
            }
        }
        Err(cause) => {
            assert!(!response.allowed, "json_patch refuses it ({cause}), egate allows: {response:?}");
            assert!(response.patch.is_none());
            let message = &response.status.as_ref().expect("a denial has a status").message;
            assert!(message.starts_with("fuzz-patch: the policy failed ("), "{message:?}");
            assert!(!message.contains("trapped") && !message.contains("timed out"), "{message:?}");
        }
    }
});
