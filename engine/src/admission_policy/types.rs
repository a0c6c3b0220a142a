//! The objects of `admissionregistration.k8s.io/v1` (and `v1beta1`, the
//! same shape) that egate runs: ValidatingAdmissionPolicy and
//! MutatingAdmissionPolicy with their bindings, as serde types.
//!
//! Every spec type refuses unknown fields, so a field egate does not
//! support is an error that names it rather than a rule silently dropped.
//! `metadata` and `status` are read leniently: a policy exported from a
//! cluster carries uid, resourceVersion, managedFields and a status, none
//! of which changes what it does.

use serde::Deserialize;

use crate::manifest::LabelSelector;

/// The API versions read; v1alpha1 MutatingAdmissionPolicy differs in shape.
pub const API_VERSIONS: [&str; 2] = ["admissionregistration.k8s.io/v1", "admissionregistration.k8s.io/v1beta1"];

/// The kinds of [`API_VERSIONS`] egate runs.
pub const KINDS: [&str; 4] = [
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
];

/// `metadata`: the name is what matters.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    /// The object's name.
    pub name: String,
    /// Its namespace, for a namespaced params object.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Its labels (a `paramRef.selector` selects params by them).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// An object of one of [`KINDS`].
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Object<Spec> {
    /// One of [`API_VERSIONS`].
    pub api_version: String,
    /// One of [`KINDS`].
    pub kind: String,
    /// Its name.
    pub metadata: Metadata,
    /// What it says.
    pub spec: Spec,
    /// Ignored: the API server's report.
    #[serde(default)]
    pub status: Option<serde::de::IgnoredAny>,
}

/// A ValidatingAdmissionPolicy.
pub type ValidatingPolicy = Object<ValidatingPolicySpec>;
/// A MutatingAdmissionPolicy.
pub type MutatingPolicy = Object<MutatingPolicySpec>;
/// A ValidatingAdmissionPolicyBinding.
pub type ValidatingBinding = Object<BindingSpec>;
/// A MutatingAdmissionPolicyBinding.
pub type MutatingBinding = Object<MutatingBindingSpec>;

/// `ValidatingAdmissionPolicy.spec`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ValidatingPolicySpec {
    /// The kind of the params its bindings select.
    #[serde(default)]
    pub param_kind: Option<ParamKind>,
    /// Which requests it judges.
    pub match_constraints: MatchResources,
    /// Rules the request must satisfy.
    #[serde(default)]
    pub validations: Vec<Validation>,
    /// What an error does: `Fail` (the default) or `Ignore`.
    #[serde(default)]
    pub failure_policy: Option<FailurePolicy>,
    /// Values written to the audit log.
    #[serde(default)]
    pub audit_annotations: Vec<AuditAnnotation>,
    /// CEL conditions that must all hold for it to judge a request.
    #[serde(default)]
    pub match_conditions: Vec<NamedExpression>,
    /// Named expressions the others read as `variables.NAME`.
    #[serde(default)]
    pub variables: Vec<NamedExpression>,
}

/// `MutatingAdmissionPolicy.spec`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MutatingPolicySpec {
    /// The kind of the params its bindings select.
    #[serde(default)]
    pub param_kind: Option<ParamKind>,
    /// Which requests it mutates.
    pub match_constraints: MatchResources,
    /// Named expressions the others read as `variables.NAME`.
    #[serde(default)]
    pub variables: Vec<NamedExpression>,
    /// The changes, in order.
    #[serde(default)]
    pub mutations: Vec<Mutation>,
    /// What an error does: `Fail` (the default) or `Ignore`.
    #[serde(default)]
    pub failure_policy: Option<FailurePolicy>,
    /// CEL conditions that must all hold for it to mutate a request.
    #[serde(default)]
    pub match_conditions: Vec<NamedExpression>,
    /// `Never` or `IfNeeded`: whether it runs again after later mutations
    /// (required, as the API server requires it).
    pub reinvocation_policy: ReinvocationPolicy,
}

/// `paramKind`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ParamKind {
    /// `v1`, `example.com/v1`.
    pub api_version: String,
    /// `ConfigMap`.
    pub kind: String,
}

/// `matchConstraints`, and a binding's `matchResources`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MatchResources {
    /// Labels of the request's namespace.
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    /// Labels of the object (or of the old object).
    #[serde(default)]
    pub object_selector: Option<LabelSelector>,
    /// What it judges.
    #[serde(default)]
    pub resource_rules: Vec<NamedRule>,
    /// What it does not judge, even when a resource rule matches.
    #[serde(default)]
    pub exclude_resource_rules: Vec<NamedRule>,
    /// `Equivalent` (the default) or `Exact`.
    #[serde(default)]
    pub match_policy: Option<MatchPolicy>,
}

