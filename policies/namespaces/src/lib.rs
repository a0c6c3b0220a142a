//! Built-in policy `namespaces` (`builtin:namespaces`): keeps debug
//! containers out of namespaces and pods that must not be debugged.
//!
//! A request that adds ephemeral containers is denied when its namespace
//! matches one of `deniedNamespaces` (globs, `*` and `?`), or when the pod
//! is labelled `egate.dev/debug: deny`, unless the requesting user belongs
//! to one of `breakGlassGroups`. A break-glass admission is allowed with a
//! warning to the user and an audit annotation (`break-glass`) saying who
//! used which group against which rule.

use std::borrow::Cow;

use egate_guest::{Decision, Error, Glob, Request, Settings};
use serde::Deserialize;

/// The label that opts one pod out of debugging.
pub const DEBUG_LABEL: &str = "egate.dev/debug";
/// The value of [`DEBUG_LABEL`] that denies debugging.
pub const DENY: &str = "deny";

/// Settings of `namespaces`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct NamespaceSettings {
    /// Globs over namespace names where debug containers are denied.
    pub denied_namespaces: Vec<Glob>,
    /// Members of these groups may debug anyway.
    pub break_glass_groups: Vec<String>,
}

impl Settings for NamespaceSettings {
    fn validate(&self) -> Result<(), String> {
        if self.denied_namespaces.iter().any(|g| g.as_str().trim().is_empty()) {
            return Err("deniedNamespaces holds an empty glob: write a namespace or a glob such as \"prod-*\"".into());
        }
        if self.break_glass_groups.iter().any(|g| g.trim().is_empty()) {
            return Err("breakGlassGroups holds an empty group name: write a group such as sre".into());
        }
        Ok(())
    }
}

