//! The connection state machine without sockets: a simulated kernel applies its actions.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::server::codec::Lines;
use crate::server::limits::Budget;

const HIGH: usize = 64;
const MAX_QUEUED: usize = 4096;

fn limits() -> Limits {
    Limits {
        write_high_water: HIGH,
        max_queued_write: MAX_QUEUED,
        max_frame: 256,
        idle_timeout: Some(Duration::from_secs(1)),
        ..Limits::default()
    }
}

/// What the handler saw.
#[derive(Default, Debug)]
struct Seen {
    frames: Vec<Vec<u8>>,
    closed: Option<CloseReason>,
    shutdown: bool,
    timers: Vec<u64>,
    /// Answer a FIN with `AfterFin::KeepWriting` (and a line saying so).
    keep_writing: bool,
    peer_shutdowns: usize,
    /// What `cx.send` said after the sending side was shut.
    refused: Vec<SendError>,
}

/// A handler timer that shuts the sending side, then tries one more send.
const SHUT_TIMER: u64 = 99;

/// Echoes every frame; says goodbye on shutdown.
struct Echoer(Rc<RefCell<Seen>>);

impl Handler for Echoer {
    fn on_frame(&mut self, cx: &mut Ctx<'_>, frame: &[u8]) {
        self.0.borrow_mut().frames.push(frame.to_vec());
        let _ = cx.send(frame);
    }
    fn on_timer(&mut self, cx: &mut Ctx<'_>, timer: u64) {
        self.0.borrow_mut().timers.push(timer);
        if timer == SHUT_TIMER {
            cx.shutdown_write();
            if let Err(e) = cx.send(b"too late") {
                self.0.borrow_mut().refused.push(e);
            }
        }
    }
    fn on_peer_shutdown(&mut self, cx: &mut Ctx<'_>) -> AfterFin {
        let mut seen = self.0.borrow_mut();
        seen.peer_shutdowns += 1;
        if seen.keep_writing {
            let _ = cx.send(b"still here");
            AfterFin::KeepWriting
        } else {
            AfterFin::Close
        }
    }
    fn on_shutdown(&mut self, cx: &mut Ctx<'_>) {
        self.0.borrow_mut().shutdown = true;
        let _ = cx.send(b"bye");
    }
    fn on_close(&mut self, reason: CloseReason) {
        self.0.borrow_mut().closed = Some(reason);
    }
}

/// One connection and a simulated kernel: a receive armed or not, one send in flight.
struct Sim {
    env: Env,
    budget: Arc<Budget>,
    conn: Conn<Echoer>,
    seen: Rc<RefCell<Seen>>,
    armed: bool,
    cancel_asked: bool,
    dirty: bool,
    in_flight: Option<Buf>,
    /// The half-close of the sending side is in the kernel.
    half_close: bool,
    /// It completed: every byte sent before it is all the peer gets.
    write_shut: bool,
    sent: Vec<u8>,
    closed: Option<Ending>,
    removed: Option<CloseReason>,
    starved: bool,
}

impl Sim {
    fn new() -> Sim {
        Sim::with_budget(1 << 20)
    }

    fn with_budget(bytes: usize) -> Sim {
        let budget = Arc::new(Budget::new(bytes));
        let limits = limits();
        let env = Env::new(
            Arc::new(Lines),
            limits,
            Held::new(budget.clone()),
            Timers::new(Some(Duration::from_millis(250))),
            Arc::default(),
        );
        let seen = Rc::new(RefCell::new(Seen::default()));
        let id = ConnId {
            worker: 0,
            key: 0,
            generation: 0,
        };
        let conn = Conn::new(id, "127.0.0.1:1".parse().unwrap(), 0, Echoer(seen.clone()));
        let mut sim = Sim {
            env,
            budget,
            conn,
            seen,
            armed: false,
            cancel_asked: false,
            dirty: false,
            in_flight: None,
            half_close: false,
            write_shut: false,
            sent: Vec::new(),
            closed: None,
            removed: None,
            starved: false,
        };
        let a = sim.conn.open(&mut sim.env);
        sim.apply(a);
        sim
    }

