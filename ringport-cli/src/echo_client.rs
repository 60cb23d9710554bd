//! `ringport echo-client`: the tutorials' echo client, on a completion port.
//!
//! Interactive when stdin is a terminal: each typed line is sent and its echo printed. Piped:
//! reads stdin to its end, sends it all, prints the echoes, and exits 0 only if every byte came
//! back unchanged. When the server is not up yet it says so and retries with backoff, as the
//! tutorials' client offers to reconnect.

use std::collections::VecDeque;
use std::error::Error;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringport::server::{Codec, CodecKind};
use ringport::{BackendChoice, Buf, Completions, Outcome, Port, op};

use crate::args;

/// `ringport echo-client` options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The echo server's address (HOST:PORT; a host name is resolved).
    #[arg(long, default_value = "127.0.0.1:7000", value_parser = args::socket_addr)]
    addr: SocketAddr,
    /// Framing, as the server's --codec: raw, len (u32 prefix), len16, line. With line or len
    /// codecs each input line is one message.
    #[arg(long, default_value = "line")]
    codec: CodecKind,
    /// Kernel backend: auto, uring, epoll or iocp (the only one on Windows).
    #[arg(long, default_value = "auto")]
    backend: BackendChoice,
    /// Connection attempts to retry while the server is not up (0: fail at once).
    #[arg(long, default_value_t = 5)]
    retry: u32,
    /// Wait before the first retry; doubles each time, up to 5s.
    #[arg(long, default_value = "200ms", value_parser = args::duration)]
    retry_delay: Duration,
    /// How long to wait for the echoes once all input is sent.
    #[arg(long, default_value = "10s", value_parser = args::duration)]
    timeout: Duration,
}

const CONNECT: u64 = 1;
const RECV: u64 = 2;
const SEND: u64 = 3;
const INPUT: u64 = 4;
const INPUT_END: u64 = 5;

/// Input read by the stdin thread, waiting for the port's thread.
type Inbox = Arc<Mutex<VecDeque<Vec<u8>>>>;

/// Runs the client.
pub fn run(args: Args) -> Result<ExitCode, Box<dyn Error>> {
    let interactive = io::stdin().is_terminal();
    let codec = args.codec.codec();
    let mut port = Port::builder().backend(args.backend).build()?;
    let mut batch = Completions::default();
    let stream = connect(&mut port, &mut batch, &args)?;
    if interactive {
        println!(
            "connected to {} (codec {}); type lines, Ctrl-D to quit",
            args.addr, args.codec
        );
    }

    // A thread reads stdin and posts each piece to the port.
    let inbox: Inbox = Arc::default();
    let poster = port.poster();
    let by_line = args.codec != CodecKind::Raw;
    {
        let inbox = inbox.clone();
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                let mut stdin = io::stdin().lock();
                loop {
                    let mut piece = Vec::new();
                    let n = if by_line {
                        stdin.read_until(b'\n', &mut piece)
                    } else {
                        piece.resize(64 << 10, 0);
                        stdin.read(&mut piece).inspect(|&n| piece.truncate(n))
                    };
                    match n {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            inbox
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push_back(piece);
                            if poster.post(INPUT, 0).is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = poster.post(INPUT_END, 0);
            })?;
    }

    let mut session = Session {
        codec,
        by_line,
        interactive,
        expected: VecDeque::new(),
        pending_bytes: 0,
        decoded: Vec::new(),
        mismatches: 0,
        out: io::stdout().lock(),
    };
    port.submit(op::RecvMulti::new(&stream), RECV)?;
    if interactive {
        session.prompt();
    }
    let result = exchange(&mut port, &mut batch, &stream, &inbox, &mut session, &args);
    if session.mismatches > 0 {
        eprintln!(
            "ringport: {} echoed messages differed from what was sent",
            session.mismatches
        );
        result?;
        return Ok(ExitCode::FAILURE);
    }
    result?;
    if !interactive {
        eprintln!("all bytes echoed back");
    }
    Ok(ExitCode::SUCCESS)
}

