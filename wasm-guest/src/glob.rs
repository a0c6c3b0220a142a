/// Kyverno-style wildcard match, used for every glob in egate: `*` matches
/// any run of characters (`/` included), `?` exactly one.
///
/// ```
/// use egate_guest::glob_match;
/// assert!(glob_match("ghcr.io/acme/*", "ghcr.io/acme/tools/debug:1"));
/// assert!(glob_match("kube-?ublic", "kube-public"));
/// assert!(!glob_match("docker.io/*", "ghcr.io/x:1"));
/// ```
pub fn glob_match(pattern: &str, text: &str) -> bool {
    wildmatch::WildMatch::new(pattern).matches(text)
}
