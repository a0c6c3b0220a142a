//! What a policy function returns. The decision JSON itself ([`Decision`],
//! [`PatchOp`]) is part of the ABI and lives in `egate-abi`.

pub use egate_abi::{Decision, PatchOp};

use crate::Error;

/// What a policy function may return: a [`Decision`], or a `Result` whose
/// error becomes a failure of the policy.
pub trait IntoDecision {
    /// Converts to a decision.
    fn into_decision(self) -> Decision;
}

impl IntoDecision for Decision {
    fn into_decision(self) -> Decision {
        self
    }
}

impl IntoDecision for Result<Decision, Error> {
    fn into_decision(self) -> Decision {
        self.unwrap_or_else(|e| Decision::error(e.message()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_become_policy_failures() {
        let d = Err::<Decision, _>(Error::new("bad object")).into_decision();
        assert_eq!(d.error.as_deref(), Some("bad object"));
        assert!(!d.allowed);
    }
}
