//! One measured run: connect, warm up, measure a window while watching the server (CPU, memory,
//! syscalls), then drain and collect.

use std::time::{Duration, Instant};

use super::load::{Counts, Load, Phase, Plan};
use super::perf::Perf;
use super::procfs;
use super::progress::{self, Progress};
use super::report::{ClientSide, Errors, Latency, Run, ServerSide};

/// How long the measurement lasts.
#[derive(Copy, Clone, Debug)]
pub enum Measure {
    For(Duration),
    /// Until this many messages, sent in the window, have been echoed.
    Count(u64),
}

/// One run to make.
pub struct Spec {
    pub server: String,
    pub round: usize,
    pub perf_round: bool,
    pub plan: Plan,
    pub warmup: Duration,
    pub measure: Measure,
    pub connect_timeout: Duration,
    pub drain_timeout: Duration,
    /// The server's process, to watch (none: an unknown server).
    pub server_pid: Option<u32>,
    /// Count the server's syscalls during the window.
    pub perf: bool,
    pub quiet: bool,
    /// The progress bar's label.
    pub label: String,
}

/// What is measured at each end of the window.
struct Mark {
    at: Instant,
    ns: u64,
    counts: Counts,
    client_cpu: Option<u64>,
    server_cpu: Option<u64>,
    machine_busy: Option<u64>,
}

impl Mark {
    fn take(load: &Load, pid: Option<u32>) -> Mark {
        Mark {
            at: Instant::now(),
            ns: load.shared().now(),
            counts: load.counts(),
            client_cpu: procfs::cpu_ns(std::process::id()),
            server_cpu: pid.and_then(procfs::cpu_ns),
            machine_busy: procfs::machine_busy_ns(),
        }
    }
}

/// Sleeps until `until`, updating the bar with the message rate.
fn watch(load: &Load, bar: &Progress, phase: &str, until: Instant, total: Duration) {
    let start = Instant::now();
    let mut last = (Instant::now(), load.counts().msgs);
    // This thread is not pinned (servers it starts would inherit that): it wakes rarely.
    while Instant::now() < until {
        let left = until.saturating_duration_since(Instant::now());
        std::thread::sleep(left.min(Duration::from_millis(50)));
        if last.0.elapsed() >= Duration::from_millis(200) {
            let c = load.counts();
            let rate = (c.msgs - last.1) as f64 / last.0.elapsed().as_secs_f64();
            last = (Instant::now(), c.msgs);
            let ms = start.elapsed().min(total).as_millis() as u64;
            bar.update(ms, progress::status(phase, rate, c.errors()));
        }
    }
}

