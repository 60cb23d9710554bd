//! Operations: the per-I/O data of the IOCP model, one file per operation.
//!
//! In the tutorials every overlapped call carries a `PER_IO_DATA` block: the `OVERLAPPED`, the
//! buffer and the operation kind. Here each operation is a value (`op::Recv`, `op::Send`, …) that
//! owns what the kernel needs — the socket's handle, the [`Buf`] — and is moved into the
//! [`Port`](crate::Port) by [`Port::submit`](crate::Port::submit) together with a caller-chosen
//! token (the completion key).
//!
//! # Lifecycle of an operation
//!
//! 1. **Submitted**: `submit` moves the op into the port's table of in-flight operations and
//!    returns its [`OpId`](crate::OpId). The backend queues it (io_uring: an SQE, sent to the
//!    kernel in one batch with the others at the next `wait`; epoll: tried at once; IOCP: the
//!    overlapped call).
//! 2. **Waiting**: the kernel owns the op's memory. Safe code cannot reach it: the buffer was
//!    moved in. A cancel ([`Port::cancel`](crate::Port::cancel)) may be requested; it does not
//!    free anything, it asks the kernel to finish early.
//! 3. **Completed**: the backend reports the kernel's result; the port turns op + result into a
//!    [`Completion`](crate::Completion) that gives the buffer (or new socket) back, and drops the
//!    op from the table. Exactly one final completion arrives for every submitted op — also for a
//!    cancelled one (its result is then an error for which
//!    [`Completion::is_cancelled`](crate::Completion::is_cancelled) holds, unless the op finished
//!    first, in which case its real result, with every byte it moved, is delivered).
//!    Multishot ops ([`AcceptMulti`], [`RecvMulti`]) deliver any number of completions with
//!    [`Completion::more`](crate::Completion::more) set before their final one.
//! 4. **Ignored**: if the port is dropped while ops are in flight, it cancels them, waits for the
//!    kernel to give every buffer back, and drops the results (buffers return to their pools,
//!    accepted sockets are closed).

use std::io;
use std::net::SocketAddr;

use crate::buf::Buf;
use crate::sock::{OwnedSock, RawSock};

mod accept;
mod close;
mod completion;
mod connect;
mod id;
mod nop;
mod recv;
mod recv_from;
mod recv_multi;
mod send;
mod send_to;
mod shutdown;
mod timeout;

pub use accept::{Accept, AcceptMulti};
pub use close::Close;
pub use completion::{
    Completion, Completions, Outcome, is_accept_aborted, is_cancelled, is_out_of_buffers,
};
pub(crate) use completion::{accept_aborted_error, cancelled_error, out_of_buffers_error};
pub use connect::Connect;
pub use id::OpId;
pub(crate) use id::RESERVED_GEN;
pub use nop::Nop;
pub use recv::Recv;
pub use recv_from::RecvFrom;
pub use recv_multi::RecvMulti;
pub use send::Send;
pub use send_to::SendTo;
pub use shutdown::Shutdown;
pub use timeout::Timeout;
pub(crate) use timeout::When;

/// The kind of an operation, e.g. to ask a port whether its backend supports it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// [`Accept`]: one connection.
    Accept,
    /// [`AcceptMulti`]: connections until cancelled.
    AcceptMulti,
    /// [`Connect`].
    Connect,
    /// [`Recv`] into a caller buffer.
    Recv,
    /// [`RecvMulti`]: receives into pool buffers until cancelled.
    RecvMulti,
    /// [`Send`].
    Send,
    /// [`RecvFrom`]: one datagram.
    RecvFrom,
    /// [`SendTo`]: one datagram.
    SendTo,
    /// [`Shutdown`]: a half-close.
    Shutdown,
    /// [`Close`].
    Close,
    /// [`Timeout`].
    Timeout,
    /// [`Nop`].
    Nop,
}

/// An operation in the port's table: one variant per op file.
#[derive(Debug)]
pub(crate) enum Op {
    Accept(Accept),
    AcceptMulti(AcceptMulti),
    Connect(Connect),
    Recv(Recv),
    RecvMulti(RecvMulti),
    Send(Send),
    RecvFrom(RecvFrom),
    SendTo(SendTo),
    Shutdown(Shutdown),
    Close(Close),
    Timeout(Timeout),
    Nop(Nop),
}

