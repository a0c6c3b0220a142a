//! Policy manifests: Kyverno-style YAML (or JSON), one policy per document.
//!
//! ```yaml
//! apiVersion: egate.dev/v1
//! kind: ClusterPolicy
//! metadata: {name: no-privileged-debug}
//! spec:
//!   failureAction: Enforce      # Enforce | Audit | Warn
//!   failurePolicy: Fail         # Fail | Ignore
//!   timeoutMs: 100
//!   match: {resources: [pods/ephemeralcontainers], operations: [UPDATE], namespaces: ["*"]}
//!   exclude: {namespaces: [kube-system]}
//!   module: builtin:privileged  # or a .wasm path relative to this file, or oci://REGISTRY/REPO:TAG
//!   settings: {}
//! ```
//!
//! Unknown fields are errors that name the field: a misspelt key must not
//! silently weaken a policy.

use std::path::{Path, PathBuf};

use egate_abi::Glob;
use serde::{Deserialize, Serialize};

use crate::error::LoadError;
use crate::yaml::YamlError;

/// The API version manifests declare.
pub const API_VERSION: &str = "egate.dev/v1";
/// Default evaluation deadline.
pub const DEFAULT_TIMEOUT_MS: u64 = 100;
/// Operations a `match.operations` entry may name.
const OPERATIONS: [&str; 5] = ["CREATE", "UPDATE", "DELETE", "CONNECT", "*"];

/// One policy manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Manifest {
    /// Must be `egate.dev/v1`.
    pub api_version: String,
    /// `ClusterPolicy` (or `Policy`).
    pub kind: String,
    /// The policy's name.
    pub metadata: Metadata,
    /// What the policy judges and how.
    pub spec: Spec,
}

/// Manifest metadata.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Unique name; every message of the policy starts with it.
    pub name: String,
    /// The namespace of a `kind: Policy`, the only one it judges.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Free-form labels.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Free-form annotations.
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// The policy's spec.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Spec {
    /// What a violation does.
    #[serde(default)]
    pub failure_action: ViolationAction,
    /// What a failure of the policy itself (trap, timeout, bad output) does.
    #[serde(default)]
    pub failure_policy: FailurePolicy,
    /// Evaluation deadline in milliseconds.
    #[serde(default = "default_timeout")]
    // Kubernetes' schemas know int64, not uint64.
    #[cfg_attr(feature = "schema", schemars(with = "i64"))]
    pub timeout_ms: u64,
    /// Which requests the policy judges.
    #[serde(rename = "match")]
    pub match_: ResourceFilter,
    /// Requests the policy skips even when they match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<ResourceFilter>,
    /// `builtin:NAME`, a path to a `.wasm` relative to the manifest, or
    /// `oci://REGISTRY/REPO:TAG` (or `@sha256:HEX`), a module in an OCI
    /// registry. Optional when `validations` say everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// CEL conditions that must all be true for the policy to judge a request.
    #[serde(default)]
    pub match_conditions: Vec<MatchCondition>,
    /// CEL rules the request must satisfy, evaluated in the host.
    #[serde(default)]
    pub validations: Vec<Validation>,
    /// `sha256:HEX` the module must have; loading fails on a mismatch.
    /// For an `oci://` module it is the digest of its OCI manifest (what
    /// `egate push` prints): it pins a tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_digest: Option<String>,
    /// A verification file (relative to the manifest) whose public keys
    /// must have signed the `oci://` module with cosign; loading fails
    /// when none did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_verification: Option<String>,
    /// Settings handed to the module, checked when the policy loads.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(schema_with = "crate::schema::any_value"))]
    pub settings: serde_json::Value,
    /// Whether the module may return JSON Patch operations.
    #[serde(default)]
    pub mutating: bool,
    /// Whether a background scan judges existing pods with the policy.
    /// Default: true for a validating policy that does not need what only
    /// a live request has (who sent it: see [`Spec::reads_requester`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<bool>,
}

/// Built-ins that judge the requester (userInfo), which a background scan
/// of existing pods does not have.
pub const BUILTINS_READING_THE_REQUESTER: [&str; 3] = ["target", "namespaces", "audit"];

