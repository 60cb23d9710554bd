//! One connection as a state machine that does no I/O.
//!
//! The worker feeds a [`Conn`] events — bytes received, a send finished, the receive ended, a
//! tick, a handler timer, a pushed payload or message, shutdown — and gets back [`Actions`]
//! for its port: arm or cancel the receive, flush the queued output, close the socket, remove
//! the connection. Every decision about pausing, resuming, ending and removal is taken in one
//! place, [`Conn::settle`], at the end of every event; the handler's callbacks run inside the
//! events, through a [`Ctx`] that only touches memory.
//!
//! The states ([`Phase`]):
//!
//! ```text
//!   Open ──(queued > high water)──▶ Paused ──(queued ≤ low water, budget free)──▶ Open
//!    │                               │ (peer FIN: Paused{at_end}; the end is decided once
//!    │                               │  every held whole frame is decoded)
//!    ├──(peer FIN, error, limit, close, shutdown, idle)──▶ Ending(Graceful | Abort)
//!    │                                                        │ (graceful: queue drained)
//!    │                                                        ▼
//!    │                                               Closed(reason): on_close called,
//!    │                                               socket close submitted
//!    │                                                        │ (receive and send given back)
//!    └────────────────────────────────────────────────────────▶ removed
//! ```
//!
//! The receive op has its own small life ([`Reading`]): idle, armed, stopping (cancel asked),
//! starved (the pool ran dry; re-armed when buffers are back). So has the sending side
//! ([`WriteSide`]) once the handler shuts it ([`Ctx::shutdown_write`]): requested, the
//! half-close in flight once the queue has drained, shut. A connection whose peer sent its FIN
//! and whose handler chose [`AfterFin::KeepWriting`] stays `Open` with `peer_done` (no receive
//! is armed again); with both sides done it ends with [`CloseReason::PeerClosed`].

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::sync::Arc;

use super::codec::{Codec, FrameError};
use super::handler::{AfterFin, CloseReason, ConnId, Ctx, Ending, Handler, SendError};
use super::limits::{Held, Limits};
use super::metrics::WorkerCounters;
use super::push::{Groups, Mail, Message};
use super::reassembly::Reassembly;
use super::timers::{Due, Timers};
use crate::buf::Buf;

/// Write buffers larger than this are freed after their send instead of being kept for reuse.
pub(crate) const KEEP_CAPACITY: usize = 64 << 10;
/// Io boxes kept for reuse per worker.
const RECYCLE_MAX: usize = 1024;

/// A connection's buffers: the unfinished frame received so far and the bytes waiting to be
/// sent. Allocated (from the worker's recycle list) only while there is something in them, so
/// an idle connection holds no buffer.
#[derive(Default)]
pub(crate) struct Io {
    /// Received bytes of a frame not yet complete (or, while paused, not yet decoded).
    pub input: Vec<u8>,
    /// Framed bytes waiting for the send in flight to finish (coalesced into the next send).
    pub queued: Buf,
    /// The last send's buffer, emptied, ready to become the next `queued`.
    pub spare: Buf,
    /// Bytes of the send in flight (0: none).
    pub in_flight: usize,
    /// The connection is on the worker's list of connections to flush.
    pub dirty: bool,
}

impl Io {
    /// Bytes queued and in flight.
    pub fn queued_bytes(&self) -> usize {
        self.queued.len() + self.in_flight
    }

    /// Whether the buffers hold nothing and no send is in flight.
    pub fn is_quiet(&self) -> bool {
        self.input.is_empty() && self.queued.is_empty() && self.in_flight == 0
    }

    /// Frames `payload` onto the queue; returns the bytes added.
    pub fn queue(
        &mut self,
        codec: &dyn Codec,
        payload: &[u8],
        limits: &Limits,
        budget: &mut Held,
    ) -> Result<usize, SendError> {
        self.queue_with(payload.len(), limits, budget, |queued| {
            codec.encode(payload, queued).map_err(SendError::Frame)
        })
    }

    /// Queues bytes framed already (a pushed payload, framed once for every receiver).
    pub fn queue_framed(
        &mut self,
        framed: &[u8],
        limits: &Limits,
        budget: &mut Held,
    ) -> Result<usize, SendError> {
        self.queue_with(framed.len(), limits, budget, |queued| {
            queued.extend_from_slice(framed);
            Ok(())
        })
    }

