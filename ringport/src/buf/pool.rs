//! [`BufPool`]: fixed-size reusable buffers (the tutorials' memory pool).

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::owned::Buf;

/// The most blocks one pool can hold: buffer ids are 16-bit, and io_uring's provided-buffer ring
/// takes at most 2^15 entries.
pub const MAX_POOL_BUFS: usize = 1 << 15;

/// A pool of fixed-size byte blocks, handed out as [`Buf`]s and taken back when they drop.
///
/// The tutorials' servers allocate a buffer per operation and free it on completion; a pool
/// makes that a free-list pop and push, and bounds the memory a server spends on buffers.
///
/// Every [`Port`](crate::Port) owns one pool that feeds its multishot receives
/// ([`op::RecvMulti`](crate::op::RecvMulti)): a connection takes a block only when data arrives
/// for it, so an idle connection holds none. On io_uring the free blocks of that pool sit in a
/// provided-buffer ring where the kernel picks them itself; [`get`](BufPool::get) then returns
/// `None`, because no block is free in user space. Create a separate pool for buffers you fill
/// yourself.
///
/// The pool is shared (`Clone` is cheap) and buffers may be dropped on any thread.
#[derive(Clone)]
pub struct BufPool {
    inner: Arc<PoolInner>,
}

/// What every handle of one pool (and every buffer it lent) points to: its blocks and counts.
pub(crate) struct PoolInner {
    buf_size: usize,
    count: usize,
    in_use: AtomicUsize,
    state: Mutex<State>,
}

struct State {
    /// Block `id` lives in `slots[id]` while it is free (or handed to the kernel's ring).
    slots: Vec<Option<Box<[u8]>>>,
    /// Ids of free blocks, when no provider takes them.
    free: Vec<u16>,
    /// Where free blocks go instead of `free` while a kernel picks them itself.
    provider: Option<Box<dyn Provider>>,
}

/// A consumer of free blocks that the kernel chooses from (io_uring's provided-buffer ring).
pub(crate) trait Provider: Send {
    /// Hands block `id`, whose memory is `mem`, to the kernel. The block's memory stays where it
    /// is (it lives in the pool's slot) until the kernel names `id` in a completion.
    fn provide(&mut self, id: u16, mem: &mut [u8]);
}

/// Where a pooled [`Buf`] goes back to.
pub(crate) struct Home {
    inner: Arc<PoolInner>,
    id: u16,
}

impl Home {
    pub(super) fn recycle(self, mut mem: Box<[u8]>) {
        let mut state = self.inner.lock();
        match state.provider.as_mut() {
            Some(provider) => provider.provide(self.id, &mut mem),
            None => state.free.push(self.id),
        }
        state.slots[self.id as usize] = Some(mem);
        drop(state);
        self.inner.in_use.fetch_sub(1, Ordering::Release);
    }
}

