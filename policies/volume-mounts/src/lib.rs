//! Built-in policy `volume-mounts` (`builtin:volume-mounts`): denies a new
//! ephemeral container that mounts a pod volume whose source is one of
//! `deniedVolumeSources` (default `secret`, `hostPath`, `projected`: the
//! pod's secrets, the node's filesystem, and service account tokens).
//!
//! A source is the key of a Volume object that says where its data comes
//! from, as written in the pod spec: `secret`, `hostPath`, `configMap`,
//! `emptyDir`, `persistentVolumeClaim`, `csi`, ... Keys are compared
//! exactly; a setting that differs from a known key only in case (such as
//! `hostpath`) is refused at load, since it would never match.

use egate_guest::{Decision, Error, Request, Settings};
use serde::Deserialize;

/// Settings of `volume-mounts`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeMountSettings {
    /// Volume sources a debug container may not mount.
    pub denied_volume_sources: Vec<String>,
}

impl Default for VolumeMountSettings {
    fn default() -> Self {
        Self { denied_volume_sources: ["secret", "hostPath", "projected"].map(String::from).to_vec() }
    }
}

/// The source keys of a Kubernetes Volume (core/v1, as of 1.33).
const KNOWN_SOURCES: [&str; 30] = [
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "gitRepo",
    "glusterfs",
    "hostPath",
    "image",
    "iscsi",
    "nfs",
    "persistentVolumeClaim",
    "photonPersistentDisk",
    "portworxVolume",
    "projected",
    "quobyte",
    "rbd",
    "scaleIO",
    "secret",
    "storageos",
    "vsphereVolume",
];

impl Settings for VolumeMountSettings {
    fn validate(&self) -> Result<(), String> {
        for source in &self.denied_volume_sources {
            if source.trim().is_empty() {
                return Err(
                    "deniedVolumeSources holds an empty entry: write a volume source key such as hostPath".into()
                );
            }
            if let Some(known) = KNOWN_SOURCES.iter().find(|k| k.eq_ignore_ascii_case(source) && *k != source) {
                return Err(format!(
                    "deniedVolumeSources holds {source:?}, which would never match: volume source keys are \
                     case-sensitive; write {known:?}"
                ));
            }
        }
        Ok(())
    }
}

