//! [`op::Timeout`](crate::op::Timeout): a completion when a time comes.
//!
//! | backend  | performed as                                                                  |
//! |----------|-------------------------------------------------------------------------------|
//! | io_uring | `IORING_OP_TIMEOUT`, the timespec in the op's `Side` (relative, or `ABS` on the monotonic clock for a deadline); `-ETIME` is its success |
//! | epoll    | the driver's deadline heap (`sys/timers.rs`); `epoll_wait`'s timeout is the nearest deadline |
//! | IOCP     | the same heap; `GetQueuedCompletionStatusEx`'s timeout is the nearest deadline |
//!
//! A timeout linked to another op ([`Port::submit_with_timeout`](crate::Port::submit_with_timeout)):
//!
//! | backend  | performed as                                                                  |
//! |----------|-------------------------------------------------------------------------------|
//! | io_uring | `IORING_OP_LINK_TIMEOUT` right behind the op's SQE (which gets `IOSQE_IO_LINK`), `IORING_TIMEOUT_ABS` on the monotonic clock, so time the op spent in its lane counts; the timespec in the op's `Side`; its own CQE is the driver's (internal tag) and never delivered. The op's `-ECANCELED` becomes `TimedOut` unless someone else asked it to end. While the op still waits in its lane, the driver's deadline heap ends it there |
//! | epoll    | the deadline heap: at the deadline the op is cancelled (`Port::cancel`'s path) and its cancelled result becomes `TimedOut` |
//! | IOCP     | the same heap: at the deadline `CancelIoEx` (or, still in its lane, the op ends at once); the cancelled result becomes `TimedOut` |

#[cfg(target_os = "linux")]
pub(in crate::sys) mod uring {
    use std::time::{Duration, Instant};

    use io_uring::{opcode, squeue, types::TimeoutFlags, types::Timespec};

    use crate::op::{Timeout, When};
    use crate::sys::unix::net;
    use crate::sys::uring::Side;

    /// The SQE; the timespec lives in `side`.
    pub(in crate::sys) fn sqe(t: &Timeout, side: &mut Side) -> squeue::Entry {
        let flags = match t.when {
            When::After(d) => {
                side.ts = Timespec::from(d);
                TimeoutFlags::empty()
            }
            When::At(at) => {
                side.ts = monotonic(at);
                TimeoutFlags::ABS
            }
        };
        opcode::Timeout::new(&raw const side.ts)
            .flags(flags)
            .build()
    }

    /// The `IORING_OP_LINK_TIMEOUT` SQE for an op that must end by `deadline`, to be queued
    /// right behind the op's own SQE (flagged `IO_LINK`); the timespec lives in the op's `side`.
    pub(in crate::sys) fn link_sqe(deadline: Instant, side: &mut Side) -> squeue::Entry {
        side.link_ts = monotonic(deadline);
        opcode::LinkTimeout::new(&raw const side.link_ts)
            .flags(TimeoutFlags::ABS)
            .build()
    }

    /// `at` on `CLOCK_MONOTONIC`, as an absolute timeout takes it.
    fn monotonic(at: Instant) -> Timespec {
        let now = net::monotonic_now();
        let ahead = at.saturating_duration_since(Instant::now());
        Timespec::from(Duration::new(now.tv_sec as u64, now.tv_nsec as u32) + ahead)
    }

    /// Whether a CQE error `errno` is the timeout's success: it fired.
    pub(in crate::sys) fn fired(errno: i32) -> bool {
        errno == libc::ETIME
    }
}
