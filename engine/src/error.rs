//! Errors of the engine, typed so callers can match on them. Each message
//! says what was wrong, where (file, policy, field) and what to do.

use std::path::PathBuf;

/// A policy set could not be loaded: nothing of it is used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A manifest file could not be read.
    #[error("cannot read policy manifest {path}: {source}")]
    ReadManifest { path: PathBuf, source: std::io::Error },

    /// A manifest is not valid YAML/JSON of the expected shape.
    #[error("invalid policy manifest {path}{}: {message}", at.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    Manifest { path: PathBuf, at: Option<(usize, usize)>, message: String },

    /// The module of a policy could not be read or found.
    #[error("policy {policy:?} ({path}): {message}")]
    Module { policy: String, path: PathBuf, message: String },

    /// A module is not a valid egate guest (bad wasm, wrong ABI, imports).
    #[error("policy {policy:?} ({path}): module {module} is refused: {error}")]
    Abi { policy: String, path: PathBuf, module: String, error: Box<crate::sandbox::ModuleError> },

    /// A module's digest differs from the one the manifest pins.
    #[error(
        "policy {policy:?} ({path}): module {module} has digest {actual}, but spec.moduleDigest pins {expected}: \
             rebuild or fetch the pinned module, or update the pin"
    )]
    DigestMismatch { policy: String, path: PathBuf, module: String, expected: String, actual: String },

    /// A policy's guest refused its settings.
    #[error("policy {policy:?} ({path}): invalid spec.settings: {message}")]
    Settings { policy: String, path: PathBuf, message: String },

    /// A CEL expression does not compile.
    #[error("policy {policy:?} ({path}): {rule}: {message}")]
    Cel { policy: String, path: PathBuf, rule: String, message: String },

    /// Two policies share a name.
    #[error("policy name {name:?} is used twice ({first} and {second}): policy names must be unique")]
    DuplicateName { name: String, first: PathBuf, second: PathBuf },

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
    WrongKind { api_version: String, kind: String },

    /// No `request` member.
    #[error("the AdmissionReview has no request: send one with request.uid, request.resource and request.operation")]
    MissingRequest,

    /// The request lacks a field routing needs.
    #[error("the AdmissionReview request is invalid: {0}")]
    InvalidRequest(String),
}
