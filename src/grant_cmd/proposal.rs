//! A grant proposal: the `DebugGrant` that `egate grant request` prints and
//! `egate grant approve` creates, built from flags ([`build`]) or read from
//! a file ([`read`]), and checked as egate's webhook checks it, bar the
//! cluster's `--max-grant-duration`, which only the webhook knows.
//!
//! Errors come in the terms of where the grant came from: flags for a
//! grant built from flags (`--image is missing`), spec fields for a file
//! (`grant.yaml: spec.images is empty`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use egate_abi::inputs::{GrantSubjects, Profile};
use egate_engine::grants::{APPROVED_BY, GrantError, GrantPods, GrantSpec};
use egate_engine::manifest::LabelSelector;
use kube::api::ObjectMeta;

use crate::cluster::grants::{DebugGrant, DebugGrantSpec};

/// The flags that describe a grant, shared by `request` and `approve`.
/// All are optional to clap (so `approve -f FILE` can go without them);
/// [`build`] says which are missing.
#[derive(Args, Clone, Debug, Default)]
pub struct ProposalArgs {
    /// The pod to debug (spec.pods.names); optional with --selector.
    #[arg(value_name = "POD")]
    pub pod: Option<String>,
    /// A user who may use the grant (exact name); repeat for more.
    #[arg(long = "user", value_name = "USER")]
    pub users: Vec<String>,
    /// A group whose members may use the grant; repeat for more.
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// An image the debug container may run, or a glob (`registry.example.com/debug/*`); repeat for more.
    #[arg(long = "image", value_name = "IMAGE")]
    pub images: Vec<String>,
    /// A container the debug container may target (`kubectl debug --target`); repeat for more. Default: none.
    #[arg(long = "target", value_name = "CONTAINER")]
    pub targets: Vec<String>,
    /// The most the debug container may ask for, as `kubectl debug --profile` names it.
    #[arg(long, value_name = "PROFILE", value_parser = parse_profile)]
    pub profile: Option<Profile>,
    /// How long the grant lasts once approved, as Go writes durations (`30m`, `1h30m`).
    #[arg(long, value_name = "DURATION", default_value = "30m")]
    pub duration: String,
    /// Why the access is needed (an incident, a ticket); recorded in the grant and the audit trail.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Pods by their labels (spec.pods.selector.matchLabels), as KEY=VALUE,...; with or instead of POD.
    #[arg(long, value_name = "KEY=VALUE,...")]
    pub selector: Option<String>,
    /// The grant's name. Default: the API server generates one from `<first subject>-<pod>-`.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

/// What is wrong with the flags of a grant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    /// No `--user` nor `--group`.
    #[error("who is the grant for? give --user USER or --group GROUP (repeat them for more)")]
    NoSubjects,
    /// No `POD` nor `--selector`.
    #[error("which pods? give the POD's name, or --selector KEY=VALUE to select pods by their labels")]
    NoPods,
    /// No `--image`.
    #[error(
        "--image is missing: name each image the debug container may run (--image busybox:1.36), or a glob \
         (--image 'registry.example.com/debug/*')"
    )]
    NoImages,
    /// No `--profile`.
    #[error("--profile is missing: {PROFILES_HELP}")]
    NoProfile,
    /// No `--reason`, or a blank one.
    #[error(
        "--reason is missing or blank: say why the debug access is needed, e.g. --reason \"INC-42: web is crash-looping\""
    )]
    NoReason,
    /// A repeatable flag was given an empty value.
    #[error("{0} was given an empty value")]
    Blank(&'static str),
    /// `--duration` is not a duration.
    #[error("--duration: {0}")]
    Duration(String),
    /// `--duration 0s`.
    #[error("--duration is 0s: the grant would end as it is approved: ask for e.g. 30m")]
    ZeroDuration,
    /// `--selector` holds something else than `KEY=VALUE` pairs.
    #[error("--selector: {0:?} is not KEY=VALUE: write e.g. --selector app=web,tier=frontend")]
    Selector(String),
}

const PROFILES_HELP: &str = "the most the debug container may ask for, as kubectl debug --profile names it: \
                             restricted, baseline, general, netadmin or sysadmin";

/// Reads `--profile`.
fn parse_profile(text: &str) -> Result<Profile, String> {
    Profile::ALL
        .into_iter()
        .find(|p| p.name() == text)
        .ok_or_else(|| format!("{text:?} is not a profile: {PROFILES_HELP}"))
}

