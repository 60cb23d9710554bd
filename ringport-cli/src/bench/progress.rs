//! The live progress bar: phase, time (or messages) done, current messages/s and errors.
//! Drawn on stderr only when it is a terminal (and not with `--quiet`).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One run's bar.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar for a run labelled `label`, counting to `total` (ms, or messages).
    pub fn new(label: &str, total: u64, quiet: bool) -> Progress {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr_with_hz(8)
        };
        let bar = ProgressBar::with_draw_target(Some(total.max(1)), target);
        let style = ProgressStyle::with_template(
            "{prefix:.bold} {spinner} [{elapsed_precise}] {bar:28.cyan/blue} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(125));
        Progress { bar }
    }

    /// Where the run is: `done` of the total, and a status line.
    pub fn update(&self, done: u64, status: String) {
        self.bar.set_position(done);
        self.bar.set_message(status);
    }

    /// Restarts the count for a new phase.
    pub fn phase(&self, total: u64) {
        self.bar.set_length(total.max(1));
        self.bar.set_position(0);
    }

    /// Removes the bar.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}

/// The status line: phase, messages/s now, errors so far.
pub fn status(phase: &str, msgs_per_s: f64, errors: u64) -> String {
    format!(
        "{phase}: {} msgs/s, {errors} errors",
        super::report::grouped(msgs_per_s)
    )
}