/// Makes the run.
pub fn run(spec: Spec) -> Result<Run, String> {
    let plan = spec.plan.clone();
    let bar = Progress::new(
        &spec.label,
        spec.connect_timeout.as_millis() as u64,
        spec.quiet,
    );
    let load = Load::start(plan.clone())?;

    load.wait_connected(spec.connect_timeout, &bar);
    let connected = load.counts().connected > 0;

    // Warm up.
    if connected && !spec.warmup.is_zero() {
        load.set_phase(Phase::Warmup);
        bar.phase(spec.warmup.as_millis() as u64);
        watch(
            &load,
            &bar,
            "warmup",
            Instant::now() + spec.warmup,
            spec.warmup,
        );
    }

    // Measure.
    let pid = spec.server_pid;
    let before = Mark::take(&load, pid);
    let mut perf_note = None;
    let perf = match (spec.perf, pid) {
        (true, Some(pid)) => match Perf::start(pid) {
            Ok(p) => Some(p),
            Err(e) => {
                perf_note = Some(e);
                None
            }
        },
        (true, None) => {
            perf_note = Some("no server process to count".into());
            None
        }
        _ => None,
    };
    if connected {
        load.set_phase(Phase::Measuring);
        match spec.measure {
            Measure::For(d) => {
                bar.phase(d.as_millis() as u64);
                watch(&load, &bar, "measuring", before.at + d, d);
            }
            Measure::Count(n) => {
                bar.phase(n);
                let mut last = (Instant::now(), load.counts().msgs);
                // Ends when every thread has its share echoed, or when nothing moves for the
                // drain timeout (a stalled server).
                while !load.all(|s| &s.measured) && last.0.elapsed() < spec.drain_timeout {
                    std::thread::sleep(Duration::from_millis(5));
                    let c = load.counts();
                    if c.msgs != last.1 {
                        last = (Instant::now(), c.msgs);
                    }
                    bar.update(c.measured, progress::status("measuring", 0.0, c.errors()));
                }
            }
        }
    }
    let after = Mark::take(&load, pid);
    let syscalls = perf.map(Perf::stop);
    let rss = pid.and_then(procfs::rss_bytes);

    // Drain, then collect.
    load.set_phase(Phase::Draining);
    let drain_until = Instant::now() + spec.drain_timeout;
    while !load.all(|s| &s.drained) && Instant::now() < drain_until {
        std::thread::sleep(Duration::from_millis(5));
    }
    let measured_until = load
        .shared()
        .measured_until
        .load(std::sync::atomic::Ordering::Acquire);
    let finished = load.finish();
    bar.finish();

    let (msgs, bytes, seconds) = match spec.measure {
        Measure::For(_) => (
            after.counts.msgs - before.counts.msgs,
            after.counts.bytes - before.counts.bytes,
            (after.at - before.at).as_secs_f64(),
        ),
        Measure::Count(_) => {
            let end = if measured_until > before.ns {
                measured_until
            } else {
                after.ns
            };
            let msgs = finished.counts.measured;
            (
                msgs,
                msgs * plan.size as u64,
                (end - before.ns) as f64 / 1e9,
            )
        }
    };
    let seconds = seconds.max(1e-9);
    let msgs_per_s = msgs as f64 / seconds;
    let h = &finished.latency;
    let us = |ns: u64| ns as f64 / 1000.0;
    let latency = if h.is_empty() {
        Latency::default()
    } else {
        Latency {
            p50: us(h.value_at_quantile(0.5)),
            p90: us(h.value_at_quantile(0.9)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
            mean: h.mean() / 1000.0,
            samples: h.len(),
        }
    };
    let c = &finished.counts;
    let errors = Errors::from(c);
    let delta = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?) as f64 / 1e9);
    let client_cpu = delta(before.client_cpu, after.client_cpu);
    let server_cpu = delta(before.server_cpu, after.server_cpu);
    // What the rest of the machine used meanwhile: busy time less this process and the server.
    let others = delta(before.machine_busy, after.machine_busy).and_then(|busy| {
        let ours = client_cpu? + if pid.is_some() { server_cpu? } else { 0.0 };
        Some(((busy - ours) / seconds * 100.0).max(0.0))
    });
    let server_stats = pid.map(|pid| {
        let cpu_s = server_cpu;
        let (syscalls, syscalls_per_msg, perf_note) = match syscalls {
            Some(Ok(s)) => {
                let per_msg = if s.seconds > 0.0 && msgs_per_s > 0.0 {
                    Some(s.count as f64 / s.seconds / msgs_per_s)
                } else {
                    None
                };
                (Some(s.count), per_msg, None)
            }
            Some(Err(e)) => (None, None, Some(e)),
            None => (None, None, perf_note.clone()),
        };
        ServerSide {
            pid,
            cpu_s,
            cpu_us_per_msg: cpu_s.filter(|_| msgs > 0).map(|s| s * 1e6 / msgs as f64),
            rss_bytes: rss,
            syscalls,
            syscalls_per_msg,
            perf_note,
        }
    });
    Ok(Run {
        server: spec.server,
        round: spec.round,
        perf_round: spec.perf_round,
        conns: plan.conns,
        size: plan.size,
        pipeline: plan.window,
        rate: plan.rate,
        connected: c.connected,
        seconds,
        msgs,
        bytes,
        msgs_per_s,
        mb_per_s: bytes as f64 / seconds / 1e6,
        latency_us: latency,
        errors,
        client: ClientSide {
            threads: plan.threads,
            cpus: plan.cpus.as_ref().map(ToString::to_string),
            cpu_s: client_cpu,
            cpu_percent: client_cpu.map(|s| s / seconds * 100.0),
        },
        server_stats,
        others_cpu_percent: others,
        behind: c.behind,
        notes: finished.notes,
    })
}
