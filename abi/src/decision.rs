//! The JSON a guest and the host exchange.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// What a policy decided about one request: the decision JSON of ABI v1,
/// the output of `egate_evaluate`.
///
/// A guest builds it with [`Decision::allow`], [`Decision::deny`] and the
/// `with_` methods. The host reads it as `Decision<serde_json::Value>`, so
/// that a patch operation it cannot read is a bad patch of that policy, not
/// unreadable output. The host prefixes every message with the policy's
/// name, so a message need only say what is wrong and what would be allowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Decision<Op = PatchOp> {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Why it was denied (or a note when allowed).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// HTTP status code of a denial; the host uses 403 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// Warnings shown to the user by kubectl.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Annotations recorded in the API server's audit log.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<String, String>,
    /// RFC 6902 operations against the object as the policy saw it.
    #[serde(default = "Vec::new", skip_serializing_if = "Vec::is_empty")]
    pub patch: Vec<Op>,
    /// Set when the policy could not decide; the host applies the policy's
    /// `failurePolicy`. Use [`Decision::error`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The grants (an input, [`crate::inputs`]) this decision admitted
    /// debug containers under: the host records each use in its grant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant_uses: Vec<crate::inputs::GrantUse>,
}

impl<Op> Default for Decision<Op> {
    fn default() -> Self {
        Self {
            allowed: false,
            message: String::new(),
            code: None,
            warnings: Vec::new(),
            audit_annotations: BTreeMap::new(),
            patch: Vec::new(),
            error: None,
            grant_uses: Vec::new(),
        }
    }
}

impl Decision {
    /// Lets the request through.
    pub fn allow() -> Self {
        Self { allowed: true, ..Self::default() }
    }

    /// Refuses the request with a message for the person who sent it.
    pub fn deny(message: impl Into<String>) -> Self {
        Self { allowed: false, message: message.into(), ..Self::default() }
    }

    /// Allows when `violations` is empty, else denies with every violation,
    /// one per line, so the user can fix them all in one go.
    pub fn from_violations(violations: Vec<String>) -> Self {
        if violations.is_empty() { Self::allow() } else { Self::deny(violations.join("\n")) }
    }

    /// The policy could not decide (unreadable request or settings).
    pub fn error(cause: impl Into<String>) -> Self {
        Self { allowed: false, error: Some(cause.into()), ..Self::default() }
    }

    /// Sets the HTTP status code of a denial.
    pub fn with_code(mut self, code: u16) -> Self {
        self.code = Some(code);
        self
    }

    /// Adds a warning.
    pub fn with_warning(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }

    /// Adds an audit annotation.
    pub fn with_audit_annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.audit_annotations.insert(key.into(), value.into());
        self
    }

    /// Records that a grant admitted a debug container.
    pub fn with_grant_use(mut self, grant: impl Into<String>, container: impl Into<String>) -> Self {
        self.grant_uses.push(crate::inputs::GrantUse { grant: grant.into(), container: container.into() });
        self
    }

    /// Adds one JSON Patch operation (the policy must be `mutating: true`).
    pub fn with_patch(mut self, op: PatchOp) -> Self {
        self.patch.push(op);
        self
    }

    /// Serialises to the decision JSON the host reads.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|e| {
            format!(r#"{{"allowed":false,"error":"cannot serialise the decision: {e}"}}"#).into_bytes()
        })
    }
}

/// One RFC 6902 JSON Patch operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum PatchOp {
    /// Adds `value` at `path` (appends with a final `-`).
    Add {
        /// JSON Pointer (RFC 6901) into the object the policy judged (the
        /// request's `object`, the Pod for `pods/ephemeralcontainers`); see
        /// [`PatchOp::pointer`].
        path: String,
        /// The value to add.
        value: Value,
    },
    /// Removes the value at `path`.
    Remove {
        /// JSON Pointer (RFC 6901) into the object the policy judged (the
        /// request's `object`, the Pod for `pods/ephemeralcontainers`); see
        /// [`PatchOp::pointer`].
        path: String,
    },
    /// Replaces the value at `path`.
    Replace {
        /// JSON Pointer (RFC 6901) into the object the policy judged (the
        /// request's `object`, the Pod for `pods/ephemeralcontainers`); see
        /// [`PatchOp::pointer`].
        path: String,
        /// The value that takes the place of the old one.
        value: Value,
    },
    /// Moves the value at `from` to `path`.
    Move {
        /// JSON Pointer (RFC 6901) of the value to move, in the same object
        /// as `path`.
        from: String,
        /// JSON Pointer (RFC 6901) into the object the policy judged (the
        /// request's `object`, the Pod for `pods/ephemeralcontainers`); see
        /// [`PatchOp::pointer`].
        path: String,
    },
    /// Copies the value at `from` to `path`.
    Copy {
        /// JSON Pointer (RFC 6901) of the value to copy, in the same object
        /// as `path`.
        from: String,
        /// JSON Pointer (RFC 6901) into the object the policy judged (the
        /// request's `object`, the Pod for `pods/ephemeralcontainers`); see
        /// [`PatchOp::pointer`].
        path: String,
    },
    /// Fails the patch unless `path` holds `value`.
    Test {
        /// JSON Pointer (RFC 6901) into the object the policy judged (the
        /// request's `object`, the Pod for `pods/ephemeralcontainers`); see
        /// [`PatchOp::pointer`].
        path: String,
        /// The value `path` must hold for the patch to apply.
        value: Value,
    },
}

