//! The Win32 calls of the IOCP backend that need no per-op memory: the completion port itself,
//! the Winsock extension functions, socket options, the non-blocking `recv` of multishot
//! receives, and turning kernel status codes into `io::Error`s.
//!
//! Each `unsafe` block says what memory the call touches and why that is sound.

use std::ffi::c_void;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::windows::io::{IntoRawSocket, OwnedSocket};
use std::ptr;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};
use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_INVALID_PARAMETER, ERROR_NOT_FOUND, ERROR_OPERATION_ABORTED, HANDLE,
    INVALID_HANDLE_VALUE, NTSTATUS, RtlNtStatusToDosError, STATUS_CANCELLED,
    STATUS_CONNECTION_ABORTED, STATUS_CONNECTION_REFUSED, STATUS_CONNECTION_RESET,
    STATUS_HOST_UNREACHABLE, STATUS_INVALID_CONNECTION, STATUS_INVALID_HANDLE, STATUS_IO_TIMEOUT,
    STATUS_LOCAL_DISCONNECT, STATUS_NETWORK_UNREACHABLE, STATUS_PIPE_DISCONNECTED,
    STATUS_PORT_UNREACHABLE, STATUS_PROTOCOL_UNREACHABLE, STATUS_REMOTE_DISCONNECT,
    STATUS_TRANSACTION_ABORTED, WAIT_TIMEOUT,
};
use windows_sys::Win32::Networking::WinSock::{
    FIONBIO, LPFN_ACCEPTEX, LPFN_CONNECTEX, LPFN_GETACCEPTEXSOCKADDRS, SD_BOTH, SD_RECEIVE,
    SD_SEND, SIO_GET_EXTENSION_FUNCTION_POINTER, SIO_UDP_CONNRESET, SO_TYPE,
    SO_UPDATE_ACCEPT_CONTEXT, SO_UPDATE_CONNECT_CONTEXT, SOCK_DGRAM, SOCKADDR, SOCKADDR_STORAGE,
    SOCKET, SOCKET_ERROR, SOL_SOCKET, WSAECONNABORTED, WSAECONNREFUSED, WSAECONNRESET,
    WSAEHOSTUNREACH, WSAENETUNREACH, WSAENOTCONN, WSAENOTSOCK, WSAESHUTDOWN, WSAETIMEDOUT,
    WSAGetLastError, WSAID_ACCEPTEX, WSAID_CONNECTEX, WSAID_GETACCEPTEXSOCKADDRS, WSAIoctl,
    closesocket, getsockname, getsockopt, ioctlsocket, recv, setsockopt,
    shutdown as winsock_shutdown,
};
use windows_sys::Win32::Storage::FileSystem::SetFileCompletionNotificationModes;
use windows_sys::Win32::System::IO::{
    CancelIoEx, CreateIoCompletionPort, GetQueuedCompletionStatusEx, OVERLAPPED, OVERLAPPED_ENTRY,
    PostQueuedCompletionStatus,
};
use windows_sys::Win32::System::WindowsProgramming::FILE_SKIP_SET_EVENT_ON_HANDLE;

use crate::sock::RawSock;

/// Completion key of the waker's packets (they carry no OVERLAPPED).
pub(crate) const WAKE_KEY: usize = 0;
/// Completion key of every socket the port associates: its packets carry the OVERLAPPED of one
/// of the port's [`Side`](super::Side)s.
pub(crate) const IO_KEY: usize = 1;

/// A socket's raw handle as Winsock takes it.
pub(crate) fn socket(sock: RawSock) -> SOCKET {
    sock as SOCKET
}

/// The last Winsock error of this thread.
pub(crate) fn wsa_error() -> io::Error {
    // SAFETY: reads this thread's last Winsock error; no memory involved.
    io::Error::from_raw_os_error(unsafe { WSAGetLastError() })
}

/// Turns a Winsock `int` result (`SOCKET_ERROR` on failure) into a `Result`.
fn wsa_check(ret: i32) -> io::Result<i32> {
    if ret == SOCKET_ERROR {
        Err(wsa_error())
    } else {
        Ok(ret)
    }
}

/// What [`CompletionPort::associate`] found.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Associated {
    /// The socket was associated with no port; it reports to this one from now on.
    Now,
    /// The kernel refused: the socket is associated with a completion port already — this one
    /// or another, Windows does not say which. (A socket that cannot be associated at all, e.g.
    /// one made without WSA_FLAG_OVERLAPPED, is refused the same way.)
    Before,
}

