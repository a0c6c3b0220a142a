//! Borrowed views of the Pod fields the Pod Security Standards read, and
//! nothing else: strings borrow from the request bytes, every other field
//! is skipped unparsed. Field names follow the Kubernetes API (`camelCase`
//! in JSON, `snake_case` here).
//!
//! The SDK's light views (`egate_guest::pod`) leave out ports, probes,
//! lifecycle handlers, SELinux, AppArmor, Windows options and sysctls, so
//! this policy reads `request.object` itself; it reuses the SDK's volume
//! view, string type and `null` handling.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use egate_guest::pod::nullable;
use egate_guest::{Error, RawJson};

/// A string borrowed from the request when it has no escapes.
pub use egate_guest::pod::CowStr as Str;
/// A pod volume: its name and the kinds of source set on it (the SDK's view).
pub use egate_guest::pod::VolumeView as Volume;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A Pod, as far as the Pod Security Standards look.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Pod<'a> {
    /// Only the annotations some check reads.
    #[serde(borrow, deserialize_with = "nullable")]
    pub metadata: Metadata<'a>,
    /// The pod's spec.
    #[serde(borrow, deserialize_with = "nullable")]
    pub spec: PodSpec<'a>,
}

/// Object metadata: only annotations are read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Metadata<'a> {
    /// The AppArmor and seccomp annotations, every other one skipped.
    #[serde(borrow)]
    pub annotations: Annotations<'a>,
}

/// The parts of a PodSpec the checks read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpec<'a> {
    /// `initContainers`.
    #[serde(borrow, deserialize_with = "nullable")]
    pub init_containers: Vec<Container<'a>>,
    /// `containers`.
    #[serde(borrow, deserialize_with = "nullable")]
    pub containers: Vec<Container<'a>>,
    /// `ephemeralContainers`.
    #[serde(borrow, deserialize_with = "nullable")]
    pub ephemeral_containers: Vec<Container<'a>>,
    /// `securityContext`: judged itself, and inherited by containers.
    #[serde(borrow)]
    pub security_context: Option<PodSecurityContext<'a>>,
    /// `volumes`, by the kinds of source they have.
    #[serde(borrow, deserialize_with = "nullable")]
    pub volumes: Vec<Volume<'a>>,
    /// `hostNetwork`.
    pub host_network: Option<bool>,
    /// `hostPID`.
    #[serde(rename = "hostPID")]
    pub host_pid: Option<bool>,
    /// `hostIPC`.
    #[serde(rename = "hostIPC")]
    pub host_ipc: Option<bool>,
    /// `hostUsers`: `false` puts the pod in a user namespace, which relaxes
    /// some checks.
    pub host_users: Option<bool>,
    /// `os`: Windows pods are exempt from some restricted checks.
    #[serde(borrow)]
    pub os: Option<PodOs<'a>>,
    /// `runtimeClassName`: not judged, but a pod of an exempt runtime
    /// class is not judged at all.
    #[serde(borrow)]
    pub runtime_class_name: Option<Cow<'a, str>>,
}

impl PodSpec<'_> {
    /// `true` when `hostUsers: false` (KEP-127: the pod runs in its own
    /// user namespace).
    pub fn in_user_namespace(&self) -> bool {
        self.host_users == Some(false)
    }

    /// `true` when `os.name: windows`.
    pub fn is_windows(&self) -> bool {
        self.os.as_ref().is_some_and(|os| os.name == "windows")
    }
}

/// `spec.os`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PodOs<'a> {
    /// `linux` or `windows`.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
}

/// A container, init container or ephemeral container.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Container<'a> {
    /// Name, unique among all containers of the pod.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// Image: a changed image makes a pod UPDATE worth judging.
    #[serde(borrow)]
    pub image: Option<Cow<'a, str>>,
    /// `ports`.
    #[serde(deserialize_with = "nullable")]
    pub ports: Vec<ContainerPort>,
    /// `securityContext`.
    #[serde(borrow)]
    pub security_context: Option<SecurityContext<'a>>,
    /// `livenessProbe`.
    #[serde(borrow)]
    pub liveness_probe: Option<Handler<'a>>,
    /// `readinessProbe`.
    #[serde(borrow)]
    pub readiness_probe: Option<Handler<'a>>,
    /// `startupProbe`.
    #[serde(borrow)]
    pub startup_probe: Option<Handler<'a>>,
    /// `lifecycle`.
    #[serde(borrow)]
    pub lifecycle: Option<Lifecycle<'a>>,
}

/// `ports[]`: only `hostPort` is read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerPort {
    /// `hostPort`: unset or 0 means none.
    pub host_port: Option<i64>,
}

/// A probe or a lifecycle handler: only the actions that name a host.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Handler<'a> {
    /// `httpGet`.
    #[serde(borrow)]
    pub http_get: Option<HostAction<'a>>,
    /// `tcpSocket`.
    #[serde(borrow)]
    pub tcp_socket: Option<HostAction<'a>>,
}

