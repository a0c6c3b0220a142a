//! Loading a policy set: manifests, their modules (built-in, in the
//! built-in library, from a file, or from an OCI registry through the
//! installed [`crate::oci::ModuleFetcher`]) with digests checked, settings
//! checked by the module, and CEL compiled.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use egate_abi::{BundledSettings, SettingsVerdict, exports};

use super::{CelValidation, Policy, PolicySet};
use crate::admission_policy::{Document, Placed, parse_documents};
use crate::builtin;
use crate::cel::{CelExpression, Reads, params_value};
use crate::error::LoadError;
use crate::manifest::{Manifest, ModuleSource, Validation};
use crate::matching::Matcher;
use crate::oci::FetchRequest;
use crate::sandbox::{GuestModule, Sandbox};

impl PolicySet {
    /// Loads every policy of the manifest files, compiling modules and
    /// checking settings. Any error refuses the whole set.
    pub fn load(sandbox: &Sandbox, manifest_paths: &[PathBuf]) -> Result<Self, LoadError> {
        let mut texts = Vec::with_capacity(manifest_paths.len());
        for path in manifest_paths {
            let text = std::fs::read_to_string(path)
                .map_err(|source| LoadError::ReadManifest { path: path.clone(), source })?;
            texts.push((path.clone(), text));
        }
        Self::from_texts(sandbox, texts.iter().map(|(path, text)| (path.as_path(), text.as_str())), &[])
    }

    /// Loads the policies of manifest text already in memory (a set
    /// compiled into a binary, or read from the API server). `origin`
    /// stands for the file the text would be: errors name it, and module
    /// paths are relative to its directory.
    ///
    /// ```no_run
    /// # use egate_engine::{PolicySet, Sandbox, SandboxConfig};
    /// # use std::path::Path;
    /// let sandbox = Sandbox::new(SandboxConfig::default()).unwrap();
    /// let text = "apiVersion: egate.dev/v1\nkind: ClusterPolicy\nmetadata: {name: p}\n\
    ///             spec: {match: {resources: [pods/ephemeralcontainers]}, module: builtin:privileged}\n";
    /// let set = PolicySet::from_manifests(&sandbox, Path::new("inline.yaml"), text).unwrap();
    /// assert_eq!(set.policies().len(), 1);
    /// ```
    pub fn from_manifests(sandbox: &Sandbox, origin: &Path, text: &str) -> Result<Self, LoadError> {
        Self::from_texts(sandbox, [(origin, text)], &[])
    }

    /// Loads manifests and module files that are all in memory: each
    /// manifest with its origin as in [`PolicySet::from_manifests`], each
    /// module file under the path a `spec.module` resolves to (relative to
    /// its manifest's origin). Nothing is read from disk but what no
    /// module file stands for.
    pub fn from_memory(
        sandbox: &Sandbox,
        manifests: &[(&Path, &str)],
        module_files: &[(&Path, &[u8])],
    ) -> Result<Self, LoadError> {
        Self::from_texts(sandbox, manifests.iter().copied(), module_files)
    }

    /// Loads each manifest text on its own, leaving out the ones that do
    /// not load: the set of the others, and the error of each left out, by
    /// its index in `manifests`. This is how a set read from the API server
    /// loads, where one broken object must not take the others down.
    pub fn load_each(sandbox: &Sandbox, manifests: &[(&Path, &str)]) -> (Self, Vec<(usize, LoadError)>) {
        let mut loader = Loader::new(sandbox, &[]);
        let errors = manifests
            .iter()
            .enumerate()
            .filter_map(|(index, (path, text))| loader.add(path, text).err().map(|error| (index, error)))
            .collect();
        // Objects of the API server hold egate's own kinds only: nothing to bind.
        loader.kubernetes.clear();
        (loader.finish().expect("nothing to bind"), errors)
    }

    /// Loads the manifest texts in order, each with its origin.
    fn from_texts<'a>(
        sandbox: &Sandbox,
        texts: impl IntoIterator<Item = (&'a Path, &'a str)>,
        module_files: &[(&Path, &[u8])],
    ) -> Result<Self, LoadError> {
        let mut loader = Loader::new(sandbox, module_files);
        for (path, text) in texts {
            loader.add(path, text)?;
        }
        loader.finish()
    }
}

/// A module as the loader asks for it: its source and, for an `oci://`
/// one, the verification file its signature is checked against.
type ModuleKey = (ModuleSource, Option<PathBuf>);

/// A set being loaded: the policies so far, and the modules compiled for
/// them (each compiled once, whichever policies share it).
struct Loader<'l> {
    sandbox: &'l Sandbox,
    module_files: &'l [(&'l Path, &'l [u8])],
    modules: HashMap<ModuleKey, LoadedModule>,
    library: Option<LoadedModule>,
    policies: Vec<Policy>,
    /// Kubernetes policies, their bindings and params, paired at the end.
    kubernetes: Vec<Placed>,
}

impl<'l> Loader<'l> {
    fn new(sandbox: &'l Sandbox, module_files: &'l [(&'l Path, &'l [u8])]) -> Self {
        Self {
            sandbox,
            module_files,
            modules: HashMap::new(),
            library: None,
            policies: Vec::new(),
            kubernetes: Vec::new(),
        }
    }