/// The I/O completion port: `CreateIoCompletionPort(INVALID_HANDLE_VALUE, …)`.
///
/// Shared (through an `Arc`) by the driver and its [`Waker`](super::Waker)s, so the handle is
/// closed only when the last of them lets go: a late post never reaches a reused handle value.
#[derive(Debug)]
pub(crate) struct CompletionPort {
    handle: HANDLE,
}

// SAFETY: a completion port handle may be used from any thread; the kernel object does its own
// locking. The handle value is only closed in `drop`, when no other owner is left.
unsafe impl Send for CompletionPort {}
// SAFETY: as above; every method takes `&self` and is one thread-safe Win32 call.
unsafe impl Sync for CompletionPort {}

impl CompletionPort {
    /// A new port, for one thread (concurrency 1: the port is driven by one thread at a time).
    pub(crate) fn new() -> io::Result<CompletionPort> {
        // SAFETY: no pointers; with INVALID_HANDLE_VALUE and no existing port this creates a port.
        let handle = unsafe { CreateIoCompletionPort(INVALID_HANDLE_VALUE, ptr::null_mut(), 0, 1) };
        if handle.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(CompletionPort { handle })
    }

    /// `CreateIoCompletionPort(socket, port, IO_KEY, 0)`: the socket's overlapped calls report
    /// here from now on. Also asks the kernel not to signal the socket handle on every
    /// completion (nobody waits on it).
    ///
    /// A socket can be associated with one completion port for its life; a second association
    /// fails with ERROR_INVALID_PARAMETER, whichever port it was with: that is
    /// [`Associated::Before`], and only the caller can tell (from its own records) whether the
    /// port was this one.
    ///
    /// FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is deliberately not set: with it, a call that
    /// finishes at once queues no packet and the driver would complete the op inline — but with a
    /// non-IFS layered provider installed Windows may queue a packet anyway, and that packet would
    /// name an OVERLAPPED whose op the driver already freed. Without it every call that does not
    /// fail at once queues exactly one packet, and ops end in one place.
    pub(crate) fn associate(&self, sock: RawSock) -> io::Result<Associated> {
        let handle = socket(sock) as HANDLE;
        // SAFETY: no memory of ours is involved; a bad handle makes the call fail.
        let port = unsafe { CreateIoCompletionPort(handle, self.handle, IO_KEY, 0) };
        if port.is_null() {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(ERROR_INVALID_PARAMETER as i32) {
                return Ok(Associated::Before);
            }
            return Err(e);
        }
        // SAFETY: flags only. A failure only costs an event signal per completion: ignored.
        unsafe { SetFileCompletionNotificationModes(handle, FILE_SKIP_SET_EVENT_ON_HANDLE as u8) };
        Ok(Associated::Now)
    }

