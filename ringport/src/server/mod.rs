//! The TCP server framework: worker threads, handlers, codecs, limits, shutdown, metrics.
//!
//! This is the tutorials' server done the way a production game server or gateway needs it:
//!
//! - **Workers**: N threads (default: one per CPU), each owning its own [`Port`]
//!   (thread-per-core); a connection lives on one worker for its whole life.
//! - **Accept**: each worker has its own `SO_REUSEPORT` listener with a multishot accept, and
//!   the kernel spreads connections over them ([`AcceptMode::ReusePort`], the default on
//!   Linux); or one acceptor hands sockets to the workers in turn through a mailbox and a posted
//!   completion ([`AcceptMode::Handoff`], the only mode on Windows). docs/ARCHITECTURE.md says
//!   why the default is what it is.
//! - **Handler**: per-connection state with callbacks ([`Handler`]); [`Ctx`] sends (ordered,
//!   coalesced while a send is in flight), closes gracefully or aborts, reads the peer address,
//!   sets timers.
//! - **Framing**: [`Codec`]s split the byte stream into frames — raw, length-prefixed (u16/u32
//!   big-endian), lines — reassembling partial frames across reads and delivering several
//!   frames of one read in order.
//! - **Limits** ([`Limits`]): max connections, max frame size, idle timeout, max queued write
//!   bytes with a backpressure high-water mark, a memory budget for buffers.
//! - **Shutdown**: [`Server::shutdown`] (or SIGINT/SIGTERM with
//!   [`ServerHandle::shutdown_on_signals`]) stops accepting, lets queued writes flush up to the
//!   grace period, closes every connection with [`CloseReason::Shutdown`], joins the workers
//!   and frees everything.
//! - **Metrics** ([`Metrics`]): per worker and in total, as Prometheus text too.
//!
//! ```no_run
//! use ringport::server::{Echo, Server};
//!
//! # fn main() -> std::io::Result<()> {
//! let server = Server::builder("127.0.0.1:7000".parse().unwrap())
//!     .serve(|_conn| Echo)?;
//! println!("listening on {}", server.local_addr());
//! server.handle().shutdown_on_signals()?;
//! let metrics = server.join()?;
//! println!("{metrics}");
//! # Ok(())
//! # }
//! ```

mod accept;
mod codec;
mod conn;
mod handler;
mod limits;
mod metrics;
mod push;
mod reassembly;
mod timers;
mod warn_limit;

mod worker;

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

pub use codec::{
    Codec, CodecKind, Frame, FrameError, LenWidth, LengthPrefixed, Lines, RAW_CHUNK, Raw,
};
pub use handler::{AfterFin, CloseReason, ConnId, Ctx, Handler, SendError};
pub use limits::{Limits, LimitsError};
pub use metrics::{Metrics, WorkerMetrics};
pub use reassembly::Reassembly;

use self::accept::Source;
use self::handler::frame_once;
use self::limits::Budget;
use self::metrics::WorkerCounters;
use self::push::{Dest, Inbox, Mail, What};
use self::worker::{MAILBOX, STOP, Worker};
use crate::port::{Backend, BackendChoice, Port, Poster};

/// How connections reach the workers.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum AcceptMode {
    /// Each worker has its own listener on the address (`SO_REUSEPORT`) with a multishot
    /// accept; the kernel spreads connections. Linux only.
    #[cfg_attr(target_os = "linux", default)]
    ReusePort,
    /// Worker 0 accepts and hands connections to every worker in turn.
    #[cfg_attr(not(target_os = "linux"), default)]
    Handoff,
}

/// A name that is not one of a setting's choices (a codec, an accept mode), as `FromStr` on
/// those settings reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownChoice {
    /// What was being named (`codec`, `accept mode`).
    pub what: &'static str,
    /// The name given.
    pub given: String,
    /// The names there are.
    pub expected: &'static str,
}

impl fmt::Display for UnknownChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} {:?}: expected {}",
            self.what, self.given, self.expected
        )
    }
}

impl std::error::Error for UnknownChoice {}

impl std::str::FromStr for AcceptMode {
    type Err = UnknownChoice;
    fn from_str(s: &str) -> Result<AcceptMode, UnknownChoice> {
        match s {
            "reuseport" => Ok(AcceptMode::ReusePort),
            "handoff" => Ok(AcceptMode::Handoff),
            other => Err(UnknownChoice {
                what: "accept mode",
                given: other.to_string(),
                expected: "reuseport or handoff",
            }),
        }
    }
}

