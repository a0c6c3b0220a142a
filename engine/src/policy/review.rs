//! Judging an AdmissionReview with a policy set: mutating policies first,
//! each seeing the object as patched by those before, then the validating
//! ones (the built-ins in one batch), combined into one response.

use std::time::Instant;

use serde_json::Value;

use super::batch::Batch;
use super::{Mode, Policy, PolicySet};
use crate::cel::CelRequest;
use crate::decision::{FailureCause, PolicyResult, Verdict, combine};
use crate::error::ReviewError;
use crate::inputs::Inputs;
use crate::review::{AdmissionResponse, RequestFacts, Review};

/// Who asked for what: the identity of a judged request, for logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestSummary {
    /// `request.uid`.
    pub uid: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Object name, empty when the request has none.
    pub name: String,
    /// `resource` or `resource/subresource`, as in `pods/ephemeralcontainers`.
    pub resource: String,
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub operation: String,
    /// `userInfo.username`.
    pub user: String,
}

impl From<&RequestFacts<'_>> for RequestSummary {
    fn from(f: &RequestFacts<'_>) -> Self {
        Self {
            uid: f.uid.to_string(),
            namespace: f.namespace.as_deref().unwrap_or_default().to_string(),
            name: f.name.as_deref().unwrap_or_default().to_string(),
            resource: match f.sub_resource.as_deref() {
                Some(sub) if !sub.is_empty() => format!("{}/{sub}", f.resource.resource),
                _ => f.resource.resource.to_string(),
            },
            operation: f.operation.to_string(),
            user: f.user_info.username.to_string(),
        }
    }
}

/// A judged request: the response, what each policy that judged it
/// concluded and how long it took, and who asked for what.
#[derive(Debug, Clone)]
pub struct TracedReview {
    /// What the API server is answered.
    pub response: AdmissionResponse,
    /// One per policy that judged the request, in the order they ran.
    pub results: Vec<PolicyResult>,
    /// The request's identity.
    pub request: RequestSummary,
}

impl TracedReview {
    /// The debug grants the request was admitted under, when it was
    /// admitted: for the host to record in each grant's status.
    pub fn grant_uses(&self) -> impl Iterator<Item = &egate_abi::inputs::GrantUse> {
        let admitted = self.response.allowed;
        self.results.iter().filter(move |_| admitted).flat_map(|r| match &r.verdict {
            Verdict::Pass { grant_uses, .. } => grant_uses.as_slice(),
            _ => &[],
        })
    }

    /// The policies that denied, in the order they ran.
    pub fn denied_by(&self) -> impl Iterator<Item = &str> {
        self.results.iter().filter(|r| r.denies()).map(|r| r.policy.as_str())
    }
}

impl PolicySet {
    /// Judges AdmissionReview bytes and returns the AdmissionReview
    /// response bytes.
    pub fn review_bytes(&self, review: &[u8]) -> Result<Vec<u8>, ReviewError> {
        let response = self.review(review)?;
        Ok(serde_json::to_vec(&response.into_review()).expect("a response always serialises"))
    }

    /// Judges AdmissionReview bytes with every matching policy.
    pub fn review(&self, review: &[u8]) -> Result<AdmissionResponse, ReviewError> {
        self.review_with(review, Mode::All)
    }

    /// Judges AdmissionReview bytes with the matching policies `mode` runs.
    /// Each mutating policy sees the object as patched by those before it.
    pub fn review_with(&self, review: &[u8], mode: Mode) -> Result<AdmissionResponse, ReviewError> {
        self.review_traced(review, mode).map(|traced| traced.response)
    }

    /// [`PolicySet::review_with`], also saying what each policy that judged
    /// the request concluded and how long it took (for metrics and logs).
    pub fn review_traced(&self, review: &[u8], mode: Mode) -> Result<TracedReview, ReviewError> {
        self.review_traced_with(review, mode, &Inputs::default())
    }

