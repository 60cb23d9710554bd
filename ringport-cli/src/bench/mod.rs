//! `ringport bench`: a verifying load generator for echo servers, built on ringport itself.
//!
//! Client threads each own a [`Port`](ringport::Port) and drive their share of the connections
//! with connect, send and multishot receive operations; every echoed byte is checked against
//! what was sent. It drives a running server (`--addr`) or starts one (`--spawn`), measures
//! throughput, latency (HdrHistogram; from each message's intended send time at a fixed
//! `--rate`), the server's CPU per message, memory and syscalls, runs a matrix of connection
//! counts × message sizes, and compares servers side by side (`--compare`).
//!
//! Modules, one concept each:
//!
//! | module     | what                                                                  |
//! |------------|-----------------------------------------------------------------------|
//! | `pattern`  | the bytes sent: a pure function of connection, message and offset      |
//! | `conn`     | one connection's state and the check of its echoed stream             |
//! | `client`   | one client thread: a port and its connections                         |
//! | `load`     | the threads together, their phases and tallies                        |
//! | `run`      | one measured run: connect, warm up, measure, drain                     |
//! | `idle`     | `--idle`: the server's memory per idle connection                     |
//! | `matrix`   | every run of a bench, interleaved; medians and ratios                  |
//! | `server`   | the server under test: started, stopped                               |
//! | `sockets`  | source addresses and the open-file limit                              |
//! | `procfs`   | a process's CPU time, memory, descriptors (Linux)                     |
//! | `perf`     | a server's syscalls (perf stat)                                       |
//! | `progress` | the live progress bar                                                 |
//! | `report`   | results, the final table, the JSON document                           |
//! | `markdown` | `--markdown`: the tables of docs/BENCHMARKS.md                        |
//! | `chart`    | `--chart`: throughput and p99 against connections                     |

mod chart;
mod client;
mod conn;
mod idle;
mod load;
mod markdown;
mod matrix;
mod pattern;
mod perf;
mod procfs;
mod progress;
mod report;
mod run;
mod server;
mod sockets;

use std::error::Error;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use ringport::BackendChoice;

use self::matrix::{Matrix, PerfRounds, Target};
use self::report::Report;
use crate::args;
use crate::cpus::{self, CpuList};

/// Largest message `--size` takes.
const MAX_SIZE: usize = 64 << 20;

const EXAMPLES: &str = "\
Examples:
  ringport bench --spawn --conns 128 --size 64 --duration 5s
  ringport bench --addr 127.0.0.1:7000 --conns 16 --pipeline 8 --count 100000
  ringport bench --spawn --rate 50000 --conns 64 --duration 10s     (latency at a fixed load)
  ringport bench --spawn --matrix --chart bench.png --json bench.json
  ringport bench --compare --idle 10000 --repeat 3 --markdown section.md
  ringport bench --spawn --idle 10000                               (memory per idle connection)

A run with any error (a byte echoed wrong, a short echo, a reset, a failed connect) exits 1.";

/// When perf counts the server's syscalls.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PerfChoice {
    /// When perf works and the server's process is known.
    Auto,
    /// Always (fail if perf cannot).
    On,
    /// Never.
    Off,
}

