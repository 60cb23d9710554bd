//! [`Lanes`]: per-socket FIFO queues of ops, one for receives and one for sends.
//!
//! Only the op at the head of a lane is given to the kernel (io_uring, IOCP) or attempted
//! (epoll). That is what keeps two sends on one socket in order: io_uring alone does not, once
//! the first send has to wait for buffer space and the second finds room. (IOCP keeps them in
//! order itself; why it uses lanes anyway: see `sys/iocp`.)
//!
//! The policy every backend follows with them is written once, in [`LanePolicy`]: an op
//! queues in its socket's lane and starts when it reaches the head; a finished head lets the
//! next one start; ops still queued under a handle value the kernel hands out again belonged to
//! a socket closed behind the port's back and fail; closing a socket through the port ends
//! its ops. Each backend supplies the hooks ([`LaneHooks`]): how to start an op, whether the
//! kernel holds one, what to do with one it holds when its socket is gone.
//!
//! Sockets are found by their raw handle: on Unix a descriptor, small and dense, indexes a
//! `Vec`; on Windows a `SOCKET` is a kernel handle value (sparse, a multiple of 4), so a map.
//! Either way an entry stays after its socket closes and is reused with the handle value, so
//! the table grows only to the most sockets open at once.

use std::collections::VecDeque;
use std::io;

use super::OpTable;
use crate::op::{Op, OpId, OpKind, Report};
use crate::sock::RawSock;

/// The error of an op that waited in a lane while its socket was closed behind the port's back
/// (found when the kernel hands out the same handle value again): it can never run.
pub(crate) fn closed_behind_our_back() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the socket was closed while this operation waited",
    )
}

/// Which lane of its socket an op queues in.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(crate) enum Dir {
    /// Accepts and receives.
    Read,
    /// Connects and sends.
    Write,
}

impl Dir {
    /// The lane `op` queues in; `None` for ops on no socket (timeout, nop), that end one
    /// (close), or that must not wait behind the socket's receives (a shutdown of the
    /// receiving side only: a pending receive may wait for data that never comes). A shutdown
    /// of the sending side queues behind the sends, so it never cuts their bytes.
    pub(crate) fn of(op: &Op) -> Option<Dir> {
        match op.kind() {
            OpKind::Accept
            | OpKind::AcceptMulti
            | OpKind::Recv
            | OpKind::RecvMulti
            | OpKind::RecvFrom => Some(Dir::Read),
            OpKind::Connect | OpKind::Send | OpKind::SendTo => Some(Dir::Write),
            OpKind::Shutdown => match op {
                Op::Shutdown(s) if s.stops_sending() => Some(Dir::Write),
                _ => None,
            },
            OpKind::Close | OpKind::Timeout | OpKind::Nop => None,
        }
    }
}

/// One lane: a FIFO of ops whose head is kept inline, so a socket with one op waiting (an idle
/// connection's armed receive) costs no allocation; a queue is allocated only while a second op
/// waits behind the head, and freed when it empties.
#[derive(Default)]
struct Lane {
    head: Option<OpId>,
    // Boxed on purpose: 8 bytes in every socket's entry instead of a `VecDeque`'s 32, for a
    // queue most sockets never need.
    #[allow(clippy::box_collection)]
    rest: Option<Box<VecDeque<OpId>>>,
}

impl Lane {
    fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Queues `id`; returns true if it is the head.
    fn push(&mut self, id: OpId) -> bool {
        if self.head.is_none() {
            self.head = Some(id);
            return true;
        }
        self.rest.get_or_insert_default().push_back(id);
        false
    }

    /// Drops the head; the next op (if any) becomes the head and is returned.
    fn pop_front(&mut self) -> Option<OpId> {
        self.head = self.rest.as_mut().and_then(|rest| rest.pop_front());
        if self.rest.as_ref().is_some_and(|rest| rest.is_empty()) {
            self.rest = None;
        }
        self.head
    }

