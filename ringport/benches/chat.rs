//! Push and fan-out: the chat example (`examples/chat.rs`) on io_uring and on epoll against a
//! tokio broadcast-channel chat server (`tokio-chat-server`, in `ringport-bench`), side by
//! side in one run (`cargo bench -p ringport --bench chat`; docs/BENCHMARKS.md, *Push and
//! fan-out*).
//!
//! Each server runs as its own process with 2 workers on a free loopback port; this process is
//! the clients (plain `std` sockets, and `mio` over raw descriptors to read 10,000 of them), so
//! the load generator is the same for every server. Server CPU is the sum over the server
//! process's threads of the time they ran (`/proc/<pid>/task/*/schedstat`, ns), read before
//! and after each measured window. Per server:
//!
//! - **Latency** (two clients A and B; for ringport A is on worker 0 and B on worker 1,
//!   through `--accept handoff`), p50 and p99 of 5,000 sequential samples after 500 unmeasured:
//!   - *relay*: A sends a line, B receives it — a push from a handler to a connection on
//!     another worker (`Ctx::broadcast`; tokio: through the broadcast channel);
//!   - *from a thread*: a line written to the server's stdin until B has it — a push from a
//!     thread that is not a worker (`ServerHandle::broadcast`; tokio: `Sender::send` from a
//!     plain thread); it includes the pipe's write and the stdin thread's wake-up;
//!   - *echo*, the reference: a line echoed back to its sender by the same library's echo
//!     server (ringport: `server::Echo` in this process, on the same backend, 2 workers;
//!     tokio: `tokio-echo-server`, raw echo).
//! - **Fan-out**: N connections (1,000 and 10,000); one of them sends M 32-byte lines
//!   (M × (N − 1) ≈ 1,000,000 deliveries); the others receive every line. Server CPU per
//!   delivery, and the wall time until the last line arrived.
//! - **Idle**: the 10,000 connections stay connected and silent for 10 s (from 1 s after the
//!   last fan-out line arrived): server CPU in that time (a chat server with no per-connection
//!   timers should use ~0).
//!
//! Three rounds visit every server, in an order that rotates; the tables give medians with ±
//! half the max–min spread. Every delivery is counted: a server that loses or duplicates a line fails the bench (it
//! never finishes; the watchdog stops it after a while).

