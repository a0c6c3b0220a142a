//! `egate test [PATH ...]`: run policy test suites, the `*.egate-test.yaml`
//! files found recursively under each PATH (default `.`).
//!
//! ```yaml
//! apiVersion: egate.dev/v1
//! kind: Test
//! name: privileged debug containers
//! policies: [../policy.yaml]              # relative to this file
//! cases:
//!   - name: a privileged debug container is denied
//!     request: requests/privileged.json   # an AdmissionReview, JSON or YAML
//!     expect: {allowed: false, messageContains: privileged}
//!   - name: a restricted one is allowed
//!     pod: pods/web.yaml                  # instead of request: the pod kubectl debug targets
//!     debug: {image: "busybox:1.36", target: app, profile: restricted}
//!     userInfo: {username: alice, groups: [developers]}
//!     expect: {allowed: true, warnings: [], auditAnnotations: {}, patched: pods/web-debugged.yaml}
//! ```
//!
//! Everything a suite names is read and checked when the suite loads, so a
//! mistake is reported with the suite's file, line and column, before any
//! case runs. Exit 0 when every case passes, 1 when one fails, 2 when a
//! suite is invalid (or none is found).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use base64::Engine as _;
use clap::{Args, ValueEnum};
use egate_engine::{AdmissionResponse, PolicySet, Sandbox, SandboxConfig};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::debug_request::{DebugContainer, Requester, admission_review, read_pod};

/// Arguments of `egate test`.
#[derive(Args)]
pub struct TestArgs {
    /// Suite files, or directories searched recursively for `*.egate-test.yaml`.
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,
    /// `text`: a table per suite; `json` and `junit` for CI.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
    Junit,
}

/// How suite files are named.
pub const SUITE_SUFFIX: &str = ".egate-test.yaml";

