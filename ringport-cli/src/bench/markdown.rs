//! `--markdown FILE`: the tables of a `--compare` run as Markdown, the way docs/BENCHMARKS.md
//! shows them (servers side by side, ratios to the baseline).

use std::fmt::Write as _;

use super::report::{self, Report, Stat, Summary};

fn servers(summary: &[Summary]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in summary {
        if !out.contains(&s.server) {
            out.push(s.server.clone());
        }
    }
    out
}

fn cells(summary: &[Summary]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for s in summary {
        if !out.contains(&(s.conns, s.size)) {
            out.push((s.conns, s.size));
        }
    }
    out
}

/// What a table shows of a summary.
type Pick<T> = dyn Fn(&Summary) -> Option<T>;

/// One table: a row per cell, a column per server, then ratios to the baseline.
fn table(
    out: &mut String,
    summary: &[Summary],
    value: &Pick<f64>,
    fmt: &dyn Fn(f64) -> String,
    ratio: Option<&Pick<f64>>,
    spread: Option<&Pick<Stat>>,
) {
    let servers = servers(summary);
    let base = summary
        .iter()
        .find_map(|s| s.vs_baseline.as_ref().map(|r| r.baseline.clone()));
    let others: Vec<&String> = servers
        .iter()
        .filter(|s| Some(*s) != base.as_ref())
        .collect();
    let _ = write!(out, "| conns | size |");
    for s in &servers {
        let _ = write!(out, " {s} |");
    }
    if let (Some(b), Some(_)) = (&base, ratio) {
        for s in &others {
            let _ = write!(out, " {s} ÷ {b} |");
        }
    }
    out.push('\n');
    let columns = 2
        + servers.len()
        + if base.is_some() && ratio.is_some() {
            others.len()
        } else {
            0
        };
    out.push_str(&"|---".repeat(columns));
    out.push_str("|\n");
    for (conns, size) in cells(summary) {
        let _ = write!(out, "| {conns} | {size} B |");
        let find = |server: &str| {
            summary
                .iter()
                .find(|s| s.server == server && s.conns == conns && s.size == size)
        };
        for server in &servers {
            let cell = find(server).and_then(|s| {
                let v = fmt(value(s)?);
                Some(
                    match spread.and_then(|f| f(s)).filter(|st| st.spread() > 0.0) {
                        Some(st) => format!("{v} (±{:.0}%)", st.spread() * 50.0),
                        None => v,
                    },
                )
            });
            let _ = write!(out, " {} |", cell.unwrap_or_else(|| "–".into()));
        }
        if let (Some(_), Some(ratio)) = (&base, ratio) {
            for server in &others {
                let r = find(server).and_then(ratio);
                let _ = write!(out, " {} |", r.map_or("–".into(), |r| format!("{r:.2}×")));
            }
        }
        out.push('\n');
    }
    out.push('\n');
}

/// The section's tables and how they were made.
pub fn section(report: &Report) -> String {
    let mut out = String::new();
    let s = &report.settings;
    let m = &report.machine;
    let _ = writeln!(
        out,
        "Made by `{}` on {} CPUs ({} {}{}). Servers on CPUs {} ({} workers), load on CPUs {} \
         ({} client threads). Each run: {:.1} s warmup, then {}{}. {} rounds, interleaved cell \
         by cell (the servers' order rotates); medians, with ±half the max–min spread of the \
         rounds.\n",
        report.command,
        m.cpus,
        m.os,
        m.arch,
        m.kernel
            .as_deref()
            .map_or(String::new(), |k| format!(", kernel {k}")),
        s.server_cpus.as_deref().unwrap_or("any"),
        s.server_workers.map_or("?".into(), |w| w.to_string()),
        s.client_cpus.as_deref().unwrap_or("any"),
        s.client_threads,
        s.warmup_s,
        s.duration_s
            .map(|d| format!("{d:.1} s measured"))
            .or(s.count.map(|n| format!("{n} messages measured")))
            .unwrap_or_default(),
        s.rate.map_or(", closed loop".into(), |r| format!(
            " at a fixed offered load of {} messages/s (latency from each message's intended \
             send time)",
            report::grouped(r)
        )),
        s.repeat,
    );
    let timed: Vec<f64> = report
        .runs
        .iter()
        .filter(|r| !r.perf_round)
        .filter_map(|r| r.others_cpu_percent)
        .collect();
    if let Some(noise) = Stat::of(timed) {
        let _ = writeln!(
            out,
            "Noise: other processes used {:.0}% of one CPU during the median measured window \
             ({:.0}–{:.0}% over the runs).\n",
            noise.median, noise.min, noise.max
        );
    }
    let sum = &report.summary;
    let ratio_thr: &Pick<f64> = &|s| s.vs_baseline.as_ref().and_then(|r| r.msgs_per_s);
    let ratio_cpu: &Pick<f64> = &|s| s.vs_baseline.as_ref().and_then(|r| r.cpu_us_per_msg);
    if !sum.is_empty() {
        out.push_str("**Throughput** (echoed messages/s):\n\n");
        table(
            &mut out,
            sum,
            &|s| s.msgs_per_s.map(|m| m.median),
            &report::grouped,
            Some(ratio_thr),
            Some(&|s| s.msgs_per_s),
        );
        out.push_str("**Server CPU per echo** (µs of server CPU time per echoed message):\n\n");
        table(
            &mut out,
            sum,
            &|s| s.cpu_us_per_msg.map(|m| m.median),
            &|v| format!("{v:.2}"),
            Some(ratio_cpu),
            Some(&|s| s.cpu_us_per_msg),
        );
        out.push_str("**p99 latency** (µs):\n\n");
        table(
            &mut out,
            sum,
            &|s| s.p99_us.map(|m| m.median),
            &|v| format!("{v:.0}"),
            None,
            None,
        );
        if sum.iter().any(|s| s.syscalls_per_msg.is_some()) {
            out.push_str(
                "**Syscalls per echo** (server side, `perf stat -e raw_syscalls:sys_enter`, own \
                 round):\n\n",
            );
            table(
                &mut out,
                sum,
                &|s| s.syscalls_per_msg,
                &|v| format!("{v:.3}"),
                None,
                None,
            );
        }
    }
    if !report.idle_summary.is_empty() {
        let n = report.idle_summary[0].conns;
        let _ = writeln!(
            out,
            "**Server memory per idle connection** ({n} connections opened and left silent; \
             growth of the server's RSS over the count):\n"
        );
        out.push_str("| server | bytes per idle connection | rounds (min–max) |\n|---|---|---|\n");
        for i in &report.idle_summary {
            let (median, range) = i.bytes_per_conn.map_or(("–".into(), "–".into()), |b| {
                (
                    format!("{:.0}", b.median),
                    format!("{:.0}–{:.0}", b.min, b.max),
                )
            });
            let _ = writeln!(out, "| {} | {median} | {range} |", i.server);
        }
        out.push('\n');
    }
    out
}
