//! The validating built-ins of one request, judged together in one
//! instance of the built-in library.

use std::ops::Range;
use std::time::{Duration, Instant};

use egate_abi::inputs::Input;

use super::Policy;
use crate::inputs::{Inputs, cut, request_with};
use crate::review::RequestFacts;
use crate::sandbox::GuestError;
use egate_json::Selection;

/// What every batch of a set reads and needs: the union over the set's
/// batched policies, found once at load. A batch of some of them gets a
/// little more than it reads, never less (decisions are the same: the
/// `declared_reads` tests hold them to the whole request).
#[derive(Default)]
pub(super) struct BatchInputs {
    /// The union of their reads; `None` (the whole request) when one of
    /// them declares none.
    reads: Option<Selection>,
    /// The inputs any of them declares.
    inputs: Vec<Input>,
}

impl BatchInputs {
    pub(super) fn of(policies: &[Policy]) -> Self {
        let batched = || policies.iter().filter(|p| p.batched);
        let reads = batched().try_fold(Selection::default(), |mut union, p| {
            union.merge(p.reads.as_deref()?);
            Some(union)
        });
        let mut inputs: Vec<Input> = batched().flat_map(|p| p.inputs.iter().copied()).collect();
        inputs.sort();
        inputs.dedup();
        Self { reads, inputs }
    }
}

/// The validating built-ins of the bundled library that judge a request,
/// run in one instance of the library, which parses the request once.
/// Semantics are those of running each alone: if the batch fails in any way
/// (trap, deadline, output), each policy runs alone instead, so that a
/// failure is the failure of the policy that caused it.
pub(super) struct Batch<'p> {
    /// The module's output: a JSON array of decisions.
    output: Vec<u8>,
    /// Each policy's decision JSON in `output`.
    decisions: Vec<(&'p str, Range<usize>)>,
    elapsed: Duration,
}

impl<'p> Batch<'p> {
    /// Runs the batch when at least two policies can share it. The request
    /// is cut to `shared`'s reads and carries its inputs (what the set's
    /// batched policies read, found at load); when the inputs cannot be
    /// prepared, each policy runs alone and says so.
    pub(super) fn run(
        policies: &[&'p Policy],
        shared: &BatchInputs,
        request: &str,
        facts: &RequestFacts,
        inputs: &Inputs,
    ) -> Option<Self> {
        let members: Vec<&'p Policy> = policies.iter().copied().filter(|p| p.batched).collect();
        let module = members.first()?.module.as_ref()?;
        if members.len() < 2 {
            return None;
        }
        let request: std::borrow::Cow<str> = match &shared.reads {
            Some(reads) if !inputs.whole_requests => cut(request, reads, facts).into(),
            _ => request.into(),
        };
        let request = match shared.inputs.is_empty() {
            true => request,
            false => request_with(&request, &shared.inputs, inputs, facts).ok()?.into(),
        };
        let request = request.as_bytes();
        let started = Instant::now();
        let mut settings = b"[".to_vec();
        for (index, policy) in members.iter().enumerate() {
            if index > 0 {
                settings.push(b',');
            }
            settings.extend(&policy.settings);
        }
        settings.push(b']');
        let timeout_ms = members.iter().map(|p| p.timeout_ms).sum();
        let output = module.evaluate_batch(request, &settings, timeout_ms);
        let names: Vec<&'p str> = members.iter().map(|p| p.name.as_str()).collect();
        Self::read(&names, output, started.elapsed())
    }

    /// The batch's decisions, one per policy in order; `None` (each policy
    /// then runs alone) when the module failed or its output is not a list
    /// of exactly that many JSON values.
    fn read(policies: &[&'p str], output: Result<Vec<u8>, GuestError>, elapsed: Duration) -> Option<Self> {
        let output = output.ok()?;
        let found: Vec<&serde_json::value::RawValue> = serde_json::from_slice(&output).ok()?;
        if found.len() != policies.len() {
            return None;
        }
        let decisions = policies
            .iter()
            .zip(found)
            .map(|(&name, decision)| (name, egate_json::range_of(&output, decision.get().as_bytes())))
            .collect();
        Some(Self { output, decisions, elapsed })
    }

    pub(super) fn output_of(&self, policy: &str) -> Option<&[u8]> {
        let (_, range) = self.decisions.iter().find(|(name, _)| *name == policy)?;
        Some(&self.output[range.clone()])
    }

    /// Each member's share of the batch's time, for its trace.
    pub(super) fn share(&self) -> Duration {
        self.elapsed / self.decisions.len().max(1) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_that_fails_or_answers_badly_is_run_policy_by_policy() {
        let read = |output: Result<&[u8], GuestError>| {
            Batch::read(&["a", "b"], output.map(<[u8]>::to_vec), Duration::from_micros(10))
        };
        let batch = read(Ok(br#"[{"allowed": true}, {"allowed": false, "message": "no"}]"#)).unwrap();
        assert_eq!(batch.output_of("a"), Some(&br#"{"allowed": true}"#[..]));
        assert_eq!(batch.output_of("b"), Some(&br#"{"allowed": false, "message": "no"}"#[..]));
        assert_eq!(batch.share(), Duration::from_micros(5));
        // Each of these falls back to running the policies alone.
        assert!(read(Err(GuestError::Timeout(200))).is_none());
        assert!(read(Err(GuestError::Trap("unreachable".into()))).is_none());
        assert!(read(Ok(br#"[{"allowed": true}]"#)).is_none(), "one decision short");
        assert!(read(Ok(br#"[{"allowed": true}, {}, {}]"#)).is_none(), "one too many");
        assert!(read(Ok(br#"{"allowed": true}"#)).is_none(), "not a list");
        assert!(read(Ok(b"[{\"allowed\": tr")).is_none(), "not JSON");
    }
}
