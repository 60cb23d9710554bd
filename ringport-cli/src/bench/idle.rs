//! `--idle N`: the server's memory per idle connection. N connections are opened and left
//! silent; the server's resident memory (VmRSS: user memory only, not the kernel's socket
//! buffers) before and after, over N.
//!
//! "Idle" means connected and never used: the server has accepted the connection and armed its
//! receive, and holds whatever it keeps per connection. The bench waits until the server's
//! descriptor count shows every connection accepted and its RSS has stopped moving.

use std::time::{Duration, Instant};

use super::load::{Load, Plan};
use super::procfs;
use super::progress::Progress;
use super::report::{Errors, Idle};

/// One idle measurement to make.
pub struct Spec {
    pub server: String,
    pub round: usize,
    /// The load's plan (`idle` set).
    pub plan: Plan,
    pub connect_timeout: Duration,
    pub pid: u32,
    pub quiet: bool,
    pub label: String,
}

/// The server's RSS once it stops changing (two equal samples 100 ms apart, 5 s at most).
fn settled_rss(pid: u32) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = procfs::rss_bytes(pid)?;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = procfs::rss_bytes(pid)?;
        if now == last || Instant::now() >= deadline {
            return Some(now);
        }
        last = now;
    }
}

/// Makes the measurement.
pub fn measure(spec: Spec) -> Result<Idle, String> {
    let no_rss = || format!("cannot read the memory of process {}", spec.pid);
    let before = settled_rss(spec.pid).ok_or_else(no_rss)?;
    let fds_before = procfs::open_fds(spec.pid);
    let bar = Progress::new(&spec.label, spec.plan.conns as u64, spec.quiet);
    let load = Load::start(spec.plan.clone())?;
    load.wait_connected(spec.connect_timeout, &bar);
    let connected = load.counts().connected;
    // Every connection accepted: the server holds one descriptor more for each.
    if let Some(fds) = fds_before {
        let want = fds + connected as usize;
        let until = Instant::now() + Duration::from_secs(10);
        while procfs::open_fds(spec.pid).is_some_and(|n| n < want) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let after = settled_rss(spec.pid).ok_or_else(no_rss)?;
    let finished = load.finish();
    bar.finish();
    let c = &finished.counts;
    Ok(Idle {
        server: spec.server,
        round: spec.round,
        conns: spec.plan.conns,
        connected,
        rss_before: before,
        rss_after: after,
        bytes_per_conn: if connected > 0 {
            (after as f64 - before as f64) / connected as f64
        } else {
            0.0
        },
        errors: Errors::from(c),
        notes: finished.notes,
    })
}