    /// Posts a packet with no OVERLAPPED that only wakes a blocked `dequeue`.
    pub(crate) fn wake(&self) -> io::Result<()> {
        // SAFETY: no memory is passed; the driver never dereferences WAKE_KEY packets.
        if unsafe { PostQueuedCompletionStatus(self.handle, 0, WAKE_KEY, ptr::null()) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Posts `ov` as a finished I/O packet (`op::Nop`).
    ///
    /// # Safety
    /// `ov` must be the OVERLAPPED of a live [`Side`](super::Side) that stays in place, with no
    /// other call using it, until this packet has been dequeued (the driver dereferences it).
    pub(crate) unsafe fn post(&self, ov: *mut OVERLAPPED) -> io::Result<()> {
        // SAFETY: PostQueuedCompletionStatus stores the pointer without reading it; the caller
        // keeps what it points to alive until the packet comes back.
        if unsafe { PostQueuedCompletionStatus(self.handle, 0, IO_KEY, ov) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// `GetQueuedCompletionStatusEx`: up to `entries.len()` packets, waiting at most `timeout`
    /// (`None`: until one arrives). Returns how many were written.
    pub(crate) fn dequeue(
        &self,
        entries: &mut [OVERLAPPED_ENTRY],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let count = u32::try_from(entries.len()).unwrap_or(u32::MAX);
        let mut removed = 0u32;
        // SAFETY: the kernel writes at most `count` entries into `entries` (which we borrow
        // mutably) and the number written into `removed`. Not alertable: no APCs run here.
        let ok = unsafe {
            GetQueuedCompletionStatusEx(
                self.handle,
                entries.as_mut_ptr(),
                count,
                &mut removed,
                timeout_ms(timeout),
                0,
            )
        };
        if ok == 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(WAIT_TIMEOUT as i32) {
                return Ok(0);
            }
            return Err(e);
        }
        Ok(removed as usize)
    }
}

impl Drop for CompletionPort {
    fn drop(&mut self) {
        // SAFETY: the handle is ours and nothing uses it any more (last owner).
        unsafe { CloseHandle(self.handle) };
    }
}

/// A wait timeout in milliseconds for GQCSEx: rounded up, so a wait never ends just before a
/// deadline (and spins); `None` is INFINITE.
fn timeout_ms(timeout: Option<Duration>) -> u32 {
    const INFINITE: u32 = u32::MAX;
    match timeout {
        None => INFINITE,
        Some(t) => {
            let ms = t.as_nanos().div_ceil(1_000_000);
            u32::try_from(ms).unwrap_or(INFINITE - 1).min(INFINITE - 1)
        }
    }
}

/// `CancelIoEx(socket, ov)`: asks the kernel to end one overlapped call early. The kernel only
/// compares `ov` with its pending requests; it never dereferences it.
pub(crate) fn cancel_io(sock: RawSock, ov: *const OVERLAPPED) -> io::Result<()> {
    // SAFETY: see above; a stale handle or pointer matches nothing and fails the call.
    if unsafe { CancelIoEx(socket(sock) as HANDLE, ov) } == 0 {
        let e = io::Error::last_os_error();
        // Nothing to cancel: the call finished and its packet is queued already.
        if e.raw_os_error() == Some(ERROR_NOT_FOUND as i32) {
            return Ok(());
        }
        return Err(e);
    }
    Ok(())
}

/// The Winsock extension functions, loaded once per port through
/// `WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER)` (mswsock's entry points may belong to a
/// layered provider, so they are asked for rather than linked).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ext {
    pub accept_ex: AcceptExFn,
    pub connect_ex: ConnectExFn,
    pub get_accept_ex_sockaddrs: GetAddrsFn,
}

pub(crate) type AcceptExFn = unsafe extern "system" fn(
    SOCKET,
    SOCKET,
    *mut c_void,
    u32,
    u32,
    u32,
    *mut u32,
    *mut OVERLAPPED,
) -> i32;
pub(crate) type ConnectExFn = unsafe extern "system" fn(
    SOCKET,
    *const SOCKADDR,
    i32,
    *const c_void,
    u32,
    *mut u32,
    *mut OVERLAPPED,
) -> i32;
pub(crate) type GetAddrsFn = unsafe extern "system" fn(
    *const c_void,
    u32,
    u32,
    u32,
    *mut *mut SOCKADDR,
    *mut i32,
    *mut *mut SOCKADDR,
    *mut i32,
);

impl Ext {
    /// Loads the three functions through a throwaway TCP socket (which also makes sure Winsock
    /// is initialised: socket2 starts it through std).
    pub(crate) fn load() -> io::Result<Ext> {
        let probe = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        let sock = socket(std::os::windows::io::AsRawSocket::as_raw_socket(&probe));
        let accept_ex: LPFN_ACCEPTEX = extension(sock, WSAID_ACCEPTEX)?;
        let connect_ex: LPFN_CONNECTEX = extension(sock, WSAID_CONNECTEX)?;
        let get_addrs: LPFN_GETACCEPTEXSOCKADDRS = extension(sock, WSAID_GETACCEPTEXSOCKADDRS)?;
        let missing = || {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "Winsock lacks AcceptEx/ConnectEx",
            )
        };
        Ok(Ext {
            accept_ex: accept_ex.ok_or_else(missing)?,
            connect_ex: connect_ex.ok_or_else(missing)?,
            get_accept_ex_sockaddrs: get_addrs.ok_or_else(missing)?,
        })
    }
}

/// One `SIO_GET_EXTENSION_FUNCTION_POINTER` query; `F` is an `Option<fn>` (pointer-sized).
fn extension<F>(sock: SOCKET, guid: windows_sys::core::GUID) -> io::Result<Option<F>> {
    const { assert!(size_of::<Option<F>>() == size_of::<usize>()) };
    let mut f: Option<F> = None;
    let mut returned = 0u32;
    // SAFETY: Winsock reads the GUID from a live local and writes one function pointer (the
    // size we pass, checked above to be pointer-sized) into `f`, an `Option` of an
    // `extern "system"` fn type where null is `None`. Synchronous: no OVERLAPPED.
    wsa_check(unsafe {
        WSAIoctl(
            sock,
            SIO_GET_EXTENSION_FUNCTION_POINTER,
            (&raw const guid).cast(),
            size_of::<windows_sys::core::GUID>() as u32,
            (&raw mut f).cast(),
            size_of::<Option<F>>() as u32,
            &mut returned,
            ptr::null_mut(),
            None,
        )
    })?;
    Ok(f)
}

/// Makes a socket non-blocking (`ioctlsocket(FIONBIO)`); overlapped calls are not affected, the
/// plain `recv` of multishot receives is.
pub(crate) fn set_nonblocking(sock: RawSock) -> io::Result<()> {
    let mut on: u32 = 1;
    // SAFETY: FIONBIO reads one u32 from a live local.
    wsa_check(unsafe { ioctlsocket(socket(sock), FIONBIO, &mut on) })?;
    Ok(())
}

/// For a UDP socket, turns off `SIO_UDP_CONNRESET`, so that an ICMP "port unreachable" for an
/// earlier datagram does not fail the next receive with `WSAECONNRESET` (Linux does not report
/// those on unconnected sockets either). Does nothing for other sockets; best effort.
pub(crate) fn quiet_udp_resets(sock: RawSock) {
    let mut ty: i32 = 0;
    let mut len = size_of::<i32>() as i32;
    // SAFETY: Winsock writes at most `len` (= size of `ty`) bytes into `ty`.
    let ret = unsafe {
        getsockopt(
            socket(sock),
            SOL_SOCKET,
            SO_TYPE,
            (&raw mut ty).cast(),
            &mut len,
        )
    };
    if ret == SOCKET_ERROR || ty != SOCK_DGRAM {
        return;
    }
    let off: u32 = 0;
    let mut returned = 0u32;
    // SAFETY: reads one u32 from a live local; synchronous, no output buffer.
    let ret = unsafe {
        WSAIoctl(
            socket(sock),
            SIO_UDP_CONNRESET,
            (&raw const off).cast(),
            size_of::<u32>() as u32,
            ptr::null_mut(),
            0,
            &mut returned,
            ptr::null_mut(),
            None,
        )
    };
    if ret == SOCKET_ERROR {
        tracing::debug!(error = %wsa_error(), "SIO_UDP_CONNRESET not available");
    }
}

/// `SO_UPDATE_ACCEPT_CONTEXT`: gives a socket AcceptEx filled the listener's properties, so that
/// `getpeername`, `shutdown` and the rest work on it.
pub(crate) fn update_accept_context(accepted: RawSock, listener: RawSock) -> io::Result<()> {
    let listener = socket(listener);
    // SAFETY: Winsock reads one SOCKET from a live local.
    wsa_check(unsafe {
        setsockopt(
            socket(accepted),
            SOL_SOCKET,
            SO_UPDATE_ACCEPT_CONTEXT,
            (&raw const listener).cast(),
            size_of::<SOCKET>() as i32,
        )
    })?;
    Ok(())
}

/// `SO_UPDATE_CONNECT_CONTEXT`: makes a socket ConnectEx connected behave as a connected one.
pub(crate) fn update_connect_context(sock: RawSock) -> io::Result<()> {
    // SAFETY: this option takes no value.
    wsa_check(unsafe {
        setsockopt(
            socket(sock),
            SOL_SOCKET,
            SO_UPDATE_CONNECT_CONTEXT,
            ptr::null(),
            0,
        )
    })?;
    Ok(())
}

/// A plain (non-overlapped) `recv` into `buf`; on a non-blocking socket `WouldBlock` when empty.
pub(crate) fn recv_now(sock: RawSock, buf: &mut [u8]) -> io::Result<usize> {
    let len = i32::try_from(buf.len()).unwrap_or(i32::MAX);
    // SAFETY: Winsock writes at most `len <= buf.len()` bytes into `buf`, which we borrow.
    let n = wsa_check(unsafe { recv(socket(sock), buf.as_mut_ptr(), len, 0) })?;
    Ok(n as usize)
}

/// Winsock `shutdown` (synchronous): ends one or both directions of a connection.
pub(crate) fn shutdown(sock: RawSock, how: std::net::Shutdown) -> io::Result<()> {
    let how = match how {
        std::net::Shutdown::Read => SD_RECEIVE,
        std::net::Shutdown::Write => SD_SEND,
        std::net::Shutdown::Both => SD_BOTH,
    };
    // SAFETY: no memory is involved; a handle that is not a socket fails with WSAENOTSOCK.
    wsa_check(unsafe { winsock_shutdown(socket(sock), how) })?;
    Ok(())
}

/// `closesocket`, reporting its error (dropping an `OwnedSocket` would ignore it).
pub(crate) fn close(sock: OwnedSocket) -> io::Result<()> {
    let raw = sock.into_raw_socket();
    // SAFETY: we own the handle (it came out of an OwnedSocket) and never use it again.
    wsa_check(unsafe { closesocket(socket(raw)) })?;
    Ok(())
}

/// The address family a socket is bound with (`getsockname`).
pub(crate) fn local_family(sock: RawSock) -> io::Result<u16> {
    // SAFETY: SOCKADDR_STORAGE is plain integers; all-zero is valid.
    let mut storage: SOCKADDR_STORAGE = unsafe { zeroed() };
    let mut len = size_of::<SOCKADDR_STORAGE>() as i32;
    // SAFETY: Winsock writes at most `len` bytes (the storage's size) into `storage`.
    wsa_check(unsafe { getsockname(socket(sock), (&raw mut storage).cast(), &mut len) })?;
    Ok(storage.ss_family)
}

/// Reads a socket address the kernel wrote.
///
/// # Safety
/// `addr` must point to `len` readable bytes holding a socket address.
pub(crate) unsafe fn read_addr(addr: *const SOCKADDR, len: i32) -> io::Result<SocketAddr> {
    let mut storage = SockAddrStorage::zeroed();
    let room = size_of::<SockAddrStorage>() as i32;
    if addr.is_null() || len <= 0 || len > room {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the kernel reported no valid socket address",
        ));
    }
    // SAFETY: the caller guarantees `len` readable bytes at `addr`; `len` fits in `storage`,
    // which `SockAddr::new` then treats as holding `len` initialised address bytes.
    let addr = unsafe {
        ptr::copy_nonoverlapping(
            addr.cast::<u8>(),
            (&raw mut storage).cast::<u8>(),
            len as usize,
        );
        SockAddr::new(storage, len)
    };
    addr.as_socket().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "peer address is not an IPv4/IPv6 address",
        )
    })
}

