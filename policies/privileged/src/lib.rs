//! Built-in policy `privileged` (`builtin:privileged`): denies a new
//! ephemeral container that sets `securityContext.privileged: true`.
//! A privileged debug container is root on the node.

use egate_guest::{Decision, Error, NoSettings, Request};

/// Judges the ephemeral containers this request adds.
pub fn evaluate(request: &Request, _settings: &NoSettings) -> Result<Decision, Error> {
    let pods = request.pods()?;
    let violations = pods
        .new_ephemeral_containers()
        .filter(|c| c.security_context.as_ref().and_then(|s| s.privileged) == Some(true))
        .map(|c| {
            format!(
                "ephemeral container {:?} sets securityContext.privileged: true, but debug containers may not be privileged: \
                 remove securityContext.privileged or set it to false",
                c.name
            )
        })
        .collect();
    Ok(Decision::from_violations(violations))
}

egate_guest::policy!(evaluate);
egate_guest::declare_debug_container_reads!();

#[cfg(test)]
mod tests {
    use super::*;
    use egate_guest::testing::{debug_request, judge_debug, web_pod};
    use serde_json::json;

    fn judge(debug: serde_json::Value) -> Decision {
        judge_debug(evaluate, debug, &NoSettings {})
    }

    #[test]
    fn privileged_debug_container_is_denied_by_name() {
        let d = judge(json!({"name": "dbg", "image": "busybox:1.36", "securityContext": {"privileged": true}}));
        assert!(!d.allowed);
        assert!(d.message.contains(r#"ephemeral container "dbg""#), "{}", d.message);
        assert!(d.message.contains("privileged: true"), "{}", d.message);
    }

    #[test]
    fn unprivileged_or_unset_is_allowed() {
        assert!(judge(json!({"name": "dbg", "image": "busybox"})).allowed);
        assert!(judge(json!({"name": "dbg", "image": "busybox", "securityContext": {"privileged": false}})).allowed);
    }

    #[test]
    fn an_existing_privileged_ephemeral_container_is_not_judged_again() {
        let mut pod = web_pod();
        pod["spec"]["ephemeralContainers"] =
            json!([{"name": "old", "image": "busybox", "securityContext": {"privileged": true}}]);
        let bytes = debug_request(&pod, json!({"name": "dbg", "image": "busybox"}), "alice", &[]);
        assert!(evaluate(&Request::parse(&bytes).unwrap(), &NoSettings {}).unwrap().allowed);
    }
}
