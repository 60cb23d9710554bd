//! [`op::Shutdown`](crate::op::Shutdown): the half-close of a connection.
//!
//! | backend  | performed as                                                                  |
//! |----------|-------------------------------------------------------------------------------|
//! | io_uring | `IORING_OP_SHUTDOWN` (`SHUT_RD`/`SHUT_WR`/`SHUT_RDWR`)                        |
//! | epoll    | `shutdown(2)` when the op reaches its lane's head (it never blocks), completed like any attempt that finished |
//! | IOCP     | Winsock `shutdown` (synchronous) when the op reaches its lane's head; the op ends at once, as a call that finishes without a packet |
//!
//! A shutdown of the sending side (`Write`, `Both`) queues in the socket's send lane, so it
//! runs only after every send submitted before it has completed; one of the receiving side only
//! (`Read`) queues in no lane and runs at once (see [`Dir::of`](crate::sys::lanes::Dir::of)).

#[cfg(target_os = "linux")]
pub(in crate::sys) mod uring {
    use io_uring::{opcode, squeue, types::Fd};

    use crate::op::Shutdown;
    use crate::sys::unix::net;

    /// The SQE.
    pub(in crate::sys) fn sqe(s: &Shutdown) -> squeue::Entry {
        opcode::Shutdown::new(Fd(s.sock), net::how(s.how)).build()
    }
}

#[cfg(unix)]
pub(in crate::sys) mod epoll {
    use std::os::fd::RawFd;

    use crate::op::{Report, Shutdown};
    use crate::sys::epoll::Step;
    use crate::sys::unix::net;

    /// The one attempt: `shutdown(2)` finishes (or fails) at once.
    pub(in crate::sys) fn attempt(s: &Shutdown, fd: RawFd) -> Step {
        Step::Done(now(s, fd))
    }

    /// Performs the shutdown of `fd`, an op outside any lane (the receiving side only).
    pub(in crate::sys) fn now(s: &Shutdown, fd: RawFd) -> Report {
        Report::done(net::shutdown(fd, s.how).map(|()| 0))
    }
}

#[cfg(windows)]
pub(in crate::sys) mod iocp {
    use crate::op::{Report, Shutdown};
    use crate::sys::iocp::{Start, win};

    /// Performs the shutdown: Winsock's `shutdown` is synchronous, so the op ends here.
    pub(in crate::sys) fn start(s: &Shutdown) -> Start {
        Start::Done(Report::done(win::shutdown(s.sock, s.how).map(|()| 0)))
    }
}
