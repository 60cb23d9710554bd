//! ringport: the I/O completion port model (IOCP) as a safe Rust library.
//!
//! A [`Port`] is a kernel queue of *finished* I/O. You hand it an operation together with the
//! buffer it works on ([`Port::submit`] with an [`op`]); the buffer belongs to the port until
//! the operation's [`Completion`] gives it back from [`Port::wait`]. Any thread can post its own
//! completion through a [`Poster`]. This is the model of Windows' completion ports, which the
//! project's IOCP tutorials teach, running on:
//!
//! - **io_uring** on Linux (multishot accept and receive, provided buffer rings, batched
//!   submission);
//! - **epoll** where io_uring is unavailable (readiness turned into completions);
//! - **IOCP** on Windows.
//!
//! The backend is chosen at run time ([`PortBuilder::backend`], `RINGPORT_BACKEND`).
//!
//! ```no_run
//! use std::net::TcpListener;
//! use ringport::{op, Completions, Outcome, Port};
//!
//! # fn main() -> std::io::Result<()> {
//! let mut port = Port::new()?;
//! let listener = TcpListener::bind("127.0.0.1:7000")?;
//! port.associate(&listener)?;
//! port.submit(op::AcceptMulti::new(&listener), 0)?;
//! let mut batch = Completions::default();
//! loop {
//!     port.wait(&mut batch, None)?;
//!     for c in &mut batch {
//!         if let Outcome::Accept(Ok((stream, peer))) = c.outcome {
//!             println!("{peer} connected");
//!             drop(stream);
//!         }
//!     }
//! }
//! # }
//! ```
//!
//! Layers: [`port`](Port) (the port, completions, ids) → [`op`] (one file per operation) →
//! `sys` (the backends, where all `unsafe` lives) ← [`buf`] (owned buffers and pools); on top,
//! [`server`]: worker threads, handlers, codecs, limits, shutdown and metrics.

pub mod buf;
pub mod op;
mod port;
pub mod server;
mod sock;
mod sys;

pub use buf::{Buf, BufPool};
pub use op::{OpKind, Operation};
#[cfg(feature = "fault-injection")]
pub use port::Faults;
pub use port::{
    BACKEND_ENV, Backend, BackendChoice, Completion, Completions, OpId, Outcome, Port, PortBuilder,
    Poster, is_accept_aborted, is_cancelled, is_out_of_buffers,
};
pub use sock::{AsSock, OwnedSock, RawSock};
