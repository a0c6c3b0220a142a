//! What `egate who-can-debug` prints: per capability, its permissions and
//! why, then one row per chain (namespace, subject, verbs, and the chain
//! from binding to role to rule), with what `--policies` decided under debug
//! entries; or the same as one JSON or YAML document.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::judge::Judgement;
use super::rbac::{Capability, Entry};

/// A listed entry, with the policy set's judgement when there is one.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    /// Who, where, how.
    #[serde(flatten)]
    pub entry: Entry,
    /// What `--policies` lets it add (debug entries only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egate: Option<Judgement>,
}

/// One capability's list.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct List {
    /// Which.
    pub capability: Capability,
    /// The permissions it needs: `patch or update pods/ephemeralcontainers`.
    pub permissions: String,
    /// Why those verbs.
    pub why: String,
    /// Who, sorted by namespace (every namespace first) and subject.
    pub entries: Vec<Listed>,
}

/// The whole answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Where the RBAC objects came from: `cluster` or the files.
    pub source: String,
    /// One list per capability asked for.
    pub lists: Vec<List>,
    /// What looked wrong or worth knowing in the RBAC objects.
    pub notes: Vec<String>,
}

impl Report {
    /// Groups entries into lists, one per capability of `capabilities`.
    pub fn new(source: String, capabilities: &[Capability], entries: Vec<Listed>, notes: Vec<String>) -> Self {
        let mut by_capability: BTreeMap<Capability, Vec<Listed>> = BTreeMap::new();
        for listed in entries {
            by_capability.entry(listed.entry.capability).or_default().push(listed);
        }
        let lists = capabilities
            .iter()
            .map(|&capability| List {
                capability,
                permissions: capability.permissions(),
                why: capability.why().to_string(),
                entries: by_capability.remove(&capability).unwrap_or_default(),
            })
            .collect();
        Self { source, lists, notes }
    }
}

/// The report as a table per capability.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    for list in &report.lists {
        let _ = writeln!(out, "{}: {}", list.capability, list.permissions);
        let _ = writeln!(out, "  {}", list.why);
        let mut rows: Vec<[String; 4]> = Vec::new();
        let mut after: BTreeMap<usize, String> = BTreeMap::new();
        for listed in &list.entries {
            let entry = &listed.entry;
            let namespace = entry.namespace.namespace().unwrap_or("(all)").to_string();
            let verbs = entry.verbs.iter().cloned().collect::<Vec<_>>().join(",");
            let limit = match &entry.resource_names {
                Some(names) => format!(" [only {}]", names.iter().cloned().collect::<Vec<_>>().join(", ")),
                None => String::new(),
            };
            for (i, chain) in entry.chains.iter().enumerate() {
                let first = i == 0;
                rows.push([
                    if first { namespace.clone() } else { String::new() },
                    if first { format!("{}{limit}", entry.subject) } else { String::new() },
                    chain.verbs.join(","),
                    chain.to_string(),
                ]);
            }
            if entry.chains.is_empty() {
                rows.push([namespace.clone(), entry.subject.to_string(), verbs, String::new()]);
            }
            if let Some(judgement) = &listed.egate {
                after.insert(rows.len() - 1, format!("egate in {}: {}", judgement.namespace, judgement.summary));
            }
        }
        if rows.is_empty() {
            let _ = writeln!(out, "  nobody\n");
            continue;
        }
        let headers = ["NAMESPACE", "SUBJECT", "VERBS", "VIA"];
        let widths: Vec<usize> =
            (0..3).map(|i| rows.iter().map(|r| r[i].len()).chain([headers[i].len()]).max().unwrap_or(0)).collect();
        let line = |cells: [&str; 4]| {
            let mut line = String::from("  ");
            for (i, cell) in cells.iter().enumerate().take(3) {
                let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
            }
            line.push_str(cells[3]);
            line.trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line(headers));
        for (i, row) in rows.iter().enumerate() {
            let _ = writeln!(out, "{}", line([&row[0], &row[1], &row[2], &row[3]]));
            if let Some(text) = after.get(&i) {
                let indent = widths[0] + 4;
                let _ = writeln!(out, "{:indent$}{text}", "");
            }
        }
        let subjects = list.entries.len();
        let _ = writeln!(out, "  {subjects} {}\n", if subjects == 1 { "entry" } else { "entries" });
    }
    if !report.notes.is_empty() {
        let _ = writeln!(out, "notes:");
        for note in &report.notes {
            let _ = writeln!(out, "  - {note}");
        }
    }
    out
}
