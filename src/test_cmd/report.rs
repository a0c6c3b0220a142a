//! The results, printed: a table per suite (`text`), one JSON document
//! (`json`), or JUnit XML (`junit`) for CI systems.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Result;
use quick_junit as junit;
use serde_json::{Value, json};

use super::Output;
use super::run::{CaseReport, Got, SuiteReport};
use super::suite::SuiteError;

/// Prints the results in the format asked for.
pub fn print(output: Output, reports: &[SuiteReport], invalid: &[SuiteError]) -> Result<()> {
    let passed: usize = reports.iter().map(SuiteReport::passed).sum();
    let failed: usize = reports.iter().map(SuiteReport::failed).sum();
    match output {
        Output::Text => {
            for report in reports {
                print!("{}", text_table(report));
            }
            println!("{passed} passed, {failed} failed");
        }
        Output::Json => println!("{}", serde_json::to_string_pretty(&json_report(reports, invalid, passed, failed))?),
        Output::Junit => print!("{}", junit_report(reports, invalid)?),
    }
    Ok(())
}

const HEADER: [&str; 4] = ["CASE", "EXPECTED", "GOT", "TIME"];

/// A table per suite: a row per case, its failures under it.
fn text_table(report: &SuiteReport) -> String {
    let rows: Vec<[String; 4]> = report.cases.iter().map(text_row).collect();
    let [w0, w1, w2, w3] = column_widths(&rows);
    let [case, expected, got, time] = HEADER;
    let mut out = format!("{} ({})\n", report.name, report.file.display());
    let _ = writeln!(out, "        {case:w0$}  {expected:w1$}  {got:w2$}  {time}");
    for (case, [name, expected, got, time]) in report.cases.iter().zip(&rows) {
        let mark = if case.passed() { "  ok  " } else { "  FAIL" };
        let _ = writeln!(out, "{mark}  {name:w0$}  {expected:w1$}  {got:w2$}  {time:>w3$}");
        for failure in &case.failures {
            let _ = writeln!(out, "          - {}", failure.replace('\n', "\n              "));
        }
        for difference in &case.read_differences {
            let _ = writeln!(out, "          warning: {}", difference.replace('\n', "\n              "));
        }
    }
    out.push('\n');
    out
}

fn text_row(case: &CaseReport) -> [String; 4] {
    let got = case.got.as_ref().map_or_else(|| "error".to_string(), Got::summary);
    let time = format!("{:.2} ms", case.time.as_secs_f64() * 1e3);
    [case.name.clone(), case.expected.to_string(), got, time]
}

/// Each column as wide as its widest cell, or its header.
fn column_widths(rows: &[[String; 4]]) -> [usize; 4] {
    std::array::from_fn(|i| rows.iter().map(|row| row[i].chars().count()).chain([HEADER[i].len()]).max().unwrap_or(0))
}

fn json_report(reports: &[SuiteReport], invalid: &[SuiteError], passed: usize, failed: usize) -> Value {
    let suites: Vec<Value> = reports.iter().map(json_suite).collect();
    json!({"suites": suites, "invalid": invalid, "passed": passed, "failed": failed})
}

fn json_suite(report: &SuiteReport) -> Value {
    let cases: Vec<Value> = report.cases.iter().map(json_case).collect();
    json!({
        "file": report.file.display().to_string(),
        "name": report.name,
        "passed": report.passed(),
        "failed": report.failed(),
        "cases": cases,
    })
}

fn json_case(case: &CaseReport) -> Value {
    json!({
        "name": case.name,
        "passed": case.passed(),
        "expected": case.expect,
        "got": case.got,
        "failures": case.failures,
        "readDifferences": case.read_differences,
        "timeMs": case.time.as_secs_f64() * 1e3,
    })
}

/// JUnit XML as CI systems read it: a testsuite per suite, a testcase per
/// case, `<failure>` for a failed case, and an `<error>` testsuite per
/// invalid suite.
fn junit_report(reports: &[SuiteReport], invalid: &[SuiteError]) -> Result<String> {
    let mut junit = junit::Report::new("egate test");
    junit.set_time(reports.iter().map(SuiteReport::time).sum());
    junit.add_test_suites(reports.iter().map(junit_suite));
    junit.add_test_suites(invalid.iter().map(junit_invalid_suite));
    Ok(junit.to_string()?)
}

