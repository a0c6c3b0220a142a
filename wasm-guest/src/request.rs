use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::Error;
use crate::pod::{ContainerView, PodView};

/// The AdmissionRequest a policy judges (the `request` member of an
/// AdmissionReview). Strings borrow from the request bytes; `object` and
/// `oldObject` stay raw until a policy asks for a view of them, so a policy
/// pays only for what it reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request<'a> {
    /// Identifier of this admission call.
    #[serde(borrow, default)]
    pub uid: Cow<'a, str>,
    /// Kind of the object (`Pod`).
    #[serde(borrow, default)]
    pub kind: GroupVersionKind<'a>,
    /// Resource being requested (`pods`).
    #[serde(borrow, default)]
    pub resource: GroupVersionResource<'a>,
    /// Subresource, such as `ephemeralcontainers`.
    #[serde(borrow, default)]
    pub sub_resource: Option<Cow<'a, str>>,
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    #[serde(borrow, default)]
    pub operation: Cow<'a, str>,
    /// Namespace of the object.
    #[serde(borrow, default)]
    pub namespace: Option<Cow<'a, str>>,
    /// Name of the object.
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    /// Who sent the request.
    #[serde(borrow, default)]
    pub user_info: UserInfo<'a>,
    /// Whether the request is a dry run.
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// The object as it would be stored, unparsed.
    #[serde(borrow, default)]
    pub object: Option<&'a RawValue>,
    /// The object as stored before this request (UPDATE, DELETE), unparsed.
    #[serde(borrow, default)]
    pub old_object: Option<&'a RawValue>,
}

/// Group, version and kind of an object.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GroupVersionKind<'a> {
    /// API group (`""` for the core group).
    #[serde(borrow, default)]
    pub group: Cow<'a, str>,
    /// API version (`v1`).
    #[serde(borrow, default)]
    pub version: Cow<'a, str>,
    /// Kind (`Pod`).
    #[serde(borrow, default)]
    pub kind: Cow<'a, str>,
}

/// Group, version and resource.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GroupVersionResource<'a> {
    /// API group.
    #[serde(borrow, default)]
    pub group: Cow<'a, str>,
    /// API version.
    #[serde(borrow, default)]
    pub version: Cow<'a, str>,
    /// Resource (`pods`).
    #[serde(borrow, default)]
    pub resource: Cow<'a, str>,
}

/// The requesting user.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserInfo<'a> {
    /// User name (`alice`, `system:serviceaccount:ns:name`).
    #[serde(borrow, default)]
    pub username: Cow<'a, str>,
    /// Groups the user belongs to.
    #[serde(borrow, default)]
    pub groups: Vec<Cow<'a, str>>,
}

impl UserInfo<'_> {
    /// Whether the user belongs to `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

impl<'a> Request<'a> {
    /// Parses AdmissionRequest JSON (what the host hands a guest).
    pub fn parse(json: &'a [u8]) -> Result<Self, Error> {
        serde_json::from_slice(json).map_err(|e| Error::json("the admission request", e))
    }

    /// `true` for an UPDATE of `pods/ephemeralcontainers`: what `kubectl debug` sends.
    pub fn is_ephemeral_container_update(&self) -> bool {
        self.resource.resource == "pods"
            && self.sub_resource.as_deref() == Some("ephemeralcontainers")
            && self.operation == "UPDATE"
    }

    /// A light view of `object`, and the names of the ephemeral containers
    /// `oldObject` already had: what judging new debug containers takes.
    /// Missing objects are `None`.
    pub fn pods(&self) -> Result<PodPair<'a>, Error> {
        let old: Option<OldPodNames> = parse_raw(self.old_object, "oldObject")?;
        Ok(PodPair {
            object: parse_raw(self.object, "object")?,
            old_ephemeral_names: old.map(|old| old.spec.ephemeral_containers.into_iter().map(|c| c.name).collect()),
        })
    }

    /// A light view of `oldObject`, for policies that compare more than
    /// ephemeral container names.
    pub fn old_pod(&self) -> Result<Option<PodView<'a>>, Error> {
        parse_raw(self.old_object, "oldObject")
    }

    /// The whole `object` as a typed k8s-openapi `Pod`. Costs tens of
    /// microseconds inside wasm for a large pod: prefer [`Request::pods`]
    /// on hot paths.
    #[cfg(feature = "typed")]
    pub fn typed_pod(&self) -> Result<Option<k8s_openapi::api::core::v1::Pod>, Error> {
        parse_raw(self.object, "object")
    }

    /// The whole `oldObject` as a typed k8s-openapi `Pod`.
    #[cfg(feature = "typed")]
    pub fn typed_old_pod(&self) -> Result<Option<k8s_openapi::api::core::v1::Pod>, Error> {
        parse_raw(self.old_object, "oldObject")
    }
}

