//! A worker's accept path: its own `SO_REUSEPORT` listener, or the acceptor's listener that
//! hands connections to every worker in turn (the workers' side of the hand-off is their
//! mailbox, [`Inbox`](super::push::Inbox)).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::metrics::WorkerCounters;
use super::warn_limit::{WarnLimit, warn_limited};
use crate::op;
use crate::port::{Completion, OpId, Outcome, Port, is_accept_aborted};

/// How long accepting pauses after an accept error such as `EMFILE`, so it does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Where a worker gets its connections from.
pub(crate) enum Source {
    /// Its own listener (`SO_REUSEPORT`: the kernel spreads connections over the workers).
    Listener(TcpListener),
    /// The acceptor's listener, handing connections to every worker in turn.
    Acceptor(TcpListener),
    /// Connections handed over by the acceptor through this worker's mailbox.
    Mailbox,
}

/// Where an accepted connection goes.
pub(crate) enum Accepted {
    /// Serve it on this worker.
    Here(TcpStream, SocketAddr),
    /// Hand it to worker `target`.
    To(usize, TcpStream, SocketAddr),
}

/// The accept side of one worker.
pub(crate) struct Acceptor {
    worker: u16,
    workers: usize,
    listener: Option<TcpListener>,
    hand_out: bool,
    next_target: usize,
    op: Option<OpId>,
    retry: Option<Instant>,
    /// Accept failures (out of descriptors in a connection storm) log a line per interval.
    warn: WarnLimit,
}

impl Acceptor {
    pub fn new(worker: u16, workers: usize, source: Source) -> Acceptor {
        let (listener, hand_out) = match source {
            Source::Listener(l) => (Some(l), false),
            Source::Acceptor(l) => (Some(l), true),
            Source::Mailbox => (None, false),
        };
        Acceptor {
            worker,
            workers,
            listener,
            hand_out,
            next_target: 0,
            op: None,
            retry: None,
            warn: WarnLimit::default(),
        }
    }

    /// Whether the accept op is still in the port.
    pub fn is_armed(&self) -> bool {
        self.op.is_some()
    }

    /// When a failed accept is to be tried again.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry
    }

    /// Arms the multishot accept (unless armed, or there is no listener).
    pub fn arm(&mut self, port: &mut Port) {
        if self.op.is_some() {
            return;
        }
        let Some(listener) = &self.listener else {
            return;
        };
        match port.submit(op::AcceptMulti::new(listener), super::worker::ACCEPT) {
            Ok(id) => {
                self.op = Some(id);
                self.retry = None;
            }
            Err(e) => {
                warn_limited!(self.warn, worker = self.worker, "cannot accept: {e}");
                self.retry = Some(Instant::now() + ACCEPT_BACKOFF);
            }
        }
    }

    /// The back-off after a failure is over at `now`: arms again.
    pub fn on_time(&mut self, port: &mut Port, now: Instant) {
        if self.retry.is_some_and(|at| at <= now) {
            self.retry = None;
            self.arm(port);
        }
    }

    /// An accept completion: the connection it brought, if any, and where it goes.
    pub fn on_completion(
        &mut self,
        port: &mut Port,
        c: Completion,
        counters: &WorkerCounters,
        stopping: bool,
    ) -> Option<Accepted> {
        if !c.more {
            self.op = None;
        }
        let cancelled = c.is_cancelled();
        let accepted = match c.outcome {
            Outcome::Accept(Ok((stream, peer))) => Some(self.route(stream, peer)),
            Outcome::Accept(Err(_)) if cancelled => None,
            Outcome::Accept(Err(e)) if is_accept_aborted(&e) => {
                // Reset by its peer before we took it: counted, nothing to retry or report.
                WorkerCounters::add(&counters.accept_aborted, 1);
                None
            }
            Outcome::Accept(Err(e)) => {
                // Out of descriptors (EMFILE/ENFILE) or a transient error: try again a little
                // later instead of spinning on a listener that cannot give us anything.
                warn_limited!(
                    self.warn,
                    worker = self.worker,
                    "accept failed: {e}; retrying shortly"
                );
                self.retry = Some(Instant::now() + ACCEPT_BACKOFF);
                return None;
            }
            _ => None,
        };
        if self.op.is_none() && self.retry.is_none() {
            if stopping {
                self.listener = None;
            } else {
                self.arm(port);
            }
        }
        accepted
    }

    /// The acceptor deals connections to the workers in turn; others serve their own.
    fn route(&mut self, stream: TcpStream, peer: SocketAddr) -> Accepted {
        if self.hand_out {
            let target = self.next_target % self.workers;
            self.next_target = self.next_target.wrapping_add(1);
            if target != usize::from(self.worker) {
                return Accepted::To(target, stream, peer);
            }
        }
        Accepted::Here(stream, peer)
    }

    /// The server stops: no more accepts.
    pub fn stop(&mut self, port: &mut Port) {
        match self.op {
            Some(id) => {
                let _ = port.cancel(id);
            }
            None => self.listener = None,
        }
        self.retry = None;
    }
}
