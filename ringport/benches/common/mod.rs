//! Shared by the benches: opening a port per backend, pinning threads to CPUs, and a criterion
//! measurement of CPU time.

#![allow(dead_code)]

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use ringport::{Backend, Port};

/// The backends to compare: every one this build has and this kernel can open, best first. One
/// that cannot open (io_uring blocked by seccomp, say) is skipped with a note, not a panic.
pub fn backends() -> Vec<Backend> {
    Backend::compiled()
        .iter()
        .copied()
        .filter(|&b| match Port::builder().backend(b).build() {
            Ok(_) => true,
            Err(e) => {
                eprintln!("note: skipping the {b} backend: {e}");
                false
            }
        })
        .collect()
}

/// A port on `backend` with default settings.
pub fn port(backend: Backend) -> Port {
    Port::builder()
        .backend(backend)
        .build()
        .unwrap_or_else(|e| panic!("{backend} port: {e}"))
}

/// How long criterion warms up and measures each benchmark. Chosen so that the whole of
/// `cargo bench -p ringport` stays around three minutes on two cores.
pub const WARM_UP: Duration = Duration::from_secs(2);
/// See [`WARM_UP`].
pub const MEASURE: Duration = Duration::from_secs(5);

/// How long one benchmark (warm-up, samples, analysis) may take before the run is failed.
pub const HANG_LIMIT: Duration = Duration::from_secs(120);

