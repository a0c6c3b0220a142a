//! `egate new NAME`: scaffold a guest policy crate in `./NAME` that builds
//! (`egate build NAME`) and passes its tests (`egate test NAME`, `cargo
//! test`) unchanged: Cargo.toml, src/lib.rs with a small real rule (debug
//! images only from allowed registries), the manifest `policy.yaml`, a test
//! suite with an allowed and a denied case, a README and a .gitignore.
//!
//! Where the crate gets `egate-guest` from: `--sdk DIR` when given; else the
//! `wasm-guest/` directory of the egate checkout this binary was built from,
//! recorded at build time, when it still exists (a developer's machine);
//! else the SDK from egate's git repository (a binary used elsewhere).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

/// Arguments of `egate new`.
#[derive(Args)]
pub struct NewArgs {
    /// The policy's name (lowercase letters, digits and `-`), or a path whose
    /// last component is the name. The crate is created in that directory.
    name: PathBuf,
    /// Use the egate-guest SDK from this directory (a checkout's `wasm-guest/`).
    #[arg(long, value_name = "DIR")]
    sdk: Option<PathBuf>,
}

/// The SDK directory of the checkout this binary was built from.
const BUILT_FROM_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/wasm-guest");
/// Where the SDK lives when there is no checkout.
const SDK_GIT: &str = env!("CARGO_PKG_REPOSITORY");

/// Runs `egate new`.
pub fn run(args: &NewArgs) -> Result<ExitCode> {
    let dir = &args.name;
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} does not end in a policy name", dir.display()))?;
    check_name(name)?;
    if dir.exists() && std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} already exists and is not empty: choose another name or remove it", dir.display());
    }
    let sdk = sdk_dependency(args.sdk.as_deref())?;
    for (file, text) in files(name, &sdk) {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let shown = dir.display();
    println!("created policy {name:?} in {shown}/");
    println!("  {}", sdk.note);
    println!();
    println!("next:");
    println!("  egate build {shown}     # compile it to {shown}/policy.wasm");
    println!("  egate test {shown}      # run tests/{name}.egate-test.yaml against the module");
    println!("  (cd {shown} && cargo test)   # the native unit tests in src/lib.rs");
    Ok(ExitCode::SUCCESS)
}

/// A policy name: used as crate name, manifest name and message prefix.
fn check_name(name: &str) -> Result<()> {
    let ok = name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        bail!(
            "{name:?} is not a policy name: use lowercase letters, digits and '-', starting with a letter, \
             at most 63 characters (such as no-root-debug)"
        );
    }
    Ok(())
}

/// The `egate-guest` line of Cargo.toml, and a note saying where it points.
struct SdkDependency {
    toml: String,
    comment: String,
    note: String,
}

