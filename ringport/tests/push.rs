//! Push on every backend: sends and closes from other threads and other workers, broadcast,
//! groups, typed messages, the shutdown hook, cancelled timers; a push for a connection that
//! has gone never reaches the next owner of its slot.

mod common;

use common::eventually;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringport::Backend;
use ringport::server::{
    AcceptMode, CloseReason, CodecKind, ConnId, Ctx, Handler, Server, ServerBuilder,
};

on_every_backend!(
    push_from_another_thread_reaches_only_its_connection,
    a_push_for_a_gone_connection_never_reaches_the_next_in_its_slot,
    handlers_push_across_workers_to_connections_groups_and_handlers,
    shutdown_hook_says_goodbye_before_the_close,
    close_from_another_thread_is_graceful,
    cancelled_timers_never_fire,
);

const PATIENCE: Duration = Duration::from_secs(20);

fn builder(b: Backend) -> ServerBuilder {
    Server::builder("127.0.0.1:0".parse().unwrap())
        .backend(b)
        .workers(2)
        .codec_kind(CodecKind::Line)
}

/// Who is connected: each connection's id by its peer address (the client's local address).
type Registry = Arc<Mutex<HashMap<SocketAddr, ConnId>>>;

struct Client {
    write: TcpStream,
    read: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.set_nodelay(true).unwrap();
        Client {
            read: BufReader::new(s.try_clone().unwrap()),
            write: s,
        }
    }

    fn id(&self, reg: &Registry) -> ConnId {
        let me = self.write.local_addr().unwrap();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(id) = reg.lock().unwrap().get(&me) {
                return *id;
            }
            assert!(Instant::now() < deadline, "never registered");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn say(&mut self, line: &str) {
        self.write
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    fn line(&mut self) -> String {
        let mut s = String::new();
        self.read.read_line(&mut s).unwrap();
        assert!(s.ends_with('\n'), "closed instead of a line: {s:?}");
        s.pop();
        s
    }

    fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        self.read.read_to_end(&mut rest).is_ok() && rest.is_empty()
    }
}

/// Echoes; registers itself; understands a few commands for the tests below.
struct Peer {
    reg: Registry,
    peer: SocketAddr,
}

#[derive(Debug)]
struct Poke(String);

impl Handler for Peer {
    fn on_frame(&mut self, cx: &mut Ctx<'_>, frame: &[u8]) {
        let text = String::from_utf8_lossy(frame).into_owned();
        let (cmd, rest) = text.split_once(' ').unwrap_or((&text, ""));
        let target = |rest: &str| -> (ConnId, String) {
            let (who, what) = rest.split_once(' ').unwrap_or((rest, ""));
            let who: SocketAddr = who.parse().unwrap();
            (self.reg.lock().unwrap()[&who], what.to_owned())
        };
        match cmd {
            "to" => {
                let (id, what) = target(rest);
                cx.send_to(id, what.as_bytes()).unwrap();
            }
            "poke" => {
                let (id, what) = target(rest);
                cx.message_to(id, Poke(what));
            }
            "join" => cx.join(rest),
            "leave" => cx.leave(rest),
            "say" => {
                let (group, what) = rest.split_once(' ').unwrap();
                cx.send_group(group, what.as_bytes()).unwrap();
            }
            "all" => cx.broadcast(rest.as_bytes()).unwrap(),
            "pokeall" => cx.message_group(rest, Poke("everyone".into())),
            "timers" => {
                cx.set_timer(Duration::from_millis(30), 1);
                cx.set_timer(Duration::from_millis(60), 2);
                cx.cancel_timer(1);
            }
            "worker" => {
                let w = cx.worker().to_string();
                cx.send(w.as_bytes()).unwrap();
            }
            _ => cx.send(frame).unwrap(),
        }
    }

    fn on_message(&mut self, cx: &mut Ctx<'_>, msg: &(dyn std::any::Any + Send + Sync)) {
        let poke = msg.downcast_ref::<Poke>().expect("only pokes are sent");
        cx.send(format!("poked: {} (worker {})", poke.0, cx.worker()).as_bytes())
            .unwrap();
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_>, timer: u64) {
        cx.send(format!("timer {timer}").as_bytes()).unwrap();
    }

    fn on_shutdown(&mut self, cx: &mut Ctx<'_>) {
        let _ = cx.send(b"goodbye");
    }

    fn on_close(&mut self, _reason: CloseReason) {
        self.reg.lock().unwrap().remove(&self.peer);
    }
}

fn serve(b: ServerBuilder) -> (Server, Registry) {
    let reg = Registry::default();
    let r = reg.clone();
    let server = b
        .serve(move |info| {
            r.lock().unwrap().insert(info.peer, info.id);
            Peer {
                reg: r.clone(),
                peer: info.peer,
            }
        })
        .unwrap();
    (server, reg)
}

fn push_from_another_thread_reaches_only_its_connection(b: Backend) {
    let (server, reg) = serve(builder(b));
    let mut clients: Vec<Client> = (0..4)
        .map(|_| Client::connect(server.local_addr()))
        .collect();
    let ids: Vec<ConnId> = clients.iter().map(|c| c.id(&reg)).collect();
    let handle = server.handle();
    std::thread::spawn(move || {
        handle.send(ids[2], b"for two only").unwrap();
        handle.broadcast(b"for everyone").unwrap();
    })
    .join()
    .unwrap();
    for (i, c) in clients.iter_mut().enumerate() {
        if i == 2 {
            assert_eq!(c.line(), "for two only");
        }
        // From one sender, in order: whoever got the first push got it before this one.
        assert_eq!(c.line(), "for everyone", "client {i}");
    }
    let err = server.handle().send(clients[0].id(&reg), b"a\nb");
    assert!(err.is_err(), "a line with a newline cannot be framed");
}