/// A `resourceRules` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NamedRule {
    /// Names of the objects it is limited to.
    #[serde(default)]
    pub resource_names: Vec<String>,
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT` or `*`.
    #[serde(default)]
    pub operations: Vec<String>,
    /// API groups (`""` for the core group) or `*`.
    #[serde(default)]
    pub api_groups: Vec<String>,
    /// API versions or `*`.
    #[serde(default)]
    pub api_versions: Vec<String>,
    /// `pods`, `pods/ephemeralcontainers`, `pods/*`, `*/ephemeralcontainers`, `*`.
    #[serde(default)]
    pub resources: Vec<String>,
    /// `Cluster`, `Namespaced` or `*` (the default).
    #[serde(default)]
    pub scope: Option<String>,
}

/// A `validations` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Validation {
    /// CEL yielding a bool: false denies.
    pub expression: String,
    /// The message when it is false.
    #[serde(default)]
    pub message: Option<String>,
    /// `Unauthorized`, `Forbidden`, `Invalid` (the default) or `RequestEntityTooLarge`.
    #[serde(default)]
    pub reason: Option<String>,
    /// CEL yielding the message (wins over `message`).
    #[serde(default)]
    pub message_expression: Option<String>,
}

/// An `auditAnnotations` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuditAnnotation {
    /// The key, under the policy's name.
    pub key: String,
    /// CEL yielding a string (or null: no annotation).
    pub value_expression: String,
}

/// A `matchConditions` or `variables` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedExpression {
    /// Its name.
    pub name: String,
    /// CEL.
    pub expression: String,
}

/// A `mutations` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mutation {
    /// `ApplyConfiguration` or `JSONPatch`.
    pub patch_type: PatchType,
    /// The expression of an `ApplyConfiguration` mutation.
    #[serde(default)]
    pub apply_configuration: Option<ExpressionOnly>,
    /// The expression of a `JSONPatch` mutation.
    #[serde(default, rename = "jsonPatch")]
    pub json_patch: Option<ExpressionOnly>,
}

/// `{expression: ...}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpressionOnly {
    /// CEL.
    pub expression: String,
}

/// `ValidatingAdmissionPolicyBinding.spec`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BindingSpec {
    /// The policy it binds.
    pub policy_name: String,
    /// Which params it judges with.
    #[serde(default)]
    pub param_ref: Option<ParamRef>,
    /// Narrows what the policy judges.
    #[serde(default)]
    pub match_resources: Option<MatchResources>,
    /// `Deny`, `Warn`, `Audit`.
    #[serde(default)]
    pub validation_actions: Vec<ValidationAction>,
}

/// `MutatingAdmissionPolicyBinding.spec`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MutatingBindingSpec {
    /// The policy it binds.
    pub policy_name: String,
    /// Which params it mutates with.
    #[serde(default)]
    pub param_ref: Option<ParamRef>,
    /// Narrows what the policy mutates.
    #[serde(default)]
    pub match_resources: Option<MatchResources>,
}

/// `paramRef`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ParamRef {
    /// One params object by name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its namespace; default: the request's.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Every params object with these labels.
    #[serde(default)]
    pub selector: Option<LabelSelector>,
    /// `Allow` or `Deny` when none is found.
    #[serde(default)]
    pub parameter_not_found_action: Option<ParameterNotFoundAction>,
}

/// `failurePolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum FailurePolicy {
    /// An error denies.
    Fail,
    /// An error admits.
    Ignore,
}

/// `matchPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum MatchPolicy {
    /// Only the resources the rules name.
    Exact,
    /// Also the same resource under another version or group.
    Equivalent,
}

/// `validationActions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum ValidationAction {
    /// Deny the request.
    Deny,
    /// Warn the client.
    Warn,
    /// Record it in the audit log.
    Audit,
}

/// `parameterNotFoundAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ParameterNotFoundAction {
    /// No params: the binding judges nothing.
    Allow,
    /// No params: the request is denied.
    Deny,
}

/// `patchType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PatchType {
    /// A partial object merged as server-side apply merges.
    ApplyConfiguration,
    /// RFC 6902 operations.
    #[serde(rename = "JSONPatch")]
    JsonPatch,
}

/// `reinvocationPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ReinvocationPolicy {
    /// Once.
    Never,
    /// Again, once, when a later mutation changed the object.
    IfNeeded,
}