/// `httpGet` or `tcpSocket`: only `host` is read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HostAction<'a> {
    /// `host`: empty means the pod's IP.
    #[serde(borrow)]
    pub host: Option<Cow<'a, str>>,
}

/// `lifecycle`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Lifecycle<'a> {
    /// `postStart`.
    #[serde(borrow)]
    pub post_start: Option<Handler<'a>>,
    /// `preStop`.
    #[serde(borrow)]
    pub pre_stop: Option<Handler<'a>>,
}

/// A container's `securityContext`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SecurityContext<'a> {
    /// `privileged`.
    pub privileged: Option<bool>,
    /// `allowPrivilegeEscalation`.
    pub allow_privilege_escalation: Option<bool>,
    /// `runAsNonRoot`; inherited from the pod when unset.
    pub run_as_non_root: Option<bool>,
    /// `runAsUser`; inherited from the pod when unset.
    pub run_as_user: Option<i64>,
    /// `capabilities`.
    #[serde(borrow)]
    pub capabilities: Option<Capabilities<'a>>,
    /// `seLinuxOptions`; inherited from the pod when unset.
    #[serde(borrow)]
    pub se_linux_options: Option<SeLinuxOptions<'a>>,
    /// `seccompProfile`; inherited from the pod when unset.
    #[serde(borrow)]
    pub seccomp_profile: Option<Profile<'a>>,
    /// `appArmorProfile`; inherited from the pod when unset.
    #[serde(borrow)]
    pub app_armor_profile: Option<Profile<'a>>,
    /// `windowsOptions`; `hostProcess` inherited from the pod when unset.
    pub windows_options: Option<WindowsOptions>,
    /// `procMount`.
    #[serde(borrow)]
    pub proc_mount: Option<Cow<'a, str>>,
}

/// The pod's `securityContext`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSecurityContext<'a> {
    /// `runAsNonRoot`.
    pub run_as_non_root: Option<bool>,
    /// `runAsUser`.
    pub run_as_user: Option<i64>,
    /// `seLinuxOptions`.
    #[serde(borrow)]
    pub se_linux_options: Option<SeLinuxOptions<'a>>,
    /// `seccompProfile`.
    #[serde(borrow)]
    pub seccomp_profile: Option<Profile<'a>>,
    /// `appArmorProfile`.
    #[serde(borrow)]
    pub app_armor_profile: Option<Profile<'a>>,
    /// `windowsOptions`.
    pub windows_options: Option<WindowsOptions>,
    /// `sysctls`.
    #[serde(borrow, deserialize_with = "nullable")]
    pub sysctls: Vec<Sysctl<'a>>,
}

/// `capabilities`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Capabilities<'a> {
    /// `add`.
    #[serde(borrow, deserialize_with = "nullable")]
    pub add: Vec<Str<'a>>,
    /// `drop`.
    #[serde(borrow, deserialize_with = "nullable")]
    pub drop: Vec<Str<'a>>,
}

/// `seLinuxOptions`: `level` is not restricted and not read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SeLinuxOptions<'a> {
    /// `type`.
    #[serde(borrow, rename = "type")]
    pub kind: Option<Cow<'a, str>>,
    /// `user`.
    #[serde(borrow)]
    pub user: Option<Cow<'a, str>>,
    /// `role`.
    #[serde(borrow)]
    pub role: Option<Cow<'a, str>>,
}

/// `seccompProfile` or `appArmorProfile`: only `type` is read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Profile<'a> {
    /// `type`: `RuntimeDefault`, `Localhost` or `Unconfined`.
    #[serde(borrow, rename = "type")]
    pub kind: Cow<'a, str>,
}

/// `windowsOptions`: only `hostProcess` is read.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WindowsOptions {
    /// `hostProcess`.
    pub host_process: Option<bool>,
}

/// `sysctls[]`: only `name` is read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Sysctl<'a> {
    /// `name`.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
}

