//! `egate serve --policies-from cluster`: the served set is built from the
//! `ClusterPolicy` and `Policy` objects of the cluster.
//!
//! Two kube-runtime reflectors keep a local copy of both kinds, so a
//! request never waits on the API server. When an object's spec changes
//! (a new generation, an object added or deleted), the set is rebuilt on a
//! blocking thread and swapped in; requests in flight finish on the old
//! set. Each object is loaded on its own: a broken one is left out, and its
//! `status` says why, while the others keep judging. Status is written only
//! when it changes, and status writes do not rebuild the set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use egate_engine::{LoadError, PolicySet, Sandbox};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};

use super::crd::{ClusterPolicy, Policy, PolicyStatus};
use crate::serve::{Metrics, Policies};

/// How long a burst of changes (a `kubectl apply -f` of many objects) may
/// settle before the set is rebuilt.
const SETTLE: Duration = Duration::from_millis(100);

/// One policy object as the set sees it: which it is, what to load, and
/// what it says of itself now.
pub struct PolicyObject {
    kind: &'static str,
    namespace: Option<String>,
    name: String,
    generation: Option<i64>,
    /// The manifest text loaded for it: the object as a manifest file.
    pub manifest: String,
    /// Why it cannot load whatever the engine says (a relative module path).
    pub problem: Option<String>,
    status: Option<PolicyStatus>,
}

impl PolicyObject {
    /// Where messages say it comes from: `clusterpolicies/NAME` or
    /// `policies/NAMESPACE/NAME`.
    pub fn origin(&self) -> PathBuf {
        match &self.namespace {
            Some(namespace) => Path::new("policies").join(namespace).join(&self.name),
            None => Path::new("clusterpolicies").join(&self.name),
        }
    }

    pub fn from_cluster(object: &ClusterPolicy) -> Self {
        Self::new("ClusterPolicy", object.meta(), serde_json::to_value(&object.spec.0), object.status.clone())
    }

    pub fn from_namespaced(object: &Policy) -> Self {
        Self::new("Policy", object.meta(), serde_json::to_value(&object.spec.0), object.status.clone())
    }

    fn new(
        kind: &'static str,
        meta: &kube::api::ObjectMeta,
        spec: serde_json::Result<serde_json::Value>,
        status: Option<PolicyStatus>,
    ) -> Self {
        let name = meta.name.clone().unwrap_or_default();
        let namespace = meta.namespace.clone();
        let mut metadata = serde_json::json!({ "name": name });
        if let Some(namespace) = &namespace {
            metadata["namespace"] = namespace.clone().into();
        }
        let manifest = serde_json::json!({
            "apiVersion": egate_engine::manifest::API_VERSION,
            "kind": kind,
            "metadata": metadata,
            "spec": spec.unwrap_or_default(),
        });
        let problem = module_problem(&manifest["spec"]);
        Self { kind, namespace, name, generation: meta.generation, manifest: manifest.to_string(), problem, status }
    }

    /// What decides whether the set must be rebuilt: a status write does
    /// not change it.
    fn key(&self) -> (String, Option<i64>) {
        (format!("{}/{}", self.kind, self.origin().display()), self.generation)
    }
}

/// Watches both kinds until the process ends, keeping `policies` to the
/// set they make. Returns once the first set is loaded; errors only when
/// the watches cannot start.
pub async fn serve_from_cluster(
    client: Client,
    policies: Arc<Policies>,
    metrics: Arc<Metrics>,
    rescan: Arc<AtomicBool>,
) -> Result<()> {
    let (cluster_store, cluster_writer) = reflector::store::<ClusterPolicy>();
    let (namespaced_store, namespaced_writer) = reflector::store::<Policy>();
    let (changed_tx, mut changed) = tokio::sync::mpsc::channel::<()>(1);
    let cluster_api: Api<ClusterPolicy> = Api::all(client.clone());
    let namespaced_api: Api<Policy> = Api::all(client.clone());
    spawn_reflector(
        watcher(cluster_api, watcher::Config::default()).default_backoff().reflect(cluster_writer),
        &changed_tx,
        "ClusterPolicies",
    );
    spawn_reflector(
        watcher(namespaced_api, watcher::Config::default()).default_backoff().reflect(namespaced_writer),
        &changed_tx,
        "Policies",
    );
    cluster_store.wait_until_ready().await.context("the ClusterPolicy watch ended before its first list")?;
    namespaced_store.wait_until_ready().await.context("the Policy watch ended before its first list")?;

    let mut sync = ClusterSync { client, policies, metrics, cluster_store, namespaced_store, loaded: None, rescan };
    sync.apply().await;
    tokio::spawn(async move {
        while changed.recv().await.is_some() {
            tokio::time::sleep(SETTLE).await;
            while changed.try_recv().is_ok() {}
            sync.apply().await;
        }
    });
    Ok(())
}

