//! [`Handler`]: what the application does with its connections, and [`Ctx`], what it can do to one.

use std::any::Any;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::codec::FrameError;
use super::conn::{Core, Env};
use super::push::{Dest, Mail, What};

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

    /// A timer set with [`Ctx::set_timer`] fired (and was not cancelled).
    fn on_timer(&mut self, cx: &mut Ctx<'_>, timer: u64) {
        let _ = (cx, timer);
    }

    /// An application message for this connection arrived ([`Ctx::message_to`],
    /// [`Ctx::message_group`], [`ServerHandle::message`](super::ServerHandle::message), …), on
    /// this connection's worker. Downcast it to the type that was sent.
    fn on_message(&mut self, cx: &mut Ctx<'_>, msg: &(dyn Any + Send + Sync)) {
        let _ = (cx, msg);
    }

    /// The peer shut its sending side (an orderly FIN): every whole frame before it has been
    /// handed to [`on_frame`](Handler::on_frame), and nothing more will arrive. (A frame the
    /// FIN left unfinished closes the connection with [`CloseReason::BadFrame`] instead, without
    /// this call.)
    ///
    /// The default, [`AfterFin::Close`], closes the connection once its queued writes have gone
    /// out, with [`CloseReason::PeerClosed`]. [`AfterFin::KeepWriting`] keeps it open for
    /// sending (a half-closed connection: answers, pushes, timers and messages still go out)
    /// until the handler ends it with [`Ctx::shutdown_write`] or [`Ctx::close`].
    fn on_peer_shutdown(&mut self, cx: &mut Ctx<'_>) -> AfterFin {
        let _ = cx;
        AfterFin::Close
    }

    /// The server is shutting down: the connection is still open and can send a goodbye,
    /// which flushes (within the grace period) before it is closed with
    /// [`CloseReason::Shutdown`].
    fn on_shutdown(&mut self, cx: &mut Ctx<'_>) {
        let _ = cx;
    }

    /// The connection is closed, for `reason`; the handler is dropped right after.
    fn on_close(&mut self, reason: CloseReason) {
        let _ = reason;
    }
}

/// What a connection does after its peer's FIN ([`Handler::on_peer_shutdown`]).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum AfterFin {
    /// Close once the queued writes have gone out ([`CloseReason::PeerClosed`]).
    #[default]
    Close,
    /// Stay open for sending; the handler ends the connection with [`Ctx::shutdown_write`]
    /// (the peer gets a FIN after everything queued, then the connection closes with
    /// [`CloseReason::PeerClosed`]) or [`Ctx::close`].
    KeepWriting,
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

/// What a handler can do to its connection, and to others, during a callback.
///
/// Sends to this connection go straight into its write queue; sends to other connections
/// (`send_to`, `broadcast`, groups, messages) are routed by the worker right after the
/// callback: directly to a connection on the same worker, through the other worker's mailbox
/// (one wake-up per worker per batch) otherwise. From one sender to one receiver, everything
/// arrives in the order it was sent.
pub struct Ctx<'a> {
    pub(crate) core: &'a mut Core,
    pub(crate) env: &'a mut Env,
}

impl fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("id", &self.core.id)
            .field("peer", &self.core.peer)
            .finish_non_exhaustive()
    }
}

