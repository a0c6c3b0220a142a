//! `egate build [PATH]`: compile a guest policy crate to wasm32-wasip1 and
//! write the module (`policy.wasm` beside the crate's Cargo.toml unless
//! `--output`), then print its path, size and sha256.
//!
//! Two toolchains, chosen as `scripts/build-guests.sh` chooses (see
//! `../shared/WASM-TOOLCHAIN.md`):
//! - rustup's toolchain with the `wasm32-wasip1` target installed: a plain
//!   `cargo build --target wasm32-wasip1`;
//! - otherwise Debian's `rustc-web`/`cargo-web` with the std sources,
//!   wasi-libc and lld, building std for wasm with `-Zbuild-std`.
//!
//! It installs nothing: when neither is complete it says what is missing
//! and the command that would install it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::Value;

use crate::inspect::{human_size, inspect};

/// Arguments of `egate build`.
#[derive(Args)]
pub struct BuildArgs {
    /// The guest crate: its directory, or its Cargo.toml.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Where to write the module; default `policy.wasm` beside the crate's Cargo.toml.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// The cargo profile to build with.
    #[arg(long, default_value = "release")]
    profile: String,
}

const TARGET: &str = "wasm32-wasip1";
const DEBIAN_PACKAGES: &str = "rustc-web cargo-web rust-web-src wasi-libc lld";

/// How the module gets compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Toolchain {
    /// rustup's toolchain, which has the wasm32-wasip1 target.
    Rustup,
    /// Debian's toolchain, building std with -Zbuild-std.
    Debian,
}

/// The files Debian's way needs, with the package that brings each.
const DEBIAN_FILES: [(&str, &str); 5] = [
    ("/usr/bin/rustc", "rustc-web"),
    ("/usr/bin/cargo", "cargo-web"),
    ("/usr/lib/rustlib/src/rust/library", "rust-web-src"),
    ("/usr/lib/wasm32-wasi/libc.a", "wasi-libc"),
    ("/usr/bin/wasm-ld", "lld"),
];

/// Runs `egate build`.
pub fn run(args: &BuildArgs) -> Result<ExitCode> {
    let manifest = crate_manifest(&args.path)?;
    let crate_dir = manifest.parent().map(Path::to_path_buf).unwrap_or_default();
    let toolchain = choose_toolchain(&crate_dir)?;
    let package = guest_package(toolchain, &manifest)?;
    match toolchain {
        Toolchain::Rustup => eprintln!("egate build: compiling {} with rustup's {TARGET} target", package.name),
        Toolchain::Debian => eprintln!(
            "egate build: compiling {} with Debian's {} and -Zbuild-std (rustup has no {TARGET} target)",
            package.name,
            debian_rustc_version().unwrap_or_else(|| "rustc".into())
        ),
    }
    let built = compile(toolchain, &manifest, &package, &args.profile)?;
    let output = args.output.clone().unwrap_or_else(|| crate_dir.join("policy.wasm"));
    let bytes = std::fs::read(&built).with_context(|| format!("cannot read the built module {}", built.display()))?;
    write_atomically(&output, &bytes)?;
    let inspection = inspect(&bytes).with_context(|| format!("the built module {}", built.display()))?;
    let shown = output.canonicalize().unwrap_or(output);
    println!("module  {}", shown.display());
    println!("size    {}", human_size(inspection.size));
    println!("sha256  {}", inspection.sha256);
    if inspection.problems.is_empty() {
        println!("abi     egate guest ABI v{}", inspection.abi_version.unwrap_or(1));
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("egate build: egate would refuse this module:");
        for problem in &inspection.problems {
            eprintln!("  - {problem}");
        }
        eprintln!("  (does src/lib.rs end with `egate_guest::policy!(evaluate);`?)");
        Ok(ExitCode::from(1))
    }
}

/// The crate's Cargo.toml.
fn crate_manifest(path: &Path) -> Result<PathBuf> {
    let manifest = if path.is_dir() { path.join("Cargo.toml") } else { path.to_path_buf() };
    if !manifest.is_file() {
        bail!(
            "{} is not a guest crate: no {} (egate build compiles a Rust crate; `egate new NAME` makes one)",
            path.display(),
            manifest.display()
        );
    }
    manifest.canonicalize().with_context(|| format!("cannot resolve {}", manifest.display()))
}

/// Whether rustup's toolchain (as seen from `dir`) has the wasm32-wasip1 std.
fn rustup_has_target(dir: &Path) -> bool {
    let Ok(output) =
        Command::new("rustc").args(["--print", "target-libdir", "--target", TARGET]).current_dir(dir).output()
    else {
        return false;
    };
    if !output.status.success() {
        return false;
    }
    let libdir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    std::fs::read_dir(libdir).into_iter().flatten().flatten().any(|entry| {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        name.starts_with("libstd-") && name.ends_with(".rlib")
    })
}

