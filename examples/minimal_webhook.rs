//! A minimal custom admission webhook that embeds `egate-engine`: load a
//! policy set once, then answer each AdmissionReview POSTed to `/validate`
//! with the engine's response bytes. Everything else `egate serve` adds
//! (TLS, reloads, limits, metrics) is left out to show the engine's API.
//!
//! ```sh
//! cargo run --example minimal_webhook -- examples/policies/debug-policies.yaml 127.0.0.1:8080
//! curl -s --data-binary @examples/requests/debug-privileged.json http://127.0.0.1:8080/validate
//! ```
//!
//! Plain HTTP on loopback: the API server only calls webhooks over HTTPS.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use egate_engine::{PolicySet, Sandbox, SandboxConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let manifest = args.next().ok_or("usage: minimal_webhook POLICIES.yaml [ADDR]")?;
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());

    // One sandbox (the wasm engine) per process; loading compiles each module once.
    let sandbox = Sandbox::new(SandboxConfig::default())?;
    let policies = Arc::new(PolicySet::load(&sandbox, &[manifest.into()])?);
    // To reload: load a new PolicySet and swap the Arc (egate serve uses arc-swap).

    let app = Router::new().route("/validate", post(validate)).with_state(policies);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// AdmissionReview bytes in, AdmissionReview response bytes out.
async fn validate(
    State(policies): State<Arc<PolicySet>>,
    body: Bytes,
) -> Result<impl IntoResponse, (StatusCode, String)> {
    // Policies run wasm and CEL: judge on a blocking thread, not an async one.
    let response = tokio::task::spawn_blocking(move || policies.review_bytes(&body))
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], response))
}
