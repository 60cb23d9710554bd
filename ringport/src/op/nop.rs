//! Nop: `IORING_OP_NOP` / completes at once on epoll / `PostQueuedCompletionStatus` on IOCP.
//!
//! Does nothing and completes: it measures what a round through the port itself costs.

/// An operation that does nothing and completes with `Ok(0)` ([`Outcome::Nop`](crate::Outcome::Nop)).
#[derive(Debug, Default)]
pub struct Nop;

impl Nop {
    /// A no-op.
    pub fn new() -> Nop {
        Nop
    }
}
