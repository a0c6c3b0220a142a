//! Arbitrary bytes as a guest's output: `read_decision` must answer
//! with a decision or an error, never panic; a decision it accepts becomes
//! a verdict the way the engine makes one (`Verdict::from_decision`), and
//! `combine` of it, under every failureAction and failurePolicy, must not
//! panic and must keep its promises: Enforce violations and Fail failures
//! deny, with the guest's code or 403; everything else allows; every
//! message, warning and audit annotation names its policy; a patch comes
//! back as base64 of the same operations.
#![no_main]

use base64::Engine as _;
use egate_engine::decision::{PolicyResult, Verdict, combine, read_decision};
use egate_engine::manifest::{ViolationAction, FailurePolicy};
use libfuzzer_sys::fuzz_target;

const ACTIONS: [ViolationAction; 3] = [ViolationAction::Enforce, ViolationAction::Audit, ViolationAction::Warn];
const FAILURE_POLICIES: [FailurePolicy; 2] = [FailurePolicy::Fail, FailurePolicy::Ignore];

fn check_one(result: &PolicyResult) {
    let patch = match &result.verdict {
        Verdict::Pass { patch, .. } => patch.clone(),
        _ => Vec::new(),
    };
    let response = combine("uid-1", std::slice::from_ref(result), &patch);
    assert_eq!(response.uid, "uid-1");
    let denies = match &result.verdict {
        Verdict::Pass { .. } => false,
        Verdict::Violation { .. } => result.action == ViolationAction::Enforce,
        Verdict::Failure { .. } => result.failure_policy == FailurePolicy::Fail,
    };
    assert_eq!(response.allowed, !denies, "{result:?} gave {response:?}");
    if denies {
        let status = response.status.as_ref().expect("a denial has a status");
        let code = match &result.verdict {
            // Only client and server error codes pass through.
            Verdict::Violation { code, .. } => code.filter(|c| (400..600).contains(c)).unwrap_or(403),
            _ => 403,
        };
        assert_eq!(status.code, code);
        assert!(
            egate_fuzz::lines_name_a_policy(&status.message, &["fuzz"]),
            "a denial line does not name the policy: {:?} (from {result:?})",
            status.message
        );
        assert!(response.patch.is_none(), "a denial carries no patch");
    } else {
        assert!(response.status.is_none());
    }
    for warning in &response.warnings {
        assert!(warning.starts_with("fuzz: "), "a warning does not name the policy: {warning:?}");
    }
    // A violation under Warn, or a failure under Ignore, is never silent.
    let guest_warnings = match &result.verdict {
        Verdict::Pass { warnings, .. } | Verdict::Violation { warnings, .. } => warnings.len(),
        Verdict::Failure { .. } => 0,
    };
    let must_warn = match &result.verdict {
        Verdict::Violation { .. } => result.action == ViolationAction::Warn,
        Verdict::Failure { .. } => result.failure_policy == FailurePolicy::Ignore,
        Verdict::Pass { .. } => false,
    };
    if must_warn {
        assert!(
            response.warnings.len() > guest_warnings,
            "the violation or failure was not reported: {result:?} gave {response:?}"
        );
    }
    for key in response.audit_annotations.keys() {
        assert!(key == "fuzz" || key.starts_with("fuzz."), "an audit annotation key does not name the policy: {key:?}");
    }
    match (&response.patch, response.allowed && !patch.is_empty()) {
        (Some(encoded), true) => {
            assert_eq!(response.patch_type, Some("JSONPatch"));
            let text = base64::engine::general_purpose::STANDARD.decode(encoded).expect("the patch is base64");
            let ops: serde_json::Value = serde_json::from_slice(&text).expect("the patch is JSON");
            assert_eq!(ops, serde_json::Value::Array(patch), "the patch comes back unchanged");
        }
        (None, false) => {}
        (got, expected) => panic!("patch {got:?}, expected one: {expected}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(decision) = read_decision(data) else { return };
    let mut all = Vec::new();
    for mutating in [false, true] {
        let verdict = Verdict::from_decision(decision.clone(), mutating);
        for action in ACTIONS {
            for failure_policy in FAILURE_POLICIES {
                let result = PolicyResult {
                    policy: "fuzz".into(),
                    action,
                    failure_policy,
                    verdict: verdict.clone(),
                    elapsed: Default::default(),
                };
                check_one(&result);
                if mutating {
                    all.push(PolicyResult { policy: format!("p{}", all.len()), ..result });
                }
            }
        }
    }
    // Six policies at once: each denial line still names its own.
    let response = combine("uid-2", &all, &[]);
    if let Some(status) = &response.status {
        let names: Vec<String> = (0..all.len()).map(|i| format!("p{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert!(egate_fuzz::lines_name_a_policy(&status.message, &names), "{:?}", status.message);
    }
    serde_json::to_vec(&response.into_review()).expect("a response serialises");
});