impl ProposalError {
    /// The flag-terms error for what [`GrantSpec::checked_duration`] found.
    fn from_spec(error: GrantError) -> Self {
        match error {
            GrantError::Empty("spec.subjects", _) => Self::NoSubjects,
            GrantError::Empty("spec.pods", _) => Self::NoPods,
            GrantError::Duration(message) => Self::Duration(message),
            // spec.images, and what checked_duration(None) cannot return.
            _ => Self::NoImages,
        }
    }
}

/// The grant the flags describe, in `namespace`: checked, unnamed unless
/// `--name` is given (the API server then generates the name).
pub fn build(args: &ProposalArgs, namespace: &str) -> Result<DebugGrant, ProposalError> {
    let repeated =
        [("--user", &args.users), ("--group", &args.groups), ("--image", &args.images), ("--target", &args.targets)];
    if let Some((flag, _)) = repeated.iter().find(|(_, values)| values.iter().any(|v| v.trim().is_empty())) {
        return Err(ProposalError::Blank(flag));
    }
    if args.pod.as_deref().is_some_and(|p| p.trim().is_empty()) {
        return Err(ProposalError::Blank("POD"));
    }
    let selector = args.selector.as_deref().map(parse_selector).transpose()?;
    let mut spec = GrantSpec {
        subjects: GrantSubjects { users: args.users.clone(), groups: args.groups.clone() },
        pods: GrantPods { names: args.pod.iter().cloned().collect(), selector },
        target_containers: args.targets.clone(),
        images: args.images.clone(),
        // Checked below, after what the engine checks, in the order of the command line.
        profile: args.profile.unwrap_or(Profile::Restricted),
        duration: args.duration.clone(),
        reason: args.reason.clone().unwrap_or_default(),
    };
    if spec.checked_duration(None).map_err(ProposalError::from_spec)?.is_zero() {
        return Err(ProposalError::ZeroDuration);
    }
    spec.profile = args.profile.ok_or(ProposalError::NoProfile)?;
    if spec.reason.trim().is_empty() {
        return Err(ProposalError::NoReason);
    }
    Ok(object(namespace, args.name.clone(), spec))
}

/// A `DebugGrant` of `spec` in `namespace`, named `name` or, without one,
/// with a `generateName` from its first subject and pod.
fn object(namespace: &str, name: Option<String>, spec: GrantSpec) -> DebugGrant {
    let generate_name = name.is_none().then(|| generate_name(&spec));
    DebugGrant {
        metadata: ObjectMeta { name, generate_name, namespace: Some(namespace.to_string()), ..Default::default() },
        spec: DebugGrantSpec(spec),
        status: None,
    }
}

/// `<first subject>-<pod>-`, each part made a DNS label (lowercase
/// letters, digits and dashes) and cut to 24 characters, so the API
/// server's 5 random characters still fit.
fn generate_name(spec: &GrantSpec) -> String {
    let subject = spec.subjects.users.first().or(spec.subjects.groups.first());
    let selected = spec.pods.selector.as_ref().and_then(|s| s.match_labels.values().next());
    let pod = spec.pods.names.first().or(selected);
    let part = |text: Option<&String>| {
        let mut label = String::new();
        for c in text.map(String::as_str).unwrap_or_default().chars().flat_map(char::to_lowercase) {
            match c {
                'a'..='z' | '0'..='9' => label.push(c),
                _ if !label.is_empty() && !label.ends_with('-') => label.push('-'),
                _ => {}
            }
            if label.len() == 24 {
                break;
            }
        }
        let label = label.trim_end_matches('-');
        if label.is_empty() { "grant".to_string() } else { label.to_string() }
    };
    format!("{}-{}-", part(subject), part(pod))
}

/// `KEY=VALUE,...` as `matchLabels`.
fn parse_selector(text: &str) -> Result<LabelSelector, ProposalError> {
    let mut labels = BTreeMap::new();
    for pair in text.split(',') {
        match pair.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() && !value.contains(['=', '!']) && !key.contains('!') => {
                labels.insert(key.trim().to_string(), value.trim().to_string());
            }
            _ => return Err(ProposalError::Selector(pair.to_string())),
        }
    }
    Ok(LabelSelector { match_labels: labels, match_expressions: Vec::new() })
}

