//! Light views of a Pod: only the fields policies read, strings borrowed
//! from the request, every other field skipped unparsed. Field names follow
//! the Kubernetes API (`camelCase` in JSON, `snake_case` here).

use std::borrow::Cow;
use std::collections::BTreeMap;

pub use egate_abi::CowStr;
use serde::Deserialize;

use crate::{Error, ImageRef};

/// A Pod, as far as policies look.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PodView<'a> {
    /// Name, namespace, labels, annotations.
    #[serde(borrow)]
    pub metadata: MetadataView<'a>,
    /// The pod's spec.
    #[serde(borrow)]
    pub spec: PodSpecView<'a>,
}

impl<'a> PodView<'a> {
    /// Reads a Pod's JSON text (valid JSON, as egate hands it), parsing only
    /// `metadata`'s name, namespace, labels and annotations and the spec;
    /// `status` and the rest of `metadata` are skipped unparsed.
    pub fn parse(pod: &'a [u8]) -> Result<Self, Error> {
        Self::parse_in(pod, None)
    }

    /// [`PodView::parse`] of a pod inside the request `index` was built from.
    pub(crate) fn parse_in(pod: &'a [u8], index: Option<&egate_json::Index<'a>>) -> Result<Self, Error> {
        let members = egate_json::members_in(pod, index).ok_or_else(|| Error::new("it is not a JSON object"))?;
        let mut view = PodView::default();
        for (key, value) in members {
            match key.name().as_deref().unwrap_or_default() {
                "metadata" => view.metadata = MetadataView::parse(value, index)?,
                "spec" => view.spec = read_field("spec", value)?,
                _ => {}
            }
        }
        Ok(view)
    }
}

/// Object metadata.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MetadataView<'a> {
    /// Name.
    #[serde(borrow)]
    pub name: Option<Cow<'a, str>>,
    /// Namespace.
    #[serde(borrow)]
    pub namespace: Option<Cow<'a, str>>,
    /// Labels.
    #[serde(borrow)]
    pub labels: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
    /// Annotations.
    #[serde(borrow)]
    pub annotations: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
}

impl<'a> MetadataView<'a> {
    fn parse(metadata: &'a [u8], index: Option<&egate_json::Index<'a>>) -> Result<Self, Error> {
        if egate_json::is_null(metadata) {
            return Ok(Self::default());
        }
        let members =
            egate_json::members_in(metadata, index).ok_or_else(|| Error::new("metadata is not a JSON object"))?;
        let mut view = MetadataView::default();
        for (key, value) in members {
            match key.name().as_deref().unwrap_or_default() {
                "name" => view.name = read_field("metadata.name", value)?,
                "namespace" => view.namespace = read_field("metadata.namespace", value)?,
                "labels" => view.labels = read_field::<Option<_>>("metadata.labels", value)?.unwrap_or_default(),
                "annotations" => {
                    view.annotations = read_field::<Option<_>>("metadata.annotations", value)?.unwrap_or_default()
                }
                _ => {}
            }
        }
        Ok(view)
    }
}

/// Parses one member's value, naming it in the error.
fn read_field<'a, T: Deserialize<'a>>(field: &str, value: &'a [u8]) -> Result<T, Error> {
    serde_json::from_slice(value).map_err(|e| Error::json(field, e))
}

/// The parts of a PodSpec policies judge.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpecView<'a> {
    /// Regular containers.
    #[serde(borrow, deserialize_with = "nullable")]
    pub containers: Vec<ContainerView<'a>>,
    /// Init containers.
    #[serde(borrow, deserialize_with = "nullable")]
    pub init_containers: Vec<ContainerView<'a>>,
    /// Ephemeral (debug) containers.
    #[serde(borrow, deserialize_with = "nullable")]
    pub ephemeral_containers: Vec<ContainerView<'a>>,
    /// Pod-level security context, inherited by containers.
    #[serde(borrow)]
    pub security_context: Option<PodSecurityContextView<'a>>,
    /// Volumes, by name.
    #[serde(borrow, deserialize_with = "nullable")]
    pub volumes: Vec<VolumeView<'a>>,
    /// `hostNetwork`.
    pub host_network: Option<bool>,
    /// `hostPID`.
    #[serde(rename = "hostPID")]
    pub host_pid: Option<bool>,
    /// `hostIPC`.
    #[serde(rename = "hostIPC")]
    pub host_ipc: Option<bool>,
}