/// Runs `egate test`.
pub fn run(args: &TestArgs) -> Result<ExitCode> {
    let files = find_suites(&args.paths)?;
    let sandbox = Sandbox::new(SandboxConfig::default())?;
    let mut reports = Vec::new();
    let mut invalid = Vec::new();
    for file in &files {
        match load_suite(&sandbox, file) {
            Ok(suite) => reports.push(run_suite(&suite)),
            Err(error) => {
                eprintln!("egate: error: {error}");
                invalid.push(error);
            }
        }
    }
    let passed = reports.iter().flat_map(|r| &r.cases).filter(|c| c.passed()).count();
    let failed = reports.iter().flat_map(|r| &r.cases).filter(|c| !c.passed()).count();
    match args.output {
        Output::Text => {
            for report in &reports {
                print!("{}", text_table(report));
            }
            println!("{passed} passed, {failed} failed");
        }
        Output::Json => println!("{}", serde_json::to_string_pretty(&json_report(&reports, &invalid, passed, failed))?),
        Output::Junit => print!("{}", junit_report(&reports, &invalid)),
    }
    Ok(if !invalid.is_empty() {
        ExitCode::from(2)
    } else if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

// ---------------------------------------------------------------------------
// Finding suites

/// Every suite file under `paths`, sorted. A file given by name is taken
/// whatever its name; directories are searched recursively, skipping hidden
/// ones and cargo target directories (those holding CACHEDIR.TAG).
fn find_suites(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut found = BTreeSet::new();
    for path in paths {
        if path.is_file() {
            found.insert(path.clone());
        } else if path.is_dir() {
            let before = found.len();
            walk(path, &mut found)?;
            if found.len() == before {
                bail!("no *{SUITE_SUFFIX} files under {}", path.display());
            }
        } else {
            bail!("{} does not exist: give suite files or directories holding *{SUITE_SUFFIX} files", path.display());
        }
    }
    Ok(found.into_iter().collect())
}

fn walk(dir: &Path, found: &mut BTreeSet<PathBuf>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("cannot read directory {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            if !name.starts_with('.') && !path.join("CACHEDIR.TAG").exists() {
                walk(&path, found)?;
            }
        } else if name.ends_with(SUITE_SUFFIX) && path.is_file() {
            found.insert(path);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The suite format

/// Why a suite cannot run: where, and what is wrong.
#[derive(Debug, Serialize)]
pub struct SuiteError {
    file: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<usize>,
    message: String,
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

/// A loaded suite: its policies and cases, every file read.
struct Suite {
    file: PathBuf,
    name: String,
    policies: PolicySet,
    cases: Vec<Case>,
}

/// A case, with the request it sends.
struct Case {
    name: String,
    review: Vec<u8>,
    expect: Expect,
}

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
    expect: Expect,
}

/// What a case must get.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Expect {
    allowed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    warnings: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    audit_annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    patched: Option<FileRef<ObjectFile>>,
}

impl RawCase {
    fn into_case(self) -> Result<Case, String> {
        let review = match (self.request, self.pod, self.debug) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(format!(
                    "case {:?} has both request and pod/debug: give either request (an AdmissionReview file) \
                     or pod and debug (the request is built as kubectl debug would send it)",
                    self.name
                ));
            }
            (Some(request), None, None) => {
                if self.user_info.is_some() {
                    return Err(format!(
                        "case {:?}: userInfo goes with pod and debug; a request file carries its own userInfo",
                        self.name
                    ));
                }
                request.loaded.0
            }
            (None, Some(pod), Some(debug)) => {
                let user = self.user_info.unwrap_or_default();
                let review = admission_review(&pod.loaded.0, &debug, &user)
                    .map_err(|e| format!("case {:?}: debug: {e:#}", self.name))?;
                serde_json::to_vec(&review).expect("JSON values serialise")
            }
            (None, Some(_), None) => {
                return Err(format!(
                    "case {:?} has a pod but no debug: add debug: {{image: ...}}, the container kubectl debug adds",
                    self.name
                ));
            }
            (None, None, Some(_)) => {
                return Err(format!(
                    "case {:?} has debug but no pod: add pod: FILE, the pod kubectl debug targets",
                    self.name
                ));
            }
            (None, None, None) => {
                return Err(format!(
                    "case {:?} sends nothing: give request (an AdmissionReview file) or pod and debug",
                    self.name
                ));
            }
        };
        if self.expect.patched.is_some() && !self.expect.allowed {
            return Err(format!(
                "case {:?} expects a denial and a patched object: patches apply only to allowed requests",
                self.name
            ));
        }
        Ok(Case { name: self.name, review, expect: self.expect })
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

thread_local! {
    /// The directory of the suite being read: file names in it are relative to it.
    static SUITE_DIR: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// A kind of file a suite names, read when the suite is read.
trait LoadFile: Sized {
    /// What the file should hold, for messages.
    const WHAT: &'static str;
    fn load(path: &Path) -> Result<Self>;
}

/// A file name in a suite, relative to the suite, and what it holds. The
/// file is read while the suite is parsed, so an error carries the line and
/// column of the name.
struct FileRef<T> {
    written: String,
    loaded: T,
}

impl<T> Serialize for FileRef<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.written)
    }
}

impl<'de, T: LoadFile> Deserialize<'de> for FileRef<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FileVisitor<T>(PhantomData<T>);
        impl<T: LoadFile> Visitor<'_> for FileVisitor<T> {
            type Value = FileRef<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "the path of {}, relative to the suite file", T::WHAT)
            }
            fn visit_str<E: de::Error>(self, written: &str) -> Result<FileRef<T>, E> {
                if written.is_empty() {
                    return Err(E::custom(format!("empty file name: give the path of {}", T::WHAT)));
                }
                let path = SUITE_DIR.with(|dir| dir.borrow().as_deref().unwrap_or(Path::new("")).join(written));
                let loaded = T::load(&path).map_err(|e| E::custom(format!("{e:#}")))?;
                Ok(FileRef { written: written.to_string(), loaded })
            }
        }
        deserializer.deserialize_str(FileVisitor(PhantomData))
    }
}