/// `a`, `a or b`, `a, b or c`.
fn either(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Judges the ephemeral containers this request adds.
pub fn evaluate(request: &Request, settings: &VolumeMountSettings) -> Result<Decision, Error> {
    let pods = request.pods()?;
    let volumes = pods.object.as_ref().map(|p| p.spec.volumes.as_slice()).unwrap_or_default();
    let mut violations = Vec::new();
    for container in pods.new_ephemeral_containers() {
        for mount in &container.volume_mounts {
            let Some(volume) = volumes.iter().find(|v| v.name == mount.name) else { continue };
            for source in volume.sources.iter().filter(|s| settings.denied_volume_sources.iter().any(|d| d == *s)) {
                violations.push(format!(
                    "ephemeral container {:?} mounts the {source} volume {:?} at {:?}: debug containers may not \
                     mount {} volumes; remove that entry from volumeMounts",
                    container.name,
                    volume.name,
                    mount.mount_path,
                    either(&settings.denied_volume_sources)
                ));
            }
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

    fn pod() -> Value {
        let mut pod = web_pod();
        pod["spec"]["volumes"] = json!([
            {"name": "creds", "secret": {"secretName": "db"}},
            {"name": "node-root", "hostPath": {"path": "/"}},
            {"name": "kube-api-access-x1", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
            {"name": "cache", "emptyDir": {}},
            {"name": "cfg", "configMap": {"name": "web"}}
        ]);
        pod
    }

    fn mounting(volume: &str, path: &str) -> Value {
        json!({"name": "dbg", "image": "busybox:1.36", "volumeMounts": [{"name": volume, "mountPath": path}]})
    }

    fn judge(debug: Value, settings: &VolumeMountSettings) -> Decision {
        let bytes = debug_request(&pod(), debug, "alice", &[]);
        evaluate(&Request::parse(&bytes).unwrap(), settings).unwrap()
    }

    #[test]
    fn other_volumes_and_no_mounts_are_allowed() {
        let s = VolumeMountSettings::default();
        assert!(judge(mounting("cache", "/cache"), &s).allowed);
        assert!(judge(mounting("cfg", "/etc/web"), &s).allowed);
        assert!(judge(json!({"name": "dbg", "image": "busybox:1.36"}), &s).allowed);
    }

    #[test]
    fn secret_host_path_and_projected_are_denied_by_default() {
        let s = VolumeMountSettings::default();
        let d = judge(mounting("creds", "/creds"), &s);
        assert!(!d.allowed);
        assert_eq!(
            d.message,
            r#"ephemeral container "dbg" mounts the secret volume "creds" at "/creds": debug containers may not mount secret, hostPath or projected volumes; remove that entry from volumeMounts"#
        );
        let d = judge(mounting("node-root", "/host"), &s);
        assert!(d.message.contains(r#"mounts the hostPath volume "node-root" at "/host""#), "{}", d.message);
        let d = judge(mounting("kube-api-access-x1", "/var/run/secrets/kubernetes.io/serviceaccount"), &s);
        assert!(d.message.contains(r#"the projected volume "kube-api-access-x1""#), "{}", d.message);
    }

    #[test]
    fn every_denied_mount_is_reported() {
        let debug = json!({"name": "dbg", "image": "busybox:1.36", "volumeMounts": [
            {"name": "creds", "mountPath": "/creds"}, {"name": "cache", "mountPath": "/cache"},
            {"name": "node-root", "mountPath": "/host"}]});
        let d = judge(debug, &VolumeMountSettings::default());
        assert_eq!(d.message.matches("ephemeral container \"dbg\" mounts").count(), 2, "{}", d.message);
    }

    #[test]
    fn denied_sources_is_a_setting() {
        let s: VolumeMountSettings = settings_from_json(br#"{"deniedVolumeSources": ["emptyDir"]}"#).unwrap();
        assert!(judge(mounting("creds", "/creds"), &s).allowed);
        let d = judge(mounting("cache", "/cache"), &s);
        assert!(
            d.message.contains(r#"the emptyDir volume "cache""#)
                && d.message.contains("may not mount emptyDir volumes"),
            "{}",
            d.message
        );
        let none: VolumeMountSettings = settings_from_json(br#"{"deniedVolumeSources": []}"#).unwrap();
        assert!(judge(mounting("node-root", "/host"), &none).allowed);
    }

    #[test]
    fn an_existing_ephemeral_container_is_not_judged_again() {
        let mut pod = pod();
        pod["spec"]["ephemeralContainers"] = json!([mounting("creds", "/creds")]);
        let bytes = debug_request(&pod, json!({"name": "dbg2", "image": "busybox:1.36"}), "alice", &[]);
        assert!(evaluate(&Request::parse(&bytes).unwrap(), &VolumeMountSettings::default()).unwrap().allowed);
    }

    #[test]
    fn bad_settings_are_refused() {
        let err = settings_from_json::<VolumeMountSettings>(br#"{"deniedVolumeSources": [""]}"#).unwrap_err();
        assert!(err.message().contains("deniedVolumeSources holds an empty entry"), "{err}");
        let err = settings_from_json::<VolumeMountSettings>(br#"{"deniedVolumeSources": ["hostpath"]}"#).unwrap_err();
        assert!(err.message().contains(r#"write "hostPath""#), "{err}");
        // An unknown key is accepted: Kubernetes adds volume sources over time.
        assert!(settings_from_json::<VolumeMountSettings>(br#"{"deniedVolumeSources": ["futureSource"]}"#).is_ok());
        assert!(settings_from_json::<VolumeMountSettings>(br#"{"deniedVolumeSources": "secret"}"#).is_err());
    }
}
