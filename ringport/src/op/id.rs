//! [`OpId`]: which operation a completion belongs to (the OVERLAPPED pointer of the tutorials).

use std::fmt;

/// Identifies one submitted operation, from [`Port::submit`](crate::Port::submit) until its final
/// completion; use it to [`cancel`](crate::Port::cancel) that one operation.
///
/// It is the OVERLAPPED pointer of the tutorials: unique among the port's in-flight operations,
/// and never confused with a later operation that reuses the slot (it carries a generation).
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct OpId(u64);

/// Generations never take this value, so internal kernel tags (`u64` user data with it in the
/// high half) cannot collide with an `OpId`.
pub(crate) const RESERVED_GEN: u32 = u32::MAX;

impl OpId {
    /// The id carried by completions that [`Poster::post`](crate::Poster::post) made.
    pub const POSTED: OpId = OpId((RESERVED_GEN as u64) << 32);

    pub(crate) fn new(key: usize, generation: u32) -> OpId {
        OpId(u64::from(generation) << 32 | key as u64)
    }

    pub(crate) fn key(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }

    pub(crate) fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The id as a kernel tag (io_uring user data); [`OpId::from_tag`] reverses it.
    pub(crate) fn tag(self) -> u64 {
        self.0
    }

    /// The id a kernel tag stands for.
    pub(crate) fn from_tag(tag: u64) -> OpId {
        OpId(tag)
    }

    /// A kernel tag that no `OpId` ever has, for the backends' own requests.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))] // io_uring only
    pub(crate) const fn internal_tag(n: u32) -> u64 {
        (RESERVED_GEN as u64) << 32 | n as u64
    }
}

impl fmt::Debug for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == OpId::POSTED {
            return f.write_str("OpId(posted)");
        }
        write!(f, "OpId({}#{})", self.key(), self.generation())
    }
}
