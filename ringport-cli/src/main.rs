//! `ringport`: the command-line tool of the ringport completion-port library.
//!
//! - `ringport echo-server`: the tutorials' echo server, on the ringport server framework.
//! - `ringport echo-client`: the tutorials' interactive echo client (and a verifying pipe).
//! - `ringport bench`: a verifying load generator for echo servers (throughput, latency, server
//!   CPU, memory and syscalls; matrices and side-by-side comparisons).

mod args;
mod bench;
mod cpus;
mod echo_client;
mod echo_server;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ringport",
    version,
    about = "The I/O completion port model on io_uring, epoll and IOCP: echo server, client and tools."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an echo server: every frame a client sends comes back to it.
    EchoServer(echo_server::Args),
    /// Send lines (typed, or piped on stdin) to an echo server and print what comes back.
    EchoClient(echo_client::Args),
    /// Load-test an echo server, verifying every echoed byte; measure and compare servers.
    Bench(Box<bench::Args>),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::EchoServer(args) => echo_server::run(args),
        Command::EchoClient(args) => echo_client::run(args),
        Command::Bench(args) => bench::run(*args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ringport: {e}");
            ExitCode::FAILURE
        }
    }
}
