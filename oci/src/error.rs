//! What can go wrong with a module in a registry. Each message names the
//! registry and the reference, the HTTP status or auth problem, and says
//! what to do.

use std::path::PathBuf;

/// An `oci://` module could not be pushed, pulled, resolved or verified.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The text is not an `oci://REGISTRY/REPOSITORY:TAG|@sha256:HEX` reference.
    #[error(
        "{reference:?} is not an OCI module reference ({reason}): write oci://REGISTRY/REPOSITORY:TAG or \
         oci://REGISTRY/REPOSITORY@sha256:HEX"
    )]
    Reference {
        /// The text given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },

    /// No connection to the registry (down, wrong port, TLS refused).
    #[error(
        "cannot reach registry {registry} for {reference}: {cause}: check that it runs and the address is right{}",
        if *plain_http { "" } else { " (a registry that speaks plain HTTP outside localhost needs --insecure-registry HOST:PORT; one with a private CA needs --registry-ca FILE)" }
    )]
    Unreachable {
        /// `HOST[:PORT]`.
        registry: String,
        /// The reference being worked on.
        reference: String,
        /// Whether egate spoke plain HTTP to it.
        plain_http: bool,
        /// The client's error.
        cause: String,
    },

    /// The registry refused the credentials, or wants some.
    #[error(
        "registry {registry} refused {operation} of {reference} ({problem}): give credentials that may {operation} \
         it in a docker config.json `auths` entry for {registry} (`docker login {registry}` writes one; or \
         `auth`: base64 of user:password), read from {config} (--registry-config FILE or DOCKER_CONFIG names another)"
    )]
    Unauthorized {
        /// `HOST[:PORT]`.
        registry: String,
        /// The reference being worked on.
        reference: String,
        /// `pull` or `push`.
        operation: &'static str,
        /// `HTTP 401 Unauthorized`, `HTTP 403 denied`, or what the token server refused and said.
        problem: String,
        /// Where credentials were looked for.
        config: String,
    },

    /// The registry has no such repository, tag or digest.
    #[error(
        "registry {registry} has no {reference} (HTTP 404 {code}): check the repository and tag, or push the module \
         first with `egate push MODULE.wasm {reference}`"
    )]
    NotFound {
        /// `HOST[:PORT]`.
        registry: String,
        /// The reference being worked on.
        reference: String,
        /// The registry's error code (`MANIFEST_UNKNOWN`).
        code: String,
    },

    /// Any other answer of the registry.
    #[error("registry {registry} answered {status} for {reference}: {message}")]
    Http {
        /// `HOST[:PORT]`.
        registry: String,
        /// The reference being worked on.
        reference: String,
        /// `HTTP 500`, or the registry's error code.
        status: String,
        /// What it said.
        message: String,
    },

    /// What the registry sent does not have the digest that names it.
    #[error(
        "registry {registry} sent {what} of {reference} with digest {actual}, but it is named {expected}: \
         the registry's storage is corrupt or something altered it in transit; egate refuses it. Push the module again"
    )]
    Corrupt {
        /// `HOST[:PORT]`.
        registry: String,
        /// The reference being worked on.
        reference: String,
        /// `the manifest` or `the module layer`.
        what: &'static str,
        /// The digest it is named by.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },

    /// The artifact is not an egate module.
    #[error(
        "{reference} ({digest}) is not a wasm module artifact: {reason}; push one with `egate push MODULE.wasm {reference}`"
    )]
    NotAModule {
        /// The reference.
        reference: String,
        /// Its manifest digest.
        digest: String,
        /// What is missing or wrong.
        reason: String,
    },

    /// A tag must be resolved and the registry is not there.
    #[error(
        "{reference} names a tag, which needs registry {registry} to resolve, and it cannot be reached ({cause}): \
         pin the module with spec.moduleDigest (then a cached copy loads offline), or name it by digest \
         (oci://...@sha256:HEX)"
    )]
    TagOffline {
        /// `HOST[:PORT]`.
        registry: String,
        /// The reference.
        reference: String,
        /// Why the registry cannot be reached.
        cause: String,
    },

    /// The module has no signature by any of the required keys.
    #[error("{reference} ({digest}) is refused: {reason}; keys tried: {keys} (from {file})")]
    Signature {
        /// The reference.
        reference: String,
        /// The manifest digest that was to be signed.
        digest: String,
        /// `it has no cosign signature (no tag sha256-HEX.sig)`, or why none verified.
        reason: String,
        /// The names of the keys tried.
        keys: String,
        /// The verification file.
        file: PathBuf,
    },

    /// A file egate was given (config.json, verification file, key, module) is unusable.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
}
