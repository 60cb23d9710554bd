//! Hostile standard streams: a stdout whose reader is gone, a stderr nobody reads. The server
//! must go on serving and shut down cleanly on SIGTERM.

#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;

/// Kills the child if the test fails before it exits.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ringport echo-server | head -2`: stdout's reader goes away while the server runs. It must
/// keep serving (no "failed printing to stdout" panic), and exit 0 on SIGTERM.
#[test]
fn a_closed_stdout_does_not_stop_the_server() {
    let addr = free_port();
    let mut child = KillOnDrop(
        Command::new(BIN)
            .args(["echo-server", "--codec", "line", "--workers", "1"])
            .args(["--addr", &addr.to_string(), "--stats-interval", "100ms"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    drop(child.0.stdout.take()); // the reader is gone: every write to stdout fails with EPIPE
    let mut c = connect_when_up(addr);
    assert!(echoes_within(&mut c, b"before\n", Duration::from_secs(10)));
    // Several stats lines are due (and fail) meanwhile.
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        echoes_within(&mut c, b"after the close\n", Duration::from_secs(10)),
        "the server stopped serving once stdout was closed"
    );
    let status = sigterm_and_wait(&mut child.0, Duration::from_secs(60));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}, stderr: {stderr}"
    );
}

/// A stderr that nobody reads: once its pipe is full, a log line must not block the worker
/// that writes it (which then neither serves nor shuts down). The pipe is filled before the
/// server starts; running out of descriptors makes the worker log "accept failed" lines.
#[test]
fn a_stderr_nobody_reads_does_not_stall_the_server() {
    let (reader, writer) = std::io::pipe().unwrap();
    // Fill the pipe a byte at a time (so no room is left), from a thread that blocks when full.
    let written = Arc::new(AtomicUsize::new(0));
    let mut filler = writer.try_clone().unwrap();
    let count = written.clone();
    std::thread::spawn(move || {
        while filler.write_all(b"x").is_ok() {
            count.fetch_add(1, Ordering::Relaxed);
        }
    });
    let mut last = usize::MAX;
    while written.load(Ordering::Relaxed) != last {
        last = written.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(200));
    }

    let mut child = KillOnDrop(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n 40 && exec {BIN} echo-server --addr 127.0.0.1:0 --codec line \
                 --quiet --workers 1"
            ))
            .env("RUST_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(writer))
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr = banner_addr(&first);
    let mut c = TcpStream::connect(addr).unwrap();
    assert!(echoes_within(&mut c, b"hello\n", Duration::from_secs(10)));

    // More clients than descriptors: accepting fails, and the worker logs it.
    let crowd: Vec<TcpStream> = (0..60)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        echoes_within(&mut c, b"still there?\n", Duration::from_secs(10)),
        "the worker stopped serving: blocked writing a log line to a full stderr?"
    );
    drop(crowd);

    let status = sigterm_and_wait(&mut child.0, Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "no clean exit within 10 s of SIGTERM ({status:?}): a log write blocks the shutdown"
    );
    drop(reader); // kept open (and never read) until here
}
