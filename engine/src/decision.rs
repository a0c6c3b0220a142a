//! What one policy concluded ([`Verdict`], read from a guest's
//! [`Decision`] or from its CEL rules) and how the verdicts of every policy
//! combine into one AdmissionResponse.

use std::collections::BTreeMap;

use egate_abi::Decision;
use serde_json::Value;

use crate::manifest::{FailurePolicy, ViolationAction};
use crate::review::AdmissionResponse;
use crate::sandbox::GuestError;

/// Why a policy could not decide. Its text is the cause as messages give it
/// (`module timed out after 100 ms`); [`FailureCause::label`] is its
/// metrics label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailureCause {
    /// The module failed in the sandbox: deadline, memory cap, trap,
    /// instantiation, or an output outside its memory or over the cap.
    #[error("module {0}")]
    Guest(#[from] GuestError),
    /// The module's output is not decision JSON.
    #[error("module {0}")]
    BadOutput(String),
    /// The module answered with an `error`: it could not decide.
    #[error("module could not decide: {0}")]
    Undecided(String),
    /// A patch from a policy that is not `mutating: true`.
    #[error("module returned a patch, but the policy is not `mutating: true`")]
    UnexpectedPatch,
    /// The module's patch is not RFC 6902, or does not apply.
    #[error("module returned a patch that {0}")]
    BadPatch(String),
    /// A matchCondition or validation could not be evaluated.
    #[error("{0}")]
    Cel(String),
    /// The policy declares an input the host has not prepared (yet).
    #[error(
        "the policy reads the {} input, which this egate does not have: egate serve reads DebugGrant objects \
         from the cluster (it has not read them yet, or cannot), and egate eval and egate test take them from \
         --grants or a test case's grants",
        .0.name()
    )]
    InputUnavailable(egate_abi::inputs::Input),
}

impl FailureCause {
    /// The `cause` label of `egate_policy_failures_total`.
    pub fn label(&self) -> &'static str {
        match self {
            FailureCause::Guest(GuestError::Timeout(_)) => "timeout",
            FailureCause::Guest(GuestError::MemoryLimit(_)) => "memory_limit",
            FailureCause::Guest(GuestError::Trap(_)) => "trap",
            FailureCause::Guest(GuestError::Instantiate(_)) => "instantiate",
            FailureCause::Guest(GuestError::BadPointer { .. } | GuestError::OutputTooLarge { .. }) => "bad_output",
            FailureCause::BadOutput(_) => "bad_output",
            FailureCause::Undecided(_) => "guest_error",
            FailureCause::UnexpectedPatch | FailureCause::BadPatch(_) => "bad_patch",
            FailureCause::Cel(_) => "cel",
            FailureCause::InputUnavailable(_) => "input",
        }
    }
}

/// Reads the decision JSON a guest returned (the ABI's [`Decision`], with
/// patch operations left as JSON for the patch step to check); the error
/// says what is wrong with it.
pub fn read_decision(output: &[u8]) -> Result<Decision<Value>, FailureCause> {
    let text = std::str::from_utf8(output)
        .map_err(|e| FailureCause::BadOutput(format!("returned output that is not UTF-8 ({e})")))?;
    serde_json::from_str(text).map_err(|e| {
        FailureCause::BadOutput(format!("returned output that is not decision JSON ({e}): {}", excerpt(text)))
    })
}

impl Verdict {
    /// What a guest's decision means for its policy: an `error` or a patch
    /// from a policy that is not `mutating` is a failure, an empty denial
    /// message gets a default.
    pub fn from_decision(decision: Decision<Value>, mutating: bool) -> Verdict {
        if let Some(error) = decision.error {
            return Verdict::Failure { cause: FailureCause::Undecided(error) };
        }
        if !decision.patch.is_empty() && !mutating {
            return Verdict::Failure { cause: FailureCause::UnexpectedPatch };
        }
        if decision.allowed {
            Verdict::Pass {
                warnings: decision.warnings,
                audit_annotations: decision.audit_annotations,
                patch: decision.patch,
                grant_uses: decision.grant_uses,
            }
        } else {
            let message = Some(decision.message)
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "denied (the module gave no reason)".into());
            Verdict::Violation {
                message,
                code: decision.code,
                warnings: decision.warnings,
                audit_annotations: BTreeMap::new(),
            }
        }
    }
}

