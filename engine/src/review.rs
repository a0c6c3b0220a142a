//! AdmissionReview in and out: the routing facts read from a request
//! (without parsing its objects), and the response sent back.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use base64::Engine as _;
use egate_abi::CowStr;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::ReviewError;

const API_VERSION: &str = "admission.k8s.io/v1";
const KIND: &str = "AdmissionReview";

/// An AdmissionReview as it is validated: every byte is checked by this
/// one serde_json pass, which also reads the routing facts and where
/// `object` and `oldObject` are.
#[derive(Default)]
struct ReviewIn<'a> {
    api_version: Cow<'a, str>,
    kind: Cow<'a, str>,
    request: Option<RequestIn<'a>>,
    /// No member follows `request` (as the API server writes it): its text
    /// then ends where the review does, without skipping it to find out.
    request_is_last: bool,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum ReviewField {
    ApiVersion,
    Kind,
    Request,
    #[serde(other)]
    Other,
}

impl<'de> Deserialize<'de> for ReviewIn<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ReviewVisitor)
    }
}

struct ReviewVisitor;

impl<'de> serde::de::Visitor<'de> for ReviewVisitor {
    type Value = ReviewIn<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an AdmissionReview object")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        use serde::de::Error;
        let mut review = ReviewIn::default();
        let mut seen_request = false;
        while let Some(field) = map.next_key::<ReviewField>()? {
            review.request_is_last = matches!(field, ReviewField::Request);
            match field {
                ReviewField::ApiVersion => review.api_version = map.next_value::<CowStr>()?.0,
                ReviewField::Kind => review.kind = map.next_value::<CowStr>()?.0,
                ReviewField::Request if seen_request => return Err(M::Error::duplicate_field("request")),
                ReviewField::Request => {
                    seen_request = true;
                    review.request = map.next_value()?;
                }
                ReviewField::Other => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(review)
    }
}

/// The `request` member, as validated.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIn<'a> {
    #[serde(borrow, default)]
    uid: Cow<'a, str>,
    #[serde(borrow, default)]
    resource: Option<Resource<'a>>,
    #[serde(borrow, default)]
    sub_resource: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    operation: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    namespace: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user_info: Option<UserInfo<'a>>,
    #[serde(borrow, default)]
    object: Option<ObjectIn<'a>>,
    #[serde(borrow, default)]
    old_object: Option<ObjectIn<'a>>,
}

/// The members of an object, each with its JSON text, in order.
pub type Members<'a> = Vec<(Cow<'a, str>, &'a str)>;

/// `object` or `oldObject` as the validating pass read it: its members, and
/// those of its `spec`, so that CEL walks straight to what it reads without
/// skipping the rest once more.
#[derive(Debug, Clone, Default)]
pub struct ObjectIndex<'a> {
    /// The object's members (`spec`'s text among them).
    pub members: Members<'a>,
    /// The members of its `spec`, when it is an object.
    pub spec: Option<Members<'a>>,
}

/// What the validating pass makes of `object`.
#[derive(Debug)]
enum ObjectIn<'a> {
    /// `null`.
    Null,
    /// An object: its members, and `spec`'s when `spec` is an object (its
    /// text, empty in `members` until [`ObjectIn::finish`] finds it).
    Object { members: Members<'a>, spec: Option<(usize, Members<'a>)> },
}

impl<'de: 'a, 'a> Deserialize<'de> for ObjectIn<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ObjectVisitor { nested: true })
    }
}

/// Reads an object's members; `nested`: `spec`'s members too.
struct ObjectVisitor {
    nested: bool,
}

impl<'de> serde::de::Visitor<'de> for ObjectVisitor {
    type Value = ObjectIn<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object or null")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(ObjectIn::Null)
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut members = Vec::new();
        let mut spec = None;
        while let Some(CowStr(key)) = map.next_key::<CowStr<'de>>()? {
            if self.nested && key == "spec" && spec.is_none() {
                if let ObjectIn::Object { members: inner, .. } = map.next_value_seed(NestedSeed)? {
                    spec = Some((members.len(), inner));
                    members.push((key, ""));
                    continue;
                }
                // `spec: null`.
                members.push((key, "null"));
            } else {
                members.push((key, map.next_value::<&'de RawValue>()?.get()));
            }
        }
        Ok(ObjectIn::Object { members, spec })
    }
}

/// `spec`, read as an object one level deep.
struct NestedSeed;