    fn apply(&mut self, a: Actions) {
        assert!(self.removed.is_none(), "actions after removal: {a:?}");
        if a.arm_recv {
            assert!(!self.armed, "a second receive armed");
            assert!(self.closed.is_none(), "reading a closed socket");
            self.armed = true;
            self.cancel_asked = false;
        }
        if a.cancel_recv {
            assert!(self.armed, "cancel without a receive");
            self.cancel_asked = true;
        }
        self.starved |= a.starved;
        self.dirty |= a.flush;
        if a.shutdown_write {
            assert!(!self.half_close && !self.write_shut, "a second half-close");
            assert!(
                self.in_flight.is_none() && !self.dirty,
                "a half-close before the queue drained"
            );
            self.half_close = true;
        }
        if let Some(e) = a.close {
            assert!(self.closed.is_none(), "closed twice");
            self.closed = Some(e);
        }
        self.removed = a.remove;
    }

    /// Bytes arrive (a receive must be armed; the kernel reads even after a cancel is asked).
    fn recv(&mut self, data: &[u8]) {
        assert!(self.armed, "bytes without a receive");
        let a = self
            .conn
            .received(&mut self.env, true, Ok(data.len()), Some(data));
        self.apply(a);
    }

    /// The receive's final completion: the cancel's, or the peer's FIN.
    fn recv_end(&mut self, fin: bool) {
        assert!(self.armed);
        self.armed = false;
        let result = if fin {
            Ok(0)
        } else {
            Err(crate::op::cancelled_error())
        };
        let a = self.conn.received(&mut self.env, false, result, None);
        self.apply(a);
    }

    /// The end of a batch: the flush list goes out.
    fn batch_end(&mut self) {
        if std::mem::take(&mut self.dirty)
            && let Some(out) = self.conn.start_send()
        {
            assert!(self.in_flight.is_none(), "two sends in flight");
            self.in_flight = Some(out);
        }
    }

    /// The send in flight completes whole.
    fn send_done(&mut self) -> bool {
        let Some(buf) = self.in_flight.take() else {
            return false;
        };
        self.sent.extend_from_slice(&buf);
        let n = buf.len();
        let a = self.conn.sent(&mut self.env, Ok(n), buf);
        self.apply(a);
        true
    }

    /// The half-close in flight completes.
    fn half_close_done(&mut self) -> bool {
        if !std::mem::take(&mut self.half_close) {
            return false;
        }
        self.write_shut = true;
        let a = self.conn.write_shut(&mut self.env, Ok(()));
        self.apply(a);
        true
    }

    /// A handler timer fires now.
    fn fire(&mut self, timer: u64) {
        self.conn.core.cancelled.clear();
        let due = Due {
            key: 0,
            generation: 0,
            timer,
            seq: 0,
        };
        let a = self.conn.timer(&mut self.env, due);
        self.apply(a);
    }

    /// The kernel gives everything back: cancels complete, sends finish.
    fn settle_kernel(&mut self) {
        for _ in 0..100 {
            self.batch_end();
            let mut progressed = self.send_done();
            progressed |= self.half_close_done();
            if self.armed && (self.cancel_asked || self.closed.is_some()) {
                self.recv_end(false);
                progressed = true;
            }
            if !progressed && !self.dirty {
                return;
            }
        }
        panic!("the kernel never settled");
    }

    fn phase(&self) -> Phase {
        self.conn.core.phase
    }
}

fn lines(range: std::ops::Range<usize>) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut wire = Vec::new();
    let mut frames = Vec::new();
    for i in range {
        let line = format!("line {i:04}");
        wire.extend_from_slice(line.as_bytes());
        wire.push(b'\n');
        frames.push(line.into_bytes());
    }
    (wire, frames)
}

