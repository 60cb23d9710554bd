//! The io_uring backend: a real completion queue shared with the kernel.
//!
//! - **Submission** writes an SQE per op into the shared submission queue; nothing enters the
//!   kernel until [`Driver::wait`] (or a full queue), so one `io_uring_enter` submits a whole
//!   batch and waits for completions in the same call.
//! - **Tags**: every SQE's user data is the op's [`OpId`]; the driver's own requests (waker read,
//!   cancels) carry tags no `OpId` can have.
//! - **Multishot**: accept and recv stay armed in the kernel and post a CQE per connection /
//!   per chunk, with `IORING_CQE_F_MORE` while they go on. Multishot recv picks its buffers from
//!   the pool's provided-buffer ring ([`buf_ring`]).
//! - **Waker**: a read of the port's eventfd stays in flight; a [`Poster`](crate::Poster) writes
//!   the eventfd, the read completes, and the blocked `io_uring_enter` returns.
//! - **Memory**: a `Buf`'s heap block and the op's [`Side`] box stay where they are while the
//!   table entry moves; the kernel is given their addresses and the op leaves the table only on
//!   its final CQE (no `IORING_CQE_F_MORE`), after which the kernel never touches them again.

mod buf_ring;

use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{IntoRawFd, RawFd};
use std::time::{Duration, Instant};

use io_uring::types::{CancelBuilder, Fd, SubmitArgs, Timespec};
use io_uring::{IoUring, Probe, cqueue, opcode, squeue};

use self::buf_ring::BufRing;
use super::lanes::{Dir, Gone, LaneHooks, LanePolicy, LaneServe, LaneStart, Lanes, Started};
use super::timers::Timers;
use super::unix::{Waker, net};
use super::{Backend, InFlight, OpTable, ops};
use super::{Driver, Opened, Settings};
use crate::buf::BufPool;
use crate::op::OpId;
use crate::op::{Op, OpKind, Report};

/// Buffer group id of the port's pool ring.
pub(in crate::sys) const POOL_GROUP: u16 = 0;
/// Tag of the in-flight read of the waker's eventfd.
const WAKER_TAG: u64 = OpId::internal_tag(0);
/// Tag of the driver's own requests whose results are not needed (cancels).
pub(in crate::sys) const INTERNAL_TAG: u64 = OpId::internal_tag(1);
/// Flags for every socket the kernel creates for us.
pub(in crate::sys) const NEW_SOCK_FLAGS: i32 = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
/// [`InFlight::marks`](super::table::InFlight::marks) bit: the kernel holds the op; from then
/// on only its completion may end it.
const IN_KERNEL: u8 = 1;
/// How long a dropping port waits for the kernel to give back cancelled ops before it leaks
/// their memory instead.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Per-op storage the kernel reads or writes, boxed so its address is stable: socket address
/// space, the message header and iovec of `recvmsg`/`sendmsg`, a timeout's timespec.
pub(crate) struct Side {
    pub(in crate::sys) addr: libc::sockaddr_storage,
    pub(in crate::sys) addr_len: libc::socklen_t,
    pub(in crate::sys) msg: libc::msghdr,
    pub(in crate::sys) iov: libc::iovec,
    pub(in crate::sys) ts: Timespec,
    /// The deadline of the op's linked timeout (`IORING_OP_LINK_TIMEOUT`).
    pub(in crate::sys) link_ts: Timespec,
}

// SAFETY: the raw pointers in `msg` and `iov` point into this same box or into the op's own
// buffer; both move between threads together with the op that owns them.
unsafe impl Send for Side {}

impl std::fmt::Debug for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Side").finish_non_exhaustive()
    }
}

impl Side {
    pub(in crate::sys) fn boxed() -> Box<Side> {
        // SAFETY: every field is plain old data (integers and null pointers) for which the
        // all-zero bit pattern is valid.
        Box::new(unsafe { std::mem::zeroed() })
    }

