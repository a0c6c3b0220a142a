//! `egate grant request|approve|list|revoke` (also `kubectl egate grant
//! ...`): debug grants from the command line, with the current kubeconfig
//! (docs/grant-commands.md).
//!
//! `request` only prints the `DebugGrant` a user asks for (nothing is
//! stored: a stored proposal would need a kind of its own); an approver
//! creates it with `approve`, as themselves, and egate's webhook records
//! them as its approver. `list` shows the live grants and how long they
//! have left; `revoke` deletes one. Refusals of the API server are said as
//! the person needs them ([`api::explain`]), and exit 1; usage and other
//! errors exit 2.

mod api;
mod list;
mod proposal;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use egate_abi::inputs::GrantSubjects;
use egate_engine::grants::{APPROVED_BY, format_duration, parse_duration};
use jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, ResourceExt};

use crate::cluster::grants::DebugGrant;
use api::{Action, ClusterError, KubeArgs};
use proposal::ProposalArgs;

/// Arguments of `egate grant`.
#[derive(Args)]
pub struct GrantArgs {
    #[command(subcommand)]
    command: GrantCommand,
    #[command(flatten)]
    kube: KubeArgs,
    /// The namespace. Default: the kubeconfig context's namespace, else `default`.
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE", help_heading = "Cluster")]
    namespace: Option<String>,
}

#[derive(Subcommand)]
enum GrantCommand {
    /// Print the DebugGrant to ask for, for an approver to create: nothing is sent to the cluster.
    Request(RequestArgs),
    /// Create a DebugGrant as its approver (you): from the file `request` printed, or from the same flags.
    Approve(ApproveArgs),
    /// Show the live grants: who may debug which pods, with what, for how long more.
    List(ListArgs),
    /// Delete a DebugGrant: nobody can add debug containers under it any more.
    Revoke(RevokeArgs),
}

/// Arguments of `egate grant request`.
#[derive(Args)]
struct RequestArgs {
    #[command(flatten)]
    grant: ProposalArgs,
    /// How to print the DebugGrant.
    #[arg(long, short = 'o', value_enum, default_value_t = Manifest::Yaml)]
    output: Manifest,
    /// Write the DebugGrant to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Manifest {
    Yaml,
    Json,
}

/// Arguments of `egate grant approve`.
#[derive(Args)]
struct ApproveArgs {
    /// The DebugGrant to create, as `egate grant request` printed it (`-` reads stdin).
    #[arg(short = 'f', long, visible_alias = "filename", value_name = "FILE", conflicts_with = "ProposalArgs")]
    file: Option<PathBuf>,
    #[command(flatten)]
    grant: ProposalArgs,
}

/// Arguments of `egate grant list`.
#[derive(Args)]
struct ListArgs {
    /// Grants of every namespace.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    all_namespaces: bool,
    /// Show expired and unapproved grants too, with their state.
    #[arg(long)]
    all: bool,
    /// `table` for people; `json` or `yaml`: one row object per grant (docs/grant-commands.md).
    #[arg(long, short = 'o', value_enum, default_value_t = ListOutput::Table)]
    output: ListOutput,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ListOutput {
    Table,
    Json,
    Yaml,
}

/// Arguments of `egate grant revoke`.
#[derive(Args)]
struct RevokeArgs {
    /// The DebugGrant's name (`egate grant list` shows them).
    #[arg(value_name = "NAME")]
    name: String,
}

/// Runs `egate grant`; `program` is how egate was invoked (`egate` or
/// `kubectl egate`), for the commands it tells people to run.
pub fn run(args: &GrantArgs, program: &str) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let outcome = runtime.block_on(async {
        match &args.command {
            GrantCommand::Request(request_args) => request(args, request_args, program).await,
            GrantCommand::Approve(approve_args) => approve(args, approve_args, program).await,
            GrantCommand::List(list_args) => list(args, list_args, program).await,
            GrantCommand::Revoke(revoke_args) => revoke(args, revoke_args, program).await,
        }
    });
    match outcome {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => match error.downcast_ref::<ClusterError>() {
            Some(refused) if refused.exit_code() == 1 => {
                eprintln!("{program}: error: {error:#}");
                Ok(ExitCode::from(1))
            }
            _ => Err(error),
        },
    }
}