fn sdk_dependency(explicit: Option<&Path>) -> Result<SdkDependency> {
    let path_dependency = |dir: &Path, why: &str| -> Result<SdkDependency> {
        let dir = dir.canonicalize().with_context(|| format!("cannot find the SDK directory {}", dir.display()))?;
        if !dir.join("Cargo.toml").is_file() {
            bail!("{} has no Cargo.toml: --sdk takes the wasm-guest/ directory of an egate checkout", dir.display());
        }
        let shown = dir.display().to_string();
        Ok(SdkDependency {
            toml: format!("egate-guest = {{ path = {}, default-features = false }}", toml_string(&shown)),
            comment: format!("# The egate guest SDK from {why}."),
            note: format!("egate-guest: path {shown} ({why})"),
        })
    };
    if let Some(dir) = explicit {
        return path_dependency(dir, "--sdk");
    }
    let built_from = Path::new(BUILT_FROM_SDK);
    if built_from.join("Cargo.toml").is_file() {
        return path_dependency(built_from, "the egate checkout this egate was built from");
    }
    Ok(SdkDependency {
        toml: format!("egate-guest = {{ git = {}, default-features = false }}", toml_string(SDK_GIT)),
        comment: "# The egate guest SDK from egate's repository; pin it with `rev = \"...\"` or `tag = \"...\"`,\n\
                  # or point `path` at a checkout's wasm-guest/ directory."
            .into(),
        note: format!("egate-guest: git {SDK_GIT} (no egate checkout found; pass --sdk DIR to use one)"),
    })
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Every file of the crate, by path relative to its directory.
fn files(name: &str, sdk: &SdkDependency) -> Vec<(String, String)> {
    let fill = |template: &str| {
        template.replace("{{name}}", name).replace("{{sdk_comment}}", &sdk.comment).replace("{{sdk}}", &sdk.toml)
    };
    vec![
        ("Cargo.toml".into(), fill(CARGO_TOML)),
        ("src/lib.rs".into(), fill(LIB_RS)),
        ("policy.yaml".into(), fill(MANIFEST)),
        (format!("tests/{name}.egate-test.yaml"), fill(SUITE)),
        ("tests/pods/web.yaml".into(), fill(POD)),
        ("README.md".into(), fill(README)),
        (".gitignore".into(), "/target\n/policy.wasm\n".to_string()),
    ]
}

const CARGO_TOML: &str = r#"[package]
name = "{{name}}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the .wasm module egate loads; rlib: lets `cargo test` link the policy natively.
crate-type = ["cdylib", "rlib"]

[dependencies]
{{sdk_comment}}
# default-features = false leaves out the typed k8s-openapi view (feature "typed").
{{sdk}}
serde = { version = "1", features = ["derive"] }

# Small, fast modules. `egate build` builds this profile; panic = "abort" is
# also what building std for wasm (-Zbuild-std) needs.
[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
strip = true
debug = false

# A workspace of its own: the crate never joins a workspace it was created in.
[workspace]
"#;

const LIB_RS: &str = r##"//! Policy `{{name}}`: denies a new ephemeral container (`kubectl debug`)
//! whose image comes from a registry outside `allowedRegistries`.

use egate_guest::{Decision, Error, Request, Settings};
use serde::Deserialize;

/// Settings of this policy: `spec.settings` in policy.yaml.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicySettings {
    /// Registries debug images may come from, as Docker normalises them
    /// (`docker.io` for Docker Hub, `localhost:5000` with its port).
    pub allowed_registries: Vec<String>,
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self { allowed_registries: vec!["docker.io".into(), "registry.k8s.io".into()] }
    }
}

impl Settings for PolicySettings {
    fn validate(&self) -> Result<(), String> {
        match self.allowed_registries.iter().find(|r| r.trim().is_empty() || r.contains('/')) {
            Some(bad) => Err(format!(
                "allowedRegistries holds {bad:?}, which is not a registry host: write hosts such as docker.io or ghcr.io"
            )),
            None => Ok(()),
        }
    }
}

/// Judges the ephemeral containers this request adds.
pub fn evaluate(request: &Request, settings: &PolicySettings) -> Result<Decision, Error> {
    let pods = request.pods()?;
    let mut violations = Vec::new();
    for container in pods.new_ephemeral_containers() {
        let image = match container.image_ref() {
            Ok(image) => image,
            Err(e) => {
                violations.push(format!("ephemeral container {:?}: {e}", container.name));
                continue;
            }
        };
        if !settings.allowed_registries.iter().any(|r| *r == image.registry) {
            violations.push(format!(
                "ephemeral container {:?} uses image {:?} from registry {:?}, but debug images must come from [{}]",
                container.name,
                image.normalized(),
                image.registry,
                settings.allowed_registries.join(", ")
            ));
        }
    }
    Ok(Decision::from_violations(violations))
}

egate_guest::policy!(evaluate);

#[cfg(test)]
mod tests {
    use super::*;
    use egate_guest::serde_json::json;
    use egate_guest::settings_from_json;
    use egate_guest::testing::{debug_request, web_pod};

    fn judge(image: &str) -> Decision {
        let bytes = debug_request(&web_pod(), json!({"name": "dbg", "image": image}), "alice", &["dev"]);
        evaluate(&Request::parse(&bytes).unwrap(), &PolicySettings::default()).unwrap()
    }

    #[test]
    fn images_from_allowed_registries_are_allowed() {
        assert!(judge("busybox:1.36").allowed);
        assert!(judge("registry.k8s.io/e2e-test-images/agnhost:2.39").allowed);
    }

