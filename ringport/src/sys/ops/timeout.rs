//! [`op::Timeout`](crate::op::Timeout): a completion when a time comes.
//!
//! | backend  | performed as                                                                  |
//! |----------|-------------------------------------------------------------------------------|
//! | io_uring | `IORING_OP_TIMEOUT`, the timespec in the op's `Side` (relative, or `ABS` on the monotonic clock for a deadline); `-ETIME` is its success |
//! | epoll    | the driver's deadline heap (`sys/timers.rs`); `epoll_wait`'s timeout is the nearest deadline |
//! | IOCP     | the same heap; `GetQueuedCompletionStatusEx`'s timeout is the nearest deadline |

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
                let now = net::monotonic_now();
                let ahead = at.saturating_duration_since(Instant::now());
                let abs = Duration::new(now.tv_sec as u64, now.tv_nsec as u32) + ahead;
                side.ts = Timespec::from(abs);
                TimeoutFlags::ABS
            }
        };
        opcode::Timeout::new(&raw const side.ts)
            .flags(flags)
            .build()
    }

    /// Whether a CQE error `errno` is the timeout's success: it fired.
    pub(in crate::sys) fn fired(errno: i32) -> bool {
        errno == libc::ETIME
    }
}
