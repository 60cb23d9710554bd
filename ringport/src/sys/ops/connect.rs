//! [`op::Connect`](crate::op::Connect): `ConnectEx` of the tutorials.
//!
//! | backend  | performed as                                                                   |
//! |----------|--------------------------------------------------------------------------------|
//! | io_uring | `IORING_OP_CONNECT`, the address in the op's `Side`                             |
//! | epoll    | `connect` → `EINPROGRESS` → at the writable edge, `getsockopt(SO_ERROR)`         |
//! | IOCP     | bind to the wildcard address, then `ConnectEx`; on the packet `SO_UPDATE_CONNECT_CONTEXT` |

#[cfg(target_os = "linux")]
pub(in crate::sys) mod uring {
    use std::os::fd::AsRawFd;

    use io_uring::{opcode, squeue, types::Fd};

    use crate::op::Connect;
    use crate::sys::uring::Side;

    /// The SQE; the address lives in `side`.
    pub(in crate::sys) fn sqe(c: &Connect, side: &mut Side) -> squeue::Entry {
        let fd = c
            .sock
            .as_ref()
            .expect("a connect owns its socket")
            .as_raw_fd();
        side.set_addr(c.addr);
        opcode::Connect::new(Fd(fd), (&raw const side.addr).cast(), side.addr_len).build()
    }
}

#[cfg(unix)]
pub(in crate::sys) mod epoll {
    use std::os::fd::RawFd;

    use socket2::SockAddr;

    use crate::op::{Connect, Report};
    use crate::sys::epoll::Step;
    use crate::sys::unix::net;

    /// [`InFlight::marks`](crate::sys::InFlight::marks) bit: the `connect` call was made; what
    /// is left is to learn its result once the socket is writable.
    const CONNECT_STARTED: u8 = 1;

    /// One attempt: the `connect` call the first time, the socket's error or state after.
    pub(in crate::sys) fn attempt(c: &Connect, marks: &mut u8, fd: RawFd) -> Step {
        if *marks & CONNECT_STARTED == 0 {
            *marks |= CONNECT_STARTED;
            return match net::connect(fd, &SockAddr::from(c.addr)) {
                Ok(()) => Step::Done(Report::done(Ok(0))),
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Step::Blocked,
                Err(e) => Step::Done(Report::done(Err(e))),
            };
        }
        match net::take_error(fd) {
            Ok(Some(e)) | Err(e) => Step::Done(Report::done(Err(e))),
            Ok(None) if net::is_connected(fd) => Step::Done(Report::done(Ok(0))),
            Ok(None) => Step::Blocked,
        }
    }
}

#[cfg(windows)]
pub(in crate::sys) mod iocp {
    use std::io;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
    use std::os::windows::io::AsRawSocket;

    use socket2::Socket;

    use crate::op::{Connect, Report};
    use crate::sock::RawSock;
    use crate::sys::iocp::win::{self, Ext};
    use crate::sys::iocp::{Side, Start};

    /// Binds the socket if it is not, and issues the `ConnectEx` (`submit` associated it).
    ///
    /// # Safety
    /// `side` is the op's own Side in its table entry: it, and the op's buffer, stay in place
    /// and untouched until the packet of this call has been dequeued.
    pub(in crate::sys) unsafe fn start(c: &Connect, side: &Side, ext: &Ext) -> Start {
        let sock = c.sock.as_ref().expect("a connect owns its socket");
        let raw = sock.as_raw_socket();
        match prepare_connect(sock, c.addr) {
            // SAFETY: `side` stays put until the packet (the caller's promise); the socket is
            // owned by the op.
            Ok(()) => unsafe { side.connect(ext, raw, c.addr) }.into(),
            Err(e) => Start::Done(Report::done(Err(e))),
        }
    }

    /// What a successful packet means: the socket, `sock`, is connected once it takes its
    /// connect context.
    pub(in crate::sys) fn connected(sock: Option<RawSock>) -> io::Result<usize> {
        sock.map_or(Ok(()), win::update_connect_context).map(|()| 0)
    }

    /// ConnectEx wants a bound socket: binds an unbound one to the wildcard address.
    fn prepare_connect(sock: &Socket, to: SocketAddr) -> io::Result<()> {
        if sock.local_addr().is_ok() {
            return Ok(()); // bound by the caller
        }
        let any = match to {
            SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        };
        sock.bind(&any.into())
    }
}
