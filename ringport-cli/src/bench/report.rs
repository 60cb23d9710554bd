//! Results: what one run, one idle measurement and a whole bench found; the table printed at
//! the end and the JSON document of `--json` (its fields are documented in docs/BENCHMARKS.md).

use std::fmt::Write as _;

use serde::Serialize;

/// The JSON document's schema name; bumped when a field changes meaning.
pub const SCHEMA: &str = "ringport-bench/1";

/// Latency of the measured messages, in µs.
#[derive(Serialize, Clone, Debug, Default)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
    /// Messages measured.
    pub samples: u64,
}

/// Errors over the whole run (connect, warmup, measurement and drain).
#[derive(Serialize, Clone, Debug, Default)]
pub struct Errors {
    /// Messages echoed with a wrong byte, and streams with bytes never sent.
    pub mismatches: u64,
    /// Connections whose echo stopped short (closed by the server, or never came back).
    pub short_echoes: u64,
    /// Connections reset by the server.
    pub resets: u64,
    pub connect_failures: u64,
    /// Anything else (the server closing a connection mid-run, a failed submit).
    pub other: u64,
    pub total: u64,
}

impl From<&super::load::Counts> for Errors {
    fn from(c: &super::load::Counts) -> Errors {
        Errors {
            mismatches: c.mismatches,
            short_echoes: c.short_echoes,
            resets: c.resets,
            connect_failures: c.connect_failures,
            other: c.other,
            total: c.errors(),
        }
    }
}

/// The load generator's side.
#[derive(Serialize, Clone, Debug, Default)]
pub struct ClientSide {
    pub threads: usize,
    /// CPUs the threads were pinned to.
    pub cpus: Option<String>,
    /// CPU time of the whole bench process during the measured window.
    pub cpu_s: Option<f64>,
    /// That, as a percentage of one CPU.
    pub cpu_percent: Option<f64>,
}

/// The server's side, when the bench can see the server's process.
#[derive(Serialize, Clone, Debug, Default)]
pub struct ServerSide {
    pub pid: u32,
    /// CPU time of every server thread during the measured window.
    pub cpu_s: Option<f64>,
    /// That, per echoed message, in µs.
    pub cpu_us_per_msg: Option<f64>,
    /// Resident memory at the end of the window.
    pub rss_bytes: Option<u64>,
    /// System calls the server entered while perf counted (during the window).
    pub syscalls: Option<u64>,
    /// Syscall rate over message rate.
    pub syscalls_per_msg: Option<f64>,
    /// Why there is no syscall count, if there is none.
    pub perf_note: Option<String>,
}

/// One measured run: one server, one number of connections, one message size.
#[derive(Serialize, Clone, Debug, Default)]
pub struct Run {
    /// The server: its backend (`uring`, `epoll`, `auto`), `tokio`, or `external`.
    pub server: String,
    /// Round of a repeated matrix (0-based).
    pub round: usize,
    /// A round run only for the syscall count (perf attached); left out of the medians.
    pub perf_round: bool,
    pub conns: usize,
    /// Message size in bytes.
    pub size: usize,
    /// Messages in flight per connection at most.
    pub pipeline: usize,
    /// Offered load (messages/s over all connections), or null for a closed loop.
    pub rate: Option<f64>,
    pub connected: u64,
    /// Length of the measured window.
    pub seconds: f64,
    /// Messages echoed whole in the window.
    pub msgs: u64,
    /// Bytes echoed in the window (one direction).
    pub bytes: u64,
    pub msgs_per_s: f64,
    /// Echoed megabytes (10^6 bytes, one direction) per second.
    pub mb_per_s: f64,
    pub latency_us: Latency,
    pub errors: Errors,
    pub client: ClientSide,
    /// Null when the server's process is not known (`--addr` without `--server-pid`).
    pub server_stats: Option<ServerSide>,
    /// CPU the rest of the machine used during the window (busy time less the bench and the
    /// server), in % of one CPU: the noise the run shared the machine with.
    pub others_cpu_percent: Option<f64>,
    /// Fixed rate: messages dropped from the schedule because the client fell too far behind.
    pub behind: u64,
    /// The first distinct error messages.
    pub notes: Vec<String>,
}