fn parse_raw<'a, T: Deserialize<'a>>(raw: Option<&'a RawValue>, what: &str) -> Result<Option<T>, Error> {
    match raw {
        Some(raw) if raw.get() != "null" => {
            serde_json::from_str(raw.get()).map(Some).map_err(|e| Error::json(&format!("request.{what} as a Pod"), e))
        }
        _ => Ok(None),
    }
}

/// `object` of a request as a light Pod view, with what `oldObject` says
/// about ephemeral containers.
#[derive(Debug, Clone, Default)]
pub struct PodPair<'a> {
    /// The pod as it would be stored.
    pub object: Option<PodView<'a>>,
    /// Names of the ephemeral containers of `oldObject`; `None` without one.
    pub old_ephemeral_names: Option<Vec<Cow<'a, str>>>,
}

/// `oldObject`, read only for its ephemeral containers' names.
#[derive(Deserialize, Default)]
#[serde(default)]
struct OldPodNames<'a> {
    #[serde(borrow)]
    spec: OldSpecNames<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct OldSpecNames<'a> {
    #[serde(borrow)]
    ephemeral_containers: Vec<NameOnly<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NameOnly<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

impl<'a> PodPair<'a> {
    /// Ephemeral containers present in `object` and absent, by name, from
    /// `oldObject`: the ones this request adds. Without an `oldObject`
    /// (a CREATE) every ephemeral container is new.
    pub fn new_ephemeral_containers(&self) -> impl Iterator<Item = &ContainerView<'a>> {
        let old = self.old_ephemeral_names.as_deref();
        self.object
            .iter()
            .flat_map(|pod| pod.spec.ephemeral_containers.iter())
            .filter(move |c| old.is_none_or(|old| !old.contains(&c.name)))
    }

    /// The pod-level security context of `object`, if any.
    pub fn pod_security_context(&self) -> Option<&crate::pod::PodSecurityContextView<'a>> {
        self.object.as_ref().and_then(|p| p.spec.security_context.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBUG: &[u8] = br#"{
      "uid": "705ab4f5", "operation": "UPDATE",
      "kind": {"group": "", "version": "v1", "kind": "Pod"},
      "resource": {"group": "", "version": "v1", "resource": "pods"},
      "subResource": "ephemeralcontainers", "namespace": "shop", "name": "web",
      "userInfo": {"username": "alice", "groups": ["dev", "system:authenticated"], "extra": {"x": ["y"]}},
      "object": {"metadata": {"name": "web", "labels": {"app": "web"}},
                 "spec": {"containers": [{"name": "app", "image": "nginx"}],
                          "ephemeralContainers": [{"name": "old", "image": "busybox"},
                                                  {"name": "dbg\u0031", "image": "busybox", "targetContainerName": "app"}]}},
      "oldObject": {"metadata": {"name": "web"},
                    "spec": {"containers": [{"name": "app", "image": "nginx"}],
                             "ephemeralContainers": [{"name": "old", "image": "busybox"}]}}
    }"#;

    #[test]
    fn reads_routing_facts_and_ignores_unknown_fields() {
        let r = Request::parse(DEBUG).unwrap();
        assert!(r.is_ephemeral_container_update());
        assert_eq!(r.namespace.as_deref(), Some("shop"));
        assert!(r.user_info.in_group("dev"));
        assert!(!r.user_info.in_group("sre"));
    }

    #[test]
    fn new_ephemeral_containers_are_those_absent_from_old_object() {
        let r = Request::parse(DEBUG).unwrap();
        let pods = r.pods().unwrap();
        let new: Vec<_> = pods.new_ephemeral_containers().map(|c| c.name.to_string()).collect();
        // The escaped name still compares equal once decoded.
        assert_eq!(new, ["dbg1"]);
    }

    #[test]
    fn without_old_object_every_ephemeral_container_is_new() {
        let r = Request::parse(
            br#"{"object": {"spec": {"containers": [], "ephemeralContainers": [{"name": "a"}, {"name": "b"}]}}}"#,
        )
        .unwrap();
        assert_eq!(r.pods().unwrap().new_ephemeral_containers().count(), 2);
    }

    #[test]
    fn an_object_of_the_wrong_shape_is_an_error() {
        let r = Request::parse(br#"{"object": {"spec": {"containers": 7}}}"#).unwrap();
        let err = r.pods().unwrap_err();
        assert!(err.message().contains("request.object"), "{err}");
    }

    #[cfg(feature = "typed")]
    #[test]
    fn typed_pod_reads_the_whole_object() {
        let r = Request::parse(DEBUG).unwrap();
        let pod = r.typed_pod().unwrap().unwrap();
        let spec = pod.spec.unwrap();
        assert_eq!(spec.ephemeral_containers.unwrap()[1].target_container_name.as_deref(), Some("app"));
    }
}
