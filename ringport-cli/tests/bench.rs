//! `ringport bench` on the real binary over loopback: clean runs against spawned servers on both
//! Linux backends, deliberately broken servers that must make it fail, the JSON document, the
//! chart, idle and compare modes, and wrong flags. Every run is short and bounded; nothing here
//! asserts on speed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

mod common;

use common::{BIN, assert_fails_clearly, text};

/// Short, bounded runs: a little warmup, a fraction of a second measured.
const QUICK: [&str; 8] = [
    "--duration",
    "300ms",
    "--warmup",
    "100ms",
    "--drain-timeout",
    "3s",
    "--connect-timeout",
    "10s",
];

fn bench(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("bench")
        .args(args)
        .output()
        .expect("run ringport bench")
}

/// A fresh path under the target directory's tmp.
fn temp(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let n = N.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("bench-{}-{n}-{name}", std::process::id()))
}

fn json(path: &PathBuf) -> Value {
    let text = std::fs::read_to_string(path).expect("the JSON file was written");
    serde_json::from_str(&text).expect("the JSON file parses")
}

fn field<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| match k.parse::<usize>() {
        Ok(i) => &v[i],
        Err(_) => v
            .get(k)
            .unwrap_or_else(|| panic!("no field {k:?} (in {path}) in {v}")),
    })
}

/// Every field docs/BENCHMARKS.md documents for a run.
const RUN_FIELDS: &[&str] = &[
    "server",
    "round",
    "perf_round",
    "conns",
    "size",
    "pipeline",
    "rate",
    "connected",
    "seconds",
    "msgs",
    "bytes",
    "msgs_per_s",
    "mb_per_s",
    "latency_us.p50",
    "latency_us.p90",
    "latency_us.p99",
    "latency_us.p999",
    "latency_us.max",
    "latency_us.mean",
    "latency_us.samples",
    "errors.mismatches",
    "errors.short_echoes",
    "errors.resets",
    "errors.connect_failures",
    "errors.other",
    "errors.total",
    "client.threads",
    "client.cpus",
    "client.cpu_s",
    "client.cpu_percent",
    "server_stats",
    "others_cpu_percent",
    "behind",
    "notes",
];

const TOP_FIELDS: &[&str] = &[
    "schema",
    "mode",
    "command",
    "machine.os",
    "machine.arch",
    "machine.cpus",
    "machine.kernel",
    "settings.warmup_s",
    "settings.duration_s",
    "settings.count",
    "settings.pipeline",
    "settings.rate",
    "settings.client_threads",
    "settings.client_cpus",
    "settings.server_cpus",
    "settings.server_workers",
    "settings.repeat",
    "settings.target",
    "runs",
    "idle",
    "summary",
    "idle_summary",
    "errors",
];

#[test]
fn a_short_bench_against_a_spawned_server_passes_on_both_backends() {
    // Windows has one backend (IOCP), which `auto` picks.
    let backends: &[&str] = if cfg!(target_os = "linux") {
        &["uring", "epoll"]
    } else {
        &["auto"]
    };
    for &backend in backends {
        let out_file = temp("run.json");
        let out = bench(
            &[
                &["--spawn", "--server-backend", backend, "--conns", "8"],
                &["--pipeline", "2", "--size", "100", "-q"][..],
                &QUICK,
                &["--json", out_file.to_str().unwrap()],
            ]
            .concat(),
        );
        let err = text(&out.stderr);
        assert!(out.status.success(), "{backend}: {err}");
        let report = json(&out_file);
        for f in TOP_FIELDS {
            field(&report, f);
        }
        assert_eq!(report["schema"], "ringport-bench/1");
        assert_eq!(report["mode"], "run");
        assert_eq!(report["errors"], 0);
        let run = &report["runs"][0];
        for f in RUN_FIELDS {
            field(run, f);
        }
        if cfg!(target_os = "linux") {
            assert_eq!(run["server"], backend);
        }
        assert_eq!(run["connected"], 8);
        assert_eq!(run["errors"]["total"], 0, "{err}");
        assert!(run["msgs"].as_u64().unwrap() > 0);
        assert!(run["latency_us"]["p50"].as_f64().unwrap() > 0.0);
        // The spawned server's CPU and memory come from /proc.
        if cfg!(target_os = "linux") {
            let stats = &run["server_stats"];
            assert!(stats["pid"].as_u64().unwrap() > 0);
            assert!(stats["cpu_us_per_msg"].as_f64().unwrap() > 0.0);
            assert!(stats["rss_bytes"].as_u64().unwrap() > 0);
        }
        // The table on stdout.
        let table = text(&out.stdout);
        assert!(table.contains("msgs/s"), "{table}");
        if cfg!(target_os = "linux") {
            assert!(table.contains(backend), "{table}");
        }
    }
}

