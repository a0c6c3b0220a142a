//! Compiling one binding of one policy, and judging a request with it as
//! the API server's admission plugins do (`validating/dispatcher.go`,
//! `validating/validator.go`, `mutating/dispatcher.go` of
//! k8s.io/apiserver): decisions per validation, the binding's
//! `validationActions`, the first denial's message and reason, the
//! failure policy for errors, and mutations applied in order.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use kube_cel::cel::Value;
use kube_cel::cel::context::VariableResolver;
use serde_json::{Value as Json, json};

use super::constraints::{Constraints, namespace_labels};
use super::objects::{Kind, Objects};
use super::types::{
    FailurePolicy, MatchResources, ParamKind, ParamRef, ParameterNotFoundAction, PatchType, ValidationAction,
};
use super::{BoundPolicy, CompiledValidation, Document, Flavour, Params, Placed, compile_named, environment};
use crate::cel::cost::{self, Budget};
use crate::cel::{Bindings, CelExpression, CelRequest, Reads, params_value, to_json};
use crate::decision::Verdict;
use crate::error::LoadError;
use crate::matching::selector_holds;
use crate::review::RequestFacts;

/// The reasons a validation may give, with their HTTP status codes.
const REASONS: [(&str, u16); 4] =
    [("Unauthorized", 401), ("Forbidden", 403), ("Invalid", 422), ("RequestEntityTooLarge", 413)];

/// The longest `messageExpression` result used (the API server's limit).
const MAX_MESSAGE_BYTES: usize = 5 * 1024;

/// The longest audit annotation value kept (the API server's limit).
const MAX_ANNOTATION_BYTES: usize = 10 * 1024;

/// A compiled binding, and the `paramKind` whose objects it reads.
pub(super) struct Compiled {
    pub bound: BoundPolicy,
    pub param_kind: Option<ParamKind>,
}

/// The parts a ValidatingAdmissionPolicy and a MutatingAdmissionPolicy share.
struct Common<'a> {
    name: &'a str,
    param_kind: Option<&'a ParamKind>,
    constraints: &'a MatchResources,
    conditions: &'a [super::types::NamedExpression],
    variables: &'a [super::types::NamedExpression],
    failure_policy: Option<FailurePolicy>,
}

