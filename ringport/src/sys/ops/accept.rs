//! [`op::Accept`](crate::op::Accept) and [`op::AcceptMulti`](crate::op::AcceptMulti): the
//! tutorials' `AcceptEx`, one-shot and multishot.
//!
//! | backend  | one-shot                                    | multishot                                          |
//! |----------|---------------------------------------------|----------------------------------------------------|
//! | io_uring | `IORING_OP_ACCEPT`, the peer address into the op's `Side` | `IORING_OP_ACCEPT` + `IORING_ACCEPT_MULTISHOT`: a CQE per connection, no address (the op asks `getpeername`) |
//! | epoll    | `accept4` at once; after `EAGAIN`, at the readable edge | `accept4` until `EAGAIN` on every readable edge |
//! | IOCP     | `AcceptEx` into a socket made for it        | 16 `AcceptEx` kept posted, each posted again after its packet |
//!
//! Accepted sockets are non-blocking and close-on-exec. A connection its peer reset while it
//! waited in the listen queue is an ordinary event, not a failure of the listener: a multishot
//! accept reports it as an aborted accept and goes on; a one-shot one takes the next
//! connection.

#[cfg(target_os = "linux")]
pub(in crate::sys) mod uring {
    use io_uring::{opcode, squeue, types::Fd};

    use crate::op::{Accept, AcceptMulti, Report};
    use crate::sys::unix::net;
    use crate::sys::uring::{NEW_SOCK_FLAGS, Side};

    /// The SQE of a one-shot accept; the peer address lands in `side`.
    pub(in crate::sys) fn sqe(a: &Accept, side: &mut Side) -> squeue::Entry {
        side.addr_len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        opcode::Accept::new(
            Fd(a.listener),
            (&raw mut side.addr).cast(),
            &raw mut side.addr_len,
        )
        .flags(NEW_SOCK_FLAGS)
        .build()
    }

    /// The SQE of a multishot accept.
    pub(in crate::sys) fn sqe_multi(a: &AcceptMulti) -> squeue::Entry {
        opcode::AcceptMulti::new(Fd(a.listener))
            .flags(NEW_SOCK_FLAGS)
            .build()
    }

    /// What a successful CQE means: descriptor `fd`, and (one-shot) the peer's address.
    ///
    /// # Safety
    /// `fd` is the result of a successful accept CQE (a new descriptor nobody owns), and `side`,
    /// if given, is the one-shot accept's own, into which the kernel wrote the peer address
    /// before posting that CQE.
    pub(in crate::sys) unsafe fn report(fd: i32, side: Option<&Side>, more: bool) -> Report {
        // SAFETY: `fd` is a new descriptor nobody owns (the caller's promise).
        let sock = Some(unsafe { net::own(fd) });
        // SAFETY: the kernel wrote the peer address of `addr_len` bytes into `side` (the
        // caller's promise). (A multishot accept has no `side`.)
        let addr = side.and_then(|side| unsafe { net::read_addr(&side.addr, side.addr_len).ok() });
        Report {
            more,
            sock,
            addr,
            ..Report::done(Ok(0))
        }
    }
}

#[cfg(unix)]
pub(in crate::sys) mod epoll {
    use std::os::fd::RawFd;

    use crate::op::{Report, is_accept_aborted};
    use crate::sys::epoll::{Step, retry, would_block};
    use crate::sys::unix::net;

    /// One attempt; `multi` for a multishot accept.
    pub(in crate::sys) fn attempt(multi: bool, fd: RawFd) -> Step {
        loop {
            return match net::accept(fd) {
                Ok((sock, addr)) => {
                    let report = Report {
                        sock: Some(sock),
                        addr: Some(addr),
                        ..Report::done(Ok(0))
                    };
                    if multi {
                        Step::More(Report {
                            more: true,
                            ..report
                        })
                    } else {
                        Step::Done(report)
                    }
                }
                Err(e) if would_block(&e) => Step::Blocked,
                // A connection reset before it was accepted: a multishot accept reports it
                // (and goes on), a one-shot one takes the next connection.
                Err(e) if is_accept_aborted(&e) && multi => Step::More(Report {
                    more: true,
                    ..Report::done(Err(e))
                }),
                Err(e) if retry(&e) => continue,
                Err(e) => Step::Done(Report::done(Err(e))),
            };
        }
    }
}

