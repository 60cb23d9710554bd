//! io_uring unavailable: the real `ringport echo-server`, started under a seccomp filter that
//! fails `io_uring_setup` with `EPERM` (as Docker's default profile and many sandboxes do),
//! must choose epoll on its own, say why (the library's `tracing` warning on stderr, the CLI's
//! "note:" line from `Port::fallback_reason`), and echo.
//!
//! This file is its own harness (`harness = false`) and its own launcher: run as
//! `no_uring --seccomp-exec PROGRAM ARGS...` it installs the filter on itself and execs
//! PROGRAM, which inherits the filter. The test starts the server through it.

#[cfg(not(target_os = "linux"))]
fn main() {}

#[cfg(target_os = "linux")]
fn main() {
    linux::main()
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::BTreeMap;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::os::unix::process::CommandExt;
    use std::process::{Child, ChildStdout, Command, Stdio};
    use std::time::{Duration, Instant};

    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

    const BIN: &str = env!("CARGO_BIN_EXE_ringport");
    const LAUNCH: &str = "--seccomp-exec";
    const TESTS: [(&str, fn()); 2] = [
        (
            "seccomp_blocked_io_uring_falls_back_to_epoll_and_echoes",
            falls_back_to_epoll_and_echoes,
        ),
        (
            "seccomp_blocked_io_uring_fails_a_forced_uring_backend",
            forced_uring_fails,
        ),
    ];

    pub fn main() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        if args.first().map(String::as_str) == Some(LAUNCH) {
            launch(&args[1..]);
        }
        // A minimal test harness: positional arguments filter by name, as libtest's do.
        let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
        if args.iter().any(|a| a == "--list") {
            for (name, _) in TESTS {
                println!("{name}: test");
            }
            return;
        }
        for (name, test) in TESTS {
            if filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())) {
                println!("test {name} ...");
                test();
                println!("test {name} ... ok");
            }
        }
    }

    /// Installs the filter, then becomes `args[0]` (the filter survives exec).
    fn launch(args: &[String]) -> ! {
        let filter = SeccompFilter::new(
            BTreeMap::from([(libc::SYS_io_uring_setup, vec![])]),
            SeccompAction::Allow,
            SeccompAction::Errno(libc::EPERM as u32),
            TargetArch::try_from(std::env::consts::ARCH).expect("seccompiler knows this arch"),
        )
        .expect("a valid filter");
        let program: BpfProgram = filter.try_into().expect("the filter compiles to BPF");
        seccompiler::apply_filter(&program).expect("seccomp filter installed");
        let err = Command::new(&args[0]).args(&args[1..]).exec();
        eprintln!("cannot exec {}: {err}", args[0]);
        std::process::exit(127);
    }

    /// `ringport echo-server ARGS` under the filter, with the automatic backend choice.
    fn filtered_server(args: &[&str]) -> Command {
        let mut cmd = Command::new(std::env::current_exe().expect("own path"));
        cmd.arg(LAUNCH)
            .arg(BIN)
            .arg("echo-server")
            .args(args)
            // CI also runs the tests with RINGPORT_BACKEND=epoll: that would not be a fallback.
            .env_remove("RINGPORT_BACKEND")
            .env("RUST_LOG", "warn");
        cmd
    }

    /// A started server: its first stdout line, and the rest of stdout to read.
    struct Server {
        child: Child,
        first_line: String,
        stdout: BufReader<ChildStdout>,
    }

    impl Server {
        fn start(mut cmd: Command) -> Server {
            let mut child = cmd
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start the server");
            let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
            let mut first_line = String::new();
            stdout.read_line(&mut first_line).expect("read stdout");
            Server {
                child,
                first_line,
                stdout,
            }
        }

        fn addr(&self) -> SocketAddr {
            let line = &self.first_line;
            line.split_whitespace()
                .skip_while(|w| *w != "on")
                .nth(1)
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("no address in {line:?}"))
        }

        fn next_line(&mut self) -> String {
            let mut line = String::new();
            self.stdout.read_line(&mut line).expect("read stdout");
            line
        }

        /// SIGTERM; then whether it exited cleanly, and its stderr.
        fn stop(mut self) -> (bool, String) {
            let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("a pid");
            rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
            let deadline = Instant::now() + Duration::from_secs(30);
            let status = loop {
                if let Some(status) = self.child.try_wait().expect("wait") {
                    break status;
                }
                if Instant::now() > deadline {
                    let _ = self.child.kill();
                    panic!("the server did not exit on SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let mut stderr = String::new();
            if let Some(mut err) = self.child.stderr.take() {
                err.read_to_string(&mut stderr).expect("read stderr");
            }
            (status.success(), stderr)
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn falls_back_to_epoll_and_echoes() {
        // Without the filter this machine picks io_uring: the filter is what takes it away.
        let mut plain = Command::new(BIN);
        plain
            .args([
                "echo-server",
                "--addr",
                "127.0.0.1:0",
                "--workers",
                "1",
                "-q",
            ])
            .env_remove("RINGPORT_BACKEND");
        let plain = Server::start(plain);
        let unfiltered_uring = plain.first_line.contains("(backend uring");
        drop(plain);
        if !unfiltered_uring {
            println!("  note: io_uring is unavailable here even without the filter");
        }

        let args = [
            "--addr",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--codec",
            "line",
            "-q",
        ];
        let mut server = Server::start(filtered_server(&args));
        assert!(
            server.first_line.contains("(backend epoll"),
            "automatic choice under the filter: {:?}",
            server.first_line
        );
        let note = server.next_line();
        assert!(
            note.starts_with("note: uring unavailable: io_uring_setup failed")
                && note.contains("Operation not permitted")
                && note.trim_end().ends_with("using epoll"),
            "the CLI says why it fell back: {note:?}"
        );

        // An echo round trip, two clients on the two workers.
        for i in 0..2 {
            let mut client = TcpStream::connect(server.addr()).expect("connect");
            client
                .set_read_timeout(Some(Duration::from_secs(20)))
                .expect("timeout");
            let sent = format!("hello {i} from a sandbox\nsecond line\n");
            client.write_all(sent.as_bytes()).expect("send");
            let mut echoed = vec![0u8; sent.len()];
            client.read_exact(&mut echoed).expect("the echo");
            assert_eq!(String::from_utf8_lossy(&echoed), sent);
        }

        let (clean, stderr) = server.stop();
        assert!(clean, "clean exit on SIGTERM; stderr: {stderr}");
        let warnings = stderr
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("io_uring_setup failed"))
            .count();
        assert!(
            warnings >= 1,
            "the library logs the fallback as a warning; stderr: {stderr}"
        );
    }

    /// The control: under the filter io_uring really is gone, and asking for it fails.
    fn forced_uring_fails() {
        let out = filtered_server(&["--addr", "127.0.0.1:0", "--backend", "uring"])
            .output()
            .expect("run the server");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "io_uring was available: {stderr}");
        assert!(
            stderr.contains("io_uring_setup failed") && stderr.contains("Operation not permitted"),
            "{stderr}"
        );
    }
}