    /// Appends `len` bytes (about: a codec adds its header) with `write`, within the
    /// queued-write limit and the memory budget.
    fn queue_with(
        &mut self,
        len: usize,
        limits: &Limits,
        budget: &mut Held,
        write: impl FnOnce(&mut Buf) -> Result<(), SendError>,
    ) -> Result<usize, SendError> {
        if self.queued_bytes().saturating_add(len) > limits.max_queued_write {
            return Err(SendError::Limit);
        }
        let before = self.queued.len();
        write(&mut self.queued)?;
        let added = self.queued.len() - before;
        if !budget.try_reserve(added) {
            self.queued.truncate(before);
            return Err(SendError::Limit);
        }
        Ok(added)
    }

    /// Makes the buffers ready for reuse by another connection; false if they are too big to
    /// keep.
    pub fn reset(&mut self) -> bool {
        self.input.clear();
        self.queued.clear();
        self.spare.clear();
        self.in_flight = 0;
        self.dirty = false;
        self.input.capacity() <= KEEP_CAPACITY
            && self.queued.capacity() <= KEEP_CAPACITY
            && self.spare.capacity() <= KEEP_CAPACITY
    }
}

/// What a connection's state machine (and its handler's [`Ctx`]) works with on its worker:
/// everything but the port.
pub(crate) struct Env {
    pub codec: Arc<dyn Codec>,
    pub limits: Limits,
    pub budget: Held,
    pub timers: Timers,
    pub counters: Arc<WorkerCounters>,
    /// Pushes and messages handlers addressed to other connections, routed by the worker
    /// after the event.
    pub outbox: Vec<Mail>,
    /// This worker's group memberships.
    pub groups: Groups,
    /// Boxed on purpose: connections hold `Option<Box<Io>>` (8 bytes while idle), and moving a
    /// box between a connection and this list allocates nothing.
    #[allow(clippy::vec_box)]
    recycle: Vec<Box<Io>>,
}

impl Env {
    pub fn new(
        codec: Arc<dyn Codec>,
        limits: Limits,
        budget: Held,
        timers: Timers,
        counters: Arc<WorkerCounters>,
    ) -> Env {
        Env {
            codec,
            limits,
            budget,
            timers,
            counters,
            outbox: Vec::new(),
            groups: Groups::default(),
            recycle: Vec::new(),
        }
    }

    /// An empty `Io`, reused if one is at hand.
    pub fn take_io(&mut self) -> Box<Io> {
        self.recycle.pop().unwrap_or_default()
    }

    fn give_io(&mut self, mut io: Box<Io>) {
        if io.reset() && self.recycle.len() < RECYCLE_MAX {
            self.recycle.push(io);
        }
    }
}

/// Where a connection is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Reading and decoding.
    Open,
    /// Queued writes passed the high-water mark: decoding stops and the receive is cancelled;
    /// what arrives meanwhile is kept undecoded. `at_end`: the peer has sent its FIN, so once
    /// every whole frame is decoded the connection ends instead of reading again.
    Paused { at_end: bool },
    /// A reason to end is decided: no more reading; queued writes flush unless aborting.
    Ending(Ending),
    /// `on_close` has run and the socket's close is submitted; waiting for the receive and send
    /// in flight to come back.
    Closed(Ending),
}

impl Phase {
    /// Neither ending nor closed.
    pub fn is_live(self) -> bool {
        matches!(self, Phase::Open | Phase::Paused { .. })
    }
}

/// The connection's receive op.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reading {
    /// None armed.
    Idle,
    /// A multishot receive is in the kernel.
    Armed,
    /// Its cancel has been asked for; the final completion is still to come.
    Stopping,
    /// The pool ran dry: armed again once buffers are back.
    Starved,
}

impl Reading {
    fn in_kernel(self) -> bool {
        matches!(self, Reading::Armed | Reading::Stopping)
    }
}

/// The connection's sending side.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum WriteSide {
    /// Sending.
    Open,
    /// The handler shut it: no new sends; the half-close goes out once the queue has drained.
    Requested,
    /// The half-close (`op::Shutdown`) is in the kernel.
    InFlight,
    /// The peer has had our FIN (or the half-close failed and the connection is ending).
    Shut,
}

/// What the worker does to its port after an event.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Actions {
    /// Submit a multishot receive.
    pub arm_recv: bool,
    /// Cancel the armed receive.
    pub cancel_recv: bool,
    /// Give the cancel to the kernel now, not with the next wait (paused: every byte it reads
    /// meanwhile has to be held).
    pub submit_now: bool,
    /// Put the connection on the end-of-batch flush list.
    pub flush: bool,
    /// Submit the half-close of the sending side (every queued byte has gone out).
    pub shutdown_write: bool,
    /// The pool ran dry: re-try once buffers are back.
    pub starved: bool,
    /// Close the socket (an abort with a reset).
    pub close: Option<Ending>,
    /// Forget the connection: it is closed and the kernel holds nothing of it.
    pub remove: Option<CloseReason>,
}

