//! `egate inspect MODULE`: what a wasm module is, read with `wasmparser`
//! (never instantiated, never compiled): its egate ABI version and whether
//! it meets that ABI, its exports and imports with their wasm types, its
//! size and sha256.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use egate_abi::exports;
use egate_engine::builtin;

use crate::output::Output;
use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmparser::{CompositeInnerType, Encoding, ExternalKind, FuncType, Parser, Payload, TypeRef, ValType};

/// Arguments of `egate inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// The module to inspect: a .wasm file, `builtin:NAME` for the
    /// module that runs for that built-in (the built-in library, when this
    /// egate has it), or oci://REGISTRY/REPO:TAG|@sha256:HEX for one in a
    /// registry (then its manifest digest is what `spec.moduleDigest` pins).
    module: String,
    /// `text` for people, `json` for scripts.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// The exports ABI v1 requires, with their types as `describe` writes them.
fn abi_v1_exports() -> impl Iterator<Item = (&'static str, String)> {
    let functions = exports::REQUIRED.into_iter().map(|export| (export.name, export.describe()));
    std::iter::once((exports::MEMORY, "memory".to_string())).chain(functions)
}

/// What `egate inspect` reports of a module.
#[derive(Debug, Serialize)]
pub struct Inspection {
    /// Size in bytes.
    pub size: usize,
    /// Hex sha256 of the bytes.
    pub sha256: String,
    /// The egate ABI version the module declares (`egate_abi_vN`), if any.
    pub abi_version: Option<u32>,
    /// Why egate would refuse the module; empty when it would load it.
    pub problems: Vec<String>,
    /// The inputs it declares it reads (custom section `egate.inputs`),
    /// which the host prepares from the cluster: `debugGrants`.
    pub inputs: Vec<String>,
    /// Exports, in module order.
    pub exports: Vec<Item>,
    /// Imports, in module order.
    pub imports: Vec<Import>,
}

/// An export: name, kind and wasm type.
#[derive(Debug, Serialize)]
pub struct Item {
    /// Export name.
    pub name: String,
    /// `func`, `memory`, `table`, `global` or `tag`.
    pub kind: &'static str,
    /// The type, as in `func (i32, i32) -> (i64)` or `memory 17 pages`.
    #[serde(rename = "type")]
    pub ty: String,
}

/// An import and whether egate's host provides it.
#[derive(Debug, Serialize)]
pub struct Import {
    /// Module name (`wasi_snapshot_preview1`).
    pub module: String,
    /// Item name.
    pub name: String,
    /// `func`, `memory`, `table`, `global` or `tag`.
    pub kind: &'static str,
    /// The type.
    #[serde(rename = "type")]
    pub ty: String,
    /// Whether the host grants it (see docs/writing-policies.md).
    pub granted: bool,
}

