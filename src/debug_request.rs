//! The AdmissionReview that `kubectl debug POD --image=IMAGE` causes: an
//! UPDATE of `pods/ephemeralcontainers` whose `oldObject` is the pod and
//! whose `object` is the pod plus one new ephemeral container. Shared by
//! `egate scaffold request` and the `pod` + `debug` cases of `egate test`.
//!
//! The container is written as the API server hands it to admission
//! webhooks after defaulting: kubectl's fields (`name`, `image`, `stdin`,
//! `tty` for `-it`, `targetContainerName` for `--target`, the profile's
//! `securityContext`) plus `imagePullPolicy`, `terminationMessagePath`,
//! `terminationMessagePolicy` and an empty `resources`.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// kubectl's `--profile`: the security context it gives an ephemeral
/// container (kubectl's `pkg/cmd/debug/profiles.go`, ephemeral style).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// No securityContext (kubectl's default before v1.36).
    Legacy,
    /// Adds the SYS_PTRACE capability (kubectl's default from v1.36).
    #[default]
    General,
    /// No securityContext.
    Baseline,
    /// runAsNonRoot, drop ALL capabilities, no privilege escalation, RuntimeDefault seccomp.
    Restricted,
    /// Adds the NET_ADMIN and NET_RAW capabilities.
    Netadmin,
    /// privileged: true.
    Sysadmin,
}

