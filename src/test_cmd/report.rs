//! The results, printed: a table per suite (`text`), one JSON document
//! (`json`), or JUnit XML (`junit`) for CI systems.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use super::Output;
use super::run::{Got, SuiteReport};
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
        Output::Junit => print!("{}", junit_report(reports, invalid)),
    }
    Ok(())
}

fn text_table(report: &SuiteReport) -> String {
    let rows: Vec<[String; 4]> = report
        .cases
        .iter()
        .map(|c| {
            let got = c.got.as_ref().map_or_else(|| "error".to_string(), Got::summary);
            [c.name.clone(), c.expected.to_string(), got, format!("{:.2} ms", c.time.as_secs_f64() * 1e3)]
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
                "passed": r.passed(),
                "failed": r.failed(),
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
    let failures = reports.iter().map(SuiteReport::failed).sum::<usize>();
    let seconds = |d: Duration| format!("{:.6}", d.as_secs_f64());
    let all_time: Duration = reports.iter().map(SuiteReport::time).sum();
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
        let failed = report.failed();
        let time = report.time();
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
    fn xml_is_escaped() {
        assert_eq!(xml("a<b & \"c\"\n"), "a&lt;b &amp; &quot;c&quot;&#10;");
    }
}
