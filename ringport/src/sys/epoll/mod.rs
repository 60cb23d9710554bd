//! The epoll backend: readiness turned into completions (the tutorials' "port IOCP to epoll").
//!
//! - **Try first.** An op is attempted with a non-blocking syscall when it reaches the head of
//!   its socket's queue; only on `EAGAIN` does the socket get registered (once, edge-triggered,
//!   through mio) and the op wait for the next readiness edge.
//! - **Queues.** Each socket has a receive queue and a send queue, served in submission order,
//!   so sends never overtake each other (a send keeps its progress across `EAGAIN`s).
//! - **Multishot** ops (accept, recv) stay at the head of the receive queue and produce one
//!   completion per syscall until `EAGAIN`; after a budget of steps the socket goes on a
//!   run-again list so one busy socket cannot starve the rest.
//! - **Timeouts** sit in a deadline heap; `epoll_wait`'s timeout is the nearest one.
//! - **Buffers** are only touched during a syscall on this thread, so cancel is immediate.
//!
//! No `unsafe` here: the syscalls are the safe wrappers of [`super::unix::net`].

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::lanes::{Dir, Gone, LaneHooks, LanePolicy, LaneServe, LaneStart, Lanes, Started};
use super::timers::Timers;
use super::unix::{Waker, net};
use super::{Backend, InFlight, OpTable, ops};
use super::{Driver, Opened, Settings};
use crate::buf::BufPool;
use crate::op::OpId;
use crate::op::{Op, OpKind, Report};

const WAKE: Token = Token(usize::MAX);

/// When the port already has completions to return, `epoll_wait` is skipped this many times in
/// a row at most: sockets are still checked at least every `POLL_EVERY + 1` waits.
const POLL_EVERY: u32 = 7;

/// Completions one multishot op may produce for one socket before others get their turn.
const STEP_BUDGET: usize = 32;

/// Opens an epoll backend.
pub(crate) fn open(settings: &Settings) -> io::Result<Opened> {
    let poll = Poll::new()?;
    let waker = Waker::new(true)?;
    poll.registry()
        .register(&mut SourceFd(&waker.raw_fd()), WAKE, Interest::READABLE)?;
    let driver = Epoll {
        poll,
        events: Events::with_capacity(1024),
        ready_fds: Vec::new(),
        waker: waker.clone(),
        pool: settings.pool.clone(),
        lanes: Lanes::default(),
        runnable: Vec::new(),
        polls_skipped: 0,
        timers: Timers::default(),
    };
    Ok(Opened {
        driver: Box::new(driver),
        waker,
        fallback: None,
    })
}

pub(in crate::sys) struct Epoll {
    pub(in crate::sys) poll: Poll,
    events: Events,
    /// Readiness copied out of `events` so the handlers can borrow `self`: (fd, readable,
    /// writable, peer closed).
    ready_fds: Vec<(RawFd, bool, bool, bool)>,
    waker: Waker,
    pool: BufPool,
    /// Per-socket op queues and epoll state.
    lanes: Lanes<Flags>,
    /// Sockets whose queues must be run again without waiting for an edge.
    runnable: Vec<RawFd>,
    /// `poll` calls in a row that skipped `epoll_wait`.
    polls_skipped: u32,
    /// Pending timeouts: (deadline, op tag).
    timers: Timers,
}

/// What epoll needs to know about a socket besides its queues.
#[derive(Default)]
pub(in crate::sys) struct Flags {
    /// Registered with epoll (edge-triggered, readable + writable).
    pub(in crate::sys) registered: bool,
    /// Already on the run-again list.
    runnable: bool,
    /// epoll reported the peer's FIN (`EPOLLRDHUP`): read on to the end, no new edge will come.
    pub(in crate::sys) read_closed: bool,
    /// Known to this port as non-blocking: associated, accepted or connected by it. Ops are
    /// attempted before any readiness, so a blocking socket (std's `accept` makes them) would
    /// block the port's thread in that attempt.
    pub(in crate::sys) nonblocking: bool,
}