impl Profile {
    /// The container's securityContext under this profile, `None` for none.
    pub fn security_context(self) -> Option<Value> {
        match self {
            Profile::Legacy | Profile::Baseline => None,
            Profile::General => Some(json!({"capabilities": {"add": ["SYS_PTRACE"]}})),
            Profile::Restricted => Some(json!({
                "runAsNonRoot": true,
                "capabilities": {"drop": ["ALL"]},
                "allowPrivilegeEscalation": false,
                "seccompProfile": {"type": "RuntimeDefault"},
            })),
            Profile::Netadmin => Some(json!({"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}})),
            Profile::Sysadmin => Some(json!({"privileged": true})),
        }
    }
}

/// The debug container to add, as `kubectl debug`'s flags describe it (and
/// as the `debug:` field of a test case spells it).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DebugContainer {
    /// Container name; `debugger-XXXXX` (5 random characters) when absent, as kubectl does.
    #[serde(default)]
    pub name: Option<String>,
    /// `--image`.
    pub image: String,
    /// `--target`: the container whose process namespace it joins.
    #[serde(default)]
    pub target: Option<String>,
    /// `--profile`; `general` when neither it nor `securityContext` is given.
    #[serde(default)]
    pub profile: Option<Profile>,
    /// Sets `securityContext.privileged: true` on top of the rest.
    #[serde(default)]
    pub privileged: bool,
    /// The container's securityContext, written as is (instead of a profile's).
    #[serde(default)]
    pub security_context: Option<Value>,
    /// kubectl debug's `--custom`: a partial container spec (env, volumeMounts,
    /// securityContext, ...) merged into the container last, as a JSON merge patch.
    #[serde(default)]
    pub custom: Option<Value>,
}

/// Who runs `kubectl debug`: the request's `userInfo`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requester {
    /// User name.
    pub username: String,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
}

impl Default for Requester {
    /// kubeadm's (and kind's) administrator, who runs most `kubectl debug`s in a test cluster.
    fn default() -> Self {
        Self {
            username: "kubernetes-admin".into(),
            groups: vec!["kubeadm:cluster-admins".into(), "system:authenticated".into()],
        }
    }
}

/// Reads a Pod from a JSON or YAML file.
pub fn read_pod(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read pod file {}", path.display()))?;
    let pod: Value = egate_engine::yaml::from_str(&text)
        .with_context(|| format!("pod file {} is neither JSON nor YAML", path.display()))?;
    check_pod(&pod).with_context(|| format!("pod file {}", path.display()))?;
    Ok(pod)
}

/// Refuses what is not a Pod kubectl could debug.
fn check_pod(pod: &Value) -> Result<()> {
    let Some(object) = pod.as_object() else { bail!("it is not a Pod object (a mapping with metadata and spec)") };
    if let Some(kind) = object.get("kind")
        && kind != "Pod"
    {
        bail!("its kind is {kind}, but kubectl debug adds ephemeral containers to a Pod");
    }
    match pod.pointer("/metadata/name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => {}
        _ => bail!("it has no metadata.name: kubectl debug needs the name of a running pod"),
    }
    if !pod.pointer("/spec/containers").is_some_and(Value::is_array) {
        bail!("it has no spec.containers list");
    }
    Ok(())
}

/// Names of a pod's containers of one kind (`containers`, `initContainers`, `ephemeralContainers`).
fn container_names<'a>(pod: &'a Value, list: &str) -> impl Iterator<Item = &'a str> {
    pod.pointer(&format!("/spec/{list}"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
}

/// The AdmissionReview `kubectl debug` causes when `user` adds `debug` to
/// `pod`: the SDK's one shape of a debug request
/// (`egate_guest::testing::debug_review_json`), with a fresh uid.
pub fn admission_review(pod: &Value, debug: &DebugContainer, user: &Requester) -> Result<Value> {
    check_pod(pod)?;
    let container = ephemeral_container(pod, debug)?;
    let groups: Vec<&str> = user.groups.iter().map(String::as_str).collect();
    let mut review = egate_guest::testing::debug_review_json(pod, container, &user.username, &groups);
    review["request"]["uid"] = random_uid().into();
    Ok(review)
}

/// The new ephemeral container, as admission sees it.
fn ephemeral_container(pod: &Value, debug: &DebugContainer) -> Result<Value> {
    if debug.image.trim().is_empty() {
        bail!("the debug container has no image: kubectl debug needs --image");
    }
    let taken: BTreeSet<&str> = ["containers", "initContainers", "ephemeralContainers"]
        .into_iter()
        .flat_map(|list| container_names(pod, list))
        .collect();
    let name = match &debug.name {
        Some(name) if name.is_empty() => bail!("the debug container's name is empty"),
        Some(name) if taken.contains(name.as_str()) => {
            bail!("the pod already has a container named {name:?}: choose another name for the debug container")
        }
        Some(name) => name.clone(),
        None => loop {
            let name = random_name();
            if !taken.contains(name.as_str()) {
                break name;
            }
        },
    };
    let mut container = Map::new();
    container.insert("name".into(), name.into());
    container.insert("image".into(), debug.image.clone().into());
    container.insert("resources".into(), json!({}));
    container.insert("terminationMessagePath".into(), "/dev/termination-log".into());
    container.insert("terminationMessagePolicy".into(), "File".into());
    container.insert("imagePullPolicy".into(), pull_policy(&debug.image).into());
    if let Some(security_context) = security_context(debug)? {
        container.insert("securityContext".into(), security_context);
    }
    container.insert("stdin".into(), true.into());
    container.insert("tty".into(), true.into());
    let mut container = Value::Object(container);
    if let Some(custom) = &debug.custom {
        check_custom(custom)?;
        json_patch::merge(&mut container, custom);
    }
    if let Some(target) = &debug.target {
        let containers: Vec<&str> = container_names(pod, "containers").collect();
        if !containers.contains(&target.as_str()) {
            bail!(
                "the pod has no container {target:?} to target (its containers are {}): \
                 the API server refuses a targetContainerName that is not one of them",
                containers.join(", ")
            );
        }
        container["targetContainerName"] = target.clone().into();
    }
    Ok(container)
}

/// Refuses what kubectl refuses in a custom profile.
fn check_custom(custom: &Value) -> Result<()> {
    let Some(fields) = custom.as_object() else {
        bail!("the custom container spec must be a mapping (a partial container spec), not {custom}");
    };
    let set = |key: &str| fields.get(key).is_some_and(|v| !v.is_null() && v != "" && *v != json!([]));
    let refused: Vec<&str> =
        ["name", "image", "command", "lifecycle", "volumeDevices"].into_iter().filter(|k| set(k)).collect();
    if !refused.is_empty() {
        bail!(
            "the custom container spec sets {}: kubectl does not let a custom profile modify the name, command, \
             image, lifecycle or volume devices (use name and image of the debug container instead)",
            refused.join(", ")
        );
    }
    Ok(())
}

/// The securityContext: as written, else the profile's; `privileged` on top.
fn security_context(debug: &DebugContainer) -> Result<Option<Value>> {
    let mut context = match (&debug.security_context, debug.profile) {
        (Some(_), Some(_)) => bail!("give the debug container either a securityContext or a profile, not both"),
        (Some(written), None) => {
            if !written.is_object() && !written.is_null() {
                bail!("the debug container's securityContext must be a mapping, not {written}");
            }
            Some(written.clone()).filter(|c| !c.is_null())
        }
        (None, profile) => profile.unwrap_or_default().security_context(),
    };
    if debug.privileged {
        let context = context.get_or_insert_with(|| json!({}));
        context["privileged"] = true.into();
    }
    Ok(context)
}

/// What the API server defaults `imagePullPolicy` to: `Always` for `:latest`
/// or no tag (without a digest), `IfNotPresent` otherwise.
fn pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    RandomState::new().hash_one((COUNTER.fetch_add(1, Ordering::Relaxed), nanos, std::process::id()))
}

/// `debugger-` and 5 random characters from the alphabet Kubernetes uses for
/// generated names (no vowels, no look-alikes).
pub fn random_name() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut bits = random_u64();
    let suffix: String = (0..5)
        .map(|_| {
            let c = ALPHABET[(bits % ALPHABET.len() as u64) as usize] as char;
            bits /= ALPHABET.len() as u64;
            c
        })
        .collect();
    format!("debugger-{suffix}")
}

