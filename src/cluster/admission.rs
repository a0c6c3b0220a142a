//! egate's validating webhook for its own policy objects: a `ClusterPolicy`
//! or `Policy` being created or updated is loaded exactly as
//! `--policies-from cluster` would load it, and refused with the engine's
//! message when it would not load. The CRD schema already refuses unknown
//! fields and bad enum values; this refuses what a schema cannot say: CEL
//! that does not compile, an unknown built-in, settings the module rejects.

use egate_engine::review::Review;
use egate_engine::{AdmissionResponse, PolicySet, RequestSummary, Sandbox};

use super::crd::{ClusterPolicy, Policy};
use super::policies::PolicyObject;

/// Whether an AdmissionReview is for an `egate.dev` object, read without
/// parsing the review (every other request skips this webhook's logic).
pub fn is_for_policy_object(body: &[u8]) -> bool {
    let group = egate_json::member(body, "request")
        .and_then(|request| egate_json::member(request, "resource"))
        .and_then(|resource| egate_json::member(resource, "group"));
    group == Some(br#""egate.dev""#)
}

/// Judges a review of a policy object: allowed when it loads (and for a
/// DELETE), denied with the load error otherwise.
pub fn judge(sandbox: &Sandbox, body: &[u8]) -> Result<(AdmissionResponse, RequestSummary), egate_engine::ReviewError> {
    let review = Review::parse(body)?;
    let summary = RequestSummary::from(&review.facts);
    Ok((judge_object(sandbox, &review), summary))
}

fn judge_object(sandbox: &Sandbox, review: &Review) -> AdmissionResponse {
    let facts = &review.facts;
    let allowed = AdmissionResponse::allow(facts.uid.to_string());
    let Some(object) = facts.object.filter(|_| facts.operation != "DELETE") else { return allowed };
    let policy = match facts.resource.resource.as_ref() {
        "clusterpolicies" => serde_json::from_str::<ClusterPolicy>(object).map(|o| PolicyObject::from_cluster(&o)),
        "policies" => serde_json::from_str::<Policy>(object).map(|o| PolicyObject::from_namespaced(&o)),
        _ => return allowed,
    };
    let message = match policy {
        Err(error) => format!("egate cannot read this policy object: {error}"),
        Ok(policy) => match PolicySet::from_manifests(sandbox, &policy.origin(), &policy.manifest) {
            Ok(_) => return allowed,
            Err(error) => format!("egate cannot load this policy, so it would judge nothing: {error}"),
        },
    };
    allowed.deny(400, message)
}
