//! The HTTP endpoints: `POST /validate` and `POST /mutate` (AdmissionReview
//! v1 in and out), `GET /healthz`, `GET /readyz` and `GET /metrics`.
//!
//! A review is judged on tokio's blocking pool behind a semaphore with one
//! permit per worker (four per core, by default), so no more reviews run at
//! once than there are workers, whatever the number of connections. Each
//! request has a deadline covering body, queue and judging.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use egate_engine::review::Review;
use egate_engine::{Inputs, Mode, PolicySet, RequestSummary, Sandbox, TracedReview, Verdict};
use tokio::sync::Semaphore;

use super::metrics::Metrics;
use super::reload::Policies;
use crate::cluster::grant_watch::{GrantService, PendingUse};
use crate::cluster::grants::GrantUseRecord;

/// The API server refuses objects over 3 MiB, so no AdmissionReview it
/// sends is larger.
pub const BODY_LIMIT: usize = 3 << 20;

/// What the handlers share.
pub struct App {
    /// The debug grants policies read, and what the grant webhooks need.
    pub grants: Arc<GrantService>,
    pub policies: Arc<Policies>,
    pub metrics: Arc<Metrics>,
    /// One permit per worker: reviews judged at once.
    pub workers: Arc<Semaphore>,
    /// Longest a request may take, body to response.
    pub deadline: Duration,
    /// Set on SIGTERM: `/readyz` says 503 so no new traffic is routed here.
    pub draining: AtomicBool,
    /// `--record DIR`: where each review received is written.
    pub recorder: Option<Recorder>,
}

/// Writes each AdmissionReview received, as received, to a directory
/// (`egate serve --record DIR`), numbered in the order they arrived.
pub struct Recorder {
    dir: std::path::PathBuf,
    next: std::sync::atomic::AtomicU64,
}

impl Recorder {
    /// Creates `dir` if needed.
    pub fn new(dir: &std::path::Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|error| anyhow::anyhow!("--record {}: cannot create the directory: {error}", dir.display()))?;
        Ok(Self { dir: dir.to_path_buf(), next: std::sync::atomic::AtomicU64::new(1) })
    }

    /// Writes one body; a failure is logged and never fails the review.
    fn record(&self, endpoint: Endpoint, body: &[u8]) {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let uid = Review::parse(body).map(|r| r.facts.uid.to_string()).unwrap_or_else(|_| "unparsed".into());
        let uid: String = uid.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        let path = self.dir.join(format!("{seq:06}-{}-{uid}.json", endpoint.name()));
        if let Err(error) = std::fs::write(&path, body) {
            tracing::warn!(path = %path.display(), %error, "--record: cannot write the request");
        }
    }
}

/// The admission endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Validate,
    Mutate,
    /// `/validate-policies`: egate's own policy objects (`cluster::admission`).
    Policies,
    /// `/mutate-grants`: records the creator of a DebugGrant as its approver.
    MutateGrants,
    /// `/validate-grants`: refuses self-approval, overlong and changed grants.
    ValidateGrants,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Validate => "validate",
            Endpoint::Mutate => "mutate",
            Endpoint::Policies => "policies",
            Endpoint::MutateGrants => "mutate-grants",
            Endpoint::ValidateGrants => "validate-grants",
        }
    }

    fn mode(self) -> Mode {
        match self {
            Endpoint::Validate | Endpoint::Policies | Endpoint::ValidateGrants => Mode::Validate,
            Endpoint::Mutate | Endpoint::MutateGrants => Mode::Mutate,
        }
    }
}

