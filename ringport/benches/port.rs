//! The cost of the port itself, per backend side by side (`cargo bench -p ringport --bench port`):
//!
//! - `post_wait`: `Poster::post` then `Port::wait` on the same thread (one round through the
//!   port's posted-message queue, no other thread involved).
//! - `ping_pong`: thread A posts to port B, B's thread posts back to port A; one iteration is one
//!   round trip, so it includes two cross-thread wake-ups (an eventfd write each way while the
//!   other side sleeps in `wait`). The two threads are pinned to different CPUs.
//!   `ping_pong/std_mpsc` is the same round trip over two `std` channels: the machine's floor
//!   for waking another thread, without a port.
//! - `nop_batch/N`: submit N `op::Nop`, then wait until all N have completed; criterion reports
//!   time per batch and, through `Throughput::Elements(N)`, ops per second.
//!
//! Every iteration checks what came back (token, value, count), so a backend that loses or
//! invents completions fails here instead of looking fast.

mod common;

use std::sync::mpsc;
use std::thread;

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use ringport::{Completions, Outcome, Port, Poster};

use common::{MEASURE, Pinned, WARM_UP, Watchdog, backends, cpu_pair, port};

/// Token of the posts in `post_wait` and of the pings in `ping_pong`.
const PING: u64 = 1;
/// Token of the pongs coming back in `ping_pong`.
const PONG: u64 = 2;
/// Token that tells the ping-pong peer to exit.
const STOP: u64 = 3;

/// Waits for the one posted completion `(token, value)`; anything else fails the bench.
fn expect_posted(port: &mut Port, batch: &mut Completions, token: u64, value: u64) {
    let n = port.wait(batch, None).expect("wait");
    assert_eq!(n, 1, "one post, one completion");
    let c = batch.drain().next().expect("one completion");
    match c.outcome {
        Outcome::Posted(v) if c.token == token && v == value => {}
        other => panic!("expected Posted({value}) with token {token}, got {other:?}"),
    }
}

fn post_wait(c: &mut Criterion) {
    let mut group = c.benchmark_group("post_wait");
    for backend in backends() {
        let _watchdog = Watchdog::new(format!("post_wait/{backend}"));
        let mut port = port(backend);
        let poster = port.poster();
        let mut batch = Completions::with_capacity(8);
        let mut seq = 0u64;
        group.bench_function(BenchmarkId::from_parameter(backend), |b| {
            b.iter(|| {
                seq += 1;
                poster.post(PING, seq).expect("post");
                expect_posted(&mut port, &mut batch, PING, seq);
            })
        });
    }
    group.finish();
}

/// The other side of `ping_pong`: posts every ping's value back, until told to stop.
fn pong(mut port: Port, back: Poster, cpu: Option<usize>) {
    let _pinned = Pinned::to(cpu);
    let mut batch = Completions::with_capacity(8);
    loop {
        port.wait(&mut batch, None).expect("peer wait");
        for c in batch.drain() {
            match (c.token, c.outcome) {
                (STOP, Outcome::Posted(_)) => return,
                (PING, Outcome::Posted(v)) => back.post(PONG, v).expect("post back"),
                (_, other) => panic!("peer got {other:?}"),
            }
        }
    }
}

fn ping_pong(c: &mut Criterion) {
    let cpus = cpu_pair();
    let mut group = c.benchmark_group("ping_pong");
    for backend in backends() {
        let _watchdog = Watchdog::new(format!("ping_pong/{backend}"));
        let mut mine = port(backend);
        let theirs = port(backend);
        let to_them = theirs.poster();
        let to_me = mine.poster();
        let peer = thread::spawn(move || pong(theirs, to_me, cpus.map(|p| p.0)));
        let pinned = Pinned::to(cpus.map(|p| p.1));
        let mut batch = Completions::with_capacity(8);
        let mut seq = 0u64;
        group.bench_function(BenchmarkId::from_parameter(backend), |b| {
            b.iter(|| {
                seq += 1;
                to_them.post(PING, seq).expect("ping");
                expect_posted(&mut mine, &mut batch, PONG, seq);
            })
        });
        drop(pinned);
        to_them.post(STOP, 0).expect("stop the peer");
        peer.join().expect("the peer thread panicked");
    }
    ping_pong_floor(&mut group, cpus);
    group.finish();
}

/// The machine's floor for the same round trip without a port: two `std` channels, a futex wake
/// each way, the same pinning. The backends' rows minus this row is what the port adds.
fn ping_pong_floor(group: &mut BenchmarkGroup<'_, WallTime>, cpus: Option<(usize, usize)>) {
    let _watchdog = Watchdog::new("ping_pong/std_mpsc");
    let (to_them, theirs) = mpsc::channel::<u64>();
    let (to_me, mine) = mpsc::channel::<u64>();
    let peer = thread::spawn(move || {
        let _pinned = Pinned::to(cpus.map(|p| p.0));
        while let Ok(v) = theirs.recv() {
            to_me.send(v).expect("send back");
        }
    });
    let pinned = Pinned::to(cpus.map(|p| p.1));
    let mut seq = 0u64;
    group.bench_function(BenchmarkId::from_parameter("std_mpsc"), |b| {
        b.iter(|| {
            seq += 1;
            to_them.send(seq).expect("ping");
            assert_eq!(mine.recv().expect("pong"), seq);
        })
    });
    drop(pinned);
    drop(to_them); // the peer's recv fails and it exits
    peer.join().expect("the peer thread panicked");
}

/// Submits `n` nops and waits for all of them; checks each came back once, as a success.
fn nop_round(port: &mut Port, batch: &mut Completions, seen: &mut [bool]) {
    let n = seen.len();
    for token in 0..n as u64 {
        port.submit(ringport::op::Nop::new(), token)
            .expect("submit nop");
    }
    seen.fill(false);
    let mut got = 0;
    while got < n {
        port.wait(batch, None).expect("wait");
        for c in batch.drain() {
            let i = c.token as usize;
            assert!(
                matches!(c.outcome, Outcome::Nop(Ok(()))) && i < n && !seen[i] && !c.more,
                "unexpected completion {c:?}"
            );
            seen[i] = true;
            got += 1;
        }
    }
    assert_eq!(port.in_flight(), 0, "every nop completed");
}

fn nop_batch(c: &mut Criterion) {
    let mut group = c.benchmark_group("nop_batch");
    for n in [1usize, 32, 256] {
        group.throughput(Throughput::Elements(n as u64));
        for backend in backends() {
            let _watchdog = Watchdog::new(format!("nop_batch/{backend}/{n}"));
            let mut port = port(backend);
            let mut batch = Completions::with_capacity(256);
            let mut seen = vec![false; n];
            group.bench_function(BenchmarkId::new(backend.name(), n), |b| {
                b.iter(|| nop_round(&mut port, &mut batch, &mut seen))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(WARM_UP).measurement_time(MEASURE);
    targets = post_wait, ping_pong, nop_batch
}
criterion_main!(benches);
