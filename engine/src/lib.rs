//! `egate-engine` decides Kubernetes admission requests with policies that
//! are sandboxed WebAssembly modules. It loads policy manifests (YAML, one
//! policy per document), compiles their modules once, checks their settings,
//! and judges `AdmissionReview` requests: allow, deny with a message that
//! names the policy, warn, audit, or mutate with a JSON Patch.
//!
//! Each evaluation runs in a fresh wasm instance with no WASI capability,
//! under a deadline, a memory cap and an output cap; a guest that traps,
//! loops or returns garbage is a failure of its policy, decided by the
//! policy's `failurePolicy`, never a crash of the host.
//!
//! ```no_run
//! use egate_engine::{PolicySet, Sandbox, SandboxConfig};
//!
//! let sandbox = Sandbox::new(SandboxConfig::default())?;
//! let policies = PolicySet::load(&sandbox, &["examples/policies/debug-policies.yaml".into()])?;
//! let review = std::fs::read("examples/requests/debug-privileged.json")?;
//! let response = policies.review(&review)?;
//! if !response.allowed {
//!     println!("denied: {}", response.status.unwrap().message);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A webhook serves `POST /mutate` with `review_with(&bytes, Mode::Mutate)`
//! and `POST /validate` with `Mode::Validate`. A [`PolicySet`] is
//! immutable: to reload, load a new set with the same [`Sandbox`] (the
//! module cache makes that fast) and swap it in, for instance through an
//! `arc_swap::ArcSwap<PolicySet>`; requests holding the old set finish on
//! it. `examples/minimal_webhook.rs` embeds the engine in a few dozen lines.
//!
//! # Words
//!
//! A decision goes through four shapes, one word each:
//!
//! - a [`Decision`](egate_abi::Decision) is what a guest module returns
//!   (the ABI's decision JSON, defined in `egate-abi`);
//! - a [`Verdict`] is what one policy concluded: pass, violation or
//!   failure (with its [`FailureCause`]), from its module and its CEL rules;
//! - a [`PolicyResult`] is a verdict with what the manifest says to do with
//!   it: the [`ViolationAction`](manifest::ViolationAction) (the manifest's
//!   `failureAction`) and the [`FailurePolicy`](manifest::FailurePolicy);
//! - an [`AdmissionResponse`] is what the API server is answered, combined
//!   from every policy's result; [`TracedReview`] carries it with the
//!   results, for logs and metrics.
//!
//! A *policy* is one manifest document, loaded; a [`PolicySet`] is the
//! policies a request is judged by; a *module* is a policy's wasm code.
//!
//! YAML is read and written with `serde-saphyr` (pure Rust), through
//! [`yaml`], in place of the deprecated `serde_yaml`. It does all egate
//! needs: a `---` stream read one document at a time straight into a typed
//! struct (empty documents skipped), errors with a line and column,
//! serialization (`egate scaffold request -o yaml`), and untyped
//! `serde_json::Value`s; so the maintained fork `serde_norway` was not
//! needed. It is a YAML 1.2 parser like `serde_yaml` 0.9, and [`yaml`]
//! turns off its YAML 1.1 leniencies (`yes`/`on` as booleans) so manifests
//! load as before; its errors lack the field path, which [`yaml`] adds back
//! with `serde_path_to_error`.

pub mod admission_policy;
pub mod builtin;
mod cache;
mod cel;
pub mod decision;
mod error;
pub mod grants;
pub mod inputs;
pub mod manifest;
pub mod matching;
pub mod oci;
mod policy;
pub mod review;
mod sandbox;
#[cfg(feature = "schema")]
mod schema;
mod wasi;
pub mod yaml;

pub use cache::{ModuleCache, hex, owned_by_us_alone};
pub use decision::{FailureCause, PolicyResult, Verdict};
pub use error::{LoadError, ReviewError};
pub use inputs::Inputs;
pub use policy::{Mode, Policy, PolicySet, RequestSummary, TracedReview};
pub use review::AdmissionResponse;
pub use sandbox::{GuestError, GuestModule, ModuleError, Sandbox, SandboxConfig, SandboxError};
pub use wasi::{GRANTED as GRANTED_WASI_IMPORTS, grants as wasi_grants};