#[cfg(windows)]
pub(in crate::sys) mod iocp {
    use std::io;
    use std::os::windows::io::{AsRawSocket, OwnedSocket};

    use socket2::{Domain, Protocol, Socket, Type};
    use windows_sys::Win32::Foundation::{
        NTSTATUS, STATUS_CONNECTION_ABORTED, STATUS_CONNECTION_RESET, STATUS_REMOTE_DISCONNECT,
    };

    use crate::op::{Accept, OpId, Report, accept_aborted_error, cancelled_error};
    use crate::sock::RawSock;
    use crate::sys::OpTable;
    use crate::sys::iocp::side::Cancel;
    use crate::sys::iocp::side::Issued;
    use crate::sys::iocp::win::{self, Ext};
    use crate::sys::iocp::{Iocp, Side, Start, in_kernel, side_of, succeeded};

    /// Issues the one-shot accept's `AcceptEx`.
    ///
    /// # Safety
    /// `side` is the op's own Side in its table entry: it, and the op's buffer, stay in place
    /// and untouched until the packet of this call has been dequeued.
    pub(in crate::sys) unsafe fn start(a: &Accept, side: &Side, ext: &Ext) -> Start {
        let listener = a.listener;
        match family_of(listener) {
            Ok(domain) => accept_into(ext, side, listener, domain).into(),
            Err(e) => Start::Done(Report::done(Err(e))),
        }
    }

    impl Iocp {
        /// Issues every slot's `AcceptEx` of multishot accept `id` on `listener`.
        ///
        /// # Safety
        /// `side` is the op's own Side (with its slots) in its table entry: it stays in place
        /// until the packet of every call has been dequeued.
        pub(in crate::sys) unsafe fn start_accept_multi(
            &mut self,
            id: OpId,
            listener: RawSock,
            side: &Side,
        ) -> Start {
            let domain = match family_of(listener) {
                Ok(domain) => domain,
                Err(e) => return Start::Done(Report::done(Err(e))),
            };
            side.set_family(i32::from(domain) as u16);
            let mut failed = None;
            for (_, slot) in side.all() {
                if let Issued::Failed(e) = accept_into(&self.ext, slot, listener, domain) {
                    failed = Some(e);
                    break;
                }
            }
            match failed {
                None => Start::Queued,
                Some(e) if !side.in_kernel() => Start::Done(Report::done(Err(e))),
                Some(e) => {
                    // Some slots are posted: end like a failed multishot accept.
                    side.cancel_io(listener);
                    self.ending.insert(id, e);
                    Start::Queued
                }
            }
        }

        /// The accepted socket of a successful AcceptEx packet, ready for the caller.
        pub(in crate::sys) fn take_accepted(
            &self,
            table: &OpTable,
            id: OpId,
            slot: u32,
        ) -> io::Result<Report> {
            let listener = table
                .get(id)
                .and_then(|e| e.op.sock())
                .ok_or_else(|| io::Error::other("accept without its listener"))?;
            let side =
                side_of(table, id, slot).ok_or_else(|| io::Error::other("accept slot gone"))?;
            let (sock, addr) = side.accepted(&self.ext, listener)?;
            // Not associated: the first port that runs an operation on it will be its port.
            win::set_nonblocking(sock.as_raw_socket())?;
            Ok(Report {
                sock: Some(sock),
                addr: Some(addr),
                ..Report::done(Ok(0))
            })
        }

        pub(in crate::sys) fn accepted_one(
            &mut self,
            table: &mut OpTable,
            id: OpId,
            status: NTSTATUS,
        ) {
            let taken = if succeeded(status) {
                self.take_accepted(table, id, 0)
            } else {
                let side = side_of(table, id, 0).expect("an accept in flight has its Side");
                side.drop_accept_socket();
                Err(self.call_error(side, status))
            };
            let cancelled = side_of(table, id, 0).map_or(Cancel::User, Side::cancel) != Cancel::No;
            match taken {
                Ok(raw) => self.end(table, id, raw),
                // A connection dead before it was taken: accept the next one instead.
                Err(e)
                    if !cancelled
                        && !self.closing
                        && (retry_accept(status) || died_before_accept(&e)) =>
                {
                    if let Start::Done(raw) = self.start(table, id) {
                        self.end(table, id, raw);
                    }
                }
                Err(e) => self.end(table, id, Report::done(Err(e))),
            }
        }

