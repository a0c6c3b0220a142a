//! The functions a module exports: names and wasm signatures.

use std::fmt;

/// A wasm value type that appears in the ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmType {
    /// `i32`: a pointer or a length.
    I32,
    /// `i64`: an output buffer packed by [`crate::pack`].
    I64,
}

impl fmt::Display for WasmType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WasmType::I32 => "i32",
            WasmType::I64 => "i64",
        })
    }
}

/// An exported function of the ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuncExport {
    /// The export's name.
    pub name: &'static str,
    /// Parameter types.
    pub params: &'static [WasmType],
    /// Result types.
    pub results: &'static [WasmType],
}

impl FuncExport {
    /// The signature as `(i32, i32) -> (i64)`.
    pub fn signature(&self) -> String {
        let list = |types: &[WasmType]| types.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        format!("({}) -> ({})", list(self.params), list(self.results))
    }

    /// The export as `egate inspect` writes it: `func (i32) -> (i32)`.
    pub fn describe(&self) -> String {
        format!("func {}", self.signature())
    }

    /// Whether a function with these parameter and result types has this
    /// export's signature.
    pub fn accepts(&self, params: &[WasmType], results: &[WasmType]) -> bool {
        self.params == params && self.results == results
    }
}

use WasmType::{I32, I64};

/// The exported linear memory.
pub const MEMORY: &str = "memory";

/// What every ABI version's marker export starts with (`egate_abi_v1`, ...).
pub const MARKER_PREFIX: &str = "egate_abi_v";

/// Marker of ABI v1; its presence is what makes a module an egate module.
pub const ABI_MARKER: FuncExport = FuncExport { name: "egate_abi_v1", params: &[], results: &[] };

/// Room for `len` bytes the host writes: `(len) -> ptr`.
pub const ALLOC: FuncExport = FuncExport { name: "egate_alloc", params: &[I32], results: &[I32] };

/// Settings JSON in, [`crate::SettingsVerdict`] out.
pub const VALIDATE_SETTINGS: FuncExport =
    FuncExport { name: "egate_validate_settings", params: &[I32, I32], results: &[I64] };

/// Request JSON and settings JSON in, [`crate::Decision`] out.
pub const EVALUATE: FuncExport = FuncExport { name: "egate_evaluate", params: &[I32, I32, I32, I32], results: &[I64] };

/// Optional: a request and a JSON list of [`crate::BundledSettings`] in, the
/// JSON list of their decisions out, in order. egate's built-in library
/// exports it so several built-ins judge one request in one instance.
pub const EVALUATE_BATCH: FuncExport =
    FuncExport { name: "egate_evaluate_batch", params: &[I32, I32, I32, I32], results: &[I64] };

/// The functions every ABI v1 module exports, besides its [`MEMORY`].
pub const REQUIRED: [FuncExport; 4] = [ABI_MARKER, ALLOC, VALIDATE_SETTINGS, EVALUATE];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_read_as_wasm_text() {
        assert_eq!(ABI_MARKER.name, format!("{MARKER_PREFIX}{}", crate::VERSION));
        assert_eq!(ABI_MARKER.describe(), "func () -> ()");
        assert_eq!(ALLOC.signature(), "(i32) -> (i32)");
        assert!(EVALUATE.accepts(&[I32, I32, I32, I32], &[I64]));
        assert!(!EVALUATE.accepts(&[I32, I32], &[I64]));
    }
}