/// What a handler factory learns about a new connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The connection's id.
    pub id: ConnId,
    /// The peer's address.
    pub peer: SocketAddr,
    /// The worker serving it.
    pub worker: usize,
}

/// An echo handler: sends every frame back, framed the same way.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

impl Handler for Echo {
    fn on_frame(&mut self, cx: &mut Ctx<'_>, frame: &[u8]) {
        // A refused echo (limit) closes the connection; nothing else to do here.
        let _ = cx.send(frame);
    }
}

/// Settings for a [`Server`].
#[derive(Clone)]
pub struct ServerBuilder {
    addr: SocketAddr,
    workers: usize,
    backend: BackendChoice,
    codec: Arc<dyn Codec>,
    limits: Limits,
    accept: AcceptMode,
    recv_buffer_size: usize,
    queue_depth: u32,
    #[cfg(feature = "fault-injection")]
    faults: Option<crate::port::Faults>,
    on_worker_start: Option<Arc<WorkerStart>>,
}

/// A hook run on each worker thread as it starts (see [`ServerBuilder::on_worker_start`]).
type WorkerStart = dyn Fn(usize) + Send + Sync;

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("addr", &self.addr)
            .field("workers", &self.workers)
            .field("backend", &self.backend)
            .field("codec", &self.codec.name())
            .field("limits", &self.limits)
            .field("accept", &self.accept)
            .finish_non_exhaustive()
    }
}

impl ServerBuilder {
    /// A server on `addr` with the defaults: one worker per CPU, the automatic backend, raw
    /// framing, [`Limits::default`].
    pub fn new(addr: SocketAddr) -> ServerBuilder {
        ServerBuilder {
            addr,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            backend: BackendChoice::Auto,
            codec: Arc::new(Raw),
            limits: Limits::default(),
            accept: AcceptMode::default(),
            recv_buffer_size: 16 << 10,
            queue_depth: 1024,
            #[cfg(feature = "fault-injection")]
            faults: None,
            on_worker_start: None,
        }
    }

    /// Injects faults into every worker's port (tests only; each worker gets its own schedule,
    /// derived from the seed).
    #[cfg(feature = "fault-injection")]
    pub fn faults(mut self, faults: crate::port::Faults) -> ServerBuilder {
        self.faults = Some(faults);
        self
    }

    /// Number of worker threads (at least 1).
    pub fn workers(mut self, n: usize) -> ServerBuilder {
        self.workers = n;
        self
    }

    /// The backend every worker's port uses.
    pub fn backend(mut self, backend: impl Into<BackendChoice>) -> ServerBuilder {
        self.backend = backend.into();
        self
    }

    /// The framing codec.
    pub fn codec(mut self, codec: impl Codec) -> ServerBuilder {
        self.codec = Arc::new(codec);
        self
    }

    /// A built-in framing codec by kind.
    pub fn codec_kind(mut self, kind: CodecKind) -> ServerBuilder {
        self.codec = kind.codec();
        self
    }

    /// The limits.
    pub fn limits(mut self, limits: Limits) -> ServerBuilder {
        self.limits = limits;
        self
    }

    /// How connections reach the workers.
    pub fn accept_mode(mut self, mode: AcceptMode) -> ServerBuilder {
        self.accept = mode;
        self
    }

    /// Size of each receive-pool buffer (default 16 KiB): the most one receive completion holds.
    pub fn recv_buffer_size(mut self, bytes: usize) -> ServerBuilder {
        self.recv_buffer_size = bytes;
        self
    }

    /// Submission queue size of every worker's port.
    pub fn queue_depth(mut self, entries: u32) -> ServerBuilder {
        self.queue_depth = entries;
        self
    }

    /// Runs `f(index)` on every worker thread as it starts, before the worker creates its port:
    /// e.g. to pin worker `index` to a CPU (the tokio runtime's `on_thread_start`).
    pub fn on_worker_start(mut self, f: impl Fn(usize) + Send + Sync + 'static) -> ServerBuilder {
        self.on_worker_start = Some(Arc::new(f));
        self
    }

