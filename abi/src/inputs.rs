//! What the host prepares from the cluster for a policy that declares it
//! reads it: a policy never calls the Kubernetes API (it has no network,
//! and the request path makes no API call); the host keeps watch caches
//! and hands each such policy the part of them that concerns the request.
//!
//! A module declares the inputs it reads in a custom section named
//! [`SECTION`], one input name a line ([`declare_inputs!`](crate::declare_inputs)
//! writes it). The host then adds one member to the AdmissionRequest it
//! hands that policy, [`MEMBER`] (`egateInputs`), an object holding each
//! declared input by name: `{"egateInputs": {"debugGrants": [...]}, "uid":
//! ..., ...}`. A module that declares nothing gets the request as it
//! arrived.

use serde::{Deserialize, Serialize};

/// The custom section that lists a module's inputs, one name a line.
pub const SECTION: &str = "egate.inputs";

/// The member of the request that holds the inputs.
pub const MEMBER: &str = "egateInputs";

/// An input the host can prepare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Input {
    /// The live `DebugGrant` objects of the request's namespace that
    /// select its pod: a list of [`GrantInput`], under `debugGrants`.
    DebugGrants,
}

impl Input {
    /// Every input, in the order of their names.
    pub const ALL: [Input; 1] = [Input::DebugGrants];

    /// Its name, in the section and under [`MEMBER`].
    pub fn name(self) -> &'static str {
        match self {
            Input::DebugGrants => "debugGrants",
        }
    }

    /// The input a name stands for.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|input| input.name() == name)
    }

    /// The inputs a [`SECTION`] lists; unknown names are returned apart, so
    /// the host can refuse a module that asks for what it cannot give.
    pub fn parse_section(bytes: &[u8]) -> (Vec<Input>, Vec<String>) {
        let text = String::from_utf8_lossy(bytes);
        let mut known = Vec::new();
        let mut unknown = Vec::new();
        for name in text.lines().map(str::trim).filter(|n| !n.is_empty()) {
            match Self::from_name(name) {
                Some(input) if !known.contains(&input) => known.push(input),
                Some(_) => {}
                None => unknown.push(name.to_string()),
            }
        }
        known.sort();
        (known, unknown)
    }
}

/// Declares the inputs a guest module reads, in its [`SECTION`]:
/// `egate_abi::declare_inputs!("debugGrants");`. Natively it expands to
/// nothing.
#[macro_export]
macro_rules! declare_inputs {
    ($($name:literal),+ $(,)?) => {
        $crate::__custom_section!("egate.inputs", $($name),+);
    };
}

/// A custom section of a wasm module holding each line given; natively
/// nothing. (`link_section` takes only a literal: the names of the
/// sections are written where this is called.)
#[doc(hidden)]
#[macro_export]
macro_rules! __custom_section {
    ($section:literal, $($line:literal),+) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            const TEXT: &str = concat!($($line, "\n"),+);
            #[unsafe(link_section = $section)]
            #[used]
            static SECTION: [u8; TEXT.len()] = {
                let mut bytes = [0u8; TEXT.len()];
                let text = TEXT.as_bytes();
                let mut i = 0;
                while i < text.len() {
                    bytes[i] = text[i];
                    i += 1;
                }
                bytes
            };
        };
    };
}

/// The most a debug container may ask for under a grant, named after
/// kubectl's `--profile`s: the securityContext shapes they produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Pod Security `restricted` for the debug container: non-root, no
    /// privilege escalation, every capability dropped, a seccomp profile.
    Restricted,
    /// Pod Security `baseline`: not privileged, no capabilities beyond
    /// baseline's defaults (kubectl's `baseline` sets nothing).
    Baseline,
    /// `baseline` plus `SYS_PTRACE`, as kubectl's `general` asks for.
    General,
    /// `baseline` plus `NET_ADMIN` and `NET_RAW`, as kubectl's `netadmin`.
    Netadmin,
    /// Anything, `privileged: true` included, as kubectl's `sysadmin`.
    Sysadmin,
}

