//! `egate`: the command line and (later) the webhook over `egate-engine`.
//! This file only parses arguments and hands each command to its module;
//! the engine decides.

mod bench;
mod eval;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Admission policy engine for Kubernetes ephemeral containers: sandboxed
/// WebAssembly and CEL policies.
#[derive(Parser)]
#[command(name = "egate", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Judge AdmissionReview files with a set of policies and print each response.
    Eval(eval::EvalArgs),
    /// Time whole evaluations of a request: latency percentiles, throughput, start-up.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Eval(args) => eval::run(&args),
        Command::Bench(args) => bench::run(&args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("egate: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
