//! `ringport echo-server`: the echo server on the server framework, with stats and metrics.

use std::error::Error;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ringport::BackendChoice;
use ringport::server::{AcceptMode, CloseReason, CodecKind, Echo, Limits, Server, ServerHandle};

use crate::args;
use crate::cpus::{self, CpuList};

/// `ringport echo-server` options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7000")]
    addr: SocketAddr,
    /// Worker threads, each with its own completion port [default: one per listed --cpus,
    /// else one per CPU].
    #[arg(long)]
    workers: Option<usize>,
    /// Pin the workers to these CPUs, worker i to the i-th listed (in turn), e.g. 1 or 0,2-3.
    #[arg(long, value_parser = cpus::parse)]
    cpus: Option<CpuList>,
    /// Kernel backend: auto (io_uring if the kernel allows it, else epoll; IOCP on Windows),
    /// uring, epoll or iocp.
    #[arg(long, default_value = "auto")]
    backend: BackendChoice,
    /// Framing: raw (echo bytes as they come), len (u32 big-endian length prefix), len16, line.
    #[arg(long, default_value = "raw")]
    codec: CodecKind,
    /// Connections served at once; more are accepted and closed at once.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    max_conns: usize,
    /// Largest frame a client may send (e.g. 64KiB); a larger one closes that client.
    #[arg(long, default_value = "1MiB", value_parser = args::bytes)]
    max_frame: usize,
    /// Close connections without progress (a whole frame in, or bytes out) this long (e.g. 30s,
    /// 500ms), or "off".
    #[arg(long, default_value = "60s", value_parser = args::optional_duration)]
    idle_timeout: args::MaybeDuration,
    /// Bytes a connection may have queued for sending before it is closed.
    #[arg(long, default_value = "4MiB", value_parser = args::bytes)]
    max_queued_write: usize,
    /// Queued bytes above which a connection stops reading until they drain.
    #[arg(long, default_value = "256KiB", value_parser = args::bytes)]
    write_high_water: usize,
    /// Memory the server may spend on buffers (pools, reassembly, queued writes).
    #[arg(long, default_value = "256MiB", value_parser = args::bytes)]
    memory_budget: usize,
    /// How long a shutdown lets queued writes flush.
    #[arg(long, default_value = "5s", value_parser = args::duration)]
    shutdown_grace: Duration,
    /// How connections reach workers: reuseport (Linux only, its default) or handoff (the
    /// default elsewhere).
    #[arg(long)]
    accept: Option<AcceptMode>,
    /// Serve Prometheus metrics over HTTP on this address (GET /metrics).
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
    /// How often to print a stats line.
    #[arg(long, default_value = "5s", value_parser = args::duration)]
    stats_interval: Duration,
    /// No stats lines (the start and final summary are still printed).
    #[arg(long, short)]
    quiet: bool,
}

/// Runs the server until SIGINT/SIGTERM (Ctrl-C or Ctrl-Break on Windows).
pub fn run(args: Args) -> Result<ExitCode, Box<dyn Error>> {
    let limits = Limits {
        max_connections: args.max_conns,
        max_frame: args.max_frame,
        idle_timeout: args.idle_timeout.0,
        max_queued_write: args.max_queued_write,
        write_high_water: args.write_high_water.min(args.max_queued_write),
        memory_budget: args.memory_budget,
        shutdown_grace: args.shutdown_grace,
    };
    let mut builder = Server::builder(args.addr)
        .backend(args.backend)
        .codec_kind(args.codec)
        .limits(limits);
    if let Some(n) = args.workers.or(args.cpus.as_ref().map(CpuList::len)) {
        builder = builder.workers(n);
    }
    if let Some(list) = args.cpus.clone() {
        list.check_available()?;
        builder = builder.on_worker_start(move |index| {
            if let Err(e) = cpus::pin_current(list.nth(index)) {
                tracing::warn!("worker {index}: {e}");
            }
        });
    }
    if let Some(mode) = args.accept {
        builder = builder.accept_mode(mode);
    }
    let metrics_listener = match args.metrics_addr {
        Some(addr) => Some(
            TcpListener::bind(addr).map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?,
        ),
        None => None,
    };
    let server = builder.serve(|_| Echo)?;
    let pinned = args
        .cpus
        .as_ref()
        .map_or(String::new(), |list| format!(" on CPUs {list}"));
    println!(
        "ringport echo-server listening on {} (backend {}, {} workers{pinned}, codec {})",
        server.local_addr(),
        server.backend(),
        server.workers(),
        server.codec_name()
    );
    if let Some(why) = server.fallback_reason() {
        println!("note: {why}");
    }
    let handle = server.handle();
    handle.shutdown_on_signals()?;
    if let Some(listener) = metrics_listener {
        println!(
            "metrics on http://{}/metrics",
            listener.local_addr().unwrap_or(args.addr)
        );
        let handle = handle.clone();
        std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || serve_metrics(listener, handle))?;
    }
    let _ = std::io::stdout().flush();

    let started = Instant::now();
    let mut last = (Instant::now(), handle.metrics().total());
    while !handle.is_stopping() {
        std::thread::sleep(Duration::from_millis(50));
        if !args.quiet && last.0.elapsed() >= args.stats_interval {
            let now = handle.metrics().total();
            let secs = last.0.elapsed().as_secs_f64();
            println!(
                "[{:>6.1}s] {} active | {:.0} frames/s in | {:.2} MB/s in | {} closed | pool {}/{}",
                started.elapsed().as_secs_f64(),
                now.active,
                (now.frames_in - last.1.frames_in) as f64 / secs,
                (now.bytes_in - last.1.bytes_in) as f64 / secs / 1e6,
                now.closed_total(),
                now.pool_in_use,
                now.pool_capacity,
            );
            let _ = std::io::stdout().flush();
            last = (Instant::now(), now);
        }
    }
    println!("shutting down: finishing queued writes, closing connections");
    let metrics = server.join()?;
    let total = metrics.total();
    println!("final: {metrics}");
    let closed: Vec<String> = CloseReason::ALL
        .iter()
        .filter(|r| total.closed_by(**r) > 0)
        .map(|r| format!("{r} {}", total.closed_by(*r)))
        .collect();
    if !closed.is_empty() {
        println!("closed by reason: {}", closed.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// A minimal HTTP endpoint: `GET /metrics` returns the Prometheus text, anything else 404.
fn serve_metrics(listener: TcpListener, handle: ServerHandle) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut request = [0u8; 1024];
        let n = stream.read(&mut request).unwrap_or(0);
        let first_line = String::from_utf8_lossy(&request[..n]);
        let (status, body) = if first_line.starts_with("GET /metrics") {
            ("200 OK", handle.metrics().to_prometheus())
        } else {
            ("404 Not Found", "try GET /metrics\n".to_string())
        };
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}
