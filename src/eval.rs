//! `egate eval`: judge AdmissionReview files with a policy set, the way the
//! webhook would, and print the AdmissionReview response.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use crate::output::Output;
use egate_engine::grants::GrantIndex;
use egate_engine::{AdmissionResponse, Mode, PolicySet, Sandbox, SandboxConfig};

/// Arguments of `egate eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// A policy manifest (YAML or JSON; several policies per file allowed). Repeat for more.
    #[arg(long = "policy", short = 'p', required = true, value_name = "FILE")]
    policies: Vec<PathBuf>,
    /// An AdmissionReview (JSON or YAML), as the API server sends it. Repeat for more.
    #[arg(long = "request", short = 'r', required = true, value_name = "FILE")]
    requests: Vec<PathBuf>,
    /// `json`: the AdmissionReview response; `text`: one readable decision per request.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Json)]
    output: Output,
    /// Which policies run: `mutate` (those with `mutating: true`, as a
    /// MutatingWebhookConfiguration would), `validate` (the others), or `all`.
    #[arg(long, value_enum, default_value_t = EvalMode::All)]
    mode: EvalMode,
    /// DebugGrant objects (YAML or JSON, several documents or a `kubectl get
    /// debuggrants -o yaml` List): the grants builtin:grants sees. Without
    /// it, there are none.
    #[arg(long, value_name = "FILE")]
    grants: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EvalMode {
    All,
    Mutate,
    Validate,
}

impl From<EvalMode> for Mode {
    fn from(mode: EvalMode) -> Self {
        match mode {
            EvalMode::All => Mode::All,
            EvalMode::Mutate => Mode::Mutate,
            EvalMode::Validate => Mode::Validate,
        }
    }
}

/// Loads the policies, judges each request, prints each response.
/// Exit 0 whenever decisions were made, allowed or not.
pub fn run(args: &EvalArgs) -> Result<ExitCode> {
    let sandbox = Sandbox::new(SandboxConfig::default())?;
    let policies = PolicySet::load(&sandbox, &args.policies)?;
    let grants = read_grants(args.grants.as_deref())?;
    let inputs = egate_engine::Inputs::with_grants(&grants);
    for path in &args.requests {
        let review = read_review(path)?;
        let response = policies
            .review_traced_with(&review, args.mode.into(), &inputs)
            .map(|traced| traced.response)
            .with_context(|| format!("request {}", path.display()))?;
        match args.output {
            Output::Json => println!("{}", serde_json::to_string_pretty(&response.into_review())?),
            Output::Text => print!("{}", describe(path, &response)),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads an AdmissionReview file. JSON is passed on byte for byte; YAML is
/// converted to JSON first.
pub fn read_review(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read request file {}", path.display()))?;
    if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok() {
        return Ok(bytes);
    }
    let value: serde_json::Value = egate_engine::yaml::from_slice(&bytes)
        .with_context(|| format!("request file {} is neither JSON nor YAML of an AdmissionReview", path.display()))?;
    Ok(serde_json::to_vec(&value)?)
}

/// The grants of `--grants FILE`; none without it.
fn read_grants(path: Option<&Path>) -> Result<GrantIndex> {
    let Some(path) = path else { return Ok(GrantIndex::default()) };
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read grants file {}", path.display()))?;
    let objects = egate_engine::yaml::documents::<serde_json::Value>(&text)
        .map_err(|(index, e)| anyhow::anyhow!("grants file {}: document {}: {e}", path.display(), index + 1))?;
    crate::cluster::grants::index_of(objects, "default")
        .map_err(|e| anyhow::anyhow!("grants file {}: {e}", path.display()))
}

/// One decision, for people: verdict, then each reason, warning and annotation.
fn describe(path: &Path, response: &AdmissionResponse) -> String {
    let mut out = match &response.status {
        Some(status) if !response.allowed => {
            let mut out = format!("{}: DENIED ({})\n", path.display(), status.code);
            for reason in status.message.lines() {
                out.push_str(&format!("  deny: {reason}\n"));
            }
            out
        }
        _ => format!("{}: ALLOWED\n", path.display()),
    };
    for warning in &response.warnings {
        out.push_str(&format!("  warning: {warning}\n"));
    }
    for (key, value) in &response.audit_annotations {
        out.push_str(&format!("  audit: {key}: {value}\n"));
    }
    if response.patch.is_some() {
        out.push_str("  patch: JSONPatch attached\n");
    }
    out
}
