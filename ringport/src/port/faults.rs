//! Fault injection (cargo feature `fault-injection`, for tests): completions that fail the way
//! real networks and kernels make them fail, at chosen rates, on every backend.
//!
//! Faults are applied to completions as they leave the port, so every backend gets the same
//! ones, and each is one a real kernel can produce:
//!
//! | fault            | what the application sees                                            |
//! |------------------|----------------------------------------------------------------------|
//! | `reset`          | a receive or send fails with `ECONNRESET` / `EPIPE` (a multishot receive delivers what it already had, then ends with it) |
//! | `short_send`     | a send reports fewer bytes than it had: the connection broke part-way |
//! | `short_recv`     | one multishot chunk arrives as two completions                       |
//! | `would_block`    | a completion (and the rest of its op's) arrives one `wait` later, as if the kernel had to retry |
//! | `no_buffers`     | a multishot receive ends with `ENOBUFS` (the rest stays in the socket) |
//! | `accept_exhausted` | an accept fails with `EMFILE` or `ENFILE` (a multishot accept ends) |
//!
//! To end a multishot op early the layer cancels it in the kernel and rewrites the error of its
//! final completion: nothing the kernel delivered in between is dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;

use super::completion::{Completion, Outcome};
use super::table::OpId;
use crate::buf::Buf;

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

/// What the port does with a completion before the application sees it.
pub(crate) enum Verdict {
    /// Deliver these (one, or two for a split receive).
    Deliver(Completion, Option<Completion>),
    /// Hold it until the next wait.
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

    /// Completions deferred by an earlier wait, to deliver first now.
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

    /// Holds `c` until the next wait.
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
                result: Err(crate::port::cancelled_error()),
                buf: None,
            },
        };
        let Verdict::Deliver(last, None) = inj.apply(last) else {
            panic!()
        };
        assert!(last.is_out_of_buffers(), "{last:?}");
    }
}
