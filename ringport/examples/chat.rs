//! A line-delimited chat server on the server framework.
//!
//! ```text
//! cargo run --release --example chat -- --addr 127.0.0.1:7100 --workers 2
//! ```
//!
//! Every line a client sends goes, unchanged and with its newline, to every *other* connected
//! client (not back to the sender): the handler broadcasts it, and the workers deliver it to
//! their own connections — a wake-up per worker, not per client. Every line typed on the
//! server's standard input goes to every client: a push from a thread that is not a worker.
//! Nothing else is ever sent to a client, and nothing polls: an idle client costs no wake-ups.
//!
//! Options: `--addr ADDR` (default `127.0.0.1:7100`), `--workers N` (default: one per CPU),
//! `--max-queued-write BYTES` (a client that does not read is closed once this much waits for
//! it; default 4 MiB), `--accept reuseport|handoff` (how connections reach the workers; with
//! `handoff` the n-th connection goes to worker n mod N). `RINGPORT_BACKEND=epoll` picks the fallback backend. Ctrl-C or SIGTERM
//! shuts down gracefully and prints the final counters.

use std::io::{self, BufRead};
use std::net::SocketAddr;
use std::process::ExitCode;

use ringport::Buf;
use ringport::server::{
    AcceptMode, Codec, Ctx, Frame, FrameError, Handler, Limits, Server, UnknownChoice,
};

/// Lines ending in `\n`; the payload is everything before it (a `\r` included), so a line goes
/// out exactly as it came in.
struct Lf;

impl Codec for Lf {
    fn decode(&self, input: &[u8], max_frame: usize) -> Result<Option<Frame>, FrameError> {
        let window = &input[..input.len().min(max_frame.saturating_add(1))];
        match window.iter().position(|&b| b == b'\n') {
            Some(nl) => Ok(Some(Frame {
                payload: 0..nl,
                len: nl + 1,
            })),
            None if input.len() > max_frame => Err(FrameError::TooLarge {
                size: input.len(),
                max: max_frame,
            }),
            None => Ok(None),
        }
    }

    fn encode(&self, payload: &[u8], out: &mut Buf) -> Result<(), FrameError> {
        if payload.contains(&b'\n') {
            return Err(FrameError::Malformed("a line payload contains a newline"));
        }
        out.extend_from_slice(payload);
        out.extend_from_slice(b"\n");
        Ok(())
    }

    fn name(&self) -> &'static str {
        "lf-lines"
    }
}

/// One chat client: everything it says goes to everyone else.
struct Chatter;

impl Handler for Chatter {
    fn on_frame(&mut self, cx: &mut Ctx<'_>, line: &[u8]) {
        // A line always frames (it came in as one), so this cannot fail.
        let _ = cx.broadcast(line);
    }
}

struct Args {
    addr: SocketAddr,
    workers: Option<usize>,
    max_queued_write: Option<usize>,
    accept: Option<AcceptMode>,
}

const USAGE: &str = "usage: chat [--addr ADDR] [--workers N] [--max-queued-write BYTES] [--accept reuseport|handoff]";

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut out = Args {
        addr: SocketAddr::from(([127, 0, 0, 1], 7100)),
        workers: None,
        max_queued_write: None,
        accept: None,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--addr" => {
                let v = value("--addr")?;
                out.addr = v
                    .parse()
                    .map_err(|_| format!("--addr {v:?} is not an address like 127.0.0.1:7100"))?;
            }
            "--workers" => out.workers = Some(positive("--workers", value("--workers")?)?),
            "--max-queued-write" => {
                let v = value("--max-queued-write")?;
                out.max_queued_write = Some(positive("--max-queued-write", v)?);
            }
            "--accept" => {
                out.accept = Some(
                    value("--accept")?
                        .parse()
                        .map_err(|e: UnknownChoice| e.to_string())?,
                )
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(out)
}

fn positive(name: &str, v: String) -> Result<usize, String> {
    v.parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or(format!("{name} {v:?} is not a positive number"))
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("chat: {e} ({USAGE})");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> io::Result<()> {
    let defaults = Limits::default();
    let limits = Limits {
        // A chat client may be silent for as long as it likes: no idle timeout, so no tick.
        idle_timeout: None,
        max_queued_write: args.max_queued_write.unwrap_or(defaults.max_queued_write),
        write_high_water: defaults
            .write_high_water
            .min(args.max_queued_write.unwrap_or(usize::MAX)),
        ..defaults
    };
    let mut builder = Server::builder(args.addr).codec(Lf).limits(limits);
    if let Some(n) = args.workers {
        builder = builder.workers(n);
    }
    if let Some(mode) = args.accept {
        builder = builder.accept_mode(mode);
    }
    let server = builder.serve(|_| Chatter)?;
    println!(
        "chat server on {} ({} backend, {} workers)",
        server.local_addr(),
        server.backend(),
        server.workers()
    );
    let handle = server.handle();
    handle.shutdown_on_signals()?;

    // The operator's lines go to every client, from this thread (not a worker).
    let stdin_handle = handle.clone();
    std::thread::spawn(move || {
        for line in io::stdin().lock().split(b'\n') {
            let Ok(line) = line else { break };
            if stdin_handle.broadcast(&line).is_err() {
                break; // stopping
            }
        }
    });

    let metrics = server.join()?;
    println!("final: {metrics}");
    Ok(())
}