/// Compiles `binding` of `policy`; the error names the object and field.
pub(super) fn compile(policy: &Placed, binding: &Document, objects: &Arc<Objects>) -> Result<Compiled, LoadError> {
    // Both kinds of policy have these fields, in specs of their own types.
    macro_rules! common {
        ($policy:expr) => {
            Common {
                name: &$policy.metadata.name,
                param_kind: $policy.spec.param_kind.as_ref(),
                constraints: &$policy.spec.match_constraints,
                conditions: &$policy.spec.match_conditions,
                variables: &$policy.spec.variables,
                failure_policy: $policy.spec.failure_policy,
            }
        };
    }
    let common = match &policy.document {
        Document::ValidatingPolicy(p) => common!(p),
        Document::MutatingPolicy(p) => common!(p),
        _ => unreachable!("bind passes policies only"),
    };
    let (flavour, binding_name, param_ref, match_resources, actions) = match binding {
        Document::ValidatingBinding(b) => (
            Flavour::Validating,
            &b.metadata.name,
            b.spec.param_ref.as_ref(),
            b.spec.match_resources.as_ref(),
            b.spec.validation_actions.clone(),
        ),
        Document::MutatingBinding(b) => {
            (Flavour::Mutating, &b.metadata.name, b.spec.param_ref.as_ref(), b.spec.match_resources.as_ref(), vec![])
        }
        _ => unreachable!("bind passes bindings only"),
    };
    let kind = flavour.kind();
    let invalid = |message: String| LoadError::Manifest {
        path: policy.path.clone(),
        at: None,
        message: format!("{kind} {:?} (binding {binding_name:?}): {message}", common.name),
    };
    let cel_error = |rule: String, message: String| LoadError::Cel {
        policy: format!("{kind} {}", common.name),
        path: policy.path.clone(),
        rule,
        message,
    };
    check_actions(flavour, &actions).map_err(invalid)?;
    if common.constraints.resource_rules.is_empty() {
        return Err(invalid(
            "spec.matchConstraints.resourceRules is empty: name what it judges, e.g. {apiGroups: [\"\"], \
             apiVersions: [v1], operations: [UPDATE], resources: [pods/ephemeralcontainers]}"
                .into(),
        ));
    }
    let variable_names: Vec<&str> = common.variables.iter().map(|v| v.name.as_str()).collect();
    let variables = compile_named(common.variables, "spec.variables", &variable_names, true, &cel_error)?;
    // The API server evaluates matchConditions before variables: they cannot read them.
    let conditions = compile_named(common.conditions, "spec.matchConditions", &[], false, &cel_error)?;
    let plain = environment(&variable_names, false);
    let compile = |source: &str, field: String| {
        CelExpression::compile_in(source, &plain).map_err(|e| cel_error(field, e.to_string()))
    };
    let mut validations = Vec::new();
    let mut audit_annotations = Vec::new();
    let mut mutations = Vec::new();
    let mut reinvoke = false;
    match &policy.document {
        Document::ValidatingPolicy(p) => {
            if p.spec.validations.is_empty() && p.spec.audit_annotations.is_empty() {
                return Err(invalid(
                    "it has neither spec.validations nor spec.auditAnnotations: give it at least one".into(),
                ));
            }
            for (index, v) in p.spec.validations.iter().enumerate() {
                if let Some(reason) = v.reason.as_deref().filter(|r| !REASONS.iter().any(|(name, _)| name == r)) {
                    return Err(invalid(format!(
                        "spec.validations[{index}].reason is {reason:?}: write Unauthorized, Forbidden, Invalid or RequestEntityTooLarge"
                    )));
                }
                validations.push(CompiledValidation {
                    rule: compile(&v.expression, format!("spec.validations[{index}].expression"))?,
                    message: v.message.clone(),
                    message_expression: match &v.message_expression {
                        Some(source) => Some(compile(source, format!("spec.validations[{index}].messageExpression"))?),
                        None => None,
                    },
                    reason: v.reason.clone(),
                });
            }
            for (index, a) in p.spec.audit_annotations.iter().enumerate() {
                let field = format!("spec.auditAnnotations[{index}].valueExpression");
                audit_annotations.push((a.key.clone(), compile(&a.value_expression, field)?));
            }
        }
        Document::MutatingPolicy(p) => {
            if p.spec.mutations.is_empty() {
                return Err(invalid("spec.mutations is empty: give it at least one mutation".into()));
            }
            let building = environment(&variable_names, true);
            for (index, m) in p.spec.mutations.iter().enumerate() {
                let (field, expression) = match (m.patch_type, &m.apply_configuration, &m.json_patch) {
                    (PatchType::ApplyConfiguration, Some(e), None) => ("applyConfiguration", &e.expression),
                    (PatchType::JsonPatch, None, Some(e)) => ("jsonPatch", &e.expression),
                    _ => {
                        return Err(invalid(format!(
                            "spec.mutations[{index}]: patchType {:?} needs its own field and only it: \
                             applyConfiguration for ApplyConfiguration, jsonPatch for JSONPatch",
                            m.patch_type
                        )));
                    }
                };
                let compiled = CelExpression::compile_in(expression, &building)
                    .map_err(|e| cel_error(format!("spec.mutations[{index}].{field}.expression"), e.to_string()))?;
                mutations.push((m.patch_type, compiled));
            }
            reinvoke = super::reinvokes(p.spec.reinvocation_policy);
        }
        _ => unreachable!(),
    }
    let params = params_of(common.param_kind, param_ref).map_err(invalid)?;
    let mut bound = BoundPolicy {
        flavour,
        policy: common.name.to_string(),
        binding: binding_name.clone(),
        path: policy.path.clone(),
        constraints: Constraints::new(common.constraints),
        binding_constraints: match_resources.map(Constraints::new),
        conditions,
        variables,
        validations,
        audit_annotations,
        mutations,
        failure_policy: common.failure_policy.unwrap_or(FailurePolicy::Fail),
        actions,
        params,
        objects: objects.clone(),
        reinvoke,
        reads: Reads::default(),
    };
    let mut reads = Reads::default();
    for expression in bound.expressions() {
        reads.merge(expression.reads());
    }
    bound.reads = reads;
    Ok(Compiled { bound, param_kind: common.param_kind.cloned() })
}