/// Fails the whole bench run if the benchmark it guards takes longer than [`HANG_LIMIT`]: the
/// benches wait for completions without a timeout (a timeout would cost a clock read per
/// iteration), so a backend that loses a completion or a wake-up would otherwise hang
/// `cargo bench` for good.
pub struct Watchdog {
    done: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts watching `what`; stops when dropped.
    pub fn new(what: impl Into<String>) -> Watchdog {
        let what = what.into();
        let (done, finished) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = finished.recv_timeout(HANG_LIMIT) {
                eprintln!("error: {what} did not finish within {HANG_LIMIT:?}: a backend hung");
                std::process::exit(101);
            }
        });
        Watchdog {
            done: Some(done),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.done.take()); // the watcher sees the channel close and ends
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(target_os = "linux")]
#[allow(unused_imports)]
pub use linux::*;

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::time::Duration;

    use criterion::Throughput;
    use criterion::measurement::{Measurement, ValueFormatter};

    /// The CPUs this process may run on, in order (from `sched_getaffinity`).
    pub fn allowed_cpus() -> Vec<usize> {
        // SAFETY: `cpu_set_t` is plain data for which all-zero is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: pid 0 is the calling thread; `set` is a live, correctly sized cpu_set_t.
        let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
        if rc != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            // SAFETY: `cpu` is below CPU_SETSIZE, the number of bits `set` holds.
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
            .collect()
    }

    /// Two distinct CPUs to pin a server and its client to, if the process may use two.
    pub fn cpu_pair() -> Option<(usize, usize)> {
        match allowed_cpus()[..] {
            [a, b, ..] => Some((a, b)),
            _ => {
                eprintln!("note: fewer than two CPUs allowed: threads are not pinned");
                None
            }
        }
    }

    /// Restricts the calling thread to `cpus` (`sched_setaffinity`).
    pub fn pin_current_thread(cpus: &[usize]) -> io::Result<()> {
        // SAFETY: `cpu_set_t` is plain data for which all-zero is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &cpu in cpus {
            assert!(cpu < libc::CPU_SETSIZE as usize, "cpu {cpu} out of range");
            // SAFETY: `cpu` is below CPU_SETSIZE (checked above).
            unsafe { libc::CPU_SET(cpu, &mut set) };
        }
        // SAFETY: pid 0 is the calling thread; `set` is a live, correctly sized cpu_set_t.
        let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Pins the calling thread to `cpu` until dropped, then gives it back the CPUs it had.
    pub struct Pinned {
        before: Vec<usize>,
    }

    impl Pinned {
        /// Pins the calling thread to `cpu` (no-op if `cpu` is `None`).
        pub fn to(cpu: Option<usize>) -> Pinned {
            let before = allowed_cpus();
            if let Some(cpu) = cpu {
                pin_current_thread(&[cpu]).expect("sched_setaffinity");
            }
            Pinned { before }
        }
    }

    impl Drop for Pinned {
        fn drop(&mut self) {
            if !self.before.is_empty() {
                let _ = pin_current_thread(&self.before);
            }
        }
    }

    fn read_clock(clock: libc::clockid_t) -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a live timespec the call fills in.
        let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
        assert_eq!(rc, 0, "clock_gettime: {}", io::Error::last_os_error());
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    /// The CPU-time clock of one thread of this process: user + system time it has run,
    /// including io_uring task work and syscalls it made, excluding work the kernel did for it
    /// in other contexts (softirqs on another CPU, io-wq workers).
    #[derive(Copy, Clone, Debug)]
    pub struct ThreadClock(libc::clockid_t);

    impl ThreadClock {
        /// The clock of the thread behind `handle` (`pthread_getcpuclockid`). Read it only while
        /// that thread is alive, i.e. before joining it.
        pub fn of<T>(handle: &std::thread::JoinHandle<T>) -> ThreadClock {
            use std::os::unix::thread::JoinHandleExt;
            let mut clock: libc::clockid_t = 0;
            // SAFETY: the pthread_t comes from a JoinHandle not yet joined, so it names a live
            // (or at least not yet reaped) thread; `clock` is a live out-parameter.
            let rc = unsafe { libc::pthread_getcpuclockid(handle.as_pthread_t(), &mut clock) };
            assert_eq!(
                rc,
                0,
                "pthread_getcpuclockid: {}",
                io::Error::from_raw_os_error(rc)
            );
            ThreadClock(clock)
        }

        /// CPU time the thread has used so far.
        pub fn now(self) -> Duration {
            read_clock(self.0)
        }
    }

    /// A criterion measurement of CPU time instead of wall time.
    ///
    /// `start`/`end` measure the calling thread (`CLOCK_THREAD_CPUTIME_ID`); benches that want
    /// another thread's CPU time (the echo server's) read its [`ThreadClock`] inside
    /// `iter_custom` and return the difference.
    pub struct ThreadCpu;

    impl Measurement for ThreadCpu {
        type Intermediate = Duration;
        type Value = Duration;

        fn start(&self) -> Duration {
            read_clock(libc::CLOCK_THREAD_CPUTIME_ID)
        }
        fn end(&self, start: Duration) -> Duration {
            read_clock(libc::CLOCK_THREAD_CPUTIME_ID).saturating_sub(start)
        }
        fn add(&self, a: &Duration, b: &Duration) -> Duration {
            *a + *b
        }
        fn zero(&self) -> Duration {
            Duration::ZERO
        }
        fn to_f64(&self, v: &Duration) -> f64 {
            v.as_nanos() as f64
        }
        fn formatter(&self) -> &dyn ValueFormatter {
            &CpuFormatter
        }
    }

    /// Formats CPU nanoseconds ("1.23 µs cpu"); throughput is elements per CPU-second.
    struct CpuFormatter;

    impl ValueFormatter for CpuFormatter {
        fn scale_values(&self, typical_ns: f64, values: &mut [f64]) -> &'static str {
            let (factor, unit) = if typical_ns < 1e3 {
                (1.0, "ns cpu")
            } else if typical_ns < 1e6 {
                (1e-3, "µs cpu")
            } else if typical_ns < 1e9 {
                (1e-6, "ms cpu")
            } else {
                (1e-9, "s cpu")
            };
            values.iter_mut().for_each(|v| *v *= factor);
            unit
        }

        fn scale_throughputs(
            &self,
            typical_ns: f64,
            throughput: &Throughput,
            values: &mut [f64],
        ) -> &'static str {
            let (per_iter, units) = match *throughput {
                Throughput::Elements(n) | Throughput::ElementsAndBytes { elements: n, .. } => {
                    (n, ["elem/cpu-s", "Kelem/cpu-s", "Melem/cpu-s"])
                }
                Throughput::Bytes(n) | Throughput::BytesDecimal(n) => {
                    (n, ["B/cpu-s", "KB/cpu-s", "MB/cpu-s"])
                }
                Throughput::Bits(n) => (n, ["b/cpu-s", "Kb/cpu-s", "Mb/cpu-s"]),
            };
            let per_iter = per_iter as f64;
            let typical = per_iter * 1e9 / typical_ns;
            let (factor, unit) = if typical < 1e3 {
                (1.0, units[0])
            } else if typical < 1e6 {
                (1e-3, units[1])
            } else {
                (1e-6, units[2])
            };
            values
                .iter_mut()
                .for_each(|v| *v = per_iter * 1e9 / *v * factor);
            unit
        }

        fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
            "ns"
        }
    }
}

/// Stands in for thread pinning where the benches do not pin (not Linux).
#[cfg(not(target_os = "linux"))]
pub struct Pinned;

#[cfg(not(target_os = "linux"))]
impl Pinned {
    /// Does nothing off Linux.
    pub fn to(_cpu: Option<usize>) -> Pinned {
        Pinned
    }
}

/// Nothing to give back off Linux; the impl keeps `drop(pinned)` meaningful on every platform.
#[cfg(not(target_os = "linux"))]
impl Drop for Pinned {
    fn drop(&mut self) {}
}

/// Two distinct CPUs for a server and its client: not chosen off Linux.
#[cfg(not(target_os = "linux"))]
pub fn cpu_pair() -> Option<(usize, usize)> {
    None
}
