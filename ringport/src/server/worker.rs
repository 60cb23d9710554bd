//! [`Worker`]: one thread, one [`Port`], many connections — the tutorials' worker thread.
//!
//! The worker is the event loop: it waits for a batch of completions, turns each into an event
//! for its connection's state machine ([`Conn`], which does no I/O) and applies the
//! [`Actions`] that come back to its port. Once per batch it routes the pushes handlers made,
//! wakes each other worker it has mail for (once), flushes every connection that queued output
//! (so writes from many frames coalesce into one send) and re-arms its one timer.

use std::io;
use std::mem;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slab::Slab;

use super::accept::{Accepted, Acceptor, Source};
use super::codec::Codec;
use super::conn::{Actions, Conn, Env};
use super::handler::{ConnId, Handler};
use super::limits::{Budget, Held, Limits};
use super::metrics::WorkerCounters;
use super::push::{Dest, Mail, What};
use super::timers::{Due, Timers, tick_for, ticks_in};
use super::{ConnInfo, WorkerSet};
use crate::op;
use crate::port::{Completion, Completions, OpId, Outcome, Port};

pub(crate) const ACCEPT: u64 = u64::MAX;
const TIMER: u64 = u64::MAX - 1;
pub(crate) const MAILBOX: u64 = u64::MAX - 2;
pub(crate) const STOP: u64 = u64::MAX - 3;
const CLOSED: u64 = u64::MAX - 4;

/// Pool buffers one armed receive may fill before it must be re-armed (its byte cap).
const READ_AHEAD_BUFS: usize = 4;

fn conn_token(key: u32, generation: u32) -> u64 {
    u64::from(generation) << 32 | u64::from(key)
}

/// A connection's slot: what the port knows of it (socket, receive op) next to its state.
struct Slot<H> {
    /// The socket; `None` once its close is submitted.
    stream: Option<TcpStream>,
    /// The multishot receive in flight.
    recv: Option<OpId>,
    conn: Conn<H>,
}