/// `ringport bench` options.
#[derive(clap::Args, Debug)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Drive the echo server already running at this address (HOST:PORT; a host name is
    /// resolved). It must echo raw bytes (ringport echo-server --codec raw).
    #[arg(long, value_parser = args::socket_addr, conflicts_with_all = ["spawn", "compare"], help_heading = "Server")]
    addr: Option<SocketAddr>,
    /// Start `ringport echo-server` (this executable) on its own CPUs, and stop it (SIGTERM,
    /// graceful shutdown) at the end.
    #[arg(long, help_heading = "Server")]
    spawn: bool,
    /// Backend of the spawned server: auto, uring or epoll.
    #[arg(long, value_parser = ["auto", "uring", "epoll"], conflicts_with = "addr", help_heading = "Server")]
    server_backend: Option<String>,
    /// Worker threads of a spawned server [default: one per server CPU].
    #[arg(long, help_heading = "Server")]
    server_workers: Option<usize>,
    /// CPUs of a spawned server, e.g. 1 or 2-3 [default: the upper half of the CPUs this
    /// process may use, when there are two or more].
    #[arg(long, value_parser = cpus::parse, help_heading = "Server")]
    server_cpus: Option<CpuList>,
    /// The process id of the --addr server, to measure its CPU, memory and syscalls too.
    #[arg(long, requires = "addr", help_heading = "Server")]
    server_pid: Option<u32>,

    /// Connections.
    #[arg(long, default_value_t = 16, help_heading = "Load")]
    conns: usize,
    /// Message size (e.g. 64, 4KiB).
    #[arg(long, default_value = "64", value_parser = args::bytes, help_heading = "Load")]
    size: usize,
    /// How long to measure (after the warmup) [default: 5s].
    #[arg(long, value_parser = args::duration, conflicts_with = "count", help_heading = "Load")]
    duration: Option<Duration>,
    /// Measure this many messages instead (shared out over the connections).
    #[arg(long, help_heading = "Load")]
    count: Option<u64>,
    /// Load before measuring.
    #[arg(long, default_value = "1s", value_parser = args::duration, help_heading = "Load")]
    warmup: Duration,
    /// Messages in flight per connection [default: 1, a closed loop: send, wait for the whole
    /// echo, repeat; with --rate: 1024].
    #[arg(long, help_heading = "Load")]
    pipeline: Option<usize>,
    /// Offered load in messages/s over all connections: messages are sent on a fixed schedule
    /// and latency counts from each one's intended send time.
    #[arg(long, help_heading = "Load")]
    rate: Option<f64>,
    /// Client threads, each with its own completion port [default: one per client CPU].
    #[arg(long, help_heading = "Load")]
    threads: Option<usize>,
    /// CPUs of the client threads [default with a spawned server: the CPUs it does not use].
    #[arg(long, value_parser = cpus::parse, help_heading = "Load")]
    client_cpus: Option<CpuList>,
    /// Backend of the client's own ports: auto, uring or epoll.
    #[arg(long, default_value = "auto", help_heading = "Load")]
    client_backend: BackendChoice,
    /// Bind connections to this many source addresses 127.0.0.1, .2, … in turn [default: as
    /// many as the ephemeral port range needs, for a loopback server].
    #[arg(long, help_heading = "Load")]
    source_addrs: Option<usize>,
    /// How long connecting may take.
    #[arg(long, default_value = "30s", value_parser = args::duration, help_heading = "Load")]
    connect_timeout: Duration,
    /// How long to wait for outstanding echoes after the measurement (with --count: for any
    /// progress); what has not come back by then is a short echo.
    #[arg(long, default_value = "5s", value_parser = args::duration, help_heading = "Load")]
    drain_timeout: Duration,

    /// Run a matrix of connection counts × message sizes.
    #[arg(long, help_heading = "Modes")]
    matrix: bool,
    /// The matrix's connection counts.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,16,128,512",
        help_heading = "Modes"
    )]
    matrix_conns: Vec<usize>,
    /// The matrix's message sizes.
    #[arg(long, value_delimiter = ',', default_value = "64,4096", value_parser = args::bytes, help_heading = "Modes")]
    matrix_sizes: Vec<usize>,
    /// Run the matrix against several spawned servers (--servers), interleaved cell by cell,
    /// and print ratios to the baseline.
    #[arg(long, help_heading = "Modes")]
    compare: bool,
    /// The servers --compare starts: uring, epoll (ringport echo-server on that backend), tokio.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "uring,epoll,tokio",
        help_heading = "Modes"
    )]
    servers: Vec<String>,
    /// The server ratios are taken against [default: tokio if compared, else the last].
    #[arg(long, help_heading = "Modes")]
    baseline: Option<String>,
    /// The tokio echo server binary [default: tokio-echo-server beside this executable].
    #[arg(long, help_heading = "Modes")]
    tokio_server: Option<PathBuf>,
    /// Rounds of the whole matrix; medians are taken over them [default: 3 with --compare,
    /// else 1].
    #[arg(long, help_heading = "Modes")]
    repeat: Option<usize>,
    /// Measure the server's memory per idle connection with this many silent connections
    /// (alone, or after the matrix of --compare / --matrix).
    #[arg(long, help_heading = "Modes")]
    idle: Option<usize>,
    /// Count the server's syscalls with `perf stat` (in the measured window; with --compare in
    /// one extra round, so perf's cost stays out of the medians).
    #[arg(long, value_enum, default_value = "auto", help_heading = "Modes")]
    perf: PerfChoice,

    /// Write the results as JSON (fields: docs/BENCHMARKS.md).
    #[arg(long, help_heading = "Output")]
    json: Option<PathBuf>,
    /// Draw throughput and p99 against connections into this PNG (--matrix or --compare).
    #[arg(long, help_heading = "Output")]
    chart: Option<PathBuf>,
    /// The TrueType font of the chart's text.
    #[arg(long, default_value = chart::DEFAULT_FONT, help_heading = "Output")]
    chart_font: PathBuf,
    /// Write the --compare tables as Markdown (the tables of docs/BENCHMARKS.md).
    #[arg(long, help_heading = "Output")]
    markdown: Option<PathBuf>,
    /// No progress bar and no line per run.
    #[arg(long, short, help_heading = "Output")]
    quiet: bool,
}

