//! [`Backend`] and [`BackendChoice`]: which kernel mechanism runs a port.

use std::fmt;
use std::io;
use std::str::FromStr;

/// The environment variable that picks the backend when the builder leaves it to
/// [`BackendChoice::Auto`]: `uring`, `epoll`, `iocp` or `auto`.
pub const BACKEND_ENV: &str = "RINGPORT_BACKEND";

/// A kernel mechanism behind a [`Port`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Linux io_uring: a real completion queue shared with the kernel.
    Uring,
    /// Readiness (epoll on Linux) turned into completions in user space.
    Epoll,
    /// Windows I/O completion ports.
    Iocp,
}

impl Backend {
    /// The backends this build can run, best first.
    pub fn compiled() -> &'static [Backend] {
        #[cfg(target_os = "linux")]
        return &[Backend::Uring, Backend::Epoll];
        #[cfg(all(unix, not(target_os = "linux")))]
        return &[Backend::Epoll];
        #[cfg(windows)]
        return &[Backend::Iocp];
    }

    /// The short name (`uring`, `epoll`, `iocp`), as `RINGPORT_BACKEND` and the CLI spell it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Uring => "uring",
            Backend::Epoll => "epoll",
            Backend::Iocp => "iocp",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which backend a [`PortBuilder`] uses.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum BackendChoice {
    /// `RINGPORT_BACKEND` if set, else the best one the kernel allows: io_uring where its setup
    /// and opcode probe succeed, epoll otherwise (logging why).
    #[default]
    Auto,
    /// Exactly this backend; building fails if it is unavailable.
    Only(Backend),
}

impl FromStr for BackendChoice {
    type Err = io::Error;
    fn from_str(s: &str) -> io::Result<BackendChoice> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => BackendChoice::Auto,
            "uring" | "io_uring" | "io-uring" => BackendChoice::Only(Backend::Uring),
            "epoll" | "poll" => BackendChoice::Only(Backend::Epoll),
            "iocp" => BackendChoice::Only(Backend::Iocp),
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("unknown backend {other:?}: expected auto, uring, epoll or iocp"),
                ));
            }
        })
    }
}

impl From<Backend> for BackendChoice {
    fn from(b: Backend) -> BackendChoice {
        BackendChoice::Only(b)
    }
}