impl Ctx<'_> {
    /// This connection's id: an address for pushes from anywhere
    /// ([`ServerHandle::send`](super::ServerHandle::send), [`Ctx::send_to`]).
    pub fn id(&self) -> ConnId {
        self.core.id
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.core.peer)
    }

    /// Frames `payload` with the server's codec and queues it for sending.
    ///
    /// Writes go out in order; while a send is in flight, new ones are coalesced into the next.
    /// Queued bytes above the high-water mark pause reading from this connection until they
    /// drain (backpressure); above the hard limit the connection is closed
    /// ([`CloseReason::Limit`]).
    pub fn send(&mut self, payload: &[u8]) -> Result<(), SendError> {
        if !self.core.can_send() {
            return Err(SendError::Closed);
        }
        let env = &mut *self.env;
        let io = self.core.io.get_or_insert_with(|| env.take_io());
        match io.queue(&*env.codec, payload, &env.limits, &mut env.budget) {
            Ok(_) => {
                super::metrics::WorkerCounters::add(&env.counters.frames_out, 1);
                Ok(())
            }
            Err(SendError::Limit) => {
                self.core.abort(CloseReason::Limit);
                Err(SendError::Limit)
            }
            Err(e) => Err(e),
        }
    }

    /// Sends `payload` to connection `to` (this one, another on this worker, or one on another
    /// worker). Fails only if the codec cannot frame it; a connection that has gone is not an
    /// error here: the push is counted (`pushes_dropped`) and never reaches whoever has its
    /// slot now.
    pub fn send_to(&mut self, to: ConnId, payload: &[u8]) -> Result<(), SendError> {
        if to == self.core.id {
            return self.send(payload);
        }
        let bytes = frame_once(&*self.env.codec, payload)?;
        self.post(Dest::Conn(to), What::Bytes(bytes));
        Ok(())
    }

    /// Sends `payload` to every connection of the server except this one, framed once.
    pub fn broadcast(&mut self, payload: &[u8]) -> Result<(), SendError> {
        let bytes = frame_once(&*self.env.codec, payload)?;
        self.post(Dest::All, What::Bytes(bytes));
        Ok(())
    }

    /// Sends `payload` to every member of `group` except this connection, framed once.
    pub fn send_group(&mut self, group: &str, payload: &[u8]) -> Result<(), SendError> {
        let bytes = frame_once(&*self.env.codec, payload)?;
        self.post(Dest::Group(group.into()), What::Bytes(bytes));
        Ok(())
    }

    /// Sends an application message to connection `to`: its handler's
    /// [`on_message`](Handler::on_message) gets it, on its own worker.
    pub fn message_to(&mut self, to: ConnId, msg: impl Any + Send + Sync) {
        self.post(Dest::Conn(to), What::Message(Arc::new(msg)));
    }

    /// Sends an application message to every member of `group` except this connection.
    pub fn message_group(&mut self, group: &str, msg: impl Any + Send + Sync) {
        self.post(Dest::Group(group.into()), What::Message(Arc::new(msg)));
    }

    /// Makes this connection a member of `group` (a room, channel or topic) until it leaves or
    /// closes. Joining twice is joining once.
    pub fn join(&mut self, group: &str) {
        self.env.groups.join(group, self.core.id.key);
    }

    /// Takes this connection out of `group`.
    pub fn leave(&mut self, group: &str) {
        self.env.groups.leave(group, self.core.id.key);
    }

    fn post(&mut self, dest: Dest, what: What) {
        let except = match dest {
            Dest::Conn(_) => None,
            _ => Some(self.core.id),
        };
        self.env.outbox.push(Mail { dest, except, what });
    }

    /// Bytes queued and in flight on this connection.
    pub fn queued_bytes(&self) -> usize {
        self.core.queued_bytes()
    }

    /// Shuts the sending side once every queued write has gone out: the peer reads them, then
    /// the end of the stream (a FIN), and may go on sending to us — reading goes on. Sends
    /// after this fail with [`SendError::Closed`]. Once the peer's FIN has come too (before or
    /// after), the connection closes with [`CloseReason::PeerClosed`].
    pub fn shutdown_write(&mut self) {
        self.core.shutdown_write();
    }

    /// Closes the connection once every queued write has been sent.
    pub fn close(&mut self) {
        self.core.end(Ending::Graceful(CloseReason::Local));
    }

    /// Closes the connection now with a reset; queued writes are dropped.
    pub fn abort(&mut self) {
        self.core.abort(CloseReason::Local);
    }

    /// Calls [`Handler::on_timer`] with `timer` after `delay` (unless the connection closes
    /// first or the timer is cancelled). Timers are one-shot; set another from `on_timer` to
    /// repeat.
    pub fn set_timer(&mut self, delay: Duration, timer: u64) {
        self.env.timers.user(self.core.id, delay, timer);
    }

    /// Cancels every pending timer of this connection with the id `timer` (set before now).
    pub fn cancel_timer(&mut self, timer: u64) {
        let before = self.env.timers.next_seq();
        let cancelled = &mut self.core.cancelled;
        cancelled.retain(|&(t, _)| t != timer);
        cancelled.push((timer, before));
    }

    /// The index of the worker thread serving this connection.
    pub fn worker(&self) -> usize {
        usize::from(self.core.id.worker)
    }
}

/// `payload` framed by `codec`, once, for any number of receivers.
pub(crate) fn frame_once(
    codec: &dyn super::codec::Codec,
    payload: &[u8],
) -> Result<Arc<[u8]>, SendError> {
    let mut out = crate::buf::Buf::with_capacity(payload.len() + 8);
    codec.encode(payload, &mut out).map_err(SendError::Frame)?;
    Ok(Arc::from(&out[..]))
}
