//! `egate who-can-debug`: who RBAC lets add ephemeral containers (and exec,
//! attach, create pods, debug nodes, reach the kubelet), per namespace, with
//! the chain binding > role > rule of each grant; and, with `--policies`,
//! what egate's policies then let them add.
//!
//! The RBAC objects come from the cluster of the current kubeconfig (list
//! on the four RBAC kinds, nothing else) or from files (`--from`). The
//! resolution itself is pure ([`rbac::resolve`]), and checked against the
//! API server's SubjectAccessReviews by the end-to-end tests
//! (`tests/e2e/who_can_debug.rs`). See docs/who-can-debug.md.

pub mod judge;
pub mod output;
pub mod rbac;
pub mod sources;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use egate_engine::{PolicySet, Sandbox, SandboxConfig};

use output::{Listed, Report};
use rbac::{Capability, Entry, Scope, Subject};

/// Arguments of `egate who-can-debug`.
#[derive(Args)]
#[command(after_help = "\
Lists, per capability, the subjects RBAC allows and in which namespaces ((all): every namespace):
  debug    patch or update pods/ephemeralcontainers (kubectl debug POD sends PATCH; PUT needs update)
  exec     create pods/exec (what the API server asks for since 1.35, SPDY and WebSocket alike)
  attach   create pods/attach (kubectl attach, kubectl debug -it)
  copy     create pods (kubectl debug --copy-to, or any pod)
  node     create pods and get nodes, cluster-wide (kubectl debug node/NAME)
  kubelet  get or create nodes/proxy, cluster-wide (the kubelet's /exec, past admission)
Each row names the chain: binding > role (> aggregated roles) > rule. A rule with resourceNames
grants only those objects: such entries say [only NAMES]. Groups are listed as groups (egate
does not know who is in them); system:masters is allowed everything by the API server itself.")]
pub struct WhoCanDebugArgs {
    /// Only what holds in this namespace: its RoleBindings and the
    /// cluster-wide grants. With --policies, cluster-wide entries are
    /// judged here (default: in `default`).
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
    /// Only this subject: `user:NAME`, `group:NAME`,
    /// `serviceaccount:NS:NAME` (or `system:serviceaccount:NS:NAME`), or a
    /// bare NAME (a user or group of that name). A user or service account
    /// also gets the groups it is known to be in (system:authenticated; a
    /// service account's system:serviceaccounts and system:serviceaccounts:NS).
    #[arg(long, value_name = "S")]
    subject: Option<String>,
    /// Only grants of this verb (`patch`, `update`, `create`, `get`):
    /// chains granting it, and the capabilities that ask for it.
    #[arg(long, value_name = "V")]
    verb: Option<String>,
    /// `table`, or one `json` or `yaml` document.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Policy manifests: for each subject that may debug, what this set
    /// lets it add (sample kubectl debug requests by it, every --profile,
    /// with and without --target, :latest and digest-pinned images).
    #[arg(long = "policies", short = 'p', value_name = "FILE", num_args = 1..)]
    policies: Vec<PathBuf>,
    /// Read RBAC objects from FILE or DIR (its .yaml, .yml and .json files)
    /// instead of the cluster: a `kubectl get
    /// clusterroles,clusterrolebindings,roles,rolebindings -A -o yaml` dump,
    /// or manifests. Repeat for more. Without it, the cluster of the
    /// current kubeconfig (KUBECONFIG) is read: list on roles, clusterroles,
    /// rolebindings and clusterrolebindings is all it needs.
    #[arg(long = "from", value_name = "FILE|DIR")]
    from: Vec<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
    Yaml,
}

/// A `--subject` filter.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SubjectFilter {
    /// This subject, and the groups it is known to be in.
    Exactly(Subject),
    /// A user or group of this name.
    Named(String),
}

impl SubjectFilter {
    fn parse(text: &str) -> Result<Self> {
        if text.trim().is_empty() {
            bail!("--subject is empty: write user:NAME, group:NAME, serviceaccount:NS:NAME or a bare NAME");
        }
        let (kind, rest) = text.split_once(':').unwrap_or(("", text));
        Ok(match kind.to_ascii_lowercase().as_str() {
            "user" => SubjectFilter::Exactly(Subject::User { name: rest.into() }),
            "group" => SubjectFilter::Exactly(Subject::group(rest)),
            "serviceaccount" | "sa" => match rest.split_once([':', '/']) {
                Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() => {
                    SubjectFilter::Exactly(Subject::ServiceAccount { namespace: namespace.into(), name: name.into() })
                }
                _ => bail!("--subject {text}: write a service account as serviceaccount:NAMESPACE:NAME"),
            },
            _ if text.starts_with("system:serviceaccount:") => match Subject::user(text) {
                account @ Subject::ServiceAccount { .. } => SubjectFilter::Exactly(account),
                _ => bail!("--subject {text}: write a service account as system:serviceaccount:NAMESPACE:NAME"),
            },
            _ => SubjectFilter::Named(text.into()),
        })
    }

