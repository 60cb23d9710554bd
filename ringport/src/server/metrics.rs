//! Server metrics: counters per worker, totals, and Prometheus text.

use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::handler::CloseReason;

/// One worker's counters. Written only by the worker's thread (relaxed atomics), read by anyone.
#[derive(Debug, Default)]
pub(crate) struct WorkerCounters {
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub accept_aborted: AtomicU64,
    pub active: AtomicU64,
    pub closed: [AtomicU64; CloseReason::COUNT],
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub paused: AtomicU64,
    pub pushes_dropped: AtomicU64,
    pub pool_in_use: AtomicU64,
    pub pool_capacity: AtomicU64,
    pub buffered_bytes: AtomicU64,
}

impl WorkerCounters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn set(counter: &AtomicU64, n: u64) {
        counter.store(n, Relaxed);
    }

    fn snapshot(&self) -> WorkerMetrics {
        WorkerMetrics {
            accepted: self.accepted.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            accept_aborted: self.accept_aborted.load(Relaxed),
            active: self.active.load(Relaxed),
            closed: std::array::from_fn(|i| self.closed[i].load(Relaxed)),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            frames_in: self.frames_in.load(Relaxed),
            frames_out: self.frames_out.load(Relaxed),
            backpressure_pauses: self.paused.load(Relaxed),
            pushes_dropped: self.pushes_dropped.load(Relaxed),
            pool_in_use: self.pool_in_use.load(Relaxed),
            pool_capacity: self.pool_capacity.load(Relaxed),
            buffered_bytes: self.buffered_bytes.load(Relaxed),
        }
    }
}

/// The counters of one worker (or, in [`Metrics::total`], of all of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerMetrics {
    /// Connections accepted and served.
    pub accepted: u64,
    /// Connections accepted and closed at once because a limit (max connections) was reached.
    pub rejected: u64,
    /// Connections their peer reset while they waited to be accepted (never served; an
    /// ordinary event on a busy listener, not an accept failure).
    pub accept_aborted: u64,
    /// Connections open now.
    pub active: u64,
    /// Connections closed, by reason (index with [`CloseReason::index`]).
    pub closed: [u64; CloseReason::COUNT],
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Frames received and handed to the handler.
    pub frames_in: u64,
    /// Frames queued for sending.
    pub frames_out: u64,
    /// Times a connection stopped reading because its queued writes passed the high-water mark.
    pub backpressure_pauses: u64,
    /// Pushes and messages that found their connection gone or closing (never delivered to a
    /// newer connection in its slot).
    pub pushes_dropped: u64,
    /// Receive-pool buffers in use now.
    pub pool_in_use: u64,
    /// Receive-pool buffers in all.
    pub pool_capacity: u64,
    /// Bytes held in connections' reassembly and write buffers now.
    pub buffered_bytes: u64,
}

impl WorkerMetrics {
    /// Connections closed for `reason`.
    pub fn closed_by(&self, reason: CloseReason) -> u64 {
        self.closed[reason.index()]
    }

    /// Connections closed for any reason.
    pub fn closed_total(&self) -> u64 {
        self.closed.iter().sum()
    }

    fn add(&mut self, o: &WorkerMetrics) {
        self.accepted += o.accepted;
        self.rejected += o.rejected;
        self.accept_aborted += o.accept_aborted;
        self.active += o.active;
        for (a, b) in self.closed.iter_mut().zip(o.closed) {
            *a += b;
        }
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.frames_in += o.frames_in;
        self.frames_out += o.frames_out;
        self.backpressure_pauses += o.backpressure_pauses;
        self.pushes_dropped += o.pushes_dropped;
        self.pool_in_use += o.pool_in_use;
        self.pool_capacity += o.pool_capacity;
        self.buffered_bytes += o.buffered_bytes;
    }
}

/// A point-in-time copy of a server's counters: per worker and in total.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// One entry per worker, in worker order.
    pub workers: Vec<WorkerMetrics>,
}

impl Metrics {
    pub(crate) fn read(counters: &[Arc<WorkerCounters>]) -> Metrics {
        Metrics {
            workers: counters.iter().map(|c| c.snapshot()).collect(),
        }
    }

    /// The sum over all workers.
    pub fn total(&self) -> WorkerMetrics {
        let mut t = WorkerMetrics::default();
        for w in &self.workers {
            t.add(w);
        }
        t
    }

