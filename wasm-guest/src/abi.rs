//! Guest ABI v1 for a policy function: the functions [`policy!`](crate::policy)
//! exports, as plain safe functions that also run natively in tests. The
//! contract itself (export names and types, the JSON exchanged) is defined
//! once in `egate-abi`; see its crate doc for the table of exports.

pub use egate_abi::{BundledSettings, SettingsVerdict};

use crate::settings::parse_settings;
use crate::{IntoDecision, Request, Settings};

/// Checks settings JSON for the policy function `_policy`; returns the
/// verdict JSON. Safe, so it runs natively in tests.
pub fn validate_settings_json<S, F, D>(_policy: &F, settings: &[u8]) -> Vec<u8>
where
    S: Settings,
    F: Fn(&Request<'_>, &S) -> D,
    D: IntoDecision,
{
    match parse_settings::<S>(settings) {
        Ok(_) => SettingsVerdict::valid(),
        Err(e) => SettingsVerdict::invalid(e.message()),
    }
    .to_json()
}

/// Runs the policy function on request and settings JSON; returns the
/// decision JSON. Safe, so it runs natively in tests.
pub fn evaluate_json<S, F, D>(policy: &F, request: &[u8], settings: &[u8]) -> Vec<u8>
where
    S: Settings,
    F: Fn(&Request<'_>, &S) -> D,
    D: IntoDecision,
{
    match Request::parse(request) {
        Ok(request) => decide(policy, &request, settings),
        Err(e) => crate::Decision::error(e.message()),
    }
    .to_json()
}

/// Runs the policy function on a parsed request and settings JSON. A bundle
/// judging one request with several of its policies parses it once.
pub fn decide<S, F, D>(policy: &F, request: &Request<'_>, settings: &[u8]) -> crate::Decision
where
    S: Settings,
    F: Fn(&Request<'_>, &S) -> D,
    D: IntoDecision,
{
    match parse_settings::<S>(settings) {
        Ok(settings) => policy(request, &settings).into_decision(),
        Err(e) => crate::Decision::error(e.message()),
    }
}

/// Exports a policy function as an ABI v1 module.
///
/// The function takes `(&Request, &S)`, where `S` implements
/// [`Settings`](crate::Settings), and returns a [`Decision`](crate::Decision)
/// or a `Result<Decision, egate_guest::Error>`. On targets other than
/// `wasm32` the macro expands to nothing, so the crate builds and tests
/// natively.
#[macro_export]
macro_rules! policy {
    ($evaluate:path) => {
        $crate::__policy_exports! {
            $crate::__abi::guest_exports! {
                validate_settings: |settings| $crate::abi::validate_settings_json(&$evaluate, settings),
                evaluate: |request, settings| $crate::abi::evaluate_json(&$evaluate, request, settings),
            }
        }
    };
}

/// The exports of [`policy!`], kept; with the SDK's `bundle` feature (a
/// crate bundling several policies into one module) they are left out.
#[cfg(not(feature = "bundle"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __policy_exports {
    ($($exports:tt)*) => { $($exports)* };
}

/// The exports of [`policy!`], left out: the bundling crate exports its own.
#[cfg(feature = "bundle")]
#[doc(hidden)]
#[macro_export]
macro_rules! __policy_exports {
    ($($exports:tt)*) => {};
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decision, Error, NoSettings};

    fn deny_all(_: &Request, _: &NoSettings) -> Result<Decision, Error> {
        Ok(Decision::deny("never"))
    }

    #[test]
    fn settings_verdicts() {
        assert_eq!(validate_settings_json(&deny_all, b"{}"), br#"{"valid":true}"#);
        let bad = String::from_utf8(validate_settings_json(&deny_all, br#"{"x":1}"#)).unwrap();
        assert!(bad.starts_with(r#"{"valid":false,"message":"cannot read settings: unknown field `x`"#), "{bad}");
    }

    #[test]
    fn evaluation_returns_decision_json_or_error() {
        assert_eq!(evaluate_json(&deny_all, b"{}", b""), br#"{"allowed":false,"message":"never"}"#);
        let garbage = String::from_utf8(evaluate_json(&deny_all, b"[1", b"")).unwrap();
        assert!(garbage.contains(r#""error":"cannot read the admission request"#), "{garbage}");
    }
}
