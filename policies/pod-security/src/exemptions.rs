//! Pod Security Admission's exemptions (`exemptions` in its
//! `PodSecurityConfiguration`): requests by some users, in some namespaces,
//! or for pods of some runtime classes are allowed without any check, with
//! the audit annotation `exempt` saying which exemption applied
//! (`namespace`, `user` or `runtimeClass`), as Pod Security Admission
//! annotates them `pod-security.kubernetes.io/exempt`.
//!
//! Names are compared exactly, as in Pod Security Admission; the settings
//! are checked as it checks its configuration: namespaces must be valid
//! namespace names, runtime classes valid object names, usernames
//! non-empty, and no list may name one twice.

use std::fmt;

use egate_guest::{Decision, Request};
use serde::Deserialize;

/// The `exemptions` setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Exemptions {
    /// Authenticated usernames (`request.userInfo.username`, such as
    /// `system:serviceaccount:kube-system:replicaset-controller`) whose
    /// requests are not judged.
    pub usernames: Vec<String>,
    /// Runtime class names (`spec.runtimeClassName`) whose pods are not
    /// judged.
    pub runtime_classes: Vec<String>,
    /// Namespaces whose pods are not judged.
    pub namespaces: Vec<String>,
}

/// Why a request is exempt: the value of the `exempt` audit annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exemption {
    /// `exemptions.namespaces` names the request's namespace.
    Namespace,
    /// `exemptions.usernames` names the requester.
    User,
    /// `exemptions.runtimeClasses` names the pod's runtime class.
    RuntimeClass,
}

impl fmt::Display for Exemption {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Exemption::Namespace => "namespace",
            Exemption::User => "user",
            Exemption::RuntimeClass => "runtimeClass",
        })
    }
}

/// The audit annotation key of an exempt request (the host records it as
/// `POLICY.exempt`).
pub const EXEMPT_ANNOTATION: &str = "exempt";

impl Exemption {
    /// The decision for an exempt request: allowed, annotated.
    pub fn decision(self) -> Decision {
        Decision::allow().with_audit_annotation(EXEMPT_ANNOTATION, self.to_string())
    }
}

impl Exemptions {
    /// The exemption of the request itself, checked before the pod is read
    /// and in Pod Security Admission's order: namespace, then user.
    pub fn of_request(&self, request: &Request) -> Option<Exemption> {
        let named = |list: &[String], value: Option<&str>| {
            value.is_some_and(|value| !value.is_empty() && list.iter().any(|item| item == value))
        };
        if named(&self.namespaces, request.namespace.as_deref()) {
            return Some(Exemption::Namespace);
        }
        if named(&self.usernames, Some(&request.user_info.username)) {
            return Some(Exemption::User);
        }
        None
    }

    /// The exemption of a pod of runtime class `runtime_class`.
    pub fn of_runtime_class(&self, runtime_class: Option<&str>) -> Option<Exemption> {
        let runtime_class = runtime_class.filter(|name| !name.is_empty())?;
        self.runtime_classes.iter().any(|name| name == runtime_class).then_some(Exemption::RuntimeClass)
    }

    /// Checks the lists as Pod Security Admission checks its
    /// configuration; the message names the entry at fault and the rule.
    pub fn validate(&self) -> Result<(), String> {
        check_list("exemptions.namespaces", &self.namespaces, |name| {
            dns_label(name).then_some(()).ok_or(
                "a namespace name is a DNS-1123 label: at most 63 lowercase letters, digits and '-', \
                 starting and ending with a letter or digit",
            )
        })?;
        check_list("exemptions.runtimeClasses", &self.runtime_classes, |name| {
            dns_subdomain(name).then_some(()).ok_or(
                "a RuntimeClass name is a DNS-1123 subdomain: at most 253 characters, lowercase letters, \
                 digits and '-' in parts joined by '.', each part starting and ending with a letter or digit",
            )
        })?;
        check_list("exemptions.usernames", &self.usernames, |name| {
            (!name.is_empty()).then_some(()).ok_or("a username may not be empty")
        })
    }
}

