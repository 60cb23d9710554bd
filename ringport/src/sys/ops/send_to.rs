//! [`op::SendTo`](crate::op::SendTo): one datagram to an address.
//!
//! | backend  | performed as                                                         |
//! |----------|----------------------------------------------------------------------|
//! | io_uring | `IORING_OP_SENDMSG` with the address and one iovec in the op's `Side` |
//! | epoll    | `sendto` at once; after `EAGAIN`, again at the writable edge          |
//! | IOCP     | `WSASendTo` with the address in the op's `Side`                       |

#[cfg(target_os = "linux")]
pub(in crate::sys) mod uring {
    use io_uring::{opcode, squeue, types::Fd};

    use crate::op::SendTo;
    use crate::sys::uring::Side;

    /// The SQE; the message header, iovec and address live in `side`.
    pub(in crate::sys) fn sqe(s: &SendTo, side: &mut Side) -> squeue::Entry {
        side.set_addr(s.addr);
        side.iov = libc::iovec {
            iov_base: s.buf.as_ptr().cast_mut().cast(),
            iov_len: s.buf.len(),
        };
        side.msg.msg_name = (&raw mut side.addr).cast();
        side.msg.msg_namelen = side.addr_len;
        side.msg.msg_iov = &raw mut side.iov;
        side.msg.msg_iovlen = 1;
        opcode::SendMsg::new(Fd(s.sock), &raw const side.msg)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build()
    }
}

#[cfg(unix)]
pub(in crate::sys) mod epoll {
    use std::io;
    use std::os::fd::RawFd;

    use socket2::SockAddr;

    use crate::op::{Report, SendTo};
    use crate::sys::epoll::{Step, would_block};
    use crate::sys::unix::net;

    /// One attempt.
    pub(in crate::sys) fn attempt(s: &SendTo, fd: RawFd) -> Step {
        loop {
            return match net::send_to(fd, &s.buf, &SockAddr::from(s.addr)) {
                Ok(n) => Step::Done(Report::done(Ok(n))),
                Err(e) if would_block(&e) => Step::Blocked,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Step::Done(Report::done(Err(e))),
            };
        }
    }
}

#[cfg(windows)]
pub(in crate::sys) mod iocp {
    use crate::op::SendTo;
    use crate::sys::iocp::{Side, Start};

    /// Issues the `WSASendTo`.
    ///
    /// # Safety
    /// `side` is the op's own Side in its table entry: it, and the op's buffer, stay in place
    /// and untouched until the packet of this call has been dequeued.
    pub(in crate::sys) unsafe fn start(s: &SendTo, side: &Side) -> Start {
        // SAFETY: the Buf's heap block and `side` stay put and unchanged until the packet (the
        // caller's promise).
        unsafe { side.send_to(s.sock, s.buf.as_ptr(), s.buf.len(), s.addr) }.into()
    }
}