    /// Takes `id` out wherever it is; returns whether it was the head.
    fn remove(&mut self, id: OpId) -> bool {
        if self.head == Some(id) {
            self.pop_front();
            return true;
        }
        if let Some(rest) = self.rest.as_mut() {
            rest.retain(|&q| q != id);
            if rest.is_empty() {
                self.rest = None;
            }
        }
        false
    }

    /// Empties the lane: its head and the ops queued behind it.
    fn take(&mut self) -> (Option<OpId>, Vec<OpId>) {
        let rest = self.rest.take().map(|r| Vec::from(*r)).unwrap_or_default();
        (self.head.take(), rest)
    }
}

/// One socket's lanes, plus whatever the backend keeps per socket.
#[derive(Default)]
pub(crate) struct Sock<T> {
    reads: Lane,
    writes: Lane,
    /// Backend state for this socket (epoll: registered, on the run-again list; IOCP:
    /// associated with this port).
    pub extra: T,
}

impl<T> Sock<T> {
    fn lane(&mut self, dir: Dir) -> &mut Lane {
        match dir {
            Dir::Read => &mut self.reads,
            Dir::Write => &mut self.writes,
        }
    }

    /// Whether no op waits on this socket.
    #[cfg_attr(windows, allow(dead_code))] // epoll only
    pub(crate) fn is_idle(&self) -> bool {
        self.reads.is_empty() && self.writes.is_empty()
    }
}

/// Every socket's lanes, by raw handle.
pub(crate) struct Lanes<T> {
    #[cfg(unix)]
    socks: Vec<Sock<T>>,
    #[cfg(windows)]
    socks: std::collections::HashMap<RawSock, Sock<T>>,
}

impl<T> Default for Lanes<T> {
    fn default() -> Lanes<T> {
        Lanes {
            socks: Default::default(),
        }
    }
}

impl<T: Default> Lanes<T> {
    /// The socket `fd`'s entry (created empty on first use).
    #[cfg(unix)]
    pub(crate) fn sock(&mut self, fd: RawSock) -> &mut Sock<T> {
        let i = usize::try_from(fd).expect("descriptors are not negative");
        if i >= self.socks.len() {
            self.socks.resize_with(i + 1, Sock::default);
        }
        &mut self.socks[i]
    }

    /// The socket `fd`'s entry (created empty on first use).
    #[cfg(windows)]
    pub(crate) fn sock(&mut self, fd: RawSock) -> &mut Sock<T> {
        self.socks.entry(fd).or_default()
    }

    /// Queues `id`; returns true if it is at the head (it may run now).
    pub(crate) fn push(&mut self, fd: RawSock, dir: Dir, id: OpId) -> bool {
        self.sock(fd).lane(dir).push(id)
    }

    /// The op at the head of a lane.
    pub(crate) fn head(&mut self, fd: RawSock, dir: Dir) -> Option<OpId> {
        self.sock(fd).lane(dir).head
    }

    /// `id` finished: if it heads its lane, removes it and returns the next head to start.
    /// (A finished op that no longer heads its lane was drained by a close: nothing to do.)
    pub(crate) fn finish(&mut self, fd: RawSock, dir: Dir, id: OpId) -> Option<OpId> {
        let lane = self.sock(fd).lane(dir);
        if lane.head != Some(id) {
            return None;
        }
        lane.pop_front()
    }

    /// Takes `id` out of its lane wherever it is; returns whether it was the head.
    pub(crate) fn remove(&mut self, fd: RawSock, dir: Dir, id: OpId) -> bool {
        self.sock(fd).lane(dir).remove(id)
    }

    /// Empties both lanes of `fd`: `(heads, waiting)`, the ops that were at a head (possibly
    /// in the kernel) and those queued behind them (never started).
    pub(crate) fn drain(&mut self, fd: RawSock) -> (Vec<OpId>, Vec<OpId>) {
        let sock = self.sock(fd);
        let mut heads = Vec::new();
        let mut waiting = Vec::new();
        for lane in [&mut sock.reads, &mut sock.writes] {
            let (head, rest) = lane.take();
            heads.extend(head);
            waiting.extend(rest);
        }
        (heads, waiting)
    }

