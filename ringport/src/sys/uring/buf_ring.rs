//! The provided-buffer ring: where an io_uring port's free pool blocks wait for the kernel.
//!
//! A ring of `io_uring_buf` entries (address, length, buffer id) shared with the kernel. We add
//! free blocks at the tail; a multishot receive takes one from the head when data arrives and
//! names its id in the completion. An idle connection therefore holds no block at all.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;

use crate::buf::Provider;

/// A page-aligned, user-allocated buffer ring (`IORING_REGISTER_PBUF_RING`).
pub(super) struct BufRing {
    base: NonNull<BufRingEntry>,
    map_len: usize,
    entries: u16,
    mask: u16,
    /// Our copy of the tail: entries below it are the kernel's to take.
    tail: u16,
}

// SAFETY: the ring memory is a private anonymous mapping owned by this value alone; it is only
// written through `&mut self` (callers serialise through the pool's lock) and by the kernel.
unsafe impl Send for BufRing {}

impl BufRing {
    /// A ring with room for `count` blocks (rounded up to a power of two, at most 2^15).
    pub(super) fn new(count: usize) -> io::Result<BufRing> {
        let entries = count.next_power_of_two().max(1);
        if entries > 1 << 15 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a provided-buffer ring holds at most 32768 buffers",
            ));
        }
        let map_len = entries * size_of::<BufRingEntry>();
        // SAFETY: an anonymous private mapping; no existing memory is involved. The kernel
        // requires the ring to be page aligned, which mmap guarantees.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(ptr.cast()).expect("mmap never returns null on success");
        Ok(BufRing {
            base,
            map_len,
            entries: entries as u16,
            mask: (entries - 1) as u16,
            tail: 0,
        })
    }

    /// The ring's address, for registration.
    pub(super) fn addr(&self) -> u64 {
        self.base.as_ptr() as u64
    }

    /// Number of entries, for registration.
    pub(super) fn entries(&self) -> u16 {
        self.entries
    }

    fn publish(&self) {
        // SAFETY: `base` is the ring's first entry, whose last 2 bytes are the shared tail
        // field; it is suitably aligned for u16 and lives as long as the mapping.
        let tail =
            unsafe { AtomicU16::from_ptr(BufRingEntry::tail(self.base.as_ptr()).cast_mut()) };
        // Release: the entry written before must be visible to the kernel before the new tail.
        tail.store(self.tail, Ordering::Release);
    }
}

impl Provider for BufRing {
    fn provide(&mut self, id: u16, mem: &mut [u8]) {
        let slot = usize::from(self.tail & self.mask);
        // SAFETY: `slot` is below the number of entries the mapping holds. The kernel only reads
        // entries between its head and our tail, and this slot is beyond the tail until
        // `publish`. The ring holds at least as many entries as the pool has blocks, so a free
        // slot is never one the kernel has not consumed yet.
        let entry = unsafe { &mut *self.base.as_ptr().add(slot) };
        entry.set_addr(mem.as_mut_ptr() as u64);
        entry.set_len(u32::try_from(mem.len()).unwrap_or(u32::MAX));
        entry.set_bid(id);
        self.tail = self.tail.wrapping_add(1);
        self.publish();
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `new` made. The port unregisters the ring before it
        // lets the pool drop this provider, so the kernel no longer reads it.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.map_len) };
    }
}
