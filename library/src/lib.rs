//! egate's built-in policy library as one wasm module. Each built-in is also
//! a module of its own (policies/NAME); bundled, the built-ins share one
//! copy of std, serde and the SDK, which keeps a set of many built-ins fast
//! (each module's JIT code otherwise competes for the CPU caches).
//!
//! The module speaks ABI v1; its settings are `{"policy": NAME, "settings":
//! SETTINGS}`, which the host writes when it resolves `builtin:NAME`. It
//! also exports `egate_evaluate_batch`, with which the host has several
//! validating built-ins judge one request in one instance (the request is
//! then parsed once); see [`evaluate_batch`].

use egate_abi::{BundledSettings, SettingsVerdict};
use egate_guest::abi;
use egate_guest::{Decision, Request};

/// Lists each bundled policy once, by name and crate: the list of names
/// and the two dispatches below come from it.
macro_rules! bundled {
    ($($name:literal => $policy:ident),* $(,)?) => {
        /// The names of the bundled policies.
        pub const POLICIES: &[&str] = &[$($name),*];

        /// `egate_validate_settings` of the named policy; `None` for an unknown name.
        fn validate_one(policy: &str, settings: &[u8]) -> Option<Vec<u8>> {
            match policy {
                $($name => Some(abi::validate_settings_json(&$policy::evaluate, settings)),)*
                _ => None,
            }
        }

        /// Runs the named policy.
        fn decide(policy: &str, request: &Request, settings: &[u8]) -> Decision {
            match policy {
                $($name => abi::decide(&$policy::evaluate, request, settings),)*
                other => Decision::error(format!("no built-in policy {other:?}")),
            }
        }
    };
}

bundled! {
    "audit" => egate_policy_audit,
    "capabilities" => egate_policy_capabilities,
    "env-secrets" => egate_policy_env_secrets,
    "grants" => egate_policy_grants,
    "harden" => egate_policy_harden,
    "image-mirror" => egate_policy_image_mirror,
    "images" => egate_policy_images,
    "max-count" => egate_policy_max_count,
    "namespaces" => egate_policy_namespaces,
    "pod-security" => egate_policy_pod_security,
    "privilege-escalation" => egate_policy_privilege_escalation,
    "privileged" => egate_policy_privileged,
    "run-as-non-root" => egate_policy_run_as_non_root,
    "target" => egate_policy_target,
    "volume-mounts" => egate_policy_volume_mounts,
}

/// `egate_validate_settings` of the named policy.
pub fn validate_settings(bundled: &[u8]) -> Vec<u8> {
    let Ok(BundledSettings { policy, settings }) = BundledSettings::parse(bundled) else {
        return SettingsVerdict::invalid(r#"the built-in library expects {"policy": NAME, "settings": ...}"#).to_json();
    };
    validate_one(&policy, settings.get().as_bytes())
        .unwrap_or_else(|| SettingsVerdict::invalid(format!("no built-in policy {policy:?}")).to_json())
}

/// `egate_evaluate` of the named policy.
pub fn evaluate(request: &[u8], bundled: &[u8]) -> Vec<u8> {
    let Ok(BundledSettings { policy, settings }) = BundledSettings::parse(bundled) else {
        return Decision::error("the built-in library got no policy name").to_json();
    };
    match Request::parse(request) {
        Ok(request) => decide(&policy, &request, settings.get().as_bytes()),
        Err(e) => Decision::error(e.message()),
    }
    .to_json()
}

/// `egate_evaluate_batch`: several of the bundled policies judge one
/// request, parsed once; the settings are a JSON array of `{"policy": NAME,
/// "settings": ...}` and the output is the JSON array of their decisions,
/// in the same order.
pub fn evaluate_batch(request: &[u8], batch: &[u8]) -> Vec<u8> {
    let Ok(batch) = serde_json::from_slice::<Vec<BundledSettings>>(batch) else {
        return Decision::error("the built-in library expects a list of {\"policy\": NAME, \"settings\": ...}")
            .to_json();
    };
    let request = Request::parse(request);
    let mut output = b"[".to_vec();
    for (index, BundledSettings { policy, settings }) in batch.iter().enumerate() {
        if index > 0 {
            output.push(b',');
        }
        let decision = match &request {
            Ok(request) => decide(policy, request, settings.get().as_bytes()),
            Err(e) => Decision::error(e.message()),
        };
        output.extend(decision.to_json());
    }
    output.push(b']');
    output
}

egate_abi::guest_exports! {
    validate_settings: validate_settings,
    evaluate: evaluate,
    evaluate_batch: evaluate_batch,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatches_by_name() {
        assert_eq!(validate_settings(br#"{"policy":"privileged","settings":null}"#), br#"{"valid":true}"#);
        let bad = String::from_utf8(validate_settings(br#"{"policy":"max-count","settings":{"max":-1}}"#)).unwrap();
        assert!(bad.contains(r#""valid":false"#), "{bad}");
        let unknown = String::from_utf8(validate_settings(br#"{"policy":"nope","settings":null}"#)).unwrap();
        assert!(unknown.contains("no built-in policy"), "{unknown}");
    }

    #[test]
    fn a_batch_answers_each_policy_in_order() {
        let request = egate_guest::testing::debug_request(
            &egate_guest::testing::web_pod(),
            serde_json::json!({"name": "dbg", "image": "busybox:1.36", "securityContext": {"privileged": true}}),
            "alice",
            &[],
        );
        let batch = br#"[{"policy": "images", "settings": {"disallowLatest": true}},
                         {"policy": "privileged", "settings": {}},
                         {"policy": "nope", "settings": {}}]"#;
        let output: Vec<serde_json::Value> = serde_json::from_slice(&evaluate_batch(&request, batch)).unwrap();
        assert_eq!(output.len(), 3);
        assert_eq!(output[0]["allowed"], true);
        assert_eq!(output[1]["allowed"], false);
        assert!(output[2]["error"].as_str().unwrap().contains("no built-in policy"), "{output:?}");
        for (single, batched) in [("images", &output[0]), ("privileged", &output[1])] {
            let settings = if single == "images" { r#"{"disallowLatest": true}"# } else { "{}" };
            let bundled = format!(r#"{{"policy": "{single}", "settings": {settings}}}"#);
            let alone: serde_json::Value = serde_json::from_slice(&evaluate(&request, bundled.as_bytes())).unwrap();
            assert_eq!(&alone, batched);
        }
    }
}
