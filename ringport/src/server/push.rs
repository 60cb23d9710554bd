//! The push path: payloads, closes and application messages addressed to connections from
//! anywhere — a handler on the same worker, a handler on another worker, or a thread that is
//! not a worker ([`ServerHandle`](super::ServerHandle)).
//!
//! A push is [`Mail`]: a destination (one connection, every connection, a group), and what to
//! do (queue framed bytes, close, hand a message to the handler). Bytes are framed once, by
//! the sender, and shared (`Arc<[u8]>`) by every receiver. Mail for another worker goes into
//! that worker's [`Inbox`] (a mutex'd list, like the hand-off accept's) and a posted
//! completion wakes the worker — only when the inbox was empty, so a burst of pushes costs one
//! wake-up per worker, however many connections it reaches. Groups are per worker: a
//! connection joins on its own worker, and mail for a group goes to every worker, each
//! delivering to its own members.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use super::handler::ConnId;

/// An application message, shared by every receiver.
pub(crate) type Message = Arc<dyn Any + Send + Sync>;

/// Where mail goes.
#[derive(Clone, Debug)]
pub(crate) enum Dest {
    /// One connection.
    Conn(ConnId),
    /// Every connection.
    All,
    /// Every member of a group.
    Group(Arc<str>),
}

/// What mail does to each connection it reaches.
#[derive(Clone)]
pub(crate) enum What {
    /// Queue these framed bytes.
    Bytes(Arc<[u8]>),
    /// Hand the message to the handler's `on_message`.
    Message(Message),
    /// Close the connection gracefully.
    Close,
}

/// One push.
#[derive(Clone)]
pub(crate) struct Mail {
    pub dest: Dest,
    /// A connection it skips (a handler's broadcast does not reach its sender).
    pub except: Option<ConnId>,
    pub what: What,
}

/// A worker's mailbox: connections handed over by the acceptor, and pushes.
#[derive(Default)]
pub(crate) struct Inbox {
    pub conns: Vec<(TcpStream, SocketAddr)>,
    pub mail: Vec<Mail>,
}

impl Inbox {
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty() && self.mail.is_empty()
    }
}

/// A worker's groups: members by name (slab keys of this worker's connections), and the groups
/// of each connection, to leave them all when it closes.
#[derive(Default, Debug)]
pub(crate) struct Groups {
    members: HashMap<Arc<str>, HashSet<u32>>,
    of: HashMap<u32, Vec<Arc<str>>>,
}

impl Groups {
    pub fn join(&mut self, group: &str, key: u32) {
        let name = match self.members.get_key_value(group) {
            Some((name, _)) => name.clone(),
            None => Arc::from(group),
        };
        if self.members.entry(name.clone()).or_default().insert(key) {
            self.of.entry(key).or_default().push(name);
        }
    }

    pub fn leave(&mut self, group: &str, key: u32) {
        if let Some(members) = self.members.get_mut(group) {
            members.remove(&key);
            if members.is_empty() {
                self.members.remove(group);
            }
        }
        if let Some(groups) = self.of.get_mut(&key) {
            groups.retain(|g| &**g != group);
            if groups.is_empty() {
                self.of.remove(&key);
            }
        }
    }

    /// Connection `key` is gone: out of every group.
    pub fn forget(&mut self, key: u32) {
        for group in self.of.remove(&key).unwrap_or_default() {
            if let Some(members) = self.members.get_mut(&group) {
                members.remove(&key);
                if members.is_empty() {
                    self.members.remove(&group);
                }
            }
        }
    }

    /// The members of `group`, appended to `out`.
    pub fn members(&self, group: &str, out: &mut Vec<u32>) {
        if let Some(members) = self.members.get(group) {
            out.extend(members.iter().copied());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_join_leave_and_forget() {
        let mut g = Groups::default();
        g.join("room", 1);
        g.join("room", 1);
        g.join("room", 2);
        g.join("other", 1);
        let mut m = Vec::new();
        g.members("room", &mut m);
        m.sort();
        assert_eq!(m, [1, 2]);
        g.leave("room", 2);
        g.forget(1);
        m.clear();
        g.members("room", &mut m);
        g.members("other", &mut m);
        assert!(m.is_empty());
        assert!(g.members.is_empty() && g.of.is_empty(), "{g:?}");
    }
}