impl<'de> serde::de::DeserializeSeed<'de> for NestedSeed {
    type Value = ObjectIn<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(ObjectVisitor { nested: false })
    }
}

impl<'a> ObjectIn<'a> {
    /// The object's text in `text` (what the request was read from), and
    /// its index when its text and `spec`'s can be found from where their
    /// members are (not when a first key is escaped, or an object empty).
    fn finish(
        self,
        text: &'a str,
        fallback: impl Fn() -> Option<&'a str>,
    ) -> (Option<&'a str>, Option<ObjectIndex<'a>>) {
        match self {
            ObjectIn::Null => (Some("null"), None),
            ObjectIn::Object { mut members, spec } => {
                // A second `spec` (which JSON allows) wins when read again:
                // the index would hold the first.
                if members.iter().filter(|(name, _)| name == "spec").count() > 1 {
                    return (fallback(), None);
                }
                let spec = match spec {
                    Some((at, inner)) => match span(text, &inner) {
                        Some(spec_text) => {
                            members[at].1 = spec_text;
                            Some(inner)
                        }
                        None => return (fallback(), None),
                    },
                    None => None,
                };
                match span(text, &members) {
                    Some(object) => (Some(object), Some(ObjectIndex { members, spec })),
                    None => (fallback(), None),
                }
            }
        }
    }
}

/// The text of the object whose members are `members`, found in `text`:
/// from the brace before the first key to the brace after the last value.
fn span<'a>(text: &'a str, members: &Members<'a>) -> Option<&'a str> {
    let (Cow::Borrowed(first_key), _) = members.first()? else { return None };
    let (_, last) = members.last()?;
    let bytes = text.as_bytes();
    let base = text.as_ptr() as usize;
    let key_at = (first_key.as_ptr() as usize).checked_sub(base)?;
    let mut start = key_at.checked_sub(1).filter(|&quote| bytes.get(quote) == Some(&b'"'))?;
    loop {
        start = start.checked_sub(1)?;
        match bytes[start] {
            b' ' | b'\n' | b'\r' | b'\t' => {}
            b'{' => break,
            _ => return None,
        }
    }
    let mut end = (last.as_ptr() as usize).checked_sub(base)? + last.len();
    while matches!(bytes.get(end)?, b' ' | b'\n' | b'\r' | b'\t') {
        end += 1;
    }
    (bytes.get(end)? == &b'}').then(|| &text[start..=end])
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
    /// `object`'s members and its `spec`'s, as the validating pass found them.
    pub object_index: Option<ObjectIndex<'a>>,
    /// The same of `oldObject`.
    pub old_object_index: Option<ObjectIndex<'a>>,
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
    /// API group, empty for the core group (`pods`).
    #[serde(borrow, default)]
    pub group: Cow<'a, str>,
    /// API version (`v1`).
    #[serde(borrow, default)]
    pub version: Cow<'a, str>,
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
        let review: ReviewIn = serde_json::from_str(text).map_err(|e| explain(text, e))?;
        if review.api_version != API_VERSION || review.kind != KIND {
            return Err(ReviewError::WrongKind {
                api_version: review.api_version.into_owned(),
                kind: review.kind.into_owned(),
            });
        }
        let request_in = review.request.ok_or(ReviewError::MissingRequest)?;
        if request_in.uid.is_empty() {
            return Err(ReviewError::InvalidRequest(
                "request.uid is missing or empty: the response must echo it".into(),
            ));
        }
        let missing = |field: &str| ReviewError::InvalidRequest(format!("{field} is missing"));
        let resource = request_in.resource.ok_or_else(|| missing("request.resource"))?;
        let operation = request_in.operation.ok_or_else(|| missing("request.operation"))?;
        let request = request_text(text, review.request_is_last)
            .ok_or_else(|| ReviewError::InvalidRequest("request is not a JSON object".into()))?;
        // Found again by a skip only when the validating pass could not place them.
        let member = |name: &'static str| {
            move || egate_json::member(request.as_bytes(), name).and_then(|m| std::str::from_utf8(m).ok())
        };
        let (object, object_index) = match request_in.object {
            Some(object) => object.finish(text, member("object")),
            None => (None, None),
        };
        let (old_object, old_object_index) = match request_in.old_object {
            Some(old) => old.finish(text, member("oldObject")),
            None => (None, None),
        };
        let facts = RequestFacts {
            uid: request_in.uid,
            resource,
            sub_resource: request_in.sub_resource,
            operation,
            namespace: request_in.namespace,
            name: request_in.name,
            user_info: request_in.user_info.unwrap_or_default(),
            object,
            old_object,
            object_index,
            old_object_index,
            ..RequestFacts::default()
        };
        Ok(Self { facts, request })
    }
}