/// One idle measurement: the server's memory for idle connections.
#[derive(Serialize, Clone, Debug, Default)]
pub struct Idle {
    pub server: String,
    pub round: usize,
    /// Connections asked for, and established.
    pub conns: usize,
    pub connected: u64,
    /// Server RSS before and after the connections were made.
    pub rss_before: u64,
    pub rss_after: u64,
    /// (after − before) / connected.
    pub bytes_per_conn: f64,
    pub errors: Errors,
    pub notes: Vec<String>,
}

/// A result that can take one more error found outside the load (a server that would not
/// stop cleanly).
pub trait Flawed {
    /// The result's error counts and messages.
    fn parts(&mut self) -> (&mut Errors, &mut Vec<String>);

    /// Counts `why` as one more error.
    fn flaw(&mut self, why: String) {
        let (errors, notes) = self.parts();
        errors.other += 1;
        errors.total += 1;
        notes.push(why);
    }
}

impl Flawed for Run {
    fn parts(&mut self) -> (&mut Errors, &mut Vec<String>) {
        (&mut self.errors, &mut self.notes)
    }
}

impl Flawed for Idle {
    fn parts(&mut self) -> (&mut Errors, &mut Vec<String>) {
        (&mut self.errors, &mut self.notes)
    }
}

/// A median with the smallest and largest value it was taken of.
#[derive(Serialize, Clone, Copy, Debug, Default)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    /// Median, min and max of `values` (None if there are none).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Stat> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Stat {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }

    /// (max − min) / median: how far the repeats spread.
    pub fn spread(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.max - self.min) / self.median
        }
    }
}

/// Ratios of one server's medians to the baseline's, in one matrix cell.
#[derive(Serialize, Clone, Debug)]
pub struct Ratios {
    pub baseline: String,
    /// Throughput ÷ the baseline's (above 1: faster).
    pub msgs_per_s: Option<f64>,
    /// Server CPU per message ÷ the baseline's (below 1: cheaper).
    pub cpu_us_per_msg: Option<f64>,
    /// p99 latency ÷ the baseline's (below 1: lower).
    pub p99: Option<f64>,
}

/// One server in one matrix cell, over the repeats.
#[derive(Serialize, Clone, Debug)]
pub struct Summary {
    pub server: String,
    pub conns: usize,
    pub size: usize,
    /// Timed runs the medians are taken over.
    pub runs: usize,
    pub msgs_per_s: Option<Stat>,
    pub cpu_us_per_msg: Option<Stat>,
    pub p99_us: Option<Stat>,
    pub rss_bytes: Option<Stat>,
    /// Other processes' CPU during the timed runs, % of one CPU.
    pub others_cpu_percent: Option<Stat>,
    /// From the perf round(s) (median if several).
    pub syscalls_per_msg: Option<f64>,
    pub errors: u64,
    pub vs_baseline: Option<Ratios>,
}

/// One server's idle measurements.
#[derive(Serialize, Clone, Debug)]
pub struct IdleSummary {
    pub server: String,
    pub conns: usize,
    pub bytes_per_conn: Option<Stat>,
}

/// The machine the numbers come from.
#[derive(Serialize, Clone, Debug)]
pub struct Machine {
    pub os: &'static str,
    pub arch: &'static str,
    /// CPUs this process may use.
    pub cpus: usize,
    pub kernel: Option<String>,
}

/// What every run of the bench shared.
#[derive(Serialize, Clone, Debug, Default)]
pub struct Settings {
    pub warmup_s: f64,
    pub duration_s: Option<f64>,
    pub count: Option<u64>,
    pub pipeline: usize,
    pub rate: Option<f64>,
    pub client_threads: usize,
    pub client_cpus: Option<String>,
    pub server_cpus: Option<String>,
    pub server_workers: Option<usize>,
    pub repeat: usize,
    /// Where the load went: an address, or "spawned".
    pub target: String,
}

