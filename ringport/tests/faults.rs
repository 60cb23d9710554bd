//! Property tests over random fault schedules (the `fault-injection` layer): whatever fails —
//! resets, short sends and receives, deferred completions, pool and descriptor exhaustion —
//! each connection either gets every byte back in order or is closed with a counted reason,
//! never silent loss, reorder or duplication, and the server ends with nothing leaked.

mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use proptest::prelude::*;
use ringport::server::{CloseReason, CodecKind, Echo, Server};
use ringport::{Backend, Faults};

/// How a client's conversation ended.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    /// Every byte came back.
    Complete,
    /// The server closed or reset the connection first (after `got` bytes, all correct).
    ClosedByServer { got: usize },
}

/// Sends `frames` (len32-framed) in bursts of a few, reading each burst's echo before the next
/// — so traffic keeps arriving after a fault — and checks every byte against what was sent.
fn converse(addr: SocketAddr, frames: &[Vec<u8>]) -> Result<Ending, String> {
    let mut wire = Vec::new();
    let mut burst_ends = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        wire.extend_from_slice(&(f.len() as u32).to_be_bytes());
        wire.extend_from_slice(f);
        if i % 3 == 2 || i + 1 == frames.len() {
            burst_ends.push(wire.len());
        }
    }
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    // An echo server on loopback answers in microseconds: two quiet seconds mean it stopped.
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut got = Vec::with_capacity(wire.len());
    let mut sent = 0;
    let mut chunk = [0u8; 8192];
    for end in burst_ends {
        // The server may close us at any point: a failed write just ends the sending.
        if s.write_all(&wire[sent..end]).is_err() {
            break;
        }
        sent = end;
        while got.len() < sent {
            match s.read(&mut chunk) {
                Ok(0) => return finish(&got, &wire),
                Ok(n) => {
                    got.extend_from_slice(&chunk[..n]);
                    if got.len() > wire.len() || got[..] != wire[..got.len()] {
                        let at = got.iter().zip(&wire).position(|(a, b)| a != b);
                        return Err(format!(
                            "echo differs from what was sent at byte {at:?} \
                             (loss, reorder or duplication)"
                        ));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return finish(&got, &wire);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(format!(
                        "the server kept the connection open but stopped echoing at {} of {} \
                         bytes",
                        got.len(),
                        wire.len()
                    ));
                }
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }
    finish(&got, &wire)
}

fn finish(got: &[u8], wire: &[u8]) -> Result<Ending, String> {
    Ok(if got.len() == wire.len() {
        Ending::Complete
    } else {
        Ending::ClosedByServer { got: got.len() }
    })
}

/// A two-worker, length-prefixed echo server whose ports inject `faults`.
fn faulty_echo_server(backend: Backend, faults: Faults) -> Server {
    Server::builder("127.0.0.1:0".parse().unwrap())
        .backend(backend)
        .workers(2)
        .codec_kind(CodecKind::Len32)
        .faults(faults)
        .serve(|_| Echo)
        .unwrap()
}

fn run(backend: Backend, faults: Faults, traffic: Vec<Vec<Vec<u8>>>) -> Result<(), TestCaseError> {
    let server = faulty_echo_server(backend, faults);
    let addr = server.local_addr();
    let clients: Vec<_> = traffic
        .into_iter()
        .map(|frames| std::thread::spawn(move || converse(addr, &frames)))
        .collect();
    let results: Vec<Result<Ending, String>> =
        clients.into_iter().map(|c| c.join().unwrap()).collect();
    let clients = results.len() as u64;
    server.shutdown();
    let m = server
        .join()
        .map_err(|e| TestCaseError::fail(e.to_string()))?
        .total();
    for (i, r) in results.iter().enumerate() {
        prop_assert!(r.is_ok(), "client {i}: {}", r.as_ref().unwrap_err());
    }
    // Every connection is accounted for, and nothing is left behind.
    prop_assert_eq!(m.accepted, clients, "{:?}", m);
    prop_assert_eq!(m.closed_total(), clients, "{:?}", m);
    prop_assert_eq!(m.active, 0);
    prop_assert_eq!(m.pool_in_use, 0, "pool buffers leaked: {:?}", m);
    prop_assert_eq!(m.buffered_bytes, 0, "buffered bytes leaked: {:?}", m);
    let cut_short = results
        .iter()
        .filter(|r| matches!(r, Ok(Ending::ClosedByServer { .. })))
        .count() as u64;
    let server_closes = m.closed_total()
        - m.closed_by(CloseReason::PeerClosed)
        - m.closed_by(CloseReason::Shutdown);
    prop_assert!(
        cut_short <= server_closes,
        "{cut_short} clients were cut short but the server counted {server_closes} closes: {m:?}"
    );
    Ok(())
}

fn faults() -> impl Strategy<Value = Faults> {
    let rate = || prop_oneof![Just(0.0), 0.0..0.2f64];
    (
        any::<u64>(),
        (rate(), rate(), rate()),
        (rate(), rate(), rate()),
    )
        .prop_map(
            |(
                seed,
                (reset, short_send, short_recv),
                (would_block, no_buffers, accept_exhausted),
            )| {
                Faults {
                    seed,
                    reset: reset / 4.0, // resets end connections: keep some alive
                    short_send: short_send / 4.0,
                    short_recv,
                    would_block,
                    no_buffers,
                    accept_exhausted,
                }
            },
        )
}

fn traffic() -> impl Strategy<Value = Vec<Vec<Vec<u8>>>> {
    prop::collection::vec(
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..3000), 1..24),
        1..7,
    )
}

macro_rules! fault_property {
    ($name:ident, $backend:expr) => {
        proptest! {
            #![proptest_config(ProptestConfig {
                cases: 24,
                failure_persistence: None,
                // A failing case stalls for seconds: shrink briefly, report the seed.
                max_shrink_iters: 16,
                ..ProptestConfig::default()
            })]
            #[test]
            fn $name(faults in faults(), traffic in traffic()) {
                run($backend, faults, traffic)?;
            }
        }
    };
}

#[cfg(target_os = "linux")]
fault_property!(uring_every_byte_or_a_counted_close, Backend::Uring);
#[cfg(unix)]
fault_property!(epoll_every_byte_or_a_counted_close, Backend::Epoll);
#[cfg(windows)]
fault_property!(iocp_every_byte_or_a_counted_close, Backend::Iocp);

/// The same conversation with every fault at full rate except resets: the server must still
/// deliver every byte (split receives, deferrals, pool and accept exhaustion lose nothing).
#[test]
fn lossless_faults_at_full_rate_lose_nothing() {
    for &backend in Backend::compiled() {
        let faults = Faults {
            short_recv: 1.0,
            would_block: 0.5,
            no_buffers: 0.5,
            accept_exhausted: 1.0,
            ..Faults::seeded(7)
        };
        let frames: Vec<Vec<u8>> = (0..40u32)
            .map(|i| common::pattern_bytes(u64::from(i) * 1000, 100 + i as usize * 37))
            .collect();
        let server = faulty_echo_server(backend, faults);
        let addr = server.local_addr();
        let conversations: Vec<_> = (0..4)
            .map(|_| {
                let frames = frames.clone();
                std::thread::spawn(move || converse(addr, &frames))
            })
            .collect();
        for c in conversations {
            assert_eq!(c.join().unwrap(), Ok(Ending::Complete), "{backend}");
        }
        server.shutdown();
        let m = server.join().unwrap().total();
        assert_eq!(
            (m.active, m.pool_in_use, m.buffered_bytes),
            (0, 0, 0),
            "{m:?}"
        );
    }
}