impl PoolInner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state inconsistent (every update is
        // a single push or slot write), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl BufPool {
    /// A pool of `count` blocks of `buf_size` bytes each.
    ///
    /// # Panics
    /// If `buf_size` is zero, or `count` is zero or more than [`MAX_POOL_BUFS`].
    pub fn new(buf_size: usize, count: usize) -> BufPool {
        assert!(buf_size > 0, "BufPool buffer size must be positive");
        assert!(
            (1..=MAX_POOL_BUFS).contains(&count),
            "BufPool count must be between 1 and {MAX_POOL_BUFS}, got {count}"
        );
        let slots = (0..count)
            .map(|_| Some(vec![0u8; buf_size].into_boxed_slice()))
            .collect();
        let free = (0..count as u16).rev().collect();
        BufPool {
            inner: Arc::new(PoolInner {
                buf_size,
                count,
                in_use: AtomicUsize::new(0),
                state: Mutex::new(State {
                    slots,
                    free,
                    provider: None,
                }),
            }),
        }
    }

    /// Takes a free block as an empty `Buf`, or `None` if every block is in use (or, on an
    /// io_uring port's own pool, waiting in the kernel's ring).
    pub fn get(&self) -> Option<Buf> {
        let mut state = self.inner.lock();
        let id = state.free.pop()?;
        let mem = state.slots[id as usize]
            .take()
            .expect("a free pool block has memory");
        drop(state);
        Some(self.hand_out(id, mem, 0))
    }

    /// Size in bytes of every block.
    pub fn buf_size(&self) -> usize {
        self.inner.buf_size
    }

    /// Number of blocks in the pool.
    pub fn capacity(&self) -> usize {
        self.inner.count
    }

    /// Blocks currently held as `Buf`s (in completions, in operations, or by your code).
    pub fn in_use(&self) -> usize {
        self.inner.in_use.load(Ordering::Acquire)
    }

    /// Blocks free to be used now (by [`get`](BufPool::get) or by the kernel).
    pub fn available(&self) -> usize {
        self.capacity() - self.in_use()
    }

    /// Bytes of block memory the pool owns (`buf_size * capacity`).
    pub fn memory(&self) -> usize {
        self.inner.buf_size * self.inner.count
    }

    fn hand_out(&self, id: u16, mem: Box<[u8]>, filled: usize) -> Buf {
        self.inner.in_use.fetch_add(1, Ordering::AcqRel);
        Buf::from_mem(
            mem,
            filled,
            Some(Home {
                inner: self.inner.clone(),
                id,
            }),
        )
    }

    /// Lets `provider` (a kernel buffer ring) own every free block from now on.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))] // io_uring only
    pub(crate) fn attach(&self, mut provider: Box<dyn Provider>) {
        let mut state = self.inner.lock();
        let free = std::mem::take(&mut state.free);
        for id in free {
            let mem = state.slots[id as usize]
                .as_mut()
                .expect("a free pool block has memory");
            provider.provide(id, mem);
        }
        state.provider = Some(provider);
    }

    /// Takes the provider away again: free blocks go back to the user-space free list.
    ///
    /// Call only once the kernel can no longer pick blocks (its ring is unregistered).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))] // io_uring only
    pub(crate) fn detach(&self) {
        let mut state = self.inner.lock();
        if state.provider.take().is_none() {
            return;
        }
        let free: Vec<u16> = (0..self.inner.count as u16)
            .filter(|&id| state.slots[id as usize].is_some())
            .collect();
        state.free = free;
    }

    /// Turns block `id`, which the kernel filled with `len` bytes, into a `Buf`.
    ///
    /// Returns `None` if the block is not where the kernel said it was (a bad id).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))] // io_uring only
    pub(crate) fn take_provided(&self, id: u16, len: usize) -> Option<Buf> {
        let mem = self.inner.lock().slots.get_mut(id as usize)?.take()?;
        let len = len.min(mem.len());
        Some(self.hand_out(id, mem, len))
    }

    /// Whether `self` and `other` are the same pool.
    pub fn same_pool(&self, other: &BufPool) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl fmt::Debug for BufPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufPool")
            .field("buf_size", &self.buf_size())
            .field("capacity", &self.capacity())
            .field("in_use", &self.in_use())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_come_back_on_drop() {
        let pool = BufPool::new(16, 2);
        let a = pool.get().unwrap();
        let b = pool.get().unwrap();
        assert!(pool.get().is_none());
        assert_eq!(pool.in_use(), 2);
        assert_eq!(a.capacity(), 16);
        drop(a);
        assert_eq!(pool.in_use(), 1);
        let c = pool.get().unwrap();
        drop((b, c));
        assert_eq!(pool.in_use(), 0);
        assert_eq!(pool.available(), 2);
    }

    #[test]
    fn growing_a_pooled_buf_returns_its_block() {
        let pool = BufPool::new(4, 1);
        let mut b = pool.get().unwrap();
        b.extend_from_slice(b"abcdefgh");
        assert!(!b.is_pooled());
        assert_eq!(pool.in_use(), 0);
        assert_eq!(&b[..], b"abcdefgh");
    }

    #[test]
    fn buffers_return_from_other_threads() {
        let pool = BufPool::new(8, 64);
        let bufs: Vec<Buf> = (0..64).map(|_| pool.get().unwrap()).collect();
        std::thread::spawn(move || drop(bufs)).join().unwrap();
        assert_eq!(pool.in_use(), 0);
    }

    struct Recorder(Arc<Mutex<Vec<u16>>>);
    impl Provider for Recorder {
        fn provide(&mut self, id: u16, _mem: &mut [u8]) {
            self.0.lock().unwrap().push(id);
        }
    }

    #[test]
    fn provider_gets_free_and_recycled_blocks() {
        let pool = BufPool::new(8, 3);
        let held = pool.get().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        pool.attach(Box::new(Recorder(seen.clone())));
        assert_eq!(seen.lock().unwrap().len(), 2);
        assert!(pool.get().is_none(), "free blocks belong to the provider");
        let id = seen.lock().unwrap()[0];
        let filled = pool.take_provided(id, 5).unwrap();
        assert_eq!(filled.len(), 5);
        assert!(
            pool.take_provided(id, 5).is_none(),
            "a block is handed out once"
        );
        drop(filled);
        drop(held);
        assert_eq!(seen.lock().unwrap().len(), 4);
        pool.detach();
        assert_eq!(pool.available(), 3);
        assert!(pool.get().is_some());
    }
}