/// The API server's rules for `validationActions`.
fn check_actions(flavour: Flavour, actions: &[ValidationAction]) -> Result<(), String> {
    if flavour == Flavour::Mutating {
        return Ok(());
    }
    if actions.is_empty() {
        return Err(
            "spec.validationActions of the binding is empty: write [Deny], [Warn], [Audit] or [Deny, Audit]".into()
        );
    }
    if actions.contains(&ValidationAction::Deny) && actions.contains(&ValidationAction::Warn) {
        return Err("spec.validationActions holds both Deny and Warn, which the API server refuses: keep one".into());
    }
    let mut seen = actions.to_vec();
    seen.dedup();
    if seen.len() != actions.len() {
        return Err("spec.validationActions names an action twice".into());
    }
    Ok(())
}

/// How a binding selects its params.
fn params_of(kind: Option<&ParamKind>, reference: Option<&ParamRef>) -> Result<Params, String> {
    let Some(kind) = kind else { return Ok(Params::None) };
    let Some(reference) = reference else { return Ok(Params::Missing) };
    if reference.name.is_some() == reference.selector.is_some() {
        return Err("spec.paramRef needs exactly one of name and selector".into());
    }
    let kind = Kind { api_version: kind.api_version.clone(), kind: kind.kind.clone() };
    Ok(Params::Select { reference: reference.clone(), kind })
}

/// The outcome of one binding: what the API server would do with it.
#[derive(Debug, Default)]
struct Judged {
    denial: Option<(String, u16)>,
    warnings: Vec<String>,
    failures: Vec<Json>,
    annotations: BTreeMap<String, String>,
    /// A mutating policy's object after its mutations, when they changed it.
    mutated: Option<Json>,
}

impl BoundPolicy {
    /// Judges a request: `None` when it does not match the policy and the
    /// binding (or a matchCondition is false); else what the binding
    /// concluded, as a verdict whose messages are the API server's.
    pub fn judge(&self, request: &CelRequest, facts: &RequestFacts) -> Option<Verdict> {
        let mut judged = Judged::default();
        match self.matches(facts) {
            Ok(false) => return None,
            Ok(true) => self.judge_matched(request, facts, &mut judged)?,
            Err(message) => judged.config_error(self, format!("failed to configure binding: {message}")),
        }
        Some(judged.into_verdict(self, request))
    }

    fn matches(&self, facts: &RequestFacts) -> Result<bool, String> {
        Ok(self.constraints.matches(facts, &self.objects, false)?
            && self.binding_constraints.as_ref().map_or(Ok(true), |c| c.matches(facts, &self.objects, true))?)
    }

