//! Limits: what one connection, and the whole server, may use.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Every limit of a server; each has a default meant for production.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once; more are accepted and closed at once (counted as rejected)
    /// while the listener keeps working. Default 100,000.
    pub max_connections: usize,
    /// Largest frame payload a client may send; a larger one closes that connection
    /// ([`CloseReason::FrameTooLarge`](super::CloseReason::FrameTooLarge)). Default 1 MiB.
    pub max_frame: usize,
    /// A connection with no progress for this long is closed
    /// ([`CloseReason::IdleTimeout`](super::CloseReason::IdleTimeout)). Progress is a whole
    /// frame received or bytes sent: bytes of a frame that never completes are not, so a client
    /// that trickles a byte now and then (slowloris) is closed like a silent one, and a frame
    /// must arrive whole within this time of the last progress. `None`: never. Default 60 s.
    pub idle_timeout: Option<Duration>,
    /// Bytes a connection may have queued for sending; more closes it
    /// ([`CloseReason::Limit`](super::CloseReason::Limit)). Default 4 MiB. The server stops
    /// decoding at the high-water mark, so a handler that answers each frame with at most a
    /// frame stays under `write_high_water + max_frame`: keep this limit above that.
    pub max_queued_write: usize,
    /// Above this many queued bytes a connection stops reading until they drain below a quarter
    /// of it (backpressure: a client that sends but does not read is held, not buffered
    /// without bound). Default 256 KiB.
    pub write_high_water: usize,
    /// Bytes the whole server may spend on buffers: the receive pools take a quarter, the
    /// connections' reassembly and write buffers the rest. Default 256 MiB.
    pub memory_budget: usize,
    /// How long a shutdown lets queued writes flush before closing connections anyway.
    /// Default 5 s.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 100_000,
            max_frame: 1 << 20,
            idle_timeout: Some(Duration::from_secs(60)),
            max_queued_write: 4 << 20,
            write_high_water: 256 << 10,
            memory_budget: 256 << 20,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Why [`Limits::validate`] refused a set of limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LimitsError {
    /// `max_connections` is 0.
    NoConnections,
    /// `max_frame` is 0.
    NoFrame,
    /// `write_high_water` is 0 or above `max_queued_write`.
    HighWater {
        /// The high-water mark given.
        write_high_water: usize,
        /// The queued-write limit given.
        max_queued_write: usize,
    },
    /// `idle_timeout` is zero (use `None` for no timeout).
    ZeroIdleTimeout,
    /// `memory_budget` is under 1 MiB.
    BudgetTooSmall {
        /// The budget given.
        memory_budget: usize,
    },
    /// `max_frame` is more than the connections' share of the budget (three quarters of it):
    /// such a frame could never be held.
    FrameOverBudget {
        /// The frame limit given.
        max_frame: usize,
        /// The connections' share of the budget.
        share: usize,
        /// The budget given.
        memory_budget: usize,
    },
}

impl std::fmt::Display for LimitsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitsError::NoConnections => f.write_str("max connections must be at least 1"),
            LimitsError::NoFrame => f.write_str("max frame size must be at least 1 byte"),
            LimitsError::HighWater {
                write_high_water,
                max_queued_write,
            } => write!(
                f,
                "write high-water mark ({write_high_water}) must be between 1 and max queued \
                 write ({max_queued_write})"
            ),
            LimitsError::ZeroIdleTimeout => f.write_str("idle timeout must be positive (or none)"),
            LimitsError::BudgetTooSmall { memory_budget } => write!(
                f,
                "memory budget must be at least 1 MiB (got {memory_budget} bytes)"
            ),
            LimitsError::FrameOverBudget {
                max_frame,
                share,
                memory_budget,
            } => write!(
                f,
                "max frame size ({max_frame} bytes) is larger than the connections' share of \
                 the memory budget ({share} bytes, three quarters of {memory_budget}): such a \
                 frame could never be held"
            ),
        }
    }
}

impl std::error::Error for LimitsError {}

