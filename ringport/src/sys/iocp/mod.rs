//! The IOCP backend: Windows I/O completion ports, the model the tutorials teach.
//!
//! - **Port**: one `CreateIoCompletionPort` per [`Port`](crate::Port), concurrency 1. Every
//!   socket is associated with completion key [`IO_KEY`](win::IO_KEY); the waker posts packets
//!   with [`WAKE_KEY`](win::WAKE_KEY) and no OVERLAPPED.
//! - **Association rule**: Windows lets a socket be associated with one completion port for
//!   its life. So a socket is associated with the port that first runs an operation on it
//!   (or that [`Port::associate`](crate::Port::associate) names first), not with the port that
//!   made it: an accepted socket is handed out unassociated, and a server can accept on one
//!   port and serve on another (the framework's hand-off accept). Per socket handle the driver
//!   records whether it associated that socket ([`PerSock`], next to the socket's lanes). An
//!   op on a socket with no record calls `CreateIoCompletionPort`; if Windows answers that the
//!   socket has a port already, it is another port's, and the op fails with `InvalidInput`
//!   rather than issue a call whose packet would go to that port. `Port::associate` (and a
//!   connect, whose socket may have been named to `Port::associate`) always asks the kernel,
//!   and takes "has a port already" as success only if the record says the port is this one.
//!   Handle values are reused, so a record is cleared when the port closes its socket
//!   (`op::Close`) and when a socket just accepted for the port turns up under the value. A
//!   socket the caller closes itself keeps its record: if Windows then gives the value to a
//!   socket another port has, and that socket is submitted here, the call's packet goes to the
//!   other port and the op never ends (memory stays safe: its Side is never freed while the
//!   kernel may hold it). docs/ARCHITECTURE.md discusses this limit.
//! - **Per-I/O data**: every overlapped call gets its own [`Side`] box (OVERLAPPED first, then the
//!   op's tag, WSABUF, flags, address storage, AcceptEx buffer) in the op's table entry. A
//!   packet's OVERLAPPED pointer leads back to the Side and from its tag to the op.
//! - **One packet per call**: FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is not set (see
//!   [`CompletionPort::associate`]), so a call that finishes at once still queues its packet.
//!   A call that fails at once queues none and the op ends right there. Either way an op is
//!   completed only after its last packet, so its memory is never freed under the kernel.
//! - **Order — lanes**: as on the Unix backends, only the head op of each socket's receive lane
//!   and send lane is in the kernel ([`Lanes`]). Windows itself keeps overlapped sends (and
//!   receives) on a socket in the order they were issued, so order alone would not need lanes.
//!   The rest of the contract does: a multishot receive reads with plain `recv` after each of
//!   its zero-byte receives, so no other receive may be in the kernel while it runs, and a
//!   receive submitted behind it must wait for it to end (as on io_uring and epoll); an op still
//!   waiting in its lane is cancelled for certain and at once, by `Port::cancel` or by
//!   `op::Close`, because it never reached the kernel; and the three backends queue alike. The
//!   cost: a send queued behind another on the same socket is issued when the first one's packet
//!   is dequeued, not at once.
//! - **Multishot accept**: [`ACCEPT_SLOTS`] AcceptEx stay posted; each completion yields one
//!   connection and re-posts its slot. Cancel ends them all, then one final completion.
//! - **Multishot receive** holds no buffer while idle: a zero-byte WSARecv waits for data, then
//!   plain non-blocking `recv`s fill pool buffers (one completion each) until `WSAEWOULDBLOCK`,
//!   and the zero-byte receive is posted again. An empty pool ends the op with `WSAENOBUFS`,
//!   the data left in the socket.
//! - **Timeouts** sit in a deadline heap; GQCSEx waits at most until the nearest one.
//!
//! The foreign calls are in [`side`] (the overlapped ones, as `unsafe fn`s whose contract is
//! "this memory stays put until the packet") and [`win`] (the rest). Each op's call and what
//! its packet means are in its file in `sys/ops/`; this file decides when to issue, cancel and
//! finish, and its `unsafe` blocks hand those halves the op's Side, each saying why the memory
//! stays put.