/// `request`: the proposal, on stdout (or in `--file`), and on stderr how
/// an approver creates it.
async fn request(args: &GrantArgs, request: &RequestArgs, program: &str) -> Result<()> {
    let namespace = match &args.namespace {
        Some(namespace) => namespace.clone(),
        // Nothing is sent: a kubeconfig that cannot be read is no error here.
        None => api::config(&args.kube).await.map_or_else(|_| "default".to_string(), |c| c.default_namespace),
    };
    let object = proposal::build(&request.grant, &namespace)?;
    let text = match request.output {
        Manifest::Yaml => egate_engine::yaml::to_string(&object)?,
        Manifest::Json => format!("{}\n", serde_json::to_string_pretty(&object)?),
    };
    let file = match &request.file {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote the DebugGrant to {}", path.display());
            path.display().to_string()
        }
        None => {
            print!("{text}");
            "FILE".to_string()
        }
    };
    let saved = if request.file.is_some() { "" } else { "   (FILE: this output, saved; - reads stdin)" };
    eprintln!(
        "# To approve it, someone with the egate-grant-approver role who is not one of its subjects runs:\n\
         #   {program} grant approve -f {file}{saved}\n\
         # or\n\
         #   {}",
        proposal::approve_command(program, &object)
    );
    Ok(())
}

/// `approve`: creates the grant as the kubeconfig's user.
async fn approve(args: &GrantArgs, approve: &ApproveArgs, program: &str) -> Result<()> {
    let cluster = api::connect(&args.kube).await?;
    let object = match &approve.file {
        Some(path) => {
            let (object, cleaned) = proposal::read(path, args.namespace.as_deref(), &cluster.namespace)?;
            if let Some(approver) = cleaned.approved_by {
                eprintln!(
                    "note: {} named {approver:?} in the {APPROVED_BY} annotation: left out, since egate's webhook \
                     records whoever creates the grant (you) as its approver",
                    path.display()
                );
            }
            object
        }
        None => proposal::build(&approve.grant, args.namespace.as_deref().unwrap_or(&cluster.namespace))?,
    };
    let namespace = object.namespace().unwrap_or_default();
    let action = Action { verb: "create", namespace: Some(&namespace), name: object.metadata.name.as_deref(), program };
    let grants: Api<DebugGrant> = Api::namespaced(cluster.client.clone(), &namespace);
    let created = grants.create(&PostParams::default(), &object).await.map_err(|e| cluster.failure(e, &action))?;
    println!("{}", approved_line(&created)?);
    if !created.annotations().contains_key(APPROVED_BY) {
        eprintln!(
            "warning: the API server stored DebugGrant {namespace}/{} without the {APPROVED_BY} annotation: egate's \
             mutating webhook for DebugGrants (grants.mutate.egate.dev) did not run, so nobody can use the grant: \
             check that it is installed (docs/grants.md), then revoke the grant and approve it again",
            created.name_any()
        );
    }
    Ok(())
}

/// `approved DebugGrant NS/NAME for alice, group sre: general, images
/// [busybox:1.36], until 2026-12-03T10:30:00Z (in 30m)`.
fn approved_line(created: &DebugGrant) -> Result<String> {
    let spec = &created.spec.0;
    let duration = parse_duration(&spec.duration).map_err(anyhow::Error::msg)?;
    let since = created.metadata.creation_timestamp.as_ref().map_or_else(Timestamp::now, |t| t.0);
    let until = since.checked_add(duration).unwrap_or(Timestamp::MAX);
    Ok(format!(
        "approved DebugGrant {}/{} for {}: {}, images [{}], until {until} (in {})",
        created.namespace().unwrap_or_default(),
        created.name_any(),
        subjects_text(&spec.subjects),
        spec.profile,
        spec.images.join(", "),
        format_duration(Duration::from_secs(duration.as_secs()))
    ))
}

