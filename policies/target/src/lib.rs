//! Built-in policy `target` (`builtin:target`): decides who may start a
//! debug container that targets another container (`kubectl debug
//! --target=app`, the ephemeral container's `targetContainerName`). A
//! targeting container joins the target's process namespace, so it sees the
//! target's processes, their environment and their files under
//! `/proc/PID/root`.
//!
//! A new ephemeral container with `targetContainerName` is denied unless the
//! requesting user is in `allowedUsers` or in one of `allowedGroups`;
//! targeting a container in `protectedContainers` is denied for everyone.
//! All three settings default to empty, so by default nobody may target a
//! container. Containers without `targetContainerName` are allowed.
//! Names are compared exactly (no globs).

use egate_guest::{Decision, Error, Request, Settings, UserInfo};
use serde::Deserialize;

/// Settings of `target`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct TargetSettings {
    /// Members of these groups may target containers.
    pub allowed_groups: Vec<String>,
    /// These users may target containers.
    pub allowed_users: Vec<String>,
    /// Containers no one may target.
    pub protected_containers: Vec<String>,
}

impl Settings for TargetSettings {
    fn validate(&self) -> Result<(), String> {
        let lists = [
            ("allowedGroups", &self.allowed_groups, "a group such as sre"),
            ("allowedUsers", &self.allowed_users, "a user name such as alice@example.com"),
            ("protectedContainers", &self.protected_containers, "a container name such as vault-agent"),
        ];
        for (setting, list, example) in lists {
            if list.iter().any(|entry| entry.trim().is_empty()) {
                return Err(format!("{setting} holds an empty entry: write {example}"));
            }
        }
        Ok(())
    }
}

impl TargetSettings {
    /// Whether `user` may target (unprotected) containers.
    fn admits(&self, user: &UserInfo) -> bool {
        self.allowed_users.iter().any(|u| *u == user.username) || self.allowed_groups.iter().any(|g| user.in_group(g))
    }

    /// Who may target containers, for messages.
    fn who_may(&self) -> String {
        match (self.allowed_users.is_empty(), self.allowed_groups.is_empty()) {
            (true, true) => "no one may target a container here".to_string(),
            (false, true) => format!("only users [{}] may target containers", self.allowed_users.join(", ")),
            (true, false) => {
                format!("only members of groups [{}] may target containers", self.allowed_groups.join(", "))
            }
            (false, false) => format!(
                "only users [{}] and members of groups [{}] may target containers",
                self.allowed_users.join(", "),
                self.allowed_groups.join(", ")
            ),
        }
    }
}

/// Judges the ephemeral containers this request adds.
pub fn evaluate(request: &Request, settings: &TargetSettings) -> Result<Decision, Error> {
    let pods = request.pods()?;
    let user = &request.user_info;
    let mut violations = Vec::new();
    for container in pods.new_ephemeral_containers() {
        let Some(target) = container.target_container_name.as_deref().filter(|t| !t.is_empty()) else {
            continue;
        };
        if settings.protected_containers.iter().any(|p| p == target) {
            violations.push(format!(
                "ephemeral container {:?} sets targetContainerName: {target:?}, but container {target:?} is protected \
                 and no one may share its process namespace: run kubectl debug without --target",
                container.name
            ));
        } else if !settings.admits(user) {
            violations.push(format!(
                "ephemeral container {:?} sets targetContainerName: {target:?}, but user {:?} may not target a container \
                 ({}): run kubectl debug without --target",
                container.name,
                user.username,
                settings.who_may()
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
    use egate_guest::testing::{debug_request, web_pod};
    use serde_json::{Value, json};

    fn judge_as(debug: Value, user: &str, groups: &[&str], settings: &TargetSettings) -> Decision {
        let bytes = debug_request(&web_pod(), debug, user, groups);
        evaluate(&Request::parse(&bytes).unwrap(), settings).unwrap()
    }

    fn targeting(target: &str) -> Value {
        json!({"name": "dbg", "image": "busybox:1.36", "targetContainerName": target})
    }

    fn settings(json: &str) -> TargetSettings {
        settings_from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn containers_without_a_target_are_allowed() {
        let untargeted = json!({"name": "dbg", "image": "busybox:1.36"});
        assert!(judge_as(untargeted, "alice", &[], &TargetSettings::default()).allowed);
        let empty = json!({"name": "dbg", "image": "busybox:1.36", "targetContainerName": ""});
        assert!(judge_as(empty, "alice", &[], &TargetSettings::default()).allowed);
    }

    #[test]
    fn by_default_no_one_may_target() {
        let d = judge_as(targeting("app"), "alice", &["sre"], &TargetSettings::default());
        assert!(!d.allowed);
        assert_eq!(
            d.message,
            r#"ephemeral container "dbg" sets targetContainerName: "app", but user "alice" may not target a container (no one may target a container here): run kubectl debug without --target"#
        );
    }

    #[test]
    fn allowed_users_may_target() {
        let s = settings(r#"{"allowedUsers": ["bob"]}"#);
        assert!(judge_as(targeting("app"), "bob", &[], &s).allowed);
        let d = judge_as(targeting("app"), "alice", &[], &s);
        assert!(
            d.message.contains(r#"user "alice" may not target a container (only users [bob] may target containers)"#),
            "{}",
            d.message
        );
    }

    #[test]
    fn members_of_allowed_groups_may_target() {
        let s = settings(r#"{"allowedGroups": ["sre", "oncall"]}"#);
        assert!(judge_as(targeting("app"), "alice", &["dev", "oncall"], &s).allowed);
        let d = judge_as(targeting("app"), "alice", &["dev"], &s);
        assert!(d.message.contains("only members of groups [sre, oncall] may target containers"), "{}", d.message);

        let both = settings(r#"{"allowedGroups": ["sre"], "allowedUsers": ["bob"]}"#);
        let d = judge_as(targeting("app"), "alice", &["dev"], &both);
        assert!(
            d.message.contains("only users [bob] and members of groups [sre] may target containers"),
            "{}",
            d.message
        );
    }

    #[test]
    fn protected_containers_are_denied_to_everyone() {
        let s = settings(
            r#"{"allowedGroups": ["sre"], "allowedUsers": ["alice"], "protectedContainers": ["vault-agent"]}"#,
        );
        let d = judge_as(targeting("vault-agent"), "alice", &["sre"], &s);
        assert!(!d.allowed);
        assert!(d.message.contains(r#"container "vault-agent" is protected"#), "{}", d.message);
        assert!(judge_as(targeting("app"), "alice", &["sre"], &s).allowed);
    }

    #[test]
    fn an_existing_targeting_container_is_not_judged_again() {
        let mut pod = web_pod();
        pod["spec"]["ephemeralContainers"] = json!([{"name": "old", "image": "busybox", "targetContainerName": "app"}]);
        let bytes = debug_request(&pod, json!({"name": "dbg", "image": "busybox"}), "alice", &[]);
        assert!(evaluate(&Request::parse(&bytes).unwrap(), &TargetSettings::default()).unwrap().allowed);
    }

    #[test]
    fn bad_settings_are_refused() {
        let err = settings_from_json::<TargetSettings>(br#"{"allowedGroups": [""]}"#).unwrap_err();
        assert!(err.message().contains("allowedGroups holds an empty entry"), "{err}");
        assert!(settings_from_json::<TargetSettings>(br#"{"protectedContainers": [" "]}"#).is_err());
        assert!(settings_from_json::<TargetSettings>(br#"{"allowedUsers": "bob"}"#).is_err());
        assert!(settings_from_json::<TargetSettings>(br#"{"allowedUser": ["bob"]}"#).is_err());
    }
}
