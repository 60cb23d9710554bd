//! The behaviour suite: what every backend of the Port must do, run against each of them.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::{Harness, listener, pattern, pattern_bytes, reset_on_drop};
use ringport::{Backend, Buf, Outcome, Port, op};
use socket2::{Domain, Socket, Type};

on_every_backend!(
    accept_connect_echo,
    multishot_accept_200_clients,
    a_recv_into_a_full_buffer_does_not_block_the_next,
    reset_before_accept_does_not_end_a_multishot_accept,
    sixteen_mib_through_small_send_buffer,
    peer_reset_mid_recv_is_an_error,
    orderly_close_is_a_zero_byte_recv,
    multishot_recv_ends_with_zero_on_close,
    a_fin_right_behind_data_ends_a_multishot_recv,
    udp_round_trip,
    timeouts_fire_relative_and_absolute,
    cancel_pending_recv_returns_buffer,
    cancelled_multishot_recv_delivers_every_byte,
    cancel_by_token_ends_all_its_ops,
    posts_from_four_threads_arrive_exactly_once,
    idle_multishot_recv_holds_no_pool_buffers,
    pool_exhaustion_then_recovery_loses_nothing,
    drop_with_1000_ops_in_flight,
    close_cancels_pending_ops,
    queued_sends_keep_their_order,
    connect_refused_is_reported,
    zero_timeout_polls,
    post_after_drop_fails,
    nops_complete_in_one_wait,
    truncated_datagram_keeps_what_fits,
    closing_a_listener_ends_its_multishot_accept,
    connect_from_a_bound_socket,
    cancelled_send_reports_exactly_what_went_out,
    sockets_belong_to_the_port_that_first_uses_them,
    shutdown_write_waits_for_queued_sends_then_ends_the_stream,
    shutdown_read_completes,
    shutdown_of_a_socket_not_connected_is_an_error,
    a_connect_that_gets_no_answer_times_out_once,
    a_connect_in_time_is_not_timed_out,
    a_recv_on_a_silent_peer_times_out,
    a_recv_whose_data_comes_first_gets_it,
    a_recv_queued_behind_another_times_out_from_its_submission,
    a_send_that_times_out_reports_what_went_out,
    a_user_cancel_beats_the_timer,
    multishot_ops_take_no_timeout,
    stopping_accepting_refuses_new_connections,
);

