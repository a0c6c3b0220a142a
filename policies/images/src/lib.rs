//! Built-in policy `images` (`builtin:images`): judges the image of each new
//! ephemeral container, normalised the way Docker does
//! (`busybox` → `docker.io/library/busybox:latest`).
//!
//! Settings: `allowedImages` (globs over the normalised reference; empty
//! allows any), `requireDigest` (default false), `disallowLatest` (default
//! true; no tag and no digest counts as `latest`).

use egate_guest::{Decision, Error, Glob, ImageRef, Request, Settings};
use serde::Deserialize;

/// Settings of `images`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageSettings {
    /// Globs over normalised references; empty allows any image.
    pub allowed_images: Vec<Glob>,
    /// Require an `@sha256:` digest.
    pub require_digest: bool,
    /// Refuse `:latest` and untagged images.
    pub disallow_latest: bool,
}

impl Default for ImageSettings {
    fn default() -> Self {
        Self { allowed_images: Vec::new(), require_digest: false, disallow_latest: true }
    }
}

impl Settings for ImageSettings {
    fn validate(&self) -> Result<(), String> {
        match self.allowed_images.iter().find(|g| g.as_str().trim().is_empty()) {
            Some(_) => Err("allowedImages holds an empty pattern: write a glob such as \"ghcr.io/acme/*\"".into()),
            None => Ok(()),
        }
    }
}

/// Judges the ephemeral containers this request adds.
pub fn evaluate(request: &Request, settings: &ImageSettings) -> Result<Decision, Error> {
    let pods = request.pods()?;
    let mut violations = Vec::new();
    for container in pods.new_ephemeral_containers() {
        let written = container.image.as_deref().unwrap_or_default();
        let image = match ImageRef::parse(written) {
            Ok(image) => image,
            Err(e) => {
                violations.push(format!("ephemeral container {:?}: {e}", container.name));
                continue;
            }
        };
        violations.extend(judge_image(&container.name, &image, settings));
    }
    Ok(Decision::from_violations(violations))
}

fn judge_image(container: &str, image: &ImageRef, settings: &ImageSettings) -> Vec<String> {
    let reference = image.normalized();
    let mut violations = Vec::new();
    let allowed = settings.allowed_images.is_empty() || settings.allowed_images.iter().any(|g| g.matches(&reference));
    if !allowed {
        violations.push(format!(
            "ephemeral container {container:?} uses image {reference:?}, which matches none of the allowed images [{}]",
            settings.allowed_images.iter().map(Glob::as_str).collect::<Vec<_>>().join(", ")
        ));
    }
    if settings.require_digest && image.digest.is_none() {
        violations.push(format!(
            "ephemeral container {container:?} uses image {reference:?} without a digest: pin it as {}/{}@sha256:<digest>",
            image.registry, image.repository
        ));
    }
    if settings.disallow_latest && image.is_latest() {
        violations.push(format!(
            "ephemeral container {container:?} uses image {reference:?}: the latest tag (or no tag) is not allowed, \
             pin a version tag ({}/{}:<version>) or a digest",
            image.registry, image.repository
        ));
    }
    violations
}

egate_guest::policy!(evaluate);
egate_guest::declare_debug_container_reads!();

#[cfg(test)]
mod tests {
    use super::*;
    use egate_guest::settings_from_json;
    use egate_guest::testing::{debug_request, web_pod};
    use serde_json::json;

    fn judge(image: &str, settings: &ImageSettings) -> Decision {
        let bytes = debug_request(&web_pod(), json!({"name": "dbg", "image": image}), "alice", &[]);
        evaluate(&Request::parse(&bytes).unwrap(), settings).unwrap()
    }

    #[test]
    fn latest_and_untagged_are_denied_by_default() {
        let d = judge("busybox", &ImageSettings::default());
        assert!(!d.allowed);
        assert!(d.message.contains(r#""docker.io/library/busybox:latest""#), "{}", d.message);
        assert!(!judge("busybox:latest", &ImageSettings::default()).allowed);
        assert!(judge("busybox:1.36", &ImageSettings::default()).allowed);
        assert!(
            judge(
                "busybox@sha256:0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd",
                &ImageSettings::default()
            )
            .allowed
        );
    }

    #[test]
    fn allowed_images_are_globs_over_the_normalised_reference() {
        let s: ImageSettings =
            settings_from_json(br#"{"allowedImages": ["docker.io/library/busybox:*", "ghcr.io/acme/*"]}"#).unwrap();
        assert!(judge("busybox:1.36", &s).allowed);
        assert!(judge("ghcr.io/acme/tools/debug:2", &s).allowed);
        let d = judge("nicolaka/netshoot:v0.13", &s);
        assert!(d.message.contains("matches none of the allowed images"), "{}", d.message);
    }

    #[test]
    fn require_digest() {
        let s = ImageSettings { require_digest: true, ..Default::default() };
        assert!(!judge("busybox:1.36", &s).allowed);
        // Something after `@` is not yet a digest: these were let through once.
        for fake in ["busybox@sha256:abcd", "busybox:1.36@sha256:zz"] {
            let d = judge(fake, &s);
            assert!(!d.allowed && d.message.contains("a sha256 digest has 64 hex digits"), "{fake}: {}", d.message);
        }
        assert!(
            judge("busybox:1.36@sha256:0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd", &s).allowed
        );
    }

    #[test]
    fn a_malformed_image_is_denied_with_the_reason() {
        let d = judge("Busy Box", &ImageSettings::default());
        assert!(d.message.contains("not a valid reference"), "{}", d.message);
    }
}