    pub(in crate::sys) fn set_addr(&mut self, addr: std::net::SocketAddr) {
        let addr = socket2::SockAddr::from(addr);
        // SAFETY: a `SockAddr` holds at most `sockaddr_storage` bytes, and `len()` of them are
        // initialised; we copy exactly those into our storage of that size.
        unsafe {
            std::ptr::copy_nonoverlapping(
                addr.as_ptr().cast::<u8>(),
                (&raw mut self.addr).cast::<u8>(),
                addr.len() as usize,
            );
        }
        self.addr_len = addr.len();
    }
}

/// Opens an io_uring backend, probing that the kernel has everything it needs.
pub(crate) fn open(settings: &Settings) -> io::Result<Opened> {
    let depth = settings.queue_depth;
    let ring = IoUring::builder()
        .setup_cqsize(depth.saturating_mul(8))
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .setup_submit_all()
        .build(depth)
        .map_err(|e| context(e, "io_uring_setup failed"))?;
    if !ring.params().is_feature_ext_arg() || !ring.params().is_feature_nodrop() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "kernel io_uring lacks EXT_ARG or NODROP (needs Linux 5.11+)",
        ));
    }
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| context(e, "io_uring opcode probe failed"))?;
    let needed = [
        (opcode::Accept::CODE, "ACCEPT"),
        (opcode::Connect::CODE, "CONNECT"),
        (opcode::Recv::CODE, "RECV"),
        (opcode::Send::CODE, "SEND"),
        (opcode::RecvMsg::CODE, "RECVMSG"),
        (opcode::SendMsg::CODE, "SENDMSG"),
        (opcode::Shutdown::CODE, "SHUTDOWN"),
        (opcode::Close::CODE, "CLOSE"),
        (opcode::Timeout::CODE, "TIMEOUT"),
        (opcode::LinkTimeout::CODE, "LINK_TIMEOUT"),
        (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
        (opcode::Read::CODE, "READ"),
        (opcode::Nop::CODE, "NOP"),
    ];
    if let Some((_, name)) = needed.iter().find(|(code, _)| !probe.is_supported(*code)) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("kernel io_uring lacks IORING_OP_{name}"),
        ));
    }
    // Multishot recv and SEND_ZC both arrived in Linux 6.0: the opcode stands for the flag,
    // which cannot be probed. Multishot accept, cancel flags and buffer rings are older (5.19).
    if !probe.is_supported(opcode::SendZc::CODE) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "kernel io_uring lacks multishot receive (needs Linux 6.0+)",
        ));
    }

    let pool = settings.pool.clone();
    let buf_ring = BufRing::new(pool.capacity())?;
    // SAFETY: the ring memory is a mapping owned by `buf_ring`, which the pool keeps alive
    // until after `shutdown` unregisters the group.
    unsafe {
        ring.submitter()
            .register_buf_ring_with_flags(buf_ring.addr(), buf_ring.entries(), POOL_GROUP, 0)
            .map_err(|e| context(e, "registering the provided-buffer ring failed"))?;
    }
    pool.attach(Box::new(buf_ring));

    // The byte cap of a multishot recv (`sqe->optlen`) arrived in Linux 6.17; older kernels
    // reject it, so there the driver cancels the op once past its limit instead.
    let recv_limit = net::kernel_version().is_some_and(|v| v >= (6, 17));
    let waker = Waker::new(false)?;
    let driver = Uring {
        recv_limit,
        ring: ManuallyDrop::new(ring),
        pool,
        waker: waker.clone(),
        waker_buf: Box::new(0),
        waker_armed: false,
        cqes: Vec::with_capacity(depth as usize),
        lanes: Lanes::default(),
        timers: Timers::default(),
    };
    Ok(Opened {
        driver: Box::new(driver),
        waker,
        fallback: None,
    })
}

fn context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

