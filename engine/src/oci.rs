//! `module: oci://REGISTRY/REPO:TAG` (or `@sha256:HEX`): the hook through
//! which a policy's module comes from an OCI registry.
//!
//! The engine knows no registry, HTTP or signature: a program that loads
//! `oci://` modules installs a [`ModuleFetcher`] once, at start-up
//! ([`install_fetcher`]; egate's binary installs `egate-oci`'s), and the
//! loader asks it for the bytes of each `oci://` module. The fetcher
//! resolves a tag once, checks the pin and the signatures it is asked for,
//! and answers with the module bytes and the digest that names them (the
//! manifest digest), which `spec.moduleDigest` is compared with as for any
//! module. Without a fetcher, an `oci://` module is refused with a message
//! that says so.
//!
//! ```
//! use egate_engine::oci::{FetchRequest, FetchedModule, ModuleFetcher};
//!
//! struct Offline;
//! impl ModuleFetcher for Offline {
//!     fn fetch(&self, request: &FetchRequest) -> Result<FetchedModule, String> {
//!         Err(format!("{} cannot be fetched here", request.reference))
//!     }
//! }
//! egate_engine::oci::install_fetcher(Box::new(Offline));
//! ```

use std::path::Path;
use std::sync::OnceLock;

/// The scheme of a module reference in a registry.
pub const SCHEME: &str = "oci://";

/// What the loader asks of a fetcher for one `oci://` module.
#[derive(Debug, Clone, Copy)]
pub struct FetchRequest<'a> {
    /// The reference as the manifest writes it, `oci://...`.
    pub reference: &'a str,
    /// `spec.moduleDigest`, `sha256:HEX`, when the policy pins one: a
    /// fetcher may load a cached module of that digest when the registry
    /// cannot be reached (the loader still compares the digest it answers).
    pub pin: Option<&'a str>,
    /// `spec.moduleVerification` resolved against the manifest's
    /// directory: a verification file whose keys must have signed the
    /// module.
    pub verification: Option<&'a Path>,
}

/// A module a fetcher found.
#[derive(Debug, Clone)]
pub struct FetchedModule {
    /// The wasm module.
    pub bytes: Vec<u8>,
    /// `sha256:HEX` of the OCI manifest that holds the module: what
    /// `oci://...@sha256:HEX` names, `egate push` prints and
    /// `spec.moduleDigest` pins.
    pub digest: String,
    /// How messages name the module: the reference and its digest.
    pub label: String,
}

/// Finds the bytes of `oci://` modules. Errors are whole messages that
/// name the registry and reference and say what to do.
pub trait ModuleFetcher: Send + Sync {
    /// The module `request.reference` names, with its digest.
    fn fetch(&self, request: &FetchRequest) -> Result<FetchedModule, String>;
}

static FETCHER: OnceLock<Box<dyn ModuleFetcher>> = OnceLock::new();

/// Installs the fetcher of `oci://` modules for this process. The first
/// installed stays: a later call returns `false` and changes nothing.
pub fn install_fetcher(fetcher: Box<dyn ModuleFetcher>) -> bool {
    FETCHER.set(fetcher).is_ok()
}

/// Asks the installed fetcher for a module.
pub(crate) fn fetch(request: &FetchRequest) -> Result<FetchedModule, String> {
    match FETCHER.get() {
        Some(fetcher) => fetcher.fetch(request),
        None => Err(format!(
            "module {} is in an OCI registry, but this program cannot fetch oci:// modules: \
             load it with the egate binary, or `egate pull` it and name the .wasm file",
            request.reference
        )),
    }
}
