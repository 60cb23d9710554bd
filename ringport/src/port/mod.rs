//! [`Port`]: the completion port (`CreateIoCompletionPort` + `GetQueuedCompletionStatusEx`).

mod post;

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) use post::PostBox;
pub use post::Poster;

// What the layers above (the server framework) use of the port's vocabulary, from where it lives.
pub(crate) use crate::op::{Completion, Completions, OpId, Outcome, is_accept_aborted};
#[cfg(feature = "fault-injection")]
pub(crate) use crate::sys::Faults;
pub(crate) use crate::sys::{Backend, BackendChoice};

use crate::buf::{BufPool, MAX_POOL_BUFS};
use crate::op::{Op, OpKind, Operation, When};
use crate::sock::AsSock;
use crate::sys::{self, BACKEND_ENV, Driver, OpTable};

/// Settings for a new [`Port`].
#[derive(Clone, Debug)]
pub struct PortBuilder {
    backend: BackendChoice,
    queue_depth: u32,
    pool_buf_size: usize,
    pool_bufs: usize,
    #[cfg(feature = "fault-injection")]
    faults: Option<Faults>,
}

impl Default for PortBuilder {
    fn default() -> PortBuilder {
        PortBuilder {
            backend: BackendChoice::Auto,
            queue_depth: 1024,
            pool_buf_size: 4096,
            pool_bufs: 1024,
            #[cfg(feature = "fault-injection")]
            faults: None,
        }
    }
}

impl PortBuilder {
    /// Default settings: automatic backend, queue depth 1024, a pool of 1024 × 4 KiB buffers.
    pub fn new() -> PortBuilder {
        PortBuilder::default()
    }

    /// Chooses the backend ([`Backend`] or [`BackendChoice::Auto`]).
    pub fn backend(mut self, backend: impl Into<BackendChoice>) -> PortBuilder {
        self.backend = backend.into();
        self
    }

    /// How many submissions the kernel queue holds before they are flushed (io_uring SQ size;
    /// the completion queue is 8 times larger). Operations in flight are not limited by it.
    pub fn queue_depth(mut self, entries: u32) -> PortBuilder {
        self.queue_depth = entries;
        self
    }

    /// The port's pool for multishot receives: `count` buffers of `buf_size` bytes.
    pub fn pool(mut self, buf_size: usize, count: usize) -> PortBuilder {
        self.pool_buf_size = buf_size;
        self.pool_bufs = count;
        self
    }

    /// Injects faults into this port's completions (tests only; see [`Faults`]).
    #[cfg(feature = "fault-injection")]
    pub fn faults(mut self, faults: Faults) -> PortBuilder {
        self.faults = Some(faults);
        self
    }

