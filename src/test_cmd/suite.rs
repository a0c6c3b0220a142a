//! The suite format: the YAML a `*.egate-test.yaml` file holds, read into a
//! [`Suite`] whose every case has its request built and its expected files
//! read. Whatever is wrong is a [`SuiteError`] with the suite's file, line
//! and column.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use egate_engine::grants::GrantIndex;
use egate_engine::{PolicySet, Sandbox};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::files::{self, FileRef, ObjectFile, PodFile, PolicyPath, ReviewFile};
use crate::debug_request::{DebugContainer, Requester, admission_review};

/// Why a suite cannot run: where, and what is wrong.
#[derive(Debug, Serialize)]
pub struct SuiteError {
    pub file: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for SuiteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": invalid test suite: {}", self.message)
    }
}

impl std::error::Error for SuiteError {}

/// A loaded suite: its policies and cases, every file read.
pub struct Suite {
    pub file: PathBuf,
    pub name: String,
    pub policies: PolicySet,
    pub cases: Vec<Case>,
}

/// A case, with the request it sends and the debug grants the cluster
/// has for it.
pub struct Case {
    pub name: String,
    pub review: Vec<u8>,
    pub grants: GrantIndex,
    pub expect: Expect,
}

/// What a case must get.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expect {
    pub allowed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patched: Option<FileRef<ObjectFile>>,
}

/// Reads a suite, every file it names, and its policies.
pub fn load(sandbox: &Sandbox, file: &Path) -> Result<Suite, SuiteError> {
    let error = |line, column, message| SuiteError { file: file.to_path_buf(), line, column, message };
    let text = std::fs::read_to_string(file).map_err(|e| error(None, None, format!("cannot read it: {e}")))?;
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let parsed: SuiteFile = files::relative_to(dir, || egate_engine::yaml::from_str(&text))
        .map_err(|e| error(e.at.map(|(l, _)| l), e.at.map(|(_, c)| c), e.message))?;
    let manifests: Vec<PathBuf> = parsed.policies.0.iter().map(|p| p.loaded.0.clone()).collect();
    let policies = PolicySet::load(sandbox, &manifests).map_err(|e| {
        // The engine's error names the manifest; the suite's line is the policies list.
        let line = text.lines().position(|l| l.starts_with("policies:")).map(|i| i + 1);
        error(line, None, format!("policies: {e}"))
    })?;
    Ok(Suite { file: file.to_path_buf(), name: parsed.name, policies, cases: parsed.cases.0 })
}

/// A suite file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SuiteFile {
    #[allow(dead_code)]
    api_version: ApiVersion,
    #[allow(dead_code)]
    kind: SuiteKind,
    name: String,
    policies: NonEmpty<FileRef<PolicyPath>>,
    cases: Cases,
}

#[derive(Deserialize)]
enum ApiVersion {
    #[serde(rename = "egate.dev/v1")]
    V1,
}

#[derive(Deserialize)]
enum SuiteKind {
    Test,
}

/// What a case sends, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawCase {
    name: String,
    #[serde(default)]
    request: Option<FileRef<ReviewFile>>,
    #[serde(default)]
    pod: Option<FileRef<PodFile>>,
    #[serde(default)]
    debug: Option<DebugContainer>,
    #[serde(default)]
    user_info: Option<Requester>,
    /// `DebugGrant` objects, as stored in the cluster: what a policy that
    /// reads the `debugGrants` input gets (those of the request's pod).
    #[serde(default)]
    grants: Vec<serde_json::Value>,
    expect: Expect,
}

impl RawCase {
    /// The case, once its fields agree with each other.
    fn into_case(self) -> Result<Case, String> {
        let name = self.name;
        let review = match (self.request, self.pod, self.debug) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(format!(
                    "case {name:?} has both request and pod/debug: give either request (an AdmissionReview file) \
                     or pod and debug (the request is built as kubectl debug would send it)"
                ));
            }
            (Some(_), None, None) if self.user_info.is_some() => {
                return Err(format!(
                    "case {name:?}: userInfo goes with pod and debug; a request file carries its own userInfo"
                ));
            }
            (Some(request), None, None) => request.loaded.0,
            (None, Some(pod), Some(debug)) => {
                let user = self.user_info.unwrap_or_default();
                let review = admission_review(&pod.loaded.0, &debug, &user)
                    .map_err(|e| format!("case {name:?}: debug: {e:#}"))?;
                serde_json::to_vec(&review).expect("JSON values serialise")
            }
            (None, Some(_), None) => {
                return Err(format!(
                    "case {name:?} has a pod but no debug: add debug: {{image: ...}}, the container kubectl debug adds"
                ));
            }
            (None, None, Some(_)) => {
                return Err(format!(
                    "case {name:?} has debug but no pod: add pod: FILE, the pod kubectl debug targets"
                ));
            }
            (None, None, None) => {
                return Err(format!(
                    "case {name:?} sends nothing: give request (an AdmissionReview file) or pod and debug"
                ));
            }
        };
        if self.expect.patched.is_some() && !self.expect.allowed {
            return Err(format!(
                "case {name:?} expects a denial and a patched object: patches apply only to allowed requests"
            ));
        }
        let namespace = serde_json::from_slice::<serde_json::Value>(&review)
            .ok()
            .and_then(|r| r["request"]["namespace"].as_str().map(str::to_string))
            .unwrap_or_default();
        let grants =
            crate::cluster::grants::index_of(self.grants, &namespace).map_err(|e| format!("case {name:?}: {e}"))?;
        Ok(Case { name, review, grants, expect: self.expect })
    }
}

impl<'de> Deserialize<'de> for Case {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CaseVisitor;
        impl<'de> Visitor<'de> for CaseVisitor {
            type Value = Case;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a test case: a mapping with name, request (or pod and debug) and expect")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Case, A::Error> {
                // Checks across fields fail here, so the error points at the case.
                let raw = RawCase::deserialize(de::value::MapAccessDeserializer::new(map))?;
                raw.into_case().map_err(de::Error::custom)
            }
        }
        deserializer.deserialize_map(CaseVisitor)
    }
}

/// The cases: at least one, names unique.
struct Cases(Vec<Case>);

impl<'de> Deserialize<'de> for Cases {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CasesVisitor;
        impl<'de> Visitor<'de> for CasesVisitor {
            type Value = Cases;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of test cases")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Cases, A::Error> {
                let mut cases: Vec<Case> = Vec::new();
                // Checked one case at a time, so the error points at the duplicate.
                while let Some(case) = seq.next_element::<Case>()? {
                    if cases.iter().any(|c| c.name == case.name) {
                        return Err(de::Error::custom(format!(
                            "two cases are named {:?}: case names must be unique in a suite",
                            case.name
                        )));
                    }
                    cases.push(case);
                }
                if cases.is_empty() {
                    return Err(de::Error::custom("cases is empty: a suite needs at least one case"));
                }
                Ok(Cases(cases))
            }
        }
        deserializer.deserialize_seq(CasesVisitor)
    }
}

/// A list with at least one entry.
struct NonEmpty<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for NonEmpty<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NonEmptyVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for NonEmptyVisitor<T> {
            type Value = NonEmpty<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a non-empty list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NonEmpty<T>, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                if items.is_empty() {
                    return Err(de::Error::custom("the list is empty: give at least one entry"));
                }
                Ok(NonEmpty(items))
            }
        }
        deserializer.deserialize_seq(NonEmptyVisitor(PhantomData))
    }
}
