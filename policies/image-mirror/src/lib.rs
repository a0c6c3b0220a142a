//! Built-in policy `image-mirror` (`builtin:image-mirror`): a mutating
//! policy that points the image of each new ephemeral container at a mirror.
//!
//! The setting `mirrors` maps a registry host, as Docker normalises it
//! (`docker.io` for Docker Hub, `localhost:5000` with its port), to the
//! prefix that replaces it. With `{docker.io: mirror.example.com/hub}`,
//! `busybox:1.36` (that is `docker.io/library/busybox:1.36`) becomes
//! `mirror.example.com/hub/library/busybox:1.36`. Tag and digest are kept;
//! an image with neither gets `:latest`, as normalisation spells it out.
//! Images of other registries, and images that are not valid references
//! (left to validating policies and the API server), stay as written.
//!
//! The policy always allows; its patch replaces
//! `/spec/ephemeralContainers/N/image`.

use std::collections::BTreeMap;

use egate_guest::{Decision, Error, ImageRef, PatchOp, Request, Settings};
use serde::Deserialize;

/// Settings of `image-mirror`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct MirrorSettings {
    /// Registry host → replacement prefix (`mirror.example.com/hub`).
    pub mirrors: BTreeMap<String, String>,
}

impl Settings for MirrorSettings {
    fn validate(&self) -> Result<(), String> {
        for (registry, prefix) in &self.mirrors {
            check_registry(registry)?;
            check_prefix(registry, prefix)?;
            // A prefix on a mirrored registry would be rewritten again each
            // time the policy runs (webhooks may be reinvoked).
            let target = mirrored_registry(prefix);
            if target != *registry && self.mirrors.contains_key(&target) {
                return Err(format!(
                    "mirrors.{registry} is {prefix:?}, whose registry {target:?} is itself mirrored: \
                     images would be rewritten twice; point it at a registry that is not a key of mirrors"
                ));
            }
            if target == *registry {
                return Err(format!(
                    "mirrors.{registry} is {prefix:?}, on the registry it mirrors: each run would prefix the image again; \
                     point it at another registry"
                ));
            }
        }
        Ok(())
    }
}

fn check_registry(registry: &str) -> Result<(), String> {
    if registry.trim().is_empty() {
        return Err("mirrors has an empty registry: keys are registry hosts such as docker.io or ghcr.io".into());
    }
    if registry.contains("://") || registry.contains('/') {
        return Err(format!(
            "mirrors has the key {registry:?}: keys are registry hosts, without scheme or path, such as docker.io or localhost:5000"
        ));
    }
    if registry == "index.docker.io" || registry == "registry-1.docker.io" {
        return Err(format!(
            "mirrors has the key {registry:?}: Docker Hub images are normalised to docker.io; write docker.io"
        ));
    }
    // The key must be what ImageRef reports as the registry of its images.
    match ImageRef::parse(&format!("{registry}/x/y")) {
        Ok(image) if image.registry == registry => Ok(()),
        _ => Err(format!(
            "mirrors has the key {registry:?}, which is not a registry host: write a host such as docker.io, ghcr.io or localhost:5000"
        )),
    }
}

fn check_prefix(registry: &str, prefix: &str) -> Result<(), String> {
    if prefix.trim().is_empty() {
        return Err(format!("mirrors.{registry} is empty: write the mirror's prefix, such as mirror.example.com/hub"));
    }
    if prefix.contains("://") {
        return Err(format!(
            "mirrors.{registry} is {prefix:?}: image references have no scheme; write it without, such as mirror.example.com/hub"
        ));
    }
    if prefix.ends_with('/') {
        return Err(format!(
            "mirrors.{registry} is {prefix:?}: write it without the trailing slash ({:?})",
            prefix.trim_end_matches('/')
        ));
    }
    if let Err(e) = ImageRef::parse(&format!("{prefix}/library/busybox:1.36")) {
        return Err(format!("mirrors.{registry} is {prefix:?}, which cannot start an image reference: {e}"));
    }
    Ok(())
}

/// The registry of images under `prefix`.
fn mirrored_registry(prefix: &str) -> String {
    ImageRef::parse(&format!("{prefix}/library/busybox:1.36")).map(|i| i.registry).unwrap_or_default()
}

/// The mirrored reference of `image`, if its registry has a mirror.
pub fn mirror(image: &ImageRef, settings: &MirrorSettings) -> Option<String> {
    let prefix = settings.mirrors.get(&image.registry)?;
    let normalized = image.normalized();
    // `normalized` is `{registry}/{repository}[:tag][@digest]`.
    Some(format!("{prefix}{}", &normalized[image.registry.len()..]))
}

