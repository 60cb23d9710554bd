//! The server framework on real sockets over loopback, on every backend: codecs, reassembly,
//! limits, backpressure, timers, shutdown.

mod common;

use common::eventually;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::pattern_bytes;
use ringport::server::{
    AcceptMode, AfterFin, CloseReason, CodecKind, Ctx, Echo, Handler, Limits, Server, ServerBuilder,
};
use ringport::{Backend, Buf, Completions, Outcome, Port, op};

on_every_backend!(
    echo_with_every_codec,
    echo_with_handoff_accept,
    thousand_concurrent_clients_every_byte_verified,
    frames_split_at_every_byte_boundary,
    sixty_four_frames_in_one_write,
    oversize_frame_closes_only_that_client,
    malformed_and_truncated_frames_are_counted,
    frames_before_a_truncated_end_are_answered_in_every_codec,
    frames_held_by_backpressure_at_the_end_are_all_answered,
    idle_timeout_closes_silent_clients_only,
    max_connections_enforced_while_others_work,
    client_that_never_reads_is_held_by_backpressure,
    handler_timers_drain_and_graceful_close,
    shutdown_closes_everyone_and_counts_it,
    a_handler_keeps_writing_after_the_peers_fin,
    the_server_shuts_its_side_and_keeps_reading,
);

const PATIENCE: Duration = Duration::from_secs(20);

fn builder(b: Backend) -> ServerBuilder {
    Server::builder("127.0.0.1:0".parse().unwrap())
        .backend(b)
        .workers(2)
}

fn client(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

fn frame(kind: CodecKind, payload: &[u8]) -> Vec<u8> {
    let mut out = Buf::new();
    kind.codec().encode(payload, &mut out).unwrap();
    out.into_vec()
}

/// Reads until the peer closes or resets; true if it did within the patience.
fn closed_by_peer(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
            Err(e) => panic!("expected the server to close: {e}"),
        }
    }
}

fn echo_round(s: &mut TcpStream, kind: CodecKind, payload: &[u8]) {
    let wire = frame(kind, payload);
    s.write_all(&wire).unwrap();
    let mut back = vec![0u8; wire.len()];
    s.read_exact(&mut back).unwrap();
    assert_eq!(back, wire, "{kind} echo");
}

fn echo_with_every_codec(b: Backend) {
    for kind in CodecKind::ALL {
        let server = builder(b).codec_kind(kind).serve(|_| Echo).unwrap();
        let mut s = client(server.local_addr());
        for payload in [
            &b"hello"[..],
            b"",
            b"a somewhat longer payload",
            &[0xffu8; 3000],
        ] {
            if kind == CodecKind::Raw && payload.is_empty() {
                continue; // raw has no empty frames
            }
            echo_round(&mut s, kind, payload);
        }
        drop(s);
        eventually(&server, "peer close counted", |m| {
            m.closed_by(CloseReason::PeerClosed) == 1
        });
    }
}

fn echo_with_handoff_accept(b: Backend) {
    let server = builder(b)
        .workers(3)
        .accept_mode(AcceptMode::Handoff)
        .codec_kind(CodecKind::Line)
        .serve(|_| Echo)
        .unwrap();
    let mut clients: Vec<TcpStream> = (0..9).map(|_| client(server.local_addr())).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        echo_round(c, CodecKind::Line, format!("client {i}").as_bytes());
    }
    let m = server.metrics();
    assert_eq!(m.total().accepted, 9);
    assert!(
        m.workers.iter().all(|w| w.accepted == 3),
        "handed out in turn: {:?}",
        m.workers.iter().map(|w| w.accepted).collect::<Vec<_>>()
    );
}