/// Fails unless `path`'s directory exists (checked before a long run, not after).
fn writable(path: &Path, flag: &str) -> Result<(), String> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    match dir {
        Some(d) if !d.is_dir() => Err(format!(
            "{flag} {}: no directory {}",
            path.display(),
            d.display()
        )),
        _ => Ok(()),
    }
}

fn positive(what: &str, n: usize) -> Result<usize, String> {
    if n == 0 {
        Err(format!("{what} must be at least 1"))
    } else {
        Ok(n)
    }
}

/// The CPUs of the load and of spawned servers.
fn split_cpus(args: &Args, spawning: bool) -> Result<(Option<CpuList>, Option<CpuList>), String> {
    for list in [&args.client_cpus, &args.server_cpus].into_iter().flatten() {
        list.check_available()?;
    }
    if !spawning {
        if args.server_cpus.is_some() {
            return Err("--server-cpus is for a spawned server (--spawn, --compare)".into());
        }
        return Ok((args.client_cpus.clone(), None));
    }
    let available = cpus::available();
    let server = args.server_cpus.clone().or_else(|| {
        (available.len() >= 2)
            .then(|| CpuList::new(available[available.len() - available.len() / 2..].to_vec()))
            .flatten()
    });
    let client = args.client_cpus.clone().or_else(|| {
        let rest: Vec<usize> = available
            .iter()
            .copied()
            .filter(|c| !server.as_ref().is_some_and(|s| s.ids().contains(c)))
            .collect();
        server.as_ref().and_then(|_| CpuList::new(rest))
    });
    Ok((client, server))
}

