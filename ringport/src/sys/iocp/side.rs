//! [`Side`]: the per-I/O data of the tutorials (`PER_IO_DATA`) — one OVERLAPPED and the memory
//! its overlapped call reads or writes, boxed so its address is stable.
//!
//! # Who owns the memory, and when
//!
//! An op's `Side` box sits in its op-table entry (`InFlight::side`); `op::AcceptMulti` keeps
//! more of them in `slots`, one per AcceptEx it keeps posted. Each overlapped call below hands
//! the kernel pointers into one Side (OVERLAPPED, WSABUF, flags, address storage, AcceptEx
//! buffer) and possibly into the op's `Buf`. From the call until the completion packet that
//! names that OVERLAPPED has been dequeued, the kernel may write them; the Side is then marked
//! `queued`, and the driver neither frees nor reuses it (an op with a queued Side is never
//! completed, and shutdown leaks what the kernel does not give back).
//!
//! The kernel-facing part ([`Io`]) lives in an `UnsafeCell`: the driver only ever holds `&Side`
//! while a call is pending, and reaches `Io` through raw pointers, so the kernel's writes never
//! alias a Rust reference. Driver bookkeeping (`queued`, `cancel`, the accepted socket) is in
//! `Cell`s next to it, which the kernel never sees.

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::io;
use std::mem::size_of;
use std::net::SocketAddr;
use std::os::windows::io::{AsRawSocket, OwnedSocket};
use std::ptr;

use windows_sys::Win32::Foundation::NTSTATUS;
use windows_sys::Win32::Networking::WinSock::{
    SOCKADDR, SOCKADDR_STORAGE, SOCKET_ERROR, WSA_IO_PENDING, WSABUF, WSAEMSGSIZE, WSAGetLastError,
    WSARecv, WSARecvFrom, WSASend, WSASendTo,
};
use windows_sys::Win32::System::IO::OVERLAPPED;

use super::win::{self, CompletionPort, Ext};
use crate::sock::RawSock;

/// Room for one address in AcceptEx's output buffer: the largest socket address plus the 16
/// bytes AcceptEx asks for.
const ACCEPT_ADDR_ROOM: u32 = (size_of::<SOCKADDR_STORAGE>() + 16) as u32;

/// What the kernel reads and writes during one overlapped call. `#[repr(C)]` with the
/// OVERLAPPED first: the OVERLAPPED pointer of a completion packet is a pointer to this, and
/// through `tag` to the op (the tutorials' `CONTAINING_RECORD`).
#[repr(C)]
struct Io {
    ov: OVERLAPPED,
    /// The op's [`OpId`](crate::OpId) tag. Never touched by the kernel.
    tag: u64,
    /// Which of the op's Sides this is: 0 for the op's own, `i` for `slots[i - 1]`.
    slot: u32,
    /// WSARecv/WSARecvFrom flags, in and out.
    flags: u32,
    /// Length of `addr`: WSARecvFrom writes the sender's length here.
    addr_len: i32,
    wsabuf: WSABUF,
    /// WSARecvFrom's sender, WSASendTo's destination, ConnectEx's peer.
    addr: SOCKADDR_STORAGE,
    /// AcceptEx's output: local and remote address, no data.
    accept_buf: [u8; 2 * ACCEPT_ADDR_ROOM as usize],
}

/// Why an op in the kernel was asked to end.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(in crate::sys) enum Cancel {
    /// It was not.
    #[default]
    No,
    /// [`Port::cancel`](crate::Port::cancel) (or the port is dropping).
    User,
    /// Its socket was closed through the port (`op::Close`): whatever error its call ends with,
    /// it was cancelled.
    Close,
}

/// One overlapped call's memory plus the driver's bookkeeping for it. See the module docs.
#[repr(C)]
pub(crate) struct Side {
    io: UnsafeCell<Io>,
    /// The kernel holds this Side: a call was issued and its packet is not dequeued yet.
    queued: Cell<bool>,
    /// Why the op was asked to end (kept on the op's first Side).
    cancel: Cell<Cancel>,
    /// AcceptEx: the socket the connection is accepted into; it must stay open meanwhile.
    accept: Cell<Option<OwnedSocket>>,
    /// AcceptEx: the listener's address family (kept on the op's first Side).
    family: Cell<u16>,
    /// `op::AcceptMulti`: the op's other Sides, one per AcceptEx kept posted. Boxed: a Side's
    /// address is the kernel's, and it is recycled on its own.
    #[allow(clippy::vec_box)]
    slots: Vec<Box<Side>>,
}