impl Profile {
    /// Every profile, narrowest first.
    pub const ALL: [Profile; 5] =
        [Profile::Restricted, Profile::Baseline, Profile::General, Profile::Netadmin, Profile::Sysadmin];

    /// Its name, as kubectl writes it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Restricted => "restricted",
            Profile::Baseline => "baseline",
            Profile::General => "general",
            Profile::Netadmin => "netadmin",
            Profile::Sysadmin => "sysadmin",
        }
    }

    /// Capabilities it allows on top of Pod Security `baseline`.
    pub fn extra_capabilities(self) -> &'static [&'static str] {
        match self {
            Profile::General => &["SYS_PTRACE"],
            Profile::Netadmin => &["NET_ADMIN", "NET_RAW"],
            _ => &[],
        }
    }

    /// Whether everything `other` allows, this allows too.
    pub fn covers(self, other: Profile) -> bool {
        match (self, other) {
            (a, b) if a == b => true,
            (Profile::Sysadmin, _) => true,
            (_, Profile::Sysadmin) => false,
            (Profile::General | Profile::Netadmin, Profile::Restricted | Profile::Baseline) => true,
            (Profile::Baseline, Profile::Restricted) => true,
            _ => false,
        }
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Who a grant is for: exact names, no wildcards. A service account is the
/// user `system:serviceaccount:NAMESPACE:NAME`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GrantSubjects {
    /// User names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Groups: any member may use the grant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

impl GrantSubjects {
    /// Whether the user, or one of their groups, is a subject.
    pub fn include<S: AsRef<str>>(&self, user: &str, groups: &[S]) -> bool {
        self.users.iter().any(|u| u == user) || groups.iter().any(|g| self.groups.iter().any(|s| s == g.as_ref()))
    }
}

/// One live grant, as the host hands it to a policy under `debugGrants`:
/// a `DebugGrant` of the request's namespace that selects the request's
/// pod, has an approver, and has not expired. The host resolved which
/// pods it selects and when it ends; the policy checks the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantInput {
    /// The grant's name (`metadata.name`), in the request's namespace.
    pub name: String,
    /// Who approved it: the user who created it, as egate's webhook
    /// recorded.
    pub approved_by: String,
    /// When it ends, RFC 3339.
    pub expires_at: String,
    /// Who may use it.
    pub subjects: GrantSubjects,
    /// Containers the debug container may target (`--target`); empty: it
    /// may target none.
    #[serde(default)]
    pub target_containers: Vec<String>,
    /// Images the debug container may run, as globs (`busybox:*`).
    pub images: Vec<String>,
    /// The most the debug container may ask for.
    pub profile: Profile,
}

/// A grant a policy admitted a debug container under: the host records it
/// in the grant's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GrantUse {
    /// The grant's name, in the request's namespace.
    pub grant: String,
    /// The ephemeral container it admitted.
    pub container: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_list_known_inputs_once_and_unknown_ones_apart() {
        let (known, unknown) = Input::parse_section(b"debugGrants\n\ndebugGrants\nclusterSecrets\n");
        assert_eq!(known, [Input::DebugGrants]);
        assert_eq!(unknown, ["clusterSecrets"]);
        assert_eq!(Input::parse_section(b""), (vec![], vec![]));
    }

    #[test]
    fn profiles_cover_narrower_ones() {
        use Profile::*;
        assert!(Sysadmin.covers(Netadmin) && General.covers(Baseline) && Baseline.covers(Restricted));
        assert!(!General.covers(Netadmin) && !Netadmin.covers(General) && !Restricted.covers(Baseline));
        assert!(!Netadmin.covers(Sysadmin));
        assert_eq!(serde_json::to_string(&Netadmin).unwrap(), r#""netadmin""#);
    }

    #[test]
    fn subjects_are_users_or_groups() {
        let subjects = GrantSubjects { users: vec!["alice".into()], groups: vec!["sre".into()] };
        assert!(subjects.include("alice", &[] as &[&str]));
        assert!(subjects.include("bob", &["sre"]));
        assert!(!subjects.include("bob", &["dev"]));
    }
}
