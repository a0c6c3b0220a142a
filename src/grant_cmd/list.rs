//! What `egate grant list` shows of each stored grant: its state (live,
//! expired, not approved) decided as the request path decides it
//! ([`usable`]), how long it has left, and how often it was used; as a
//! table for people, or as JSON or YAML rows for scripts.

use std::fmt::Write as _;
use std::time::Duration;

use egate_abi::inputs::{GrantSubjects, Profile};
use egate_engine::grants::{APPROVED_BY, GrantError, GrantPods, format_duration};
use jiff::Timestamp;
use kube::ResourceExt;
use serde::Serialize;

use crate::cluster::grants::{DebugGrant, usable};

/// One grant as `list` shows it. Its JSON (`-o json`) is what scripts
/// read: the names below in camelCase.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `live`, `expired`, `notApproved` or `unusable`.
    pub state: State,
    /// What the REMAINING column says: `29m10s`, `expired 5m ago`, `not approved (...)`.
    pub remaining: String,
    /// How many seconds it has left; 0 unless live.
    pub remaining_seconds: u64,
    /// When it ends (RFC 3339), for a grant that is approved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The approver egate's webhook recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// Who may use it.
    pub subjects: GrantSubjects,
    /// Which pods.
    pub pods: GrantPods,
    /// Containers the debug container may target.
    pub target_containers: Vec<String>,
    /// Images the debug container may run.
    pub images: Vec<String>,
    /// The most it may ask for.
    pub profile: Profile,
    /// `status.useCount`: debug containers admitted under it.
    pub use_count: i64,
    /// Why it was asked for.
    pub reason: String,
}

/// Whether a grant can be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum State {
    /// Approved, and not ended.
    Live,
    /// Approved, and ended.
    Expired,
    /// No approver recorded: egate's webhook did not create it.
    NotApproved,
    /// Its spec cannot be used (a duration that does not parse).
    Unusable,
}

/// The row of one stored grant at `now`.
pub fn row(object: &DebugGrant, now: Timestamp) -> Row {
    let spec = &object.spec.0;
    let (state, remaining, remaining_seconds, expires_at) = match usable(object) {
        Ok(grant) if grant.expires_at() > now => {
            let left = Duration::try_from(now.duration_until(grant.expires_at())).unwrap_or_default();
            (State::Live, coarse(left), left.as_secs(), Some(grant.expires_at()))
        }
        Ok(grant) => {
            let ago = Duration::try_from(grant.expires_at().duration_until(now)).unwrap_or_default();
            (State::Expired, format!("expired {} ago", coarse(ago)), 0, Some(grant.expires_at()))
        }
        Err(GrantError::NotApproved) => (State::NotApproved, format!("not approved (no {APPROVED_BY})"), 0, None),
        Err(error) => (State::Unusable, format!("unusable: {error}"), 0, None),
    };
    Row {
        namespace: object.namespace().unwrap_or_default(),
        name: object.name_any(),
        state,
        remaining,
        remaining_seconds,
        expires_at: expires_at.map(|t| t.to_string()),
        approved_by: object.annotations().get(APPROVED_BY).cloned(),
        subjects: spec.subjects.clone(),
        pods: spec.pods.clone(),
        target_containers: spec.target_containers.clone(),
        images: spec.images.clone(),
        profile: spec.profile,
        use_count: object.status.as_ref().map_or(0, |s| s.use_count),
        reason: spec.reason.clone(),
    }
}

/// A duration to the second under two days (`1h29m59s`), in days above.
fn coarse(duration: Duration) -> String {
    const DAY: u64 = 24 * 3600;
    match duration.as_secs() {
        secs if secs >= 2 * DAY => format!("{}d", secs / DAY),
        _ => format_duration(duration),
    }
}

/// `alice,group:sre`.
pub fn subjects_cell(subjects: &GrantSubjects) -> String {
    let groups = subjects.groups.iter().map(|g| format!("group:{g}"));
    subjects.users.iter().cloned().chain(groups).collect::<Vec<_>>().join(",")
}

/// `web,api,app=web`: the pod names, then the selector's requirements.
fn pods_cell(pods: &GrantPods) -> String {
    let mut cells = pods.names.clone();
    if let Some(selector) = &pods.selector {
        cells.extend(selector.match_labels.iter().map(|(k, v)| format!("{k}={v}")));
        cells.extend(selector.match_expressions.iter().map(|e| match e.values.as_slice() {
            [] => format!("{} {:?}", e.key, e.operator),
            values => format!("{} {:?} ({})", e.key, e.operator, values.join(",")),
        }));
    }
    cells.join(",")
}