// SAFETY: the raw pointers inside `Io` (WSABUF's buffer, OVERLAPPED's event) point into the op's
// own buffer or nowhere; they travel with the op that owns both. The kernel does not care which
// thread owns the Side, and the driver touches it from one thread at a time (`&mut` driver).
unsafe impl Send for Side {}

impl fmt::Debug for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Side")
            .field("queued", &self.queued.get())
            .field("cancel", &self.cancel.get())
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// What issuing an overlapped call did.
pub(in crate::sys) enum Issued {
    /// The kernel has it; exactly one completion packet will come. (Also when it finished at
    /// once: without FILE_SKIP_COMPLETION_PORT_ON_SUCCESS a packet is queued either way.)
    Queued,
    /// It failed at once; no packet will come.
    Failed(io::Error),
}

/// Reads the result of a Winsock call that returns 0 or `SOCKET_ERROR`. `also_queued` names an
/// error that still queues a packet (WSAEMSGSIZE: a truncated datagram is a warning status,
/// which completes the request normally).
fn wsa_issued(ret: i32, also_queued: Option<i32>) -> Issued {
    if ret != SOCKET_ERROR {
        return Issued::Queued;
    }
    // SAFETY: reads this thread's last Winsock error.
    let code = unsafe { WSAGetLastError() };
    if code == WSA_IO_PENDING || Some(code) == also_queued {
        Issued::Queued
    } else {
        Issued::Failed(io::Error::from_raw_os_error(code))
    }
}

/// Reads the result of an extension function that returns a BOOL (AcceptEx, ConnectEx).
fn bool_issued(ok: i32) -> Issued {
    wsa_issued(if ok != 0 { 0 } else { SOCKET_ERROR }, None)
}

