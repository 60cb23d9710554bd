//! Send: `WSASend` / `IORING_OP_SEND` with `MSG_WAITALL` / `send` until done, when writable.

use super::Outcome;
use super::Report;
use crate::buf::Buf;
use crate::sock::{AsSock, RawSock};

/// Sends the bytes of a buffer.
///
/// Like an overlapped `WSASend`, the op completes when every byte has been handed to the kernel,
/// or when the connection fails. [`Outcome::Send`] reports how many bytes went out; fewer than
/// `buf.len()` (a short send) only happens when the connection broke part-way, and the count is
/// exact, so nothing is silently dropped. Sends queued on one socket go out in submission order.
#[derive(Debug)]
pub struct Send {
    pub(crate) sock: RawSock,
    pub(crate) buf: Buf,
    /// Bytes of `buf` already written, for the backends that write it in several calls (epoll:
    /// one `send` per writable edge; IOCP: a new `WSASend` for the rest of a short one). The
    /// io_uring kernel finishes a send itself.
    pub(crate) sent: usize,
}

impl Send {
    /// Send `buf`'s bytes on `sock`.
    pub fn new(sock: &impl AsSock, buf: Buf) -> Send {
        Send {
            sock: sock.as_sock(),
            buf,
            sent: 0,
        }
    }

    pub(super) fn complete(&mut self, raw: Report) -> Outcome {
        Outcome::Send {
            result: raw.res,
            buf: std::mem::take(&mut self.buf),
        }
    }
}