/// An AdmissionReview file, as JSON bytes.
struct ReviewFile(Vec<u8>);

impl LoadFile for ReviewFile {
    const WHAT: &'static str = "an AdmissionReview (JSON or YAML)";
    fn load(path: &Path) -> Result<Self> {
        let bytes = crate::eval::read_review(path)?;
        if let Err(e) = egate_engine::review::Review::parse(&bytes) {
            bail!("request file {}: {e}", path.display());
        }
        Ok(Self(bytes))
    }
}

/// A Pod file.
struct PodFile(Value);

impl LoadFile for PodFile {
    const WHAT: &'static str = "a Pod (YAML or JSON)";
    fn load(path: &Path) -> Result<Self> {
        read_pod(path).map(Self)
    }
}

/// The expected object after the patch.
struct ObjectFile(Value);

impl LoadFile for ObjectFile {
    const WHAT: &'static str = "the expected object after the patch (YAML or JSON)";
    fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let value: Value = egate_engine::yaml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is neither JSON nor YAML: {e}", path.display()))?;
        Ok(Self(value))
    }
}

/// A policy manifest the suite loads.
struct PolicyPath(PathBuf);

impl LoadFile for PolicyPath {
    const WHAT: &'static str = "a policy manifest";
    fn load(path: &Path) -> Result<Self> {
        if !path.is_file() {
            bail!("there is no policy manifest {} (paths are relative to the suite file)", path.display());
        }
        Ok(Self(path.to_path_buf()))
    }
}

/// Reads a suite, every file it names, and its policies.
fn load_suite(sandbox: &Sandbox, file: &Path) -> Result<Suite, SuiteError> {
    let error = |line, column, message| SuiteError { file: file.to_path_buf(), line, column, message };
    let text = std::fs::read_to_string(file).map_err(|e| error(None, None, format!("cannot read it: {e}")))?;
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    SUITE_DIR.with(|d| *d.borrow_mut() = Some(dir));
    let parsed: Result<SuiteFile, _> = egate_engine::yaml::from_str(&text);
    SUITE_DIR.with(|d| *d.borrow_mut() = None);
    let parsed = parsed.map_err(|e| error(e.at.map(|(l, _)| l), e.at.map(|(_, c)| c), e.message))?;
    let manifests: Vec<PathBuf> = parsed.policies.0.iter().map(|p| p.loaded.0.clone()).collect();
    let policies = PolicySet::load(sandbox, &manifests).map_err(|e| {
        let line = text.lines().position(|l| l.starts_with("policies:")).map(|i| i + 1);
        error(line, None, format!("policies: {e}"))
    })?;
    Ok(Suite { file: file.to_path_buf(), name: parsed.name, policies, cases: parsed.cases.0 })
}

// ---------------------------------------------------------------------------
// Running

/// What one case got, and whether it was what it expected.
struct CaseReport {
    name: String,
    expect: Value,
    expected: String,
    got: Option<Got>,
    failures: Vec<String>,
    time: Duration,
}

