//! [`op::Send`](crate::op::Send): every byte of a buffer, or the count that went out before the
//! connection failed.
//!
//! | backend  | performed as                                                               |
//! |----------|----------------------------------------------------------------------------|
//! | io_uring | `IORING_OP_SEND` with `MSG_WAITALL`: the kernel finishes it                 |
//! | epoll    | `send` of the rest on each writable edge until every byte is out            |
//! | IOCP     | `WSASend`; a packet short of the whole buffer posts a `WSASend` of the rest |
//!
//! epoll and IOCP write the buffer in several calls and count what went out in `Send::sent`;
//! bytes that went out before a failure (or a cancel) are reported, never dropped.

#[cfg(target_os = "linux")]
pub(in crate::sys) mod uring {
    use io_uring::{opcode, squeue, types::Fd};

    use crate::op::Send;
    use crate::sys::uring::clamp_len;

    /// The SQE.
    pub(in crate::sys) fn sqe(s: &Send) -> squeue::Entry {
        opcode::Send::new(Fd(s.sock), s.buf.as_ptr(), clamp_len(s.buf.len()))
            // WAITALL: like WSASend, complete only when every byte is out (or on error, with
            // the count of those that went out).
            .flags(libc::MSG_NOSIGNAL | libc::MSG_WAITALL)
            .build()
    }
}

#[cfg(unix)]
pub(in crate::sys) mod epoll {
    use std::io;
    use std::os::fd::RawFd;

    use crate::op::{Report, Send};
    use crate::sys::epoll::{Step, would_block};
    use crate::sys::unix::net;

    /// One attempt: as much of the rest as the socket takes.
    pub(in crate::sys) fn attempt(s: &mut Send, fd: RawFd) -> Step {
        loop {
            if s.sent == s.buf.len() {
                return Step::Done(Report::done(Ok(s.sent)));
            }
            return match net::send(fd, &s.buf[s.sent..]) {
                Ok(n) => {
                    s.sent += n;
                    continue;
                }
                Err(e) if would_block(&e) => Step::Blocked,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Bytes that went out before the failure are reported, not dropped.
                Err(_) if s.sent > 0 => Step::Done(Report::done(Ok(s.sent))),
                Err(e) => Step::Done(Report::done(Err(e))),
            };
        }
    }

    /// The result of a send cancelled before the end: what it already wrote, if anything.
    pub(in crate::sys) fn ended_early(s: &Send) -> Report {
        if s.sent > 0 {
            Report::done(Ok(s.sent))
        } else {
            Report::cancelled()
        }
    }
}

#[cfg(windows)]
pub(in crate::sys) mod iocp {
    use std::io;

    use windows_sys::Win32::Foundation::NTSTATUS;

    use crate::op::{Op, OpId, Report, Send, cancelled_error};
    use crate::sys::OpTable;
    use crate::sys::iocp::side::Cancel;
    use crate::sys::iocp::{Iocp, Side, Start, side_of, succeeded};

    /// Issues the `WSASend` of the bytes not yet sent.
    ///
    /// # Safety
    /// `side` is the op's own Side in its table entry: it, and the op's buffer, stay in place
    /// and untouched until the packet of this call has been dequeued.
    pub(in crate::sys) unsafe fn start(s: &Send, side: &Side) -> Start {
        let rest = &s.buf[s.sent..];
        // SAFETY: `rest` (the Buf's heap block) and `side` stay put and unchanged until the
        // packet (the caller's promise).
        unsafe { side.send(s.sock, rest.as_ptr(), rest.len()) }.into()
    }

    impl Iocp {
        /// A WSASend's packet. It normally carries every byte; a send longer than one WSABUF takes
        /// (4 GiB) goes on with the rest. Bytes that went out are reported even if the send then
        /// failed or was cancelled.
        pub(in crate::sys) fn sent(
            &mut self,
            table: &mut OpTable,
            id: OpId,
            status: NTSTATUS,
            bytes: usize,
        ) {
            let stop = side_of(table, id, 0).map_or(Cancel::User, Side::cancel) != Cancel::No
                || self.closing;
            let Some(Op::Send(s)) = table.get_mut(id).map(|e| &mut e.op) else {
                return;
            };
            s.sent += bytes;
            let (sent, len) = (s.sent, s.buf.len());
            let res = if !succeeded(status) {
                if sent > 0 {
                    Ok(sent)
                } else {
                    let side = side_of(table, id, 0).expect("a send in flight has its Side");
                    Err(self.call_error(side, status))
                }
            } else if sent >= len {
                Ok(sent)
            } else if bytes > 0 && !stop {
                match self.start(table, id) {
                    Start::Queued => return,
                    Start::Done(_) => Ok(sent), // the rest could not start: report what went out
                }
            } else if sent > 0 {
                Ok(sent)
            } else if stop {
                Err(cancelled_error())
            } else {
                Err(io::Error::from(io::ErrorKind::WriteZero))
            };
            self.end(table, id, Report::done(res));
        }
    }
}
