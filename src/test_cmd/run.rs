//! Running a suite: each case's request judged by the suite's policies, and
//! the response compared with what the case expects. Every difference is a
//! failure message saying what was expected and what came.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use egate_engine::{AdmissionResponse, PolicySet};
use serde::Serialize;
use serde_json::Value;

use super::files::{FileRef, ObjectFile};
use super::suite::{Case, Expect, Suite};

/// What the cases of one suite got.
pub struct SuiteReport {
    pub file: PathBuf,
    pub name: String,
    pub cases: Vec<CaseReport>,
}

impl SuiteReport {
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed()).count()
    }

    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }

    /// Time spent judging, all cases together.
    pub fn time(&self) -> Duration {
        self.cases.iter().map(|c| c.time).sum()
    }
}

/// What one case got, and whether it was what it expected.
pub struct CaseReport {
    pub name: String,
    /// The expectation as written, for the JSON report.
    pub expect: Value,
    /// `allowed` or `denied`.
    pub expected: &'static str,
    /// None when the request could not be judged.
    pub got: Option<Got>,
    pub failures: Vec<String>,
    pub time: Duration,
}

impl CaseReport {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The decision a case got.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Got {
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub warnings: Vec<String>,
    pub audit_annotations: BTreeMap<String, String>,
    pub patched: bool,
}

impl Got {
    fn new(response: AdmissionResponse) -> Self {
        Got {
            allowed: response.allowed,
            code: response.status.as_ref().map(|s| s.code),
            message: response.status.map(|s| s.message),
            warnings: response.warnings,
            audit_annotations: response.audit_annotations,
            patched: response.patch.is_some(),
        }
    }

