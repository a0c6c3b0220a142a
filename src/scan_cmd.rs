//! `egate scan`: the background scan, once, from the command line. It
//! judges existing pods (from the current kubeconfig, or offline from a
//! `kubectl get pods -A -o json` file) with the policies that have
//! `background: true`, and prints what it found as a table or as
//! PolicyReports. Exit 1 when any result fails, so CI can gate on it.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use egate_engine::{PolicySet, Sandbox, SandboxConfig};
use serde_json::Value;

use crate::cluster::report::{self, Outcome, ReportResult};
use crate::cluster::scan::scan;

/// Arguments of `egate scan`.
#[derive(Args)]
pub struct ScanArgs {
    /// Policy manifests; repeat for more. Default: the built-in default set.
    #[arg(long = "policy", short = 'p', value_name = "FILE")]
    policies: Vec<PathBuf>,
    /// Pods to judge, as `kubectl get pods -A -o json` writes them (a List,
    /// or one Pod; JSON or YAML). Default: every pod of the cluster of the
    /// current kubeconfig.
    #[arg(long, value_name = "FILE")]
    pods: Option<PathBuf>,
    /// `text`: a table; `json` or `yaml`: PolicyReports, one per namespace.
    #[arg(long, short = 'o', value_enum, default_value_t = ScanOutput::Text)]
    output: ScanOutput,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ScanOutput {
    Text,
    Json,
    Yaml,
}

/// Runs `egate scan`.
pub fn run(args: &ScanArgs) -> Result<ExitCode> {
    let sandbox = Sandbox::new(SandboxConfig::default())?;
    let set = match args.policies.as_slice() {
        [] => crate::serve::load_default(&sandbox)?,
        paths => PolicySet::load(&sandbox, paths)?,
    };
    let pods = match &args.pods {
        Some(path) => read_pods(path)?,
        None => list_pods()?,
    };
    let results = scan(&set, &pods);
    let failed = results.iter().any(|r| r.result == Outcome::Fail);
    match args.output {
        ScanOutput::Text => print!("{}", table(&results, pods.len())),
        ScanOutput::Json => println!("{}", serde_json::to_string_pretty(&report_list(results))?),
        ScanOutput::Yaml => print!("{}", egate_engine::yaml::to_string(&report_list(results))?),
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn report_list(results: Vec<ReportResult>) -> Value {
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": report::reports(results)})
}

/// The pods of a file: a List's items, or the one Pod it holds.
fn read_pods(path: &PathBuf) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    // JSON as JSON: the YAML reader caps the nodes of a document, and a
    // large cluster's pod list is far bigger than any manifest.
    let value: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))?
    } else {
        egate_engine::yaml::from_str(&text).with_context(|| {
            format!("{} is not JSON or YAML: write what `kubectl get pods -A -o json` prints", path.display())
        })?
    };
    let pods = match value["kind"].as_str() {
        Some("Pod") => vec![value],
        Some("List" | "PodList") => value["items"].as_array().cloned().unwrap_or_default(),
        other => anyhow::bail!(
            "{} holds a {}, not pods: write what `kubectl get pods -A -o json` prints",
            path.display(),
            other.unwrap_or("document without a kind")
        ),
    };
    if let Some(bad) = pods.iter().position(|pod| pod["kind"] != "Pod" && !pod["kind"].is_null()) {
        anyhow::bail!("{}: item {bad} is a {}, not a Pod", path.display(), pods[bad]["kind"]);
    }
    Ok(pods)
}

/// Every pod of the current kubeconfig's cluster.
fn list_pods() -> Result<Vec<Value>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let client = kube::Client::try_default()
            .await
            .context("cannot reach the Kubernetes API server: set KUBECONFIG, or scan a file with --pods")?;
        let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::all(client);
        let list = pods.list(&Default::default()).await.context("cannot list pods")?;
        list.items.iter().map(|pod| serde_json::to_value(pod).map_err(Into::into)).collect()
    })
}

fn table(results: &[ReportResult], pods: usize) -> String {
    let mut out = String::new();
    let rows: Vec<[String; 5]> = results
        .iter()
        .filter(|r| r.result != Outcome::Pass)
        .map(|r| {
            let pod = r.resources.first().map(|p| format!("{}/{}", p.namespace, p.name)).unwrap_or_default();
            let first_line = r.message.lines().next().unwrap_or_default().to_string();
            [pod, r.policy.clone(), r.rule.clone(), format!("{:?}", r.result).to_lowercase(), first_line]
        })
        .collect();
    let headers = ["POD", "POLICY", "RULE", "RESULT", "MESSAGE"];
    let widths: Vec<usize> =
        (0..4).map(|i| rows.iter().map(|r| r[i].len()).chain([headers[i].len()]).max().unwrap_or(0)).collect();
    let line = |cells: [&str; 5]| {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate().take(4) {
            let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
        }
        line.push_str(cells[4]);
        line.trim_end().to_string()
    };
    if !rows.is_empty() {
        let _ = writeln!(out, "{}", line(headers));
        for row in &rows {
            let _ = writeln!(out, "{}", line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
        }
    }
    let count = |o: Outcome| results.iter().filter(|r| r.result == o).count();
    let _ = writeln!(
        out,
        "{pods} pods, {} results: {} pass, {} fail, {} warn, {} error",
        results.len(),
        count(Outcome::Pass),
        count(Outcome::Fail),
        count(Outcome::Warn),
        count(Outcome::Error)
    );
    out
}
