//! Recv from (UDP): `WSARecvFrom` / `IORING_OP_RECVMSG` / `recvfrom` when readable.

use super::Outcome;
use super::Report;
use crate::buf::Buf;
use crate::sock::{AsSock, RawSock};

/// Receives one datagram into the spare capacity of a caller's buffer.
///
/// Completes with [`Outcome::RecvFrom`]: the datagram's length and sender. A datagram larger than
/// the spare capacity is truncated, as with `recvfrom`.
#[derive(Debug)]
pub struct RecvFrom {
    pub(crate) sock: RawSock,
    pub(crate) buf: Buf,
}

impl RecvFrom {
    /// Receive one datagram from `sock` into `buf`.
    pub fn new(sock: &impl AsSock, buf: Buf) -> RecvFrom {
        RecvFrom {
            sock: sock.as_sock(),
            buf,
        }
    }

    pub(super) fn complete(&mut self, raw: Report) -> Outcome {
        let mut buf = std::mem::take(&mut self.buf);
        let result = raw.res.and_then(|n| {
            buf.commit(n);
            raw.addr
                .map(|addr| (n, addr))
                .ok_or_else(|| std::io::Error::other("datagram without a sender address"))
        });
        Outcome::RecvFrom { result, buf }
    }
}
