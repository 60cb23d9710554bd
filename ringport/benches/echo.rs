//! An echo server on a bare Port, driven over loopback by an in-process client, per backend side
//! by side (`cargo bench -p ringport --bench echo`).
//!
//! - **Server**: one thread, one [`Port`], pinned to one CPU: a multishot accept, a multishot
//!   receive per connection into the port's pool, and every filled pool buffer sent straight
//!   back (the `echo_server` example's data path, without its printing).
//! - **Client**: the bench thread, pinned to the other CPU, with plain blocking `std` sockets.
//!   It is the same load generator for every backend, so a difference between the rows is the
//!   server's alone; and it does not depend on the library it measures. `C` connections, each
//!   with exactly one 64-byte message in flight (closed loop): the client sends on every
//!   connection, then visits them in turn, reading each echo and sending that connection's
//!   next message. Every echo is compared byte for byte with what was sent (a global sequence
//!   number, the connection index and a pattern), and at the end the server's byte count must
//!   match the client's, so a backend that drops, reorders or mixes up data fails the bench.
//!
//! Two measurements per configuration, taken back to back on the same server and connections:
//!
//! - `echo_64B/<backend>/<C>conn`: wall time per message (criterion's default), with
//!   `Throughput::Elements(1)` so criterion also prints messages per second.
//! - `echo_64B_server_cpu/<backend>/<C>conn`: CPU time the **server thread** used per message
//!   (user + system, from its `pthread_getcpuclockid` clock read before and after each sample),
//!   through the custom [`ThreadCpu`] measurement, so it gets criterion's statistics too.

mod common;