/// A random version-4 UUID, as the API server gives each request.
fn random_uid() -> String {
    let (high, low) = (random_u64(), random_u64());
    let high = (high & !0xf000) | 0x4000; // version 4
    let low = (low & !(0xc000 << 48)) | (0x8000 << 48); // RFC 4122 variant
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}})
    }

    fn debug(image: &str) -> DebugContainer {
        DebugContainer { image: image.into(), ..DebugContainer::default() }
    }

    #[test]
    fn the_request_adds_one_container_to_the_pod_as_given() {
        let review = admission_review(&pod(), &debug("busybox:1.36"), &Requester::default()).unwrap();
        let request = &review["request"];
        assert_eq!(request["operation"], "UPDATE");
        assert_eq!(request["subResource"], "ephemeralcontainers");
        assert_eq!(request["namespace"], "shop");
        assert_eq!(request["name"], "web");
        assert_eq!(request["oldObject"], pod());
        let added = &request["object"]["spec"]["ephemeralContainers"][0];
        assert!(added["name"].as_str().unwrap().starts_with("debugger-"));
        assert_eq!(added["name"].as_str().unwrap().len(), "debugger-".len() + 5);
        assert_eq!(added["imagePullPolicy"], "IfNotPresent");
        assert_eq!(
            added["securityContext"],
            json!({"capabilities": {"add": ["SYS_PTRACE"]}}),
            "general is the default"
        );
        let uid = request["uid"].as_str().unwrap();
        assert_eq!(uid.len(), 36);
        assert_eq!(&uid[14..15], "4");
    }

    #[test]
    fn profiles_and_privileged_set_the_security_context() {
        let with = |profile, privileged| {
            let d = DebugContainer { profile: Some(profile), privileged, ..debug("busybox") };
            ephemeral_container(&pod(), &d).unwrap().get("securityContext").cloned()
        };
        assert_eq!(with(Profile::Legacy, false), None);
        assert_eq!(with(Profile::Baseline, false), None);
        assert_eq!(with(Profile::Sysadmin, false), Some(json!({"privileged": true})));
        assert_eq!(with(Profile::Legacy, true), Some(json!({"privileged": true})));
        assert_eq!(with(Profile::Netadmin, false).unwrap()["capabilities"]["add"], json!(["NET_ADMIN", "NET_RAW"]));
        let restricted = with(Profile::Restricted, false).unwrap();
        assert_eq!(restricted["runAsNonRoot"], true);
        assert_eq!(restricted["allowPrivilegeEscalation"], false);
        assert_eq!(restricted["seccompProfile"]["type"], "RuntimeDefault");
    }

    #[test]
    fn custom_is_merged_last_and_cannot_rename() {
        let custom = json!({"env": [{"name": "A", "value": "1"}], "securityContext": {"runAsUser": 1000}});
        let d = DebugContainer { custom: Some(custom), profile: Some(Profile::Restricted), ..debug("busybox") };
        let c = ephemeral_container(&pod(), &d).unwrap();
        assert_eq!(c["env"][0]["name"], "A");
        assert_eq!(c["securityContext"]["runAsUser"], 1000);
        assert_eq!(c["securityContext"]["runAsNonRoot"], true, "the profile's fields stay");
        let rename = DebugContainer { custom: Some(json!({"image": "evil"})), ..debug("busybox") };
        assert!(ephemeral_container(&pod(), &rename).is_err());
    }

    #[test]
    fn pull_policy_follows_the_api_server_defaults() {
        assert_eq!(pull_policy("busybox"), "Always");
        assert_eq!(pull_policy("busybox:latest"), "Always");
        assert_eq!(pull_policy("localhost:5000/busybox"), "Always");
        assert_eq!(pull_policy("localhost:5000/busybox:1"), "IfNotPresent");
        assert_eq!(
            pull_policy("busybox@sha256:0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd"),
            "IfNotPresent"
        );
    }

    #[test]
    fn refuses_what_the_api_server_would() {
        let target = DebugContainer { target: Some("db".into()), ..debug("busybox") };
        let err = admission_review(&pod(), &target, &Requester::default()).unwrap_err().to_string();
        assert!(err.contains(r#"no container "db""#) && err.contains("app"), "{err}");
        let clash = DebugContainer { name: Some("app".into()), ..debug("busybox") };
        assert!(admission_review(&pod(), &clash, &Requester::default()).is_err());
        let both = DebugContainer { profile: Some(Profile::General), security_context: Some(json!({})), ..debug("b") };
        assert!(admission_review(&pod(), &both, &Requester::default()).is_err());
        assert!(admission_review(&json!({"kind": "Deployment"}), &debug("b"), &Requester::default()).is_err());
    }
}
