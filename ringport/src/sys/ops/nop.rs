//! [`op::Nop`](crate::op::Nop): a completion and nothing else (a round trip through the port).
//!
//! | backend  | performed as                                                 |
//! |----------|--------------------------------------------------------------|
//! | io_uring | `IORING_OP_NOP`                                              |
//! | epoll    | completed at submit: there is no kernel queue to go through |
//! | IOCP     | `PostQueuedCompletionStatus` with the op's OVERLAPPED        |

#[cfg(target_os = "linux")]
pub(in crate::sys) mod uring {
    use io_uring::{opcode, squeue};

    /// The SQE.
    pub(in crate::sys) fn sqe() -> squeue::Entry {
        opcode::Nop::new().build()
    }
}

#[cfg(windows)]
pub(in crate::sys) mod iocp {
    use crate::sys::iocp::win::CompletionPort;
    use crate::sys::iocp::{Side, Start};

    /// Posts the packet.
    ///
    /// # Safety
    /// `side` is the op's own Side in its table entry: it, and the op's buffer, stay in place
    /// and untouched until the packet of this call has been dequeued.
    pub(in crate::sys) unsafe fn start(side: &Side, port: &CompletionPort) -> Start {
        // SAFETY: `side` stays put until the packet (the caller's promise).
        unsafe { side.post(port) }.into()
    }
}
