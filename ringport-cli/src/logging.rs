//! Log output (`RUST_LOG`, default `warn`) on stderr that can never stall the program.
//!
//! Lines go through a bounded queue to a thread of their own that writes them to stderr
//! (`tracing-appender`'s non-blocking writer, lossy): a worker thread that logs never waits for
//! stderr, so a pipe nobody reads cannot block an event loop (and with it the shutdown). When
//! the queue is full, lines are dropped and counted ([`dropped_lines`]). Colour only when
//! stderr is a terminal and `NO_COLOR` is not set to a non-empty value.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};

/// Lines the queue holds for a slow stderr before it drops more.
const QUEUED_LINES: usize = 4096;

/// The count of dropped lines, once [`init`] ran.
static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// Keeps the log's writer thread; [`Logging::finish`] ends it.
#[must_use = "dropping it ends the log output"]
pub struct Logging {
    guard: Option<WorkerGuard>,
}

/// Installs the log subscriber. Keep what it returns until the program ends.
pub fn init() -> Logging {
    let stderr = std::io::stderr();
    let colour = stderr.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("ringport-log")
        .finish(stderr);
    let _ = DROPPED.set(writer.error_counter());
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(colour)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    Logging { guard: Some(guard) }
}

/// Log lines dropped so far because stderr did not keep up (it was not being read).
pub fn dropped_lines() -> usize {
    DROPPED.get().map_or(0, ErrorCounter::dropped_lines)
}

/// The line for a final summary about dropped log lines, if any were.
pub fn dropped_note() -> Option<String> {
    match dropped_lines() {
        0 => None,
        n => Some(format!(
            "log: {n} lines dropped (stderr was not being read)"
        )),
    }
}

impl Logging {
    /// Ends the log output: waits (at most about a second) for queued lines to reach stderr,
    /// unless lines were dropped, which means stderr is not being read and waiting is futile.
    pub fn finish(mut self) {
        let Some(guard) = self.guard.take() else {
            return;
        };
        if dropped_lines() > 0 {
            // The guard's drop would wait for a queue that cannot drain (100 ms), then report
            // that with `println!`, which panics when stdout is closed too. The writer thread
            // ends with the process.
            std::mem::forget(guard);
        } else {
            drop(guard);
        }
    }
}