fn a_push_for_a_gone_connection_never_reaches_the_next_in_its_slot(b: Backend) {
    let (server, reg) = serve(builder(b).workers(1));
    let gone = Client::connect(server.local_addr());
    let gone_id = gone.id(&reg);
    drop(gone);
    eventually(&server, "closed", |m| m.closed_total() == 1);
    // The next connection takes the freed slot, with a new generation.
    let mut next = Client::connect(server.local_addr());
    let next_id = next.id(&reg);
    assert_eq!(next_id.worker, gone_id.worker);
    assert_ne!(next_id, gone_id);
    let handle = server.handle();
    handle.send(gone_id, b"for the one who left").unwrap();
    handle.message(gone_id, Poke("nobody".into())).unwrap();
    handle.send(next_id, b"for the new one").unwrap();
    assert_eq!(next.line(), "for the new one");
    eventually(&server, "counted as dropped", |m| m.pushes_dropped == 2);
}

fn handlers_push_across_workers_to_connections_groups_and_handlers(b: Backend) {
    // Hand-off deals connections in turn: 0 and 2 on worker 0, 1 and 3 on worker 1.
    let (server, _reg) = serve(builder(b).accept_mode(AcceptMode::Handoff));
    let mut c: Vec<Client> = (0..4)
        .map(|_| Client::connect(server.local_addr()))
        .collect();
    for (i, client) in c.iter_mut().enumerate() {
        client.say("worker");
        assert_eq!(client.line(), (i % 2).to_string());
    }
    let addr = |c: &Client| c.write.local_addr().unwrap();
    let (a1, a2) = (addr(&c[1]), addr(&c[2]));
    // To a connection on the other worker, and on the same one.
    c[0].say(&format!("to {a1} across"));
    assert_eq!(c[1].line(), "across");
    c[0].say(&format!("to {a2} alongside"));
    assert_eq!(c[2].line(), "alongside");
    // Per-sender order across workers.
    for n in 0..50 {
        c[0].say(&format!("to {a1} n{n}"));
    }
    for n in 0..50 {
        assert_eq!(c[1].line(), format!("n{n}"));
    }
    // Typed messages run on the receiver's worker.
    c[0].say(&format!("poke {a1} hello"));
    assert_eq!(c[1].line(), "poked: hello (worker 1)");
    // Groups span workers; the sender is left out; leaving works.
    for i in [0, 1, 2] {
        c[i].say("join room");
        c[i].say("sync");
        assert_eq!(c[i].line(), "sync");
    }
    c[0].say("say room hi room");
    assert_eq!(c[1].line(), "hi room");
    assert_eq!(c[2].line(), "hi room");
    c[2].say("leave room");
    c[2].say("sync");
    assert_eq!(c[2].line(), "sync");
    c[1].say("pokeall room");
    assert_eq!(c[0].line(), "poked: everyone (worker 0)");
    c[3].say("all to all but me");
    for i in [0, 1, 2] {
        assert_eq!(c[i].line(), "to all but me");
    }
    server.handle().send_group("room", b"from outside").unwrap();
    assert_eq!(c[0].line(), "from outside");
    assert_eq!(c[1].line(), "from outside");
    // Nothing else arrived anywhere: the next line of each is its own echo.
    for client in c.iter_mut() {
        client.say("end");
        assert_eq!(client.line(), "end");
    }
    assert_eq!(server.metrics().total().pushes_dropped, 0);
}

fn shutdown_hook_says_goodbye_before_the_close(b: Backend) {
    let (server, _reg) = serve(builder(b));
    let mut clients: Vec<Client> = (0..6)
        .map(|_| Client::connect(server.local_addr()))
        .collect();
    for c in &mut clients {
        c.say("hi");
        assert_eq!(c.line(), "hi");
    }
    server.shutdown();
    for c in &mut clients {
        assert_eq!(c.line(), "goodbye");
        assert!(c.closed());
    }
    let t = server.join().unwrap().total();
    assert_eq!(t.closed_by(CloseReason::Shutdown), 6, "{t:?}");
}

fn close_from_another_thread_is_graceful(b: Backend) {
    let (server, reg) = serve(builder(b));
    let mut c = Client::connect(server.local_addr());
    let id = c.id(&reg);
    let handle = server.handle();
    handle.send(id, b"last words").unwrap();
    handle.close(id).unwrap();
    assert_eq!(
        c.line(),
        "last words",
        "queued bytes flush before the close"
    );
    assert!(c.closed());
    eventually(&server, "local close", |m| {
        m.closed_by(CloseReason::Local) == 1
    });
}

fn cancelled_timers_never_fire(b: Backend) {
    let (server, _reg) = serve(builder(b));
    let mut c = Client::connect(server.local_addr());
    c.say("timers");
    assert_eq!(c.line(), "timer 2");
    std::thread::sleep(Duration::from_millis(50));
    c.say("end");
    assert_eq!(c.line(), "end", "timer 1 was cancelled");
    let mut nothing = [0u8; 1];
    c.write.set_nonblocking(true).unwrap();
    assert!(c.read.get_mut().read(&mut nothing).is_err());
    drop(server);
}
