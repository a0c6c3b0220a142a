//! Policies and policy sets: a loaded [`Policy`] judges one request with
//! its module and its CEL rules; a [`PolicySet`] is loaded from manifests
//! (`load`), judges an AdmissionReview with every matching policy
//! (`review`), and runs the validating built-ins together (`batch`).

mod batch;
mod load;
mod review;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use egate_json::Selection;

use egate_abi::inputs::Input;

use crate::admission_policy::BoundPolicy;
use crate::cel::{Bindings, CelExpression, CelRequest, Reads};
use crate::decision::{FailureCause, PolicyResult, Verdict, read_decision};
use crate::inputs::{Inputs, cut, request_with};
use crate::manifest::{FailurePolicy, ViolationAction};
use crate::matching::Matcher;
use crate::review::RequestFacts;
use crate::sandbox::GuestModule;

pub use review::{RequestSummary, TracedReview};

/// One loaded policy: its manifest's choices, its compiled module and its
/// checked settings.
pub struct Policy {
    name: String,
    manifest_path: PathBuf,
    action: ViolationAction,
    failure_policy: FailurePolicy,
    timeout_ms: u64,
    mutating: bool,
    matcher: Matcher,
    conditions: Vec<(String, CelExpression)>,
    validations: Vec<CelValidation>,
    module: Option<GuestModule>,
    settings: Vec<u8>,
    params: kube_cel::cel::Value,
    /// A validating built-in of the bundled library: it judges a request
    /// together with the other such policies, in one instance.
    batched: bool,
    /// Whether a background scan runs it (`spec.background`, resolved).
    background: bool,
    /// The inputs its module declares it reads: its request carries them.
    inputs: Vec<Input>,
    /// What its module declares it reads of the request; `None`: all of it.
    reads: Option<Arc<Selection>>,
    /// A binding of a Kubernetes ValidatingAdmissionPolicy or
    /// MutatingAdmissionPolicy: it alone judges (match, rules, messages).
    kubernetes: Option<Box<BoundPolicy>>,
}

/// A compiled `validations` entry.
struct CelValidation {
    rule: CelExpression,
    message: Option<String>,
    message_expression: Option<CelExpression>,
}

/// Which policies a review runs: the mutating ones, the validating ones,
/// or both (mutating first). One set can back both webhook configurations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Mutating policies, then validating ones.
    #[default]
    All,
    /// Only policies with `mutating: true` (a MutatingWebhookConfiguration).
    Mutate,
    /// Only the others (a ValidatingWebhookConfiguration).
    Validate,
    /// The validating policies that judge existing objects in a background
    /// scan (`spec.background`).
    Background,
}

impl Mode {
    fn runs(self, policy: &Policy) -> bool {
        match self {
            Mode::All => true,
            Mode::Mutate => policy.mutating,
            Mode::Validate => !policy.mutating,
            Mode::Background => !policy.mutating && policy.background,
        }
    }
}

impl Policy {
    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The manifest it came from.
    pub fn manifest_path(&self) -> &Path {
        &self.manifest_path
    }

