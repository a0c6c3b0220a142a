//! `egate scaffold request`: print the AdmissionReview that `kubectl debug`
//! would cause, for a pod file and kubectl's flags, to save as a test
//! request or to feed `egate eval`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};

use crate::debug_request::{DebugContainer, Profile, Requester, admission_review, read_pod};

/// Arguments of `egate scaffold`.
#[derive(Args)]
pub struct ScaffoldArgs {
    #[command(subcommand)]
    what: Scaffold,
}

#[derive(Subcommand)]
enum Scaffold {
    /// Print the AdmissionReview `kubectl debug -it POD --image=IMAGE` causes
    /// (an UPDATE of pods/ephemeralcontainers).
    Request(RequestArgs),
}

/// Arguments of `egate scaffold request`: kubectl debug's flags.
#[derive(Args)]
struct RequestArgs {
    /// The running pod, as `kubectl get pod -o yaml` prints it (YAML or JSON).
    #[arg(long, value_name = "POD.yaml")]
    pod: PathBuf,
    /// The debug container's image (`--image`).
    #[arg(long)]
    image: String,
    /// The debug container's name; `debugger-` and 5 random characters when absent, as kubectl does.
    #[arg(long)]
    name: Option<String>,
    /// The container whose process namespace it joins (`--target`).
    #[arg(long, value_name = "CONTAINER")]
    target: Option<String>,
    /// The user running kubectl debug.
    #[arg(long, value_name = "U", default_value = "kubernetes-admin")]
    user: String,
    /// A group of that user. Repeat for more; default kubeadm:cluster-admins and system:authenticated.
    #[arg(long = "group", value_name = "G")]
    groups: Vec<String>,
    /// Set securityContext.privileged: true on top of the profile.
    #[arg(long)]
    privileged: bool,
    /// kubectl debug's --custom: a partial container spec (YAML or JSON) merged into the container.
    #[arg(long, value_name = "FILE")]
    custom: Option<PathBuf>,
    /// kubectl debug's --profile: the securityContext of the debug container.
    #[arg(long, value_enum, default_value_t = Profile::General)]
    profile: Profile,
    /// `json` or `yaml`.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Json)]
    output: Output,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Json,
    Yaml,
}

/// Runs `egate scaffold`.
pub fn run(args: &ScaffoldArgs) -> Result<ExitCode> {
    match &args.what {
        Scaffold::Request(args) => request(args),
    }
}

fn request(args: &RequestArgs) -> Result<ExitCode> {
    let pod = read_pod(&args.pod)?;
    let debug = DebugContainer {
        name: args.name.clone(),
        image: args.image.clone(),
        target: args.target.clone(),
        profile: Some(args.profile),
        privileged: args.privileged,
        security_context: None,
        custom: match &args.custom {
            Some(path) => Some(read_custom(path)?),
            None => None,
        },
    };
    let user = if args.groups.is_empty() {
        Requester { username: args.user.clone(), ..Requester::default() }
    } else {
        Requester { username: args.user.clone(), groups: args.groups.clone() }
    };
    let review = admission_review(&pod, &debug, &user)?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&review)?),
        Output::Yaml => print!("{}", egate_engine::yaml::to_string(&review)?),
    }
    Ok(ExitCode::SUCCESS)
}

fn read_custom(path: &std::path::Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read custom container spec {}", path.display()))?;
    egate_engine::yaml::from_str(&text)
        .with_context(|| format!("custom container spec {} is neither JSON nor YAML", path.display()))
}
