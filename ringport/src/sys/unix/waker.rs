//! [`Waker`]: an eventfd that posters write to wake a port blocked in the kernel.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

/// The eventfd a [`Poster`](crate::Poster) writes to wake a port's blocked `wait`.
///
/// io_uring keeps a read of it in flight; epoll watches it for readability.
#[derive(Clone, Debug)]
pub(crate) struct Waker {
    fd: Arc<OwnedFd>,
}

impl Waker {
    /// A new eventfd. io_uring reads it with an op that must wait for a post, so it needs a
    /// blocking one; epoll drains it with plain reads, which must not block.
    pub(crate) fn new(nonblocking: bool) -> io::Result<Waker> {
        let flags = libc::EFD_CLOEXEC | if nonblocking { libc::EFD_NONBLOCK } else { 0 };
        // SAFETY: eventfd takes no pointers; on success it returns a new descriptor we own.
        let fd = unsafe { syscall!(eventfd(0, flags))? };
        // SAFETY: `fd` was just created and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Waker { fd: Arc::new(fd) })
    }

    /// Makes the port's pending wait return. (The counter saturating is the only way a write to
    /// an eventfd blocks; it would take 2^64 posts.)
    pub(crate) fn wake(&self) -> io::Result<()> {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live local; the fd stays open while `self` lives.
        match unsafe { syscall!(write(self.fd.as_raw_fd(), (&raw const one).cast(), 8)) } {
            Ok(_) => Ok(()),
            // The counter is saturated: the port is certainly going to wake.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Resets the counter so the next `wake` is a new event (non-blocking wakers only).
    pub(crate) fn reset(&self) {
        let mut value: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live local. An error (EAGAIN: already reset) is
        // fine to ignore.
        let _ = unsafe { syscall!(read(self.fd.as_raw_fd(), (&raw mut value).cast(), 8)) };
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
