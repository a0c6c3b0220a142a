//! Policies and policy sets: loading manifests with their modules and
//! settings, and judging an AdmissionReview with every matching policy.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use crate::builtin;
use crate::cel::{Bindings, CelExpression, CelRequest, Reads, params_value};
use crate::decision::{FailureCause, GuestDecision, PolicyResult, Verdict, combine};
use crate::error::{LoadError, ReviewError};
use crate::manifest::{FailureAction, FailurePolicy, Manifest, ModuleSource, Validation, parse_manifests};
use crate::matching::Matcher;
use crate::review::{AdmissionResponse, RequestFacts, Review};
use crate::sandbox::{GuestError, GuestModule, Sandbox};

/// One loaded policy: its manifest's choices, its compiled module and its
/// checked settings.
pub struct Policy {
    name: String,
    manifest_path: PathBuf,
    action: FailureAction,
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
}

impl Mode {
    fn runs(self, policy: &Policy) -> bool {
        match self {
            Mode::All => true,
            Mode::Mutate => policy.mutating,
            Mode::Validate => !policy.mutating,
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
    fn judge(&self, request: &CelRequest, decided: Option<&[u8]>) -> Option<Verdict> {
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
            (Some(module), None) => match module.evaluate(request.json().as_bytes(), &self.settings, self.timeout_ms) {
                Ok(output) => self.read_decision(&output),
                Err(e) => Verdict::Failure { cause: e.into() },
            },
            (None, _) => {
                Verdict::Pass { warnings: Vec::new(), audit_annotations: Default::default(), patch: Vec::new() }
            }
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
        match GuestDecision::parse(output) {
            Ok(decision) => decision.into_verdict(self.mutating),
            Err(cause) => Verdict::Failure { cause },
        }
    }

    /// Every CEL expression of the policy.
    fn cel_expressions(&self) -> impl Iterator<Item = &CelExpression> {
        let conditions = self.conditions.iter().map(|(_, e)| e);
        let validations = self.validations.iter().flat_map(|v| std::iter::once(&v.rule).chain(&v.message_expression));
        conditions.chain(validations)
    }

    /// Whether the policy may return patches.
    pub fn is_mutating(&self) -> bool {
        self.mutating
    }

    fn result(&self, verdict: Verdict) -> PolicyResult {
        PolicyResult { policy: self.name.clone(), action: self.action, failure_policy: self.failure_policy, verdict }
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
        Verdict::Pass { warnings, .. } => Verdict::Violation { message: cel_message, code: None, warnings },
        Verdict::Violation { message, code, warnings } => {
            Verdict::Violation { message: format!("{message}\n{cel_message}"), code, warnings }
        }
        failure @ Verdict::Failure { .. } => failure,
    }
}

/// What one policy did with one request.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyTrace {
    /// The policy's name.
    pub policy: String,
    /// Time spent on it: matchConditions, module, CEL rules, patch.
    pub elapsed: Duration,
    /// What it concluded.
    pub outcome: Outcome,
    /// What a violation of it does.
    pub action: FailureAction,
    /// Whether it denied the request (an Enforce violation, or a failure
    /// under `failurePolicy: Fail`).
    pub denied: bool,
}

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

/// A judged request: the response, what each policy that judged it did,
/// and who asked for what.
#[derive(Debug, Clone)]
pub struct TracedReview {
    /// What the API server is answered.
    pub response: AdmissionResponse,
    /// One per policy that judged the request, in the order they ran.
    pub traces: Vec<PolicyTrace>,
    /// The request's identity.
    pub request: RequestSummary,
}

impl TracedReview {
    /// The policies that denied, in the order they ran.
    pub fn denied_by(&self) -> impl Iterator<Item = &str> {
        self.traces.iter().filter(|t| t.denied).map(|t| t.policy.as_str())
    }
}

/// A policy's conclusion, without its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The request passes (perhaps patched).
    Passed,
    /// The request violates it (what that does depends on its failureAction).
    Violated,
    /// It could not decide, and why.
    Failed(FailureCause),
}

impl From<&Verdict> for Outcome {
    fn from(verdict: &Verdict) -> Self {
        match verdict {
            Verdict::Pass { .. } => Outcome::Passed,
            Verdict::Violation { .. } => Outcome::Violated,
            Verdict::Failure { cause } => Outcome::Failed(cause.clone()),
        }
    }
}