    fn keeps(&self, subject: &Subject) -> bool {
        match self {
            SubjectFilter::Exactly(wanted) => wanted.is_covered_by(subject),
            SubjectFilter::Named(name) => match subject {
                Subject::User { name: n } | Subject::Group { name: n } => n == name,
                Subject::ServiceAccount { .. } => false,
            },
        }
    }
}

/// The filters of the command line, applied to resolved entries.
struct Filters {
    namespace: Option<String>,
    subject: Option<SubjectFilter>,
    verb: Option<String>,
}

impl Filters {
    /// The entry as the filters leave it: `None` when they drop it, else
    /// with only the chains of `--verb`.
    fn apply(&self, mut entry: Entry) -> Option<Entry> {
        if let Some(namespace) = &self.namespace
            && !entry.namespace.covers(namespace)
        {
            return None;
        }
        if let Some(subject) = &self.subject
            && !subject.keeps(&entry.subject)
        {
            return None;
        }
        if let Some(verb) = &self.verb {
            entry.chains.retain(|chain| chain.verbs.contains(verb));
            if entry.chains.is_empty() {
                return None;
            }
            entry.verbs.retain(|v| v == verb);
        }
        Some(entry)
    }

    /// The capabilities listed: those that ask for `--verb`, or all.
    fn capabilities(&self) -> Vec<Capability> {
        Capability::ALL
            .into_iter()
            .filter(|c| {
                self.verb.as_ref().is_none_or(|verb| c.needs().iter().any(|n| n.verbs.contains(&verb.as_str())))
            })
            .collect()
    }
}

/// Runs `egate who-can-debug`.
pub fn run(args: &WhoCanDebugArgs) -> Result<ExitCode> {
    let filters = Filters {
        namespace: args.namespace.clone(),
        subject: args.subject.as_deref().map(SubjectFilter::parse).transpose()?,
        verb: args.verb.clone(),
    };
    if let Some(verb) = &filters.verb
        && filters.capabilities().is_empty()
    {
        bail!("--verb {verb}: no capability is granted by it; use patch, update, create or get");
    }
    let policies = match args.policies.as_slice() {
        [] => None,
        paths => {
            let sandbox = Sandbox::new(SandboxConfig::default())?;
            Some(PolicySet::load(&sandbox, paths)?)
        }
    };
    let (source, objects) = if args.from.is_empty() {
        ("cluster".to_string(), sources::read_cluster()?)
    } else {
        let names: Vec<String> = args.from.iter().map(|p| p.display().to_string()).collect();
        (names.join(", "), sources::read_files(&args.from)?)
    };
    let resolution = rbac::resolve(&objects);
    let mut judged = BTreeMap::new();
    let mut listed = Vec::new();
    for entry in resolution.entries.into_iter().filter_map(|e| filters.apply(e)) {
        let egate = match &policies {
            Some(set) if entry.capability == Capability::Debug => {
                let namespace = match &entry.namespace {
                    Scope::Namespace(ns) => ns.clone(),
                    Scope::Cluster => args.namespace.clone().unwrap_or_else(|| "default".into()),
                };
                let key = (entry.subject.clone(), namespace.clone());
                if !judged.contains_key(&key) {
                    judged.insert(key.clone(), judge::judge(set, &entry.subject, &namespace)?);
                }
                judged.get(&key).cloned()
            }
            _ => None,
        };
        listed.push(Listed { entry, egate });
    }
    let report = Report::new(source, &filters.capabilities(), listed, resolution.notes);
    match args.output {
        Format::Table => print!("{}", output::table(&report)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Yaml => print!("{}", egate_engine::yaml::to_string(&report)?),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_filters_parse_and_keep_the_groups_a_subject_is_known_to_be_in() {
        let sa = SubjectFilter::parse("serviceaccount:ci:deployer").unwrap();
        assert_eq!(sa, SubjectFilter::parse("system:serviceaccount:ci:deployer").unwrap());
        assert_eq!(sa, SubjectFilter::parse("sa:ci/deployer").unwrap());
        assert!(sa.keeps(&Subject::group("system:serviceaccounts:ci")));
        assert!(!sa.keeps(&Subject::group("system:serviceaccounts:dev")));
        let bare = SubjectFilter::parse("sre").unwrap();
        assert!(bare.keeps(&Subject::group("sre")) && bare.keeps(&Subject::user("sre")));
        assert!(!bare.keeps(&Subject::group("system:authenticated")));
        assert!(SubjectFilter::parse("serviceaccount:ci").is_err());
        assert!(SubjectFilter::parse(" ").is_err());
    }

    #[test]
    fn the_verb_filter_keeps_only_chains_of_that_verb() {
        let filters = Filters { namespace: None, subject: None, verb: Some("update".into()) };
        assert_eq!(filters.capabilities(), [Capability::Debug]);
        let filters = Filters { namespace: None, subject: None, verb: Some("create".into()) };
        assert_eq!(
            filters.capabilities(),
            [Capability::Exec, Capability::Attach, Capability::Copy, Capability::Node, Capability::Kubelet]
        );
    }
}