impl Spec {
    /// Whether the policy needs the requester: a built-in that reads
    /// userInfo, or a CEL rule about `request.userInfo`.
    pub fn reads_requester(&self) -> bool {
        let builtin = self.module.as_deref().and_then(|m| m.strip_prefix("builtin:"));
        let cel = self.match_conditions.iter().map(|c| c.expression.as_str()).chain(
            self.validations
                .iter()
                .flat_map(|v| std::iter::once(v.expression.as_str()).chain(v.message_expression.as_deref())),
        );
        builtin.is_some_and(|b| BUILTINS_READING_THE_REQUESTER.contains(&b))
            || cel.into_iter().any(|expression| expression.contains("userInfo"))
    }

    /// `background`, or its default.
    pub fn runs_in_background(&self) -> bool {
        self.background.unwrap_or(!self.mutating && !self.reads_requester())
    }
}

/// A named CEL condition (`matchConditions`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MatchCondition {
    /// Name, used in messages.
    pub name: String,
    /// CEL expression yielding a bool.
    pub expression: String,
}

/// A CEL rule (`validations`): the request violates the policy when
/// `expression` is false.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Validation {
    /// CEL expression yielding a bool.
    pub expression: String,
    /// Message when it is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// CEL expression yielding the message (wins over `message`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_expression: Option<String>,
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// What a violation of the policy does to the request: the manifest field
/// `failureAction` (named as Kyverno names it; in Rust it is the action
/// taken on a violation, beside [`FailurePolicy`] for failures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum ViolationAction {
    /// Deny the request.
    #[default]
    Enforce,
    /// Allow it and record the violation as an audit annotation.
    Audit,
    /// Allow it and return the violation as a warning.
    Warn,
}

/// What happens when the policy cannot decide (trap, timeout, bad output).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum FailurePolicy {
    /// Deny the request.
    #[default]
    Fail,
    /// Allow it, with a warning naming the failure.
    Ignore,
}

/// `match` and `exclude`: which requests a policy concerns. An empty list
/// means any; globs are Kyverno-style (`*` any run, `/` included; `?` one).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ResourceFilter {
    /// `pods`, `pods/ephemeralcontainers`, `pods/*`.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<String>"))]
    pub resources: Vec<Glob>,
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT`, `*`.
    #[serde(default)]
    pub operations: Vec<String>,
    /// Namespace globs.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<String>"))]
    pub namespaces: Vec<Glob>,
    /// Labels of the object (`object`, else `oldObject`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Who sent the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subjects: Option<Subjects>,
}

/// A Kubernetes label selector.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels that must have these values.
    #[serde(default)]
    pub match_labels: std::collections::BTreeMap<String, String>,
    /// Set-based requirements.
    #[serde(default)]
    pub match_expressions: Vec<LabelRequirement>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct LabelRequirement {
    /// Label key.
    pub key: String,
    /// How the label is compared.
    pub operator: LabelOperator,
    /// Values for `In` and `NotIn`.
    #[serde(default)]
    pub values: Vec<String>,
}

/// `matchExpressions` operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum LabelOperator {
    /// The label's value is one of `values`.
    In,
    /// The label is absent or its value is none of `values`.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

/// Requesters a filter names; a request matches when its user matches any.
/// Names are globs.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Subjects {
    /// User names (`alice`, `system:serviceaccount:ns:name`).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<String>"))]
    pub users: Vec<Glob>,
    /// Groups.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<String>"))]
    pub groups: Vec<Glob>,
    /// Service accounts as `namespace/name`.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<String>"))]
    pub service_accounts: Vec<Glob>,
}

/// Where a module comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ModuleSource {
    /// A module of the library compiled into egate.
    Builtin(String),
    /// A `.wasm` file.
    File(PathBuf),
    /// A module in an OCI registry: the reference as written, `oci://...`.
    Oci(String),
}

impl Manifest {
    /// The name messages, metrics and reports give the policy: its
    /// `metadata.name`, or `NAMESPACE/NAME` for a namespaced `Policy`.
    pub fn policy_name(&self) -> String {
        match &self.metadata.namespace {
            Some(namespace) => format!("{namespace}/{}", self.metadata.name),
            None => self.metadata.name.clone(),
        }
    }

    /// Where the module comes from, a path resolved against `manifest_dir`;
    /// `None` for a CEL-only policy.
    pub fn module_source(&self, manifest_dir: &Path) -> Option<ModuleSource> {
        let module = self.spec.module.as_deref()?;
        Some(match module.strip_prefix("builtin:") {
            Some(name) => ModuleSource::Builtin(name.to_string()),
            None if module.starts_with(crate::oci::SCHEME) => ModuleSource::Oci(module.to_string()),
            None => ModuleSource::File(manifest_dir.join(module)),
        })
    }

