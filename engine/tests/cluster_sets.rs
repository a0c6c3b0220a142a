//! What a set read from the API server needs: namespaced `Policy` objects
//! that judge only their namespace, and a set that loads around a broken
//! object instead of failing whole.

mod support;

use std::path::Path;

use egate_engine::PolicySet;
use serde_json::{Value, json};
use support::{debug_review_of, manifest, sandbox, web_pod};

fn pod_in(namespace: &str) -> Value {
    let mut pod = web_pod();
    pod["metadata"]["namespace"] = json!(namespace);
    pod
}

fn privileged_debug() -> Value {
    json!({"name": "dbg", "image": "busybox:1.36", "securityContext": {"privileged": true}})
}

#[test]
fn a_namespaced_policy_judges_only_its_namespace_and_is_named_with_it() {
    let mut policy = manifest("privileged", json!({}));
    policy["kind"] = json!("Policy");
    policy["metadata"] = json!({"name": "no-privileged", "namespace": "shop"});
    let set = PolicySet::from_manifests(&sandbox(), Path::new("policy.yaml"), &policy.to_string()).unwrap();
    assert_eq!(set.policies()[0].name(), "shop/no-privileged");

    let in_shop = set.review(&debug_review_of(&pod_in("shop"), privileged_debug(), "alice", &[])).unwrap();
    assert!(!in_shop.allowed);
    assert!(in_shop.status.unwrap().message.starts_with("shop/no-privileged: "));
    let elsewhere = set.review(&debug_review_of(&pod_in("dev"), privileged_debug(), "alice", &[])).unwrap();
    assert!(elsewhere.allowed);
}

#[test]
fn kind_and_namespace_must_agree() {
    let mut cluster_with_namespace = manifest("privileged", json!({}));
    cluster_with_namespace["metadata"]["namespace"] = json!("shop");
    let err = PolicySet::from_manifests(&sandbox(), Path::new("c.yaml"), &cluster_with_namespace.to_string());
    assert!(err.err().unwrap().to_string().contains("write kind: Policy"));
    let mut policy_without = manifest("privileged", json!({}));
    policy_without["kind"] = json!("Policy");
    let err = PolicySet::from_manifests(&sandbox(), Path::new("p.yaml"), &policy_without.to_string());
    assert!(err.err().unwrap().to_string().contains("give it a metadata.namespace"));
}

#[test]
fn a_broken_policy_is_left_out_with_its_error_and_the_others_load() {
    let good = manifest("privileged", json!({}));
    let bad_settings = manifest("max-count", json!({"max": -1}));
    let mut unknown = manifest("privileged", json!({}));
    unknown["metadata"]["name"] = json!("typo");
    unknown["spec"]["module"] = json!("builtin:privilegd");
    let texts: Vec<String> = [&good, &bad_settings, &unknown].iter().map(|m| m.to_string()).collect();
    let origins = [Path::new("cluster/a"), Path::new("cluster/b"), Path::new("cluster/c")];
    let manifests: Vec<(&Path, &str)> = origins.iter().copied().zip(texts.iter().map(String::as_str)).collect();
    let (set, errors) = PolicySet::load_each(&sandbox(), &manifests);
    assert_eq!(set.policies().iter().map(|p| p.name()).collect::<Vec<_>>(), ["test-privileged"]);
    let failed: Vec<usize> = errors.iter().map(|(index, _)| *index).collect();
    assert_eq!(failed, [1, 2]);
    assert!(errors[0].1.to_string().contains("invalid spec.settings"), "{}", errors[0].1);
    assert!(errors[1].1.to_string().contains("there is no built-in policy \"privilegd\""), "{}", errors[1].1);
    assert!(!set.review(&debug_review_of(&web_pod(), privileged_debug(), "alice", &[])).unwrap().allowed);
}
