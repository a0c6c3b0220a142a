//! The background scan inside `egate serve --policies-from cluster`: one
//! replica (the holder of the `egate-scan` Lease) judges the pods of the
//! cluster with the policies that have `background: true`, and writes what
//! it finds as one PolicyReport per namespace.
//!
//! Pods come from a kube-runtime reflector, so a scan asks the API server
//! for nothing. A scan runs when this replica becomes the leader, every
//! `--scan-interval`, and soon after pods or policies change (at the next
//! lease renewal). Each report is written whole with server-side apply:
//! updated in place, never duplicated, and without the results of pods
//! that are gone. Reports of namespaces left with no pods are deleted.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

use super::lease::{Election, identity};
use super::report::{self, PolicyReport, REPORT_NAME};
use super::scan::scan;
use crate::serve::Policies;

/// The Lease the replicas compete for.
const LEASE_NAME: &str = "egate-scan";
/// The label egate's reports carry, by which stale ones are found.
const MANAGED_BY: &str = "app.kubernetes.io/managed-by=egate";

/// How the scan runs.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// A full scan at least this often.
    pub interval: Duration,
    /// Where the Lease lives.
    pub lease_namespace: String,
    /// How long a leader's lease lasts without renewal.
    pub lease_duration: Duration,
}

/// Starts the pods reflector and the leader's scan loop. `rescan` is set by
/// whoever changes what a scan would find (a new policy set).
pub fn start(client: Client, policies: Arc<Policies>, options: ScanOptions, rescan: Arc<AtomicBool>) {
    let (pods, writer) = reflector::store::<Pod>();
    let stream = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()).default_backoff().reflect(writer);
    let changed = rescan.clone();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => changed.store(true, Ordering::Relaxed),
                Err(error) => tracing::warn!(%error, "watching pods for the background scan failed; retrying"),
            }
        }
    });
    tokio::spawn(lead_and_scan(client, policies, options, pods, rescan));
}

async fn lead_and_scan(
    client: Client,
    policies: Arc<Policies>,
    options: ScanOptions,
    pods: Store<Pod>,
    rescan: Arc<AtomicBool>,
) {
    let me = identity();
    let election =
        Election::new(client.clone(), &options.lease_namespace, LEASE_NAME, me.clone(), options.lease_duration);
    if pods.wait_until_ready().await.is_err() {
        return;
    }
    let (mut leading, mut last_scan) = (false, None::<Instant>);
    loop {
        let now_leading = match election.try_lead().await {
            Ok(leading) => leading,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "cannot take or renew the background-scan lease");
                false
            }
        };
        if now_leading != leading {
            tracing::info!(identity = %me, leading = now_leading, "background-scan leadership changed");
            leading = now_leading;
            last_scan = None;
        }
        let due = last_scan.is_none_or(|at| at.elapsed() >= options.interval) || rescan.swap(false, Ordering::Relaxed);
        if leading
            && due
            && let Some(set) = policies.current()
        {
            match scan_and_report(&client, &set, &pods).await {
                Ok(written) => tracing::info!(reports = written, "background scan done"),
                Err(error) => tracing::warn!(error = format!("{error:#}"), "background scan failed"),
            }
            last_scan = Some(Instant::now());
        }
        tokio::time::sleep(election.renew_every()).await;
    }
}

/// Scans every pod and writes the reports; how many it wrote.
async fn scan_and_report(client: &Client, set: &Arc<egate_engine::PolicySet>, pods: &Store<Pod>) -> Result<usize> {
    let pods: Vec<serde_json::Value> =
        pods.state().iter().filter_map(|pod| serde_json::to_value(&**pod).ok()).collect();
    let set = set.clone();
    let results = tokio::task::spawn_blocking(move || scan(&set, &pods)).await.context("the scan thread panicked")?;
    let reports = report::reports(results);
    let api_resource = report_resource("PolicyReport", "policyreports");
    let params = PatchParams::apply("egate").force();
    let mut namespaces = BTreeSet::new();
    for report in &reports {
        let namespace = report.metadata["namespace"].as_str().unwrap_or_default().to_string();
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &api_resource);
        api.patch(REPORT_NAME, &params, &Patch::Apply(as_object(report)))
            .await
            .with_context(|| format!("cannot write the PolicyReport of namespace {namespace}"))?;
        namespaces.insert(namespace);
    }
    delete_stale(client, &api_resource, &namespaces).await?;
    Ok(reports.len())
}

/// Deletes egate's reports in namespaces that have none now.
async fn delete_stale(client: &Client, api_resource: &ApiResource, current: &BTreeSet<String>) -> Result<()> {
    let all: Api<DynamicObject> = Api::all_with(client.clone(), api_resource);
    let existing = all.list(&ListParams::default().labels(MANAGED_BY)).await.context("cannot list PolicyReports")?;
    for stale in
        existing.items.iter().filter(|r| !current.contains(r.metadata.namespace.as_deref().unwrap_or_default()))
    {
        let namespace = stale.metadata.namespace.clone().unwrap_or_default();
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, api_resource);
        api.delete(REPORT_NAME, &DeleteParams::default()).await.ok();
    }
    Ok(())
}

fn report_resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "wgpolicyk8s.io".into(),
        version: "v1alpha2".into(),
        api_version: "wgpolicyk8s.io/v1alpha2".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn as_object(report: &PolicyReport) -> serde_json::Value {
    serde_json::to_value(report).expect("a report serialises")
}
