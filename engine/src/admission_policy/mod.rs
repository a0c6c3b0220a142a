//! Kubernetes' own admission policies, run as they are written:
//! ValidatingAdmissionPolicy and MutatingAdmissionPolicy
//! (`admissionregistration.k8s.io/v1`, and `v1beta1`), with their bindings
//! and params, beside egate's own policies in one set.
//!
//! A policy file may hold any mix of egate policies, Kubernetes policies,
//! their bindings, their params objects (a ConfigMap, or any kind a
//! `paramKind` names) and Namespace objects (whose labels a
//! `namespaceSelector` and `namespaceObject` read). Each binding of a
//! policy judges as the API server would judge with that binding:
//!
//! ```yaml
//! apiVersion: admissionregistration.k8s.io/v1
//! kind: ValidatingAdmissionPolicy
//! metadata: {name: debug-images}
//! spec:
//!   matchConstraints:
//!     resourceRules:
//!     - {apiGroups: [""], apiVersions: [v1], operations: [UPDATE], resources: [pods/ephemeralcontainers]}
//!   validations:
//!   - expression: "object.spec.ephemeralContainers.all(c, c.image.startsWith('registry.example/'))"
//!     message: debug images come from registry.example
//! ---
//! apiVersion: admissionregistration.k8s.io/v1
//! kind: ValidatingAdmissionPolicyBinding
//! metadata: {name: debug-images}
//! spec: {policyName: debug-images, validationActions: [Deny]}
//! ```
//!
//! Loading ([`bind`]) pairs each binding with its policy, finds its params
//! and compiles the CEL; [`BoundPolicy::judge`] decides one request.
//! What egate does not support is refused at load, naming the field.

mod apply;
mod constraints;
mod judge;
mod objects;
pub mod types;

pub use objects::{ClusterObjects, Kind, install_cluster_objects};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;

use crate::cel::{CelExpression, Environment, Reads};
use crate::error::LoadError;
use crate::manifest::{API_VERSION, Manifest, ManifestError, parse_manifests};
use constraints::Constraints;
use objects::Objects;
use types::{
    FailurePolicy, MutatingBinding, MutatingPolicy, NamedExpression, ParamKind, ParamRef, PatchType,
    ReinvocationPolicy, ValidatingBinding, ValidatingPolicy, ValidationAction,
};

/// One document of a policy file.
#[derive(Debug, Clone)]
pub enum Document {
    /// An egate policy.
    Egate(Box<Manifest>),
    /// A ValidatingAdmissionPolicy.
    ValidatingPolicy(Box<ValidatingPolicy>),
    /// A ValidatingAdmissionPolicyBinding.
    ValidatingBinding(Box<ValidatingBinding>),
    /// A MutatingAdmissionPolicy.
    MutatingPolicy(Box<MutatingPolicy>),
    /// A MutatingAdmissionPolicyBinding.
    MutatingBinding(Box<MutatingBinding>),
    /// Any other object: the params of a policy, or a Namespace.
    Object(Json),
}

/// `apiVersion` of a document, whatever else it holds.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    #[serde(default)]
    api_version: Option<String>,
}

/// Reads every document of a policy file. A file of egate policies only
/// is read as [`parse_manifests`] reads it (errors keep their line); a file
/// with other kinds is read document by document, errors naming the
/// document, its kind and name, and the field.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, ManifestError> {
    let kinds: Vec<TypeMeta> = crate::yaml::documents(text)
        .map_err(|(index, e)| ManifestError::new(format!("document {}: {}", index + 1, e.message)).at(e.at))?;
    let egate_only = kinds.iter().all(|k| k.api_version.as_deref().is_none_or(|v| v == API_VERSION));
    if egate_only {
        return Ok(parse_manifests(text)?.into_iter().map(|m| Document::Egate(Box::new(m))).collect());
    }
    let values: Vec<Json> = crate::yaml::documents(text)
        .map_err(|(index, e)| ManifestError::new(format!("document {}: {}", index + 1, e.message)).at(e.at))?;
    values
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            read_document(value).map_err(|e| ManifestError::new(format!("document {}: {e}", index + 1)))
        })
        .collect()
}