/// What is wrong with a grant file given to `approve -f`.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// It cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file (`-` for stdin).
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is not YAML or JSON of a `DebugGrant`.
    #[error("{path}: {error}: write what `egate grant request` prints")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// Where and what.
        error: egate_engine::yaml::YamlError,
    },
    /// It holds something else.
    #[error("{path} holds {found}, not one egate.dev/v1 DebugGrant: write what `egate grant request` prints")]
    NotAGrant {
        /// The file.
        path: PathBuf,
        /// What it holds.
        found: String,
    },
    /// Its spec would be refused.
    #[error("{path}: {error}")]
    Spec {
        /// The file.
        path: PathBuf,
        /// What the spec lacks.
        error: GrantError,
    },
    /// Its namespace is not `-n`'s.
    #[error("{path} is for namespace {file:?}, and -n says {flag:?}: drop -n, or fix metadata.namespace")]
    Namespace {
        /// The file.
        path: PathBuf,
        /// `metadata.namespace`.
        file: String,
        /// `-n`.
        flag: String,
    },
}

/// What [`read`] changed in the file's object, for the person to know.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// The approver the file named, which egate's webhook overwrites.
    pub approved_by: Option<String>,
}

/// The grant in `path` (`-` is stdin), ready to create in its namespace
/// (else `-n`, else `default_namespace`): its approver annotation, status
/// and the metadata the API server writes are dropped, and it gets a
/// `generateName` when it has no name.
pub fn read(
    path: &Path,
    namespace_flag: Option<&str>,
    default_namespace: &str,
) -> Result<(DebugGrant, Cleaned), FileError> {
    let text =
        if path == Path::new("-") { std::io::read_to_string(std::io::stdin()) } else { std::fs::read_to_string(path) }
            .map_err(|source| FileError::Read { path: path.to_path_buf(), source })?;
    parse(&text, path, namespace_flag, default_namespace)
}

/// [`read`] of text already read.
fn parse(
    text: &str,
    path: &Path,
    namespace_flag: Option<&str>,
    default_namespace: &str,
) -> Result<(DebugGrant, Cleaned), FileError> {
    let yaml = |error| FileError::Yaml { path: path.to_path_buf(), error };
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct TypeMeta {
        api_version: Option<String>,
        kind: Option<String>,
    }
    let documents: Vec<TypeMeta> = egate_engine::yaml::documents(text).map_err(|(_, e)| yaml(e))?;
    let not_a_grant = |found: String| FileError::NotAGrant { path: path.to_path_buf(), found };
    match documents.as_slice() {
        [TypeMeta { api_version: Some(v), kind: Some(k) }] if v == "egate.dev/v1" && k == "DebugGrant" => {}
        [one] => {
            let kind = one.kind.as_deref().unwrap_or("no kind");
            return Err(not_a_grant(format!("a {kind} of {}", one.api_version.as_deref().unwrap_or("no apiVersion"))));
        }
        many => return Err(not_a_grant(format!("{} documents", many.len()))),
    }
    let mut object: DebugGrant = egate_engine::yaml::from_str(text).map_err(yaml)?;
    let spec = &object.spec.0;
    let spec_error = |error| FileError::Spec { path: path.to_path_buf(), error };
    spec.checked_duration(None).map_err(spec_error)?;
    if spec.reason.trim().is_empty() {
        return Err(spec_error(GrantError::Empty(
            "spec.reason",
            "say why the debug access is needed (an incident, a ticket)",
        )));
    }
    let namespace = match (object.metadata.namespace.take(), namespace_flag) {
        (Some(file), Some(flag)) if file != flag => {
            return Err(FileError::Namespace { path: path.to_path_buf(), file, flag: flag.to_string() });
        }
        (Some(file), _) => file,
        (None, flag) => flag.unwrap_or(default_namespace).to_string(),
    };
    let approved_by = object.metadata.annotations.as_mut().and_then(|a| a.remove(APPROVED_BY));
    let mut metadata = std::mem::take(&mut object.metadata);
    let name = metadata.name.take().filter(|n| !n.is_empty());
    let mut fresh = object_meta_kept(metadata);
    fresh.namespace = Some(namespace);
    fresh.generate_name = match name {
        Some(_) => None,
        None => fresh.generate_name.filter(|g| !g.is_empty()).or_else(|| Some(generate_name(&object.spec.0))),
    };
    fresh.name = name;
    Ok((DebugGrant { metadata: fresh, spec: object.spec, status: None }, Cleaned { approved_by }))
}

/// The metadata a person writes (generateName, labels, annotations), not
/// what the API server wrote on a stored object (uid, resourceVersion,
/// creationTimestamp, managedFields...), which a create refuses.
fn object_meta_kept(metadata: ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        generate_name: metadata.generate_name,
        labels: metadata.labels,
        annotations: metadata.annotations.filter(|a| !a.is_empty()),
        ..Default::default()
    }
}

