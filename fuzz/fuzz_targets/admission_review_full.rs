//! Arbitrary bytes through the whole judging path, `PolicySet::review`,
//! with the built-in `privileged` policy (a real wasm guest, run on
//! whatever request parses) and a CEL policy (matchConditions and
//! validations binding the request's JSON), loaded once per process.
//!
//! Must hold: no panic; a review is judged exactly when `Review::parse`
//! accepts it; the response echoes the uid; every line of a denial names
//! a policy; the built-in guest never traps (it answers every request it
//! is given with a decision or an error).
#![no_main]

use std::sync::OnceLock;

use egate_engine::PolicySet;
use egate_engine::review::Review;
use libfuzzer_sys::fuzz_target;

const CEL_POLICY: &str = r#"
apiVersion: egate.dev/v1
kind: ClusterPolicy
metadata: {name: cel-limits}
spec:
  failureAction: Enforce
  failurePolicy: Fail
  match:
    resources: ["pods/*"]
    operations: [UPDATE]
  exclude: {namespaces: [kube-system]}
  matchConditions:
    - name: not-break-glass
      expression: "!('sre' in request.userInfo.groups)"
  validations:
    - expression: "!has(object.spec) || !has(object.spec.ephemeralContainers) || object.spec.ephemeralContainers.size() <= 3"
      messageExpression: "'at most 3 debug containers, got ' + string(object.spec.ephemeralContainers.size())"
    - expression: "!has(object.metadata) || !has(object.metadata.labels) || object.metadata.labels.all(k, k.size() < 64)"
      message: label keys are shorter than 64 characters
"#;

fn policies() -> &'static PolicySet {
    static SET: OnceLock<PolicySet> = OnceLock::new();
    SET.get_or_init(|| {
        let sandbox = egate_fuzz::sandbox();
        let privileged = egate_fuzz::repo_root().join("policies/privileged/policy.yaml");
        let privileged = privileged.to_str().expect("UTF-8 path").to_string();
        egate_fuzz::load_set(&sandbox, &[(&privileged, ""), ("cel-limits.yaml", CEL_POLICY)], &[])
    })
}

fuzz_target!(|data: &[u8]| {
    let set = policies();
    let parsed = Review::parse(data);
    let response = set.review(data);
    assert_eq!(parsed.is_ok(), response.is_ok(), "judged exactly when the review parses: {response:?}");
    let (Ok(review), Ok(response)) = (parsed, response) else { return };
    assert_eq!(response.uid, review.facts.uid, "the response echoes the uid");
    if let Some(status) = &response.status {
        assert!(!response.allowed);
        assert!(
            egate_fuzz::lines_name_a_policy(&status.message, &["privileged", "cel-limits"]),
            "a denial line does not name its policy: {:?}",
            status.message
        );
        assert!(
            !status.message.split('\n').any(|line| line.starts_with("privileged: the policy failed (module trapped")),
            "the built-in guest trapped: {:?}",
            status.message
        );
    }
    for warning in &response.warnings {
        assert!(warning.starts_with("privileged: ") || warning.starts_with("cel-limits: "), "{warning:?}");
    }
    serde_json::to_vec(&response.into_review()).expect("a response serialises");
});
