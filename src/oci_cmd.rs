//! Modules in OCI registries: the options every command shares
//! (credentials, plain-HTTP registries, CAs, a set-wide signature
//! requirement), the fetcher installed for `module: oci://...`, and
//! `egate push` / `egate pull` / `egate sign`. The work is `egate-oci`'s.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use clap::Args;
use egate_engine::oci::{FetchRequest, FetchedModule, ModuleFetcher};
use egate_oci::{Fetcher, ModuleRef, Pulled, Registry, RegistryOptions, Signer};

/// Options of `oci://` modules, taken by every command.
#[derive(Args, Clone, Default)]
pub struct RegistryArgs {
    /// A docker config.json with registry credentials (`auths`); default
    /// $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
    #[arg(long, global = true, value_name = "FILE")]
    registry_config: Option<PathBuf>,
    /// Speak plain HTTP to this registry (HOST:PORT); localhost and
    /// 127.0.0.1 always are. Repeatable.
    #[arg(long, global = true, value_name = "HOST:PORT")]
    insecure_registry: Vec<String>,
    /// Trust this PEM CA certificate for registries, beside the system's. Repeatable.
    #[arg(long, global = true, value_name = "FILE")]
    registry_ca: Vec<PathBuf>,
    /// Require every oci:// module to carry a cosign signature by a key of
    /// this verification file (docs/security.md), beside any a policy names.
    #[arg(long, global = true, value_name = "FILE")]
    verify_modules: Option<PathBuf>,
}

impl RegistryArgs {
    fn fetcher(&self) -> Result<Fetcher> {
        let registry = Registry::new(RegistryOptions {
            docker_config: self.registry_config.clone(),
            insecure: self.insecure_registry.clone(),
            ca_files: self.registry_ca.clone(),
            cache_dir: None,
        })?;
        Ok(Fetcher::new(registry, self.verify_modules.as_deref())?)
    }
}

/// The fetcher the engine asks for `oci://` modules, built on first use so
/// that a command that loads none never reads credentials.
struct LazyFetcher {
    args: RegistryArgs,
    fetcher: OnceLock<Result<Fetcher, String>>,
}

impl ModuleFetcher for LazyFetcher {
    fn fetch(&self, request: &FetchRequest) -> Result<FetchedModule, String> {
        match self.fetcher.get_or_init(|| self.args.fetcher().map_err(|e| format!("{e:#}"))) {
            Ok(fetcher) => fetcher.fetch(request),
            Err(error) => Err(error.clone()),
        }
    }
}

/// Installs the fetcher of `oci://` modules for this run.
pub fn install(args: &RegistryArgs) {
    egate_engine::oci::install_fetcher(Box::new(LazyFetcher { args: args.clone(), fetcher: OnceLock::new() }));
}

/// Arguments of `egate push`.
#[derive(Args)]
pub struct PushArgs {
    /// The module to publish (a .wasm egate can load).
    module: PathBuf,
    /// Where: oci://REGISTRY/REPOSITORY:TAG.
    reference: String,
    /// The policy name to record (annotation dev.egate.policy.name); default the file's stem.
    #[arg(long, value_name = "NAME")]
    policy_name: Option<String>,
    /// Where the module's source lives (annotation org.opencontainers.image.source).
    #[arg(long, value_name = "URL")]
    source: Option<String>,
}