/// The `approve` command line that creates the grant as built from
/// flags, each word quoted for a POSIX shell where it needs it.
pub fn approve_command(program: &str, object: &DebugGrant) -> String {
    let spec = &object.spec.0;
    let mut words: Vec<String> = vec![program.into(), "grant".into(), "approve".into()];
    words.extend(spec.pods.names.first().cloned());
    words.extend(["-n".into(), object.metadata.namespace.clone().unwrap_or_default()]);
    let flag = |words: &mut Vec<String>, flag: &str, values: &[String]| {
        for value in values {
            words.extend([flag.to_string(), value.clone()]);
        }
    };
    flag(&mut words, "--user", &spec.subjects.users);
    flag(&mut words, "--group", &spec.subjects.groups);
    flag(&mut words, "--image", &spec.images);
    flag(&mut words, "--target", &spec.target_containers);
    flag(&mut words, "--profile", &[spec.profile.name().to_string()]);
    flag(&mut words, "--duration", std::slice::from_ref(&spec.duration));
    flag(&mut words, "--reason", std::slice::from_ref(&spec.reason));
    if let Some(selector) = &spec.pods.selector {
        let pairs: Vec<String> = selector.match_labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        flag(&mut words, "--selector", &[pairs.join(",")]);
    }
    flag(&mut words, "--name", object.metadata.name.as_slice());
    words.iter().enumerate().map(|(i, w)| if i < 3 { w.clone() } else { shell_quote(w) }).collect::<Vec<_>>().join(" ")
}