/// The per-connection state a handler's [`Ctx`] reaches.
pub(crate) struct Core {
    pub id: ConnId,
    pub peer: SocketAddr,
    pub phase: Phase,
    pub reading: Reading,
    /// The sending side.
    pub write: WriteSide,
    /// The peer's FIN has come and the connection stays open for sending
    /// ([`AfterFin::KeepWriting`], or our side was shut already): no more reading.
    pub peer_done: bool,
    /// Buffers, while busy.
    pub io: Option<Box<Io>>,
    /// The worker tick of the last progress (a whole frame in, or a send completing).
    pub last_active: u32,
    /// Cancelled handler timers: (timer, set before this sequence number).
    pub cancelled: Vec<(u64, u64)>,
}

impl Core {
    /// Bytes queued and in flight.
    pub fn queued_bytes(&self) -> usize {
        self.io.as_ref().map_or(0, |io| io.queued_bytes())
    }

    /// Whether new bytes may be queued: live, and the sending side not shut.
    pub fn can_send(&self) -> bool {
        self.phase.is_live() && self.write == WriteSide::Open
    }

    /// The handler shuts the sending side (see [`Ctx::shutdown_write`]).
    pub fn shutdown_write(&mut self) {
        if self.phase.is_live() && self.write == WriteSide::Open {
            self.write = WriteSide::Requested;
        }
    }

    fn in_flight(&self) -> usize {
        self.io.as_ref().map_or(0, |io| io.in_flight)
    }

    fn has_input(&self) -> bool {
        self.io.as_ref().is_some_and(|io| !io.input.is_empty())
    }

    /// Decides how the connection ends, unless it is ending already.
    pub fn end(&mut self, ending: Ending) {
        if self.phase.is_live() {
            self.phase = Phase::Ending(ending);
        }
    }

    /// Ends it with a reset (also over a graceful ending already decided).
    pub fn abort(&mut self, reason: CloseReason) {
        if !matches!(self.phase, Phase::Closed(_)) {
            self.phase = Phase::Ending(Ending::Abort(reason));
        }
    }
}

/// A connection owned by a worker: its state and its handler.
pub(crate) struct Conn<H> {
    pub core: Core,
    pub handler: H,
}

impl<H: Handler> Conn<H> {
    pub fn new(id: ConnId, peer: SocketAddr, ticks: u32, handler: H) -> Conn<H> {
        Conn {
            core: Core {
                id,
                peer,
                phase: Phase::Open,
                reading: Reading::Idle,
                write: WriteSide::Open,
                peer_done: false,
                io: None,
                last_active: ticks,
                cancelled: Vec::new(),
            },
            handler,
        }
    }