/// The bench to make, from the command line; every wrong flag is a clear error.
fn configure(args: &Args) -> Result<(Matrix, Report), String> {
    let spawning = args.spawn || args.compare;
    if args.addr.is_none() && !spawning {
        return Err(
            "say where the load goes: --addr HOST:PORT (a running echo server), \
                    --spawn (start one) or --compare"
                .into(),
        );
    }
    positive("--conns", args.conns)?;
    if args.size == 0 || args.size > MAX_SIZE {
        return Err(format!(
            "--size must be between 1 byte and {} MiB",
            MAX_SIZE >> 20
        ));
    }
    let duration = args.duration.unwrap_or(Duration::from_secs(5));
    if duration.is_zero() {
        return Err("--duration must be positive".into());
    }
    if args.count == Some(0) {
        return Err("--count must be at least 1".into());
    }
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(format!(
            "--rate {rate}: must be a positive number of messages/s"
        ));
    }
    let window = positive(
        "--pipeline",
        args.pipeline
            .unwrap_or(if args.rate.is_some() { 1024 } else { 1 }),
    )?;
    let repeat = positive(
        "--repeat",
        args.repeat.unwrap_or(if args.compare { 3 } else { 1 }),
    )?;
    if let Some(t) = args.threads {
        positive("--threads", t)?;
    }
    if let Some(w) = args.server_workers {
        positive("--server-workers", w)?;
    }
    if let Some(n) = args.idle {
        positive("--idle", n)?;
    }
    if let Some(n) = args.source_addrs
        && !(1..=250).contains(&n)
    {
        return Err("--source-addrs must be between 1 and 250".into());
    }
    let multi = args.matrix || args.compare;
    if (args.chart.is_some()) && !multi {
        return Err("--chart draws a matrix: add --matrix or --compare".into());
    }
    if args.markdown.is_some() && !args.compare {
        return Err("--markdown writes the tables of --compare".into());
    }
    let cells: Vec<(usize, usize)> = if multi {
        if args.matrix_conns.is_empty() || args.matrix_sizes.is_empty() {
            return Err("--matrix-conns and --matrix-sizes need at least one value each".into());
        }
        for &c in &args.matrix_conns {
            positive("every --matrix-conns value", c)?;
        }
        for &s in &args.matrix_sizes {
            if s == 0 || s > MAX_SIZE {
                return Err(format!(
                    "--matrix-sizes: {s} is not between 1 byte and {} MiB",
                    MAX_SIZE >> 20
                ));
            }
        }
        args.matrix_conns
            .iter()
            .flat_map(|&c| args.matrix_sizes.iter().map(move |&s| (c, s)))
            .collect()
    } else {
        vec![(args.conns, args.size)]
    };
    let load = multi || args.idle.is_none();
    let most = cells
        .iter()
        .map(|c| c.0)
        .filter(|_| load)
        .chain(args.idle)
        .max()
        .unwrap_or(1);
    sockets::ensure_open_files(most, spawning)?;

    let (client_cpus, server_cpus) = split_cpus(args, spawning)?;
    let workers = args
        .server_workers
        .or(server_cpus.as_ref().map(CpuList::len))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let threads = args
        .threads
        .or(client_cpus.as_ref().map(CpuList::len))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let spec = |kind| server::Spec {
        kind,
        workers,
        cpus: server_cpus.clone(),
    };
    let targets: Vec<Target> = if args.compare {
        let mut targets = Vec::new();
        for name in &args.servers {
            let kind = server::Kind::parse(name, &args.tokio_server)?;
            if targets.iter().any(|t: &Target| t.label() == kind.label()) {
                return Err(format!("--servers lists {name} twice"));
            }
            targets.push(Target::Spawn(spec(kind)));
        }
        if targets.is_empty() {
            return Err("--servers lists no server".into());
        }
        targets
    } else if args.spawn {
        let backend = match args.server_backend.as_deref() {
            Some("uring") | Some("epoll") => args.server_backend.clone().expect("matched"),
            // What the spawned server's automatic choice will be (it sees the same kernel and
            // RINGPORT_BACKEND), so results are labelled by the backend that served them.
            _ => ringport::Port::new()
                .map_err(|e| format!("no ringport backend works here: {e}"))?
                .backend()
                .name()
                .to_string(),
        };
        vec![Target::Spawn(spec(server::Kind::Ringport(backend)))]
    } else {
        vec![Target::External {
            addr: args.addr.expect("checked above"),
            pid: args.server_pid,
        }]
    };
    if let Some(b) = &args.baseline
        && !targets.iter().any(|t| &t.label() == b)
    {
        return Err(format!("--baseline {b} is not one of the servers"));
    }

    let knows_pid = spawning || args.server_pid.is_some();
    let perf = match args.perf {
        PerfChoice::Off => PerfRounds::Never,
        PerfChoice::On => {
            perf::available()?;
            if !knows_pid {
                return Err("--perf on needs the server's process: --spawn or --server-pid".into());
            }
            if args.compare {
                PerfRounds::Extra
            } else {
                PerfRounds::Always
            }
        }
        PerfChoice::Auto if !knows_pid || perf::available().is_err() => PerfRounds::Never,
        PerfChoice::Auto if args.compare => PerfRounds::Extra,
        PerfChoice::Auto => PerfRounds::Always,
    };
    if args.idle.is_some() && !knows_pid {
        return Err(
            "--idle measures the server's memory: use --spawn, --compare or --server-pid".into(),
        );
    }
    for (path, flag) in [
        (&args.json, "--json"),
        (&args.chart, "--chart"),
        (&args.markdown, "--markdown"),
    ] {
        if let Some(p) = path {
            writable(p, flag)?;
        }
    }
    if args.chart.is_some() {
        chart::load_font(&args.chart_font)?;
    }

    let measure = match args.count {
        Some(n) => run::Measure::Count(n),
        None => run::Measure::For(duration),
    };
    let mode = if args.compare {
        "compare"
    } else if args.matrix {
        "matrix"
    } else if !load {
        "idle"
    } else {
        "run"
    };
    let m = Matrix {
        targets,
        cells,
        repeat,
        perf,
        warmup: args.warmup,
        measure,
        window,
        rate: args.rate,
        threads,
        client_cpus: client_cpus.clone(),
        client_backend: args.client_backend,
        source_addrs: args.source_addrs,
        connect_timeout: args.connect_timeout,
        drain_timeout: args.drain_timeout,
        idle: args.idle,
        load,
        quiet: args.quiet,
    };
    let command = std::iter::once("ringport".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let report = Report {
        schema: report::SCHEMA,
        mode,
        command,
        machine: report::machine(),
        settings: report::Settings {
            warmup_s: args.warmup.as_secs_f64(),
            duration_s: args.count.is_none().then_some(duration.as_secs_f64()),
            count: args.count,
            pipeline: window,
            rate: args.rate,
            client_threads: threads,
            client_cpus: client_cpus.map(|c| c.to_string()),
            server_cpus: server_cpus.map(|c| c.to_string()),
            server_workers: spawning.then_some(workers),
            repeat,
            target: args.addr.map_or("spawned".into(), |a| a.to_string()),
        },
        runs: Vec::new(),
        idle: Vec::new(),
        summary: Vec::new(),
        idle_summary: Vec::new(),
        errors: 0,
    };
    Ok((m, report))
}

