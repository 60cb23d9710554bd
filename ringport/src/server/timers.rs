//! A worker's timers: handlers' one-shot timers, and the tick that drives idle timeouts.
//!
//! All of them share one [`op::Timeout`](crate::op::Timeout) in the port, armed for the earliest
//! deadline, so a thousand connections with timers cost one kernel timer, not a thousand.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::handler::ConnId;

/// A handler timer that is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Due {
    pub key: u32,
    pub generation: u32,
    pub timer: u64,
    /// Order of setting: a cancel covers the timers set before it.
    pub seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    at: Instant,
    due: Due,
}

/// The worker's timer heap and tick.
#[derive(Debug)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    /// Tick length (idle checks), if idle timeouts are on.
    tick: Option<Duration>,
    next_tick: Instant,
    /// Sequence number of the next timer set.
    seq: u64,
    /// Ticks so far.
    pub ticks: u32,
}

impl Timers {
    pub fn new(tick: Option<Duration>) -> Timers {
        let now = Instant::now();
        Timers {
            heap: BinaryHeap::new(),
            tick,
            next_tick: now + tick.unwrap_or(Duration::from_secs(3600)),
            seq: 0,
            ticks: 0,
        }
    }

    /// Schedules handler timer `timer` for connection `id`.
    pub fn user(&mut self, id: ConnId, delay: Duration, timer: u64) {
        let at = Instant::now()
            .checked_add(delay)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1 << 30));
        self.heap.push(Reverse(Entry {
            at,
            due: Due {
                key: id.key,
                generation: id.generation,
                timer,
                seq: self.seq,
            },
        }));
        self.seq += 1;
    }

    /// The sequence number the next timer set will get: every timer set so far has a lower one.
    pub fn next_seq(&self) -> u64 {
        self.seq
    }

    /// The earliest deadline: a handler timer or the next tick (if ticks are on).
    pub fn next_deadline(&self) -> Option<Instant> {
        let user = self.heap.peek().map(|Reverse(e)| e.at);
        let tick = self.tick.map(|_| self.next_tick);
        match (user, tick) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Handler timers due by `now`, earliest first.
    pub fn take_due(&mut self, now: Instant, out: &mut Vec<Due>) {
        while let Some(Reverse(e)) = self.heap.peek() {
            if e.at > now {
                break;
            }
            out.push(e.due);
            self.heap.pop();
        }
    }

    /// Advances the tick if it is due; returns whether it did.
    pub fn tick_due(&mut self, now: Instant) -> bool {
        let Some(tick) = self.tick else {
            return false;
        };
        if now < self.next_tick {
            return false;
        }
        self.ticks = self.ticks.wrapping_add(1);
        self.next_tick = now + tick;
        true
    }
}

/// The tick for an idle timeout: a quarter of it, between 10 ms and 1 s, so an idle connection
/// is closed between `timeout` and `timeout + tick` after its last progress.
pub(crate) fn tick_for(idle_timeout: Option<Duration>) -> Option<Duration> {
    idle_timeout.map(|t| (t / 4).clamp(Duration::from_millis(10), Duration::from_secs(1)))
}

/// How many ticks make up `timeout` (rounded up).
pub(crate) fn ticks_in(timeout: Duration, tick: Duration) -> u32 {
    let n = timeout.as_nanos().div_ceil(tick.as_nanos().max(1));
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_come_due_in_order() {
        let mut t = Timers::new(None);
        let id = |key| ConnId {
            worker: 0,
            key,
            generation: 0,
        };
        t.user(id(1), Duration::from_millis(20), 7);
        t.user(id(2), Duration::ZERO, 8);
        let mut due = Vec::new();
        t.take_due(Instant::now(), &mut due);
        assert_eq!(due.iter().map(|d| d.timer).collect::<Vec<_>>(), [8]);
        t.take_due(Instant::now() + Duration::from_millis(25), &mut due);
        assert_eq!(due.iter().map(|d| d.timer).collect::<Vec<_>>(), [8, 7]);
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn ticks_cover_the_idle_timeout() {
        let tick = tick_for(Some(Duration::from_secs(2))).unwrap();
        assert_eq!(tick, Duration::from_millis(500));
        assert_eq!(ticks_in(Duration::from_secs(2), tick), 4);
        assert_eq!(
            tick_for(Some(Duration::from_millis(8))).unwrap(),
            Duration::from_millis(10)
        );
        let mut t = Timers::new(Some(tick));
        assert!(!t.tick_due(Instant::now()));
        assert!(t.tick_due(Instant::now() + tick));
        assert_eq!(t.ticks, 1);
    }
}
