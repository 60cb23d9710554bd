//! Accept: the `AcceptEx` of the tutorials, one-shot and multishot.
//!
//! | backend  | one-shot                          | multishot                                     |
//! |----------|-----------------------------------|-----------------------------------------------|
//! | io_uring | `IORING_OP_ACCEPT`                | `IORING_OP_ACCEPT` + `IORING_ACCEPT_MULTISHOT` |
//! | epoll    | `accept4` now, again when readable | `accept4` until `EAGAIN` on every readable edge |
//! | IOCP     | `AcceptEx` on a pre-made socket   | several `AcceptEx` kept posted                |
//!
//! Accepted sockets are non-blocking and close-on-exec. They are associated with the port that
//! first runs an operation on them (see [`Port::associate`](crate::Port::associate)), so a
//! connection accepted on one port can be served on another; on IOCP the listener itself is
//! associated with the port its first accept runs on.

use std::net::{SocketAddr, TcpStream};

use super::Report;
use super::{Outcome, accept_aborted_error};
use crate::sock::{AsSock, RawSock};

/// Accepts one connection on a listening socket.
///
/// Completes with [`Outcome::Accept`]: the new stream and its peer address.
#[derive(Debug)]
pub struct Accept {
    pub(crate) listener: RawSock,
}

impl Accept {
    /// Accept one connection on `listener`.
    pub fn new(listener: &impl AsSock) -> Accept {
        Accept {
            listener: listener.as_sock(),
        }
    }
}

/// Accepts connections until cancelled: one submission, one completion per connection.
///
/// This is what `AcceptEx` is for in the tutorials — no call per accepted connection. Every
/// completion but the last has [`Completion::more`](crate::Completion::more) set. The op ends
/// (a completion without `more`) when cancelled, on an error such as `EMFILE` (re-arm it once
/// descriptors are free again), or when the backend had to stop it; re-submit to go on.
///
/// A connection that its peer reset while it waited in the listen queue is reported as an
/// error for which [`Completion::is_accept_aborted`](crate::Completion::is_accept_aborted) is
/// true, with `more` still set: the op goes on; count it, there is nothing to retry. (epoll
/// mostly hands such a connection out, since `accept4` still knows its peer; its first
/// receive then fails with a reset. io_uring's multishot accept reports no peer address, and
/// a reset connection has none left to ask for; IOCP's `AcceptEx` fails for it.)
///
/// # Stopping accepting
///
/// Cancelling the op ([`Port::cancel`](crate::Port::cancel)) stops the accepts, but the
/// listener still listens: the kernel goes on completing handshakes into its backlog, and
/// those clients wait for an accept that never comes. To stop accepting for good, cancel the
/// accept, wait for its final completion (cancelled, `more` unset), then close the listener
/// through the port with [`op::Close`](crate::op::Close) (or submit the close straight away:
/// it cancels the socket's pending accepts itself). Once the close has completed, a new
/// connection to the address is refused (`ECONNREFUSED`, `WSAECONNREFUSED`) instead of left
/// hanging in a backlog, while the connections accepted before keep working: they are
/// sockets of their own.
#[derive(Debug)]
pub struct AcceptMulti {
    pub(crate) listener: RawSock,
}

impl AcceptMulti {
    /// Accept connections on `listener` until cancelled.
    pub fn new(listener: &impl AsSock) -> AcceptMulti {
        AcceptMulti {
            listener: listener.as_sock(),
        }
    }
}

pub(super) fn complete(raw: Report) -> Outcome {
    let Report {
        res, sock, addr, ..
    } = raw;
    Outcome::Accept(res.and_then(|_| {
        let stream = TcpStream::from(sock.expect("a successful accept carries its socket"));
        let peer: SocketAddr = match addr {
            Some(addr) => addr,
            // Multishot accept on io_uring has no room to report the address. A connection
            // reset before it was accepted has no peer any more (`ENOTCONN`): that is an
            // ordinary event of a busy listener, reported as such (dropping the stream closes it).
            None => stream.peer_addr().map_err(|e| match e.kind() {
                std::io::ErrorKind::NotConnected => accept_aborted_error(),
                _ => e,
            })?,
        };
        Ok((stream, peer))
    }))
}