impl PatchOp {
    /// `add` operation.
    pub fn add(path: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::Add { path: path.into(), value: value.into() }
    }

    /// `remove` operation.
    pub fn remove(path: impl Into<String>) -> Self {
        Self::Remove { path: path.into() }
    }

    /// `replace` operation.
    pub fn replace(path: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::Replace { path: path.into(), value: value.into() }
    }

    /// `test` operation.
    pub fn test(path: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::Test { path: path.into(), value: value.into() }
    }

    /// Builds a JSON Pointer from segments, escaping `~` and `/` (RFC 6901).
    ///
    /// ```
    /// use egate_abi::PatchOp;
    /// assert_eq!(PatchOp::pointer(["metadata", "labels", "egate.dev/debug"]),
    ///            "/metadata/labels/egate.dev~1debug");
    /// ```
    pub fn pointer<I, S>(segments: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let segments: Vec<S> = segments.into_iter().collect();
        jsonptr::PointerBuf::from_tokens(segments.iter().map(|s| jsonptr::Token::new(s.as_ref()))).to_string()
    }
}

/// The answer of `egate_validate_settings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsVerdict {
    /// Whether the module accepts the settings.
    pub valid: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl SettingsVerdict {
    /// The settings are accepted.
    pub fn valid() -> Self {
        Self { valid: true, message: String::new() }
    }

    /// The settings are refused, with why.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self { valid: false, message: message.into() }
    }

    /// Serialises to the verdict JSON the host reads.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a verdict always serialises")
    }
}

/// The settings of one policy inside a bundle of policies (egate's built-in
/// library): which policy, and its own settings. The host writes one for
/// `builtin:NAME`, or a JSON list of them for `egate_evaluate_batch`.
#[derive(Debug, Serialize, Deserialize)]
pub struct BundledSettings<'a> {
    /// The policy's name in the bundle.
    #[serde(borrow)]
    pub policy: Cow<'a, str>,
    /// Its settings.
    #[serde(borrow)]
    pub settings: &'a RawValue,
}

impl<'a> BundledSettings<'a> {
    /// Reads `{"policy": NAME, "settings": ...}`.
    pub fn parse(json: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }

    /// Writes `{"policy": NAME, "settings": SETTINGS}` for a policy of a bundle.
    pub fn to_json(policy: &str, settings: &impl Serialize) -> Result<Vec<u8>, serde_json::Error> {
        let settings = serde_json::value::to_raw_value(settings)?;
        serde_json::to_vec(&BundledSettings { policy: Cow::Borrowed(policy), settings: &settings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decision_json_has_only_what_is_set() {
        let json: Value = serde_json::from_slice(&Decision::allow().to_json()).unwrap();
        assert_eq!(json, json!({"allowed": true}));
        let denied = Decision::deny("no")
            .with_code(400)
            .with_warning("careful")
            .with_audit_annotation("k", "v")
            .with_patch(PatchOp::add("/metadata/labels/a", "b"));
        let json: Value = serde_json::from_slice(&denied.to_json()).unwrap();
        assert_eq!(
            json,
            json!({"allowed": false, "message": "no", "code": 400, "warnings": ["careful"],
                   "auditAnnotations": {"k": "v"},
                   "patch": [{"op": "add", "path": "/metadata/labels/a", "value": "b"}]})
        );
    }

    #[test]
    fn the_host_reads_what_a_guest_writes() {
        let written = Decision::deny("no").with_patch(PatchOp::remove("/a~1b")).to_json();
        let read: Decision<Value> = serde_json::from_slice(&written).unwrap();
        assert_eq!(read.patch, [json!({"op": "remove", "path": "/a~1b"})]);
        assert!(serde_json::from_slice::<Decision<Value>>(br#"{"allow": true}"#).is_err());
        let typed: Decision = serde_json::from_slice(&written).unwrap();
        assert_eq!(typed.patch, [PatchOp::remove("/a~1b")]);
    }

    #[test]
    fn violations_are_joined_into_one_denial() {
        assert!(Decision::from_violations(vec![]).allowed);
        assert_eq!(Decision::from_violations(vec!["a".into(), "b".into()]).message, "a\nb");
    }

    #[test]
    fn pointers_escape_tilde_and_slash() {
        assert_eq!(PatchOp::pointer(["a/b", "c~d", ""]), "/a~1b/c~0d/");
        assert_eq!(PatchOp::pointer(Vec::<String>::new()), "");
    }

    #[test]
    fn bundled_settings_round_trip() {
        let written = BundledSettings::to_json("images", &json!({"disallowLatest": true})).unwrap();
        let read = BundledSettings::parse(&written).unwrap();
        assert_eq!((read.policy.as_ref(), read.settings.get()), ("images", r#"{"disallowLatest":true}"#));
        assert_eq!(SettingsVerdict::valid().to_json(), br#"{"valid":true}"#);
    }
}
