//! SIGTERM or SIGINT (Ctrl-C on Windows): what stops a benchmark peer, shared by the peers.

/// Waits for SIGTERM or SIGINT.
#[cfg(unix)]
pub async fn stop_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// Waits for Ctrl-C.
#[cfg(not(unix))]
pub async fn stop_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}
