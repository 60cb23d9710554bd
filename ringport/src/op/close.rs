//! Close: `closesocket` / `IORING_OP_ASYNC_CANCEL` (all ops on the fd) hard-linked to
//! `IORING_OP_CLOSE` / `close` after failing the socket's waiting ops.
//!
//! As with `closesocket` on Windows, closing through the port first cancels every operation
//! still pending on the socket (they complete as cancelled, buffers returned) and then closes it.
//! On io_uring this matters: a pending receive holds a reference to the socket, so a plain
//! `close(2)` would not even send the FIN until that receive ended.

use crate::sock::{OwnedSock, RawSock};

/// Cancels the socket's pending operations, then closes it.
///
/// Completes with [`Outcome::Close`](crate::Outcome::Close).
///
/// Closing a listener is how a server stops accepting: its pending accepts end as cancelled,
/// and once the close has completed new connections to its address are refused rather than
/// queued; connections accepted before are not touched (see
/// [`AcceptMulti`](crate::op::AcceptMulti#stopping-accepting)).
#[derive(Debug)]
pub struct Close {
    pub(crate) sock: Option<OwnedSock>,
}

impl Close {
    /// Close `sock` (any owned socket: `TcpStream`, `UdpSocket`, `socket2::Socket`, …).
    pub fn new(sock: impl Into<OwnedSock>) -> Close {
        Close {
            sock: Some(sock.into()),
        }
    }

    pub(super) fn raw(&self) -> Option<RawSock> {
        self.sock.as_ref().map(crate::sock::AsSock::as_sock)
    }
}
