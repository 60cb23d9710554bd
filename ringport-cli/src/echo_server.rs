//! `ringport echo-server`: the echo server on the server framework, with stats and metrics.

use std::error::Error;
use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ringport::BackendChoice;
use ringport::server::{AcceptMode, CodecKind, Echo, Limits, Server};

use crate::args::{self, Usage};
use crate::cpus::{self, CpuList};
use crate::{logging, metrics_http};

/// `ringport echo-server` options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on (HOST:PORT; a host name is resolved).
    #[arg(long, default_value = "127.0.0.1:7000", value_parser = args::socket_addr)]
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
    /// Largest frame a client may send (e.g. 64KiB); a larger one closes that client. At most
    /// 65535 with --codec len16, and at most three quarters of --memory-budget [default: 1MiB;
    /// 65535 with --codec len16].
    #[arg(long, value_parser = args::bytes)]
    max_frame: Option<usize>,
    /// Close connections without progress (a whole frame in, or bytes out) this long (e.g. 30s,
    /// 500ms), or "off".
    #[arg(long, default_value = "60s", value_parser = args::optional_duration)]
    idle_timeout: args::MaybeDuration,
    /// Bytes a connection may have queued for sending before it is closed.
    #[arg(long, default_value = "4MiB", value_parser = args::bytes)]
    max_queued_write: usize,
    /// Queued bytes above which a connection stops reading until they drain; at most
    /// --max-queued-write.
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
    /// Serve Prometheus metrics over HTTP on this address (GET or HEAD /metrics; HOST:PORT, a
    /// host name is resolved).
    #[arg(long, value_parser = args::socket_addr)]
    metrics_addr: Option<SocketAddr>,
    /// How often to print a stats line (longer than zero; --quiet for none).
    #[arg(long, default_value = "5s", value_parser = args::positive_duration)]
    stats_interval: Duration,
    /// No stats lines (the start and final summary are still printed).
    #[arg(long, short)]
    quiet: bool,
}

/// The frame limit of `codec` if `--max-frame` is not given.
fn default_max_frame(codec: CodecKind) -> usize {
    match codec {
        CodecKind::Len16 => usize::from(u16::MAX),
        _ => 1 << 20,
    }
}

/// The server's limits from the flags; flags that do not go together are a [`Usage`] error
/// naming them.
fn limits(args: &Args) -> Result<Limits, Usage> {
    let max_frame = args.max_frame.unwrap_or(default_max_frame(args.codec));
    if args.codec == CodecKind::Len16 && max_frame > usize::from(u16::MAX) {
        return Err(Usage(format!(
            "--max-frame {max_frame} is too large for --codec len16: its frames carry at most \
             65535 bytes (use --codec len for larger ones)"
        )));
    }
    if args.write_high_water > args.max_queued_write {
        return Err(Usage(format!(
            "--write-high-water ({}) must not be above --max-queued-write ({}): a connection \
             would be closed before it is ever paused",
            args.write_high_water, args.max_queued_write
        )));
    }
    let limits = Limits {
        max_connections: args.max_conns,
        max_frame,
        idle_timeout: args.idle_timeout.0,
        max_queued_write: args.max_queued_write,
        write_high_water: args.write_high_water,
        memory_budget: args.memory_budget,
        shutdown_grace: args.shutdown_grace,
    };
    limits.validate().map_err(|e| Usage(e.to_string()))?;
    Ok(limits)
}

/// Stdout for the stats and summary lines: once a write fails (the reader is gone, e.g.
/// `| head`), nothing more is printed and the server goes on serving.
#[derive(Default)]
struct Stdout {
    gone: bool,
}

impl Stdout {
    /// Prints one line (and flushes it), unless stdout is gone.
    fn line(&mut self, line: fmt::Arguments<'_>) {
        if self.gone {
            return;
        }
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            self.gone = true;
        }
    }
}

/// Runs the server until SIGINT/SIGTERM (Ctrl-C or Ctrl-Break on Windows).
pub fn run(args: Args) -> Result<ExitCode, Box<dyn Error>> {
    let limits = limits(&args)?;
    if let Some(addr) = args.metrics_addr
        && addr == args.addr
        && addr.port() != 0
    {
        return Err(Usage(format!(
            "--metrics-addr {addr} is the --addr of the echo server: give the metrics listener \
             an address of its own"
        ))
        .into());
    }
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
    let server = builder.serve(|_| Echo)?;
    let handle = server.handle();
    // After the echo server, so that a failure names the listener that failed.
    let metrics_server = match args.metrics_addr {
        Some(addr) => Some(
            metrics_http::serve(addr, args.backend, handle.clone())
                .map_err(|e| format!("metrics listener (--metrics-addr {addr}): {e}"))?,
        ),
        None => None,
    };
    let mut out = Stdout::default();
    let pinned = args
        .cpus
        .as_ref()
        .map_or(String::new(), |list| format!(" on CPUs {list}"));
    out.line(format_args!(
        "ringport echo-server listening on {} (backend {}, {} workers{pinned}, codec {})",
        server.local_addr(),
        server.backend(),
        server.workers(),
        server.codec_name()
    ));
    if let Some(why) = server.fallback_reason() {
        out.line(format_args!("note: {why}"));
    }
    handle.shutdown_on_signals()?;
    if let Some(metrics) = &metrics_server {
        out.line(format_args!(
            "metrics on http://{}/metrics",
            metrics.local_addr()
        ));
    }

    // Stats are printed here, on the main thread: a slow or closed stdout never holds up a
    // worker.
    let started = Instant::now();
    let mut last = (Instant::now(), handle.metrics().total());
    while !handle.is_stopping() {
        std::thread::sleep(Duration::from_millis(50));
        if !args.quiet && !out.gone && last.0.elapsed() >= args.stats_interval {
            let now = handle.metrics().total();
            let secs = last.0.elapsed().as_secs_f64();
            out.line(format_args!(
                "[{:>6.1}s] {} active | {:.0} frames/s in | {:.2} MB/s in | {} closed | pool {}/{}",
                started.elapsed().as_secs_f64(),
                now.active,
                (now.frames_in - last.1.frames_in) as f64 / secs,
                (now.bytes_in - last.1.bytes_in) as f64 / secs / 1e6,
                now.closed_total(),
                now.pool_in_use,
                now.pool_capacity,
            ));
            last = (Instant::now(), now);
        }
    }
    out.line(format_args!(
        "shutting down: finishing queued writes, closing connections"
    ));
    if let Some(metrics) = &metrics_server {
        metrics.shutdown();
    }
    let metrics = server.join()?;
    if let Some(m) = metrics_server
        && let Err(e) = m.join()
    {
        tracing::warn!("metrics listener: {e}");
    }
    // The summary says the closes per reason itself.
    out.line(format_args!("final: {metrics}"));
    if let Some(note) = logging::dropped_note() {
        out.line(format_args!("{note}"));
    }
    Ok(ExitCode::SUCCESS)
}
