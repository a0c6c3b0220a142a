//! `egate bench`: time whole evaluations, AdmissionReview bytes in and
//! response bytes out, as `egate eval` and the webhook do them (without
//! process start), and report latency percentiles and throughput.
//!
//! With `--baseline-floor` it also times a module that answers "allowed"
//! without reading its input (`floor.wat`), in the same run, rounds of the
//! two taking turns, and prints the policies' percentiles over the floor's:
//! machines here differ and are noisy, so goals are ratios measured in one
//! run (docs/performance.md).

use std::path::{Path, PathBuf};
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
    /// Also time the floor, a module that answers allowed without reading
    /// the request, in the same run (rounds of the two take turns), and
    /// print the policies' p50 and p90 over the floor's.
    #[arg(long)]
    baseline_floor: bool,
    /// `text` for people, `json` for scripts.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// What `egate bench -o json` prints.
#[derive(Serialize)]
struct Report {
    #[serde(flatten)]
    latency: Latency,
    startup_ms: f64,
    iterations: usize,
    threads: usize,
    /// With `--baseline-floor`: the floor's figures, and the ratios.
    #[serde(skip_serializing_if = "Option::is_none")]
    floor: Option<Floor>,
}

/// Latency percentiles and throughput of one set.
#[derive(Serialize)]
struct Latency {
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
    max_us: f64,
    throughput_per_s: f64,
}

#[derive(Serialize)]
struct Floor {
    #[serde(flatten)]
    latency: Latency,
    /// The policies' p50 over the floor's: the share of their own code.
    p50_ratio: f64,
    /// The same at p90.
    p90_ratio: f64,
}

const WARM_UP: usize = 200;

/// Rounds the sets take turns in, with `--baseline-floor`.
const ROUNDS: usize = 10;

/// The floor's manifest; its module is [`FLOOR_WAT`], held in memory.
const FLOOR_MANIFEST: &str = "apiVersion: egate.dev/v1\nkind: ClusterPolicy\nmetadata: {name: floor}\n\
                              spec: {match: {resources: ['*']}, module: floor.wasm}\n";
const FLOOR_WAT: &str = include_str!("floor.wat");

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
    let floor = args.baseline_floor.then(|| floor_set(&sandbox)).transpose()?;

    let mut sets = vec![&policies];
    sets.extend(floor.as_ref());
    let rounds = if floor.is_some() { ROUNDS } else { 1 };
    let per_round = args.iterations.div_ceil(rounds);
    let mut timed: Vec<Timed> = sets.iter().map(|_| Timed::default()).collect();
    for _ in 0..rounds {
        for (set, timed) in sets.iter().zip(&mut timed) {
            timed.add(time_round(set, &review, per_round, args.threads));
        }
    }
    let mut timed = timed.into_iter();
    let main = timed.next().expect("the policies were timed").latency();
    let floor = timed.next().map(|t| {
        let latency = t.latency();
        Floor { p50_ratio: main.p50_us / latency.p50_us, p90_ratio: main.p90_us / latency.p90_us, latency }
    });
    let report = Report {
        latency: main,
        startup_ms: startup.as_secs_f64() * 1e3,
        iterations: per_round * rounds,
        threads: args.threads,
        floor,
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string(&report)?),
        Output::Text => print_text(&report),
    }
    Ok(ExitCode::SUCCESS)
}

/// The floor: [`FLOOR_WAT`] judging every request.
fn floor_set(sandbox: &Sandbox) -> Result<PolicySet> {
    let wasm = wat::parse_str(FLOOR_WAT).context("the floor module does not assemble")?;
    let origin = Path::new("floor.yaml");
    Ok(PolicySet::from_memory(sandbox, &[(origin, FLOOR_MANIFEST)], &[(Path::new("floor.wasm"), &wasm)])?)
}

/// Latencies of one set across rounds, and the time they took.
#[derive(Default)]
struct Timed {
    latencies: Vec<Duration>,
    wall: Duration,
}

impl Timed {
    fn add(&mut self, (latencies, wall): (Vec<Duration>, Duration)) {
        self.latencies.extend(latencies);
        self.wall += wall;
    }

    fn latency(mut self) -> Latency {
        self.latencies.sort_unstable();
        let sorted = &self.latencies;
        Latency {
            p50_us: percentile(sorted, 0.50),
            p90_us: percentile(sorted, 0.90),
            p99_us: percentile(sorted, 0.99),
            max_us: micros(*sorted.last().expect("at least one iteration")),
            throughput_per_s: sorted.len() as f64 / self.wall.as_secs_f64(),
        }
    }
}

/// One round: `count` evaluations spread over `threads`, each after its warm-up.
fn time_round(policies: &PolicySet, review: &[u8], count: usize, threads: usize) -> (Vec<Duration>, Duration) {
    let per_thread = count.div_ceil(threads);
    let wall = Instant::now();
    let latencies = std::thread::scope(|scope| {
        let workers: Vec<_> =
            (0..threads).map(|_| scope.spawn(|| time_evaluations(policies, review, per_thread))).collect();
        workers.into_iter().flat_map(|w| w.join().expect("a bench thread panicked")).collect()
    });
    (latencies, wall.elapsed())
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
    let line = |l: &Latency| {
        format!("p50 {:.1} µs  p90 {:.1} µs  p99 {:.1} µs  max {:.1} µs", l.p50_us, l.p90_us, l.p99_us, l.max_us)
    };
    println!("start-up (load + compile): {:.1} ms", r.startup_ms);
    println!("evaluations: {} on {} thread(s)", r.iterations, r.threads);
    println!("latency: {}", line(&r.latency));
    println!("throughput: {:.0} evaluations/s", r.latency.throughput_per_s);
    if let Some(floor) = &r.floor {
        println!("floor (a module that reads nothing), same run: {}", line(&floor.latency));
        println!(
            "over the floor: p50 {:.2}x  p90 {:.2}x  (steadiness p90/p50: {:.2} policies, {:.2} floor)",
            floor.p50_ratio,
            floor.p90_ratio,
            r.latency.p90_us / r.latency.p50_us,
            floor.latency.p90_us / floor.latency.p50_us
        );
    }
}