/// The error of a review serde_json refused. A member of the wrong type is
/// named by its path, found by parsing again (only on this error path).
fn explain(text: &str, error: serde_json::Error) -> ReviewError {
    if !error.is_data() {
        return ReviewError::Json(error.to_string());
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, ReviewIn>(&mut deserializer) {
        Err(e) if e.path().to_string().starts_with("request") => {
            ReviewError::InvalidRequest(format!("{}: {}", e.path(), e.inner()))
        }
        Err(e) => ReviewError::Json(format!("{}: {}", e.path(), e.inner())),
        Ok(_) => ReviewError::Json(error.to_string()),
    }
}

/// The text of the `request` member of a review that serde_json has
/// validated. When `request` is the last member, its text ends where the
/// review's closing brace begins: only the members before it are skipped.
fn request_text(review: &str, is_last: bool) -> Option<&str> {
    let bytes = review.as_bytes();
    let start = egate_json::member_start(bytes, "request")?;
    let end = if is_last {
        review.trim_end().strip_suffix('}')?.trim_end().len()
    } else {
        egate_json::skip_value(bytes, start)?
    };
    let text = review.get(start..end)?;
    text.starts_with('{').then_some(text)
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
    fn the_request_text_is_exact_wherever_the_member_is() {
        let request = r#"{"uid":"u1","operation":"CREATE","resource":{"resource":"pods"},"object":{"a":"}"}}"#;
        for review in [
            format!(r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{request}}}"#),
            format!("{{\n \"kind\": \"AdmissionReview\",\n \"request\":  {request}  \n}}\n\n"),
            format!(r#"{{"request":{request},"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}}"#),
            format!(
                r#"{{"kind":"AdmissionReview","request":{request},"x":{{"y":[1]}},"apiVersion":"admission.k8s.io/v1"}}"#
            ),
        ] {
            let review = review.replace(
                r#""kind": "AdmissionReview""#,
                r#""kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1""#,
            );
            let parsed = Review::parse(review.as_bytes()).unwrap();
            assert_eq!(parsed.request, request, "{review}");
            assert_eq!(parsed.facts.object, Some(r#"{"a":"}"}"#));
        }
    }

    #[test]
    fn objects_are_indexed_in_the_validating_pass_or_found_again() {
        let review = |object: &str| {
            format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","resource":{{"resource":"pods"}},"operation":"UPDATE","object": {object} ,"oldObject":null}}}}"#
            )
        };
        let cases = [
            (
                r#"{ "metadata": {"name": "a"},
                  "spec" : { "x": [1, {"y": "}"}] ,"z":2 } }"#,
                true,
            ),
            (r#"{"spec":{},"status":{}}"#, false),
            (r#"{"sp\u0065c":{"a":1}}"#, false),
            (r#"{"m":1,"spec":{"\u0061":1}}"#, false),
            (r#"{"spec":{"a":1},"spec":{"a":2}}"#, false),
            (r#"{"spec":null,"a":"b"}"#, true),
            (r#"{}"#, false),
        ];
        for (object, indexed) in cases {
            let text = review(object);
            let parsed = Review::parse(text.as_bytes()).unwrap();
            assert_eq!(parsed.facts.object, Some(object), "{object}");
            assert_eq!(parsed.facts.old_object, None, "null, as an absent object");
            let index = parsed.facts.object_index.as_ref();
            assert_eq!(index.is_some(), indexed, "{object}");
            if let Some(index) = index {
                let again: Vec<(String, String)> = egate_json::members(object.as_bytes())
                    .unwrap()
                    .map(|(k, v)| (k.name().unwrap().into_owned(), std::str::from_utf8(v).unwrap().to_string()))
                    .collect();
                let found: Vec<(String, String)> =
                    index.members.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                assert_eq!(found, again, "{object}");
            }
        }
        assert!(Review::parse(review("5").as_bytes()).is_err(), "an object or null");
    }

    #[test]
    fn a_member_of_the_wrong_type_is_named() {
        let review = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":7}}"#;
        let error = Review::parse(review).unwrap_err().to_string();
        assert!(error.contains("request is invalid: request.uid: invalid type"), "{error}");
        let twice = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1"},"request":{"uid":"2"}}"#;
        assert!(Review::parse(twice).unwrap_err().to_string().contains("duplicate field `request`"));
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
