//! Opt-in long runs against the real binary: both are `#[ignore]`d, so the default test run stays
//! fast. Their results are recorded in docs/RELIABILITY.md.
//!
//! ```sh
//! cargo test --release -p ringport-cli --test soak -- --ignored --nocapture --test-threads 1
//! ```
//!
//! - `soak_*`: 10,000 connections for 10 minutes through `ringport bench` (every echoed byte
//!   verified), the server's RSS sampled throughout: zero errors and no growth after warm-up.
//!   `RINGPORT_SOAK_SECS`, `RINGPORT_SOAK_CONNS` and `RINGPORT_SOAK_BACKEND` shorten or redirect
//!   it.
//! - `attackers_*`: 100 well-behaved clients measured alone, then beside 5,000 attackers (2,500
//!   silent, 2,500 trickling a byte a second), then alone again: their p99 with attackers stays
//!   within 2× of the worse run without, every echo is verified, and the idle timeout closes and
//!   counts every attacker.
//!
//! Linux only: they read the server's memory from /proc.

#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{BIN, ServerProc, free_port, get_metrics, text};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident memory of process `pid` in bytes (`VmRSS`).
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("server status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kib * 1024
}

fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

const MIB: f64 = 1024.0 * 1024.0;

#[test]
#[ignore = "a 10-minute soak: run it with --ignored"]
fn soak_10k_connections_every_byte_verified_memory_flat() {
    let secs: u64 = env_or("RINGPORT_SOAK_SECS", 600);
    let conns: u64 = env_or("RINGPORT_SOAK_CONNS", 10_000);
    let backend: String = env_or("RINGPORT_SOAK_BACKEND", "auto".to_string());
    let server = ServerProc::start(&["--addr", "127.0.0.1:0", "--quiet", "--backend", &backend]);
    let pid = server.pid();
    let json = std::env::temp_dir().join(format!("ringport-soak-{}.json", std::process::id()));

    // The server's RSS every 5 s while the bench runs.
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut samples = Vec::new();
            while !done.load(Ordering::Relaxed) {
                samples.push((start.elapsed(), rss(pid)));
                let next = Instant::now() + Duration::from_secs(5);
                while Instant::now() < next && !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            samples
        })
    };
    let out = Command::new(BIN)
        .args(["bench", "--addr", &server.addr.to_string()])
        .args([
            "--server-pid",
            &pid.to_string(),
            "--conns",
            &conns.to_string(),
        ])
        .args(["--duration", &format!("{secs}s"), "--warmup", "5s"])
        .args(["--connect-timeout", "60s", "--quiet", "--json"])
        .arg(&json)
        .output()
        .expect("run ringport bench");
    done.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap();
    let report = text(&out.stdout);
    println!("{report}");
    for (t, bytes) in &samples {
        if t.as_secs() % 60 < 5 {
            println!(
                "t = {:>4} s: server RSS {:.1} MiB",
                t.as_secs(),
                *bytes as f64 / MIB
            );
        }
    }
    assert!(
        out.status.success(),
        "the bench failed: {}{report}",
        text(&out.stderr)
    );
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).expect("bench JSON");
    let _ = std::fs::remove_file(&json);
    assert_eq!(result["errors"], 0, "every byte verified");
    let run = &result["runs"][0];
    assert_eq!(run["connected"].as_u64(), Some(conns), "all connected");

    // Flat: the last tenth of the run holds no more than the second tenth (by then every
    // connection is up and the pools have been cycled through), within 5% + 4 MiB.
    let n = samples.len();
    assert!(n >= 20, "too few samples ({n}) for a trend");
    let mut early: Vec<u64> = samples[n / 10..n / 5].iter().map(|s| s.1).collect();
    let mut late: Vec<u64> = samples[n - n / 10..].iter().map(|s| s.1).collect();
    let (early, late) = (median(&mut early), median(&mut late));
    println!(
        "server RSS: {:.1} MiB early, {:.1} MiB late ({:+.2}%); {} msgs echoed, 0 errors",
        early as f64 / MIB,
        late as f64 / MIB,
        (late as f64 / early as f64 - 1.0) * 100.0,
        run["msgs"]
    );
    assert!(
        late as f64 <= early as f64 * 1.05 + 4.0 * MIB,
        "server memory grew: {early} -> {late} bytes"
    );

    // And it still stops cleanly, every connection closed.
    let (status, summary) = server.terminate();
    assert!(status.success(), "exit {status:?}: {summary}");
}

/// The well-behaved clients' frames: a u32 big-endian length, then the payload.
const PAYLOAD: usize = 60;

