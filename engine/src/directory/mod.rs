//! Who is connected and where, readable by callers without a round trip to a reactor.
//!
//! The directory is the engine's record of membership: which clients exist, which
//! channels and user each belongs to, and the counts that sends return and limits
//! check. Callers update it under a short lock when they connect or (un)subscribe and
//! enqueue the matching command to the shard while still holding it, so a shard sees
//! commands about one client in the order the directory recorded them. Reactors remove
//! a client when they close it. Fan-out itself never takes this lock.
//!
//! Publishing to a channel (or to all) also happens under this lock: the event takes
//! the next sequence number, its frame goes into the channel's history ring, and its
//! command is enqueued, all in one step. A connecting client's replay is computed under
//! the same lock, so between replay and live stream nothing is lost or doubled.

mod publishing;

use std::collections::{HashMap, HashSet};

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::channel_set::ChannelSet;
use crate::error::{Error, ErrorKind, Result};
use crate::history::{HistoryLimits, IdFormat, Ring};
use crate::lifecycle::ClientId;
use crate::sys::SocketId;

#[derive(Debug)]
struct Entry {
    user: Option<Arc<str>>,
    channels: ChannelSet,
}

#[derive(Debug)]
struct Channel {
    /// Its name, the same `Arc` as its key: a publish hands it to the reactors.
    name: Arc<str>,
    members: usize,
    /// Members on each reactor, when the engine runs several (else empty): a publish
    /// goes only to the reactors that have members.
    on_shard: Vec<u32>,
    history: Ring,
    /// Set by `configure_channel`; otherwise the engine's defaults apply.
    limits: Option<HistoryLimits>,
}

impl Channel {
    fn named(name: Arc<str>) -> Channel {
        Channel {
            name,
            members: 0,
            on_shard: Vec::new(),
            history: Ring::default(),
            limits: None,
        }
    }

    /// A channel with nothing in it and nothing configured can be forgotten.
    fn is_vacant(&self) -> bool {
        self.members == 0 && self.history.is_empty() && self.limits.is_none()
    }

    /// A member on reactor `shard` of `shards` joined.
    fn join(&mut self, shard: usize, shards: usize) {
        self.members += 1;
        if shards > 1 {
            if self.on_shard.is_empty() {
                self.on_shard = vec![0; shards];
            }
            self.on_shard[shard] += 1;
        }
    }

    /// A member on reactor `shard` left.
    fn leave(&mut self, shard: usize) {
        self.members -= 1;
        if let Some(n) = self.on_shard.get_mut(shard) {
            *n -= 1;
        }
    }

    /// `(reactor, members there)` for each reactor with members.
    fn shards(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let single = self.on_shard.is_empty() && self.members > 0;
        single.then_some((0, self.members)).into_iter().chain(
            self.on_shard
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(shard, n)| (shard, *n as usize)),
        )
    }
}

/// One channel as the registry reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    pub name: String,
    /// Clients subscribed now.
    pub members: usize,
    /// Events in its history ring now.
    pub history: usize,
}

impl ChannelInfo {
    /// `{"name", "members", "history"}`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({"name": self.name, "members": self.members, "history": self.history})
    }
}

/// Where a published event goes.
pub(crate) enum Target<'a> {
    Channel(&'a str),
    All,
}

/// A published event, ready for the shards.
pub(crate) struct Published {
    pub frame: Bytes,
    /// Its sequence number when it was recorded in history (replay may deliver it), else 0.
    pub seq: u64,
    /// Clients it goes to (members of the channel, or every client).
    pub count: usize,
    /// The channel's name as the directory keeps it (shared, not copied); `None` for an
    /// event to all, and for a channel the directory forgot at once (nobody there,
    /// nothing kept).
    pub channel: Option<Arc<str>>,
}

/// What a connecting (or draining) client gets from history.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    pub frames: Vec<Bytes>,
    /// The last sequence number included; where a continuation starts.
    pub cursor: u64,
    /// More events wait after `cursor`.
    pub more: bool,
}

/// The outcome of resolving a client's `Last-Event-ID`.
pub(crate) enum ReplayPlan {
    /// The id is not (or no longer) in history: the client must resync.
    Gap,
    Replay(Replay),
}

#[derive(Debug)]
pub(crate) struct Directory {
    clients: HashMap<ClientId, Entry>,
    channels: HashMap<Arc<str>, Channel>,
    users: HashMap<Arc<str>, usize>,
    /// Sockets the engine owns now: handing one over again (by the same descriptor or a
    /// duplicate of it) is refused.
    sockets: HashSet<SocketId>,
    /// Clients removed by a caller whose reactor has not yet closed and reported them.
    leaving: HashSet<ClientId>,
    /// History of `broadcast_all` events.
    all: Ring,
    /// The newest sequence number of any channel forgotten so far: a client resuming
    /// before it on a channel the directory no longer knows may have missed events.
    forgotten_upto: u64,
    /// The last sequence number given out.
    last_seq: u64,
    ids: IdFormat,
    /// Where an engine id is written before it goes into a frame (no allocation per event).
    id_text: String,
    auto_ids: bool,
    defaults: HistoryLimits,
    /// Reactors of the engine; client `id` is on reactor `id % shards`.
    shards: usize,
}