/// What one attempt at an op did.
pub(in crate::sys) enum Step {
    /// The op is finished.
    Done(Report),
    /// A multishot op produced one result and goes on.
    More(Report),
    /// A multishot op produced one result and drained the socket (a short read): it goes on
    /// at the socket's next edge, without a syscall just to hear `EAGAIN`.
    MoreThenWait(Report),
    /// The socket is not ready: wait for its next edge.
    Blocked,
}

/// Whether the socket is not ready (`EAGAIN`): wait for its next edge.
pub(in crate::sys) fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// Errors after which the same syscall is simply made again.
pub(in crate::sys) fn retry(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted || e.raw_os_error() == Some(libc::ECONNABORTED)
}

/// Makes one attempt at op `entry` on socket `fd` (its half in `sys/ops`). `edge_follows`: the
/// socket is registered and has not reported its peer's FIN, so any byte that arrives after a
/// read raises a new edge.
fn attempt(entry: &mut InFlight, fd: RawFd, pool: &BufPool, edge_follows: bool) -> Step {
    let InFlight { op, marks, .. } = entry;
    match op {
        Op::Accept(_) => ops::accept::epoll::attempt(false, fd),
        Op::AcceptMulti(_) => ops::accept::epoll::attempt(true, fd),
        Op::Recv(r) => ops::recv::epoll::attempt(r, fd),
        Op::RecvMulti(r) => ops::recv_multi::epoll::attempt(r, fd, pool, edge_follows),
        Op::RecvFrom(r) => ops::recv_from::epoll::attempt(r, fd),
        Op::Send(s) => ops::send::epoll::attempt(s, fd),
        Op::SendTo(s) => ops::send_to::epoll::attempt(s, fd),
        Op::Connect(c) => ops::connect::epoll::attempt(c, marks, fd),
        Op::Shutdown(s) => ops::shutdown::epoll::attempt(s, fd),
        Op::Close(_) | Op::Timeout(_) | Op::Nop(_) => {
            unreachable!("close, timeout and nop wait on no socket")
        }
    }
}

impl Epoll {
    pub(in crate::sys) fn flags(&mut self, fd: RawFd) -> &mut Flags {
        &mut self.lanes.sock(fd).extra
    }

    /// `fd` is a socket the kernel just created: ops still queued under that number belonged
    /// to a socket closed behind the port's back, and can never run.
    fn fresh_fd(&mut self, table: &mut OpTable, fd: RawFd) {
        let flags = self.flags(fd);
        flags.registered = false;
        flags.read_closed = false;
        flags.nonblocking = false;
        self.socket_gone(table, fd, Gone::Reused);
    }

