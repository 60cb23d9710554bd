//! Connect: `ConnectEx` / `IORING_OP_CONNECT` / non-blocking `connect` then writable.
//!
//! The op owns its socket (created for you, or prepared by you with options set), so the port
//! can associate it before the kernel sees it; the completion hands it back as a `TcpStream`.

use std::io;
use std::net::{SocketAddr, TcpStream};

use socket2::{Domain, Protocol, Socket, Type};

use super::Outcome;
use super::Report;
use crate::sock::{OwnedSock, RawSock};

/// Connects a new TCP socket to an address.
///
/// Completes with [`Outcome::Connect`]: the connected stream, or why it failed (refused,
/// unreachable, cancelled).
#[derive(Debug)]
pub struct Connect {
    pub(crate) sock: Option<Socket>,
    pub(crate) addr: SocketAddr,
}

impl Connect {
    /// Connect a fresh non-blocking TCP socket to `addr`.
    pub fn new(addr: SocketAddr) -> io::Result<Connect> {
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        sock.set_nonblocking(true)?;
        Ok(Connect::with_socket(sock, addr))
    }

    /// Connect `sock`, a TCP socket you created (to set options such as `SO_SNDBUF` or to bind
    /// it first), to `addr`. The port associates it (if you have not already associated it
    /// with this port) and makes it non-blocking.
    ///
    /// `sock` is any owned socket handle ([`OwnedSock`]: an `OwnedFd` on Unix, an
    /// `OwnedSocket` on Windows), so a socket made with any version of `socket2`
    /// (`socket2::Socket` converts into one) or by any other means will do; ringport's own
    /// use of `socket2` does not leak into its API.
    pub fn with_socket(sock: impl Into<OwnedSock>, addr: SocketAddr) -> Connect {
        Connect {
            sock: Some(Socket::from(sock.into())),
            addr,
        }
    }

    pub(super) fn raw(&self) -> Option<RawSock> {
        self.sock.as_ref().map(crate::sock::AsSock::as_sock)
    }

    pub(super) fn complete(&mut self, raw: Report) -> Outcome {
        let sock = self.sock.take();
        Outcome::Connect(
            raw.res.map(|_| {
                TcpStream::from(sock.expect("a connect owns its socket until it completes"))
            }),
        )
    }
}