    /// The counters in the Prometheus text exposition format (version 0.0.4).
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let gauge =
            |out: &mut String, name: &str, help: &str, f: &dyn Fn(&WorkerMetrics) -> u64| {
                family(out, name, "gauge", help, &self.workers, f)
            };
        let counter =
            |out: &mut String, name: &str, help: &str, f: &dyn Fn(&WorkerMetrics) -> u64| {
                family(out, name, "counter", help, &self.workers, f)
            };
        counter(
            &mut out,
            "ringport_connections_accepted_total",
            "Connections accepted.",
            &|w| w.accepted,
        );
        counter(
            &mut out,
            "ringport_connections_rejected_total",
            "Connections refused by a limit.",
            &|w| w.rejected,
        );
        counter(
            &mut out,
            "ringport_connections_aborted_before_accept_total",
            "Connections reset by their peer before they were accepted.",
            &|w| w.accept_aborted,
        );
        gauge(
            &mut out,
            "ringport_connections_active",
            "Connections open now.",
            &|w| w.active,
        );
        let _ = writeln!(
            out,
            "# HELP ringport_connections_closed_total Connections closed, by reason."
        );
        let _ = writeln!(out, "# TYPE ringport_connections_closed_total counter");
        for (i, w) in self.workers.iter().enumerate() {
            for reason in CloseReason::ALL {
                let _ = writeln!(
                    out,
                    "ringport_connections_closed_total{{worker=\"{i}\",reason=\"{}\"}} {}",
                    reason.name(),
                    w.closed_by(reason)
                );
            }
        }
        counter(
            &mut out,
            "ringport_bytes_received_total",
            "Bytes received.",
            &|w| w.bytes_in,
        );
        counter(&mut out, "ringport_bytes_sent_total", "Bytes sent.", &|w| {
            w.bytes_out
        });
        counter(
            &mut out,
            "ringport_frames_received_total",
            "Frames received.",
            &|w| w.frames_in,
        );
        counter(
            &mut out,
            "ringport_frames_sent_total",
            "Frames queued for sending.",
            &|w| w.frames_out,
        );
        counter(
            &mut out,
            "ringport_backpressure_pauses_total",
            "Reads paused by queued writes.",
            &|w| w.backpressure_pauses,
        );
        counter(
            &mut out,
            "ringport_pushes_dropped_total",
            "Pushes that found their connection gone.",
            &|w| w.pushes_dropped,
        );
        gauge(
            &mut out,
            "ringport_pool_buffers_in_use",
            "Receive-pool buffers in use.",
            &|w| w.pool_in_use,
        );
        gauge(
            &mut out,
            "ringport_pool_buffers",
            "Receive-pool buffers.",
            &|w| w.pool_capacity,
        );
        gauge(
            &mut out,
            "ringport_buffered_bytes",
            "Bytes in reassembly and write buffers.",
            &|w| w.buffered_bytes,
        );
        out
    }
}

fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    workers: &[WorkerMetrics],
    f: &dyn Fn(&WorkerMetrics) -> u64,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (i, w) in workers.iter().enumerate() {
        let _ = writeln!(out, "{name}{{worker=\"{i}\"}} {}", f(w));
    }
}

impl fmt::Display for Metrics {
    /// The one-line summary the CLI prints; the closes are broken down by reason (those that
    /// happened), e.g. `3 closed (peer_closed 2, idle_timeout 1)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.total();
        write!(
            f,
            "conns {} active, {} accepted, {} rejected, {} reset before accept, {} closed",
            t.active,
            t.accepted,
            t.rejected,
            t.accept_aborted,
            t.closed_total(),
        )?;
        let mut sep = " (";
        for reason in CloseReason::ALL {
            let n = t.closed_by(reason);
            if n > 0 {
                write!(f, "{sep}{reason} {n}")?;
                sep = ", ";
            }
        }
        if sep == ", " {
            f.write_str(")")?;
        }
        if t.pushes_dropped > 0 {
            write!(f, "; {} pushes dropped", t.pushes_dropped)?;
        }
        write!(
            f,
            "; frames {} in / {} out; bytes {} in / {} out; pool {}/{}",
            t.frames_in, t.frames_out, t.bytes_in, t.bytes_out, t.pool_in_use, t.pool_capacity
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_workers_and_prometheus_lists_each() {
        let a = Arc::new(WorkerCounters::default());
        let b = Arc::new(WorkerCounters::default());
        WorkerCounters::add(&a.accepted, 3);
        WorkerCounters::add(&b.accepted, 4);
        WorkerCounters::add(&b.closed[CloseReason::IdleTimeout.index()], 2);
        let m = Metrics::read(&[a, b]);
        assert_eq!(m.total().accepted, 7);
        assert_eq!(m.total().closed_by(CloseReason::IdleTimeout), 2);
        let text = m.to_prometheus();
        assert!(text.contains("ringport_connections_accepted_total{worker=\"1\"} 4"));
        assert!(
            text.contains(
                "ringport_connections_closed_total{worker=\"1\",reason=\"idle_timeout\"} 2"
            )
        );
        assert!(
            text.lines()
                .all(|l| l.starts_with('#') || l.split(' ').count() == 2)
        );
        let line = m.to_string();
        assert!(
            line.contains("0 reset before accept, 2 closed (idle_timeout 2); frames"),
            "{line}"
        );
        assert!(Metrics::default().to_string().contains(" 0 closed; frames"));
    }
}