/// One document, by its apiVersion and kind.
fn read_document(value: Json) -> Result<Document, String> {
    let api_version = value.get("apiVersion").and_then(Json::as_str).unwrap_or_default().to_string();
    let kind = value.get("kind").and_then(Json::as_str).unwrap_or_default().to_string();
    let name = value.pointer("/metadata/name").and_then(Json::as_str).unwrap_or_default().to_string();
    let what = format!("{kind} {name:?}");
    if api_version == API_VERSION || ["ClusterPolicy", "Policy"].contains(&kind.as_str()) {
        let manifest: Manifest = typed(value).map_err(|e| format!("{what}: {e}"))?;
        manifest.check()?;
        return Ok(Document::Egate(Box::new(manifest)));
    }
    if !api_version.starts_with("admissionregistration.k8s.io/") || !types::KINDS.contains(&kind.as_str()) {
        return Ok(Document::Object(value));
    }
    if !types::API_VERSIONS.contains(&api_version.as_str()) {
        return Err(format!(
            "{what} is {api_version}, which egate does not read: write apiVersion: admissionregistration.k8s.io/v1"
        ));
    }
    let in_kind = |e: String| format!("{what}: {e}");
    Ok(match kind.as_str() {
        "ValidatingAdmissionPolicy" => Document::ValidatingPolicy(typed(value).map_err(in_kind)?),
        "ValidatingAdmissionPolicyBinding" => Document::ValidatingBinding(typed(value).map_err(in_kind)?),
        "MutatingAdmissionPolicy" => Document::MutatingPolicy(typed(value).map_err(in_kind)?),
        _ => Document::MutatingBinding(typed(value).map_err(in_kind)?),
    })
}

/// A JSON value as `T`; the error names the field path.
fn typed<T: serde::de::DeserializeOwned>(value: Json) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| match e.path().to_string() {
        path if path == "." => e.inner().to_string(),
        path => format!("{path}: {}", e.inner()),
    })
}

/// A document with the file it came from.
#[derive(Debug, Clone)]
pub struct Placed {
    /// The file (or origin) it came from.
    pub path: PathBuf,
    /// The document.
    pub document: Document,
}

/// Whether a policy validates or mutates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// A ValidatingAdmissionPolicy.
    Validating,
    /// A MutatingAdmissionPolicy.
    Mutating,
}

impl Flavour {
    /// The policy's kind.
    pub fn kind(self) -> &'static str {
        match self {
            Flavour::Validating => "ValidatingAdmissionPolicy",
            Flavour::Mutating => "MutatingAdmissionPolicy",
        }
    }
}

/// One binding of one policy, ready to judge requests.
pub struct BoundPolicy {
    flavour: Flavour,
    policy: String,
    binding: String,
    path: PathBuf,
    constraints: Constraints,
    binding_constraints: Option<Constraints>,
    conditions: Vec<(String, CelExpression)>,
    variables: Vec<(String, CelExpression)>,
    validations: Vec<CompiledValidation>,
    audit_annotations: Vec<(String, CelExpression)>,
    mutations: Vec<(PatchType, CelExpression)>,
    failure_policy: FailurePolicy,
    actions: Vec<ValidationAction>,
    params: Params,
    objects: Arc<Objects>,
    reinvoke: bool,
    reads: Reads,
}

/// A compiled `validations` entry.
struct CompiledValidation {
    rule: CelExpression,
    message: Option<String>,
    message_expression: Option<CelExpression>,
    reason: Option<String>,
}

/// Where a binding's params come from.
enum Params {
    /// The policy has no `paramKind`: `params` is null.
    None,
    /// The objects of its `paramKind`, and how the binding selects among them.
    Select { reference: ParamRef, kind: Kind },
    /// The policy has a `paramKind` but the binding no `paramRef`.
    Missing,
}

impl BoundPolicy {
    /// The name egate's results and metrics give it: the policy's name.
    pub fn name(&self) -> &str {
        &self.policy
    }

    /// The file of its policy.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it mutates.
    pub fn is_mutating(&self) -> bool {
        self.flavour == Flavour::Mutating
    }

    /// Whether it runs again, once, when a later mutation changed the object.
    pub fn reinvokes(&self) -> bool {
        self.reinvoke
    }

    /// What its expressions read of the objects.
    pub fn reads(&self) -> &Reads {
        &self.reads
    }

    /// The kind of its params, if it has any.
    pub fn param_kind(&self) -> Option<&Kind> {
        match &self.params {
            Params::Select { kind, .. } => Some(kind),
            Params::None | Params::Missing => None,
        }
    }

    /// Every CEL expression it evaluates.
    fn expressions(&self) -> impl Iterator<Item = &CelExpression> {
        let mut all: Vec<&CelExpression> = self.conditions.iter().chain(&self.variables).map(|(_, e)| e).collect();
        all.extend(self.validations.iter().flat_map(|v| std::iter::once(&v.rule).chain(&v.message_expression)));
        all.extend(self.audit_annotations.iter().map(|(_, e)| e));
        all.extend(self.mutations.iter().map(|(_, e)| e));
        all.into_iter()
    }
}

