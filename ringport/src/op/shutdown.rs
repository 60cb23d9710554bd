//! Shutdown: half-close a connection — `shutdown` / `IORING_OP_SHUTDOWN` / `shutdown(2)`.
//!
//! The op only names its socket (the caller keeps it open). A shutdown of the sending side
//! (`Write` or `Both`) queues behind the sends submitted before it on the same socket, so it
//! never cuts bytes still queued: the peer gets every one of them, then the end of the stream.

use std::net::Shutdown as How;

use crate::sock::{AsSock, RawSock};

/// Shuts down one or both directions of a connected socket (`shutdown(2)`, Winsock
/// `shutdown`): the half-close of TCP.
///
/// Completes with [`Outcome::Shutdown`](crate::Outcome::Shutdown): `Ok(())`, or the error
/// (`NotConnected` for a socket that is not connected).
///
/// **Order.** With [`Write`](std::net::Shutdown::Write) or [`Both`](std::net::Shutdown::Both)
/// the op joins the socket's send lane: it runs only once every [`Send`](crate::op::Send)
/// submitted before it on that socket has completed, so the peer receives all their bytes and
/// then the end of the stream (a `recv` of 0). Receiving goes on after a `Write` shutdown: the
/// peer can still send, and we can still read — a half-close, not a close.
///
/// With [`Read`](std::net::Shutdown::Read) the op waits in no lane: it runs at once, also when
/// receives are pending on the socket (they may be waiting for data that never comes, and the
/// shutdown must not wait for them). What a pending receive then sees is the kernel's: Linux
/// ends it with 0 bytes, Windows lets it wait for data already on its way.
///
/// Close the socket afterwards as usual ([`op::Close`](crate::op::Close) or a drop): a shutdown
/// frees nothing.
#[derive(Debug)]
pub struct Shutdown {
    pub(crate) sock: RawSock,
    pub(crate) how: How,
}

impl Shutdown {
    /// Shut down `how` (read, write or both) of `sock`.
    pub fn new(sock: &impl AsSock, how: How) -> Shutdown {
        Shutdown {
            sock: sock.as_sock(),
            how,
        }
    }

    /// Whether the op shuts down the sending side (and so queues behind the socket's sends).
    pub(crate) fn stops_sending(&self) -> bool {
        matches!(self.how, How::Write | How::Both)
    }
}