/// Runs `egate inspect`: exit 0 for a module egate would load, 1 for a
/// wasm module it would refuse (the problems say why), 2 when the file
/// cannot be read or is not wasm.
pub fn run(args: &InspectArgs, registry: &crate::oci_cmd::RegistryArgs) -> Result<ExitCode> {
    let (bytes, oci) = match args.module.starts_with(egate_engine::oci::SCHEME) {
        true => {
            let pulled = crate::oci_cmd::fetch(registry, &args.module, None)?;
            (Cow::Owned(pulled.wasm), Some((pulled.digest, pulled.annotations)))
        }
        false => (read_module(&args.module)?, None),
    };
    let inspection = inspect(&bytes).with_context(|| format!("module {}", args.module))?;
    match args.output {
        Output::Json => {
            let mut value = serde_json::to_value(&inspection)?;
            value["path"] = args.module.clone().into();
            if let Some((digest, annotations)) = &oci {
                value["digest"] = digest.clone().into();
                value["annotations"] = serde_json::to_value(annotations)?;
            }
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
        Output::Text => {
            let text = describe(&args.module, &inspection);
            match &oci {
                // The digest a pin names, right under the module line.
                Some((digest, annotations)) => {
                    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
                    println!("{first}");
                    println!("digest  {digest} (the OCI manifest: what spec.moduleDigest pins)");
                    for (key, value) in annotations {
                        println!("        {key}={value}");
                    }
                    print!("{rest}");
                }
                None => print!("{text}"),
            }
        }
    }
    Ok(if inspection.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The bytes of a module reference: a file, or what runs for `builtin:NAME`.
fn read_module(reference: &str) -> Result<Cow<'static, [u8]>> {
    match reference.strip_prefix("builtin:") {
        Some(name) => match builtin::runs(name) {
            Some(runs) => Ok(Cow::Borrowed(runs.bytes())),
            None => anyhow::bail!("{}", builtin::unknown(name)),
        },
        None => Ok(Cow::Owned(std::fs::read(reference).with_context(|| format!("cannot read module {reference}"))?)),
    }
}

/// Reads a module's bytes. Errors only when they are not a valid core wasm module.
pub fn inspect(bytes: &[u8]) -> Result<Inspection> {
    let mut declared = Vec::new();
    let mut types: Vec<Option<FuncType>> = Vec::new();
    let mut functions: Vec<u32> = Vec::new(); // type index of each function, imported ones first
    let mut memories: Vec<String> = Vec::new();
    let mut tables: Vec<String> = Vec::new();
    let mut globals: Vec<String> = Vec::new();
    let mut imports = Vec::new();
    let mut exports: Vec<(String, ExternalKind, u32)> = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.context("it is not a wasm module")? {
            Payload::Version { encoding: Encoding::Component, .. } => {
                anyhow::bail!("it is a wasm component, but egate loads core modules (built for wasm32-wasip1)")
            }
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub in group?.into_types() {
                        types.push(match sub.composite_type.inner {
                            CompositeInnerType::Func(f) => Some(f),
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import?;
                    let (kind, ty) = match import.ty {
                        TypeRef::Func(index) | TypeRef::FuncExact(index) => {
                            functions.push(index);
                            ("func", func_type(&types, index))
                        }
                        TypeRef::Memory(m) => {
                            memories.push(memory_type(&m));
                            ("memory", memory_type(&m))
                        }
                        TypeRef::Table(t) => {
                            tables.push(format!("table {} {}", t.element_type, limits(t.initial, t.maximum)));
                            ("table", tables.last().cloned().unwrap_or_default())
                        }
                        TypeRef::Global(g) => {
                            globals.push(global_type(g.content_type, g.mutable));
                            ("global", globals.last().cloned().unwrap_or_default())
                        }
                        TypeRef::Tag(t) => ("tag", format!("tag {}", func_type(&types, t.func_type_idx))),
                    };
                    let granted = egate_engine::wasi_grants(import.module, import.name);
                    imports.push(Import {
                        module: import.module.to_string(),
                        name: import.name.to_string(),
                        kind,
                        ty,
                        granted,
                    });
                }
            }
            Payload::FunctionSection(reader) => {
                for index in reader {
                    functions.push(index?);
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    memories.push(memory_type(&memory?));
                }
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    let t = table?.ty;
                    tables.push(format!("table {} {}", t.element_type, limits(t.initial, t.maximum)));
                }
            }
            Payload::GlobalSection(reader) => {
                for global in reader {
                    let g = global?.ty;
                    globals.push(global_type(g.content_type, g.mutable));
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export?;
                    exports.push((export.name.to_string(), export.kind, export.index));
                }
            }
            Payload::CustomSection(section) if section.name() == egate_abi::inputs::SECTION => {
                declared.extend_from_slice(section.data());
                declared.push(b'\n');
            }
            _ => {}
        }
    }
    wasmparser::Validator::new().validate_all(bytes).context("it is not a valid wasm module")?;

    let exports: Vec<Item> = exports
        .into_iter()
        .map(|(name, kind, index)| {
            let nth = |list: &[String]| list.get(index as usize).cloned().unwrap_or_default();
            let (kind, ty) = match kind {
                ExternalKind::Func | ExternalKind::FuncExact => {
                    ("func", functions.get(index as usize).map(|t| func_type(&types, *t)).unwrap_or_default())
                }
                ExternalKind::Memory => ("memory", nth(&memories)),
                ExternalKind::Table => ("table", nth(&tables)),
                ExternalKind::Global => ("global", nth(&globals)),
                ExternalKind::Tag => ("tag", String::from("tag")),
            };
            Item { name, kind, ty }
        })
        .collect();
    let abi_version = exports
        .iter()
        .filter_map(|e| e.name.strip_prefix(exports::MARKER_PREFIX).and_then(|v| v.parse::<u32>().ok()))
        .max();
    let mut problems = problems(abi_version, &exports, &imports);
    let (known, unknown) = egate_abi::inputs::Input::parse_section(&declared);
    problems.extend(unknown.iter().map(|name| format!("it declares the input {name:?}, which egate cannot give")));
    let inputs = known.iter().map(|i| i.name().to_string()).chain(unknown).collect();
    Ok(Inspection { size: bytes.len(), sha256: sha256_hex(bytes), abi_version, problems, inputs, exports, imports })
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    egate_engine::hex(&Sha256::digest(bytes))
}

/// Why egate's host would refuse the module.
fn problems(abi: Option<u32>, exports: &[Item], imports: &[Import]) -> Vec<String> {
    let mut problems = Vec::new();
    match abi {
        None => problems.push(
            "it exports no egate_abi_vN marker, so it was not built with egate's guest SDK (egate-guest): \
             egate refuses it"
                .to_string(),
        ),
        Some(1) => {
            for (name, wanted) in abi_v1_exports() {
                match exports.iter().find(|e| e.name == name) {
                    None => problems.push(format!("it does not export `{name}` ({wanted}), which ABI v1 requires")),
                    Some(e) if e.kind == "memory" && wanted == "memory" => {}
                    Some(e) if e.ty != wanted => {
                        problems.push(format!("its export `{name}` is {}, but ABI v1 requires {wanted}", e.ty))
                    }
                    Some(_) => {}
                }
            }
        }
        Some(v) => problems.push(format!("it declares ABI v{v}, but this egate speaks ABI v1 only")),
    }
    for import in imports.iter().filter(|i| !i.granted) {
        problems.push(format!(
            "it imports `{}::{}`, which egate does not provide: a policy may import only the WASI functions \
             Rust's std needs ({})",
            import.module,
            import.name,
            egate_engine::GRANTED_WASI_IMPORTS.join(", ")
        ));
    }
    problems
}

fn func_type(types: &[Option<FuncType>], index: u32) -> String {
    match types.get(index as usize) {
        Some(Some(f)) => format!("func ({}) -> ({})", join(f.params()), join(f.results())),
        _ => format!("func (type {index})"),
    }
}

fn join(types: &[ValType]) -> String {
    types.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn limits(initial: u64, maximum: Option<u64>) -> String {
    match maximum {
        Some(max) => format!("min {initial} max {max}"),
        None => format!("min {initial}"),
    }
}

fn memory_type(m: &wasmparser::MemoryType) -> String {
    let mut text = format!("memory {} pages", limits(m.initial, m.maximum));
    if m.memory64 {
        text.push_str(" (64-bit)");
    }
    if m.shared {
        text.push_str(" (shared)");
    }
    text
}

fn global_type(ty: ValType, mutable: bool) -> String {
    if mutable { format!("global mut {ty}") } else { format!("global {ty}") }
}

/// `1234 bytes (1.2 KiB)`.
pub fn human_size(size: usize) -> String {
    if size < 1024 {
        format!("{size} bytes")
    } else if size < 1024 * 1024 {
        format!("{size} bytes ({:.1} KiB)", size as f64 / 1024.0)
    } else {
        format!("{size} bytes ({:.1} MiB)", size as f64 / (1024.0 * 1024.0))
    }
}

fn describe(module: &str, inspection: &Inspection) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "module  {module}");
    let _ = writeln!(out, "size    {}", human_size(inspection.size));
    let _ = writeln!(out, "sha256  {}", inspection.sha256);
    let abi = match inspection.abi_version {
        Some(v) if inspection.problems.is_empty() => format!("egate guest ABI v{v}: egate can load it"),
        Some(v) => format!("egate guest ABI v{v}, but egate would refuse it:"),
        None => "none: egate would refuse it:".to_string(),
    };
    let _ = writeln!(out, "abi     {abi}");
    for problem in &inspection.problems {
        let _ = writeln!(out, "  - {problem}");
    }
    if !inspection.inputs.is_empty() {
        let _ = writeln!(out, "inputs  {} (prepared by the host: docs/grants.md)", inspection.inputs.join(", "));
    }
    let width = inspection.exports.iter().map(|e| e.name.len()).max().unwrap_or(0);
    let _ = writeln!(out, "exports ({})", inspection.exports.len());
    for export in &inspection.exports {
        let _ = writeln!(out, "  {:width$}  {}", export.name, export.ty);
    }
    let names: Vec<String> = inspection.imports.iter().map(|i| format!("{}::{}", i.module, i.name)).collect();
    let width = names.iter().map(String::len).max().unwrap_or(0);
    let _ = writeln!(out, "imports ({})", inspection.imports.len());
    for (import, name) in inspection.imports.iter().zip(&names) {
        let refused = if import.granted { "" } else { "  (refused: egate does not provide it)" };
        let _ = writeln!(out, "  {name:width$}  {}{refused}", import.ty);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_wasm_is_an_error() {
        assert!(inspect(b"this is not wasm").is_err());
    }

    #[test]
    fn an_empty_module_has_no_abi() {
        let empty = b"\0asm\x01\0\0\0";
        let inspection = inspect(empty).unwrap();
        assert_eq!(inspection.abi_version, None);
        assert_eq!(inspection.problems.len(), 1);
        assert_eq!(inspection.size, 8);
    }
}
