//! `egate bench`: time whole evaluations, AdmissionReview bytes in and
//! response bytes out, as `egate eval` and the webhook do them (without
//! process start), and report latency percentiles and throughput.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::output::Output;
use egate_engine::{PolicySet, Sandbox, SandboxConfig};
use serde::Serialize;

use crate::eval::read_review;

/// Arguments of `egate bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// A policy manifest. Repeat for more.
    #[arg(long = "policy", short = 'p', required = true, value_name = "FILE")]
    policies: Vec<PathBuf>,
    /// The AdmissionReview to judge (JSON or YAML).
    #[arg(long, short = 'r', value_name = "FILE")]
    request: PathBuf,
    /// Evaluations to time, in all (after 200 untimed warm-up ones per thread).
    #[arg(long, default_value_t = 10_000)]
    iterations: usize,
    /// Threads evaluating at once, sharing one engine.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// `text` for people, `json` for scripts.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// What `egate bench -o json` prints.
#[derive(Serialize)]
struct Report {
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
    max_us: f64,
    throughput_per_s: f64,
    startup_ms: f64,
    iterations: usize,
    threads: usize,
}

const WARM_UP: usize = 200;

/// Loads the policies (timed as start-up), then times the evaluations.
pub fn run(args: &BenchArgs) -> Result<ExitCode> {
    if args.iterations == 0 || args.threads == 0 {
        bail!("--iterations and --threads must be at least 1");
    }
    let review = read_review(&args.request)?;
    let started = Instant::now();
    let sandbox = Sandbox::new(SandboxConfig::default())?;
    let policies = PolicySet::load(&sandbox, &args.policies)?;
    let startup = started.elapsed();
    policies.review_bytes(&review).with_context(|| format!("request {}", args.request.display()))?;

    let per_thread = args.iterations.div_ceil(args.threads);
    let wall = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> =
            (0..args.threads).map(|_| scope.spawn(|| time_evaluations(&policies, &review, per_thread))).collect();
        workers.into_iter().flat_map(|w| w.join().expect("a bench thread panicked")).collect()
    });
    let wall = wall.elapsed();
    latencies.sort_unstable();
    let report = Report {
        p50_us: percentile(&latencies, 0.50),
        p90_us: percentile(&latencies, 0.90),
        p99_us: percentile(&latencies, 0.99),
        max_us: micros(*latencies.last().expect("at least one iteration")),
        throughput_per_s: latencies.len() as f64 / wall.as_secs_f64(),
        startup_ms: startup.as_secs_f64() * 1e3,
        iterations: latencies.len(),
        threads: args.threads,
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string(&report)?),
        Output::Text => print_text(&report),
    }
    Ok(ExitCode::SUCCESS)
}

fn time_evaluations(policies: &PolicySet, review: &[u8], count: usize) -> Vec<Duration> {
    for _ in 0..WARM_UP {
        let _ = policies.review_bytes(review);
    }
    (0..count)
        .map(|_| {
            let start = Instant::now();
            let _ = std::hint::black_box(policies.review_bytes(review));
            start.elapsed()
        })
        .collect()
}

/// Nearest-rank percentile of sorted latencies, in microseconds.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    micros(sorted[rank - 1])
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn print_text(r: &Report) {
    println!("start-up (load + compile): {:.1} ms", r.startup_ms);
    println!("evaluations: {} on {} thread(s)", r.iterations, r.threads);
    println!("latency: p50 {:.1} µs  p90 {:.1} µs  p99 {:.1} µs  max {:.1} µs", r.p50_us, r.p90_us, r.p99_us, r.max_us);
    println!("throughput: {:.0} evaluations/s", r.throughput_per_s);
}
