//! The load: client threads, each with its own [`Port`](ringport::Port) and its share of the
//! connections, moved together through the phases of a run by one coordinating thread.
//!
//! Phases: connecting → warmup → measuring → draining (no new messages; outstanding echoes
//! come back) → done. The coordinator changes the phase and posts a wake-up to every thread's
//! port; threads report back through counters (ready, measured, drained) and tallies.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ringport::{BackendChoice, Poster};

use super::client::Client;
use super::progress::Progress;
use crate::cpus::{self, CpuList};

/// What the load does; the same for every thread.
#[derive(Clone, Debug)]
pub struct Plan {
    pub addr: SocketAddr,
    pub conns: usize,
    /// Message size in bytes.
    pub size: usize,
    /// Messages in flight per connection at most.
    pub window: usize,
    /// Offered load in messages per second over all connections (`None`: closed loop).
    pub rate: Option<f64>,
    /// Measured messages in all (`None`: measure for a duration).
    pub count: Option<u64>,
    /// Connect and hold: send nothing.
    pub idle: bool,
    /// Source addresses to bind to, in turn (empty: the kernel chooses).
    pub sources: Vec<IpAddr>,
    pub threads: usize,
    /// CPUs to pin the threads to, in turn.
    pub cpus: Option<CpuList>,
    /// The clients' own backend.
    pub backend: BackendChoice,
}

/// A phase of the run.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    Connecting = 0,
    Warmup = 1,
    Measuring = 2,
    Draining = 3,
    Done = 4,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            0 => Phase::Connecting,
            1 => Phase::Warmup,
            2 => Phase::Measuring,
            3 => Phase::Draining,
            _ => Phase::Done,
        }
    }

    /// Whether messages are sent in this phase.
    pub fn sending(self) -> bool {
        matches!(self, Phase::Warmup | Phase::Measuring)
    }
}

/// Running totals of every thread (relaxed atomics, added to once per batch).
#[derive(Default)]
pub struct Tally {
    pub connected: AtomicU64,
    pub msgs: AtomicU64,
    pub bytes: AtomicU64,
    pub measured: AtomicU64,
    pub mismatches: AtomicU64,
    pub short_echoes: AtomicU64,
    pub resets: AtomicU64,
    pub connect_failures: AtomicU64,
    pub other: AtomicU64,
    pub behind: AtomicU64,
}

/// A copy of the tallies.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Connections established.
    pub connected: u64,
    /// Messages echoed whole.
    pub msgs: u64,
    /// Bytes echoed.
    pub bytes: u64,
    /// Measured messages echoed whole (`--count`).
    pub measured: u64,
    /// Messages that came back different from what was sent (and streams out of step).
    pub mismatches: u64,
    /// Connections that ended with bytes never echoed.
    pub short_echoes: u64,
    /// Connections reset (or broken while sending).
    pub resets: u64,
    pub connect_failures: u64,
    /// Other errors: the server closing a connection, a failed submit.
    pub other: u64,
    /// Fixed rate: messages the client could not even schedule (it fell too far behind).
    pub behind: u64,
}

impl Counts {
    /// Every kind of error.
    pub fn errors(&self) -> u64 {
        self.mismatches + self.short_echoes + self.resets + self.connect_failures + self.other
    }
}

impl Tally {
    pub fn read(&self) -> Counts {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counts {
            connected: r(&self.connected),
            msgs: r(&self.msgs),
            bytes: r(&self.bytes),
            measured: r(&self.measured),
            mismatches: r(&self.mismatches),
            short_echoes: r(&self.short_echoes),
            resets: r(&self.resets),
            connect_failures: r(&self.connect_failures),
            other: r(&self.other),
            behind: r(&self.behind),
        }
    }

    pub fn add(&self, c: &Counts) {
        let pairs = [
            (&self.connected, c.connected),
            (&self.msgs, c.msgs),
            (&self.bytes, c.bytes),
            (&self.measured, c.measured),
            (&self.mismatches, c.mismatches),
            (&self.short_echoes, c.short_echoes),
            (&self.resets, c.resets),
            (&self.connect_failures, c.connect_failures),
            (&self.other, c.other),
            (&self.behind, c.behind),
        ];
        for (a, n) in pairs {
            if n > 0 {
                a.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

/// What the threads share with the coordinator.
pub struct Shared {
    phase: AtomicU8,
    /// Threads whose connects have all finished (connected or failed).
    pub ready: AtomicUsize,
    /// Threads that sent their whole `--count` share and got every echo back.
    pub measured: AtomicUsize,
    /// Threads with nothing outstanding after the sending stopped.
    pub drained: AtomicUsize,
    /// When the last measured echo came back (ns since `epoch`), for `--count`.
    pub measured_until: AtomicU64,
    pub tally: Tally,
    notes: Mutex<Vec<String>>,
    /// The zero of every time stamp.
    pub epoch: Instant,
}

/// The most distinct error messages kept for the report.
const MAX_NOTES: usize = 8;

impl Shared {
    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Acquire))
    }

    /// Nanoseconds since the epoch.
    pub fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Keeps an error message for the report (the first few distinct ones).
    pub fn note(&self, msg: String) {
        let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        if notes.len() < MAX_NOTES && !notes.contains(&msg) {
            notes.push(msg);
        }
    }
}

/// What a thread hands back at the end.
pub struct ThreadEnd {
    /// Latency of measured messages, in ns.
    pub latency: Histogram<u64>,
}

/// What the whole load hands back at the end.
pub struct Finished {
    pub latency: Histogram<u64>,
    pub counts: Counts,
    pub notes: Vec<String>,
}

/// A new latency histogram: 1 ns to 10 minutes, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid histogram bounds")
}