    /// Runs `f` on the handler with a [`Ctx`] (unless the connection is closed).
    fn call(&mut self, env: &mut Env, f: impl FnOnce(&mut H, &mut Ctx<'_>)) {
        if matches!(self.core.phase, Phase::Closed(_)) {
            return;
        }
        let mut cx = Ctx {
            core: &mut self.core,
            env,
        };
        f(&mut self.handler, &mut cx);
    }

    // ---- events -------------------------------------------------------------------------

    /// The connection is new: the handler's `on_open`.
    pub fn open(&mut self, env: &mut Env) -> Actions {
        self.call(env, |h, cx| h.on_open(cx));
        self.settle(env)
    }

    /// A receive completion: `data` (`n` bytes) arrived, or the peer's FIN, or an error.
    pub fn received(
        &mut self,
        env: &mut Env,
        more: bool,
        result: io::Result<usize>,
        data: Option<&[u8]>,
    ) -> Actions {
        if !more {
            self.core.reading = Reading::Idle;
        }
        let mut starved = false;
        match (result, data) {
            (Ok(n), Some(data)) if n > 0 => {
                WorkerCounters::add(&env.counters.bytes_in, n as u64);
                // Bytes alone are not progress (a slowloris trickles them); a whole frame is,
                // and `decode_frames` marks it. While paused this only keeps the bytes (they arrived
                // before the receive could be stopped); once ending they no longer count.
                if self.core.phase.is_live() {
                    self.decode_frames(env, data);
                }
            }
            (Ok(_), _) => match self.core.phase {
                Phase::Open => self.end_after_fin(env),
                Phase::Paused { .. } => self.core.phase = Phase::Paused { at_end: true },
                Phase::Ending(_) | Phase::Closed(_) => {}
            },
            (Err(e), _) if crate::is_cancelled(&e) => {}
            (Err(e), _) if crate::is_out_of_buffers(&e) => {
                if !more {
                    self.core.reading = Reading::Starved;
                    starved = true;
                }
            }
            (Err(e), _) => self.core.end(Ending::Abort(CloseReason::of_error(&e))),
        }
        let mut actions = self.settle(env);
        actions.starved = starved;
        actions
    }

    /// The send in flight finished (`result`: bytes sent), giving its buffer back.
    pub fn sent(&mut self, env: &mut Env, result: io::Result<usize>, mut buf: Buf) -> Actions {
        let ticks = env.timers.ticks;
        let Some(io) = self.core.io.as_mut() else {
            // Not ours: a connection with a send in flight has its buffers.
            return self.settle(env);
        };
        let len = mem::take(&mut io.in_flight);
        env.budget.release(len);
        let mut broke = None;
        match result {
            Ok(n) => {
                WorkerCounters::add(&env.counters.bytes_out, n as u64);
                self.core.last_active = ticks;
                if n < len {
                    // A send ends short only when the connection broke part-way.
                    broke = Some(CloseReason::Reset);
                }
            }
            Err(e) if crate::is_cancelled(&e) => {}
            Err(e) => broke = Some(CloseReason::of_error(&e)),
        }
        buf.clear();
        if buf.capacity() <= KEEP_CAPACITY && io.spare.capacity() == 0 {
            io.spare = buf;
        }
        let drained = io.queued.is_empty();
        if let Some(reason) = broke {
            self.core.end(Ending::Abort(reason));
        }
        if drained && self.core.phase.is_live() {
            self.call(env, |h, cx| h.on_drained(cx));
        }
        self.settle(env)
    }

    /// The receive could not be submitted.
    pub fn arm_failed(&mut self, env: &mut Env) -> Actions {
        self.core.reading = Reading::Idle;
        self.core.abort(CloseReason::Error);
        self.settle(env)
    }

    /// The send [`start_send`](Conn::start_send) gave could not be submitted.
    pub fn send_failed(&mut self, env: &mut Env) -> Actions {
        if let Some(io) = self.core.io.as_mut() {
            env.budget.release(mem::take(&mut io.in_flight));
        }
        self.core.abort(CloseReason::Error);
        self.settle(env)
    }

    /// Buffers are back in the pool: a starved receive may be armed again.
    pub fn buffers_back(&mut self, env: &mut Env) -> Actions {
        if self.core.reading == Reading::Starved {
            self.core.reading = Reading::Idle;
        }
        self.settle(env)
    }

    /// A handler timer is due (unless cancelled since it was set).
    pub fn timer(&mut self, env: &mut Env, due: Due) -> Actions {
        let cancelled = self
            .core
            .cancelled
            .iter()
            .any(|&(timer, before)| timer == due.timer && due.seq < before);
        if cancelled || !self.core.phase.is_live() {
            return Actions::default();
        }
        self.call(env, |h, cx| h.on_timer(cx, due.timer));
        self.settle(env)
    }

    /// The worker's tick: closes the connection if it made no progress for `idle_limit` ticks.
    pub fn tick(&mut self, env: &mut Env, idle_limit: Option<u32>) -> Actions {
        let idle = env.timers.ticks.wrapping_sub(self.core.last_active);
        if idle_limit.is_some_and(|limit| idle >= limit) {
            self.core.end(Ending::Abort(CloseReason::IdleTimeout));
        }
        match self.core.phase {
            Phase::Open => Actions::default(),
            _ => self.settle(env),
        }
    }

    /// The server is shutting down: the handler's `on_shutdown`, then a graceful close.
    pub fn shutdown(&mut self, env: &mut Env) -> Actions {
        if self.core.phase.is_live() {
            self.call(env, |h, cx| h.on_shutdown(cx));
        }
        self.core.end(Ending::Graceful(CloseReason::Shutdown));
        self.settle(env)
    }

    /// The shutdown's grace period is over: whatever has not flushed is dropped.
    pub fn grace_over(&mut self, env: &mut Env) -> Actions {
        if !matches!(self.core.phase, Phase::Ending(Ending::Abort(_))) {
            self.core.abort(CloseReason::Shutdown);
        }
        self.settle(env)
    }

    /// The half-close of the sending side finished. Once the peer is done too, the connection
    /// ends; a failure (other than a cancel: closing) ends it with a reset.
    pub fn write_shut(&mut self, env: &mut Env, result: io::Result<()>) -> Actions {
        self.core.write = WriteSide::Shut;
        if let Err(e) = result
            && !crate::is_cancelled(&e)
        {
            self.core.abort(CloseReason::of_error(&e));
        }
        self.settle(env)
    }

    /// Bytes pushed to this connection (framed already). A connection that is ending, or
    /// whose sending side is shut, takes no more: the push is counted as dropped.
    pub fn push(&mut self, env: &mut Env, framed: &[u8]) -> Actions {
        if !self.core.can_send() {
            WorkerCounters::add(&env.counters.pushes_dropped, 1);
            return Actions::default();
        }
        let io = self.core.io.get_or_insert_with(|| env.take_io());
        match io.queue_framed(framed, &env.limits, &mut env.budget) {
            Ok(_) => WorkerCounters::add(&env.counters.frames_out, 1),
            Err(_) => self.core.abort(CloseReason::Limit),
        }
        self.settle(env)
    }

    /// An application message for the handler.
    pub fn message(&mut self, env: &mut Env, msg: &Message) -> Actions {
        if !self.core.phase.is_live() {
            WorkerCounters::add(&env.counters.pushes_dropped, 1);
            return Actions::default();
        }
        self.call(env, |h, cx| h.on_message(cx, &**msg));
        self.settle(env)
    }

    /// Someone else asked for this connection to close (gracefully).
    pub fn close(&mut self, env: &mut Env) -> Actions {
        self.core.end(Ending::Graceful(CloseReason::Local));
        self.settle(env)
    }

    /// The queued output as the next send, if one can start now (end of batch).
    pub fn start_send(&mut self) -> Option<Buf> {
        let closed = matches!(self.core.phase, Phase::Closed(_));
        let io = self.core.io.as_mut()?;
        io.dirty = false;
        if closed || io.in_flight > 0 || io.queued.is_empty() {
            return None;
        }
        let next = mem::take(&mut io.spare);
        let out = mem::replace(&mut io.queued, next);
        io.in_flight = out.len();
        Some(out)
    }

    // ---- decoding -----------------------------------------------------------------------

    /// Splits the pending input, then `data`, into frames for the handler while the connection
    /// is open and its queued writes are under the high-water mark. What is not decoded (an
    /// unfinished frame, or everything once paused) stays in the input, in order.
    fn decode_frames(&mut self, env: &mut Env, data: &[u8]) {
        if let Phase::Paused { .. } = self.core.phase {
            if !data.is_empty() {
                let io = self.core.io.get_or_insert_with(|| env.take_io());
                io.input.extend_from_slice(data);
                env.budget.force(data.len());
            }
            return;
        }
        let mut input = self
            .core
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
        while self.core.phase == Phase::Open {
            if self.core.queued_bytes() > high_water {
                // Backpressure: stop here; the rest waits in the input until the queue drains.
                self.pause(env);
                break;
            }
            match frames.next_frame(&*codec, max_frame) {
                Ok(Some(payload)) => {
                    WorkerCounters::add(&env.counters.frames_in, 1);
                    self.core.last_active = env.timers.ticks;
                    self.call(env, |h, cx| h.on_frame(cx, payload));
                }
                Ok(None) => break,
                Err(e) => {
                    let reason = match e {
                        FrameError::TooLarge { .. } => CloseReason::FrameTooLarge,
                        FrameError::Malformed(_) => CloseReason::BadFrame,
                    };
                    self.core.abort(reason);
                }
            }
        }
        // Keep the unfinished rest (unless the connection is ending: then nothing more counts).
        if self.core.phase.is_live() {
            frames.finish();
        } else {
            frames.discard();
        }
        env.budget.resize(held, input.len());
        if !input.is_empty() {
            self.core.io.get_or_insert_with(|| env.take_io()).input = input;
        } else if let Some(io) = self.core.io.as_mut() {
            io.input = input; // keep its capacity for the next unfinished frame
        }
    }

    /// The peer's FIN, with every whole frame before it decoded: a frame it left unfinished is
    /// a truncated frame; otherwise the handler decides (unless our side is shut already: then
    /// both are done).
    fn end_after_fin(&mut self, env: &mut Env) {
        if self.core.has_input() {
            self.core.end(Ending::Graceful(CloseReason::BadFrame));
            return;
        }
        if self.core.write != WriteSide::Open {
            self.core.peer_done = true;
            return;
        }
        let mut after = AfterFin::Close;
        self.call(env, |h, cx| after = h.on_peer_shutdown(cx));
        match after {
            AfterFin::Close => self.core.end(Ending::Graceful(CloseReason::PeerClosed)),
            AfterFin::KeepWriting => self.core.peer_done = true,
        }
    }

    fn pause(&mut self, env: &mut Env) {
        self.core.phase = Phase::Paused { at_end: false };
        WorkerCounters::add(&env.counters.paused, 1);
    }

    // ---- the one place that decides -----------------------------------------------------

    /// Moves the connection along after an event: pause or resume, end, close, remove; and
    /// says what the port must do for it.
    pub fn settle(&mut self, env: &mut Env) -> Actions {
        let mut a = Actions::default();
        let high = env.limits.write_high_water;

        // Resume below the low-water mark (and with budget to spare): decode what arrived
        // while paused before reading more.
        if let Phase::Paused { at_end } = self.core.phase
            && self.core.queued_bytes() <= env.limits.write_low_water()
            && !env.budget.exhausted()
        {
            self.core.phase = Phase::Open;
            if self.core.has_input() {
                self.decode_frames(env, &[]);
            }
            if self.core.phase == Phase::Open && self.core.queued_bytes() > high {
                self.pause(env);
            }
            match &mut self.core.phase {
                Phase::Paused { at_end: held } => *held |= at_end,
                Phase::Open if at_end => self.end_after_fin(env),
                _ => {}
            }
        } else if self.core.phase == Phase::Open && self.core.queued_bytes() > high {
            self.pause(env);
        }

        // Stop reading at once when paused or ending: every receive the kernel completes from
        // here on is data the connection has to hold.
        if self.core.reading == Reading::Armed && self.core.phase != Phase::Open {
            self.core.reading = Reading::Stopping;
            a.cancel_recv = true;
            a.submit_now = matches!(self.core.phase, Phase::Paused { .. });
        }
        if self.core.phase == Phase::Open
            && self.core.reading == Reading::Idle
            && !self.core.peer_done
        {
            self.core.reading = Reading::Armed;
            a.arm_recv = true;
        }

        // Queued output waits for the end-of-batch flush.
        let flushable = matches!(
            self.core.phase,
            Phase::Open | Phase::Paused { .. } | Phase::Ending(Ending::Graceful(_))
        );
        if let Some(io) = self.core.io.as_mut()
            && flushable
            && !io.dirty
            && io.in_flight == 0
            && !io.queued.is_empty()
        {
            io.dirty = true;
            a.flush = true;
        }

        // The sending side's half-close, once every queued byte is out; both sides done: end.
        if self.core.phase.is_live() && self.core.queued_bytes() == 0 {
            if self.core.write == WriteSide::Requested {
                self.core.write = WriteSide::InFlight;
                a.shutdown_write = true;
            }
            if self.core.write == WriteSide::Shut && self.core.peer_done {
                self.core.end(Ending::Graceful(CloseReason::PeerClosed));
            }
        }

        // Ending: close once the queue has drained (graceful) or at once (abort).
        if let Phase::Ending(ending) = self.core.phase {
            let ready = match ending {
                Ending::Abort(_) => true,
                Ending::Graceful(_) => self.core.queued_bytes() == 0,
            };
            if ready {
                self.handler.on_close(ending.reason());
                if let Some(io) = self.core.io.as_mut() {
                    env.budget.release(io.queued.len() + io.input.len());
                    io.queued.clear();
                    io.input.clear();
                }
                self.core.phase = Phase::Closed(ending);
                a.close = Some(ending);
            }
        }

        // Gone: closed, and the kernel has given back its receive and send.
        if let Phase::Closed(ending) = self.core.phase
            && !self.core.reading.in_kernel()
            && self.core.in_flight() == 0
            && self.core.write != WriteSide::InFlight
        {
            if let Some(io) = self.core.io.take() {
                env.give_io(io);
            }
            a.remove = Some(ending.reason());
            return a;
        }
        if self
            .core
            .io
            .as_ref()
            .is_some_and(|io| io.is_quiet() && !io.dirty)
        {
            let io = self.core.io.take().expect("checked above");
            env.give_io(io);
        }
        a
    }
}

#[cfg(test)]
mod tests;