#[cfg(target_os = "linux")]
fn main() {
    linux::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the echo bench reads Linux thread CPU clocks and pins threads; skipped here");
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::mpsc;
    use std::thread::{self, JoinHandle};
    use std::time::{Duration, Instant};

    use criterion::{BenchmarkId, Criterion, Throughput};
    use ringport::{Backend, Completions, Outcome, Port, Poster, op};

    use crate::common::{
        MEASURE, Pinned, ThreadClock, ThreadCpu, WARM_UP, Watchdog, backends, cpu_pair, port,
    };

    /// Bytes per message.
    const MSG: usize = 64;
    /// Connection counts to compare.
    const CONNS: [usize; 2] = [1, 32];
    /// A client read that waits longer than this fails the bench instead of hanging it.
    const PATIENCE: Duration = Duration::from_secs(10);

    /// Token of the multishot accept; connections use 1, 2, …
    const ACCEPT: u64 = 0;
    /// Token of the closes the server submits.
    const CLOSE: u64 = u64::MAX - 1;
    /// Token of the post that stops the server.
    const STOP: u64 = u64::MAX;

    pub fn main() {
        let mut wall = Criterion::default()
            .warm_up_time(WARM_UP)
            .measurement_time(MEASURE)
            .configure_from_args();
        let mut cpu = Criterion::default()
            .with_measurement(ThreadCpu)
            .warm_up_time(WARM_UP)
            .measurement_time(MEASURE)
            .configure_from_args();
        echo(&mut wall, &mut cpu);
        wall.final_summary();
    }

    fn echo(wall: &mut Criterion, cpu: &mut Criterion<ThreadCpu>) {
        let cpus = cpu_pair();
        let mut wall_group = wall.benchmark_group("echo_64B");
        wall_group.throughput(Throughput::Elements(1));
        let mut cpu_group = cpu.benchmark_group("echo_64B_server_cpu");
        for conns in CONNS {
            for backend in backends() {
                let _watchdog = Watchdog::new(format!("echo_64B/{backend}/{conns}conn"));
                let server = Server::start(backend, cpus.map(|p| p.0));
                let pinned = Pinned::to(cpus.map(|p| p.1));
                let mut client = Client::connect(server.addr, conns);
                // Every connection accepted, its receive armed and echoing before timing starts.
                client.exchange(4 * conns as u64);

                let id = BenchmarkId::new(backend.name(), format!("{conns}conn"));
                wall_group.bench_function(id.clone(), |b| {
                    b.iter_custom(|messages| {
                        let start = Instant::now();
                        client.exchange(messages);
                        start.elapsed()
                    })
                });
                cpu_group.bench_function(id, |b| {
                    b.iter_custom(|messages| {
                        let before = server.clock.now();
                        client.exchange(messages);
                        server.clock.now().saturating_sub(before)
                    })
                });

                let sent = client.sent_bytes();
                drop(client);
                drop(pinned);
                let echoed = server.stop();
                assert_eq!(
                    echoed, sent,
                    "{backend}: the server echoed {echoed} bytes, the client sent {sent}"
                );
            }
        }
        wall_group.finish();
        cpu_group.finish();
    }

    /// The echo server thread and the handles to reach it.
    struct Server {
        addr: SocketAddr,
        poster: Poster,
        clock: ThreadClock,
        thread: JoinHandle<u64>,
    }

    impl Server {
        /// Starts an echo server on `backend` in its own thread, pinned to `cpu`.
        fn start(backend: Backend, cpu: Option<usize>) -> Server {
            let (tx, rx) = mpsc::channel();
            let thread = thread::Builder::new()
                .name(format!("echo-{backend}"))
                .spawn(move || {
                    let _pinned = Pinned::to(cpu);
                    let mut port = port(backend);
                    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
                    port.associate(&listener).expect("associate");
                    let addr = listener.local_addr().expect("local addr");
                    tx.send((addr, port.poster())).expect("report the address");
                    serve(&mut port, &listener)
                })
                .expect("spawn the server");
            let (addr, poster) = rx.recv().expect("the server started");
            let clock = ThreadClock::of(&thread);
            Server {
                addr,
                poster,
                clock,
                thread,
            }
        }

        /// Stops the server; returns how many bytes it echoed.
        fn stop(self) -> u64 {
            self.poster.post(STOP, 0).expect("stop the server");
            self.thread.join().expect("the server thread panicked")
        }
    }

    struct Conn {
        stream: TcpStream,
        /// Sends in flight: the connection closes once the peer is gone and these are done.
        sending: usize,
        /// The multishot receive has ended (peer closed, error).
        recv_ended: bool,
        /// The receive ended because the pool ran dry: re-arm once a send frees a buffer.
        starved: bool,
    }

    /// The echo loop: returns the number of bytes echoed when told to stop.
    fn serve(port: &mut Port, listener: &TcpListener) -> u64 {
        port.submit(op::AcceptMulti::new(listener), ACCEPT)
            .expect("submit accept");
        // Indexed by token; slot 0 is the listener's.
        let mut conns: Vec<Option<Conn>> = vec![None];
        let mut echoed = 0u64;
        let mut batch = Completions::default();
        loop {
            port.wait(&mut batch, None).expect("server wait");
            for c in batch.drain() {
                let token = c.token;
                match c.outcome {
                    Outcome::Posted(_) if token == STOP => return echoed,
                    Outcome::Accept(Ok((stream, _))) => {
                        stream.set_nodelay(true).expect("TCP_NODELAY");
                        let id = conns.len() as u64;
                        port.submit(op::RecvMulti::new(&stream), id)
                            .expect("submit recv");
                        conns.push(Some(Conn {
                            stream,
                            sending: 0,
                            recv_ended: false,
                            starved: false,
                        }));
                        continue;
                    }
                    Outcome::Accept(Err(e)) => panic!("accept failed: {e}"),
                    Outcome::Close(result) => {
                        result.expect("close");
                        continue;
                    }
                    Outcome::RecvMulti { result, buf } => {
                        let conn = conn(&mut conns, token);
                        if let Some(buf) = buf {
                            echoed += buf.len() as u64;
                            // The pool buffer itself goes back out, and to the pool after.
                            port.submit(op::Send::new(&conn.stream, buf), token)
                                .expect("submit send");
                            conn.sending += 1;
                        }
                        if !c.more {
                            match result {
                                Err(e) if ringport::is_out_of_buffers(&e) => conn.starved = true,
                                Ok(n) if n > 0 => {
                                    port.submit(op::RecvMulti::new(&conn.stream), token)
                                        .expect("re-arm recv");
                                }
                                _ => conn.recv_ended = true,
                            }
                        }
                    }
                    Outcome::Send { result, buf } => {
                        let conn = conn(&mut conns, token);
                        conn.sending -= 1;
                        if !matches!(result, Ok(n) if n == buf.len()) {
                            conn.recv_ended = true; // the peer is gone
                        }
                        drop(buf);
                        if conn.starved && !conn.recv_ended {
                            conn.starved = false;
                            port.submit(op::RecvMulti::new(&conn.stream), token)
                                .expect("re-arm recv");
                        }
                    }
                    other => panic!("unexpected completion: {other:?}"),
                }
                let slot = &mut conns[token as usize];
                if slot
                    .as_ref()
                    .is_some_and(|c| c.recv_ended && c.sending == 0)
                {
                    let conn = slot.take().expect("checked above");
                    port.submit(op::Close::new(conn.stream), CLOSE)
                        .expect("submit close");
                }
            }
        }
    }

    fn conn(conns: &mut [Option<Conn>], token: u64) -> &mut Conn {
        conns
            .get_mut(token as usize)
            .and_then(Option::as_mut)
            .unwrap_or_else(|| panic!("completion for unknown connection {token}"))
    }

    /// The load generator: blocking sockets, one message in flight per connection.
    struct Client {
        conns: Vec<TcpStream>,
        /// The message each connection waits to see echoed.
        waiting: Vec<Option<[u8; MSG]>>,
        /// Messages sent so far (the last one's sequence number).
        seq: u64,
    }

    impl Client {
        fn connect(addr: SocketAddr, n: usize) -> Client {
            let conns: Vec<TcpStream> = (0..n)
                .map(|_| {
                    let s = TcpStream::connect(addr).expect("connect");
                    s.set_nodelay(true).expect("TCP_NODELAY");
                    s.set_read_timeout(Some(PATIENCE)).expect("read timeout");
                    s
                })
                .collect();
            Client {
                waiting: vec![None; conns.len()],
                conns,
                seq: 0,
            }
        }

        fn sent_bytes(&self) -> u64 {
            self.seq * MSG as u64
        }

        /// Echoes `count` messages in a closed loop and checks every one.
        fn exchange(&mut self, count: u64) {
            let mut unsent = count;
            let mut in_flight = 0;
            for i in 0..self.conns.len() {
                if unsent == 0 {
                    break;
                }
                self.send(i);
                unsent -= 1;
                in_flight += 1;
            }
            while in_flight > 0 {
                for i in 0..self.conns.len() {
                    let Some(expected) = self.waiting[i].take() else {
                        continue;
                    };
                    self.receive(i, &expected);
                    in_flight -= 1;
                    if unsent > 0 {
                        self.send(i);
                        unsent -= 1;
                        in_flight += 1;
                    }
                }
            }
        }

        fn send(&mut self, i: usize) {
            self.seq += 1;
            let msg = message(self.seq, i);
            self.conns[i].write_all(&msg).expect("client send");
            self.waiting[i] = Some(msg);
        }

        fn receive(&mut self, i: usize, expected: &[u8; MSG]) {
            let mut got = [0u8; MSG];
            if let Err(e) = self.conns[i].read_exact(&mut got) {
                panic!(
                    "connection {i}: no echo of message {} within {PATIENCE:?}: {e}",
                    seq_of(expected)
                );
            }
            assert!(
                got == *expected,
                "connection {i}: sent message {} and got back {} (or garbage): {got:?}",
                seq_of(expected),
                seq_of(&got)
            );
        }
    }

    /// Message `seq` on connection `conn`: the sequence number, the connection, then a pattern.
    fn message(seq: u64, conn: usize) -> [u8; MSG] {
        let mut m = [0u8; MSG];
        m[..8].copy_from_slice(&seq.to_le_bytes());
        m[8..12].copy_from_slice(&(conn as u32).to_le_bytes());
        for (i, b) in m.iter_mut().enumerate().skip(12) {
            *b = (seq as u8).wrapping_mul(31).wrapping_add(i as u8);
        }
        m
    }

    fn seq_of(m: &[u8; MSG]) -> u64 {
        u64::from_le_bytes(m[..8].try_into().expect("8 bytes"))
    }
}