/// Drives a reflector's stream, saying "changed" on every event; `what`
/// names the objects in the log when the watch fails.
pub(super) fn spawn_reflector<S, K>(stream: S, changed: &tokio::sync::mpsc::Sender<()>, what: &'static str)
where
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    K: Send + 'static,
{
    let changed = changed.clone();
    drive_reflector(stream, what, move || {
        let _ = changed.try_send(());
    });
}

/// Drives a reflector's stream, calling `on_event` after every event;
/// `what` names the objects in the log when the watch fails.
pub(super) fn drive_reflector<S, K>(stream: S, what: &'static str, on_event: impl Fn() + Send + 'static)
where
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    K: Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => on_event(),
                Err(error) => tracing::warn!(%error, objects = what, "watching the cluster failed; retrying"),
            }
        }
    });
}

/// Keeps the served set to the cluster's policy objects: the state between rebuilds.
struct ClusterSync {
    client: Client,
    policies: Arc<Policies>,
    metrics: Arc<Metrics>,
    cluster_store: Store<ClusterPolicy>,
    namespaced_store: Store<Policy>,
    /// The keys of the objects the current set was built from.
    loaded: Option<Vec<(String, Option<i64>)>>,
    /// Set when a new set is installed: the background scan runs again.
    rescan: Arc<AtomicBool>,
}

impl ClusterSync {
    /// Rebuilds the set when an object's spec changed, then brings every
    /// object's status up to date.
    async fn apply(&mut self) {
        let mut objects: Vec<PolicyObject> =
            self.cluster_store.state().iter().map(|o| PolicyObject::from_cluster(o)).collect();
        objects.extend(self.namespaced_store.state().iter().map(|o| PolicyObject::from_namespaced(o)));
        objects.sort_by_key(PolicyObject::key);
        let keys: Vec<_> = objects.iter().map(PolicyObject::key).collect();
        if self.loaded.as_ref() == Some(&keys) {
            return;
        }
        let started = Instant::now();
        let sandbox = self.policies.sandbox().clone();
        let texts: Vec<(PathBuf, String, Option<String>)> =
            objects.iter().map(|o| (o.origin(), o.manifest.clone(), o.problem.clone())).collect();
        let loaded = tokio::task::spawn_blocking(move || load_each(&sandbox, &texts)).await;
        let Ok((set, errors)) = loaded else {
            tracing::error!("the policy loading thread panicked; the previous set keeps serving");
            return;
        };
        self.metrics.policies_broken(errors.len());
        self.policies.install(set, "the cluster's policies changed", started);
        self.rescan.store(true, Ordering::Relaxed);
        self.loaded = Some(keys);
        for (index, object) in objects.iter().enumerate() {
            let error = errors.get(&index);
            if let Err(error) = self.write_status(object, error).await {
                tracing::warn!(policy = %object.origin().display(), error = format!("{error:#}"), "cannot write the policy's status");
            }
        }
    }

    /// Sets `Ready` (with the load error when there is one) and
    /// `observedGeneration`, unless they say so already.
    async fn write_status(&self, object: &PolicyObject, error: Option<&String>) -> Result<()> {
        let status = status_for(object.generation, error, object.status.as_ref());
        if object.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let patch = Patch::Merge(serde_json::json!({ "status": status }));
        let params = PatchParams::default();
        match &object.namespace {
            Some(namespace) => {
                Api::<Policy>::namespaced(self.client.clone(), namespace)
                    .patch_status(&object.name, &params, &patch)
                    .await?;
            }
            None => {
                Api::<ClusterPolicy>::all(self.client.clone()).patch_status(&object.name, &params, &patch).await?;
            }
        }
        Ok(())
    }
}

