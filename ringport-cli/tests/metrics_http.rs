//! `echo-server --metrics-addr`: idle or slow clients of the metrics endpoint cannot hold up a
//! scrape; HEAD, other paths and other methods get proper answers.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// The whole response to `request`.
fn ask(addr: &str, request: &[u8]) -> String {
    let mut http = TcpStream::connect(addr).expect("metrics endpoint");
    http.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    http.write_all(request).unwrap();
    let mut response = String::new();
    http.read_to_string(&mut response).unwrap();
    response
}

fn server() -> (ServerProc, String) {
    let metrics_addr = free_port().to_string();
    let server = ServerProc::start(&[
        "--addr",
        "127.0.0.1:0",
        "--quiet",
        "--metrics-addr",
        &metrics_addr,
    ]);
    (server, metrics_addr)
}

#[test]
fn idle_connections_do_not_delay_a_scrape() {
    let (_server, addr) = server();
    // Ten clients that connect and say nothing (the old endpoint served one connection at a
    // time, waiting 2 s for each to speak: 20 s).
    let idle: Vec<TcpStream> = (0..10)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    // And one that sends half a request line.
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /met").unwrap();
    let started = Instant::now();
    let response = get_metrics(&addr);
    let took = started.elapsed();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response.contains("ringport_frames_received_total"),
        "{response}"
    );
    // Generous on purpose: a behaviour check (not held up by the idle ones), not a benchmark.
    assert!(took < Duration::from_secs(1), "the scrape took {took:?}");
    drop(idle);
}

#[test]
fn head_answers_headers_only_and_other_requests_are_refused() {
    let (_server, addr) = server();
    let get = ask(
        &addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
    );
    let body_len = get.split_once("\r\n\r\n").unwrap().1.len();
    let head = ask(&addr, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let (headers, body) = head.split_once("\r\n\r\n").expect("a whole head");
    assert_eq!(body, "", "HEAD sent a body");
    let length: usize = headers
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .parse()
        .unwrap();
    // The counters move between the two requests only by the metrics server's own traffic,
    // which they do not count: the lengths agree to within a few digits.
    assert!(length.abs_diff(body_len) < 16, "{length} vs {body_len}");

    let missing = ask(&addr, b"GET /nope HTTP/1.0\r\n\r\n");
    assert!(
        missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{missing}"
    );
    let post = ask(&addr, b"POST /metrics HTTP/1.1\r\n\r\n");
    assert!(
        post.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{post}"
    );
    assert!(post.contains("Allow: GET, HEAD\r\n"), "{post}");
    let junk = ask(&addr, b"hello there\n\n");
    assert!(junk.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{junk}");
}
