//! Hostile and broken clients against the server framework, on every backend: silent and
//! trickling clients, flooders, bad frames in every codec, reset storms and half-closes. In each
//! case the well-behaved clients beside them are served correctly, the attackers are closed (or
//! held) and counted, and the server ends with no connection slot, buffer or byte leaked.

mod common;

use common::eventually;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::pattern_bytes;
use ringport::server::{
    CloseReason, CodecKind, Echo, Limits, Server, ServerBuilder, WorkerMetrics,
};
use ringport::{Backend, Buf};

on_every_backend!(
    silent_clients_are_closed_by_idle_timeout_and_others_served,
    flooders_are_held_within_the_budget_and_others_served,
    bad_frames_in_every_codec_close_only_their_connection,
    reset_storm_leaks_nothing,
    resets_before_accept_are_counted_and_accepting_goes_on,
    half_close_still_gets_every_echo,
);

const PATIENCE: Duration = Duration::from_secs(20);

fn frame(kind: CodecKind, payload: &[u8]) -> Vec<u8> {
    let mut out = Buf::new();
    kind.codec().encode(payload, &mut out).unwrap();
    out.into_vec()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// A well-behaved client: `rounds` request/echo rounds, every byte checked.
fn good_client(addr: SocketAddr, id: u64, rounds: usize) -> Result<(), String> {
    let mut s = connect(addr);
    for r in 0..rounds {
        let payload = pattern_bytes(id * 1_000_000 + r as u64 * 100, 100 + r % 200);
        let wire = frame(CodecKind::Len32, &payload);
        s.write_all(&wire)
            .map_err(|e| format!("client {id}: write: {e}"))?;
        let mut back = vec![0u8; wire.len()];
        s.read_exact(&mut back)
            .map_err(|e| format!("client {id} round {r}: {e}"))?;
        if back != wire {
            return Err(format!("client {id} round {r}: wrong echo"));
        }
    }
    Ok(())
}

fn run_good_clients(addr: SocketAddr, n: u64, rounds: usize) {
    let clients: Vec<_> = (0..n)
        .map(|id| std::thread::spawn(move || good_client(addr, id, rounds)))
        .collect();
    for c in clients {
        c.join().unwrap().unwrap();
    }
}

/// A server on a free loopback port with two workers on backend `b`: every test here starts
/// from this and adds its codec and limits.
fn two_workers(b: Backend) -> ServerBuilder {
    Server::builder("127.0.0.1:0".parse().unwrap())
        .backend(b)
        .workers(2)
}

/// Shuts down and checks nothing is left: no connection, pool buffer or buffered byte.
fn nothing_leaked(server: Server) -> WorkerMetrics {
    server.shutdown();
    let m = server.join().unwrap().total();
    assert_eq!(m.active, 0, "{m:?}");
    assert_eq!(m.pool_in_use, 0, "pool buffers leaked: {m:?}");
    assert_eq!(m.buffered_bytes, 0, "buffered bytes leaked: {m:?}");
    assert_eq!(
        m.accepted,
        m.closed_total(),
        "every accepted connection closed: {m:?}"
    );
    m
}

fn silent_clients_are_closed_by_idle_timeout_and_others_served(b: Backend) {
    const SILENT: usize = 400;
    const TRICKLE: usize = 40;
    let server = two_workers(b)
        .codec_kind(CodecKind::Len32)
        .limits(Limits {
            idle_timeout: Some(Duration::from_millis(400)),
            ..Limits::default()
        })
        .serve(|_| Echo)
        .unwrap();
    let addr = server.local_addr();
    let silent: Vec<TcpStream> = (0..SILENT).map(|_| connect(addr)).collect();
    // Tricklers send one byte of a 1 MiB frame every 100 ms: never silent, never a whole frame,
    // so never progress.
    let stop = Arc::new(AtomicBool::new(false));
    let tricklers: Vec<_> = (0..TRICKLE)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut s = connect(addr);
                let header = (1u32 << 20).to_be_bytes();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    if s.write_all(&header[i % 4..i % 4 + 1]).is_err() {
                        return;
                    }
                    i += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        })
        .collect();
    run_good_clients(addr, 20, 50);
    eventually(
        &server,
        "silent and trickling clients closed by the idle timeout",
        |m| m.closed_by(CloseReason::IdleTimeout) >= (SILENT + TRICKLE) as u64,
    );
    // The well-behaved keep being served after the sweep, too.
    run_good_clients(addr, 20, 10);
    stop.store(true, Ordering::Relaxed);
    for t in tricklers {
        t.join().unwrap();
    }
    drop(silent);
    let m = nothing_leaked(server);
    assert!(
        m.closed_by(CloseReason::IdleTimeout) >= (SILENT + TRICKLE) as u64,
        "{m:?}"
    );
}

