//! What a request asks this policy to judge, as Pod Security Admission
//! decides it: a whole pod (`pods` CREATE, or an UPDATE that changes what
//! the checks read), or only the ephemeral containers a
//! `pods/ephemeralcontainers` UPDATE adds (`kubectl debug`), or nothing.

use egate_guest::{Error, Request};

use crate::view::{
    APPARMOR_ANNOTATION_PREFIX, Annotations, Container, Metadata, Pod, PodSecurityContext, PodSpec,
    SECCOMP_CONTAINER_ANNOTATION_PREFIX, SECCOMP_POD_ANNOTATION, parse_pod,
};

/// What to judge.
#[derive(Debug)]
pub enum Subject<'a> {
    /// Nothing Pod Security Admission would judge: another resource or
    /// operation, a subresource such as `status`, a pod UPDATE that changes
    /// no image (nor a seccomp annotation), or an ephemeral-containers
    /// UPDATE that adds none.
    Nothing,
    /// The whole pod: every container and every pod-level field.
    WholePod(Pod<'a>),
    /// The ephemeral containers the request adds, as a pod of their own:
    /// each carries the pod-level securityContext values it inherits
    /// (runAsNonRoot, runAsUser, seccompProfile, seLinuxOptions,
    /// appArmorProfile, windowsOptions.hostProcess), and the pod keeps
    /// only what the container checks read of it (`hostUsers`, `os`, the
    /// AppArmor and seccomp annotations naming those containers, the pod's
    /// seccomp annotation) and its `runtimeClassName`.
    NewEphemeralContainers(Pod<'a>),
}

/// Whether Pod Security Admission looks at `request` at all: a `pods`
/// CREATE or UPDATE, of the pod itself or of a subresource that can change
/// its spec. Only such requests can be exempt.
pub fn concerns(request: &Request) -> bool {
    let sub_resource = request.sub_resource.as_deref().unwrap_or_default();
    request.resource.resource == "pods"
        && matches!(request.operation.as_ref(), "CREATE" | "UPDATE")
        && !IGNORED_SUBRESOURCES.contains(&sub_resource)
}

/// Reads `request` and decides what it asks to judge.
pub fn of<'a>(request: &Request<'a>) -> Result<Subject<'a>, Error> {
    if !concerns(request) {
        return Ok(Subject::Nothing);
    }
    match request.sub_resource.as_deref().unwrap_or_default() {
        "ephemeralcontainers" => new_ephemeral_containers(request),
        // The pod itself, and any other subresource (`resize`, or one added
        // to Kubernetes later): judged as a pod, so an unknown way to change
        // the spec fails safe, as in Pod Security Admission.
        _ => whole_pod(request, request.operation == "UPDATE"),
    }
}

/// Pod subresources Pod Security Admission does not judge: they cannot
/// change the pod spec.
const IGNORED_SUBRESOURCES: [&str; 8] =
    ["attach", "binding", "eviction", "exec", "log", "portforward", "proxy", "status"];

fn object<'a>(request: &Request<'a>) -> Result<Pod<'a>, Error> {
    parse_pod(request.object, "object")?.ok_or_else(|| {
        Error::new(format!("request.object is missing: a {} of pods carries the pod to judge", request.operation))
    })
}

fn whole_pod<'a>(request: &Request<'a>, update: bool) -> Result<Subject<'a>, Error> {
    let pod = object(request)?;
    let old = if update { parse_pod(request.old_object, "oldObject")? } else { None };
    if old.is_some_and(|old| !significant_update(&pod, &old)) {
        return Ok(Subject::Nothing);
    }
    Ok(Subject::WholePod(pod))
}