    fn register(&mut self, fd: RawFd) -> io::Result<()> {
        if self.flags(fd).registered {
            return Ok(());
        }
        let interest = Interest::READABLE | Interest::WRITABLE;
        let registry = self.poll.registry();
        match registry.register(&mut SourceFd(&fd), Token(fd as usize), interest) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                registry.reregister(&mut SourceFd(&fd), Token(fd as usize), interest)?
            }
            other => other?,
        }
        self.flags(fd).registered = true;
        Ok(())
    }

    fn mark_runnable(&mut self, fd: RawFd) {
        let flags = self.flags(fd);
        if !flags.runnable {
            flags.runnable = true;
            self.runnable.push(fd);
        }
    }

    /// Serves `fd`'s lane `dir` until it is empty, blocked, or out of budget.
    fn run(&mut self, table: &mut OpTable, fd: RawFd, dir: Dir) {
        let mut budget = STEP_BUDGET;
        while let Some(id) = self.lanes.head(fd, dir) {
            let Some(entry) = table.get_mut(id) else {
                self.lanes.finish(fd, dir, id);
                continue;
            };
            let flags = &self.lanes.sock(fd).extra;
            let edge_follows = flags.registered && !flags.read_closed;
            match attempt(entry, fd, &self.pool, edge_follows) {
                Step::Done(raw) => {
                    self.lanes.finish(fd, dir, id);
                    self.complete(table, id, raw);
                }
                Step::MoreThenWait(raw) => {
                    self.complete(table, id, raw);
                    return;
                }
                Step::More(raw) => {
                    self.complete(table, id, raw);
                    budget -= 1;
                    if budget == 0 {
                        self.mark_runnable(fd);
                        return;
                    }
                }
                Step::Blocked => {
                    if let Err(e) = self.register(fd) {
                        // Not pollable (or the registration failed): the op cannot wait.
                        self.lanes.finish(fd, dir, id);
                        table.complete(id, Report::done(Err(e)));
                        continue;
                    }
                    return;
                }
            }
        }
    }

    /// Serves the sockets whose queues had to stop early (budget) or were left runnable.
    fn run_runnable(&mut self, table: &mut OpTable) {
        for fd in std::mem::take(&mut self.runnable) {
            self.flags(fd).runnable = false;
            self.run(table, fd, Dir::Read);
            self.run(table, fd, Dir::Write);
        }
    }

    /// Completes the timeouts that are due, and cancels the ops whose linked deadline passed.
    fn fire_timers(&mut self, table: &mut OpTable) {
        for id in self.timers.fire(table, |_, _| false) {
            let _ = Driver::cancel(self, table, id);
        }
    }

    fn complete(&mut self, table: &mut OpTable, id: OpId, raw: Report) {
        if let Some(sock) = &raw.sock {
            use std::os::fd::AsRawFd;
            self.fresh_fd(table, sock.as_raw_fd());
            // Accepted with SOCK_NONBLOCK.
            self.flags(sock.as_raw_fd()).nonblocking = true;
        }
        table.complete(id, raw);
    }
}

impl LaneHooks for Epoll {
    type Extra = Flags;

    fn lanes(&mut self) -> &mut Lanes<Flags> {
        &mut self.lanes
    }

    /// The kernel never holds an op here: every attempt is a syscall that returns.
    fn in_kernel(&self, _table: &OpTable, _id: OpId) -> bool {
        false
    }

    fn abandon(&mut self, _table: &mut OpTable, _id: OpId, _why: Gone) {
        unreachable!("epoll never hands an op to the kernel")
    }

    /// A send that already wrote bytes reports them.
    fn ended_early(&self, table: &OpTable, id: OpId) -> Report {
        match table.get(id).map(|e| &e.op) {
            Some(Op::Send(s)) => ops::send::epoll::ended_early(s),
            _ => Report::cancelled(),
        }
    }
}

impl LaneStart for Epoll {
    /// Serves the op's lane from its head (the op), until it blocks.
    fn start(&mut self, table: &mut OpTable, id: OpId) -> io::Result<Started> {
        let entry = table.get(id).expect("a started op is in the table");
        let fd = entry.op.sock().expect("socket ops name their socket");
        let dir = Dir::of(&entry.op).expect("socket ops have a direction");
        // `run` finishes in the lane every op it ends, and goes on to the next.
        self.run(table, fd, dir);
        Ok(Started::Running)
    }
}

impl Driver for Epoll {
    fn backend(&self) -> Backend {
        Backend::Epoll
    }

    fn supports(&self, _kind: OpKind) -> bool {
        true
    }

    fn associate(&mut self, sock: RawFd) -> io::Result<()> {
        net::set_nonblocking(sock)?;
        let entry = self.lanes.sock(sock);
        if entry.is_idle() {
            // Registration is checked again lazily: a reused descriptor number starts afresh.
            entry.extra.registered = false;
            entry.extra.read_closed = false;
        }
        entry.extra.nonblocking = true;
        Ok(())
    }