fn junit_suite(report: &SuiteReport) -> junit::TestSuite {
    let file = report.file.display().to_string();
    let mut suite = junit::TestSuite::new(&report.name);
    suite.set_time(report.time());
    suite.extra.insert("file".into(), file.as_str().into());
    suite.add_test_cases(report.cases.iter().map(|case| junit_case(case, &report.name, &file)));
    suite
}

fn junit_case(case: &CaseReport, suite: &str, file: &str) -> junit::TestCase {
    let status = if case.passed() {
        junit::TestCaseStatus::success()
    } else {
        let mut status = junit::TestCaseStatus::non_success(junit::NonSuccessKind::Failure);
        let first = case.failures.first().map(String::as_str).unwrap_or_default();
        status.set_message(first).set_type("egate.expectation").set_description(failure_details(case));
        status
    };
    let mut test_case = junit::TestCase::new(&case.name, status);
    test_case.set_classname(suite).set_time(case.time);
    test_case.extra.insert("file".into(), file.into());
    test_case
}

/// Every failure, then what the case got.
fn failure_details(case: &CaseReport) -> String {
    let mut details = case.failures.join("\n");
    if let Some(got) = &case.got {
        let _ = write!(details, "\ngot: {}", got.summary());
        if let Some(message) = &got.message {
            let _ = write!(details, ": {message}");
        }
    }
    details
}

/// A suite that could not be loaded: one test case, "load the suite", in error.
fn junit_invalid_suite(error: &SuiteError) -> junit::TestSuite {
    let file = error.file.display().to_string();
    let mut status = junit::TestCaseStatus::non_success(junit::NonSuccessKind::Error);
    status.set_message(&error.message).set_type("egate.invalid-suite").set_description(error.to_string());
    let mut case = junit::TestCase::new("load the suite", status);
    case.set_classname(&file).set_time(Duration::ZERO);
    case.extra.insert("file".into(), file.as_str().into());
    let mut suite = junit::TestSuite::new(&file);
    suite.set_time(Duration::ZERO);
    suite.extra.insert("file".into(), file.as_str().into());
    suite.add_test_case(case);
    suite
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn case(name: &str, failures: &[&str]) -> CaseReport {
        CaseReport {
            name: name.to_string(),
            expect: json!({"allowed": true}),
            expected: "allowed",
            got: None,
            failures: failures.iter().map(|f| f.to_string()).collect(),
            read_differences: Vec::new(),
            time: Duration::from_millis(2),
        }
    }

    #[test]
    fn junit_has_a_suite_per_suite_a_failure_per_failed_case_and_an_error_per_invalid_suite() {
        let report = SuiteReport {
            file: PathBuf::from("s.egate-test.yaml"),
            name: "s".to_string(),
            cases: vec![case("ok", &[]), case("bad <one>", &["expected \"x\"", "and more"])],
        };
        let invalid = SuiteError {
            file: PathBuf::from("bad.egate-test.yaml"),
            line: Some(4),
            column: None,
            message: "cases is empty".to_string(),
        };
        let xml = junit_report(&[report], &[invalid]).unwrap();
        assert!(
            xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"egate test\" tests=\"3\"")
        );
        assert!(xml.contains(r#"failures="1" errors="1""#), "{xml}");
        assert!(xml.contains(r#"<testcase name="ok" classname="s" time="0.002" file="s.egate-test.yaml"/>"#), "{xml}");
        assert!(xml.contains(r#"<testcase name="bad &lt;one&gt;" classname="s""#), "{xml}");
        assert!(
            xml.contains(
                r#"<failure message="expected &quot;x&quot;" type="egate.expectation">expected &quot;x&quot;"#
            ),
            "{xml}"
        );
        assert!(xml.contains("and more</failure>"), "{xml}");
        assert!(xml.contains(r#"<testsuite name="bad.egate-test.yaml" tests="1" skipped="0" errors="1" failures="0""#));
        assert!(
            xml.contains(
                r#"<error message="cases is empty" type="egate.invalid-suite">bad.egate-test.yaml:4: invalid test suite: cases is empty</error>"#
            ),
            "{xml}"
        );
        assert!(xml.ends_with("</testsuites>\n"), "{xml}");
    }
}
