//! Built-in policy `privilege-escalation` (`builtin:privilege-escalation`):
//! denies a new ephemeral container unless its
//! `securityContext.allowPrivilegeEscalation` is explicitly `false`. Unset
//! means `true` in Kubernetes: a setuid binary in the debug image could
//! gain privileges the container was not given. No settings.

use egate_guest::{Decision, Error, NoSettings, Request};

/// Judges the ephemeral containers this request adds.
pub fn evaluate(request: &Request, _settings: &NoSettings) -> Result<Decision, Error> {
    let pods = request.pods()?;
    let violations = pods
        .new_ephemeral_containers()
        .filter_map(|c| {
            let what = match c.security_context.as_ref().and_then(|s| s.allow_privilege_escalation) {
                Some(false) => return None,
                Some(true) => "sets securityContext.allowPrivilegeEscalation: true",
                None => "does not set securityContext.allowPrivilegeEscalation (unset means true)",
            };
            Some(format!(
                "ephemeral container {:?} {what}: set securityContext.allowPrivilegeEscalation: false \
                 (kubectl debug --profile=restricted does)",
                c.name
            ))
        })
        .collect();
    Ok(Decision::from_violations(violations))
}

egate_guest::policy!(evaluate);
egate_guest::declare_debug_container_reads!();

#[cfg(test)]
mod tests {
    use super::*;
    use egate_guest::settings_from_json;
    use egate_guest::testing::{debug_request, judge_debug, web_pod};
    use serde_json::{Value, json};

    fn judge(debug: Value) -> Decision {
        judge_debug(evaluate, debug, &NoSettings {})
    }

    #[test]
    fn explicit_false_is_allowed() {
        let d = judge(
            json!({"name": "dbg", "image": "busybox:1.36", "securityContext": {"allowPrivilegeEscalation": false}}),
        );
        assert!(d.allowed);
    }

    #[test]
    fn unset_is_denied() {
        let d = judge(json!({"name": "dbg", "image": "busybox:1.36"}));
        assert_eq!(
            d.message,
            r#"ephemeral container "dbg" does not set securityContext.allowPrivilegeEscalation (unset means true): set securityContext.allowPrivilegeEscalation: false (kubectl debug --profile=restricted does)"#
        );
        assert!(!judge(json!({"name": "dbg", "image": "busybox:1.36", "securityContext": {}})).allowed);
    }

    #[test]
    fn true_is_denied() {
        let d = judge(
            json!({"name": "dbg", "image": "busybox:1.36", "securityContext": {"allowPrivilegeEscalation": true}}),
        );
        assert!(!d.allowed);
        assert!(d.message.contains(r#""dbg" sets securityContext.allowPrivilegeEscalation: true"#), "{}", d.message);
    }

    #[test]
    fn an_existing_ephemeral_container_is_not_judged_again() {
        let mut pod = web_pod();
        pod["spec"]["ephemeralContainers"] = json!([{"name": "old", "image": "busybox"}]);
        let debug = json!({"name": "dbg", "image": "busybox", "securityContext": {"allowPrivilegeEscalation": false}});
        let bytes = debug_request(&pod, debug, "alice", &[]);
        assert!(evaluate(&Request::parse(&bytes).unwrap(), &NoSettings {}).unwrap().allowed);
    }

    #[test]
    fn takes_no_settings() {
        assert!(settings_from_json::<NoSettings>(br#"{"allow": true}"#).is_err());
    }
}