    fn submit(&mut self, table: &mut OpTable, id: OpId) -> io::Result<()> {
        if let Some(deadline) = table.get(id).and_then(|e| e.deadline) {
            self.timers.add_linked(table, id, deadline);
        }
        let entry = table.get_mut(id).expect("submitted op is in the table");
        match &mut entry.op {
            Op::Timeout(t) => {
                let deadline = t.when.deadline(Instant::now());
                self.timers.add(id, deadline);
                return Ok(());
            }
            Op::Close(_) => {
                self.close(table, id);
                return Ok(());
            }
            Op::Nop(_) => {
                table.complete(id, Report::done(Ok(0)));
                return Ok(());
            }
            Op::Shutdown(s) if !s.stops_sending() => {
                // Waits in no lane (see `Dir::of`): performed now.
                let report = ops::shutdown::epoll::now(s, s.sock);
                table.complete(id, report);
                return Ok(());
            }
            Op::Connect(c) => {
                // Made non-blocking below, as a socket new to this port.
                let sock = c.sock.as_ref().expect("a connect owns its socket");
                use std::os::fd::AsRawFd;
                let fd = sock.as_raw_fd();
                self.fresh_fd(table, fd);
            }
            _ => {}
        }
        let entry = table.get(id).expect("submitted op is in the table");
        let fd = entry.op.sock().expect("socket ops name their socket");
        let dir = Dir::of(&entry.op).expect("socket ops have a direction");
        if !self.flags(fd).nonblocking {
            // A socket new to this port: its first op associates it, once per socket (and per
            // reuse of its number the port learns of), as IOCP's first op does.
            self.associate(fd)?;
        }
        self.enqueue(table, fd, dir, id)
    }

    fn cancel(&mut self, table: &mut OpTable, id: OpId) -> io::Result<()> {
        if let Some((fd, _)) = self.cancel_waiting(table, id) {
            // The next op in line may be able to run now.
            self.mark_runnable(fd);
        }
        Ok(())
    }

    fn poll(&mut self, table: &mut OpTable, want: usize) -> io::Result<()> {
        if table.ready.len() >= want {
            // The caller's batch is already full of queued completions. Taking more events
            // now would only grow the queue (10,000 clients closing at once grew it to 16,384
            // completions, and a `VecDeque` keeps its capacity); they stay pending in the
            // kernel until the queue has room.
            return Ok(());
        }
        if self.polls_skipped < POLL_EVERY {
            self.polls_skipped += 1;
            self.run_runnable(table);
            self.fire_timers(table);
            return Ok(());
        }
        self.wait(table, want, Some(Duration::ZERO))
    }

    fn wait(
        &mut self,
        table: &mut OpTable,
        _want: usize,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        self.polls_skipped = 0;
        self.run_runnable(table);
        self.fire_timers(table);

        let timeout = if table.ready.is_empty() && self.runnable.is_empty() {
            self.timers.bound(timeout)
        } else {
            Some(Duration::ZERO)
        };
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }

        let mut ready = std::mem::take(&mut self.ready_fds);
        ready.clear();
        for event in self.events.iter() {
            if event.token() == WAKE {
                self.waker.reset();
                continue;
            }
            let failed = event.is_error();
            ready.push((
                event.token().0 as RawFd,
                failed || event.is_readable() || event.is_read_closed(),
                failed || event.is_writable() || event.is_write_closed(),
                event.is_read_closed(),
            ));
        }
        for &(fd, readable, writable, read_closed) in &ready {
            if read_closed {
                self.flags(fd).read_closed = true;
            }
            if readable {
                self.run(table, fd, Dir::Read);
            }
            if writable {
                self.run(table, fd, Dir::Write);
            }
        }
        self.ready_fds = ready;
        self.fire_timers(table);
        Ok(())
    }

    fn shutdown(&mut self, table: &mut OpTable) {
        // Nothing here is shared with the kernel: dropping the ops frees everything.
        for id in table.ids() {
            table.remove(id);
        }
        self.timers.clear();
        self.lanes.clear();
    }
}