/// At most 120 characters of guest output, for messages.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(120) {
        Some((end, _)) => format!("{:?}...", &text[..end]),
        None => format!("{text:?}"),
    }
}

/// What one policy concluded.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The request passes this policy (perhaps with warnings, annotations
    /// and a patch).
    Pass {
        /// Warnings for the user; the response gives each one prefixed with
        /// the policy's name.
        warnings: Vec<String>,
        /// Annotations for the API server's audit log; the response records
        /// each under `POLICY.KEY`.
        audit_annotations: BTreeMap<String, String>,
        /// RFC 6902 operations on the request's `object` (only a `mutating`
        /// policy has any), as JSON. A review applies them before the next
        /// policy judges and moves them into the response's patch, so this
        /// is empty in the [`PolicyResult`]s of a review.
        patch: Vec<Value>,
        /// The debug grants the policy admitted debug containers under.
        grant_uses: Vec<egate_abi::inputs::GrantUse>,
    },
    /// The request violates the policy.
    Violation {
        /// Why, for the user: one violation per line (a module's message,
        /// then the messages of failed CEL validations).
        message: String,
        /// The HTTP status code the module asked for; a denial uses it only
        /// if it is 400-599 and the only denial, else 403.
        code: Option<u16>,
        /// Warnings for the user, given whatever the policy's action.
        warnings: Vec<String>,
        /// Annotations for the audit log, recorded whatever the policy's
        /// action, as for a pass (a Kubernetes policy's, so far).
        audit_annotations: BTreeMap<String, String>,
    },
    /// The policy could not decide (trap, timeout, bad output, ...).
    Failure {
        /// Why it could not decide; the policy's `failurePolicy` says
        /// whether that denies the request.
        cause: FailureCause,
    },
}

/// One policy's verdict, with what the manifest says to do with it, and
/// the time spent on it (matchConditions, module, CEL rules, patch).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyResult {
    /// The policy's name.
    pub policy: String,
    /// What a violation does.
    pub action: ViolationAction,
    /// What a failure does.
    pub failure_policy: FailurePolicy,
    /// The verdict.
    pub verdict: Verdict,
    /// Time spent judging.
    pub elapsed: std::time::Duration,
    /// Its messages are already in the API server's own words (a
    /// Kubernetes ValidatingAdmissionPolicy's): they are given as they
    /// are, not after the policy's name.
    pub kubernetes_form: bool,
}

impl PolicyResult {
    /// Whether this result denies the request: an Enforce violation, or a
    /// failure under `failurePolicy: Fail`.
    pub fn denies(&self) -> bool {
        match self.verdict {
            Verdict::Pass { .. } => false,
            Verdict::Violation { .. } => self.action == ViolationAction::Enforce,
            Verdict::Failure { .. } => self.failure_policy == FailurePolicy::Fail,
        }
    }
}