pub(in crate::sys) struct Uring {
    /// Dropped by hand: leaked if the kernel would not give every op back.
    ring: ManuallyDrop<IoUring>,
    pool: BufPool,
    waker: Waker,
    /// Where the in-flight waker read puts the eventfd counter.
    waker_buf: Box<u64>,
    waker_armed: bool,
    /// CQEs copied out of the ring before being handled.
    cqes: Vec<cqueue::Entry>,
    /// Per-socket queues: only the head op of each lane is in the kernel, which keeps sends
    /// (and one-shot receives) on a socket in submission order.
    lanes: Lanes<()>,
    /// The kernel can cap a multishot recv's bytes itself (`sqe->optlen`, Linux 6.17+).
    recv_limit: bool,
    /// Linked deadlines of ops still waiting in their lanes (the kernel's link timeout takes
    /// over once an op is in the kernel).
    timers: Timers,
}

/// Sets `optlen` of an SQE: the byte cap of a multishot recv (Linux 6.17+), a field the
/// io-uring crate's builder does not expose.
pub(in crate::sys) fn with_optlen(sqe: squeue::Entry, optlen: u32) -> squeue::Entry {
    const SQE_SIZE: usize = 64;
    /// Where `optlen` (union with `file_index`, `splice_fd_in`) sits in `io_uring_sqe`.
    const OPTLEN_OFFSET: usize = 44;
    const { assert!(size_of::<squeue::Entry>() == SQE_SIZE) };
    // SAFETY: `squeue::Entry` is `#[repr(C)]` around the kernel's 64-byte `io_uring_sqe` (size
    // checked above), which is plain data; every byte pattern is a valid value of both types.
    let mut bytes: [u8; SQE_SIZE] = unsafe { std::mem::transmute(sqe) };
    bytes[OPTLEN_OFFSET..OPTLEN_OFFSET + 4].copy_from_slice(&optlen.to_ne_bytes());
    // SAFETY: as above; only the optlen field changed.
    unsafe { std::mem::transmute(bytes) }
}

impl Uring {
    /// Queues one SQE, flushing the queue to the kernel first if it is full.
    pub(in crate::sys) fn push(
        &mut self,
        table: &mut OpTable,
        sqe: &squeue::Entry,
    ) -> io::Result<()> {
        loop {
            // SAFETY: every pointer in an SQE we build points into memory owned by the op's
            // table entry (its Buf's heap block or its Side box) or by this driver (waker_buf),
            // all of which stay in place until the op's final CQE has been reaped.
            if unsafe { self.ring.submission().push(sqe) }.is_ok() {
                return Ok(());
            }
            self.flush(table)?;
        }
    }

    /// Makes sure `n` SQEs fit without a flush in between (for linked pairs).
    pub(in crate::sys) fn reserve(&mut self, table: &mut OpTable, n: usize) -> io::Result<()> {
        let free = {
            let sq = self.ring.submission();
            sq.capacity() - sq.len()
        };
        if free < n {
            self.flush(table)?;
        }
        Ok(())
    }

