//! Running a suite: each case's request judged by the suite's policies, and
//! the response compared with what the case expects. Every difference is a
//! failure message saying what was expected and what came.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use egate_engine::{AdmissionResponse, Mode, PolicySet};
use json_patch::PatchOperation;
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
    /// How the response differed when every module got the whole request
    /// instead of the members it declares it reads (it should not).
    pub read_differences: Vec<String>,
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
    let inputs = egate_engine::Inputs::with_grants(&case.grants);
    let result = policies.review_traced_with(&case.review, Mode::All, &inputs).map(|traced| traced.response);
    let time = started.elapsed();
    let whole = egate_engine::Inputs { whole_requests: true, ..inputs };
    let read_differences = match (&result, policies.review_traced_with(&case.review, Mode::All, &whole)) {
        (Ok(cut), Ok(traced)) => differences_between(cut, &traced.response),
        _ => Vec::new(),
    };
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
        read_differences,
        time,
    }
}

/// Where two responses to one request differ, for a person: the one a
/// policy gave on the members it declares it reads, and the one it gave
/// on the whole request.
fn differences_between(cut: &AdmissionResponse, whole: &AdmissionResponse) -> Vec<String> {
    let (a, b) = (serde_json::to_value(cut).unwrap_or_default(), serde_json::to_value(whole).unwrap_or_default());
    differences(&b, &a)
        .into_iter()
        .map(|d| format!("the response differs when modules get only the members they declare they read: {d}"))
        .collect()
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
    let differences = differences(&expected.loaded.0, &object);
    if differences.is_empty() {
        return None;
    }
    let mut text = format!("the patched object differs from {}:", expected.written);
    for difference in differences.iter().take(SHOWN_DIFFERENCES) {
        let _ = write!(text, "\n{difference}");
    }
    if differences.len() > SHOWN_DIFFERENCES {
        let _ = write!(text, "\n... and {} more", differences.len() - SHOWN_DIFFERENCES);
    }
    Some(text)
}

/// How many differences a failure lists; the first few say what went wrong.
const SHOWN_DIFFERENCES: usize = 5;

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

/// Where `got` differs from `want`, one line each: the JSON Pointer, and
/// what was expected and got there. Read off the patch that would turn
/// `got` into `want`, so `want`'s members come first, in its order.
fn differences(want: &Value, got: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut last_removed: Option<(String, usize)> = None;
    for operation in json_patch::diff(got, want).0 {
        let line = match &operation {
            PatchOperation::Replace(op) => {
                let pointer = op.path.as_str();
                format!("{}: expected {}, got {}", shown(pointer), op.value, at(got, pointer))
            }
            PatchOperation::Add(op) => format!("{}: expected {}, got nothing", shown(op.path.as_str()), op.value),
            PatchOperation::Remove(op) => {
                let pointer = removed_pointer(op.path.as_str(), &mut last_removed);
                format!("{}: expected nothing, got {}", shown(&pointer), at(got, &pointer))
            }
            // json_patch::diff emits only the three above; anything else is shown, not dropped.
            other => format!("{}: differs ({other})", shown(other.path().as_str())),
        };
        out.push(line);
    }
    out
}

/// Removals of an array's trailing elements all name the same index, each
/// applying after the one before; this names each at its own index in `got`.
fn removed_pointer(path: &str, last: &mut Option<(String, usize)>) -> String {
    let repeat = match last {
        Some((previous, repeat)) if previous == path => *repeat + 1,
        _ => 0,
    };
    *last = Some((path.to_string(), repeat));
    match path.rsplit_once('/').map(|(parent, index)| (parent, index.parse::<usize>())) {
        Some((parent, Ok(index))) if repeat > 0 => format!("{parent}/{}", index + repeat),
        _ => path.to_string(),
    }
}

fn at<'a>(value: &'a Value, pointer: &str) -> &'a Value {
    value.pointer(pointer).unwrap_or(&Value::Null)
}

/// The root's pointer is empty; "/" reads better in a list of pointers.
fn shown(pointer: &str) -> &str {
    if pointer.is_empty() { "/" } else { pointer }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_name_the_pointers_and_both_values() {
        let want = json!({"spec": {"a": 1, "b": [1, 2], "c/d": true}});
        let got = json!({"spec": {"a": 2, "b": [1, 2], "e": null}});
        assert_eq!(
            differences(&want, &got),
            [
                "/spec/a: expected 1, got 2",
                "/spec/c~1d: expected true, got nothing",
                "/spec/e: expected nothing, got null",
            ]
        );
        assert!(differences(&want, &want).is_empty());
        assert_eq!(differences(&json!(1), &json!({"a": 1})), [r#"/: expected 1, got {"a":1}"#]);
    }

    #[test]
    fn differences_in_array_lengths_name_each_element_at_its_index() {
        let want = json!({"list": ["a", "b"]});
        let got = json!({"list": ["a", "x", "c", "d"]});
        assert_eq!(
            differences(&want, &got),
            [
                r#"/list/1: expected "b", got "x""#,
                r#"/list/2: expected nothing, got "c""#,
                r#"/list/3: expected nothing, got "d""#,
            ]
        );
        assert_eq!(
            differences(&got, &want),
            [
                r#"/list/1: expected "x", got "b""#,
                r#"/list/2: expected "c", got nothing"#,
                r#"/list/3: expected "d", got nothing"#,
            ]
        );
    }

    fn expected_file(value: Value) -> FileRef<ObjectFile> {
        FileRef { written: "want.yaml".to_string(), loaded: ObjectFile(value) }
    }

    fn allowed_with(patch: Option<&str>) -> AdmissionResponse {
        let patch = patch.map(|p| base64::engine::general_purpose::STANDARD.encode(p));
        AdmissionResponse { allowed: true, patch, ..Default::default() }
    }

    #[test]
    fn a_patched_object_lists_five_differences_and_counts_the_rest() {
        let review = serde_json::to_vec(&json!({"request": {"object": {"a": 0}}})).unwrap();
        let want = json!({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7});
        let failure = check_patched(&expected_file(want), &review, &allowed_with(None)).unwrap();
        let lines: Vec<&str> = failure.lines().collect();
        assert_eq!(lines[0], "the patched object differs from want.yaml:");
        assert_eq!(lines[1], "/a: expected 1, got 0");
        assert_eq!(lines[2], "/b: expected 2, got nothing");
        assert_eq!(lines.len(), 7, "{failure}");
        assert_eq!(lines[6], "... and 2 more");
    }

    #[test]
    fn the_patch_is_applied_before_comparing() {
        let review = serde_json::to_vec(&json!({"request": {"object": {"a": 0}}})).unwrap();
        let response = allowed_with(Some(r#"[{"op": "replace", "path": "/a", "value": 1}]"#));
        assert_eq!(check_patched(&expected_file(json!({"a": 1})), &review, &response), None);
        let failure = check_patched(&expected_file(json!({"a": 2})), &review, &response).unwrap();
        assert_eq!(failure, "the patched object differs from want.yaml:\n/a: expected 2, got 1");
    }
}
