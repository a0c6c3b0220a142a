//! Built-in policy `env-secrets` (`builtin:env-secrets`): denies a new
//! ephemeral container that reads a Secret into its environment, through
//! `env[].valueFrom.secretKeyRef` or `envFrom[].secretRef`. A debug session
//! is interactive; secrets in its environment end up in shells, history and
//! screen shares. No settings.

use egate_guest::{Decision, Error, NoSettings, Request};

/// Judges the ephemeral containers this request adds.
pub fn evaluate(request: &Request, _settings: &NoSettings) -> Result<Decision, Error> {
    let pods = request.pods()?;
    let mut violations = Vec::new();
    for container in pods.new_ephemeral_containers() {
        for var in &container.env {
            let Some(secret) = var.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref()) else { continue };
            violations.push(format!(
                "ephemeral container {:?} sets environment variable {:?} from key {:?} of secret {:?} \
                 (env[].valueFrom.secretKeyRef): debug containers may not read secrets; remove the variable \
                 or give it a literal value or a configMapKeyRef",
                container.name,
                var.name,
                secret.key,
                secret.name.as_deref().unwrap_or_default()
            ));
        }
        for source in &container.env_from {
            let Some(secret) = source.secret_ref.as_ref() else { continue };
            violations.push(format!(
                "ephemeral container {:?} loads every key of secret {:?} as environment variables \
                 (envFrom[].secretRef): debug containers may not read secrets; remove that envFrom entry \
                 (a configMapRef is allowed)",
                container.name,
                secret.name.as_deref().unwrap_or_default()
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
    use egate_guest::testing::{debug_request, judge_debug, web_pod};
    use serde_json::{Value, json};

    fn judge(debug: Value) -> Decision {
        judge_debug(evaluate, debug, &NoSettings {})
    }

    #[test]
    fn literals_and_config_maps_are_allowed() {
        let d = judge(json!({"name": "dbg", "image": "busybox:1.36",
            "env": [{"name": "MODE", "value": "debug"},
                    {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "level"}}},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "envFrom": [{"configMapRef": {"name": "cfg"}}]}));
        assert!(d.allowed, "{}", d.message);
        assert!(judge(json!({"name": "dbg", "image": "busybox:1.36"})).allowed);
    }

    #[test]
    fn secret_key_ref_is_denied_naming_variable_and_secret() {
        let d = judge(json!({"name": "dbg", "image": "busybox:1.36",
            "env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]}));
        assert!(!d.allowed);
        assert_eq!(
            d.message,
            r#"ephemeral container "dbg" sets environment variable "DB_PASSWORD" from key "password" of secret "db" (env[].valueFrom.secretKeyRef): debug containers may not read secrets; remove the variable or give it a literal value or a configMapKeyRef"#
        );
    }

    #[test]
    fn env_from_secret_ref_is_denied_naming_the_secret() {
        let d = judge(json!({"name": "dbg", "image": "busybox:1.36",
            "envFrom": [{"configMapRef": {"name": "cfg"}}, {"prefix": "DB_", "secretRef": {"name": "db"}}]}));
        assert!(!d.allowed);
        assert!(d.message.contains(r#"ephemeral container "dbg" loads every key of secret "db" as environment variables (envFrom[].secretRef)"#), "{}", d.message);
    }

    #[test]
    fn every_secret_is_reported() {
        let d = judge(json!({"name": "dbg", "image": "busybox:1.36",
            "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s1", "key": "a"}}},
                    {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s2", "key": "b"}}}],
            "envFrom": [{"secretRef": {"name": "s3"}}]}));
        assert_eq!(d.message.matches("debug containers may not read secrets").count(), 3, "{}", d.message);
        for secret in [r#"secret "s1""#, r#"secret "s2""#, r#"secret "s3""#] {
            assert!(d.message.contains(secret), "{}", d.message);
        }
    }

    #[test]
    fn an_existing_ephemeral_container_is_not_judged_again() {
        let mut pod = web_pod();
        pod["spec"]["ephemeralContainers"] =
            json!([{"name": "old", "image": "busybox", "envFrom": [{"secretRef": {"name": "db"}}]}]);
        let bytes = debug_request(&pod, json!({"name": "dbg", "image": "busybox"}), "alice", &[]);
        assert!(evaluate(&Request::parse(&bytes).unwrap(), &NoSettings {}).unwrap().allowed);
    }

    #[test]
    fn takes_no_settings() {
        assert!(settings_from_json::<NoSettings>(br#"{"allowedSecrets": []}"#).is_err());
    }
}