fn flooders_are_held_within_the_budget_and_others_served(b: Backend) {
    const BUDGET: usize = 8 << 20;
    let server = two_workers(b)
        .codec_kind(CodecKind::Len32)
        .recv_buffer_size(4096)
        .limits(Limits {
            memory_budget: BUDGET,
            write_high_water: 32 << 10,
            max_queued_write: 1 << 20,
            max_frame: 64 << 10,
            ..Limits::default()
        })
        .serve(|_| Echo)
        .unwrap();
    let addr = server.local_addr();
    // Four flooders send valid frames as fast as they can and never read.
    let stop = Arc::new(AtomicBool::new(false));
    let flooders: Vec<_> = (0..4)
        .map(|i| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut s = connect(addr);
                s.set_write_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                let wire = frame(CodecKind::Len32, &pattern_bytes(i, 16 << 10));
                let mut sent = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    match s.write(&wire) {
                        Ok(n) => sent += n as u64,
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                            ) => {}
                        Err(e) => panic!("a flooder was dropped instead of held: {e}"),
                    }
                }
                (s, sent)
            })
        })
        .collect();
    let mut peak = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(800) {
        peak = peak.max(server.metrics().total().buffered_bytes);
        std::thread::sleep(Duration::from_millis(10));
    }
    run_good_clients(addr, 16, 40);
    stop.store(true, Ordering::Relaxed);
    let flooded: Vec<(TcpStream, u64)> = flooders.into_iter().map(|f| f.join().unwrap()).collect();
    let m = server.metrics().total();
    assert!(
        m.backpressure_pauses >= 4,
        "every flooder was paused: {m:?}"
    );
    assert_eq!(
        m.closed_total(),
        16,
        "only the good clients left, flooders held: {m:?}"
    );
    let pools = m.pool_capacity * 4096;
    assert!(
        peak as usize + pools as usize <= BUDGET,
        "buffered {peak} + pools {pools} over the {BUDGET}-byte budget"
    );
    assert!(flooded.iter().all(|(_, sent)| *sent > 0));
    drop(flooded);
    nothing_leaked(server);
}

fn bad_frames_in_every_codec_close_only_their_connection(b: Backend) {
    for kind in [CodecKind::Len16, CodecKind::Len32, CodecKind::Line] {
        let server = two_workers(b)
            .codec_kind(kind)
            .limits(Limits {
                max_frame: 1000,
                ..Limits::default()
            })
            .serve(|_| Echo)
            .unwrap();
        let addr = server.local_addr();
        let mut good = connect(addr);
        let wire = frame(kind, b"i am well behaved");
        let mut garbage: Vec<Vec<u8>> = vec![
            // Oversize: a header announcing too much, or a line too long.
            match kind {
                CodecKind::Len16 => 5000u16.to_be_bytes().to_vec(),
                CodecKind::Len32 => u32::MAX.to_be_bytes().to_vec(),
                _ => vec![b'a'; 2000],
            },
            // Random bytes.
            pattern_bytes(99, 3000),
        ];
        // Truncated: half a frame, then the client leaves.
        let long = frame(kind, &[b'z'; 800]);
        garbage.push(long[..long.len() / 2].to_vec());
        let bad: Vec<TcpStream> = garbage
            .iter()
            .map(|g| {
                let mut s = connect(addr);
                let _ = s.write_all(g);
                s
            })
            .collect();
        for _ in 0..10 {
            good.write_all(&wire).unwrap();
            let mut back = vec![0u8; wire.len()];
            good.read_exact(&mut back).unwrap();
            assert_eq!(back, wire);
        }
        // The oversize one is closed by the server while the good client works.
        eventually(&server, "oversize frame counted", |m| {
            m.closed_by(CloseReason::FrameTooLarge) >= 1
        });
        // Every bad client has been taken in (a busy machine may be slow to run the worker
        // that accepts them); otherwise "only the good one left" below could hold before they
        // arrive, and they would be refused by the shutdown instead.
        eventually(&server, "every client accepted", |m| m.accepted == 4);
        // The rest end when they leave: mid-frame (a truncated frame), or with echoes unread
        // (their kernel resets the connection). Either way only the good client stays.
        drop(bad);
        eventually(&server, "only the good client left", |m| m.active == 1);
        for _ in 0..3 {
            good.write_all(&wire).unwrap();
            let mut back = vec![0u8; wire.len()];
            good.read_exact(&mut back).unwrap();
            assert_eq!(back, wire);
        }
        drop(good);
        let m = nothing_leaked(server);
        assert_eq!(m.accepted, 4, "{kind}: {m:?}");
    }
}

