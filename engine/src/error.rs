//! Errors of the engine, typed so callers can match on them. Each message
//! says what was wrong, where (file, policy, field) and what to do.

use std::path::PathBuf;

/// A policy set could not be loaded: nothing of it is used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A manifest file could not be read.
    #[error("cannot read policy manifest {path}: {source}")]
    ReadManifest {
        /// The manifest file egate was asked to load.
        path: PathBuf,
        /// Why reading it failed (not found, no permission, not UTF-8).
        source: std::io::Error,
    },

    /// A manifest is not valid YAML/JSON of the expected shape.
    #[error("invalid policy manifest {path}{}: {message}", at.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    Manifest {
        /// The manifest file (or the origin that stands for it, for text
        /// loaded from memory or a cluster object).
        path: PathBuf,
        /// Line and column, from 1, of the fault in the text, when the YAML
        /// parser knows it.
        at: Option<(usize, usize)>,
        /// What is wrong, naming the document (`document N: ...`) and the
        /// field.
        message: String,
    },

    /// The module of a policy could not be read or found.
    #[error("policy {policy:?} ({path}): {message}")]
    Module {
        /// The policy's name (`namespace/name` for a namespaced Policy).
        policy: String,
        /// The manifest file that declares the policy (or the origin that
        /// stands for it, for text loaded from memory or a cluster object).
        path: PathBuf,
        /// Why there is no module: a `builtin:` name this egate does not
        /// have, or a module file that cannot be read.
        message: String,
    },

    /// A module is not a valid egate guest (bad wasm, wrong ABI, imports).
    #[error("policy {policy:?} ({path}): module {module} is refused: {error}")]
    Abi {
        /// The policy's name (`namespace/name` for a namespaced Policy).
        policy: String,
        /// The manifest file that declares the policy (or the origin that
        /// stands for it, for text loaded from memory or a cluster object).
        path: PathBuf,
        /// The module as messages name it: its file, or `builtin:NAME`.
        module: String,
        /// Why the sandbox refused it.
        error: Box<crate::sandbox::ModuleError>,
    },

    /// A module's digest differs from the one the manifest pins.
    #[error(
        "policy {policy:?} ({path}): module {module} has digest {actual}, but spec.moduleDigest pins {expected}: \
             rebuild or fetch the pinned module, or update the pin"
    )]
    DigestMismatch {
        /// The policy's name (`namespace/name` for a namespaced Policy).
        policy: String,
        /// The manifest file that declares the policy (or the origin that
        /// stands for it, for text loaded from memory or a cluster object).
        path: PathBuf,
        /// The module as messages name it: its file, or `builtin:NAME`.
        module: String,
        /// The digest `spec.moduleDigest` pins, `sha256:HEX`.
        expected: String,
        /// The digest of the module bytes actually loaded, `sha256:HEX`.
        actual: String,
    },

    /// A policy's guest refused its settings.
    #[error("policy {policy:?} ({path}): invalid spec.settings: {message}")]
    Settings {
        /// The policy's name (`namespace/name` for a namespaced Policy).
        policy: String,
        /// The manifest file that declares the policy (or the origin that
        /// stands for it, for text loaded from memory or a cluster object).
        path: PathBuf,
        /// The module's reason for refusing them (the message of its
        /// settings verdict), or how it failed while checking them.
        message: String,
    },

    /// A CEL expression does not compile.
    #[error("policy {policy:?} ({path}): {rule}: {message}")]
    Cel {
        /// The policy's name (`namespace/name` for a namespaced Policy).
        policy: String,
        /// The manifest file that declares the policy (or the origin that
        /// stands for it, for text loaded from memory or a cluster object).
        path: PathBuf,
        /// Which expression: `matchConditions "NAME"`, or
        /// `validations[I].expression` / `validations[I].messageExpression`.
        rule: String,
        /// The CEL compiler's error.
        message: String,
    },

    /// Two policies share a name.
    #[error("policy name {name:?} is used twice ({first} and {second}): policy names must be unique")]
    DuplicateName {
        /// The policy name used twice (`namespace/name` for a namespaced
        /// Policy).
        name: String,
        /// The manifest (or origin) of the policy loaded first under it.
        first: PathBuf,
        /// The manifest (or origin) of the second policy with that name
        /// (the same as `first` when one file holds both).
        second: PathBuf,
    },

    /// The sandbox could not be set up.
    #[error("cannot set up the wasm sandbox: {0}")]
    Sandbox(String),
}

/// An AdmissionReview could not be judged because it is malformed.
/// (A policy that fails is not an error: it is decided by its `failurePolicy`.)
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The bytes are not JSON of an AdmissionReview.
    #[error("the AdmissionReview is not valid JSON: {0}")]
    Json(String),

    /// Wrong apiVersion or kind.
    #[error(
        "expected apiVersion admission.k8s.io/v1 and kind AdmissionReview, got apiVersion {api_version:?} and kind {kind:?}"
    )]
    WrongKind {
        /// The review's `apiVersion` (egate takes `admission.k8s.io/v1`).
        api_version: String,
        /// The review's `kind` (egate takes `AdmissionReview`).
        kind: String,
    },

    /// No `request` member.
    #[error("the AdmissionReview has no request: send one with request.uid, request.resource and request.operation")]
    MissingRequest,

    /// The request lacks a field routing needs.
    #[error("the AdmissionReview request is invalid: {0}")]
    InvalidRequest(String),
}