/// A container, init container or ephemeral container.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerView<'a> {
    /// Name, unique within the pod.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// Image reference as written.
    #[serde(borrow)]
    pub image: Option<Cow<'a, str>>,
    /// For an ephemeral container: the container whose namespaces it joins.
    #[serde(borrow)]
    pub target_container_name: Option<Cow<'a, str>>,
    /// Container security context.
    #[serde(borrow)]
    pub security_context: Option<SecurityContextView<'a>>,
    /// Environment variables.
    #[serde(borrow, deserialize_with = "nullable")]
    pub env: Vec<EnvVarView<'a>>,
    /// Environment sources.
    #[serde(borrow, deserialize_with = "nullable")]
    pub env_from: Vec<EnvFromView<'a>>,
    /// Volume mounts.
    #[serde(borrow, deserialize_with = "nullable")]
    pub volume_mounts: Vec<VolumeMountView<'a>>,
}

impl ContainerView<'_> {
    /// The image reference, parsed and normalised. A missing image is an error.
    pub fn image_ref(&self) -> Result<ImageRef, Error> {
        match &self.image {
            Some(image) => ImageRef::parse(image),
            None => Err(Error::new(format!("container {:?} has no image", self.name))),
        }
    }

    /// The security context the container runs with: its own values, else
    /// those it inherits from the pod.
    pub fn effective_security_context<'s>(
        &'s self,
        pod: Option<&'s PodSecurityContextView<'_>>,
    ) -> EffectiveSecurityContext<'s> {
        let own = self.security_context.as_ref();
        EffectiveSecurityContext {
            privileged: own.and_then(|c| c.privileged),
            allow_privilege_escalation: own.and_then(|c| c.allow_privilege_escalation),
            read_only_root_filesystem: own.and_then(|c| c.read_only_root_filesystem),
            run_as_non_root: own.and_then(|c| c.run_as_non_root).or(pod.and_then(|p| p.run_as_non_root)),
            run_as_user: own.and_then(|c| c.run_as_user).or(pod.and_then(|p| p.run_as_user)),
            run_as_group: own.and_then(|c| c.run_as_group).or(pod.and_then(|p| p.run_as_group)),
            seccomp_profile: own
                .and_then(|c| c.seccomp_profile.as_ref())
                .or(pod.and_then(|p| p.seccomp_profile.as_ref())),
            capabilities: own.and_then(|c| c.capabilities.as_ref()),
        }
    }
}

/// A container's securityContext.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SecurityContextView<'a> {
    /// `privileged`.
    pub privileged: Option<bool>,
    /// `allowPrivilegeEscalation`.
    pub allow_privilege_escalation: Option<bool>,
    /// `readOnlyRootFilesystem`.
    pub read_only_root_filesystem: Option<bool>,
    /// `runAsNonRoot`.
    pub run_as_non_root: Option<bool>,
    /// `runAsUser`.
    pub run_as_user: Option<i64>,
    /// `runAsGroup`.
    pub run_as_group: Option<i64>,
    /// `capabilities`.
    #[serde(borrow)]
    pub capabilities: Option<CapabilitiesView<'a>>,
    /// `seccompProfile`.
    #[serde(borrow)]
    pub seccomp_profile: Option<SeccompProfileView<'a>>,
    /// `procMount`.
    #[serde(borrow)]
    pub proc_mount: Option<Cow<'a, str>>,
}

/// A pod's securityContext (the fields containers inherit).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSecurityContextView<'a> {
    /// `runAsNonRoot`.
    pub run_as_non_root: Option<bool>,
    /// `runAsUser`.
    pub run_as_user: Option<i64>,
    /// `runAsGroup`.
    pub run_as_group: Option<i64>,
    /// `seccompProfile`.
    #[serde(borrow)]
    pub seccomp_profile: Option<SeccompProfileView<'a>>,
}

/// Linux capabilities added and dropped.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CapabilitiesView<'a> {
    /// Capabilities added.
    #[serde(borrow, deserialize_with = "nullable")]
    pub add: Vec<Cow<'a, str>>,
    /// Capabilities dropped.
    #[serde(borrow, deserialize_with = "nullable")]
    pub drop: Vec<Cow<'a, str>>,
}

/// A seccomp profile.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SeccompProfileView<'a> {
    /// `RuntimeDefault`, `Localhost` or `Unconfined`.
    #[serde(borrow, rename = "type")]
    pub kind: Cow<'a, str>,
    /// Profile path for `Localhost`.
    #[serde(borrow)]
    pub localhost_profile: Option<Cow<'a, str>>,
}

