//! Recv into a caller buffer: `WSARecv` / `IORING_OP_RECV` / `recv` when readable.

use super::Outcome;
use super::Report;
use crate::buf::Buf;
use crate::sock::{AsSock, RawSock};

/// Receives once into the spare capacity of a caller's buffer (appending to its bytes).
///
/// Completes with [`Outcome::Recv`]: `Ok(n)` with the `n` new bytes appended to `buf`, `Ok(0)`
/// when the peer closed its side, or the error (reset, cancelled). A buffer with no spare
/// capacity completes at once with `InvalidInput`.
#[derive(Debug)]
pub struct Recv {
    pub(crate) sock: RawSock,
    pub(crate) buf: Buf,
}

impl Recv {
    /// Receive from `sock` into `buf`'s spare capacity.
    pub fn new(sock: &impl AsSock, buf: Buf) -> Recv {
        Recv {
            sock: sock.as_sock(),
            buf,
        }
    }

    pub(super) fn complete(&mut self, raw: Report) -> Outcome {
        let mut buf = std::mem::take(&mut self.buf);
        if let Ok(n) = raw.res {
            buf.commit(n);
        }
        Outcome::Recv {
            result: raw.res,
            buf,
        }
    }
}
