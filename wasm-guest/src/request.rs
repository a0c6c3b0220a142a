use std::borrow::Cow;

use serde::Deserialize;

use crate::Error;
use crate::pod::{ContainerView, PodView};

/// The AdmissionRequest a policy judges (the `request` member of an
/// AdmissionReview). Strings borrow from the request bytes; `object` and
/// `oldObject` stay raw until a policy asks for a view of them, so a policy
/// pays only for what it reads.
///
/// Parsing finds the members with [`egate_json`], which skips what it does
/// not read without validating it: egate hands guests only requests it has
/// already parsed as JSON. Each member a policy reads is then parsed, and
/// checked, by `serde_json`.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    /// Identifier of this admission call.
    pub uid: Cow<'a, str>,
    /// Kind of the object (`Pod`).
    pub kind: GroupVersionKind<'a>,
    /// Resource being requested (`pods`).
    pub resource: GroupVersionResource<'a>,
    /// Subresource, such as `ephemeralcontainers`.
    pub sub_resource: Option<Cow<'a, str>>,
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub operation: Cow<'a, str>,
    /// Namespace of the object.
    pub namespace: Option<Cow<'a, str>>,
    /// Name of the object.
    pub name: Option<Cow<'a, str>>,
    /// Who sent the request.
    pub user_info: UserInfo<'a>,
    /// Whether the request is a dry run.
    pub dry_run: Option<bool>,
    /// The object as it would be stored, unparsed.
    pub object: Option<RawJson<'a>>,
    /// The object as stored before this request (UPDATE, DELETE), unparsed.
    pub old_object: Option<RawJson<'a>>,
    /// What the host prepared from the cluster for a policy that declares
    /// inputs (`egateInputs`, see [`egate_abi::inputs`]), unparsed.
    pub inputs: Option<RawJson<'a>>,
    /// [`Request::pods`], read once however many policies ask.
    pods: std::cell::OnceCell<Result<PodPair<'a>, Error>>,
    /// Where each object and array of the request ends: reading the views
    /// jumps over what it skips instead of scanning it again.
    index: egate_json::Index<'a>,
}

/// The JSON text of a value of the request, not parsed yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawJson<'a>(&'a [u8]);

impl<'a> RawJson<'a> {
    /// Wraps JSON text.
    pub fn new(json: &'a [u8]) -> Self {
        Self(json)
    }

    /// Whether the value is `null`.
    pub fn is_null(&self) -> bool {
        egate_json::is_null(self.0)
    }