    /// Creates the port.
    pub fn build(self) -> io::Result<Port> {
        if self.queue_depth == 0 || self.queue_depth > 32768 {
            return Err(invalid(format!(
                "queue depth {} out of range 1..=32768",
                self.queue_depth
            )));
        }
        if self.pool_buf_size == 0 || !(1..=MAX_POOL_BUFS).contains(&self.pool_bufs) {
            return Err(invalid(format!(
                "pool of {} × {} bytes: need 1..={MAX_POOL_BUFS} buffers of at least 1 byte",
                self.pool_bufs, self.pool_buf_size
            )));
        }
        let choice = match self.backend {
            BackendChoice::Auto => match std::env::var(BACKEND_ENV) {
                Ok(v) => v.parse().map_err(|e: io::Error| {
                    io::Error::new(e.kind(), format!("{BACKEND_ENV}: {e}"))
                })?,
                Err(_) => BackendChoice::Auto,
            },
            forced => forced,
        };
        let pool = BufPool::new(self.pool_buf_size, self.pool_bufs);
        let settings = sys::Settings {
            queue_depth: self.queue_depth,
            pool: pool.clone(),
        };
        let opened = sys::open(choice, &settings)?;
        if let Some(reason) = &opened.fallback {
            tracing::warn!(backend = %opened.driver.backend(), "{reason}");
        }
        #[cfg(feature = "fault-injection")]
        let opened = sys::Opened {
            driver: match self.faults {
                Some(plan) => Box::new(sys::FaultyDriver::new(opened.driver, plan)),
                None => opened.driver,
            },
            ..opened
        };
        let posts = PostBox::new(opened.waker);
        Ok(Port {
            driver: opened.driver,
            table: OpTable::default(),
            posts,
            pool,
            fallback: opened.fallback,
        })
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// A completion port: submit operations with their buffers, wait for batches of completions.
///
/// The model of the tutorials, made safe:
///
/// | IOCP                                   | ringport                                   |
/// |----------------------------------------|--------------------------------------------|
/// | `CreateIoCompletionPort(INVALID, …)`   | [`Port::new`], [`Port::builder`]           |
/// | `CreateIoCompletionPort(sock, port, key)` | [`Port::associate`] (key: per-op token) |
/// | `WSARecv`, `WSASend`, `AcceptEx`, …    | [`Port::submit`] with an [`op`](crate::op) |
/// | `GetQueuedCompletionStatusEx`          | [`Port::wait`]                             |
/// | `PostQueuedCompletionStatus`           | [`Poster::post`]                           |
/// | `CancelIoEx`                           | [`Port::cancel`], [`Port::cancel_token`]   |
///
/// A port is driven by one thread at a time (`&mut self`); it can be moved between threads, and
/// [`Poster`]s reach it from any thread. For several threads, give each its own port (as the
/// [`server`](crate) framework does) rather than sharing one.
///
/// Dropping a port cancels every operation still in flight, waits until the kernel has let go of
/// all their buffers, and frees everything (see the lifecycle in [`op`](crate::op)).
pub struct Port {
    driver: Box<dyn Driver>,
    table: OpTable,
    posts: Arc<PostBox>,
    pool: BufPool,
    fallback: Option<String>,
}

impl Port {
    /// A port with default settings and the automatic backend choice.
    pub fn new() -> io::Result<Port> {
        PortBuilder::new().build()
    }

    /// Settings for a new port.
    pub fn builder() -> PortBuilder {
        PortBuilder::new()
    }

    /// The backend this port runs on.
    pub fn backend(&self) -> Backend {
        self.driver.backend()
    }

    /// Why the automatic choice did not pick the best backend (e.g. io_uring blocked by seccomp),
    /// if it fell back.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// Whether this port's backend can run operations of `kind`.
    pub fn supports(&self, kind: OpKind) -> bool {
        self.driver.supports(kind)
    }

    /// The pool that feeds multishot receives ([`op::RecvMulti`](crate::op::RecvMulti)).
    pub fn pool(&self) -> &BufPool {
        &self.pool
    }

    /// Number of operations in flight (submitted, final completion not yet returned by `wait`).
    pub fn in_flight(&self) -> usize {
        self.table.len()
    }

    /// A handle to post completions to this port from any thread.
    pub fn poster(&self) -> Poster {
        Poster::new(self.posts.clone())
    }

    /// Associates a socket with the port (`CreateIoCompletionPort(socket, port, …)`): makes it
    /// non-blocking and lets the backend set it up. Call it before the first operation on a
    /// socket you created yourself, and on a socket another port made (say, one an acceptor
    /// thread accepted) before its first operation on this port.
    ///
    /// **A socket is associated with the port that first runs an operation on it** (or that
    /// `associate` names first), not with the port that made it. Sockets a port made —
    /// accepted, or connected by [`op::Connect`](crate::op::Connect) — are non-blocking already;
    /// an accepted one is associated by its first operation on the port that accepted it, or
    /// can be handed to another port (another thread's) and associated there. Naming a socket
    /// again to the port it is associated with is harmless.
    ///
    /// On IOCP a socket stays with its port for life (Windows allows one completion port per
    /// socket): `associate` on another port, or an operation submitted there, fails with
    /// `ErrorKind::InvalidInput` (the operation's completion reports it). The port remembers
    /// the sockets it associated by handle value, and forgets one when it closes it
    /// ([`op::Close`](crate::op::Close)); so close sockets through the port that ran
    /// operations on them (or only after dropping that port), since Windows reuses handle
    /// values.
    /// On io_uring and epoll any port may run operations on any socket.
    pub fn associate(&mut self, sock: &impl AsSock) -> io::Result<()> {
        self.driver.associate(sock.as_sock())
    }

    /// Starts an operation; its completion will carry `token`.
    ///
    /// The op (and its buffer) belongs to the port until its final completion, which also
    /// reports any failure of the operation itself (refused, reset, bad socket…). `submit` only
    /// fails when the operation cannot start at all: `Unsupported` when the backend lacks it
    /// (see [`supports`](Port::supports)), or an error of the port's own kernel object.
    pub fn submit(&mut self, op: impl Operation, token: u64) -> io::Result<OpId> {
        self.start(op.into_op().0, token, None)
    }

    /// Starts an operation that must complete within `timeout`; its completion will carry
    /// `token`.
    ///
    /// It completes once, like any op: with its own result if it finishes in time, or, if the
    /// deadline passes first, the op is cancelled and completes with its usual outcome whose
    /// error is [`io::ErrorKind::TimedOut`] (the buffer comes back as with any cancel). A result
    /// the op had already produced is kept, as on a cancel: a send that got bytes out reports
    /// `Ok(bytes)`, an op that finished in the race reports what it did. The deadline counts from
    /// this call, also while the op waits in its socket's lane behind earlier ops (a send behind
    /// a send). [`Port::cancel`] before the deadline ends it as cancelled, not timed out.
    ///
    /// Every op takes a timeout except the multishot ones ([`op::AcceptMulti`](crate::op::AcceptMulti),
    /// [`op::RecvMulti`](crate::op::RecvMulti)), which run until cancelled by design: for them
    /// this fails with `InvalidInput` (stop one with a separate [`op::Timeout`](crate::op::Timeout)
    /// and [`Port::cancel`]). An [`op::Close`](crate::op::Close) completes without waiting on
    /// every backend, so its timeout never comes into play.
    ///
    /// | backend  | how |
    /// |----------|-----|
    /// | io_uring | `IORING_OP_LINK_TIMEOUT` linked to the op's SQE (absolute, `CLOCK_MONOTONIC`); while the op still waits in its lane, the driver's deadline heap |
    /// | epoll    | the driver's deadline heap; at the deadline the op is cancelled |
    /// | IOCP     | the driver's deadline heap; at the deadline `CancelIoEx` (or, still in its lane, the op ends at once) |
    pub fn submit_with_timeout(
        &mut self,
        op: impl Operation,
        token: u64,
        timeout: Duration,
    ) -> io::Result<OpId> {
        let op = op.into_op().0;
        let kind = op.kind();
        if matches!(kind, OpKind::AcceptMulti | OpKind::RecvMulti) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{kind:?} runs until cancelled: it takes no timeout"),
            ));
        }
        let deadline = When::After(timeout).deadline(Instant::now());
        self.start(op, token, Some(deadline))
    }

    /// Puts `op` in the table (with its linked deadline, if any) and hands it to the driver.
    fn start(&mut self, op: Op, token: u64, deadline: Option<Instant>) -> io::Result<OpId> {
        let kind = op.kind();
        if !self.driver.supports(kind) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "the {} backend of this port cannot run {kind:?} operations",
                    self.backend()
                ),
            ));
        }
        let id = self.table.insert(op, token);
        if let Some(entry) = self.table.get_mut(id) {
            entry.deadline = deadline;
        }
        if let Err(e) = self.driver.submit(&mut self.table, id) {
            // The op never reached the kernel: it (and its buffer) is dropped here.
            self.table.remove(id);
            return Err(e);
        }
        Ok(id)
    }

    /// Asks the kernel to end operation `id` early (`CancelIoEx`).
    ///
    /// The op still delivers its final completion through [`wait`](Port::wait): cancelled, or
    /// its real result if it finished first (nothing it received is ever lost). Fails with
    /// `NotFound` if `id` is not in flight.
    pub fn cancel(&mut self, id: OpId) -> io::Result<()> {
        let Some(entry) = self.table.get_mut(id) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{id:?} is not in flight"),
            ));
        };
        entry.cancel_asked = true;
        self.driver.cancel(&mut self.table, id)
    }

    /// Cancels every in-flight operation submitted with `token`; returns how many it asked to end.
    pub fn cancel_token(&mut self, token: u64) -> io::Result<usize> {
        let ids = self.table.ids_with_token(token);
        for &id in &ids {
            if let Some(entry) = self.table.get_mut(id) {
                entry.cancel_asked = true;
            }
            self.driver.cancel(&mut self.table, id)?;
        }
        Ok(ids.len())
    }

    /// Hands queued submissions to the kernel now, without waiting for completions.
    ///
    /// `wait` does this anyway, batched with its wait; call `flush` when an operation must reach
    /// the kernel before the thread next waits — e.g. a cancel that should stop a receive
    /// before it takes more data. A no-op on backends that start operations at submit.
    pub fn flush(&mut self) -> io::Result<()> {
        self.driver.flush(&mut self.table)
    }

    /// Waits for completions and puts up to `out.capacity()` of them in `out`
    /// (`GetQueuedCompletionStatusEx`), replacing what it held. Returns how many.
    ///
    /// Queued submissions go to the kernel first, in one batch. `timeout` bounds the wait:
    /// `None` waits until at least one completion is ready, `Some(Duration::ZERO)` only collects
    /// what is ready now. Returns 0 only when the timeout expired first.
    pub fn wait(&mut self, out: &mut Completions, timeout: Option<Duration>) -> io::Result<usize> {
        out.items.clear();
        let deadline = timeout.map(|t| Instant::now().checked_add(t));
        loop {
            self.collect(out);
            let remaining = match deadline {
                None => None,
                Some(None) => None, // too far away to represent: wait forever
                Some(Some(d)) => Some(d.saturating_duration_since(Instant::now())),
            };
            let block = out.items.is_empty() && remaining != Some(Duration::ZERO);
            let sleeping = block && self.posts.prepare_sleep();
            if block && !sleeping {
                continue; // a post arrived: collect it
            }
            let wait_for = if block {
                remaining
            } else {
                Some(Duration::ZERO)
            };
            let want = out.max - out.items.len();
            let res = if out.items.is_empty() {
                self.driver.wait(&mut self.table, want, wait_for)
            } else {
                // Completions are at hand: only pick up what else is ready.
                self.driver.poll(&mut self.table, want)
            };
            if sleeping {
                self.posts.woke();
            }
            res?;
            self.collect(out);
            let expired = remaining.is_some_and(|r| r.is_zero())
                || matches!(deadline, Some(Some(d)) if Instant::now() >= d);
            if !out.items.is_empty() || expired {
                return Ok(out.items.len());
            }
        }
    }

    /// Moves ready completions (kernel ones first, then posted ones) into `out`.
    fn collect(&mut self, out: &mut Completions) {
        let room = out.max - out.items.len();
        let n = room.min(self.table.ready.len());
        out.items.extend(self.table.ready.drain(..n));
        let room = out.max - out.items.len();
        self.posts.drain_into(&mut out.items, room);
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        self.posts.close();
        self.driver.shutdown(&mut self.table);
        self.table.ready.clear();
    }
}

