//! Fault injection (cargo feature `fault-injection`, for tests): completions that fail the way
//! real networks and kernels make them fail, at chosen rates, on every backend.
//!
//! [`FaultyDriver`] wraps a backend's [`Driver`]: it delegates every call and judges each
//! completion the backend adds to the table as it comes, so every backend gets the same faults,
//! and the [`Port`](crate::Port) knows nothing of them. Each is one a real kernel can produce:
//!
//! | fault            | what the application sees                                            |
//! |------------------|----------------------------------------------------------------------|
//! | `reset`          | a receive or send fails with `ECONNRESET` / `EPIPE` (a multishot receive delivers what it already had, then ends with it) |
//! | `short_send`     | a send reports fewer bytes than it had: the connection broke part-way |
//! | `short_recv`     | one multishot chunk arrives as two completions                       |
//! | `would_block`    | a completion (and the rest of its op's) is held back behind the completions at hand, until the driver's next poll or wait (never past one that would block), as if the kernel had to retry |
//! | `no_buffers`     | a multishot receive ends with `ENOBUFS` (the rest stays in the socket) |
//! | `accept_exhausted` | an accept fails with `EMFILE` or `ENFILE` (a multishot accept ends) |
//!
//! To end a multishot op early the layer cancels it in the kernel and rewrites the error of its
//! final completion: nothing the kernel delivered in between is dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::time::Duration;

use super::{Backend, Driver, OpTable};
use crate::buf::Buf;
use crate::op::{Completion, OpId, OpKind, Outcome};
use crate::sock::RawSock;

/// Fault rates (each a probability per eligible completion, 0.0 to 1.0) and the seed of the
/// deterministic random schedule.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Seed of the schedule: the same seed and traffic give the same faults.
    pub seed: u64,
    /// A receive or send fails with a reset.
    pub reset: f64,
    /// A send reports a short count (connection broken part-way).
    pub short_send: f64,
    /// A multishot receive chunk is split into two completions.
    pub short_recv: f64,
    /// A completion is deferred to a later wait.
    pub would_block: f64,
    /// A multishot receive ends with `ENOBUFS`.
    pub no_buffers: f64,
    /// An accept fails with `EMFILE` / `ENFILE`.
    pub accept_exhausted: f64,
}

impl Faults {
    /// No faults, with a seed (set rates with struct update syntax).
    pub fn seeded(seed: u64) -> Faults {
        Faults {
            seed,
            ..Faults::default()
        }
    }
}

/// A backend's driver with faults injected into its completions.
pub(crate) struct FaultyDriver {
    inner: Box<dyn Driver>,
    injector: Injector,
}

impl FaultyDriver {
    /// Wraps `inner`, injecting the faults of `plan`.
    pub fn new(inner: Box<dyn Driver>, plan: Faults) -> FaultyDriver {
        FaultyDriver {
            inner,
            injector: Injector::new(plan),
        }
    }

    /// Judges the completions the backend added to `table.ready` from index `from` on (those
    /// before were judged when they arrived): delivers them as they are or changed, holds some
    /// back, ends multishot ops early (whose final completions are judged in turn).
    fn judge(&mut self, table: &mut OpTable, from: usize) {
        let mut fresh: VecDeque<Completion> = table.ready.drain(from..).collect();
        while let Some(c) = fresh.pop_front() {
            match self.injector.apply(c) {
                Verdict::Deliver(c, second) => {
                    table.ready.push_back(c);
                    if let Some(second) = second {
                        fresh.push_front(second);
                    }
                }
                Verdict::Defer(c) => self.injector.defer(c),
                Verdict::DeliverAndEnd(c, errno) => {
                    let id = c.id;
                    table.ready.push_back(c);
                    if table.contains(id) {
                        self.injector.end(id, errno);
                        let mark = table.ready.len();
                        let _ = self.inner.cancel(table, id);
                        fresh.extend(table.ready.drain(mark..));
                    }
                }
            }
        }
    }