        pub(in crate::sys) fn accepted_multi(
            &mut self,
            table: &mut OpTable,
            id: OpId,
            slot: u32,
            status: NTSTATUS,
        ) {
            let Some(listener) = table.get(id).and_then(|e| e.op.sock()) else {
                return;
            };
            let taken = if succeeded(status) {
                self.take_accepted(table, id, slot)
            } else {
                let main = side_of(table, id, 0).expect("an accept in flight has its Side");
                main.slot(slot)
                    .expect("the packet's slot exists")
                    .drop_accept_socket();
                Err(self.call_error(main, status))
            };
            let cancelled = side_of(table, id, 0).map_or(Cancel::User, Side::cancel) != Cancel::No;
            match taken {
                Ok(raw) => {
                    let sock = raw.sock.as_ref().map(AsRawSocket::as_raw_socket);
                    table.complete(id, Report { more: true, ..raw });
                    if let Some(sock) = sock {
                        self.accepted_sock(table, sock);
                    }
                }
                // A connection dead before it was taken (reset in the listen queue: the AcceptEx
                // fails, or taking its socket over does): reported (the caller counts it), and
                // this slot's AcceptEx is posted again below. (The socket is dropped, closing it.)
                Err(e) if !cancelled && (retry_accept(status) || died_before_accept(&e)) => {
                    table.complete(
                        id,
                        Report {
                            more: true,
                            ..Report::done(Err(accept_aborted_error()))
                        },
                    );
                }
                Err(e) => self.end_multi(table, id, listener, e),
            }
            if !self.ending.contains_key(&id) && !self.closing {
                let main = side_of(table, id, 0).expect("an accept in flight has its Side");
                let domain = Domain::from(i32::from(main.family()));
                let slot_side = main.slot(slot).expect("the packet's slot exists");
                if let Issued::Failed(e) = accept_into(&self.ext, slot_side, listener, domain) {
                    self.end_multi(table, id, listener, e);
                }
            }
            if (self.ending.contains_key(&id) || self.closing) && !in_kernel(table, id) {
                let e = self.ending.remove(&id).unwrap_or_else(cancelled_error);
                self.end(table, id, Report::done(Err(e)));
            }
        }

        /// A multishot accept ends with `e` (the first reason wins): its other AcceptEx are
        /// cancelled, and its final completion comes when the last of them is back.
        pub(in crate::sys) fn end_multi(
            &mut self,
            table: &OpTable,
            id: OpId,
            listener: RawSock,
            e: io::Error,
        ) {
            if self.ending.contains_key(&id) {
                return;
            }
            self.ending.insert(id, e);
            if let Some(side) = side_of(table, id, 0) {
                side.cancel_io(listener);
            }
        }
    }

    /// A connection that died before it was accepted: accept the next one instead (a multishot
    /// accept reports it first, as `accept_aborted_error`).
    fn retry_accept(status: NTSTATUS) -> bool {
        matches!(
            status,
            STATUS_CONNECTION_RESET | STATUS_CONNECTION_ABORTED | STATUS_REMOTE_DISCONNECT
        )
    }

    /// Whether taking over a socket AcceptEx filled failed because the connection was already
    /// dead (`SO_UPDATE_ACCEPT_CONTEXT` on a connection reset before it was taken reports
    /// `WSAENOTCONN`): like [`retry_accept`], an event of the listen queue, not of the listener.
    fn died_before_accept(e: &io::Error) -> bool {
        matches!(
            e.kind(),
            io::ErrorKind::NotConnected
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
        )
    }

    /// The listener's address family: AcceptEx needs a socket of the same one.
    fn family_of(listener: RawSock) -> io::Result<Domain> {
        let family = win::local_family(listener)?;
        Ok(Domain::from(i32::from(family)))
    }

    /// Creates a socket of `domain` and posts an AcceptEx into it on `slot`.
    fn accept_into(ext: &Ext, slot: &Side, listener: RawSock, domain: Domain) -> Issued {
        match Socket::new(domain, Type::STREAM, Some(Protocol::TCP)) {
            // SAFETY: `slot` is a Side of an op in the table, which keeps it in place until its
            // packet (see `Iocp::start`).
            Ok(sock) => unsafe { slot.accept(ext, listener, OwnedSocket::from(sock)) },
            Err(e) => Issued::Failed(e),
        }
    }
}
