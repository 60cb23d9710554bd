//! Every run of a bench: servers × cells (connections × message size) × rounds, interleaved cell
//! by cell so slow drifts of a shared machine hit every server alike; then the medians and the
//! ratios to the baseline server.

use std::net::SocketAddr;
use std::time::Duration;

use super::load::Plan;
use super::report::{self, Flawed, Idle, IdleSummary, Ratios, Report, Run, Stat, Summary};
use super::server::{self, Spawned};
use super::{idle, run, sockets};
use crate::cpus::CpuList;

/// A server the runs go to.
#[derive(Clone, Debug)]
pub enum Target {
    /// Already running: its address, and its process if given.
    External { addr: SocketAddr, pid: Option<u32> },
    /// Started for every run and stopped after it.
    Spawn(server::Spec),
}

impl Target {
    pub fn label(&self) -> String {
        match self {
            Target::External { .. } => "external".into(),
            Target::Spawn(spec) => spec.kind.label(),
        }
    }
}

/// When perf counts the server's syscalls.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PerfRounds {
    Never,
    /// In every measured window.
    Always,
    /// In one extra round after the timed ones (perf's own cost stays out of the medians).
    Extra,
}

/// Everything the runs are made of.
#[derive(Clone, Debug)]
pub struct Matrix {
    pub targets: Vec<Target>,
    /// (connections, message size), in order.
    pub cells: Vec<(usize, usize)>,
    pub repeat: usize,
    pub perf: PerfRounds,
    pub warmup: Duration,
    pub measure: run::Measure,
    pub window: usize,
    pub rate: Option<f64>,
    pub threads: usize,
    pub client_cpus: Option<CpuList>,
    pub client_backend: ringport::BackendChoice,
    pub source_addrs: Option<usize>,
    pub connect_timeout: Duration,
    pub drain_timeout: Duration,
    /// `--idle N`: idle connections per idle measurement.
    pub idle: Option<usize>,
    /// Load runs at all (false: idle measurements only).
    pub load: bool,
    pub quiet: bool,
}

impl Matrix {
    fn plan(
        &self,
        addr: SocketAddr,
        conns: usize,
        size: usize,
        idle: bool,
    ) -> Result<Plan, String> {
        Ok(Plan {
            addr,
            conns,
            size,
            window: self.window,
            rate: self.rate,
            count: match self.measure {
                run::Measure::Count(n) => Some(n),
                run::Measure::For(_) => None,
            },
            idle,
            sources: sockets::plan_sources(addr, conns, self.source_addrs)?,
            threads: self.threads.min(conns).max(1),
            cpus: self.client_cpus.clone(),
            backend: self.client_backend,
        })
    }

    fn rounds(&self) -> usize {
        self.repeat + usize::from(self.perf == PerfRounds::Extra)
    }

    fn load_runs(&self) -> usize {
        if self.load {
            self.rounds() * self.cells.len() * self.targets.len()
        } else {
            0
        }
    }

    fn idle_runs(&self) -> usize {
        self.idle.map_or(0, |_| self.repeat * self.targets.len())
    }
}

/// The targets in the order round `r` of cell `c` visits them (a rotation, so none is always
/// first or last).
fn order(n: usize, shift: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |i| (i + shift) % n)
}

/// Makes every run, adding them to `report`; prints a line per run unless quiet.
pub fn run_all(m: &Matrix, report: &mut Report) -> Result<(), String> {
    let total = m.load_runs() + m.idle_runs();
    let mut k = 0;
    let many = total > 1;
    if m.load {
        for round in 0..m.rounds() {
            let perf_round = m.perf == PerfRounds::Extra && round == m.repeat;
            for (c, &(conns, size)) in m.cells.iter().enumerate() {
                for t in order(m.targets.len(), round + c) {
                    k += 1;
                    let target = &m.targets[t];
                    let label = format!("[{k}/{total}] {} {conns}×{size}B", target.label());
                    let r = load_run(m, target, conns, size, round, perf_round, &label)?;
                    if many && !m.quiet {
                        eprintln!("{}", one_line(&label, &r));
                    }
                    report.runs.push(r);
                }
            }
        }
    }
    if let Some(conns) = m.idle {
        for round in 0..m.repeat {
            for t in order(m.targets.len(), round) {
                k += 1;
                let target = &m.targets[t];
                let label = format!("[{k}/{total}] {} idle×{conns}", target.label());
                let r = idle_run(m, target, conns, round, &label)?;
                if !m.quiet {
                    eprintln!(
                        "{label}: {:.0} bytes/connection (RSS {} → {}, {} connected){}",
                        r.bytes_per_conn,
                        report::mib(r.rss_before),
                        report::mib(r.rss_after),
                        r.connected,
                        if r.errors.total > 0 {
                            format!(", {} errors", r.errors.total)
                        } else {
                            String::new()
                        }
                    );
                }
                report.idle.push(r);
            }
        }
    }
    Ok(())
}

