//! Built-in policy `max-count` (`builtin:max-count`): caps how many
//! ephemeral containers one pod may hold. Ephemeral containers cannot be
//! removed from a pod, so each `kubectl debug` grows the pod's spec (and
//! its status) for the rest of its life.
//!
//! A request that adds ephemeral containers is denied when the pod would
//! then hold more than `max` (default 3) in total, counting the ones it
//! already has. `max: 0` forbids debug containers altogether.

use egate_guest::{Decision, Error, Request, Settings};
use serde::Deserialize;

/// Settings of `max-count`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct MaxCountSettings {
    /// Most ephemeral containers a pod may hold; 0 allows none.
    pub max: u32,
}

impl Default for MaxCountSettings {
    fn default() -> Self {
        Self { max: 3 }
    }
}

impl Settings for MaxCountSettings {}

fn containers(n: usize) -> String {
    if n == 1 { "1 ephemeral container".into() } else { format!("{n} ephemeral containers") }
}

/// Judges a request that adds ephemeral containers.
pub fn evaluate(request: &Request, settings: &MaxCountSettings) -> Result<Decision, Error> {
    let pods = request.pods()?;
    let new: Vec<String> = pods.new_ephemeral_containers().map(|c| format!("{:?}", c.name)).collect();
    let total = pods.object.as_ref().map_or(0, |p| p.spec.ephemeral_containers.len());
    let max = settings.max as usize;
    if new.is_empty() || total <= max {
        return Ok(Decision::allow());
    }
    let adding = match new.as_slice() {
        [one] => format!("ephemeral container {one}"),
        many => format!("ephemeral containers {}", many.join(", ")),
    };
    if max == 0 {
        return Ok(Decision::deny(format!(
            "{adding} may not be added: the maximum is 0 ephemeral containers per pod, so no pod may be debugged \
             with kubectl debug here; ask the cluster's administrators to raise the max if you need to"
        )));
    }
    let pod = request
        .name
        .as_deref()
        .or_else(|| pods.object.as_ref().and_then(|p| p.metadata.name.as_deref()))
        .unwrap_or_default();
    Ok(Decision::deny(format!(
        "adding {adding} would give pod {pod:?} {}, more than the maximum of {max}: ephemeral containers cannot be \
         removed, so delete the pod (a Deployment or other controller recreates it without them) and debug the new one, \
         or ask the cluster's administrators for a higher max",
        containers(total)
    )))
}

egate_guest::policy!(evaluate);
egate_guest::declare_debug_container_reads!();

#[cfg(test)]
mod tests {
    use super::*;
    use egate_guest::settings_from_json;
    use egate_guest::testing::{debug_request, web_pod};
    use serde_json::{Value, json};

    /// `web` already holding `existing` ephemeral containers.
    fn pod_with(existing: usize) -> Value {
        let mut pod = web_pod();
        let old: Vec<Value> =
            (0..existing).map(|i| json!({"name": format!("old{i}"), "image": "busybox:1.36"})).collect();
        pod["spec"]["ephemeralContainers"] = json!(old);
        pod
    }

    fn judge(existing: usize, settings: &MaxCountSettings) -> Decision {
        let bytes = debug_request(&pod_with(existing), json!({"name": "dbg", "image": "busybox:1.36"}), "alice", &[]);
        evaluate(&Request::parse(&bytes).unwrap(), settings).unwrap()
    }

    #[test]
    fn up_to_three_by_default() {
        let s = MaxCountSettings::default();
        assert!(judge(0, &s).allowed);
        assert!(judge(2, &s).allowed);
        let d = judge(3, &s);
        assert!(!d.allowed);
        assert_eq!(
            d.message,
            r#"adding ephemeral container "dbg" would give pod "web" 4 ephemeral containers, more than the maximum of 3: ephemeral containers cannot be removed, so delete the pod (a Deployment or other controller recreates it without them) and debug the new one, or ask the cluster's administrators for a higher max"#
        );
    }

    #[test]
    fn max_is_a_setting() {
        let s: MaxCountSettings = settings_from_json(br#"{"max": 1}"#).unwrap();
        assert!(judge(0, &s).allowed);
        let d = judge(1, &s);
        assert!(d.message.contains(r#"pod "web" 2 ephemeral containers, more than the maximum of 1"#), "{}", d.message);
        let s: MaxCountSettings = settings_from_json(br#"{"max": 10}"#).unwrap();
        assert!(judge(9, &s).allowed);
        assert!(!judge(10, &s).allowed);
    }

    #[test]
    fn max_zero_forbids_debug_containers() {
        let s: MaxCountSettings = settings_from_json(br#"{"max": 0}"#).unwrap();
        let d = judge(0, &s);
        assert!(!d.allowed);
        assert!(
            d.message.starts_with(r#"ephemeral container "dbg" may not be added: the maximum is 0"#),
            "{}",
            d.message
        );
    }

    #[test]
    fn a_request_adding_no_container_is_not_judged() {
        let pod = pod_with(5);
        let mut review: Value =
            serde_json::from_slice(&debug_request(&pod, json!({"name": "x"}), "alice", &[])).unwrap();
        review["object"] = review["oldObject"].clone();
        let bytes = serde_json::to_vec(&review).unwrap();
        assert!(evaluate(&Request::parse(&bytes).unwrap(), &MaxCountSettings::default()).unwrap().allowed);
    }

    #[test]
    fn bad_settings_are_refused() {
        let err = settings_from_json::<MaxCountSettings>(br#"{"max": -1}"#).unwrap_err();
        assert!(err.message().starts_with("cannot read settings: max: invalid value: integer `-1`"), "{err}");
        assert!(settings_from_json::<MaxCountSettings>(br#"{"max": "3"}"#).is_err());
        assert!(settings_from_json::<MaxCountSettings>(br#"{"maximum": 3}"#).is_err());
    }
}
