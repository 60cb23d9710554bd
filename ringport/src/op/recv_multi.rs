//! Multishot recv into the port's pool: `IORING_OP_RECV` + `IORING_RECV_MULTISHOT` with a
//! provided buffer ring; on epoll, `recv` into pool blocks on every readable edge; on IOCP, a
//! zero-byte `WSARecv`, then `recv` into pool blocks until `WSAEWOULDBLOCK`, and again.
//!
//! A connection holds no buffer while it is idle: the kernel (or the epoll backend) takes a pool
//! block only when data has arrived. When the pool is empty the op ends with an
//! out-of-buffers error ([`Completion::is_out_of_buffers`](crate::Completion::is_out_of_buffers));
//! the data stays in the socket, and re-submitting once blocks are back loses nothing.

use super::Raw;
use crate::port::Outcome;
use crate::sock::{AsSock, RawSock};

/// Receives into pool buffers, one completion per chunk of data, until cancelled.
///
/// Completes with [`Outcome::RecvMulti`]. Every completion with data has
/// [`Completion::more`](crate::Completion::more) set; the last one (no `more`) is end of stream
/// (`Ok(0)`), an error, cancellation, or running out of pool buffers.
#[derive(Debug)]
pub struct RecvMulti {
    pub(crate) sock: RawSock,
}

impl RecvMulti {
    /// Receive from `sock` into the port's pool until cancelled.
    pub fn new(sock: &impl AsSock) -> RecvMulti {
        RecvMulti {
            sock: sock.as_sock(),
        }
    }
}

pub(super) fn complete(raw: Raw) -> Outcome {
    Outcome::RecvMulti {
        result: raw.res,
        buf: raw.buf,
    }
}
