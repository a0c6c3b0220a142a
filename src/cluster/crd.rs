//! egate's custom resources: `ClusterPolicy` (cluster-scoped) and `Policy`
//! (namespaced), `egate.dev/v1`. Their `spec` is exactly the engine's
//! manifest spec, so the YAML of a policy file applies as it is; their
//! schemas are generated from the engine's types and checked in under
//! `deploy/crds/` (a test below keeps the two the same; run it with
//! `EGATE_UPDATE_CRDS=1` to rewrite them).

use egate_engine::manifest::Spec;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Defines the spec type of one of the two kinds: both hold a manifest's
/// spec, with the same status and printer columns; they differ in kind,
/// names and scope.
macro_rules! policy_kind {
    ($(#[$doc:meta])* $spec:ident, $kind:literal, $plural:literal, $short:literal $(, $namespaced:ident)?) => {
        $(#[$doc])*
        #[derive(CustomResource, Debug, Clone, Serialize, Deserialize, JsonSchema)]
        #[kube(
            group = "egate.dev",
            version = "v1",
            kind = $kind,
            plural = $plural,
            shortname = $short,
            $($namespaced,)?
            status = "PolicyStatus",
            printcolumn = r#"{"name": "Action", "type": "string", "jsonPath": ".spec.failureAction"}"#,
            printcolumn = r#"{"name": "Mutating", "type": "boolean", "jsonPath": ".spec.mutating"}"#,
            printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
            printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
        )]
        #[serde(transparent)]
        pub struct $spec(pub Spec);
    };
}

policy_kind!(
    /// The spec of a `ClusterPolicy`: a policy manifest's spec.
    ClusterPolicySpec, "ClusterPolicy", "clusterpolicies", "ecpol"
);

policy_kind!(
    /// The spec of a namespaced `Policy`: the same spec; the policy judges
    /// only requests in its own namespace.
    PolicySpec, "Policy", "policies", "epol", namespaced
);

/// What egate found when it loaded the policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatus {
    /// `Ready`: `True` once the policy is loaded and judging requests,
    /// `False` with the load error as its message.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Every definition egate ships, as `deploy/crds/` holds them: its two
/// policy kinds, and the PolicyReport kinds it writes.
pub fn definitions() -> Vec<CustomResourceDefinition> {
    let mut all = vec![ClusterPolicy::crd(), Policy::crd(), super::grants::definition()];
    all.extend(super::report::definitions());
    all
}

/// The YAML of a definition, as checked in.
pub fn to_yaml(crd: &CustomResourceDefinition) -> String {
    let header = "# Generated from egate's manifest types by src/cluster/crd.rs: do not edit. To regenerate:\n\
                  #   EGATE_UPDATE_CRDS=1 cargo test --bin egate cluster::crd\n";
    format!("{header}{}", egate_engine::yaml::to_string(crd).expect("a CRD serialises"))
}

/// `egate crds`: every definition, as one YAML stream.
pub fn print_definitions() -> anyhow::Result<std::process::ExitCode> {
    let documents: Vec<String> = definitions().iter().map(to_yaml).collect();
    print!("{}", documents.join("---\n"));
    Ok(std::process::ExitCode::SUCCESS)
}

/// Where a definition is checked in: for `kubectl apply`, and in the Helm chart.
#[cfg(test)]
fn checked_in_paths(crd: &CustomResourceDefinition) -> [std::path::PathBuf; 2] {
    let file = format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    [root.join("deploy/crds").join(&file), root.join("deploy/helm/egate/crds").join(&file)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_in_definitions_are_the_generated_ones() {
        for (crd, path) in definitions().iter().flat_map(|crd| checked_in_paths(crd).map(|path| (crd, path))) {
            let generated = to_yaml(crd);
            if std::env::var_os("EGATE_UPDATE_CRDS").is_some() {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &generated).unwrap();
            }
            let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                checked_in == generated,
                "{} is not what src/cluster/crd.rs generates: run EGATE_UPDATE_CRDS=1 cargo test --bin egate cluster::crd",
                path.display()
            );
        }
    }

    #[test]
    fn the_schema_keeps_settings_and_names_the_enums() {
        let crd = serde_json::to_value(ClusterPolicy::crd()).unwrap();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(spec["properties"]["settings"]["x-kubernetes-preserve-unknown-fields"], true, "{spec}");
        assert_eq!(spec["properties"]["failureAction"]["enum"], serde_json::json!(["Enforce", "Audit", "Warn"]));
        assert_eq!(spec["required"], serde_json::json!(["match"]), "{spec}");
        assert_eq!(crd["spec"]["scope"], "Cluster");
        assert_eq!(serde_json::to_value(Policy::crd()).unwrap()["spec"]["scope"], "Namespaced");
    }

    #[test]
    fn a_policy_file_reads_as_a_cluster_policy() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/policies/default.yaml")).unwrap();
        let first = text.split("\n---").find(|doc| doc.contains("kind: ClusterPolicy")).unwrap();
        let object: ClusterPolicy = egate_engine::yaml::from_str(first).unwrap();
        assert!(object.spec.0.module.as_deref().is_some_and(|m| m.starts_with("builtin:")));
    }
}