    /// Completions held back by an earlier call are due now: behind those already at hand.
    fn release_deferred(&mut self, table: &mut OpTable) {
        table.ready.extend(self.injector.take_deferred());
    }

    /// Runs `call` on the inner driver and judges what it completed.
    fn judged<R>(
        &mut self,
        table: &mut OpTable,
        call: impl FnOnce(&mut dyn Driver, &mut OpTable) -> R,
    ) -> R {
        let from = table.ready.len();
        let r = call(&mut *self.inner, table);
        self.judge(table, from);
        r
    }
}

impl Driver for FaultyDriver {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }

    fn supports(&self, kind: OpKind) -> bool {
        self.inner.supports(kind)
    }

    fn associate(&mut self, sock: RawSock) -> io::Result<()> {
        self.inner.associate(sock)
    }

    fn submit(&mut self, table: &mut OpTable, id: OpId) -> io::Result<()> {
        self.judged(table, |d, t| d.submit(t, id))
    }

    fn cancel(&mut self, table: &mut OpTable, id: OpId) -> io::Result<()> {
        self.judged(table, |d, t| d.cancel(t, id))
    }

    fn flush(&mut self, table: &mut OpTable) -> io::Result<()> {
        self.judged(table, |d, t| d.flush(t))
    }

    fn poll(&mut self, table: &mut OpTable, want: usize) -> io::Result<()> {
        self.release_deferred(table);
        self.judged(table, |d, t| d.poll(t, want))
    }

    fn wait(
        &mut self,
        table: &mut OpTable,
        want: usize,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        // Held-back completions come one call later, and never later than a wait that would
        // otherwise block on them.
        self.release_deferred(table);
        let timeout = if table.ready.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        self.judged(table, |d, t| d.wait(t, want, timeout))?;
        if table.ready.is_empty() {
            self.release_deferred(table);
        }
        Ok(())
    }

    fn shutdown(&mut self, table: &mut OpTable) {
        self.inner.shutdown(table);
        drop(self.injector.take_deferred());
    }
}

/// What the injector does with a completion before the application sees it.
pub(crate) enum Verdict {
    /// Deliver these (one, or two for a split receive).
    Deliver(Completion, Option<Completion>),
    /// Hold it back until the driver's next poll or wait.
    Defer(Completion),
    /// Deliver it, and end its multishot op (cancel in the kernel) with this error.
    DeliverAndEnd(Completion, i32),
}

/// The injector's state.
pub(crate) struct Injector {
    plan: Faults,
    rng: u64,
    /// Multishot ops being ended: the error their final completion will carry.
    ending: HashMap<OpId, i32>,
    /// Completions held back, in arrival order.
    deferred: VecDeque<Completion>,
    /// Ops with completions held back: later ones of the same op wait behind them.
    held: HashSet<OpId>,
}

impl Injector {
    pub fn new(plan: Faults) -> Injector {
        Injector {
            rng: plan.seed ^ 0x9e37_79b9_7f4a_7c15,
            plan,
            ending: HashMap::new(),
            deferred: VecDeque::new(),
            held: HashSet::new(),
        }
    }

    /// SplitMix64: small, fast, and good enough for fault schedules.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn hit(&mut self, rate: f64) -> bool {
        rate > 0.0 && (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= rate
    }

    /// The completions held back, in arrival order, to deliver now (behind those at hand).
    pub fn take_deferred(&mut self) -> VecDeque<Completion> {
        self.held.clear();
        std::mem::take(&mut self.deferred)
    }