/// Each entry of `list` valid, and none twice.
fn check_list(field: &str, list: &[String], valid: impl Fn(&str) -> Result<(), &'static str>) -> Result<(), String> {
    for (index, entry) in list.iter().enumerate() {
        valid(entry).map_err(|rule| format!("{field}[{index}]: {entry:?} is invalid: {rule}"))?;
        if list[..index].contains(entry) {
            return Err(format!("{field}[{index}]: {entry:?} is listed twice: remove one"));
        }
    }
    Ok(())
}

/// A DNS-1123 label: at most 63 lowercase letters, digits and `-`,
/// starting and ending with a letter or digit.
fn dns_label(name: &str) -> bool {
    name.len() <= 63 && label_part(name)
}

/// A DNS-1123 subdomain: at most 253 characters, parts like DNS-1123
/// labels joined by `.`.
fn dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(label_part)
}

/// Lowercase letters, digits and `-`, at least one, starting and ending
/// with a letter or digit.
fn label_part(part: &str) -> bool {
    let alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = part.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            alphanumeric(first) && alphanumeric(last) && bytes.iter().all(|&b| alphanumeric(b) || b == b'-')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exemptions(namespaces: &[&str], runtime_classes: &[&str], usernames: &[&str]) -> Exemptions {
        let own = |list: &[&str]| list.iter().map(ToString::to_string).collect();
        Exemptions { namespaces: own(namespaces), runtime_classes: own(runtime_classes), usernames: own(usernames) }
    }

    #[test]
    fn valid_lists_pass() {
        let ok = exemptions(&["kube-system", "a"], &["kata", "gvisor.example.com"], &["system:admin", "alice"]);
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(Exemptions::default().validate(), Ok(()));
    }

    #[test]
    fn invalid_entries_are_named_with_their_index_and_the_rule() {
        let err = exemptions(&["kube-system", "Shop"], &[], &[]).validate().unwrap_err();
        assert!(
            err.starts_with(
                r#"exemptions.namespaces[1]: "Shop" is invalid: a namespace name is a DNS-1123 label: at most 63"#
            ),
            "{err}"
        );
        for bad in ["", "-x", "x-", "a.b", &"a".repeat(64)] {
            assert!(exemptions(&[bad], &[], &[]).validate().is_err(), "{bad:?}");
        }
        assert!(exemptions(&[&"a".repeat(63)], &[], &[]).validate().is_ok());
        for bad in ["", "kata..x", "Kata", ".kata", "kata-", &format!("{}.x", "a".repeat(252))] {
            let err = exemptions(&[], &[bad], &[]).validate().unwrap_err();
            assert!(
                err.starts_with(&format!("exemptions.runtimeClasses[0]: {bad:?} is invalid: a RuntimeClass name")),
                "{err}"
            );
        }
        let err = exemptions(&[], &[], &["alice", ""]).validate().unwrap_err();
        assert_eq!(err, r#"exemptions.usernames[1]: "" is invalid: a username may not be empty"#);
    }

    #[test]
    fn duplicates_are_refused() {
        let err = exemptions(&[], &[], &["alice", "bob", "alice"]).validate().unwrap_err();
        assert_eq!(err, r#"exemptions.usernames[2]: "alice" is listed twice: remove one"#);
    }

    #[test]
    fn runtime_classes_match_exactly_and_never_when_unset() {
        let e = exemptions(&[], &["kata"], &[]);
        assert_eq!(e.of_runtime_class(Some("kata")), Some(Exemption::RuntimeClass));
        assert_eq!(e.of_runtime_class(Some("kata-qemu")), None);
        assert_eq!(e.of_runtime_class(None), None);
        assert_eq!(exemptions(&[], &[], &[]).of_runtime_class(Some("")), None);
    }

    #[test]
    fn annotation_values_are_pod_security_admissions() {
        let values: Vec<String> =
            [Exemption::Namespace, Exemption::User, Exemption::RuntimeClass].iter().map(ToString::to_string).collect();
        assert_eq!(values, ["namespace", "user", "runtimeClass"]);
        let decision = Exemption::User.decision();
        assert!(decision.allowed);
        assert_eq!(decision.audit_annotations.get("exempt").map(String::as_str), Some("user"));
    }
}
