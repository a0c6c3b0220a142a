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
        let error = |reason: &str| OciError::Reference { reference: text.to_string(), reason: reason.to_string() };
        let rest = text.strip_prefix(egate_engine::oci::SCHEME).ok_or_else(|| error("it does not start with oci://"))?;
        let (registry, path) = rest.split_once('/').ok_or_else(|| error("it names no repository"))?;
        if registry.is_empty() || !(registry.contains(['.', ':']) || registry == "localhost") {
            return Err(error("it names no registry host before the repository"));
        }
        let reference: Reference = rest.parse().map_err(|e| error(&format!("{e}")))?;
        if reference.registry() != registry {
            return Err(error("it names no registry host before the repository"));
        }
        if !path.contains([':', '@']) {
            return Err(error("it names neither a tag nor a digest"));
        }
        if reference.digest().is_some_and(|d| !is_sha256(d)) {
            return Err(error("its digest is not sha256: and 64 hex digits"));
        }
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
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
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
        for bad in ["oci://team/p:v1", "oci://registry.example/p", "registry.example/p:v1", "oci://localhost:5000/p@sha256:12"] {
            assert!(ModuleRef::parse(bad).is_err(), "{bad}");
        }
    }
}