impl Limits {
    /// Checks that the limits make sense together.
    pub fn validate(&self) -> Result<(), LimitsError> {
        if self.max_connections == 0 {
            return Err(LimitsError::NoConnections);
        }
        if self.max_frame == 0 {
            return Err(LimitsError::NoFrame);
        }
        if self.write_high_water == 0 || self.write_high_water > self.max_queued_write {
            return Err(LimitsError::HighWater {
                write_high_water: self.write_high_water,
                max_queued_write: self.max_queued_write,
            });
        }
        if self.idle_timeout.is_some_and(|t| t.is_zero()) {
            return Err(LimitsError::ZeroIdleTimeout);
        }
        if self.memory_budget < 1 << 20 {
            return Err(LimitsError::BudgetTooSmall {
                memory_budget: self.memory_budget,
            });
        }
        // The connections' buffers get what the receive pools (a quarter) leave: a frame
        // larger than that could never be held whole.
        let share = self.memory_budget - self.memory_budget / 4;
        if self.max_frame > share {
            return Err(LimitsError::FrameOverBudget {
                max_frame: self.max_frame,
                share,
                memory_budget: self.memory_budget,
            });
        }
        Ok(())
    }

    /// Queued bytes below which a paused connection reads again.
    pub(crate) fn write_low_water(&self) -> usize {
        self.write_high_water / 4
    }
}

/// The server-wide count of bytes held in connection buffers, against the budget for them.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    used: AtomicUsize,
}

impl Budget {
    pub fn new(limit: usize) -> Budget {
        Budget {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// Takes `n` bytes if they fit.
    pub fn try_reserve(&self, n: usize) -> bool {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let Some(next) = used.checked_add(n).filter(|&u| u <= self.limit) else {
                return false;
            };
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    /// Takes `n` bytes that are already held (received data cannot be refused).
    pub fn force(&self, n: usize) {
        self.used.fetch_add(n, Ordering::Relaxed);
    }

    /// Gives `n` bytes back.
    pub fn release(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }

    /// Whether the budget is used up.
    pub fn exhausted(&self) -> bool {
        self.used.load(Ordering::Relaxed) >= self.limit
    }

    #[cfg(test)]
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// One worker's share of the [`Budget`]: what it holds, counted locally too, so each worker
/// can report its own buffered bytes.
#[derive(Debug)]
pub(crate) struct Held {
    budget: std::sync::Arc<Budget>,
    held: usize,
}

impl Held {
    pub fn new(budget: std::sync::Arc<Budget>) -> Held {
        Held { budget, held: 0 }
    }

    /// Takes `n` bytes if the server-wide budget has them.
    pub fn try_reserve(&mut self, n: usize) -> bool {
        let ok = self.budget.try_reserve(n);
        if ok {
            self.held += n;
        }
        ok
    }

    /// Takes `n` bytes already held (received data cannot be refused).
    pub fn force(&mut self, n: usize) {
        self.budget.force(n);
        self.held += n;
    }

    /// Gives `n` bytes back.
    pub fn release(&mut self, n: usize) {
        debug_assert!(n <= self.held, "releasing {n} of {} held bytes", self.held);
        let n = n.min(self.held);
        self.budget.release(n);
        self.held -= n;
    }

    /// A buffer that held `from` bytes now holds `to`.
    pub fn resize(&mut self, from: usize, to: usize) {
        if to >= from {
            self.force(to - from);
        } else {
            self.release(from - to);
        }
    }

    /// Bytes this worker holds.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Whether the server-wide budget is used up.
    pub fn exhausted(&self) -> bool {
        self.budget.exhausted()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.release(self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_nonsense_is_refused() {
        assert_eq!(Limits::default().validate(), Ok(()));
        let bad = Limits {
            write_high_water: 10 << 20,
            ..Limits::default()
        };
        assert!(bad.validate().is_err());
        let bad = Limits {
            idle_timeout: Some(Duration::ZERO),
            ..Limits::default()
        };
        assert!(bad.validate().is_err());
        // A frame larger than the connections' three quarters of the budget.
        let bad = Limits {
            max_frame: 16 << 30,
            ..Limits::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("memory budget")
        );
        let fits = Limits {
            max_frame: 192 << 20,
            ..Limits::default()
        };
        assert_eq!(fits.validate(), Ok(()));
        let too_big = Limits {
            max_frame: (192 << 20) + 1,
            ..Limits::default()
        };
        assert!(too_big.validate().is_err());
    }

    #[test]
    fn budget_refuses_past_its_limit() {
        let b = Budget::new(100);
        assert!(b.try_reserve(60));
        assert!(!b.try_reserve(41));
        assert!(b.try_reserve(40));
        assert!(b.exhausted());
        b.release(50);
        assert_eq!(b.used(), 50);
        b.force(70);
        assert!(b.exhausted());
    }
}
