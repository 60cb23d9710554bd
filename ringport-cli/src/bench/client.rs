//! One client thread: a [`Port`] driving its share of the connections — connect, a multishot
//! receive per connection, a send per message — and checking every echoed byte.
//!
//! Closed loop: a connection keeps `window` messages in flight and sends the next when an echo
//! completes. Fixed rate: the thread's messages are due at fixed intervals, round robin over its
//! connections; each is sent when due (or when its connection's window opens) and its latency
//! counts from when it was due, so a slow server is not excused by the client waiting
//! (no coordinated omission).

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hdrhistogram::Histogram;
use ringport::{Buf, Completion, Completions, Outcome, Port, Poster, op};

use super::conn::{Conn, Stamp, State};
use super::load::{Counts, Phase, Plan, Shared, ThreadEnd, histogram};
use super::{pattern, sockets};

/// Connects in flight per thread at most (so a listen backlog is not overrun).
const CONNECTS_IN_FLIGHT: usize = 256;
/// Send buffers kept for reuse.
const FREE_BUFS: usize = 4096;
/// Fixed rate: messages a connection may fall behind its schedule before more are dropped
/// from the schedule (and counted as `behind`).
const MAX_DUE: usize = 1 << 16;
/// How long a thread waits for completions before looking at the phase again (the coordinator
/// also wakes it when the phase changes).
const POLL: Duration = Duration::from_millis(100);

/// Completion kinds, in the token's low bits; the connection's index above them.
const CONNECT: u64 = 1;
const RECV: u64 = 2;
const SEND: u64 = 3;
const CLOSE: u64 = 4;

fn token(index: usize, kind: u64) -> u64 {
    (index as u64) << 3 | kind
}

/// One client thread.
pub struct Client {
    index: usize,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    port: Port,
    conns: Vec<Conn>,
    next_connect: usize,
    connecting: usize,
    /// Connects finished (established or failed).
    resolved: usize,
    /// Messages outstanding over the open connections.
    outstanding: u64,
    /// `--count`: measured messages still to send over the open connections.
    quota_left: u64,
    free: Vec<Buf>,
    starved: Vec<usize>,
    latency: Histogram<u64>,
    counts: Counts,
    phase: Phase,
    /// Fixed rate: when the next message is due, the interval, the next connection.
    next_due: u64,
    interval: u64,
    turn: usize,
    reported_ready: bool,
    reported_measured: bool,
    reported_drained: bool,
}

impl Client {
    /// Thread `index`'s client: its port and its connections (every `threads`-th one).
    pub fn new(index: usize, plan: Arc<Plan>, shared: Arc<Shared>) -> Result<Client, String> {
        let ids: Vec<u64> = (index..plan.conns)
            .step_by(plan.threads)
            .map(|i| i as u64)
            .collect();
        let pool = (ids.len() * 2).next_power_of_two().clamp(256, 4096);
        let port = Port::builder()
            .backend(plan.backend)
            .queue_depth(4096)
            .pool(16 << 10, pool)
            .build()
            .map_err(|e| format!("cannot create the client's port: {e}"))?;
        // `--count`: messages shared out over the connections, the first ones one more.
        let quota = |id: u64| {
            plan.count.map(|n| {
                let conns = plan.conns as u64;
                n / conns + u64::from(id < n % conns)
            })
        };
        let conns: Vec<Conn> = ids.iter().map(|&id| Conn::new(id, quota(id))).collect();
        let interval = plan.rate.map_or(0, |rate| {
            let share = rate * conns.len() as f64 / plan.conns as f64;
            ((1e9 / share) as u64).max(1)
        });
        let quota_left = conns.iter().filter_map(|c| c.quota).sum();
        Ok(Client {
            index,
            plan,
            shared,
            port,
            conns,
            next_connect: 0,
            connecting: 0,
            resolved: 0,
            outstanding: 0,
            quota_left,
            free: Vec::new(),
            starved: Vec::new(),
            latency: histogram(),
            counts: Counts::default(),
            phase: Phase::Connecting,
            next_due: 0,
            interval,
            turn: 0,
            reported_ready: false,
            reported_measured: false,
            reported_drained: false,
        })
    }

    /// A handle to wake this thread.
    pub fn poster(&self) -> Poster {
        self.port.poster()
    }

