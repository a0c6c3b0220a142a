//! The cluster's objects that Kubernetes policies read, for
//! `egate serve --params-from cluster`: Namespaces (for `namespaceSelector`
//! and `namespaceObject`), and the objects of each `paramKind` the served
//! set names (a ConfigMap, a custom resource).
//!
//! A kube-runtime reflector keeps a copy of each kind; every change
//! rebuilds a snapshot, swapped in atomically, which requests read without
//! waiting on the API server. A kind is found by discovery the first time a
//! set names it, and its first list is awaited before that set serves, so
//! a set is never judged with params half known. A kind the cluster does
//! not have stays unknown, and the policies that need it fail under their
//! failure policy, with a message that names the kind.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use egate_engine::admission_policy::{ClusterObjects, Kind};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::reflector;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::Value as Json;

use super::policies::drive_reflector;

/// What requests read: the latest snapshot of each watched kind.
pub struct ClusterObjectStore {
    client: Client,
    namespaces: Arc<ArcSwap<BTreeMap<String, Arc<Json>>>>,
    kinds: Mutex<HashMap<Kind, Watched>>,
}

/// One kind: its objects as last listed, or why they are not known.
#[derive(Clone)]
enum Watched {
    Listed(Arc<ArcSwap<Vec<Arc<Json>>>>),
    Unknown(String),
}

impl ClusterObjectStore {
    /// Starts watching Namespaces; returns once they are listed.
    pub async fn start(client: Client) -> Result<Arc<Self>> {
        let (store, writer) = reflector::store::<Namespace>();
        let namespaces = Arc::new(ArcSwap::from_pointee(BTreeMap::new()));
        let stream = watcher(Api::<Namespace>::all(client.clone()), watcher::Config::default())
            .default_backoff()
            .reflect(writer);
        let snapshot = namespaces.clone();
        let reader = store.clone();
        drive_reflector(stream, "Namespaces", move || {
            let named = reader.state().into_iter().filter_map(|n| Some((n.name_any(), Arc::new(json_of(n.as_ref())?))));
            snapshot.store(Arc::new(named.collect()));
        });
        store.wait_until_ready().await.context("the Namespace watch ended before its first list")?;
        Ok(Arc::new(Self { client, namespaces, kinds: Mutex::new(HashMap::new()) }))
    }

    /// Watches every kind of `kinds` not watched yet, and returns once each
    /// is listed (or known not to exist in the cluster).
    pub async fn watch(&self, kinds: &[Kind]) {
        for kind in kinds {
            if self.kinds.lock().expect("kinds lock").contains_key(kind) {
                continue;
            }
            let watched = match self.watch_kind(kind).await {
                Ok(listed) => Watched::Listed(listed),
                Err(error) => {
                    let reason = format!("{error:#}");
                    tracing::warn!(kind = %kind, error = reason, "cannot watch a paramKind: the policies naming it fail");
                    Watched::Unknown(reason)
                }
            };
            self.kinds.lock().expect("kinds lock").insert(kind.clone(), watched);
        }
    }

    async fn watch_kind(&self, kind: &Kind) -> Result<Arc<ArcSwap<Vec<Arc<Json>>>>> {
        let (group, version) = kind.api_version.rsplit_once('/').unwrap_or(("", &kind.api_version));
        let gvk = GroupVersionKind::gvk(group, version, &kind.kind);
        let (resource, _) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .with_context(|| format!("the cluster has no {kind}: install its API, or correct the paramKind"))?;
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
        let writer = reflector::store::Writer::<DynamicObject>::new(resource.clone());
        let store = writer.as_reader();
        let listed = Arc::new(ArcSwap::from_pointee(Vec::new()));
        let snapshot = listed.clone();
        let typed = TypeMeta::of(&resource);
        let stream = watcher(api, watcher::Config::default()).default_backoff().reflect(writer);
        let reader = store.clone();
        drive_reflector(stream, "params", move || {
            let objects = reader.state().into_iter().filter_map(|o| Some(Arc::new(typed.stamp(json_of(o.as_ref())?))));
            snapshot.store(Arc::new(objects.collect()));
        });
        store.wait_until_ready().await.with_context(|| format!("the watch of {kind} ended before its first list"))?;
        Ok(listed)
    }
}

impl ClusterObjects for ClusterObjectStore {
    fn objects(&self, kind: &Kind) -> Result<Vec<Arc<Json>>, String> {
        match self.kinds.lock().expect("kinds lock").get(kind) {
            Some(Watched::Listed(listed)) => Ok(listed.load().as_ref().clone()),
            Some(Watched::Unknown(reason)) => Err(format!("the params of kind {kind} are not known: {reason}")),
            None => Err(format!("the params of kind {kind} are not watched yet: the policy set is still loading")),
        }
    }

    fn namespace(&self, name: &str) -> Option<Arc<Json>> {
        self.namespaces.load().get(name).cloned()
    }
}

/// `apiVersion` and `kind`, which a watch's objects may come without.
struct TypeMeta {
    api_version: String,
    kind: String,
}

impl TypeMeta {
    fn of(resource: &ApiResource) -> Self {
        Self { api_version: resource.api_version.clone(), kind: resource.kind.clone() }
    }

    fn stamp(&self, mut object: Json) -> Json {
        object["apiVersion"] = Json::String(self.api_version.clone());
        object["kind"] = Json::String(self.kind.clone());
        object
    }
}

fn json_of(object: &impl serde::Serialize) -> Option<Json> {
    serde_json::to_value(object).ok()
}