/// The baseline of ratios: `--baseline`, else tokio if compared, else the last server.
fn baseline(args: &Args, m: &Matrix) -> Option<String> {
    if m.targets.len() < 2 {
        return None;
    }
    args.baseline.clone().or_else(|| {
        let labels: Vec<String> = m.targets.iter().map(Target::label).collect();
        labels
            .iter()
            .find(|l| *l == "tokio")
            .or(labels.last())
            .cloned()
    })
}

/// Whether a run looks like a server that frames its messages (a line or length-prefixed
/// codec): it was reached, yet not one message came back whole (echoes stopped short, came
/// back wrong, or the server reset the connection at the first bytes it could not frame).
fn not_raw(r: &report::Run) -> bool {
    r.msgs == 0 && r.errors.total > r.errors.connect_failures
}

/// Runs the bench.
pub fn run(args: Args) -> Result<ExitCode, Box<dyn Error>> {
    let (m, mut report) = configure(&args)?;
    if !args.quiet {
        let s = &report.settings;
        let target = m
            .targets
            .iter()
            .map(Target::label)
            .collect::<Vec<_>>()
            .join(", ");
        let pinned = |c: &Option<String>| {
            c.as_ref()
                .map_or(String::new(), |c| format!(" on CPUs {c}"))
        };
        eprintln!(
            "ringport bench: {} ({target}){}; load: {} threads{}",
            report.mode,
            s.server_workers.map_or(String::new(), |w| format!(
                ", servers: {w} workers{}",
                pinned(&s.server_cpus)
            )),
            s.client_threads,
            pinned(&s.client_cpus),
        );
    }
    matrix::run_all(&m, &mut report)?;
    report.count_errors();
    if report.mode == "compare" || report.mode == "matrix" {
        report.summary = matrix::summarize(&m, &report.runs, baseline(&args, &m).as_deref());
    }
    report.idle_summary = matrix::summarize_idle(&m, &report.idle);

    // The results.
    if report.summary.is_empty() {
        if !report.runs.is_empty() {
            print!("{}", report::table(&report.runs));
        }
    } else {
        print!("{}", matrix::summary_table(&report.summary));
    }
    for i in &report.idle_summary {
        if let Some(b) = i.bytes_per_conn {
            println!(
                "{}: {:.0} bytes of server memory per idle connection ({} connections; {} rounds, {:.0}–{:.0})",
                i.server, b.median, i.conns, m.repeat, b.min, b.max
            );
        }
    }
    for r in &report.runs {
        let label = format!("{} {}×{}B round {}", r.server, r.conns, r.size, r.round);
        eprint!("{}", report::error_lines(&label, &r.errors, &r.notes));
        if let Some(note) = r.server_stats.as_ref().and_then(|s| s.perf_note.as_ref())
            && args.perf == PerfChoice::On
        {
            eprintln!("{label}: no syscall count: {note}");
        }
        if r.behind > 0 {
            eprintln!(
                "{label}: the client fell behind the offered --rate ({} messages never sent)",
                r.behind
            );
        }
    }
    for i in &report.idle {
        let label = format!("{} idle×{} round {}", i.server, i.conns, i.round);
        eprint!("{}", report::error_lines(&label, &i.errors, &i.notes));
    }

    // The files.
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.chart {
        let title = format!(
            "ringport bench: {} ({} B messages)",
            report.mode,
            args.matrix_sizes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        chart::draw(path, &args.chart_font, &report.summary, &title)?;
    }
    if let Some(path) = &args.markdown {
        std::fs::write(path, markdown::section(&report))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if report.errors > 0 {
        eprintln!(
            "ringport bench: {} errors: the server did not echo every byte back intact",
            report.errors
        );
        if report.runs.iter().any(not_raw) {
            eprintln!(
                "ringport bench: no message came back whole: the server does not seem to echo \
                 raw bytes; bench speaks the raw codec only: start the server with --codec raw"
            );
        }
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