/// The limits the directory enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_clients: Option<usize>,
    pub max_per_channel: Option<usize>,
}

fn increment(map: &mut HashMap<Arc<str>, usize>, key: &Arc<str>) {
    *map.entry(key.clone()).or_insert(0) += 1;
}

fn decrement(map: &mut HashMap<Arc<str>, usize>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Directory {
    /// A directory for an engine of `shards` reactors.
    pub fn new(ids: IdFormat, auto_ids: bool, defaults: HistoryLimits, shards: usize) -> Directory {
        Directory {
            clients: HashMap::new(),
            channels: HashMap::new(),
            users: HashMap::new(),
            sockets: HashSet::new(),
            leaving: HashSet::new(),
            all: Ring::default(),
            forgotten_upto: 0,
            last_seq: 0,
            ids,
            id_text: String::new(),
            auto_ids,
            defaults,
            shards: shards.max(1),
        }
    }

    /// The reactor of client `id`.
    fn shard_of(&self, id: ClientId) -> usize {
        (id % self.shards as u64) as usize
    }

    fn join(&mut self, id: ClientId, name: &Arc<str>) {
        let shard = self.shard_of(id);
        let shards = self.shards;
        self.channel_mut(name).join(shard, shards);
    }

    /// The channel of this name, created if the directory does not know it (its name
    /// is copied only then).
    fn channel_mut(&mut self, name: &str) -> &mut Channel {
        let key: Arc<str> = match self.channels.get_key_value(name) {
            Some((key, _)) => key.clone(),
            None => name.into(),
        };
        self.channels
            .entry(key.clone())
            .or_insert_with(|| Channel::named(key))
    }

    /// `(reactor, members there)` for each reactor where `channel` has members.
    pub fn channel_shards(&self, channel: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.channels
            .get(channel)
            .into_iter()
            .flat_map(Channel::shards)
    }

    /// Checks the limits for a new client without recording it.
    pub fn check_admission(&self, channels: &ChannelSet, limits: Limits) -> Result<()> {
        if let Some(max) = limits.max_clients {
            if self.clients.len() >= max {
                return Err(Error::new(
                    ErrorKind::LimitReached,
                    format!("the engine already holds its maximum of {max} clients"),
                ));
            }
        }
        if let Some(max) = limits.max_per_channel {
            if let Some(full) = channels.iter().find(|c| self.channel_count(c) >= max) {
                return Err(channel_full(full, max));
            }
        }
        Ok(())
    }

    /// Records a new client (after [`Directory::check_admission`]).
    pub fn insert(&mut self, id: ClientId, user: Option<Arc<str>>, channels: ChannelSet) {
        for channel in &channels {
            self.join(id, channel);
        }
        if let Some(user) = &user {
            increment(&mut self.users, user);
        }
        self.clients.insert(id, Entry { user, channels });
    }

    /// Forgets a client; returns whether it was there.
    pub fn remove(&mut self, id: ClientId) -> bool {
        let Some(entry) = self.clients.remove(&id) else {
            return false;
        };
        for channel in &entry.channels {
            self.leave(id, channel);
        }
        if let Some(user) = &entry.user {
            decrement(&mut self.users, user);
        }
        true
    }

    /// Adds `channel` to a client; `Ok(false)` when it was already a member.
    pub fn subscribe(&mut self, id: ClientId, channel: &Arc<str>, limits: Limits) -> Result<bool> {
        let count = self.channel_count(channel);
        let entry = self
            .clients
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(id))?;
        if entry.channels.contains(channel) {
            return Ok(false);
        }
        if let Some(max) = limits.max_per_channel {
            if count >= max {
                return Err(channel_full(channel, max));
            }
        }
        entry.channels.insert(channel.clone());
        self.join(id, channel);
        Ok(true)
    }

    /// Removes `channel` from a client; `Ok(false)` when it was not a member.
    pub fn unsubscribe(&mut self, id: ClientId, channel: &str) -> Result<bool> {
        let entry = self
            .clients
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(id))?;
        if !entry.channels.swap_remove(channel) {
            return Ok(false);
        }
        self.leave(id, channel);
        Ok(true)
    }

    /// Forgets a client whose reactor is told to end it: it is gone for callers at once,
    /// and `leaving` until the reactor reports it (`closed`). Returns whether it was there.
    pub fn remove_leaving(&mut self, id: ClientId) -> bool {
        let removed = self.remove(id);
        if removed {
            self.leaving.insert(id);
        }
        removed
    }

    /// A reactor closed the client and reported it.
    pub fn closed(&mut self, id: ClientId) {
        self.remove(id);
        self.leaving.remove(&id);
    }

    /// Forgets every client `which` picks, connected or leaving (a dead reactor's:
    /// nobody else will report them); returns their ids.
    pub fn remove_clients_where(&mut self, which: impl Fn(ClientId) -> bool) -> Vec<ClientId> {
        let ids: Vec<ClientId> = self
            .clients
            .keys()
            .copied()
            .filter(|id| which(*id))
            .collect();
        for id in &ids {
            self.remove(*id);
        }
        let leaving: Vec<ClientId> = self
            .leaving
            .iter()
            .copied()
            .filter(|id| which(*id))
            .collect();
        for id in &leaving {
            self.leaving.remove(id);
        }
        ids.into_iter().chain(leaving).collect()
    }

    pub fn owns_socket(&self, socket: SocketId) -> bool {
        self.sockets.contains(&socket)
    }

    pub fn adopt_socket(&mut self, socket: SocketId) {
        self.sockets.insert(socket);
    }

    pub fn release_socket(&mut self, socket: SocketId) {
        self.sockets.remove(&socket);
    }

    pub fn contains(&self, id: ClientId) -> bool {
        self.clients.contains_key(&id)
    }

    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    pub fn channel_count(&self, channel: &str) -> usize {
        self.channels.get(channel).map_or(0, |c| c.members)
    }

    pub fn user_count(&self, user: &str) -> usize {
        self.users.get(user).copied().unwrap_or(0)
    }
}

