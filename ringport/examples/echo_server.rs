//! The tutorials' echo server, on the bare completion port.
//!
//! One thread, one [`Port`]: a multishot accept takes every connection, a multishot receive per
//! connection fills pool buffers, and each filled buffer is sent straight back (no copy) and
//! returns to the pool when the send completes.
//!
//! ```text
//! cargo run --release --example echo_server -- [ADDR] [--once]
//! ```
//!
//! `ADDR` (`HOST:PORT`) defaults to `127.0.0.1:7000`; `RINGPORT_BACKEND=epoll` picks the
//! fallback backend. With `--once` the server exits after its first client disconnects (used by
//! CI). Ctrl-C (or SIGTERM) closes every connection and exits 0 with a one-line summary: the
//! signal handler wakes the port with a posted completion, as the tutorials' servers post one
//! to tell their workers to stop.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::process::ExitCode;

use ringport::{Completions, Outcome, Port, op};

/// Token of the listener's accept; connections use their own ids (from 1).
const ACCEPT: u64 = 0;
/// Token of the completion the Ctrl-C handler posts.
const STOP: u64 = u64::MAX - 1;
/// Token of the close operations, whose completions need nothing.
const CLOSED: u64 = u64::MAX;

const USAGE: &str = "usage: echo_server [ADDR] [--once]";

struct Conn {
    stream: TcpStream,
    /// Sends in flight: the connection is closed once the peer is gone and these are done.
    sending: usize,
    /// The multishot receive ended (peer closed, error, or pool dry).
    recv_ended: bool,
    /// The receive ended only because the pool ran dry: re-arm once a send frees a buffer.
    starved: bool,
}

/// What the command line asks for.
struct Options {
    addr: SocketAddr,
    once: bool,
}

/// Reads the command line: `None` after printing the help.
fn options() -> Result<Option<Options>, String> {
    let mut addr = None;
    let mut once = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--once" => once = true,
            "-h" | "--help" => {
                println!(
                    "{USAGE}\n\nThe tutorials' echo server on one completion port.\n\n  \
                     ADDR    address to listen on, HOST:PORT [default: 127.0.0.1:7000]\n  \
                     --once  exit after the first client disconnects\n\n\
                     RINGPORT_BACKEND=epoll picks the fallback backend; Ctrl-C stops the server."
                );
                return Ok(None);
            }
            flag if flag.starts_with('-') => return Err(format!("unknown flag {flag:?}")),
            a if addr.is_some() => return Err(format!("unexpected argument {a:?}")),
            a => {
                let resolved = a
                    .to_socket_addrs()
                    .map_err(|e| format!("{a:?} is not an address to listen on (HOST:PORT): {e}"))?
                    .next()
                    .ok_or_else(|| format!("{a:?} resolves to no address"))?;
                addr = Some(resolved);
            }
        }
    }
    Ok(Some(Options {
        addr: addr.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 7000))),
        once,
    }))
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(Some(options)) => options,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match serve(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(options: &Options) -> io::Result<()> {
    let addr = options.addr;
    let once = options.once;
    let listener = TcpListener::bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    let mut port = Port::new()?;
    port.associate(&listener)?;
    let poster = port.poster();
    ctrlc::set_handler(move || {
        // The port may be gone already (the server is exiting): nothing to wake then.
        let _ = poster.post(STOP, 0);
    })
    .map_err(|e| io::Error::other(format!("cannot handle Ctrl-C: {e}")))?;
    println!(
        "echo server on {} ({} backend)",
        listener.local_addr()?,
        port.backend()
    );
    if let Some(why) = port.fallback_reason() {
        println!("note: {why}");
    }
    port.submit(op::AcceptMulti::new(&listener), ACCEPT)?;

    let mut conns: HashMap<u64, Conn> = HashMap::new();
    let mut next_id = 1;
    let mut served = 0;
    let mut batch = Completions::default();
    loop {
        port.wait(&mut batch, None)?;
        for c in batch.drain() {
            let token = c.token;
            match c.outcome {
                Outcome::Accept(Ok((stream, peer))) => {
                    let id = next_id;
                    next_id += 1;
                    println!("client {id} connected from {peer}");
                    port.submit(op::RecvMulti::new(&stream), id)?;
                    let conn = Conn {
                        stream,
                        sending: 0,
                        recv_ended: false,
                        starved: false,
                    };
                    conns.insert(id, conn);
                }
                Outcome::Accept(Err(e)) => {
                    eprintln!("accept failed: {e}");
                    if !c.more {
                        port.submit(op::AcceptMulti::new(&listener), ACCEPT)?;
                    }
                }
                Outcome::RecvMulti { result, buf } => {
                    let Some(conn) = conns.get_mut(&token) else {
                        continue;
                    };
                    if let Some(buf) = buf {
                        // Echo the pool buffer itself; it goes back to the pool after the send.
                        port.submit(op::Send::new(&conn.stream, buf), token)?;
                        conn.sending += 1;
                    }
                    if !c.more {
                        match result {
                            Err(e) if ringport::is_out_of_buffers(&e) => conn.starved = true,
                            Ok(n) if n > 0 => {
                                port.submit(op::RecvMulti::new(&conn.stream), token)?;
                            }
                            _ => conn.recv_ended = true,
                        }
                    }
                }
                Outcome::Send { result, buf } => {
                    let Some(conn) = conns.get_mut(&token) else {
                        continue;
                    };
                    conn.sending -= 1;
                    if !matches!(result, Ok(n) if n == buf.len()) {
                        conn.recv_ended = true; // the peer is gone
                    }
                    drop(buf);
                    if conn.starved && !conn.recv_ended {
                        conn.starved = false;
                        port.submit(op::RecvMulti::new(&conn.stream), token)?;
                    }
                }
                Outcome::Close(_) => {}
                Outcome::Posted(_) if token == STOP => {
                    let open = conns.len();
                    for (_, conn) in conns.drain() {
                        // Sends still in flight complete with an error once the socket closes.
                        port.submit(op::Close::new(conn.stream), CLOSED)?;
                    }
                    println!("stopped: {served} clients served, {open} open connections closed");
                    return Ok(());
                }
                other => eprintln!("unexpected completion: {other:?}"),
            }
            let done = conns
                .get(&token)
                .is_some_and(|conn| conn.recv_ended && conn.sending == 0);
            if done {
                let conn = conns.remove(&token).expect("checked above");
                port.submit(op::Close::new(conn.stream), CLOSED)?;
                println!("client {token} disconnected");
                served += 1;
                if once && served == 1 {
                    return Ok(());
                }
            }
        }
    }
}
