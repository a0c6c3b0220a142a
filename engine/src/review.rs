//! AdmissionReview in and out: the routing facts read from a request
//! (without parsing its objects), and the response sent back.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::ReviewError;

const API_VERSION: &str = "admission.k8s.io/v1";
const KIND: &str = "AdmissionReview";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn<'a> {
    #[serde(borrow, default)]
    api_version: Cow<'a, str>,
    #[serde(borrow, default)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    request: Option<&'a RawValue>,
}

/// What matching needs to know of a request. `object` and `oldObject`
/// are kept raw: guests parse what they read.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts<'a> {
    /// Identifier, echoed in the response.
    pub uid: Cow<'a, str>,
    /// Resource (`pods`).
    pub resource: Resource<'a>,
    /// Subresource (`ephemeralcontainers`).
    pub sub_resource: Option<Cow<'a, str>>,
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub operation: Cow<'a, str>,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: Option<Cow<'a, str>>,
    /// Object name.
    pub name: Option<Cow<'a, str>>,
    /// Who sent the request.
    pub user_info: UserInfo<'a>,
    /// The object after the request (JSON text).
    pub object: Option<&'a str>,
    /// The object before the request (JSON text).
    pub old_object: Option<&'a str>,
    resource_path: OnceLock<String>,
    labels: OnceLock<Option<BTreeMap<String, String>>>,
}

/// `request.userInfo`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct UserInfo<'a> {
    /// User name.
    #[serde(borrow, default)]
    pub username: Cow<'a, str>,
    /// Groups.
    #[serde(borrow, default)]
    pub groups: Vec<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
struct LabelsOnly {
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// `request.resource`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Resource<'a> {
    /// Resource name (`pods`).
    #[serde(borrow)]
    pub resource: Cow<'a, str>,
}

impl RequestFacts<'_> {
    /// Labels of `object` (of `oldObject` for a DELETE), read only when a
    /// selector asks for them. `None` when they cannot be read (labels that
    /// are not strings, invalid escapes): matching then fails closed.
    /// Read once per request, however many policies have selectors.
    pub fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.labels
            .get_or_init(|| match self.object.filter(|o| !egate_json::is_null(o.as_bytes())).or(self.old_object) {
                Some(raw) => {
                    let metadata = egate_json::member(raw.as_bytes(), "metadata").unwrap_or(b"{}");
                    serde_json::from_slice::<LabelsOnly>(metadata).ok().map(|m| m.labels.unwrap_or_default())
                }
                None => Some(BTreeMap::new()),
            })
            .as_ref()
    }

    /// `pods` or `pods/ephemeralcontainers`: what `match.resources` globs
    /// see. Built once per request.
    pub fn resource_path(&self) -> &str {
        self.resource_path.get_or_init(|| match self.sub_resource.as_deref() {
            Some(sub) if !sub.is_empty() => format!("{}/{sub}", self.resource.resource),
            _ => self.resource.resource.to_string(),
        })
    }
}

/// A parsed AdmissionReview: its routing facts and the raw `request` bytes
/// handed to guests as they arrived.
#[derive(Debug)]
pub struct Review<'a> {
    /// Routing facts.
    pub facts: RequestFacts<'a>,
    /// The `request` member, unparsed.
    pub request: &'a str,
}

impl<'a> Review<'a> {
    /// Parses AdmissionReview bytes, refusing anything but an
    /// `admission.k8s.io/v1` `AdmissionReview` with a request.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ReviewError> {
        // serde_json does not check the UTF-8 of strings it skips; the
        // whole body is checked here (0.2 µs for 10 KB).
        let text = std::str::from_utf8(bytes).map_err(|e| ReviewError::Json(format!("the body is not UTF-8: {e}")))?;
        let review: ReviewIn = serde_json::from_str(text).map_err(|e| ReviewError::Json(e.to_string()))?;
        if review.api_version != API_VERSION || review.kind != KIND {
            return Err(ReviewError::WrongKind {
                api_version: review.api_version.into_owned(),
                kind: review.kind.into_owned(),
            });
        }
        let request = review.request.filter(|r| r.get() != "null").ok_or(ReviewError::MissingRequest)?;
        let facts = RequestFacts::read(request.get())?;
        Ok(Self { facts, request: request.get() })
    }
}

