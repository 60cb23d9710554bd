//! Timeout: `IORING_OP_TIMEOUT` / a timer heap in the epoll and IOCP backends.

use std::time::{Duration, Instant};

/// Completes after a delay or at a deadline, unless cancelled first.
///
/// Completes with [`Outcome::Timeout`](crate::Outcome::Timeout): `Ok(())` when the time came,
/// a cancelled error when cancelled.
#[derive(Debug)]
pub struct Timeout {
    pub(crate) when: When,
}

/// When a timeout fires.
#[derive(Copy, Clone, Debug)]
pub(crate) enum When {
    /// This long after submission.
    After(Duration),
    /// At this instant (`CLOCK_MONOTONIC`).
    At(Instant),
}

impl Timeout {
    /// Fire `delay` after submission (relative).
    pub fn after(delay: Duration) -> Timeout {
        Timeout {
            when: When::After(delay),
        }
    }

    /// Fire at `deadline` (absolute, on the monotonic clock); at once if it has passed.
    pub fn at(deadline: Instant) -> Timeout {
        Timeout {
            when: When::At(deadline),
        }
    }
}

impl When {
    /// The deadline, given the submission instant.
    pub(crate) fn deadline(self, now: Instant) -> Instant {
        match self {
            When::After(d) => now
                .checked_add(d)
                .unwrap_or(now + Duration::from_secs(1 << 32)),
            When::At(at) => at,
        }
    }
}