/// Points the images of the ephemeral containers this request adds at
/// their mirrors.
pub fn evaluate(request: &Request, settings: &MirrorSettings) -> Result<Decision, Error> {
    let pods = request.pods()?;
    let Some(pod) = pods.object.as_ref() else { return Ok(Decision::allow()) };
    let mut decision = Decision::allow();
    for container in pods.new_ephemeral_containers() {
        let Some(index) = pod.spec.ephemeral_containers.iter().position(|c| c.name == container.name) else {
            continue;
        };
        // A missing or malformed image is for validation to refuse.
        let Ok(image) = container.image_ref() else { continue };
        if let Some(mirrored) = mirror(&image, settings) {
            let path = PatchOp::pointer(["spec", "ephemeralContainers", &index.to_string(), "image"]);
            decision = decision.with_patch(PatchOp::replace(path, mirrored));
        }
    }
    Ok(decision)
}

egate_guest::policy!(evaluate);
egate_guest::declare_debug_container_reads!();

#[cfg(test)]
mod tests {
    use super::*;
    use egate_guest::settings_from_json;
    use egate_guest::testing::{debug_request, web_pod};
    use serde_json::{Value, json};

    fn hub() -> MirrorSettings {
        settings_from_json(
            br#"{"mirrors": {"docker.io": "mirror.example.com/hub", "localhost:5000": "mirror.example.com/local"}}"#,
        )
        .unwrap()
    }

    fn pod_with_old_debug() -> Value {
        let mut pod = web_pod();
        pod["spec"]["ephemeralContainers"] = json!([{"name": "old", "image": "busybox:1.36"}]);
        pod
    }

    /// Runs the policy on a debug container with `image`; returns the
    /// decision and the object with its patch applied.
    fn run(image: &str, settings: &MirrorSettings) -> (Decision, Value) {
        let bytes = debug_request(&pod_with_old_debug(), json!({"name": "dbg", "image": image}), "alice", &[]);
        let decision = evaluate(&Request::parse(&bytes).unwrap(), settings).unwrap();
        assert!(decision.allowed && decision.message.is_empty() && decision.warnings.is_empty());
        let request: Value = serde_json::from_slice(&bytes).unwrap();
        let mut object = request["object"].clone();
        let patch: json_patch::Patch = serde_json::from_value(serde_json::to_value(&decision.patch).unwrap()).unwrap();
        json_patch::patch(&mut object, &patch).unwrap();
        // The earlier debug container keeps its image.
        assert_eq!(object["spec"]["ephemeralContainers"][0]["image"], "busybox:1.36");
        (decision, object)
    }

    /// The new debug container's image after the policy.
    fn mirrored(image: &str, settings: &MirrorSettings) -> String {
        run(image, settings).1["spec"]["ephemeralContainers"][1]["image"].as_str().unwrap().to_string()
    }

    #[test]
    fn docker_hub_images_are_rewritten_with_one_replace() {
        let (decision, _) = run("busybox:1.36", &hub());
        assert_eq!(
            decision.patch,
            [PatchOp::replace("/spec/ephemeralContainers/1/image", "mirror.example.com/hub/library/busybox:1.36")]
        );
    }

    #[test]
    fn every_spelling_of_a_docker_hub_image_is_mirrored() {
        let s = hub();
        assert_eq!(mirrored("busybox", &s), "mirror.example.com/hub/library/busybox:latest");
        assert_eq!(mirrored("docker.io/busybox:1", &s), "mirror.example.com/hub/library/busybox:1");
        assert_eq!(mirrored("index.docker.io/library/busybox:1", &s), "mirror.example.com/hub/library/busybox:1");
        assert_eq!(mirrored("nicolaka/netshoot:v0.13", &s), "mirror.example.com/hub/nicolaka/netshoot:v0.13");
    }

    #[test]
    fn tags_and_digests_are_kept() {
        let s = hub();
        assert_eq!(
            mirrored("busybox@sha256:0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd", &s),
            "mirror.example.com/hub/library/busybox@sha256:0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd"
        );
        assert_eq!(
            mirrored("busybox:1.36@sha256:0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd", &s),
            "mirror.example.com/hub/library/busybox:1.36@sha256:0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd"
        );
    }

    #[test]
    fn registries_with_ports_are_matched_by_host_and_port() {
        assert_eq!(mirrored("localhost:5000/tools/dbg:2", &hub()), "mirror.example.com/local/tools/dbg:2");
        assert!(run("localhost:5001/tools/dbg:2", &hub()).0.patch.is_empty());
    }

    #[test]
    fn other_registries_stay_as_written() {
        for image in ["ghcr.io/org/debug:1", "registry.k8s.io/pause:3.9", "quay.io/x/y"] {
            let (decision, _) = run(image, &hub());
            assert_eq!(decision, Decision::allow(), "{image}");
        }
    }