impl CaseReport {
    fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The decision a case got.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Got {
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    warnings: Vec<String>,
    audit_annotations: BTreeMap<String, String>,
    patched: bool,
}

impl Got {
    fn summary(&self) -> String {
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

struct SuiteReport {
    file: PathBuf,
    name: String,
    cases: Vec<CaseReport>,
}

fn run_suite(suite: &Suite) -> SuiteReport {
    let cases = suite.cases.iter().map(|case| run_case(&suite.policies, case)).collect();
    SuiteReport { file: suite.file.clone(), name: suite.name.clone(), cases }
}

fn run_case(policies: &PolicySet, case: &Case) -> CaseReport {
    let expected = if case.expect.allowed { "allowed" } else { "denied" }.to_string();
    let started = Instant::now();
    let result = policies.review(&case.review);
    let time = started.elapsed();
    let mut report = CaseReport {
        name: case.name.clone(),
        expect: serde_json::to_value(&case.expect).expect("expectations serialise"),
        expected,
        got: None,
        failures: Vec::new(),
        time,
    };
    match result {
        Ok(response) => {
            report.failures = check(&case.expect, &case.review, &response);
            report.got = Some(Got {
                allowed: response.allowed,
                code: response.status.as_ref().map(|s| s.code),
                message: response.status.as_ref().map(|s| s.message.clone()),
                warnings: response.warnings,
                audit_annotations: response.audit_annotations,
                patched: response.patch.is_some(),
            });
        }
        Err(e) => report.failures.push(format!("the request could not be judged: {e}")),
    }
    report
}

/// Every way the response differs from the expectation.
fn check(expect: &Expect, review: &[u8], response: &AdmissionResponse) -> Vec<String> {
    let mut failures = Vec::new();
    let message = response.status.as_ref().map(|s| s.message.as_str());
    if response.allowed != expect.allowed {
        failures.push(match message {
            Some(message) => format!("expected allowed, got denied: {message}"),
            None => "expected denied, got allowed".to_string(),
        });
    }
    if let Some(part) = &expect.message_contains {
        match message {
            Some(message) if message.contains(part.as_str()) => {}
            Some(message) => failures.push(format!("the message does not contain {part:?}: {message:?}")),
            None => {
                failures.push(format!("expected a message containing {part:?}, got none (the request was allowed)"))
            }
        }
    }
    if let Some(warnings) = &expect.warnings
        && *warnings != response.warnings
    {
        failures.push(format!("expected warnings {warnings:?}, got {:?}", response.warnings));
    }
    if let Some(annotations) = &expect.audit_annotations {
        for (key, value) in annotations {
            match response.audit_annotations.get(key) {
                Some(got) if got == value => {}
                Some(got) => failures.push(format!("audit annotation {key:?} is {got:?}, expected {value:?}")),
                None => failures.push(format!(
                    "no audit annotation {key:?} (got {:?})",
                    response.audit_annotations.keys().collect::<Vec<_>>()
                )),
            }
        }
    }
    if let Some(patched) = &expect.patched {
        match patched_object(review, response) {
            Ok(object) => {
                let mut differences = Vec::new();
                diff("", &patched.loaded.0, &object, &mut differences);
                if !differences.is_empty() {
                    let shown = differences.len().min(5);
                    let mut text = format!("the patched object differs from {}:", patched.written);
                    for difference in &differences[..shown] {
                        let _ = write!(text, "\n{difference}");
                    }
                    if differences.len() > shown {
                        let _ = write!(text, "\n... and {} more", differences.len() - shown);
                    }
                    failures.push(text);
                }
            }
            Err(e) => failures.push(e),
        }
    }
    failures
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

// ---------------------------------------------------------------------------
// Output

fn text_table(report: &SuiteReport) -> String {
    let rows: Vec<[String; 4]> = report
        .cases
        .iter()
        .map(|c| {
            let got = c.got.as_ref().map_or_else(|| "error".to_string(), Got::summary);
            [c.name.clone(), c.expected.clone(), got, format!("{:.2} ms", c.time.as_secs_f64() * 1e3)]
        })
        .collect();
    let header = ["CASE", "EXPECTED", "GOT", "TIME"];
    let widths: Vec<usize> =
        (0..4).map(|i| rows.iter().map(|r| r[i].chars().count()).chain([header[i].len()]).max().unwrap_or(0)).collect();
    let mut out = String::new();
    let _ = writeln!(out, "{} ({})", report.name, report.file.display());
    let _ = writeln!(
        out,
        "        {:w0$}  {:w1$}  {:w2$}  {}",
        header[0],
        header[1],
        header[2],
        header[3],
        w0 = widths[0],
        w1 = widths[1],
        w2 = widths[2]
    );
    for (case, row) in report.cases.iter().zip(&rows) {
        let mark = if case.passed() { "  ok  " } else { "  FAIL" };
        let _ = writeln!(
            out,
            "{mark}  {:w0$}  {:w1$}  {:w2$}  {:>w3$}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
        for failure in &case.failures {
            let _ = writeln!(out, "          - {}", failure.replace('\n', "\n              "));
        }
    }
    out.push('\n');
    out
}

fn json_report(reports: &[SuiteReport], invalid: &[SuiteError], passed: usize, failed: usize) -> Value {
    let suites: Vec<Value> = reports
        .iter()
        .map(|r| {
            let cases: Vec<Value> = r
                .cases
                .iter()
                .map(|c| {
                    json!({
                        "name": c.name,
                        "passed": c.passed(),
                        "expected": c.expect,
                        "got": c.got,
                        "failures": c.failures,
                        "timeMs": c.time.as_secs_f64() * 1e3,
                    })
                })
                .collect();
            json!({
                "file": r.file.display().to_string(),
                "name": r.name,
                "passed": r.cases.iter().filter(|c| c.passed()).count(),
                "failed": r.cases.iter().filter(|c| !c.passed()).count(),
                "cases": cases,
            })
        })
        .collect();
    json!({"suites": suites, "invalid": invalid, "passed": passed, "failed": failed})
}

/// JUnit XML as CI systems read it: a testsuite per suite, a testcase per
/// case, `<failure>` for a failed case, and an `<error>` testsuite per
/// invalid suite.
fn junit_report(reports: &[SuiteReport], invalid: &[SuiteError]) -> String {
    let total: usize = reports.iter().map(|r| r.cases.len()).sum::<usize>() + invalid.len();
    let failures = reports.iter().flat_map(|r| &r.cases).filter(|c| !c.passed()).count();
    let seconds = |d: Duration| format!("{:.6}", d.as_secs_f64());
    let all_time: Duration = reports.iter().flat_map(|r| &r.cases).map(|c| c.time).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        r#"<testsuites name="egate test" tests="{total}" failures="{failures}" errors="{}" time="{}">"#,
        invalid.len(),
        seconds(all_time)
    );
    for report in reports {
        let file = xml(&report.file.display().to_string());
        let name = xml(&report.name);
        let failed = report.cases.iter().filter(|c| !c.passed()).count();
        let time: Duration = report.cases.iter().map(|c| c.time).sum();
        let _ = writeln!(
            out,
            r#"  <testsuite name="{name}" file="{file}" tests="{}" failures="{failed}" errors="0" time="{}">"#,
            report.cases.len(),
            seconds(time)
        );
        for case in &report.cases {
            let _ = write!(
                out,
                r#"    <testcase name="{}" classname="{name}" file="{file}" time="{}""#,
                xml(&case.name),
                seconds(case.time)
            );
            if case.passed() {
                out.push_str("/>\n");
                continue;
            }
            out.push_str(">\n");
            let mut details = case.failures.join("\n");
            if let Some(got) = &case.got {
                let _ = write!(details, "\ngot: {}", got.summary());
                if let Some(message) = &got.message {
                    let _ = write!(details, ": {message}");
                }
            }
            let _ = writeln!(
                out,
                r#"      <failure message="{}" type="egate.expectation">{}</failure>"#,
                xml(case.failures.first().map(String::as_str).unwrap_or_default()),
                xml(&details)
            );
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    for error in invalid {
        let file = xml(&error.file.display().to_string());
        let _ =
            writeln!(out, r#"  <testsuite name="{file}" file="{file}" tests="1" failures="0" errors="1" time="0">"#);
        let _ = writeln!(out, r#"    <testcase name="load the suite" classname="{file}" file="{file}" time="0">"#);
        let _ = writeln!(
            out,
            r#"      <error message="{}" type="egate.invalid-suite">{}</error>"#,
            xml(&error.message),
            xml(&error.to_string())
        );
        out.push_str("    </testcase>\n  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 forbids.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn xml_is_escaped() {
        assert_eq!(xml("a<b & \"c\"\n"), "a&lt;b &amp; &quot;c&quot;&#10;");
    }
}
