//! Carrying out commands: new clients, sends, membership, queries, replay.

use bytes::Bytes;
use mio::net::TcpStream;
use mio::{Interest, Token};

use crate::directory::{Replay, ReplayBudget};
use crate::lifecycle::{DisconnectReason, LifecycleEvent};
use crate::stats::Counters;

use super::command::{Command, NewClient, Resume, Scope};
use super::conn::{Conn, Output};
use super::fanout::{fan_out, Live};
use super::{Shard, HANDLER};

impl Shard {
    pub(super) fn apply(&mut self, command: Command) {
        #[cfg(feature = "fault-injection")]
        crate::fault::hit(crate::fault::Fault::NextCommand);
        match command {
            Command::Connect(client) => self.connect(*client),
            Command::ToClient { client, frame } => {
                if let Some(&key) = self.by_id.get(&client) {
                    let queueing = self.shared.queueing();
                    fan_out(
                        &mut self.conns,
                        &mut self.work,
                        std::iter::once(key),
                        &frame,
                        Live::DIRECT,
                        queueing,
                    );
                }
            }
            Command::ToUser { user, frame } => {
                let queueing = self.shared.queueing();
                let keys = self.users.members(&user);
                fan_out(
                    &mut self.conns,
                    &mut self.work,
                    keys,
                    &frame,
                    Live::DIRECT,
                    queueing,
                );
            }
            Command::ToChannel {
                channel,
                frame,
                seq,
                filter,
            } => {
                let live = Live {
                    seq,
                    filter: filter.as_deref(),
                };
                let queueing = self.shared.queueing();
                let keys = self.channels.members(&channel);
                fan_out(
                    &mut self.conns,
                    &mut self.work,
                    keys,
                    &frame,
                    live,
                    queueing,
                );
            }
            Command::ToChannels(events) => {
                let queueing = self.shared.queueing();
                for event in &events {
                    let live = Live {
                        seq: event.seq,
                        filter: None,
                    };
                    let keys = self.channels.members(&event.channel);
                    fan_out(
                        &mut self.conns,
                        &mut self.work,
                        keys,
                        &event.frame,
                        live,
                        queueing,
                    );
                }
            }
            Command::ToAll { frame, seq } => self.fan_out_all(&frame, seq),
            Command::Subscribe { client, channel } => {
                if let Some(&key) = self.by_id.get(&client) {
                    if self.conns[key].channels.insert(channel.clone()) {
                        self.channels.insert(channel, key);
                    }
                }
            }
            Command::Unsubscribe { client, channel } => {
                if let Some(&key) = self.by_id.get(&client) {
                    if self.conns[key].channels.swap_remove(&channel) {
                        self.channels.remove(&channel, key);
                    }
                }
            }
            Command::Disconnect { client, reason } => {
                if let Some(&key) = self.by_id.get(&client) {
                    self.doom(key, reason);
                }
            }
            Command::Take { client, max, reply } => {
                let taken = self.take(client, max);
                // The host waits for this answer; if it is gone there is nobody to tell.
                let _ = reply.send(taken);
            }
            Command::SetMetadata { client, metadata } => {
                if let Some(&key) = self.by_id.get(&client) {
                    self.conns[key].metadata = metadata;
                }
            }
            Command::CloseChannel {
                channel,
                disconnect,
            } => {
                for key in self.channels.take(&channel) {
                    self.conns[key].channels.swap_remove(&channel);
                    if disconnect {
                        self.doom(key, DisconnectReason::Server);
                    }
                }
            }
            Command::Query { scope, reply } => {
                let keys: Vec<usize> = match scope {
                    Scope::One(id) => self.by_id.get(&id).copied().into_iter().collect(),
                    Scope::All => self.conns.iter().map(|(k, _)| k).collect(),
                    Scope::Channel(name) => self.channels.members(&name).collect(),
                    Scope::User(name) => self.users.members(&name).collect(),
                };
                let infos = keys.into_iter().map(|k| self.conns[k].info()).collect();
                // The asker waits for this answer; if it is gone there is nobody to tell.
                let _ = reply.send(infos);
            }
            Command::SetHandler(handler, _applied) => {
                HANDLER.with(|slot| slot.borrow_mut().1 = handler);
            }
            Command::Shutdown { deadline, last } => {
                self.timers.shutdown = Some(deadline);
                if let Some(frame) = last {
                    self.fan_out_all(&frame, 0);
                }
            }
        }
    }