/// Loads each object's manifest on its own (but for those with a
/// problem of their own); the errors by object index.
fn load_each(sandbox: &Sandbox, objects: &[(PathBuf, String, Option<String>)]) -> (PolicySet, BTreeMap<usize, String>) {
    let loadable: Vec<usize> = (0..objects.len()).filter(|&i| objects[i].2.is_none()).collect();
    let manifests: Vec<(&Path, &str)> =
        loadable.iter().map(|&i| (objects[i].0.as_path(), objects[i].1.as_str())).collect();
    let (set, errors) = PolicySet::load_each(sandbox, &manifests);
    let mut by_object: BTreeMap<usize, String> =
        errors.into_iter().map(|(index, error): (usize, LoadError)| (loadable[index], error.to_string())).collect();
    for (index, (_, _, problem)) in objects.iter().enumerate() {
        if let Some(problem) = problem {
            by_object.insert(index, problem.clone());
        }
    }
    (set, by_object)
}

/// A module path relative to a manifest means nothing for an object
/// stored in the cluster: there is no manifest file. `builtin:` modules and
/// absolute paths (a module mounted into egate's pods) are fine.
pub fn module_problem(spec: &serde_json::Value) -> Option<String> {
    let module = spec["module"].as_str()?;
    if module.starts_with("builtin:") || Path::new(module).is_absolute() {
        return None;
    }
    Some(format!(
        "spec.module {module:?} is a relative path, which means nothing for a policy stored in the cluster: \
         write builtin:NAME, or the absolute path of a module mounted into egate's pods"
    ))
}

/// The status of an object after a load: `Ready` True, or False with the
/// error. The transition time is kept while `Ready` keeps its value.
pub fn status_for(generation: Option<i64>, error: Option<&String>, previous: Option<&PolicyStatus>) -> PolicyStatus {
    let (status, reason, message) = match error {
        None => ("True", "Loaded", "the policy is loaded and judges requests".to_string()),
        Some(error) => ("False", "LoadFailed", error.clone()),
    };
    let previous_ready = previous.and_then(|p| p.conditions.iter().find(|c| c.type_ == "Ready"));
    let last_transition_time = match previous_ready {
        Some(ready) if ready.status == status => ready.last_transition_time.clone(),
        _ => Time(k8s_openapi::jiff::Timestamp::now()),
    };
    let ready = Condition {
        type_: "Ready".into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time,
    };
    PolicyStatus { conditions: vec![ready], observed_generation: generation }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_relative_module_path_is_a_problem_in_the_cluster() {
        let spec = |module: &str| serde_json::json!({"module": module});
        assert_eq!(module_problem(&spec("builtin:images")), None);
        assert_eq!(module_problem(&spec("/modules/mine.wasm")), None);
        assert_eq!(module_problem(&serde_json::json!({"validations": []})), None);
        let problem = module_problem(&spec("mine.wasm")).unwrap();
        assert!(problem.contains("\"mine.wasm\" is a relative path") && problem.contains("builtin:NAME"), "{problem}");
    }

    #[test]
    fn ready_keeps_its_transition_time_while_it_keeps_its_value() {
        let loaded = status_for(Some(1), None, None);
        let ready = &loaded.conditions[0];
        assert_eq!((ready.type_.as_str(), ready.status.as_str(), ready.reason.as_str()), ("Ready", "True", "Loaded"));
        assert_eq!((loaded.observed_generation, ready.observed_generation), (Some(1), Some(1)));
        let again = status_for(Some(2), None, Some(&loaded));
        assert_eq!(again.conditions[0].last_transition_time, ready.last_transition_time);
        let error = "policy \"p\": invalid spec.settings".to_string();
        let broken = status_for(Some(3), Some(&error), Some(&again));
        assert_eq!(
            (broken.conditions[0].status.as_str(), broken.conditions[0].message.as_str()),
            ("False", error.as_str())
        );
    }
}