/// Sends the input as it comes and checks the echoes, until all input is echoed.
fn exchange(
    port: &mut Port,
    batch: &mut Completions,
    stream: &TcpStream,
    inbox: &Inbox,
    session: &mut Session,
    args: &Args,
) -> Result<(), Box<dyn Error>> {
    let mut input_done = false;
    let mut deadline: Option<Instant> = None;
    loop {
        if input_done && session.pending_bytes == 0 {
            break;
        }
        let wait = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if wait == Some(Duration::ZERO) {
            return Err(format!(
                "timed out after {:?} with {} bytes not echoed",
                args.timeout, session.pending_bytes
            )
            .into());
        }
        port.wait(batch, wait)?;
        for c in batch.drain() {
            match c.outcome {
                Outcome::Posted(_) if c.token == INPUT => {
                    let pieces: Vec<Vec<u8>> = inbox
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .drain(..)
                        .collect();
                    for piece in pieces {
                        let frame = session.frame(&piece)?;
                        port.submit(op::Send::new(stream, frame), SEND)?;
                    }
                }
                Outcome::Posted(_) if c.token == INPUT_END => {
                    input_done = true;
                    deadline = Some(Instant::now() + args.timeout);
                }
                Outcome::Send { result, buf } => {
                    let n = result.map_err(|e| format!("send failed: {e}"))?;
                    if n < buf.len() {
                        return Err("the server went away while we were sending".into());
                    }
                }
                Outcome::RecvMulti { result, buf } => {
                    let n = result.map_err(|e| format!("receive failed: {e}"))?;
                    match buf {
                        Some(buf) => session.received(&buf)?,
                        None if n == 0 && (session.pending_bytes > 0 || !input_done) => {
                            return Err(format!(
                                "the server closed the connection with {} bytes not echoed",
                                session.pending_bytes
                            )
                            .into());
                        }
                        None => {}
                    }
                    if !c.more && n > 0 {
                        port.submit(op::RecvMulti::new(stream), RECV)?;
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Connects, retrying with backoff while the server is not up.
fn connect(
    port: &mut Port,
    batch: &mut Completions,
    args: &Args,
) -> Result<TcpStream, Box<dyn Error>> {
    let mut delay = args.retry_delay;
    for attempt in 0..=args.retry {
        port.submit(op::Connect::new(args.addr)?, CONNECT)?;
        let result = loop {
            port.wait(batch, None)?;
            if let Some(c) = batch.drain().find(|c| c.token == CONNECT) {
                match c.outcome {
                    Outcome::Connect(result) => break result,
                    other => return Err(format!("unexpected completion {other:?}").into()),
                }
            }
        };
        match result {
            Ok(stream) => return Ok(stream),
            Err(e) if attempt < args.retry && retryable(&e) => {
                eprintln!(
                    "ringport: the server at {} is not up ({e}); retrying in {delay:?} \
                     (attempt {} of {})",
                    args.addr,
                    attempt + 1,
                    args.retry
                );
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                let hint = if retryable(&e) {
                    " (is `ringport echo-server` running?)"
                } else {
                    ""
                };
                return Err(format!("cannot connect to {}: {e}{hint}", args.addr).into());
            }
        }
    }
    unreachable!("the last attempt returns")
}

fn retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::TimedOut
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}

/// What was sent and not yet echoed, and the echoes decoded so far.
struct Session {
    codec: Arc<dyn Codec>,
    by_line: bool,
    interactive: bool,
    /// Payloads (or, raw, byte runs) sent and not yet echoed, in order.
    expected: VecDeque<Vec<u8>>,
    pending_bytes: usize,
    /// Received bytes not yet a whole frame.
    decoded: Vec<u8>,
    mismatches: usize,
    out: io::StdoutLock<'static>,
}

impl Session {
    fn prompt(&mut self) {
        let _ = write!(self.out, "> ");
        let _ = self.out.flush();
    }

    /// Frames one piece of input for sending and remembers what must come back.
    fn frame(&mut self, piece: &[u8]) -> Result<Buf, Box<dyn Error>> {
        let payload = if self.by_line {
            let line = piece.strip_suffix(b"\n").unwrap_or(piece);
            line.strip_suffix(b"\r").unwrap_or(line)
        } else {
            piece
        };
        let mut frame = Buf::with_capacity(payload.len() + 8);
        self.codec
            .encode(payload, &mut frame)
            .map_err(|e| format!("cannot send this input: {e}"))?;
        self.pending_bytes += payload.len();
        self.expected.push_back(payload.to_vec());
        Ok(frame)
    }

    /// Checks and prints echoed bytes.
    fn received(&mut self, data: &[u8]) -> Result<(), Box<dyn Error>> {
        if !self.by_line {
            // Raw: the echo may come back in other chunks than it went out.
            let mut rest = data;
            while !rest.is_empty() {
                let Some(front) = self.expected.front_mut() else {
                    return Err("the server sent bytes we never sent".into());
                };
                let n = rest.len().min(front.len());
                if rest[..n] != front[..n] {
                    self.mismatches += 1;
                }
                front.drain(..n);
                if front.is_empty() {
                    self.expected.pop_front();
                }
                self.pending_bytes -= n;
                rest = &rest[n..];
            }
            self.out.write_all(data)?;
            self.out.flush()?;
            return Ok(());
        }
        self.decoded.extend_from_slice(data);
        let mut pos = 0;
        while let Some(frame) = self
            .codec
            .decode(&self.decoded[pos..], usize::MAX >> 1)
            .map_err(|e| format!("the server's reply is not framed: {e}"))?
        {
            let payload = &self.decoded[pos + frame.payload.start..pos + frame.payload.end];
            match self.expected.pop_front() {
                Some(sent) => {
                    if sent != payload {
                        self.mismatches += 1;
                    }
                    self.pending_bytes -= sent.len();
                }
                None => return Err("the server sent a message we never sent".into()),
            }
            self.out.write_all(payload)?;
            self.out.write_all(b"\n")?;
            pos += frame.len;
        }
        self.decoded.drain(..pos);
        if self.interactive && pos > 0 {
            self.prompt();
        }
        self.out.flush()?;
        Ok(())
    }
}
