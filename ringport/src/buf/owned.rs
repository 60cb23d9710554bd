//! [`Buf`]: the owned byte buffer every data operation moves into the port and gets back.

use std::fmt;
use std::ops::{Deref, DerefMut};

use super::pool::Home;

/// An owned byte buffer that operations take by value and give back in their completion.
///
/// This is the "buffer" half of the IOCP tutorials' per-I/O data: while an operation is in
/// flight the buffer belongs to the port (and, through it, to the kernel); safe code gets it back
/// only in the operation's [`Completion`](crate::Completion). That ownership transfer is what
/// makes a completion-based API safe: nothing can read or free memory the kernel may still write.
///
/// A `Buf` is a window `[start, end)` over a fixed block of initialised memory:
///
/// - the bytes you see (`Deref<Target = [u8]>`) are the window;
/// - a receive appends after the window, into the spare capacity;
/// - a send sends the window; [`advance`](Buf::advance) drops bytes from its front.
///
/// A buffer either comes from the heap ([`Buf::with_capacity`], `From<Vec<u8>>`) or from a
/// [`BufPool`](crate::BufPool); a pooled buffer goes back to its pool when dropped.
pub struct Buf {
    mem: Box<[u8]>,
    start: usize,
    end: usize,
    home: Option<Home>,
}

impl Buf {
    /// An empty buffer with no capacity; allocates nothing.
    pub fn new() -> Buf {
        Buf {
            mem: Box::default(),
            start: 0,
            end: 0,
            home: None,
        }
    }

    /// An empty heap buffer that can receive up to `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Buf {
        Buf::from_mem(vec![0u8; capacity].into_boxed_slice(), 0, None)
    }

    pub(super) fn from_mem(mem: Box<[u8]>, end: usize, home: Option<Home>) -> Buf {
        debug_assert!(end <= mem.len());
        Buf {
            mem,
            start: 0,
            end,
            home,
        }
    }

    /// Number of bytes in the buffer (the window a send would send).
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Total size of the memory block behind this buffer.
    pub fn capacity(&self) -> usize {
        self.mem.len()
    }

    /// How many bytes a receive can still append without growing the buffer.
    pub fn spare_capacity(&self) -> usize {
        self.mem.len() - self.end
    }

    /// Whether this buffer belongs to a [`BufPool`](crate::BufPool) (and returns there on drop).
    pub fn is_pooled(&self) -> bool {
        self.home.is_some()
    }

    /// Empties the buffer, keeping its memory.
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Drops `n` bytes from the front, e.g. the part of a send that went out.
    ///
    /// # Panics
    /// If `n` is greater than [`len`](Buf::len), like slicing past the end would.
    pub fn advance(&mut self, n: usize) {
        assert!(
            n <= self.len(),
            "advance({n}) past the end of a {}-byte Buf",
            self.len()
        );
        self.start += n;
        if self.start == self.end {
            self.clear();
        }
    }

    /// Keeps the first `len` bytes, dropping the rest; does nothing if `len >= self.len()`.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.end = self.start + len;
        }
    }

    /// Moves the bytes to the front of the memory block so all spare room is at the end.
    pub fn compact(&mut self) {
        if self.start > 0 {
            self.mem.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Makes room for at least `additional` more bytes after the current ones.
    ///
    /// Compacts first; grows the memory only if that is not enough. A pooled buffer that must
    /// grow moves its bytes to the heap and returns its block to the pool at once.
    pub fn reserve(&mut self, additional: usize) {
        if self.spare_capacity() >= additional {
            return;
        }
        self.compact();
        if self.spare_capacity() >= additional {
            return;
        }
        let needed = self.end + additional;
        let new_cap = needed.max(self.mem.len().saturating_mul(2)).max(64);
        let mut mem = vec![0u8; new_cap].into_boxed_slice();
        mem[..self.end].copy_from_slice(&self.mem[..self.end]);
        let old = std::mem::replace(&mut self.mem, mem);
        if let Some(home) = self.home.take() {
            home.recycle(old);
        }
    }

    /// Appends `data`, growing the buffer if needed (see [`reserve`](Buf::reserve)).
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        self.reserve(data.len());
        self.mem[self.end..self.end + data.len()].copy_from_slice(data);
        self.end += data.len();
    }

    /// Copies as much of `data` as fits in the spare capacity, never growing; returns the count.
    pub fn fill_from(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.spare_capacity());
        self.mem[self.end..self.end + n].copy_from_slice(&data[..n]);
        self.end += n;
        n
    }

    /// The bytes as a `Vec<u8>`; a heap buffer gives up its memory, a pooled one is copied.
    pub fn into_vec(mut self) -> Vec<u8> {
        if self.home.is_some() || self.start != 0 {
            return self.to_vec();
        }
        let mut v = std::mem::take(&mut self.mem).into_vec();
        v.truncate(self.end);
        v
    }

    /// The spare capacity a receive writes into (backends only).
    pub(crate) fn spare_mut(&mut self) -> &mut [u8] {
        &mut self.mem[self.end..]
    }

    /// Records that `n` bytes were written into the spare capacity (backends only).
    pub(crate) fn commit(&mut self, n: usize) {
        assert!(
            n <= self.spare_capacity(),
            "kernel reported more bytes than the buffer holds"
        );
        self.end += n;
    }
}

