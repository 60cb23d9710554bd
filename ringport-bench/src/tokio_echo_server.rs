//! `tokio-echo-server`: the baseline `ringport bench --compare` measures the ringport server
//! against.
//!
//! The echo server as tokio's documentation writes it: a multi-threaded runtime, one task per
//! connection with its own read buffer, `read` then `write_all` of the same bytes (raw echo, no
//! framing). TCP_NODELAY is set on every connection, as the ringport server does. `--workers`
//! and `--cpus` give it the same worker count and CPUs as the ringport server it is compared
//! with. SIGTERM or SIGINT stops it.
//!
//! The first line on stdout is `tokio-echo-server listening on ADDR (N workers)`.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Parser;

#[path = "stop_signal.rs"]
mod stop_signal;
use stop_signal::stop_signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A tokio echo server (raw echo), the baseline of `ringport bench --compare`.
#[derive(Parser, Debug)]
#[command(name = "tokio-echo-server", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7000")]
    addr: SocketAddr,
    /// Runtime worker threads [default: one per listed CPU, else one per CPU].
    #[arg(long)]
    workers: Option<usize>,
    /// Pin the runtime's threads to these CPUs in turn, e.g. 1 or 0,2.
    #[arg(long, value_parser = cpu_list)]
    cpus: Option<Cpus>,
    /// Each connection's read buffer, in bytes (the ringport server's receive buffers are
    /// 16 KiB).
    #[arg(long, default_value_t = 16 << 10)]
    buf_size: usize,
}

/// CPU ids, in the order given.
#[derive(Clone, Debug)]
struct Cpus(Vec<usize>);

/// Comma-separated CPU ids (`1`, `0,2`), as `ringport bench` passes them.
fn cpu_list(s: &str) -> Result<Cpus, String> {
    let ids: Result<Vec<usize>, _> = s.split(',').map(|id| id.trim().parse()).collect();
    match ids {
        Ok(ids) if !ids.is_empty() => Ok(Cpus(ids)),
        _ => Err(format!("{s:?} is not a list of CPU ids such as 1 or 0,2")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio-echo-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.buf_size == 0 {
        return Err("--buf-size must be positive".into());
    }
    let cpus = args.cpus.clone().map_or(Vec::new(), |c| c.0);
    let workers = args
        .workers
        .or((!cpus.is_empty()).then_some(cpus.len()))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if workers == 0 {
        return Err("--workers must be at least 1".into());
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(workers).enable_io().enable_time();
    if !cpus.is_empty() {
        let next = Arc::new(AtomicUsize::new(0));
        builder.on_thread_start(move || {
            let cpu = cpus[next.fetch_add(1, Ordering::Relaxed) % cpus.len()];
            if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
                eprintln!("tokio-echo-server: cannot pin a thread to CPU {cpu}");
            }
        });
    }
    let runtime = builder.build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(args.addr)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
        println!(
            "tokio-echo-server listening on {} ({workers} workers)",
            listener.local_addr()?
        );
        std::io::stdout().flush()?;
        // Accept on a worker, not on this (unpinned) thread.
        let buf_size = args.buf_size;
        let acceptor = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        tokio::spawn(echo(stream, buf_size));
                    }
                    // Out of descriptors or a transient error: keep serving the others.
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                }
            }
        });
        stop_signal().await?;
        acceptor.abort();
        println!("shutting down");
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    // Dropping the runtime drops every connection task, closing their sockets.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(())
}

/// Echoes everything until the peer closes or the connection fails.
async fn echo(mut stream: TcpStream, buf_size: usize) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; buf_size];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