fn reset_storm_leaks_nothing(b: Backend) {
    let server = two_workers(b)
        .codec_kind(CodecKind::Len32)
        .serve(|_| Echo)
        .unwrap();
    let addr = server.local_addr();
    let storm: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..60u64 {
                    let mut s = connect(addr);
                    socket2::SockRef::from(&s)
                        .set_linger(Some(Duration::ZERO))
                        .unwrap();
                    // Reset at different moments: before sending, mid-frame, after a big
                    // send the server is still echoing, after reading part of the echo.
                    let big = frame(CodecKind::Len32, &pattern_bytes(t * 1000 + i, 200_000));
                    match i % 4 {
                        0 => {}
                        1 => {
                            let _ = s.write_all(&big[..big.len() / 3]);
                        }
                        2 => {
                            let _ = s.write_all(&big);
                        }
                        _ => {
                            let _ = s.write_all(&big);
                            let mut some = [0u8; 1000];
                            let _ = s.read(&mut some);
                        }
                    }
                    drop(s); // RST
                }
            })
        })
        .collect();
    run_good_clients(addr, 8, 30);
    for t in storm {
        t.join().unwrap();
    }
    eventually(&server, "every reset connection gone", |m| m.active == 0);
    // A connection reset while still in the accept queue is counted as aborted before accept;
    // every other one was accepted and closed, and nothing leaked.
    let m = nothing_leaked(server);
    assert!(m.accepted >= 8, "{m:?}");
    every_connection_counted(b, &m, 8 * 60 + 8);
    assert!(
        m.closed_by(CloseReason::Reset) > 0,
        "resets were counted: {m:?}"
    );
}

/// Every connection the clients made is in the metrics: accepted, or reset before it could be.
/// (Windows' own stack may drop a connection reset in the listen queue before any AcceptEx
/// sees it; under Wine, as on Linux, it is handed out.)
fn every_connection_counted(b: Backend, m: &WorkerMetrics, made: u64) {
    let counted = m.accepted + m.accept_aborted + m.rejected;
    if cfg!(windows) && b != Backend::Epoll {
        assert!(counted <= made, "{m:?}");
    } else {
        assert_eq!(counted, made, "every connection counted once: {m:?}");
    }
}

/// 1,000 clients connect, send and reset (SO_LINGER 0) while the worker is busy, so that all
/// of them are reset before they are accepted: each is counted (aborted before accept, or
/// accepted and closed by the reset), accepting goes on without a back-off, and the next
/// client is served.
fn resets_before_accept_are_counted_and_accepting_goes_on(b: Backend) {
    const RESET: u64 = 1000;
    let (stalled_tx, stalled_rx) = std::sync::mpsc::sync_channel::<()>(1);
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let go_rx = std::sync::Mutex::new(Some(go_rx));
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .backend(b)
        .workers(1)
        .codec_kind(CodecKind::Len32)
        .serve(move |_| {
            // The first connection holds the worker until the storm is over.
            if let Some(go) = go_rx.lock().unwrap().take() {
                stalled_tx.send(()).unwrap();
                let _ = go.recv_timeout(PATIENCE);
            }
            Echo
        })
        .unwrap();
    let addr = server.local_addr();
    let staller = connect(addr);
    stalled_rx.recv_timeout(PATIENCE).unwrap();
    for _ in 0..RESET {
        let mut s = connect(addr);
        let _ = s.write_all(&frame(CodecKind::Len32, b"hello, and goodbye"));
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(s); // RST, while the connection waits in the listen queue
    }
    std::thread::sleep(Duration::from_millis(100));
    go_tx.send(()).unwrap();
    run_good_clients(addr, 4, 10);
    drop(staller);
    // The good clients queued behind the resets: once they are served and gone, every reset
    // one has been through the accept.
    eventually(&server, "every connection gone", |m| {
        m.active == 0 && m.closed_by(CloseReason::PeerClosed) >= 5
    });
    let m = nothing_leaked(server);
    every_connection_counted(b, &m, RESET + 5);
    if b == Backend::Uring {
        assert_eq!(m.accept_aborted, RESET, "reported by the accept: {m:?}");
    }
}

fn half_close_still_gets_every_echo(b: Backend) {
    let server = two_workers(b)
        .codec_kind(CodecKind::Len32)
        .serve(|_| Echo)
        .unwrap();
    let addr = server.local_addr();
    let clients: Vec<_> = (0..8u64)
        .map(|c| {
            std::thread::spawn(move || {
                let mut s = connect(addr);
                let mut wire = Vec::new();
                for i in 0..50 {
                    wire.extend_from_slice(&frame(
                        CodecKind::Len32,
                        &pattern_bytes(c * 10_000 + i * 100, 20_000),
                    ));
                }
                let reader = {
                    let mut r = s.try_clone().unwrap();
                    let len = wire.len();
                    std::thread::spawn(move || {
                        let mut back = Vec::with_capacity(len);
                        r.read_to_end(&mut back).unwrap();
                        back
                    })
                };
                s.write_all(&wire).unwrap();
                // No more from us; the server must still send every echo, then close.
                s.shutdown(Shutdown::Write).unwrap();
                assert_eq!(reader.join().unwrap(), wire, "client {c}");
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let m = nothing_leaked(server);
    assert_eq!(m.closed_by(CloseReason::PeerClosed), 8, "{m:?}");
}
