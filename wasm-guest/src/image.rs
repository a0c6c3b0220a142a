use std::fmt;

use crate::Error;

/// A container image reference, normalised the way Docker and containerd do:
/// `busybox` is `docker.io/library/busybox:latest`, `ghcr.io/x/y@sha256:..`
/// keeps its registry and digest, `localhost:5000/x:1` keeps its registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host, with port if any (`docker.io`, `localhost:5000`).
    pub registry: String,
    /// Repository path within the registry (`library/busybox`).
    pub repository: String,
    /// Tag as written, if any.
    pub tag: Option<String>,
    /// Digest (`sha256:...`) as written, if any.
    pub digest: Option<String>,
}

const DEFAULT_REGISTRY: &str = "docker.io";

impl ImageRef {
    /// Parses a reference as written in a container's `image` field.
    ///
    /// ```
    /// use egate_guest::ImageRef;
    /// let busybox = ImageRef::parse("busybox").unwrap();
    /// assert_eq!(busybox.normalized(), "docker.io/library/busybox:latest");
    /// assert!(busybox.is_latest());
    /// let local = ImageRef::parse("localhost:5000/x:1").unwrap();
    /// assert_eq!(local.normalized(), "localhost:5000/x:1");
    /// ```
    pub fn parse(reference: &str) -> Result<Self, Error> {
        let invalid = |why: &str| Error::new(format!("image {reference:?} is not a valid reference: {why}"));
        if reference.is_empty() {
            return Err(invalid("it is empty"));
        }
        if reference.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("it contains whitespace"));
        }
        let (name_and_tag, digest) = match reference.split_once('@') {
            Some((rest, digest)) => {
                let (algorithm, hex) = digest.split_once(':').ok_or_else(|| invalid("the digest has no algorithm"))?;
                if algorithm.is_empty() || hex.is_empty() {
                    return Err(invalid("the digest is incomplete"));
                }
                (rest, Some(digest.to_string()))
            }
            None => (reference, None),
        };
        // A ':' after the last '/' starts the tag; one before it is a port.
        let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(i) => {
                let split = last_slash + i;
                (&name_and_tag[..split], Some(name_and_tag[split + 1..].to_string()))
            }
            None => (name_and_tag, None),
        };
        if tag.as_deref() == Some("") {
            return Err(invalid("the tag is empty"));
        }
        if name.is_empty() || name.starts_with('/') || name.ends_with('/') || name.contains("//") {
            return Err(invalid("the repository name is empty or malformed"));
        }
        let (registry, repository) = split_registry(name);
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(invalid("repository names must be lowercase"));
        }
        Ok(Self { registry, repository, tag, digest })
    }

    /// `true` when the reference names no tag and no digest, or the tag `latest`.
    pub fn is_latest(&self) -> bool {
        match (&self.tag, &self.digest) {
            (None, None) => true,
            (Some(tag), _) => tag == "latest",
            (None, Some(_)) => false,
        }
    }

    /// The full reference: registry, repository, then the tag (`latest`
    /// when neither tag nor digest was given) and the digest.
    pub fn normalized(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        match (&self.tag, &self.digest) {
            (Some(tag), _) => write!(f, ":{tag}")?,
            (None, None) => f.write_str(":latest")?,
            (None, Some(_)) => {}
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Docker's rule: the first path component is a registry when it has a `.`
/// or a `:`, or is `localhost`, or has an uppercase letter; otherwise the
/// image lives on Docker Hub, where single names sit under `library/`.
fn split_registry(name: &str) -> (String, String) {
    if let Some((first, rest)) = name.split_once('/') {
        let is_registry =
            first.contains(['.', ':']) || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase());
        if is_registry {
            let registry = if first == "index.docker.io" { DEFAULT_REGISTRY } else { first };
            let repository = if registry == DEFAULT_REGISTRY && !rest.contains('/') {
                format!("library/{rest}")
            } else {
                rest.to_string()
            };
            return (registry.to_string(), repository);
        }
        return (DEFAULT_REGISTRY.to_string(), name.to_string());
    }
    (DEFAULT_REGISTRY.to_string(), format!("library/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(r: &str) -> String {
        ImageRef::parse(r).unwrap().normalized()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("nicolaka/netshoot"), "docker.io/nicolaka/netshoot:latest");
        assert_eq!(norm("docker.io/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("index.docker.io/library/busybox:1"), "docker.io/library/busybox:1");
        assert_eq!(norm("localhost:5000/x:1"), "localhost:5000/x:1");
        assert_eq!(norm("localhost/x"), "localhost/x:latest");
        assert_eq!(norm("ghcr.io/org/tools/debug:v2"), "ghcr.io/org/tools/debug:v2");
        assert_eq!(norm("busybox@sha256:abcd"), "docker.io/library/busybox@sha256:abcd");
        assert_eq!(norm("registry.k8s.io:443/pause:3.9@sha256:ef01"), "registry.k8s.io:443/pause:3.9@sha256:ef01");
    }

    #[test]
    fn latest_means_no_tag_and_no_digest_or_the_latest_tag() {
        assert!(ImageRef::parse("busybox").unwrap().is_latest());
        assert!(ImageRef::parse("busybox:latest").unwrap().is_latest());
        assert!(!ImageRef::parse("busybox:1.36").unwrap().is_latest());
        assert!(!ImageRef::parse("busybox@sha256:abcd").unwrap().is_latest());
    }

    #[test]
    fn malformed_references_are_errors() {
        for bad in ["", "busybox:", "Busybox", "a//b", "/x", "x@sha256", "bad image"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
