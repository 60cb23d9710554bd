//! One connection of the load: what it has sent, what came back, and the check of every echoed
//! byte against what was sent (by position in the stream: raw echo may split and merge
//! messages, but the stream must come back identical).

use std::collections::VecDeque;
use std::net::TcpStream;

use super::pattern;

/// Where a connection is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Not connected yet.
    Waiting,
    /// Its connect is in flight.
    Connecting,
    /// Connected: sending and receiving.
    Open,
    /// Closed: failed, or its connect failed.
    Closed,
}

/// When a message counts from, and whether it belongs to the measurement.
#[derive(Copy, Clone, Debug)]
pub struct Stamp {
    /// Nanoseconds since the load's epoch: when it was sent (closed loop) or was due to be
    /// sent (fixed rate), so a late send counts against latency.
    pub at: u64,
    /// Sent in the measured phase (what `--count` counts).
    pub measured: bool,
}

/// What a check of echoed bytes found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// Messages with at least one wrong byte (each counted once).
    pub mismatched: u64,
    /// Bytes beyond everything sent came back: the stream is out of step.
    pub extra: bool,
}

/// One connection.
pub struct Conn {
    /// The connection's number in the whole load (part of every byte it sends).
    pub id: u64,
    pub state: State,
    pub stream: Option<TcpStream>,
    /// Messages sent.
    pub sent: u64,
    /// Messages echoed whole.
    pub echoed: u64,
    /// Bytes received.
    pub received: u64,
    /// One stamp per message sent and not yet echoed whole, oldest first.
    pub stamps: VecDeque<Stamp>,
    /// Fixed rate: when the messages not yet sent were due (ns since the epoch).
    pub due: VecDeque<u64>,
    /// `--count`: measured messages this connection has still to send.
    pub quota: Option<u64>,
    /// A multishot receive is armed.
    pub receiving: bool,
    /// The last message counted as mismatched.
    last_bad: Option<u64>,
}

impl Conn {
    pub fn new(id: u64, quota: Option<u64>) -> Conn {
        Conn {
            id,
            state: State::Waiting,
            stream: None,
            sent: 0,
            echoed: 0,
            received: 0,
            stamps: VecDeque::new(),
            due: VecDeque::new(),
            quota,
            receiving: false,
            last_bad: None,
        }
    }

    /// Messages sent and not yet echoed whole.
    pub fn outstanding(&self) -> u64 {
        self.sent - self.echoed
    }

    /// Bytes sent and not yet echoed.
    pub fn missing_bytes(&self, size: usize) -> u64 {
        (self.sent * size as u64).saturating_sub(self.received)
    }

    /// Checks `data`, the next echoed bytes, against what was sent; calls `done` with the stamp
    /// of every message it completes.
    pub fn check(&mut self, data: &[u8], size: usize, mut done: impl FnMut(Stamp)) -> Checked {
        let size64 = size as u64;
        let mut checked = Checked::default();
        let room = self.missing_bytes(size);
        let mut rest = data;
        if rest.len() as u64 > room {
            checked.extra = true;
            rest = &rest[..room as usize];
        }
        while !rest.is_empty() {
            let seq = self.received / size64;
            let offset = (self.received % size64) as usize;
            let n = rest.len().min(size - offset);
            let ok = pattern::matches(pattern::key(self.id, seq), offset, &rest[..n]);
            if !ok && self.last_bad != Some(seq) {
                checked.mismatched += 1;
                self.last_bad = Some(seq);
            }
            self.received += n as u64;
            rest = &rest[n..];
            if offset + n == size {
                self.echoed += 1;
                if let Some(stamp) = self.stamps.pop_front() {
                    done(stamp);
                }
            }
        }
        checked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(conn: &mut Conn, size: usize, n: u64) -> Vec<u8> {
        let mut stream = Vec::new();
        for _ in 0..n {
            let mut m = vec![0u8; size];
            pattern::fill(pattern::key(conn.id, conn.sent), 0, &mut m);
            stream.extend_from_slice(&m);
            conn.stamps.push_back(Stamp {
                at: conn.sent,
                measured: true,
            });
            conn.sent += 1;
        }
        stream
    }

    #[test]
    fn an_echo_in_odd_pieces_checks_out_and_completes_each_message() {
        let mut conn = Conn::new(3, None);
        let stream = sent(&mut conn, 10, 5);
        let mut done = Vec::new();
        for piece in stream.chunks(7) {
            let c = conn.check(piece, 10, |s| done.push(s.at));
            assert_eq!(c, Checked::default());
        }
        assert_eq!(done, [0, 1, 2, 3, 4]);
        assert_eq!(
            (conn.echoed, conn.outstanding(), conn.missing_bytes(10)),
            (5, 0, 0)
        );
    }

    #[test]
    fn damage_and_extra_bytes_are_reported() {
        let mut conn = Conn::new(0, None);
        let mut stream = sent(&mut conn, 8, 3);
        stream[3] ^= 0x40;
        stream[4] ^= 0x40; // same message: counted once
        stream[20] ^= 1;
        stream.push(0);
        let c = conn.check(&stream, 8, |_| {});
        assert_eq!(c.mismatched, 2);
        assert!(c.extra);
        assert_eq!(conn.echoed, 3);
    }
}