/// One well-behaved client: closed-loop echoes of verified length-prefixed frames until
/// `until`; returns each echo's latency in µs.
fn good_client(addr: SocketAddr, id: u64, until: Instant) -> Vec<u32> {
    let mut s = TcpStream::connect(addr).expect("good client connects");
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut latencies = Vec::new();
    let mut frame = [0u8; 4 + PAYLOAD];
    frame[..4].copy_from_slice(&(PAYLOAD as u32).to_be_bytes());
    let mut back = [0u8; 4 + PAYLOAD];
    let mut seq = 0u64;
    while Instant::now() < until {
        frame[4..12].copy_from_slice(&id.to_le_bytes());
        frame[12..20].copy_from_slice(&seq.to_le_bytes());
        for (i, b) in frame[20..].iter_mut().enumerate() {
            *b = (seq as u8).wrapping_mul(31).wrapping_add(i as u8);
        }
        let sent = Instant::now();
        s.write_all(&frame).expect("good client sends");
        s.read_exact(&mut back).expect("good client's echo");
        latencies.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
        assert_eq!(back, frame, "client {id}: echo {seq} differs");
        seq += 1;
    }
    latencies
}

/// `GOOD` clients for `window`; returns (echoes, p50, p99) in µs.
fn measure(addr: SocketAddr, window: Duration) -> (usize, u32, u32) {
    const GOOD: u64 = 100;
    let until = Instant::now() + window;
    let mut all: Vec<u32> = std::thread::scope(|s| {
        let clients: Vec<_> = (0..GOOD)
            .map(|id| s.spawn(move || good_client(addr, id, until)))
            .collect();
        clients
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect()
    });
    all.sort_unstable();
    let at = |q: f64| all[((all.len() - 1) as f64 * q) as usize];
    (all.len(), at(0.50), at(0.99))
}

/// Connections closed by the idle timeout, from the server's Prometheus metrics.
fn idle_closes(metrics: &str) -> u64 {
    get_metrics(metrics)
        .lines()
        .filter(|l| {
            l.starts_with("ringport_connections_closed_total{")
                && l.contains("reason=\"idle_timeout\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
#[ignore = "a one-minute measurement under attack: run it with --ignored"]
fn attackers_silent_and_trickling_do_not_hurt_good_clients() {
    const SILENT: usize = 2500;
    const TRICKLE: usize = 2500;
    let window = Duration::from_secs(env_or("RINGPORT_ATTACK_WINDOW_SECS", 10));
    let idle = Duration::from_secs(20);
    let metrics = free_port().to_string();
    let server = ServerProc::start(&[
        "--addr",
        "127.0.0.1:0",
        "--codec",
        "len",
        "--quiet",
        "--idle-timeout",
        "20s",
        "--metrics-addr",
        &metrics,
    ]);
    let addr = server.addr;

    let before = measure(addr, window);

    // The attack: silent clients connect and say nothing; tricklers send a byte a second of a
    // frame header that announces 1 MiB, so never a whole frame.
    let started = Instant::now();
    let silent: Vec<TcpStream> = (0..SILENT)
        .map(|_| TcpStream::connect(addr).expect("silent attacker connects"))
        .collect();
    let tricklers: Vec<TcpStream> = (0..TRICKLE)
        .map(|_| TcpStream::connect(addr).expect("trickler connects"))
        .collect();
    let connected_in = started.elapsed();
    let stop = Arc::new(AtomicBool::new(false));
    let trickle = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let header = (1u32 << 20).to_be_bytes();
            let mut tricklers = tricklers;
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                for t in &mut tricklers {
                    // After the server has closed it, a write fails: that is the point.
                    let _ = t.write(&header[i % 4..i % 4 + 1]);
                }
                i += 1;
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    assert!(
        connected_in + window < idle,
        "the attackers took {connected_in:?} to connect: they would time out mid-window"
    );
    let during = measure(addr, window);

    // The idle timeout closes every attacker and counts it.
    let deadline = started + idle + Duration::from_secs(30);
    let mut closed = idle_closes(&metrics);
    while closed < (SILENT + TRICKLE) as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        closed = idle_closes(&metrics);
    }
    stop.store(true, Ordering::Relaxed);
    trickle.join().unwrap();
    drop(silent);

    let after = measure(addr, window);
    let report = |name: &str, (n, p50, p99): (usize, u32, u32)| {
        println!("{name:>16}: {n} echoes, p50 {p50} µs, p99 {p99} µs");
    };
    report("before attack", before);
    report("during attack", during);
    report("after attack", after);
    let alone = before.2.max(after.2);
    println!(
        "p99 during ÷ worse p99 alone: {:.2}; attackers connected in {connected_in:?}; \
         {closed} closed by the idle timeout",
        during.2 as f64 / alone as f64
    );
    assert!(
        closed >= (SILENT + TRICKLE) as u64,
        "only {closed} attackers closed by the idle timeout"
    );
    assert!(
        during.2 <= 2 * alone,
        "p99 with attackers {} µs > 2 × {alone} µs",
        during.2
    );
    let (status, summary) = server.terminate();
    assert!(status.success(), "exit {status:?}: {summary}");
}
