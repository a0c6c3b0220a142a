//! Embeds the built-in policy library (target/builtin/NAME.wasm, written by
//! scripts/build-guests.sh) so `builtin:NAME` works in a binary copied alone.
//! Set EGATE_BUILTIN_DIR to embed modules from elsewhere.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=EGATE_BUILTIN_DIR");
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let dir =
        env::var_os("EGATE_BUILTIN_DIR").map(PathBuf::from).unwrap_or_else(|| manifest_dir.join("../target/builtin"));
    println!("cargo:rerun-if-changed={}", dir.display());

    let mut modules: Vec<(String, PathBuf)> = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "wasm"))
        .filter_map(|path| Some((path.file_stem()?.to_str()?.to_string(), path)))
        .collect();
    modules.sort();
    if modules.is_empty() {
        println!(
            "cargo:warning=no built-in policy modules in {}: run scripts/build-guests.sh (or `make build`) first; builtin:NAME will not resolve",
            dir.display()
        );
    }

    let mut code = String::from("/// Built-in policy modules, by name.\npub static BUILTINS: &[(&str, &[u8])] = &[\n");
    for (name, path) in &modules {
        println!("cargo:rerun-if-changed={}", path.display());
        let path = path.canonicalize().unwrap();
        writeln!(code, "    ({name:?}, include_bytes!({:?})),", path.display().to_string()).unwrap();
    }
    code.push_str("];\n");
    // Every built-in bundled in one module (library/), when it was built.
    let library = dir.join("../builtin-library.wasm");
    println!("cargo:rerun-if-changed={}", library.display());
    match library.canonicalize() {
        Ok(path) if !modules.is_empty() => writeln!(
            code,
            "/// All built-ins in one module.\npub static LIBRARY: Option<&[u8]> = Some(include_bytes!({:?}));",
            path.display().to_string()
        )
        .unwrap(),
        _ => code.push_str("/// All built-ins in one module.\npub static LIBRARY: Option<&[u8]> = None;\n"),
    }
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("builtins.rs");
    fs::write(out, code).unwrap();
}