    #[test]
    fn several_registries_can_be_mirrored() {
        let s: MirrorSettings = settings_from_json(
            br#"{"mirrors": {"ghcr.io": "mirror.example.com/ghcr", "docker.io": "mirror.example.com/hub"}}"#,
        )
        .unwrap();
        assert_eq!(mirrored("ghcr.io/org/debug:1", &s), "mirror.example.com/ghcr/org/debug:1");
        assert_eq!(mirrored("busybox:1.36", &s), "mirror.example.com/hub/library/busybox:1.36");
    }

    #[test]
    fn no_mirrors_means_no_patch() {
        assert_eq!(run("busybox:1.36", &MirrorSettings::default()).0, Decision::allow());
    }

    #[test]
    fn malformed_images_are_left_to_validation() {
        assert_eq!(run("Busy Box", &hub()).0, Decision::allow());
        let bytes = debug_request(&web_pod(), json!({"name": "dbg"}), "alice", &[]);
        assert_eq!(evaluate(&Request::parse(&bytes).unwrap(), &hub()).unwrap(), Decision::allow());
    }

    #[test]
    fn several_new_containers_are_each_addressed_by_index() {
        let old = json!({"name": "old", "image": "busybox"});
        let request = json!({
            "operation": "UPDATE", "resource": {"resource": "pods"}, "subResource": "ephemeralcontainers",
            "object": {"spec": {"containers": [], "ephemeralContainers": [
                old, {"name": "a", "image": "ghcr.io/x/y:1"}, {"name": "b", "image": "alpine:3"}]}},
            "oldObject": {"spec": {"containers": [], "ephemeralContainers": [old]}}
        });
        let bytes = serde_json::to_vec(&request).unwrap();
        let decision = evaluate(&Request::parse(&bytes).unwrap(), &hub()).unwrap();
        assert_eq!(
            decision.patch,
            [PatchOp::replace("/spec/ephemeralContainers/2/image", "mirror.example.com/hub/library/alpine:3")]
        );
    }

    #[test]
    fn mirroring_twice_changes_nothing_the_second_time() {
        let (_, object) = run("busybox:1.36", &hub());
        let request = json!({"operation": "UPDATE", "object": object, "oldObject": pod_with_old_debug()});
        let bytes = serde_json::to_vec(&request).unwrap();
        assert_eq!(evaluate(&Request::parse(&bytes).unwrap(), &hub()).unwrap(), Decision::allow());
    }

    #[test]
    fn settings_default_to_no_mirrors() {
        assert_eq!(settings_from_json::<MirrorSettings>(b"").unwrap(), MirrorSettings::default());
        assert_eq!(settings_from_json::<MirrorSettings>(br#"{"mirrors": {}}"#).unwrap(), MirrorSettings::default());
    }

    #[test]
    fn bad_settings_are_refused_with_what_to_write() {
        let refused = |json: &str| settings_from_json::<MirrorSettings>(json.as_bytes()).unwrap_err().to_string();
        assert!(refused(r#"{"mirrors": {"": "m.example.com/hub"}}"#).contains("empty registry"));
        assert!(refused(r#"{"mirrors": {"docker.io": ""}}"#).contains("mirrors.docker.io is empty"));
        assert!(refused(r#"{"mirrors": {"docker.io": "https://m.example.com/hub"}}"#).contains("no scheme"));
        assert!(refused(r#"{"mirrors": {"docker.io": "m.example.com/hub/"}}"#).contains("without the trailing slash"));
        assert!(refused(r#"{"mirrors": {"https://docker.io": "m.example.com"}}"#).contains("without scheme or path"));
        assert!(refused(r#"{"mirrors": {"docker.io/library": "m.example.com"}}"#).contains("without scheme or path"));
        assert!(refused(r#"{"mirrors": {"index.docker.io": "m.example.com"}}"#).contains("write docker.io"));
        assert!(refused(r#"{"mirrors": {"registry": "m.example.com"}}"#).contains("not a registry host"));
        assert!(
            refused(r#"{"mirrors": {"docker.io": "M.example.com/Hub"}}"#).contains("cannot start an image reference")
        );
        assert!(refused(r#"{"mirrors": {"docker.io": "docker.io/mirror"}}"#).contains("would prefix the image again"));
        assert!(refused(r#"{"mirrors": {"docker.io": "myorg"}}"#).contains("would prefix the image again"));
        let chained = refused(r#"{"mirrors": {"docker.io": "ghcr.io/hub", "ghcr.io": "m.example.com/ghcr"}}"#);
        assert!(chained.contains("is itself mirrored"), "{chained}");
        assert!(refused(r#"{"mirror": {}}"#).contains("unknown field `mirror`"));
        assert!(refused(r#"{"mirrors": ["docker.io"]}"#).contains("mirrors"));
    }
}
