//! Flags that parse but make no sense are refused with one clear line (exit 2, as clap does);
//! host names resolve; a failing listener is named; `bench -q` is quiet and says when the
//! server does not speak raw bytes.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;

use common::*;

/// Runs `ringport args` and checks that it exits 2 with `expect` on one line of stderr.
fn refused(args: &[&str], expect: &[&str]) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    let line = err
        .lines()
        .find(|l| expect.iter().all(|e| l.contains(e)))
        .unwrap_or_else(|| panic!("{args:?}: expected {expect:?} on one line of {err:?}"));
    assert!(
        !line.contains("Custom {") && !line.contains("Os {"),
        "Debug output: {line}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn limits_that_cannot_work_are_refused() {
    let server = ["echo-server", "--addr", "127.0.0.1:0"];
    let with = |extra: &[&'static str]| [&server[..], extra].concat();
    refused(
        &with(&["--stats-interval", "0s"]),
        &["--stats-interval", "longer than zero"],
    );
    refused(
        &with(&["--write-high-water", "8MiB", "--max-queued-write", "1MiB"]),
        &["--write-high-water", "--max-queued-write"],
    );
    refused(
        &with(&["--max-frame", "16GiB"]),
        &["max frame", "memory budget"],
    );
    refused(
        &with(&["--max-frame", "1GiB", "--codec", "len16"]),
        &["--max-frame", "len16", "65535"],
    );
    refused(
        &with(&["--max-frame", "100KiB", "--codec", "len16"]),
        &["len16"],
    );
}

#[test]
fn len16_alone_gets_a_frame_limit_it_can_carry() {
    let server = ServerProc::start(&["--addr", "127.0.0.1:0", "--codec", "len16", "--quiet"]);
    let mut c = TcpStream::connect(server.addr).unwrap();
    c.write_all(&[0, 4, b'p', b'i', b'n', b'g']).unwrap();
    let mut back = [0u8; 6];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, &[0, 4, b'p', b'i', b'n', b'g']);
}

#[test]
fn host_names_resolve_for_every_address_flag() {
    let metrics = free_port();
    let metrics_addr = format!("localhost:{}", metrics.port());
    let server = ServerProc::start(&[
        "--addr",
        "localhost:0",
        "--codec",
        "raw",
        "--quiet",
        "--metrics-addr",
        &metrics_addr,
    ]);
    assert!(server.addr.ip().is_loopback(), "{}", server.addr);
    assert!(get_metrics(&metrics.to_string()).starts_with("HTTP/1.1 200 OK"));
    let addr = format!("localhost:{}", server.addr.port());

    let mut client = Command::new(BIN)
        .args(["echo-client", "--codec", "raw", "--addr", &addr])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    client.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = client.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("hello"));

    let out = Command::new(BIN)
        .args([
            "bench", "--addr", &addr, "--conns", "1", "--count", "50", "-q",
        ])
        .args(["--warmup", "0s", "--perf", "off"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = Command::new(BIN)
        .args(["echo-server", "--addr", "no-such-host.invalid:7000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot resolve"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_busy_metrics_address_is_named_as_the_metrics_listener() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    let args = [
        "echo-server",
        "--addr",
        "127.0.0.1:0",
        "--metrics-addr",
        &busy,
    ];
    let out = Command::new(BIN).args(args).output().unwrap();
    assert_fails_clearly(&args, &out, "metrics listener");
    assert!(text(&out.stderr).contains(&busy), "{}", text(&out.stderr));

    // The same address for both: the message says which flag is at fault.
    let free = free_port().to_string();
    let args = ["echo-server", "--addr", &free, "--metrics-addr", &free];
    let out = Command::new(BIN).args(args).output().unwrap();
    assert_fails_clearly(&args, &out, "--metrics-addr");
    assert!(
        text(&out.stderr).contains("metrics listener"),
        "{}",
        text(&out.stderr)
    );

    // A busy --addr is not blamed on the metrics listener.
    let args = [
        "echo-server",
        "--addr",
        &busy,
        "--metrics-addr",
        "127.0.0.1:0",
    ];
    let out = Command::new(BIN).args(args).output().unwrap();
    assert_fails_clearly(&args, &out, "cannot listen on");
    assert!(
        !text(&out.stderr).contains("metrics"),
        "{}",
        text(&out.stderr)
    );
}

/// `ringport bench -q --perf off --warmup 0s ARGS` against an echo server with `codec`.
fn bench_against(codec: &str, args: &[&str]) -> std::process::Output {
    let server = ServerProc::start(&["--addr", "127.0.0.1:0", "--codec", codec, "--quiet"]);
    let addr = server.addr.to_string();
    Command::new(BIN)
        .args([
            "bench", "--addr", &addr, "-q", "--perf", "off", "--warmup", "0s",
        ])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn bench_quiet_prints_no_line_per_run() {
    let matrix = ["--matrix", "--matrix-conns", "1,2", "--matrix-sizes", "64"];
    let out = bench_against("raw", &[&matrix[..], &["--count", "50"]].concat());
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains("[1/2]") && !err.contains("[2/2]"),
        "-q printed run lines: {err}"
    );
}

#[test]
fn bench_against_a_framing_server_says_it_speaks_raw_only() {
    let out = bench_against(
        "line",
        &[
            "--conns",
            "2",
            "--duration",
            "500ms",
            "--drain-timeout",
            "1s",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("--codec raw"), "{err}");
    assert!(err.contains("does not seem to echo raw bytes"), "{err}");
}
