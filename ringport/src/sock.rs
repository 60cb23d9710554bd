//! Socket handles as the port sees them, the same way on every OS.
//!
//! Operations name their socket by its raw handle (a file descriptor on Unix, a `SOCKET` on
//! Windows). Passing a raw handle is memory-safe: the kernel checks it. What the port needs from
//! you is the IOCP rule: keep a socket open while operations on it are in flight, or close it
//! through the port ([`op::Close`](crate::op::Close)), which cancels them first.

/// A socket's raw OS handle: a file descriptor on Unix, a `SOCKET` on Windows.
#[cfg(unix)]
pub type RawSock = std::os::fd::RawFd;
/// A socket's raw OS handle: a file descriptor on Unix, a `SOCKET` on Windows.
#[cfg(windows)]
pub type RawSock = std::os::windows::io::RawSocket;

/// An owned socket handle, closed when dropped.
#[cfg(unix)]
pub type OwnedSock = std::os::fd::OwnedFd;
/// An owned socket handle, closed when dropped.
#[cfg(windows)]
pub type OwnedSock = std::os::windows::io::OwnedSocket;

/// Anything that names a socket: std and socket2 sockets, raw handles' owners.
pub trait AsSock {
    /// The socket's raw handle.
    fn as_sock(&self) -> RawSock;
}

#[cfg(unix)]
impl<T: std::os::fd::AsRawFd> AsSock for T {
    fn as_sock(&self) -> RawSock {
        self.as_raw_fd()
    }
}

#[cfg(windows)]
impl<T: std::os::windows::io::AsRawSocket> AsSock for T {
    fn as_sock(&self) -> RawSock {
        self.as_raw_socket()
    }
}