/// The table of rows, with its header; empty for no rows.
pub fn table(rows: &[Row]) -> String {
    const HEADER: [&str; 9] =
        ["NAMESPACE", "NAME", "SUBJECTS", "PODS", "PROFILE", "IMAGES", "APPROVED-BY", "REMAINING", "USES"];
    let cells: Vec<[String; 9]> = rows
        .iter()
        .map(|r| {
            [
                r.namespace.clone(),
                r.name.clone(),
                subjects_cell(&r.subjects),
                pods_cell(&r.pods),
                r.profile.to_string(),
                r.images.join(","),
                r.approved_by.clone().unwrap_or_else(|| "<none>".into()),
                r.remaining.clone(),
                r.use_count.to_string(),
            ]
        })
        .collect();
    if cells.is_empty() {
        return String::new();
    }
    let width = |i: usize| cells.iter().map(|c| c[i].len()).chain([HEADER[i].len()]).max().unwrap_or(0);
    let widths: Vec<usize> = (0..HEADER.len()).map(width).collect();
    let mut out = String::new();
    for line in std::iter::once(HEADER.map(String::from)).chain(cells) {
        let mut text = String::new();
        for (cell, width) in line.iter().zip(&widths) {
            let _ = write!(text, "{cell:<width$}   ");
        }
        let _ = writeln!(out, "{}", text.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn grant(name: &str, annotations: serde_json::Value, created: &str, duration: &str) -> DebugGrant {
        serde_json::from_value(json!({
            "apiVersion": "egate.dev/v1", "kind": "DebugGrant",
            "metadata": {"name": name, "namespace": "shop", "annotations": annotations, "creationTimestamp": created},
            "spec": {"subjects": {"users": ["alice"], "groups": ["sre"]}, "pods": {"names": ["web"]},
                     "images": ["busybox:1.36"], "profile": "general", "duration": duration, "reason": "INC-42"},
            "status": {"useCount": 2, "uses": []}
        }))
        .unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn rows_are_live_expired_or_not_approved_as_the_request_path_sees_them() {
        let now = at("2026-12-03T10:20:00Z");
        let live = row(&grant("a", json!({APPROVED_BY: "carol"}), "2026-12-03T10:00:00Z", "30m"), now);
        assert_eq!((live.state, live.remaining.as_str(), live.remaining_seconds), (State::Live, "10m", 600));
        assert_eq!(live.expires_at.as_deref(), Some("2026-12-03T10:30:00Z"));
        assert_eq!(live.use_count, 2);
        let expired = row(&grant("b", json!({APPROVED_BY: "carol"}), "2026-12-03T09:00:00Z", "1h15m"), now);
        assert_eq!((expired.state, expired.remaining.as_str()), (State::Expired, "expired 5m ago"));
        let unapproved = row(&grant("c", json!({}), "2026-12-03T10:00:00Z", "30m"), now);
        assert_eq!(unapproved.state, State::NotApproved);
        assert_eq!(unapproved.remaining, "not approved (no egate.dev/approved-by)");
        let long_ago = row(&grant("d", json!({APPROVED_BY: "carol"}), "2026-11-01T10:00:00Z", "30m"), now);
        assert_eq!(long_ago.remaining, "expired 31d ago");
        let json = serde_json::to_value(&unapproved).unwrap();
        assert_eq!(json["state"], "notApproved");
        assert!(json.get("approvedBy").is_none());
    }

    #[test]
    fn the_table_has_one_aligned_line_a_grant_under_its_header() {
        let now = at("2026-12-03T10:20:00Z");
        let rows = [
            row(&grant("alice-web-x7k2p", json!({APPROVED_BY: "carol"}), "2026-12-03T10:00:00Z", "30m"), now),
            row(&grant("b", json!({}), "2026-12-03T10:00:00Z", "30m"), now),
        ];
        let table = table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("NAMESPACE   NAME              SUBJECTS          PODS   PROFILE"), "{table}");
        assert!(lines[1].contains("alice,group:sre   web    general   busybox:1.36   carol         10m"), "{table}");
        assert!(lines[2].ends_with("<none>        not approved (no egate.dev/approved-by)   2"), "{table}");
        assert_eq!(super::table(&[]), "");
    }
}
