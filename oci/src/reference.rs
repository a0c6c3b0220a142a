//! `oci://REGISTRY/REPOSITORY:TAG` and `oci://REGISTRY/REPOSITORY@sha256:HEX`.

use oci_client::Reference;

use crate::OciError;

/// A parsed `oci://` reference.
#[derive(Debug, Clone)]
pub struct ModuleRef {
    /// The text as given, `oci://...`.
    pub text: String,
    /// The client's reference (registry, repository, tag and/or digest).
    pub reference: Reference,
}

impl ModuleRef {
    /// Parses `oci://REGISTRY/REPOSITORY` with `:TAG`, `@sha256:HEX` or both.
    ///
    /// ```
    /// let r = egate_oci::ModuleRef::parse("oci://127.0.0.1:5000/policies/privileged:v1").unwrap();
    /// assert_eq!(r.registry(), "127.0.0.1:5000");
    /// assert_eq!(r.reference.tag(), Some("v1"));
    /// ```
    pub fn parse(text: &str) -> Result<Self, OciError> {
        // By hand, not with the client's reference grammar: that regex
        // costs tens of milliseconds to build, more than loading a cached
        // module.
        let error = |reason: &str| OciError::Reference { reference: text.to_string(), reason: reason.to_string() };
        let rest =
            text.strip_prefix(egate_engine::oci::SCHEME).ok_or_else(|| error("it does not start with oci://"))?;
        let (registry, path) = rest.split_once('/').ok_or_else(|| error("it names no repository"))?;
        let host_chars = |c: char| c.is_ascii_alphanumeric() || ".-:[]".contains(c);
        if registry.is_empty()
            || !registry.chars().all(host_chars)
            || !(registry.contains(['.', ':']) || registry == "localhost")
        {
            return Err(error("it names no registry host before the repository"));
        }
        let (named, digest) = match path.split_once('@') {
            Some((named, digest)) if is_sha256(digest) => (named, Some(digest)),
            Some(_) => return Err(error("its digest is not sha256: and 64 hex digits")),
            None => (path, None),
        };
        let (repository, tag) = match named.rsplit_once(':') {
            Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
            _ => (named, None),
        };
        let component = |c: &str| {
            !c.is_empty()
                && c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
                && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
        };
        if !repository.split('/').all(component) {
            return Err(error("its repository is not lowercase letters, digits and . _ - between slashes"));
        }
        let tag_chars = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
        if tag.is_some_and(|t| t.is_empty() || t.len() > 128 || !t.chars().all(tag_chars) || t.starts_with(['.', '-']))
        {
            return Err(error("its tag is not up to 128 letters, digits and . _ -"));
        }
        let (registry, repository) = (registry.to_string(), repository.to_string());
        let reference = match (tag, digest) {
            (Some(tag), Some(digest)) => {
                Reference::with_tag_and_digest(registry, repository, tag.into(), digest.into())
            }
            (Some(tag), None) => Reference::with_tag(registry, repository, tag.into()),
            (None, Some(digest)) => Reference::with_digest(registry, repository, digest.into()),
            (None, None) => return Err(error("it names neither a tag nor a digest")),
        };
        Ok(Self { text: text.to_string(), reference })
    }

    /// `HOST[:PORT]`.
    pub fn registry(&self) -> &str {
        self.reference.registry()
    }

    /// The same repository at `digest`.
    pub fn at(&self, digest: &str) -> Reference {
        Reference::with_digest(self.registry().into(), self.reference.repository().into(), digest.into())
    }

    /// The same repository at `tag`.
    pub fn tagged(&self, tag: &str) -> Reference {
        Reference::with_tag(self.registry().into(), self.reference.repository().into(), tag.into())
    }

    /// `oci://REGISTRY/REPOSITORY@DIGEST`.
    pub fn pinned(&self, digest: &str) -> String {
        format!("{}{}/{}@{digest}", egate_engine::oci::SCHEME, self.registry(), self.reference.repository())
    }
}

/// Whether `digest` is `sha256:` and 64 lowercase hex digits.
pub fn is_sha256(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_registry_repository_and_tag_or_digest() {
        let digest = format!("sha256:{}", "0".repeat(64));
        let r = ModuleRef::parse(&format!("oci://registry.example/team/p@{digest}")).unwrap();
        assert_eq!(r.reference.digest(), Some(digest.as_str()));
        assert_eq!(r.reference.repository(), "team/p");
        for bad in [
            "oci://team/p:v1",
            "oci://registry.example/p",
            "registry.example/p:v1",
            "oci://localhost:5000/p@sha256:12",
            "oci://r.example/Upper:v1",
            "oci://r.example/p:",
        ] {
            assert!(ModuleRef::parse(bad).is_err(), "{bad}");
        }
    }
}