    #[test]
    fn images_from_other_registries_are_denied_by_name() {
        let d = judge("evil.example.com/tools:1.0");
        assert!(!d.allowed);
        assert!(d.message.contains(r#"ephemeral container "dbg""#), "{}", d.message);
        assert!(d.message.contains(r#"registry "evil.example.com""#), "{}", d.message);
    }

    #[test]
    fn settings_are_checked() {
        assert!(settings_from_json::<PolicySettings>(br#"{"allowedRegistries": ["ghcr.io"]}"#).is_ok());
        assert!(settings_from_json::<PolicySettings>(br#"{"allowedRegistries": ["ghcr.io/acme"]}"#).is_err());
        assert!(settings_from_json::<PolicySettings>(br#"{"allowedRegistry": ["ghcr.io"]}"#).is_err());
    }
}
"##;

const MANIFEST: &str = r#"# Policy {{name}}: debug containers only from allowed registries.
# Load it with `egate eval --policy policy.yaml ...` after `egate build`.
apiVersion: egate.dev/v1
kind: ClusterPolicy
metadata:
  name: {{name}}
spec:
  failureAction: Enforce        # Enforce | Audit | Warn
  failurePolicy: Fail           # what a module failure or timeout yields: Fail | Ignore
  timeoutMs: 100
  match:
    resources: [pods/ephemeralcontainers]
    operations: [UPDATE]
  module: policy.wasm           # written by `egate build`; relative to this file
  settings:
    allowedRegistries: [docker.io, registry.k8s.io]
"#;

const SUITE: &str = r#"# Run with `egate test` (after `egate build`). Format: docs/writing-policies.md in egate.
apiVersion: egate.dev/v1
kind: Test
name: {{name}}
policies: [../policy.yaml]
cases:
  - name: a debug image from an allowed registry is allowed
    pod: pods/web.yaml
    debug: {name: dbg, image: "busybox:1.36", target: app, profile: restricted}
    expect:
      allowed: true
  - name: a debug image from another registry is denied
    pod: pods/web.yaml
    debug: {name: dbg, image: "evil.example.com/tools:1.0", target: app}
    userInfo: {username: alice, groups: [developers]}
    expect:
      allowed: false
      messageContains: 'ephemeral container "dbg" uses image "evil.example.com/tools:1.0" from registry "evil.example.com"'
"#;

const POD: &str = r#"# A running pod, as `kubectl get pod web -n shop -o yaml` prints it (trimmed).
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  containers:
    - name: app
      image: nginx:1.27
  securityContext:
    runAsNonRoot: true
    runAsUser: 101
"#;

const README: &str = r#"# {{name}}

An [egate](https://github.com/egate-dev/egate) admission policy, written in
Rust with the `egate-guest` SDK and compiled to a wasm32-wasip1 module. It
denies a new ephemeral container (`kubectl debug`) whose image comes from a
registry outside the setting `allowedRegistries`.

| file | what it is |
| --- | --- |
| `src/lib.rs` | the policy: one function from the request and settings to a decision, and its unit tests |
| `policy.yaml` | the manifest egate loads: what the policy matches, its settings, its module `policy.wasm` |
| `tests/{{name}}.egate-test.yaml` | a test suite: requests and the decisions they must get |
| `tests/pods/web.yaml` | the pod the test cases debug |

## Workflow

```sh
cargo test                 # unit tests, natively: no wasm involved
egate build                # compile to wasm32-wasip1 and write policy.wasm
egate test                 # run the suites under this directory against policy.wasm
egate eval -p policy.yaml -r request.json   # judge one AdmissionReview
egate scaffold request --pod tests/pods/web.yaml --image busybox:1.36 > request.json
```

`egate build` uses rustup's `wasm32-wasip1` target when it is installed
(`rustup target add wasm32-wasip1`), and otherwise Debian's `rustc-web`
toolchain with `-Zbuild-std`. It installs nothing itself: when neither is
there, it says what is missing.

## The SDK dependency

`Cargo.toml` names `egate-guest` by path (the egate checkout `egate new` was
run from, or `--sdk DIR`) or, without a checkout, by git. Change it to match
where you keep egate.
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_are_checked() {
        assert!(check_name("no-root-debug").is_ok());
        for bad in ["", "No", "1x", "a_b", "a-", "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        let sdk = SdkDependency { toml: "egate-guest = {}".into(), comment: "# c".into(), note: String::new() };
        for (file, text) in files("demo", &sdk) {
            assert!(!text.contains("{{"), "{file} keeps a placeholder");
        }
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
