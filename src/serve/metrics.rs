//! The webhook's metrics, rendered in the Prometheus text format on
//! `GET /metrics`. A handful of series, kept behind one mutex: at webhook
//! rates (thousands of requests a second at most) it is never contended
//! long enough to matter, and it needs no metrics library.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Upper bounds (seconds) of the latency histograms' buckets.
const BUCKETS: [f64; 16] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The webhook's counters, gauges and histograms.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    in_flight: Arc<AtomicI64>,
}

#[derive(Default)]
struct Inner {
    /// (endpoint, decision) -> count.
    requests: BTreeMap<(&'static str, &'static str), u64>,
    /// endpoint -> time in the engine.
    review_seconds: BTreeMap<&'static str, Histogram>,
    /// endpoint -> whole request, body read and queueing included.
    request_seconds: BTreeMap<&'static str, Histogram>,
    /// (policy, cause) -> count.
    policy_failures: BTreeMap<(String, &'static str), u64>,
    /// policy -> time spent judging with it.
    policy_seconds: BTreeMap<String, Histogram>,
    /// (what: policies | certificate, result: success | failure) -> count.
    reloads: BTreeMap<(&'static str, &'static str), u64>,
    policies_loaded: Option<usize>,
    last_policy_load: Option<SystemTime>,
}

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.counts[bucket] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// Decrements the in-flight gauge when dropped.
pub struct InFlight(Arc<AtomicI64>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps inconsistent.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts an admission request as in flight until the guard is dropped.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.in_flight.clone())
    }

    /// One answered admission request: its decision (`allowed`, `denied`,
    /// `mutated`, or the fault: `bad_request`, `too_large`, `timeout`, ...)
    /// and how long the whole request took.
    pub fn request(&self, endpoint: &'static str, decision: &'static str, took: Duration) {
        let mut inner = self.inner();
        *inner.requests.entry((endpoint, decision)).or_default() += 1;
        inner.request_seconds.entry(endpoint).or_default().observe(took.as_secs_f64());
    }

    /// Time the engine spent judging one review.
    pub fn review(&self, endpoint: &'static str, took: Duration) {
        self.inner().review_seconds.entry(endpoint).or_default().observe(took.as_secs_f64());
    }

    /// A policy that could not decide (decided by its failurePolicy).
    /// One policy's evaluation time.
    pub fn policy_evaluation(&self, policy: &str, took: Duration) {
        let mut inner = self.inner();
        match inner.policy_seconds.get_mut(policy) {
            Some(histogram) => histogram.observe(took.as_secs_f64()),
            None => {
                let mut histogram = Histogram::default();
                histogram.observe(took.as_secs_f64());
                inner.policy_seconds.insert(policy.to_string(), histogram);
            }
        }
    }

    pub fn policy_failure(&self, policy: &str, cause: &'static str) {
        *self.inner().policy_failures.entry((policy.to_string(), cause)).or_default() += 1;
    }

    /// A policy set reload: `Some(n)` loaded n policies, `None` was refused.
    pub fn policy_reload(&self, loaded: Option<usize>) {
        let mut inner = self.inner();
        let result = if loaded.is_some() { "success" } else { "failure" };
        *inner.reloads.entry(("policies", result)).or_default() += 1;
        if loaded.is_some() {
            inner.policies_loaded = loaded;
            inner.last_policy_load = Some(SystemTime::now());
        }
    }

    /// A certificate reload.
    pub fn certificate_reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        *self.inner().reloads.entry(("certificate", result)).or_default() += 1;
    }

    /// Everything, in the Prometheus text exposition format (0.0.4).
    pub fn render(&self) -> String {
        let inner = self.inner();
        let mut out = String::new();
        header(
            &mut out,
            "egate_admission_requests_total",
            "counter",
            "AdmissionReview requests answered, by endpoint and decision (allowed, denied, mutated, or the fault: bad_request, too_large, timeout, unavailable, internal).",
        );
        for ((endpoint, decision), count) in &inner.requests {
            let _ = writeln!(
                out,
                "egate_admission_requests_total{{endpoint=\"{endpoint}\",decision=\"{decision}\"}} {count}"
            );
        }
        header(
            &mut out,
            "egate_admission_requests_in_flight",
            "gauge",
            "Admission requests being read, queued or judged.",
        );
        let _ = writeln!(out, "egate_admission_requests_in_flight {}", self.in_flight.load(Ordering::Relaxed));
        header(
            &mut out,
            "egate_review_duration_seconds",
            "histogram",
            "Time the engine spent judging one AdmissionReview (every matching policy), by endpoint.",
        );
        for (endpoint, histogram) in &inner.review_seconds {
            render_histogram(&mut out, "egate_review_duration_seconds", &format!("endpoint=\"{endpoint}\""), histogram);
        }
        header(
            &mut out,
            "egate_request_duration_seconds",
            "histogram",
            "Time from request headers to response: body read, queueing for a worker and judging, by endpoint.",
        );
        for (endpoint, histogram) in &inner.request_seconds {
            render_histogram(
                &mut out,
                "egate_request_duration_seconds",
                &format!("endpoint=\"{endpoint}\""),
                histogram,
            );
        }
        header(
            &mut out,
            "egate_policy_evaluation_duration_seconds",
            "histogram",
            "Time one policy took to judge one request (matchConditions, module, CEL rules, patch), by policy.",
        );
        for (policy, histogram) in &inner.policy_seconds {
            render_histogram(
                &mut out,
                "egate_policy_evaluation_duration_seconds",
                &format!("policy=\"{}\"", escape(policy)),
                histogram,
            );
        }
        header(
            &mut out,
            "egate_policy_failures_total",
            "counter",
            "Policies that could not decide (decided by their failurePolicy), by policy and cause.",
        );
        for ((policy, cause), count) in &inner.policy_failures {
            let _ =
                writeln!(out, "egate_policy_failures_total{{policy=\"{}\",cause=\"{cause}\"}} {count}", escape(policy));
        }
        header(
            &mut out,
            "egate_reloads_total",
            "counter",
            "Reloads of the policy set and of the TLS certificate, by result.",
        );
        for ((what, result), count) in &inner.reloads {
            let _ = writeln!(out, "egate_reloads_total{{what=\"{what}\",result=\"{result}\"}} {count}");
        }
        header(
            &mut out,
            "egate_policies_loaded",
            "gauge",
            "Policies in the set being served (0 until the first load).",
        );
        let _ = writeln!(out, "egate_policies_loaded {}", inner.policies_loaded.unwrap_or(0));
        if let Some(when) = inner.last_policy_load {
            header(
                &mut out,
                "egate_policies_loaded_timestamp_seconds",
                "gauge",
                "When the set being served was loaded (Unix time).",
            );
            let seconds = when.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
            let _ = writeln!(out, "egate_policies_loaded_timestamp_seconds {seconds:.3}");
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn render_histogram(out: &mut String, name: &str, labels: &str, histogram: &Histogram) {
    let mut cumulative = 0;
    for (bound, count) in BUCKETS.iter().zip(histogram.counts) {
        cumulative += count;
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", histogram.count);
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", histogram.sum);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", histogram.count);
}

/// A label value escaped as the text format wants.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_histograms() {
        let metrics = Metrics::default();
        metrics.request("validate", "denied", Duration::from_micros(300));
        metrics.request("validate", "denied", Duration::from_millis(20));
        metrics.review("validate", Duration::from_micros(200));
        metrics.policy_failure("slow", "timeout");
        metrics.policy_reload(Some(3));
        metrics.policy_reload(None);
        let text = metrics.render();
        assert!(
            text.contains("egate_admission_requests_total{endpoint=\"validate\",decision=\"denied\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("egate_request_duration_seconds_bucket{endpoint=\"validate\",le=\"0.0005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("egate_request_duration_seconds_bucket{endpoint=\"validate\",le=\"0.025\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("egate_request_duration_seconds_bucket{endpoint=\"validate\",le=\"+Inf\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("egate_review_duration_seconds_count{endpoint=\"validate\"} 1\n"), "{text}");
        assert!(text.contains("egate_policy_failures_total{policy=\"slow\",cause=\"timeout\"} 1\n"), "{text}");
        assert!(text.contains("egate_reloads_total{what=\"policies\",result=\"failure\"} 1\n"), "{text}");
        assert!(text.contains("egate_policies_loaded 3\n"), "{text}");
        let in_flight = metrics.in_flight();
        assert!(metrics.render().contains("egate_admission_requests_in_flight 1\n"));
        drop(in_flight);
        assert!(metrics.render().contains("egate_admission_requests_in_flight 0\n"));
    }
}