    /// Submits queued SQEs without waiting.
    fn flush(&mut self, table: &mut OpTable) -> io::Result<()> {
        loop {
            match self.ring.submit() {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The completion queue is full (overflowed completions wait in the kernel):
                // make room, then submit again.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EAGAIN)) => {
                    self.reap(table, usize::MAX);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn arm_waker(&mut self, table: &mut OpTable) -> io::Result<()> {
        if self.waker_armed {
            return Ok(());
        }
        let sqe = opcode::Read::new(
            Fd(self.waker.raw_fd()),
            (&raw mut *self.waker_buf).cast(),
            8,
        )
        .build()
        .user_data(WAKER_TAG);
        self.push(table, &sqe)?;
        self.waker_armed = true;
        Ok(())
    }

    /// Handles up to `max` CQEs that are in the completion queue now.
    fn reap(&mut self, table: &mut OpTable, max: usize) -> usize {
        let mut cqes = std::mem::take(&mut self.cqes);
        cqes.clear();
        cqes.extend(self.ring.completion().take(max));
        for cqe in &cqes {
            match cqe.user_data() {
                WAKER_TAG => self.waker_armed = false,
                INTERNAL_TAG => {}
                tag => self.complete(table, OpId::from_tag(tag), cqe.result(), cqe.flags()),
            }
        }
        let n = cqes.len();
        self.cqes = cqes;
        n
    }

    fn complete(&mut self, table: &mut OpTable, id: OpId, res: i32, flags: u32) {
        let more = cqueue::more(flags);
        let lane = table
            .get(id)
            .and_then(|e| Some((e.op.sock()?, Dir::of(&e.op)?)));
        let picked = cqueue::buffer_select(flags).and_then(|bid| {
            self.pool
                .take_provided(bid, usize::try_from(res).unwrap_or(0))
        });
        let Some(entry) = table.get_mut(id) else {
            // Not ours (cannot happen): `picked`, if any, goes back to the ring on drop.
            tracing::debug!(?id, res, "completion for an op not in flight");
            return;
        };
        let mut stop = false;
        let raw = if res < 0 {
            let errno = -res;
            match entry.op {
                Op::Timeout(_) if ops::timeout::uring::fired(errno) => Report::done(Ok(0)),
                _ => Report {
                    more,
                    ..Report::done(Err(io::Error::from_raw_os_error(errno)))
                },
            }
        } else {
            let n = res as usize;
            let InFlight {
                op, side, marks, ..
            } = entry;
            match op {
                // SAFETY: a successful accept CQE carries a new descriptor nobody owns, and a
                // one-shot accept's `side` holds the peer address the kernel wrote before it.
                Op::Accept(_) => unsafe { ops::accept::uring::report(res, side.as_deref(), more) },
                // SAFETY: as above; a multishot accept reports no address.
                Op::AcceptMulti(_) => unsafe { ops::accept::uring::report(res, None, more) },
                Op::RecvMulti(r) => {
                    let report;
                    (report, stop) =
                        ops::recv_multi::uring::report(r, marks, n, picked, more, self.recv_limit);
                    report
                }
                Op::RecvFrom(_) => {
                    let side = side.as_ref().expect("recv_from has its message header");
                    // SAFETY: this is its successful CQE: the kernel wrote the sender's address.
                    unsafe { ops::recv_from::uring::report(side, n) }
                }
                _ => Report {
                    more,
                    ..Report::done(Ok(n))
                },
            }
        };
        let accepted = raw.sock.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
        table.complete(id, raw);
        if stop {
            let _ = self.cancel_in_kernel(table, id);
        }
        if let Some(fd) = accepted {
            self.socket_gone(table, fd, Gone::Reused);
        }
        if let (false, Some((fd, dir))) = (more, lane) {
            self.advance(table, fd, dir, id);
        }
    }

    fn cancel_in_kernel(&mut self, table: &mut OpTable, id: OpId) -> io::Result<()> {
        let sqe = opcode::AsyncCancel2::new(CancelBuilder::user_data(id.tag()))
            .build()
            .user_data(INTERNAL_TAG);
        self.push(table, &sqe)
    }

    /// Builds the SQE for op `id` and queues it.
    fn start(&mut self, table: &mut OpTable, id: OpId) -> io::Result<Started> {
        let entry = table.get_mut(id).expect("started op is in the table");
        let InFlight { op, side, .. } = entry;
        let sqe = match op {
            Op::Accept(a) => ops::accept::uring::sqe(a, side.get_or_insert_with(Side::boxed)),
            Op::AcceptMulti(a) => ops::accept::uring::sqe_multi(a),
            Op::Connect(c) => ops::connect::uring::sqe(c, side.get_or_insert_with(Side::boxed)),
            Op::Recv(r) => match ops::recv::uring::sqe(r) {
                Ok(sqe) => sqe,
                Err(report) => {
                    table.complete(id, report);
                    return Ok(Started::Ended);
                }
            },
            Op::RecvMulti(r) => ops::recv_multi::uring::sqe(r, self.recv_limit),
            Op::Send(s) => ops::send::uring::sqe(s),
            Op::RecvFrom(r) => ops::recv_from::uring::sqe(r, side.get_or_insert_with(Side::boxed)),
            Op::SendTo(s) => ops::send_to::uring::sqe(s, side.get_or_insert_with(Side::boxed)),
            Op::Shutdown(s) => ops::shutdown::uring::sqe(s),
            Op::Close(c) => {
                // From here the kernel owns the descriptor: the close consumes it.
                let fd = c
                    .sock
                    .take()
                    .expect("a close owns its socket")
                    .into_raw_fd();
                self.close_sqe(table, fd)?
            }
            Op::Timeout(t) => ops::timeout::uring::sqe(t, side.get_or_insert_with(Side::boxed)),
            Op::Nop(_) => ops::nop::uring::sqe(),
        };
        let sqe = sqe.user_data(id.tag());
        let entry = table.get_mut(id).expect("started op is in the table");
        match entry.deadline {
            // A close ends at once (its linked cancel and close are a pair of their own).
            Some(deadline) if !matches!(entry.op, Op::Close(_)) => {
                let side = entry.side.get_or_insert_with(Side::boxed);
                // The kernel copies the timespec when it prepares the SQE, in the
                // `io_uring_enter` that submits the pair; the op's Side holds it until then
                // and longer (until the op's own final CQE, which comes after that enter).
                let timeout = ops::timeout::uring::link_sqe(deadline, side).user_data(INTERNAL_TAG);
                self.reserve(table, 2)?;
                self.push(table, &sqe.flags(squeue::Flags::IO_LINK))?;
                self.push(table, &timeout)?;
            }
            _ => self.push(table, &sqe)?,
        }
        table.get_mut(id).expect("started op is in the table").marks |= IN_KERNEL;
        Ok(Started::Running)
    }

    /// Ends the ops whose linked deadline passed while they waited in their lanes (those in
    /// the kernel end by their link timeout).
    fn fire_timers(&mut self, table: &mut OpTable) {
        let in_kernel = |t: &OpTable, id| t.get(id).is_some_and(|e| e.marks & IN_KERNEL != 0);
        for id in self.timers.fire(table, in_kernel) {
            let _ = Driver::cancel(self, table, id);
        }
    }
}

impl LaneHooks for Uring {
    type Extra = ();

    fn lanes(&mut self) -> &mut Lanes<()> {
        &mut self.lanes
    }

    fn in_kernel(&self, table: &OpTable, id: OpId) -> bool {
        table.get(id).is_some_and(|e| e.marks & IN_KERNEL != 0)
    }

    fn abandon(&mut self, table: &mut OpTable, id: OpId, why: Gone) {
        match why {
            // Its socket is gone: the kernel may never complete it on its own.
            Gone::Reused => {
                let _ = self.cancel_in_kernel(table, id);
            }
            // The close's cancel of every op on the descriptor ends it.
            Gone::Closed => {}
        }
    }
}

impl LaneStart for Uring {
    fn start(&mut self, table: &mut OpTable, id: OpId) -> io::Result<Started> {
        Uring::start(self, table, id)
    }
}

/// A buffer length as an SQE takes it (a longer buffer is used up to 4 GiB).
pub(in crate::sys) fn clamp_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl Driver for Uring {
    fn backend(&self) -> Backend {
        Backend::Uring
    }

    fn supports(&self, _kind: OpKind) -> bool {
        // `open` refuses kernels that lack any op kind.
        true
    }

    fn associate(&mut self, sock: RawFd) -> io::Result<()> {
        // io_uring needs nothing from the socket; non-blocking keeps it usable by other ports.
        net::set_nonblocking(sock)
    }

    fn submit(&mut self, table: &mut OpTable, id: OpId) -> io::Result<()> {
        let entry = table.get(id).expect("submitted op is in the table");
        let kind = entry.op.kind();
        let (Some(fd), Some(dir)) = (entry.op.sock(), Dir::of(&entry.op)) else {
            return self.start(table, id).map(drop);
        };
        if kind == OpKind::Connect {
            self.socket_gone(table, fd, Gone::Reused);
        }
        self.enqueue(table, fd, dir, id)?;
        if let Some(entry) = table.get(id)
            && entry.marks & IN_KERNEL == 0
            && let Some(deadline) = entry.deadline
        {
            // Queued behind another op of its lane: its deadline runs from now all the same.
            self.timers.add_linked(table, id, deadline);
        }
        Ok(())
    }

    fn flush(&mut self, table: &mut OpTable) -> io::Result<()> {
        if self.ring.submission().is_empty() {
            return Ok(());
        }
        Uring::flush(self, table)
    }

    fn cancel(&mut self, table: &mut OpTable, id: OpId) -> io::Result<()> {
        if self.in_kernel(table, id) {
            // Only the kernel's completion may end it: it still uses the op's memory.
            return self.cancel_in_kernel(table, id);
        }
        // Still waiting in its lane: the kernel never saw it.
        if let Some((fd, dir)) = self.cancel_waiting(table, id) {
            self.start_head(table, fd, dir);
        }
        Ok(())
    }

    fn wait(
        &mut self,
        table: &mut OpTable,
        want: usize,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        self.arm_waker(table)?;
        self.fire_timers(table);
        let pending = !self.ring.submission().is_empty();
        if !self.ring.completion().is_empty() {
            if pending {
                self.flush(table)?;
            }
            self.reap(table, want);
            return Ok(());
        }
        let timeout = if table.ready.is_empty() {
            self.timers.bound(timeout)
        } else {
            Some(Duration::ZERO)
        };
        let res = match timeout {
            Some(t) if t.is_zero() => {
                let kernel_has_work = {
                    let sq = self.ring.submission();
                    sq.taskrun() || sq.cq_overflow()
                };
                if pending || kernel_has_work {
                    self.ring.submit()
                } else {
                    Ok(0)
                }
            }
            None => self.ring.submit_and_wait(1),
            Some(t) => {
                let ts = Timespec::from(t);
                let args = SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
        };
        match res {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EAGAIN)) => {}
            Err(e) => return Err(e),
        }
        self.reap(table, want);
        self.fire_timers(table);
        Ok(())
    }

    fn shutdown(&mut self, table: &mut OpTable) {
        // Ops the kernel never saw (waiting in their lanes) end now, and nothing new starts
        // when the others complete.
        for id in table.ids() {
            if !self.in_kernel(table, id) {
                table.complete(id, Report::cancelled());
            }
        }
        self.lanes.clear();
        self.timers.clear();
        table.ready.clear();
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        let cancel_all = opcode::AsyncCancel2::new(CancelBuilder::any())
            .build()
            .user_data(INTERNAL_TAG);
        while !table.is_empty() || self.waker_armed {
            // Cancel again each round: ops queued behind the first cancel are caught too.
            if Instant::now() >= deadline || self.push(table, &cancel_all).is_err() {
                tracing::error!(
                    in_flight = table.len(),
                    "io_uring did not return every cancelled operation; leaking their memory"
                );
                // Everything the kernel might still write stays allocated: the ops, the waker's
                // buffer, the pool (with its provided ring) and the ring itself.
                table.leak_all();
                Box::leak(std::mem::replace(&mut self.waker_buf, Box::new(0)));
                std::mem::forget(self.pool.clone());
                return;
            }
            let ts = Timespec::from(Duration::from_millis(100));
            let args = SubmitArgs::new().timespec(&ts);
            let _ = self.ring.submitter().submit_with_args(1, &args);
            self.reap(table, usize::MAX);
            // Completions of a dropping port are dropped: buffers go back to their pools and
            // accepted sockets are closed.
            table.ready.clear();
        }
        let _ = self.ring.submitter().unregister_buf_ring(POOL_GROUP);
        self.pool.detach();
        // SAFETY: the kernel has returned every op and the waker read; nothing refers to the
        // ring any more, and `shutdown` runs once (from the port's drop).
        unsafe { ManuallyDrop::drop(&mut self.ring) };
    }
}
