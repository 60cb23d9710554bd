//! The chat example (`examples/chat.rs`), run as its own process on every backend and driven
//! over real sockets: every line reaches every other client exactly once, in each sender's
//! order, lines typed on its standard input reach everyone, and a client that never reads is
//! closed by its limit while the others get everything.
//!
//! The example binary is found next to this test's (`target/<profile>/examples/chat`), built
//! first with the same cargo and profile so it is never stale (`cargo test` builds examples
//! anyway; `cargo test --test chat` does not).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ringport::Backend;

on_every_backend!(
    every_line_reaches_every_other_client_once_in_order,
    a_client_that_never_reads_is_closed_while_the_others_get_everything,
    bad_arguments_are_one_line_and_exit_2,
);

const PATIENCE: Duration = Duration::from_secs(30);

/// The example's binary, built once per test process.
fn chat_binary() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test knows its own path");
        // target/<profile>/deps/chat-<hash> → target/<profile>
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("a test binary lives in <target>/<profile>/deps");
        let bin = profile_dir
            .join("examples")
            .join(format!("chat{}", std::env::consts::EXE_SUFFIX));
        let profile = profile_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("debug");
        let profile = if profile == "debug" { "dev" } else { profile };
        let built = Command::new(env!("CARGO"))
            .args(["build", "-p", "ringport", "--example", "chat", "--profile"])
            .arg(profile)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status();
        match built {
            Ok(s) if s.success() => {}
            // No cargo here (a test binary copied elsewhere): use what was built with it.
            other if bin.exists() => eprintln!("cannot rebuild the chat example ({other:?})"),
            other => panic!("cannot build the chat example: {other:?}"),
        }
        assert!(bin.exists(), "no chat example at {}", bin.display());
        bin
    })
}

/// A running chat server.
struct Chat {
    child: Child,
    stdin: ChildStdin,
    /// The rest of its output, read by `stop` (SIGTERM is Unix only).
    #[cfg_attr(windows, allow(dead_code))]
    stdout: BufReader<std::process::ChildStdout>,
    addr: SocketAddr,
}

impl Chat {
    fn start(b: Backend, extra: &[&str]) -> Chat {
        let mut child = Command::new(chat_binary())
            .args(["--addr", "127.0.0.1:0", "--workers", "2"])
            .args(extra)
            .env("RINGPORT_BACKEND", b.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the chat example starts");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        // "chat server on 127.0.0.1:PORT (uring backend, 2 workers)"
        let addr = first
            .strip_prefix("chat server on ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line: {first:?}"));
        assert!(first.contains(&format!("({b} backend")), "{first}");
        Chat {
            child,
            stdin,
            stdout,
            addr,
        }
    }

