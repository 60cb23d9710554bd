//! Multishot recv into the port's pool: `IORING_OP_RECV` + `IORING_RECV_MULTISHOT` with a
//! provided buffer ring; on epoll, `recv` into pool blocks on every readable edge; on IOCP, a
//! zero-byte `WSARecv`, then `recv` into pool blocks until `WSAEWOULDBLOCK`, and again.
//!
//! A connection holds no buffer while it is idle: the kernel (or the epoll backend) takes a pool
//! block only when data has arrived. When the pool is empty the op ends with an
//! out-of-buffers error ([`Completion::is_out_of_buffers`](crate::Completion::is_out_of_buffers));
//! the data stays in the socket, and re-submitting once blocks are back loses nothing.

use super::Outcome;
use super::Report;
use crate::sock::{AsSock, RawSock};

/// Receives into pool buffers, one completion per chunk of data, until cancelled.
///
/// Completes with [`Outcome::RecvMulti`]. Every completion with data has
/// [`Completion::more`](crate::Completion::more) set; the last one (no `more`) is end of stream
/// (`Ok(0)`), an error, cancellation, or running out of pool buffers.
///
/// With a [`limit`](RecvMulti::limit), the op also ends once it has received that many bytes:
/// the completion carrying the last of them has no `more`. Re-submitting then continues. That
/// bounds how far the kernel reads ahead of the application, which is what backpressure
/// needs: a connection that must stop reading holds at most `limit` bytes more.
#[derive(Debug)]
pub struct RecvMulti {
    pub(crate) sock: RawSock,
    pub(crate) limit: Option<u32>,
    /// Bytes received so far (to enforce the limit where the kernel does not).
    pub(crate) received: u64,
}

impl RecvMulti {
    /// Receive from `sock` into the port's pool until cancelled.
    pub fn new(sock: &impl AsSock) -> RecvMulti {
        RecvMulti {
            sock: sock.as_sock(),
            limit: None,
            received: 0,
        }
    }

    /// End the op after about `bytes` bytes (at least one completion's worth; io_uring on
    /// Linux 6.17+ stops exactly at the limit, other backends at the end of the buffer that
    /// reaches it, older kernels soon after). `0` means no limit.
    pub fn limit(mut self, bytes: u32) -> RecvMulti {
        self.limit = (bytes > 0).then_some(bytes);
        self
    }

    /// Counts `n` received bytes; true once the limit (if any) is reached.
    pub(crate) fn count(&mut self, n: usize) -> bool {
        self.received += n as u64;
        self.limit.is_some_and(|l| self.received >= u64::from(l))
    }
}

pub(super) fn complete(raw: Report) -> Outcome {
    Outcome::RecvMulti {
        result: raw.res,
        buf: raw.buf,
    }
}
