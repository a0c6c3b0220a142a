//! `DebugGrant` (`egate.dev/v1`, namespaced): the custom resource that
//! lets users add debug containers to chosen pods for a while
//! (docs/grants.md). Its spec is the engine's [`GrantSpec`]; its approver
//! is the annotation egate's webhook writes when it is created
//! ([`APPROVED_BY`]); its status records each use.
//!
//! This module holds the kind, how a stored object becomes a grant the
//! request path can use ([`usable`]), and the webhook's checks of grants
//! being created, changed or deleted ([`judge`]).

use std::time::Duration;

use egate_engine::grants::{APPROVED_BY, Grant, GrantError, GrantIndex, GrantSpec};
use egate_engine::review::Review;
use egate_engine::{AdmissionResponse, RequestSummary};
use jiff::Timestamp;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{CustomResource, CustomResourceExt, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The spec of a `DebugGrant`: who may debug which pods, with what, and
/// for how long. Immutable once created: to change a grant, delete it and
/// approve a new one.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "egate.dev",
    version = "v1",
    kind = "DebugGrant",
    plural = "debuggrants",
    shortname = "dgrant",
    namespaced,
    status = "DebugGrantStatus",
    printcolumn = r#"{"name": "Users", "type": "string", "jsonPath": ".spec.subjects.users"}"#,
    printcolumn = r#"{"name": "Groups", "type": "string", "jsonPath": ".spec.subjects.groups"}"#,
    printcolumn = r#"{"name": "Profile", "type": "string", "jsonPath": ".spec.profile"}"#,
    printcolumn = r#"{"name": "Duration", "type": "string", "jsonPath": ".spec.duration"}"#,
    printcolumn = r#"{"name": "Approved-By", "type": "string", "jsonPath": ".metadata.annotations.egate\\.dev/approved-by"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(transparent)]
pub struct DebugGrantSpec(pub GrantSpec);

/// What egate recorded of a grant's use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DebugGrantStatus {
    /// The debug containers admitted under it, oldest first (the last
    /// [`USES_KEPT`]).
    #[serde(default)]
    pub uses: Vec<GrantUseRecord>,
    /// How many debug containers it admitted in all.
    #[serde(default)]
    pub use_count: i64,
}

/// How many uses a status keeps; `useCount` counts them all.
pub const USES_KEPT: usize = 50;

/// One debug container admitted under a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantUseRecord {
    /// When egate admitted it, RFC 3339.
    pub time: String,
    /// Who added it.
    pub user: String,
    /// The pod it was added to.
    pub pod: String,
    /// The ephemeral container's name.
    pub container: String,
    /// The admission request's uid, which the API server's audit log has
    /// too: a use is recorded once per uid.
    pub uid: String,
}

/// The `DebugGrant` definition, with the API server keeping the spec
/// immutable even when egate's webhook is not there to refuse a change.
pub fn definition() -> CustomResourceDefinition {
    let mut crd = DebugGrant::crd();
    for version in &mut crd.spec.versions {
        let spec = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
            .and_then(|s| s.properties.as_mut())
            .and_then(|p| p.get_mut("spec"));
        if let Some(spec) = spec {
            spec.x_kubernetes_validations =
                Some(vec![k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::ValidationRule {
                    rule: "self == oldSelf".into(),
                    message: Some(
                        "a DebugGrant's spec cannot change: revoke it (delete it) and approve a new one".into(),
                    ),
                    ..Default::default()
                }]);
        }
    }
    crd
}

/// The grant the request path can use for a stored object: the error says
/// why it cannot be used (no approver, bad duration).
pub fn usable(object: &DebugGrant) -> Result<Grant, GrantError> {
    let approved_by = object.annotations().get(APPROVED_BY).map(String::as_str);
    let created = object.metadata.creation_timestamp.as_ref().map_or_else(Timestamp::now, |t| t.0);
    Grant::from_object(
        object.namespace().as_deref().unwrap_or_default(),
        &object.name_any(),
        &object.spec.0,
        approved_by,
        created,
    )
}

/// The grants of `DebugGrant` objects written by hand or dumped with
/// `kubectl get debuggrants -o yaml` (a `List` is read item by item), for
/// `egate test` cases and `egate eval --grants`: an object without a
/// namespace is in `namespace`, one without a creation time was created
/// now. An object that is not a DebugGrant, or that no request could use
/// (no approver, a bad duration), is an error naming it.
pub fn index_of(objects: Vec<serde_json::Value>, namespace: &str) -> Result<GrantIndex, String> {
    let mut grants = Vec::new();
    let items = objects.into_iter().flat_map(|object| match object.get("items") {
        Some(serde_json::Value::Array(items)) if object["kind"].as_str().is_some_and(|k| k.ends_with("List")) => {
            items.clone()
        }
        _ => vec![object],
    });
    for (index, mut object) in items.enumerate() {
        let label = format!("grants[{index}] ({})", object["metadata"]["name"].as_str().unwrap_or("unnamed"));
        if object["metadata"]["namespace"].is_null() {
            object["metadata"]["namespace"] = namespace.into();
        }
        let grant: DebugGrant = serde_json::from_value(object).map_err(|e| {
            format!("{label} is not a DebugGrant (egate.dev/v1, with metadata and spec as docs/grants.md shows): {e}")
        })?;
        grants.push(usable(&grant).map_err(|e| format!("{label} cannot be used: {e}"))?);
    }
    Ok(GrantIndex::new(grants))
}