#[test]
fn count_and_rate_modes_measure_what_they_say() {
    let out_file = temp("count.json");
    let out = bench(
        &[
            &[
                "--spawn",
                "--conns",
                "4",
                "--count",
                "2000",
                "--pipeline",
                "4",
            ][..],
            &["--warmup", "50ms", "-q", "--perf", "off"],
            &["--json", out_file.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = &json(&out_file)["runs"][0];
    assert_eq!(run["msgs"], 2000, "exactly the messages counted: {run}");
    assert_eq!(run["latency_us"]["samples"], 2000);

    let out_file = temp("rate.json");
    let out = bench(
        &[
            &[
                "--spawn", "--conns", "4", "--rate", "2000", "-q", "--perf", "off",
            ][..],
            &QUICK,
            &["--json", out_file.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = &json(&out_file)["runs"][0];
    assert_eq!(run["rate"], 2000.0);
    assert!(run["msgs"].as_u64().unwrap() > 0);
}

/// How a broken echo server breaks.
#[derive(Copy, Clone)]
enum Broken {
    /// Flips a bit in every seventh read it echoes.
    Flips,
    /// Echoes all but the last byte of its fifth read, then closes.
    Truncates,
    /// Resets the connection (SO_LINGER 0) on its fifth read.
    Resets,
}

fn broken_server(how: Broken) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                let mut buf = [0u8; 4096];
                for reads in 1.. {
                    let n = match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    match how {
                        Broken::Flips if reads % 7 == 0 => buf[n / 2] ^= 0x10,
                        Broken::Truncates if reads == 5 => {
                            let _ = s.write_all(&buf[..n - 1]);
                            return;
                        }
                        Broken::Resets if reads == 5 => {
                            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
                            return;
                        }
                        _ => {}
                    }
                    if s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn a_broken_server_makes_the_bench_fail_and_say_why() {
    let cases = [
        (Broken::Flips, "mismatches", "differ"),
        (Broken::Truncates, "short_echoes", "not echoed"),
        (Broken::Resets, "resets", "reset"),
    ];
    for (how, counter, says) in cases {
        let addr = broken_server(how).to_string();
        let out_file = temp("broken.json");
        let out = bench(
            &[
                &["--addr", &addr, "--conns", "4", "--size", "64", "-q"][..],
                &QUICK,
                &["--json", out_file.to_str().unwrap()],
            ]
            .concat(),
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{counter}: {err}");
        assert!(err.contains(says), "{counter}: expected {says:?} in {err}");
        assert!(!err.contains("panicked"), "{err}");
        let report = json(&out_file);
        let run = &report["runs"][0];
        assert!(
            run["errors"][counter].as_u64().unwrap() > 0,
            "{counter}: {run}"
        );
        assert!(report["errors"].as_u64().unwrap() > 0);
        assert!(run["server_stats"].is_null(), "no pid was given");
    }

    // Nobody listening: every connect fails, and the bench says so.
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = bench(
        &[
            &["--addr", &free.to_string(), "--conns", "3", "-q"][..],
            &QUICK,
        ]
        .concat(),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("3 connect failures") && err.contains("refused"),
        "{err}"
    );
}

#[test]
fn a_matrix_chart_is_a_whole_png() {
    let chart = temp("matrix.png");
    let out_file = temp("matrix.json");
    let out = bench(
        &[
            &[
                "--spawn",
                "--matrix",
                "--matrix-conns",
                "1,4",
                "--matrix-sizes",
                "64,512",
            ][..],
            &[
                "--duration",
                "150ms",
                "--warmup",
                "0s",
                "-q",
                "--perf",
                "off",
            ],
            &["--chart", chart.to_str().unwrap()],
            &["--json", out_file.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bytes = std::fs::read(&chart).expect("the chart was written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(
        &bytes[bytes.len() - 8..bytes.len() - 4],
        b"IEND",
        "ends with IEND"
    );
    let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
    let mut reader = decoder.read_info().expect("a valid PNG header");
    let mut pixels = vec![0u8; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).expect("the image decodes");
    assert_eq!((frame.width, frame.height), (1400, 620));
    assert!(pixels.iter().any(|&p| p != 255), "something is drawn");

    let report = json(&out_file);
    assert_eq!(report["mode"], "matrix");
    assert_eq!(report["runs"].as_array().unwrap().len(), 4);
    assert_eq!(report["summary"].as_array().unwrap().len(), 4);
    assert!(
        report["summary"][0]["msgs_per_s"]["median"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

/// Linux only: it compares the two Linux backends (and a tokio server).
#[cfg(target_os = "linux")]
#[test]
fn compare_interleaves_servers_and_gives_ratios() {
    let out_file = temp("compare.json");
    let md = temp("compare.md");
    let out = bench(
        &[
            &[
                "--compare",
                "--servers",
                "uring,epoll",
                "--matrix-conns",
                "2",
            ][..],
            &[
                "--matrix-sizes",
                "64",
                "--repeat",
                "2",
                "--idle",
                "50",
                "-q",
            ],
            &["--duration", "150ms", "--warmup", "0s", "--perf", "off"],
            &["--json", out_file.to_str().unwrap()],
            &["--markdown", md.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = json(&out_file);
    assert_eq!(report["mode"], "compare");
    let servers: Vec<&str> = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["server"].as_str().unwrap())
        .collect();
    assert_eq!(
        servers,
        ["uring", "epoll", "epoll", "uring"],
        "rotated each round"
    );
    let uring = &report["summary"][0];
    assert_eq!(uring["server"], "uring");
    assert_eq!(uring["runs"], 2);
    assert_eq!(uring["vs_baseline"]["baseline"], "epoll");
    assert!(uring["vs_baseline"]["msgs_per_s"].as_f64().unwrap() > 0.0);
    let idle = report["idle"].as_array().unwrap();
    assert_eq!(idle.len(), 4);
    assert_eq!(idle[0]["connected"], 50);
    assert!(idle[0]["rss_after"].as_u64().unwrap() > 0);
    assert_eq!(report["idle_summary"].as_array().unwrap().len(), 2);
    let md = std::fs::read_to_string(md).unwrap();
    assert!(
        md.contains("| conns | size | uring | epoll | uring ÷ epoll |"),
        "{md}"
    );
    assert!(md.contains("closed loop"), "{md}");
    assert!(!md.contains("Syscalls per echo"), "perf was off: {md}");
}

/// Linux only: the server's memory is read from /proc.
#[cfg(target_os = "linux")]
#[test]
fn idle_mode_reports_memory_per_connection() {
    let out_file = temp("idle.json");
    let out = bench(
        &[
            &["--spawn", "--idle", "100", "-q"][..],
            &["--json", out_file.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("bytes of server memory per idle connection"));
    let report = json(&out_file);
    assert_eq!(report["mode"], "idle");
    assert!(report["runs"].as_array().unwrap().is_empty());
    let idle = &report["idle"][0];
    for f in [
        "server",
        "round",
        "conns",
        "connected",
        "rss_before",
        "rss_after",
    ] {
        field(idle, f);
    }
    assert_eq!(idle["connected"], 100);
    assert!(idle["bytes_per_conn"].is_number());
}

#[test]
fn echo_server_pins_its_workers_when_asked() {
    let mut child = Command::new(BIN)
        .args([
            "echo-server",
            "--addr",
            "127.0.0.1:0",
            "--cpus",
            "0",
            "--quiet",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    std::io::BufRead::read_line(&mut out, &mut banner).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(banner.contains("1 workers on CPUs 0"), "{banner}");
}

#[test]
fn wrong_bench_flags_fail_with_a_clear_message() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "say where the load goes"),
        (&["--spawn", "--conns", "0"], "--conns must be at least 1"),
        (&["--spawn", "--size", "0"], "--size must be between"),
        (&["--spawn", "--size", "12parsecs"], "unknown size unit"),
        (
            &["--spawn", "--duration", "0s"],
            "--duration must be positive",
        ),
        (&["--spawn", "--duration", "soon"], "not a duration"),
        (&["--spawn", "--rate=-5"], "must be a positive number"),
        (&["--spawn", "--rate", "0"], "must be a positive number"),
        (
            &["--spawn", "--pipeline", "0"],
            "--pipeline must be at least 1",
        ),
        (&["--spawn", "--count", "0"], "--count must be at least 1"),
        (
            &["--spawn", "--count", "5", "--duration", "1s"],
            "cannot be used with",
        ),
        (&["--addr", "127.0.0.1:1", "--spawn"], "cannot be used with"),
        (&["--addr", "nowhere"], "invalid socket address"),
        (&["--spawn", "--server-backend", "pigeon"], "invalid value"),
        (&["--server-pid", "1"], "--addr"),
        (
            &["--spawn", "--chart", "x.png"],
            "add --matrix or --compare",
        ),
        (&["--spawn", "--markdown", "x.md"], "--compare"),
        (&["--compare", "--servers", "fortran"], "unknown server"),
        (&["--compare", "--servers", "uring,uring"], "twice"),
        (
            &["--compare", "--servers", "tokio", "--tokio-server", "/nope"],
            "is not at /nope",
        ),
        (
            &[
                "--compare",
                "--servers",
                "uring,epoll",
                "--baseline",
                "tokio",
            ],
            "--baseline",
        ),
        (&["--spawn", "--client-cpus", "4095"], "not available"),
        (&["--spawn", "--server-cpus", "1-"], "not a CPU list"),
        (
            &["--addr", "127.0.0.1:1", "--idle", "10"],
            "--idle measures the server's memory",
        ),
        (
            &["--spawn", "--matrix", "--matrix-sizes", "0"],
            "--matrix-sizes",
        ),
        // Linux: the open-file limit is the limit; elsewhere the source addresses are.
        (
            &["--spawn", "--conns", "10000000"],
            if cfg!(target_os = "linux") {
                "open-file limit"
            } else {
                "source addresses"
            },
        ),
        (
            &["--spawn", "--json", "/no/such/dir/x.json"],
            "no directory",
        ),
        (
            &[
                "--spawn",
                "--matrix",
                "--chart",
                "x.png",
                "--chart-font",
                "/no/font.ttf",
            ],
            "fonts-dejavu-core",
        ),
        (&["--spawn", "--no-such-flag"], "unexpected argument"),
    ];
    for (args, expect) in cases {
        assert_fails_clearly(args, &bench(args), expect);
    }
    // The same for echo-server --cpus.
    let out = Command::new(BIN)
        .args(["echo-server", "--addr", "127.0.0.1:0", "--cpus", "4095"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not available"),
        "{}",
        text(&out.stderr)
    );
}