/// The security context a container runs with, after inheritance.
#[derive(Debug, Clone, Copy, Default)]
pub struct EffectiveSecurityContext<'s> {
    /// Container only.
    pub privileged: Option<bool>,
    /// Container only.
    pub allow_privilege_escalation: Option<bool>,
    /// Container only.
    pub read_only_root_filesystem: Option<bool>,
    /// Container, else pod.
    pub run_as_non_root: Option<bool>,
    /// Container, else pod.
    pub run_as_user: Option<i64>,
    /// Container, else pod.
    pub run_as_group: Option<i64>,
    /// Container, else pod.
    pub seccomp_profile: Option<&'s SeccompProfileView<'s>>,
    /// Container only.
    pub capabilities: Option<&'s CapabilitiesView<'s>>,
}

/// An environment variable; only where its value comes from is kept.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EnvVarView<'a> {
    /// Variable name.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// Source of the value, when not a literal.
    #[serde(borrow)]
    pub value_from: Option<EnvVarSourceView<'a>>,
}

/// Where an environment variable's value comes from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EnvVarSourceView<'a> {
    /// A key of a Secret.
    #[serde(borrow)]
    pub secret_key_ref: Option<KeyRefView<'a>>,
    /// A key of a ConfigMap.
    #[serde(borrow)]
    pub config_map_key_ref: Option<KeyRefView<'a>>,
}

/// A reference to one key of a Secret or ConfigMap.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct KeyRefView<'a> {
    /// Object name.
    #[serde(borrow)]
    pub name: Option<Cow<'a, str>>,
    /// Key.
    #[serde(borrow)]
    pub key: Cow<'a, str>,
}

/// A whole Secret or ConfigMap exposed as environment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EnvFromView<'a> {
    /// A Secret.
    #[serde(borrow)]
    pub secret_ref: Option<NameRefView<'a>>,
    /// A ConfigMap.
    #[serde(borrow)]
    pub config_map_ref: Option<NameRefView<'a>>,
}

/// A reference to an object by name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NameRefView<'a> {
    /// Object name.
    #[serde(borrow)]
    pub name: Option<Cow<'a, str>>,
}

/// A volume mount.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VolumeMountView<'a> {
    /// Name of the pod volume.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// Where it is mounted.
    #[serde(borrow)]
    pub mount_path: Cow<'a, str>,
}

/// Reads `null` as the default value, as the Kubernetes API does (a list
/// written `null` is an empty list): use it with `deserialize_with` in a
/// view of your own.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A pod volume: its name and which kinds of source it has.
#[derive(Debug, Clone, Default)]
pub struct VolumeView<'a> {
    /// Volume name.
    pub name: Cow<'a, str>,
    /// The source keys set on it, not null (`secret`, `hostPath`,
    /// `projected`, ...); their contents are skipped unparsed.
    pub sources: Vec<Cow<'a, str>>,
}

impl VolumeView<'_> {
    /// Whether a source of this kind (`hostPath`, `secret`, ...) is set.
    pub fn has(&self, kind: &str) -> bool {
        self.sources.iter().any(|s| s == kind)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for VolumeView<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(VolumeVisitor)
    }
}

/// Every key but `name` of a Volume is its source; source contents are
/// skipped unparsed.
struct VolumeVisitor;

impl<'de> serde::de::Visitor<'de> for VolumeVisitor {
    type Value = VolumeView<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a pod volume")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut volume = VolumeView::default();
        while let Some(key) = map.next_key::<CowStr<'de>>()? {
            if key.0 == "name" {
                volume.name = map.next_value::<CowStr<'de>>()?.0;
            } else if map.next_value::<Option<serde::de::IgnoredAny>>()?.is_some() {
                volume.sources.push(key.0);
            }
        }
        Ok(volume)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_values_win_over_pod_values() {
        let pod: PodView = serde_json::from_str(
            r#"{"spec": {"securityContext": {"runAsNonRoot": true, "runAsUser": 1000},
                         "ephemeralContainers": [{"name": "dbg", "securityContext": {"runAsUser": 0}}]}}"#,
        )
        .unwrap();
        let c = &pod.spec.ephemeral_containers[0];
        let effective = c.effective_security_context(pod.spec.security_context.as_ref());
        assert_eq!(effective.run_as_user, Some(0));
        assert_eq!(effective.run_as_non_root, Some(true));
        assert_eq!(effective.privileged, None);
    }

    #[test]
    fn volume_sources_are_the_keys_besides_name() {
        let pod: PodView = serde_json::from_str(
            r#"{"spec": {"volumes": [{"name": "creds", "secret": {"secretName": "db"}},
                                     {"name": "tmp", "emptyDir": {}}]}}"#,
        )
        .unwrap();
        assert_eq!(pod.spec.volumes[0].name, "creds");
        assert_eq!(pod.spec.volumes[0].sources, ["secret"]);
        assert_eq!(pod.spec.volumes[1].sources, ["emptyDir"]);
    }
}