    /// The JSON text.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// Parses the value as a `T`; `what` names it in the error
    /// (`request.object as a Pod`).
    pub fn parse<T: Deserialize<'a>>(&self, what: &str) -> Result<T, Error> {
        serde_json::from_slice(self.0).map_err(|e| Error::json(what, e))
    }
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
    /// Parses AdmissionRequest JSON (what the host hands a guest). A member
    /// of the wrong type is an error naming it.
    pub fn parse(json: &'a [u8]) -> Result<Self, Error> {
        let index = egate_json::Index::new(json);
        let members = egate_json::members_in(json, Some(&index))
            .ok_or_else(|| Error::new("cannot read the admission request: it is not a JSON object"))?;
        let mut request = Request::default();
        for (key, value) in members {
            let value = RawJson(value);
            match key.name().as_deref().unwrap_or_default() {
                "uid" => request.uid = value.parse("request.uid")?,
                "kind" => request.kind = value.parse("request.kind")?,
                "resource" => request.resource = value.parse("request.resource")?,
                "subResource" => request.sub_resource = value.parse("request.subResource")?,
                "operation" => request.operation = value.parse("request.operation")?,
                "namespace" => request.namespace = value.parse("request.namespace")?,
                "name" => request.name = value.parse("request.name")?,
                "userInfo" => request.user_info = value.parse("request.userInfo")?,
                "dryRun" => request.dry_run = value.parse("request.dryRun")?,
                "object" => request.object = Some(value),
                "oldObject" => request.old_object = Some(value),
                egate_abi::inputs::MEMBER => request.inputs = Some(value),
                _ => {}
            }
        }
        request.index = index;
        Ok(request)
    }

    /// `true` for an UPDATE of `pods/ephemeralcontainers`: what `kubectl debug` sends.
    pub fn is_ephemeral_container_update(&self) -> bool {
        self.resource.resource == "pods"
            && self.sub_resource.as_deref() == Some("ephemeralcontainers")
            && self.operation == "UPDATE"
    }

    /// A light view of `object`, and the names of the ephemeral containers
    /// `oldObject` already had: what judging new debug containers takes.
    /// Missing objects are `None`. Read once, when first asked for: the
    /// policies of egate's built-in library share it.
    pub fn pods(&self) -> Result<&PodPair<'a>, Error> {
        self.pods.get_or_init(|| self.read_pods()).as_ref().map_err(Clone::clone)
    }

    fn read_pods(&self) -> Result<PodPair<'a>, Error> {
        let old_ephemeral_names = present(self.old_object)
            .map(|raw| ephemeral_container_names(raw.0, &self.index).map_err(|e| e.within("request.oldObject")))
            .transpose()?;
        Ok(PodPair { object: self.view(self.object, "request.object")?, old_ephemeral_names })
    }

    /// The live debug grants of the request's namespace that select its
    /// pod, which the host hands a policy that declares the `debugGrants`
    /// input (`egate_abi::declare_inputs!("debugGrants")`). An error when
    /// the request carries none: the policy did not declare the input, or
    /// a test gave no `egateInputs`.
    pub fn debug_grants(&self) -> Result<Vec<egate_abi::inputs::GrantInput>, Error> {
        let inputs = self.inputs.ok_or_else(|| {
            Error::new("the request carries no egateInputs: declare the input with declare_inputs!(\"debugGrants\")")
        })?;
        let grants = egate_json::member(inputs.0, egate_abi::inputs::Input::DebugGrants.name())
            .ok_or_else(|| Error::new("request.egateInputs has no debugGrants"))?;
        RawJson(grants).parse("request.egateInputs.debugGrants")
    }

    /// A light view of `oldObject`, for policies that compare more than
    /// ephemeral container names.
    pub fn old_pod(&self) -> Result<Option<PodView<'a>>, Error> {
        self.view(self.old_object, "request.oldObject")
    }

    /// The light view of `object` or `oldObject`, read with the request's index.
    fn view(&self, raw: Option<RawJson<'a>>, what: &str) -> Result<Option<PodView<'a>>, Error> {
        present(raw).map(|raw| PodView::parse_in(raw.0, Some(&self.index)).map_err(|e| e.within(what))).transpose()
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

#[cfg(feature = "typed")]
fn parse_raw<'a, T: Deserialize<'a>>(raw: Option<RawJson<'a>>, what: &str) -> Result<Option<T>, Error> {
    present(raw).map(|raw| raw.parse(&format!("request.{what} as a Pod"))).transpose()
}

/// The object, unless it is missing or `null`.
fn present(raw: Option<RawJson<'_>>) -> Option<RawJson<'_>> {
    raw.filter(|raw| !raw.is_null())
}

/// `spec.ephemeralContainers[*].name` of a pod, skipping everything else.
fn ephemeral_container_names<'a>(pod: &'a [u8], index: &egate_json::Index<'a>) -> Result<Vec<Cow<'a, str>>, Error> {
    if egate_json::members(pod).is_none() {
        return Err(Error::new("it is not a JSON object"));
    }
    let index = Some(index);
    let list = egate_json::member_in(pod, "spec", index)
        .and_then(|spec| egate_json::member_in(spec, "ephemeralContainers", index));
    let Some(list) = list.filter(|list| !egate_json::is_null(list)) else { return Ok(Vec::new()) };
    if !list.starts_with(b"[") {
        return Err(Error::new("spec.ephemeralContainers is not a list"));
    }
    egate_json::elements_in(list, index)
        .map(|container| match egate_json::member_in(container, "name", index) {
            Some(name) => serde_json::from_slice(name).map_err(|e| Error::json("spec.ephemeralContainers[].name", e)),
            None => Ok(Cow::Borrowed("")),
        })
        .collect()
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
    fn escaped_keys_are_read_as_their_names() {
        let r = Request::parse(
            br#"{"\u006fbject": {"sp\u0065c": {"ephemeralContainers": [{"name": "dbg", "image": "busybox"}]}}}"#,
        )
        .unwrap();
        assert_eq!(r.pods().unwrap().new_ephemeral_containers().count(), 1);
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