fn one_line(label: &str, r: &Run) -> String {
    let s = r.server_stats.as_ref();
    let cpu = s
        .and_then(|s| s.cpu_us_per_msg)
        .map_or(String::new(), |c| format!(", server {c:.2} µs/msg"));
    let sys = s
        .and_then(|s| s.syscalls_per_msg)
        .map_or(String::new(), |c| format!(", {c:.3} syscalls/msg"));
    let errors = if r.errors.total > 0 {
        format!(", {} ERRORS", r.errors.total)
    } else {
        String::new()
    };
    format!(
        "{label}: {} msgs/s, p99 {:.1} µs{cpu}{sys}{errors}",
        report::grouped(r.msgs_per_s),
        r.latency_us.p99
    )
}

/// One load run on `target`, starting and stopping the server if it is spawned.
fn load_run(
    m: &Matrix,
    target: &Target,
    conns: usize,
    size: usize,
    round: usize,
    perf_round: bool,
    label: &str,
) -> Result<Run, String> {
    let perf = match m.perf {
        PerfRounds::Never => false,
        PerfRounds::Always => true,
        PerfRounds::Extra => perf_round,
    };
    let spec = |addr, pid| -> Result<run::Spec, String> {
        Ok(run::Spec {
            server: target.label(),
            round,
            perf_round,
            plan: m.plan(addr, conns, size, false)?,
            warmup: m.warmup,
            measure: m.measure,
            connect_timeout: m.connect_timeout,
            drain_timeout: m.drain_timeout,
            server_pid: pid,
            perf,
            quiet: m.quiet,
            label: label.to_string(),
        })
    };
    against(target, |addr, pid| run::run(spec(addr, pid)?))
}

/// One idle measurement on `target`.
fn idle_run(
    m: &Matrix,
    target: &Target,
    conns: usize,
    round: usize,
    label: &str,
) -> Result<Idle, String> {
    let spec = |addr, pid| -> Result<idle::Spec, String> {
        Ok(idle::Spec {
            server: target.label(),
            round,
            plan: m.plan(addr, conns, 1, true)?,
            connect_timeout: m.connect_timeout,
            pid,
            quiet: m.quiet,
            label: label.to_string(),
        })
    };
    against(target, |addr, pid| {
        let pid = pid.ok_or("--idle needs the server's process: --spawn, or --server-pid")?;
        idle::measure(spec(addr, pid)?)
    })
}

/// Runs `f` on `target`'s address and process; a spawned server is started first and stopped
/// after, and one that does not stop cleanly is an error of the result.
fn against<R: Flawed>(
    target: &Target,
    f: impl FnOnce(SocketAddr, Option<u32>) -> Result<R, String>,
) -> Result<R, String> {
    match target {
        Target::External { addr, pid } => f(*addr, *pid),
        Target::Spawn(server) => {
            let spawned = Spawned::start(server)?;
            let result = f(spawned.addr, Some(spawned.pid));
            let stopped = spawned.stop();
            let mut r = result?;
            if let Err(e) = stopped {
                r.flaw(e);
            }
            Ok(r)
        }
    }
}