/// Pod Security Admission's `isSignificantPodUpdate`: of a running pod,
/// only images (and the deprecated seccomp annotations) can change what
/// the checks read, so an UPDATE that changes neither (labels,
/// annotations, tolerations...) is allowed without judging, even for a
/// pod admitted under an older or laxer policy.
pub fn significant_update(pod: &Pod, old: &Pod) -> bool {
    fn annotation<'p>(pod: &'p Pod, key: &str) -> &'p str {
        pod.metadata.annotations.get(key).unwrap_or_default()
    }
    let changed = |c: &Container, o: &Container| {
        let key = format!("{SECCOMP_CONTAINER_ANNOTATION_PREFIX}{}", c.name);
        c.image.as_deref().unwrap_or_default() != o.image.as_deref().unwrap_or_default()
            || annotation(pod, &key) != annotation(old, &key)
    };
    let (spec, old_spec) = (&pod.spec, &old.spec);
    annotation(pod, SECCOMP_POD_ANNOTATION) != annotation(old, SECCOMP_POD_ANNOTATION)
        || spec.containers.len() != old_spec.containers.len()
        || spec.init_containers.len() != old_spec.init_containers.len()
        || spec.containers.iter().zip(&old_spec.containers).any(|(c, o)| changed(c, o))
        || spec.init_containers.iter().zip(&old_spec.init_containers).any(|(c, o)| changed(c, o))
        || spec.ephemeral_containers.iter().any(|c| {
            match old_spec.ephemeral_containers.iter().find(|o| o.name == c.name) {
                Some(o) => changed(c, o),
                None => true,
            }
        })
}

fn new_ephemeral_containers<'a>(request: &Request<'a>) -> Result<Subject<'a>, Error> {
    let mut pod = object(request)?;
    let old = parse_pod(request.old_object, "oldObject")?;
    let is_new =
        |c: &Container| old.as_ref().is_none_or(|old| !old.spec.ephemeral_containers.iter().any(|o| o.name == c.name));
    let inherited = pod.spec.security_context.take();
    let new: Vec<Container<'a>> = std::mem::take(&mut pod.spec.ephemeral_containers)
        .into_iter()
        .filter(|c| is_new(c))
        .map(|c| inherit(c, inherited.as_ref()))
        .collect();
    if new.is_empty() {
        return Ok(Subject::Nothing);
    }
    // The annotations that apply to the new containers: the AppArmor and
    // seccomp ones naming them, and the pod's seccomp one, which every
    // container inherits.
    let names: Vec<String> = new
        .iter()
        .flat_map(|c| {
            [APPARMOR_ANNOTATION_PREFIX, SECCOMP_CONTAINER_ANNOTATION_PREFIX].map(|p| format!("{p}{}", c.name))
        })
        .collect();
    let annotations = std::mem::take(&mut pod.metadata.annotations.0)
        .into_iter()
        .filter(|(key, _)| key == SECCOMP_POD_ANNOTATION || names.iter().any(|n| n == key))
        .collect();
    Ok(Subject::NewEphemeralContainers(Pod {
        metadata: Metadata { annotations: Annotations(annotations) },
        spec: PodSpec {
            ephemeral_containers: new,
            host_users: pod.spec.host_users,
            os: pod.spec.os.take(),
            runtime_class_name: pod.spec.runtime_class_name.take(),
            ..PodSpec::default()
        },
    }))
}

/// The container with the pod-level securityContext values it inherits
/// filled in where it sets none, as the kubelet runs it.
fn inherit<'a>(mut container: Container<'a>, pod: Option<&PodSecurityContext<'a>>) -> Container<'a> {
    let Some(pod) = pod else { return container };
    let own = container.security_context.get_or_insert_with(Default::default);
    own.run_as_non_root = own.run_as_non_root.or(pod.run_as_non_root);
    own.run_as_user = own.run_as_user.or(pod.run_as_user);
    if own.se_linux_options.is_none() {
        own.se_linux_options.clone_from(&pod.se_linux_options);
    }
    if own.seccomp_profile.is_none() {
        own.seccomp_profile.clone_from(&pod.seccomp_profile);
    }
    if own.app_armor_profile.is_none() {
        own.app_armor_profile.clone_from(&pod.app_armor_profile);
    }
    if let Some(host_process) = pod.windows_options.and_then(|o| o.host_process) {
        let options = own.windows_options.get_or_insert_with(Default::default);
        options.host_process = options.host_process.or(Some(host_process));
    }
    container
}