/// The running load.
pub struct Load {
    conns: usize,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<ThreadEnd>>,
    posters: Vec<Poster>,
}

impl Load {
    /// Starts the threads; they begin connecting at once.
    pub fn start(plan: Plan) -> Result<Load, String> {
        let shared = Arc::new(Shared {
            phase: AtomicU8::new(Phase::Connecting as u8),
            ready: AtomicUsize::new(0),
            measured: AtomicUsize::new(0),
            drained: AtomicUsize::new(0),
            measured_until: AtomicU64::new(0),
            tally: Tally::default(),
            notes: Mutex::new(Vec::new()),
            epoch: Instant::now(),
        });
        let plan = Arc::new(plan);
        let mut load = Load {
            conns: plan.conns,
            shared: shared.clone(),
            threads: Vec::new(),
            posters: Vec::new(),
        };
        for index in 0..plan.threads {
            let (tx, rx) = mpsc::channel::<Result<Poster, String>>();
            let plan = plan.clone();
            let shared = shared.clone();
            let thread = std::thread::Builder::new()
                .name(format!("bench-client-{index}"))
                .spawn(move || {
                    if let Some(list) = &plan.cpus
                        && let Err(e) = cpus::pin_current(list.nth(index))
                    {
                        shared.note(e);
                    }
                    match Client::new(index, plan, shared) {
                        Ok(client) => {
                            let _ = tx.send(Ok(client.poster()));
                            client.run()
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            ThreadEnd {
                                latency: histogram(),
                            }
                        }
                    }
                })
                .map_err(|e| format!("cannot start a client thread: {e}"))?;
            load.threads.push(thread);
            match rx.recv() {
                Ok(Ok(poster)) => load.posters.push(poster),
                Ok(Err(e)) => {
                    load.abort();
                    return Err(e);
                }
                Err(_) => {
                    load.abort();
                    return Err("a client thread died while starting".into());
                }
            }
        }
        Ok(load)
    }

    /// What the threads share.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Moves every thread to `phase`, waking them.
    pub fn set_phase(&self, phase: Phase) {
        self.shared.phase.store(phase as u8, Ordering::Release);
        for p in &self.posters {
            let _ = p.post(0, 0);
        }
    }

    /// Waits until every connect has finished, or `timeout`, showing the count on `bar`.
    pub fn wait_connected(&self, timeout: Duration, bar: &Progress) {
        let deadline = Instant::now() + timeout;
        while !self.all(|s| &s.ready) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            let c = self.counts();
            bar.update(
                c.connected,
                format!(
                    "connecting: {}/{} ({} failed)",
                    c.connected, self.conns, c.connect_failures
                ),
            );
        }
    }

    /// The tallies now.
    pub fn counts(&self) -> Counts {
        self.shared.tally.read()
    }

    /// Whether every thread's counter `f` has come in.
    pub fn all(&self, f: impl Fn(&Shared) -> &AtomicUsize) -> bool {
        f(&self.shared).load(Ordering::Acquire) >= self.threads.len()
    }

    /// Ends the run (threads still waiting for echoes count them as short) and collects.
    pub fn finish(mut self) -> Finished {
        self.set_phase(Phase::Done);
        let mut latency = histogram();
        for t in self.threads.drain(..) {
            match t.join() {
                Ok(end) => {
                    let _ = latency.add(&end.latency);
                }
                Err(_) => {
                    self.shared.tally.other.fetch_add(1, Ordering::Relaxed);
                    self.shared.note("a client thread panicked".into());
                }
            }
        }
        let notes = self
            .shared
            .notes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Finished {
            latency,
            counts: self.shared.tally.read(),
            notes,
        }
    }

    fn abort(&mut self) {
        self.set_phase(Phase::Done);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.abort();
    }
}