/// `container.apparmor.security.beta.kubernetes.io/NAME`: the deprecated
/// AppArmor annotations, still judged by the baseline level.
pub const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";
/// `seccomp.security.alpha.kubernetes.io/pod`: a change of it makes a pod
/// UPDATE worth judging.
pub const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
/// `container.seccomp.security.alpha.kubernetes.io/NAME`: likewise.
pub const SECCOMP_CONTAINER_ANNOTATION_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// The annotations some check reads (AppArmor and seccomp ones), in key
/// order. Every other annotation, however large (such as
/// `kubectl.kubernetes.io/last-applied-configuration`), is skipped unread.
#[derive(Debug, Clone, Default)]
pub struct Annotations<'a>(pub Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Annotations<'a> {
    /// The value of `key`, if it is one of the annotations kept.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_ref())
    }

    /// The AppArmor annotations, as (key, value).
    pub fn app_armor(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().filter(|(k, _)| k.starts_with(APPARMOR_ANNOTATION_PREFIX)).map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    fn kept(key: &str) -> bool {
        key.starts_with(APPARMOR_ANNOTATION_PREFIX)
            || key.starts_with(SECCOMP_CONTAINER_ANNOTATION_PREFIX)
            || key == SECCOMP_POD_ANNOTATION
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Annotations<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AnnotationsVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for AnnotationsVisitor<'a> {
            type Value = Annotations<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of annotations")
            }
            fn visit_unit<E>(self) -> Result<Annotations<'a>, E> {
                Ok(Annotations::default())
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Annotations<'a>, M::Error> {
                let mut kept = Vec::new();
                while let Some(Str(key)) = map.next_key()? {
                    if Annotations::kept(&key) {
                        kept.push((key, map.next_value::<Str>()?.0));
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                kept.sort();
                Ok(Annotations(kept))
            }
        }
        deserializer.deserialize_any(AnnotationsVisitor(PhantomData))
    }
}

/// Parses `request.object` or `request.oldObject` as a [`Pod`]; a missing
/// or `null` object is `None`.
pub fn parse_pod<'a>(raw: Option<RawJson<'a>>, what: &str) -> Result<Option<Pod<'a>>, Error> {
    raw.filter(|raw| !raw.is_null()).map(|raw| raw.parse(&format!("request.{what} as a Pod"))).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_checks_need_and_borrows_strings() {
        let json = r#"{"metadata": {"name": "web", "annotations": {
                          "kubectl.kubernetes.io/last-applied-configuration": "{\"big\": true}",
                          "container.apparmor.security.beta.kubernetes.io/app": "runtime/default"}},
                       "spec": {"hostPID": true, "hostUsers": false, "os": {"name": "windows"},
                                "containers": [{"name": "app", "image": "nginx", "ports": [{"containerPort": 80, "hostPort": 8080}],
                                                "livenessProbe": {"httpGet": {"host": "10.0.0.1", "port": 80}},
                                                "lifecycle": {"preStop": {"tcpSocket": {"host": "h", "port": 1}}},
                                                "securityContext": {"capabilities": {"add": ["NET_RAW"]},
                                                                    "seLinuxOptions": {"type": "spc_t", "level": "s0"},
                                                                    "appArmorProfile": {"type": "Unconfined"},
                                                                    "windowsOptions": {"hostProcess": true}}}],
                                "securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]},
                                "volumes": [{"name": "root", "hostPath": {"path": "/"}}, {"name": "x", "secret": null, "emptyDir": {}}]}}"#;
        let pod: Pod = serde_json::from_str(json).unwrap();
        assert_eq!(pod.metadata.annotations.0.len(), 1, "unread annotations are skipped");
        assert!(matches!(pod.metadata.annotations.0[0].0, Cow::Borrowed(_)));
        assert_eq!(pod.spec.host_pid, Some(true));
        assert!(pod.spec.in_user_namespace() && pod.spec.is_windows());
        let app = &pod.spec.containers[0];
        assert!(matches!(app.name, Cow::Borrowed("app")));
        assert_eq!(app.ports[0].host_port, Some(8080));
        assert_eq!(app.liveness_probe.as_ref().unwrap().http_get.as_ref().unwrap().host.as_deref(), Some("10.0.0.1"));
        let sc = app.security_context.as_ref().unwrap();
        assert_eq!(&*sc.capabilities.as_ref().unwrap().add[0], "NET_RAW");
        assert_eq!(sc.se_linux_options.as_ref().unwrap().kind.as_deref(), Some("spc_t"));
        assert_eq!(sc.app_armor_profile.as_ref().unwrap().kind, "Unconfined");
        assert_eq!(sc.windows_options.unwrap().host_process, Some(true));
        assert_eq!(pod.spec.security_context.as_ref().unwrap().sysctls[0].name, "kernel.msgmax");
        assert_eq!(pod.spec.volumes[0].sources, ["hostPath"]);
        assert_eq!(pod.spec.volumes[1].sources, ["emptyDir"], "a null source is no source");
    }

    #[test]
    fn nulls_read_as_empty() {
        let pod: Pod = serde_json::from_str(
            r#"{"metadata": {"annotations": null}, "spec": {"containers": null, "volumes": null,
                "securityContext": {"sysctls": null}}}"#,
        )
        .unwrap();
        assert!(pod.spec.containers.is_empty() && pod.spec.volumes.is_empty());
        let pod: Pod = serde_json::from_str(r#"{"metadata": null, "spec": null}"#).unwrap();
        assert!(pod.spec.containers.is_empty());
    }

    #[test]
    fn a_pod_of_the_wrong_shape_is_an_error_naming_the_object() {
        let err = parse_pod(Some(RawJson::new(br#"{"spec": {"containers": 7}}"#)), "object").unwrap_err();
        assert!(err.message().starts_with("cannot read request.object as a Pod"), "{err}");
    }
}