/// Judges a review of a `DebugGrant` for egate's webhooks: on
/// `/mutate-grants` a CREATE gets its approver written; on
/// `/validate-grants` a CREATE is refused when its creator could use it
/// (self-approval), its spec is incomplete or longer than `max`, or its
/// approver is not its creator, and an UPDATE that changes the spec or the
/// approver is refused.
pub fn judge(
    body: &[u8],
    mutate: bool,
    max: Duration,
) -> Result<(AdmissionResponse, RequestSummary), egate_engine::ReviewError> {
    let review = Review::parse(body)?;
    let summary = RequestSummary::from(&review.facts);
    let facts = &review.facts;
    let allowed = AdmissionResponse::allow(facts.uid.to_string());
    if facts.resource.resource != "debuggrants" || facts.sub_resource.as_deref().is_some_and(|s| !s.is_empty()) {
        return Ok((allowed, summary));
    }
    let object = match facts.object.map(serde_json::from_str::<DebugGrant>) {
        None => return Ok((allowed, summary)),
        Some(Err(error)) => {
            return Ok((allowed.deny(400, format!("egate cannot read this DebugGrant: {error}")), summary));
        }
        Some(Ok(object)) => object,
    };
    let user = facts.user_info.username.as_ref();
    let response = match (facts.operation.as_ref(), mutate) {
        ("CREATE", true) => allowed.with_patch(&approver_patch(&object, user)),
        ("CREATE", false) => match refuse_create(&object, user, &facts.user_info.groups, max) {
            Some(message) => allowed.deny(403, message),
            None => allowed,
        },
        ("UPDATE", false) => {
            let old = facts.old_object.and_then(|o| serde_json::from_str::<DebugGrant>(o).ok());
            match old.and_then(|old| refuse_update(&old, &object)) {
                Some(message) => allowed.deny(403, message),
                None => allowed,
            }
        }
        _ => allowed,
    };
    Ok((response, summary))
}

/// The JSON Patch that records the creator as the approver, over whatever
/// the object said.
fn approver_patch(object: &DebugGrant, user: &str) -> Vec<serde_json::Value> {
    let key = egate_abi::PatchOp::pointer(["metadata", "annotations", APPROVED_BY]);
    if object.metadata.annotations.is_none() {
        return vec![serde_json::json!({"op": "add", "path": "/metadata/annotations", "value": {APPROVED_BY: user}})];
    }
    vec![serde_json::json!({"op": "add", "path": key, "value": user})]
}

fn refuse_create<S: AsRef<str>>(object: &DebugGrant, user: &str, groups: &[S], max: Duration) -> Option<String> {
    let name = format!("DebugGrant {}/{}", object.namespace().unwrap_or_default(), object.name_any());
    let spec = &object.spec.0;
    if let Err(error) = spec.checked_duration(Some(max)) {
        return Some(format!("{name}: {error}"));
    }
    if spec.reason.trim().is_empty() {
        return Some(format!(
            "{name}: spec.reason is empty: say why the debug access is needed (an incident, a ticket)"
        ));
    }
    if spec.subjects.include(user, groups) {
        return Some(format!(
            "{name}: {user:?} cannot approve a grant they could use themselves (they are one of its subjects, or in \
             one of its groups): ask someone else with the egate-grant-approver role to approve it"
        ));
    }
    match object.annotations().get(APPROVED_BY) {
        Some(approver) if approver == user => None,
        other => Some(format!(
            "{name}: the {APPROVED_BY} annotation is egate's to write and must name the creator {user:?}, not {:?}: \
             is egate's mutating webhook for DebugGrants (mutate-grants.egate.dev) installed?",
            other.map(String::as_str).unwrap_or("nobody")
        )),
    }
}