/// Judges a request that adds ephemeral containers.
pub fn evaluate(request: &Request, settings: &NamespaceSettings) -> Result<Decision, Error> {
    let pods = request.pods()?;
    let new: Vec<String> = pods.new_ephemeral_containers().map(|c| format!("{:?}", c.name)).collect();
    if new.is_empty() {
        return Ok(Decision::allow());
    }
    let pod = pods.object.as_ref();
    let namespace: Option<&str> =
        request.namespace.as_deref().or_else(|| pod.and_then(|p| p.metadata.namespace.as_deref()));
    let pod_name: Cow<str> =
        request.name.clone().or_else(|| pod.and_then(|p| p.metadata.name.clone())).unwrap_or(Cow::Borrowed(""));

    // Why debugging is refused here, one reason per rule that matched.
    let mut reasons = Vec::new();
    if let Some(namespace) = namespace
        && let Some(glob) = settings.denied_namespaces.iter().find(|g| g.matches(namespace))
    {
        reasons.push(format!("namespace {namespace:?} matches the denied namespace glob {:?}", glob.as_str()));
    }
    if pod.and_then(|p| p.metadata.labels.get(DEBUG_LABEL)).is_some_and(|v| v == DENY) {
        reasons.push(format!("pod {pod_name:?} is labelled {DEBUG_LABEL}: {DENY}"));
    }
    if reasons.is_empty() {
        return Ok(Decision::allow());
    }

    let containers = match new.as_slice() {
        [one] => format!("ephemeral container {one}"),
        many => format!("ephemeral containers {}", many.join(", ")),
    };
    let user = &request.user_info;
    if let Some(group) = settings.break_glass_groups.iter().find(|g| user.in_group(g)) {
        let note = format!(
            "user {:?} used break-glass group {group:?} to add {containers}: {}",
            user.username,
            reasons.join(" and ")
        );
        return Ok(Decision::allow()
            .with_warning(format!("{note}; this debug session is audited"))
            .with_audit_annotation("break-glass", note));
    }
    let who = if settings.break_glass_groups.is_empty() {
        "no one may debug here (no breakGlassGroups are configured)".to_string()
    } else {
        format!("only members of the break-glass groups [{}] may debug here", settings.break_glass_groups.join(", "))
    };
    let violations =
        reasons.into_iter().map(|reason| format!("{containers} may not be added: {reason}; {who}")).collect();
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

    fn dbg() -> Value {
        json!({"name": "dbg", "image": "busybox:1.36"})
    }

    fn pod_in(namespace: &str) -> Value {
        let mut pod = web_pod();
        pod["metadata"]["namespace"] = json!(namespace);
        pod
    }

    fn labelled(value: &str) -> Value {
        let mut pod = web_pod();
        pod["metadata"]["labels"][DEBUG_LABEL] = json!(value);
        pod
    }

    fn judge(pod: &Value, groups: &[&str], settings: &NamespaceSettings) -> Decision {
        let bytes = debug_request(pod, dbg(), "alice", groups);
        evaluate(&Request::parse(&bytes).unwrap(), settings).unwrap()
    }

    fn settings(json: &str) -> NamespaceSettings {
        settings_from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn by_default_every_namespace_is_allowed() {
        assert!(judge(&pod_in("kube-system"), &[], &NamespaceSettings::default()).allowed);
        assert!(judge(&labelled("allow"), &[], &NamespaceSettings::default()).allowed);
    }

    #[test]
    fn denied_namespace_globs() {
        let s = settings(r#"{"deniedNamespaces": ["kube-*", "prod"]}"#);
        let d = judge(&pod_in("kube-system"), &[], &s);
        assert!(!d.allowed);
        assert_eq!(
            d.message,
            r#"ephemeral container "dbg" may not be added: namespace "kube-system" matches the denied namespace glob "kube-*"; no one may debug here (no breakGlassGroups are configured)"#
        );
        assert!(!judge(&pod_in("prod"), &[], &s).allowed);
        assert!(judge(&pod_in("production"), &[], &s).allowed);
        assert!(judge(&pod_in("shop"), &[], &s).allowed);
    }

    #[test]
    fn the_deny_label_denies_in_any_namespace() {
        let d = judge(&labelled("deny"), &[], &NamespaceSettings::default());
        assert!(!d.allowed);
        assert!(
            d.message.contains(r#"may not be added: pod "web" is labelled egate.dev/debug: deny"#),
            "{}",
            d.message
        );
        assert!(judge(&labelled("Deny-not"), &[], &NamespaceSettings::default()).allowed);
    }

    #[test]
    fn break_glass_groups_are_named_and_let_members_through_with_an_audit_trail() {
        let s = settings(r#"{"deniedNamespaces": ["shop"], "breakGlassGroups": ["sre", "oncall"]}"#);
        let d = judge(&labelled("deny"), &["dev"], &s);
        assert!(!d.allowed);
        assert_eq!(
            d.message.matches("only members of the break-glass groups [sre, oncall] may debug here").count(),
            2,
            "{}",
            d.message
        );
        assert!(
            d.message.contains(r#"namespace "shop" matches"#) && d.message.contains("is labelled"),
            "{}",
            d.message
        );

        let d = judge(&labelled("deny"), &["dev", "oncall"], &s);
        assert!(d.allowed);
        assert!(
            d.warnings[0].starts_with(
                r#"user "alice" used break-glass group "oncall" to add ephemeral container "dbg": namespace "shop""#
            ),
            "{:?}",
            d.warnings
        );
        assert!(d.audit_annotations["break-glass"].contains("egate.dev/debug: deny"), "{:?}", d.audit_annotations);
        // Nothing to break when no rule matched: no warning, no annotation.
        let quiet = judge(&pod_in("dev"), &["sre"], &s);
        assert!(quiet.allowed && quiet.warnings.is_empty() && quiet.audit_annotations.is_empty());
    }

    #[test]
    fn a_request_adding_no_container_is_not_judged() {
        let pod = labelled("deny");
        let mut review: Value = serde_json::from_slice(&debug_request(&pod, dbg(), "alice", &[])).unwrap();
        review["object"] = review["oldObject"].clone();
        let bytes = serde_json::to_vec(&review).unwrap();
        assert!(evaluate(&Request::parse(&bytes).unwrap(), &NamespaceSettings::default()).unwrap().allowed);
    }

    #[test]
    fn bad_settings_are_refused() {
        let err = settings_from_json::<NamespaceSettings>(br#"{"deniedNamespaces": [""]}"#).unwrap_err();
        assert!(err.message().contains("deniedNamespaces holds an empty glob"), "{err}");
        assert!(settings_from_json::<NamespaceSettings>(br#"{"breakGlassGroups": [" "]}"#).is_err());
        assert!(settings_from_json::<NamespaceSettings>(br#"{"deniedNamespace": ["x"]}"#).is_err());
    }
}