    /// Decides what happens to a completion the kernel produced.
    pub fn apply(&mut self, mut c: Completion) -> Verdict {
        if c.id == OpId::POSTED {
            return Verdict::Deliver(c, None);
        }
        // A multishot op being ended: its final completion carries the injected error.
        if !c.more
            && let Some(errno) = self.ending.remove(&c.id)
        {
            replace_error(&mut c.outcome, errno);
        }
        if self.held.contains(&c.id) || self.hit(self.plan.would_block) {
            return Verdict::Defer(c);
        }
        let ending = self.ending.contains_key(&c.id);
        match &mut c.outcome {
            Outcome::Recv { result, .. } if result.is_ok() && self.hit(self.plan.reset) => {
                *result = Err(io::Error::from(io::ErrorKind::ConnectionReset));
            }
            Outcome::Send { result, buf } => match result {
                Ok(_) if self.hit(self.plan.reset) => {
                    *result = Err(io::Error::from(io::ErrorKind::BrokenPipe));
                }
                Ok(n) if *n >= 2 && self.hit(self.plan.short_send) => {
                    let _ = buf;
                    *n = 1 + (self.next() % (*n as u64 - 1)) as usize;
                }
                _ => {}
            },
            Outcome::RecvMulti {
                result: Ok(n),
                buf: Some(buf),
            } if !ending => {
                if c.more && self.hit(self.plan.reset) {
                    return Verdict::DeliverAndEnd(c, reset_errno());
                }
                if c.more && self.hit(self.plan.no_buffers) {
                    return Verdict::DeliverAndEnd(c, no_buffers_errno());
                }
                if *n >= 2 && self.hit(self.plan.short_recv) {
                    let k = 1 + (self.next() % (*n as u64 - 1)) as usize;
                    let rest = Buf::from(&buf[k..]);
                    buf.truncate(k);
                    let second = Completion {
                        token: c.token,
                        id: c.id,
                        more: c.more,
                        outcome: Outcome::RecvMulti {
                            result: Ok(*n - k),
                            buf: Some(rest),
                        },
                    };
                    *n = k;
                    c.more = true;
                    return Verdict::Deliver(c, Some(second));
                }
            }
            Outcome::Accept(Ok(_)) if !ending && self.hit(self.plan.accept_exhausted) => {
                let errno = self.exhausted_errno();
                if c.more {
                    return Verdict::DeliverAndEnd(c, errno);
                }
                // One-shot: the connection is dropped (closed) and the accept fails.
                c.outcome = Outcome::Accept(Err(io::Error::from_raw_os_error(errno)));
            }
            _ => {}
        }
        Verdict::Deliver(c, None)
    }

    /// Holds `c` back until the driver's next poll or wait.
    pub fn defer(&mut self, c: Completion) {
        self.held.insert(c.id);
        self.deferred.push_back(c);
    }

    /// Marks multishot op `id` as ending with `errno` once its final completion arrives.
    pub fn end(&mut self, id: OpId, errno: i32) {
        self.ending.insert(id, errno);
    }

    fn exhausted_errno(&mut self) -> i32 {
        if self.next() % 2 == 0 {
            emfile()
        } else {
            enfile()
        }
    }
}

/// Replaces the error (or the success) of a final completion with `errno`, keeping its buffer.
fn replace_error(outcome: &mut Outcome, errno: i32) {
    let err = || io::Error::from_raw_os_error(errno);
    match outcome {
        Outcome::RecvMulti { result, .. } if result.is_err() => *result = Err(err()),
        Outcome::Accept(result) if result.is_err() => *result = Err(err()),
        _ => {} // it ended on its own (end of stream, a real error): that stands
    }
}

#[cfg(unix)]
fn reset_errno() -> i32 {
    libc::ECONNRESET
}
#[cfg(unix)]
fn no_buffers_errno() -> i32 {
    libc::ENOBUFS
}
#[cfg(unix)]
fn emfile() -> i32 {
    libc::EMFILE
}
#[cfg(unix)]
fn enfile() -> i32 {
    libc::ENFILE
}