    /// Each param in turn; `None` when nothing applied.
    fn judge_matched(&self, request: &CelRequest, facts: &RequestFacts, judged: &mut Judged) -> Option<()> {
        let params = match self.select_params(facts) {
            Ok(params) => params,
            Err(message) => {
                judged.config_error(self, format!("failed to configure binding: {message}"));
                return Some(());
            }
        };
        let mut applied = false;
        let mut object: Option<Json> = None;
        for param in params {
            let param = param.as_ref().map_or(Value::Null, params_value);
            let namespace = self.namespace_object(facts);
            let scope = Scope::new(request, &param, namespace.as_ref(), &self.variables);
            match self.conditions_hold(&scope) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(message) => {
                    applied = true;
                    judged.error(self, message, None);
                    continue;
                }
            }
            applied = true;
            match self.flavour {
                Flavour::Validating => self.validate(&scope, judged),
                Flavour::Mutating => {
                    object = self.mutate(request, object.take(), &param, namespace.as_ref(), judged);
                }
            }
        }
        judged.mutated = object;
        applied.then_some(())
    }

    /// The params the binding judges with: one null when the policy has
    /// none; the error is the API server's configuration error.
    fn select_params(&self, facts: &RequestFacts) -> Result<Vec<Option<Json>>, String> {
        let (reference, kind) = match &self.params {
            Params::None => return Ok(vec![None]),
            Params::Missing => {
                return Err("the policy has a paramKind, so the binding needs a paramRef: add spec.paramRef".into());
            }
            Params::Select { reference, kind } => (reference, kind),
        };
        let candidates = self.objects.of_kind(kind)?;
        let namespaced = candidates.iter().any(|o| o.pointer("/metadata/namespace").is_some());
        let request_namespace = facts.namespace.as_deref().filter(|n| !n.is_empty());
        let namespace = reference.namespace.as_deref().or(request_namespace);
        if namespaced && namespace.is_none() {
            return Err("the params are namespaced, the request is not, and spec.paramRef has no namespace".into());
        }
        let in_namespace =
            |o: &&Arc<Json>| !namespaced || o.pointer("/metadata/namespace").and_then(Json::as_str) == namespace;
        let selected: Vec<Option<Json>> = match (&reference.name, &reference.selector) {
            (Some(name), _) => candidates
                .iter()
                .filter(in_namespace)
                .filter(|o| o.pointer("/metadata/name").and_then(Json::as_str) == Some(name.as_str()))
                .map(|o| Some(o.as_ref().clone()))
                .collect(),
            (None, Some(selector)) => candidates
                .iter()
                .filter(in_namespace)
                .filter(|o| {
                    let labels = o.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
                    serde_json::from_value(labels).is_ok_and(|labels| selector_holds(selector, &labels))
                })
                .map(|o| Some(o.as_ref().clone()))
                .collect(),
            (None, None) => unreachable!("checked at load"),
        };
        if selected.is_empty() && reference.parameter_not_found_action == Some(ParameterNotFoundAction::Deny) {
            return Err("no params found for policy binding with `Deny` parameterNotFoundAction".into());
        }
        Ok(selected)
    }

    /// `namespaceObject`: null for a cluster-scoped request, `None` when
    /// egate does not know the namespace.
    fn namespace_object(&self, facts: &RequestFacts) -> Option<Value> {
        let Some(namespace) = facts.namespace.as_deref().filter(|n| !n.is_empty()) else { return Some(Value::Null) };
        let mut object = self.objects.namespace(namespace)?.as_ref().clone();
        object["metadata"]["labels"] = json!(namespace_labels(namespace, &self.objects)?);
        Some(params_value(&object))
    }

    /// Whether the matchConditions hold, as the API server's matcher
    /// decides: all are evaluated within their budget, one false is a
    /// miss whatever the others did, else errors are a failure.
    fn conditions_hold(&self, scope: &Scope) -> Result<bool, String> {
        let mut budget = Budget::new(cost::MATCH_CONDITIONS_BUDGET);
        let mut errors = Vec::new();
        for (_, condition) in &self.conditions {
            match budget.spend(|| condition.evaluate_bool(scope)).ok_or(cost::OUT_OF_BUDGET)? {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) => errors.push(scope.explain(condition, e)),
            }
        }
        match errors.len() {
            0 => Ok(true),
            1 => Err(errors.remove(0)),
            _ => Err(format!("[{}]", errors.join(", "))),
        }
    }

    /// Every validation and audit annotation, as `validator.go` decides
    /// them: the validations within one cost budget, the messages of those
    /// that fail within what is left of it, the audit annotations within a
    /// budget of their own. Running out of a budget is one error that
    /// replaces every other decision.
    fn validate(&self, scope: &Scope, judged: &mut Judged) {
        let mut budget = Budget::default();
        let outcomes: Option<Vec<_>> =
            self.validations.iter().map(|v| budget.spend(|| v.rule.evaluate_bool(scope))).collect();
        let Some(outcomes) = outcomes else { return judged.error(self, cost::OUT_OF_BUDGET.into(), None) };
        let messages: Option<Vec<Option<String>>> = self
            .validations
            .iter()
            .zip(&outcomes)
            .map(|(v, outcome)| match outcome {
                Ok(false) => v.message(scope, &mut budget).map(Some),
                _ => Some(None),
            })
            .collect();
        let mut annotation_budget = Budget::default();
        let annotations: Option<Vec<_>> =
            self.audit_annotations.iter().map(|(_, e)| annotation_budget.spend(|| e.evaluate(scope))).collect();
        let Some(annotations) = annotations else { return judged.error(self, cost::OUT_OF_BUDGET.into(), None) };
        let out_of_message_budget = messages.is_none();
        let mut messages = messages.unwrap_or_default().into_iter();
        for (index, (validation, outcome)) in self.validations.iter().zip(outcomes).enumerate() {
            let message = messages.next().flatten();
            match outcome {
                Err(e) => judged.error(self, scope.explain(&validation.rule, e), Some(index)),
                Ok(_) if out_of_message_budget => {
                    judged.error(self, format!("failed messageExpression: {}", cost::OUT_OF_BUDGET), Some(index))
                }
                Ok(true) => {}
                Ok(false) => {
                    let message = message.expect("a failing validation has a message");
                    judged.decide(self, index, message, validation.reason.as_deref());
                }
            }
        }
        for ((key, expression), value) in self.audit_annotations.iter().zip(annotations) {
            match value {
                Ok(Value::Null) => {}
                Ok(Value::String(value)) if value.trim().is_empty() => {}
                Ok(Value::String(value)) => {
                    let value = truncated(value.trim(), MAX_ANNOTATION_BYTES);
                    judged.annotations.insert(key.clone(), value.to_string());
                }
                Ok(_) => judged.error(
                    self,
                    format!(
                        "valueExpression '{}' resulted in unsupported return type: Return type must be either string or null.",
                        expression.source()
                    ),
                    None,
                ),
                Err(e) => judged.error(self, scope.explain(expression, e), None),
            }
        }
    }

    /// Every mutation in order, each seeing the object as the ones before
    /// left it; the object after them.
    fn mutate(
        &self,
        request: &CelRequest,
        object: Option<Json>,
        param: &Value,
        namespace: Option<&Value>,
        judged: &mut Judged,
    ) -> Option<Json> {
        let mut whole: Json = serde_json::from_str(request.json()).ok()?;
        if let Some(object) = object {
            whole["object"] = object;
        }
        if whole["object"].is_null() {
            return None;
        }
        let reads = Reads { object: crate::cel::Projection::whole(), old_object: crate::cel::Projection::whole() };
        let mut changed = false;
        for (patch_type, expression) in &self.mutations {
            let text = whole.to_string();
            let current = CelRequest::new(text.as_str(), &reads);
            let scope = Scope::new(&current, param, namespace, &self.variables);
            let result = expression
                .evaluate(&scope)
                .map_err(|e| scope.explain(expression, e))
                .and_then(|value| {
                    to_json(&value).map_err(|e| format!("expression '{}' built {e}", expression.source()))
                })
                .and_then(|built| mutated(*patch_type, &whole["object"], &built));
            match result {
                Ok(object) => {
                    changed |= object != whole["object"];
                    whole["object"] = object;
                }
                Err(message) => judged.config_error(self, message),
            }
        }
        changed.then(|| whole["object"].take())
    }
}

