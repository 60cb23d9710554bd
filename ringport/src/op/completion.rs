//! [`Completion`]: one finished operation, as `GetQueuedCompletionStatusEx` returns it.

use std::io;
use std::net::{SocketAddr, TcpStream};

use super::OpId;
use crate::buf::Buf;

/// One finished operation (or one step of a multishot one, or a posted message).
///
/// The fields are those of the tutorials' `OVERLAPPED_ENTRY`: the completion key (`token`),
/// which operation (`id`, the OVERLAPPED), and the result with the per-I/O data given back
/// (`outcome`: the bytes moved and the buffer, or the accepted socket).
#[derive(Debug)]
pub struct Completion {
    /// The token given to [`Port::submit`](crate::Port::submit) (or to
    /// [`Poster::post`](crate::Poster::post)).
    pub token: u64,
    /// The operation this completion belongs to ([`OpId::POSTED`] for posted ones).
    pub id: OpId,
    /// More completions will follow for this operation (multishot accept and recv). When false,
    /// the operation has ended and its id is no longer valid.
    pub more: bool,
    /// What happened, with everything the operation owned given back.
    pub outcome: Outcome,
}

/// The result of an operation, one variant per kind, with the buffer or socket it returns.
#[derive(Debug)]
pub enum Outcome {
    /// An [`op::Accept`](crate::op::Accept) or [`op::AcceptMulti`](crate::op::AcceptMulti): the
    /// accepted stream (non-blocking; associated with the port that first runs an operation on
    /// it, see [`Port::associate`](crate::Port::associate)) and its peer's address.
    Accept(io::Result<(TcpStream, SocketAddr)>),
    /// An [`op::Connect`](crate::op::Connect): the connected stream.
    Connect(io::Result<TcpStream>),
    /// An [`op::Recv`](crate::op::Recv): bytes appended to `buf` (`Ok(0)`: the peer closed).
    Recv {
        /// Bytes received, or the error.
        result: io::Result<usize>,
        /// The caller's buffer, with the received bytes appended.
        buf: Buf,
    },
    /// An [`op::RecvMulti`](crate::op::RecvMulti) step: `buf` is a pool buffer holding
    /// `result`'s bytes; `Ok(0)` with no buffer means the peer closed.
    RecvMulti {
        /// Bytes received, or the error (out of buffers, reset, cancelled).
        result: io::Result<usize>,
        /// The pool buffer holding the bytes, when some arrived.
        buf: Option<Buf>,
    },
    /// An [`op::Send`](crate::op::Send): bytes sent (all of `buf` unless the connection broke).
    Send {
        /// Bytes sent, or the error.
        result: io::Result<usize>,
        /// The caller's buffer, unchanged.
        buf: Buf,
    },
    /// An [`op::RecvFrom`](crate::op::RecvFrom): the datagram's length and sender.
    RecvFrom {
        /// Datagram length and sender, or the error.
        result: io::Result<(usize, SocketAddr)>,
        /// The caller's buffer, with the datagram appended.
        buf: Buf,
    },
    /// An [`op::SendTo`](crate::op::SendTo): bytes sent.
    SendTo {
        /// Bytes sent, or the error.
        result: io::Result<usize>,
        /// The caller's buffer, unchanged.
        buf: Buf,
    },
    /// An [`op::Shutdown`](crate::op::Shutdown): the half-close is done (for `Write`: after
    /// every send submitted before it).
    Shutdown(io::Result<()>),
    /// An [`op::Close`](crate::op::Close).
    Close(io::Result<()>),
    /// An [`op::Timeout`](crate::op::Timeout): `Ok(())` when the time came.
    Timeout(io::Result<()>),
    /// An [`op::Nop`](crate::op::Nop).
    Nop(io::Result<()>),
    /// A message from [`Poster::post`](crate::Poster::post) (the
    /// `PostQueuedCompletionStatus` of the tutorials), with its value.
    Posted(u64),
}

impl Completion {
    /// The error this completion reports, if any.
    pub fn error(&self) -> Option<&io::Error> {
        match &self.outcome {
            Outcome::Accept(Err(e))
            | Outcome::Connect(Err(e))
            | Outcome::Recv { result: Err(e), .. }
            | Outcome::RecvMulti { result: Err(e), .. }
            | Outcome::Send { result: Err(e), .. }
            | Outcome::RecvFrom { result: Err(e), .. }
            | Outcome::SendTo { result: Err(e), .. }
            | Outcome::Shutdown(Err(e))
            | Outcome::Close(Err(e))
            | Outcome::Timeout(Err(e))
            | Outcome::Nop(Err(e)) => Some(e),
            _ => None,
        }
    }