    /// A line on the server's standard input: a push to everyone from a non-worker thread.
    fn type_line(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// SIGTERM, then the rest of the output (the final summary). On Windows a test cannot
    /// send the example a Ctrl-C (Wine turns only a Unix SIGINT into one; the smoke test in
    /// scripts/test-windows.sh checks that path with the CLI): the process is killed and there
    /// is no summary (`None`).
    fn stop(mut self) -> Option<String> {
        #[cfg(unix)]
        {
            let pid = self.child.id().to_string();
            let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
            assert!(killed.success());
            let mut rest = String::new();
            self.stdout.read_to_string(&mut rest).unwrap();
            let status = self.child.wait().unwrap();
            assert!(status.success(), "graceful exit on SIGTERM: {status:?}");
            Some(rest)
        }
        #[cfg(not(unix))]
        {
            let _ = self.child.kill();
            let _ = self.child.wait();
            None
        }
    }
}

impl Drop for Chat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connect(addr: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_nodelay(true).unwrap();
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

fn read_line(r: &mut BufReader<TcpStream>) -> String {
    let mut s = String::new();
    r.read_line(&mut s).unwrap();
    assert!(s.ends_with('\n'), "a whole line, got {s:?}");
    s.pop();
    s
}

/// Waits until every client is served: a connection is in the listener's backlog when
/// `connect` returns, and a broadcast reaches only the connections accepted by then. The
/// operator types `sync <k>` until each client has had one (the short read timeout only
/// decides when to type the next; nothing is asserted about time), then `ready`, which each
/// reads past the rest of the syncs: from then on nothing is pending anywhere.
fn sync_all(chat: &mut Chat, readers: &mut [&mut BufReader<TcpStream>]) {
    let mut synced = vec![false; readers.len()];
    for k in 0.. {
        if synced.iter().all(|&s| s) {
            break;
        }
        assert!(k < 1000, "clients never served");
        chat.type_line(&format!("sync {k}"));
        for (r, synced) in readers.iter_mut().zip(&mut synced) {
            if *synced {
                continue;
            }
            r.get_ref()
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let mut line = String::new();
            if r.read_line(&mut line).is_ok() {
                assert!(line.starts_with("sync "), "{line:?}");
                *synced = true;
            }
            r.get_ref().set_read_timeout(Some(PATIENCE)).unwrap();
        }
    }
    chat.type_line("ready");
    for r in readers.iter_mut() {
        loop {
            let line = read_line(r);
            if line == "ready" {
                break;
            }
            assert!(line.starts_with("sync "), "{line:?}");
        }
    }
}

fn every_line_reaches_every_other_client_once_in_order(b: Backend) {
    const CLIENTS: usize = 50;
    const LINES: usize = 20;
    const TYPED: usize = 5;
    let mut chat = Chat::start(b, &[]);
    let mut conns: Vec<_> = (0..CLIENTS).map(|_| connect(chat.addr)).collect();
    {
        let mut readers: Vec<_> = conns.iter_mut().map(|(_, r)| r).collect();
        sync_all(&mut chat, &mut readers);
    }
    let threads: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(me, (mut w, mut r))| {
            std::thread::spawn(move || {
                for n in 0..LINES {
                    // A \r stays part of the line: it goes out unchanged.
                    w.write_all(format!("c{me} n{n}\r\n").as_bytes()).unwrap();
                }
                let mut next = [0usize; CLIENTS];
                let mut typed = 0;
                let expected = (CLIENTS - 1) * LINES + TYPED;
                for _ in 0..expected {
                    let line = read_line(&mut r);
                    if let Some(k) = line.strip_prefix("typed ") {
                        assert_eq!(k, typed.to_string(), "client {me}: typed lines in order");
                        typed += 1;
                        continue;
                    }
                    let body = line
                        .strip_suffix('\r')
                        .unwrap_or_else(|| panic!("client {me}: line changed: {line:?}"));
                    let (from, n) = body
                        .strip_prefix('c')
                        .and_then(|b| b.split_once(" n"))
                        .unwrap_or_else(|| panic!("client {me}: unexpected {line:?}"));
                    let (from, n): (usize, usize) = (from.parse().unwrap(), n.parse().unwrap());
                    assert_ne!(from, me, "client {me} got its own line back");
                    assert_eq!(n, next[from], "client {me}: from {from}, once and in order");
                    next[from] += 1;
                }
                (w, r)
            })
        })
        .collect();
    for k in 0..TYPED {
        chat.type_line(&format!("typed {k}"));
    }
    let mut conns: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    // Nothing else was sent: after every expected line, the next one is the operator's.
    chat.type_line("end");
    for (_, r) in &mut conns {
        assert_eq!(read_line(r), "end");
    }
    if let Some(summary) = chat.stop() {
        assert!(summary.contains("50 accepted"), "{summary}");
        assert!(summary.contains("50 closed (shutdown 50)"), "{summary}");
    }
}

fn a_client_that_never_reads_is_closed_while_the_others_get_everything(b: Backend) {
    const LINES: usize = 8_000;
    const LEN: usize = 1_000; // 8 MB in all: more than the kernel buffers and the limit
    const MAX_QUEUED: &str = "262144";
    // The talker keeps at most this many lines ahead of the slowest reader: a reader is slow
    // (a test thread on a busy machine), not deaf, and must stay under its limit.
    const WINDOW: usize = 64;
    let mut chat = Chat::start(b, &["--max-queued-write", MAX_QUEUED]);
    let (mut talker, mut talker_r) = connect(chat.addr);
    // A small receive buffer (no autotuning), so the server's queue is what fills up.
    let deaf = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    deaf.set_recv_buffer_size(4096).unwrap();
    deaf.connect(&chat.addr.into()).unwrap();
    let deaf: TcpStream = deaf.into();
    let mut deaf_r = BufReader::new(deaf.try_clone().unwrap());
    let mut readers: Vec<_> = (0..3).map(|_| connect(chat.addr)).collect();
    {
        let mut all: Vec<_> = readers.iter_mut().map(|(_, r)| r).collect();
        all.push(&mut talker_r);
        all.push(&mut deaf_r);
        sync_all(&mut chat, &mut all);
    }
    // From here on the deaf client reads nothing.
    let progress: Arc<Vec<AtomicUsize>> = Arc::new((0..3).map(|_| AtomicUsize::new(0)).collect());
    let threads: Vec<_> = readers
        .into_iter()
        .enumerate()
        .map(|(i, (w, mut r))| {
            let progress = progress.clone();
            std::thread::spawn(move || {
                for n in 0..LINES {
                    progress[i].store(n, Ordering::Release);
                    let line = read_line(&mut r);
                    assert_eq!(line.len(), LEN, "line {n}");
                    assert!(line.starts_with(&format!("{n:08} ")), "line {n} in order");
                }
                (w, r)
            })
        })
        .collect();
    let filler = "x".repeat(LEN - 9);
    let started = Instant::now();
    for n in 0..LINES {
        while progress
            .iter()
            .any(|p| p.load(Ordering::Acquire) + WINDOW < n)
        {
            assert!(started.elapsed() < PATIENCE * 4, "the readers stalled");
            std::thread::sleep(Duration::from_micros(200));
        }
        talker
            .write_all(format!("{n:08} {filler}\n").as_bytes())
            .unwrap();
    }
    let mut readers: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(started.elapsed() < PATIENCE * 4);
    // The deaf client was closed (a reset: its queue was dropped), having had far less.
    deaf.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut got = 0usize;
    let mut buf = vec![0u8; 64 << 10];
    let ended = loop {
        match deaf_r.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(e) => panic!("the deaf client was never closed: {e}"),
        }
    };
    assert!(ended && got < LINES * LEN, "closed after {got} bytes");
    chat.type_line("end");
    for (_, r) in &mut readers {
        assert_eq!(read_line(r), "end");
    }
    if let Some(summary) = chat.stop() {
        assert!(
            summary.contains("limit 1"),
            "closed by its limit: {summary}"
        );
    }
}

fn bad_arguments_are_one_line_and_exit_2(b: Backend) {
    for args in [
        &["--workers", "0"][..],
        &["--addr", "nowhere"],
        &["--frobnicate"],
    ] {
        let out = Command::new(chat_binary())
            .args(args)
            .env("RINGPORT_BACKEND", b.to_string())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.starts_with("chat: ") && !err.contains("{"), "{err}");
    }
}
