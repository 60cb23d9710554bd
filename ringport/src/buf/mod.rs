//! Buffers: the owned [`Buf`] that operations carry, and the [`BufPool`] they are drawn from.

mod owned;
mod pool;

pub use owned::Buf;
pub(crate) use pool::Provider;
pub use pool::{BufPool, MAX_POOL_BUFS};