/// How much one replay step may send.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplayBudget {
    pub events: usize,
    pub bytes: usize,
}

fn channel_full(channel: &str, max: usize) -> Error {
    Error::new(
        ErrorKind::LimitReached,
        format!("channel {channel:?} already holds its maximum of {max} clients"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_directory() -> Directory {
        let limits = HistoryLimits {
            max_events: 3,
            max_age: std::time::Duration::from_secs(60),
        };
        Directory::new(IdFormat::new(1, 0), true, limits, 1)
    }

    const NO_LIMITS: Limits = Limits {
        max_clients: None,
        max_per_channel: None,
    };

    #[test]
    fn counts_follow_membership() {
        let mut d = test_directory();
        let a: Arc<str> = "a".into();
        d.insert(1, Some("u".into()), [a.clone()].into_iter().collect());
        d.insert(2, Some("u".into()), ChannelSet::new());
        assert_eq!(d.channel_count("a"), 1);
        assert_eq!(d.user_count("u"), 2);
        assert!(d.subscribe(2, &a, NO_LIMITS).unwrap());
        assert!(!d.subscribe(2, &a, NO_LIMITS).unwrap());
        assert_eq!(d.channel_count("a"), 2);
        assert!(d.unsubscribe(1, "a").unwrap());
        assert!(!d.unsubscribe(1, "a").unwrap());
        assert!(d.remove(2));
        assert!(!d.remove(2));
        assert_eq!(d.channel_count("a"), 0);
        assert_eq!(d.user_count("u"), 1);
        assert_eq!(
            d.subscribe(9, &a, NO_LIMITS).unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn channels_know_their_members_on_each_reactor() {
        let limits = HistoryLimits {
            max_events: 0,
            max_age: std::time::Duration::from_secs(60),
        };
        let mut d = Directory::new(IdFormat::new(1, 0), true, limits, 3);
        let a: Arc<str> = "a".into();
        let just_a: ChannelSet = [a.clone()].into_iter().collect();
        // Clients 1 and 4 are on reactor 1, client 5 on reactor 2.
        d.insert(1, None, just_a.clone());
        d.insert(4, None, just_a.clone());
        d.insert(5, None, ChannelSet::new());
        assert_eq!(d.channel_shards("a").collect::<Vec<_>>(), [(1, 2)]);
        assert!(d.subscribe(5, &a, NO_LIMITS).unwrap());
        assert_eq!(d.channel_shards("a").collect::<Vec<_>>(), [(1, 2), (2, 1)]);
        assert!(d.unsubscribe(1, "a").unwrap());
        assert!(d.remove(4));
        assert_eq!(d.channel_shards("a").collect::<Vec<_>>(), [(2, 1)]);
        assert_eq!(d.close_channel("a", false), 1);
        assert_eq!(d.channel_shards("a").count(), 0);
        // With one reactor every member is on reactor 0.
        let mut one = test_directory();
        one.insert(7, None, just_a);
        assert_eq!(one.channel_shards("a").collect::<Vec<_>>(), [(0, 1)]);
        assert_eq!(one.channel_shards("b").count(), 0);
    }

    #[test]
    fn limits_refuse() {
        let mut d = test_directory();
        let a: Arc<str> = "a".into();
        let limits = Limits {
            max_clients: Some(2),
            max_per_channel: Some(1),
        };
        let just_a: ChannelSet = [a.clone()].into_iter().collect();
        d.check_admission(&just_a, limits).unwrap();
        d.insert(1, None, just_a.clone());
        let err = d.check_admission(&just_a, limits).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LimitReached);
        d.insert(2, None, ChannelSet::new());
        assert!(d.check_admission(&ChannelSet::new(), limits).is_err());
        assert_eq!(
            d.subscribe(2, &a, limits).unwrap_err().kind(),
            ErrorKind::LimitReached
        );
    }
}