/// The whole JSON document.
#[derive(Serialize, Clone, Debug)]
pub struct Report {
    pub schema: &'static str,
    /// `run`, `matrix`, `compare` or `idle`.
    pub mode: &'static str,
    /// The command line, as given.
    pub command: String,
    pub machine: Machine,
    pub settings: Settings,
    pub runs: Vec<Run>,
    pub idle: Vec<Idle>,
    pub summary: Vec<Summary>,
    pub idle_summary: Vec<IdleSummary>,
    /// Errors over every run: any makes the bench exit non-zero.
    pub errors: u64,
}

impl Report {
    /// Errors in every run and idle measurement.
    pub fn count_errors(&mut self) {
        self.errors = self.runs.iter().map(|r| r.errors.total).sum::<u64>()
            + self.idle.iter().map(|i| i.errors.total).sum::<u64>();
    }
}

/// This machine.
pub fn machine() -> Machine {
    Machine {
        os: std::env::consts::OS,
        arch: std::env::consts::ARCH,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel: super::procfs::kernel(),
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.digits$}"))
}

/// Thousands separated, for counts and rates.
pub fn grouped(x: f64) -> String {
    let n = x.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// The results table: one row per run.
pub fn table(runs: &[Run]) -> String {
    let header = [
        "server",
        "conns",
        "size",
        "msgs/s",
        "MB/s",
        "p50 µs",
        "p90 µs",
        "p99 µs",
        "p99.9 µs",
        "max µs",
        "errors",
        "client CPU",
        "srv µs/msg",
        "srv RSS",
        "sys/msg",
    ];
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let s = r.server_stats.as_ref();
            vec![
                r.server.clone() + if r.perf_round { "*" } else { "" },
                r.conns.to_string(),
                r.size.to_string(),
                grouped(r.msgs_per_s),
                format!("{:.1}", r.mb_per_s),
                format!("{:.1}", r.latency_us.p50),
                format!("{:.1}", r.latency_us.p90),
                format!("{:.1}", r.latency_us.p99),
                format!("{:.1}", r.latency_us.p999),
                format!("{:.1}", r.latency_us.max),
                r.errors.total.to_string(),
                r.client
                    .cpu_percent
                    .map_or("-".into(), |p| format!("{p:.0}%")),
                opt(s.and_then(|s| s.cpu_us_per_msg), 2),
                s.and_then(|s| s.rss_bytes).map_or("-".into(), mib),
                opt(s.and_then(|s| s.syscalls_per_msg), 3),
                r.others_cpu_percent
                    .map_or("-".into(), |p| format!("{p:.0}%")),
            ]
        })
        .collect();
    render(&header, &rows)
}

/// Right-aligned columns (the first left-aligned), two spaces apart.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            let pad = w - cell.chars().count();
            if i == 0 {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str("  ");
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
        }
        out.push('\n');
    };
    line(&mut out, &mut header.iter().copied());
    for row in rows {
        line(&mut out, &mut row.iter().map(String::as_str));
    }
    out
}

/// Error counts and the first messages, if there were errors.
pub fn error_lines(label: &str, errors: &Errors, notes: &[String]) -> String {
    let mut out = String::new();
    if errors.total == 0 {
        return out;
    }
    let _ = writeln!(
        out,
        "{label}: {} errors: {} mismatched, {} short echoes, {} resets, {} connect failures, {} other",
        errors.total,
        errors.mismatches,
        errors.short_echoes,
        errors.resets,
        errors.connect_failures,
        errors.other
    );
    for n in notes {
        let _ = writeln!(out, "  - {n}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_groups() {
        let s = Stat::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Stat::of([1.0, 2.0, 3.0, 10.0]).unwrap().median, 2.5);
        assert!(Stat::of([]).is_none());
        assert_eq!(grouped(1234567.4), "1,234,567");
        assert_eq!(grouped(12.0), "12");
    }
}
