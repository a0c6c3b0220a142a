//! Built-in policy `harden` (`builtin:harden`): a mutating policy that fills
//! in the security settings a new ephemeral container left out, and never
//! changes one the user wrote.
//!
//! For each ephemeral container the request adds, and only where the field
//! is absent, it sets:
//!
//! - `securityContext.allowPrivilegeEscalation` to the setting
//!   `allowPrivilegeEscalation` (default `false`). `false` is skipped for a
//!   container with `privileged: true` or `capabilities.add: [CAP_SYS_ADMIN]`:
//!   the API server refuses that combination, so the patch would turn a
//!   working `kubectl debug` into a validation error.
//! - `securityContext.capabilities.drop: [ALL]` when `dropAllCapabilities`
//!   (default `true`) and the container has no `drop` list. A `drop` list
//!   without `ALL` is the user's choice and is kept. (The API server omits
//!   empty lists, so `drop: []` counts as no list.)
//! - `securityContext.runAsNonRoot: true` when `runAsNonRoot` (default
//!   `false`) and neither the container nor the pod sets `runAsNonRoot`, and
//!   the container does not run as user 0 (which `runAsNonRoot` would stop
//!   from starting).
//! - `securityContext.seccompProfile: {type: RuntimeDefault}` when
//!   `seccompProfile` is `RuntimeDefault` (the default) and neither the
//!   container nor the pod sets a profile. `""` leaves seccomp alone.
//!
//! Patches address `/spec/ephemeralContainers/N/...` only: on the
//! `pods/ephemeralcontainers` subresource the API server ignores every
//! other change. The policy always allows.

use egate_guest::pod::{ContainerView, PodSecurityContextView, SecurityContextView};
use egate_guest::serde_json::{Map, Value, json};
use egate_guest::{Decision, Error, PatchOp, Request, Settings};
use serde::Deserialize;

/// The seccomp profile type `harden` can set.
pub const RUNTIME_DEFAULT: &str = "RuntimeDefault";

/// Settings of `harden`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct HardenSettings {
    /// Value written to an absent `allowPrivilegeEscalation`.
    pub allow_privilege_escalation: bool,
    /// Add `capabilities.drop: [ALL]` when there is no drop list.
    pub drop_all_capabilities: bool,
    /// Add `runAsNonRoot: true` when neither container nor pod sets it.
    pub run_as_non_root: bool,
    /// `RuntimeDefault`, or `""` to leave seccomp alone.
    pub seccomp_profile: String,
}

impl Default for HardenSettings {
    fn default() -> Self {
        Self {
            allow_privilege_escalation: false,
            drop_all_capabilities: true,
            run_as_non_root: false,
            seccomp_profile: RUNTIME_DEFAULT.to_string(),
        }
    }
}

impl Settings for HardenSettings {
    fn validate(&self) -> Result<(), String> {
        match self.seccomp_profile.as_str() {
            "" | RUNTIME_DEFAULT => Ok(()),
            "Localhost" => Err("seccompProfile is \"Localhost\", which harden cannot set: a Localhost profile needs a \
                 localhostProfile path that exists on every node; write seccompProfile: RuntimeDefault, or \"\" and set \
                 the Localhost profile on the pod"
                .into()),
            other => Err(format!(
                "seccompProfile is {other:?}: write RuntimeDefault, or \"\" to leave seccomp profiles alone"
            )),
        }
    }
}

/// Fills in the absent security settings of the ephemeral containers this
/// request adds.
pub fn evaluate(request: &Request, settings: &HardenSettings) -> Result<Decision, Error> {
    let pods = request.pods()?;
    let Some(pod) = pods.object.as_ref() else { return Ok(Decision::allow()) };
    let pod_security = pods.pod_security_context();
    let mut decision = Decision::allow();
    for container in pods.new_ephemeral_containers() {
        // Names are unique within a pod; the index addresses the container.
        let Some(index) = pod.spec.ephemeral_containers.iter().position(|c| c.name == container.name) else {
            continue;
        };
        for op in container_patch(index, container, pod_security, settings) {
            decision = decision.with_patch(op);
        }
    }
    Ok(decision)
}

