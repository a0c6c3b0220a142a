//! The debug grants `egate serve` hands `builtin:grants`: a kube-runtime
//! reflector keeps a copy of every `DebugGrant`, and each change rebuilds
//! the [`GrantIndex`] requests read, swapped in atomically; a request never
//! waits on the API server. Grants that cannot be used (no approver, a bad
//! duration) are left out, with a warning once per version of the object.
//!
//! The uses a review reports are written to each grant's status by one
//! task ([`UseRecorder`]), off the request path: read the grant, append
//! the use unless its request uid is recorded already, replace the status
//! with the version read (a conflict retries).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use arc_swap::ArcSwapOption;
use egate_engine::grants::GrantIndex;
use kube::api::PostParams;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

use super::grants::{DebugGrant, GrantUseRecord, USES_KEPT, usable};

/// What `egate serve` does with debug grants: the cache requests read,
/// the writer of uses, and the webhook's limit on durations.
pub struct GrantService {
    /// Whether grants are read from the cluster (`--grants-from cluster`).
    pub from_cluster: bool,
    /// The grants; stays empty without `--grants-from cluster`.
    pub cache: Arc<GrantCache>,
    /// Set once the cluster is reached.
    pub recorder: std::sync::OnceLock<UseRecorder>,
    /// `--max-grant-duration`.
    pub max_duration: Duration,
}

impl GrantService {
    /// Nothing read yet.
    pub fn new(from_cluster: bool, max_duration: Duration) -> Arc<Self> {
        Arc::new(Self { from_cluster, cache: Arc::default(), recorder: Default::default(), max_duration })
    }

    /// Reads the grants and starts recording uses (with `--grants-from cluster`).
    pub async fn start(&self, client: Client) -> Result<()> {
        let _ = self.recorder.set(UseRecorder::start(client.clone()));
        watch(client, self.cache.clone()).await
    }

    /// Whether requests may be judged: the grants are read, or not wanted.
    pub fn ready(&self) -> bool {
        !self.from_cluster || self.cache.current().is_some()
    }
}

/// The grants requests are judged with; `None` until the first list.
#[derive(Default)]
pub struct GrantCache {
    index: ArcSwapOption<GrantIndex>,
}

impl GrantCache {
    /// The current index, for one request to finish on.
    pub fn current(&self) -> Option<Arc<GrantIndex>> {
        self.index.load_full()
    }
}

/// Starts watching the cluster's DebugGrants; returns once the first list
/// is in the cache.
pub async fn watch(client: Client, cache: Arc<GrantCache>) -> Result<()> {
    let (store, writer) = reflector::store::<DebugGrant>();
    let (changed_tx, mut changed) = tokio::sync::mpsc::channel::<()>(1);
    let api: Api<DebugGrant> = Api::all(client);
    super::policies::spawn_reflector(
        watcher(api, watcher::Config::default()).default_backoff().reflect(writer),
        &changed_tx,
        "DebugGrants",
    );
    store.wait_until_ready().await.context(
        "the DebugGrant watch ended before its first list: are egate's CRDs installed (egate crds | kubectl apply -f -), \
         and may egate's service account list and watch debuggrants?",
    )?;
    let mut warned = HashSet::new();
    rebuild(&store, &cache, &mut warned);
    tokio::spawn(async move {
        while changed.recv().await.is_some() {
            rebuild(&store, &cache, &mut warned);
        }
    });
    Ok(())
}

/// Indexes the usable grants of the store and swaps the index in.
fn rebuild(store: &Store<DebugGrant>, cache: &GrantCache, warned: &mut HashSet<(String, String)>) {
    let objects = store.state();
    let mut grants = Vec::with_capacity(objects.len());
    for object in &objects {
        match usable(object) {
            Ok(grant) => grants.push(grant),
            Err(error) => {
                let key = format!("{}/{}", object.namespace().unwrap_or_default(), object.name_any());
                if warned.insert((key.clone(), object.resource_version().unwrap_or_default())) {
                    tracing::warn!(grant = key, %error, "DebugGrant left out: no request can use it");
                }
            }
        }
    }
    let index = GrantIndex::new(grants);
    tracing::debug!(grants = index.len(), "debug grants indexed");
    cache.index.store(Some(Arc::new(index)));
}

/// A use to record in a grant's status.
#[derive(Debug)]
pub struct PendingUse {
    /// The grant's namespace.
    pub namespace: String,
    /// The grant's name.
    pub grant: String,
    /// What happened.
    pub record: GrantUseRecord,
}

/// Hands uses to the task that writes them; never blocks a review.
#[derive(Clone)]
pub struct UseRecorder {
    uses: tokio::sync::mpsc::UnboundedSender<PendingUse>,
}

impl UseRecorder {
    /// Starts the writing task.
    pub fn start(client: Client) -> Self {
        let (uses, mut pending) = tokio::sync::mpsc::unbounded_channel::<PendingUse>();
        tokio::spawn(async move {
            while let Some(used) = pending.recv().await {
                if let Err(error) = record(&client, &used).await {
                    tracing::warn!(
                        grant = format!("{}/{}", used.namespace, used.grant),
                        %error,
                        "cannot record a use in the DebugGrant's status (the audit annotation has it)"
                    );
                }
            }
        });
        Self { uses }
    }

    /// Queues a use.
    pub fn record(&self, used: PendingUse) {
        let _ = self.uses.send(used);
    }
}

/// Appends one use to a grant's status, once per request uid and container.
async fn record(client: &Client, used: &PendingUse) -> Result<()> {
    let api: Api<DebugGrant> = Api::namespaced(client.clone(), &used.namespace);
    for _attempt in 0..5 {
        let mut grant = api.get_status(&used.grant).await?;
        let status = grant.status.get_or_insert_with(Default::default);
        let same = |r: &GrantUseRecord| r.uid == used.record.uid && r.container == used.record.container;
        if status.uses.iter().any(same) {
            return Ok(());
        }
        status.uses.push(used.record.clone());
        status.use_count += 1;
        let extra = status.uses.len().saturating_sub(USES_KEPT);
        status.uses.drain(..extra);
        match api.replace_status(&used.grant, &PostParams::default(), &grant).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
    anyhow::bail!("the grant kept changing while its status was written (5 conflicts)")
}