    /// Runs until the coordinator says done (or, draining, nothing is outstanding).
    pub fn run(mut self) -> ThreadEnd {
        let mut batch = Completions::with_capacity(1024);
        loop {
            let phase = self.shared.phase();
            if phase != self.phase {
                self.enter(phase);
            }
            if phase == Phase::Done {
                break;
            }
            self.connect_more();
            if phase.sending() && self.plan.rate.is_some() {
                self.schedule(self.shared.now());
            }
            self.report();
            if phase == Phase::Draining && self.reported_drained {
                break;
            }
            if let Err(e) = self.port.wait(&mut batch, Some(self.wait_for())) {
                self.shared.note(format!("a client port failed: {e}"));
                self.counts.other += 1;
                break;
            }
            let now = self.shared.now();
            for c in batch.drain() {
                self.handle(c, now);
            }
            for i in std::mem::take(&mut self.starved) {
                self.arm_recv(i);
            }
            self.flush_counts();
        }
        self.end()
    }

    fn enter(&mut self, phase: Phase) {
        let was = self.phase;
        self.phase = phase;
        if phase.sending() && !was.sending() && !self.plan.idle {
            let now = self.shared.now();
            if self.plan.rate.is_some() {
                // Threads start their schedules a fraction of an interval apart.
                let threads = self.plan.threads.max(1) as u64;
                self.next_due = now + self.interval * self.index as u64 / threads;
            }
            for i in 0..self.conns.len() {
                self.try_send(i, now);
            }
        }
    }

    /// How long the next wait may take: until the next message is due, at a fixed rate.
    fn wait_for(&self) -> Duration {
        if self.phase.sending() && self.plan.rate.is_some() && !self.plan.idle {
            let now = self.shared.now();
            return Duration::from_nanos(self.next_due.saturating_sub(now)).min(POLL);
        }
        POLL
    }

    /// Starts connects, keeping at most [`CONNECTS_IN_FLIGHT`] in flight.
    fn connect_more(&mut self) {
        while self.connecting < CONNECTS_IN_FLIGHT && self.next_connect < self.conns.len() {
            let i = self.next_connect;
            self.next_connect += 1;
            let id = self.conns[i].id;
            let started =
                sockets::socket_for(self.plan.addr, &self.plan.sources, id).and_then(|sock| {
                    let connect = op::Connect::with_socket(sock, self.plan.addr);
                    self.port.submit(connect, token(i, CONNECT))
                });
            match started {
                Ok(_) => {
                    self.conns[i].state = State::Connecting;
                    self.connecting += 1;
                }
                Err(e) => self.connect_failed(i, &e),
            }
        }
    }

    fn connect_failed(&mut self, i: usize, e: &io::Error) {
        self.conns[i].state = State::Closed;
        self.resolved += 1;
        self.quota_left -= self.conns[i].quota.unwrap_or(0);
        self.counts.connect_failures += 1;
        self.shared
            .note(sockets::explain_connect_error(self.plan.addr, e));
    }

    /// Fixed rate: puts every message due by `now` on its connection and sends what it can.
    fn schedule(&mut self, now: u64) {
        if self.conns.is_empty() || self.plan.idle {
            return;
        }
        while self.next_due <= now {
            let i = self.turn;
            self.turn = (self.turn + 1) % self.conns.len();
            let conn = &mut self.conns[i];
            if conn.state == State::Open && conn.quota != Some(0) {
                if conn.due.len() < MAX_DUE {
                    conn.due.push_back(self.next_due);
                } else {
                    self.counts.behind += 1;
                }
            }
            self.next_due += self.interval;
            self.try_send(i, now);
        }
    }

