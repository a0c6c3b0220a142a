//! PolicyReports (`wgpolicyk8s.io/v1alpha2`): what a background scan found,
//! in the shape Policy Reporter and `kubectl get policyreports` read. One
//! `PolicyReport` per namespace, named `egate`, and one `ClusterPolicyReport`
//! for cluster-scoped objects. Each scan writes a whole report, so results
//! of pods that are gone go away with the next scan.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The name of egate's report in each namespace.
pub const REPORT_NAME: &str = "egate";
/// The `source` of every result.
pub const SOURCE: &str = "egate";

/// A result's outcome, as the report format names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The resource satisfies the policy.
    Pass,
    /// It violates an Enforce policy.
    Fail,
    /// It violates a Warn or Audit policy.
    Warn,
    /// The policy could not decide.
    Error,
}

/// The object a result is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    /// `v1`.
    pub api_version: String,
    /// `Pod`.
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its uid, when known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

/// One policy's verdict on one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportResult {
    /// `egate`.
    pub source: String,
    /// The policy's name.
    pub policy: String,
    /// What was judged: `pod` (the pod as created) or
    /// `ephemeral-containers` (the debug containers it holds).
    pub rule: String,
    /// The outcome.
    pub result: Outcome,
    /// `high` for Enforce policies, `medium` for the others.
    pub severity: String,
    /// The policy's message (empty on a pass).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Whether the result comes from a background scan.
    pub scored: bool,
    /// The resources it is about.
    pub resources: Vec<ResourceRef>,
    /// When it was found.
    pub timestamp: Timestamp,
}

/// Seconds and nanos since the Unix epoch, as the report format writes time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamp {
    /// Whole seconds.
    pub seconds: i64,
    /// Nanoseconds.
    pub nanos: i32,
}

impl Timestamp {
    /// Now.
    pub fn now() -> Self {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Self { seconds: since.as_secs() as i64, nanos: since.subsec_nanos() as i32 }
    }
}

/// The counts of a report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Results that pass.
    pub pass: u32,
    /// Results that fail.
    pub fail: u32,
    /// Results that warn.
    pub warn: u32,
    /// Results in error.
    pub error: u32,
    /// Results skipped (egate writes none).
    pub skip: u32,
}

/// A PolicyReport (namespaced) or ClusterPolicyReport, as an object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyReport {
    /// `wgpolicyk8s.io/v1alpha2`.
    pub api_version: String,
    /// `PolicyReport` or `ClusterPolicyReport`.
    pub kind: String,
    /// `name: egate`, the namespace, and egate's label.
    pub metadata: serde_json::Value,
    /// Counts by outcome.
    pub summary: Summary,
    /// Every result, sorted by resource then policy.
    pub results: Vec<ReportResult>,
}

/// Groups results into one report per namespace (the cluster report for
/// results without one), each sorted, with its summary.
pub fn reports(results: Vec<ReportResult>) -> Vec<PolicyReport> {
    let mut by_namespace: BTreeMap<String, Vec<ReportResult>> = BTreeMap::new();
    for result in results {
        let namespace = result.resources.first().map(|r| r.namespace.clone()).unwrap_or_default();
        by_namespace.entry(namespace).or_default().push(result);
    }
    by_namespace.into_iter().map(|(namespace, results)| report(&namespace, results)).collect()
}

/// The report of one namespace (`""`: the cluster report).
pub fn report(namespace: &str, mut results: Vec<ReportResult>) -> PolicyReport {
    results.sort_by(|a, b| (&a.resources, &a.policy, &a.rule).cmp(&(&b.resources, &b.policy, &b.rule)));
    let mut summary = Summary::default();
    for result in &results {
        *match result.result {
            Outcome::Pass => &mut summary.pass,
            Outcome::Fail => &mut summary.fail,
            Outcome::Warn => &mut summary.warn,
            Outcome::Error => &mut summary.error,
        } += 1;
    }
    let labels = serde_json::json!({"app.kubernetes.io/managed-by": "egate"});
    let (kind, metadata) = if namespace.is_empty() {
        ("ClusterPolicyReport", serde_json::json!({"name": REPORT_NAME, "labels": labels}))
    } else {
        ("PolicyReport", serde_json::json!({"name": REPORT_NAME, "namespace": namespace, "labels": labels}))
    };
    PolicyReport { api_version: "wgpolicyk8s.io/v1alpha2".into(), kind: kind.into(), metadata, summary, results }
}

/// The definitions of both report kinds, for clusters that have none yet
/// (Kyverno and Policy Reporter ship the same group and kinds: with them
/// installed, leave these out). The schema names the fields egate writes
/// and keeps whatever else other tools write.
pub fn definitions() -> [k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition; 2]
{
    [
        definition("PolicyReport", "policyreports", "polr", "Namespaced"),
        definition("ClusterPolicyReport", "clusterpolicyreports", "cpolr", "Cluster"),
    ]
}

fn definition(
    kind: &str,
    plural: &str,
    short: &str,
    scope: &str,
) -> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    let open = serde_json::json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    let count = serde_json::json!({"type": "integer"});
    let schema = serde_json::json!({
        "type": "object",
        "description": format!("{kind}: results of policies on resources (wgpolicyk8s.io/v1alpha2, as Policy Reporter reads it)."),
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "scope": open,
            "scopeSelector": open,
            "summary": {"type": "object", "properties": {
                "pass": count, "fail": count, "warn": count, "error": count, "skip": count}},
            "results": {"type": "array", "items": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "required": ["policy"],
                "properties": {
                    "source": {"type": "string"}, "policy": {"type": "string"}, "rule": {"type": "string"},
                    "result": {"type": "string", "enum": ["pass", "fail", "warn", "error", "skip"]},
                    "severity": {"type": "string"}, "message": {"type": "string"}, "scored": {"type": "boolean"},
                    "category": {"type": "string"},
                    "resources": {"type": "array", "items": open},
                    "timestamp": {"type": "object", "properties": {"seconds": count, "nanos": count}}
                }
            }}
        }
    });
    let columns = serde_json::json!([
        {"name": "Pass", "type": "integer", "jsonPath": ".summary.pass"},
        {"name": "Fail", "type": "integer", "jsonPath": ".summary.fail"},
        {"name": "Warn", "type": "integer", "jsonPath": ".summary.warn"},
        {"name": "Error", "type": "integer", "jsonPath": ".summary.error"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    ]);
    let crd = serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.wgpolicyk8s.io")},
        "spec": {
            "group": "wgpolicyk8s.io",
            "names": {"kind": kind, "listKind": format!("{kind}List"), "plural": plural,
                      "singular": kind.to_lowercase(), "shortNames": [short]},
            "scope": scope,
            "versions": [{"name": "v1alpha2", "served": true, "storage": true,
                          "additionalPrinterColumns": columns,
                          "schema": {"openAPIV3Schema": schema}}]
        }
    });
    serde_json::from_value(crd).expect("the report definition is a CustomResourceDefinition")
}
