//! [`WarnLimit`]: at most one log line per interval for a warning that can repeat per event.
//!
//! A worker must not flood its log when the same thing goes wrong thousands of times a second
//! (descriptors exhausted under a connection storm, a submission queue that keeps refusing):
//! the flood costs the event loop time and, where the log is a pipe nobody drains, can block
//! it. The first occurrence is logged at once; later ones within the interval are only counted,
//! and the next line says how many were left out.

use std::time::{Duration, Instant};

/// The shortest gap between two lines of one repeated warning.
pub(crate) const WARN_INTERVAL: Duration = Duration::from_secs(5);

/// Rate limit of one repeated warning.
#[derive(Debug, Default)]
pub(crate) struct WarnLimit {
    /// When the last line was let through.
    last: Option<Instant>,
    /// Occurrences since then that were not logged.
    suppressed: u64,
}

impl WarnLimit {
    /// Records one occurrence at `now`; `Some(n)` if it should be logged, `n` being how many
    /// occurrences since the previous line were left out.
    pub fn hit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < WARN_INTERVAL => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// Logs a warning through `limit`: `warn_limited!(limit, worker = 3, "accept failed: {e}")`.
/// The line says how many like it were left out since the last one.
macro_rules! warn_limited {
    ($limit:expr, worker = $worker:expr, $($fmt:tt)+) => {
        if let Some(left_out) = $limit.hit(std::time::Instant::now()) {
            if left_out == 0 {
                tracing::warn!(worker = $worker, $($fmt)+);
            } else {
                tracing::warn!(
                    worker = $worker,
                    "{} ({left_out} more like it since the last such line)",
                    format_args!($($fmt)+)
                );
            }
        }
    };
}
pub(crate) use warn_limited;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_left_out() {
        let mut limit = WarnLimit::default();
        let t0 = Instant::now();
        assert_eq!(limit.hit(t0), Some(0), "the first one is logged");
        for i in 1..=907 {
            assert_eq!(limit.hit(t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(
            limit.hit(t0 + WARN_INTERVAL),
            Some(907),
            "the next line counts what was left out"
        );
        assert_eq!(limit.hit(t0 + WARN_INTERVAL), None);
        assert_eq!(limit.hit(t0 + 3 * WARN_INTERVAL), Some(1));
    }
}