    /// Adds every policy of one manifest text, or none of them.
    fn add(&mut self, path: &Path, text: &str) -> Result<(), LoadError> {
        let documents = parse_documents(text).map_err(|error| error.in_file(path))?;
        let mut added: Vec<Policy> = Vec::new();
        let mut kubernetes = Vec::new();
        for document in documents {
            let manifest = match document {
                Document::Egate(manifest) => *manifest,
                other => {
                    kubernetes.push(Placed { path: path.to_path_buf(), document: other });
                    continue;
                }
            };
            let policy =
                load_policy(self.sandbox, path, manifest, self.module_files, &mut self.modules, &mut self.library)?;
            if let Some(first) = self.policies.iter().chain(&added).find(|p| p.name == policy.name) {
                return Err(LoadError::DuplicateName {
                    name: policy.name,
                    first: first.manifest_path.clone(),
                    second: path.to_path_buf(),
                });
            }
            added.push(policy);
        }
        self.policies.append(&mut added);
        self.kubernetes.append(&mut kubernetes);
        Ok(())
    }

    /// The set, with the Kubernetes policies bound.
    fn finish(self) -> Result<PolicySet, LoadError> {
        let mut policies = self.policies;
        for bound in crate::admission_policy::bind(&self.kubernetes)? {
            policies.push(Policy::kubernetes(bound));
        }
        // Stable: manifest order is kept within each group.
        policies.sort_by_key(|p| !p.mutating);
        let mut cel_reads = Reads::default();
        for policy in &policies {
            cel_reads.merge(&policy.cel_reads());
        }
        let batch_inputs = super::batch::BatchInputs::of(&policies);
        Ok(PolicySet { policies, cel_reads, batch_inputs })
    }
}

