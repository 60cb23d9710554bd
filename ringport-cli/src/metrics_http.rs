//! `echo-server --metrics-addr`: Prometheus metrics over HTTP, served by a second ringport
//! server (one worker) so that idle or slow clients cannot hold up a scrape.
//!
//! Each connection sends one request: the request line and headers, up to the blank line (a
//! body is not read). `GET /metrics` answers 200 with the echo server's metrics as Prometheus
//! text, `HEAD /metrics` the same headers without the body, another path 404, another method
//! 405, a request that is not HTTP 400; then the connection closes once the reply is sent.
//! Lines longer than 8 KiB, more than 100 headers, or 10 s without a whole line close the
//! connection.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use ringport::server::{
    AcceptMode, Codec, Ctx, Frame, FrameError, Handler, Limits, Lines, Server, ServerHandle,
};
use ringport::{BackendChoice, Buf};

/// Longest request or header line.
const MAX_LINE: usize = 8 << 10;
/// Most header lines in a request.
const MAX_HEADERS: usize = 100;
/// Connections served at once; more are accepted and closed at once.
const MAX_CONNECTIONS: usize = 256;

/// Starts the endpoint on `addr`, reporting `metrics`' counters.
pub fn serve(
    addr: SocketAddr,
    backend: BackendChoice,
    metrics: ServerHandle,
) -> io::Result<Server> {
    let limits = Limits {
        max_connections: MAX_CONNECTIONS,
        max_frame: MAX_LINE,
        idle_timeout: Some(Duration::from_secs(10)),
        max_queued_write: 2 << 20,
        write_high_water: 256 << 10,
        memory_budget: 8 << 20,
        shutdown_grace: Duration::from_secs(1),
    };
    Server::builder(addr)
        .workers(1)
        .backend(backend)
        .accept_mode(AcceptMode::Handoff)
        .codec(HttpHead)
        .limits(limits)
        .serve(move |_| Http {
            metrics: metrics.clone(),
            request: None,
            headers: 0,
            answered: false,
        })
}

/// Requests come in as lines (CRLF or LF); replies go out as they are.
struct HttpHead;

impl Codec for HttpHead {
    fn decode(&self, input: &[u8], max_frame: usize) -> Result<Option<Frame>, FrameError> {
        Lines.decode(input, max_frame)
    }

    fn encode(&self, payload: &[u8], out: &mut Buf) -> Result<(), FrameError> {
        out.extend_from_slice(payload);
        Ok(())
    }

    fn name(&self) -> &'static str {
        "http"
    }
}

/// The request line: method and path.
struct Request {
    method: String,
    path: String,
}

/// One HTTP connection.
struct Http {
    metrics: ServerHandle,
    request: Option<Request>,
    headers: usize,
    answered: bool,
}

/// A reply's status line, body and whether the body is sent (not for HEAD).
struct Reply {
    status: &'static str,
    body: String,
    with_body: bool,
}

impl Http {
    /// The reply to the whole request head.
    fn reply(&self, request: &Request) -> Reply {
        let path = request.path.split('?').next().unwrap_or_default();
        let with_body = request.method != "HEAD";
        match (request.method.as_str(), path) {
            ("GET" | "HEAD", "/metrics") => Reply {
                status: "200 OK",
                body: self.metrics.metrics().to_prometheus(),
                with_body,
            },
            ("GET" | "HEAD", _) => Reply {
                status: "404 Not Found",
                body: "not found: try GET /metrics\n".into(),
                with_body,
            },
            _ => Reply {
                status: "405 Method Not Allowed",
                body: "only GET and HEAD are served\n".into(),
                with_body: true,
            },
        }
    }

    /// Sends `reply` and closes the connection once it is out.
    fn answer(&mut self, cx: &mut Ctx<'_>, reply: Reply) {
        self.answered = true;
        let allow = if reply.status.starts_with("405") {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        };
        let head = format!(
            "HTTP/1.1 {}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
             Content-Length: {}\r\n{allow}Connection: close\r\n\r\n",
            reply.status,
            reply.body.len()
        );
        // A refused send (over the queued-write limit) closes the connection by itself.
        if cx.send(head.as_bytes()).is_ok() && reply.with_body {
            let _ = cx.send(reply.body.as_bytes());
        }
        cx.close();
    }

    fn bad_request(&mut self, cx: &mut Ctx<'_>, status: &'static str) {
        self.answer(
            cx,
            Reply {
                status,
                body: format!("{status}\n"),
                with_body: true,
            },
        );
    }
}

impl Handler for Http {
    fn on_frame(&mut self, cx: &mut Ctx<'_>, line: &[u8]) {
        if self.answered {
            return;
        }
        match &self.request {
            None => {
                let line = String::from_utf8_lossy(line);
                let mut words = line.split_whitespace();
                match (words.next(), words.next(), words.next(), words.next()) {
                    (Some(method), Some(path), Some(version), None)
                        if version.starts_with("HTTP/") =>
                    {
                        self.request = Some(Request {
                            method: method.to_string(),
                            path: path.to_string(),
                        });
                    }
                    _ => self.bad_request(cx, "400 Bad Request"),
                }
            }
            Some(request) if line.is_empty() => {
                let reply = self.reply(request);
                self.answer(cx, reply);
            }
            Some(_) => {
                self.headers += 1;
                if self.headers > MAX_HEADERS {
                    self.bad_request(cx, "431 Request Header Fields Too Large");
                }
            }
        }
    }
}