#[cfg(target_os = "linux")]
fn main() {
    linux::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the chat bench reads Linux /proc CPU counters; skipped here");
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::os::fd::AsRawFd;
    use std::path::{Path, PathBuf};
    use std::process::{Child, ChildStdin, Command, Stdio};
    use std::time::{Duration, Instant};

    use mio::unix::SourceFd;
    use mio::{Events, Interest, Poll, Token};
    use ringport::Backend;
    use ringport::server::{CodecKind, Echo, Server};

    const SAMPLES: usize = 5_000;
    const WARM: usize = 500;
    const DELIVERIES: usize = 1_000_000;
    const IDLE: Duration = Duration::from_secs(10);
    /// The whole bench fails instead of hanging if a server loses a line.
    const HANG_LIMIT: Duration = Duration::from_secs(600);

    /// Rounds over all servers, their order rotating, so a busy machine's drift falls on all.
    const ROUNDS: usize = 3;

    pub fn main() {
        // `cargo bench` passes `--bench`; there is nothing to filter.
        let (chat, tokio_chat, tokio_echo) = binaries();
        std::thread::spawn(|| {
            std::thread::sleep(HANG_LIMIT);
            eprintln!("error: the chat bench did not finish within {HANG_LIMIT:?}");
            std::process::exit(101);
        });
        let servers = [
            Kind::Ringport(Backend::Uring),
            Kind::Ringport(Backend::Epoll),
            Kind::Tokio,
        ];
        let mut rows: Vec<Vec<Row>> = servers.iter().map(|_| Vec::new()).collect();
        for round in 0..ROUNDS {
            for i in 0..servers.len() {
                let i = (i + round) % servers.len();
                eprintln!("chat bench: round {}, {}", round + 1, servers[i].name());
                rows[i].push(measure(servers[i], &chat, &tokio_chat, &tokio_echo));
            }
        }
        let us = |d: f64| format!("{:.1}", d * 1e6);
        println!(
            "\nMedians of {ROUNDS} rounds (the servers' order rotating), ± half the spread.\n\n\
             | server | echo p50 / p99 µs | relay to another worker p50 / p99 µs | push from a thread p50 / p99 µs | relay ÷ echo (p50) |"
        );
        println!("|---|---|---|---|---|");
        for (kind, r) in servers.iter().zip(&rows) {
            let m = |f: &dyn Fn(&Row) -> f64| median(r.iter().map(f).collect());
            let pair = |a: &dyn Fn(&Row) -> f64, b: &dyn Fn(&Row) -> f64| {
                let (a, b) = (m(a), m(b));
                format!("{} ± {} / {} ± {}", us(a.0), us(a.1), us(b.0), us(b.1))
            };
            println!(
                "| {} | {} | {} | {} | {:.2} |",
                kind.name(),
                pair(&|r| r.echo.0, &|r| r.echo.1),
                pair(&|r| r.relay.0, &|r| r.relay.1),
                pair(&|r| r.pushed.0, &|r| r.pushed.1),
                m(&|r| r.relay.0).0 / m(&|r| r.echo.0).0,
            );
        }
        println!(
            "\n| server | fan-out to 1,000: server CPU per delivery | wall | fan-out to 10,000: server CPU per delivery | wall | 10,000 idle for 10 s: server CPU |"
        );
        println!("|---|---|---|---|---|---|");
        for (kind, r) in servers.iter().zip(&rows) {
            let m = |f: &dyn Fn(&Row) -> f64| median(r.iter().map(f).collect());
            let ns = |f: &dyn Fn(&Row) -> f64| {
                let (v, e) = m(f);
                format!("{v:.0} ± {e:.0} ns")
            };
            let secs = |f: &dyn Fn(&Row) -> f64| format!("{:.2} s", m(f).0);
            let (idle, idle_e) = m(&|r| r.idle);
            println!(
                "| {} | {} | {} | {} | {} | {:.1} ± {:.1} ms |",
                kind.name(),
                ns(&|r| r.fan[0].0),
                secs(&|r| r.fan[0].1),
                ns(&|r| r.fan[1].0),
                secs(&|r| r.fan[1].1),
                idle * 1e3,
                idle_e * 1e3,
            );
        }
    }

    /// The median and half the max–min spread.
    fn median(mut v: Vec<f64>) -> (f64, f64) {
        v.sort_by(f64::total_cmp);
        let spread = (v[v.len() - 1] - v[0]) / 2.0;
        (v[v.len() / 2], spread)
    }

    /// One server's numbers in one round (seconds; CPU per delivery in ns).
    struct Row {
        echo: (f64, f64),
        relay: (f64, f64),
        pushed: (f64, f64),
        /// (CPU ns per delivery, wall seconds) for 1,000 and 10,000 connections.
        fan: [(f64, f64); 2],
        /// Server CPU seconds over the idle window.
        idle: f64,
    }

    #[derive(Copy, Clone)]
    enum Kind {
        Ringport(Backend),
        Tokio,
    }

    impl Kind {
        fn name(self) -> String {
            match self {
                Kind::Ringport(b) => format!("ringport {b}"),
                Kind::Tokio => "tokio".into(),
            }
        }
    }

    /// The example and the tokio peers, built (release) by the same cargo.
    fn binaries() -> (PathBuf, PathBuf, PathBuf) {
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
        let ws = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        for args in [
            &["build", "--release", "-p", "ringport", "--example", "chat"][..],
            &["build", "--release", "-p", "ringport-bench"],
        ] {
            let ok = Command::new(env!("CARGO"))
                .args(args)
                .current_dir(ws)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cargo {args:?} failed");
        }
        (
            dir.join("examples/chat"),
            dir.join("tokio-chat-server"),
            dir.join("tokio-echo-server"),
        )
    }

    /// A server process: the first line of its stdout names its address.
    struct Proc {
        child: Child,
        stdin: Option<ChildStdin>,
        addr: SocketAddr,
    }

    impl Proc {
        fn start(bin: &Path, args: &[&str], env: Option<(&str, String)>) -> Proc {
            let mut cmd = Command::new(bin);
            cmd.args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            if let Some((k, v)) = env {
                cmd.env(k, v);
            }
            let mut child = cmd.spawn().expect("server starts");
            let stdin = child.stdin.take();
            let mut out = BufReader::new(child.stdout.take().unwrap());
            let mut first = String::new();
            out.read_line(&mut first).unwrap();
            let addr = first
                .split_whitespace()
                .find_map(|w| w.parse().ok())
                .unwrap_or_else(|| panic!("no address in {first:?}"));
            // Keep reading its stdout so it never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
            Proc { child, stdin, addr }
        }

        fn cpu(&self) -> Duration {
            process_cpu(self.child.id())
        }

        fn type_line(&mut self, line: &[u8]) {
            let stdin = self.stdin.as_mut().unwrap();
            stdin.write_all(line).unwrap();
            stdin.flush().unwrap();
        }

        fn stop(mut self) {
            let pid = self.child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let _ = self.child.wait();
        }
    }

    /// CPU time every thread of process `pid` has run (the first field of each thread's
    /// schedstat, in nanoseconds).
    fn process_cpu(pid: u32) -> Duration {
        let mut ns = 0u64;
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for t in tasks.flatten() {
                if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
                    ns += s
                        .split_whitespace()
                        .next()
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                }
            }
        }
        Duration::from_nanos(ns)
    }

    fn connect(addr: SocketAddr) -> TcpStream {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s
    }

    fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration) {
        v.sort();
        (v[v.len() / 2], v[v.len() * 99 / 100])
    }

    /// p50 and p99 of `once`, which returns the time of one sample.
    fn latency(mut once: impl FnMut() -> Duration) -> (Duration, Duration) {
        for _ in 0..WARM {
            once();
        }
        percentiles((0..SAMPLES).map(|_| once()).collect())
    }

    fn read_exact(s: &mut TcpStream, n: usize) {
        let mut buf = [0u8; 64];
        s.read_exact(&mut buf[..n]).unwrap();
    }

    /// Many clients read through one `mio` poll: lines counted per connection.
    struct Clients {
        poll: Poll,
        events: Events,
        socks: Vec<TcpStream>,
        lines: Vec<u64>,
        tail: Vec<u8>,
        total: u64,
    }

    impl Clients {
        fn connect(addr: SocketAddr, n: usize) -> Clients {
            let poll = Poll::new().unwrap();
            let mut socks = Vec::with_capacity(n);
            for i in 0..n {
                let s = connect(addr);
                s.set_nonblocking(true).unwrap();
                poll.registry()
                    .register(&mut SourceFd(&s.as_raw_fd()), Token(i), Interest::READABLE)
                    .unwrap();
                socks.push(s);
            }
            Clients {
                poll,
                events: Events::with_capacity(1024),
                lines: vec![0; n],
                tail: vec![0; n],
                socks,
                total: 0,
            }
        }

        /// Reads whatever arrives within `wait`.
        fn pump(&mut self, wait: Duration) {
            let mut buf = [0u8; 16 << 10];
            self.poll.poll(&mut self.events, Some(wait)).unwrap();
            for ev in &self.events {
                let i = ev.token().0;
                loop {
                    match (&self.socks[i]).read(&mut buf) {
                        Ok(0) => panic!("the server closed client {i}"),
                        Ok(n) => {
                            let nl = buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
                            self.lines[i] += nl;
                            self.total += nl;
                            self.tail[i] = buf[n.saturating_sub(2)];
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("client {i}: {e}"),
                    }
                }
            }
        }

        /// Until the server has accepted every client: lines from its stdin until each has one,
        /// then `r`, read by all (the byte before a line's newline is its last: `r`).
        /// A new `s` is typed only once nothing has arrived for a second: a slow server is
        /// not buried under syncs.
        fn sync(&mut self, server: &mut Proc) {
            let mut quiet_since = None::<Instant>;
            while self.lines.contains(&0) {
                if quiet_since.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                    server.type_line(b"s\n");
                    quiet_since = Some(Instant::now());
                }
                let before = self.total;
                self.pump(Duration::from_millis(100));
                if self.total > before {
                    quiet_since = Some(Instant::now());
                }
            }
            server.type_line(b"r\n");
            while self.tail.iter().any(|&t| t != b'r') {
                self.pump(Duration::from_millis(100));
            }
            self.total = 0;
        }
    }

    fn measure(kind: Kind, chat: &Path, tokio_chat: &Path, tokio_echo: &Path) -> Row {
        let start = |extra: &[&str]| match kind {
            Kind::Ringport(b) => {
                let mut args = vec!["--addr", "127.0.0.1:0", "--workers", "2"];
                args.extend_from_slice(extra);
                Proc::start(chat, &args, Some(("RINGPORT_BACKEND", b.to_string())))
            }
            Kind::Tokio => Proc::start(
                tokio_chat,
                &["--addr", "127.0.0.1:0", "--workers", "2"],
                None,
            ),
        };

        // Echo, the reference.
        let echo = {
            let one = |s: &mut TcpStream| {
                let t = Instant::now();
                s.write_all(b"p\n").unwrap();
                read_exact(s, 2);
                t.elapsed()
            };
            match kind {
                Kind::Ringport(b) => {
                    let server = Server::builder("127.0.0.1:0".parse().unwrap())
                        .backend(b)
                        .workers(2)
                        .codec_kind(CodecKind::Line)
                        .serve(|_| Echo)
                        .unwrap();
                    let mut s = connect(server.local_addr());
                    latency(|| one(&mut s))
                }
                Kind::Tokio => {
                    let p = Proc::start(
                        tokio_echo,
                        &["--addr", "127.0.0.1:0", "--workers", "2"],
                        None,
                    );
                    let mut s = connect(p.addr);
                    let r = latency(|| one(&mut s));
                    drop(s);
                    p.stop();
                    r
                }
            }
        };

        // Relay and push from a thread: A on worker 0, B on worker 1.
        let mut server = start(&["--accept", "handoff"]);
        let mut a = connect(server.addr);
        let mut b = connect(server.addr);
        for s in [&mut a, &mut b] {
            // Served once a line from stdin reaches it.
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            loop {
                server.type_line(b"s\n");
                let mut two = [0u8; 2];
                if s.read_exact(&mut two).is_ok() {
                    break;
                }
            }
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        }
        // Drain the extra syncs: a final `r` to each, read up to it.
        server.type_line(b"r\n");
        for s in [&mut a, &mut b] {
            let mut byte = [0u8; 1];
            loop {
                s.read_exact(&mut byte).unwrap();
                if byte[0] == b'r' {
                    read_exact(s, 1);
                    break;
                }
            }
        }
        let relay = latency(|| {
            let t = Instant::now();
            a.write_all(b"x\n").unwrap();
            read_exact(&mut b, 2);
            t.elapsed()
        });
        let pushed = latency(|| {
            let t = Instant::now();
            server.type_line(b"y\n");
            read_exact(&mut b, 2);
            let e = t.elapsed();
            read_exact(&mut a, 2);
            e
        });
        drop((a, b));
        server.stop();

        // Fan-out to 1,000, then 10,000 (which then stays idle).
        let mut fan = Vec::new();
        let mut idle = Duration::ZERO;
        for n in [1_000usize, 10_000] {
            let mut server = start(&[]);
            let mut clients = Clients::connect(server.addr, n);
            clients.sync(&mut server);
            let m = DELIVERIES.div_ceil(n - 1);
            let mut burst = Vec::with_capacity(m * 32);
            for i in 0..m {
                burst.extend_from_slice(format!("m{i:08} {:021}\n", 0).as_bytes());
            }
            let expected = (m * (n - 1)) as u64;
            let sender_lines = clients.lines[0];
            let cpu0 = server.cpu();
            let t = Instant::now();
            let mut sender = clients.socks[0].try_clone().unwrap();
            sender.set_nonblocking(false).unwrap();
            sender.write_all(&burst).unwrap();
            while clients.total < expected {
                clients.pump(Duration::from_millis(100));
            }
            let wall = t.elapsed();
            let cpu = server.cpu() - cpu0;
            assert_eq!(clients.lines[0], sender_lines, "nothing back to the sender");
            fan.push((cpu.as_nanos() as f64 / expected as f64, wall));
            if n == 10_000 {
                // The last sends' completions come after their bytes arrived: let the server
                // finish them before the idle window opens.
                std::thread::sleep(Duration::from_secs(1));
                let cpu0 = server.cpu();
                std::thread::sleep(IDLE);
                idle = server.cpu() - cpu0;
                clients.pump(Duration::ZERO);
                assert_eq!(clients.total, expected, "nothing was sent to idle clients");
            }
            server.stop();
            drop(clients);
        }

        let secs = |(p50, p99): (Duration, Duration)| (p50.as_secs_f64(), p99.as_secs_f64());
        Row {
            echo: secs(echo),
            relay: secs(relay),
            pushed: secs(pushed),
            fan: [
                (fan[0].0, fan[0].1.as_secs_f64()),
                (fan[1].0, fan[1].1.as_secs_f64()),
            ],
            idle: idle.as_secs_f64(),
        }
    }
}
