//! [`Worker`]: one thread, one [`Port`], many connections — the tutorials' worker thread.
//!
//! The loop is: wait for a batch of completions, dispatch each to its connection (or to the
//! accept, timer, mailbox or stop handling), then, once per batch, flush every connection that
//! queued output (so writes from many frames coalesce into one send) and re-arm the timer.
//!
//! A connection moves through: reading (a multishot receive armed) → optionally paused
//! (backpressure, pool dry) → ending (a reason decided; reading stops, queued writes flush
//! unless aborting) → closing (`op::Close` submitted, `on_close` called) → removed (once its
//! receive and send have delivered their final completions).

use std::io;
use std::mem;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slab::Slab;

use super::codec::{Codec, FrameError};
use super::conn::{Conn, Io, KEEP_CAPACITY};
use super::handler::{CloseReason, ConnId, Ctx, Ending, Handler};
use super::limits::{Budget, Held, Limits};
use super::metrics::WorkerCounters;
use super::reassembly::Reassembly;
use super::timers::{Due, Timers, tick_for, ticks_in};
use super::warn_limit::{WarnLimit, warn_limited};
use super::{ConnInfo, Shared};
use crate::buf::Buf;
use crate::op;
use crate::port::{Completion, Completions, OpId, Outcome, Port, is_accept_aborted};

const ACCEPT: u64 = u64::MAX;
const TIMER: u64 = u64::MAX - 1;
pub(crate) const MAILBOX: u64 = u64::MAX - 2;
pub(crate) const STOP: u64 = u64::MAX - 3;
const CLOSED: u64 = u64::MAX - 4;

/// Pool buffers one armed receive may fill before it must be re-armed (its byte cap).
const READ_AHEAD_BUFS: usize = 4;
/// Io boxes kept for reuse per worker.
const RECYCLE_MAX: usize = 1024;
/// How long accepting pauses after an accept error such as `EMFILE`, so it does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

fn conn_token(key: u32, generation: u32) -> u64 {
    u64::from(generation) << 32 | u64::from(key)
}

/// What a handler's [`Ctx`] reaches of its worker.
pub(crate) struct Env {
    pub codec: Arc<dyn Codec>,
    pub limits: Limits,
    pub budget: Held,
    pub timers: Timers,
    pub counters: Arc<WorkerCounters>,
    /// Connections with output queued since the last flush.
    pub dirty: Vec<u32>,
    /// Boxed on purpose: connections hold `Option<Box<Io>>` (8 bytes while idle), and moving a
    /// box between a connection and this list allocates nothing.
    #[allow(clippy::vec_box)]
    recycle: Vec<Box<Io>>,
}

impl Env {
    /// An empty `Io`, reused if one is at hand.
    pub fn take_io(&mut self) -> Box<Io> {
        self.recycle.pop().unwrap_or_default()
    }

    fn give_io(&mut self, mut io: Box<Io>) {
        if io.reset() && self.recycle.len() < RECYCLE_MAX {
            self.recycle.push(io);
        }
    }

    /// A frame was queued on connection `key`: count it and put the connection on the flush list.
    pub fn wrote(&mut self, key: u32, io: &mut Io, _bytes: usize) {
        WorkerCounters::add(&self.counters.frames_out, 1);
        if !io.dirty {
            io.dirty = true;
            self.dirty.push(key);
        }
    }
}