pub(in crate::sys) mod side;
pub(in crate::sys) mod win;

use std::collections::HashMap;
use std::io;
use std::os::windows::io::AsRawSocket;
use std::sync::Arc;
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{NTSTATUS, STATUS_BUFFER_OVERFLOW};
use windows_sys::Win32::System::IO::OVERLAPPED_ENTRY;

pub(crate) use self::side::Side;
use self::side::{Cancel, Issued};
use self::win::{Associated, CompletionPort, Ext};
use super::lanes::{Dir, Gone, LaneHooks, LanePolicy, Lanes};
use super::timers::Timers;
use super::{Backend, OpTable, ops};
use super::{Driver, Opened, Settings};
use crate::buf::BufPool;
use crate::op::{Op, OpKind, Report};
use crate::op::{OpId, cancelled_error};
use crate::sock::RawSock;

/// How many AcceptEx an `op::AcceptMulti` keeps posted, so a burst of connections finds
/// accepts ready while the port's thread is busy elsewhere.
const ACCEPT_SLOTS: u32 = 16;
/// Packets one GQCSEx call takes at most.
const BATCH: usize = 128;
/// Finished Sides kept for reuse, so an op does not allocate its OVERLAPPED block.
const SPARE_SIDES: usize = 256;
/// How long a dropping port waits for the kernel to return cancelled calls before it leaks
/// their memory instead.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Wakes a port blocked in GQCSEx: `PostQueuedCompletionStatus` with the waker's key.
#[derive(Clone, Debug)]
pub(crate) struct Waker {
    port: Arc<CompletionPort>,
}

impl Waker {
    /// Makes the port's pending wait return.
    pub(crate) fn wake(&self) -> io::Result<()> {
        self.port.wake()
    }
}

/// Opens an IOCP backend.
pub(crate) fn open(settings: &Settings) -> io::Result<Opened> {
    let driver = Iocp::new(settings)?;
    let waker = Waker {
        port: driver.port.clone(),
    };
    Ok(Opened {
        driver: Box::new(driver),
        waker,
        fallback: None,
    })
}

pub(in crate::sys) struct Iocp {
    pub(in crate::sys) port: Arc<CompletionPort>,
    pub(in crate::sys) ext: Ext,
    pub(in crate::sys) pool: BufPool,
    /// Per-socket queues: only a lane's head is in the kernel (see the module docs); and per
    /// socket whether this port associated it (the association rule, module docs).
    pub(in crate::sys) lanes: Lanes<PerSock>,
    /// Pending timeouts: (deadline, op tag).
    pub(in crate::sys) timers: Timers,
    /// Finished Sides to reuse, boxed as the op table holds them.
    #[allow(clippy::vec_box)]
    pub(in crate::sys) spare: Vec<Box<Side>>,
    /// Multishot accepts that are ending (cancelled or failed), with the error they end with;
    /// their final completion comes once every slot's packet is back.
    pub(in crate::sys) ending: HashMap<OpId, io::Error>,
    /// The port is dropping: nothing is issued any more.
    pub(in crate::sys) closing: bool,
}

/// What the driver keeps per socket handle besides its lanes.
#[derive(Default)]
pub(in crate::sys) struct PerSock {
    /// This port associated the socket now holding this handle value. Set by an association
    /// that succeeded; cleared when the port closes the socket (`op::Close`) and when the value
    /// turns up as a socket just made for the port (an accepted one), whose predecessor under
    /// the same value is gone.
    pub(in crate::sys) associated: bool,
}

/// What starting an op did.
pub(in crate::sys) enum Start {
    /// Its call is in the kernel; a packet will come.
    Queued,
    /// It ended without reaching the kernel (or failed at once).
    Done(Report),
}

