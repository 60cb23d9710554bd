//! [`Handler`]: what the application does with its connections, and [`Ctx`], what it can do to one.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::codec::FrameError;
use super::conn::Io;
use super::worker::Env;

/// The application's side of one connection: per-connection state plus callbacks.
///
/// The server creates one handler per accepted connection (with the factory given to
/// [`ServerBuilder::serve`](super::ServerBuilder::serve)), on the worker thread that owns the
/// connection, and calls it only from that thread. An echo server's handler is a unit struct
/// that sends every frame back; a chat server's holds the user's name.
pub trait Handler: 'static {
    /// The connection is open.
    fn on_open(&mut self, cx: &mut Ctx<'_>) {
        let _ = cx;
    }

    /// One complete frame arrived (as the server's codec splits the stream). Frames come in
    /// order; the slice is valid for this call only.
    fn on_frame(&mut self, cx: &mut Ctx<'_>, frame: &[u8]);

    /// Every queued write has been sent (the send queue went from busy to empty).
    fn on_drained(&mut self, cx: &mut Ctx<'_>) {
        let _ = cx;
    }

    /// A timer set with [`Ctx::set_timer`] fired.
    fn on_timer(&mut self, cx: &mut Ctx<'_>, timer: u64) {
        let _ = (cx, timer);
    }

    /// The connection is closed, for `reason`; the handler is dropped right after.
    fn on_close(&mut self, reason: CloseReason) {
        let _ = reason;
    }
}

/// Why a connection was closed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The peer closed its side (orderly FIN).
    PeerClosed,
    /// The peer reset the connection (`ECONNRESET`, the tutorials' `ERROR_NETNAME_DELETED`).
    Reset,
    /// Nothing arrived for the idle timeout.
    IdleTimeout,
    /// A frame exceeded the maximum frame size.
    FrameTooLarge,
    /// The bytes broke the codec's format.
    BadFrame,
    /// The server is shutting down.
    Shutdown,
    /// A limit was hit: too many connections, too many queued write bytes, or the memory budget.
    Limit,
    /// The handler closed it ([`Ctx::close`] or [`Ctx::abort`]).
    Local,
    /// Another I/O error.
    Error,
}

impl CloseReason {
    /// Number of reasons.
    pub const COUNT: usize = 9;

    /// Every reason, in [`index`](CloseReason::index) order.
    pub const ALL: [CloseReason; CloseReason::COUNT] = [
        CloseReason::PeerClosed,
        CloseReason::Reset,
        CloseReason::IdleTimeout,
        CloseReason::FrameTooLarge,
        CloseReason::BadFrame,
        CloseReason::Shutdown,
        CloseReason::Limit,
        CloseReason::Local,
        CloseReason::Error,
    ];

    /// A dense index, for per-reason counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The reason as a metric label (`peer_closed`, `reset`, …).
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::PeerClosed => "peer_closed",
            CloseReason::Reset => "reset",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::FrameTooLarge => "frame_too_large",
            CloseReason::BadFrame => "bad_frame",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Limit => "limit",
            CloseReason::Local => "local",
            CloseReason::Error => "error",
        }
    }

    /// The reason an I/O error on a connection stands for.
    pub(crate) fn of_error(e: &io::Error) -> CloseReason {
        match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => CloseReason::Reset,
            _ => CloseReason::Error,
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Names one connection of a server: worker, slot and generation.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConnId {
    /// The worker that owns it.
    pub worker: u16,
    pub(crate) key: u32,
    pub(crate) generation: u32,
}

/// Why [`Ctx::send`] refused a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The connection is closing; nothing more is sent.
    Closed,
    /// The codec cannot frame this payload (too large for its header, a newline in a line…).
    Frame(FrameError),
    /// The payload would take the queued bytes past the limit; the connection is being closed
    /// with [`CloseReason::Limit`].
    Limit,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed => f.write_str("the connection is closing"),
            SendError::Frame(e) => write!(f, "cannot frame the payload: {e}"),
            SendError::Limit => f.write_str("queued write limit reached"),
        }
    }
}

impl std::error::Error for SendError {}

/// How a connection should end, once asked to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Send what is queued, then close.
    Graceful(CloseReason),
    /// Close now, with a reset (queued bytes are dropped).
    Abort(CloseReason),
}

impl Ending {
    pub(crate) fn reason(self) -> CloseReason {
        match self {
            Ending::Graceful(r) | Ending::Abort(r) => r,
        }
    }
}

/// What a handler can do to its connection during a callback.
pub struct Ctx<'a> {
    pub(crate) id: ConnId,
    pub(crate) stream: &'a TcpStream,
    pub(crate) io: &'a mut Option<Box<Io>>,
    pub(crate) ending: &'a mut Option<Ending>,
    pub(crate) env: &'a mut Env,
}

impl Ctx<'_> {
    /// This connection's id.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.peer_addr()
    }

    /// Frames `payload` with the server's codec and queues it for sending.
    ///
    /// Writes go out in order; while a send is in flight, new ones are coalesced into the next.
    /// Queued bytes above the high-water mark pause reading from this connection until they
    /// drain (backpressure); above the hard limit the connection is closed
    /// ([`CloseReason::Limit`]).
    pub fn send(&mut self, payload: &[u8]) -> Result<(), SendError> {
        if self.ending.is_some() {
            return Err(SendError::Closed);
        }
        let io = self.io.get_or_insert_with(|| self.env.take_io());
        let env = &mut *self.env;
        match io.queue(&*env.codec, payload, &env.limits, &mut env.budget) {
            Ok(added) => {
                self.env.wrote(self.id.key, io, added);
                Ok(())
            }
            Err(SendError::Limit) => {
                *self.ending = Some(Ending::Abort(CloseReason::Limit));
                Err(SendError::Limit)
            }
            Err(e) => Err(e),
        }
    }

    /// Bytes queued and in flight on this connection.
    pub fn queued_bytes(&self) -> usize {
        self.io.as_ref().map_or(0, |io| io.queued_bytes())
    }

    /// Closes the connection once every queued write has been sent.
    pub fn close(&mut self) {
        self.ending
            .get_or_insert(Ending::Graceful(CloseReason::Local));
    }

    /// Closes the connection now with a reset; queued writes are dropped.
    pub fn abort(&mut self) {
        *self.ending = Some(Ending::Abort(CloseReason::Local));
    }

    /// Calls [`Handler::on_timer`] with `timer` after `delay` (unless the connection closes
    /// first). Timers are one-shot; set another from `on_timer` to repeat.
    pub fn set_timer(&mut self, delay: Duration, timer: u64) {
        self.env.timers.user(self.id, delay, timer);
    }

    /// The index of the worker thread serving this connection.
    pub fn worker(&self) -> usize {
        usize::from(self.id.worker)
    }
}
