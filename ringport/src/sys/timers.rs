//! [`Timers`]: the deadline heap behind `op::Timeout` on the backends whose kernel wait takes
//! only a timeout (epoll, IOCP): the wait is cut short at the nearest deadline, and every op
//! whose deadline has passed completes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::OpTable;
use crate::op::OpId;
use crate::op::Report;

/// Pending timeouts, nearest first.
#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl Timers {
    /// Op `id` completes at `deadline`.
    pub(crate) fn add(&mut self, id: OpId, deadline: Instant) {
        self.heap.push(Reverse((deadline, id.tag())));
    }

    /// Completes every timeout whose deadline has passed.
    pub(crate) fn fire(&mut self, table: &mut OpTable) {
        let now = Instant::now();
        while let Some(&Reverse((deadline, tag))) = self.heap.peek() {
            if deadline > now {
                break;
            }
            self.heap.pop();
            // A cancelled timeout left its heap entry behind: its id is no longer in flight.
            table.complete(OpId::from_tag(tag), Report::done(Ok(0)));
        }
    }

    /// How long a wait that would take `timeout` may block: no later than the nearest deadline.
    pub(crate) fn bound(&self, timeout: Option<Duration>) -> Option<Duration> {
        match self.heap.peek() {
            Some(Reverse((deadline, _))) => {
                let until = deadline.saturating_duration_since(Instant::now());
                Some(timeout.map_or(until, |t| t.min(until)))
            }
            None => timeout,
        }
    }

    /// Forgets every timeout.
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
    }
}