impl From<Issued> for Start {
    fn from(issued: Issued) -> Start {
        match issued {
            Issued::Queued => Start::Queued,
            Issued::Failed(e) => Start::Done(Report::done(Err(e))),
        }
    }
}

/// The Side of op `id`, slot `slot`.
pub(in crate::sys) fn side_of(table: &OpTable, id: OpId, slot: u32) -> Option<&Side> {
    table.get(id)?.side.as_deref()?.slot(slot)
}

/// Whether the kernel holds any call of op `id`.
pub(in crate::sys) fn in_kernel(table: &OpTable, id: OpId) -> bool {
    side_of(table, id, 0).is_some_and(Side::in_kernel)
}

/// Whether a call's final status means it succeeded (a truncated datagram counts: it is a
/// warning status, and like `recvfrom` the op reports the truncated length).
pub(in crate::sys) fn succeeded(status: NTSTATUS) -> bool {
    status >= 0 || status == STATUS_BUFFER_OVERFLOW
}

impl Iocp {
    fn new(settings: &Settings) -> io::Result<Iocp> {
        Ok(Iocp {
            port: Arc::new(CompletionPort::new()?),
            ext: Ext::load()?,
            pool: settings.pool.clone(),
            lanes: Lanes::default(),
            timers: Timers::default(),
            spare: Vec::new(),
            ending: HashMap::new(),
            closing: false,
        })
    }

    /// A Side for op `id`'s slot `slot`, reused if one is spare.
    fn new_side(&mut self, id: OpId, slot: u32) -> Box<Side> {
        match self.spare.pop() {
            Some(mut side) => {
                let slots = side.reuse(id.tag(), slot);
                self.spare.extend(slots);
                side
            }
            None => Side::new(id.tag(), slot),
        }
    }

    /// Takes back the Side of an op that ended. One the kernel still holds is leaked instead:
    /// freeing it could let the kernel write into freed memory.
    fn recycle(&mut self, mut side: Box<Side>) {
        if side.in_kernel() {
            debug_assert!(false, "an op ended while the kernel held its OVERLAPPED");
            tracing::error!("an op ended while the kernel held its OVERLAPPED; leaking it");
            Box::leak(side);
            return;
        }
        let slots = side.reuse(0, 0);
        for s in slots.into_iter().chain([side]) {
            if self.spare.len() < SPARE_SIDES {
                self.spare.push(s);
            }
        }
    }

    /// Associates `sock` with the port before its first call here, unless the port did so
    /// already (the association rule, module docs). No system call once it is associated.
    fn attach(&mut self, sock: RawSock) -> io::Result<()> {
        if self.lanes.sock(sock).extra.associated {
            return Ok(());
        }
        self.associate_now(sock)
    }