/// The policies egate judges requests with. Mutating policies run first,
/// in manifest order, each seeing the object as patched by those before;
/// then validating policies judge the final object.
pub struct PolicySet {
    policies: Vec<Policy>,
    /// What the CEL rules of all policies read of the objects.
    cel_reads: Reads,
}

#[derive(Deserialize)]
struct SettingsVerdict {
    valid: bool,
    #[serde(default)]
    message: String,
}

impl PolicySet {
    /// Loads every policy of the manifest files, compiling modules and
    /// checking settings. Any error refuses the whole set.
    pub fn load(sandbox: &Sandbox, manifest_paths: &[PathBuf]) -> Result<Self, LoadError> {
        let mut texts = Vec::with_capacity(manifest_paths.len());
        for path in manifest_paths {
            let text = std::fs::read_to_string(path)
                .map_err(|source| LoadError::ReadManifest { path: path.clone(), source })?;
            texts.push((path.clone(), text));
        }
        Self::from_texts(sandbox, texts.iter().map(|(path, text)| (path.as_path(), text.as_str())))
    }

    /// Loads the policies of manifest text already in memory (a set
    /// compiled into a binary, or read from the API server). `origin`
    /// stands for the file the text would be: errors name it, and module
    /// paths are relative to its directory.
    ///
    /// ```no_run
    /// # use egate_engine::{PolicySet, Sandbox, SandboxConfig};
    /// # use std::path::Path;
    /// let sandbox = Sandbox::new(SandboxConfig::default()).unwrap();
    /// let text = "apiVersion: egate.dev/v1\nkind: ClusterPolicy\nmetadata: {name: p}\n\
    ///             spec: {match: {resources: [pods/ephemeralcontainers]}, module: builtin:privileged}\n";
    /// let set = PolicySet::from_manifests(&sandbox, Path::new("inline.yaml"), text).unwrap();
    /// assert_eq!(set.policies().len(), 1);
    /// ```
    pub fn from_manifests(sandbox: &Sandbox, origin: &Path, text: &str) -> Result<Self, LoadError> {
        Self::from_texts(sandbox, [(origin, text)])
    }

    /// Loads the manifest texts in order, each with its origin.
    fn from_texts<'a>(
        sandbox: &Sandbox,
        texts: impl IntoIterator<Item = (&'a Path, &'a str)>,
    ) -> Result<Self, LoadError> {
        let mut modules: HashMap<ModuleSource, LoadedModule> = HashMap::new();
        let mut library: Option<GuestModule> = None;
        let mut policies: Vec<Policy> = Vec::new();
        for (path, text) in texts {
            let manifests = parse_manifests(text).map_err(|error| error.in_file(path))?;
            for manifest in manifests {
                let policy = load_policy(sandbox, path, manifest, &mut modules, &mut library)?;
                if let Some(first) = policies.iter().find(|p| p.name == policy.name) {
                    return Err(LoadError::DuplicateName {
                        name: policy.name,
                        first: first.manifest_path.clone(),
                        second: path.to_path_buf(),
                    });
                }
                policies.push(policy);
            }
        }
        // Stable: manifest order is kept within each group.
        policies.sort_by_key(|p| !p.mutating);
        let mut cel_reads = Reads::default();
        for policy in &policies {
            for expression in policy.cel_expressions() {
                cel_reads.merge(expression.reads());
            }
        }
        Ok(Self { policies, cel_reads })
    }

    /// The loaded policies, mutating ones first.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

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
        let review = Review::parse(review)?;
        let mut traces = Vec::new();
        let mut request =
            CelRequest::with_objects(review.request, review.facts.object, review.facts.old_object, &self.cel_reads);
        let mut patch: Vec<Value> = Vec::new();
        let mut results = Vec::new();
        let judging: Vec<&Policy> =
            self.policies.iter().filter(|p| mode.runs(p) && p.matcher.judges(&review.facts)).collect();
        // Mutating policies come first: once they are done the request is
        // final, and the validating built-ins can judge it in one batch.
        let mutating = judging.iter().take_while(|p| p.mutating).count();
        let mut batch: Option<Batch> = None;
        for (index, policy) in judging.iter().enumerate() {
            if index == mutating {
                batch = Batch::run(&judging[mutating..], request.json().as_bytes());
            }
            let started = Instant::now();
            let decided = batch.as_ref().and_then(|b| b.output_of(&policy.name));
            let Some(mut verdict) = policy.judge(&request, decided) else { continue };
            if let Verdict::Pass { patch: ops, .. } = &mut verdict
                && !ops.is_empty()
            {
                match apply_patch(request.json(), ops) {
                    Ok(patched) => {
                        request = CelRequest::new(patched, &self.cel_reads);
                        patch.append(ops);
                    }
                    Err(cause) => verdict = Verdict::Failure { cause: FailureCause::BadPatch(cause) },
                }
            }
            let shared = batch.as_ref().filter(|_| decided.is_some()).map(Batch::share).unwrap_or_default();
            let result = policy.result(verdict);
            traces.push(PolicyTrace {
                policy: policy.name.clone(),
                elapsed: started.elapsed() + shared,
                outcome: (&result.verdict).into(),
                action: result.action,
                denied: result.denies(),
            });
            results.push(result);
        }
        Ok(TracedReview {
            response: combine(&review.facts.uid, &results, &patch),
            traces,
            request: RequestSummary::from(&review.facts),
        })
    }
}