impl<'a> RequestFacts<'a> {
    /// Reads the facts from the `request` member's text, which serde_json
    /// has already validated: [`egate_json`] finds the members without
    /// parsing `object` and `oldObject` a second time.
    fn read(request: &'a str) -> Result<Self, ReviewError> {
        let invalid = |what: &str, e: serde_json::Error| ReviewError::InvalidRequest(format!("{what}: {e}"));
        let members = egate_json::members(request.as_bytes())
            .ok_or_else(|| ReviewError::InvalidRequest("request is not a JSON object".into()))?;
        let mut facts = RequestFacts::default();
        let (mut has_resource, mut has_operation) = (false, false);
        for (key, value) in members {
            let text = within(request, value);
            let name = key.name().unwrap_or_default();
            match name.as_ref() {
                "uid" => facts.uid = serde_json::from_str(text).map_err(|e| invalid("request.uid", e))?,
                "resource" => {
                    facts.resource = serde_json::from_str(text).map_err(|e| invalid("request.resource", e))?;
                    has_resource = true;
                }
                "subResource" => {
                    facts.sub_resource = serde_json::from_str(text).map_err(|e| invalid("request.subResource", e))?
                }
                "operation" => {
                    facts.operation = serde_json::from_str(text).map_err(|e| invalid("request.operation", e))?;
                    has_operation = true;
                }
                "namespace" => {
                    facts.namespace = serde_json::from_str(text).map_err(|e| invalid("request.namespace", e))?
                }
                "name" => facts.name = serde_json::from_str(text).map_err(|e| invalid("request.name", e))?,
                "userInfo" => {
                    facts.user_info = serde_json::from_str::<Option<_>>(text)
                        .map_err(|e| invalid("request.userInfo", e))?
                        .unwrap_or_default()
                }
                "object" => facts.object = Some(text),
                "oldObject" => facts.old_object = Some(text),
                _ => {}
            }
        }
        if facts.uid.is_empty() {
            return Err(ReviewError::InvalidRequest(
                "request.uid is missing or empty: the response must echo it".into(),
            ));
        }
        for (present, field) in [(has_resource, "request.resource"), (has_operation, "request.operation")] {
            if !present {
                return Err(ReviewError::InvalidRequest(format!("{field} is missing")));
            }
        }
        Ok(facts)
    }
}

/// `part`, a slice of `whole`'s bytes, as text.
fn within<'a>(whole: &'a str, part: &[u8]) -> &'a str {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    &whole[start..start + part.len()]
}

/// The `response` of an AdmissionReview.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    /// The request's uid.
    pub uid: String,
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Why it was denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Warnings for the client.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Annotations for the audit log.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<String, String>,
    /// `JSONPatch` when `patch` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
    /// Base64 of the JSON Patch text: the API server refuses a byte array.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
}

/// `response.status` of a denial.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// HTTP status code (403 for a policy denial).
    pub code: u16,
    /// The message the user sees.
    pub message: String,
}

impl AdmissionResponse {
    /// Allows the request with this uid.
    pub fn allow(uid: impl Into<String>) -> Self {
        Self { uid: uid.into(), allowed: true, ..Self::default() }
    }

    /// Denies it with a status code and message.
    pub fn deny(mut self, code: u16, message: impl Into<String>) -> Self {
        self.allowed = false;
        self.status = Some(Status { code, message: message.into() });
        self
    }

    /// Attaches a JSON Patch (a non-empty array of RFC 6902 operations).
    pub fn with_patch(mut self, ops: &[serde_json::Value]) -> Self {
        let text = serde_json::to_vec(ops).expect("JSON values serialise");
        self.patch = Some(base64::engine::general_purpose::STANDARD.encode(text));
        self.patch_type = Some("JSONPatch");
        self
    }

    /// The whole AdmissionReview carrying this response.
    pub fn into_review(self) -> serde_json::Value {
        serde_json::json!({"apiVersion": API_VERSION, "kind": KIND, "response": self})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_routing_facts_and_keeps_request_raw() {
        let bytes = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":
            {"uid":"u1","operation":"UPDATE","resource":{"group":"","version":"v1","resource":"pods"},
             "subResource":"ephemeralcontainers","namespace":"shop","object":{"x":1}}}"#;
        let review = Review::parse(bytes).unwrap();
        assert_eq!(review.facts.resource_path(), "pods/ephemeralcontainers");
        assert!(review.request.starts_with(r#"{"uid":"u1""#));
    }

    #[test]
    fn refuses_other_kinds_and_missing_requests() {
        let wrong = br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{}}"#;
        assert!(matches!(Review::parse(wrong), Err(ReviewError::WrongKind { .. })));
        let none = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#;
        assert!(matches!(Review::parse(none), Err(ReviewError::MissingRequest)));
        let no_uid = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE","resource":{"resource":"pods"}}}"#;
        assert!(Review::parse(no_uid).unwrap_err().to_string().contains("uid"));
        assert!(matches!(Review::parse(b"{"), Err(ReviewError::Json(_))));
    }

    #[test]
    fn patch_is_base64_text_not_a_byte_array() {
        let ops = [serde_json::json!({"op": "add", "path": "/a", "value": 1})];
        let review = AdmissionResponse::allow("u").with_patch(&ops).into_review();
        let patch = review["response"]["patch"].as_str().unwrap();
        let text = base64::engine::general_purpose::STANDARD.decode(patch).unwrap();
        assert_eq!(text, br#"[{"op":"add","path":"/a","value":1}]"#);
        assert_eq!(review["response"]["patchType"], "JSONPatch");
    }
}
