//! [`op::RecvMulti`](crate::op::RecvMulti): receives into the port's pool until the peer
//! closes, an error, a cancel, or the op's byte limit.
//!
//! | backend  | performed as                                                                  |
//! |----------|-------------------------------------------------------------------------------|
//! | io_uring | `IORING_OP_RECV` + `IORING_RECV_MULTISHOT`, buffers picked by the kernel from the pool's provided-buffer ring; the byte limit in `sqe->optlen` (Linux 6.17+), else the driver cancels the op once past it |
//! | epoll    | `recv` into a pool block per call, on every readable edge; a short read waits for the next edge |
//! | IOCP     | a zero-byte `WSARecv` (no buffer held while idle), then non-blocking `recv`s into pool blocks, and again |
//!
//! An idle connection holds no pool block on any backend. When the pool is dry the op ends
//! with `ENOBUFS` and the data stays in the socket.

#[cfg(target_os = "linux")]
pub(in crate::sys) mod uring {
    use std::io;

    use io_uring::{opcode, squeue, types::Fd};

    use crate::buf::Buf;
    use crate::op::{RecvMulti, Report};
    use crate::sys::uring::{POOL_GROUP, with_optlen};

    /// [`InFlight::marks`](crate::sys::InFlight::marks) bit: past its byte limit, the op is
    /// being cancelled by the driver (on kernels that cannot cap it themselves).
    pub(in crate::sys) const STOPPING: u8 = 2;

    /// The SQE; `kernel_caps`: the kernel takes the byte limit itself.
    pub(in crate::sys) fn sqe(r: &RecvMulti, kernel_caps: bool) -> squeue::Entry {
        let sqe = opcode::RecvMulti::new(Fd(r.sock), POOL_GROUP).build();
        match r.limit {
            Some(limit) if kernel_caps => with_optlen(sqe, limit),
            _ => sqe,
        }
    }

    /// What a successful CQE of `n` bytes in pool buffer `picked` means, and whether the
    /// driver must now cancel the op (its byte limit reached, on a kernel that does not cap).
    pub(in crate::sys) fn report(
        r: &mut RecvMulti,
        marks: &mut u8,
        n: usize,
        picked: Option<Buf>,
        more: bool,
        kernel_caps: bool,
    ) -> (Report, bool) {
        if n > 0 && picked.is_none() {
            let e = io::Error::other("multishot recv completed without a buffer");
            return (Report::done(Err(e)), false);
        }
        let mut stop = false;
        if r.count(n) && more && !kernel_caps && *marks & STOPPING == 0 {
            // No kernel cap: stop the op now that it reached its limit.
            *marks |= STOPPING;
            stop = true;
        }
        let report = Report {
            more,
            buf: picked,
            ..Report::done(Ok(n))
        };
        (report, stop)
    }
}

#[cfg(unix)]
pub(in crate::sys) mod epoll {
    use std::os::fd::RawFd;

    use crate::buf::BufPool;
    use crate::op::{RecvMulti, Report, out_of_buffers_error};
    use crate::sys::epoll::{Step, retry, would_block};
    use crate::sys::unix::net;

    /// One attempt: one `recv` into a fresh pool block. `edge_follows`: the socket is
    /// registered and has not reported its peer's FIN, so any byte that arrives after a read
    /// raises a new edge.
    pub(in crate::sys) fn attempt(
        r: &mut RecvMulti,
        fd: RawFd,
        pool: &BufPool,
        edge_follows: bool,
    ) -> Step {
        let Some(mut buf) = pool.get() else {
            return Step::Done(Report::done(Err(out_of_buffers_error())));
        };
        loop {
            return match net::recv(fd, buf.spare_mut()) {
                Ok(0) => Step::Done(Report::done(Ok(0))),
                Ok(n) => {
                    let drained = n < buf.spare_capacity();
                    buf.commit(n);
                    let report = Report {
                        buf: Some(buf),
                        ..Report::done(Ok(n))
                    };
                    if r.count(n) {
                        Step::Done(report) // the limit is reached: this one is the last
                    } else if drained && edge_follows {
                        // A short read took all there was; more data (or the FIN) will raise
                        // a new edge, so no second recv just to hear EAGAIN.
                        Step::MoreThenWait(Report {
                            more: true,
                            ..report
                        })
                    } else {
                        Step::More(Report {
                            more: true,
                            ..report
                        })
                    }
                }
                Err(e) if would_block(&e) => Step::Blocked,
                Err(e) if retry(&e) => continue,
                Err(e) => Step::Done(Report::done(Err(e))),
            };
        }
    }
}

#[cfg(windows)]
pub(in crate::sys) mod iocp {
    use std::io;

    use windows_sys::Win32::Foundation::NTSTATUS;

    use crate::op::{Op, OpId, RecvMulti, Report, out_of_buffers_error};
    use crate::sys::OpTable;
    use crate::sys::iocp::side::Cancel;
    use crate::sys::iocp::win;
    use crate::sys::iocp::{Iocp, Side, Start, side_of, succeeded};

    /// Pool buffers one multishot receive fills in a row before it re-arms and lets other
    /// sockets' packets be handled.
    const STEP_BUDGET: usize = 32;

    /// Issues the zero-byte `WSARecv`: it completes once data is there, taking none of it.
    ///
    /// # Safety
    /// `side` is the op's own Side in its table entry: it, and the op's buffer, stay in place
    /// and untouched until the packet of this call has been dequeued.
    pub(in crate::sys) unsafe fn start(r: &RecvMulti, side: &Side) -> Start {
        let nothing = std::ptr::NonNull::dangling().as_ptr();
        // SAFETY: zero bytes: the kernel writes no buffer; `side` stays put until the packet
        // (the caller's promise).
        unsafe { side.recv(r.sock, nothing, 0) }.into()
    }

    impl Iocp {
        /// The zero-byte receive of a multishot receive completed: data (or the end) is there.
        pub(in crate::sys) fn readable(&mut self, table: &mut OpTable, id: OpId, status: NTSTATUS) {
            let Some(sock) = table.get(id).and_then(|e| e.op.sock()) else {
                return;
            };
            let side = side_of(table, id, 0).expect("a recv in flight has its Side");
            if !succeeded(status) {
                let e = self.call_error(side, status);
                return self.end(table, id, Report::done(Err(e)));
            }
            if side.cancel() != Cancel::No || self.closing {
                // Cancelled before taking anything: the data stays in the socket.
                return self.end(table, id, Report::cancelled());
            }
            for _ in 0..STEP_BUDGET {
                let Some(mut buf) = self.pool.get() else {
                    return self.end(table, id, Report::done(Err(out_of_buffers_error())));
                };
                match win::recv_now(sock, buf.spare_mut()) {
                    Ok(0) => return self.end(table, id, Report::done(Ok(0))),
                    Ok(n) => {
                        buf.commit(n);
                        let raw = Report {
                            buf: Some(buf),
                            ..Report::done(Ok(n))
                        };
                        let at_limit = match table.get_mut(id).map(|e| &mut e.op) {
                            Some(Op::RecvMulti(r)) => r.count(n),
                            _ => false,
                        };
                        if at_limit {
                            // The op's byte limit is reached: this completion is its last.
                            return self.end(table, id, raw);
                        }
                        table.complete(id, Report { more: true, ..raw });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return self.end(table, id, Report::done(Err(e))),
                }
            }
            // Drained (or out of budget: the zero-byte receive then completes at once, behind the
            // packets of other sockets): wait for more.
            if let Start::Done(raw) = self.start(table, id) {
                self.end(table, id, raw);
            }
        }
    }
}
