//! Built-in policy `capabilities` (`builtin:capabilities`): denies a new
//! ephemeral container that adds a Linux capability outside
//! `allowedCapabilities` (default: the Pod Security Standards baseline set)
//! and, with `requireDropAll`, one that does not drop `ALL`.
//!
//! Capability names are compared after the normalisation container
//! runtimes apply (`cap_net_raw` and `CAP_NET_RAW` both mean `NET_RAW`).

use egate_guest::{Decision, Error, Request, Settings};
use serde::Deserialize;

/// The Pod Security Standards baseline set of capabilities.
pub const BASELINE: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Settings of `capabilities`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct CapabilitySettings {
    /// Capabilities a debug container may add.
    pub allowed_capabilities: Vec<String>,
    /// Require `capabilities.drop` to contain `ALL`.
    pub require_drop_all: bool,
}

impl Default for CapabilitySettings {
    fn default() -> Self {
        Self { allowed_capabilities: BASELINE.map(String::from).to_vec(), require_drop_all: false }
    }
}

impl Settings for CapabilitySettings {
    fn validate(&self) -> Result<(), String> {
        match self.allowed_capabilities.iter().find(|c| normalize(c).is_empty()) {
            Some(bad) => {
                Err(format!("allowedCapabilities holds {bad:?}, which is not a capability name such as NET_ADMIN"))
            }
            None => Ok(()),
        }
    }
}

/// `cap_net_raw` → `NET_RAW`.
fn normalize(capability: &str) -> String {
    let upper = capability.trim().to_ascii_uppercase();
    upper.strip_prefix("CAP_").map(str::to_string).unwrap_or(upper)
}

/// Judges the ephemeral containers this request adds.
pub fn evaluate(request: &Request, settings: &CapabilitySettings) -> Result<Decision, Error> {
    let allowed: Vec<String> = settings.allowed_capabilities.iter().map(|c| normalize(c)).collect();
    let pods = request.pods()?;
    let mut violations = Vec::new();
    for container in pods.new_ephemeral_containers() {
        let caps = container.security_context.as_ref().and_then(|s| s.capabilities.as_ref());
        let added = caps.map(|c| c.add.as_slice()).unwrap_or_default();
        let refused: Vec<&str> =
            added.iter().filter(|c| !allowed.contains(&normalize(c))).map(|c| c.as_ref()).collect();
        if !refused.is_empty() {
            violations.push(format!(
                "ephemeral container {:?} adds capabilities [{}] in securityContext.capabilities.add; allowed are [{}]",
                container.name,
                refused.join(", "),
                allowed.join(", ")
            ));
        }
        let drops_all = caps.is_some_and(|c| c.drop.iter().any(|d| normalize(d) == "ALL"));
        if settings.require_drop_all && !drops_all {
            violations.push(format!(
                "ephemeral container {:?} must drop all capabilities: set securityContext.capabilities.drop: [ALL]",
                container.name
            ));
        }
    }
    Ok(Decision::from_violations(violations))
}

egate_guest::policy!(evaluate);
egate_guest::declare_debug_container_reads!();

#[cfg(test)]
mod tests {
    use super::*;
    use egate_guest::settings_from_json;
    use egate_guest::testing::judge_debug;
    use serde_json::{Value, json};

    fn judge(debug: Value, settings: &CapabilitySettings) -> Decision {
        judge_debug(evaluate, debug, settings)
    }

    fn adding(caps: Value) -> Value {
        json!({"name": "dbg", "image": "busybox:1.36", "securityContext": {"capabilities": {"add": caps}}})
    }

    #[test]
    fn baseline_capabilities_are_allowed_by_default() {
        assert!(judge(adding(json!(["CHOWN", "cap_kill"])), &CapabilitySettings::default()).allowed);
        assert!(judge(json!({"name": "dbg", "image": "busybox:1.36"}), &CapabilitySettings::default()).allowed);
    }

    #[test]
    fn other_capabilities_are_denied_with_the_allowed_list() {
        let d = judge(adding(json!(["NET_ADMIN", "CAP_SYS_ADMIN", "CHOWN"])), &CapabilitySettings::default());
        assert!(!d.allowed);
        assert!(d.message.contains(r#""dbg" adds capabilities [NET_ADMIN, CAP_SYS_ADMIN]"#), "{}", d.message);
        assert!(d.message.contains("allowed are [AUDIT_WRITE"), "{}", d.message);
    }

    #[test]
    fn settings_replace_the_allowed_list() {
        let s: CapabilitySettings = settings_from_json(br#"{"allowedCapabilities": ["NET_RAW"]}"#).unwrap();
        assert!(judge(adding(json!(["NET_RAW"])), &s).allowed);
        assert!(!judge(adding(json!(["CHOWN"])), &s).allowed);
    }

    #[test]
    fn require_drop_all() {
        let s = CapabilitySettings { require_drop_all: true, ..Default::default() };
        assert!(!judge(json!({"name": "dbg", "image": "busybox:1.36"}), &s).allowed);
        let dropping =
            json!({"name": "dbg", "image": "busybox:1.36", "securityContext": {"capabilities": {"drop": ["ALL"]}}});
        assert!(judge(dropping, &s).allowed);
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(settings_from_json::<CapabilitySettings>(br#"{"allowedCapabilities": [""]}"#).is_err());
        assert!(settings_from_json::<CapabilitySettings>(br#"{"requireDropAll": "yes"}"#).is_err());
    }
}
