//! The webhook's metrics, rendered in the Prometheus text format (0.0.4) on
//! `GET /metrics`. prometheus-client holds the series (atomic counters and
//! gauges, histograms behind their own small locks) and writes the text;
//! this module says which series there are and what they count.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, prometheus_text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds (seconds) of the latency histograms' buckets.
const BUCKETS: [f64; 16] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    policy: String,
    cause: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    /// `policies` or `certificate`.
    what: &'static str,
    /// `success` or `failure`.
    result: &'static str,
}

/// Latency histograms, one per label set, all with [`BUCKETS`].
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn histograms<L: Clone + std::hash::Hash + Eq>() -> Histograms<L> {
    Family::new_with_constructor(|| Histogram::new(BUCKETS))
}

/// The webhook's counters, gauges and histograms.
pub struct Metrics {
    series: Arc<Series>,
    registry: Registry,
}

#[derive(Debug)]
struct Series {
    requests: Family<RequestLabels, Counter>,
    in_flight: Gauge,
    /// Time in the engine.
    review_seconds: Histograms<EndpointLabels>,
    /// The whole request, body read and queueing included.
    request_seconds: Histograms<EndpointLabels>,
    policy_seconds: Histograms<PolicyLabels>,
    policy_failures: Family<FailureLabels, Counter>,
    reloads: Family<ReloadLabels, Counter>,
    policies_loaded: Gauge,
    policies_broken: Gauge,
    last_policy_load: Mutex<Option<SystemTime>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let series = Arc::new(Series {
            requests: Family::default(),
            in_flight: Gauge::default(),
            review_seconds: histograms(),
            request_seconds: histograms(),
            policy_seconds: histograms(),
            policy_failures: Family::default(),
            reloads: Family::default(),
            policies_loaded: Gauge::default(),
            policies_broken: Gauge::default(),
            last_policy_load: Mutex::new(None),
        });
        let mut registry = Registry::default();
        registry.register_collector(Box::new(series.clone()));
        Self { series, registry }
    }
}

/// Decrements the in-flight gauge when dropped.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// Counts an admission request as in flight until the guard is dropped.
    pub fn in_flight(&self) -> InFlight {
        self.series.in_flight.inc();
        InFlight(self.series.in_flight.clone())
    }

    /// One answered admission request: its decision (`allowed`, `denied`,
    /// `mutated`, or the fault: `bad_request`, `too_large`, `timeout`, ...)
    /// and how long the whole request took.
    pub fn request(&self, endpoint: &'static str, decision: &'static str, took: Duration) {
        self.series.requests.get_or_create(&RequestLabels { endpoint, decision }).inc();
        self.series.request_seconds.get_or_create(&EndpointLabels { endpoint }).observe(took.as_secs_f64());
    }

    /// Time the engine spent judging one review.
    pub fn review(&self, endpoint: &'static str, took: Duration) {
        self.series.review_seconds.get_or_create(&EndpointLabels { endpoint }).observe(took.as_secs_f64());
    }

    /// One policy's evaluation time.
    pub fn policy_evaluation(&self, policy: &str, took: Duration) {
        let labels = PolicyLabels { policy: policy.to_string() };
        self.series.policy_seconds.get_or_create(&labels).observe(took.as_secs_f64());
    }

    /// A policy that could not decide (decided by its failurePolicy).
    pub fn policy_failure(&self, policy: &str, cause: &'static str) {
        self.series.policy_failures.get_or_create(&FailureLabels { policy: policy.to_string(), cause }).inc();
    }

    /// A policy set reload: `Some(n)` loaded n policies, `None` was refused.
    pub fn policy_reload(&self, loaded: Option<usize>) {
        let result = if loaded.is_some() { "success" } else { "failure" };
        self.series.reloads.get_or_create(&ReloadLabels { what: "policies", result }).inc();
        if let Some(count) = loaded {
            self.series.policies_loaded.set(i64::try_from(count).unwrap_or(i64::MAX));
            *self.series.last_load() = Some(SystemTime::now());
        }
    }

    /// Policy objects of the cluster left out of the set because they do
    /// not load (their status says why).
    pub fn policies_broken(&self, count: usize) {
        self.series.policies_broken.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// A certificate reload.
    pub fn certificate_reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.series.reloads.get_or_create(&ReloadLabels { what: "certificate", result }).inc();
    }

    /// Everything, in the Prometheus text exposition format (0.0.4).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Only a failing writer fails encoding, and a String never does;
        // should that change, a partial page beats a panicking handler.
        if let Err(error) = prometheus_text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "cannot render the metrics");
        }
        text
    }
}