    /// Checks what serde cannot: names, versions, operations, timeouts.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.api_version != API_VERSION {
            return Err(format!("apiVersion is {:?}: write apiVersion: {API_VERSION}", self.api_version));
        }
        match (self.kind.as_str(), &self.metadata.namespace) {
            ("ClusterPolicy", None) | ("Policy", Some(_)) => {}
            ("ClusterPolicy", Some(namespace)) => {
                return Err(format!(
                    "a ClusterPolicy judges every namespace and has no metadata.namespace, but this one has {namespace:?}: \
                     remove it, or write kind: Policy to judge only that namespace"
                ));
            }
            ("Policy", None) => {
                return Err(
                    "a Policy judges only its own namespace: give it a metadata.namespace, or write kind: ClusterPolicy"
                        .to_string(),
                );
            }
            (kind, _) => {
                return Err(format!(
                    "kind is {kind:?}: write kind: ClusterPolicy (or Policy, with a metadata.namespace)"
                ));
            }
        }
        let name = &self.metadata.name;
        let valid_name = !name.is_empty()
            && name.len() <= 63
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !valid_name {
            return Err(format!(
                "metadata.name {name:?} is not a valid name: use up to 63 lowercase letters, digits, '-' or '.'"
            ));
        }
        match self.spec.module.as_deref() {
            Some(module) if module.trim().is_empty() || module == "builtin:" => {
                return Err(format!(
                    "policy {name:?}: spec.module is empty: write builtin:NAME or a path to a .wasm file"
                ));
            }
            Some(module) if module.starts_with(crate::oci::SCHEME) && !is_oci_reference(module) => {
                return Err(format!(
                    "policy {name:?}: spec.module {module:?} is not an OCI reference: write \
                     oci://REGISTRY/REPOSITORY:TAG or oci://REGISTRY/REPOSITORY@sha256:HEX"
                ));
            }
            None if self.spec.validations.is_empty() => {
                return Err(format!(
                    "policy {name:?} judges nothing: give it a spec.module (builtin:NAME or a .wasm path) or spec.validations"
                ));
            }
            _ => {}
        }
        if let Some(digest) = &self.spec.module_digest {
            let hex = digest.strip_prefix("sha256:").unwrap_or_default();
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "policy {name:?}: spec.moduleDigest {digest:?} is not a digest: write sha256: and 64 hex digits \
                     (egate inspect MODULE prints it)"
                ));
            }
            if self.spec.module.is_none() {
                return Err(format!("policy {name:?}: spec.moduleDigest pins a module, but spec.module is not set"));
            }
        }
        if self.spec.module_verification.is_some()
            && !self.spec.module.as_deref().is_some_and(|m| m.starts_with(crate::oci::SCHEME))
        {
            return Err(format!(
                "policy {name:?}: spec.moduleVerification checks the cosign signature of an oci:// module, \
                 but spec.module is not one: remove it, or name the module by its oci:// reference"
            ));
        }
        if self.spec.mutating && self.spec.module.is_none() {
            return Err(format!("policy {name:?}: spec.mutating needs a spec.module that returns patches"));
        }
        for validation in &self.spec.validations {
            if validation.expression.trim().is_empty() {
                return Err(format!("policy {name:?}: a spec.validations entry has an empty expression"));
            }
        }
        if self.spec.timeout_ms == 0 || self.spec.timeout_ms > 30_000 {
            return Err(format!(
                "policy {name:?}: spec.timeoutMs must be between 1 and 30000, got {}",
                self.spec.timeout_ms
            ));
        }
        for (field, filter) in [("match", Some(&self.spec.match_)), ("exclude", self.spec.exclude.as_ref())] {
            if let Some(op) =
                filter.into_iter().flat_map(|f| &f.operations).find(|op| !OPERATIONS.contains(&op.as_str()))
            {
                return Err(format!(
                    "policy {name:?}: spec.{field}.operations holds {op:?}: use CREATE, UPDATE, DELETE, CONNECT or \"*\""
                ));
            }
        }
        if self.spec.match_.resources.is_empty() {
            return Err(format!(
                "policy {name:?}: spec.match.resources is empty: name what it judges, e.g. [pods/ephemeralcontainers]"
            ));
        }
        Ok(())
    }
}