/// The webhook's routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/validate", post(|State(app): State<Arc<App>>, req: Request| admit(app, Endpoint::Validate, req)))
        .route("/mutate", post(|State(app): State<Arc<App>>, req: Request| admit(app, Endpoint::Mutate, req)))
        .route(
            "/validate-policies",
            post(|State(app): State<Arc<App>>, req: Request| admit(app, Endpoint::Policies, req)),
        )
        .route(
            "/mutate-grants",
            post(|State(app): State<Arc<App>>, req: Request| admit(app, Endpoint::MutateGrants, req)),
        )
        .route(
            "/validate-grants",
            post(|State(app): State<Arc<App>>, req: Request| admit(app, Endpoint::ValidateGrants, req)),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(app)
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.draining.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else if app.policies.current().is_none() {
        (StatusCode::SERVICE_UNAVAILABLE, "policies are being compiled\n").into_response()
    } else if !app.grants.ready() {
        (StatusCode::SERVICE_UNAVAILABLE, "the cluster's DebugGrants are being read\n").into_response()
    } else {
        "ready\n".into_response()
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let content_type = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
    ([(header::CONTENT_TYPE, content_type)], app.metrics.render()).into_response()
}

/// A request that got no AdmissionReview response: its status, the
/// metrics label, and what to tell the client.
struct Fault {
    status: StatusCode,
    label: &'static str,
    message: String,
}

impl Fault {
    fn new(status: StatusCode, label: &'static str, message: impl Into<String>) -> Self {
        Self { status, label, message: message.into() }
    }

    /// A Kubernetes `Status` object, as the API server itself answers errors.
    fn into_response(self) -> Response {
        let reason = match self.status {
            StatusCode::BAD_REQUEST => "BadRequest",
            StatusCode::PAYLOAD_TOO_LARGE => "RequestEntityTooLarge",
            StatusCode::GATEWAY_TIMEOUT => "Timeout",
            StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
            _ => "InternalError",
        };
        let body = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Status",
            "status": "Failure",
            "code": self.status.as_u16(),
            "reason": reason,
            "message": self.message,
        });
        json_response(self.status, serde_json::to_vec(&body).expect("JSON values serialise"))
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The webhook's answer to one review: the response bytes and what the
/// log line and the metrics say about it.
struct Answer {
    body: Vec<u8>,
    decision: &'static str,
    denied_by: Vec<String>,
    /// The request's identity, for the decision log line.
    facts: RequestSummary,
    took: Duration,
}

async fn admit(app: Arc<App>, endpoint: Endpoint, req: Request) -> Response {
    let started = Instant::now();
    let _in_flight = app.metrics.in_flight();
    let deadline = match apiserver_timeout(req.uri().query()) {
        Some(timeout) => app.deadline.min(timeout),
        None => app.deadline,
    };
    let outcome = match tokio::time::timeout(deadline, judge(&app, endpoint, req)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(Fault::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!("egate could not answer within the request deadline of {deadline:?}"),
        )),
    };
    let took = started.elapsed();
    match outcome {
        Ok(judged) => {
            app.metrics.request(endpoint.name(), judged.decision, took);
            app.metrics.review(endpoint.name(), judged.took);
            let f = &judged.facts;
            tracing::info!(
                endpoint = endpoint.name(),
                uid = f.uid,
                namespace = f.namespace,
                name = f.name,
                resource = f.resource,
                operation = f.operation,
                user = f.user,
                decision = judged.decision,
                denied_by = judged.denied_by.join(","),
                latency_ms = took.as_secs_f64() * 1e3,
                "decision"
            );
            json_response(StatusCode::OK, judged.body)
        }
        Err(fault) => {
            app.metrics.request(endpoint.name(), fault.label, took);
            tracing::warn!(
                endpoint = endpoint.name(),
                status = fault.status.as_u16(),
                error = fault.message,
                latency_ms = took.as_secs_f64() * 1e3,
                "request refused"
            );
            fault.into_response()
        }
    }
}

/// Reads the body, waits for a worker, judges on the blocking pool.
async fn judge(app: &Arc<App>, endpoint: Endpoint, req: Request) -> Result<Answer, Fault> {
    let body = read_body(req).await?;
    if let Some(recorder) = &app.recorder {
        recorder.record(endpoint, &body);
    }
    let permit = app.workers.clone().acquire_owned().await.expect("the worker semaphore is never closed");
    // The snapshot this request finishes on, whatever reloads meanwhile.
    let Some(policies) = app.policies.current() else {
        return Err(Fault::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "egate is still compiling its policies: retry shortly (GET /readyz says when)",
        ));
    };
    let metrics = app.metrics.clone();
    // Only policy objects need the sandbox: pod reviews do not pay for it.
    let sandbox = (endpoint == Endpoint::Policies).then(|| app.policies.sandbox().clone());
    let grants = app.grants.clone();
    // The permit moves into the blocking task: if the deadline drops this
    // future, the worker stays counted until the review really ends.
    let task = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        match endpoint {
            Endpoint::Policies => review_policy_object(sandbox.as_ref().expect("cloned above"), &body),
            Endpoint::MutateGrants | Endpoint::ValidateGrants => {
                review_grant(&body, endpoint == Endpoint::MutateGrants, grants.max_duration)
            }
            Endpoint::Validate | Endpoint::Mutate => review(&policies, &metrics, &grants, &body, endpoint),
        }
    });
    match task.await {
        Ok(result) => result,
        Err(error) => {
            Err(Fault::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("the review failed: {error}")))
        }
    }
}

/// A body larger than this is not even drained: its connection is closed.
const DRAIN_LIMIT: u64 = 8 << 20;

/// The whole body, at most [`BODY_LIMIT`] bytes. A larger one is read to
/// its end and dropped (up to [`DRAIN_LIMIT`]) before the 413 is sent:
/// closing an HTTP/1.1 connection with unread data resets it, and the
/// client, still sending, would never see the answer.
async fn read_body(req: Request) -> Result<Vec<u8>, Fault> {
    let too_large = || {
        Fault::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the request body is larger than {BODY_LIMIT} bytes (3 MiB, the API server's own limit)"),
        )
    };
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > DRAIN_LIMIT) {
        return Err(too_large());
    }
    let mut body = req.into_body();
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0).min(BODY_LIMIT as u64) as usize);
    let mut total: u64 = 0;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|error| {
            Fault::new(StatusCode::BAD_REQUEST, "bad_request", format!("cannot read the request body: {error}"))
        })?;
        let Ok(data) = frame.into_data() else { continue };
        total += data.len() as u64;
        if total > DRAIN_LIMIT {
            break;
        }
        if total <= BODY_LIMIT as u64 {
            bytes.extend_from_slice(&data);
        }
    }
    if total > BODY_LIMIT as u64 { Err(too_large()) } else { Ok(bytes) }
}

