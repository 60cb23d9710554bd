//! The server under test: an existing one (`--addr`, optionally `--server-pid` to observe it),
//! or one the bench starts and stops — `ringport echo-server` (this same executable) on a
//! chosen backend, or the tokio echo server of the `ringport-bench` crate.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cpus::CpuList;

/// How long a spawned server may take to start listening, and to exit after SIGTERM.
const START_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A kind of server the bench can start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `ringport echo-server --backend NAME` (`auto`, `uring`, `epoll`).
    Ringport(String),
    /// The tokio echo server binary.
    Tokio(PathBuf),
}

impl Kind {
    /// The short name in tables and JSON: the backend, or `tokio`.
    pub fn label(&self) -> String {
        match self {
            Kind::Ringport(backend) => backend.clone(),
            Kind::Tokio(_) => "tokio".into(),
        }
    }

    /// A server by name: `uring`, `epoll`, `auto` or `tokio`.
    pub fn parse(name: &str, tokio: &Option<PathBuf>) -> Result<Kind, String> {
        match name.trim() {
            "uring" | "epoll" | "auto" => Ok(Kind::Ringport(name.trim().into())),
            "tokio" => Ok(Kind::Tokio(tokio_server(tokio)?)),
            other => Err(format!(
                "unknown server {other:?}: expected uring, epoll, auto or tokio"
            )),
        }
    }
}

/// The tokio echo server: `--tokio-server`, or `tokio-echo-server` beside this executable.
fn tokio_server(given: &Option<PathBuf>) -> Result<PathBuf, String> {
    let path = match given {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find this executable: {e}"))?
            .with_file_name(format!("tokio-echo-server{}", std::env::consts::EXE_SUFFIX)),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "the tokio echo server is not at {}: build it with `cargo build --release -p \
             ringport-bench` (it lands beside `ringport`), or pass --tokio-server PATH",
            path.display()
        ))
    }
}

/// How to start a server.
#[derive(Clone, Debug)]
pub struct Spec {
    pub kind: Kind,
    pub workers: usize,
    pub cpus: Option<CpuList>,
}

/// A server the bench started; stopped (SIGTERM, then its graceful shutdown) by [`stop`], killed
/// if dropped.
///
/// [`stop`]: Spawned::stop
pub struct Spawned {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
    /// The server's first line (where it listens, on what).
    pub banner: String,
    stderr: Arc<Mutex<String>>,
}

impl Spawned {
    /// Starts a server on a free loopback port and waits until it listens.
    pub fn start(spec: &Spec) -> Result<Spawned, String> {
        let mut cmd = match &spec.kind {
            Kind::Ringport(backend) => {
                let exe = std::env::current_exe()
                    .map_err(|e| format!("cannot find this executable: {e}"))?;
                let mut cmd = Command::new(exe);
                cmd.args(["echo-server", "--codec", "raw", "--quiet"])
                    .args(["--backend", backend, "--idle-timeout", "off"])
                    .args(["--max-conns", "10000000", "--shutdown-grace", "2s"]);
                cmd
            }
            Kind::Tokio(path) => Command::new(path),
        };
        cmd.args(["--addr", "127.0.0.1:0"])
            .args(["--workers", &spec.workers.to_string()]);
        if let Some(cpus) = &spec.cpus {
            cmd.args(["--cpus", &cpus.to_string()]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the {} server: {e}", spec.kind.label()))?;
        let pid = child.id();

        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(mut err) = child.stderr.take() {
            let keep = stderr.clone();
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = err.read_to_string(&mut text);
                keep.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&text);
            });
        }
        // The first stdout line says where it listens; the rest is drained so it never blocks.
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut out = BufReader::new(out);
                let mut first = String::new();
                let _ = out.read_line(&mut first);
                let _ = tx.send(first);
                let _ = std::io::copy(&mut out, &mut std::io::sink());
            });
        }
        let mut server = Spawned {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid,
            banner: String::new(),
            stderr,
        };
        let first = rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
        let addr = first
            .split_whitespace()
            .skip_while(|w| *w != "on")
            .nth(1)
            .and_then(|a| a.parse().ok());
        match addr {
            Some(addr) => {
                server.addr = addr;
                server.banner = first.trim().to_string();
                Ok(server)
            }
            None => {
                let _ = server.child.kill();
                let _ = server.child.wait();
                std::thread::sleep(Duration::from_millis(50));
                Err(format!(
                    "the {} server did not start: {}",
                    spec.kind.label(),
                    server.stderr_text().trim()
                ))
            }
        }
    }

    fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops the server the way an operator would (SIGTERM: its graceful shutdown) and waits
    /// for it; fails if it does not exit cleanly in time.
    pub fn stop(mut self) -> Result<(), String> {
        if !terminate(&mut self.child) {
            return Ok(()); // ended at once: nothing graceful to wait for
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    std::thread::sleep(Duration::from_millis(50));
                    return Err(format!(
                        "the server exited with {status}: {}",
                        self.stderr_text().trim()
                    ));
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = self.child.kill();
                    return Err(format!(
                        "the server did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed"
                    ));
                }
            }
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Asks the server to shut down (SIGTERM); true if it will do so gracefully.
#[cfg(unix)]
fn terminate(child: &mut Child) -> bool {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    true
}

/// Windows has no SIGTERM: the server is ended at once.
#[cfg(not(unix))]
fn terminate(child: &mut Child) -> bool {
    let _ = child.kill();
    let _ = child.wait();
    false
}
