//! The table of in-flight operations: what the kernel is working on, keyed by [`OpId`]. The
//! port owns it and hands it to its driver on every call; the driver moves ops between it and
//! the kernel.

use std::collections::VecDeque;
use std::io;
use std::time::Instant;

use slab::Slab;

use super::Side;
use crate::op::{Completion, Op, OpId, RESERVED_GEN, Report, is_cancelled};

/// One in-flight operation: the per-I/O data.
#[derive(Debug)]
pub(crate) struct InFlight {
    /// The caller's token (completion key).
    pub token: u64,
    generation: u32,
    /// The operation and the memory it owns.
    pub op: Op,
    /// Backend storage the kernel reads or writes while the op runs (addresses, headers,
    /// OVERLAPPED), allocated only for ops that need it.
    pub side: Option<Box<Side>>,
    /// What the backend notes about the op as it runs, in bits of its own meaning (io_uring:
    /// the kernel holds it, a multishot receive is being stopped; epoll: a connect's `connect`
    /// call was made; IOCP keeps such state in the op's OVERLAPPED block, `side`). Kept in the
    /// op's entry, so the hot path finds it without a second lookup, and out of the op types,
    /// which carry no one backend's state.
    #[cfg(unix)]
    pub marks: u8,
    /// The deadline of a timeout linked to the op ([`Port::submit_with_timeout`](crate::Port::submit_with_timeout)),
    /// counted from its submission.
    pub deadline: Option<Instant>,
    /// Someone asked the op to end: [`Port::cancel`](crate::Port::cancel), or its socket is
    /// gone (closed through the port, or behind its back). A cancelled result is then that,
    /// not a timeout.
    pub cancel_asked: bool,
    /// The op's linked deadline passed while no one else had asked it to end, and the driver
    /// cancelled it for that: its cancelled result is a timeout.
    pub expired: bool,
}

impl InFlight {
    /// Whether a cancelled result of this op means its linked timeout ended it: it has one, and
    /// either the driver cancelled it when the deadline passed, or (io_uring, where the kernel's
    /// `IORING_OP_LINK_TIMEOUT` cancels it) nobody else asked it to end.
    fn timed_out(&self) -> bool {
        self.deadline.is_some() && (self.expired || !self.cancel_asked)
    }
}

/// The error of an op whose linked timeout passed first ([`io::ErrorKind::TimedOut`]).
pub(crate) fn timed_out_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the operation's timeout passed before it completed",
    )
}

/// The in-flight operations, and the completions made from them that `wait` has not returned yet.
#[derive(Default)]
pub(crate) struct OpTable {
    slab: Slab<InFlight>,
    next_generation: u32,
    /// Completions ready to be returned by the next `wait`.
    pub ready: VecDeque<Completion>,
}

impl OpTable {
    /// Adds an op; it stays until [`complete`](OpTable::complete) reports its final result.
    pub fn insert(&mut self, op: Op, token: u64) -> OpId {
        let generation = self.next_generation;
        self.next_generation = match generation.wrapping_add(1) {
            RESERVED_GEN => 0,
            g => g,
        };
        let key = self.slab.insert(InFlight {
            token,
            generation,
            op,
            side: None,
            #[cfg(unix)]
            marks: 0,
            deadline: None,
            cancel_asked: false,
            expired: false,
        });
        assert!(
            key < u32::MAX as usize,
            "more than 2^32 operations in flight"
        );
        OpId::new(key, generation)
    }

    /// The op `id` names, if it is still in flight.
    pub fn get(&self, id: OpId) -> Option<&InFlight> {
        self.slab
            .get(id.key())
            .filter(|e| e.generation == id.generation())
    }

    /// The op `id` names, if it is still in flight.
    pub fn get_mut(&mut self, id: OpId) -> Option<&mut InFlight> {
        self.slab
            .get_mut(id.key())
            .filter(|e| e.generation == id.generation())
    }

    /// Whether `id` is still in flight.
    pub fn contains(&self, id: OpId) -> bool {
        self.get(id).is_some()
    }

    /// Turns the backend's result for `id` into a completion for the next `wait`. A final
    /// result (`raw.more == false`) removes the op. Returns false if `id` was not in flight.
    ///
    /// A cancelled result of an op whose linked timeout ended it becomes a
    /// [`TimedOut`](io::ErrorKind::TimedOut) error (a partial result, such as the bytes a send
    /// got out, stays as it is).
    pub fn complete(&mut self, id: OpId, mut raw: Report) -> bool {
        let Some(entry) = self.get_mut(id) else {
            return false;
        };
        if !raw.more && entry.timed_out() && raw.res.as_ref().is_err_and(is_cancelled) {
            raw.res = Err(timed_out_error());
        }
        let more = raw.more;
        let outcome = entry.op.complete(raw);
        let token = entry.token;
        if !more {
            self.slab.remove(id.key());
        }
        self.ready.push_back(Completion {
            token,
            id,
            more,
            outcome,
        });
        true
    }

    /// Drops op `id` without a completion; only for an op the kernel never saw.
    pub fn remove(&mut self, id: OpId) -> Option<InFlight> {
        self.contains(id).then(|| self.slab.remove(id.key()))
    }

    /// Number of operations in flight.
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// Whether no operation is in flight.
    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Ids of the in-flight ops that carry `token`.
    pub fn ids_with_token(&self, token: u64) -> Vec<OpId> {
        self.slab
            .iter()
            .filter(|(_, e)| e.token == token)
            .map(|(key, e)| OpId::new(key, e.generation))
            .collect()
    }

    /// Ids of every in-flight op.
    pub fn ids(&self) -> Vec<OpId> {
        self.slab
            .iter()
            .map(|(key, e)| OpId::new(key, e.generation))
            .collect()
    }

    /// Forgets every op without dropping its memory: the last resort when the kernel would not
    /// give an op back, so that memory it may still write is never freed.
    pub fn leak_all(&mut self) {
        std::mem::forget(std::mem::take(&mut self.slab));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Timeout;
    use crate::op::private::Sealed;
    use std::time::Duration;

    fn timeout() -> Op {
        Timeout::after(Duration::from_secs(1)).into_op().0
    }

    #[test]
    fn stale_ids_do_not_reach_a_reused_slot() {
        let mut t = OpTable::default();
        let a = t.insert(timeout(), 1);
        assert!(t.complete(a, Report::done(Ok(0))));
        let b = t.insert(timeout(), 2);
        assert_ne!(a, b);
        assert!(!t.contains(a));
        assert!(
            !t.complete(a, Report::done(Ok(0))),
            "a stale id completes nothing"
        );
        assert!(t.contains(b));
        assert_eq!(t.ready.len(), 1);
    }

    #[test]
    fn tags_round_trip_and_never_hit_internal_ones() {
        let mut t = OpTable {
            next_generation: RESERVED_GEN - 1,
            ..OpTable::default()
        };
        let a = t.insert(timeout(), 0);
        let b = t.insert(timeout(), 0);
        assert_eq!(OpId::from_tag(a.tag()), a);
        assert_ne!(b.generation(), RESERVED_GEN);
        assert_ne!(a.tag(), OpId::internal_tag(a.key() as u32));
    }
}
