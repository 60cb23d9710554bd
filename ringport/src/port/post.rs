//! [`Poster`]: `PostQueuedCompletionStatus` — any thread puts its own completion on the port.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::op::{Completion, OpId, Outcome};
use crate::sys::Waker;

/// A handle that posts completions to a [`Port`](crate::Port) from any thread and wakes a
/// thread blocked in [`Port::wait`](crate::Port::wait).
///
/// This is `PostQueuedCompletionStatus`: the tutorials use it to tell worker threads to exit,
/// and servers use it to hand work (a new connection, a message for another connection) to the
/// thread that owns a port. Every post is delivered exactly once, as a completion with
/// [`Outcome::Posted`], in the order each thread posted.
///
/// A post costs a lock and a push; it makes a system call (an `eventfd` write, or
/// `PostQueuedCompletionStatus` on Windows) only when the port's thread is asleep in `wait`.
#[derive(Clone)]
pub struct Poster {
    shared: Arc<PostBox>,
}

/// The queue posters push to and the port drains.
pub(crate) struct PostBox {
    state: Mutex<PostState>,
    waker: Waker,
}

#[derive(Default)]
struct PostState {
    items: Vec<(u64, u64)>,
    /// The port's thread is in (or about to enter) a blocking wait: the next post must wake it.
    sleeping: bool,
    /// The port is gone.
    closed: bool,
}

impl PostBox {
    pub(crate) fn new(waker: Waker) -> Arc<PostBox> {
        Arc::new(PostBox {
            state: Mutex::new(PostState::default()),
            waker,
        })
    }

    fn lock(&self) -> MutexGuard<'_, PostState> {
        // Every update is a single push or flag store: a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves up to `room` posted messages into `out`; returns how many.
    pub(crate) fn drain_into(&self, out: &mut Vec<Completion>, room: usize) -> usize {
        let mut state = self.lock();
        let n = state.items.len().min(room);
        out.extend(state.items.drain(..n).map(|(token, value)| Completion {
            token,
            id: OpId::POSTED,
            more: false,
            outcome: Outcome::Posted(value),
        }));
        n
    }

    /// Declares the port's thread about to block. Returns false (and does not declare it) if
    /// messages are already waiting, in which case the thread must not block.
    pub(crate) fn prepare_sleep(&self) -> bool {
        let mut state = self.lock();
        if !state.items.is_empty() {
            return false;
        }
        state.sleeping = true;
        true
    }

    /// The port's thread is awake again.
    pub(crate) fn woke(&self) {
        self.lock().sleeping = false;
    }

    /// The port is gone: later posts fail.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.items.clear();
    }

    fn post(&self, token: u64, value: u64) -> io::Result<()> {
        let mut state = self.lock();
        if state.closed {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the port this Poster belongs to has been dropped",
            ));
        }
        state.items.push((token, value));
        let wake = std::mem::replace(&mut state.sleeping, false);
        drop(state);
        if wake {
            self.waker.wake()?;
        }
        Ok(())
    }
}

impl Poster {
    pub(crate) fn new(shared: Arc<PostBox>) -> Poster {
        Poster { shared }
    }

    /// Posts a completion with `token` and `value` ([`Outcome::Posted`]) to the port.
    ///
    /// Fails with `BrokenPipe` once the port has been dropped.
    pub fn post(&self, token: u64, value: u64) -> io::Result<()> {
        self.shared.post(token, value)
    }
}

impl fmt::Debug for Poster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Poster").finish_non_exhaustive()
    }
}
