//! `egate-oci`: egate's policy modules as OCI artifacts. It pushes a
//! `.wasm` to a registry, pulls one by tag or digest over the OCI
//! distribution API (`oci-client`: bearer-token and basic auth from a
//! docker `config.json`; plain HTTP only for `localhost`, `127.0.0.1` and
//! registries named insecure), keeps what it pulled in a cache by digest
//! beside the compiled-module cache, and makes and verifies cosign
//! signatures with P-256 keys, offline.
//!
//! The engine stays free of HTTP and crypto: it defines the
//! [`ModuleFetcher`](egate_engine::oci::ModuleFetcher) hook, and
//! [`Fetcher`] is the implementation the egate binary installs.
//!
//! An artifact has one layer of media type
//! `application/vnd.wasm.content.layer.v1+wasm` and a config of
//! `application/vnd.wasm.config.v1+json`: the wasm-to-oci convention that
//! Kubewarden, wasmCloud, ORAS and crane already recognise.
//!
//! ```no_run
//! use egate_oci::{ModuleRef, Registry, RegistryOptions};
//!
//! let registry = Registry::new(RegistryOptions::default())?;
//! let module = ModuleRef::parse("oci://127.0.0.1:5000/policies/privileged:v1")?;
//! let digest = registry.push(&module, &std::fs::read("privileged.wasm")?, Default::default())?;
//! let pulled = registry.pull(&module, None)?;
//! assert_eq!(pulled.digest, digest);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod auth;
mod error;
mod reference;
mod registry;
pub mod sign;
mod signer;
mod store;

use std::path::Path;

pub use auth::Credentials;
pub use error::OciError;
pub use oci_client::manifest::{WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE};
pub use reference::{ModuleRef, is_sha256};
pub use registry::{ABI_ANNOTATION, POLICY_ANNOTATION, Pulled, Registry, RegistryOptions, SOURCE_ANNOTATION};
pub use sign::Verification;
pub use signer::{Signer, simple_signing_payload};
pub use store::Store;

use egate_engine::oci::{FetchRequest, FetchedModule, ModuleFetcher};

/// `sha256:HEX` of bytes.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", egate_engine::hex(&<sha2::Sha256 as sha2::Digest>::digest(bytes)))
}

/// The fetcher of `oci://` modules: a [`Registry`], and the verification
/// file every module must pass (`egate serve --verify-modules`), beside
/// any a policy names.
pub struct Fetcher {
    registry: Registry,
    required: Option<Verification>,
}

impl Fetcher {
    /// A fetcher; `required`, when given, is read now.
    pub fn new(registry: Registry, required: Option<&Path>) -> Result<Self, OciError> {
        Ok(Self { registry, required: required.map(Verification::read).transpose()? })
    }

    /// The registry client.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Pulls the module and checks it against every verification it must pass.
    pub fn fetch_module(
        &self,
        reference: &str,
        pin: Option<&str>,
        verification: Option<&Path>,
    ) -> Result<Pulled, OciError> {
        let module = ModuleRef::parse(reference)?;
        let pulled = self.registry.pull(&module, pin)?;
        let own = verification.map(Verification::read).transpose()?;
        for verification in self.required.iter().chain(&own) {
            self.verify(&module, &pulled.digest, verification)?;
        }
        Ok(pulled)
    }

    /// Checks that one of `verification`'s keys signed `digest`: with the
    /// signatures kept from an earlier load when they verify (no network),
    /// else with those the registry has now.
    pub fn verify(&self, module: &ModuleRef, digest: &str, verification: &Verification) -> Result<String, OciError> {
        let store = self.registry.store();
        if let Some(kept) = store.and_then(|s| s.signatures(digest))
            && let Ok(key) = verification.verify(digest, &kept)
        {
            return Ok(key.to_string());
        }
        let signatures = self.registry.signatures(module, digest)?;
        match verification.verify(digest, &signatures) {
            Ok(key) => {
                if let Some(store) = store {
                    store.put_signatures(digest, &signatures);
                }
                Ok(key.to_string())
            }
            Err(reason) => Err(OciError::Signature {
                reference: module.text.clone(),
                digest: digest.into(),
                reason,
                keys: verification.key_names(),
                file: verification.file.clone(),
            }),
        }
    }
}

impl ModuleFetcher for Fetcher {
    fn fetch(&self, request: &FetchRequest) -> Result<FetchedModule, String> {
        let pulled =
            self.fetch_module(request.reference, request.pin, request.verification).map_err(|e| e.to_string())?;
        let offline = if pulled.offline { ", from the cache: the registry is unreachable" } else { "" };
        Ok(FetchedModule {
            label: format!("{} ({}{offline})", request.reference, pulled.digest),
            bytes: pulled.wasm,
            digest: pulled.digest,
        })
    }
}