/// Combines every policy's result: any Enforce violation (or failure under
/// `failurePolicy: Fail`) denies, listing each with its reason; Audit
/// violations become audit annotations; Warn violations and ignored
/// failures become warnings. Every message starts with the policy's name;
/// a denial lists one violation per line, each line naming its policy.
pub fn combine(uid: &str, results: &[PolicyResult], patch: &[Value]) -> AdmissionResponse {
    let mut denials: Vec<(String, Option<u16>)> = Vec::new();
    let mut response = AdmissionResponse::allow(uid);
    for result in results {
        let name = &result.policy;
        let prefix = if result.kubernetes_form { "" } else { name.as_str() };
        match &result.verdict {
            Verdict::Pass { warnings, audit_annotations, .. } => {
                response.warnings.extend(prefixed(prefix, warnings));
                for (key, value) in audit_annotations {
                    response.audit_annotations.insert(format!("{name}.{key}"), value.clone());
                }
            }
            Verdict::Violation { message, code, warnings, audit_annotations } => {
                response.warnings.extend(prefixed(prefix, warnings));
                for (key, value) in audit_annotations {
                    response.audit_annotations.insert(format!("{name}.{key}"), value.clone());
                }
                let mut lines: Vec<&str> = message.lines().filter(|l| !l.trim().is_empty()).collect();
                if lines.is_empty() {
                    lines.push("denied (the policy gave no reason)");
                }
                // Only client and server error codes make sense for a denial.
                let code = code.filter(|c| (400..600).contains(c));
                match result.action {
                    ViolationAction::Enforce => {
                        denials.push((prefixed(prefix, &lines).collect::<Vec<_>>().join("\n"), code))
                    }
                    // The annotation's key is the policy's name.
                    ViolationAction::Audit => {
                        response.audit_annotations.insert(name.clone(), lines.join("\n"));
                    }
                    ViolationAction::Warn => response.warnings.extend(prefixed(prefix, &lines)),
                }
            }
            Verdict::Failure { cause } => match result.failure_policy {
                // A cause is one line: a guest must not forge lines of other policies.
                FailurePolicy::Fail => denials.push((
                    format!(
                        "{name}: the policy failed ({}); its failurePolicy Fail denies the request",
                        one_line(&cause.to_string())
                    ),
                    None,
                )),
                FailurePolicy::Ignore => response.warnings.push(format!(
                    "{name}: the policy failed ({}); its failurePolicy Ignore let the request through",
                    one_line(&cause.to_string())
                )),
            },
        }
    }
    match denials.as_slice() {
        [] if patch.is_empty() => response,
        [] => response.with_patch(patch),
        [(message, code)] => response.deny(code.unwrap_or(403), message.clone()),
        many => {
            let messages: Vec<&str> = many.iter().map(|(m, _)| m.as_str()).collect();
            response.deny(403, messages.join("\n"))
        }
    }
}