/// The validating built-ins of the bundled library that judge a request,
/// run in one instance of the library, which parses the request once.
/// Semantics are those of running each alone: if the batch fails in any way
/// (trap, deadline, output), each policy runs alone instead, so that a
/// failure is the failure of the policy that caused it.
struct Batch<'p> {
    /// The module's output: a JSON array of decisions.
    output: Vec<u8>,
    /// Each policy's decision JSON in `output`.
    decisions: Vec<(&'p str, Range<usize>)>,
    elapsed: Duration,
}

impl<'p> Batch<'p> {
    /// Runs the batch when at least two policies can share it.
    fn run(policies: &[&'p Policy], request: &[u8]) -> Option<Self> {
        let members: Vec<&'p Policy> = policies.iter().copied().filter(|p| p.batched).collect();
        let module = members.first()?.module.as_ref()?;
        if members.len() < 2 {
            return None;
        }
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

    fn output_of(&self, policy: &str) -> Option<&[u8]> {
        let (_, range) = self.decisions.iter().find(|(name, _)| *name == policy)?;
        Some(&self.output[range.clone()])
    }

    /// Each member's share of the batch's time, for its trace.
    fn share(&self) -> Duration {
        self.elapsed / self.decisions.len().max(1) as u32
    }
}

fn load_policy(
    sandbox: &Sandbox,
    path: &Path,
    manifest: Manifest,
    modules: &mut HashMap<ModuleSource, LoadedModule>,
    library: &mut Option<GuestModule>,
) -> Result<Policy, LoadError> {
    let name = manifest.metadata.name.clone();
    let mut bundled_as: Option<String> = None;
    let module = match manifest.module_source(path.parent().unwrap_or(Path::new("."))) {
        Some(source) => {
            let loaded = match modules.get(&source) {
                Some(loaded) => loaded.clone(),
                None => {
                    let loaded = compile(sandbox, path, &name, &source)?;
                    modules.insert(source.clone(), loaded.clone());
                    loaded
                }
            };
            let loaded = match (&source, builtin::library()) {
                (ModuleSource::Builtin(builtin), Some(bytes)) => {
                    bundled_as = Some(builtin.clone());
                    LoadedModule { module: bundled_library(sandbox, path, &name, bytes, library)?, ..loaded }
                }
                _ => loaded,
            };
            if let Some(expected) = manifest.spec.module_digest.as_ref().filter(|pin| **pin != loaded.digest) {
                return Err(LoadError::DigestMismatch {
                    policy: name,
                    path: path.to_path_buf(),
                    module: loaded.label,
                    expected: expected.clone(),
                    actual: loaded.digest,
                });
            }
            Some(loaded.module)
        }
        None => None,
    };
    let spec = manifest.spec;
    let settings = match &bundled_as {
        // The built-in library learns which policy to run from its settings.
        Some(builtin) => serde_json::to_vec(&serde_json::json!({"policy": builtin, "settings": spec.settings})),
        None => serde_json::to_vec(&spec.settings),
    }
    .expect("JSON values serialise");
    if let Some(module) = &module {
        check_settings(module, &settings, spec.timeout_ms).map_err(|message| LoadError::Settings {
            policy: name.clone(),
            path: path.to_path_buf(),
            message,
        })?;
    }
    let cel_error = |rule: String, message: String| LoadError::Cel {
        policy: name.clone(),
        path: path.to_path_buf(),
        rule,
        message,
    };
    let conditions = spec
        .match_conditions
        .iter()
        .map(|c| {
            CelExpression::compile(&c.expression)
                .map(|e| (c.name.clone(), e))
                .map_err(|e| cel_error(format!("matchConditions {:?}", c.name), e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let validations = spec
        .validations
        .iter()
        .enumerate()
        .map(|(i, v)| compile_validation(v).map_err(|(field, m)| cel_error(format!("validations[{i}].{field}"), m)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Policy {
        name,
        manifest_path: path.to_path_buf(),
        action: spec.failure_action,
        failure_policy: spec.failure_policy,
        timeout_ms: spec.timeout_ms,
        mutating: spec.mutating,
        matcher: Matcher::new(spec.match_, spec.exclude),
        conditions,
        validations,
        batched: bundled_as.is_some() && !spec.mutating && module.as_ref().is_some_and(GuestModule::can_batch),
        module,
        settings,
        params: params_value(&spec.settings),
    })
}

/// Asks the module whether it accepts the settings; the error is its message.
fn check_settings(module: &GuestModule, settings: &[u8], timeout_ms: u64) -> Result<(), String> {
    let output = module
        .validate_settings(settings, timeout_ms)
        .map_err(|e| format!("the module failed while checking them: {e}"))?;
    let verdict: SettingsVerdict = serde_json::from_slice(&output)
        .map_err(|e| format!("the module's egate_validate_settings returned no verdict JSON: {e}"))?;
    if verdict.valid { Ok(()) } else { Err(verdict.message) }
}

/// Compiles a validation; the error names the field at fault.
fn compile_validation(validation: &Validation) -> Result<CelValidation, (&'static str, String)> {
    let rule = CelExpression::compile(&validation.expression).map_err(|e| ("expression", e.to_string()))?;
    let message_expression = match &validation.message_expression {
        Some(source) => Some(CelExpression::compile(source).map_err(|e| ("messageExpression", e.to_string()))?),
        None => None,
    };
    Ok(CelValidation { rule, message: validation.message.clone(), message_expression })
}

/// The built-in library module, compiled once per load and shared by every
/// built-in policy, so they share one copy of their code.
fn bundled_library(
    sandbox: &Sandbox,
    path: &Path,
    policy: &str,
    bytes: &[u8],
    library: &mut Option<GuestModule>,
) -> Result<GuestModule, LoadError> {
    if let Some(module) = library {
        return Ok(module.clone());
    }
    let module = sandbox.load(bytes).map_err(|error| LoadError::Abi {
        policy: policy.into(),
        path: path.to_path_buf(),
        module: "the built-in library".into(),
        error: Box::new(error),
    })?;
    *library = Some(module.clone());
    Ok(module)
}

/// A compiled module with what names it in messages.
#[derive(Clone)]
struct LoadedModule {
    module: GuestModule,
    label: String,
    /// `sha256:HEX` of the module bytes.
    digest: String,
}

fn compile(sandbox: &Sandbox, path: &Path, policy: &str, source: &ModuleSource) -> Result<LoadedModule, LoadError> {
    let module_error = |message: String| LoadError::Module { policy: policy.into(), path: path.to_path_buf(), message };
    let (label, bytes): (String, Cow<[u8]>) = match source {
        ModuleSource::Builtin(name) => {
            let bytes = builtin::module(name).ok_or_else(|| module_error(builtin::unknown(name)))?;
            (format!("builtin:{name}"), Cow::Borrowed(bytes))
        }
        ModuleSource::File(file) => {
            let bytes =
                std::fs::read(file).map_err(|e| module_error(format!("cannot read module {}: {e}", file.display())))?;
            (file.display().to_string(), Cow::Owned(bytes))
        }
    };
    let digest = format!("sha256:{}", crate::cache::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes)));
    let module = sandbox.load(&bytes).map_err(|error| LoadError::Abi {
        policy: policy.into(),
        path: path.to_path_buf(),
        module: label.clone(),
        error: Box::new(error),
    })?;
    Ok(LoadedModule { module, label, digest })
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
