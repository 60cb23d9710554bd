//! Buffers: the owned [`Buf`] that operations carry, and the [`BufPool`] they are drawn from.

mod owned;
mod pool;

pub use owned::Buf;
#[cfg_attr(not(target_os = "linux"), allow(unused_imports))] // io_uring only
pub(crate) use pool::Provider;
pub use pool::{BufPool, MAX_POOL_BUFS};