/// `rustc 1.96.0 (...)` of Debian's rustc, if there is one.
fn debian_rustc_version() -> Option<String> {
    let output = Command::new("/usr/bin/rustc").arg("--version").output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// What Debian's way lacks, for the message; empty when it is complete.
fn debian_missing() -> Vec<String> {
    let mut missing: Vec<String> = DEBIAN_FILES
        .iter()
        .filter(|(path, _)| !Path::new(path).exists())
        .map(|(path, package)| format!("{path} (package {package})"))
        .collect();
    if missing.is_empty() {
        // -Zbuild-std with edition 2024 crates needs rustc 1.85 or later.
        let version = debian_rustc_version().unwrap_or_default();
        let minor = version.split('.').nth(1).and_then(|m| m.parse::<u32>().ok());
        if !version.starts_with("rustc 1.") || minor.is_none_or(|m| m < 85) {
            missing.push(format!("a Debian rustc of 1.85 or later (found {version:?}; package rustc-web)"));
        }
    }
    missing
}

fn choose_toolchain(dir: &Path) -> Result<Toolchain> {
    if rustup_has_target(dir) {
        return Ok(Toolchain::Rustup);
    }
    let missing = debian_missing();
    if missing.is_empty() {
        return Ok(Toolchain::Debian);
    }
    let rustup = if Command::new("rustup").arg("--version").output().is_ok_and(|o| o.status.success()) {
        format!("rustup's toolchain has no {TARGET} target")
    } else {
        "there is no rustup".to_string()
    };
    bail!(
        "cannot compile for {TARGET}: {rustup}, and Debian's toolchain is incomplete (missing {}).\n\
         Install either one, then run egate build again (egate installs nothing itself):\n\
         \x20 rustup target add {TARGET}\n\
         or, on Debian or Ubuntu, as root:\n\
         \x20 apt-get update && apt-get install -y {DEBIAN_PACKAGES}",
        missing.join(", ")
    );
}

/// The package a manifest describes: its name, id and lib target name.
struct GuestPackage {
    name: String,
    id: String,
    lib_name: String,
}

/// Reads the crate's metadata and checks that it builds a cdylib.
fn guest_package(toolchain: Toolchain, manifest: &Path) -> Result<GuestPackage> {
    let mut command = cargo(toolchain);
    command.args(["metadata", "--no-deps", "--format-version", "1", "--manifest-path"]).arg(manifest);
    let output = command.stderr(Stdio::inherit()).output().context("cannot run cargo metadata")?;
    if !output.status.success() {
        bail!("cargo metadata failed on {}: fix Cargo.toml first", manifest.display());
    }
    let metadata: Value = serde_json::from_slice(&output.stdout).context("cargo metadata printed no JSON")?;
    let package = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["manifest_path"].as_str().is_some_and(|m| Path::new(m) == manifest))
        .with_context(|| format!("{} defines no package (is it a virtual workspace manifest?)", manifest.display()))?;
    let name = package["name"].as_str().unwrap_or_default().to_string();
    let lib = package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["crate_types"].as_array().is_some_and(|types| types.iter().any(|c| c == "cdylib")));
    let Some(lib) = lib else {
        bail!(
            "package {name} ({}) builds no cdylib, so it yields no wasm module: add\n\
             \x20 [lib]\n\x20 crate-type = [\"cdylib\", \"rlib\"]",
            manifest.display()
        );
    };
    Ok(GuestPackage {
        name,
        id: package["id"].as_str().unwrap_or_default().to_string(),
        lib_name: lib["name"].as_str().unwrap_or_default().replace('-', "_"),
    })
}

/// Guests start with 4 MiB of memory, so that evaluating a request does not
/// grow it: a grown memory costs every later evaluation two `mprotect`
/// calls when egate resets and reuses its pooled slot.
const INITIAL_MEMORY: &str = "-C link-arg=--initial-memory=4194304";

/// A cargo command for the toolchain, with Debian's environment scoped to it.
fn cargo(toolchain: Toolchain) -> Command {
    match toolchain {
        Toolchain::Rustup => Command::new("cargo"),
        Toolchain::Debian => {
            let mut command = Command::new("/usr/bin/cargo");
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut paths = vec![PathBuf::from("/usr/bin")];
            paths.extend(std::env::split_paths(&path));
            command
                .env("PATH", std::env::join_paths(paths).unwrap_or(path))
                .env("RUSTC", "/usr/bin/rustc")
                .env("RUSTC_BOOTSTRAP", "1")
                .env("CARGO_TARGET_WASM32_WASIP1_LINKER", "wasm-ld")
                .env("RUSTFLAGS", format!("-C link-self-contained=no -L native=/usr/lib/wasm32-wasi {INITIAL_MEMORY}"))
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .env_remove("RUSTUP_TOOLCHAIN")
                .env_remove("RUSTDOC");
            command
        }
    }
}

/// Builds the package; returns the path of the .wasm cargo wrote.
fn compile(toolchain: Toolchain, manifest: &Path, package: &GuestPackage, profile: &str) -> Result<PathBuf> {
    let mut command = cargo(toolchain);
    command
        .args(["build", "--lib", "--target", TARGET, "--profile", profile, "--message-format=json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(manifest);
    if toolchain == Toolchain::Debian {
        command.args(["-Zbuild-std=std,panic_abort", "--config"]).arg(format!("profile.{profile}.panic=\"abort\""));
    } else {
        // Joined with the author's own rustflags from cargo config.
        command.arg("--config").arg(format!("target.{TARGET}.rustflags=[\"-C\", \"{}\"]", &INITIAL_MEMORY[3..]));
    }
    let mut child =
        command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().context("cannot run cargo build")?;
    let stdout = child.stdout.take().context("cargo's output")?;
    let mut module = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's output")?;
        let Ok(message) = serde_json::from_str::<Value>(&line) else { continue };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let ours = message["package_id"] == package.id.as_str()
            || message["target"]["name"].as_str().is_some_and(|n| n.replace('-', "_") == package.lib_name);
        if !ours {
            continue;
        }
        if let Some(wasm) = message["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find(|f| f.ends_with(".wasm"))
        {
            module = Some(PathBuf::from(wasm));
        }
    }
    let status = child.wait().context("waiting for cargo build")?;
    if !status.success() {
        bail!("cargo build failed for {} (its errors are above)", manifest.display());
    }
    module.with_context(|| format!("cargo built {} but reported no .wasm module", package.name))
}

/// Writes through a temporary file, so a reader never sees half a module.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", PathBuf::from(&tmp).display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