impl fmt::Debug for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Port")
            .field("backend", &self.backend())
            .field("in_flight", &self.in_flight())
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::op;
    use std::net::{TcpListener, TcpStream};

    /// Many connections ending at once, collected in small batches: the port's queue of ready
    /// completions stays within one kernel batch (1,024 events) plus one caller batch, instead
    /// of growing with every poll while the caller's batch is full. (The sockets come from std's
    /// blocking `accept`: the port makes them non-blocking itself.)
    #[test]
    fn a_burst_of_completions_does_not_grow_the_ready_queue() {
        const CONNS: usize = 2000;
        const BATCH: usize = 8;
        for &backend in Backend::compiled() {
            let mut port = Port::builder().backend(backend).build().unwrap();
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let mut clients = Vec::with_capacity(CONNS);
            let mut servers = Vec::with_capacity(CONNS);
            for i in 0..CONNS {
                clients.push(TcpStream::connect(addr).unwrap());
                let (server, _) = listener.accept().unwrap();
                port.submit(op::RecvMulti::new(&server), i as u64).unwrap();
                servers.push(server);
            }
            let mut batch = Completions::with_capacity(BATCH);
            port.wait(&mut batch, Some(Duration::from_millis(50)))
                .unwrap();
            assert_eq!(batch.len(), 0, "{backend}: nothing has happened yet");
            drop(clients); // every connection ends at once
            let mut ended = 0;
            let mut peak = 0;
            let deadline = Instant::now() + Duration::from_secs(30);
            while ended < CONNS {
                assert!(Instant::now() < deadline, "{backend}: {ended} ended");
                port.wait(&mut batch, Some(Duration::from_millis(100)))
                    .unwrap();
                ended += batch.iter().filter(|c| !c.more).count();
                peak = peak.max(port.table.ready.len());
            }
            assert!(
                peak <= 1024 + BATCH,
                "{backend}: {peak} completions queued at once"
            );
        }
    }
}