/// Medians per server and cell, in the matrix's order, with ratios to `baseline`.
pub fn summarize(m: &Matrix, runs: &[Run], baseline: Option<&str>) -> Vec<Summary> {
    let mut out: Vec<Summary> = Vec::new();
    for &(conns, size) in &m.cells {
        for target in &m.targets {
            let server = target.label();
            let mine: Vec<&Run> = runs
                .iter()
                .filter(|r| r.conns == conns && r.size == size && r.server == server)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let timed: Vec<&Run> = mine.iter().copied().filter(|r| !r.perf_round).collect();
            let side = |r: &&Run| r.server_stats.clone();
            out.push(Summary {
                server,
                conns,
                size,
                runs: timed.len(),
                msgs_per_s: Stat::of(timed.iter().map(|r| r.msgs_per_s)),
                cpu_us_per_msg: Stat::of(
                    timed
                        .iter()
                        .filter_map(side)
                        .filter_map(|s| s.cpu_us_per_msg),
                ),
                p99_us: Stat::of(timed.iter().map(|r| r.latency_us.p99)),
                rss_bytes: Stat::of(
                    timed
                        .iter()
                        .filter_map(side)
                        .filter_map(|s| s.rss_bytes.map(|b| b as f64)),
                ),
                others_cpu_percent: Stat::of(timed.iter().filter_map(|r| r.others_cpu_percent)),
                syscalls_per_msg: Stat::of(
                    mine.iter()
                        .filter_map(side)
                        .filter_map(|s| s.syscalls_per_msg),
                )
                .map(|s| s.median),
                errors: mine.iter().map(|r| r.errors.total).sum(),
                vs_baseline: None,
            });
        }
    }
    if let Some(base) = baseline {
        let bases: Vec<Summary> = out.iter().filter(|s| s.server == base).cloned().collect();
        for s in out.iter_mut().filter(|s| s.server != base) {
            let Some(b) = bases
                .iter()
                .find(|b| b.conns == s.conns && b.size == s.size)
            else {
                continue;
            };
            let ratio = |a: Option<Stat>, b: Option<Stat>| {
                let (a, b) = (a?.median, b?.median);
                (b > 0.0).then_some(a / b)
            };
            s.vs_baseline = Some(Ratios {
                baseline: base.to_string(),
                msgs_per_s: ratio(s.msgs_per_s, b.msgs_per_s),
                cpu_us_per_msg: ratio(s.cpu_us_per_msg, b.cpu_us_per_msg),
                p99: ratio(s.p99_us, b.p99_us),
            });
        }
    }
    out
}

/// Medians of the idle measurements per server.
pub fn summarize_idle(m: &Matrix, idle: &[Idle]) -> Vec<IdleSummary> {
    m.targets
        .iter()
        .filter_map(|t| {
            let server = t.label();
            let mine: Vec<&Idle> = idle.iter().filter(|i| i.server == server).collect();
            let first = mine.first()?;
            Some(IdleSummary {
                server,
                conns: first.conns,
                bytes_per_conn: Stat::of(mine.iter().map(|i| i.bytes_per_conn)),
            })
        })
        .collect()
}

/// The summary table: one row per server and cell.
pub fn summary_table(summary: &[Summary]) -> String {
    let base = summary
        .iter()
        .find_map(|s| s.vs_baseline.as_ref().map(|r| r.baseline.clone()));
    let vs = base.as_deref().unwrap_or("baseline");
    let thr = format!("thr ÷ {vs}");
    let cpu = format!("cpu ÷ {vs}");
    let header = [
        "server",
        "conns",
        "size",
        "msgs/s",
        "spread",
        "srv µs/msg",
        "p99 µs",
        "sys/msg",
        "srv RSS",
        &thr,
        &cpu,
        "errors",
    ];
    let f = |v: Option<f64>, d: usize| v.map_or("-".into(), |x| format!("{x:.d$}"));
    let rows: Vec<Vec<String>> = summary
        .iter()
        .map(|s| {
            let r = s.vs_baseline.as_ref();
            vec![
                s.server.clone(),
                s.conns.to_string(),
                s.size.to_string(),
                s.msgs_per_s
                    .map_or("-".into(), |m| report::grouped(m.median)),
                s.msgs_per_s
                    .map_or("-".into(), |m| format!("±{:.0}%", m.spread() * 50.0)),
                f(s.cpu_us_per_msg.map(|c| c.median), 2),
                f(s.p99_us.map(|p| p.median), 1),
                f(s.syscalls_per_msg, 3),
                s.rss_bytes
                    .map_or("-".into(), |b| report::mib(b.median as u64)),
                f(r.and_then(|r| r.msgs_per_s), 2),
                f(r.and_then(|r| r.cpu_us_per_msg), 2),
                s.errors.to_string(),
            ]
        })
        .collect();
    report::render(&header, &rows)
}
