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
//! Layers, each using only those after it: [`server`] (worker threads, handlers, codecs,
//! limits, shutdown, metrics) → [`port`](Port) (the port and its posters) → `sys` (the
//! backends behind one contract, the table of in-flight ops, fault injection; all `unsafe`
//! lives here) → [`op`] (one file per operation; completions, outcomes, ids) → [`buf`] (owned
//! buffers and pools) and sockets.

#![deny(missing_debug_implementations)]

pub mod buf;
pub mod op;
mod port;
pub mod server;
mod sock;
mod sys;

pub use buf::{Buf, BufPool};
pub use op::{
    Completion, Completions, OpId, OpKind, Operation, Outcome, is_accept_aborted, is_cancelled,
    is_out_of_buffers,
};
pub use port::{Port, PortBuilder, Poster};
pub use sock::{AsSock, OwnedSock, RawSock};
#[cfg(feature = "fault-injection")]
pub use sys::Faults;
pub use sys::{BACKEND_ENV, Backend, BackendChoice};