/// The `io::Error` for an overlapped call that ended with NTSTATUS `status` (an error).
///
/// GQCSEx reports the raw status of each call (in its OVERLAPPED). The ones a socket call ends
/// with become the Winsock codes `WSAGetOverlappedResult` would give (so `io::ErrorKind` is
/// right: `ConnectionReset`, `ConnectionRefused`, …); cancellation becomes
/// `ERROR_OPERATION_ABORTED`, what `Completion::is_cancelled` looks for; anything else goes
/// through `RtlNtStatusToDosError`.
pub(crate) fn status_error(status: NTSTATUS) -> io::Error {
    let code = match status {
        STATUS_CANCELLED => ERROR_OPERATION_ABORTED as i32,
        STATUS_CONNECTION_RESET | STATUS_REMOTE_DISCONNECT | STATUS_PORT_UNREACHABLE => {
            WSAECONNRESET
        }
        STATUS_CONNECTION_REFUSED => WSAECONNREFUSED,
        STATUS_CONNECTION_ABORTED | STATUS_LOCAL_DISCONNECT | STATUS_TRANSACTION_ABORTED => {
            WSAECONNABORTED
        }
        STATUS_NETWORK_UNREACHABLE => WSAENETUNREACH,
        STATUS_HOST_UNREACHABLE | STATUS_PROTOCOL_UNREACHABLE => WSAEHOSTUNREACH,
        STATUS_IO_TIMEOUT => WSAETIMEDOUT,
        STATUS_PIPE_DISCONNECTED => WSAESHUTDOWN,
        STATUS_INVALID_CONNECTION => WSAENOTCONN,
        STATUS_INVALID_HANDLE => WSAENOTSOCK,
        // SAFETY: a pure table lookup in ntdll.
        other => (unsafe { RtlNtStatusToDosError(other) }) as i32,
    };
    io::Error::from_raw_os_error(code)
}
