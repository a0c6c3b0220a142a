//! `egate`: the command line and the admission webhook (`egate serve`,
//! in `serve/`) over `egate-engine`. This file only parses arguments and
//! hands each command to its module; the engine decides.

mod bench;
mod build_cmd;
mod cluster;
mod debug_request;
mod eval;
mod grant_cmd;
mod inspect;
mod new;
mod oci_cmd;
mod output;
mod scaffold;
mod scan_cmd;
mod serve;
mod test_cmd;
mod who_can_debug;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Admission policy engine for Kubernetes ephemeral containers: sandboxed
/// WebAssembly and CEL policies.
#[derive(Parser)]
#[command(name = "egate", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    registry: oci_cmd::RegistryArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Judge AdmissionReview files with a set of policies and print each response.
    Eval(eval::EvalArgs),
    /// Time whole evaluations of a request: latency percentiles, throughput, start-up.
    Bench(bench::BenchArgs),
    /// Run policy test suites (*.egate-test.yaml) found under each PATH.
    Test(test_cmd::TestArgs),
    /// Scaffold a guest policy crate in ./NAME that builds and passes its tests.
    New(new::NewArgs),
    /// Compile a guest policy crate to wasm32-wasip1; print the module's path, size and sha256.
    Build(build_cmd::BuildArgs),
    /// Generate inputs for tests: `scaffold request` prints what kubectl debug sends.
    Scaffold(scaffold::ScaffoldArgs),
    /// Show a module's ABI version, exports, imports, size and sha256 (and an oci:// module's digest).
    Inspect(inspect::InspectArgs),
    /// Publish a .wasm module to an OCI registry: egate push MODULE.wasm oci://REGISTRY/REPO:TAG; prints its digest.
    Push(oci_cmd::PushArgs),
    /// Fetch a module from an OCI registry into a file; prints its digest.
    Pull(oci_cmd::PullArgs),
    /// Sign a module in an OCI registry with a P-256 key, as cosign does: egate sign oci://... --key cosign.key; prints its digest.
    Sign(oci_cmd::SignArgs),
    /// Run the admission webhook: AdmissionReview over TLS on /validate and /mutate.
    Serve(serve::ServeArgs),
    /// Judge existing pods with the background policies; print findings or PolicyReports.
    Scan(scan_cmd::ScanArgs),
    /// Who RBAC lets debug (ephemeral containers, exec, attach, pods, nodes), per namespace, and what --policies then allow.
    WhoCanDebug(who_can_debug::WhoCanDebugArgs),
    /// Print egate's CustomResourceDefinitions (ClusterPolicy, Policy) as YAML, for `kubectl apply -f -`.
    Crds,
    /// Debug grants: request, approve, list and revoke who may `kubectl debug` which pods (docs/grant-commands.md).
    Grant(grant_cmd::GrantArgs),
}

/// How egate was invoked: `kubectl egate` when kubectl runs it as its
/// plugin (`kubectl-egate` on PATH), else `egate`.
fn program() -> &'static str {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let stem = std::path::Path::new(&argv0).file_stem().unwrap_or_default().to_owned();
    if stem == "kubectl-egate" { "kubectl egate" } else { "egate" }
}

fn main() -> ExitCode {
    let program = program();
    // Usage lines and errors say `kubectl egate ...` when run as the plugin.
    let mut command = Cli::command().bin_name(program).display_name(program);
    let cli = Cli::from_arg_matches(&command.get_matches_mut()).unwrap_or_else(|e| e.format(&mut command).exit());
    oci_cmd::install(&cli.registry);
    let outcome = match cli.command {
        Command::Eval(args) => eval::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Test(args) => test_cmd::run(&args),
        Command::New(args) => new::run(&args),
        Command::Build(args) => build_cmd::run(&args),
        Command::Scaffold(args) => scaffold::run(&args),
        Command::Inspect(args) => inspect::run(&args, &cli.registry),
        Command::Push(args) => oci_cmd::push(&args, &cli.registry),
        Command::Pull(args) => oci_cmd::pull(&args, &cli.registry),
        Command::Sign(args) => oci_cmd::sign(&args, &cli.registry),
        Command::Serve(args) => serve::run(&args),
        Command::Scan(args) => scan_cmd::run(&args),
        Command::WhoCanDebug(args) => who_can_debug::run(&args),
        Command::Crds => cluster::crd::print_definitions(),
        Command::Grant(args) => grant_cmd::run(&args, program),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{program}: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