/// Runs `f` on `conn`'s handler with a [`Ctx`] for it (unless its socket is already closed).
fn call_handler<H>(
    worker: u16,
    key: u32,
    conn: &mut Conn<H>,
    env: &mut Env,
    f: impl FnOnce(&mut H, &mut Ctx<'_>),
) {
    let Some(stream) = conn.stream.as_ref() else {
        return;
    };
    let mut cx = Ctx {
        id: ConnId {
            worker,
            key,
            generation: conn.generation,
        },
        stream,
        io: &mut conn.io,
        ending: &mut conn.ending,
        env,
    };
    f(&mut conn.handler, &mut cx);
}

/// Where a worker gets its connections from.
pub(crate) enum Source {
    /// Its own listener (`SO_REUSEPORT`: the kernel spreads connections over the workers).
    Listener(TcpListener),
    /// The acceptor's listener, handing connections to every worker in turn.
    Acceptor(TcpListener),
    /// Connections handed over by the acceptor through this worker's mailbox.
    Mailbox,
}

/// A worker thread's state.
pub(crate) struct Worker<H, F> {
    index: u16,
    port: Port,
    conns: Slab<Conn<H>>,
    next_generation: u32,
    env: Env,
    factory: Arc<F>,
    shared: Arc<Shared>,
    listener: Option<TcpListener>,
    hand_out: bool,
    next_target: usize,
    accept: Option<OpId>,
    accept_retry: Option<Instant>,
    timer: Option<(Instant, OpId)>,
    idle_ticks: Option<u32>,
    starved: Vec<u32>,
    stop_deadline: Option<Instant>,
    due: Vec<Due>,
    /// Accept failures (out of descriptors in a connection storm) log a line per interval.
    warn_accept: WarnLimit,
}

impl<H, F> Worker<H, F>
where
    H: Handler,
    F: Fn(&ConnInfo) -> H,
{
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: u16,
        port: Port,
        source: Source,
        codec: Arc<dyn Codec>,
        limits: Limits,
        budget: Arc<Budget>,
        factory: Arc<F>,
        shared: Arc<Shared>,
    ) -> Worker<H, F> {
        let tick = tick_for(limits.idle_timeout);
        let idle_ticks = limits
            .idle_timeout
            .zip(tick)
            .map(|(timeout, tick)| ticks_in(timeout, tick));
        let counters = shared.counters[usize::from(index)].clone();
        WorkerCounters::set(&counters.pool_capacity, port.pool().capacity() as u64);
        let (listener, hand_out) = match source {
            Source::Listener(l) => (Some(l), false),
            Source::Acceptor(l) => (Some(l), true),
            Source::Mailbox => (None, false),
        };
        Worker {
            index,
            port,
            conns: Slab::new(),
            next_generation: 0,
            env: Env {
                codec,
                limits,
                budget: Held::new(budget),
                timers: Timers::new(tick),
                counters,
                dirty: Vec::new(),
                recycle: Vec::new(),
            },
            factory,
            shared,
            listener,
            hand_out,
            next_target: 0,
            accept: None,
            accept_retry: None,
            timer: None,
            idle_ticks,
            starved: Vec::new(),
            stop_deadline: None,
            due: Vec::new(),
            warn_accept: WarnLimit::default(),
        }
    }

    /// Serves until the server stops and every connection is gone.
    pub fn run(mut self) -> io::Result<()> {
        self.arm_accept();
        let mut batch = Completions::with_capacity(512);
        loop {
            self.arm_timer()?;
            self.port.wait(&mut batch, None)?;
            for c in batch.drain() {
                self.dispatch(c);
            }
            self.after_batch();
            if self.stop_deadline.is_some() && self.conns.is_empty() && self.accept.is_none() {
                break;
            }
        }
        // Dropping the port returns every buffer its last completions held: the final gauges
        // are read after that.
        let counters = self.env.counters.clone();
        let pool = self.port.pool().clone();
        let held = self.env.budget.held();
        debug_assert_eq!(
            held, 0,
            "a worker with no connections holds no buffered bytes"
        );
        drop(self);
        WorkerCounters::set(&counters.pool_in_use, pool.in_use() as u64);
        WorkerCounters::set(&counters.buffered_bytes, held as u64);
        Ok(())
    }

    fn dispatch(&mut self, c: Completion) {
        match c.token {
            ACCEPT => self.on_accept(c),
            TIMER => self.on_timer(c),
            MAILBOX => self.on_mailbox(),
            STOP => self.on_stop(),
            CLOSED => {}
            token => {
                let key = token as u32;
                let generation = (token >> 32) as u32;
                let live = self
                    .conns
                    .get(key as usize)
                    .is_some_and(|conn| conn.generation == generation);
                if !live {
                    return;
                }
                match c.outcome {
                    Outcome::RecvMulti { result, buf } => self.on_recv(key, c.more, result, buf),
                    Outcome::Send { result, buf } => self.on_sent(key, result, buf),
                    _ => {}
                }
                self.progress(key);
            }
        }
    }

    // ---- accepting ----------------------------------------------------------------------

    fn arm_accept(&mut self) {
        if self.accept.is_some() || self.stop_deadline.is_some() {
            return;
        }
        let Some(listener) = &self.listener else {
            return;
        };
        match self.port.submit(op::AcceptMulti::new(listener), ACCEPT) {
            Ok(id) => {
                self.accept = Some(id);
                self.accept_retry = None;
            }
            Err(e) => {
                warn_limited!(self.warn_accept, worker = self.index, "cannot accept: {e}");
                self.accept_retry = Some(Instant::now() + ACCEPT_BACKOFF);
            }
        }
    }

    fn on_accept(&mut self, c: Completion) {
        if !c.more {
            self.accept = None;
        }
        let cancelled = c.is_cancelled();
        match c.outcome {
            Outcome::Accept(Ok((stream, peer))) => self.hand_over(stream, peer),
            Outcome::Accept(Err(_)) if cancelled => {}
            Outcome::Accept(Err(e)) if is_accept_aborted(&e) => {
                // Reset by its peer before we took it: counted, nothing to retry or report.
                WorkerCounters::add(&self.env.counters.accept_aborted, 1);
            }
            Outcome::Accept(Err(e)) => {
                // Out of descriptors (EMFILE/ENFILE) or a transient error: try again a little
                // later instead of spinning on a listener that cannot give us anything.
                warn_limited!(
                    self.warn_accept,
                    worker = self.index,
                    "accept failed: {e}; retrying shortly"
                );
                self.accept_retry = Some(Instant::now() + ACCEPT_BACKOFF);
                return;
            }
            _ => {}
        }
        if self.accept.is_none() && self.accept_retry.is_none() {
            if self.stop_deadline.is_some() {
                self.listener = None;
            } else {
                self.arm_accept();
            }
        }
    }

    /// An accepted connection: serve it here, or (the acceptor) pass it to the next worker.
    fn hand_over(&mut self, stream: TcpStream, peer: SocketAddr) {
        if self.hand_out {
            let workers = self.shared.mailboxes.len();
            let target = self.next_target % workers;
            self.next_target = self.next_target.wrapping_add(1);
            if target != usize::from(self.index) {
                match self.shared.deliver(target, stream, peer) {
                    Ok(()) => return,
                    // The target is gone (stopping): serve it here, or refuse it.
                    Err(stream) => return self.open(stream, peer, false),
                }
            }
        }
        self.open(stream, peer, false);
    }

    fn on_mailbox(&mut self) {
        let arrivals = self.shared.take_mail(usize::from(self.index));
        for (stream, peer) in arrivals {
            self.open(stream, peer, true);
        }
    }

    /// Serves a new connection here, unless the server is stopping or full. `handed_over`: it
    /// came from the acceptor's port, so it is associated with this one first.
    ///
    /// The acceptor never ran an operation on it, so on IOCP, where a socket belongs to the
    /// first completion port that uses it, it is still free to join this worker's port. The
    /// association comes after the admission check: a refused connection is dropped without
    /// ever having been associated, which keeps the port's records of its sockets honest
    /// (sockets it associated are closed through it).
    fn open(&mut self, stream: TcpStream, peer: SocketAddr, handed_over: bool) {
        let counters = &self.env.counters;
        if self.stop_deadline.is_some() || !self.shared.admit(self.env.limits.max_connections) {
            WorkerCounters::add(&counters.rejected, 1);
            return; // dropping the stream closes it
        }
        if handed_over && let Err(e) = self.port.associate(&stream) {
            tracing::warn!(worker = self.index, "cannot take over a connection: {e}");
            self.shared.release();
            return;
        }
        let counters = &self.env.counters;
        WorkerCounters::add(&counters.accepted, 1);
        WorkerCounters::add(&counters.active, 1);
        let _ = stream.set_nodelay(true);
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1) % (u32::MAX - 1);
        let key = self.conns.vacant_key() as u32;
        let id = ConnId {
            worker: self.index,
            key,
            generation,
        };
        let handler = (self.factory)(&ConnInfo {
            id,
            peer,
            worker: usize::from(self.index),
        });
        self.conns.insert(Conn {
            stream: Some(stream),
            generation,
            recv: None,
            peer_closed: false,
            stopping_read: false,
            paused: false,
            starved: false,
            read_done: false,
            ending: None,
            last_active: self.env.timers.ticks,
            io: None,
            handler,
        });
        self.with_handler(key, |h, cx| h.on_open(cx));
        self.progress(key);
    }

    // ---- connection I/O -----------------------------------------------------------------

    /// Runs `f` on connection `key`'s handler with a [`Ctx`].
    fn with_handler(&mut self, key: u32, f: impl FnOnce(&mut H, &mut Ctx<'_>)) {
        if let Some(conn) = self.conns.get_mut(key as usize) {
            call_handler(self.index, key, conn, &mut self.env, f);
        }
    }

    fn on_recv(&mut self, key: u32, more: bool, result: io::Result<usize>, buf: Option<Buf>) {
        let counters = self.env.counters.clone();
        let conn = &mut self.conns[key as usize];
        if !more {
            conn.recv = None;
        }
        match (result, buf) {
            (Ok(n), Some(buf)) if n > 0 => {
                WorkerCounters::add(&counters.bytes_in, n as u64);
                // Bytes alone are not progress (a slowloris trickles them); a whole frame is,
                // and `deliver` marks it.
                if conn.ending.is_none() {
                    // While paused this only stashes the bytes (they arrived before the
                    // receive could be stopped); they are decoded once the queue drains.
                    self.deliver(key, &buf);
                }
            }
            (Ok(_), _) => {
                // The peer closed its side. The ending is decided in `progress` once what it
                // sent before is decoded (a paused connection may still hold whole frames).
                conn.read_done = true;
                conn.peer_closed = true;
            }
            (Err(e), _) if crate::is_cancelled(&e) => {}
            (Err(e), _) if crate::is_out_of_buffers(&e) => {
                conn.starved = true;
                self.starved.push(key);
            }
            (Err(e), _) => {
                conn.read_done = true;
                if conn.ending.is_none() {
                    conn.ending = Some(Ending::Abort(CloseReason::of_error(&e)));
                }
            }
        }
    }

    /// Splits the connection's pending input, then `data`, into frames for the handler, while
    /// the connection is open and its queued writes are under the high-water mark. What is not
    /// decoded (an unfinished frame, or everything once paused) stays in the input, in order.
    fn deliver(&mut self, key: u32, data: &[u8]) {
        let index = self.index;
        let Worker { conns, env, .. } = self;
        let conn = &mut conns[key as usize];
        if conn.paused {
            if !data.is_empty() {
                let io = conn.io.get_or_insert_with(|| env.take_io());
                io.input.extend_from_slice(data);
                env.budget.force(data.len());
            }
            return;
        }
        let mut input = conn
            .io
            .as_mut()
            .map(|io| mem::take(&mut io.input))
            .unwrap_or_default();
        let before = input.len();
        let codec = env.codec.clone();
        let max_frame = env.limits.max_frame;
        let high_water = env.limits.write_high_water;
        let mut frames = Reassembly::new(&mut input, data);
        // New bytes joined to held ones are held too, from now on.
        let held = frames.held();
        env.budget.resize(before, held);
        while conn.ending.is_none() {
            if conn.queued_bytes() > high_water {
                // Backpressure: stop here; the rest waits in the input until the queue
                // drains, and the receive is stopped so no more arrives meanwhile.
                conn.paused = true;
                WorkerCounters::add(&env.counters.paused, 1);
                break;
            }
            match frames.next_frame(&*codec, max_frame) {
                Ok(Some(payload)) => {
                    WorkerCounters::add(&env.counters.frames_in, 1);
                    conn.last_active = env.timers.ticks;
                    call_handler(index, key, conn, env, |h, cx| h.on_frame(cx, payload));
                }
                Ok(None) => break,
                Err(e) => {
                    let reason = match e {
                        FrameError::TooLarge { .. } => CloseReason::FrameTooLarge,
                        FrameError::Malformed(_) => CloseReason::BadFrame,
                    };
                    conn.ending = Some(Ending::Abort(reason));
                }
            }
        }
        // Keep the unfinished rest (unless the connection is ending: then nothing more counts).
        if conn.ending.is_some() {
            frames.discard();
        } else {
            frames.finish();
        }
        env.budget.resize(held, input.len());
        if !input.is_empty() {
            conn.io.get_or_insert_with(|| env.take_io()).input = input;
        } else if let Some(io) = conn.io.as_mut() {
            io.input = input; // keep its capacity for the next unfinished frame
        }
    }

    fn on_sent(&mut self, key: u32, result: io::Result<usize>, mut buf: Buf) {
        let ticks = self.env.timers.ticks;
        let conn = &mut self.conns[key as usize];
        let io = conn
            .io
            .as_mut()
            .expect("a connection with a send in flight has buffers");
        let len = mem::take(&mut io.in_flight);
        self.env.budget.release(len);
        match result {
            Ok(n) => {
                WorkerCounters::add(&self.env.counters.bytes_out, n as u64);
                conn.last_active = ticks;
                if n < len && conn.ending.is_none() {
                    // A send ends short only when the connection broke part-way.
                    conn.ending = Some(Ending::Abort(CloseReason::Reset));
                }
            }
            Err(e) if crate::is_cancelled(&e) => {}
            Err(e) => {
                if conn.ending.is_none() {
                    conn.ending = Some(Ending::Abort(CloseReason::of_error(&e)));
                }
            }
        }
        buf.clear();
        if buf.capacity() <= KEEP_CAPACITY && io.spare.capacity() == 0 {
            io.spare = buf;
        }
        if io.queued.is_empty() && conn.ending.is_none() {
            self.with_handler(key, |h, cx| h.on_drained(cx));
        }
    }

    /// Starts the next send of connection `key` if output is queued and none is in flight.
    fn flush(&mut self, key: u32) {
        let Some(conn) = self.conns.get_mut(key as usize) else {
            return;
        };
        let Some(io) = conn.io.as_mut() else {
            return;
        };
        io.dirty = false;
        let Some(stream) = conn.stream.as_ref() else {
            return;
        };
        if io.in_flight > 0 || io.queued.is_empty() {
            return;
        }
        let next = mem::take(&mut io.spare);
        let out = mem::replace(&mut io.queued, next);
        io.in_flight = out.len();
        let token = conn_token(key, conn.generation);
        if let Err(e) = self.port.submit(op::Send::new(stream, out), token) {
            tracing::error!(worker = self.index, "cannot submit a send: {e}");
            io.in_flight = 0;
            conn.ending = Some(Ending::Abort(CloseReason::Error));
        }
    }

    /// Moves connection `key` along after anything happened to it.
    fn progress(&mut self, key: u32) {
        let limits = &self.env.limits;
        let Some(conn) = self.conns.get_mut(key as usize) else {
            return;
        };
        let token = conn_token(key, conn.generation);
        let queued = conn.queued_bytes();

        // Backpressure: stop reading above the high-water mark, read again once drained.
        if conn.ending.is_none() && !conn.paused && queued > limits.write_high_water {
            conn.paused = true;
            WorkerCounters::add(&self.env.counters.paused, 1);
        } else if conn.paused && queued <= limits.write_low_water() && !self.env.budget.exhausted()
        {
            conn.paused = false;
            if conn.ending.is_none() && conn.io.as_ref().is_some_and(|io| !io.input.is_empty()) {
                // Decode what arrived while paused before reading more.
                self.deliver(key, &[]);
                return self.progress(key);
            }
        }
        if conn.peer_closed && conn.ending.is_none() && !conn.paused {
            // Every whole frame the peer sent before its FIN has been handled: their answers
            // flush before the close. A frame it left unfinished is a truncated frame.
            let truncated = conn.io.as_ref().is_some_and(|io| !io.input.is_empty());
            conn.ending = Some(Ending::Graceful(if truncated {
                CloseReason::BadFrame
            } else {
                CloseReason::PeerClosed
            }));
        }
        if let Some(recv) = conn.recv
            && (conn.paused || conn.ending.is_some())
            && !conn.stopping_read
        {
            // Stop reading, at once: every receive the kernel completes from here on is data
            // the connection has to hold. The final completion clears `recv`.
            conn.stopping_read = true;
            if self.port.cancel(recv).is_ok() && conn.paused {
                let _ = self.port.flush();
            }
        }
        if conn.wants_read() {
            let stream = conn.stream.as_ref().expect("wants_read needs the socket");
            // Capped, so the kernel never reads more than a few buffers ahead of us: when the
            // connection must stop reading (backpressure), it holds at most that much more.
            let limit =
                u32::try_from(self.port.pool().buf_size() * READ_AHEAD_BUFS).unwrap_or(u32::MAX);
            let recv = op::RecvMulti::new(stream).limit(limit);
            match self.port.submit(recv, token) {
                Ok(id) => {
                    conn.recv = Some(id);
                    conn.stopping_read = false;
                }
                Err(e) => {
                    tracing::error!(worker = self.index, "cannot submit a receive: {e}");
                    conn.read_done = true;
                    conn.ending = Some(Ending::Abort(CloseReason::Error));
                }
            }
        }
        // Queued output waits for the end-of-batch flush.
        if let Some(io) = conn.io.as_mut()
            && !io.dirty
            && io.in_flight == 0
            && !io.queued.is_empty()
            && conn.stream.is_some()
            && !matches!(conn.ending, Some(Ending::Abort(_)))
        {
            io.dirty = true;
            self.env.dirty.push(key);
        }

        // Ending: close once the queue has drained (graceful) or at once (abort).
        if let Some(ending) = conn.ending
            && conn.stream.is_some()
        {
            let ready = match ending {
                Ending::Abort(_) => true,
                Ending::Graceful(_) => queued == 0,
            };
            if ready {
                conn.handler.on_close(ending.reason());
                let stream = conn.stream.take().expect("checked above");
                if matches!(ending, Ending::Abort(_)) {
                    // Tell the peer with a reset rather than an orderly close.
                    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                }
                if let Some(io) = conn.io.as_mut() {
                    let dropped = io.queued.len() + io.input.len();
                    self.env.budget.release(dropped);
                    io.queued.clear();
                    io.input.clear();
                }
                if let Err(e) = self.port.submit(op::Close::new(stream), CLOSED) {
                    tracing::error!(worker = self.index, "cannot submit a close: {e}");
                }
            }
        }

        // Gone: closed, and the kernel has given back its receive and send.
        if conn.stream.is_none() && conn.recv.is_none() && conn.in_flight() == 0 {
            let conn = self.conns.remove(key as usize);
            let reason = conn.ending.map_or(CloseReason::Error, Ending::reason);
            let counters = &self.env.counters;
            WorkerCounters::add(&counters.closed[reason.index()], 1);
            counters
                .active
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            self.shared.release();
            if let Some(io) = conn.io {
                self.env.give_io(io);
            }
            return;
        }
        if conn
            .io
            .as_ref()
            .is_some_and(|io| io.is_quiet() && !io.dirty)
        {
            let io = conn.io.take().expect("checked above");
            self.env.give_io(io);
        }
    }

    // ---- once per batch -----------------------------------------------------------------

    fn after_batch(&mut self) {
        let dirty = mem::take(&mut self.env.dirty);
        for &key in &dirty {
            self.flush(key);
        }
        let mut dirty = dirty;
        dirty.clear();
        self.env.dirty = dirty;

        if !self.starved.is_empty() && self.port.pool().available() > 0 {
            for key in mem::take(&mut self.starved) {
                if let Some(conn) = self.conns.get_mut(key as usize) {
                    conn.starved = false;
                    self.progress(key);
                }
            }
        }
        let counters = &self.env.counters;
        WorkerCounters::set(&counters.pool_in_use, self.port.pool().in_use() as u64);
        WorkerCounters::set(&counters.buffered_bytes, self.env.budget.held() as u64);
    }

    fn arm_timer(&mut self) -> io::Result<()> {
        let next = [
            self.env.timers.next_deadline(),
            self.accept_retry,
            self.stop_deadline,
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else {
            return Ok(());
        };
        if self.timer.is_some_and(|(at, _)| at <= next) {
            return Ok(());
        }
        if let Some((_, old)) = self.timer.take() {
            let _ = self.port.cancel(old);
        }
        let id = self.port.submit(op::Timeout::at(next), TIMER)?;
        self.timer = Some((next, id));
        Ok(())
    }

    fn on_timer(&mut self, c: Completion) {
        if self.timer.is_some_and(|(_, id)| id == c.id) {
            self.timer = None;
        }
        if !matches!(c.outcome, Outcome::Timeout(Ok(()))) {
            return;
        }
        let now = Instant::now();
        let mut due = mem::take(&mut self.due);
        self.env.timers.take_due(now, &mut due);
        for d in due.drain(..) {
            let live = self
                .conns
                .get(d.key as usize)
                .is_some_and(|c| c.generation == d.generation && c.ending.is_none());
            if live {
                self.with_handler(d.key, |h, cx| h.on_timer(cx, d.timer));
                self.progress(d.key);
            }
        }
        self.due = due;

        if self.env.timers.tick_due(now) {
            self.tick();
        }
        if self.accept_retry.is_some_and(|at| at <= now) {
            self.accept_retry = None;
            self.arm_accept();
        }
        if self.stop_deadline.is_some_and(|at| at <= now) {
            // The grace period is over: whatever has not flushed is dropped.
            let keys: Vec<u32> = self.conns.iter().map(|(k, _)| k as u32).collect();
            for key in keys {
                let conn = &mut self.conns[key as usize];
                if !matches!(conn.ending, Some(Ending::Abort(_))) {
                    conn.ending = Some(Ending::Abort(CloseReason::Shutdown));
                }
                self.progress(key);
            }
            self.stop_deadline = Some(now + Duration::from_secs(3600));
        }
    }

    /// Idle timeouts, and paused connections that may read again.
    fn tick(&mut self) {
        let now_tick = self.env.timers.ticks;
        let keys: Vec<u32> = self.conns.iter().map(|(k, _)| k as u32).collect();
        for key in keys {
            let conn = &mut self.conns[key as usize];
            let idle = now_tick.wrapping_sub(conn.last_active);
            if conn.ending.is_none() && self.idle_ticks.is_some_and(|limit| idle >= limit) {
                conn.ending = Some(Ending::Abort(CloseReason::IdleTimeout));
            }
            if conn.ending.is_some() || conn.paused {
                self.progress(key);
            }
        }
    }

    fn on_stop(&mut self) {
        if self.stop_deadline.is_some() {
            return;
        }
        self.stop_deadline = Some(Instant::now() + self.env.limits.shutdown_grace);
        match self.accept {
            Some(id) => {
                let _ = self.port.cancel(id);
            }
            None => self.listener = None,
        }
        self.accept_retry = None;
        for (stream, _) in self.shared.take_mail(usize::from(self.index)) {
            drop(stream);
            WorkerCounters::add(&self.env.counters.rejected, 1);
        }
        let keys: Vec<u32> = self.conns.iter().map(|(k, _)| k as u32).collect();
        for key in keys {
            let conn = &mut self.conns[key as usize];
            conn.ending
                .get_or_insert(Ending::Graceful(CloseReason::Shutdown));
            self.progress(key);
        }
    }
}