/// `alice, bob, group sre`.
fn subjects_text(subjects: &GrantSubjects) -> String {
    let groups = subjects.groups.iter().map(|g| format!("group {g}"));
    subjects.users.iter().cloned().chain(groups).collect::<Vec<_>>().join(", ")
}

/// `list`: the live grants (all with `--all`), of one namespace or all.
async fn list(args: &GrantArgs, list: &ListArgs, program: &str) -> Result<()> {
    let cluster = api::connect(&args.kube).await?;
    let namespace = args.namespace.clone().unwrap_or_else(|| cluster.namespace.clone());
    let (grants, place): (Api<DebugGrant>, Option<&str>) = if list.all_namespaces {
        (Api::all(cluster.client.clone()), None)
    } else {
        (Api::namespaced(cluster.client.clone(), &namespace), Some(&namespace))
    };
    let action = Action { verb: "list", namespace: place, name: None, program };
    let objects = grants.list(&ListParams::default()).await.map_err(|e| cluster.failure(e, &action))?;
    let now = Timestamp::now();
    let all: Vec<list::Row> = objects.items.iter().map(|o| list::row(o, now)).collect();
    let hidden = all.iter().filter(|r| r.state != list::State::Live).count();
    let rows: Vec<list::Row> = all.into_iter().filter(|r| list.all || r.state == list::State::Live).collect();
    match list.output {
        ListOutput::Table => print!("{}", list::table(&rows)),
        ListOutput::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        ListOutput::Yaml => print!("{}", egate_engine::yaml::to_string(&rows)?),
    }
    if rows.is_empty() {
        let place = place.map_or("any namespace".to_string(), |n| format!("namespace {n}"));
        let more = match hidden {
            0 => String::new(),
            n => format!(" ({n} expired or not approved: --all shows them)"),
        };
        eprintln!("no {}DebugGrants in {place}{more}", if list.all { "" } else { "live " });
    }
    Ok(())
}

/// `revoke`: deletes the grant.
async fn revoke(args: &GrantArgs, revoke: &RevokeArgs, program: &str) -> Result<()> {
    let cluster = api::connect(&args.kube).await?;
    let namespace = args.namespace.clone().unwrap_or_else(|| cluster.namespace.clone());
    let action = Action { verb: "delete", namespace: Some(&namespace), name: Some(&revoke.name), program };
    let grants: Api<DebugGrant> = Api::namespaced(cluster.client.clone(), &namespace);
    grants.delete(&revoke.name, &DeleteParams::default()).await.map_err(|e| cluster.failure(e, &action))?;
    println!("revoked DebugGrant {namespace}/{}", revoke.name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_approved_line_names_the_grant_its_subjects_and_its_end() {
        let created: DebugGrant = serde_json::from_value(serde_json::json!({
            "apiVersion": "egate.dev/v1", "kind": "DebugGrant",
            "metadata": {"name": "alice-web-x7k2p", "namespace": "shop", "creationTimestamp": "2026-12-03T10:00:00Z"},
            "spec": {"subjects": {"users": ["alice", "bob"], "groups": ["sre"]}, "pods": {"names": ["web"]},
                     "images": ["busybox:1.36", "nicolaka/netshoot:*"], "profile": "netadmin", "duration": "1h30m",
                     "reason": "INC-42"}
        }))
        .unwrap();
        assert_eq!(
            approved_line(&created).unwrap(),
            "approved DebugGrant shop/alice-web-x7k2p for alice, bob, group sre: netadmin, images [busybox:1.36, \
             nicolaka/netshoot:*], until 2026-12-03T11:30:00Z (in 1h30m)"
        );
    }
}
