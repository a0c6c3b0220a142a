//! Built-in policy `audit` (`builtin:audit`): records who started which
//! debug container, and never denies.
//!
//! For each ephemeral container the request adds, it returns the audit
//! annotation `debug-<container name>` =
//! `user=<username> image=<image as written> target=<targetContainerName>`
//! (`none` for an absent image or target). The host prefixes the key with
//! the policy's name (`audit.debug-dbg`); the API server records it in the
//! audit event of the request. The policy returns no patch and takes no
//! settings.

use egate_guest::{Decision, Error, NoSettings, Request};

/// The audit annotations of the ephemeral containers this request adds.
pub fn evaluate(request: &Request, _settings: &NoSettings) -> Result<Decision, Error> {
    let pods = request.pods()?;
    let user = &request.user_info.username;
    let mut decision = Decision::allow();
    for container in pods.new_ephemeral_containers() {
        let image = container.image.as_deref().filter(|i| !i.is_empty()).unwrap_or("none");
        let target = container.target_container_name.as_deref().filter(|t| !t.is_empty()).unwrap_or("none");
        decision = decision.with_audit_annotation(
            format!("debug-{}", container.name),
            format!("user={user} image={image} target={target}"),
        );
    }
    Ok(decision)
}

egate_guest::policy!(evaluate);
egate_guest::declare_debug_container_reads!();

#[cfg(test)]
mod tests {
    use super::*;
    use egate_guest::settings_from_json;
    use egate_guest::testing::{debug_request, web_pod};
    use serde_json::{Value, json};

    fn audit(pod: &Value, debug: Value, user: &str) -> Decision {
        let bytes = debug_request(pod, debug, user, &["dev"]);
        evaluate(&Request::parse(&bytes).unwrap(), &NoSettings {}).unwrap()
    }

    #[test]
    fn each_new_debug_container_is_recorded() {
        let d =
            audit(&web_pod(), json!({"name": "dbg", "image": "busybox:1.36", "targetContainerName": "app"}), "alice");
        assert!(d.allowed);
        assert_eq!(d.audit_annotations.len(), 1);
        assert_eq!(d.audit_annotations["debug-dbg"], "user=alice image=busybox:1.36 target=app");
        assert!(d.patch.is_empty() && d.warnings.is_empty() && d.message.is_empty());
    }

    #[test]
    fn the_image_is_recorded_as_written_and_an_absent_target_as_none() {
        let d = audit(
            &web_pod(),
            json!({"name": "dbg", "image": "nicolaka/netshoot"}),
            "system:serviceaccount:ci:deployer",
        );
        assert_eq!(
            d.audit_annotations["debug-dbg"],
            "user=system:serviceaccount:ci:deployer image=nicolaka/netshoot target=none"
        );
        let no_image = audit(&web_pod(), json!({"name": "dbg"}), "alice");
        assert_eq!(no_image.audit_annotations["debug-dbg"], "user=alice image=none target=none");
    }

    #[test]
    fn earlier_debug_containers_are_not_recorded_again() {
        let mut pod = web_pod();
        pod["spec"]["ephemeralContainers"] = json!([{"name": "old", "image": "busybox"}]);
        let d = audit(&pod, json!({"name": "dbg2", "image": "busybox:1.36"}), "bob");
        assert_eq!(d.audit_annotations.keys().collect::<Vec<_>>(), ["debug-dbg2"]);
    }

    #[test]
    fn several_new_containers_each_get_an_annotation() {
        let bytes = serde_json::to_vec(&json!({
            "userInfo": {"username": "carol"},
            "object": {"spec": {"ephemeralContainers": [{"name": "a", "image": "busybox"},
                                                        {"name": "b", "image": "alpine:3", "targetContainerName": "app"}]}}
        }))
        .unwrap();
        let d = evaluate(&Request::parse(&bytes).unwrap(), &NoSettings {}).unwrap();
        assert_eq!(d.audit_annotations["debug-a"], "user=carol image=busybox target=none");
        assert_eq!(d.audit_annotations["debug-b"], "user=carol image=alpine:3 target=app");
    }

    #[test]
    fn a_request_without_new_debug_containers_is_allowed_silently() {
        let bytes = br#"{"operation": "UPDATE", "userInfo": {"username": "alice"}}"#;
        assert_eq!(evaluate(&Request::parse(bytes).unwrap(), &NoSettings {}).unwrap(), Decision::allow());
    }

    #[test]
    fn it_takes_no_settings() {
        assert!(settings_from_json::<NoSettings>(b"{}").is_ok());
        let err = settings_from_json::<NoSettings>(br#"{"prefix": "x"}"#).unwrap_err();
        assert!(err.message().contains("unknown field `prefix`"), "{err}");
    }
}