fn thousand_concurrent_clients_every_byte_verified(b: Backend) {
    const CLIENTS: usize = 1000;
    const MSGS: usize = 4;
    const LEN: usize = 700;
    let server = builder(b)
        .codec_kind(CodecKind::Len32)
        .serve(|_| Echo)
        .unwrap();
    let addr = server.local_addr();
    // The load runs on a completion port of its own: 1000 connections, all at once.
    let mut port = Port::builder().backend(b).build().unwrap();
    for i in 0..CLIENTS {
        port.submit(op::Connect::new(addr).unwrap(), i as u64)
            .unwrap();
    }
    let mut streams: HashMap<u64, TcpStream> = HashMap::new();
    let mut expect: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut got: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut batch = Completions::with_capacity(256);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut done = 0;
    while done < CLIENTS {
        assert!(
            Instant::now() < deadline,
            "{done} of {CLIENTS} clients done"
        );
        port.wait(&mut batch, Some(Duration::from_secs(1))).unwrap();
        for c in batch.drain() {
            let i = c.token;
            match c.outcome {
                Outcome::Connect(Ok(s)) => {
                    let mut wire = Vec::new();
                    for m in 0..MSGS {
                        let payload = pattern_bytes((i * 100 + m as u64) * LEN as u64, LEN);
                        wire.extend_from_slice(&frame(CodecKind::Len32, &payload));
                    }
                    port.submit(op::RecvMulti::new(&s), i).unwrap();
                    port.submit(op::Send::new(&s, Buf::from(wire.clone())), i)
                        .unwrap();
                    expect.insert(i, wire);
                    streams.insert(i, s);
                }
                Outcome::Connect(Err(e)) => panic!("client {i} could not connect: {e}"),
                Outcome::Send { result, buf } => assert_eq!(result.unwrap(), buf.len()),
                Outcome::RecvMulti {
                    result: Ok(_),
                    buf: Some(data),
                } => {
                    let mine = got.entry(i).or_default();
                    mine.extend_from_slice(&data);
                    if mine.len() == expect[&i].len() {
                        assert_eq!(*mine, expect[&i], "client {i}'s echo differs");
                        done += 1;
                        port.submit(op::Close::new(streams.remove(&i).unwrap()), u64::MAX)
                            .unwrap();
                    }
                }
                Outcome::RecvMulti { result, .. } if !c.more => {
                    assert!(
                        result.is_err()
                            || got.get(&i).map(Vec::len) == expect.get(&i).map(Vec::len),
                        "client {i}: receive ended early: {result:?}"
                    );
                }
                _ => {}
            }
        }
    }
    eventually(&server, "every client served", |m| {
        m.frames_in == (CLIENTS * MSGS) as u64 && m.accepted == CLIENTS as u64
    });
}

fn frames_split_at_every_byte_boundary(b: Backend) {
    for kind in [CodecKind::Len16, CodecKind::Len32, CodecKind::Line] {
        let server = builder(b).codec_kind(kind).serve(|_| Echo).unwrap();
        let mut wire = frame(kind, b"first frame");
        wire.extend_from_slice(&frame(kind, b"second, a bit longer"));
        for split in 1..wire.len() {
            let mut s = client(server.local_addr());
            s.write_all(&wire[..split]).unwrap();
            // Let the first part arrive on its own (the server must then wait for the rest).
            std::thread::sleep(Duration::from_millis(2));
            s.write_all(&wire[split..]).unwrap();
            let mut back = vec![0u8; wire.len()];
            s.read_exact(&mut back).unwrap();
            assert_eq!(back, wire, "{kind} split at byte {split}");
        }
        // And one byte per write.
        let mut s = client(server.local_addr());
        for byte in &wire {
            s.write_all(std::slice::from_ref(byte)).unwrap();
        }
        let mut back = vec![0u8; wire.len()];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, wire, "{kind} byte by byte");
    }
}

fn sixty_four_frames_in_one_write(b: Backend) {
    for kind in [CodecKind::Len16, CodecKind::Len32, CodecKind::Line] {
        let server = builder(b).codec_kind(kind).serve(|_| Echo).unwrap();
        let mut s = client(server.local_addr());
        let mut wire = Vec::new();
        for i in 0..64 {
            wire.extend_from_slice(&frame(kind, format!("frame number {i}").as_bytes()));
        }
        s.write_all(&wire).unwrap();
        let mut back = vec![0u8; wire.len()];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, wire, "{kind}: all 64 frames, in order");
        eventually(&server, "64 frames in", |m| m.frames_in == 64);
    }
}

fn oversize_frame_closes_only_that_client(b: Backend) {
    let limits = Limits {
        max_frame: 1024,
        ..Limits::default()
    };
    let server = builder(b)
        .codec_kind(CodecKind::Len32)
        .limits(limits)
        .serve(|_| Echo)
        .unwrap();
    let mut good = client(server.local_addr());
    echo_round(&mut good, CodecKind::Len32, b"before");
    let mut bad = client(server.local_addr());
    bad.write_all(&4096u32.to_be_bytes()).unwrap();
    // The server may already have reset us: this write need not succeed.
    let _ = bad.write_all(&[7u8; 100]);
    assert!(closed_by_peer(&mut bad));
    echo_round(&mut good, CodecKind::Len32, &[1u8; 1024]);
    eventually(&server, "frame too large counted", |m| {
        m.closed_by(CloseReason::FrameTooLarge) == 1 && m.active == 1
    });
}

