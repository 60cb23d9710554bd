//! What the Unix backends share: the one macro that calls libc, socket calls, the eventfd waker.

/// Calls a libc function that returns -1 on error, turning that into `io::Error`.
///
/// Every use sits in an `unsafe` block of its own with the reason it holds.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        let res = libc::$fn($($arg),*);
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}

pub(crate) mod net;
mod waker;

pub(crate) use waker::Waker;
