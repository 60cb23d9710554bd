//! One connection's state on its worker: the socket, its in-flight receive, and the buffers it
//! holds only while busy.

use std::net::TcpStream;

use super::codec::Codec;
use super::handler::{Ending, SendError};
use super::limits::{Held, Limits};
use crate::buf::Buf;
use crate::port::OpId;

/// Write buffers larger than this are freed after their send instead of being kept for reuse.
pub(crate) const KEEP_CAPACITY: usize = 64 << 10;

/// A connection's buffers: the unfinished frame received so far and the bytes waiting to be
/// sent. Allocated (from the worker's recycle list) only while there is something in them, so
/// an idle connection holds no buffer.
#[derive(Default)]
pub(crate) struct Io {
    /// Received bytes of a frame not yet complete.
    pub input: Vec<u8>,
    /// Framed bytes waiting for the send in flight to finish (coalesced into the next send).
    pub queued: Buf,
    /// The last send's buffer, emptied, ready to become the next `queued`.
    pub spare: Buf,
    /// Bytes of the send in flight (0: none).
    pub in_flight: usize,
    /// The connection is on the worker's list of connections to flush.
    pub dirty: bool,
}

impl Io {
    /// Bytes queued and in flight.
    pub fn queued_bytes(&self) -> usize {
        self.queued.len() + self.in_flight
    }

    /// Whether the buffers hold nothing and no send is in flight.
    pub fn is_quiet(&self) -> bool {
        self.input.is_empty() && self.queued.is_empty() && self.in_flight == 0
    }

    /// Frames `payload` onto the queue; returns the bytes added.
    pub fn queue(
        &mut self,
        codec: &dyn Codec,
        payload: &[u8],
        limits: &Limits,
        budget: &mut Held,
    ) -> Result<usize, SendError> {
        if self.queued_bytes().saturating_add(payload.len()) > limits.max_queued_write {
            return Err(SendError::Limit);
        }
        let before = self.queued.len();
        codec
            .encode(payload, &mut self.queued)
            .map_err(SendError::Frame)?;
        let added = self.queued.len() - before;
        if !budget.try_reserve(added) {
            self.queued.truncate(before);
            return Err(SendError::Limit);
        }
        Ok(added)
    }

    /// Makes the buffers ready for reuse by another connection; false if they are too big to
    /// keep.
    pub fn reset(&mut self) -> bool {
        self.input.clear();
        self.queued.clear();
        self.spare.clear();
        self.in_flight = 0;
        self.dirty = false;
        self.input.capacity() <= KEEP_CAPACITY
            && self.queued.capacity() <= KEEP_CAPACITY
            && self.spare.capacity() <= KEEP_CAPACITY
    }
}

/// A connection owned by a worker.
pub(crate) struct Conn<H> {
    /// The socket; `None` once a close for it has been submitted.
    pub stream: Option<TcpStream>,
    pub generation: u32,
    /// The multishot receive in flight.
    pub recv: Option<OpId>,
    /// A cancel of `recv` has been requested.
    pub stopping_read: bool,
    /// Reading stopped because too many bytes are queued; resumes when they drain.
    pub paused: bool,
    /// Reading stopped because the pool ran dry; resumes when buffers are free.
    pub starved: bool,
    /// The peer closed its side or the receive failed: no more reading.
    pub read_done: bool,
    /// The peer closed its side (end of stream): the connection ends once every whole frame
    /// received before it is handled and answered.
    pub peer_closed: bool,
    /// How (and why) the connection is ending, once decided.
    pub ending: Option<Ending>,
    /// The worker tick of the last progress (bytes in, or a send completing).
    pub last_active: u32,
    /// Buffers, while busy.
    pub io: Option<Box<Io>>,
    pub handler: H,
}

impl<H> Conn<H> {
    /// Whether the connection should have a receive armed now.
    pub fn wants_read(&self) -> bool {
        self.recv.is_none()
            && self.stream.is_some()
            && !self.paused
            && !self.starved
            && !self.read_done
            && self.ending.is_none()
    }

    /// Bytes queued and in flight.
    pub fn queued_bytes(&self) -> usize {
        self.io.as_ref().map_or(0, |io| io.queued_bytes())
    }

    /// Bytes of the send in flight.
    pub fn in_flight(&self) -> usize {
        self.io.as_ref().map_or(0, |io| io.in_flight)
    }
}