    /// Starts the workers and serves, creating a handler for every connection with `factory`.
    ///
    /// Returns once every worker has its port and the listener is bound: connections are
    /// accepted from then on.
    pub fn serve<H, F>(self, factory: F) -> io::Result<Server>
    where
        H: Handler,
        F: Fn(&ConnInfo) -> H + Send + Sync + 'static,
    {
        let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
        self.limits.validate().map_err(|e| invalid(e.to_string()))?;
        if self.workers == 0 || self.workers > usize::from(u16::MAX) {
            return Err(invalid(format!("{} workers: need 1..=65535", self.workers)));
        }
        if self.recv_buffer_size == 0 {
            return Err(invalid("the receive buffer size must be positive".into()));
        }
        if self.accept == AcceptMode::ReusePort && !cfg!(target_os = "linux") {
            return Err(invalid(
                "SO_REUSEPORT accept needs Linux; use handoff".into(),
            ));
        }
        let workers = self.workers;
        let (listeners, local_addr) = bind(self.addr, self.accept, workers)?;

        // A quarter of the budget for the receive pools, the rest for connection buffers.
        let pool_bytes = self.limits.memory_budget / 4;
        let pool_bufs =
            (pool_bytes / workers / self.recv_buffer_size).clamp(16, crate::buf::MAX_POOL_BUFS);
        let budget = Arc::new(Budget::new(self.limits.memory_budget - pool_bytes));

        let shared = Arc::new(WorkerSet {
            active: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            counters: (0..workers).map(|_| Arc::default()).collect(),
            inboxes: (0..workers).map(|_| Mutex::default()).collect(),
            posters: OnceLock::new(),
            codec: self.codec.clone(),
        });
        let factory = Arc::new(factory);
        let mut sources: Vec<Source> = listeners
            .into_iter()
            .map(|l| match self.accept {
                AcceptMode::ReusePort => Source::Listener(l),
                AcceptMode::Handoff => Source::Acceptor(l),
            })
            .collect();
        sources.resize_with(workers, || Source::Mailbox);

        let mut threads = Vec::with_capacity(workers);
        let mut posters = Vec::with_capacity(workers);
        let mut starts = Vec::with_capacity(workers);
        let mut backend = None;
        let mut fallback = None;
        for (index, source) in sources.into_iter().enumerate() {
            let (ready_tx, ready_rx) = mpsc::channel();
            let (go_tx, go_rx) = mpsc::channel::<bool>();
            let port_builder = Port::builder()
                .backend(self.backend)
                .queue_depth(self.queue_depth)
                .pool(self.recv_buffer_size, pool_bufs);
            #[cfg(feature = "fault-injection")]
            let port_builder = match &self.faults {
                Some(f) => port_builder.faults(crate::port::Faults {
                    seed: f.seed.wrapping_add(index as u64),
                    ..f.clone()
                }),
                None => port_builder,
            };
            let codec = self.codec.clone();
            let limits = self.limits.clone();
            let budget = budget.clone();
            let factory = factory.clone();
            let shared_w = shared.clone();
            let on_start = self.on_worker_start.clone();
            let thread = std::thread::Builder::new()
                .name(format!("ringport-worker-{index}"))
                .spawn(move || -> io::Result<()> {
                    if let Some(f) = on_start {
                        f(index);
                    }
                    let port = match port_builder.build() {
                        Ok(port) => port,
                        Err(e) => {
                            let _ = ready_tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                            return Err(e);
                        }
                    };
                    let info = (
                        port.poster(),
                        port.backend(),
                        port.fallback_reason().map(str::to_owned),
                    );
                    let _ = ready_tx.send(Ok(info));
                    if go_rx.recv() != Ok(true) {
                        return Ok(());
                    }
                    let worker = Worker::new(
                        index as u16,
                        port,
                        source,
                        codec,
                        limits,
                        budget,
                        factory,
                        shared_w,
                    );
                    worker.run()
                })?;
            threads.push(thread);
            starts.push(go_tx);
            match ready_rx.recv() {
                Ok(Ok((poster, b, why))) => {
                    posters.push(poster);
                    backend = Some(b);
                    fallback = fallback.or(why);
                }
                Ok(Err(e)) => {
                    for go in &starts {
                        let _ = go.send(false);
                    }
                    for t in threads {
                        let _ = t.join();
                    }
                    return Err(e);
                }
                Err(_) => return Err(io::Error::other("a worker thread died while starting")),
            }
        }
        let _ = shared.posters.set(posters);
        for go in starts {
            let _ = go.send(true);
        }
        Ok(Server {
            shared,
            threads,
            local_addr,
            backend: backend.expect("at least one worker"),
            fallback,
            codec: self.codec.name(),
            workers,
        })
    }
}