    /// Associates `sock` with the port, asking the kernel whatever the records say: a socket
    /// associated before is accepted only if this port's records say it did that. Then makes
    /// it non-blocking (the multishot receive's plain `recv` needs it) and, for UDP, turns off
    /// the ICMP resets.
    fn associate_now(&mut self, sock: RawSock) -> io::Result<()> {
        let ours = &mut self.lanes.sock(sock).extra.associated;
        match self.port.associate(sock)? {
            Associated::Now => *ours = true,
            Associated::Before if *ours => return Ok(()),
            Associated::Before => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the socket is associated with another completion port (on Windows a \
                     socket belongs to the first port that runs an operation on it, for life)",
                ));
            }
        }
        win::set_nonblocking(sock)?;
        win::quiet_udp_resets(sock);
        Ok(())
    }

    /// Makes sure op `id` has its Side (and an AcceptMulti its slots).
    fn ensure_side(&mut self, table: &mut OpTable, id: OpId) {
        let Some(entry) = table.get(id) else { return };
        if entry.side.is_some() {
            return;
        }
        let multi = matches!(entry.op, Op::AcceptMulti(_));
        let mut side = self.new_side(id, 0);
        if multi {
            for slot in 1..ACCEPT_SLOTS {
                let s = self.new_side(id, slot);
                side.push_slot(s);
            }
        }
        if let Some(entry) = table.get_mut(id) {
            entry.side = Some(side);
        }
    }

    /// Issues op `id`'s overlapped call (or, for a multishot accept, all of them).
    pub(in crate::sys) fn start(&mut self, table: &mut OpTable, id: OpId) -> Start {
        if let Some(Op::Shutdown(s)) = table.get(id).map(|e| &e.op) {
            // Synchronous: no overlapped call, no Side.
            return ops::shutdown::iocp::start(s);
        }
        self.ensure_side(table, id);
        let Some(entry) = table.get_mut(id) else {
            return Start::Done(Report::cancelled());
        };
        let side = entry
            .side
            .as_deref()
            .expect("ensure_side gave the op its Side");
        // Every call below hands the kernel pointers into `side` and into the op's Buf. Both
        // belong to the op's table entry: their heap blocks stay in place while the entry moves,
        // and the op leaves the table only after the packet of its last call has been dequeued
        // (`recycle` leaks a Side the kernel still holds rather than free it).
        match &mut entry.op {
            // SAFETY (every arm): as just said, `side` and the op's buffer stay put until the
            // call's packet.
            Op::Recv(r) => unsafe { ops::recv::iocp::start(r, side) },
            Op::RecvMulti(r) => unsafe { ops::recv_multi::iocp::start(r, side) },
            Op::Send(s) => unsafe { ops::send::iocp::start(s, side) },
            Op::RecvFrom(r) => unsafe { ops::recv_from::iocp::start(r, side) },
            Op::SendTo(s) => unsafe { ops::send_to::iocp::start(s, side) },
            Op::Accept(a) => unsafe { ops::accept::iocp::start(a, side, &self.ext) },
            Op::AcceptMulti(a) => {
                let listener = a.listener;
                // SAFETY: as above, for every slot's Side.
                unsafe { self.start_accept_multi(id, listener, side) }
            }
            Op::Connect(c) => unsafe { ops::connect::iocp::start(c, side, &self.ext) },
            Op::Nop(_) => unsafe { ops::nop::iocp::start(side, &self.port) },
            Op::Close(_) | Op::Timeout(_) | Op::Shutdown(_) => {
                unreachable!("close, timeout and shutdown issue no overlapped call")
            }
        }
    }

    /// Starts `id` (a new lane head, or an op outside lanes); each lane op that ends at once
    /// lets the next one of its lane start.
    fn run_lane(&mut self, table: &mut OpTable, mut id: OpId) {
        loop {
            let Start::Done(raw) = self.start(table, id) else {
                return;
            };
            match self.finish(table, id, raw) {
                Some(next) => id = next,
                None => return,
            }
        }
    }

    /// Delivers op `id`'s final result (its last packet is in, or it never reached the kernel)
    /// and returns the next op of its lane, which the caller must start.
    #[must_use]
    pub(in crate::sys) fn finish(
        &mut self,
        table: &mut OpTable,
        id: OpId,
        raw: Report,
    ) -> Option<OpId> {
        let entry = table.get_mut(id)?;
        let lane = entry.op.sock().zip(Dir::of(&entry.op));
        if let Some(side) = entry.side.take() {
            self.recycle(side);
        }
        self.ending.remove(&id);
        let accepted = raw.sock.as_ref().map(AsRawSocket::as_raw_socket);
        table.complete(id, raw);
        if let Some(sock) = accepted {
            self.accepted_sock(table, sock);
        }
        let (sock, dir) = lane?;
        let next = self.lanes.finish(sock, dir, id)?;
        (!self.closing).then_some(next)
    }

    /// Like [`finish`](Iocp::finish), and starts the lane's next op.
    pub(in crate::sys) fn end(&mut self, table: &mut OpTable, id: OpId, raw: Report) {
        if let Some(next) = self.finish(table, id, raw) {
            self.run_lane(table, next);
        }
    }

    /// `sock` is a socket just created for the port: ops still queued under that handle
    /// value belonged to a socket closed behind the port's back, and can never run. (Those
    /// that were in the kernel were aborted by that close; their packets end them.)
    fn fresh_sock(&mut self, table: &mut OpTable, sock: RawSock) {
        self.socket_gone(table, sock, Gone::Reused);
    }

    /// `sock` was just accepted for the caller: a new socket, associated with no port yet (the
    /// first port that runs an operation on it will be its port). Whatever this port recorded
    /// under the same handle value was about a socket that is gone.
    pub(in crate::sys) fn accepted_sock(&mut self, table: &mut OpTable, sock: RawSock) {
        self.fresh_sock(table, sock);
        self.lanes.sock(sock).extra.associated = false;
    }

    /// The error of a call that ended with `status`: cancelled if its socket was closed through
    /// the port (the abort status varies) or the port is dropping.
    pub(in crate::sys) fn call_error(&self, side: &Side, status: NTSTATUS) -> io::Error {
        if side.cancel() == Cancel::Close || self.closing {
            cancelled_error()
        } else {
            win::status_error(status)
        }
    }

    /// Completes the timeouts that are due, and cancels the ops whose linked deadline passed.
    fn fire_timers(&mut self, table: &mut OpTable) {
        for id in self.timers.fire(table, |_, _| false) {
            let _ = Driver::cancel(self, table, id);
        }
    }

    /// Handles one dequeued packet.
    fn on_packet(&mut self, table: &mut OpTable, packet: &OVERLAPPED_ENTRY) {
        if packet.lpCompletionKey != win::IO_KEY || packet.lpOverlapped.is_null() {
            return; // the waker's packet: its only job was to end the wait
        }
        // SAFETY: an IO_KEY packet's OVERLAPPED is the one of a ringport Side (sockets are
        // associated with IO_KEY only by `associate_now`, and overlapped calls on a port's
        // sockets come from ports). Normally it is one of this port's; the one case where
        // another port's call reports here — a stale association record there (module docs) —
        // brings that port's Side. Either way the Side is still allocated: a port keeps the Side
        // of a call in the kernel until it handles that call's packet (or leaks it), and the
        // port that issued this call gets no other packet for it. The kernel is done with it,
        // and nobody writes the tag and slot while a call is out. A foreign Side then matches
        // none of this port's ops (checked below) and is left alone.
        let (tag, slot) = unsafe { Side::header(packet.lpOverlapped) };
        let id = OpId::from_tag(tag);
        let Some(side) = side_of(table, id, slot) else {
            tracing::error!(?id, slot, "completion packet for no op in flight");
            return;
        };
        if side.ov() != packet.lpOverlapped || !side.is_queued() {
            tracing::error!(?id, slot, "completion packet that does not match its op");
            return;
        }
        let status = side.dequeued();
        let bytes = packet.dwNumberOfBytesTransferred as usize;
        let kind = table.get(id).map(|e| e.op.kind());
        match kind {
            Some(OpKind::Recv | OpKind::SendTo | OpKind::Nop) => {
                let res = if succeeded(status) {
                    Ok(bytes)
                } else {
                    Err(self.call_error(side, status))
                };
                self.end(table, id, Report::done(res));
            }
            Some(OpKind::RecvFrom) => {
                let raw = if succeeded(status) {
                    ops::recv_from::iocp::report(side, bytes)
                } else {
                    Report::done(Err(self.call_error(side, status)))
                };
                self.end(table, id, raw);
            }
            Some(OpKind::Send) => self.sent(table, id, status, bytes),
            Some(OpKind::Connect) => {
                let res = if succeeded(status) {
                    ops::connect::iocp::connected(table.get(id).and_then(|e| e.op.sock()))
                } else {
                    Err(self.call_error(side, status))
                };
                self.end(table, id, Report::done(res));
            }
            Some(OpKind::Accept) => self.accepted_one(table, id, status),
            Some(OpKind::AcceptMulti) => self.accepted_multi(table, id, slot, status),
            Some(OpKind::RecvMulti) => self.readable(table, id, status),
            Some(OpKind::Close | OpKind::Timeout | OpKind::Shutdown) | None => {}
        }
    }
}

