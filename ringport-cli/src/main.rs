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
mod logging;
mod metrics_http;

use std::io::Write;
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
    let cli = Cli::parse();
    let logging = logging::init();
    let result = match cli.command {
        Command::EchoServer(args) => echo_server::run(args),
        Command::EchoClient(args) => echo_client::run(args),
        Command::Bench(args) => bench::run(*args),
    };
    logging.finish();
    match result {
        Ok(code) => code,
        Err(e) => {
            // Not eprintln!: a closed stderr must not turn an error into a panic.
            let _ = writeln!(std::io::stderr(), "ringport: {e}");
            // Flags that do not go together are usage errors, like the ones clap refuses.
            if e.downcast_ref::<args::Usage>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