/// `word` as a POSIX shell reads it back: as it is when it holds only
/// characters no shell treats specially, else in single quotes.
fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flags() -> ProposalArgs {
        ProposalArgs {
            pod: Some("web".into()),
            users: vec!["alice".into()],
            images: vec!["busybox:1.36".into()],
            profile: Some(Profile::General),
            duration: "30m".into(),
            reason: Some("INC-42".into()),
            ..Default::default()
        }
    }

    #[test]
    fn flags_make_the_grant_a_person_asked_for_with_a_generated_name() {
        let object = build(&flags(), "shop").unwrap();
        assert_eq!(
            serde_json::to_value(&object).unwrap(),
            json!({
                "apiVersion": "egate.dev/v1", "kind": "DebugGrant",
                "metadata": {"generateName": "alice-web-", "namespace": "shop"},
                "spec": {"subjects": {"users": ["alice"]}, "pods": {"names": ["web"]}, "images": ["busybox:1.36"],
                         "profile": "general", "duration": "30m", "reason": "INC-42"}
            })
        );
        let named = build(&ProposalArgs { name: Some("alice-web".into()), ..flags() }, "shop").unwrap();
        assert_eq!(named.metadata.name.as_deref(), Some("alice-web"));
        assert_eq!(named.metadata.generate_name, None);
    }

    #[test]
    fn generated_names_are_dns_labels_from_the_first_subject_and_pod() {
        let by_group = ProposalArgs {
            pod: None,
            users: vec![],
            groups: vec!["SRE On-Call@Example.com".into()],
            selector: Some("app=Web_Front".into()),
            ..flags()
        };
        assert_eq!(
            build(&by_group, "shop").unwrap().metadata.generate_name.unwrap(),
            "sre-on-call-example-com-web-front-"
        );
        let service_account =
            ProposalArgs { users: vec!["system:serviceaccount:ci:deployer-with-a-long-name".into()], ..flags() };
        let name = build(&service_account, "shop").unwrap().metadata.generate_name.unwrap();
        assert_eq!(name, "system-serviceaccount-ci-web-");
    }

    #[test]
    fn missing_or_wrong_flags_say_which_flag_to_give() {
        let error = |args: ProposalArgs| build(&args, "shop").unwrap_err();
        assert_eq!(error(ProposalArgs { users: vec![], ..flags() }), ProposalError::NoSubjects);
        assert_eq!(error(ProposalArgs { pod: None, ..flags() }), ProposalError::NoPods);
        assert_eq!(error(ProposalArgs { images: vec![], ..flags() }), ProposalError::NoImages);
        assert_eq!(error(ProposalArgs { profile: None, ..flags() }), ProposalError::NoProfile);
        assert_eq!(error(ProposalArgs { reason: Some("  ".into()), ..flags() }), ProposalError::NoReason);
        assert_eq!(error(ProposalArgs { groups: vec![String::new()], ..flags() }), ProposalError::Blank("--group"));
        assert_eq!(error(ProposalArgs { duration: "0s".into(), ..flags() }), ProposalError::ZeroDuration);
        let soon = error(ProposalArgs { duration: "soon".into(), ..flags() });
        assert_eq!(soon.to_string(), r#"--duration: "soon" is not a duration: write e.g. 10s, 30m or 1h30m"#);
        let selector = error(ProposalArgs { selector: Some("app=web,tier!=db".into()), ..flags() });
        assert_eq!(selector, ProposalError::Selector("tier!=db".into()));
        assert!(
            parse_profile("privileged").unwrap_err().contains("restricted, baseline, general, netadmin or sysadmin")
        );
        assert_eq!(parse_profile("netadmin"), Ok(Profile::Netadmin));
    }

    #[test]
    fn the_approve_command_rebuilds_the_same_grant_when_a_shell_reads_it() {
        let args = ProposalArgs {
            groups: vec!["sre".into()],
            images: vec!["busybox:1.36".into(), "registry.example.com/debug/*".into()],
            targets: vec!["app".into()],
            reason: Some("INC-42: it's down".into()),
            selector: Some("app=web".into()),
            ..flags()
        };
        let object = build(&args, "shop").unwrap();
        let line = approve_command("kubectl egate", &object);
        assert_eq!(
            line,
            "kubectl egate grant approve web -n shop --user alice --group sre --image busybox:1.36 --image \
             'registry.example.com/debug/*' --target app --profile general --duration 30m --reason \
             'INC-42: it'\\''s down' --selector app=web"
        );
        let words = std::process::Command::new("sh").args(["-c", &format!("printf '%s\\n' {line}")]).output().unwrap();
        let words = String::from_utf8(words.stdout).unwrap();
        assert!(words.lines().any(|w| w == "INC-42: it's down"), "{words}");
        assert!(words.lines().any(|w| w == "registry.example.com/debug/*"), "{words}");
    }

    const FILE: &str = r#"
apiVersion: egate.dev/v1
kind: DebugGrant
metadata:
  name: alice-web
  namespace: shop
  uid: 0b6e
  resourceVersion: "42"
  creationTimestamp: "2026-12-03T10:00:00Z"
  annotations: {egate.dev/approved-by: mallory}
spec:
  subjects: {users: [alice]}
  pods: {names: [web]}
  images: ["busybox:*"]
  profile: general
  duration: 30m
  reason: INC-42
status: {useCount: 3}
"#;

    #[test]
    fn a_file_is_cleaned_of_what_the_server_and_the_webhook_write() {
        let (object, cleaned) = parse(FILE, Path::new("g.yaml"), None, "default").unwrap();
        assert_eq!(cleaned, Cleaned { approved_by: Some("mallory".into()) });
        assert_eq!(
            serde_json::to_value(&object).unwrap()["metadata"],
            json!({"name": "alice-web", "namespace": "shop"})
        );
        assert!(object.status.is_none());
        let unnamed = FILE.replace("  name: alice-web\n", "").replace("  namespace: shop\n", "");
        let (object, _) = parse(&unnamed, Path::new("g.yaml"), Some("dev"), "default").unwrap();
        assert_eq!(object.metadata.generate_name.as_deref(), Some("alice-web-"));
        assert_eq!(object.metadata.namespace.as_deref(), Some("dev"));
    }

    #[test]
    fn a_file_that_is_no_grant_or_an_incomplete_one_says_what_is_wrong_where() {
        let error =
            |text: &str, ns: Option<&str>| parse(text, Path::new("g.yaml"), ns, "default").unwrap_err().to_string();
        assert_eq!(
            error(FILE, Some("dev")),
            r#"g.yaml is for namespace "shop", and -n says "dev": drop -n, or fix metadata.namespace"#
        );
        assert!(
            error("apiVersion: v1\nkind: Pod\n", None)
                .starts_with("g.yaml holds a Pod of v1, not one egate.dev/v1 DebugGrant")
        );
        assert!(error(&format!("{FILE}---{FILE}"), None).starts_with("g.yaml holds 2 documents"));
        assert_eq!(
            error(&FILE.replace("images: [\"busybox:*\"]", "images: []"), None),
            "g.yaml: spec.images is empty: name the images the debug container may run"
        );
        assert!(
            error(&FILE.replace("reason: INC-42", "reason: \"\""), None).starts_with("g.yaml: spec.reason is empty")
        );
        let typo = error(&FILE.replace("profile: general", "profile: general\n  profiles: x"), None);
        assert!(typo.starts_with("g.yaml: spec") && typo.contains("profiles"), "{typo}");
    }
}
