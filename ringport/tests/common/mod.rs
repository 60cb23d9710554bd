//! Helpers for the behaviour suite: a port with a bounded wait, loopback sockets.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ringport::{Backend, Completion, Completions, Outcome, Port, PortBuilder, op};
use socket2::{Domain, Socket, Type};

/// How long any single expected completion may take before the test fails (instead of hanging).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Runs each named test body once per backend this build has, as `<backend>::<name>`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        #[cfg(target_os = "linux")]
        mod uring {
            $( #[test] fn $name() { super::$name(ringport::Backend::Uring) } )*
        }
        #[cfg(unix)]
        mod epoll {
            $( #[test] fn $name() { super::$name(ringport::Backend::Epoll) } )*
        }
        #[cfg(windows)]
        mod iocp {
            $( #[test] fn $name() { super::$name(ringport::Backend::Iocp) } )*
        }
    };
}

/// A port on one backend, with a batch and a queue of completions not yet asked for.
pub struct Harness {
    pub port: Port,
    batch: Completions,
    pending: VecDeque<Completion>,
}

impl Harness {
    pub fn new(backend: Backend) -> Harness {
        Harness::with(Port::builder().backend(backend))
    }

    pub fn with(builder: PortBuilder) -> Harness {
        let port = builder.build().expect("port builds on this backend");
        Harness {
            port,
            batch: Completions::with_capacity(64),
            pending: VecDeque::new(),
        }
    }

    /// The next completion, in arrival order; fails the test after [`PATIENCE`].
    pub fn next(&mut self) -> Completion {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(c) = self.pending.pop_front() {
                return c;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no completion within {PATIENCE:?}");
            self.port.wait(&mut self.batch, Some(left)).expect("wait");
            self.pending.extend(self.batch.drain());
        }
    }

    /// The next completion carrying `token`; others are kept for later.
    pub fn next_for(&mut self, token: u64) -> Completion {
        if let Some(i) = self.pending.iter().position(|c| c.token == token) {
            return self.pending.remove(i).unwrap();
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no completion for token {token} within {PATIENCE:?}"
            );
            self.port.wait(&mut self.batch, Some(left)).expect("wait");
            let mut found = None;
            for c in self.batch.drain() {
                if found.is_none() && c.token == token {
                    found = Some(c);
                } else {
                    self.pending.push_back(c);
                }
            }
            if let Some(c) = found {
                return c;
            }
        }
    }

    /// Collects everything that arrives within `d` (for asserting that nothing more comes).
    pub fn drain_for(&mut self, d: Duration) -> Vec<Completion> {
        let deadline = Instant::now() + d;
        let mut out: Vec<Completion> = self.pending.drain(..).collect();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return out;
            }
            self.port.wait(&mut self.batch, Some(left)).expect("wait");
            out.extend(self.batch.drain());
        }
    }

    /// A connected pair made through the port: (client, server), both non-blocking.
    pub fn pair(&mut self, listener: &TcpListener) -> (TcpStream, TcpStream) {
        let addr = listener.local_addr().unwrap();
        self.port
            .submit(op::Accept::new(listener), u64::MAX - 1)
            .unwrap();
        self.port
            .submit(op::Connect::new(addr).unwrap(), u64::MAX - 2)
            .unwrap();
        let server = match self.next_for(u64::MAX - 1).outcome {
            Outcome::Accept(Ok((s, _))) => s,
            other => panic!("accept failed: {other:?}"),
        };
        let client = match self.next_for(u64::MAX - 2).outcome {
            Outcome::Connect(Ok(s)) => s,
            other => panic!("connect failed: {other:?}"),
        };
        (client, server)
    }
}

/// A loopback listener with a deep accept backlog, associated with `port`.
pub fn listener(port: &mut Port) -> TcpListener {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    sock.set_reuse_address(true).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.listen(4096).unwrap();
    let l: TcpListener = sock.into();
    port.associate(&l).unwrap();
    l
}

/// The byte at position `i` of the test pattern (a sequence that catches reorder and loss).
pub fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// `len` bytes of the pattern starting at offset `from`.
pub fn pattern_bytes(from: u64, len: usize) -> Vec<u8> {
    (from..from + len as u64).map(pattern).collect()
}

/// Makes `stream` reset (RST) the connection when dropped.
pub fn reset_on_drop(stream: &TcpStream) -> io::Result<()> {
    socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO))
}

/// Waits until the server's total counters satisfy `f`; fails the test after [`PATIENCE`] with
/// `what` and the counters seen last.
pub fn eventually(
    server: &ringport::server::Server,
    what: &str,
    f: impl Fn(&ringport::server::WorkerMetrics) -> bool,
) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let m = server.metrics().total();
        if f(&m) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {m:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
