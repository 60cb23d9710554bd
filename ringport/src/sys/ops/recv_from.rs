//! [`op::RecvFrom`](crate::op::RecvFrom): one datagram and its sender.
//!
//! | backend  | performed as                                                                  |
//! |----------|-------------------------------------------------------------------------------|
//! | io_uring | `IORING_OP_RECVMSG`; header, iovec and the sender's address in the op's `Side` |
//! | epoll    | `recvfrom` at once; after `EAGAIN`, again at the readable edge                 |
//! | IOCP     | `WSARecvFrom`; the sender's address in the op's `Side`                         |
//!
//! A datagram larger than the buffer is truncated to it, as `recvfrom` does, on every backend.

#[cfg(target_os = "linux")]
pub(in crate::sys) mod uring {
    use io_uring::{opcode, squeue, types::Fd};

    use crate::op::{RecvFrom, Report};
    use crate::sys::unix::net;
    use crate::sys::uring::Side;

    /// The SQE; the message header, iovec and address room live in `side`.
    pub(in crate::sys) fn sqe(r: &mut RecvFrom, side: &mut Side) -> squeue::Entry {
        let spare = r.buf.spare_mut();
        side.iov = libc::iovec {
            iov_base: spare.as_mut_ptr().cast(),
            iov_len: spare.len(),
        };
        side.msg.msg_name = (&raw mut side.addr).cast();
        side.msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        side.msg.msg_iov = &raw mut side.iov;
        side.msg.msg_iovlen = 1;
        opcode::RecvMsg::new(Fd(r.sock), &raw mut side.msg).build()
    }

    /// What a successful CQE of `n` bytes means: the datagram and its sender.
    ///
    /// # Safety
    /// `side` is the op's own, and the kernel has posted its successful CQE: it wrote
    /// `msg_namelen` bytes of sender address into `side.addr` (the msghdr's name) first.
    pub(in crate::sys) unsafe fn report(side: &Side, n: usize) -> Report {
        // SAFETY: as the caller promises, the kernel wrote the sender's address.
        let addr = unsafe { net::read_addr(&side.addr, side.msg.msg_namelen).ok() };
        Report {
            addr,
            ..Report::done(Ok(n))
        }
    }
}

#[cfg(unix)]
pub(in crate::sys) mod epoll {
    use std::os::fd::RawFd;

    use crate::op::{RecvFrom, Report};
    use crate::sys::epoll::{Step, retry, would_block};
    use crate::sys::unix::net;

    /// One attempt.
    pub(in crate::sys) fn attempt(r: &mut RecvFrom, fd: RawFd) -> Step {
        loop {
            return match net::recv_from(fd, r.buf.spare_mut()) {
                Ok((n, addr)) => Step::Done(Report {
                    addr: Some(addr),
                    ..Report::done(Ok(n))
                }),
                Err(e) if would_block(&e) => Step::Blocked,
                Err(e) if retry(&e) => continue,
                Err(e) => Step::Done(Report::done(Err(e))),
            };
        }
    }
}

#[cfg(windows)]
pub(in crate::sys) mod iocp {
    use crate::op::{RecvFrom, Report};
    use crate::sys::iocp::{Side, Start};

    /// Issues the `WSARecvFrom`.
    ///
    /// # Safety
    /// `side` is the op's own Side in its table entry: it, and the op's buffer, stay in place
    /// and untouched until the packet of this call has been dequeued.
    pub(in crate::sys) unsafe fn start(r: &mut RecvFrom, side: &Side) -> Start {
        let spare = r.buf.spare_mut();
        // SAFETY: `spare` (the Buf's heap block) and `side` stay put until the packet (the
        // caller's promise); the table entry owns the Buf.
        unsafe { side.recv_from(r.sock, spare.as_mut_ptr(), spare.len()) }.into()
    }

    /// What a successful packet of `bytes` means: the datagram and its sender.
    pub(in crate::sys) fn report(side: &Side, bytes: usize) -> Report {
        match side.sender() {
            Ok(addr) => Report {
                addr: Some(addr),
                ..Report::done(Ok(bytes))
            },
            Err(e) => Report::done(Err(e)),
        }
    }
}
