use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::Error;

/// What a policy decided about one request: the decision JSON of ABI v1.
///
/// The host prefixes every message with the policy's name, so a message
/// need only say what is wrong and what would be allowed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Why it was denied (or a note when allowed).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// HTTP status code of a denial; the host uses 403 when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// Warnings shown to the user by kubectl.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Annotations recorded in the API server's audit log.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<String, String>,
    /// RFC 6902 operations against the object as the policy saw it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub patch: Vec<PatchOp>,
    /// Set when the policy could not decide; the host applies the policy's
    /// `failurePolicy`. Use [`Decision::error`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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

/// What a policy function may return: a [`Decision`], or a `Result` whose
/// error becomes a failure of the policy.
pub trait IntoDecision {
    /// Converts to a decision.
    fn into_decision(self) -> Decision;
}

impl IntoDecision for Decision {
    fn into_decision(self) -> Decision {
        self
    }
}

impl IntoDecision for Result<Decision, Error> {
    fn into_decision(self) -> Decision {
        self.unwrap_or_else(|e| Decision::error(e.message()))
    }
}

/// One RFC 6902 JSON Patch operation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum PatchOp {
    /// Adds `value` at `path` (appends with a final `-`).
    Add { path: String, value: Value },
    /// Removes the value at `path`.
    Remove { path: String },
    /// Replaces the value at `path`.
    Replace { path: String, value: Value },
    /// Moves the value at `from` to `path`.
    Move { from: String, path: String },
    /// Copies the value at `from` to `path`.
    Copy { from: String, path: String },
    /// Fails the patch unless `path` holds `value`.
    Test { path: String, value: Value },
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
    /// use egate_guest::PatchOp;
    /// assert_eq!(PatchOp::pointer(["metadata", "labels", "egate.dev/debug"]),
    ///            "/metadata/labels/egate.dev~1debug");
    /// ```
    pub fn pointer<I, S>(segments: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        segments.into_iter().fold(String::new(), |mut out, segment| {
            out.push('/');
            out.push_str(&segment.as_ref().replace('~', "~0").replace('/', "~1"));
            out
        })
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
    fn violations_are_joined_into_one_denial() {
        assert!(Decision::from_violations(vec![]).allowed);
        let d = Decision::from_violations(vec!["a is bad".into(), "b is bad".into()]);
        assert_eq!(d.message, "a is bad\nb is bad");
    }

    #[test]
    fn errors_become_policy_failures() {
        let d = Err::<Decision, _>(Error::new("bad object")).into_decision();
        assert_eq!(d.error.as_deref(), Some("bad object"));
        assert!(!d.allowed);
    }
}