/// Text on one line: control characters become spaces.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_control()).filter(|part| !part.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Each message with the policy's name in front (none when `name` is empty).
fn prefixed<'m, S: AsRef<str> + 'm>(name: &'m str, messages: &'m [S]) -> impl Iterator<Item = String> + 'm {
    messages
        .iter()
        .map(move |m| if name.is_empty() { m.as_ref().to_string() } else { format!("{name}: {}", m.as_ref()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(policy: &str, action: ViolationAction, failure_policy: FailurePolicy, verdict: Verdict) -> PolicyResult {
        PolicyResult {
            policy: policy.into(),
            action,
            failure_policy,
            verdict,
            elapsed: Default::default(),
            kubernetes_form: false,
        }
    }

    fn violation(message: &str) -> Verdict {
        Verdict::Violation { message: message.into(), code: None, warnings: vec![], audit_annotations: BTreeMap::new() }
    }

    #[test]
    fn enforce_denies_audit_annotates_warn_warns() {
        use ViolationAction::*;
        let results = [
            result("a", Enforce, FailurePolicy::Fail, violation("bad a")),
            result("b", Audit, FailurePolicy::Fail, violation("bad b")),
            result("c", Warn, FailurePolicy::Fail, violation("bad c")),
            result("d", Enforce, FailurePolicy::Fail, violation("bad d\nworse d")),
        ];
        let r = combine("u", &results, &[]);
        assert!(!r.allowed);
        let status = r.status.unwrap();
        assert_eq!(status.code, 403);
        assert_eq!(status.message, "a: bad a\nd: bad d\nd: worse d");
        assert_eq!(r.audit_annotations["b"], "bad b");
        assert_eq!(r.warnings, ["c: bad c"]);
    }

    #[test]
    fn numbers_in_a_patch_come_back_exactly() {
        // Without serde_json's float_roundtrip the last digit changed (fuzzing).
        let output = br#"{"allowed": true, "patch": [{"op": "add", "path": "/a", "value": 1.1844674407316873e+26}]}"#;
        let decision = read_decision(output).unwrap();
        assert_eq!(serde_json::to_string(&decision.patch[0]["value"]).unwrap(), "1.1844674407316873e+26");
    }

    #[test]
    fn failure_causes_read_as_messages_and_label_as_metrics() {
        let cases = [
            (FailureCause::from(GuestError::Timeout(100)), "module timed out after 100 ms", "timeout"),
            (GuestError::MemoryLimit(64).into(), "module exceeded the memory limit of 64 MiB", "memory_limit"),
            (GuestError::Trap("unreachable".into()).into(), "module trapped: unreachable", "trap"),
            (
                GuestError::OutputTooLarge { len: 9, limit: 8 }.into(),
                "module returned 9 bytes of output, more than the limit of 8",
                "bad_output",
            ),
            (FailureCause::Undecided("no pod".into()), "module could not decide: no pod", "guest_error"),
            (
                FailureCause::BadPatch("does not apply: x".into()),
                "module returned a patch that does not apply: x",
                "bad_patch",
            ),
            (
                FailureCause::Cel("validation 1 (`x`) could not be evaluated".into()),
                "validation 1 (`x`) could not be evaluated",
                "cel",
            ),
        ];
        for (cause, text, label) in cases {
            assert_eq!((cause.to_string().as_str(), cause.label()), (text, label));
        }
        assert_eq!(read_decision(b"nope").unwrap_err().label(), "bad_output");
    }

    #[test]
    fn failures_follow_the_failure_policy() {
        let failure = Verdict::Failure { cause: GuestError::Timeout(100).into() };
        let ignored =
            combine("u", &[result("p", ViolationAction::Enforce, FailurePolicy::Ignore, failure.clone())], &[]);
        assert!(ignored.allowed);
        assert!(ignored.warnings[0].starts_with("p: the policy failed (module timed out after 100 ms)"));
        let failed = combine("u", &[result("p", ViolationAction::Enforce, FailurePolicy::Fail, failure)], &[]);
        assert!(!failed.allowed);
        assert!(failed.status.unwrap().message.contains("failurePolicy Fail denies"));
    }

    #[test]
    fn a_guest_cannot_forge_lines_or_send_an_empty_denial() {
        let forged = Verdict::Failure { cause: FailureCause::Undecided("x\nother: approved".into()) };
        let r = combine("u", &[result("p", ViolationAction::Enforce, FailurePolicy::Fail, forged)], &[]);
        assert_eq!(r.status.unwrap().message.lines().count(), 1);
        let blank = Verdict::Violation {
            message: " \n ".into(),
            code: Some(200),
            warnings: vec![],
            audit_annotations: BTreeMap::new(),
        };
        let r = combine("u", &[result("p", ViolationAction::Enforce, FailurePolicy::Fail, blank)], &[]);
        let status = r.status.unwrap();
        assert_eq!((status.code, status.message.as_str()), (403, "p: denied (the policy gave no reason)"));
    }

    #[test]
    fn guest_output_must_be_decision_json() {
        assert!(read_decision(br#"{"allowed": true}"#).is_ok());
        assert!(read_decision(b"\xff\xfe").unwrap_err().to_string().contains("not UTF-8"));
        assert!(read_decision(br#"{"allow": true}"#).unwrap_err().to_string().contains("not decision JSON"));
        assert!(read_decision(b"[]").unwrap_err().to_string().contains("not decision JSON"));
    }
}
