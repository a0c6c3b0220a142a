//! `egate test [PATH ...]`: run policy test suites, the `*.egate-test.yaml`
//! files found recursively under each PATH (default `.`).
//!
//! ```yaml
//! apiVersion: egate.dev/v1
//! kind: Test
//! name: privileged debug containers
//! policies: [../policy.yaml]              # relative to this file
//! cases:
//!   - name: a privileged debug container is denied
//!     request: requests/privileged.json   # an AdmissionReview, JSON or YAML
//!     expect: {allowed: false, messageContains: privileged}
//!   - name: a restricted one is allowed
//!     pod: pods/web.yaml                  # instead of request: the pod kubectl debug targets
//!     debug: {image: "busybox:1.36", target: app, profile: restricted}
//!     userInfo: {username: alice, groups: [developers]}
//!     expect: {allowed: true, warnings: [], auditAnnotations: {}, patched: pods/web-debugged.yaml}
//! ```
//!
//! Everything a suite names is read and checked when the suite loads, so a
//! mistake is reported with the suite's file, line and column, before any
//! case runs. Exit 0 when every case passes, 1 when one fails, 2 when a
//! suite is invalid (or none is found).
//!
//! The steps, one module each:
//! - [`discover`]: which files under the PATHs are suites;
//! - [`suite`] (and [`files`], the files a suite names): the suite format, read and checked;
//! - [`run`]: each case judged by the engine and compared with its expectations;
//! - [`report`]: the results as text, JSON or JUnit.

mod discover;
mod files;
mod report;
mod run;
mod suite;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};
use egate_engine::{Sandbox, SandboxConfig};

use run::SuiteReport;
use suite::SuiteError;

/// Arguments of `egate test`.
#[derive(Args)]
pub struct TestArgs {
    /// Suite files, or directories searched recursively for `*.egate-test.yaml`.
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,
    /// `text`: a table per suite; `json` and `junit` for CI.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// How the results are printed.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
    Junit,
}

/// Runs `egate test`.
pub fn run(args: &TestArgs) -> Result<ExitCode> {
    let files = discover::find_suites(&args.paths)?;
    let sandbox = Sandbox::new(SandboxConfig::default())?;
    let mut reports = Vec::new();
    let mut invalid = Vec::new();
    for file in &files {
        match suite::load(&sandbox, file) {
            Ok(suite) => reports.push(run::run_suite(&suite)),
            Err(error) => {
                eprintln!("egate: error: {error}");
                invalid.push(error);
            }
        }
    }
    report::print(args.output, &reports, &invalid)?;
    Ok(exit_code(&reports, &invalid))
}

/// 2 when a suite is invalid, else 1 when a case failed, else 0.
fn exit_code(reports: &[SuiteReport], invalid: &[SuiteError]) -> ExitCode {
    if !invalid.is_empty() {
        ExitCode::from(2)
    } else if reports.iter().any(|report| report.failed() > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
