//! [`op::Close`](crate::op::Close): end every op on the socket, then close it.
//!
//! | backend  | performed as                                                                   |
//! |----------|--------------------------------------------------------------------------------|
//! | io_uring | ops still in the socket's lanes end as cancelled; `IORING_OP_ASYNC_CANCEL` of every op on the descriptor, hard-linked to `IORING_OP_CLOSE` |
//! | epoll    | every op of the socket ends as cancelled (a send reports what it wrote), `EPOLL_CTL_DEL`, `close` |
//! | IOCP     | ops waiting in its lanes end as cancelled; `closesocket`, which aborts the calls in the kernel (their packets end them as cancelled) |
//!
//! A pending io_uring receive holds a reference to its socket, so a plain `close(2)` would not
//! even send the FIN until that receive ended: hence the cancel first.

#[cfg(target_os = "linux")]
mod uring {
    use std::io;
    use std::os::fd::RawFd;

    use io_uring::opcode;
    use io_uring::squeue;
    use io_uring::types::{CancelBuilder, Fd};

    use crate::sys::OpTable;
    use crate::sys::lanes::{Gone, LanePolicy};
    use crate::sys::uring::{INTERNAL_TAG, Uring};

    impl Uring {
        /// The SQE that closes `fd` (the kernel owns the descriptor from here), after the
        /// linked cancel of every op on it, queued here.
        pub(in crate::sys) fn close_sqe(
            &mut self,
            table: &mut OpTable,
            fd: RawFd,
        ) -> io::Result<squeue::Entry> {
            // Ops the kernel has on this socket end through the cancel below; those still
            // queued in its lanes never started and end here.
            self.socket_gone(table, fd, Gone::Closed);
            let cancel = opcode::AsyncCancel2::new(CancelBuilder::fd(Fd(fd)).all())
                .build()
                .user_data(INTERNAL_TAG)
                // Hard link: the close runs even if there was nothing to cancel.
                .flags(squeue::Flags::IO_HARDLINK);
            self.reserve(table, 2)?;
            self.push(table, &cancel)?;
            Ok(opcode::Close::new(Fd(fd)).build())
        }
    }
}

#[cfg(unix)]
mod epoll {
    use std::os::fd::AsRawFd;

    use mio::unix::SourceFd;

    use crate::op::{Op, OpId, Report};
    use crate::sys::OpTable;
    use crate::sys::epoll::Epoll;
    use crate::sys::lanes::{Gone, LanePolicy};

    impl Epoll {
        /// Performs close op `id`: at once, there is nothing to wait for.
        pub(in crate::sys) fn close(&mut self, table: &mut OpTable, id: OpId) {
            let Some(Op::Close(close)) = table.get_mut(id).map(|e| &mut e.op) else {
                return;
            };
            let sock = close.sock.take().expect("a close owns its socket");
            let fd = sock.as_raw_fd();
            self.socket_gone(table, fd, Gone::Closed);
            self.flags(fd).read_closed = false;
            self.flags(fd).nonblocking = false;
            if std::mem::take(&mut self.flags(fd).registered) {
                // The close below would drop the registration too; this keeps a dup'd fd quiet.
                let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
            }
            drop(sock);
            table.complete(id, Report::done(Ok(0)));
        }
    }
}

#[cfg(windows)]
mod iocp {
    use std::os::windows::io::{AsRawSocket, OwnedSocket};

    use crate::op::{Op, OpId, Report};
    use crate::sys::OpTable;
    use crate::sys::iocp::Iocp;
    use crate::sys::iocp::win;
    use crate::sys::lanes::{Gone, LanePolicy};

    impl Iocp {
        /// Performs close op `id`: at once; the calls `closesocket` aborts end by their packets.
        pub(in crate::sys) fn close(&mut self, table: &mut OpTable, id: OpId) {
            let Some(Op::Close(close)) = table.get_mut(id).map(|e| &mut e.op) else {
                return;
            };
            let sock: OwnedSocket = close.sock.take().expect("a close owns its socket");
            let raw = sock.as_raw_socket();
            // The handle value may name another socket after this close.
            self.lanes.sock(raw).extra.associated = false;
            self.socket_gone(table, raw, Gone::Closed);
            let res = win::close(sock);
            table.complete(id, Report::done(res.map(|()| 0)));
        }
    }
}