fn accept_connect_echo(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let (client, server) = h.pair(&l);

    h.port
        .submit(op::Send::new(&client, Buf::from("hello, port")), 1)
        .unwrap();
    h.port
        .submit(op::Recv::new(&server, Buf::with_capacity(64)), 2)
        .unwrap();
    match h.next_for(1).outcome {
        Outcome::Send { result, buf } => assert_eq!(result.unwrap(), buf.len()),
        other => panic!("{other:?}"),
    }
    let got = match h.next_for(2).outcome {
        Outcome::Recv { result, buf } => {
            assert_eq!(result.unwrap(), 11);
            buf
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(&got[..], b"hello, port");

    // Echo back what arrived, in the same buffer.
    h.port.submit(op::Send::new(&server, got), 3).unwrap();
    h.port
        .submit(op::Recv::new(&client, Buf::with_capacity(64)), 4)
        .unwrap();
    h.next_for(3);
    match h.next_for(4).outcome {
        Outcome::Recv { result, buf } => {
            assert_eq!(result.unwrap(), 11);
            assert_eq!(&buf[..], b"hello, port");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.port.in_flight(), 0);
}

fn multishot_accept_200_clients(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let addr = l.local_addr().unwrap();
    let accept = h.port.submit(op::AcceptMulti::new(&l), 7).unwrap();
    let clients = std::thread::spawn(move || {
        (0..200)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect::<Vec<_>>()
    });
    let mut peers = HashSet::new();
    let mut streams = Vec::new();
    while peers.len() < 200 {
        let c = h.next_for(7);
        assert!(c.more, "a multishot accept goes on until cancelled");
        match c.outcome {
            Outcome::Accept(Ok((s, peer))) => {
                assert_eq!(s.peer_addr().unwrap(), peer);
                assert!(peers.insert(peer), "{peer} accepted twice");
                streams.push(s);
            }
            other => panic!("{other:?}"),
        }
    }
    let clients = clients.join().unwrap();
    let client_addrs: HashSet<SocketAddr> =
        clients.iter().map(|c| c.local_addr().unwrap()).collect();
    assert_eq!(peers, client_addrs);

    h.port.cancel(accept).unwrap();
    let last = h.next_for(7);
    assert!(!last.more);
    assert!(last.is_cancelled(), "{last:?}");
    assert_eq!(h.port.in_flight(), 0);
}

/// A client that connects, sends and resets (SO_LINGER 0) before the server gets to accept
/// it is an ordinary event on a busy listener: a multishot accept reports it as an aborted
/// accept (or, on epoll, whose `accept4` still knows the peer, hands it out, and its first
/// receive ends), keeps going, and accepts the next client with its true peer address.
fn reset_before_accept_does_not_end_a_multishot_accept(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let addr = l.local_addr().unwrap();
    const RESET: usize = 20;
    for _ in 0..RESET {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"hello, and goodbye").unwrap();
        reset_on_drop(&c).unwrap();
    }
    // The resets reach the listen queue before the accept is even submitted.
    std::thread::sleep(Duration::from_millis(100));
    h.port.submit(op::AcceptMulti::new(&l), 7).unwrap();
    let good = TcpStream::connect(addr).unwrap();
    let good_addr = good.local_addr().unwrap();
    let (mut aborted, mut handed_out) = (0, Vec::new());
    let served = loop {
        let c = h.next_for(7);
        assert!(c.more, "the multishot accept ended: {:?}", c.outcome);
        let is_aborted = c.is_accept_aborted();
        match c.outcome {
            Outcome::Accept(Ok((stream, peer))) if peer == good_addr => break stream,
            Outcome::Accept(Ok((stream, _))) => handed_out.push(stream),
            Outcome::Accept(Err(e)) => {
                assert!(is_aborted, "{b}: an accept failed: {e}");
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionAborted);
                aborted += 1;
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        aborted + handed_out.len(),
        RESET,
        "every reset client reported once"
    );
    if b == Backend::Uring {
        assert_eq!(
            aborted, RESET,
            "io_uring cannot hand out a connection without a peer"
        );
    }
    for mut stream in handed_out {
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(common::PATIENCE)).unwrap();
        let end = stream.read_to_end(&mut Vec::new());
        assert!(
            !matches!(&end, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
            "a handed-out reset connection ends at once: {end:?}"
        );
    }
    assert_eq!(served.peer_addr().unwrap(), good_addr);
}

/// A receive into a buffer with no room ends at once with `InvalidInput`; the receive queued
/// behind it on the same socket still runs and gets the data.
fn a_recv_into_a_full_buffer_does_not_block_the_next(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let (client, server) = h.pair(&l);
    let mut full = Buf::with_capacity(8);
    full.extend_from_slice(&[0u8; 8]);
    let full_cap = full.capacity();
    full.extend_from_slice(&vec![0u8; full_cap - full.len()]);
    h.port.submit(op::Recv::new(&server, full), 1).unwrap();
    h.port
        .submit(op::Recv::new(&server, Buf::with_capacity(64)), 2)
        .unwrap();
    match h.next_for(1).outcome {
        Outcome::Recv { result, .. } => assert_eq!(
            result.unwrap_err().kind(),
            std::io::ErrorKind::InvalidInput,
            "{b}: no room"
        ),
        other => panic!("{other:?}"),
    }
    h.port
        .submit(op::Send::new(&client, Buf::from("after the full one")), 3)
        .unwrap();
    match h.next_for(2).outcome {
        Outcome::Recv { result, buf } => {
            assert_eq!(result.unwrap(), 18, "{b}");
            assert_eq!(&buf[..], b"after the full one");
        }
        other => panic!("{other:?}"),
    }
}

fn sixteen_mib_through_small_send_buffer(b: Backend) {
    const TOTAL: usize = 16 << 20;
    const CHUNK: usize = 1 << 20;
    let data = pattern_bytes(0, TOTAL);
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    // A 4 KiB send buffer makes every 1 MiB send go out in hundreds of partial writes. The
    // Ethernet-sized MSS keeps loopback TCP fast with so small a buffer (with loopback's 64 KiB
    // MSS a segment never fits, and every one waits for a delayed ACK). Windows has no
    // settable TCP_MAXSEG.
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    sock.set_send_buffer_size(4096).unwrap();
    #[cfg(unix)]
    sock.set_tcp_mss(1400).unwrap();
    let addr = l.local_addr().unwrap();
    h.port.submit(op::Accept::new(&l), 1).unwrap();
    h.port
        .submit(op::Connect::with_socket(sock, addr), 2)
        .unwrap();
    let Outcome::Accept(Ok((server, _))) = h.next_for(1).outcome else {
        panic!("accept")
    };
    let Outcome::Connect(Ok(client)) = h.next_for(2).outcome else {
        panic!("connect")
    };

    let mut sent = 0; // bytes confirmed sent
    let mut next_send = 0; // bytes handed to send ops
    let mut received = 0;
    let mut in_flight_sends = 0;
    h.port
        .submit(op::Recv::new(&server, Buf::with_capacity(64 << 10)), 20)
        .unwrap();
    // Keep two sends queued so the backend must keep them in order.
    while received < TOTAL || sent < TOTAL {
        while in_flight_sends < 2 && next_send < TOTAL {
            let len = CHUNK.min(TOTAL - next_send);
            let buf = Buf::from(&data[next_send..next_send + len]);
            h.port.submit(op::Send::new(&client, buf), 10).unwrap();
            next_send += len;
            in_flight_sends += 1;
        }
        let c = h.next();
        match c.outcome {
            Outcome::Send { result, buf } => {
                in_flight_sends -= 1;
                // A send ends when all its bytes are out: with a healthy peer, never short
                // (the next queued send would otherwise overtake the unsent rest).
                let n = result.unwrap();
                assert_eq!(n, buf.len(), "short send with a healthy peer");
                sent += n;
            }
            Outcome::Recv { result, mut buf } => {
                let n = result.unwrap();
                assert!(n > 0, "early EOF at {received}");
                let expect = &data[received..received + buf.len()];
                assert!(&buf[..] == expect, "bytes at {received} differ");
                received += buf.len();
                buf.clear();
                if received < TOTAL {
                    h.port.submit(op::Recv::new(&server, buf), 20).unwrap();
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((sent, received), (TOTAL, TOTAL));
}

fn peer_reset_mid_recv_is_an_error(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let (client, server) = h.pair(&l);
    h.port
        .submit(op::Recv::new(&server, Buf::with_capacity(64)), 1)
        .unwrap();
    assert!(h.drain_for(Duration::from_millis(50)).is_empty());
    reset_on_drop(&client).unwrap();
    drop(client);
    match h.next_for(1).outcome {
        Outcome::Recv { result, .. } => {
            let e = result.expect_err("a reset connection cannot recv");
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
        }
        other => panic!("{other:?}"),
    }
}

fn orderly_close_is_a_zero_byte_recv(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let (client, server) = h.pair(&l);
    h.port
        .submit(op::Recv::new(&server, Buf::with_capacity(64)), 1)
        .unwrap();
    drop(client);
    match h.next_for(1).outcome {
        Outcome::Recv { result, buf } => {
            assert_eq!(result.unwrap(), 0);
            assert!(buf.is_empty());
        }
        other => panic!("{other:?}"),
    }
}

fn multishot_recv_ends_with_zero_on_close(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let (mut client, server) = h.pair(&l);
    h.port.submit(op::RecvMulti::new(&server), 1).unwrap();
    client.write_all(b"abc").unwrap();
    let first = h.next_for(1);
    assert!(first.more);
    match first.outcome {
        Outcome::RecvMulti { result, buf } => {
            assert_eq!(result.unwrap(), 3);
            assert_eq!(&buf.unwrap()[..], b"abc");
        }
        other => panic!("{other:?}"),
    }
    drop(client);
    let last = h.next_for(1);
    assert!(!last.more);
    match last.outcome {
        Outcome::RecvMulti { result, buf } => {
            assert_eq!(result.unwrap(), 0);
            assert!(buf.is_none());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.port.pool().in_use(), 0);
}

/// Reads what multishot receive `token` delivers until its final completion; returns the bytes
/// and the final completion's count (0: the end of the stream).
fn recv_until_last(h: &mut Harness, token: u64) -> (Vec<u8>, usize) {
    let mut got = Vec::new();
    loop {
        let c = h.next_for(token);
        let Outcome::RecvMulti { result, buf } = c.outcome else {
            panic!("{:?}", c.outcome)
        };
        let n = result.unwrap();
        if let Some(buf) = buf {
            got.extend_from_slice(&buf);
        }
        if !c.more {
            return (got, n);
        }
    }
}

/// A FIN right behind data raises no readiness edge of its own. A multishot receive that stops
/// at a short read (epoll: the socket is drained) must still see it: armed when both arrive,
/// and armed only after their edge was taken.
fn a_fin_right_behind_data_ends_a_multishot_recv(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);

    let (mut client, server) = h.pair(&l);
    h.port.submit(op::RecvMulti::new(&server), 1).unwrap();
    client.write_all(b"ab").unwrap();
    let first = h.next_for(1);
    assert!(first.more);
    client.write_all(b"cd").unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = match first.outcome {
        Outcome::RecvMulti { buf, .. } => buf.unwrap().to_vec(),
        other => panic!("{other:?}"),
    };
    got.extend(recv_until_last(&mut h, 1).0);
    assert_eq!(got, b"abcd");

    let (mut client, server) = h.pair(&l);
    h.port
        .submit(op::RecvMulti::new(&server).limit(2), 2)
        .unwrap();
    client.write_all(b"ab").unwrap();
    let (got, last) = recv_until_last(&mut h, 2);
    assert_eq!(
        (&got[..], last > 0),
        (&b"ab"[..], true),
        "ended at its limit"
    );
    client.write_all(b"cd").unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    // Their edge comes while no receive is armed.
    assert!(h.drain_for(Duration::from_millis(100)).is_empty());
    h.port.submit(op::RecvMulti::new(&server), 3).unwrap();
    assert_eq!(recv_until_last(&mut h, 3), (b"cd".to_vec(), 0));
    assert_eq!(h.port.pool().in_use(), 0);
}

fn udp_round_trip(b: Backend) {
    let mut h = Harness::new(b);
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    h.port.associate(&a).unwrap();
    h.port.associate(&c).unwrap();
    let a_addr = a.local_addr().unwrap();
    let c_addr = c.local_addr().unwrap();

    h.port
        .submit(op::RecvFrom::new(&a, Buf::with_capacity(1500)), 1)
        .unwrap();
    h.port
        .submit(op::SendTo::new(&c, Buf::from("ping"), a_addr), 2)
        .unwrap();
    match h.next_for(2).outcome {
        Outcome::SendTo { result, .. } => assert_eq!(result.unwrap(), 4),
        other => panic!("{other:?}"),
    }
    let (buf, from) = match h.next_for(1).outcome {
        Outcome::RecvFrom { result, buf } => {
            let (n, from) = result.unwrap();
            assert_eq!(n, 4);
            (buf, from)
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(&buf[..], b"ping");
    assert_eq!(from, c_addr);

    h.port
        .submit(op::RecvFrom::new(&c, Buf::with_capacity(1500)), 3)
        .unwrap();
    h.port.submit(op::SendTo::new(&a, buf, from), 4).unwrap();
    h.next_for(4);
    match h.next_for(3).outcome {
        Outcome::RecvFrom { result, buf } => {
            assert_eq!(result.unwrap(), (4, a_addr));
            assert_eq!(&buf[..], b"ping");
        }
        other => panic!("{other:?}"),
    }
}

fn timeouts_fire_relative_and_absolute(b: Backend) {
    let mut h = Harness::new(b);
    let start = Instant::now();
    h.port
        .submit(op::Timeout::after(Duration::from_millis(300)), 1)
        .unwrap();
    h.port
        .submit(op::Timeout::at(start + Duration::from_millis(60)), 2)
        .unwrap();
    let never = h
        .port
        .submit(op::Timeout::after(Duration::from_secs(3600)), 3)
        .unwrap();

    let first = h.next();
    assert_eq!(first.token, 2, "the earlier deadline fires first");
    assert!(matches!(first.outcome, Outcome::Timeout(Ok(()))));
    assert!(start.elapsed() >= Duration::from_millis(60));

    let second = h.next();
    assert_eq!(second.token, 1);
    assert!(matches!(second.outcome, Outcome::Timeout(Ok(()))));
    assert!(start.elapsed() >= Duration::from_millis(300));

    h.port.cancel(never).unwrap();
    let third = h.next();
    assert_eq!(third.token, 3);
    assert!(third.is_cancelled(), "{third:?}");
    // A deadline in the past fires at once.
    h.port.submit(op::Timeout::at(start), 4).unwrap();
    assert!(matches!(h.next_for(4).outcome, Outcome::Timeout(Ok(()))));
}

fn cancel_pending_recv_returns_buffer(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let (_client, server) = h.pair(&l);
    let mut buf = Buf::with_capacity(128);
    buf.extend_from_slice(b"kept");
    let id = h.port.submit(op::Recv::new(&server, buf), 9).unwrap();
    assert!(h.drain_for(Duration::from_millis(30)).is_empty());
    h.port.cancel(id).unwrap();
    let c = h.next_for(9);
    assert!(c.is_cancelled(), "{c:?}");
    assert_eq!(c.id, id);
    match c.outcome {
        Outcome::Recv { buf, .. } => {
            assert_eq!(&buf[..], b"kept", "the buffer comes back as it was");
            assert_eq!(buf.capacity(), 128);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        h.port.cancel(id).unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
}

fn cancelled_multishot_recv_delivers_every_byte(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let (mut client, server) = h.pair(&l);
    let id = h.port.submit(op::RecvMulti::new(&server), 5).unwrap();
    let data = pattern_bytes(0, 20_000);
    client.write_all(&data).unwrap();
    // Let some arrive, then cancel while the rest may still be in flight.
    let mut got = Vec::new();
    let first = h.next_for(5);
    if let Outcome::RecvMulti { buf: Some(buf), .. } = first.outcome {
        got.extend_from_slice(&buf);
    }
    h.port.cancel(id).unwrap();
    loop {
        let c = h.next_for(5);
        let more = c.more;
        match c.outcome {
            Outcome::RecvMulti {
                result: Ok(n),
                buf: Some(buf),
            } => {
                assert_eq!(n, buf.len());
                got.extend_from_slice(&buf);
            }
            Outcome::RecvMulti { result: Err(e), .. } => {
                assert!(ringport::is_cancelled(&e), "{e}");
            }
            other => panic!("{other:?}"),
        }
        if !more {
            break;
        }
    }
    // Whatever the cancelled op did not take is still in the socket.
    let mut rest = Buf::with_capacity(64 << 10);
    while got.len() < data.len() {
        h.port.submit(op::Recv::new(&server, rest), 6).unwrap();
        match h.next_for(6).outcome {
            Outcome::Recv { result, buf } => {
                assert!(result.unwrap() > 0);
                got.extend_from_slice(&buf);
                rest = buf;
                rest.clear();
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, data);
}

fn cancel_by_token_ends_all_its_ops(b: Backend) {
    let mut h = Harness::new(b);
    for _ in 0..3 {
        h.port
            .submit(op::Timeout::after(Duration::from_secs(3600)), 42)
            .unwrap();
    }
    h.port
        .submit(op::Timeout::after(Duration::from_millis(200)), 43)
        .unwrap();
    assert_eq!(h.port.cancel_token(42).unwrap(), 3);
    for _ in 0..3 {
        assert!(h.next_for(42).is_cancelled());
    }
    assert!(matches!(h.next_for(43).outcome, Outcome::Timeout(Ok(()))));
    assert_eq!(h.port.cancel_token(42).unwrap(), 0);
}

fn posts_from_four_threads_arrive_exactly_once(b: Backend) {
    const THREADS: u64 = 4;
    const EACH: u64 = 10_000;
    let mut h = Harness::new(b);
    let posters: Vec<_> = (0..THREADS)
        .map(|t| {
            let poster = h.port.poster();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    poster.post(t, i).unwrap();
                    if i % 1000 == 0 {
                        std::thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let mut next_expected: HashMap<u64, u64> = HashMap::new();
    for _ in 0..THREADS * EACH {
        let c = h.next();
        assert_eq!(c.id, ringport::OpId::POSTED);
        let Outcome::Posted(value) = c.outcome else {
            panic!("{c:?}")
        };
        let expected = next_expected.entry(c.token).or_default();
        assert_eq!(
            value, *expected,
            "thread {} out of order or duplicated",
            c.token
        );
        *expected += 1;
    }
    for p in posters {
        p.join().unwrap();
    }
    assert_eq!(next_expected.len() as u64, THREADS);
    assert!(next_expected.values().all(|&n| n == EACH));
    assert!(
        h.drain_for(Duration::from_millis(20)).is_empty(),
        "no post delivered twice"
    );
}

fn idle_multishot_recv_holds_no_pool_buffers(b: Backend) {
    const CONNS: usize = 1000;
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let addr = l.local_addr().unwrap();
    h.port.submit(op::AcceptMulti::new(&l), 0).unwrap();
    let clients = std::thread::spawn(move || {
        (0..CONNS)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect::<Vec<_>>()
    });
    let mut servers = Vec::new();
    while servers.len() < CONNS {
        let c = h.next_for(0);
        let Outcome::Accept(Ok((s, _))) = c.outcome else {
            panic!("{c:?}")
        };
        h.port
            .submit(op::RecvMulti::new(&s), servers.len() as u64 + 1)
            .unwrap();
        servers.push(s);
    }
    let mut clients = clients.join().unwrap();
    // Give every receive time to be armed in the kernel.
    assert!(h.drain_for(Duration::from_millis(100)).is_empty());
    assert_eq!(h.port.in_flight(), CONNS + 1);
    assert_eq!(h.port.pool().in_use(), 0, "idle connections hold no buffer");

    clients[500].write_all(b"x").unwrap();
    let c = h.next_for(501);
    let Outcome::RecvMulti { buf: Some(buf), .. } = c.outcome else {
        panic!("{c:?}")
    };
    assert_eq!(h.port.pool().in_use(), 1);
    drop(buf);
    assert_eq!(h.port.pool().in_use(), 0);
}

fn pool_exhaustion_then_recovery_loses_nothing(b: Backend) {
    let mut h = Harness::with(Port::builder().backend(b).pool(64, 4));
    let l = listener(&mut h.port);
    let (mut client, server) = h.pair(&l);
    let data = pattern_bytes(0, 1000);
    client.write_all(&data).unwrap();

    let mut held = Vec::new();
    let mut got = Vec::new();
    let mut ran_dry = 0;
    h.port.submit(op::RecvMulti::new(&server), 1).unwrap();
    while got.len() < data.len() {
        let c = h.next_for(1);
        let (more, dry) = (c.more, c.is_out_of_buffers());
        match c.outcome {
            Outcome::RecvMulti {
                result: Ok(_),
                buf: Some(buf),
            } => {
                got.extend_from_slice(&buf);
                held.push(buf); // keep the pool busy until it runs dry
            }
            Outcome::RecvMulti { result: Err(e), .. } if dry => {
                assert!(!more, "running dry ends the multishot recv: {e}");
                ran_dry += 1;
                assert_eq!(h.port.pool().available(), 0);
                held.clear(); // buffers back: re-arm
            }
            other => panic!("{other:?}"),
        }
        if !more {
            h.port.submit(op::RecvMulti::new(&server), 1).unwrap();
        }
    }
    assert!(ran_dry > 0, "the pool of 4 x 64 B ran dry for 1000 bytes");
    assert_eq!(got, data, "every byte, in order");
}

fn drop_with_1000_ops_in_flight(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let idle_listener = listener(&mut h.port);
    let pool = h.port.pool().clone();
    let mut streams = Vec::new();
    h.port
        .submit(op::AcceptMulti::new(&idle_listener), 0)
        .unwrap();
    let mut ops = 1;
    for i in 0..100 {
        let (client, server) = h.pair(&l);
        h.port.submit(op::RecvMulti::new(&server), i).unwrap();
        h.port
            .submit(op::Recv::new(&client, Buf::with_capacity(4096)), i)
            .unwrap();
        // Queued behind the multishot recv: never reaches the kernel.
        h.port
            .submit(op::Recv::new(&server, Buf::with_capacity(4096)), i)
            .unwrap();
        ops += 3;
        streams.push((client, server));
    }
    while ops < 1000 {
        h.port
            .submit(op::Timeout::after(Duration::from_secs(3600)), ops as u64)
            .unwrap();
        ops += 1;
    }
    let _ = h.drain_for(Duration::from_millis(50));
    assert!(h.port.in_flight() >= 1000, "{}", h.port.in_flight());
    // Some data waits in pool buffers held by the kernel's side of the ring.
    for (client, _) in streams.iter_mut().take(10) {
        client.set_nonblocking(false).unwrap();
        client.write_all(b"in flight").unwrap();
    }
    drop(h);
    assert_eq!(pool.in_use(), 0, "every pool buffer came back");
}

fn close_cancels_pending_ops(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let (mut client, server) = h.pair(&l);
    client.set_nonblocking(false).unwrap();
    h.port
        .submit(op::Recv::new(&server, Buf::with_capacity(64)), 1)
        .unwrap();
    h.port
        .submit(op::Recv::new(&server, Buf::with_capacity(64)), 2)
        .unwrap();
    assert!(h.drain_for(Duration::from_millis(30)).is_empty());
    h.port.submit(op::Close::new(server), 3).unwrap();
    let mut seen = HashSet::new();
    for _ in 0..3 {
        let c = h.next();
        match c.token {
            1 | 2 => assert!(c.is_cancelled(), "{c:?}"),
            3 => assert!(matches!(c.outcome, Outcome::Close(Ok(()))), "{c:?}"),
            _ => unreachable!(),
        }
        seen.insert(c.token);
    }
    assert_eq!(seen.len(), 3);
    // The server side is really closed: the client reads EOF.
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(client.read(&mut byte).unwrap(), 0);
}

fn queued_sends_keep_their_order(b: Backend) {
    const SENDS: u64 = 200;
    const LEN: usize = 10_000;
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let (client, mut server) = h.pair(&l);
    server.set_nonblocking(false).unwrap();
    for i in 0..SENDS {
        let buf = Buf::from(pattern_bytes(i * LEN as u64, LEN));
        h.port.submit(op::Send::new(&client, buf), i).unwrap();
    }
    let reader = std::thread::spawn(move || {
        let mut all = vec![0u8; SENDS as usize * LEN];
        server.read_exact(&mut all).unwrap();
        all
    });
    let mut done = 0;
    while done < SENDS {
        let c = h.next();
        assert_eq!(c.token, done, "sends complete in submission order");
        let Outcome::Send { result, .. } = c.outcome else {
            panic!("{c:?}")
        };
        assert_eq!(result.unwrap(), LEN);
        done += 1;
    }
    let all = reader.join().unwrap();
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, &byte)| byte == pattern(i as u64)),
        "bytes arrive in submission order"
    );
}

fn connect_refused_is_reported(b: Backend) {
    let mut h = Harness::new(b);
    // A port nothing listens on: bind, note the address, close.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    h.port.submit(op::Connect::new(addr).unwrap(), 1).unwrap();
    match h.next_for(1).outcome {
        Outcome::Connect(Err(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}")
        }
        other => panic!("{other:?}"),
    }
}

fn zero_timeout_polls(b: Backend) {
    let mut h = Harness::new(b);
    let mut batch = ringport::Completions::default();
    let start = Instant::now();
    assert_eq!(h.port.wait(&mut batch, Some(Duration::ZERO)).unwrap(), 0);
    assert!(start.elapsed() < Duration::from_secs(2));
    h.port.poster().post(1, 2).unwrap();
    assert_eq!(h.port.wait(&mut batch, Some(Duration::ZERO)).unwrap(), 1);
}

fn post_after_drop_fails(b: Backend) {
    let h = Harness::new(b);
    let poster = h.port.poster();
    poster.post(1, 1).unwrap();
    drop(h);
    let e = poster.post(1, 2).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
}

fn nops_complete_in_one_wait(b: Backend) {
    let mut h = Harness::new(b);
    for i in 0..100 {
        h.port.submit(op::Nop::new(), i).unwrap();
    }
    let mut batch = ringport::Completions::with_capacity(256);
    let mut seen = Vec::new();
    while seen.len() < 100 {
        h.port.wait(&mut batch, Some(common::PATIENCE)).unwrap();
        for c in batch.drain() {
            assert!(matches!(c.outcome, Outcome::Nop(Ok(()))), "{c:?}");
            seen.push(c.token);
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..100).collect::<Vec<_>>());
    assert_eq!(h.port.in_flight(), 0);
}

fn truncated_datagram_keeps_what_fits(b: Backend) {
    let mut h = Harness::new(b);
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    h.port.associate(&a).unwrap();
    let c_addr = c.local_addr().unwrap();
    let a_addr = a.local_addr().unwrap();
    // Once with the datagram already waiting (the receive can finish at once), once with the
    // receive waiting for it.
    for waiting_first in [false, true] {
        if !waiting_first {
            c.send_to(b"abcdef", a_addr).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        h.port
            .submit(op::RecvFrom::new(&a, Buf::with_capacity(4)), 1)
            .unwrap();
        if waiting_first {
            assert!(h.drain_for(Duration::from_millis(20)).is_empty());
            c.send_to(b"abcdef", a_addr).unwrap();
        }
        match h.next_for(1).outcome {
            Outcome::RecvFrom { result, buf } => {
                assert_eq!(result.unwrap(), (4, c_addr));
                assert_eq!(&buf[..], b"abcd");
            }
            other => panic!("{other:?}"),
        }
    }
    // The rest of a truncated datagram is gone, as with recvfrom: the next one is whole.
    c.send_to(b"xy", a_addr).unwrap();
    h.port
        .submit(op::RecvFrom::new(&a, Buf::with_capacity(16)), 2)
        .unwrap();
    match h.next_for(2).outcome {
        Outcome::RecvFrom { result, buf } => {
            assert_eq!(result.unwrap(), (2, c_addr));
            assert_eq!(&buf[..], b"xy");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.port.in_flight(), 0);
}

fn closing_a_listener_ends_its_multishot_accept(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let addr = l.local_addr().unwrap();
    h.port.submit(op::AcceptMulti::new(&l), 1).unwrap();
    let client = TcpStream::connect(addr).unwrap();
    let first = h.next_for(1);
    assert!(first.more);
    let Outcome::Accept(Ok((server, peer))) = first.outcome else {
        panic!("{first:?}")
    };
    assert_eq!(peer, client.local_addr().unwrap());
    h.port.submit(op::Close::new(l), 2).unwrap();
    assert!(matches!(h.next_for(2).outcome, Outcome::Close(Ok(()))));
    let last = h.next_for(1);
    assert!(!last.more, "{last:?}");
    assert!(last.is_cancelled(), "{last:?}");
    assert_eq!(h.port.in_flight(), 0);
    assert!(
        h.drain_for(Duration::from_millis(20)).is_empty(),
        "one final completion"
    );
    drop((client, server));
}

fn connect_from_a_bound_socket(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let bound = sock.local_addr().unwrap().as_socket().unwrap();
    h.port
        .submit(op::Connect::with_socket(sock, l.local_addr().unwrap()), 1)
        .unwrap();
    h.port.submit(op::Accept::new(&l), 2).unwrap();
    let Outcome::Connect(Ok(client)) = h.next_for(1).outcome else {
        panic!("connect")
    };
    let Outcome::Accept(Ok((_server, peer))) = h.next_for(2).outcome else {
        panic!("accept")
    };
    assert_eq!(
        client.local_addr().unwrap(),
        bound,
        "the socket kept its address"
    );
    assert_eq!(peer, bound);
}

/// Receives `len` bytes on `sock` through `h`'s port (token 50).
fn recv_exactly(h: &mut Harness, sock: &TcpStream, len: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < len {
        h.port
            .submit(op::Recv::new(sock, Buf::with_capacity(len - got.len())), 50)
            .unwrap();
        match h.next_for(50).outcome {
            Outcome::Recv { result, buf } => {
                assert!(result.unwrap() > 0, "the peer closed early");
                got.extend_from_slice(&buf);
            }
            other => panic!("{other:?}"),
        }
    }
    got
}

/// Accepted and connected sockets are associated with the port that first runs an operation on
/// them (or that `Port::associate` names first), not with the port that made them: a
/// connection accepted on one port is served on another, as a server's acceptor thread hands
/// connections to its workers. On IOCP a socket then belongs to that port for life.
fn sockets_belong_to_the_port_that_first_uses_them(b: Backend) {
    let mut acceptor = Harness::new(b);
    let l = listener(&mut acceptor.port);
    let (client1, server1) = acceptor.pair(&l);
    let (client2, server2) = acceptor.pair(&l);
    let mut worker = Harness::new(b);
    // One taken over explicitly, one by its first operation on the worker's port.
    worker.port.associate(&server1).unwrap();
    for (i, (client, server)) in [(&client1, &server1), (&client2, &server2)]
        .into_iter()
        .enumerate()
    {
        let hello = format!("hello, worker, from client {i}");
        acceptor
            .port
            .submit(op::Send::new(client, Buf::from(hello.as_str())), 2)
            .unwrap();
        assert!(matches!(
            acceptor.next_for(2).outcome,
            Outcome::Send { result: Ok(n), .. } if n == hello.len()
        ));
        assert_eq!(
            recv_exactly(&mut worker, server, hello.len()),
            hello.as_bytes()
        );
        worker
            .port
            .submit(op::Send::new(server, Buf::from("and back")), 3)
            .unwrap();
        assert!(matches!(
            worker.next_for(3).outcome,
            Outcome::Send { result: Ok(8), .. }
        ));
        assert_eq!(recv_exactly(&mut acceptor, client, 8), b"and back");
    }
    // Naming a socket again to the port it is associated with is fine.
    worker.port.associate(&server1).unwrap();
    worker.port.associate(&server2).unwrap();
    if b == Backend::Iocp {
        // The sockets are the worker port's for life: the acceptor's port refuses them rather
        // than issue calls whose completions would reach the worker's port.
        let e = acceptor.port.associate(&server1).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
        acceptor
            .port
            .submit(op::Recv::new(&server2, Buf::with_capacity(64)), 4)
            .unwrap();
        match acceptor.next_for(4).outcome {
            Outcome::Recv { result: Err(e), .. } => {
                assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}")
            }
            other => panic!("{other:?}"),
        }
    }
    // Closed through the worker's port, where they belong.
    worker.port.submit(op::Close::new(server1), 5).unwrap();
    worker.port.submit(op::Close::new(server2), 5).unwrap();
    for _ in 0..2 {
        assert!(matches!(worker.next_for(5).outcome, Outcome::Close(Ok(()))));
    }
    assert_eq!(worker.port.in_flight(), 0);
    assert_eq!(acceptor.port.in_flight(), 0);
}

fn cancelled_send_reports_exactly_what_went_out(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let (client, mut server) = h.pair(&l);
    // Far more than any socket buffer holds: with the peer not reading, the send blocks.
    let data = pattern_bytes(0, 32 << 20);
    let id = h
        .port
        .submit(op::Send::new(&client, Buf::from(&data[..])), 1)
        .unwrap();
    assert!(h.drain_for(Duration::from_millis(100)).is_empty());
    h.port.cancel(id).unwrap();
    let c = h.next_for(1);
    let sent = match c.outcome {
        Outcome::Send { result: Ok(n), .. } => n,
        Outcome::Send { result: Err(e), .. } => {
            assert!(ringport::is_cancelled(&e), "{e}");
            0
        }
        other => panic!("{other:?}"),
    };
    assert!(
        sent < data.len(),
        "the send was still blocked when cancelled"
    );
    // The next send's bytes follow exactly the reported ones (or, where cancelling a send
    // aborts the connection, the peer sees no byte beyond them).
    server.set_nonblocking(false).unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut chunk = vec![0u8; 1 << 20];
        while got.len() < sent + 4 {
            match server.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
        got
    });
    h.port
        .submit(op::Send::new(&client, Buf::from("tail")), 2)
        .unwrap();
    let tail = match h.next_for(2).outcome {
        Outcome::Send { result, .. } => result,
        other => panic!("{other:?}"),
    };
    if tail.is_err() {
        drop(client); // let the reader see the end
    }
    let got = reader.join().unwrap();
    let before = got.len().min(sent);
    assert!(
        got[..before] == data[..before],
        "the reported bytes, in order"
    );
    match tail {
        Ok(n) => {
            assert_eq!(n, 4);
            assert_eq!(got.len(), sent + 4);
            assert_eq!(&got[sent..], b"tail");
        }
        Err(_) => assert!(got.len() <= sent, "no byte beyond the reported ones"),
    }
}

/// A pair whose client has a 4 KiB send buffer (and, on Unix, an Ethernet-sized MSS, as in
/// `sixteen_mib_through_small_send_buffer`): a large send from it stays in the kernel until the
/// peer reads.
fn pair_with_small_send_buffer(
    h: &mut Harness,
    l: &std::net::TcpListener,
) -> (TcpStream, TcpStream) {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    sock.set_send_buffer_size(4096).unwrap();
    #[cfg(unix)]
    sock.set_tcp_mss(1400).unwrap();
    h.port.submit(op::Accept::new(l), 1).unwrap();
    h.port
        .submit(op::Connect::with_socket(sock, l.local_addr().unwrap()), 2)
        .unwrap();
    let Outcome::Accept(Ok((server, _))) = h.next_for(1).outcome else {
        panic!("accept")
    };
    let Outcome::Connect(Ok(client)) = h.next_for(2).outcome else {
        panic!("connect")
    };
    (client, server)
}

/// A `Shutdown(Write)` submitted behind large sends that are still in the kernel runs only after
/// them: the peer reads every byte, in order, then the end of the stream; and it is a
/// half-close: the peer can still send, and we receive it.
fn shutdown_write_waits_for_queued_sends_then_ends_the_stream(b: Backend) {
    const SENDS: u64 = 4;
    const LEN: usize = 1 << 20;
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let (client, mut server) = pair_with_small_send_buffer(&mut h, &l);
    for i in 0..SENDS {
        let buf = Buf::from(pattern_bytes(i * LEN as u64, LEN));
        h.port.submit(op::Send::new(&client, buf), 10 + i).unwrap();
    }
    h.port
        .submit(op::Shutdown::new(&client, std::net::Shutdown::Write), 20)
        .unwrap();
    // Nobody reads yet: the sends (and so the shutdown) cannot have finished.
    assert!(
        h.drain_for(Duration::from_millis(100)).is_empty(),
        "{b}: the sends wait for the peer"
    );
    server.set_nonblocking(false).unwrap();
    server.set_read_timeout(Some(common::PATIENCE)).unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        server.read_to_end(&mut all).unwrap(); // up to the end of the stream
        server.write_all(b"still open this way").unwrap();
        (all, server)
    });
    let mut order = Vec::new();
    for _ in 0..=SENDS {
        let c = h.next();
        match c.outcome {
            Outcome::Send { result, buf } => assert_eq!(result.unwrap(), buf.len(), "{b}"),
            Outcome::Shutdown(result) => result.unwrap(),
            other => panic!("{b}: {other:?}"),
        }
        order.push(c.token);
    }
    assert_eq!(
        order,
        [10, 11, 12, 13, 20],
        "{b}: the shutdown comes after the sends"
    );
    let (all, _server) = reader.join().unwrap();
    assert_eq!(all.len(), SENDS as usize * LEN, "{b}: every byte, then EOF");
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, &byte)| byte == pattern(i as u64)),
        "{b}: the bytes in order"
    );
    assert_eq!(
        recv_exactly(&mut h, &client, 19),
        b"still open this way",
        "{b}: a half-close: we still receive"
    );
}

/// `Shutdown(Read)` runs at once, also with a receive pending, and leaves the sending side
/// working.
fn shutdown_read_completes(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let (client, server) = h.pair(&l);
    h.port
        .submit(op::Shutdown::new(&server, std::net::Shutdown::Read), 1)
        .unwrap();
    match h.next_for(1).outcome {
        Outcome::Shutdown(result) => result.unwrap(),
        other => panic!("{b}: {other:?}"),
    }
    h.port
        .submit(op::Send::new(&server, Buf::from("we still send")), 2)
        .unwrap();
    assert!(matches!(
        h.next_for(2).outcome,
        Outcome::Send { result: Ok(13), .. }
    ));
    assert_eq!(recv_exactly(&mut h, &client, 13), b"we still send");
    assert_eq!(h.port.in_flight(), 0);
}

/// A shutdown of a socket that is not connected fails with `NotConnected` (`ENOTCONN`,
/// `WSAENOTCONN`), whichever side it names.
fn shutdown_of_a_socket_not_connected_is_an_error(b: Backend) {
    let mut h = Harness::new(b);
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    h.port.associate(&sock).unwrap();
    for (token, how) in [
        std::net::Shutdown::Write,
        std::net::Shutdown::Read,
        std::net::Shutdown::Both,
    ]
    .into_iter()
    .enumerate()
    {
        h.port
            .submit(op::Shutdown::new(&sock, how), token as u64)
            .unwrap();
        match h.next_for(token as u64).outcome {
            Outcome::Shutdown(Err(e)) => {
                assert_eq!(
                    e.kind(),
                    std::io::ErrorKind::NotConnected,
                    "{b} {how:?}: {e}"
                )
            }
            other => panic!("{b} {how:?}: {other:?}"),
        }
    }
    assert_eq!(h.port.in_flight(), 0);
}

/// The timeout of the linked-timeout tests, and the most it may overrun on a busy machine.
const LINKED: Duration = Duration::from_millis(300);
const OVERRUN: Duration = Duration::from_secs(10);

/// Asserts that `c` is the timed-out end of its op, at least [`LINKED`] and at most
/// [`OVERRUN`] after `start`, and that no other completion follows for it.
fn assert_timed_out(h: &mut Harness, b: Backend, c: &ringport::Completion, start: Instant) {
    let took = start.elapsed();
    let e = c.error().unwrap_or_else(|| panic!("{b}: {c:?}"));
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{b}: {e}");
    assert!(!c.is_cancelled() && !c.more, "{b}: {c:?}");
    assert!(took >= LINKED, "{b}: timed out after {took:?}");
    assert!(took < OVERRUN, "{b}: timed out only after {took:?}");
    let later = h.drain_for(LINKED * 2);
    assert!(
        later.iter().all(|l| l.id != c.id),
        "{b}: a second completion: {later:?}"
    );
}

/// A listener (backlog 0) whose accept queue is full and never accepted from: the kernel drops
/// further SYNs, so a connect to it gets no answer. Returns it and the connections filling it.
fn listener_that_never_answers() -> (std::net::TcpListener, Vec<TcpStream>) {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.listen(0).unwrap();
    let l: std::net::TcpListener = sock.into();
    let addr = l.local_addr().unwrap();
    let mut filling = Vec::new();
    for _ in 0..64 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => filling.push(s),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return (l, filling),
            Err(e) => panic!("filling the accept queue: {e}"),
        }
    }
    panic!(
        "the accept queue never filled ({} connections)",
        filling.len()
    );
}

fn a_connect_that_gets_no_answer_times_out_once(b: Backend) {
    let mut h = Harness::new(b);
    let (l, _filling) = listener_that_never_answers();
    let start = Instant::now();
    h.port
        .submit_with_timeout(
            op::Connect::new(l.local_addr().unwrap()).unwrap(),
            1,
            LINKED,
        )
        .unwrap();
    let c = h.next_for(1);
    assert!(matches!(c.outcome, Outcome::Connect(Err(_))), "{b}: {c:?}");
    assert_timed_out(&mut h, b, &c, start);
    assert_eq!(h.port.in_flight(), 0);
}

fn a_connect_in_time_is_not_timed_out(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    h.port
        .submit_with_timeout(
            op::Connect::new(l.local_addr().unwrap()).unwrap(),
            1,
            LINKED,
        )
        .unwrap();
    let c = h.next_for(1);
    let Outcome::Connect(Ok(stream)) = c.outcome else {
        panic!("{b}: {c:?}")
    };
    let later = h.drain_for(LINKED * 2);
    assert!(later.is_empty(), "{b}: after the connect: {later:?}");
    assert_eq!(h.port.in_flight(), 0);
    drop(stream);
}

fn a_recv_on_a_silent_peer_times_out(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let (_client, server) = h.pair(&l);
    let start = Instant::now();
    let mut buf = Buf::with_capacity(64);
    buf.extend_from_slice(b"kept");
    h.port
        .submit_with_timeout(op::Recv::new(&server, buf), 1, LINKED)
        .unwrap();
    let c = h.next_for(1);
    assert_timed_out(&mut h, b, &c, start);
    match c.outcome {
        Outcome::Recv { buf, .. } => assert_eq!(&buf[..], b"kept", "{b}: the buffer comes back"),
        other => panic!("{b}: {other:?}"),
    }
    assert_eq!(h.port.in_flight(), 0);
}

fn a_recv_whose_data_comes_first_gets_it(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let (client, server) = h.pair(&l);
    h.port
        .submit_with_timeout(op::Recv::new(&server, Buf::with_capacity(64)), 1, LINKED)
        .unwrap();
    h.port
        .submit(op::Send::new(&client, Buf::from("in time")), 2)
        .unwrap();
    match h.next_for(1).outcome {
        Outcome::Recv { result, buf } => {
            assert_eq!(result.unwrap(), 7, "{b}");
            assert_eq!(&buf[..], b"in time");
        }
        other => panic!("{b}: {other:?}"),
    }
    h.next_for(2);
    let later = h.drain_for(LINKED * 2);
    assert!(later.is_empty(), "{b}: after the recv: {later:?}");
    assert_eq!(h.port.in_flight(), 0);
}

/// The deadline counts from the submission, also while the op waits in its lane behind
/// another (which the timeout leaves alone).
fn a_recv_queued_behind_another_times_out_from_its_submission(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let (client, server) = h.pair(&l);
    h.port
        .submit(op::Recv::new(&server, Buf::with_capacity(64)), 1)
        .unwrap();
    let start = Instant::now();
    h.port
        .submit_with_timeout(op::Recv::new(&server, Buf::with_capacity(64)), 2, LINKED)
        .unwrap();
    let c = h.next_for(2);
    assert_timed_out(&mut h, b, &c, start);
    h.port
        .submit(op::Send::new(&client, Buf::from("first")), 3)
        .unwrap();
    match h.next_for(1).outcome {
        Outcome::Recv { result, buf } => {
            assert_eq!(result.unwrap(), 5, "{b}");
            assert_eq!(&buf[..], b"first");
        }
        other => panic!("{b}: {other:?}"),
    }
}

/// A send that times out part-way reports the bytes that went out, as a cancelled one does;
/// one that got none out reports the timeout.
fn a_send_that_times_out_reports_what_went_out(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let (client, _server) = h.pair(&l);
    let data = pattern_bytes(0, 32 << 20); // far more than the socket buffers hold
    let start = Instant::now();
    h.port
        .submit_with_timeout(op::Send::new(&client, Buf::from(&data[..])), 1, LINKED)
        .unwrap();
    let c = h.next_for(1);
    let took = start.elapsed();
    assert!(
        took >= LINKED && took < OVERRUN,
        "{b}: ended after {took:?}"
    );
    match c.outcome {
        Outcome::Send { result: Ok(n), .. } => assert!(n < data.len(), "{b}: {n}"),
        Outcome::Send { result: Err(e), .. } => {
            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{b}: {e}")
        }
        other => panic!("{b}: {other:?}"),
    }
    assert_eq!(h.port.in_flight(), 0);
}

fn a_user_cancel_beats_the_timer(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let (_client, server) = h.pair(&l);
    let id = h
        .port
        .submit_with_timeout(op::Recv::new(&server, Buf::with_capacity(64)), 1, LINKED)
        .unwrap();
    assert!(h.drain_for(Duration::from_millis(30)).is_empty());
    h.port.cancel(id).unwrap();
    let c = h.next_for(1);
    assert!(c.is_cancelled(), "{b}: cancelled, not timed out: {c:?}");
    let later = h.drain_for(LINKED * 2);
    assert!(later.is_empty(), "{b}: after the cancel: {later:?}");
    assert_eq!(h.port.in_flight(), 0);
}

fn multishot_ops_take_no_timeout(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let (_client, server) = h.pair(&l);
    for e in [
        h.port
            .submit_with_timeout(op::AcceptMulti::new(&l), 1, LINKED)
            .unwrap_err(),
        h.port
            .submit_with_timeout(op::RecvMulti::new(&server), 2, LINKED)
            .unwrap_err(),
    ] {
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{b}: {e}");
    }
    assert_eq!(h.port.in_flight(), 0);
    assert!(h.drain_for(Duration::from_millis(30)).is_empty());
}

/// How to stop accepting (the docs of `op::AcceptMulti`): cancel the accept, then close the
/// listener through the port. A new connection is then refused, not left in a backlog; the
/// connection accepted before keeps working both ways.
fn stopping_accepting_refuses_new_connections(b: Backend) {
    let mut h = Harness::new(b);
    let l = listener(&mut h.port);
    let addr = l.local_addr().unwrap();
    let accept = h.port.submit(op::AcceptMulti::new(&l), 1).unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    let first = h.next_for(1);
    assert!(first.more, "{b}: {first:?}");
    let Outcome::Accept(Ok((server, _))) = first.outcome else {
        panic!("{b}: {first:?}")
    };
    h.port.cancel(accept).unwrap();
    let last = h.next_for(1);
    assert!(!last.more && last.is_cancelled(), "{b}: {last:?}");
    h.port.submit(op::Close::new(l), 2).unwrap();
    assert!(
        matches!(h.next_for(2).outcome, Outcome::Close(Ok(()))),
        "{b}"
    );

    match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{b}: {e}"),
        Ok(s) => panic!("{b}: a connection after the close was taken: {s:?}"),
    }

    h.port
        .submit(op::Send::new(&server, Buf::from("still here")), 3)
        .unwrap();
    assert!(matches!(
        h.next_for(3).outcome,
        Outcome::Send { result: Ok(10), .. }
    ));
    client.set_nonblocking(false).unwrap();
    client.set_read_timeout(Some(common::PATIENCE)).unwrap();
    let mut got = [0u8; 10];
    client.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"still here");
    client.write_all(b"and you").unwrap();
    assert_eq!(recv_exactly(&mut h, &server, 7), b"and you", "{b}");
    assert_eq!(h.port.in_flight(), 0);
}

/// On io_uring an op the kernel holds may only end with the kernel's completion, also when a
/// close already emptied its socket's queue: ending it early would hand back a buffer the kernel
/// can still write into.
#[cfg(target_os = "linux")]
#[test]
fn uring_cancel_after_close_waits_for_the_kernel() {
    let mut h = Harness::new(Backend::Uring);
    let l = listener(&mut h.port);
    let (_client, server) = h.pair(&l);
    let recv = h
        .port
        .submit(op::Recv::new(&server, Buf::with_capacity(64)), 1)
        .unwrap();
    assert!(
        h.drain_for(Duration::from_millis(30)).is_empty(),
        "the recv is in the kernel"
    );
    h.port.submit(op::Close::new(server), 2).unwrap();
    h.port.cancel(recv).unwrap();
    assert_eq!(
        h.port.in_flight(),
        2,
        "the recv stays in flight until the kernel returns it"
    );
    assert!(h.next_for(1).is_cancelled());
    assert!(matches!(h.next_for(2).outcome, Outcome::Close(Ok(()))));
    assert_eq!(h.port.in_flight(), 0);
}