/// The object after one mutation's result.
fn mutated(patch_type: PatchType, object: &Json, built: &Json) -> Result<Json, String> {
    match patch_type {
        PatchType::ApplyConfiguration => {
            let api_version = object["apiVersion"].as_str().unwrap_or("v1");
            let kind = object["kind"].as_str().unwrap_or_default();
            super::apply::apply_configuration(api_version, kind, object, built)
                .map_err(|e| format!("error applying patch: {e}"))
        }
        PatchType::JsonPatch => {
            let patch: json_patch::Patch = serde_json::from_value(built.clone())
                .map_err(|e| format!("the JSONPatch expression built operations that are not JSON Patch: {e}"))?;
            let mut patched = object.clone();
            json_patch::patch_unsafe(&mut patched, &patch).map_err(|e| format!("JSON Patch does not apply: {e}"))?;
            Ok(patched)
        }
    }
}

impl CompiledValidation {
    /// `messageExpression` when it yields a usable string, else `message`,
    /// else `failed expression: EXPRESSION` (`validator.go`); `None` when
    /// the messageExpression costs more than is left of `budget`.
    fn message(&self, scope: &Scope, budget: &mut Budget) -> Option<String> {
        let evaluated = match &self.message_expression {
            Some(e) => budget.spend(|| e.evaluate_string(scope))?.ok(),
            None => None,
        };
        let usable = evaluated
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty() && m.len() <= MAX_MESSAGE_BYTES && !m.contains('\n'));
        Some(
            usable
                .or_else(|| self.message.as_deref().map(str::trim).filter(|m| !m.is_empty()).map(String::from))
                .unwrap_or_else(|| format!("failed expression: {}", self.rule.source().trim())),
        )
    }
}

