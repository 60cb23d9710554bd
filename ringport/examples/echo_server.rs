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
//! `ADDR` defaults to `127.0.0.1:7000`; `RINGPORT_BACKEND=epoll` picks the fallback backend.
//! With `--once` the server exits after its first client disconnects (used by CI).

use std::collections::HashMap;
use std::io;
use std::net::{TcpListener, TcpStream};

use ringport::{Completions, Outcome, Port, op};

/// Token of the listener's accept; connections use their own ids (from 1).
const ACCEPT: u64 = 0;

struct Conn {
    stream: TcpStream,
    /// Sends in flight: the connection is closed once the peer is gone and these are done.
    sending: usize,
    /// The multishot receive ended (peer closed, error, or pool dry).
    recv_ended: bool,
    /// The receive ended only because the pool ran dry: re-arm once a send frees a buffer.
    starved: bool,
}

fn main() -> io::Result<()> {
    let mut addr = "127.0.0.1:7000".to_string();
    let mut once = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--once" => once = true,
            "-h" | "--help" => {
                println!("usage: echo_server [ADDR] [--once]");
                return Ok(());
            }
            a => addr = a.to_string(),
        }
    }

    let listener = TcpListener::bind(&addr)?;
    let mut port = Port::new()?;
    port.associate(&listener)?;
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
                other => eprintln!("unexpected completion: {other:?}"),
            }
            let done = conns
                .get(&token)
                .is_some_and(|conn| conn.recv_ended && conn.sending == 0);
            if done {
                let conn = conns.remove(&token).expect("checked above");
                port.submit(op::Close::new(conn.stream), u64::MAX)?;
                println!("client {token} disconnected");
                served += 1;
                if once && served == 1 {
                    return Ok(());
                }
            }
        }
    }
}
