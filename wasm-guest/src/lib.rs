//! `egate-guest` is the SDK a policy author compiles into an egate policy
//! module. An author writes one function, from an admission [`Request`] and
//! the policy's settings to a [`Decision`]; the [`policy!`] macro turns it
//! into a wasm32-wasip1 module speaking egate's guest ABI v1, which the
//! `egate-abi` crate defines (export names and types, the decision JSON).
//! The SDK knows nothing of wasmtime or of the host.
//!
//! The same crate compiles natively, so policy logic is unit-tested with a
//! plain `cargo test`: the ABI exports only exist on `wasm32`.
//!
//! ```
//! use egate_guest::{Decision, Request, Settings};
//! use serde::Deserialize;
//!
//! #[derive(Default, Deserialize)]
//! #[serde(default, deny_unknown_fields, rename_all = "camelCase")]
//! struct NoLatest { allow_latest: bool }
//! impl Settings for NoLatest {}
//!
//! fn evaluate(request: &Request, settings: &NoLatest) -> Result<Decision, egate_guest::Error> {
//!     let pods = request.pods()?;
//!     for container in pods.new_ephemeral_containers() {
//!         let image = container.image_ref()?;
//!         if image.is_latest() && !settings.allow_latest {
//!             return Ok(Decision::deny(format!(
//!                 "ephemeral container {:?} uses image {:?} without a tag: pin a tag such as busybox:1.36",
//!                 container.name, image.normalized()
//!             )));
//!         }
//!     }
//!     Ok(Decision::allow())
//! }
//! egate_guest::policy!(evaluate);
//!
//! // Natively, the same function is a plain function to test:
//! let review = br#"{"uid":"1","operation":"UPDATE","resource":{"resource":"pods"},
//!   "subResource":"ephemeralcontainers","userInfo":{"username":"alice"},
//!   "object":{"spec":{"containers":[],"ephemeralContainers":[{"name":"dbg","image":"busybox"}]}},
//!   "oldObject":{"spec":{"containers":[]}}}"#;
//! let request = Request::parse(review).unwrap();
//! assert!(!evaluate(&request, &NoLatest::default()).unwrap().allowed);
//! ```

pub mod abi;
mod decision;
mod error;
mod image;
pub mod pod;
mod request;
mod settings;
pub mod testing;

pub use decision::{Decision, IntoDecision, PatchOp};
pub use egate_abi::{Glob, declare_inputs, declare_reads, glob_match, inputs};
pub use error::Error;
pub use image::ImageRef;
pub use request::{GroupVersionKind, GroupVersionResource, PodPair, RawJson, Request, UserInfo};
pub use settings::{NoSettings, Settings, parse_settings as settings_from_json};

/// The ABI crate, for the expansion of [`policy!`].
#[doc(hidden)]
pub use egate_abi as __abi;

/// Re-exported so policies need not depend on serde_json themselves.
pub use serde_json;

/// The Kubernetes types of the typed view (`Request::typed_pod`).
#[cfg(feature = "typed")]
pub use k8s_openapi;

/// Declares the reads of a policy that judges the debug containers a
/// request adds (`egate_abi::reads`): the request's small members, the
/// pod's name, namespace, labels and annotations, its ephemeral containers,
/// pod-level securityContext and volumes, and the names of the ephemeral
/// containers it had before. The host then hands the module only those
/// (about a twentieth of a `kubectl debug` request), instead of the whole
/// pod and the pod before. A policy that reads more declares its own list
/// with [`declare_reads!`].
#[macro_export]
macro_rules! declare_debug_container_reads {
    () => {
        $crate::declare_reads!(
            "uid",
            "kind",
            "resource",
            "subResource",
            "operation",
            "namespace",
            "name",
            "userInfo",
            "dryRun",
            "object.metadata.name",
            "object.metadata.namespace",
            "object.metadata.labels",
            "object.metadata.annotations",
            "object.spec.ephemeralContainers",
            "object.spec.securityContext",
            "object.spec.volumes",
            "oldObject.spec.ephemeralContainers[*].name",
        );
    };
}
