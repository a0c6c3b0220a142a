//! Built-in policy `run-as-non-root` (`builtin:run-as-non-root`): denies a
//! new ephemeral container unless it runs as non-root: its effective
//! `runAsNonRoot` (the container's value, else the pod's) must be `true`,
//! and its effective `runAsUser` must not be `0`. A root debug container
//! shares the pod's namespaces as root. No settings.
//!
//! `runAsNonRoot: true` without a `runAsUser` makes the kubelet check the
//! image's user when it starts the container; this policy judges only what
//! the request says.

use egate_guest::{Decision, Error, NoSettings, Request};

/// Judges the ephemeral containers this request adds.
pub fn evaluate(request: &Request, _settings: &NoSettings) -> Result<Decision, Error> {
    let pods = request.pods()?;
    let pod_context = pods.pod_security_context();
    let mut violations = Vec::new();
    for container in pods.new_ephemeral_containers() {
        let own = container.security_context.as_ref();
        let effective = container.effective_security_context(pod_context);
        // Where a value comes from, so the user knows what to change.
        let origin = |set_on_container: bool| {
            if set_on_container { "securityContext" } else { "the pod's spec.securityContext" }
        };

        if effective.run_as_user == Some(0) {
            let from = origin(own.is_some_and(|c| c.run_as_user.is_some()));
            violations.push(format!(
                "ephemeral container {:?} runs as root ({from}.runAsUser: 0): set securityContext.runAsUser \
                 to a non-zero UID such as 65534",
                container.name
            ));
        }
        match effective.run_as_non_root {
            Some(true) => {}
            Some(false) => {
                let from = origin(own.is_some_and(|c| c.run_as_non_root.is_some()));
                violations.push(format!(
                    "ephemeral container {:?} sets {from}.runAsNonRoot: false: set securityContext.runAsNonRoot: true \
                     (kubectl debug --profile=restricted does)",
                    container.name
                ));
            }
            None => violations.push(format!(
                "ephemeral container {:?} does not set securityContext.runAsNonRoot, and neither does the pod: \
                 set securityContext.runAsNonRoot: true (kubectl debug --profile=restricted does)",
                container.name
            )),
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
    use egate_guest::testing::{debug_request, web_pod};
    use serde_json::{Value, json};

    fn judge_in(pod: &Value, security_context: Value) -> Decision {
        let debug = json!({"name": "dbg", "image": "busybox:1.36", "securityContext": security_context});
        let bytes = debug_request(pod, debug, "alice", &[]);
        evaluate(&Request::parse(&bytes).unwrap(), &NoSettings {}).unwrap()
    }

    fn judge(security_context: Value) -> Decision {
        judge_in(&web_pod(), security_context)
    }

    fn pod_with(security_context: Value) -> Value {
        let mut pod = web_pod();
        pod["spec"]["securityContext"] = security_context;
        pod
    }

    #[test]
    fn run_as_non_root_on_the_container_is_allowed() {
        assert!(judge(json!({"runAsNonRoot": true})).allowed);
        assert!(judge(json!({"runAsNonRoot": true, "runAsUser": 1000})).allowed);
    }

    #[test]
    fn unset_is_denied_with_what_to_set() {
        let bytes = debug_request(&web_pod(), json!({"name": "dbg", "image": "busybox:1.36"}), "alice", &[]);
        let d = evaluate(&Request::parse(&bytes).unwrap(), &NoSettings {}).unwrap();
        assert!(!d.allowed);
        assert_eq!(
            d.message,
            r#"ephemeral container "dbg" does not set securityContext.runAsNonRoot, and neither does the pod: set securityContext.runAsNonRoot: true (kubectl debug --profile=restricted does)"#
        );
    }

    #[test]
    fn false_is_denied() {
        let d = judge(json!({"runAsNonRoot": false}));
        assert!(d.message.contains(r#""dbg" sets securityContext.runAsNonRoot: false"#), "{}", d.message);
    }

    #[test]
    fn the_pod_value_is_inherited() {
        assert!(judge_in(&pod_with(json!({"runAsNonRoot": true})), json!({})).allowed);
        let d = judge_in(&pod_with(json!({"runAsNonRoot": false})), json!({}));
        assert!(d.message.contains("sets the pod's spec.securityContext.runAsNonRoot: false"), "{}", d.message);
        // The container's own value wins.
        assert!(judge_in(&pod_with(json!({"runAsNonRoot": false})), json!({"runAsNonRoot": true})).allowed);
        assert!(!judge_in(&pod_with(json!({"runAsNonRoot": true})), json!({"runAsNonRoot": false})).allowed);
    }

    #[test]
    fn uid_zero_is_denied_even_with_run_as_non_root() {
        let d = judge(json!({"runAsNonRoot": true, "runAsUser": 0}));
        assert!(!d.allowed);
        assert_eq!(
            d.message,
            r#"ephemeral container "dbg" runs as root (securityContext.runAsUser: 0): set securityContext.runAsUser to a non-zero UID such as 65534"#
        );
        let d = judge_in(&pod_with(json!({"runAsNonRoot": true, "runAsUser": 0})), json!({}));
        assert!(d.message.contains("(the pod's spec.securityContext.runAsUser: 0)"), "{}", d.message);
        // A container UID overrides the pod's root UID.
        assert!(judge_in(&pod_with(json!({"runAsNonRoot": true, "runAsUser": 0})), json!({"runAsUser": 1000})).allowed);
    }

    #[test]
    fn every_violation_is_reported() {
        let d = judge(json!({"runAsNonRoot": false, "runAsUser": 0}));
        assert!(d.message.contains("runs as root") && d.message.contains("runAsNonRoot: false"), "{}", d.message);
    }

    #[test]
    fn an_existing_root_ephemeral_container_is_not_judged_again() {
        let mut pod = web_pod();
        pod["spec"]["ephemeralContainers"] =
            json!([{"name": "old", "image": "busybox", "securityContext": {"runAsUser": 0}}]);
        assert!(judge_in(&pod, json!({"runAsNonRoot": true})).allowed);
    }

    #[test]
    fn takes_no_settings() {
        assert!(settings_from_json::<NoSettings>(br#"{"strict": true}"#).is_err());
    }
}
