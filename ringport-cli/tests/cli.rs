//! The real `ringport` binary over real sockets on loopback: echo server and client on every
//! backend and codec, retries, bad flags, metrics, and SIGTERM under load.
//!
//! On Windows (run under Wine by `scripts/test-windows.sh`) what stops the server with SIGTERM
//! is left out (`#[cfg(unix)]`); the script's smoke test stops one with Ctrl-C instead.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{BIN, ServerProc, assert_fails_clearly, backends, free_port, get_metrics, text};
#[cfg(unix)]
use std::{
    sync::Arc,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::Instant,
};

fn client(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .arg("echo-client")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

#[test]
fn echo_client_and_server_on_every_backend_and_codec() {
    let lines = "hello\nsecond line with spaces\n\nlast\n";
    for backend in backends() {
        for codec in ["line", "len", "len16", "raw"] {
            let server = ServerProc::start(&[
                "--addr",
                "127.0.0.1:0",
                "--backend",
                backend,
                "--codec",
                codec,
                "--quiet",
            ]);
            let addr = server.addr.to_string();
            let out = client(
                &["--addr", &addr, "--codec", codec, "--backend", backend],
                lines.as_bytes(),
            );
            assert!(
                out.status.success(),
                "{backend}/{codec}: {}",
                text(&out.stderr)
            );
            assert_eq!(text(&out.stdout), lines, "{backend}/{codec}");
            assert!(text(&out.stderr).contains("all bytes echoed back"));
            #[cfg(unix)]
            {
                let (status, rest) = server.terminate();
                assert!(status.success(), "{backend}/{codec}");
                assert!(rest.contains("final:"), "{rest}");
            }
            #[cfg(not(unix))]
            drop(server);
        }
    }
}

#[test]
fn client_retries_until_the_server_is_up() {
    let addr = free_port();
    let addr_s = addr.to_string();
    let client = std::thread::spawn({
        let addr_s = addr_s.clone();
        move || {
            client(
                &["--addr", &addr_s, "--retry", "50", "--retry-delay", "50ms"],
                b"are you there?\n",
            )
        }
    });
    std::thread::sleep(Duration::from_millis(400));
    let server = ServerProc::start(&["--addr", &addr_s, "--codec", "line", "--quiet"]);
    let out = client.join().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is not up"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "are you there?\n");
    drop(server);
}

#[test]
fn client_gives_up_with_a_clear_message() {
    let addr = free_port().to_string();
    let out = client(
        &["--addr", &addr, "--retry", "1", "--retry-delay", "10ms"],
        b"x\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot connect") && err.contains("refused"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn client_fails_when_the_echo_is_wrong() {
    // A corrupting "echo" server: flips one byte.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).unwrap();
        buf[0] ^= 0x20;
        s.write_all(&buf[..n]).unwrap();
    });
    let out = client(&["--addr", &addr, "--codec", "line"], b"hello\n");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("differed"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn wrong_flags_and_unusable_addresses_fail_cleanly() {
    let cases: &[(&[&str], &str)] = &[
        (&["echo-server", "--codec", "morse"], "unknown codec"),
        (
            &["echo-server", "--addr", "not-an-address"],
            "invalid socket address",
        ),
        (
            &["echo-server", "--max-frame", "12parsecs"],
            "unknown size unit",
        ),
        (&["echo-server", "--idle-timeout", "soon"], "not a duration"),
        (
            &["echo-server", "--backend", "carrier-pigeon"],
            "unknown backend",
        ),
        (
            &["echo-server", "--workers", "0", "--addr", "127.0.0.1:0"],
            "workers",
        ),
        (
            &["echo-server", "--addr", "192.0.2.1:7000"],
            "cannot listen on 192.0.2.1:7000",
        ),
        (&["echo-server", "--no-such-flag"], "unexpected argument"),
        (&["launch-rockets"], "unrecognized subcommand"),
        (&["echo-client", "--retry", "many"], "invalid value"),
    ];
    // A backend this operating system does not have.
    #[cfg(unix)]
    let cases = &[
        cases,
        &[(
            &["echo-server", "--backend", "iocp", "--addr", "127.0.0.1:0"][..],
            "iocp backend is not available on this operating system",
        )][..],
    ]
    .concat();
    for (args, expect) in cases {
        let out = Command::new(BIN).args(*args).output().unwrap();
        assert_fails_clearly(args, &out, expect);
    }
    // A busy port.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args(["echo-server", "--addr", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // EADDRINUSE; WSAEADDRINUSE on Windows (whose message text Wine does not have).
    let in_use = if cfg!(windows) {
        "(os error 10048)"
    } else {
        "Address already in use"
    };
    assert!(text(&out.stderr).contains(in_use), "{}", text(&out.stderr));
}

#[test]
fn metrics_endpoint_serves_prometheus_text() {
    let metrics_addr = free_port().to_string();
    let server = ServerProc::start(&[
        "--addr",
        "127.0.0.1:0",
        "--codec",
        "line",
        "--quiet",
        "--metrics-addr",
        &metrics_addr,
    ]);
    let mut c = TcpStream::connect(server.addr).unwrap();
    c.write_all(b"ping\n").unwrap();
    let mut back = [0u8; 5];
    c.read_exact(&mut back).unwrap();
    let response = get_metrics(&metrics_addr);
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.contains("ringport_connections_accepted_total{worker=\"0\"}"));
    assert!(response.contains("ringport_frames_received_total"));
}

/// SIGTERM while clients are busy: the server stops accepting, closes everyone with reason
/// "shutdown", and exits 0. CI also runs this test built with LeakSanitizer
/// (`scripts/leak-check.sh`), where any leak makes the server exit non-zero. (Not valgrind:
/// valgrind 3.19 holds its big lock across a blocking `io_uring_enter`, which starves the
/// server's other threads.)
#[cfg(unix)]
#[test]
fn sigterm_under_load_ends_in_a_clean_exit() {
    for backend in backends() {
        let mut cmd = Command::new(BIN);
        cmd.env("RUST_LOG", "error");
        let server = ServerProc::start_with(
            cmd,
            &[
                "--addr",
                "127.0.0.1:0",
                "--backend",
                backend,
                "--codec",
                "len",
                "--quiet",
                "--workers",
                "2",
            ],
        );
        let addr = server.addr;
        let stop = Arc::new(AtomicBool::new(false));
        // Each client's own count: the signal comes only once every one of them is being
        // served. (Waiting for a total let seven fast clients reach it on a busy machine
        // before the eighth had even connected, which then missed the server.)
        let echoed: Arc<Vec<AtomicU64>> = Arc::new((0..8).map(|_| AtomicU64::new(0)).collect());
        let load: Vec<_> = (0..8)
            .map(|i| {
                let mut s = TcpStream::connect(addr).unwrap();
                let stop = stop.clone();
                let echoed = echoed.clone();
                std::thread::spawn(move || {
                    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                    let payload = format!("client {i} says hello").into_bytes();
                    let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
                    frame.extend_from_slice(&payload);
                    let mut back = vec![0u8; frame.len()];
                    while !stop.load(Ordering::Relaxed) {
                        if s.write_all(&frame).is_err() || s.read_exact(&mut back).is_err() {
                            return; // the server closed us: shutdown
                        }
                        assert_eq!(back, frame, "a wrong echo under load");
                        echoed[i].fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        while echoed.iter().any(|n| n.load(Ordering::Relaxed) < 25) {
            assert!(Instant::now() < deadline, "not every client got through");
            std::thread::sleep(Duration::from_millis(10));
        }
        let (status, rest) = server.terminate();
        stop.store(true, Ordering::Relaxed);
        for t in load {
            t.join().unwrap();
        }
        assert!(
            status.success(),
            "{backend}: exit {status:?}; stdout: {rest}"
        );
        assert!(rest.contains("shutting down"), "{rest}");
        assert!(rest.contains("8 closed (shutdown 8)"), "{rest}");
    }
}

/// A restart right after SIGKILL binds the same address: on io_uring the dead server's rings
/// hold its listeners for a few tens of milliseconds after the process is gone, and the new
/// server retries its bind for that long instead of failing with "address in use".
#[cfg(unix)]
#[test]
fn restart_right_after_sigkill_binds_the_same_address() {
    for backend in backends() {
        for round in 0..3 {
            let addr = free_port().to_string();
            let args = ["--addr", &addr, "--backend", backend, "--quiet"];
            let mut first = ServerProc::start(&args);
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"keep me busy").unwrap();
            first.child.kill().unwrap();
            first.child.wait().unwrap();
            let mut second = Command::new(BIN)
                .arg("echo-server")
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut line = String::new();
            std::io::BufRead::read_line(
                &mut std::io::BufReader::new(second.stdout.take().unwrap()),
                &mut line,
            )
            .unwrap();
            let _ = second.kill();
            let out = second.wait_with_output().unwrap();
            assert!(
                line.contains("listening on"),
                "{backend} round {round}: the restart failed: {line:?} {}",
                text(&out.stderr)
            );
        }
    }
}

/// 1,000 clients that connect, send and reset at once: each is counted (accepted, or reset
/// before accept), none is a warning on stderr, and accepting goes on at once for the next.
#[cfg(unix)]
#[test]
fn resets_before_accept_are_counted_not_warned_about() {
    for backend in backends() {
        let mut server = ServerProc::start(&[
            "--addr",
            "127.0.0.1:0",
            "--backend",
            backend,
            "--workers",
            "1",
            "--quiet",
        ]);
        let mut stderr = server.child.stderr.take().unwrap();
        let errors = std::thread::spawn(move || {
            let mut all = String::new();
            let _ = stderr.read_to_string(&mut all);
            all
        });
        let addr = server.addr;
        for _ in 0..1000 {
            let mut c = TcpStream::connect(addr).unwrap();
            let _ = c.write_all(b"hello and goodbye");
            socket2::SockRef::from(&c)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
        let mut good = TcpStream::connect(addr).unwrap();
        good.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        good.write_all(b"still served").unwrap();
        let mut back = [0u8; 12];
        good.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"still served");
        drop(good);
        let (status, rest) = server.terminate();
        let errors = errors.join().unwrap();
        assert!(status.success(), "{backend}: {status:?} {rest} {errors}");
        assert!(
            !errors.contains("accept failed"),
            "{backend}: a reset before accept was logged as a failure: {errors}"
        );
        let final_line = rest.lines().find(|l| l.starts_with("final:")).unwrap();
        let count = |what: &str| -> u64 {
            let words: Vec<&str> = final_line.split([',', ';', ' ']).collect();
            let at = words
                .windows(2)
                .position(|w| w[1] == what)
                .unwrap_or_else(|| panic!("no {what} in {final_line}"));
            words[at].parse().unwrap()
        };
        let aborted: u64 = final_line
            .split(" reset before accept")
            .next()
            .and_then(|head| head.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no reset-before-accept count in {final_line}"));
        assert_eq!(
            count("accepted") + aborted,
            1001,
            "{backend}: every connection counted: {final_line}"
        );
    }
}
