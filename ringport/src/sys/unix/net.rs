//! Safe wrappers over the non-blocking socket calls the epoll backend makes (and the few the
//! io_uring backend needs outside the ring).
//!
//! Each takes a raw descriptor and Rust slices: a call on a wrong or closed descriptor fails with
//! `EBADF`, it cannot touch memory other than the slices given.

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use socket2::SockAddr;

/// Flags for every socket the backends create: non-blocking, closed on exec.
const NEW_SOCK_FLAGS: libc::c_int = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;

/// `recv(2)` into `buf`.
pub(crate) fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, which we borrow mutably.
    let n = unsafe { syscall!(recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0))? };
    Ok(n as usize)
}

/// `send(2)` of `buf`, without `SIGPIPE` on a closed peer.
pub(crate) fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: the kernel reads at most `buf.len()` bytes from `buf`, which we borrow.
    let n = unsafe { syscall!(send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL))? };
    Ok(n as usize)
}

/// `accept4(2)`: the new socket (non-blocking, close-on-exec) and its peer.
pub(crate) fn accept(fd: RawFd) -> io::Result<(OwnedFd, SocketAddr)> {
    // SAFETY: `try_init` hands us storage and its length to pass to the kernel, which writes at
    // most that many bytes and updates the length.
    let (new_fd, addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            syscall!(accept4(fd, storage.cast(), len, NEW_SOCK_FLAGS))
        })?
    };
    // SAFETY: accept4 returned a new descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(new_fd) };
    Ok((sock, to_std(&addr)?))
}

/// `recvfrom(2)`: one datagram into `buf`, and its sender.
pub(crate) fn recv_from(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf` and at most `len` bytes of
    // address into the storage `try_init` provides.
    let (n, addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            syscall!(recvfrom(
                fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                storage.cast(),
                len
            ))
        })?
    };
    Ok((n as usize, to_std(&addr)?))
}

/// `sendto(2)`: one datagram to `addr`.
pub(crate) fn send_to(fd: RawFd, buf: &[u8], addr: &SockAddr) -> io::Result<usize> {
    // SAFETY: the kernel reads `buf.len()` bytes of `buf` and `addr.len()` bytes of `addr`.
    let n = unsafe {
        syscall!(sendto(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL,
            addr.as_ptr().cast(),
            addr.len()
        ))?
    };
    Ok(n as usize)
}

/// `connect(2)`; on a non-blocking socket usually `EINPROGRESS`.
pub(crate) fn connect(fd: RawFd, addr: &SockAddr) -> io::Result<()> {
    // SAFETY: the kernel reads `addr.len()` bytes of `addr`.
    unsafe { syscall!(connect(fd, addr.as_ptr().cast(), addr.len()))? };
    Ok(())
}

/// The `shutdown(2)` constant for `how`.
pub(crate) fn how(how: std::net::Shutdown) -> libc::c_int {
    match how {
        std::net::Shutdown::Read => libc::SHUT_RD,
        std::net::Shutdown::Write => libc::SHUT_WR,
        std::net::Shutdown::Both => libc::SHUT_RDWR,
    }
}

/// `shutdown(2)`: ends one or both directions of a connection; never blocks.
pub(crate) fn shutdown(fd: RawFd, how: std::net::Shutdown) -> io::Result<()> {
    // SAFETY: no memory is involved; a wrong descriptor fails with `EBADF`/`ENOTSOCK`.
    unsafe { syscall!(shutdown(fd, self::how(how)))? };
    Ok(())
}

/// The pending error of a socket (`SO_ERROR`), clearing it.
pub(crate) fn take_error(fd: RawFd) -> io::Result<Option<io::Error>> {
    let mut err: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` (= size of `err`) bytes into `err`.
    unsafe {
        syscall!(getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut err).cast(),
            &mut len
        ))?
    };
    Ok((err != 0).then(|| io::Error::from_raw_os_error(err)))
}

/// Whether a socket is connected (it has a peer).
pub(crate) fn is_connected(fd: RawFd) -> bool {
    let mut storage = MaybeUninit::<libc::sockaddr_storage>::uninit();
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `storage`; we never read it.
    unsafe { syscall!(getpeername(fd, storage.as_mut_ptr().cast(), &mut len)).is_ok() }
}

/// Makes a socket non-blocking (`ioctl(FIONBIO)`).
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    let mut on: libc::c_int = 1;
    // SAFETY: FIONBIO reads one int from the pointer we pass.
    unsafe { syscall!(ioctl(fd, libc::FIONBIO, &mut on))? };
    Ok(())
}

/// Takes ownership of a descriptor a kernel completion just created.
///
/// # Safety
/// `fd` must be a new, open descriptor that nothing else owns.
pub(crate) unsafe fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: the caller guarantees `fd` is open and unowned.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Reads an address the kernel wrote into `storage` (`len` bytes of it).
///
/// # Safety
/// The first `len` bytes of `storage` must have been written by the kernel as a socket address.
pub(crate) unsafe fn read_addr(
    storage: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> io::Result<SocketAddr> {
    let mut copy = socket2::SockAddrStorage::zeroed();
    // SAFETY: `sockaddr_storage` is one of this platform's sockaddr types, as `view_as` needs;
    // the caller guarantees the copied storage holds a kernel-written address of `len` bytes.
    let addr = unsafe {
        *copy.view_as::<libc::sockaddr_storage>() = *storage;
        SockAddr::new(copy, len)
    };
    to_std(&addr)
}

fn to_std(addr: &SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "peer address is not an IPv4/IPv6 address",
        )
    })
}

/// `CLOCK_MONOTONIC` now, the clock of `Instant` and of io_uring's absolute timeouts.
pub(crate) fn monotonic_now() -> libc::timespec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts
}

/// The running kernel's (major, minor) version, from `uname(2)`.
pub(crate) fn kernel_version() -> Option<(u32, u32)> {
    // SAFETY: `utsname` is plain old data (byte arrays); all zero is a valid value.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct we own and pass by pointer.
    unsafe { syscall!(uname(&mut uts)).ok()? };
    let release: Vec<u8> = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    let release = String::from_utf8_lossy(&release);
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}