    /// Whether the operation ended because it was cancelled (by [`Port::cancel`](crate::Port::cancel),
    /// by closing its socket through the port, or by dropping the port).
    pub fn is_cancelled(&self) -> bool {
        self.error().is_some_and(is_cancelled)
    }

    /// Whether a multishot receive ended because the port's pool had no free buffer. The data
    /// is still in the socket: re-submit once buffers are back.
    pub fn is_out_of_buffers(&self) -> bool {
        self.error().is_some_and(is_out_of_buffers)
    }

    /// Whether a multishot accept reported a connection that its peer reset before it could be
    /// accepted. An ordinary event on a busy listener, not a failure of the listener: the op
    /// goes on ([`more`](Completion::more) is still set) and there is nothing to retry.
    pub fn is_accept_aborted(&self) -> bool {
        self.error().is_some_and(is_accept_aborted)
    }
}

#[cfg(unix)]
const CANCELLED: i32 = libc::ECANCELED;
#[cfg(windows)]
const CANCELLED: i32 = windows_sys::Win32::Foundation::ERROR_OPERATION_ABORTED as i32;

#[cfg(unix)]
const NO_BUFFERS: i32 = libc::ENOBUFS;
#[cfg(windows)]
const NO_BUFFERS: i32 = windows_sys::Win32::Networking::WinSock::WSAENOBUFS;

#[cfg(unix)]
const ACCEPT_ABORTED: i32 = libc::ECONNABORTED;
#[cfg(windows)]
const ACCEPT_ABORTED: i32 = windows_sys::Win32::Networking::WinSock::WSAECONNABORTED;

/// The error a cancelled operation completes with (`ECANCELED`, or `ERROR_OPERATION_ABORTED`).
pub(crate) fn cancelled_error() -> io::Error {
    io::Error::from_raw_os_error(CANCELLED)
}

/// The error a receive reports when the pool has no buffer (`ENOBUFS` / `WSAENOBUFS`).
pub(crate) fn out_of_buffers_error() -> io::Error {
    io::Error::from_raw_os_error(NO_BUFFERS)
}

/// The error a multishot accept reports for a connection reset before it was accepted
/// (`ECONNABORTED` / `WSAECONNABORTED`, [`io::ErrorKind::ConnectionAborted`]).
pub(crate) fn accept_aborted_error() -> io::Error {
    io::Error::from_raw_os_error(ACCEPT_ABORTED)
}

/// Whether `err` says a connection was reset by its peer before it could be accepted (see
/// [`Completion::is_accept_aborted`]).
pub fn is_accept_aborted(err: &io::Error) -> bool {
    err.raw_os_error() == Some(ACCEPT_ABORTED)
}

/// Whether `err` is the error of a cancelled operation.
pub fn is_cancelled(err: &io::Error) -> bool {
    err.raw_os_error() == Some(CANCELLED)
}

/// Whether `err` says a pool ran out of buffers.
pub fn is_out_of_buffers(err: &io::Error) -> bool {
    err.raw_os_error() == Some(NO_BUFFERS)
}

/// A reusable batch of completions, filled by [`Port::wait`](crate::Port::wait).
///
/// Its capacity is the most completions one `wait` returns (the `ulCount` of
/// `GetQueuedCompletionStatusEx`).
#[derive(Debug)]
pub struct Completions {
    pub(crate) items: Vec<Completion>,
    pub(crate) max: usize,
}

impl Completions {
    /// A batch of at most `max` completions (at least 1).
    pub fn with_capacity(max: usize) -> Completions {
        let max = max.max(1);
        Completions {
            items: Vec::with_capacity(max),
            max,
        }
    }

    /// Number of completions in the batch.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The most completions one wait puts in this batch.
    pub fn capacity(&self) -> usize {
        self.max
    }

    /// Takes the completions out, in the order they were reported.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Completion> {
        self.items.drain(..)
    }

    /// Looks at the completions without taking them.
    pub fn iter(&self) -> std::slice::Iter<'_, Completion> {
        self.items.iter()
    }
}

impl Default for Completions {
    /// A batch of up to 256 completions.
    fn default() -> Completions {
        Completions::with_capacity(256)
    }
}

impl<'a> IntoIterator for &'a mut Completions {
    type Item = Completion;
    type IntoIter = std::vec::Drain<'a, Completion>;
    fn into_iter(self) -> Self::IntoIter {
        self.drain()
    }
}