impl Judged {
    /// A validation that is false.
    fn decide(&mut self, policy: &BoundPolicy, index: usize, message: String, reason: Option<&str>) {
        for action in &policy.actions {
            match action {
                ValidationAction::Deny if self.denial.is_none() => {
                    let code = REASONS.iter().find(|(name, _)| Some(*name) == reason).map_or(422, |(_, code)| *code);
                    self.denial = Some((message.clone(), code));
                }
                ValidationAction::Deny => {}
                ValidationAction::Warn => self.warnings.push(format!(
                    "Validation failed for ValidatingAdmissionPolicy '{}' with binding '{}': {message}",
                    policy.policy, policy.binding
                )),
                ValidationAction::Audit => self.failures.push(json!({
                    "message": message,
                    "policy": policy.policy,
                    "binding": policy.binding,
                    "expressionIndex": index,
                    "validationActions": policy.actions,
                })),
            }
        }
    }

    /// An expression that failed: a decision of the failure policy.
    fn error(&mut self, policy: &BoundPolicy, message: String, index: Option<usize>) {
        match (policy.flavour, policy.failure_policy) {
            (_, FailurePolicy::Ignore) => {}
            (Flavour::Validating, FailurePolicy::Fail) => self.decide(policy, index.unwrap_or(0), message, None),
            (Flavour::Mutating, FailurePolicy::Fail) => self.config_error(policy, message),
        }
    }

    /// An error outside the validations: it denies under `Fail`, whatever
    /// the binding's actions.
    fn config_error(&mut self, policy: &BoundPolicy, message: String) {
        if policy.failure_policy == FailurePolicy::Fail && self.denial.is_none() {
            self.denial = Some((message, if policy.flavour == Flavour::Mutating { 403 } else { 422 }));
        }
    }

