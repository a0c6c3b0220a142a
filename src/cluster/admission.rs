//! egate's validating webhook for its own policy objects (`POST
//! /validate-policies`): a `ClusterPolicy`
//! or `Policy` being created or updated is loaded exactly as
//! `--policies-from cluster` would load it, and refused with the engine's
//! message when it would not load. The CRD schema already refuses unknown
//! fields and bad enum values; this refuses what a schema cannot say: CEL
//! that does not compile, an unknown built-in, settings the module rejects.

use egate_engine::review::Review;
use egate_engine::{AdmissionResponse, PolicySet, RequestSummary, Sandbox};

use super::crd::{ClusterPolicy, Policy};
use super::policies::PolicyObject;

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
        Ok(PolicyObject { problem: Some(problem), .. }) => format!("egate cannot load this policy: {problem}"),
        Ok(policy) => match PolicySet::from_manifests(sandbox, &policy.origin(), &policy.manifest) {
            Ok(_) => return allowed,
            Err(error) => format!("egate cannot load this policy, so it would judge nothing: {error}"),
        },
    };
    allowed.deny(400, message)
}
