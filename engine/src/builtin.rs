//! The built-in policy library, compiled into egate (see build.rs), so a
//! binary copied alone still resolves `builtin:NAME`.

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// The module of built-in policy `name`.
pub fn module(name: &str) -> Option<&'static [u8]> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, bytes)| *bytes)
}

/// The module bundling every built-in (library/), when egate was built with it.
pub fn library() -> Option<&'static [u8]> {
    LIBRARY
}

/// Names of the built-in policies.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|(name, _)| *name)
}

/// The message for a `builtin:NAME` that does not exist.
pub(crate) fn unknown(name: &str) -> String {
    if BUILTINS.is_empty() {
        return format!(
            "module builtin:{name} is not available: this egate was built without its built-in library; \
             build it with `make build` (which compiles policies/ first)"
        );
    }
    format!("there is no built-in policy {name:?}: the built-ins are {}", names().collect::<Vec<_>>().join(", "))
}
