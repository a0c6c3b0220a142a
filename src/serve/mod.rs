//! `egate serve`: the admission webhook. AdmissionReview v1 over HTTPS
//! (rustls; HTTP/2 and HTTP/1.1), judged by the engine exactly as
//! `egate eval --mode validate|mutate` judges it.
//!
//! - `api`: the endpoints, the worker pool, limits and the decision log;
//! - `reload`: the swappable policy set, reloaded on SIGHUP and on file changes;
//! - `tls`: the certificate, reloaded when its files change;
//! - `metrics`: Prometheus text on `GET /metrics`;
//! - `watch`: polling files for changes.
//!
//! On SIGTERM (or SIGINT) the server says not-ready, optionally keeps
//! accepting for `--shutdown-delay` while Kubernetes removes it from the
//! Service, stops accepting, lets every request in flight finish, and
//! exits 0.

mod api;
mod metrics;
mod reload;
mod tls;
mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use clap::{Args, ValueEnum};
use egate_engine::{Sandbox, SandboxConfig};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio_rustls::TlsAcceptor;

use crate::cluster::grant_watch::GrantService;
use api::App;
pub(crate) use metrics::Metrics;
use reload::PolicySource;
pub(crate) use reload::{Policies, load_default};
use tls::CertResolver;

/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `egate serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// Policy manifests to serve (YAML or JSON, several policies per file).
    /// Repeat the flag or list several. Without it, the built-in default set
    /// (policies/default.yaml, compiled in). Reloaded on SIGHUP and when a
    /// manifest or a module file it names changes.
    #[arg(long = "policies", short = 'p', value_name = "FILE", num_args = 1..)]
    policies: Vec<PathBuf>,
    /// Where the policies come from: `files` (`--policies`, or the built-in
    /// default set), or `cluster`: the cluster's ClusterPolicy and Policy
    /// objects (egate.dev/v1), watched through the API server with the
    /// in-cluster service account or the current kubeconfig.
    #[arg(long, value_enum, default_value_t = PoliciesFrom::Files, conflicts_with = "policies")]
    policies_from: PoliciesFrom,
    /// With --policies-from cluster: scan the cluster's pods at least this
    /// often with the policies that have `background: true`, and write
    /// PolicyReports (also soon after pods or policies change). `0s` turns
    /// the scan off.
    #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = parse_duration)]
    scan_interval: Duration,
    /// The namespace of the Lease by which one replica is chosen to scan.
    /// Default: the pod's namespace (`POD_NAMESPACE`), else egate-system.
    #[arg(long, value_name = "NAMESPACE")]
    lease_namespace: Option<String>,
    /// How long the scanning replica's Lease lasts without renewal; another
    /// replica takes over after it.
    #[arg(long, default_value = "15s", value_name = "DURATION", value_parser = parse_duration)]
    lease_duration: Duration,
    /// Where builtin:grants finds DebugGrants: `cluster` (watched through
    /// the API server; the default with --policies-from cluster) or `none`
    /// (the default otherwise: a policy that reads grants then fails under
    /// its failurePolicy, saying so).
    #[arg(long, value_enum, value_name = "SOURCE")]
    grants_from: Option<GrantsFrom>,
    /// Where the Kubernetes admission policies of --policies
    /// (ValidatingAdmissionPolicy, MutatingAdmissionPolicy) find their
    /// params and Namespaces: `files` (the objects in the policy files) or
    /// `cluster`: the files' objects first, then the cluster's, each
    /// paramKind and Namespaces watched through the API server.
    #[arg(long, value_enum, default_value_t = ParamsFrom::Files, value_name = "SOURCE")]
    params_from: ParamsFrom,
    /// The longest `spec.duration` egate's webhook lets a DebugGrant have.
    #[arg(long, default_value = "4h", value_name = "DURATION", value_parser = parse_duration)]
    max_grant_duration: Duration,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:8443", value_name = "HOST:PORT")]
    addr: SocketAddr,
    /// PEM certificate chain, server certificate first. Reloaded when it changes.
    #[arg(long, value_name = "FILE", required_unless_present = "insecure_http", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate (PKCS#8, PKCS#1 or SEC1). Reloaded when it changes.
    #[arg(long, value_name = "FILE", required_unless_present = "insecure_http", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP instead of TLS. Only for local testing: the API
    /// server calls webhooks over HTTPS only.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    insecure_http: bool,
    /// Reviews judged at once (the others queue). Default: four per core, so
    /// that a policy running into its deadline holds one of many workers
    /// and the others keep judging (the OS shares the cores among them).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    workers: Option<u32>,
    /// Longest a request may take, body to response, before it is answered
    /// 504 (shortened to the API server's `?timeout=` when that is shorter).
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    request_timeout: Duration,
    /// After SIGTERM, keep accepting requests this long while readiness
    /// fails, so Kubernetes stops routing here first.
    #[arg(long, default_value = "0s", value_name = "DURATION", value_parser = parse_duration)]
    shutdown_delay: Duration,
    /// After SIGTERM (and the delay), longest to wait for requests in flight.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    shutdown_timeout: Duration,
    /// How often policy, module and certificate files are checked for changes.
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_duration)]
    watch_interval: Duration,
    /// `json`: one JSON object per line (for log collectors); `compact`: for people.
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    log_format: LogFormat,
    /// error, warn, info (one line per decision), debug or trace.
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    log_level: tracing::Level,
    /// A debugging aid: write every AdmissionReview received, byte for byte,
    /// to DIR/NNNNNN-ENDPOINT-UID.json. The files hold whole request bodies
    /// (objects, user names, groups): use it only where that is acceptable.
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PoliciesFrom {
    Files,
    Cluster,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ParamsFrom {
    Files,
    Cluster,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GrantsFrom {
    None,
    Cluster,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Json,
    Compact,
}

/// Default workers per core. Measured with scripts/slowtest.sh on 2 cores
/// (docs/performance.md): 1 per core serves less and lets one looping policy
/// hold half the workers; 4 per core serves more, and a looping policy only
/// costs the others its share of the CPU.
const WORKERS_PER_CORE: usize = 4;

/// Runs the webhook until SIGTERM or SIGINT; exits 0 once drained.
pub fn run(args: &ServeArgs) -> Result<ExitCode> {
    init_logging(args.log_format, args.log_level);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = args.workers.map_or(WORKERS_PER_CORE * cores, |n| n as usize);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("egate-serve")
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(serve(args, workers));
    // A review still running past its deadline must not hold the exit up.
    runtime.shutdown_timeout(Duration::from_secs(1));
    outcome
}

fn init_logging(format: LogFormat, level: tracing::Level) {
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(level);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).with_span_list(false).init(),
        LogFormat::Compact => builder.compact().init(),
    }
}

async fn serve(args: &ServeArgs, workers: usize) -> Result<ExitCode> {
    let metrics = Arc::new(Metrics::default());
    let source = match (args.policies_from, args.policies.as_slice()) {
        (PoliciesFrom::Cluster, _) => PolicySource::Cluster,
        (PoliciesFrom::Files, []) => PolicySource::Default,
        (PoliciesFrom::Files, paths) => PolicySource::Files(paths.to_vec()),
    };
    // Every worker may hold an instance, with room for a reload's checks.
    let instances = u32::try_from(workers).unwrap_or(u32::MAX).saturating_add(64);
    let config = SandboxConfig::default();
    let config = SandboxConfig { max_concurrent_instances: config.max_concurrent_instances.max(instances), ..config };
    let sandbox = Sandbox::new(config)?;
    let policies = Policies::new(source.clone(), sandbox, metrics.clone());

    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let resolver = CertResolver::load(cert, key)?;
            let config = resolver.server_config()?;
            tokio::spawn(resolver.watch(metrics.clone(), args.watch_interval));
            Some(TlsAcceptor::from(config))
        }
        _ => {
            tracing::warn!(
                "--insecure-http: serving PLAIN HTTP WITHOUT TLS. Requests and decisions travel unencrypted and \
                 unauthenticated, and the Kubernetes API server will not call this endpoint. Use it only for local testing"
            );
            None
        }
    };
    let recorder = args.record.as_deref().map(api::Recorder::new).transpose()?;
    let listener = TcpListener::bind(args.addr).await.with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr().context("the listener has no local address")?;
    tracing::info!(
        addr = %addr,
        scheme = if tls.is_some() { "https" } else { "http" },
        workers,
        policies = %source,
        "listening"
    );

    let grants_from = args.grants_from.unwrap_or(match args.policies_from {
        PoliciesFrom::Cluster => GrantsFrom::Cluster,
        PoliciesFrom::Files => GrantsFrom::None,
    });
    let grants = GrantService::new(grants_from == GrantsFrom::Cluster, args.max_grant_duration);
    let app = Arc::new(App {
        grants: grants.clone(),
        policies: policies.clone(),
        metrics: metrics.clone(),
        workers: Arc::new(tokio::sync::Semaphore::new(workers)),
        deadline: args.request_timeout,
        draining: AtomicBool::new(false),
        recorder,
    });
    let router = api::router(app.clone());

    // The first load runs while /healthz already answers; /readyz says 503 until it is done.
    let (fatal_tx, mut fatal) = tokio::sync::mpsc::channel::<anyhow::Error>(1);
    tokio::spawn({
        let policies = policies.clone();
        let interval = args.watch_interval;
        let from_cluster = matches!(source, PolicySource::Cluster);
        let grants = grants.clone();
        let params_from_cluster = args.params_from == ParamsFrom::Cluster;
        let scan = (args.scan_interval > Duration::ZERO).then(|| crate::cluster::background::ScanOptions {
            interval: args.scan_interval,
            lease_namespace: args
                .lease_namespace
                .clone()
                .or_else(|| std::env::var("POD_NAMESPACE").ok())
                .unwrap_or_else(|| "egate-system".into()),
            lease_duration: args.lease_duration,
        });
        async move {
            if params_from_cluster && let Err(error) = start_params(&policies).await {
                let _ = fatal_tx.send(error).await;
                return;
            }
            let started = if from_cluster {
                start_from_cluster(policies, metrics, scan, grants).await
            } else if grants.from_cluster {
                match start_grants(&grants).await {
                    Ok(()) => policies.load_and_watch(interval).await,
                    Err(error) => Err(error),
                }
            } else {
                policies.load_and_watch(interval).await
            };
            if let Err(error) = started {
                let _ = fatal_tx.send(error).await;
            }
        }
    });
    let mut hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            let _ = policies.reload("SIGHUP").await;
        }
    });

    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let graceful = GracefulShutdown::new();
    let accept = |accepted: std::io::Result<(TcpStream, SocketAddr)>| match accepted {
        Ok((stream, peer)) => spawn_connection(stream, peer, tls.clone(), router.clone(), graceful.watcher()),
        Err(error) => tracing::warn!(%error, "cannot accept a connection"),
    };
    let signal_name = loop {
        tokio::select! {
            accepted = listener.accept() => accept(accepted),
            _ = terminate.recv() => break "SIGTERM",
            _ = interrupt.recv() => break "SIGINT",
            Some(error) = fatal.recv() => {
                return Err(error.context("cannot serve: the policy set did not load"));
            }
        }
    };

    app.draining.store(true, Ordering::Relaxed);
    tracing::info!(
        signal = signal_name,
        delay_ms = args.shutdown_delay.as_millis() as u64,
        "shutting down: /readyz now fails"
    );
    let delay = tokio::time::sleep(args.shutdown_delay);
    tokio::pin!(delay);
    loop {
        tokio::select! {
            accepted = listener.accept() => accept(accepted),
            () = &mut delay => break,
        }
    }
    drop(listener);
    let open = graceful.count();
    tracing::info!(connections = open, "no longer accepting: finishing the requests in flight");
    match tokio::time::timeout(args.shutdown_timeout, graceful.shutdown()).await {
        Ok(()) => tracing::info!("drained: every request in flight was answered; exiting"),
        Err(_) => tracing::warn!(
            timeout_ms = args.shutdown_timeout.as_millis() as u64,
            "shutdown timeout reached with connections still open; exiting"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// Connects to the API server (in-cluster, else the current kubeconfig)
/// and starts watching the cluster's policies, and the background scan.
async fn start_from_cluster(
    policies: Arc<Policies>,
    metrics: Arc<Metrics>,
    scan: Option<crate::cluster::background::ScanOptions>,
    grants: Arc<GrantService>,
) -> Result<()> {
    let client = kube::Client::try_default().await.context(
        "cannot reach the Kubernetes API server for --policies-from cluster: run egate in a pod with its service \
         account, or set KUBECONFIG",
    )?;
    if grants.from_cluster {
        grants.start(client.clone()).await?;
    }
    let rescan = Arc::new(AtomicBool::new(true));
    crate::cluster::policies::serve_from_cluster(client.clone(), policies.clone(), metrics, rescan.clone()).await?;
    if let Some(options) = scan {
        crate::cluster::background::start(client, policies, options, rescan);
    }
    Ok(())
}

/// Connects to the API server and watches the Namespaces, and from then on
/// each paramKind a loaded set names (`--params-from cluster`).
async fn start_params(policies: &Policies) -> Result<()> {
    let client = kube::Client::try_default().await.context(
        "cannot reach the Kubernetes API server for --params-from cluster: run egate in a pod with its service \
         account, or set KUBECONFIG",
    )?;
    let objects = crate::cluster::objects::ClusterObjectStore::start(client).await?;
    egate_engine::admission_policy::install_cluster_objects(objects.clone());
    policies.read_params_from(objects);
    Ok(())
}

/// Connects to the API server and reads the DebugGrants (`--grants-from
/// cluster` with policies from files).
async fn start_grants(grants: &GrantService) -> Result<()> {
    let client = kube::Client::try_default().await.context(
        "cannot reach the Kubernetes API server for --grants-from cluster: run egate in a pod with its service \
         account, or set KUBECONFIG",
    )?;
    grants.start(client).await
}

/// Handshakes (when TLS) and serves one connection on its own task.
fn spawn_connection(stream: TcpStream, peer: SocketAddr, tls: Option<TlsAcceptor>, router: Router, watcher: Watcher) {
    tokio::spawn(async move {
        let _ = stream.set_nodelay(true);
        match tls {
            None => serve_connection(stream, router, watcher).await,
            Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => serve_connection(stream, router, watcher).await,
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            },
        }
    });
}

/// HTTP/1.1 or HTTP/2 (whichever the client speaks) until the client
/// closes, or until shutdown lets the requests in flight finish.
async fn serve_connection<I>(io: I, router: Router, watcher: Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(router));
    if let Err(error) = watcher.watch(connection).await {
        tracing::debug!(%error, "connection ended with an error");
    }
}

pub(crate) use egate_engine::grants::parse_duration;