    /// `allowed`, `denied (403)`, `allowed +patch`: the GOT column.
    pub fn summary(&self) -> String {
        let mut text = match self.code {
            Some(code) if !self.allowed => format!("denied ({code})"),
            _ if self.allowed => "allowed".to_string(),
            _ => "denied".to_string(),
        };
        if self.patched {
            text.push_str(" +patch");
        }
        text
    }
}

/// Runs every case of `suite`.
pub fn run_suite(suite: &Suite) -> SuiteReport {
    let cases = suite.cases.iter().map(|case| run_case(&suite.policies, case)).collect();
    SuiteReport { file: suite.file.clone(), name: suite.name.clone(), cases }
}

fn run_case(policies: &PolicySet, case: &Case) -> CaseReport {
    let started = Instant::now();
    let result = policies.review(&case.review);
    let time = started.elapsed();
    let (got, failures) = match result {
        Ok(response) => {
            let failures = check(&case.expect, &case.review, &response);
            (Some(Got::new(response)), failures)
        }
        Err(e) => (None, vec![format!("the request could not be judged: {e}")]),
    };
    CaseReport {
        name: case.name.clone(),
        expect: serde_json::to_value(&case.expect).expect("expectations serialise"),
        expected: if case.expect.allowed { "allowed" } else { "denied" },
        got,
        failures,
        time,
    }
}

/// Every way the response differs from the expectation.
fn check(expect: &Expect, review: &[u8], response: &AdmissionResponse) -> Vec<String> {
    let message = response.status.as_ref().map(|s| s.message.as_str());
    let mut failures = Vec::new();
    failures.extend(check_allowed(expect.allowed, response.allowed, message));
    if let Some(part) = &expect.message_contains {
        failures.extend(check_message(part, message));
    }
    if let Some(warnings) = &expect.warnings
        && *warnings != response.warnings
    {
        failures.push(format!("expected warnings {warnings:?}, got {:?}", response.warnings));
    }
    if let Some(annotations) = &expect.audit_annotations {
        failures.extend(check_annotations(annotations, &response.audit_annotations));
    }
    if let Some(patched) = &expect.patched {
        failures.extend(check_patched(patched, review, response));
    }
    failures
}

fn check_allowed(expected: bool, allowed: bool, message: Option<&str>) -> Option<String> {
    if allowed == expected {
        return None;
    }
    Some(match message {
        Some(message) => format!("expected allowed, got denied: {message}"),
        None => "expected denied, got allowed".to_string(),
    })
}

fn check_message(part: &str, message: Option<&str>) -> Option<String> {
    match message {
        Some(message) if message.contains(part) => None,
        Some(message) => Some(format!("the message does not contain {part:?}: {message:?}")),
        None => Some(format!("expected a message containing {part:?}, got none (the request was allowed)")),
    }
}

/// Each expected annotation must be there with its value; others may be too.
fn check_annotations(expected: &BTreeMap<String, String>, got: &BTreeMap<String, String>) -> Vec<String> {
    let mut failures = Vec::new();
    for (key, value) in expected {
        match got.get(key) {
            Some(found) if found == value => {}
            Some(found) => failures.push(format!("audit annotation {key:?} is {found:?}, expected {value:?}")),
            None => failures.push(format!("no audit annotation {key:?} (got {:?})", got.keys().collect::<Vec<_>>())),
        }
    }
    failures
}

fn check_patched(expected: &FileRef<ObjectFile>, review: &[u8], response: &AdmissionResponse) -> Option<String> {
    let object = match patched_object(review, response) {
        Ok(object) => object,
        Err(e) => return Some(e),
    };
    let mut differences = Vec::new();
    diff("", &expected.loaded.0, &object, &mut differences);
    if differences.is_empty() {
        return None;
    }
    let shown = differences.len().min(5);
    let mut text = format!("the patched object differs from {}:", expected.written);
    for difference in &differences[..shown] {
        let _ = write!(text, "\n{difference}");
    }
    if differences.len() > shown {
        let _ = write!(text, "\n... and {} more", differences.len() - shown);
    }
    Some(text)
}

/// The request's object with the response's combined patch applied.
fn patched_object(review: &[u8], response: &AdmissionResponse) -> Result<Value, String> {
    let review: Value = serde_json::from_slice(review).map_err(|e| format!("the request is not JSON: {e}"))?;
    let mut object = review["request"]["object"].clone();
    if let Some(patch) = &response.patch {
        let text = base64::engine::general_purpose::STANDARD
            .decode(patch)
            .map_err(|e| format!("the response's patch is not base64: {e}"))?;
        let patch: json_patch::Patch =
            serde_json::from_slice(&text).map_err(|e| format!("the response's patch is not JSON Patch: {e}"))?;
        json_patch::patch_unsafe(&mut object, &patch)
            .map_err(|e| format!("the response's patch does not apply: {e}"))?;
    }
    Ok(object)
}

/// The JSON Pointers where `got` differs from `want`.
fn diff(at: &str, want: &Value, got: &Value, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (key, value) in w {
                let path = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                match g.get(key) {
                    Some(other) => diff(&path, value, other, out),
                    None => out.push(format!("{path}: expected {value}, got nothing")),
                }
            }
            for (key, value) in g.iter().filter(|(k, _)| !w.contains_key(*k)) {
                let path = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                out.push(format!("{path}: expected nothing, got {value}"));
            }
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
            for (i, (a, b)) in w.iter().zip(g).enumerate() {
                diff(&format!("{at}/{i}"), a, b, out);
            }
        }
        _ if want == got => {}
        _ => out.push(format!("{}: expected {want}, got {got}", if at.is_empty() { "/" } else { at })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_names_the_pointers_that_differ() {
        let want = json!({"spec": {"a": 1, "b": [1, 2], "c/d": true}});
        let got = json!({"spec": {"a": 2, "b": [1, 2], "e": null}});
        let mut out = Vec::new();
        diff("", &want, &got, &mut out);
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(out.contains(&"/spec/a: expected 1, got 2".to_string()));
        assert!(out.contains(&"/spec/c~1d: expected true, got nothing".to_string()));
        assert!(out.contains(&"/spec/e: expected nothing, got null".to_string()));
    }
}
