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

/// The module that runs for a built-in policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// The library bundling every built-in, when egate was built with it:
    /// the policy is picked by its settings, and shares one copy of the
    /// code with the other built-ins.
    Library(&'static [u8]),
    /// The built-in's own module.
    Alone(&'static [u8]),
}

impl Runs {
    /// The module's bytes: what `spec.moduleDigest` pins.
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Runs::Library(bytes) | Runs::Alone(bytes) => bytes,
        }
    }
}

/// What runs for `builtin:NAME`; `None` for an unknown name.
pub fn runs(name: &str) -> Option<Runs> {
    let alone = module(name)?;
    Some(library().map_or(Runs::Alone(alone), Runs::Library))
}

/// Names of the built-in policies.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|(name, _)| *name)
}

/// The message for a `builtin:NAME` that does not exist.
pub fn unknown(name: &str) -> String {
    if BUILTINS.is_empty() {
        return format!(
            "module builtin:{name} is not available: this egate was built without its built-in library; \
             build it with `make build` (which compiles policies/ first)"
        );
    }
    format!("there is no built-in policy {name:?}: the built-ins are {}", names().collect::<Vec<_>>().join(", "))
}
