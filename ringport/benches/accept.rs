//! The server framework's two accept paths side by side, per backend
//! (`cargo bench -p ringport --bench accept`): each worker accepting on its own `SO_REUSEPORT`
//! listener with a multishot accept ([`AcceptMode::ReusePort`]), against one acceptor worker
//! handing each new socket to a worker with a posted completion ([`AcceptMode::Handoff`]).
//!
//! A two-worker raw echo server; the client is the bench thread with blocking `std` sockets.
//! One iteration is one connection's whole life as a short-lived client sees it: connect, send
//! 64 bytes, read the echo back (verified), and close with a reset (`SO_LINGER` 0, so a long
//! run does not fill the ephemeral port range with `TIME_WAIT` sockets).
//!
//! - `accept_1/<backend>/<mode>`: one connection at a time: the latency the accept path adds.
//! - `accept_burst64/<backend>/<mode>`: 64 connections opened at once, then each echoed and
//!   closed (time per connection): a burst, where the acceptor of hand-off serves every accept
//!   and wakes the other worker, while with `SO_REUSEPORT` both workers accept in parallel.
//!
//! After each mode's runs it prints how the connections were spread over the two workers: the
//! kernel's `SO_REUSEPORT` hash of the 4-tuple against hand-off's round robin.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use ringport::server::{AcceptMode, Echo, Server};
use ringport::{Backend, BackendChoice};
use socket2::SockRef;

mod common;

use common::{MEASURE, WARM_UP, Watchdog, backends};

/// Bytes echoed per connection.
const MSG: usize = 64;
/// Connections opened at once in the burst benchmark.
const BURST: usize = 64;
/// A read that waits longer than this fails the bench instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(10);

fn modes() -> Vec<(AcceptMode, &'static str)> {
    let mut modes = Vec::new();
    if cfg!(target_os = "linux") {
        modes.push((AcceptMode::ReusePort, "reuseport"));
    }
    modes.push((AcceptMode::Handoff, "handoff"));
    modes
}

fn server(backend: Backend, mode: AcceptMode) -> Server {
    Server::builder("127.0.0.1:0".parse().unwrap())
        .backend(BackendChoice::from(backend))
        .workers(2)
        .accept_mode(mode)
        .serve(|_| Echo)
        .unwrap_or_else(|e| panic!("{backend} {mode:?} server: {e}"))
}

fn open(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s
}

/// Sends the message, reads it back whole and checks it.
fn echo(s: &mut TcpStream, msg: &[u8; MSG]) {
    s.write_all(msg).expect("send");
    let mut back = [0u8; MSG];
    s.read_exact(&mut back).expect("echo");
    assert_eq!(&back, msg, "the echo differs from what was sent");
}

/// Closes with a reset: no `TIME_WAIT` left behind.
fn reset(s: TcpStream) {
    SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER");
    drop(s);
}

fn message(i: u64) -> [u8; MSG] {
    let mut m = [0u8; MSG];
    for (k, b) in m.iter_mut().enumerate() {
        *b = (i as u8).wrapping_add(k as u8);
    }
    m[..8].copy_from_slice(&i.to_le_bytes());
    m
}

fn bench(c: &mut Criterion) {
    for backend in backends() {
        for (mode, name) in modes() {
            let server = server(backend, mode);
            let addr = server.local_addr();
            let _watch = Watchdog::new(format!("accept {backend} {name}"));

            let mut g = c.benchmark_group("accept_1");
            g.throughput(Throughput::Elements(1));
            g.bench_function(BenchmarkId::new(backend.to_string(), name), |b| {
                let mut i = 0u64;
                b.iter(|| {
                    i += 1;
                    let mut s = open(addr);
                    echo(&mut s, &message(i));
                    reset(s);
                })
            });
            g.finish();

            let mut g = c.benchmark_group(format!("accept_burst{BURST}"));
            g.throughput(Throughput::Elements(BURST as u64));
            g.bench_function(BenchmarkId::new(backend.to_string(), name), |b| {
                let mut i = 0u64;
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let mut conns: Vec<TcpStream> = (0..BURST).map(|_| open(addr)).collect();
                        for s in &mut conns {
                            i += 1;
                            echo(s, &message(i));
                        }
                        conns.into_iter().for_each(reset);
                    }
                    start.elapsed()
                })
            });
            g.finish();

            let spread: Vec<u64> = server
                .metrics()
                .workers
                .iter()
                .map(|w| w.accepted)
                .collect();
            eprintln!("{backend} {name}: connections accepted per worker {spread:?}");
            server.shutdown();
            server.join().expect("server");
        }
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(WARM_UP)
        .measurement_time(MEASURE)
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
}