impl Series {
    fn last_load(&self) -> std::sync::MutexGuard<'_, Option<SystemTime>> {
        // A panic while holding the lock cannot leave an Option inconsistent.
        self.last_policy_load.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The series are written by a collector rather than registered one by one:
/// a registry leaves out a family until it has a series and appends a "." to
/// every help text, while scrapers and dashboards expect each family's HELP
/// and TYPE from the first scrape, worded as documented in docs/deploy.md.
impl Collector for Series {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        // Counters are named without `_total`: the encoder appends it.
        let families: [(&str, &str, &dyn EncodeMetric); 9] = [
            (
                "egate_admission_requests",
                "AdmissionReview requests answered, by endpoint and decision (allowed, denied, mutated, or the fault: bad_request, too_large, timeout, unavailable, internal).",
                &self.requests,
            ),
            ("egate_admission_requests_in_flight", "Admission requests being read, queued or judged.", &self.in_flight),
            (
                "egate_review_duration_seconds",
                "Time the engine spent judging one AdmissionReview (every matching policy), by endpoint.",
                &self.review_seconds,
            ),
            (
                "egate_request_duration_seconds",
                "Time from request headers to response: body read, queueing for a worker and judging, by endpoint.",
                &self.request_seconds,
            ),
            (
                "egate_policy_evaluation_duration_seconds",
                "Time one policy took to judge one request (matchConditions, module, CEL rules, patch), by policy.",
                &self.policy_seconds,
            ),
            (
                "egate_policy_failures",
                "Policies that could not decide (decided by their failurePolicy), by policy and cause.",
                &self.policy_failures,
            ),
            ("egate_reloads", "Reloads of the policy set and of the TLS certificate, by result.", &self.reloads),
            (
                "egate_policies_loaded",
                "Policies in the set being served (0 until the first load).",
                &self.policies_loaded,
            ),
            (
                "egate_policies_broken",
                "Policy objects left out of the set because they do not load (--policies-from cluster; their status says why).",
                &self.policies_broken,
            ),
        ];
        for (name, help, metric) in families {
            write_family(&mut encoder, name, help, metric)?;
        }
        // Left out until the first load: a timestamp of 0 would read as a load in 1970.
        if let Some(when) = *self.last_load() {
            let millis = when.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis();
            let seconds = ConstGauge::new(millis as f64 / 1e3);
            write_family(
                &mut encoder,
                "egate_policies_loaded_timestamp_seconds",
                "When the set being served was loaded (Unix time).",
                &seconds,
            )?;
        }
        Ok(())
    }
}

fn write_family(encoder: &mut DescriptorEncoder, name: &str, help: &str, metric: &dyn EncodeMetric) -> fmt::Result {
    let metric_encoder = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(metric_encoder)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `/metrics` said before any request, as scrapers know it.
    const BEFORE_ANY_REQUEST: &str = "\
# HELP egate_admission_requests_total AdmissionReview requests answered, by endpoint and decision (allowed, denied, mutated, or the fault: bad_request, too_large, timeout, unavailable, internal).
# TYPE egate_admission_requests_total counter
# HELP egate_admission_requests_in_flight Admission requests being read, queued or judged.
# TYPE egate_admission_requests_in_flight gauge
egate_admission_requests_in_flight 0
# HELP egate_review_duration_seconds Time the engine spent judging one AdmissionReview (every matching policy), by endpoint.
# TYPE egate_review_duration_seconds histogram
# HELP egate_request_duration_seconds Time from request headers to response: body read, queueing for a worker and judging, by endpoint.
# TYPE egate_request_duration_seconds histogram
# HELP egate_policy_evaluation_duration_seconds Time one policy took to judge one request (matchConditions, module, CEL rules, patch), by policy.
# TYPE egate_policy_evaluation_duration_seconds histogram
# HELP egate_policy_failures_total Policies that could not decide (decided by their failurePolicy), by policy and cause.
# TYPE egate_policy_failures_total counter
# HELP egate_reloads_total Reloads of the policy set and of the TLS certificate, by result.
# TYPE egate_reloads_total counter
# HELP egate_policies_loaded Policies in the set being served (0 until the first load).
# TYPE egate_policies_loaded gauge
egate_policies_loaded 0
# HELP egate_policies_broken Policy objects left out of the set because they do not load (--policies-from cluster; their status says why).
# TYPE egate_policies_broken gauge
egate_policies_broken 0
";

    #[test]
    fn every_family_has_its_help_and_type_from_the_start() {
        assert_eq!(Metrics::default().render(), BEFORE_ANY_REQUEST);
    }

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

    #[test]
    fn histograms_have_the_sixteen_buckets_and_policy_names_are_escaped() {
        let metrics = Metrics::default();
        metrics.policy_evaluation("we\"ird\\name\n", Duration::from_secs(20));
        let text = metrics.render();
        let bounds: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("egate_policy_evaluation_duration_seconds_bucket{"))
            .map(|rest| rest.split("le=\"").nth(1).unwrap().split('"').next().unwrap())
            .collect();
        let expected = [
            "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
            "1", "2.5", "5", "10", "+Inf",
        ];
        assert_eq!(bounds, expected, "{text}");
        let policy = r#"{policy="we\"ird\\name\n"}"#;
        assert!(text.contains(&format!("egate_policy_evaluation_duration_seconds_count{policy} 1\n")), "{text}");
        assert!(text.contains(&format!("egate_policy_evaluation_duration_seconds_sum{policy} 20")), "{text}");
    }

    #[test]
    fn the_load_timestamp_appears_with_the_first_load() {
        let metrics = Metrics::default();
        metrics.policy_reload(None);
        assert!(!metrics.render().contains("egate_policies_loaded_timestamp_seconds"));
        metrics.policy_reload(Some(1));
        let text = metrics.render();
        assert!(text.contains("# TYPE egate_policies_loaded_timestamp_seconds gauge\n"), "{text}");
        let line = text.lines().find(|l| l.starts_with("egate_policies_loaded_timestamp_seconds ")).unwrap();
        let seconds: f64 = line.split(' ').nth(1).unwrap().parse().unwrap();
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!((now - seconds).abs() < 60.0, "{line}");
    }
}