    /// [`PolicySet::review_traced`], handing the policies that declare
    /// inputs those of `inputs` (without them, such a policy fails under
    /// its `failurePolicy`, saying what is missing).
    pub fn review_traced_with(&self, review: &[u8], mode: Mode, inputs: &Inputs) -> Result<TracedReview, ReviewError> {
        let review = Review::parse(review)?;
        let request = CelRequest::with_objects(
            review.request,
            review.facts.object,
            review.facts.old_object,
            [review.facts.object_index.as_ref(), review.facts.old_object_index.as_ref()],
            &self.cel_reads,
        );
        let judging: Vec<&Policy> =
            self.policies.iter().filter(|p| mode.runs(p) && p.matcher.judges(&review.facts)).collect();
        // Mutating policies come first: once they are done the request is
        // final, and the validating built-ins can judge it in one batch.
        let mutating = judging.iter().take_while(|p| p.mutating).count();
        let mut step = Step { request, patch: Vec::new(), results: Vec::new() };
        // Which policies ran that a later change should run again
        // (`reinvocationPolicy: IfNeeded`), with the patch length then.
        let mut reinvocable: Vec<(&Policy, usize)> = Vec::new();
        for policy in &judging[..mutating] {
            step.judge(policy, None, &review.facts, inputs, &self.cel_reads);
            if policy.kubernetes.as_ref().is_some_and(|k| k.reinvokes()) {
                reinvocable.push((policy, step.patch.len()));
            }
        }
        // Once, as the API server does: each such policy again if another
        // changed the object after it ran.
        for (policy, seen) in reinvocable {
            if step.patch.len() > seen {
                step.judge(policy, None, &review.facts, inputs, &self.cel_reads);
            }
        }
        let validating = &judging[mutating..];
        let batch = Batch::run(validating, &self.batch_inputs, step.request.json(), &review.facts, inputs);
        for policy in validating {
            step.judge(policy, batch.as_ref(), &review.facts, inputs, &self.cel_reads);
        }
        let Step { patch, results, .. } = step;
        Ok(TracedReview {
            response: combine(&review.facts.uid, &results, &patch),
            results,
            request: RequestSummary::from(&review.facts),
        })
    }
}

/// A review under way: the request as patched so far, the patch, and
/// each policy's result.
struct Step<'r> {
    request: CelRequest<'r>,
    patch: Vec<Value>,
    results: Vec<PolicyResult>,
}

impl<'r> Step<'r> {
    /// Judges the request with `policy` (its decision from `batch` when it
    /// ran there), applying its patch for the policies after it.
    fn judge(
        &mut self,
        policy: &Policy,
        batch: Option<&Batch>,
        facts: &crate::review::RequestFacts,
        inputs: &Inputs,
        reads: &'r crate::cel::Reads,
    ) {
        let started = Instant::now();
        let decided = batch.and_then(|b| b.output_of(&policy.name));
        let Some(mut verdict) = policy.judge(&self.request, decided, facts, inputs) else { return };
        if let Verdict::Pass { patch: ops, .. } = &mut verdict
            && !ops.is_empty()
        {
            match apply_patch(self.request.json(), ops) {
                Ok(patched) => {
                    self.request = CelRequest::new(patched, reads);
                    self.patch.append(ops);
                }
                Err(cause) => verdict = Verdict::Failure { cause: FailureCause::BadPatch(cause) },
            }
        }
        let shared = batch.filter(|_| decided.is_some()).map(Batch::share).unwrap_or_default();
        self.results.push(policy.result(verdict, started.elapsed() + shared));
    }
}

/// Applies a policy's patch to the request's `object`, returning the
/// request JSON the next policy sees.
fn apply_patch(request: &str, ops: &[Value]) -> Result<String, String> {
    let patch: json_patch::Patch =
        serde_json::from_value(Value::Array(ops.to_vec())).map_err(|e| format!("is not RFC 6902 JSON Patch: {e}"))?;
    let mut request: Value =
        serde_json::from_str(request).map_err(|e| format!("cannot be applied: the request is not JSON: {e}"))?;
    let object = request
        .get_mut("object")
        .filter(|o| !o.is_null())
        .ok_or("does not apply: the request has no object to patch")?;
    // Not `json_patch::patch`: it undoes a failed patch in place, and panics
    // when the undo itself fails (found by fuzzing). On an error this copy
    // of the request is dropped anyway, so there is nothing to undo.
    json_patch::patch_unsafe(object, &patch).map_err(|e| format!("does not apply: {e}"))?;
    Ok(request.to_string())
}
