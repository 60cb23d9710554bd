//! [`Timers`]: the deadline heap behind `op::Timeout` on the backends whose kernel wait takes
//! only a timeout (epoll, IOCP), and behind the timeouts linked to ops
//! ([`Port::submit_with_timeout`](crate::Port::submit_with_timeout)) there and on io_uring while
//! such an op still waits in its lane: the wait is cut short at the nearest deadline, every
//! timeout whose deadline has passed completes, and every op whose linked deadline has passed
//! is handed back to its driver to cancel.
//!
//! Entries name ops by their full [`OpId`] (slot and generation), and an entry whose op has
//! ended stays in the heap until its deadline: a late entry finds no op (or a newer op in the
//! slot, with another generation) and does nothing. So that ops with long deadlines that end
//! early do not pile up, the heap drops such entries once it holds many more than the ops in
//! flight.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::OpTable;
use crate::op::OpId;
use crate::op::Report;

/// What reaching a deadline means.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Due {
    /// An `op::Timeout`: it completes.
    Timeout,
    /// The deadline linked to an op: the driver cancels it, and its result becomes a timeout.
    Linked,
}

/// Pending deadlines, nearest first.
#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64, Due)>>,
}

impl Timers {
    /// Op `id`, an `op::Timeout`, completes at `deadline`.
    pub(crate) fn add(&mut self, id: OpId, deadline: Instant) {
        self.heap.push(Reverse((deadline, id.tag(), Due::Timeout)));
    }

    /// Op `id` (in `table`) must end by `deadline`, its linked timeout's.
    pub(crate) fn add_linked(&mut self, table: &OpTable, id: OpId, deadline: Instant) {
        if self.heap.len() >= 64 && self.heap.len() > 2 * table.len() {
            // Mostly entries of ops that ended before their deadline: drop those.
            self.heap
                .retain(|Reverse((_, tag, _))| table.contains(OpId::from_tag(*tag)));
        }
        self.heap.push(Reverse((deadline, id.tag(), Due::Linked)));
    }

    /// Completes every timeout whose deadline has passed, and returns the ops whose linked
    /// deadline has passed, still in flight and not asked to end by anyone, for which
    /// `driver_ends` is false (io_uring: the kernel's own link timeout ends an op it holds).
    /// Those are marked expired: the caller cancels them, and their cancelled result is a
    /// timeout.
    pub(crate) fn fire(
        &mut self,
        table: &mut OpTable,
        driver_ends: impl Fn(&OpTable, OpId) -> bool,
    ) -> Vec<OpId> {
        let now = Instant::now();
        let mut expired = Vec::new();
        while let Some(&Reverse((deadline, tag, due))) = self.heap.peek() {
            if deadline > now {
                break;
            }
            self.heap.pop();
            let id = OpId::from_tag(tag);
            match due {
                // A cancelled timeout left its heap entry behind: its id is no longer in flight.
                Due::Timeout => {
                    table.complete(id, Report::done(Ok(0)));
                }
                Due::Linked => {
                    if driver_ends(table, id) {
                        continue;
                    }
                    if let Some(entry) = table.get_mut(id)
                        && !entry.cancel_asked
                        && !entry.expired
                    {
                        entry.expired = true;
                        expired.push(id);
                    }
                }
            }
        }
        expired
    }

    /// How long a wait that would take `timeout` may block: no later than the nearest deadline.
    pub(crate) fn bound(&self, timeout: Option<Duration>) -> Option<Duration> {
        match self.heap.peek() {
            Some(Reverse((deadline, _, _))) => {
                let until = deadline.saturating_duration_since(Instant::now());
                Some(timeout.map_or(until, |t| t.min(until)))
            }
            None => timeout,
        }
    }

    /// Forgets every deadline.
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Timeout;
    use crate::op::private::Sealed;

    fn op() -> crate::op::Op {
        Timeout::after(Duration::from_secs(3600)).into_op().0
    }

    /// A linked deadline whose op ended never reaches the op that reuses its slot.
    #[test]
    fn a_late_linked_deadline_spares_a_reused_slot() {
        let mut table = OpTable::default();
        let mut timers = Timers::default();
        let old = table.insert(op(), 1);
        timers.add_linked(&table, old, Instant::now());
        assert!(table.complete(old, Report::done(Ok(0))));
        let new = table.insert(op(), 2);
        assert_eq!(new.key(), old.key(), "the slot is reused");
        assert!(timers.fire(&mut table, |_, _| false).is_empty());
        assert!(!table.get(new).unwrap().expired);
    }

    /// A due linked deadline expires its op once, unless someone asked the op to end first or
    /// the driver ends it itself.
    #[test]
    fn a_linked_deadline_expires_its_op_once() {
        let mut table = OpTable::default();
        let mut timers = Timers::default();
        let [a, b, c] = [0, 1, 2].map(|t| table.insert(op(), t));
        table.get_mut(b).unwrap().cancel_asked = true;
        for id in [a, b, c, a] {
            timers.add_linked(&table, id, Instant::now());
        }
        assert_eq!(timers.fire(&mut table, |_, id| id == c), vec![a]);
        assert!(table.get(a).unwrap().expired);
        assert!(!table.get(b).unwrap().expired && !table.get(c).unwrap().expired);
    }
}
