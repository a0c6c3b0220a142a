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
        let invalid = |why: String| Error::new(format!("image {reference:?} is not a valid reference: {why}"));
        if reference.is_empty() {
            return Err(invalid("it is empty".into()));
        }
        let (name_and_tag, digest) = match reference.split_once('@') {
            Some((rest, digest)) => (rest, Some(check_digest(digest).map_err(invalid)?)),
            None => (reference, None),
        };
        // A ':' after the last '/' starts the tag; one before it is a port.
        let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(i) => {
                let split = last_slash + i;
                (&name_and_tag[..split], Some(&name_and_tag[split + 1..]))
            }
            None => (name_and_tag, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(invalid)?;
        }
        check_name(name).map_err(invalid)?;
        let (registry, repository) = split_registry(name);
        Ok(Self { registry, repository, tag: tag.map(str::to_string), digest })
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

/// The longest name a reference may have (registry and repository), as
/// the distribution project's grammar says.
const NAME_MAX: usize = 255;

/// `ALGORITHM:HEX`, with an algorithm registries know and the encoded
/// length it has, in lowercase hex; the digest as written.
fn check_digest(digest: &str) -> Result<String, String> {
    let (algorithm, encoded) = digest.split_once(':').ok_or("the digest has no algorithm (write sha256:HEX)")?;
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        "" => return Err("the digest has no algorithm (write sha256:HEX)".into()),
        other => return Err(format!("the digest algorithm {other:?} is not supported: use sha256, sha384 or sha512")),
    };
    if encoded.len() != length {
        return Err(format!("a {algorithm} digest has {length} hex digits, this one {}", encoded.len()));
    }
    if !encoded.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(format!("a {algorithm} digest is written in lowercase hex digits"));
    }
    Ok(digest.to_string())
}

/// A tag: a letter, digit or `_`, then up to 127 of those, `.` and `-`.
fn check_tag(tag: &str) -> Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    match bytes.first() {
        None => Err("the tag is empty".into()),
        Some(&first) if !word(first) => Err(format!("the tag {tag:?} must start with a letter, digit or _")),
        _ if bytes.len() > 128 => Err(format!("the tag is {} characters long, more than 128", bytes.len())),
        _ if !bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-') => {
            Err(format!("the tag {tag:?} may hold only letters, digits, _, . and -"))
        }
        _ => Ok(()),
    }
}

/// `[REGISTRY/]PATH/...`: a registry as Docker recognises one (see
/// [`split_registry`]), then lowercase path components.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the repository name is empty".into());
    }
    if name.len() > NAME_MAX {
        return Err(format!("the name is {} characters long, more than {NAME_MAX}", name.len()));
    }
    let mut components: Vec<&str> = name.split('/').collect();
    if components.len() > 1 && is_registry(components[0]) {
        check_registry(components.remove(0))?;
    }
    for component in components {
        check_path_component(component)?;
    }
    Ok(())
}

/// `host[:port]`: dot-separated labels of letters, digits and inner `-`, or
/// an IPv6 address in brackets; the port is digits.
fn check_registry(registry: &str) -> Result<(), String> {
    let bad =
        || Err(format!("the registry {registry:?} is not a host name, IPv4 or [IPv6] address, with an optional :port"));
    let (host, port) = match registry.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ipv6, after)) if !ipv6.is_empty() && ipv6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') => {
                match after {
                    "" => (registry, None),
                    _ => match after.strip_prefix(':') {
                        Some(port) => (&registry[..registry.len() - after.len()], Some(port)),
                        None => return bad(),
                    },
                }
            }
            _ => return bad(),
        },
        None => match registry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        },
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return bad();
    }
    let label = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.starts_with('[') || host.split('.').all(label) { Ok(()) } else { bad() }
}

/// Lowercase letters and digits, joined by one `.`, one or two `_`, or any
/// number of `-`.
fn check_path_component(component: &str) -> Result<(), String> {
    if component.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("repository names must be lowercase".into());
    }
    let bad =
        || Err(format!("the path component {component:?} is not lowercase letters and digits joined by ., _, __ or -"));
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return bad();
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        match &component[start..i] {
            "." | "_" | "__" => {}
            dashes if dashes.bytes().all(|b| b == b'-') => {}
            _ => return bad(),
        }
    }
    Ok(())
}

/// Docker's rule for the first of several components: a registry when it
/// has a `.` or a `:`, or is `localhost`, or has an uppercase letter.
fn is_registry(first: &str) -> bool {
    first.contains(['.', ':']) || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase())
}

