//! The objects a Kubernetes policy reads besides the request: its params
//! (objects of its `paramKind`) and Namespaces (for `namespaceSelector` and
//! `namespaceObject`).
//!
//! They come from the policy files, and, when a host installs a
//! [`ClusterObjects`] (`egate serve --params-from cluster` installs one that
//! watches the API server), from the cluster too: an object of the files is
//! found first, then the cluster's.
//!
//! ```no_run
//! use std::sync::Arc;
//! use egate_engine::admission_policy::{ClusterObjects, Kind, install_cluster_objects};
//! use serde_json::Value;
//!
//! struct Nothing;
//! impl ClusterObjects for Nothing {
//!     fn objects(&self, kind: &Kind) -> Result<Vec<Arc<Value>>, String> { Err(format!("{kind} is not watched")) }
//!     fn namespace(&self, _: &str) -> Option<Arc<Value>> { None }
//! }
//! install_cluster_objects(Arc::new(Nothing));
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde_json::Value as Json;

/// A kind of object: `apiVersion` (`v1`, `example.com/v1`) and `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kind {
    /// `GROUP/VERSION`, or `VERSION` for the core group.
    pub api_version: String,
    /// The kind, as in `ConfigMap`.
    pub kind: String,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.api_version, self.kind)
    }
}

/// Objects of the cluster, as a host keeps them (a watch of the API server).
pub trait ClusterObjects: Send + Sync {
    /// Every object of `kind`; the error says why the host does not know
    /// them (not watched, not listed yet, no such kind in the cluster).
    fn objects(&self, kind: &Kind) -> Result<Vec<Arc<Json>>, String>;
    /// The Namespace `name`, if it exists.
    fn namespace(&self, name: &str) -> Option<Arc<Json>>;
}

static CLUSTER: OnceLock<Arc<dyn ClusterObjects>> = OnceLock::new();

/// Installs the cluster's objects for every policy set loaded after it, in
/// this process. Returns false if one was installed already.
pub fn install_cluster_objects(objects: Arc<dyn ClusterObjects>) -> bool {
    CLUSTER.set(objects).is_ok()
}

/// The objects one policy set reads: its files', then the cluster's.
pub(super) struct Objects {
    files: Vec<Arc<Json>>,
    namespaces: BTreeMap<String, Arc<Json>>,
    cluster: Option<Arc<dyn ClusterObjects>>,
}

impl Objects {
    /// The objects of the files (anything but policies and bindings), and
    /// the installed cluster objects.
    pub(super) fn new(files: impl Iterator<Item = Json>) -> Self {
        let files: Vec<Arc<Json>> = files.map(Arc::new).collect();
        let namespaces = files
            .iter()
            .filter(|o| o["apiVersion"] == "v1" && o["kind"] == "Namespace")
            .filter_map(|o| Some((o.pointer("/metadata/name")?.as_str()?.to_string(), o.clone())))
            .collect();
        Self { files, namespaces, cluster: CLUSTER.get().cloned() }
    }

    /// Whether objects come from the cluster too.
    pub(super) fn reads_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    /// The objects of `kind`; the error says why they are not known.
    pub(super) fn of_kind(&self, kind: &Kind) -> Result<Vec<Arc<Json>>, String> {
        let is_kind = |o: &&Arc<Json>| o["apiVersion"] == kind.api_version.as_str() && o["kind"] == kind.kind.as_str();
        let mut found: Vec<Arc<Json>> = self.files.iter().filter(is_kind).cloned().collect();
        if let Some(cluster) = &self.cluster {
            found.extend(cluster.objects(kind)?);
        }
        Ok(found)
    }

    /// The Namespace `name`.
    pub(super) fn namespace(&self, name: &str) -> Option<Arc<Json>> {
        self.namespaces.get(name).cloned().or_else(|| self.cluster.as_ref()?.namespace(name))
    }
}
