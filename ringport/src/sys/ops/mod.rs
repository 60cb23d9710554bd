//! The operations as each backend runs them: one file per operation, its io_uring, epoll and
//! IOCP halves side by side.
//!
//! `op/` says what an operation is and how its result reaches the caller, the same on every
//! backend; this module says how each backend performs it: the io_uring SQE it becomes and
//! what its CQE means, the epoll attempt made on each readiness edge, the IOCP overlapped call
//! and what its packet means. Each backend's driver (`sys/uring`, `sys/epoll`, `sys/iocp`) keeps
//! only the machinery every op shares — queues, lanes, waiting, shutdown — and calls into these
//! halves with one match arm per op. A new operation, or a new kernel feature for one, lands in
//! its file here.
//!
//! A half is a free function when it needs only the op and its per-op memory, and a method of
//! its backend's driver (an `impl` block here) when it uses the driver's own state.

pub(super) mod accept;
pub(super) mod close;
pub(super) mod connect;
pub(super) mod nop;
pub(super) mod recv;
pub(super) mod recv_from;
pub(super) mod recv_multi;
pub(super) mod send;
pub(super) mod send_to;
pub(super) mod shutdown;
pub(super) mod timeout;