    /// Sends connection `i`'s next messages while its window and the phase allow.
    fn try_send(&mut self, i: usize, now: u64) {
        let phase = self.phase;
        if !phase.sending() || self.plan.idle {
            return;
        }
        let size = self.plan.size;
        let rate = self.plan.rate.is_some();
        loop {
            let conn = &mut self.conns[i];
            if conn.state != State::Open || conn.outstanding() >= self.plan.window as u64 {
                return;
            }
            let measured = phase == Phase::Measuring;
            if measured && conn.quota == Some(0) {
                return;
            }
            let at = if rate {
                match conn.due.pop_front() {
                    Some(at) => at,
                    None => return,
                }
            } else {
                now
            };
            if measured && let Some(q) = conn.quota.as_mut() {
                *q -= 1;
                self.quota_left -= 1;
            }
            let mut buf = self
                .free
                .pop()
                .unwrap_or_else(|| Buf::from(vec![0u8; size]));
            pattern::fill(pattern::key(conn.id, conn.sent), 0, &mut buf);
            let stream = conn
                .stream
                .as_ref()
                .expect("an open connection has its stream");
            match self.port.submit(op::Send::new(stream, buf), token(i, SEND)) {
                Ok(_) => {
                    conn.sent += 1;
                    conn.stamps.push_back(Stamp { at, measured });
                    self.outstanding += 1;
                }
                Err(e) => {
                    self.counts.other += 1;
                    self.shared.note(format!("cannot submit a send: {e}"));
                    self.close(i);
                    return;
                }
            }
        }
    }

    fn handle(&mut self, c: Completion, now: u64) {
        if matches!(c.outcome, Outcome::Posted(_)) {
            return; // a wake-up: the phase changed
        }
        let i = (c.token >> 3) as usize;
        match c.token & 7 {
            CONNECT => {
                if let Outcome::Connect(result) = c.outcome {
                    self.on_connect(i, result, now);
                }
            }
            RECV => {
                if let Outcome::RecvMulti { result, buf } = c.outcome {
                    self.on_recv(i, c.more, result, buf, now);
                }
            }
            SEND => {
                if let Outcome::Send { result, buf } = c.outcome {
                    self.on_sent(i, result, buf);
                }
            }
            _ => {} // CLOSE: nothing to do
        }
    }

    fn on_connect(&mut self, i: usize, result: io::Result<std::net::TcpStream>, now: u64) {
        self.connecting -= 1;
        match result {
            Ok(stream) => {
                self.resolved += 1;
                self.counts.connected += 1;
                let conn = &mut self.conns[i];
                conn.stream = Some(stream);
                conn.state = State::Open;
                self.arm_recv(i);
                self.try_send(i, now);
            }
            Err(e) => self.connect_failed(i, &e),
        }
    }

    fn arm_recv(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        if conn.state != State::Open || conn.receiving {
            return;
        }
        let stream = conn
            .stream
            .as_ref()
            .expect("an open connection has its stream");
        match self.port.submit(op::RecvMulti::new(stream), token(i, RECV)) {
            Ok(_) => conn.receiving = true,
            Err(e) => {
                self.counts.other += 1;
                self.shared.note(format!("cannot submit a receive: {e}"));
                self.close(i);
            }
        }
    }

    fn on_recv(
        &mut self,
        i: usize,
        more: bool,
        result: io::Result<usize>,
        buf: Option<Buf>,
        now: u64,
    ) {
        let conn = &mut self.conns[i];
        if !more {
            conn.receiving = false;
        }
        if conn.state != State::Open {
            return; // closing: what still arrives does not matter
        }
        match (result, buf) {
            (Ok(n), Some(buf)) if n > 0 => {
                let record_all = self.phase == Phase::Measuring && self.plan.count.is_none();
                let Client {
                    latency, counts, ..
                } = self;
                let before = conn.echoed;
                let checked = conn.check(&buf, self.plan.size, |stamp| {
                    if record_all || (stamp.measured && self.plan.count.is_some()) {
                        latency.saturating_record(now.saturating_sub(stamp.at).max(1));
                        counts.measured += u64::from(stamp.measured);
                    }
                });
                let completed = conn.echoed - before;
                self.outstanding -= completed;
                self.counts.msgs += completed;
                self.counts.bytes += n as u64;
                if checked.mismatched > 0 {
                    self.counts.mismatches += checked.mismatched;
                    let id = self.conns[i].id;
                    self.shared.note(format!(
                        "echoed bytes differ from what was sent (first on connection {id})"
                    ));
                }
                if checked.extra {
                    self.counts.mismatches += 1;
                    self.shared
                        .note("the server sent back more bytes than were sent".into());
                    self.close(i);
                    return;
                }
                if !more {
                    self.arm_recv(i);
                }
                self.try_send(i, now);
            }
            (Ok(_), _) => {
                // End of stream: the server closed the connection.
                let missing = conn.missing_bytes(self.plan.size);
                if missing > 0 {
                    self.counts.short_echoes += 1;
                    self.shared.note(format!(
                        "the server closed a connection with {missing} bytes not echoed"
                    ));
                } else if self.phase < Phase::Draining {
                    self.counts.other += 1;
                    self.shared
                        .note("the server closed a connection during the run".into());
                }
                self.close(i);
            }
            (Err(e), _) if ringport::is_cancelled(&e) => {}
            (Err(e), _) if ringport::is_out_of_buffers(&e) => self.starved.push(i),
            (Err(e), _) => self.failed(i, &e, "receiving"),
        }
    }