/// Docker's rule: the first path component is a registry when it has a `.`
/// or a `:`, or is `localhost`, or has an uppercase letter; otherwise the
/// image lives on Docker Hub, where single names sit under `library/`.
fn split_registry(name: &str) -> (String, String) {
    if let Some((first, rest)) = name.split_once('/') {
        if is_registry(first) {
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

    /// A well-formed sha256 digest.
    const D: &str = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

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
        assert_eq!(norm(&format!("busybox@{D}")), format!("docker.io/library/busybox@{D}"));
        assert_eq!(norm(&format!("registry.k8s.io:443/pause:3.9@{D}")), format!("registry.k8s.io:443/pause:3.9@{D}"));
    }

    #[test]
    fn latest_means_no_tag_and_no_digest_or_the_latest_tag() {
        assert!(ImageRef::parse("busybox").unwrap().is_latest());
        assert!(ImageRef::parse("busybox:latest").unwrap().is_latest());
        assert!(!ImageRef::parse("busybox:1.36").unwrap().is_latest());
        assert!(!ImageRef::parse(&format!("busybox@{D}")).unwrap().is_latest());
    }

    #[test]
    fn malformed_references_are_errors() {
        for bad in ["", "busybox:", "Busybox", "a//b", "/x", "x@sha256", "bad image"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    /// The reference grammar of the distribution project, on the cases of
    /// its reference tests (rewritten here as a table): what parses, with
    /// which registry, repository, tag and digest, and what is refused.
    #[test]
    fn references_follow_the_distribution_grammar() {
        let sha512 = format!("sha512:{}", "f".repeat(128));
        let long_ok = format!("{}a:tag-puts-this-over-max", "a/".repeat(127));
        /// Input, then the registry, repository, tag and digest it parses to.
        type Case<'a> = (String, &'a str, String, Option<&'a str>, Option<String>);
        let parsed: Vec<Case> = vec![
            ("test_com".into(), "docker.io", "library/test_com".into(), None, None),
            ("test.com:tag".into(), "docker.io", "library/test.com".into(), Some("tag"), None),
            ("test.com:5000".into(), "docker.io", "library/test.com".into(), Some("5000"), None),
            ("test.com/repo:tag".into(), "test.com", "repo".into(), Some("tag"), None),
            ("test:5000/repo".into(), "test:5000", "repo".into(), None, None),
            (format!("test:5000/repo@{D}"), "test:5000", "repo".into(), None, Some(D.into())),
            (format!("test:5000/repo:tag@{D}"), "test:5000", "repo".into(), Some("tag"), Some(D.into())),
            ("lowercase:Uppercase".into(), "docker.io", "library/lowercase".into(), Some("Uppercase"), None),
            (long_ok.clone(), "docker.io", long_ok[..long_ok.len() - 23].into(), Some("tag-puts-this-over-max"), None),
            (
                "sub-dom1.foo.com/bar/baz/quux:some-long-tag".into(),
                "sub-dom1.foo.com",
                "bar/baz/quux".into(),
                Some("some-long-tag"),
                None,
            ),
            (
                "b.gcr.io/test.example.com/my-app:test.example.com".into(),
                "b.gcr.io",
                "test.example.com/my-app".into(),
                Some("test.example.com"),
                None,
            ),
            ("xn--n3h.com/myimage:xn--n3h.com".into(), "xn--n3h.com", "myimage".into(), Some("xn--n3h.com"), None),
            (
                format!("xn--7o8h.com/myimage:xn--7o8h.com@{sha512}"),
                "xn--7o8h.com",
                "myimage".into(),
                Some("xn--7o8h.com"),
                Some(sha512.clone()),
            ),
            ("foo_bar.com:8080".into(), "docker.io", "library/foo_bar.com".into(), Some("8080"), None),
            ("foo/foo_bar.com:8080".into(), "docker.io", "foo/foo_bar.com".into(), Some("8080"), None),
            ("192.168.1.1".into(), "docker.io", "library/192.168.1.1".into(), None, None),
            ("192.168.1.1:5000/repo:5050".into(), "192.168.1.1:5000", "repo".into(), Some("5050"), None),
            ("[2001:db8::1]/repo".into(), "[2001:db8::1]", "repo".into(), None, None),
            ("[2001:db8:1:2:3:4:5:6]/repo:tag".into(), "[2001:db8:1:2:3:4:5:6]", "repo".into(), Some("tag"), None),
            (
                format!("[2001:db8::1]:5000/repo:tag@{D}"),
                "[2001:db8::1]:5000",
                "repo".into(),
                Some("tag"),
                Some(D.into()),
            ),
            ("[::1]:5000/repo".into(), "[::1]:5000", "repo".into(), None, None),
        ];
        for (input, registry, repository, tag, digest) in parsed {
            let r = ImageRef::parse(&input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(
                (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref(), r.digest.as_deref()),
                (registry, repository.as_str(), tag, digest.as_deref()),
                "{input:?}"
            );
        }
        // (input, what the message says)
        let too_long = format!("{}a:tag", "a/".repeat(128));
        let refused: Vec<(String, &str)> = vec![
            (String::new(), "it is empty"),
            (":justtag".into(), "the repository name is empty"),
            (format!("@{D}"), "the repository name is empty"),
            ("repo@sha256:ffffffffffffffffffffffffffffffffff".into(), "a sha256 digest has 64 hex digits, this one 34"),
            (
                format!("validname@invaliddigest:{}", "f".repeat(64)),
                "the digest algorithm \"invaliddigest\" is not supported",
            ),
            ("Uppercase:tag".into(), "repository names must be lowercase"),
            ("test:5000/Uppercase/lowercase:tag".into(), "repository names must be lowercase"),
            (too_long, "the name is 257 characters long, more than 255"),
            ("aa/asdf$$^/aa".into(), "the path component \"asdf$$^\""),
            ("[2001:db8::1]".into(), "the tag \"1]\""),
            ("[2001:db8::1]:5000".into(), "the path component \"[2001:db8::1]\""),
            ("[fe80::1%eth0]:5000/repo".into(), "the registry \"[fe80::1%eth0]:5000\""),
            // What requireDigest must not take for a digest (the review's defect).
            ("busybox@sha256:abcd".into(), "a sha256 digest has 64 hex digits, this one 4"),
            ("busybox:1.36@sha256:zz".into(), "a sha256 digest has 64 hex digits, this one 2"),
            (format!("busybox@sha256:{}", "F".repeat(64)), "lowercase hex"),
            ("busybox:-1".into(), "must start with a letter, digit or _"),
            (format!("busybox:{}", "a".repeat(129)), "more than 128"),
        ];
        for (input, why) in refused {
            let error = ImageRef::parse(&input).err().unwrap_or_else(|| panic!("{input:?} should be refused"));
            let message = error.to_string();
            assert!(message.contains("is not a valid reference") && message.contains(why), "{input:?}: {message}");
        }
    }
}