    /// Forgets every socket.
    pub(crate) fn clear(&mut self) {
        self.socks.clear();
    }
}

/// Why the socket of an op the kernel holds is gone.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(crate) enum Gone {
    /// Closed behind the port's back: the kernel handed out its handle value again.
    Reused,
    /// Closed through the port (`op::Close`).
    Closed,
}

/// What a backend brings to the lane policy.
pub(crate) trait LaneHooks {
    /// What the backend keeps per socket besides its lanes.
    type Extra: Default;

    /// The backend's lanes.
    fn lanes(&mut self) -> &mut Lanes<Self::Extra>;

    /// Whether the kernel holds op `id`: then only its completion may end it.
    fn in_kernel(&self, table: &OpTable, id: OpId) -> bool;

    /// Op `id`, which the kernel holds, is on a socket that is gone (`why`): see that its
    /// completion comes. (io_uring: a reused socket's op is cancelled, a closed socket's ops end
    /// through the close's cancel of all of them; IOCP: the close, ours or not, aborts it.)
    fn abandon(&mut self, table: &mut OpTable, id: OpId, why: Gone);

    /// The final result of op `id`, ended before the kernel took it. Bytes an op already moved
    /// are reported (epoll: a send that wrote part of its buffer).
    fn ended_early(&self, table: &OpTable, id: OpId) -> Report {
        let _ = (table, id);
        Report::cancelled()
    }
}

/// How io_uring and epoll start the op at the head of a lane. (IOCP serves its lanes itself: a
/// call that fails at once is delivered as that op's completion, through the driver's own
/// bookkeeping of the op's OVERLAPPED block.)
#[cfg(unix)]
pub(crate) trait LaneStart: LaneHooks {
    /// Starts op `id`, now at the head of its lane (io_uring: hands it to the kernel; epoll:
    /// serves its lane from it). An error: it never reached the kernel.
    fn start(&mut self, table: &mut OpTable, id: OpId) -> io::Result<Started>;
}

/// What [`LaneStart::start`] did with the op.
#[cfg(unix)]
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(crate) enum Started {
    /// It is running (or its lane is served on); its final completion frees the lane.
    Running,
    /// It ended at once and delivered its final completion: the lane's next op may start.
    Ended,
}

/// Serving lanes in order, for the backends that start ops through [`LaneStart`].
#[cfg(unix)]
pub(crate) trait LaneServe: LaneStart {
    /// Queues op `id` on socket `fd`'s lane `dir`, and starts it if it is the head. An error:
    /// it could not start and is out of the lane again (the port drops it).
    fn enqueue(&mut self, table: &mut OpTable, fd: RawSock, dir: Dir, id: OpId) -> io::Result<()> {
        if !self.lanes().push(fd, dir, id) {
            return Ok(());
        }
        match self.start(table, id) {
            Ok(Started::Running) => Ok(()),
            Ok(Started::Ended) => {
                self.advance(table, fd, dir, id);
                Ok(())
            }
            Err(e) => {
                self.lanes().remove(fd, dir, id);
                Err(e)
            }
        }
    }

    /// Op `id` of lane `(fd, dir)` has delivered its final completion: the next op of the lane
    /// starts.
    fn advance(&mut self, table: &mut OpTable, fd: RawSock, dir: Dir, id: OpId) {
        if self.lanes().finish(fd, dir, id).is_some() {
            self.start_head(table, fd, dir);
        }
    }

    /// Starts the op at the head of lane `(fd, dir)`; one that cannot start fails, and the one
    /// after it is tried.
    fn start_head(&mut self, table: &mut OpTable, fd: RawSock, dir: Dir) {
        while let Some(id) = self.lanes().head(fd, dir) {
            match self.start(table, id) {
                Ok(Started::Running) => return,
                Ok(Started::Ended) => {}
                Err(e) => {
                    table.complete(id, Report::done(Err(e)));
                }
            }
            self.lanes().finish(fd, dir, id);
        }
    }
}

#[cfg(unix)]
impl<T: LaneStart> LaneServe for T {}