/// Judges one AdmissionReview (blocking), with the debug grants of the
/// moment; the grants it was admitted under are queued for their status.
fn review(
    policies: &PolicySet,
    metrics: &Metrics,
    grants: &GrantService,
    body: &[u8],
    endpoint: Endpoint,
) -> Result<Answer, Fault> {
    let started = Instant::now();
    let index = grants.cache.current();
    let inputs = Inputs { debug_grants: index.as_deref(), ..Inputs::default() };
    let traced = policies
        .review_traced_with(body, endpoint.mode(), &inputs)
        .map_err(|error| Fault::new(StatusCode::BAD_REQUEST, "bad_request", error.to_string()))?;
    let took = started.elapsed();
    record_grant_uses(grants, &traced, body, inputs.now);
    for result in &traced.results {
        metrics.policy_evaluation(&result.policy, result.elapsed);
        if let Verdict::Failure { cause } = &result.verdict {
            metrics.policy_failure(&result.policy, cause.label());
        }
    }
    let decision = match (traced.response.allowed, &traced.response.patch) {
        (false, _) => "denied",
        (true, Some(_)) => "mutated",
        (true, None) => "allowed",
    };
    let denied_by = traced.denied_by().map(str::to_string).collect();
    let body = serde_json::to_vec(&traced.response.into_review()).expect("a response always serialises");
    Ok(Answer { body, decision, denied_by, facts: traced.request, took })
}

/// Queues the grant uses of an admitted request, unless it is a dry run.
fn record_grant_uses(grants: &GrantService, traced: &TracedReview, body: &[u8], now: jiff::Timestamp) {
    let (Some(recorder), Some(_)) = (grants.recorder.get(), traced.grant_uses().next()) else { return };
    if serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|r| r["request"]["dryRun"] == true) {
        return;
    }
    let request = &traced.request;
    for used in traced.grant_uses() {
        recorder.record(PendingUse {
            namespace: request.namespace.clone(),
            grant: used.grant.clone(),
            record: GrantUseRecord {
                time: now.to_string(),
                user: request.user.clone(),
                pod: request.name.clone(),
                container: used.container.clone(),
                uid: request.uid.clone(),
            },
        });
    }
}

/// Judges a DebugGrant being stored (blocking): the approver is stamped on
/// `/mutate-grants`, the rules checked on `/validate-grants`.
fn review_grant(body: &[u8], mutate: bool, max: Duration) -> Result<Answer, Fault> {
    let started = Instant::now();
    let (response, facts) = crate::cluster::grants::judge(body, mutate, max)
        .map_err(|error| Fault::new(StatusCode::BAD_REQUEST, "bad_request", error.to_string()))?;
    let decision = match (response.allowed, &response.patch) {
        (false, _) => "denied",
        (true, Some(_)) => "mutated",
        (true, None) => "allowed",
    };
    let body = serde_json::to_vec(&response.into_review()).expect("a response always serialises");
    Ok(Answer { body, decision, denied_by: Vec::new(), facts, took: started.elapsed() })
}

/// Judges a ClusterPolicy or Policy object being stored (blocking): does
/// it load?
fn review_policy_object(sandbox: &Sandbox, body: &[u8]) -> Result<Answer, Fault> {
    let started = Instant::now();
    let (response, facts) = crate::cluster::admission::judge(sandbox, body)
        .map_err(|error| Fault::new(StatusCode::BAD_REQUEST, "bad_request", error.to_string()))?;
    let decision = if response.allowed { "allowed" } else { "denied" };
    let body = serde_json::to_vec(&response.into_review()).expect("a response always serialises");
    Ok(Answer { body, decision, denied_by: Vec::new(), facts, took: started.elapsed() })
}

/// The API server appends `?timeout=10s` to webhook calls: answering after
/// it is pointless. Go duration syntax, the units it uses.
fn apiserver_timeout(query: Option<&str>) -> Option<Duration> {
    let value = query?.split('&').find_map(|pair| pair.strip_prefix("timeout="))?;
    super::parse_duration(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apiserver_timeout_is_read_from_the_query() {
        assert_eq!(apiserver_timeout(Some("timeout=10s")), Some(Duration::from_secs(10)));
        assert_eq!(apiserver_timeout(Some("a=b&timeout=500ms")), Some(Duration::from_millis(500)));
        assert_eq!(apiserver_timeout(Some("timeout=soon")), None);
        assert_eq!(apiserver_timeout(None), None);
    }
}