#[cfg(windows)]
fn reset_errno() -> i32 {
    windows_sys::Win32::Networking::WinSock::WSAECONNRESET
}
#[cfg(windows)]
fn no_buffers_errno() -> i32 {
    windows_sys::Win32::Networking::WinSock::WSAENOBUFS
}
#[cfg(windows)]
fn emfile() -> i32 {
    windows_sys::Win32::Networking::WinSock::WSAEMFILE
}
#[cfg(windows)]
fn enfile() -> i32 {
    windows_sys::Win32::Networking::WinSock::WSAEMFILE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv_multi(n: usize, more: bool) -> Completion {
        Completion {
            token: 1,
            id: OpId::from_tag(5),
            more,
            outcome: Outcome::RecvMulti {
                result: Ok(n),
                buf: Some(Buf::from(vec![7u8; n])),
            },
        }
    }

    #[test]
    fn same_seed_same_schedule() {
        let plan = Faults {
            reset: 0.3,
            ..Faults::seeded(42)
        };
        let mut a = Injector::new(plan.clone());
        let mut b = Injector::new(plan);
        let pick = |i: &mut Injector| (0..100).map(|_| i.hit(0.3)).collect::<Vec<_>>();
        assert_eq!(pick(&mut a), pick(&mut b));
    }

    #[test]
    fn split_receives_keep_every_byte_in_order() {
        let mut inj = Injector::new(Faults {
            short_recv: 1.0,
            ..Faults::seeded(1)
        });
        let c = recv_multi(10, true);
        let Verdict::Deliver(first, Some(second)) = inj.apply(c) else {
            panic!("expected a split")
        };
        let bytes = |c: &Completion| match &c.outcome {
            Outcome::RecvMulti { result, buf } => {
                (*result.as_ref().unwrap(), buf.as_ref().unwrap().len())
            }
            _ => unreachable!(),
        };
        let (a, la) = bytes(&first);
        let (b, lb) = bytes(&second);
        assert_eq!((a + b, la + lb), (10, 10));
        assert!(first.more && second.more);
    }

    #[test]
    fn an_ended_multishot_gets_the_injected_error_on_its_final() {
        let mut inj = Injector::new(Faults {
            no_buffers: 1.0,
            ..Faults::seeded(3)
        });
        let c = recv_multi(4, true);
        let Verdict::DeliverAndEnd(c, errno) = inj.apply(c) else {
            panic!("expected an end")
        };
        inj.end(c.id, errno);
        let last = Completion {
            token: 1,
            id: OpId::from_tag(5),
            more: false,
            outcome: Outcome::RecvMulti {
                result: Err(crate::op::cancelled_error()),
                buf: None,
            },
        };
        let Verdict::Deliver(last, None) = inj.apply(last) else {
            panic!()
        };
        assert!(last.is_out_of_buffers(), "{last:?}");
    }

    /// Through a real port on every backend: the wrapper sees the backend's completions and
    /// changes them (a reset at rate 1), and holds some back without losing them.
    #[cfg(unix)]
    #[test]
    fn the_wrapped_driver_injects_into_real_completions() {
        use std::io::Write;
        use std::net::{TcpListener, TcpStream};
        for &backend in Backend::compiled() {
            let plan = Faults {
                reset: 1.0,
                would_block: 0.5,
                ..Faults::seeded(11)
            };
            let mut port = crate::Port::builder()
                .backend(backend)
                .faults(plan)
                .build()
                .unwrap();
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (server, _) = listener.accept().unwrap();
            port.associate(&server).unwrap();
            for token in 0..8 {
                port.submit(crate::op::Nop::new(), token).unwrap();
            }
            port.submit(crate::op::Recv::new(&server, Buf::with_capacity(64)), 99)
                .unwrap();
            client.write_all(b"hello").unwrap();
            let mut batch = crate::Completions::default();
            let (mut nops, mut recv) = (0, None);
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while nops < 8 || recv.is_none() {
                assert!(std::time::Instant::now() < deadline, "{backend}: lost");
                port.wait(&mut batch, Some(Duration::from_millis(100)))
                    .unwrap();
                for c in batch.drain() {
                    match c.outcome {
                        Outcome::Nop(Ok(())) => nops += 1,
                        Outcome::Recv { result, .. } => recv = Some(result),
                        other => panic!("{backend}: {other:?}"),
                    }
                }
            }
            let err = recv
                .unwrap()
                .expect_err("the receive was reset by the injector");
            assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{backend}");
        }
    }
}
