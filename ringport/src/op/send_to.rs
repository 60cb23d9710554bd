//! Send to (UDP): `WSASendTo` / `IORING_OP_SENDMSG` / `sendto` when writable.

use std::net::SocketAddr;

use super::Outcome;
use super::Report;
use crate::buf::Buf;
use crate::sock::{AsSock, RawSock};

/// Sends one datagram holding the buffer's bytes to an address.
///
/// Completes with [`Outcome::SendTo`]: the bytes sent (a datagram goes whole or not at all).
#[derive(Debug)]
pub struct SendTo {
    pub(crate) sock: RawSock,
    pub(crate) buf: Buf,
    pub(crate) addr: SocketAddr,
}

impl SendTo {
    /// Send `buf`'s bytes as one datagram from `sock` to `addr`.
    pub fn new(sock: &impl AsSock, buf: Buf, addr: SocketAddr) -> SendTo {
        SendTo {
            sock: sock.as_sock(),
            buf,
            addr,
        }
    }

    pub(super) fn complete(&mut self, raw: Report) -> Outcome {
        Outcome::SendTo {
            result: raw.res,
            buf: std::mem::take(&mut self.buf),
        }
    }
}