/// Pairs every binding with its policy and compiles them, in file order.
/// A binding of no policy, a policy with no binding, and an object that is
/// neither a Namespace nor any policy's params are errors.
pub fn bind(documents: &[Placed]) -> Result<Vec<BoundPolicy>, LoadError> {
    let found = Arc::new(Objects::new(objects(documents).map(|(_, o)| o.clone())));
    let mut bound = Vec::new();
    let mut used_kinds: Vec<ParamKind> = Vec::new();
    for placed in documents {
        let error = |message: String| LoadError::Manifest { path: placed.path.clone(), at: None, message };
        let (flavour, binding_name, policy_name) = match &placed.document {
            Document::ValidatingBinding(b) => (Flavour::Validating, &b.metadata.name, &b.spec.policy_name),
            Document::MutatingBinding(b) => (Flavour::Mutating, &b.metadata.name, &b.spec.policy_name),
            _ => continue,
        };
        let policy = policies(documents, flavour).find(|(_, name)| *name == policy_name).ok_or_else(|| {
            error(format!(
                "{}Binding {binding_name:?} binds spec.policyName {policy_name:?}, but there is no {} {policy_name:?} \
                 in these files: add it, or correct the name",
                flavour.kind(),
                flavour.kind()
            ))
        })?;
        let one = judge::compile(policy.0, &placed.document, &found)?;
        if let Some(kind) = one.param_kind.clone() {
            used_kinds.push(kind);
        }
        bound.push(one.bound);
    }
    for (placed, name) in policies(documents, Flavour::Validating).chain(policies(documents, Flavour::Mutating)) {
        if !bound.iter().any(|b| b.policy == *name && b.path == placed.path) {
            let kind = if matches!(placed.document, Document::MutatingPolicy(_)) { "Mutating" } else { "Validating" };
            return Err(LoadError::Manifest {
                path: placed.path.clone(),
                at: None,
                message: format!(
                    "{kind}AdmissionPolicy {name:?} has no binding in these files, so it judges nothing (as in the API \
                     server): add a {kind}AdmissionPolicyBinding with spec.policyName: {name}"
                ),
            });
        }
    }
    for (placed, object) in objects(documents) {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let is_params = used_kinds.iter().any(|k| k.api_version == api_version && k.kind == kind);
        if !(is_params || api_version == "v1" && kind == "Namespace") {
            let name = object.pointer("/metadata/name").and_then(Json::as_str).unwrap_or_default();
            return Err(LoadError::Manifest {
                path: placed.path.clone(),
                at: None,
                message: format!(
                    "{api_version} {kind} {name:?} is not a policy egate runs, nor the params of one (no paramKind \
                     names {api_version} {kind}), nor a Namespace: egate runs {API_VERSION} policies and \
                     admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy and MutatingAdmissionPolicy with \
                     their bindings; remove it, or name its kind in a paramKind"
                ),
            });
        }
    }
    Ok(bound)
}

/// The policies of `flavour`, with their names.
fn policies(documents: &[Placed], flavour: Flavour) -> impl Iterator<Item = (&Placed, &String)> {
    documents.iter().filter_map(move |placed| match (&placed.document, flavour) {
        (Document::ValidatingPolicy(p), Flavour::Validating) => Some((placed, &p.metadata.name)),
        (Document::MutatingPolicy(p), Flavour::Mutating) => Some((placed, &p.metadata.name)),
        _ => None,
    })
}

/// The other objects.
fn objects(documents: &[Placed]) -> impl Iterator<Item = (&Placed, &Json)> {
    documents.iter().filter_map(|placed| match &placed.document {
        Document::Object(object) => Some((placed, object)),
        _ => None,
    })
}

/// The variables every expression of a Kubernetes policy may read.
/// (`variables.NAME` is read as a variable of its own: see [`Environment`].)
const VARIABLES: [&str; 6] = ["object", "oldObject", "request", "params", "namespaceObject", "authorizer"];

/// The environment of an expression that may read the first `declared`
/// variables of its policy.
fn environment<'a>(variables: &'a [&'a str], objects_as_maps: bool) -> Environment<'a> {
    Environment { variables: &VARIABLES, composited: Some(variables), objects_as_maps }
}

/// Compiles a list of named expressions; each variable may read the ones
/// before it.
fn compile_named(
    list: &[NamedExpression],
    field: &str,
    declared: &[&str],
    in_order: bool,
    error: &dyn Fn(String, String) -> LoadError,
) -> Result<Vec<(String, CelExpression)>, LoadError> {
    list.iter()
        .enumerate()
        .map(|(index, named)| {
            let visible = if in_order { &declared[..index] } else { declared };
            CelExpression::compile_in(&named.expression, &environment(visible, false))
                .map(|e| (named.name.clone(), e))
                .map_err(|e| error(format!("{field}[{index}] ({:?}).expression", named.name), e.to_string()))
        })
        .collect()
}

/// `reinvocationPolicy: IfNeeded`.
fn reinvokes(policy: ReinvocationPolicy) -> bool {
    policy == ReinvocationPolicy::IfNeeded
}
