//! What the binary's integration tests share: the `ringport` executable, a running echo server
//! process, free loopback ports.

#![allow(dead_code)] // each test crate uses its own part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_ringport");

/// The backends this build has, by the names `--backend` takes.
pub fn backends() -> impl Iterator<Item = &'static str> {
    ringport::Backend::compiled().iter().map(|b| b.name())
}

/// A running `ringport echo-server`, killed when dropped.
pub struct ServerProc {
    pub child: Child,
    pub addr: SocketAddr,
    /// The rest of its stdout, which `terminate` reads.
    #[cfg_attr(not(unix), allow(dead_code))]
    stdout: BufReader<std::process::ChildStdout>,
}

impl ServerProc {
    pub fn start(args: &[&str]) -> ServerProc {
        ServerProc::start_with(Command::new(BIN), args)
    }

    pub fn start_with(mut cmd: Command, args: &[&str]) -> ServerProc {
        let mut child = cmd
            .arg("echo-server")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ringport");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .split_whitespace()
            .skip_while(|w| *w != "on")
            .nth(1)
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .parse()
            .unwrap();
        ServerProc {
            child,
            addr,
            stdout,
        }
    }

    /// SIGTERM, then the exit status and the rest of stdout.
    #[cfg(unix)]
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        use std::time::{Duration, Instant};

        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        (status, rest)
    }
}

impl ServerProc {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Checks that a run given wrong flags or an unusable address failed, said `expect` on stderr,
/// and did not panic.
pub fn assert_fails_clearly(args: &[&str], out: &Output, expect: &str) {
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(
        err.contains(expect),
        "{args:?}: expected {expect:?} in {err:?}"
    );
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
}

/// The whole HTTP response of the server's metrics endpoint at `addr` to `GET /metrics`.
pub fn get_metrics(addr: &str) -> String {
    let mut http = TcpStream::connect(addr).expect("metrics endpoint");
    http.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut response = String::new();
    http.read_to_string(&mut response).unwrap();
    response
}

/// SIGTERM to `child`, then its exit status if it exits within `within` (else `None`; the
/// caller kills it).
#[cfg(unix)]
pub fn sigterm_and_wait(
    child: &mut Child,
    within: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    use std::time::Instant;
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    None
}

/// Connects to `addr`, retrying for up to 30 s while the server starts.
pub fn connect_when_up(addr: SocketAddr) -> TcpStream {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => return s,
            Err(e) if std::time::Instant::now() > deadline => panic!("no server on {addr}: {e}"),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
}

/// Whether `line` comes back on `s` within `wait`.
pub fn echoes_within(s: &mut TcpStream, line: &[u8], wait: std::time::Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    if s.write_all(line).is_err() {
        return false;
    }
    let mut back = vec![0u8; line.len()];
    s.read_exact(&mut back).is_ok() && back == line
}

/// The address in the server's first line ("ringport echo-server listening on ADDR (…)").
pub fn banner_addr(line: &str) -> SocketAddr {
    line.split_whitespace()
        .skip_while(|w| *w != "on")
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
}