/// The lane policy, the same for every backend (see the module docs).
pub(crate) trait LanePolicy: LaneHooks {
    /// Socket `fd` is gone (`why`): its ops can never run. Those the kernel holds are
    /// abandoned to the kernel's completion; the others end now — cancelled if the port closed
    /// the socket, failed if it was closed behind the port's back (the kernel just handed out
    /// its handle value again).
    fn socket_gone(&mut self, table: &mut OpTable, fd: RawSock, why: Gone) {
        let (heads, waiting) = self.lanes().drain(fd);
        for id in heads.into_iter().chain(waiting) {
            // Ended because the socket went, not by a linked timeout.
            if let Some(entry) = table.get_mut(id) {
                entry.cancel_asked = true;
            }
            if self.in_kernel(table, id) {
                self.abandon(table, id, why);
                continue;
            }
            let report = match why {
                Gone::Reused => Report::done(Err(closed_behind_our_back())),
                Gone::Closed => self.ended_early(table, id),
            };
            table.complete(id, report);
        }
    }

    /// Ends op `id`, which the kernel does not hold, as cancelled. Returns the new head of its
    /// lane if `id` was the head (the caller lets it run).
    fn cancel_waiting(&mut self, table: &mut OpTable, id: OpId) -> Option<(RawSock, Dir)> {
        let lane = table
            .get(id)
            .and_then(|e| Some((e.op.sock()?, Dir::of(&e.op)?)));
        let was_head = lane.is_some_and(|(fd, dir)| self.lanes().remove(fd, dir, id));
        let report = self.ended_early(table, id);
        table.complete(id, report);
        lane.filter(|&(fd, dir)| was_head && self.lanes().head(fd, dir).is_some())
    }
}

impl<T: LaneHooks> LanePolicy for T {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Timeout;
    use crate::op::private::Sealed;
    use crate::sys::OpTable;
    use std::time::Duration;

    fn ids(n: usize) -> Vec<OpId> {
        let mut t = OpTable::default();
        (0..n)
            .map(|i| t.insert(Timeout::after(Duration::ZERO).into_op().0, i as u64))
            .collect()
    }

    #[test]
    fn only_the_head_runs_and_the_next_follows_it() {
        let ids = ids(3);
        let mut lanes = Lanes::<()>::default();
        assert!(lanes.push(5, Dir::Write, ids[0]));
        assert!(!lanes.push(5, Dir::Write, ids[1]));
        assert!(
            lanes.push(5, Dir::Read, ids[2]),
            "directions are independent"
        );
        assert_eq!(lanes.finish(5, Dir::Write, ids[1]), None, "not the head");
        assert_eq!(lanes.finish(5, Dir::Write, ids[0]), Some(ids[1]));
        assert_eq!(lanes.finish(5, Dir::Write, ids[1]), None);
        assert!(!lanes.sock(5).is_idle());
        let (heads, waiting) = lanes.drain(5);
        assert_eq!((heads, waiting), (vec![ids[2]], vec![]));
        assert!(lanes.sock(5).is_idle());
    }

    #[test]
    fn removal_anywhere_keeps_the_order_and_frees_the_queue() {
        let ids = ids(4);
        let mut lanes = Lanes::<()>::default();
        for &id in &ids {
            lanes.push(3, Dir::Read, id);
        }
        assert!(!lanes.remove(3, Dir::Read, ids[2]), "not the head");
        assert!(lanes.remove(3, Dir::Read, ids[0]), "the head");
        assert_eq!(lanes.head(3, Dir::Read), Some(ids[1]));
        assert_eq!(lanes.finish(3, Dir::Read, ids[1]), Some(ids[3]));
        assert!(lanes.sock(3).reads.rest.is_none(), "one op left: no queue");
        assert_eq!(lanes.finish(3, Dir::Read, ids[3]), None);
        assert!(lanes.sock(3).is_idle());
        assert!(
            lanes.push(3, Dir::Read, ids[0]),
            "an empty lane takes a new head"
        );
    }
}
