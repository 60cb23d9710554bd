//! [`op::Recv`](crate::op::Recv): one receive into the caller's buffer.
//!
//! | backend  | performed as                                                          |
//! |----------|-----------------------------------------------------------------------|
//! | io_uring | `IORING_OP_RECV` into the buffer's spare capacity                     |
//! | epoll    | `recv` at once; after `EAGAIN`, again at the socket's readable edge    |
//! | IOCP     | `WSARecv` into the spare capacity; the packet carries the byte count  |
//!
//! A buffer with no spare capacity ends the op at once, on every backend ([`no_room`]).

use std::io;

use crate::op::{Recv, Report};

/// The result of a receive into a buffer with no room, or `None` if it has some.
pub(in crate::sys) fn no_room(r: &Recv) -> Option<Report> {
    (r.buf.spare_capacity() == 0).then(|| {
        Report::done(Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "recv into a buffer with no spare capacity",
        )))
    })
}

#[cfg(target_os = "linux")]
pub(in crate::sys) mod uring {
    use io_uring::{opcode, squeue, types::Fd};

    use crate::op::{Recv, Report};
    use crate::sys::uring::clamp_len;

    /// The SQE, or the op's result if it ends at once.
    pub(in crate::sys) fn sqe(r: &mut Recv) -> Result<squeue::Entry, Report> {
        if let Some(report) = super::no_room(r) {
            return Err(report);
        }
        let spare = r.buf.spare_mut();
        Ok(opcode::Recv::new(Fd(r.sock), spare.as_mut_ptr(), clamp_len(spare.len())).build())
    }
}

#[cfg(unix)]
pub(in crate::sys) mod epoll {
    use std::os::fd::RawFd;

    use crate::op::{Recv, Report};
    use crate::sys::epoll::{Step, retry, would_block};
    use crate::sys::unix::net;

    /// One attempt.
    pub(in crate::sys) fn attempt(r: &mut Recv, fd: RawFd) -> Step {
        if let Some(report) = super::no_room(r) {
            return Step::Done(report);
        }
        loop {
            return match net::recv(fd, r.buf.spare_mut()) {
                Ok(n) => Step::Done(Report::done(Ok(n))),
                Err(e) if would_block(&e) => Step::Blocked,
                Err(e) if retry(&e) => continue,
                Err(e) => Step::Done(Report::done(Err(e))),
            };
        }
    }
}

#[cfg(windows)]
pub(in crate::sys) mod iocp {
    use crate::op::Recv;
    use crate::sys::iocp::{Side, Start};

    /// Issues the `WSARecv` (or ends the op at once).
    ///
    /// # Safety
    /// `side` is the op's own Side in its table entry: it, and the op's buffer, stay in place
    /// and untouched until the packet of this call has been dequeued.
    pub(in crate::sys) unsafe fn start(r: &mut Recv, side: &Side) -> Start {
        if let Some(report) = super::no_room(r) {
            return Start::Done(report);
        }
        let spare = r.buf.spare_mut();
        // SAFETY: `spare` (the Buf's heap block) and `side` stay put until the packet (the
        // caller's promise); nothing else touches the Buf meanwhile, the table entry owns it.
        unsafe { side.recv(r.sock, spare.as_mut_ptr(), spare.len()) }.into()
    }
}
