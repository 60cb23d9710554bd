//! Backends: the kernel mechanisms behind a [`Port`](crate::Port), and the contract they keep.
//!
//! Every backend is a [`Driver`]. The [`Port`](crate::Port) owns the table of in-flight
//! operations ([`OpTable`]) and hands it to the driver on every call; the driver moves ops
//! between the table and the kernel.
//!
//! # The contract
//!
//! 1. **One final completion per op.** For every id given to [`Driver::submit`] the driver
//!    eventually calls [`OpTable::complete`] with `more == false` exactly once (and any number of
//!    times with `more == true` before, for multishot ops). Never for an id it was not given.
//! 2. **Memory.** While an op is in flight, the kernel may use the memory it owns: its
//!    [`Buf`](crate::Buf)'s heap block, the op's `side` box, a pool block in a provided ring.
//!    The table keeps all of it at a stable address (heap blocks never move; the table moves
//!    only the owning handles). The driver completes an op only once the kernel is done with its
//!    memory, so whatever `complete` hands back to safe code is no longer shared.
//! 3. **Order.** Ops on one socket in one direction (receives; sends) take effect in submission
//!    order. A send completes when all its bytes are out or the connection failed.
//! 4. **Cancel** asks the kernel to finish early; it never frees anything. The op's final
//!    completion reports cancellation, or its real result if it won the race — bytes already
//!    moved are always reported.
//! 5. **Wait** sends queued work to the kernel, then returns when at least one completion is in
//!    `table.ready`, when the port's [`Waker`] fired, or when the timeout passed; `Some(ZERO)`
//!    never blocks. It collects about `want` completions (more is allowed).
//! 6. **Shutdown** (the port is dropping) cancels everything and returns only when the kernel
//!    holds no op memory any more. If the kernel will not give memory back, the driver leaks it
//!    ([`OpTable::leak_all`]) rather than free memory the kernel might still write.
//! 7. **Unsupported** kinds are reported by [`Driver::supports`], checked before submit.
//!
//! All `unsafe` code of the crate lives under this module, each block with the reason it holds.

use std::io;
use std::time::Duration;

use crate::buf::BufPool;
use crate::op::{OpId, OpKind};
use crate::sock::RawSock;

mod backend;
#[cfg(feature = "fault-injection")]
mod faults;
mod lanes;
mod ops;
mod table;
mod timers;

pub use backend::{BACKEND_ENV, Backend, BackendChoice};
#[cfg(feature = "fault-injection")]
pub use faults::Faults;
#[cfg(feature = "fault-injection")]
pub(crate) use faults::FaultyDriver;
#[cfg(unix)]
pub(crate) use table::InFlight;
pub(crate) use table::OpTable;

#[cfg(unix)]
pub(crate) mod unix;

#[cfg(target_os = "linux")]
pub(crate) mod uring;

#[cfg(unix)]
pub(crate) mod epoll;

#[cfg(windows)]
pub(crate) mod iocp;

#[cfg(unix)]
pub(crate) use unix::Waker;

#[cfg(windows)]
pub(crate) use iocp::Waker;

/// Per-op storage the kernel reads or writes (socket addresses, message headers, timespecs).
#[cfg(target_os = "linux")]
pub(crate) use uring::Side;

/// Per-op storage the kernel reads or writes: the OVERLAPPED and what its call uses.
#[cfg(windows)]
pub(crate) use iocp::Side;

/// Per-op storage the kernel reads or writes: none on this platform's backend.
#[cfg(all(unix, not(target_os = "linux")))]
#[derive(Debug)]
pub(crate) struct Side;

/// A completion-port backend. See the module documentation for the contract.
pub(crate) trait Driver: Send {
    /// Which backend this is.
    fn backend(&self) -> Backend;

    /// Whether ops of `kind` can run on this driver.
    fn supports(&self, kind: OpKind) -> bool;

    /// Prepares a socket created outside the port for its first op.
    fn associate(&mut self, sock: RawSock) -> io::Result<()>;

    /// Starts op `id` (already in `table`). May complete it at once. An error means the op
    /// never reached the kernel; the port then drops it.
    fn submit(&mut self, table: &mut OpTable, id: OpId) -> io::Result<()>;

    /// Asks for op `id` (in flight) to end early.
    fn cancel(&mut self, table: &mut OpTable, id: OpId) -> io::Result<()>;

    /// Sends queued work to the kernel now, without waiting (io_uring: the SQEs since the last
    /// `io_uring_enter`). Backends that start ops at submit have nothing to do.
    fn flush(&mut self, table: &mut OpTable) -> io::Result<()> {
        let _ = table;
        Ok(())
    }

    /// Like `wait` with a zero timeout, when the port already has completions to return: a
    /// backend may skip its readiness check here, as long as it still checks every few calls
    /// (so a port that always has completions at hand cannot starve its sockets).
    fn poll(&mut self, table: &mut OpTable, want: usize) -> io::Result<()> {
        self.wait(table, want, Some(Duration::ZERO))
    }

    /// Sends queued work and collects completions into `table.ready` (see the contract).
    fn wait(
        &mut self,
        table: &mut OpTable,
        want: usize,
        timeout: Option<Duration>,
    ) -> io::Result<()>;

    /// Cancels everything and waits until the kernel holds no op memory.
    fn shutdown(&mut self, table: &mut OpTable);
}

/// What a driver is built from.
pub(crate) struct Settings {
    /// Submission queue size.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))] // io_uring only
    pub queue_depth: u32,
    /// The pool multishot receives draw from.
    pub pool: BufPool,
}

/// A driver, the waker posters use to reach it, and why auto-selection fell back, if it did.
pub(crate) struct Opened {
    pub driver: Box<dyn Driver>,
    pub waker: Waker,
    pub fallback: Option<String>,
}

/// Opens the backend `choice` asks for.
pub(crate) fn open(choice: BackendChoice, settings: &Settings) -> io::Result<Opened> {
    match choice {
        BackendChoice::Only(backend) => open_backend(backend, settings),
        BackendChoice::Auto => {
            let mut reasons = Vec::new();
            for &backend in Backend::compiled() {
                match open_backend(backend, settings) {
                    Ok(mut opened) => {
                        if !reasons.is_empty() {
                            opened.fallback =
                                Some(format!("{}; using {backend}", reasons.join("; ")));
                        }
                        return Ok(opened);
                    }
                    Err(e) => reasons.push(format!("{backend} unavailable: {e}")),
                }
            }
            Err(io::Error::other(reasons.join("; ")))
        }
    }
}

fn open_backend(backend: Backend, settings: &Settings) -> io::Result<Opened> {
    match backend {
        #[cfg(target_os = "linux")]
        Backend::Uring => uring::open(settings),
        #[cfg(unix)]
        Backend::Epoll => epoll::open(settings),
        #[cfg(windows)]
        Backend::Iocp => iocp::open(settings),
        other => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("the {other} backend is not available on this operating system"),
        )),
    }
}
