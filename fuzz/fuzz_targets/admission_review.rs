//! Arbitrary bytes as an AdmissionReview: `Review::parse` must answer with
//! facts or an error, never panic, and what it accepts must hold up (the
//! request text handed to guests, and the SDK's reading of it): a
//! non-empty uid, a `request` that is JSON, routing facts matching can read,
//! and a response that echoes the uid.
#![no_main]

use std::sync::OnceLock;

use egate_engine::AdmissionResponse;
use egate_engine::manifest::{LabelOperator, LabelRequirement, LabelSelector, ResourceFilter, Subjects};
use egate_engine::matching::Matcher;
use egate_engine::review::Review;
use libfuzzer_sys::fuzz_target;

/// A matcher that reads every routing fact: resource, operation,
/// namespace, user, groups, service account and labels.
fn matcher() -> &'static Matcher {
    static MATCHER: OnceLock<Matcher> = OnceLock::new();
    MATCHER.get_or_init(|| {
        let include = ResourceFilter {
            resources: vec!["pods/*".into(), "pods".into()],
            operations: vec!["UPDATE".into(), "CREATE".into()],
            namespaces: vec!["*".into()],
            selector: Some(LabelSelector {
                match_labels: Default::default(),
                match_expressions: vec![LabelRequirement {
                    key: "tier".into(),
                    operator: LabelOperator::NotIn,
                    values: vec!["db".into()],
                }],
            }),
            subjects: None,
        };
        let exclude = ResourceFilter {
            namespaces: vec!["kube-*".into()],
            subjects: Some(Subjects {
                users: vec!["admin?".into()],
                groups: vec!["system:masters".into()],
                service_accounts: vec!["*/deployer".into()],
            }),
            ..ResourceFilter::default()
        };
        Matcher::new(include, Some(exclude))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(review) = Review::parse(data) else { return };
    let facts = &review.facts;
    assert!(!facts.uid.is_empty(), "an accepted review has a uid");
    // The raw request is skipped, not decoded, by the host: escapes such as
    // a lone surrogate get through to guests, which fail on them (a policy
    // failure under failurePolicy); labels() then reports them unreadable
    // and matching fails closed (see matching::tests::unreadable_labels_fail_closed).
    // The request text is found without reparsing it: it must be exactly
    // the `request` member serde_json sees.
    if let Ok(whole) = serde_json::from_slice::<serde_json::Value>(data) {
        let request: serde_json::Value = serde_json::from_str(review.request).expect("the request text is JSON");
        assert_eq!(request, whole["request"], "the request text is the request member");
    }
    // The SDK walks the request without validating it (egate validated it):
    // on anything egate accepts it reads or refuses, never panics.
    if let Ok(request) = egate_guest::Request::parse(review.request.as_bytes()) {
        let _ = request.pods().map(|pods| pods.new_ephemeral_containers().count());
        let _ = request.old_pod();
    }
    let _ = facts.resource_path();
    let _ = facts.labels();
    let _ = matcher().judges(facts);
    let response = AdmissionResponse::allow(facts.uid.as_ref()).deny(403, "fuzz: no").into_review();
    let bytes = serde_json::to_vec(&response).expect("a response serialises");
    let back: serde_json::Value = serde_json::from_slice(&bytes).expect("a response is JSON");
    assert_eq!(back["response"]["uid"].as_str(), Some(facts.uid.as_ref()), "the response echoes the uid");
});