fn malformed_and_truncated_frames_are_counted(b: Backend) {
    let server = builder(b)
        .codec_kind(CodecKind::Line)
        .limits(Limits {
            max_frame: 64,
            ..Limits::default()
        })
        .serve(|_| Echo)
        .unwrap();
    // A line that never ends within the limit.
    let mut endless = client(server.local_addr());
    endless.write_all(&[b'x'; 200]).unwrap();
    assert!(closed_by_peer(&mut endless));
    // Half a frame, then the peer leaves.
    let mut truncated = client(server.local_addr());
    truncated.write_all(b"no newline here").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    drop(truncated);
    eventually(&server, "both counted", |m| {
        m.closed_by(CloseReason::FrameTooLarge) == 1 && m.closed_by(CloseReason::BadFrame) == 1
    });
}

/// Reads everything until the peer's orderly close (a reset fails the test: it would have
/// thrown away answers still in flight).
fn read_to_orderly_end(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap_or_else(|e| {
        panic!(
            "expected the answers, then a FIN; got {e} after {} bytes",
            got.len()
        )
    });
    got
}

/// A peer that sends whole frames, then the start of one more, then its FIN: the whole frames
/// were received and are answered before the connection closes (counted as a bad frame).
fn frames_before_a_truncated_end_are_answered_in_every_codec(b: Backend) {
    for kind in CodecKind::ALL {
        if kind == CodecKind::Raw {
            continue; // every byte is a whole raw frame: nothing can be left unfinished
        }
        let server = builder(b).codec_kind(kind).serve(|_| Echo).unwrap();
        let mut s = client(server.local_addr());
        let whole = [frame(kind, b"l1"), frame(kind, b"second frame")].concat();
        let unfinished = &frame(kind, b"l2 no end")[..5];
        s.write_all(&[&whole[..], unfinished].concat()).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(
            read_to_orderly_end(&mut s),
            whole,
            "{kind}: the whole frames' echoes"
        );
        eventually(&server, "the truncated end counted", |m| {
            m.closed_by(CloseReason::BadFrame) == 1
        });
    }
}

/// A peer that sends more than the write high-water mark in one go, then its FIN: the server
/// stops decoding at the mark (backpressure) with whole frames still held when the FIN comes;
/// they are all answered, and the close is an orderly one for an orderly end.
fn frames_held_by_backpressure_at_the_end_are_all_answered(b: Backend) {
    let limits = Limits {
        write_high_water: 8 << 10,
        ..Limits::default()
    };
    let server = builder(b)
        .workers(1)
        .codec_kind(CodecKind::Line)
        .limits(limits)
        .serve(|_| Echo)
        .unwrap();
    for (round, lines) in [1_000u32, 2_000, 3_000, 30_000].into_iter().enumerate() {
        let mut s = client(server.local_addr());
        let sent: Vec<u8> = (0..lines)
            .flat_map(|i| format!("line {i} of the stream\n").into_bytes())
            .collect();
        // Written by another thread: the answers to the larger rounds fill the kernel's
        // buffers before the last line is sent.
        let mut writer = s.try_clone().unwrap();
        let wire = sent.clone();
        let writing = std::thread::spawn(move || {
            writer.write_all(&wire).unwrap();
            writer.shutdown(std::net::Shutdown::Write).unwrap();
        });
        let got = read_to_orderly_end(&mut s);
        writing.join().unwrap();
        assert_eq!(got.len(), sent.len(), "every line echoed ({lines} lines)");
        assert!(got == sent, "echoed in order, unchanged ({lines} lines)");
        eventually(&server, "an orderly end counted", |m| {
            m.closed_by(CloseReason::PeerClosed) == round as u64 + 1
        });
    }
    assert!(server.metrics().total().backpressure_pauses > 0);
}

fn idle_timeout_closes_silent_clients_only(b: Backend) {
    let server = builder(b)
        .codec_kind(CodecKind::Line)
        .limits(Limits {
            idle_timeout: Some(Duration::from_millis(300)),
            ..Limits::default()
        })
        .serve(|_| Echo)
        .unwrap();
    let mut silent = client(server.local_addr());
    let mut chatty = client(server.local_addr());
    let start = Instant::now();
    // The chatty client keeps talking for 3 idle periods and stays open.
    while start.elapsed() < Duration::from_millis(900) {
        echo_round(&mut chatty, CodecKind::Line, b"still here");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(closed_by_peer(&mut silent));
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "closed before the timeout"
    );
    echo_round(&mut chatty, CodecKind::Line, b"and still");
    eventually(&server, "idle close counted", |m| {
        m.closed_by(CloseReason::IdleTimeout) == 1 && m.active == 1
    });
}