/// The operations that harden ephemeral container number `index`.
fn container_patch(
    index: usize,
    container: &ContainerView,
    pod_security: Option<&PodSecurityContextView>,
    settings: &HardenSettings,
) -> Vec<PatchOp> {
    let own = container.security_context.as_ref();
    let effective = container.effective_security_context(pod_security);
    let mut fields = Map::new();
    // `drop` alone, when `capabilities` exists and only the list is missing.
    let mut drop_only = false;

    if own.and_then(|s| s.allow_privilege_escalation).is_none()
        && (settings.allow_privilege_escalation || !escalation_is_forced(own))
    {
        fields.insert("allowPrivilegeEscalation".into(), settings.allow_privilege_escalation.into());
    }
    if settings.drop_all_capabilities {
        match own.and_then(|s| s.capabilities.as_ref()) {
            None => {
                fields.insert("capabilities".into(), json!({"drop": ["ALL"]}));
            }
            Some(capabilities) if capabilities.drop.is_empty() => drop_only = true,
            Some(_) => {} // the user's drop list, with or without ALL
        }
    }
    if settings.run_as_non_root && effective.run_as_non_root.is_none() && effective.run_as_user != Some(0) {
        fields.insert("runAsNonRoot".into(), true.into());
    }
    if settings.seccomp_profile == RUNTIME_DEFAULT && effective.seccomp_profile.is_none() {
        fields.insert("seccompProfile".into(), json!({"type": RUNTIME_DEFAULT}));
    }

    let index = index.to_string();
    let at = |rest: &[&str]| {
        PatchOp::pointer(["spec", "ephemeralContainers", index.as_str(), "securityContext"].iter().chain(rest))
    };
    if own.is_none() {
        // No securityContext (or `null`): one `add` creates it whole.
        return if fields.is_empty() { Vec::new() } else { vec![PatchOp::add(at(&[]), Value::Object(fields))] };
    }
    let mut ops: Vec<PatchOp> = fields.into_iter().map(|(key, value)| PatchOp::add(at(&[&key]), value)).collect();
    if drop_only {
        ops.push(PatchOp::add(at(&["capabilities", "drop"]), json!(["ALL"])));
    }
    ops
}

/// `true` when the API server would refuse `allowPrivilegeEscalation: false`
/// next to what the user wrote (`privileged: true`, or adding `CAP_SYS_ADMIN`).
fn escalation_is_forced(own: Option<&SecurityContextView>) -> bool {
    let Some(own) = own else { return false };
    own.privileged == Some(true)
        || own.capabilities.as_ref().is_some_and(|c| c.add.iter().any(|cap| cap == "CAP_SYS_ADMIN"))
}

egate_guest::policy!(evaluate);
egate_guest::declare_debug_container_reads!();

#[cfg(test)]
mod tests {
    use super::*;
    use egate_guest::settings_from_json;
    use egate_guest::testing::{debug_request, web_pod};
    use serde_json::json;

    /// A pod with an earlier, bare debug container `old`, so the new one is
    /// number 1.
    fn pod_with_old_debug() -> Value {
        let mut pod = web_pod();
        pod["spec"]["ephemeralContainers"] = json!([{"name": "old", "image": "busybox:1.36"}]);
        pod
    }

    /// Runs harden on `debug` added to `pod`; returns the decision and the
    /// object with its patch applied.
    fn harden_in(pod: &Value, debug: Value, settings: &HardenSettings) -> (Decision, Value) {
        let bytes = debug_request(pod, debug, "alice", &[]);
        let decision = evaluate(&Request::parse(&bytes).unwrap(), settings).unwrap();
        assert!(decision.allowed);
        let request: Value = serde_json::from_slice(&bytes).unwrap();
        (decision.clone(), apply(&request["object"], &decision))
    }

    fn apply(object: &Value, decision: &Decision) -> Value {
        for op in &decision.patch {
            let path = match op {
                PatchOp::Add { path, .. } => path,
                other => panic!("harden only adds, got {other:?}"),
            };
            assert!(path.starts_with("/spec/ephemeralContainers/"), "{path}");
        }
        let patch: json_patch::Patch = serde_json::from_value(serde_json::to_value(&decision.patch).unwrap()).unwrap();
        let mut object = object.clone();
        json_patch::patch(&mut object, &patch).unwrap_or_else(|e| panic!("the patch {patch:?} does not apply: {e}"));
        object
    }

    /// The new debug container's securityContext after harden, with the
    /// pod of [`pod_with_old_debug`].
    fn hardened(debug: Value, settings: &HardenSettings) -> Value {
        let (_, object) = harden_in(&pod_with_old_debug(), debug, settings);
        assert_eq!(object["spec"]["ephemeralContainers"][0], json!({"name": "old", "image": "busybox:1.36"}));
        object["spec"]["ephemeralContainers"][1]["securityContext"].clone()
    }

    fn with(security_context: Value) -> Value {
        json!({"name": "dbg", "image": "busybox:1.36", "securityContext": security_context})
    }

    fn bare() -> Value {
        json!({"name": "dbg", "image": "busybox:1.36"})
    }