#[test]
fn backpressure_pauses_stashes_and_resumes_in_order() {
    let mut sim = Sim::new();
    assert!(sim.armed, "a new connection reads");
    let (wire, frames) = lines(0..40);
    // No send completes: the echoes pile up past the high-water mark.
    sim.recv(&wire[..200]);
    assert_eq!(sim.phase(), Phase::Paused { at_end: false });
    assert!(sim.cancel_asked, "the receive is stopped at once");
    let decoded = sim.seen.borrow().frames.len();
    assert!(decoded < 40, "decoding stopped at the mark");
    // Bytes the kernel read before the cancel took effect are kept, not decoded.
    sim.recv(&wire[200..]);
    assert_eq!(sim.seen.borrow().frames.len(), decoded);
    sim.recv_end(false);
    assert!(!sim.armed, "no new receive while paused");
    // The peer reads: sends complete, the connection resumes and decodes the rest.
    sim.settle_kernel();
    assert_eq!(sim.phase(), Phase::Open);
    assert!(sim.armed, "reading again once drained");
    assert_eq!(
        sim.seen.borrow().frames,
        frames,
        "every frame once, in order"
    );
    assert_eq!(sim.sent, wire, "every echo once, in order");
    assert!(
        sim.env
            .counters
            .paused
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
}

#[test]
fn frames_held_at_the_fin_are_all_answered_then_it_ends() {
    for (tail, reason) in [
        (&b""[..], CloseReason::PeerClosed),
        (b"unfinished", CloseReason::BadFrame),
    ] {
        let mut sim = Sim::new();
        let (mut wire, frames) = lines(0..30);
        wire.extend_from_slice(tail);
        sim.recv(&wire);
        assert!(matches!(sim.phase(), Phase::Paused { .. }));
        sim.recv_end(true);
        assert_eq!(sim.phase(), Phase::Paused { at_end: true });
        sim.settle_kernel();
        assert_eq!(sim.seen.borrow().frames, frames);
        assert_eq!(sim.seen.borrow().closed, Some(reason));
        assert_eq!(sim.removed, Some(reason));
        assert_eq!(sim.budget.used(), 0, "nothing held after removal");
    }
}

#[test]
fn a_spent_budget_keeps_it_paused_until_bytes_are_freed() {
    let mut sim = Sim::new();
    let (wire, _) = lines(0..30);
    sim.recv(&wire);
    sim.recv_end(false);
    // Someone else holds the rest of the budget (and more than this connection gives back).
    let rest = (2 << 20) - sim.budget.used();
    sim.budget.force(rest);
    sim.settle_kernel();
    assert!(
        matches!(sim.phase(), Phase::Paused { .. }),
        "no resume on a spent budget"
    );
    sim.budget.release(rest);
    let a = sim.conn.tick(&mut sim.env, None);
    sim.apply(a);
    sim.settle_kernel();
    assert_eq!(sim.phase(), Phase::Open);
    assert_eq!(sim.seen.borrow().frames.len(), 30);
}

#[test]
fn slowloris_is_closed_by_the_idle_timeout_but_whole_frames_count_as_progress() {
    let mut sim = Sim::new();
    let limit = Some(4);
    for t in 1..=3 {
        sim.env.timers.ticks = t;
        sim.recv(b"x"); // a byte, never a whole frame
        let a = sim.conn.tick(&mut sim.env, limit);
        sim.apply(a);
    }
    sim.recv(b"\n"); // a whole frame at tick 3: progress
    sim.settle_kernel();
    sim.env.timers.ticks = 6;
    let a = sim.conn.tick(&mut sim.env, limit);
    sim.apply(a);
    assert_eq!(sim.phase(), Phase::Open, "progress at tick 3");
    for t in 7..=10 {
        sim.env.timers.ticks = t;
        sim.recv(b"y");
        let a = sim.conn.tick(&mut sim.env, limit);
        sim.apply(a);
    }
    assert_eq!(sim.seen.borrow().closed, Some(CloseReason::IdleTimeout));
    assert!(matches!(
        sim.closed,
        Some(Ending::Abort(CloseReason::IdleTimeout))
    ));
    sim.settle_kernel();
    assert_eq!(sim.removed, Some(CloseReason::IdleTimeout));
}

#[test]
fn shutdown_says_goodbye_flushes_then_closes() {
    let mut sim = Sim::new();
    let a = sim.conn.shutdown(&mut sim.env);
    sim.apply(a);
    assert!(sim.seen.borrow().shutdown);
    assert!(sim.cancel_asked, "no more reading");
    assert!(sim.closed.is_none(), "the goodbye flushes first");
    sim.settle_kernel();
    assert_eq!(sim.sent, b"bye\n");
    assert_eq!(sim.removed, Some(CloseReason::Shutdown));
}

#[test]
fn grace_over_aborts_what_has_not_flushed() {
    let mut sim = Sim::new();
    let a = sim.conn.shutdown(&mut sim.env);
    sim.apply(a);
    sim.batch_end(); // the goodbye is in flight, and never completes
    let a = sim.conn.grace_over(&mut sim.env);
    sim.apply(a);
    assert!(matches!(
        sim.closed,
        Some(Ending::Abort(CloseReason::Shutdown))
    ));
    assert!(sim.removed.is_none(), "the send is still in the kernel");
    let buf = sim.in_flight.take().unwrap();
    let a = sim
        .conn
        .sent(&mut sim.env, Err(crate::op::cancelled_error()), buf);
    sim.apply(a);
    sim.recv_end(false);
    assert_eq!(sim.removed, Some(CloseReason::Shutdown));
    assert_eq!(sim.budget.used(), 0);
}

#[test]
fn pushes_obey_the_queued_write_limit() {
    let mut sim = Sim::new();
    let framed = vec![b'p'; 1000];
    for _ in 0..4 {
        let a = sim.conn.push(&mut sim.env, &framed);
        sim.apply(a);
    }
    assert!(sim.phase().is_live(), "4000 bytes fit under {MAX_QUEUED}");
    assert!(
        matches!(sim.phase(), Phase::Paused { .. }),
        "pushed bytes count for backpressure"
    );
    let a = sim.conn.push(&mut sim.env, &framed);
    sim.apply(a);
    assert_eq!(sim.seen.borrow().closed, Some(CloseReason::Limit));
    let a = sim.conn.push(&mut sim.env, &framed);
    sim.apply(a);
    let dropped = &sim.env.counters.pushes_dropped;
    assert_eq!(dropped.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[test]
fn cancelled_timers_do_not_fire() {
    let mut sim = Sim::new();
    let due = |timer, seq| Due {
        key: 0,
        generation: 0,
        timer,
        seq,
    };
    sim.env.timers.user(sim.conn.core.id, Duration::ZERO, 1); // seq 0
    sim.env.timers.user(sim.conn.core.id, Duration::ZERO, 2); // seq 1
    let mut cx = Ctx {
        core: &mut sim.conn.core,
        env: &mut sim.env,
    };
    cx.cancel_timer(1);
    sim.env.timers.user(sim.conn.core.id, Duration::ZERO, 1); // seq 2: set after the cancel
    for d in [due(1, 0), due(2, 1), due(1, 2)] {
        let a = sim.conn.timer(&mut sim.env, d);
        sim.apply(a);
    }
    assert_eq!(sim.seen.borrow().timers, [2, 1]);
}

/// What the peer and the kernel do next.
#[derive(Debug, Clone)]
enum Step {
    /// The next `n` bytes of the stream arrive (if a receive is armed).
    Bytes(usize),
    /// The batch ends and a send completes.
    Drain,
    /// A cancelled receive gives its final completion.
    CancelDone,
    /// A tick passes.
    Tick,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1usize..120).prop_map(Step::Bytes),
        3 => Just(Step::Drain),
        2 => Just(Step::CancelDone),
        1 => Just(Step::Tick),
    ]
}

proptest! {
    /// Whatever the interleaving of arrivals, drains and cancels: every frame is decoded once
    /// and in order, the echo stream is exactly the input's frames, queued bytes stay bounded
    /// by backpressure, and after the FIN the connection is removed holding nothing.
    #[test]
    fn every_interleaving_answers_every_frame_once(
        steps in proptest::collection::vec(step(), 1..200),
        count in 1usize..80,
    ) {
        let mut sim = Sim::new();
        let (wire, frames) = lines(0..count);
        let mut at = 0;
        for s in steps {
            match s {
                Step::Bytes(n) if sim.armed && at < wire.len() => {
                    let end = (at + n).min(wire.len());
                    sim.recv(&wire[at..end]);
                    at = end;
                }
                Step::Bytes(_) => {}
                Step::Drain => {
                    sim.batch_end();
                    sim.send_done();
                }
                Step::CancelDone => {
                    if sim.armed && sim.cancel_asked {
                        sim.recv_end(false);
                    }
                }
                Step::Tick => {
                    let a = sim.conn.tick(&mut sim.env, None);
                    sim.apply(a);
                }
            }
            // Decoding stops at the mark: at most one frame's echo beyond it.
            prop_assert!(sim.conn.core.queued_bytes() <= HIGH + 16);
            prop_assert_eq!(sim.conn.core.phase.is_live(), true);
        }
        // The rest of the stream, then the FIN; the peer reads everything.
        for _ in 0..10_000 {
            if at == wire.len() {
                break;
            }
            if sim.armed && !sim.cancel_asked {
                let end = (at + 50).min(wire.len());
                sim.recv(&wire[at..end]);
                at = end;
            } else {
                sim.settle_kernel();
            }
        }
        for _ in 0..100 {
            if sim.armed && !sim.cancel_asked {
                break;
            }
            sim.settle_kernel();
        }
        prop_assert!(sim.armed && !sim.cancel_asked, "reading again once drained");
        sim.recv_end(true);
        sim.settle_kernel();
        prop_assert_eq!(&sim.seen.borrow().frames, &frames);
        prop_assert_eq!(&sim.sent, &wire);
        prop_assert_eq!(sim.removed, Some(CloseReason::PeerClosed));
        prop_assert_eq!(sim.budget.used(), 0);
    }
}

#[test]
fn the_default_after_a_fin_is_an_orderly_close() {
    let mut sim = Sim::new();
    sim.recv(b"a\n");
    sim.recv_end(true);
    sim.settle_kernel();
    assert_eq!(sim.sent, b"a\n");
    assert_eq!(sim.seen.borrow().peer_shutdowns, 1);
    assert_eq!(sim.removed, Some(CloseReason::PeerClosed));
    assert!(!sim.write_shut, "a close, not a half-close");
}

#[test]
fn keep_writing_after_the_peers_fin_then_shut_our_side() {
    let mut sim = Sim::new();
    sim.seen.borrow_mut().keep_writing = true;
    sim.recv(b"a\n");
    sim.recv_end(true);
    sim.settle_kernel();
    assert!(!sim.armed, "nothing more to read after the FIN");
    assert_eq!(
        sim.phase(),
        Phase::Open,
        "half-closed: still open for sending"
    );
    assert_eq!(sim.sent, b"a\nstill here\n");
    // A push still goes out; then the handler shuts its side.
    let a = sim.conn.push(&mut sim.env, b"pushed\n");
    sim.apply(a);
    sim.fire(SHUT_TIMER);
    assert_eq!(sim.seen.borrow().refused, vec![SendError::Closed]);
    assert!(!sim.half_close, "the half-close waits for the queue");
    sim.settle_kernel();
    assert_eq!(sim.sent, b"a\nstill here\npushed\n");
    assert!(sim.write_shut);
    assert_eq!(sim.removed, Some(CloseReason::PeerClosed));
}

#[test]
fn shutting_our_side_first_keeps_reading_until_the_peers_fin() {
    let mut sim = Sim::new();
    sim.recv(b"a\n");
    sim.fire(SHUT_TIMER);
    sim.settle_kernel();
    assert!(sim.write_shut, "half-closed after the echo went out");
    assert_eq!(sim.sent, b"a\n");
    assert!(sim.armed, "still reading");
    assert_eq!(sim.phase(), Phase::Open);
    // Frames still reach the handler; its answers are refused (our side is shut) and a push
    // is dropped, counted.
    sim.recv(b"b\n");
    assert_eq!(sim.seen.borrow().frames.len(), 2);
    let a = sim.conn.push(&mut sim.env, b"pushed\n");
    sim.apply(a);
    sim.recv_end(true);
    sim.settle_kernel();
    assert_eq!(sim.sent, b"a\n");
    assert_eq!(
        sim.seen.borrow().peer_shutdowns,
        0,
        "both sides done: no question to ask"
    );
    assert_eq!(sim.removed, Some(CloseReason::PeerClosed));
    assert_eq!(
        sim.env
            .counters
            .pushes_dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}