    fn on_sent(&mut self, i: usize, result: io::Result<usize>, buf: Buf) {
        match result {
            Ok(n) if n == buf.len() => {
                if self.free.len() < FREE_BUFS {
                    self.free.push(buf);
                }
            }
            Ok(n) => {
                if self.conns[i].state == State::Open {
                    let e = io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        format!("the connection broke after {n} of {} bytes", buf.len()),
                    );
                    self.failed(i, &e, "sending");
                }
            }
            Err(e) if ringport::is_cancelled(&e) => {}
            Err(e) => {
                if self.conns[i].state == State::Open {
                    self.failed(i, &e, "sending");
                }
            }
        }
    }

    /// Counts an error on connection `i` (a reset, or another) and closes it.
    fn failed(&mut self, i: usize, e: &io::Error, doing: &str) {
        match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => {
                self.counts.resets += 1;
                self.shared
                    .note(format!("the server reset a connection ({doing}): {e}"));
            }
            _ => {
                self.counts.other += 1;
                self.shared.note(format!("error {doing}: {e}"));
            }
        }
        self.close(i);
    }

    /// Closes connection `i` through the port (which cancels its receive and sends first).
    fn close(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        if conn.state == State::Closed {
            return;
        }
        conn.state = State::Closed;
        self.outstanding -= conn.outstanding();
        self.quota_left -= conn.quota.unwrap_or(0);
        if let Some(stream) = conn.stream.take() {
            let _ = self.port.submit(op::Close::new(stream), token(i, CLOSE));
        }
    }

    /// Tells the coordinator what it waits for: connects done, `--count` share done, drained.
    fn report(&mut self) {
        let shared = &self.shared;
        let all_resolved = self.resolved == self.conns.len();
        if !self.reported_ready && all_resolved {
            self.reported_ready = true;
            shared.ready.fetch_add(1, Ordering::AcqRel);
        }
        let quiet = all_resolved && self.outstanding == 0;
        if !self.reported_measured
            && self.phase == Phase::Measuring
            && quiet
            && self.quota_left == 0
            && self.plan.count.is_some()
        {
            self.reported_measured = true;
            shared
                .measured_until
                .fetch_max(shared.now(), Ordering::AcqRel);
            shared.measured.fetch_add(1, Ordering::AcqRel);
        }
        if !self.reported_drained && self.phase == Phase::Draining && quiet {
            self.reported_drained = true;
            shared.drained.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn flush_counts(&mut self) {
        if self.counts != Counts::default() {
            self.shared.tally.add(&self.counts);
            self.counts = Counts::default();
        }
    }

    /// Counts echoes that never came back, closes everything, hands back the latencies.
    fn end(mut self) -> ThreadEnd {
        let size = self.plan.size;
        let mut short = 0;
        let mut missing = 0;
        for conn in &self.conns {
            if conn.state == State::Open && conn.missing_bytes(size) > 0 {
                short += 1;
                missing += conn.missing_bytes(size);
            }
        }
        if short > 0 {
            self.counts.short_echoes += short;
            self.shared.note(format!(
                "{missing} bytes on {short} connections were never echoed back"
            ));
        }
        let unresolved = self.conns.len() - self.resolved;
        if unresolved > 0 {
            self.counts.connect_failures += unresolved as u64;
            self.shared.note(format!(
                "{unresolved} connects had not finished when the run ended"
            ));
        }
        self.flush_counts();
        // The port goes first: dropping it cancels and waits for every operation still on a
        // socket, and only then are the sockets closed.
        let Client {
            port,
            conns,
            latency,
            ..
        } = self;
        drop(port);
        drop(conns);
        ThreadEnd { latency }
    }
}