    /// Judges a request that matched: `None` when a matchCondition is
    /// false, else the module's verdict joined with the CEL validations'.
    /// `decided` is the module's output when it already ran in a batch.
    fn judge(
        &self,
        request: &CelRequest,
        decided: Option<&[u8]>,
        facts: &RequestFacts,
        inputs: &Inputs,
    ) -> Option<Verdict> {
        if let Some(kubernetes) = &self.kubernetes {
            return kubernetes.judge(request, facts);
        }
        let bindings = Bindings { request, params: &self.params };
        for (name, condition) in &self.conditions {
            match condition.evaluate_bool(&bindings) {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    return Some(Verdict::Failure {
                        cause: FailureCause::Cel(format!("matchCondition {name:?} could not be evaluated: {e}")),
                    });
                }
            }
        }
        let verdict = match (&self.module, decided) {
            (Some(_), Some(output)) => self.read_decision(output),
            (Some(module), None) => match self.handed(request.json(), facts, inputs) {
                Err(cause) => Verdict::Failure { cause },
                Ok(handed) => match module.evaluate(handed.as_bytes(), &self.settings, self.timeout_ms) {
                    Ok(output) => self.read_decision(&output),
                    Err(e) => Verdict::Failure { cause: e.into() },
                },
            },
            (None, _) => Verdict::Pass {
                warnings: Vec::new(),
                audit_annotations: Default::default(),
                patch: Vec::new(),
                grant_uses: Vec::new(),
            },
        };
        if matches!(verdict, Verdict::Failure { .. }) {
            return Some(verdict);
        }
        match self.cel_violations(&bindings) {
            Ok(violations) if violations.is_empty() => Some(verdict),
            Ok(violations) => Some(add_violations(verdict, violations)),
            Err(cause) => Some(Verdict::Failure { cause: FailureCause::Cel(cause) }),
        }
    }

    /// The request its module is handed: as it is, or with the inputs the
    /// module declares.
    fn handed<'r>(
        &self,
        request: &'r str,
        facts: &RequestFacts,
        inputs: &Inputs,
    ) -> Result<std::borrow::Cow<'r, str>, FailureCause> {
        let request: std::borrow::Cow<str> = match &self.reads {
            Some(reads) if !inputs.whole_requests => cut(request, reads, facts).into(),
            _ => request.into(),
        };
        if self.inputs.is_empty() {
            return Ok(request);
        }
        request_with(&request, &self.inputs, inputs, facts).map(Into::into)
    }

    /// The inputs its module declares it reads.
    pub fn inputs(&self) -> &[Input] {
        &self.inputs
    }

    /// The message of every validation that is false.
    fn cel_violations(&self, bindings: &Bindings) -> Result<Vec<String>, String> {
        let mut violations = Vec::new();
        for (index, validation) in self.validations.iter().enumerate() {
            let holds = validation.rule.evaluate_bool(bindings).map_err(|e| {
                format!("validation {} (`{}`) could not be evaluated: {e}", index + 1, validation.rule.source())
            })?;
            if !holds {
                violations.push(validation.message(bindings));
            }
        }
        Ok(violations)
    }

    /// Reads the decision the module returned.
    fn read_decision(&self, output: &[u8]) -> Verdict {
        match read_decision(output) {
            Ok(decision) => Verdict::from_decision(decision, self.mutating),
            Err(cause) => Verdict::Failure { cause },
        }
    }

    /// What the policy's CEL expressions read of the objects.
    fn cel_reads(&self) -> Reads {
        let mut reads = self.kubernetes.as_ref().map(|k| k.reads().clone()).unwrap_or_default();
        let conditions = self.conditions.iter().map(|(_, e)| e);
        let validations = self.validations.iter().flat_map(|v| std::iter::once(&v.rule).chain(&v.message_expression));
        for expression in conditions.chain(validations) {
            reads.merge(expression.reads());
        }
        reads
    }

    /// Whether the policy may return patches.
    pub fn is_mutating(&self) -> bool {
        self.mutating
    }

    /// Whether a background scan judges existing objects with it.
    pub fn in_background(&self) -> bool {
        self.background && !self.mutating
    }

    fn result(&self, verdict: Verdict, elapsed: Duration) -> PolicyResult {
        PolicyResult {
            policy: self.name.clone(),
            action: self.action,
            failure_policy: self.failure_policy,
            verdict,
            elapsed,
            kubernetes_form: self.kubernetes.is_some(),
        }
    }

    /// A binding of a Kubernetes policy, as a policy of the set.
    fn kubernetes(bound: BoundPolicy) -> Self {
        Policy {
            name: bound.name().to_string(),
            manifest_path: bound.path().to_path_buf(),
            action: ViolationAction::Enforce,
            // Its failures are decided inside, as the API server decides them.
            failure_policy: FailurePolicy::Fail,
            timeout_ms: crate::manifest::DEFAULT_TIMEOUT_MS,
            mutating: bound.is_mutating(),
            matcher: Matcher::new(Default::default(), None),
            conditions: Vec::new(),
            validations: Vec::new(),
            module: None,
            settings: Vec::new(),
            params: kube_cel::cel::Value::Null,
            batched: false,
            background: false,
            inputs: Vec::new(),
            reads: None,
            kubernetes: Some(Box::new(bound)),
        }
    }
}

impl CelValidation {
    /// `messageExpression`, else `message`, else the expression itself (as
    /// ValidatingAdmissionPolicy does).
    fn message(&self, bindings: &Bindings) -> String {
        let fallback = || self.message.clone().unwrap_or_else(|| format!("failed expression: {}", self.rule.source()));
        match &self.message_expression {
            Some(expression) => expression.evaluate_string(bindings).unwrap_or_else(|_| fallback()),
            None => fallback(),
        }
    }
}

/// A verdict with CEL violations added: a pass becomes a violation (its
/// patch dropped), a violation lists both.
fn add_violations(verdict: Verdict, violations: Vec<String>) -> Verdict {
    let cel_message = violations.join("\n");
    match verdict {
        Verdict::Pass { warnings, audit_annotations, .. } => {
            Verdict::Violation { message: cel_message, code: None, warnings, audit_annotations }
        }
        Verdict::Violation { message, code, warnings, audit_annotations } => {
            Verdict::Violation { message: format!("{message}\n{cel_message}"), code, warnings, audit_annotations }
        }
        failure @ Verdict::Failure { .. } => failure,
    }
}

/// The policies egate judges requests with. Mutating policies run first,
/// in manifest order, each seeing the object as patched by those before;
/// then validating policies judge the final object.
pub struct PolicySet {
    policies: Vec<Policy>,
    /// What the CEL rules of all policies read of the objects.
    cel_reads: Reads,
    /// What a batch of its built-ins reads and needs.
    batch_inputs: batch::BatchInputs,
}
impl PolicySet {
    /// The loaded policies, mutating ones first.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// The kinds of the params its Kubernetes policies read, each once: what
    /// a host that serves params from the cluster watches.
    pub fn param_kinds(&self) -> Vec<crate::admission_policy::Kind> {
        let mut kinds: Vec<_> =
            self.policies.iter().filter_map(|p| p.kubernetes.as_ref()?.param_kind().cloned()).collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }
}