/// Whether `module` has the shape `oci://REGISTRY/REPOSITORY` followed by
/// `:TAG` or `@sha256:HEX` (the registry and the client check the rest).
fn is_oci_reference(module: &str) -> bool {
    let Some((registry, rest)) = module.strip_prefix(crate::oci::SCHEME).and_then(|r| r.split_once('/')) else {
        return false;
    };
    let (repository, digest) = rest.split_once('@').unwrap_or((rest, ""));
    let tagged = repository.rsplit_once(':').is_some_and(|(repo, tag)| !repo.is_empty() && !tag.contains('/'));
    let digested = digest.strip_prefix("sha256:").is_some_and(|hex| hex.len() == 64);
    !registry.is_empty() && !repository.is_empty() && (tagged || digested) && (digest.is_empty() || digested)
}

/// Reads every policy of a manifest file (YAML documents separated by
/// `---`, or JSON).
pub fn read_manifests(path: &Path) -> Result<Vec<Manifest>, LoadError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| LoadError::ReadManifest { path: path.to_path_buf(), source })?;
    parse_manifests(&text).map_err(|error| error.in_file(path))
}

/// What is wrong with manifest text: the message names the document and
/// field; `at` is where in the text, when the YAML parser knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// `document N: ...`.
    pub message: String,
    /// Line and column, from 1, in the whole text.
    pub at: Option<(usize, usize)>,
}

impl ManifestError {
    pub(crate) fn new(message: String) -> Self {
        Self { message, at: None }
    }

    /// The error, at a place in the text.
    pub(crate) fn at(self, at: Option<(usize, usize)>) -> Self {
        Self { at, ..self }
    }

    /// A YAML error of document `index` (from 0), with its location.
    fn yaml(index: usize, error: YamlError) -> Self {
        Self { message: format!("document {}: {}", index + 1, error.message), at: error.at }
    }

    /// The [`LoadError`] of this error in the file (or origin) `path`.
    pub fn in_file(self, path: &Path) -> LoadError {
        LoadError::Manifest { path: path.to_path_buf(), at: self.at, message: self.message }
    }
}