/// Runs `egate push`: prints the reference by digest and the digest.
pub fn push(args: &PushArgs, registry: &RegistryArgs) -> Result<ExitCode> {
    let wasm = std::fs::read(&args.module).with_context(|| format!("cannot read module {}", args.module.display()))?;
    let inspection = crate::inspect::inspect(&wasm).with_context(|| format!("module {}", args.module.display()))?;
    if !inspection.problems.is_empty() {
        bail!(
            "module {} is not one egate would load, so it is not pushed: {} (egate inspect {} says more)",
            args.module.display(),
            inspection.problems.join("; "),
            args.module.display()
        );
    }
    let module = ModuleRef::parse(&args.reference)?;
    if module.reference.digest().is_some() {
        bail!("push to a tag (oci://REGISTRY/REPOSITORY:TAG): the registry names the pushed module's digest");
    }
    let mut annotations = BTreeMap::new();
    if let Some(version) = inspection.abi_version {
        annotations.insert(egate_oci::ABI_ANNOTATION.to_string(), version.to_string());
    }
    let name = args.policy_name.clone().or_else(|| args.module.file_stem().map(|s| s.to_string_lossy().into_owned()));
    annotations.extend(name.map(|name| (egate_oci::POLICY_ANNOTATION.to_string(), name)));
    annotations.extend(args.source.clone().map(|source| (egate_oci::SOURCE_ANNOTATION.to_string(), source)));
    let digest = registry.fetcher()?.registry().push(&module, &wasm, annotations)?;
    println!("pushed  {}", args.reference);
    println!("digest  {digest}");
    println!("pin     {}", module.pinned(&digest));
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `egate pull`.
#[derive(Args)]
pub struct PullArgs {
    /// The module: oci://REGISTRY/REPOSITORY:TAG or @sha256:HEX.
    reference: String,
    /// Where to write it; default REPOSITORY's last segment .wasm, here.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Check its cosign signature against this verification file.
    #[arg(long, value_name = "FILE")]
    verify: Option<PathBuf>,
}

/// Runs `egate pull`: writes the module, prints where and its digest.
pub fn pull(args: &PullArgs, registry: &RegistryArgs) -> Result<ExitCode> {
    let module = ModuleRef::parse(&args.reference)?;
    let pulled = fetch(registry, &args.reference, args.verify.as_deref())?;
    let output = args.output.clone().unwrap_or_else(|| {
        let name = module.reference.repository().rsplit('/').next().unwrap_or("module");
        PathBuf::from(format!("{name}.wasm"))
    });
    std::fs::write(&output, &pulled.wasm).with_context(|| format!("cannot write {}", output.display()))?;
    println!("pulled  {}", args.reference);
    println!("digest  {}", pulled.digest);
    println!("module  {} ({})", output.display(), crate::inspect::human_size(pulled.wasm.len()));
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `egate sign`.
#[derive(Args)]
pub struct SignArgs {
    /// The module: oci://REGISTRY/REPOSITORY@sha256:HEX (or :TAG, resolved once to its digest).
    reference: String,
    /// The P-256 private key: a cosign.key (`cosign generate-key-pair`; its
    /// password in COSIGN_PASSWORD), or an unencrypted PKCS#8 or SEC1 PEM.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
}

/// Runs `egate sign`: stores a cosign signature of the module's digest
/// under the tag sha256-HEX.sig; prints the digest and the signature's tag.
pub fn sign(args: &SignArgs, registry: &RegistryArgs) -> Result<ExitCode> {
    let password = std::env::var("COSIGN_PASSWORD").ok();
    let signer = Signer::read(&args.key, password.as_deref())?;
    let module = ModuleRef::parse(&args.reference)?;
    let fetcher = registry.fetcher()?;
    let registry = fetcher.registry();
    let digest = registry.resolve(&module)?;
    // What is signed must be a module egate would load, not any artifact.
    registry.pull(&ModuleRef::parse(&module.pinned(&digest))?, None)?;
    let repository = format!("{}/{}", module.registry(), module.reference.repository());
    let payload = egate_oci::simple_signing_payload(&repository, &digest);
    let signature = registry.push_signature(&module, &digest, &payload, &signer.sign(&payload))?;
    println!("signed     {}", args.reference);
    println!("digest     {digest}");
    println!("signature  {signature}");
    println!("key        {}", args.key.display());
    Ok(ExitCode::SUCCESS)
}

/// The module an `oci://` reference names, checked against the set-wide
/// verification file and `verify`.
pub fn fetch(registry: &RegistryArgs, reference: &str, verify: Option<&std::path::Path>) -> Result<Pulled> {
    Ok(registry.fetcher()?.fetch_module(reference, None, verify)?)
}
