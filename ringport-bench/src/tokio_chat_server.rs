//! `tokio-chat-server`: the tokio baseline for the chat benchmark (`cargo bench -p ringport
//! --bench chat`), the same protocol as ringport's `examples/chat.rs`.
//!
//! The chat server as tokio is usually written: a multi-threaded runtime, one
//! `tokio::sync::broadcast` channel for the room, and per connection a reader task (each line
//! it reads goes into the channel, tagged with its sender) and a writer task (every line from
//! the channel but its own goes out with `write_all`). Lines typed on standard input go to
//! everyone, sent into the channel from a plain thread. TCP_NODELAY is set on every
//! connection. A receiver that falls more than `--capacity` lines behind loses lines (tokio's
//! `Lagged`); they are counted and reported on stderr at exit.
//!
//! The first line on stdout is `tokio-chat-server listening on ADDR (N workers)`. SIGTERM or
//! SIGINT stops it.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Parser;

#[path = "stop_signal.rs"]
mod stop_signal;
use stop_signal::stop_signal;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// A tokio broadcast-channel chat server, the baseline of the chat benchmark.
#[derive(Parser, Debug)]
#[command(name = "tokio-chat-server", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7100")]
    addr: SocketAddr,
    /// Runtime worker threads [default: one per CPU].
    #[arg(long)]
    workers: Option<usize>,
    /// Lines the broadcast channel holds for a slow receiver.
    #[arg(long, default_value_t = 1 << 16)]
    capacity: usize,
}

/// One line and who sent it (0: standard input).
type Line = (u64, Arc<[u8]>);

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio-chat-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if workers == 0 || args.capacity == 0 {
        return Err("--workers and --capacity must be at least 1".into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_io()
        .build()?;
    let (room, _) = broadcast::channel::<Line>(args.capacity);
    let lagged = Arc::new(AtomicU64::new(0));

    let typed = room.clone();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().split(b'\n') {
            let Ok(mut line) = line else { break };
            line.push(b'\n');
            let _ = typed.send((0, line.into()));
        }
    });

    runtime.block_on(async {
        let listener = TcpListener::bind(args.addr)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
        println!(
            "tokio-chat-server listening on {} ({workers} workers)",
            listener.local_addr()?
        );
        std::io::stdout().flush()?;
        let room_a = room.clone();
        let lagged_a = lagged.clone();
        let acceptor = tokio::spawn(async move {
            let mut next_id = 1u64;
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        let id = next_id;
                        next_id += 1;
                        let (read, mut write) = stream.into_split();
                        let mut rx = room_a.subscribe();
                        let lagged = lagged_a.clone();
                        tokio::spawn(async move {
                            loop {
                                match rx.recv().await {
                                    Ok((from, _)) if from == id => {}
                                    Ok((_, line)) => {
                                        if write.write_all(&line).await.is_err() {
                                            return;
                                        }
                                    }
                                    Err(broadcast::error::RecvError::Lagged(n)) => {
                                        lagged.fetch_add(n, Ordering::Relaxed);
                                    }
                                    Err(broadcast::error::RecvError::Closed) => return,
                                }
                            }
                        });
                        let tx = room_a.clone();
                        tokio::spawn(async move {
                            let mut read = BufReader::new(read);
                            let mut line = Vec::new();
                            loop {
                                line.clear();
                                match read.read_until(b'\n', &mut line).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(_) if line.ends_with(b"\n") => {
                                        let _ = tx.send((id, Arc::from(&line[..])));
                                    }
                                    Ok(_) => return, // an unfinished last line
                                }
                            }
                        });
                    }
                    // Out of descriptors or a transient error: keep serving the others.
                    Err(_) => tokio::task::yield_now().await,
                }
            }
        });
        stop_signal().await?;
        acceptor.abort();
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    let lost = lagged.load(Ordering::Relaxed);
    if lost > 0 {
        eprintln!("tokio-chat-server: {lost} lines lost by lagging receivers");
    }
    Ok(())
}
