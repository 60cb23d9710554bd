//! Descriptor exhaustion: `ringport echo-server` with a tiny open-file limit. When accepting
//! fails with EMFILE the server backs off instead of spinning on the listener, keeps serving the
//! connections it has, and accepts the waiting ones once descriptors are free again.

#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ringport");

/// CPU time of every thread of process `pid` (`/proc/PID/task/*/schedstat`, in ns).
fn cpu_time(pid: u32) -> Duration {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        if let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) {
            ns += stat
                .split_whitespace()
                .next()
                .unwrap_or("0")
                .parse::<u64>()
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(ns)
}

/// Kills the server if the test ends early (a failed assertion must not leave it running).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether the server echoes a line on `s` within `wait`.
fn echoes(s: &mut TcpStream, line: &[u8], wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    if s.write_all(line).is_err() {
        return false;
    }
    let mut back = vec![0u8; line.len()];
    s.read_exact(&mut back).is_ok() && back == line
}

#[test]
fn descriptor_exhaustion_backs_off_keeps_serving_and_recovers() {
    for backend in ["uring", "epoll"] {
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n 40 && exec {BIN} echo-server --addr 127.0.0.1:0 --codec line \
                 --quiet --workers 1 --backend {backend}"
            ))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = KillOnDrop(child);
        let pid = child.0.id();
        let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let addr: SocketAddr = first
            .split_whitespace()
            .skip_while(|w| *w != "on")
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let accept_failures = Arc::new(AtomicUsize::new(0));
        let stderr = child.0.stderr.take().unwrap();
        let counter = accept_failures.clone();
        let log = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let line = line.unwrap_or_default();
                if line.contains("accept failed") {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        });

        // Connect until a client is left waiting in the backlog: the server is out of descriptors.
        let mut served = Vec::new();
        let mut waiting = loop {
            assert!(served.len() < 40, "{backend}: the limit never bit");
            let mut c = TcpStream::connect(addr).unwrap();
            if echoes(&mut c, b"hello\n", Duration::from_millis(500)) {
                served.push(c);
            } else {
                break vec![c];
            }
        };
        for _ in 0..4 {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(b"waiting\n").unwrap();
            waiting.push(c);
        }

        // While exhausted: no spinning, and the connections it has are still served.
        let failures_before = accept_failures.load(Ordering::Relaxed);
        let cpu_before = cpu_time(pid);
        std::thread::sleep(Duration::from_millis(1500));
        let cpu = cpu_time(pid) - cpu_before;
        let failures = accept_failures.load(Ordering::Relaxed) - failures_before;
        assert!(
            cpu < Duration::from_millis(500),
            "{backend}: {cpu:?} of CPU in 1.5 s out of descriptors: the accept path spins"
        );
        // The back-off retries every 100 ms; the log says so once per 5 s, with a count.
        assert!(
            failures <= 1,
            "{backend}: {failures} lines of accept failures in 1.5 s: the warning is not rate-limited"
        );
        for c in &mut served {
            assert!(
                echoes(c, b"still served\n", Duration::from_secs(10)),
                "{backend}"
            );
        }

        // Free descriptors: the waiting connections are accepted and answered.
        served.truncate(served.len() - 8);
        for c in &mut waiting {
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut back = [0u8; 16];
            let n = c.read(&mut back).unwrap();
            assert!(n > 0, "{backend}: a waiting client was never served");
        }
        assert!(
            echoes(&mut waiting[0], b"and now\n", Duration::from_secs(10)),
            "{backend}"
        );

        let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.0.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "{backend}: no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "{backend}: {status:?}");
        log.join().unwrap();
    }
}