impl Default for Buf {
    fn default() -> Buf {
        Buf::new()
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        if let Some(home) = self.home.take() {
            home.recycle(std::mem::take(&mut self.mem));
        }
    }
}

impl Deref for Buf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.mem[self.start..self.end]
    }
}

impl DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.mem[self.start..self.end]
    }
}

impl AsRef<[u8]> for Buf {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Clone for Buf {
    /// A heap copy of the bytes (a clone of a pooled buffer does not take a second pool block).
    fn clone(&self) -> Buf {
        let mut b = Buf::with_capacity(self.capacity().max(self.len()));
        b.extend_from_slice(self);
        b
    }
}

impl PartialEq for Buf {
    fn eq(&self, other: &Buf) -> bool {
        self[..] == other[..]
    }
}

impl Eq for Buf {}

impl PartialEq<[u8]> for Buf {
    fn eq(&self, other: &[u8]) -> bool {
        self[..] == *other
    }
}

impl fmt::Debug for Buf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buf")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("pooled", &self.is_pooled())
            .finish()
    }
}

impl From<Vec<u8>> for Buf {
    /// Takes the vector's memory; its spare capacity is zeroed once so receives can use it.
    fn from(mut v: Vec<u8>) -> Buf {
        let len = v.len();
        v.resize(v.capacity(), 0);
        Buf::from_mem(v.into_boxed_slice(), len, None)
    }
}

impl From<&[u8]> for Buf {
    fn from(data: &[u8]) -> Buf {
        Buf::from(data.to_vec())
    }
}

impl From<&str> for Buf {
    fn from(s: &str) -> Buf {
        Buf::from(s.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_moves_with_advance_and_commit() {
        let mut b = Buf::with_capacity(8);
        assert_eq!(b.spare_capacity(), 8);
        b.spare_mut()[..3].copy_from_slice(b"abc");
        b.commit(3);
        assert_eq!(&b[..], b"abc");
        b.advance(1);
        assert_eq!(&b[..], b"bc");
        assert_eq!(b.spare_capacity(), 5);
        b.compact();
        assert_eq!(b.spare_capacity(), 6);
        b.advance(2);
        assert!(b.is_empty());
        assert_eq!(
            b.spare_capacity(),
            8,
            "an emptied buffer starts over at the front"
        );
    }

    #[test]
    fn vec_round_trip_keeps_bytes_and_uses_spare_capacity() {
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(b"hello");
        let b = Buf::from(v);
        assert_eq!(&b[..], b"hello");
        assert!(b.spare_capacity() >= 11);
        assert_eq!(b.into_vec(), b"hello");
    }

    #[test]
    fn extend_grows_and_fill_from_does_not() {
        let mut b = Buf::with_capacity(4);
        assert_eq!(b.fill_from(b"123456"), 4);
        b.extend_from_slice(b"789");
        assert_eq!(&b[..], b"1234789");
        b.truncate(2);
        assert_eq!(&b[..], b"12");
    }

    #[test]
    #[should_panic(expected = "past the end")]
    fn advance_past_end_panics() {
        Buf::from("ab").advance(3);
    }
}