fn max_connections_enforced_while_others_work(b: Backend) {
    let server = builder(b)
        .codec_kind(CodecKind::Line)
        .limits(Limits {
            max_connections: 5,
            ..Limits::default()
        })
        .serve(|_| Echo)
        .unwrap();
    let mut admitted: Vec<TcpStream> = (0..5).map(|_| client(server.local_addr())).collect();
    for c in &mut admitted {
        echo_round(c, CodecKind::Line, b"in");
    }
    for _ in 0..3 {
        let mut extra = client(server.local_addr());
        let _ = extra.write_all(b"let me in\n");
        assert!(
            closed_by_peer(&mut extra),
            "the sixth connection is closed at once"
        );
    }
    eventually(&server, "rejections counted", |m| m.rejected == 3);
    for c in &mut admitted {
        echo_round(c, CodecKind::Line, b"still served");
    }
    // A slot frees up: the next connection is served.
    drop(admitted.pop());
    eventually(&server, "slot freed", |m| m.active == 4);
    let mut next = client(server.local_addr());
    echo_round(&mut next, CodecKind::Line, b"my turn");
}

fn client_that_never_reads_is_held_by_backpressure(b: Backend) {
    const HIGH: usize = 64 << 10;
    const MAX: usize = 1 << 20;
    let server = builder(b)
        .workers(1)
        .limits(Limits {
            write_high_water: HIGH,
            max_queued_write: MAX,
            ..Limits::default()
        })
        .serve(|_| Echo)
        .unwrap();
    let mut s = client(server.local_addr());
    s.set_nonblocking(true).unwrap();
    // Flood without reading until everything between us and the server is full.
    let total = 64 << 20;
    let data = pattern_bytes(0, total);
    let mut sent = 0;
    let mut stalled_since = None::<Instant>;
    while sent < total {
        match s.write(&data[sent..(sent + (256 << 10)).min(total)]) {
            Ok(n) => {
                sent += n;
                stalled_since = None;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let since = *stalled_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_millis(300) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("the server dropped a client that was only slow: {e}"),
        }
    }
    assert!(
        sent < total,
        "kernel buffers cannot hold 64 MiB: the flood must stall"
    );
    let m = server.metrics().total();
    assert!(m.backpressure_pauses >= 1, "{m:?}");
    eprintln!(
        "buffered {} pauses {}",
        m.buffered_bytes, m.backpressure_pauses
    );
    assert!(
        (m.buffered_bytes as usize) < MAX,
        "queued writes stay bounded: {} bytes",
        m.buffered_bytes
    );
    assert_eq!(m.closed_total(), 0, "a slow reader is held, not dropped");

    // Now read: every byte comes back, in order, and the rest of the flood goes through.
    let mut back = vec![0u8; total];
    let mut read = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while read < total {
        assert!(Instant::now() < deadline, "stuck at {read} of {total}");
        let mut progressed = false;
        if sent < total {
            match s.write(&data[sent..(sent + (256 << 10)).min(total)]) {
                Ok(n) => {
                    sent += n;
                    progressed = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        match s.read(&mut back[read..]) {
            Ok(0) => panic!("closed at {read}"),
            Ok(n) => {
                read += n;
                progressed = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        if !progressed {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert!(back == data, "every byte back, in order");
}

/// A handler that echoes, says "tick" from a timer, and closes after "bye".
struct Scripted {
    drained: u32,
}

impl Handler for Scripted {
    fn on_open(&mut self, cx: &mut Ctx<'_>) {
        cx.set_timer(Duration::from_millis(50), 7);
    }

    fn on_frame(&mut self, cx: &mut Ctx<'_>, frame: &[u8]) {
        if frame == b"bye" {
            let _ = cx.send(b"goodbye");
            cx.close();
            return;
        }
        cx.send(frame).unwrap();
    }

    fn on_drained(&mut self, _cx: &mut Ctx<'_>) {
        self.drained += 1;
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_>, timer: u64) {
        assert_eq!(timer, 7);
        cx.send(format!("tick after {} drains", self.drained).as_bytes())
            .unwrap();
    }
}

fn handler_timers_drain_and_graceful_close(b: Backend) {
    let server = builder(b)
        .codec_kind(CodecKind::Line)
        .serve(|_| Scripted { drained: 0 })
        .unwrap();
    let mut s = client(server.local_addr());
    let mut text = String::new();
    let mut byte = [0u8; 1];
    while !text.ends_with('\n') {
        s.read_exact(&mut byte).unwrap();
        text.push(byte[0] as char);
    }
    assert_eq!(text, "tick after 0 drains\n");
    echo_round(&mut s, CodecKind::Line, b"one");
    s.write_all(b"bye\n").unwrap();
    let mut rest = String::new();
    s.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "goodbye\n", "queued bytes go out before the close");
    eventually(&server, "local close counted", |m| {
        m.closed_by(CloseReason::Local) == 1
    });
}

fn shutdown_closes_everyone_and_counts_it(b: Backend) {
    let server = builder(b)
        .codec_kind(CodecKind::Line)
        .serve(|_| Echo)
        .unwrap();
    let mut clients: Vec<TcpStream> = (0..20).map(|_| client(server.local_addr())).collect();
    for c in &mut clients {
        echo_round(c, CodecKind::Line, b"hi");
    }
    server.shutdown();
    let m = server.join().unwrap();
    let t = m.total();
    assert_eq!(t.closed_by(CloseReason::Shutdown), 20, "{t:?}");
    assert_eq!(t.active, 0);
    assert_eq!(t.pool_in_use, 0);
    assert_eq!(t.buffered_bytes, 0);
    for c in &mut clients {
        assert!(closed_by_peer(c));
    }
}

/// The worker-start hook runs once on every worker thread, with its index, before it serves.
#[test]
fn worker_start_hook_runs_on_every_worker() {
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook_seen = seen.clone();
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .workers(3)
        .on_worker_start(move |index| {
            let name = std::thread::current().name().map(str::to_owned);
            hook_seen.lock().unwrap().push((index, name));
        })
        .serve(|_| Echo)
        .unwrap();
    let mut c = client(server.local_addr());
    echo_round(&mut c, CodecKind::Raw, b"hooked");
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    let expected: Vec<(usize, Option<String>)> = (0..3)
        .map(|i| (i, Some(format!("ringport-worker-{i}"))))
        .collect();
    assert_eq!(seen, expected);
}

/// Echoes lines; after the peer's FIN keeps writing: a last line, then its own half-close.
struct Answerer;

impl Handler for Answerer {
    fn on_frame(&mut self, cx: &mut Ctx<'_>, frame: &[u8]) {
        let _ = cx.send(frame);
    }
    fn on_peer_shutdown(&mut self, cx: &mut Ctx<'_>) -> AfterFin {
        let _ = cx.send(b"that was all");
        cx.shutdown_write();
        AfterFin::KeepWriting
    }
}

fn a_handler_keeps_writing_after_the_peers_fin(b: Backend) {
    let server = builder(b)
        .codec_kind(CodecKind::Line)
        .serve(|_| Answerer)
        .unwrap();
    let mut c = client(server.local_addr());
    c.write_all(b"one\ntwo\n").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap();
    assert_eq!(got, "one\ntwo\nthat was all\n");
    eventually(&server, "closed as an orderly close both ways", |m| {
        m.closed_by(CloseReason::PeerClosed) == 1
    });
    server.shutdown();
    let m = server.join().unwrap().total();
    assert_eq!(m.closed_total(), 1, "{m:?}");
}

/// Answers the first line, then shuts its side; counts every line after that.
struct Listener(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Handler for Listener {
    fn on_frame(&mut self, cx: &mut Ctx<'_>, frame: &[u8]) {
        if cx.send(frame).is_ok() {
            cx.shutdown_write();
        } else {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

fn the_server_shuts_its_side_and_keeps_reading(b: Backend) {
    let heard = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = heard.clone();
    let server = builder(b)
        .codec_kind(CodecKind::Line)
        .serve(move |_| Listener(counted.clone()))
        .unwrap();
    let mut c = client(server.local_addr());
    c.write_all(b"hello\n").unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap();
    assert_eq!(got, "hello\n", "the answer, then the end of the stream");
    // Our side of the stream is still open: the server still reads it.
    for n in 0..100 {
        c.write_all(format!("line {n}\n").as_bytes()).unwrap();
    }
    c.shutdown(std::net::Shutdown::Write).unwrap();
    eventually(&server, "closed once both sides are done", |m| {
        m.closed_by(CloseReason::PeerClosed) == 1
    });
    assert_eq!(heard.load(std::sync::atomic::Ordering::Relaxed), 100);
    server.shutdown();
    let m = server.join().unwrap().total();
    assert_eq!(m.frames_in, 101, "{m:?}");
}