fn refuse_update(old: &DebugGrant, new: &DebugGrant) -> Option<String> {
    let name = format!("DebugGrant {}/{}", new.namespace().unwrap_or_default(), new.name_any());
    if old.spec != new.spec {
        return Some(format!(
            "{name}: a DebugGrant's spec cannot change: revoke it (egate grant revoke, or kubectl delete) and \
             approve a new one"
        ));
    }
    if old.annotations().get(APPROVED_BY) != new.annotations().get(APPROVED_BY) {
        return Some(format!("{name}: the {APPROVED_BY} annotation cannot change: it records who approved the grant"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn grant(annotations: Value) -> Value {
        json!({
            "apiVersion": "egate.dev/v1", "kind": "DebugGrant",
            "metadata": {"name": "alice-web", "namespace": "shop", "annotations": annotations},
            "spec": {"subjects": {"users": ["alice"]}, "pods": {"names": ["web"]}, "images": ["busybox:*"],
                     "profile": "general", "duration": "30m", "reason": "INC-42"}
        })
    }

    fn review(operation: &str, user: &str, groups: &[&str], object: &Value, old: Option<&Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u1", "operation": operation, "namespace": "shop", "name": "alice-web",
                        "resource": {"group": "egate.dev", "version": "v1", "resource": "debuggrants"},
                        "userInfo": {"username": user, "groups": groups}, "object": object, "oldObject": old}
        }))
        .unwrap()
    }

    fn answer(body: &[u8], mutate: bool) -> AdmissionResponse {
        judge(body, mutate, Duration::from_secs(4 * 3600)).unwrap().0
    }

    fn message(response: &AdmissionResponse) -> &str {
        response.status.as_ref().map_or("", |s| s.message.as_str())
    }

    #[test]
    fn the_creator_is_recorded_as_the_approver() {
        let response = answer(&review("CREATE", "carol", &[], &grant(json!({APPROVED_BY: "mallory"})), None), true);
        assert!(response.allowed);
        let patch: Value = serde_json::from_slice(&base64_decode(response.patch.as_deref().unwrap())).unwrap();
        assert_eq!(
            patch,
            json!([{"op": "add", "path": "/metadata/annotations/egate.dev~1approved-by", "value": "carol"}])
        );
    }

    fn base64_decode(text: &str) -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(text).unwrap()
    }

    #[test]
    fn creation_is_refused_for_self_approval_too_long_forged_approvers_and_no_reason() {
        let approved = |by: &str| grant(json!({APPROVED_BY: by}));
        assert!(answer(&review("CREATE", "carol", &["approvers"], &approved("carol"), None), false).allowed);
        let own = answer(&review("CREATE", "alice", &[], &approved("alice"), None), false);
        assert!(message(&own).contains("\"alice\" cannot approve a grant they could use themselves"), "{own:?}");
        let mut by_group = approved("bob");
        by_group["spec"]["subjects"] = json!({"groups": ["sre"]});
        let group = answer(&review("CREATE", "bob", &["sre"], &by_group, None), false);
        assert!(message(&group).contains("cannot approve a grant they could use themselves"));
        let mut long = approved("carol");
        long["spec"]["duration"] = json!("5h");
        let long = answer(&review("CREATE", "carol", &[], &long, None), false);
        assert!(message(&long).contains("longer than this cluster's --max-grant-duration 4h"), "{long:?}");
        let forged = answer(&review("CREATE", "carol", &[], &approved("dave"), None), false);
        assert!(message(&forged).contains("must name the creator \"carol\", not \"dave\""), "{forged:?}");
        let mut unexplained = approved("carol");
        unexplained["spec"]["reason"] = json!(" ");
        assert!(message(&answer(&review("CREATE", "carol", &[], &unexplained, None), false)).contains("spec.reason"));
    }

    #[test]
    fn updates_may_not_change_the_spec_or_the_approver() {
        let old = grant(json!({APPROVED_BY: "carol"}));
        let mut longer = old.clone();
        longer["spec"]["duration"] = json!("2h");
        assert!(
            message(&answer(&review("UPDATE", "carol", &[], &longer, Some(&old)), false)).contains("cannot change")
        );
        let relabelled = grant(json!({APPROVED_BY: "carol", "note": "x"}));
        assert!(answer(&review("UPDATE", "carol", &[], &relabelled, Some(&old)), false).allowed);
        let reapproved = grant(json!({APPROVED_BY: "dave"}));
        let response = answer(&review("UPDATE", "dave", &[], &reapproved, Some(&old)), false);
        assert!(message(&response).contains("annotation cannot change"));
        assert!(answer(&review("DELETE", "carol", &[], &Value::Null, Some(&old)), false).allowed, "revoking");
    }

    #[test]
    fn a_stored_grant_is_usable_only_with_an_approver() {
        let object: DebugGrant = serde_json::from_value(grant(json!({}))).unwrap();
        assert_eq!(usable(&object).unwrap_err(), GrantError::NotApproved);
        let object: DebugGrant = serde_json::from_value(grant(json!({APPROVED_BY: "carol"}))).unwrap();
        assert_eq!(usable(&object).unwrap().key(), "shop/alice-web");
    }
}