fn load_policy(
    sandbox: &Sandbox,
    path: &Path,
    manifest: Manifest,
    module_files: &[(&Path, &[u8])],
    modules: &mut HashMap<ModuleKey, LoadedModule>,
    library: &mut Option<LoadedModule>,
) -> Result<Policy, LoadError> {
    let name = manifest.policy_name();
    let mut bundled_as: Option<String> = None;
    let manifest_dir = path.parent().unwrap_or(Path::new("."));
    let module = match manifest.module_source(manifest_dir) {
        Some(source) => {
            let verification = manifest.spec.module_verification.as_ref().map(|file| manifest_dir.join(file));
            let key = (source, verification);
            let loaded = match modules.get(&key) {
                Some(loaded) => loaded.clone(),
                None => {
                    let remote = Remote { pin: manifest.spec.module_digest.as_deref(), verification: key.1.as_deref() };
                    let loaded = compile(sandbox, path, &name, &key.0, module_files, library, remote)?;
                    modules.insert(key.clone(), loaded.clone());
                    loaded
                }
            };
            let source = key.0;
            if let Some(expected) = manifest.spec.module_digest.as_ref().filter(|pin| **pin != loaded.digest) {
                return Err(LoadError::DigestMismatch {
                    policy: name,
                    path: path.to_path_buf(),
                    module: loaded.label,
                    expected: expected.clone(),
                    actual: loaded.digest,
                });
            }
            if let (true, ModuleSource::Builtin(builtin)) = (loaded.bundled, &source) {
                bundled_as = Some(builtin.clone());
            }
            Some(loaded.module)
        }
        None => None,
    };
    // A built-in in the library declares its inputs and reads in its own module.
    let module_error = |message| LoadError::Module { policy: name.clone(), path: path.to_path_buf(), message };
    let (inputs, reads) = match (&bundled_as, &module) {
        (Some(builtin), _) => {
            let alone = builtin::module(builtin).unwrap_or_default();
            let inputs = crate::inputs::declared(alone).map_err(module_error)?;
            (inputs, crate::inputs::declared_reads(alone).map_err(module_error)?.map(Arc::new))
        }
        (None, Some(module)) => (module.inputs().to_vec(), module.reads().cloned()),
        (None, None) => (Vec::new(), None),
    };
    let spec = manifest.spec;
    let background = spec.runs_in_background();
    let settings = match &bundled_as {
        // The built-in library learns which policy to run from its settings.
        Some(builtin) => BundledSettings::to_json(builtin, &spec.settings),
        None => serde_json::to_vec(&spec.settings),
    }
    .expect("JSON values serialise");
    if let Some(module) = &module {
        check_settings(module, &settings, spec.timeout_ms).map_err(|message| LoadError::Settings {
            policy: name.clone(),
            path: path.to_path_buf(),
            message,
        })?;
    }
    let cel_error = |rule: String, message: String| LoadError::Cel {
        policy: name.clone(),
        path: path.to_path_buf(),
        rule,
        message,
    };
    let conditions = spec
        .match_conditions
        .iter()
        .map(|c| {
            CelExpression::compile(&c.expression)
                .map(|e| (c.name.clone(), e))
                .map_err(|e| cel_error(format!("matchConditions {:?}", c.name), e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let validations = spec
        .validations
        .iter()
        .enumerate()
        .map(|(i, v)| compile_validation(v).map_err(|(field, m)| cel_error(format!("validations[{i}].{field}"), m)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Policy {
        name,
        manifest_path: path.to_path_buf(),
        action: spec.failure_action,
        failure_policy: spec.failure_policy,
        timeout_ms: spec.timeout_ms,
        mutating: spec.mutating,
        matcher: Matcher::new(spec.match_, spec.exclude).within(manifest.metadata.namespace),
        conditions,
        validations,
        batched: bundled_as.is_some() && !spec.mutating && module.as_ref().is_some_and(GuestModule::can_batch),
        module,
        settings,
        params: params_value(&spec.settings),
        background,
        inputs,
        reads,
        kubernetes: None,
    })
}

/// Asks the module whether it accepts the settings; the error is its message.
fn check_settings(module: &GuestModule, settings: &[u8], timeout_ms: u64) -> Result<(), String> {
    let output = module
        .validate_settings(settings, timeout_ms)
        .map_err(|e| format!("the module failed while checking them: {e}"))?;
    let verdict: SettingsVerdict = serde_json::from_slice(&output)
        .map_err(|e| format!("the module's {} returned no verdict JSON: {e}", exports::VALIDATE_SETTINGS.name))?;
    if verdict.valid { Ok(()) } else { Err(verdict.message) }
}

/// Compiles a validation; the error names the field at fault.
fn compile_validation(validation: &Validation) -> Result<CelValidation, (&'static str, String)> {
    let rule = CelExpression::compile(&validation.expression).map_err(|e| ("expression", e.to_string()))?;
    let message_expression = match &validation.message_expression {
        Some(source) => Some(CelExpression::compile(source).map_err(|e| ("messageExpression", e.to_string()))?),
        None => None,
    };
    Ok(CelValidation { rule, message: validation.message.clone(), message_expression })
}

/// A compiled module with what names it in messages.
#[derive(Clone)]
struct LoadedModule {
    module: GuestModule,
    label: String,
    /// `sha256:HEX` of the module bytes: what `spec.moduleDigest` pins.
    digest: String,
    /// The built-in library, which learns the policy from its settings.
    bundled: bool,
}

/// What the fetcher of an `oci://` module is told beside the reference.
#[derive(Clone, Copy)]
struct Remote<'a> {
    pin: Option<&'a str>,
    verification: Option<&'a Path>,
}

/// Compiles the module a source names. A built-in runs in the built-in
/// library when egate has one ([`builtin::runs`]); the library is then
/// compiled once per load and shared by every built-in policy, so they
/// share one copy of their code, and its digest is what a pin checks.
/// An `oci://` module comes from the installed fetcher, and its digest is
/// that of its OCI manifest.
fn compile(
    sandbox: &Sandbox,
    path: &Path,
    policy: &str,
    source: &ModuleSource,
    module_files: &[(&Path, &[u8])],
    library: &mut Option<LoadedModule>,
    remote: Remote,
) -> Result<LoadedModule, LoadError> {
    let module_error = |message: String| LoadError::Module { policy: policy.into(), path: path.to_path_buf(), message };
    let mut oci_digest = None;
    let (label, bytes, bundled): (String, Cow<[u8]>, bool) = match source {
        ModuleSource::Builtin(name) => match builtin::runs(name) {
            None => return Err(module_error(builtin::unknown(name))),
            Some(builtin::Runs::Library(bytes)) => {
                let label = format!("builtin:{name} (in egate's built-in library)");
                if let Some(loaded) = library {
                    return Ok(LoadedModule { label, ..loaded.clone() });
                }
                (label, Cow::Borrowed(bytes), true)
            }
            Some(builtin::Runs::Alone(bytes)) => (format!("builtin:{name}"), Cow::Borrowed(bytes), false),
        },
        ModuleSource::File(file) => {
            let bytes = match module_files.iter().find(|(path, _)| path == file) {
                Some((_, bytes)) => Cow::Borrowed(*bytes),
                None => Cow::Owned(
                    std::fs::read(file)
                        .map_err(|e| module_error(format!("cannot read module {}: {e}", file.display())))?,
                ),
            };
            (file.display().to_string(), bytes, false)
        }
        ModuleSource::Oci(reference) => {
            let request = FetchRequest { reference, pin: remote.pin, verification: remote.verification };
            let fetched = crate::oci::fetch(&request).map_err(module_error)?;
            oci_digest = Some(fetched.digest);
            (fetched.label, Cow::Owned(fetched.bytes), false)
        }
    };
    let module = sandbox.load(&bytes).map_err(|error| LoadError::Abi {
        policy: policy.into(),
        path: path.to_path_buf(),
        module: label.clone(),
        error: Box::new(error),
    })?;
    let digest = oci_digest.unwrap_or_else(|| digest_of(&bytes));
    let loaded = LoadedModule { module, label, digest, bundled };
    if bundled {
        *library = Some(loaded.clone());
    }
    Ok(loaded)
}

/// `sha256:HEX` of module bytes.
pub(crate) fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::cache::hex(&<sha2::Sha256 as sha2::Digest>::digest(bytes)))
}