fn clamp_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl Side {
    /// A fresh Side for slot `slot` of the op tagged `tag`.
    pub(in crate::sys) fn new(tag: u64, slot: u32) -> Box<Side> {
        let side = Box::new(Side {
            // SAFETY: `Io` holds integers, raw pointers and arrays of bytes, for which the
            // all-zero bit pattern is valid (null pointers, zero lengths).
            io: UnsafeCell::new(unsafe { std::mem::zeroed() }),
            queued: Cell::new(false),
            cancel: Cell::new(Cancel::No),
            accept: Cell::new(None),
            family: Cell::new(0),
            slots: Vec::new(),
        });
        side.set_tag(tag, slot);
        side
    }

    /// Makes a finished Side fit for op `tag`'s slot `slot`; returns its former slots.
    #[allow(clippy::vec_box)] // see `slots`
    pub(in crate::sys) fn reuse(&mut self, tag: u64, slot: u32) -> Vec<Box<Side>> {
        debug_assert!(!self.queued.get(), "a queued Side is never reused");
        self.cancel.set(Cancel::No);
        self.accept.set(None);
        self.family.set(0);
        self.set_tag(tag, slot);
        std::mem::take(&mut self.slots)
    }

    fn set_tag(&self, tag: u64, slot: u32) {
        debug_assert!(!self.queued.get());
        let io = self.io.get();
        // SAFETY: the Side is not queued: the kernel does not hold its Io, and no reference to
        // the Io exists.
        unsafe {
            (*io).tag = tag;
            (*io).slot = slot;
        }
    }

    /// Adds a slot (op::AcceptMulti), before any call is issued on this Side.
    pub(in crate::sys) fn push_slot(&mut self, slot: Box<Side>) {
        self.slots.push(slot);
    }

    /// This Side (slot 0) or one of its slots.
    pub(in crate::sys) fn slot(&self, slot: u32) -> Option<&Side> {
        match slot {
            0 => Some(self),
            n => self.slots.get(n as usize - 1).map(|b| &**b),
        }
    }

    /// This Side and all its slots, with their slot numbers.
    pub(in crate::sys) fn all(&self) -> impl Iterator<Item = (u32, &Side)> {
        std::iter::once(self)
            .chain(self.slots.iter().map(|b| &**b))
            .enumerate()
            .map(|(i, s)| (i as u32, s))
    }

    /// Whether the kernel still holds this Side or any of its slots.
    pub(in crate::sys) fn in_kernel(&self) -> bool {
        self.all().any(|(_, s)| s.queued.get())
    }

    /// Whether the kernel holds this one Side.
    pub(in crate::sys) fn is_queued(&self) -> bool {
        self.queued.get()
    }

    pub(in crate::sys) fn cancel(&self) -> Cancel {
        self.cancel.get()
    }

    pub(in crate::sys) fn set_cancel(&self, why: Cancel) {
        self.cancel.set(why);
    }

    pub(in crate::sys) fn family(&self) -> u16 {
        self.family.get()
    }

    pub(in crate::sys) fn set_family(&self, family: u16) {
        self.family.set(family);
    }

    /// The OVERLAPPED the kernel is given (and reports back).
    pub(in crate::sys) fn ov(&self) -> *mut OVERLAPPED {
        // `ov` is the first field of the `#[repr(C)]` Io.
        self.io.get().cast()
    }

    /// The op tag and slot of the Side whose OVERLAPPED a packet names.
    ///
    /// # Safety
    /// `ov` must come from [`Side::ov`] of a Side that is still allocated, and the kernel must be
    /// done with it (its packet was dequeued).
    pub(in crate::sys) unsafe fn header(ov: *const OVERLAPPED) -> (u64, u32) {
        let io = ov.cast::<Io>();
        // SAFETY: by the caller, `ov` points to the start of a live Io no one writes any more.
        unsafe { ((*io).tag, (*io).slot) }
    }

    /// The packet naming this Side was dequeued: the kernel is done with it. Returns the call's
    /// final NTSTATUS.
    pub(in crate::sys) fn dequeued(&self) -> NTSTATUS {
        self.queued.set(false);
        // SAFETY: the kernel wrote the status into the OVERLAPPED before queuing the packet and
        // touches this Side no more; no reference to `Io` exists.
        unsafe { (*self.io.get()).ov.Internal as NTSTATUS }
    }

    /// Clears the OVERLAPPED for a new call (the kernel uses Internal/InternalHigh as its own).
    fn fresh_ov(&self) -> *mut Io {
        debug_assert!(!self.queued.get(), "one call at a time per OVERLAPPED");
        let io = self.io.get();
        // SAFETY: not queued, so the kernel does not hold this Io; no reference to it exists.
        unsafe { (*io).ov = std::mem::zeroed() };
        io
    }

    fn issued(&self, issued: Issued) -> Issued {
        if let Issued::Queued = issued {
            self.queued.set(true);
        }
        issued
    }

    /// `WSARecv` into `len` bytes at `buf`; with `len == 0` a zero-byte receive, which completes
    /// when data (or the end of the stream) has arrived and takes none of it.
    ///
    /// # Safety
    /// This Side must stay allocated and in place until its packet is dequeued, and the `len`
    /// bytes at `buf` must stay valid and unused by anyone else until then.
    pub(in crate::sys) unsafe fn recv(&self, sock: RawSock, buf: *mut u8, len: usize) -> Issued {
        let io = self.fresh_ov();
        // SAFETY: `io` is ours (not queued); the kernel keeps the OVERLAPPED, the flags and the
        // buffer until the packet, which the caller guarantees stay valid.
        let ret = unsafe {
            (*io).flags = 0;
            (*io).wsabuf = WSABUF {
                len: clamp_len(len),
                buf,
            };
            WSARecv(
                win::socket(sock),
                &raw const (*io).wsabuf,
                1,
                ptr::null_mut(),
                &raw mut (*io).flags,
                &raw mut (*io).ov,
                None,
            )
        };
        self.issued(wsa_issued(ret, None))
    }

    /// `WSARecvFrom` of one datagram into `len` bytes at `buf`; the sender goes into this Side.
    ///
    /// # Safety
    /// As for [`Side::recv`].
    pub(in crate::sys) unsafe fn recv_from(
        &self,
        sock: RawSock,
        buf: *mut u8,
        len: usize,
    ) -> Issued {
        let io = self.fresh_ov();
        // SAFETY: as in `recv`; the kernel also writes the sender into `addr` and its length
        // into `addr_len`, both in this Side.
        let ret = unsafe {
            (*io).flags = 0;
            (*io).addr_len = size_of::<SOCKADDR_STORAGE>() as i32;
            (*io).wsabuf = WSABUF {
                len: clamp_len(len),
                buf,
            };
            WSARecvFrom(
                win::socket(sock),
                &raw const (*io).wsabuf,
                1,
                ptr::null_mut(),
                &raw mut (*io).flags,
                (&raw mut (*io).addr).cast::<SOCKADDR>(),
                &raw mut (*io).addr_len,
                &raw mut (*io).ov,
                None,
            )
        };
        self.issued(wsa_issued(ret, Some(WSAEMSGSIZE)))
    }

    /// The sender a finished `recv_from` wrote.
    pub(in crate::sys) fn sender(&self) -> io::Result<SocketAddr> {
        debug_assert!(!self.queued.get());
        let io = self.io.get();
        // SAFETY: the kernel finished (packet dequeued) and wrote `addr_len` bytes of address
        // into `addr`; `read_addr` checks the length against the storage.
        unsafe { win::read_addr((&raw const (*io).addr).cast(), (*io).addr_len) }
    }

    /// `WSASend` of `len` bytes at `buf`. On an overlapped socket it completes once all of them
    /// are sent, or with the error that stopped it.
    ///
    /// # Safety
    /// This Side must stay allocated and in place until its packet is dequeued, and the `len`
    /// bytes at `buf` must stay valid and unchanged until then.
    pub(in crate::sys) unsafe fn send(&self, sock: RawSock, buf: *const u8, len: usize) -> Issued {
        let io = self.fresh_ov();
        // SAFETY: as in `recv`; the kernel only reads the buffer.
        let ret = unsafe {
            (*io).wsabuf = WSABUF {
                len: clamp_len(len),
                buf: buf.cast_mut(),
            };
            WSASend(
                win::socket(sock),
                &raw const (*io).wsabuf,
                1,
                ptr::null_mut(),
                0,
                &raw mut (*io).ov,
                None,
            )
        };
        self.issued(wsa_issued(ret, None))
    }

    /// `WSASendTo` of `len` bytes at `buf` as one datagram to `to` (kept in this Side).
    ///
    /// # Safety
    /// As for [`Side::send`].
    pub(in crate::sys) unsafe fn send_to(
        &self,
        sock: RawSock,
        buf: *const u8,
        len: usize,
        to: SocketAddr,
    ) -> Issued {
        let io = self.fresh_ov();
        // SAFETY: as in `send`; the destination is copied into this Side first.
        let ret = unsafe {
            let addr_len = self.set_addr(io, to);
            (*io).wsabuf = WSABUF {
                len: clamp_len(len),
                buf: buf.cast_mut(),
            };
            WSASendTo(
                win::socket(sock),
                &raw const (*io).wsabuf,
                1,
                ptr::null_mut(),
                0,
                (&raw const (*io).addr).cast::<SOCKADDR>(),
                addr_len,
                &raw mut (*io).ov,
                None,
            )
        };
        self.issued(wsa_issued(ret, None))
    }

    /// Copies `addr` into `io.addr`; returns its length.
    ///
    /// # Safety
    /// `io` is this Side's Io, not held by the kernel.
    unsafe fn set_addr(&self, io: *mut Io, addr: SocketAddr) -> i32 {
        let addr = socket2::SockAddr::from(addr);
        let len = addr.len();
        // SAFETY: a SockAddr holds at most a sockaddr_storage, of which `len` bytes are
        // initialised; `io.addr` is a SOCKADDR_STORAGE of the same size, ours per the caller.
        unsafe {
            ptr::copy_nonoverlapping(
                addr.as_ptr().cast::<u8>(),
                (&raw mut (*io).addr).cast::<u8>(),
                len as usize,
            );
        }
        len
    }

    /// `AcceptEx` on `listener` into `sock`, which this Side keeps until the packet. No data is
    /// received with the connection: the accept completes as soon as a peer connects.
    ///
    /// # Safety
    /// This Side must stay allocated and in place until its packet is dequeued.
    pub(in crate::sys) unsafe fn accept(
        &self,
        ext: &Ext,
        listener: RawSock,
        sock: OwnedSocket,
    ) -> Issued {
        let accept_sock = win::socket(sock.as_raw_socket());
        self.accept.set(Some(sock));
        let io = self.fresh_ov();
        let mut received = 0u32;
        // SAFETY: the kernel writes both addresses into `accept_buf` (2 × ACCEPT_ADDR_ROOM
        // bytes) and the result into the OVERLAPPED, both in this Side, which the caller keeps
        // until the packet; `received` is only written if it completes at once.
        let ok = unsafe {
            (ext.accept_ex)(
                win::socket(listener),
                accept_sock,
                (&raw mut (*io).accept_buf).cast(),
                0,
                ACCEPT_ADDR_ROOM,
                ACCEPT_ADDR_ROOM,
                &mut received,
                &raw mut (*io).ov,
            )
        };
        let issued = self.issued(bool_issued(ok));
        if let Issued::Failed(_) = issued {
            drop(self.accept.take());
        }
        issued
    }

    /// After a successful AcceptEx packet: the accepted socket (with the listener's properties)
    /// and its peer's address, parsed from the AcceptEx buffer.
    pub(in crate::sys) fn accepted(
        &self,
        ext: &Ext,
        listener: RawSock,
    ) -> io::Result<(OwnedSocket, SocketAddr)> {
        debug_assert!(!self.queued.get());
        let sock = self.accept.take().ok_or_else(|| {
            io::Error::other("AcceptEx completed without the socket it accepted into")
        })?;
        win::update_accept_context(sock.as_raw_socket(), listener)?;
        let io = self.io.get();
        let (mut local, mut remote): (*mut SOCKADDR, *mut SOCKADDR) =
            (ptr::null_mut(), ptr::null_mut());
        let (mut local_len, mut remote_len) = (0i32, 0i32);
        // SAFETY: the kernel is done with this Side (packet dequeued). GetAcceptExSockaddrs
        // parses the buffer AcceptEx filled, with the sizes AcceptEx was given, and returns
        // pointers into that buffer, which `read_addr` reads (bounded by `remote_len`).
        let peer = unsafe {
            (ext.get_accept_ex_sockaddrs)(
                (&raw const (*io).accept_buf).cast(),
                0,
                ACCEPT_ADDR_ROOM,
                ACCEPT_ADDR_ROOM,
                &mut local,
                &mut local_len,
                &mut remote,
                &mut remote_len,
            );
            win::read_addr(remote, remote_len)
        }?;
        Ok((sock, peer))
    }

    /// Drops the socket an AcceptEx that failed was to accept into.
    pub(in crate::sys) fn drop_accept_socket(&self) {
        debug_assert!(!self.queued.get());
        drop(self.accept.take());
    }

    /// `ConnectEx` of `sock` (bound, associated) to `to` (kept in this Side).
    ///
    /// # Safety
    /// This Side must stay allocated and in place until its packet is dequeued.
    pub(in crate::sys) unsafe fn connect(
        &self,
        ext: &Ext,
        sock: RawSock,
        to: SocketAddr,
    ) -> Issued {
        let io = self.fresh_ov();
        // SAFETY: the peer address is copied into this Side, which with its OVERLAPPED stays
        // until the packet (caller); no data is sent with the connect.
        let ok = unsafe {
            let len = self.set_addr(io, to);
            (ext.connect_ex)(
                win::socket(sock),
                (&raw const (*io).addr).cast::<SOCKADDR>(),
                len,
                ptr::null(),
                0,
                ptr::null_mut(),
                &raw mut (*io).ov,
            )
        };
        self.issued(bool_issued(ok))
    }

    /// Posts this Side's OVERLAPPED to `port` as a finished call (`op::Nop`): a round trip
    /// through the port and nothing else.
    ///
    /// # Safety
    /// This Side must stay allocated and in place until its packet is dequeued.
    pub(in crate::sys) unsafe fn post(&self, port: &CompletionPort) -> Issued {
        let io = self.fresh_ov();
        // SAFETY: the zeroed OVERLAPPED reads as STATUS_SUCCESS when the packet comes back; the
        // caller keeps the Side until then.
        match unsafe { port.post(&raw mut (*io).ov) } {
            Ok(()) => self.issued(Issued::Queued),
            Err(e) => Issued::Failed(e),
        }
    }

    /// `CancelIoEx` for every call of this Side and its slots still in the kernel.
    pub(in crate::sys) fn cancel_io(&self, sock: RawSock) {
        for (_, side) in self.all() {
            if side.queued.get() {
                if let Err(e) = win::cancel_io(sock, side.ov()) {
                    tracing::debug!(error = %e, "CancelIoEx failed");
                }
            }
        }
    }
}