impl LaneHooks for Iocp {
    type Extra = PerSock;

    fn lanes(&mut self) -> &mut Lanes<PerSock> {
        &mut self.lanes
    }

    fn in_kernel(&self, table: &OpTable, id: OpId) -> bool {
        in_kernel(table, id)
    }

    fn abandon(&mut self, table: &mut OpTable, id: OpId, why: Gone) {
        match why {
            // Closed behind the port's back: that close aborted the call; its packet ends it.
            Gone::Reused => {}
            // closesocket (next) aborts it; its packet ends it as cancelled.
            Gone::Closed => {
                if let Some(side) = side_of(table, id, 0) {
                    side.set_cancel(Cancel::Close);
                }
            }
        }
    }
}

impl Driver for Iocp {
    fn backend(&self) -> Backend {
        Backend::Iocp
    }

    fn supports(&self, _kind: OpKind) -> bool {
        true
    }

    fn associate(&mut self, sock: RawSock) -> io::Result<()> {
        self.associate_now(sock)
    }

    fn submit(&mut self, table: &mut OpTable, id: OpId) -> io::Result<()> {
        if let Some(deadline) = table.get(id).and_then(|e| e.deadline) {
            self.timers.add_linked(table, id, deadline);
        }
        let entry = table.get_mut(id).expect("submitted op is in the table");
        let kind = entry.op.kind();
        match &entry.op {
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
                if let Start::Done(raw) = self.start(table, id) {
                    let _ = self.finish(table, id, raw);
                }
                return Ok(());
            }
            _ => {}
        }
        let sock = entry.op.sock().expect("socket ops name their socket");
        let dir = Dir::of(&entry.op);
        let attached = if kind == OpKind::Connect {
            // The op owns a live socket: ops queued under its handle value were for a socket
            // gone. The caller may have associated it with this port (`Port::associate`), so
            // the kernel is asked, as for `Port::associate`.
            self.fresh_sock(table, sock);
            self.associate_now(sock)
        } else {
            // An accept's listener or a socket to read or write: associated with this port at
            // its first op here (the association rule, module docs).
            self.attach(sock)
        };
        if let Err(e) = attached {
            // Never reached the kernel: ends at once, like any call that fails at once.
            table.complete(id, Report::done(Err(e)));
            return Ok(());
        }
        match dir {
            Some(dir) => {
                if self.lanes.push(sock, dir, id) {
                    self.run_lane(table, id);
                }
            }
            // Waits in no lane (a shutdown of the receiving side, see `Dir::of`): now.
            None => self.run_lane(table, id),
        }
        Ok(())
    }

    fn cancel(&mut self, table: &mut OpTable, id: OpId) -> io::Result<()> {
        let Some(entry) = table.get(id) else {
            return Ok(());
        };
        let kind = entry.op.kind();
        let sock = entry.op.sock();
        match entry.side.as_deref() {
            Some(side) if side.in_kernel() => {
                // Its packet will end it: cancelled, or with what it did first.
                if side.cancel() == Cancel::No {
                    side.set_cancel(Cancel::User);
                }
                if let Some(sock) = sock {
                    if kind == OpKind::AcceptMulti {
                        self.end_multi(table, id, sock, cancelled_error());
                    } else {
                        side.cancel_io(sock);
                    }
                }
                // A nop's packet is queued already: nothing to cancel.
            }
            _ => {
                // Never reached the kernel: a timeout, or an op waiting in its lane.
                if let Some((sock, dir)) = self.cancel_waiting(table, id)
                    && let Some(head) = self.lanes.head(sock, dir)
                {
                    self.run_lane(table, head);
                }
            }
        }
        Ok(())
    }

    fn wait(
        &mut self,
        table: &mut OpTable,
        want: usize,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        self.fire_timers(table);
        let timeout = if table.ready.is_empty() {
            self.timers.bound(timeout)
        } else {
            Some(Duration::ZERO)
        };
        let mut packets = [OVERLAPPED_ENTRY::default(); BATCH];
        let n = self
            .port
            .dequeue(&mut packets[..want.clamp(1, BATCH)], timeout)?;
        for packet in &packets[..n] {
            self.on_packet(table, packet);
        }
        self.fire_timers(table);
        Ok(())
    }

    fn shutdown(&mut self, table: &mut OpTable) {
        self.closing = true;
        // Ops the kernel does not hold end now; those it holds are asked to end.
        for id in table.ids() {
            let Some(entry) = table.get(id) else { continue };
            match entry.side.as_deref() {
                Some(side) if side.in_kernel() => {
                    side.set_cancel(Cancel::User);
                    if let Some(sock) = entry.op.sock() {
                        side.cancel_io(sock);
                    }
                }
                _ => {
                    table.complete(id, Report::cancelled());
                }
            }
        }
        self.lanes.clear();
        self.timers.clear();
        // Completions of a dropping port are dropped: buffers go back to their pools and
        // accepted sockets are closed.
        table.ready.clear();
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        let mut packets = [OVERLAPPED_ENTRY::default(); BATCH];
        while !table.is_empty() {
            let res = match Instant::now() >= deadline {
                true => Err(io::Error::from(io::ErrorKind::TimedOut)),
                false => self
                    .port
                    .dequeue(&mut packets, Some(Duration::from_millis(100))),
            };
            match res {
                Ok(n) => {
                    for packet in &packets[..n] {
                        self.on_packet(table, packet);
                    }
                    table.ready.clear();
                }
                Err(e) => {
                    tracing::error!(
                        in_flight = table.len(),
                        error = %e,
                        "IOCP did not return every cancelled operation; leaking their memory"
                    );
                    table.leak_all();
                    break;
                }
            }
        }
        self.ending.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};

    use super::*;
    use crate::op::private::Sealed;

    fn driver() -> Iocp {
        let settings = Settings {
            queue_depth: 8,
            pool: BufPool::new(64, 4),
        };
        Iocp::new(&settings).expect("an IOCP driver")
    }

    fn ours(driver: &mut Iocp, sock: RawSock) -> bool {
        driver.lanes.sock(sock).extra.associated
    }

    /// The per-socket record of the association rule: set by an association, kept while the
    /// socket lives, cleared when the port closes the socket — so that a new socket under the
    /// same handle value is asked about afresh, never taken for this port's.
    #[test]
    fn association_records_follow_the_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let raw = server.as_raw_socket();
        let (mut first, mut second) = (driver(), driver());

        // A socket no port has: the first port to ask gets it.
        assert!(!ours(&mut first, raw));
        first.attach(raw).unwrap();
        assert!(ours(&mut first, raw));
        // Asking again (with the kernel) is fine for the port that has it, an error for others.
        first.associate_now(raw).unwrap();
        for e in [second.associate_now(raw), second.attach(raw)] {
            assert_eq!(e.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        }
        assert!(!ours(&mut second, raw));

        // Closed through the port: the record goes with the socket.
        let mut table = OpTable::default();
        let id = table.insert(crate::op::Close::new(server).into_op().0, 1);
        first.submit(&mut table, id).unwrap();
        assert!(matches!(
            table.ready.pop_front().map(|c| c.outcome),
            Some(crate::Outcome::Close(Ok(())))
        ));
        assert!(
            !ours(&mut first, raw),
            "a closed socket's record is cleared"
        );

        drop(client);
    }
}