    fn into_verdict(self, policy: &BoundPolicy, request: &CelRequest) -> Verdict {
        let mut audit_annotations = self.annotations;
        if !self.failures.is_empty() {
            audit_annotations.insert("validation_failure".into(), Json::Array(self.failures).to_string());
        }
        if let Some((message, code)) = self.denial {
            let message = match policy.flavour {
                Flavour::Validating => format!(
                    "ValidatingAdmissionPolicy '{}' with binding '{}' denied request: {message}",
                    policy.policy, policy.binding
                ),
                Flavour::Mutating => {
                    format!("policy '{}' with binding '{}' denied request: {message}", policy.policy, policy.binding)
                }
            };
            return Verdict::Violation { message, code: Some(code), warnings: self.warnings, audit_annotations };
        }
        let patch = self.mutated.map(|after| object_patch(request, &after)).unwrap_or_default();
        Verdict::Pass { warnings: self.warnings, audit_annotations, patch, grant_uses: Vec::new() }
    }
}

/// The JSON Patch from the request's object to `after`.
fn object_patch(request: &CelRequest, after: &Json) -> Vec<Json> {
    let before = egate_json::member(request.json().as_bytes(), "object")
        .and_then(|raw| serde_json::from_slice::<Json>(raw).ok())
        .unwrap_or(Json::Null);
    let patch = json_patch::diff(&before, after);
    match serde_json::to_value(patch) {
        Ok(Json::Array(ops)) => ops,
        _ => Vec::new(),
    }
}

fn truncated(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The variables of one evaluation: the request's, `params`,
/// `namespaceObject`, and the policy's `variables`, each evaluated the
/// first time an expression reads it.
struct Scope<'a> {
    bindings: Bindings<'a>,
    namespace: Option<&'a Value>,
    variables: &'a [(String, CelExpression)],
    values: Vec<OnceLock<Result<Value, String>>>,
}

impl<'a> Scope<'a> {
    fn new(
        request: &'a CelRequest<'a>,
        params: &'a Value,
        namespace: Option<&'a Value>,
        variables: &'a [(String, CelExpression)],
    ) -> Self {
        let values = variables.iter().map(|_| OnceLock::new()).collect();
        Self { bindings: Bindings { request, params }, namespace, variables, values }
    }

    fn variable(&self, name: &str) -> Option<&Result<Value, String>> {
        let index = self.variables.iter().position(|(n, _)| n == name)?;
        Some(self.values[index].get_or_init(|| {
            let expression = &self.variables[index].1;
            expression.evaluate(self).map_err(|e| self.explain(expression, e))
        }))
    }

    /// An evaluation error as the API server words it, with what egate
    /// cannot provide said plainly.
    fn explain(&self, expression: &CelExpression, error: String) -> String {
        // The authorizer's methods fail first, as undeclared functions.
        let asks_authorizer = error.contains("Undeclared reference") && expression.source().contains("authorizer");
        let error = if error.contains("'authorizer'") || asks_authorizer {
            "authorizer is not available in egate: it would ask the API server's authorizer, which egate does \
             not reach (judge permissions with `egate who-can-debug`, or test the rule in the API server)"
                .to_string()
        } else if error.contains("'namespaceObject'") {
            "namespaceObject is not known: add the v1 Namespace object of the request's namespace to the policy files, \
             or serve with --params-from cluster"
                .to_string()
        } else if let Some(name) = error.split("'variables.").nth(1).and_then(|rest| rest.split('\'').next()) {
            match self.variable(name) {
                Some(Err(cause)) => format!("variables.{name}: {cause}"),
                _ => error,
            }
        } else if let Some(key) = error.strip_prefix("No such key: ") {
            // As cel-go words it.
            format!("no such key: {key}")
        } else {
            error
        };
        format!("expression '{}' resulted in error: {error}", expression.source())
    }
}

impl VariableResolver for Scope<'_> {
    fn resolve(&self, variable: &str) -> Option<Value> {
        match variable {
            "namespaceObject" => self.namespace.cloned(),
            "authorizer" => None,
            _ => match variable.strip_prefix("variables.") {
                Some(name) => self.variable(name)?.as_ref().ok().cloned(),
                None => self.bindings.resolve(variable),
            },
        }
    }
}