/// What a backend reports for one completion (from an io_uring CQE, an epoll attempt, an IOCP
/// packet), before the op turns it into an [`Outcome`].
#[derive(Debug)]
pub(crate) struct Report {
    /// Bytes moved (or the plain success) or the OS error.
    pub res: io::Result<usize>,
    /// More completions follow for this op (multishot).
    pub more: bool,
    /// A socket the kernel created (accept).
    pub sock: Option<OwnedSock>,
    /// The peer address the kernel filled in (accept, recv_from).
    pub addr: Option<SocketAddr>,
    /// A pool buffer the kernel chose and filled (multishot recv).
    pub buf: Option<Buf>,
}

impl Report {
    /// A final result with nothing attached.
    pub fn done(res: io::Result<usize>) -> Report {
        Report {
            res,
            more: false,
            sock: None,
            addr: None,
            buf: None,
        }
    }

    /// The result of an op cancelled before the kernel moved anything.
    pub fn cancelled() -> Report {
        Report::done(Err(cancelled_error()))
    }
}

impl Op {
    /// The op's kind.
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Accept(_) => OpKind::Accept,
            Op::AcceptMulti(_) => OpKind::AcceptMulti,
            Op::Connect(_) => OpKind::Connect,
            Op::Recv(_) => OpKind::Recv,
            Op::RecvMulti(_) => OpKind::RecvMulti,
            Op::Send(_) => OpKind::Send,
            Op::RecvFrom(_) => OpKind::RecvFrom,
            Op::SendTo(_) => OpKind::SendTo,
            Op::Shutdown(_) => OpKind::Shutdown,
            Op::Close(_) => OpKind::Close,
            Op::Timeout(_) => OpKind::Timeout,
            Op::Nop(_) => OpKind::Nop,
        }
    }

    /// The socket the op works on, if any (a timeout has none; a close owns its socket).
    pub fn sock(&self) -> Option<RawSock> {
        match self {
            Op::Accept(o) => Some(o.listener),
            Op::AcceptMulti(o) => Some(o.listener),
            Op::Connect(o) => o.raw(),
            Op::Recv(o) => Some(o.sock),
            Op::RecvMulti(o) => Some(o.sock),
            Op::Send(o) => Some(o.sock),
            Op::RecvFrom(o) => Some(o.sock),
            Op::SendTo(o) => Some(o.sock),
            Op::Shutdown(o) => Some(o.sock),
            Op::Close(o) => o.raw(),
            Op::Timeout(_) | Op::Nop(_) => None,
        }
    }

    /// Turns a backend's raw result into the typed outcome. A final result (`raw.more` false)
    /// moves the op's buffer out; the op is dropped right after.
    pub fn complete(&mut self, raw: Report) -> Outcome {
        match self {
            Op::Accept(_) | Op::AcceptMulti(_) => accept::complete(raw),
            Op::Connect(o) => o.complete(raw),
            Op::Recv(o) => o.complete(raw),
            Op::RecvMulti(_) => recv_multi::complete(raw),
            Op::Send(o) => o.complete(raw),
            Op::RecvFrom(o) => o.complete(raw),
            Op::SendTo(o) => o.complete(raw),
            Op::Shutdown(_) => Outcome::Shutdown(raw.res.map(drop)),
            Op::Close(_) => Outcome::Close(raw.res.map(drop)),
            Op::Timeout(_) => Outcome::Timeout(raw.res.map(drop)),
            Op::Nop(_) => Outcome::Nop(raw.res.map(drop)),
        }
    }
}

/// A value [`Port::submit`](crate::Port::submit) accepts: one of the op types in this module.
pub trait Operation: private::Sealed {}

pub(crate) mod private {
    /// Seals [`Operation`](super::Operation): the port must know every op's memory.
    pub trait Sealed {
        /// Wraps the op for the table.
        fn into_op(self) -> Wrapped;
    }

    /// An op on its way into the table (nameable only inside the crate).
    #[derive(Debug)]
    pub struct Wrapped(pub(crate) super::Op);
}

macro_rules! operation {
    ($($name:ident),*) => {$(
        impl private::Sealed for $name {
            fn into_op(self) -> private::Wrapped {
                private::Wrapped(Op::$name(self))
            }
        }
        impl Operation for $name {}
    )*};
}

operation!(
    Accept,
    AcceptMulti,
    Connect,
    Recv,
    RecvMulti,
    Send,
    RecvFrom,
    SendTo,
    Shutdown,
    Close,
    Timeout,
    Nop
);
