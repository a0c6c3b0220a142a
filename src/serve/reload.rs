//! The policy set being served, and its reloads. Requests take a snapshot
//! (`Arc<PolicySet>`) and finish on it, whatever happens meanwhile; a
//! reload compiles the new set on a blocking thread, then swaps it in
//! atomically. A set that fails to load is refused, with a logged error,
//! and the old one keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arc_swap::ArcSwapOption;
use egate_engine::admission_policy::{Document, parse_documents};
use egate_engine::manifest::ModuleSource;
use egate_engine::{PolicySet, Sandbox};

use super::metrics::Metrics;
use super::watch::{ChangeDetector, Fingerprint};
use crate::cluster::objects::ClusterObjectStore;

/// The built-in default set (`policies/default.yaml`), compiled in so a
/// binary copied alone serves it. Its modules are all `builtin:`.
pub const DEFAULT_SET: &str = include_str!("../../policies/default.yaml");

/// Where the policies come from.
#[derive(Debug, Clone)]
pub enum PolicySource {
    /// Manifest files given with `--policies`.
    Files(Vec<PathBuf>),
    /// The built-in default set.
    Default,
    /// The cluster's `ClusterPolicy` and `Policy` objects
    /// (`--policies-from cluster`, see `crate::cluster::policies`).
    Cluster,
}

impl std::fmt::Display for PolicySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicySource::Files(paths) => {
                let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                write!(f, "{}", names.join(", "))
            }
            PolicySource::Default => write!(f, "the built-in default set (policies/default.yaml)"),
            PolicySource::Cluster => write!(f, "the cluster's ClusterPolicy and Policy objects"),
        }
    }
}

/// The swappable policy set.
pub struct Policies {
    current: ArcSwapOption<PolicySet>,
    source: PolicySource,
    sandbox: Sandbox,
    metrics: Arc<Metrics>,
    /// One reload at a time, so an older load can never land after a newer one.
    reloading: tokio::sync::Mutex<()>,
    /// With `--params-from cluster`: the kinds each set names are watched
    /// and listed before it serves.
    params: std::sync::OnceLock<Arc<ClusterObjectStore>>,
}

