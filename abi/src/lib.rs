//! egate's guest ABI v1, and the other contracts host and guests share,
//! defined once. The host (`egate-engine`), the SDK
//! (`egate-guest`), the built-in library and `egate inspect` all read the
//! contract from here:
//!
//! - [`exports`]: the names and wasm signatures of the functions a module
//!   exports, and the optional batch export;
//! - [`Decision`], [`SettingsVerdict`] and [`BundledSettings`]: the JSON a
//!   guest returns, and the settings of a policy inside a bundle;
//! - [`pack`] / [`unpack`]: how an `i64` result carries an output buffer;
//! - [`guest_exports!`]: the export functions themselves, for a module;
//! - [`Glob`]: the one meaning of a wildcard pattern, in manifests and in
//!   the built-ins' settings alike;
//! - [`inputs`]: what the host prepares from the cluster for a policy that
//!   declares it (debug grants), and how a module declares it;
//! - [`reads`]: how a module declares the request members it reads.
//!
//! | export | wasm type | meaning |
//! | --- | --- | --- |
//! | `memory` | memory | the guest's linear memory |
//! | `egate_abi_v1` | `() -> ()` | marker of the ABI version |
//! | `egate_alloc` | `(i32 len) -> i32 ptr` | room for `len` bytes the host writes |
//! | `egate_validate_settings` | `(i32 ptr, i32 len) -> i64` | settings JSON in, [`SettingsVerdict`] out |
//! | `egate_evaluate` | `(i32, i32, i32, i32) -> i64` | AdmissionRequest JSON and settings JSON in, [`Decision`] out |
//! | `egate_evaluate_batch` (optional) | `(i32, i32, i32, i32) -> i64` | request and a list of [`BundledSettings`] in, a list of decisions out |
//!
//! ```
//! use egate_abi::{Decision, exports};
//!
//! assert_eq!(exports::EVALUATE.name, "egate_evaluate");
//! assert_eq!(exports::EVALUATE.describe(), "func (i32, i32, i32, i32) -> (i64)");
//! let decision: Decision<serde_json::Value> = serde_json::from_slice(&Decision::deny("no").to_json()).unwrap();
//! assert_eq!((decision.allowed, decision.message.as_str()), (false, "no"));
//! assert_eq!(egate_abi::unpack(egate_abi::pack(8, 3)), (8, 3));
//! ```

mod cow_str;
mod decision;
pub mod exports;
mod glob;
#[doc(hidden)]
pub mod guest;
pub mod inputs;
pub mod reads;

pub use cow_str::CowStr;
pub use decision::{BundledSettings, Decision, PatchOp, SettingsVerdict};
pub use glob::{Glob, glob_match};

/// The ABI version this crate defines (the `egate_abi_v1` marker).
pub const VERSION: u32 = 1;

/// Packs an output buffer into the `i64` an export returns: `(ptr << 32) | len`.
pub fn pack(ptr: u32, len: u32) -> i64 {
    ((u64::from(ptr) << 32) | u64::from(len)) as i64
}

/// The `(ptr, len)` of an output buffer packed by [`pack`].
pub fn unpack(packed: i64) -> (u32, u32) {
    let packed = packed as u64;
    ((packed >> 32) as u32, packed as u32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn packing_round_trips_at_the_edges() {
        for (ptr, len) in [(0, 0), (1, 2), (u32::MAX, u32::MAX), (0x8000_0000, 7)] {
            assert_eq!(super::unpack(super::pack(ptr, len)), (ptr, len));
        }
    }
}
