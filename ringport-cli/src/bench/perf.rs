//! Syscalls of a server during the measured window: `perf stat -e raw_syscalls:sys_enter -p PID`
//! (a software tracepoint: no hardware counters needed), stopped with SIGINT at the window's end.
//!
//! Linux only; where perf is missing or not allowed the report says so and leaves the column
//! empty.

/// Syscalls counted by one perf run.
#[derive(Debug, Clone, Copy)]
pub struct Syscalls {
    /// System calls the process entered.
    pub count: u64,
    /// How long perf counted (its own "seconds time elapsed").
    pub seconds: f64,
}

#[cfg(target_os = "linux")]
pub use linux::{Perf, available};

#[cfg(target_os = "linux")]
mod linux {
    use std::io::Read;
    use std::process::{Child, Command, Stdio};
    use std::sync::OnceLock;

    use super::Syscalls;

    const EVENT: &str = "raw_syscalls:sys_enter";

    /// Whether perf can count syscalls here (asked once: `perf stat` on `true`); if not, why.
    pub fn available() -> Result<(), String> {
        static ANSWER: OnceLock<Result<(), String>> = OnceLock::new();
        ANSWER
            .get_or_init(|| {
                let out = Command::new("perf")
                    .args(["stat", "-x,", "-e", EVENT, "--", "true"])
                    .env("LC_ALL", "C")
                    .stdout(Stdio::null())
                    .output()
                    .map_err(|e| format!("perf not found ({e}); install linux-perf"))?;
                let err = String::from_utf8_lossy(&out.stderr);
                if out.status.success() && err.contains(EVENT) && !err.contains("<not") {
                    Ok(())
                } else {
                    let why = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                    Err(format!("perf cannot count {EVENT}: {why}"))
                }
            })
            .clone()
    }

    /// A `perf stat` attached to a process.
    pub struct Perf {
        child: Child,
    }

    impl Perf {
        /// Starts counting the syscalls of `pid` (all its threads).
        pub fn start(pid: u32) -> Result<Perf, String> {
            available()?;
            let child = Command::new("perf")
                .args(["stat", "-e", EVENT, "-p", &pid.to_string()])
                .env("LC_ALL", "C")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot start perf: {e}"))?;
            Ok(Perf { child })
        }

        /// Stops counting (SIGINT, on which perf prints its totals) and reads the count.
        pub fn stop(mut self) -> Result<Syscalls, String> {
            let pid =
                rustix::process::Pid::from_raw(self.child.id() as i32).ok_or("perf has no pid")?;
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
            let mut text = String::new();
            if let Some(mut err) = self.child.stderr.take() {
                let _ = err.read_to_string(&mut text);
            }
            let _ = self.child.wait();
            parse(&text)
        }
    }

    impl Drop for Perf {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// Reads perf stat's human output: the event's count and "N seconds time elapsed".
    pub(super) fn parse(text: &str) -> Result<Syscalls, String> {
        let number = |line: &str| line.split_whitespace().next().map(|n| n.replace(',', ""));
        let count = text
            .lines()
            .find(|l| l.contains(EVENT))
            .and_then(number)
            .and_then(|n| n.parse::<u64>().ok());
        let seconds = text
            .lines()
            .find(|l| l.contains("seconds time elapsed"))
            .and_then(number)
            .and_then(|n| n.parse::<f64>().ok());
        match (count, seconds) {
            (Some(count), Some(seconds)) => Ok(Syscalls { count, seconds }),
            _ => {
                let why = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                Err(format!("perf gave no syscall count: {why}"))
            }
        }
    }
}

/// Whether perf can count syscalls here: never, off Linux.
#[cfg(not(target_os = "linux"))]
pub fn available() -> Result<(), String> {
    Err("syscall counts need perf on Linux".into())
}

/// No perf off Linux.
#[cfg(not(target_os = "linux"))]
pub struct Perf;

#[cfg(not(target_os = "linux"))]
impl Perf {
    /// Fails: no perf off Linux.
    pub fn start(_pid: u32) -> Result<Perf, String> {
        Err("syscall counts need perf on Linux".into())
    }

    /// Never reached.
    pub fn stop(self) -> Result<Syscalls, String> {
        Err("syscall counts need perf on Linux".into())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn perf_output_parses() {
        let text = "\n Performance counter stats for process id '42':\n\n\
                    \u{20}          1,234,567      raw_syscalls:sys_enter\n\n\
                    \u{20}      3.003322213 seconds time elapsed\n";
        let s = super::linux::parse(text).unwrap();
        assert_eq!(s.count, 1_234_567);
        assert!((s.seconds - 3.003).abs() < 0.001);
        assert!(super::linux::parse("<not supported> raw_syscalls:sys_enter").is_err());
    }
}