impl Policies {
    /// Nothing loaded yet: `current()` is `None` until [`Policies::reload`] succeeds.
    pub fn new(source: PolicySource, sandbox: Sandbox, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            current: ArcSwapOption::empty(),
            source,
            sandbox,
            metrics,
            reloading: Default::default(),
            params: Default::default(),
        })
    }

    /// From now on, the params of each set loaded are read from `objects`.
    pub fn read_params_from(&self, objects: Arc<ClusterObjectStore>) {
        let _ = self.params.set(objects);
    }

    /// The sandbox sets are loaded in.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Swaps in a set loaded elsewhere (from the cluster's objects).
    pub fn install(&self, set: PolicySet, why: &str, started: Instant) {
        let names: Vec<&str> = set.policies().iter().map(|p| p.name()).collect();
        tracing::info!(
            reason = why,
            source = %self.source,
            policies = names.join(","),
            took_ms = started.elapsed().as_secs_f64() * 1e3,
            "policy set loaded: new requests are judged with it"
        );
        self.metrics.policy_reload(Some(names.len()));
        self.current.store(Some(Arc::new(set)));
    }

    /// The set requests are judged with now, `None` before the first load.
    pub fn current(&self) -> Option<Arc<PolicySet>> {
        self.current.load_full()
    }

    /// Loads the set anew and swaps it in; on error the old set stays and
    /// the error is returned (and logged, and counted).
    pub async fn reload(&self, why: &str) -> Result<()> {
        let _one_at_a_time = self.reloading.lock().await;
        let started = Instant::now();
        let (source, sandbox) = (self.source.clone(), self.sandbox.clone());
        let loaded = tokio::task::spawn_blocking(move || load(&source, &sandbox))
            .await
            .context("the policy loading thread panicked")
            .and_then(|result| result);
        match loaded {
            Ok(set) => {
                if let Some(objects) = self.params.get() {
                    objects.watch(&set.param_kinds()).await;
                }
                self.install(set, why, started);
                Ok(())
            }
            Err(error) => {
                self.metrics.policy_reload(None);
                let serving =
                    if self.current.load().is_some() { "the previous set keeps serving" } else { "no set is loaded" };
                tracing::error!(reason = why, source = %self.source, error = format!("{error:#}"), "policy set refused: {serving}");
                Err(error)
            }
        }
    }

    /// The files whose change means a reload: the manifests and the `.wasm`
    /// modules they name (none for the built-in set).
    fn watched_files(&self) -> Vec<PathBuf> {
        let PolicySource::Files(manifests) = &self.source else { return Vec::new() };
        let mut files = manifests.clone();
        for manifest_path in manifests {
            let dir = manifest_path.parent().unwrap_or(Path::new("."));
            // A file may hold Kubernetes policies too: only egate's name modules.
            let text = std::fs::read_to_string(manifest_path).unwrap_or_default();
            let documents = parse_documents(&text).unwrap_or_default();
            let manifests = documents.iter().filter_map(|d| match d {
                Document::Egate(manifest) => Some(manifest),
                _ => None,
            });
            for manifest in manifests {
                if let Some(ModuleSource::File(module)) = manifest.module_source(dir)
                    && !files.contains(&module)
                {
                    files.push(module);
                }
            }
        }
        files
    }

    /// Loads the set for the first time, then polls its files every
    /// `interval` and reloads once a change has settled. Returns the error
    /// of the first load (the server cannot serve without a set).
    pub async fn load_and_watch(self: Arc<Self>, interval: Duration) -> Result<()> {
        let mut files = self.watched_files();
        let mut detector = ChangeDetector::new(Fingerprint::of(&files));
        self.reload("start").await?;
        if files.is_empty() {
            return Ok(()); // the built-in set: only SIGHUP reloads it
        }
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if detector.poll(Fingerprint::of(&files)) {
                    // The manifests may name other module files now.
                    let now = self.watched_files();
                    if now != files {
                        files = now;
                        detector = ChangeDetector::new(Fingerprint::of(&files));
                    }
                    let _ = self.reload("a policy file changed").await;
                }
            }
        });
        Ok(())
    }
}

/// Compiles a policy set (blocking: modules compile with Cranelift, or come
/// from the module cache).
fn load(source: &PolicySource, sandbox: &Sandbox) -> Result<PolicySet> {
    match source {
        PolicySource::Files(paths) => Ok(PolicySet::load(sandbox, paths)?),
        PolicySource::Default => load_default(sandbox),
        PolicySource::Cluster => {
            anyhow::bail!("a set from the cluster is rebuilt as its objects change, not reloaded (SIGHUP does nothing)")
        }
    }
}

/// The embedded default set, from its text: no file is written or read.
pub fn load_default(sandbox: &Sandbox) -> Result<PolicySet> {
    Ok(PolicySet::from_manifests(sandbox, Path::new("policies/default.yaml (built in)"), DEFAULT_SET)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use egate_engine::manifest::parse_manifests;

    #[test]
    fn the_default_set_is_the_documented_one_with_builtin_modules_only() {
        let manifests = parse_manifests(DEFAULT_SET).expect("policies/default.yaml parses");
        let names: Vec<&str> = manifests.iter().map(|m| m.metadata.name.as_str()).collect();
        for expected in [
            "images",
            "privileged",
            "capabilities",
            "pod-security",
            "target",
            "volume-mounts",
            "env-secrets",
            "max-count",
            "harden",
            "audit",
        ] {
            assert!(names.contains(&expected), "{expected} missing from {names:?}");
        }
        for manifest in &manifests {
            let module = manifest.spec.module.as_deref().unwrap_or_default();
            assert!(module.starts_with("builtin:"), "{}: module {module:?}", manifest.metadata.name);
            assert_eq!(manifest.spec.mutating, manifest.metadata.name == "harden", "{}", manifest.metadata.name);
        }
        let images = manifests.iter().find(|m| m.metadata.name == "images").unwrap();
        assert_eq!(images.spec.settings["disallowLatest"], true);
        let pss = manifests.iter().find(|m| m.metadata.name == "pod-security").unwrap();
        assert_eq!(pss.spec.settings["level"], "baseline");
    }
}
