//! What `PolicySet::review_traced` says about each policy that judged a
//! request, and about the request: what `egate serve` logs and counts.

mod support;

use egate_engine::manifest::ViolationAction;
use egate_engine::{Mode, Verdict};
use serde_json::json;
use support::{cel_manifest, debug_review, load_manifests};

#[test]
fn traces_say_who_denied_under_which_action_and_who_asked() {
    let rule = |expression: &str| json!([{"expression": expression, "message": "no"}]);
    let set = load_manifests(&[
        cel_manifest("passes", json!({"validations": rule("true")})),
        cel_manifest("enforced", json!({"validations": rule("false")})),
        cel_manifest("warned", json!({"failureAction": "Warn", "validations": rule("false")})),
        cel_manifest("audited", json!({"failureAction": "Audit", "validations": rule("false")})),
        cel_manifest(
            "fails-closed",
            json!({"failurePolicy": "Fail", "validations": rule("object.spec.nothing.size() > 0")}),
        ),
        cel_manifest(
            "fails-open",
            json!({"failurePolicy": "Ignore", "validations": rule("object.spec.nothing.size() > 0")}),
        ),
    ])
    .unwrap();
    let traced = set.review_traced(&debug_review(json!({"name": "dbg", "image": "busybox:1.36"})), Mode::All).unwrap();
    assert!(!traced.response.allowed);
    assert_eq!(traced.denied_by().collect::<Vec<_>>(), ["enforced", "fails-closed"]);
    let of = |name: &str| traced.results.iter().find(|r| r.policy == name).unwrap();
    assert!(matches!(of("passes").verdict, Verdict::Pass { .. }));
    assert!(matches!(of("warned").verdict, Verdict::Violation { .. }));
    assert_eq!((of("warned").action, of("warned").denies()), (ViolationAction::Warn, false));
    assert_eq!((of("audited").action, of("audited").denies()), (ViolationAction::Audit, false));
    assert!(matches!(of("fails-open").verdict, Verdict::Failure { .. }) && !of("fails-open").denies());

    let request = &traced.request;
    assert_eq!(request.resource, "pods/ephemeralcontainers");
    assert_eq!(request.operation, "UPDATE");
    assert!(!request.uid.is_empty() && !request.user.is_empty() && !request.name.is_empty(), "{request:?}");
}