impl std::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self.at {
            Some((line, column)) => write!(f, "{line}:{column}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Parses manifest text; the error says which document and field is wrong,
/// and where.
pub fn parse_manifests(text: &str) -> Result<Vec<Manifest>, ManifestError> {
    // Straight into the manifest type, so errors keep their location;
    // empty documents (e.g. a trailing `---`) are skipped.
    let manifests: Vec<Manifest> = crate::yaml::documents(text).map_err(|(index, e)| ManifestError::yaml(index, e))?;
    for (index, manifest) in manifests.iter().enumerate() {
        manifest.check().map_err(|e| ManifestError::new(format!("document {}: {e}", index + 1)))?;
    }
    if manifests.is_empty() {
        return Err(ManifestError::new("it holds no policy: write at least one ClusterPolicy document".into()));
    }
    Ok(manifests)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIVILEGED: &str = "
apiVersion: egate.dev/v1
kind: ClusterPolicy
metadata: {name: no-privileged}
spec:
  match: {resources: [pods/ephemeralcontainers], operations: [UPDATE]}
  module: builtin:privileged
";

    #[test]
    fn defaults_are_enforce_fail_and_100ms() {
        let m = &parse_manifests(PRIVILEGED).unwrap()[0];
        assert_eq!(m.spec.failure_action, ViolationAction::Enforce);
        assert_eq!(m.spec.failure_policy, FailurePolicy::Fail);
        assert_eq!(m.spec.timeout_ms, 100);
        assert_eq!(m.module_source(Path::new("/p")), Some(ModuleSource::Builtin("privileged".into())));
    }

    #[test]
    fn several_documents_and_json() {
        let two = format!("{PRIVILEGED}---\n{}\n---\n", PRIVILEGED.replace("no-privileged", "second"));
        assert_eq!(parse_manifests(&two).unwrap().len(), 2);
        let json = r#"{"apiVersion": "egate.dev/v1", "kind": "ClusterPolicy", "metadata": {"name": "j"},
                       "spec": {"match": {"resources": ["pods"]}, "module": "p.wasm"}}"#;
        let m = &parse_manifests(json).unwrap()[0];
        assert_eq!(m.module_source(Path::new("/p")), Some(ModuleSource::File("/p/p.wasm".into())));
    }

    #[test]
    fn oci_references_are_checked_and_routed() {
        let oci = |module: &str| PRIVILEGED.replace("builtin:privileged", module);
        let m = &parse_manifests(&oci("oci://127.0.0.1:5000/policies/privileged:v1")).unwrap()[0];
        assert_eq!(
            m.module_source(Path::new("/p")),
            Some(ModuleSource::Oci("oci://127.0.0.1:5000/policies/privileged:v1".into()))
        );
        let digest = format!("oci://r.example/p@sha256:{}", "a".repeat(64));
        assert!(parse_manifests(&oci(&digest)).is_ok());
        for bad in ["oci://r.example", "oci://r.example/p", "oci://r.example/p@sha256:abc", "oci:///p:v1"] {
            let err = parse_manifests(&oci(bad)).unwrap_err();
            assert!(err.message.contains("is not an OCI reference"), "{bad}: {err}");
        }
        let unsigned_file = PRIVILEGED.replace("spec:", "spec:\n  moduleVerification: keys.yaml");
        let err = parse_manifests(&unsigned_file).unwrap_err();
        assert!(err.message.contains("spec.moduleVerification checks the cosign signature"), "{err}");
    }

    #[test]
    fn unknown_fields_are_named() {
        let typo = PRIVILEGED.replace("module:", "failurePolicy: Fail\n  modul: x\n  module:");
        let err = parse_manifests(&typo).unwrap_err();
        assert!(err.message.contains("unknown field `modul`"), "{err}");
        // Line 8 of the text (after its leading newline), where `modul` stands.
        assert_eq!(err.at.map(|(line, _)| line), Some(8), "{err}");
        let in_file = err.in_file(Path::new("policies/p.yaml")).to_string();
        assert!(in_file.starts_with("invalid policy manifest policies/p.yaml:8:"), "{in_file}");
    }

    #[test]
    fn bad_values_say_what_to_write() {
        let err = parse_manifests(&PRIVILEGED.replace("UPDATE", "PATCH")).unwrap_err();
        assert!(err.message.contains("spec.match.operations holds \"PATCH\""), "{err}");
        let err = parse_manifests(&PRIVILEGED.replace("spec:", "spec:\n  failureAction: Deny")).unwrap_err();
        assert!(err.message.contains("unknown variant `Deny`"), "{err}");
        let err = parse_manifests(&PRIVILEGED.replace("egate.dev/v1", "kyverno.io/v1")).unwrap_err();
        assert!(err.message.contains("write apiVersion: egate.dev/v1"), "{err}");
        assert!(parse_manifests("").unwrap_err().message.contains("holds no policy"));
        let nothing = PRIVILEGED.replace("  module: builtin:privileged\n", "");
        assert!(parse_manifests(&nothing).unwrap_err().message.contains("judges nothing"));
    }

    #[test]
    fn selectors_subjects_and_cel_rules() {
        let text = PRIVILEGED.replace(
            "  module: builtin:privileged\n",
            "  match:\n    resources: [pods/ephemeralcontainers]\n    selector:\n      matchLabels: {app: web}\n      \
             matchExpressions: [{key: tier, operator: NotIn, values: [db]}]\n    subjects: {groups: [dev], serviceAccounts: [ci/deployer]}\n  \
             matchConditions: [{name: not-sre, expression: \"!('sre' in request.userInfo.groups)\"}]\n  \
             validations: [{expression: 'object.spec.ephemeralContainers.size() <= 3', message: at most 3}]\n",
        ).replacen("  match: {resources: [pods/ephemeralcontainers], operations: [UPDATE]}\n", "", 1);
        let m = &parse_manifests(&text).unwrap()[0];
        assert!(m.spec.module.is_none());
        let selector = m.spec.match_.selector.as_ref().unwrap();
        assert_eq!(selector.match_expressions[0].operator, LabelOperator::NotIn);
        assert_eq!(m.spec.match_.subjects.as_ref().unwrap().service_accounts, [Glob::new("ci/deployer")]);
        assert_eq!(m.spec.validations[0].message.as_deref(), Some("at most 3"));
    }
}