    fn connect(&mut self, client: NewClient) {
        let NewClient {
            id,
            stream,
            peer,
            options,
            seen_seq,
            resume,
        } = client;
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let output = match stream {
            None => Output::Pulled { draining: false },
            Some((stream, socket_id)) => {
                let mut stream = TcpStream::from_std(stream);
                let registry = self.poll.registry();
                if registry
                    .register(&mut stream, Token(key), Interest::READABLE)
                    .is_err()
                {
                    // The socket cannot be watched: close it, report the client as failed.
                    self.directory().release_socket(socket_id);
                    drop(stream);
                    self.forget(id, DisconnectReason::Error);
                    return;
                }
                Output::Socket {
                    stream,
                    id: socket_id,
                }
            }
        };
        let mut conn = Conn::new(id, output, options.channels);
        conn.user = options.user.clone();
        conn.metadata = options.metadata;
        conn.seen_seq = seen_seq;
        conn.resumed_from = options.last_event_id.map(String::into_boxed_str);
        conn.peer = peer;
        entry.insert(conn);
        self.by_id.insert(id, key);
        for channel in &self.conns[key].channels {
            self.channels.insert(channel.clone(), key);
        }
        if let Some(user) = options.user {
            self.users.insert(user, key);
        }
        if !options.preamble.is_empty() {
            self.enqueue(key, &options.preamble);
        }
        self.emit(LifecycleEvent::Connected { client: id });
        match resume {
            Resume::Live => {}
            Resume::Replay(replay) => self.start_replay(key, replay, seen_seq),
            Resume::Gap(frame) => {
                Counters::add(&self.shared.counters.gaps, 1);
                self.emit(LifecycleEvent::Gap { client: id });
                if let Some(frame) = frame {
                    self.enqueue(key, &frame);
                }
            }
        }
    }

    /// Queues a part of a replay. When more waits, live history events are held back
    /// (they are in history too) and the next part follows when the queue drains;
    /// otherwise the client is live from `live_seq` on.
    fn start_replay(&mut self, key: usize, replay: Replay, live_seq: u64) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if replay.more {
            conn.replay_cursor = Some(replay.cursor);
        } else {
            conn.replay_cursor = None;
            conn.seen_seq = live_seq;
        }
        Counters::add(
            &self.shared.counters.events_replayed,
            replay.frames.len() as u64,
        );
        for frame in &replay.frames {
            self.enqueue(key, frame);
        }
    }

    /// Sends the next part of every replay whose client drained its queue.
    pub(super) fn continue_replays(&mut self) {
        let budget = ReplayBudget {
            events: self.shared.config.max_replay,
            bytes: self.shared.config.max_queue_bytes / 2,
        };
        for key in std::mem::take(&mut self.work.replays) {
            let Some(conn) = self.conns.get(key) else {
                continue;
            };
            let (Some(cursor), None) = (conn.replay_cursor, conn.doomed) else {
                continue;
            };
            let (replay, live_seq) = {
                let mut directory = self.directory();
                let replay = directory.continue_replay(
                    &conn.channels,
                    conn.metadata.as_deref(),
                    cursor,
                    budget,
                );
                (replay, directory.last_seq())
            };
            self.start_replay(key, replay, live_seq);
        }
    }

    /// Queues `frame` for one client outside the live stream (its response head, a
    /// replay, the gap event): it does not count towards the flush pass.
    pub(super) fn enqueue(&mut self, key: usize, frame: &Bytes) {
        let queueing = self.shared.queueing();
        if let Some(conn) = self.conns.get_mut(key) {
            let queued = self.work.enqueue(conn, key, frame, queueing);
            Counters::add(&self.shared.counters.frames_queued, queued as u64);
        }
    }

    /// Queues `frame` for every client of this shard.
    fn fan_out_all(&mut self, frame: &Bytes, seq: u64) {
        let live = Live { seq, filter: None };
        let queueing = self.shared.queueing();
        let mut queued = 0;
        for (key, conn) in self.conns.iter_mut() {
            queued += self.work.deliver(conn, key, frame, live, queueing) as u64;
        }
        Counters::add(&self.shared.counters.frames_queued, queued);
    }
}