    fn all_on() -> HardenSettings {
        HardenSettings { run_as_non_root: true, ..Default::default() }
    }

    #[test]
    fn a_bare_container_gets_one_whole_security_context_by_default() {
        let (decision, object) = harden_in(&pod_with_old_debug(), bare(), &HardenSettings::default());
        assert_eq!(
            decision.patch,
            [PatchOp::add(
                "/spec/ephemeralContainers/1/securityContext",
                json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                       "seccompProfile": {"type": "RuntimeDefault"}})
            )]
        );
        assert_eq!(object["spec"]["ephemeralContainers"][1]["image"], "busybox:1.36");
        assert!(decision.warnings.is_empty() && decision.message.is_empty());
    }

    #[test]
    fn with_every_setting_on_a_bare_container_gets_all_four_fields() {
        assert_eq!(
            hardened(bare(), &all_on()),
            json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": true,
                   "seccompProfile": {"type": "RuntimeDefault"}})
        );
    }

    #[test]
    fn an_existing_security_context_gets_only_the_missing_fields() {
        let (decision, object) = harden_in(
            &pod_with_old_debug(),
            with(json!({"readOnlyRootFilesystem": true, "runAsUser": 1000})),
            &all_on(),
        );
        assert!(decision.patch.len() == 4, "{:?}", decision.patch);
        assert_eq!(
            object["spec"]["ephemeralContainers"][1]["securityContext"],
            json!({"readOnlyRootFilesystem": true, "runAsUser": 1000, "allowPrivilegeEscalation": false,
                   "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}})
        );
    }

    #[test]
    fn null_security_context_and_capabilities_are_filled_in() {
        assert_eq!(hardened(with(Value::Null), &HardenSettings::default())["capabilities"], json!({"drop": ["ALL"]}));
        assert_eq!(
            hardened(with(json!({"capabilities": null})), &HardenSettings::default())["capabilities"],
            json!({"drop": ["ALL"]})
        );
    }

    #[test]
    fn a_fully_set_container_is_not_patched() {
        let full = with(json!({"allowPrivilegeEscalation": true, "capabilities": {"drop": ["NET_RAW"]},
                               "runAsNonRoot": false, "seccompProfile": {"type": "Unconfined"}}));
        let (decision, _) = harden_in(&pod_with_old_debug(), full, &all_on());
        assert!(decision.patch.is_empty(), "{:?}", decision.patch);
        assert_eq!(decision, Decision::allow());
    }

    #[test]
    fn allow_privilege_escalation_is_never_overridden() {
        for (written, setting) in [(true, false), (false, true), (false, false), (true, true)] {
            let settings = HardenSettings { allow_privilege_escalation: setting, ..Default::default() };
            let sc = hardened(with(json!({"allowPrivilegeEscalation": written})), &settings);
            assert_eq!(sc["allowPrivilegeEscalation"], written, "written {written}, setting {setting}");
        }
    }

    #[test]
    fn allow_privilege_escalation_setting_is_the_value_written() {
        let settings = HardenSettings { allow_privilege_escalation: true, ..Default::default() };
        assert_eq!(hardened(bare(), &settings)["allowPrivilegeEscalation"], true);
        assert_eq!(hardened(bare(), &HardenSettings::default())["allowPrivilegeEscalation"], false);
    }

    #[test]
    fn no_escalation_false_where_the_api_server_would_refuse_it() {
        let privileged = hardened(with(json!({"privileged": true})), &HardenSettings::default());
        assert_eq!(privileged.get("allowPrivilegeEscalation"), None, "{privileged}");
        assert_eq!(privileged["capabilities"], json!({"drop": ["ALL"]}));
        let sys_admin = hardened(with(json!({"capabilities": {"add": ["CAP_SYS_ADMIN"]}})), &HardenSettings::default());
        assert_eq!(sys_admin.get("allowPrivilegeEscalation"), None, "{sys_admin}");
        // true is always valid, so the setting true still writes it.
        let settings = HardenSettings { allow_privilege_escalation: true, ..Default::default() };
        assert_eq!(hardened(with(json!({"privileged": true})), &settings)["allowPrivilegeEscalation"], true);
        // privileged: false changes nothing.
        assert_eq!(
            hardened(with(json!({"privileged": false})), &HardenSettings::default())["allowPrivilegeEscalation"],
            false
        );
    }

    #[test]
    fn drop_all_is_added_only_where_there_is_no_drop_list() {
        let user_drop = hardened(with(json!({"capabilities": {"drop": ["NET_RAW"]}})), &HardenSettings::default());
        assert_eq!(user_drop["capabilities"], json!({"drop": ["NET_RAW"]}));
        let user_all = hardened(with(json!({"capabilities": {"drop": ["all"]}})), &HardenSettings::default());
        assert_eq!(user_all["capabilities"], json!({"drop": ["all"]}));
        // kubectl debug --profile=netadmin: adds, no drop list.
        let netadmin =
            hardened(with(json!({"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}})), &HardenSettings::default());
        assert_eq!(netadmin["capabilities"], json!({"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]}));
        let empty = hardened(with(json!({"capabilities": {"drop": []}})), &HardenSettings::default());
        assert_eq!(empty["capabilities"], json!({"drop": ["ALL"]}));
    }

    #[test]
    fn drop_all_capabilities_false_leaves_capabilities_alone() {
        let settings = HardenSettings { drop_all_capabilities: false, ..Default::default() };
        assert_eq!(hardened(bare(), &settings).get("capabilities"), None);
        let with_add = hardened(with(json!({"capabilities": {"add": ["NET_ADMIN"]}})), &settings);
        assert_eq!(with_add["capabilities"], json!({"add": ["NET_ADMIN"]}));
    }

    #[test]
    fn run_as_non_root_is_off_by_default() {
        assert_eq!(hardened(bare(), &HardenSettings::default()).get("runAsNonRoot"), None);
        assert_eq!(hardened(bare(), &all_on())["runAsNonRoot"], true);
    }

    #[test]
    fn run_as_non_root_is_never_overridden_at_container_or_pod_level() {
        assert_eq!(hardened(with(json!({"runAsNonRoot": false})), &all_on())["runAsNonRoot"], false);
        for pod_value in [true, false] {
            let mut pod = pod_with_old_debug();
            pod["spec"]["securityContext"] = json!({"runAsNonRoot": pod_value});
            let (_, object) = harden_in(&pod, bare(), &all_on());
            let sc = &object["spec"]["ephemeralContainers"][1]["securityContext"];
            assert_eq!(sc.get("runAsNonRoot"), None, "pod sets {pod_value}: {sc}");
            assert_eq!(object["spec"]["securityContext"], json!({"runAsNonRoot": pod_value}));
        }
    }

    #[test]
    fn run_as_non_root_is_not_added_to_a_container_that_runs_as_root() {
        assert_eq!(hardened(with(json!({"runAsUser": 0})), &all_on()).get("runAsNonRoot"), None);
        let mut pod = pod_with_old_debug();
        pod["spec"]["securityContext"] = json!({"runAsUser": 0});
        let (_, object) = harden_in(&pod, bare(), &all_on());
        assert_eq!(object["spec"]["ephemeralContainers"][1]["securityContext"].get("runAsNonRoot"), None);
        // A container's own non-root user wins over the pod's root.
        let (_, object) = harden_in(&pod, with(json!({"runAsUser": 1000})), &all_on());
        assert_eq!(object["spec"]["ephemeralContainers"][1]["securityContext"]["runAsNonRoot"], true);
    }

    #[test]
    fn seccomp_profile_is_never_overridden_at_container_or_pod_level() {
        let localhost = json!({"type": "Localhost", "localhostProfile": "profiles/debug.json"});
        let own = hardened(with(json!({"seccompProfile": localhost})), &HardenSettings::default());
        assert_eq!(own["seccompProfile"], localhost);
        let unconfined = hardened(with(json!({"seccompProfile": {"type": "Unconfined"}})), &HardenSettings::default());
        assert_eq!(unconfined["seccompProfile"], json!({"type": "Unconfined"}));

        let mut pod = pod_with_old_debug();
        pod["spec"]["securityContext"] = json!({"seccompProfile": {"type": "Unconfined"}});
        let (_, object) = harden_in(&pod, bare(), &HardenSettings::default());
        assert_eq!(object["spec"]["ephemeralContainers"][1]["securityContext"].get("seccompProfile"), None);
        assert_eq!(object["spec"]["securityContext"], json!({"seccompProfile": {"type": "Unconfined"}}));
    }

    #[test]
    fn an_empty_seccomp_profile_setting_leaves_seccomp_alone() {
        let settings = HardenSettings { seccomp_profile: String::new(), ..Default::default() };
        assert_eq!(hardened(bare(), &settings).get("seccompProfile"), None);
    }

    #[test]
    fn every_setting_off_means_no_patch() {
        let settings = HardenSettings {
            allow_privilege_escalation: false,
            drop_all_capabilities: false,
            run_as_non_root: false,
            seccomp_profile: String::new(),
        };
        // allowPrivilegeEscalation has no "off"; a privileged container is
        // the one where false is not written.
        let (decision, _) = harden_in(&pod_with_old_debug(), with(json!({"privileged": true})), &settings);
        assert!(decision.patch.is_empty(), "{:?}", decision.patch);
    }

    #[test]
    fn only_new_ephemeral_containers_are_patched() {
        // web_pod of the SDK has no ephemeral containers: the new one is number 0.
        let (decision, object) = harden_in(&web_pod(), bare(), &HardenSettings::default());
        assert_eq!(decision.patch.len(), 1);
        assert!(
            matches!(&decision.patch[0], PatchOp::Add { path, .. } if path == "/spec/ephemeralContainers/0/securityContext")
        );
        assert_eq!(object["spec"]["containers"], web_pod()["spec"]["containers"]);
        // The earlier bare container "old" stays bare.
        assert_eq!(hardened(bare(), &HardenSettings::default())["allowPrivilegeEscalation"], false);
    }

    #[test]
    fn several_new_containers_are_each_addressed_by_index() {
        let old = json!({"name": "old", "image": "busybox:1.36"});
        let request = json!({
            "operation": "UPDATE", "resource": {"resource": "pods"}, "subResource": "ephemeralcontainers",
            "object": {"spec": {"containers": [], "ephemeralContainers": [
                {"name": "a", "image": "busybox"}, old, {"name": "b", "image": "busybox", "securityContext": {}}]}},
            "oldObject": {"spec": {"containers": [], "ephemeralContainers": [old]}}
        });
        let bytes = serde_json::to_vec(&request).unwrap();
        let decision = evaluate(&Request::parse(&bytes).unwrap(), &HardenSettings::default()).unwrap();
        let object = apply(&request["object"], &decision);
        let list = &object["spec"]["ephemeralContainers"];
        assert_eq!(list[0]["securityContext"]["capabilities"], json!({"drop": ["ALL"]}));
        assert_eq!(list[1], old);
        assert_eq!(list[2]["securityContext"]["seccompProfile"], json!({"type": "RuntimeDefault"}));
    }

    #[test]
    fn hardening_twice_changes_nothing_the_second_time() {
        let bytes = debug_request(&pod_with_old_debug(), with(json!({"capabilities": {}})), "alice", &[]);
        let mut request: Value = serde_json::from_slice(&bytes).unwrap();
        let first = evaluate(&Request::parse(&bytes).unwrap(), &all_on()).unwrap();
        assert!(!first.patch.is_empty());
        request["object"] = apply(&request["object"], &first);
        let again = serde_json::to_vec(&request).unwrap();
        let second = evaluate(&Request::parse(&again).unwrap(), &all_on()).unwrap();
        assert_eq!(second, Decision::allow());
    }

    #[test]
    fn a_request_without_an_object_is_allowed_unpatched() {
        let bytes = br#"{"operation": "UPDATE", "resource": {"resource": "pods"}}"#;
        assert_eq!(evaluate(&Request::parse(bytes).unwrap(), &HardenSettings::default()).unwrap(), Decision::allow());
    }

    #[test]
    fn settings_defaults_and_values() {
        assert_eq!(settings_from_json::<HardenSettings>(b"").unwrap(), HardenSettings::default());
        let s: HardenSettings = settings_from_json(
            br#"{"allowPrivilegeEscalation": true, "dropAllCapabilities": false, "runAsNonRoot": true, "seccompProfile": ""}"#,
        )
        .unwrap();
        assert_eq!(
            s,
            HardenSettings {
                allow_privilege_escalation: true,
                drop_all_capabilities: false,
                run_as_non_root: true,
                seccomp_profile: String::new()
            }
        );
    }

    #[test]
    fn bad_settings_are_refused_with_what_to_write() {
        let localhost = settings_from_json::<HardenSettings>(br#"{"seccompProfile": "Localhost"}"#).unwrap_err();
        assert!(localhost.message().contains("needs a localhostProfile path"), "{localhost}");
        let unconfined = settings_from_json::<HardenSettings>(br#"{"seccompProfile": "Unconfined"}"#).unwrap_err();
        assert!(unconfined.message().contains("write RuntimeDefault"), "{unconfined}");
        let typo = settings_from_json::<HardenSettings>(br#"{"dropAll": true}"#).unwrap_err();
        assert!(typo.message().contains("unknown field `dropAll`"), "{typo}");
        let wrong_type = settings_from_json::<HardenSettings>(br#"{"runAsNonRoot": "yes"}"#).unwrap_err();
        assert!(wrong_type.message().contains("runAsNonRoot"), "{wrong_type}");
    }
}