/// How long a bind retries while the address is in use. A server killed with SIGKILL on
/// io_uring leaves its listeners open until the kernel has torn its rings down, a few tens of
/// milliseconds after the process is gone (epoll releases them with the process); a restart in
/// that window would fail with "address in use" for a listener nobody holds any more.
const BIND_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Binds `sock` to `addr`, retrying for up to [`BIND_RETRY`] while the address is in use.
fn bind_retrying(sock: &socket2::Socket, addr: SocketAddr) -> io::Result<()> {
    let started = std::time::Instant::now();
    loop {
        match sock.bind(&addr.into()) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && started.elapsed() < BIND_RETRY => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "cannot listen on {addr}: {e} (still in use after {} ms)",
                        BIND_RETRY.as_millis()
                    ),
                ));
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot listen on {addr}: {e}"),
                ));
            }
        }
    }
}

/// Binds the listener(s): one per worker with `SO_REUSEPORT`, or one for the acceptor.
fn bind(
    addr: SocketAddr,
    mode: AcceptMode,
    workers: usize,
) -> io::Result<(Vec<TcpListener>, SocketAddr)> {
    use socket2::{Domain, Socket, Type};
    let count = match mode {
        AcceptMode::ReusePort => workers,
        AcceptMode::Handoff => 1,
    };
    let mut listeners = Vec::with_capacity(count);
    let mut bound = addr;
    if mode == AcceptMode::ReusePort && addr.port() != 0 {
        // A second SO_REUSEPORT group member would bind "successfully" to a port another
        // server already serves, and silently take half its connections. A plain socket
        // cannot bind there: probe with one first, so a busy address is an error.
        let probe = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        probe.set_reuse_address(true)?;
        bind_retrying(&probe, addr)?;
    }
    for _ in 0..count {
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        // Unix: a restarted server binds while its old connections sit in TIME_WAIT. Not on
        // Windows, where SO_REUSEADDR lets a socket bind to a port another listener holds
        // ("socket hijacking"; std and mio leave it off there too).
        #[cfg(unix)]
        sock.set_reuse_address(true)?;
        #[cfg(target_os = "linux")]
        if mode == AcceptMode::ReusePort {
            sock.set_reuse_port(true)?;
        }
        sock.set_nonblocking(true)?;
        if listeners.is_empty() {
            bind_retrying(&sock, bound)?;
        } else {
            sock.bind(&bound.into())
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        }
        sock.listen(4096)?;
        let listener: TcpListener = sock.into();
        // Port 0 picks a free port: the other workers' listeners join that one.
        bound = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok((listeners, bound))
}

/// The server's workers as one another and the handle see them: the connection count, each
/// worker's counters and inbox, the posters that wake them.
pub(crate) struct WorkerSet {
    active: AtomicUsize,
    stopping: AtomicBool,
    pub(crate) counters: Vec<Arc<WorkerCounters>>,
    /// Each worker's mailbox: handed-over connections and pushes.
    pub(crate) inboxes: Vec<Mutex<Inbox>>,
    posters: OnceLock<Vec<Poster>>,
    /// The server's codec, to frame pushes from outside the workers.
    codec: Arc<dyn Codec>,
}

impl WorkerSet {
    /// Counts a new connection in, unless `max` are open already.
    pub(crate) fn admit(&self, max: usize) -> bool {
        if self.active.fetch_add(1, Ordering::AcqRel) >= max {
            self.active.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Counts a connection out.
    pub(crate) fn release(&self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
    }

    fn inbox(&self, target: usize) -> std::sync::MutexGuard<'_, Inbox> {
        self.inboxes[target]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Fills worker `target`'s inbox with `fill`, and wakes the worker if the inbox was
    /// empty (if not, a wake-up is on its way already: the worker takes everything at once).
    /// False if the worker is gone.
    fn to_inbox(&self, target: usize, fill: impl FnOnce(&mut Inbox)) -> bool {
        let Some(poster) = self.posters.get().and_then(|p| p.get(target)) else {
            return false;
        };
        let mut inbox = self.inbox(target);
        let was_empty = inbox.is_empty();
        fill(&mut inbox);
        drop(inbox);
        !was_empty || poster.post(MAILBOX, 0).is_ok()
    }

    /// Hands a connection to worker `target`; gives it back if that worker is gone.
    pub(crate) fn hand_over(
        &self,
        target: usize,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Result<(), TcpStream> {
        if self.posters.get().and_then(|p| p.get(target)).is_none() {
            return Err(stream);
        }
        if self.to_inbox(target, |inbox| inbox.conns.push((stream, peer))) {
            return Ok(());
        }
        match self.inbox(target).conns.pop() {
            Some((stream, _)) => Err(stream),
            None => Ok(()), // taken after all
        }
    }

    /// Moves `mail` into worker `target`'s inbox (one wake-up for all of it). Returns how many
    /// were dropped because the worker is gone.
    pub(crate) fn post_mail(&self, target: usize, mail: &mut Vec<Mail>) -> usize {
        let count = mail.len();
        if self.to_inbox(target, |inbox| inbox.mail.append(mail)) {
            0
        } else {
            mail.clear();
            count
        }
    }

    /// Takes everything waiting in worker `index`'s mailbox.
    pub(crate) fn take_mail(&self, index: usize) -> Inbox {
        std::mem::take(&mut *self.inbox(index))
    }

    /// Mail from outside the workers: to the connection's worker, or to every worker.
    fn send_mail(&self, dest: Dest, what: What) -> Result<(), SendError> {
        if self.stopping.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        let mail = Mail {
            dest,
            except: None,
            what,
        };
        let dropped = match &mail.dest {
            Dest::Conn(id) if usize::from(id.worker) < self.inboxes.len() => {
                self.post_mail(usize::from(id.worker), &mut vec![mail])
            }
            Dest::Conn(_) => 1,
            Dest::All | Dest::Group(_) => (0..self.inboxes.len())
                .map(|w| self.post_mail(w, &mut vec![mail.clone()]))
                .sum(),
        };
        if dropped > 0 {
            return Err(SendError::Closed);
        }
        Ok(())
    }

    fn stop(&self) {
        if self.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        for poster in self.posters.get().into_iter().flatten() {
            let _ = poster.post(STOP, 0);
        }
    }
}

/// A running server. Dropping it shuts it down and waits for its workers.
pub struct Server {
    shared: Arc<WorkerSet>,
    threads: Vec<JoinHandle<io::Result<()>>>,
    local_addr: SocketAddr,
    backend: Backend,
    fallback: Option<String>,
    codec: &'static str,
    workers: usize,
}

impl Server {
    /// Settings for a server on `addr`.
    pub fn builder(addr: SocketAddr) -> ServerBuilder {
        ServerBuilder::new(addr)
    }

    /// The address the server listens on (with the real port if 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The backend the workers' ports run on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Why the automatic backend choice fell back, if it did.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// The framing codec's name.
    pub fn codec_name(&self) -> &'static str {
        self.codec
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The counters now.
    pub fn metrics(&self) -> Metrics {
        Metrics::read(&self.shared.counters)
    }

    /// A handle to stop the server or read its metrics from elsewhere (another thread, a signal).
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Starts the shutdown: no more accepts, queued writes flush within the grace period, then
    /// every connection closes with [`CloseReason::Shutdown`]. [`join`](Server::join) waits.
    pub fn shutdown(&self) {
        self.shared.stop();
    }

    /// Waits for the workers to finish (after a shutdown) and returns the final counters.
    pub fn join(mut self) -> io::Result<Metrics> {
        self.join_workers()?;
        Ok(self.metrics())
    }

    fn join_workers(&mut self) -> io::Result<()> {
        let mut first_error = None;
        for t in self.threads.drain(..) {
            let res = t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a worker thread panicked")));
            if let Err(e) = res {
                // Stop the others too: a server with a dead worker is not serving its share.
                self.shared.stop();
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop();
        let _ = self.join_workers();
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("backend", &self.backend)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

/// Stops a server, or reads its metrics, from any thread. Cheap to clone.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<WorkerSet>,
}

impl ServerHandle {
    /// Starts the shutdown (see [`Server::shutdown`]).
    pub fn shutdown(&self) {
        self.shared.stop();
    }

    /// Whether a shutdown has started.
    pub fn is_stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::Acquire)
    }

    /// The counters now.
    pub fn metrics(&self) -> Metrics {
        Metrics::read(&self.shared.counters)
    }

    /// Sends `payload`, framed with the server's codec, to connection `to`, from any thread.
    ///
    /// It joins the connection's write queue behind what is queued already, with the same
    /// limits as [`Ctx::send`] (backpressure, the queued-write limit). From one thread to one
    /// connection, pushes arrive in the order sent. A connection that has gone by the time the
    /// push reaches its worker does not get it, and neither does a newer connection in its
    /// slot: the push is counted in [`WorkerMetrics::pushes_dropped`]. Fails if the codec
    /// cannot frame the payload, or the server is stopping ([`SendError::Closed`]).
    pub fn send(&self, to: ConnId, payload: &[u8]) -> Result<(), SendError> {
        let bytes = frame_once(&*self.shared.codec, payload)?;
        self.shared.send_mail(Dest::Conn(to), What::Bytes(bytes))
    }

    /// Sends `payload` to every connection, framed once. Each worker is woken once.
    pub fn broadcast(&self, payload: &[u8]) -> Result<(), SendError> {
        let bytes = frame_once(&*self.shared.codec, payload)?;
        self.shared.send_mail(Dest::All, What::Bytes(bytes))
    }

    /// Sends `payload` to every member of `group` ([`Ctx::join`]), framed once.
    pub fn send_group(&self, group: &str, payload: &[u8]) -> Result<(), SendError> {
        let bytes = frame_once(&*self.shared.codec, payload)?;
        self.shared
            .send_mail(Dest::Group(group.into()), What::Bytes(bytes))
    }

    /// Hands `msg` to connection `to`'s [`Handler::on_message`], on its worker.
    pub fn message(
        &self,
        to: ConnId,
        msg: impl std::any::Any + Send + Sync,
    ) -> Result<(), SendError> {
        self.shared
            .send_mail(Dest::Conn(to), What::Message(Arc::new(msg)))
    }

    /// Hands `msg` to the [`Handler::on_message`] of every member of `group`.
    pub fn message_group(
        &self,
        group: &str,
        msg: impl std::any::Any + Send + Sync,
    ) -> Result<(), SendError> {
        self.shared
            .send_mail(Dest::Group(group.into()), What::Message(Arc::new(msg)))
    }

    /// Closes connection `to` gracefully (its queued writes flush first), from any thread. A
    /// connection that has gone already is left alone (and counted as a dropped push).
    pub fn close(&self, to: ConnId) -> Result<(), SendError> {
        self.shared.send_mail(Dest::Conn(to), What::Close)
    }

    /// Shuts the server down on SIGINT (Ctrl-C) or SIGTERM; on Windows on Ctrl-C or Ctrl-Break.
    /// (A Windows console's close, logoff or shutdown event reaches the handler too, but
    /// Windows ends the process soon after, so the graceful shutdown may not finish.)
    ///
    /// One handler per process: fails if one is already installed.
    pub fn shutdown_on_signals(&self) -> io::Result<()> {
        let handle = self.clone();
        ctrlc::set_handler(move || handle.shutdown()).map_err(|e| io::Error::other(e.to_string()))
    }
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::Completions;
    use std::time::Duration;

    fn mail(n: u8) -> Mail {
        Mail {
            dest: Dest::All,
            except: None,
            what: What::Bytes(Arc::from(&[n][..])),
        }
    }

    /// A burst of pushes to one worker wakes it once: only the push that finds its mailbox
    /// empty posts; the worker takes everything at once.
    #[test]
    fn a_burst_of_mail_wakes_a_worker_once() {
        let mut port = Port::new().unwrap();
        let shared = WorkerSet {
            active: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            counters: vec![Arc::default()],
            inboxes: vec![Mutex::default()],
            posters: OnceLock::new(),
            codec: Arc::new(Raw),
        };
        assert_eq!(
            shared.post_mail(0, &mut vec![mail(0)]),
            1,
            "no worker yet: dropped"
        );
        let _ = shared.posters.set(vec![port.poster()]);
        for n in 1..=100 {
            assert_eq!(shared.post_mail(0, &mut vec![mail(n)]), 0);
        }
        let mut batch = Completions::with_capacity(64);
        let mut wakes = 0;
        while port
            .wait(&mut batch, Some(Duration::from_millis(50)))
            .unwrap()
            > 0
        {
            wakes += batch.drain().filter(|c| c.token == MAILBOX).count();
        }
        assert_eq!(wakes, 1);
        let inbox = shared.take_mail(0);
        assert_eq!(inbox.mail.len(), 100);
        // Taken: the next push wakes it again.
        shared.post_mail(0, &mut vec![mail(0)]);
        port.wait(&mut batch, Some(Duration::from_secs(5))).unwrap();
        assert_eq!(batch.drain().filter(|c| c.token == MAILBOX).count(), 1);
    }
}