/// A worker thread's state.
pub(crate) struct Worker<H, F> {
    index: u16,
    port: Port,
    conns: Slab<Slot<H>>,
    next_generation: u32,
    env: Env,
    factory: Arc<F>,
    shared: Arc<WorkerSet>,
    accept: Acceptor,
    timer: Option<(Instant, OpId)>,
    idle_ticks: Option<u32>,
    starved: Vec<u32>,
    /// Connections with output queued since the last flush.
    dirty: Vec<u32>,
    /// Mail for the other workers, sent once per batch.
    outgoing: Vec<Vec<Mail>>,
    stop_deadline: Option<Instant>,
    due: Vec<Due>,
    keys: Vec<u32>,
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
        shared: Arc<WorkerSet>,
    ) -> Worker<H, F> {
        let tick = tick_for(limits.idle_timeout);
        let idle_ticks = limits
            .idle_timeout
            .zip(tick)
            .map(|(timeout, tick)| ticks_in(timeout, tick));
        let counters = shared.counters[usize::from(index)].clone();
        WorkerCounters::set(&counters.pool_capacity, port.pool().capacity() as u64);
        let workers = shared.inboxes.len();
        Worker {
            index,
            port,
            conns: Slab::new(),
            next_generation: 0,
            env: Env::new(
                codec,
                limits,
                Held::new(budget),
                Timers::new(tick),
                counters,
            ),
            factory,
            shared,
            accept: Acceptor::new(index, workers, source),
            timer: None,
            idle_ticks,
            starved: Vec::new(),
            dirty: Vec::new(),
            outgoing: (0..workers).map(|_| Vec::new()).collect(),
            stop_deadline: None,
            due: Vec::new(),
            keys: Vec::new(),
        }
    }

    /// Serves until the server stops and every connection is gone.
    pub fn run(mut self) -> io::Result<()> {
        self.accept.arm(&mut self.port);
        let mut batch = Completions::with_capacity(512);
        loop {
            self.arm_timer()?;
            self.port.wait(&mut batch, None)?;
            for c in batch.drain() {
                self.dispatch(c);
            }
            self.after_batch();
            if self.stop_deadline.is_some() && self.conns.is_empty() && !self.accept.is_armed() {
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
            ACCEPT => {
                let stopping = self.stop_deadline.is_some();
                let counters = self.env.counters.clone();
                match self
                    .accept
                    .on_completion(&mut self.port, c, &counters, stopping)
                {
                    Some(Accepted::Here(stream, peer)) => self.open(stream, peer, false),
                    Some(Accepted::To(target, stream, peer)) => {
                        if let Err(stream) = self.shared.hand_over(target, stream, peer) {
                            // The target is gone (stopping): serve it here, or refuse it.
                            self.open(stream, peer, false);
                        }
                    }
                    None => {}
                }
            }
            TIMER => self.on_timer(c),
            MAILBOX => self.on_mailbox(),
            STOP => self.on_stop(),
            CLOSED => {}
            token => {
                let key = token as u32;
                let generation = (token >> 32) as u32;
                let Some(slot) = self
                    .conns
                    .get_mut(key as usize)
                    .filter(|slot| slot.conn.core.id.generation == generation)
                else {
                    return;
                };
                let env = &mut self.env;
                let actions = match c.outcome {
                    Outcome::RecvMulti { result, buf } => {
                        if !c.more {
                            slot.recv = None;
                        }
                        slot.conn.received(env, c.more, result, buf.as_deref())
                    }
                    Outcome::Send { result, buf } => slot.conn.sent(env, result, buf),
                    Outcome::Shutdown(result) => slot.conn.write_shut(env, result),
                    _ => return,
                };
                self.apply(key, actions);
            }
        }
        self.route_outbox();
    }

    // ---- applying a connection's actions -------------------------------------------------

    /// Does to the port what connection `key`'s state machine asked for.
    fn apply(&mut self, key: u32, mut a: Actions) {
        loop {
            let Some(slot) = self.conns.get_mut(key as usize) else {
                return;
            };
            if a.cancel_recv
                && let Some(recv) = slot.recv
                && self.port.cancel(recv).is_ok()
                && a.submit_now
            {
                let _ = self.port.flush();
            }
            if a.starved {
                self.starved.push(key);
            }
            if a.flush {
                self.dirty.push(key);
            }
            if a.shutdown_write
                && let Some(stream) = slot.stream.as_ref()
            {
                let half_close = op::Shutdown::new(stream, std::net::Shutdown::Write);
                let token = conn_token(key, slot.conn.core.id.generation);
                if let Err(e) = self.port.submit(half_close, token) {
                    a = slot.conn.write_shut(&mut self.env, Err(e));
                    continue;
                }
            }
            if let Some(ending) = a.close
                && let Some(stream) = slot.stream.take()
            {
                if matches!(ending, super::handler::Ending::Abort(_)) {
                    // Tell the peer with a reset rather than an orderly close.
                    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                }
                if let Err(e) = self.port.submit(op::Close::new(stream), CLOSED) {
                    tracing::error!(worker = self.index, "cannot submit a close: {e}");
                }
            }
            if let Some(reason) = a.remove {
                self.conns.remove(key as usize);
                self.env.groups.forget(key);
                let counters = &self.env.counters;
                WorkerCounters::add(&counters.closed[reason.index()], 1);
                counters
                    .active
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                self.shared.release();
                return;
            }
            if !a.arm_recv {
                return;
            }
            let stream = slot
                .stream
                .as_ref()
                .expect("an open connection has its socket");
            // Capped, so the kernel never reads more than a few buffers ahead of us: when the
            // connection must stop reading (backpressure), it holds at most that much more.
            let limit =
                u32::try_from(self.port.pool().buf_size() * READ_AHEAD_BUFS).unwrap_or(u32::MAX);
            let recv = op::RecvMulti::new(stream).limit(limit);
            let token = conn_token(key, slot.conn.core.id.generation);
            match self.port.submit(recv, token) {
                Ok(id) => {
                    slot.recv = Some(id);
                    return;
                }
                Err(e) => {
                    tracing::error!(worker = self.index, "cannot submit a receive: {e}");
                    a = slot.conn.arm_failed(&mut self.env);
                }
            }
        }
    }

    /// Runs `event` on connection `key` (if it is `generation`'s) and applies its actions.
    fn on_conn(
        &mut self,
        key: u32,
        generation: Option<u32>,
        event: impl FnOnce(&mut Conn<H>, &mut Env) -> Actions,
    ) -> bool {
        let Some(slot) = self.conns.get_mut(key as usize) else {
            return false;
        };
        if generation.is_some_and(|g| g != slot.conn.core.id.generation) {
            return false;
        }
        let actions = event(&mut slot.conn, &mut self.env);
        self.apply(key, actions);
        true
    }

    fn all_keys(&mut self) -> Vec<u32> {
        let mut keys = mem::take(&mut self.keys);
        keys.clear();
        keys.extend(self.conns.iter().map(|(k, _)| k as u32));
        keys
    }

    // ---- connections arriving ------------------------------------------------------------

    fn on_mailbox(&mut self) {
        let inbox = self.shared.take_mail(usize::from(self.index));
        for (stream, peer) in inbox.conns {
            self.open(stream, peer, true);
        }
        for mail in inbox.mail {
            self.deliver_here(mail);
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
        self.conns.insert(Slot {
            stream: Some(stream),
            recv: None,
            conn: Conn::new(id, peer, self.env.timers.ticks, handler),
        });
        self.on_conn(key, None, |conn, env| conn.open(env));
    }

    // ---- pushes --------------------------------------------------------------------------

    /// Routes what handlers addressed to other connections: here at once, to other workers
    /// at the end of the batch.
    fn route_outbox(&mut self) {
        while !self.env.outbox.is_empty() {
            for mail in mem::take(&mut self.env.outbox) {
                match mail.dest {
                    Dest::Conn(id) if id.worker != self.index => {
                        match self.outgoing.get_mut(usize::from(id.worker)) {
                            Some(out) => out.push(mail),
                            None => WorkerCounters::add(&self.env.counters.pushes_dropped, 1),
                        }
                    }
                    Dest::Conn(_) => self.deliver_here(mail),
                    Dest::All | Dest::Group(_) => {
                        let me = usize::from(self.index);
                        for (w, out) in self.outgoing.iter_mut().enumerate() {
                            if w != me {
                                out.push(mail.clone());
                            }
                        }
                        self.deliver_here(mail);
                    }
                }
            }
        }
    }

    /// Delivers mail to the connections of this worker it is for.
    fn deliver_here(&mut self, mail: Mail) {
        let mut keys = mem::take(&mut self.keys);
        keys.clear();
        let generation = match &mail.dest {
            Dest::Conn(id) => {
                keys.push(id.key);
                Some(id.generation)
            }
            Dest::All => {
                keys.extend(self.conns.iter().map(|(k, _)| k as u32));
                None
            }
            Dest::Group(name) => {
                self.env.groups.members(name, &mut keys);
                None
            }
        };
        for &key in &keys {
            if mail
                .except
                .is_some_and(|e| e.worker == self.index && e.key == key)
            {
                continue;
            }
            let found = self.on_conn(key, generation, |conn, env| match &mail.what {
                What::Bytes(bytes) => conn.push(env, bytes),
                What::Message(msg) => conn.message(env, msg),
                What::Close => conn.close(env),
            });
            if !found {
                // Gone: counted, never delivered to the slot's next owner.
                WorkerCounters::add(&self.env.counters.pushes_dropped, 1);
            }
        }
        self.keys = keys;
    }

    // ---- once per batch -----------------------------------------------------------------

    fn after_batch(&mut self) {
        self.route_outbox();
        let me = usize::from(self.index);
        for (w, out) in self.outgoing.iter_mut().enumerate() {
            if w != me && !out.is_empty() {
                let dropped = self.shared.post_mail(w, out);
                WorkerCounters::add(&self.env.counters.pushes_dropped, dropped as u64);
            }
        }

        let dirty = mem::take(&mut self.dirty);
        for &key in &dirty {
            self.flush(key);
        }
        let mut dirty = dirty;
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }

        if !self.starved.is_empty() && self.port.pool().available() > 0 {
            for key in mem::take(&mut self.starved) {
                self.on_conn(key, None, |conn, env| conn.buffers_back(env));
            }
        }
        let counters = &self.env.counters;
        WorkerCounters::set(&counters.pool_in_use, self.port.pool().in_use() as u64);
        WorkerCounters::set(&counters.buffered_bytes, self.env.budget.held() as u64);
    }

    /// Starts the next send of connection `key` if output is queued and none is in flight.
    fn flush(&mut self, key: u32) {
        let Some(slot) = self.conns.get_mut(key as usize) else {
            return;
        };
        let Some(out) = slot.conn.start_send() else {
            return;
        };
        let Some(stream) = slot.stream.as_ref() else {
            return;
        };
        let token = conn_token(key, slot.conn.core.id.generation);
        if let Err(e) = self.port.submit(op::Send::new(stream, out), token) {
            tracing::error!(worker = self.index, "cannot submit a send: {e}");
            self.on_conn(key, None, |conn, env| conn.send_failed(env));
        }
    }

    fn arm_timer(&mut self) -> io::Result<()> {
        let next = [
            self.env.timers.next_deadline(),
            self.accept.retry_at(),
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
            self.on_conn(d.key, Some(d.generation), |conn, env| conn.timer(env, d));
            self.route_outbox();
        }
        self.due = due;

        if self.env.timers.tick_due(now) {
            // Idle timeouts, and paused connections that may read again.
            let keys = self.all_keys();
            let limit = self.idle_ticks;
            for &key in &keys {
                self.on_conn(key, None, |conn, env| conn.tick(env, limit));
            }
            self.keys = keys;
        }
        self.accept.on_time(&mut self.port, now);
        if self.stop_deadline.is_some_and(|at| at <= now) {
            // The grace period is over: whatever has not flushed is dropped.
            let keys = self.all_keys();
            for &key in &keys {
                self.on_conn(key, None, |conn, env| conn.grace_over(env));
            }
            self.keys = keys;
            self.stop_deadline = Some(now + Duration::from_secs(3600));
        }
    }

    fn on_stop(&mut self) {
        if self.stop_deadline.is_some() {
            return;
        }
        self.stop_deadline = Some(Instant::now() + self.env.limits.shutdown_grace);
        self.accept.stop(&mut self.port);
        let inbox = self.shared.take_mail(usize::from(self.index));
        for (stream, _) in inbox.conns {
            drop(stream);
            WorkerCounters::add(&self.env.counters.rejected, 1);
        }
        for mail in inbox.mail {
            self.deliver_here(mail);
        }
        let keys = self.all_keys();
        for &key in &keys {
            self.on_conn(key, None, |conn, env| conn.shutdown(env));
            self.route_outbox();
        }
        self.keys = keys;
    }
}
