//! Arbitrary text as policy manifests: `parse_manifests` must answer with
//! policies or an error, never panic, and every policy it returns must have
//! passed its checks (version, kind, name, timeout, operations, resources).
//! Accepted policies' match/exclude filters are then run against a request,
//! which exercises the glob and selector code on arbitrary patterns.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use egate_engine::manifest::{API_VERSION, parse_manifests};
use egate_engine::matching::Matcher;
use egate_engine::review::Review;
use libfuzzer_sys::fuzz_target;

/// A `kubectl debug` request with labels, groups and a service account.
fn review_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"UPDATE",
            "resource":{"group":"","version":"v1","resource":"pods"},"subResource":"ephemeralcontainers",
            "namespace":"shop","name":"web","userInfo":{"username":"system:serviceaccount:ci:deployer","groups":["dev","system:authenticated"]},
            "object":{"metadata":{"name":"web","labels":{"app":"web","tier":"front"}}}}}"#
            .to_vec()
    })
}

fuzz_target!(|data: &[u8]| {
    // Manifests are read as UTF-8 text: take the longest valid prefix.
    let text = match std::str::from_utf8(data) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).expect("valid prefix"),
    };
    let Ok(manifests) = parse_manifests(text) else { return };
    assert!(!manifests.is_empty(), "success means at least one policy");
    let review = Review::parse(review_bytes()).expect("the fixed review parses");
    for manifest in manifests {
        assert_eq!(manifest.api_version, API_VERSION);
        assert!(manifest.kind == "ClusterPolicy" || manifest.kind == "Policy");
        let name = &manifest.metadata.name;
        assert!(!name.is_empty() && name.len() <= 63, "{name:?}");
        assert!((1..=30_000).contains(&manifest.spec.timeout_ms));
        assert!(!manifest.spec.match_.resources.is_empty());
        assert!(manifest.spec.module.is_some() || !manifest.spec.validations.is_empty());
        let _ = manifest.module_source(Path::new("/policies"));
        let _ = Matcher::new(manifest.spec.match_, manifest.spec.exclude).judges(&review.facts);
    }
});
