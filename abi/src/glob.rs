//! The globs of manifests (resources, namespaces, subjects) and of
//! built-in settings (images, namespaces): one meaning everywhere, compiled
//! once, when a manifest or settings are read.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use wildmatch::WildMatch;

/// A Kyverno-style wildcard pattern: `*` matches any run of characters
/// (`/` included), `?` exactly one. It reads from and writes to JSON and
/// YAML as the pattern's text.
///
/// ```
/// use egate_abi::Glob;
/// let glob = Glob::new("ghcr.io/acme/*");
/// assert!(glob.matches("ghcr.io/acme/tools/debug:1"));
/// assert!(!glob.matches("docker.io/library/busybox"));
/// assert!(Glob::new("kube-?ublic").matches("kube-public"));
/// ```
#[derive(Clone)]
pub struct Glob {
    pattern: String,
    compiled: WildMatch,
}

impl Glob {
    /// Compiles a pattern.
    pub fn new(pattern: impl Into<String>) -> Self {
        let pattern = pattern.into();
        let compiled = WildMatch::new(&pattern);
        Self { pattern, compiled }
    }

    /// Whether `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        self.compiled.matches(text)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

/// Whether `text` matches `pattern`, compiling it for this one test; a
/// pattern tested more than once is a [`Glob`].
pub fn glob_match(pattern: &str, text: &str) -> bool {
    WildMatch::new(pattern).matches(text)
}

impl PartialEq for Glob {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for Glob {}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.pattern)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

impl From<&str> for Glob {
    fn from(pattern: &str) -> Self {
        Self::new(pattern)
    }
}

impl Serialize for Glob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.pattern)
    }
}

impl<'de> Deserialize<'de> for Glob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Glob::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_read_as_their_text_and_match_once_compiled() {
        let globs: Vec<Glob> = serde_json::from_str(r#"["pods/*", "kube-?ublic"]"#).unwrap();
        assert!(globs[0].matches("pods/ephemeralcontainers") && !globs[0].matches("pods"));
        assert!(globs[1].matches("kube-public"));
        assert_eq!(serde_json::to_string(&globs).unwrap(), r#"["pods/*","kube-?ublic"]"#);
        assert!(glob_match("*", "") && !glob_match("a", "b"));
    }
}
