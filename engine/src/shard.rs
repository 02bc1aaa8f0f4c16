//! One reactor thread: it owns its clients' sockets, queues and channel index.
//!
//! Callers talk to it through a command queue and a `mio::Waker`. Fan-out pushes a
//! reference to one shared frame onto each recipient's queue and marks the client
//! dirty; dirty clients are flushed in chunks, and new commands are drained between
//! chunks, so events that arrive while a burst is being written join the queues of the
//! clients not yet flushed and leave in the same `sendmsg`.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use indexmap::IndexSet;
use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use serde_json::{Map, Value};
use slab::Slab;

use crate::channel_set::ChannelSet;
use crate::config::{Config, ValidatedConnect};
use crate::directory::{Directory, Replay, ReplayBudget};
use crate::event::heartbeat_frame;
use crate::filter::Filter;
use crate::lifecycle::{ClientId, DisconnectReason, EventHandler, LifecycleEvent};
use crate::queue::{Inbox, Next, WAKER};
use crate::registry::ClientInfo;
use crate::stats::Counters;
use crate::sys::{self, SocketId};

/// Clients flushed in one turn of the reactor.
const FLUSH_CHUNK: usize = 128;
/// Most commands applied in one flush pass (from when clients become dirty until every
/// one was flushed). Between two turns the reactor flushes sockets, reads, runs timers
/// and answers queries, whatever callers keep sending; and however fast they send, a
/// client's queue grows by at most this many events per pass, so a reader that keeps
/// up is never dropped as slow because a big channel takes many turns to flush.
const COMMAND_BATCH: usize = 64;
/// Queue slots a drained client keeps; a larger queue is freed (32 bytes a slot).
const IDLE_QUEUE_CAPACITY: usize = 8;
/// How often expired history is dropped (and channels left with nothing are forgotten).
const HISTORY_EXPIRY: Duration = Duration::from_secs(1);
/// How often write timeouts are checked while some client is blocked.
const TIMEOUT_SWEEP: Duration = Duration::from_millis(250);

thread_local! {
    /// A reactor thread's lifecycle handler, with the engine it serves (the address of
    /// their shared state). Kept per thread so that a handler that replaces itself is
    /// replaced for the very next event on its thread.
    static HANDLER: RefCell<(usize, Option<EventHandler>)> = const { RefCell::new((0, None)) };
}

/// Called from a handler: makes `handler` this reactor thread's handler at once, if the
/// thread serves the engine of `shared`. Returns whether it did.
pub(crate) fn replace_handler_here(shared: &Arc<Shared>, handler: &Option<EventHandler>) -> bool {
    HANDLER.with(|slot| {
        let mut slot = slot.borrow_mut();
        let here = slot.0 == Arc::as_ptr(shared) as usize;
        if here {
            slot.1 = handler.clone();
        }
        here
    })
}

/// A client handed to a shard.
pub(crate) struct NewClient {
    pub id: ClientId,
    /// The socket and its identity, or `None` for a stream-mode client whose bytes the
    /// host takes.
    pub stream: Option<(std::net::TcpStream, SocketId)>,
    pub peer: Option<SocketAddr>,
    pub options: ValidatedConnect,
    /// The last sequence number published when the client was admitted.
    pub seen_seq: u64,
    pub resume: Resume,
}

/// How a new client starts, decided from its `Last-Event-ID` under the directory lock.
pub(crate) enum Resume {
    /// No `Last-Event-ID`: the live stream only.
    Live,
    /// The first part of what it missed; the rest follows as it drains.
    Replay(Replay),
    /// Its id is not in history: tell the host, send the gap frame (if configured).
    Gap(Option<Bytes>),
}

/// Which clients a registry query asks about.
#[derive(Clone)]
pub(crate) enum Scope {
    One(ClientId),
    All,
    Channel(Arc<str>),
    User(Arc<str>),
}

pub(crate) enum Command {
    Connect(Box<NewClient>),
    ToClient {
        client: ClientId,
        frame: Bytes,
    },
    ToUser {
        user: Arc<str>,
        frame: Bytes,
    },
    /// `seq` is the event's sequence number when it is in history (0 when not): a
    /// client still replaying, or that already got it by replay, skips it.
    ToChannel {
        channel: Arc<str>,
        frame: Bytes,
        seq: u64,
        filter: Option<Arc<Filter>>,
    },
    ToAll {
        frame: Bytes,
        seq: u64,
    },
    Subscribe {
        client: ClientId,
        channel: Arc<str>,
    },
    Unsubscribe {
        client: ClientId,
        channel: Arc<str>,
    },
    Disconnect {
        client: ClientId,
        reason: DisconnectReason,
    },
    /// Up to `max` queued bytes of a stream-mode client, for the host to write.
    Take {
        client: ClientId,
        max: usize,
        reply: Sender<crate::Result<Bytes>>,
    },
    SetMetadata {
        client: ClientId,
        metadata: Option<Arc<Map<String, Value>>>,
    },
    CloseChannel {
        channel: Arc<str>,
        disconnect: bool,
    },
    Query {
        scope: Scope,
        reply: Sender<Vec<ClientInfo>>,
    },
    /// The sender is dropped once the handler is in place (the caller waits for that).
    SetHandler(Option<EventHandler>, std::sync::mpsc::Sender<()>),
    Shutdown {
        deadline: Instant,
        last: Option<Bytes>,
    },
}

/// What a shard shares with the engine handle.
pub(crate) struct Shared {
    pub config: Config,
    pub directory: Mutex<Directory>,
    pub counters: Counters,
}

struct Conn {
    id: ClientId,
    /// `None` in stream mode: the host takes the bytes (`Take`) instead of a socket.
    stream: Option<TcpStream>,
    /// Which socket `stream` is (the directory refuses it, or a duplicate, meanwhile).
    socket_id: Option<SocketId>,
    /// Stream mode, closing: doomed, but the host takes what is queued first.
    draining: bool,
    queue: VecDeque<Bytes>,
    /// Bytes of the first queued frame already sent.
    offset: usize,
    /// Bytes queued and not yet sent.
    queued: usize,
    channels: ChannelSet,
    user: Option<Arc<str>>,
    /// Waiting in the dirty list for a flush.
    dirty: bool,
    /// WRITABLE interest is registered (the kernel buffer was full).
    blocked: bool,
    /// When the client last stopped accepting bytes, while it has some queued.
    stalled_since: Option<Instant>,
    /// Received a frame since the last heartbeat tick.
    active: bool,
    /// Marked for closing with this reason at the next safe point.
    doomed: Option<DisconnectReason>,
    metadata: Option<Arc<Map<String, Value>>>,
    /// Highest history sequence number delivered (live or by replay).
    seen_seq: u64,
    /// While replaying: the last sequence number replayed; live history events wait.
    replay_cursor: Option<u64>,
    /// The last frame with an `id:` line written to the socket.
    last_id_frame: Option<Bytes>,
    /// The `Last-Event-ID` the client connected with.
    resumed_from: Option<String>,
    peer: Option<SocketAddr>,
    connected_at: SystemTime,
}

impl Conn {
    fn info(&self) -> ClientInfo {
        let last_sent = self.last_id_frame.as_ref().and_then(|frame| {
            let line = frame.strip_prefix(b"id: ")?.split(|b| *b == b'\n').next()?;
            Some(String::from_utf8_lossy(line).into_owned())
        });
        ClientInfo {
            id: self.id,
            user: self.user.as_deref().map(str::to_owned),
            channels: self.channels.iter().map(|c| c.to_string()).collect(),
            metadata: self.metadata.as_deref().cloned(),
            connected_at: self.connected_at,
            remote_addr: self.peer,
            queued_bytes: self.queued,
            last_event_id: last_sent.or_else(|| self.resumed_from.clone()),
        }
    }
}

pub(crate) struct Shard {
    poll: Poll,
    inbox: Inbox,
    shared: Arc<Shared>,
    conns: Slab<Conn>,
    by_id: HashMap<ClientId, usize>,
    channels: HashMap<Arc<str>, IndexSet<usize>>,
    users: HashMap<Arc<str>, IndexSet<usize>>,
    work: Work,
    /// Commands applied since the dirty list was last empty (see `COMMAND_BATCH`).
    applied_in_pass: usize,
    blocked_count: usize,
    now: Instant,
    next_heartbeat: Option<Instant>,
    next_sweep: Option<Instant>,
    /// When this shard next drops expired history (shard 0 only).
    next_expiry: Option<Instant>,
    shutdown: Option<Instant>,
    scratch: Box<[u8; 4096]>,
}

impl Shard {
    /// `expires_history`: this shard also drops expired history now and then (one
    /// shard of the engine does).
    pub fn new(poll: Poll, inbox: Inbox, shared: Arc<Shared>, expires_history: bool) -> Shard {
        let now = Instant::now();
        let next_heartbeat = shared.config.heartbeat.map(|h| now + h);
        let next_expiry = expires_history.then(|| now + HISTORY_EXPIRY);
        Shard {
            poll,
            inbox,
            shared,
            conns: Slab::new(),
            by_id: HashMap::new(),
            channels: HashMap::new(),
            users: HashMap::new(),
            work: Work::default(),
            applied_in_pass: 0,
            blocked_count: 0,
            now,
            next_heartbeat,
            next_sweep: None,
            next_expiry,
            shutdown: None,
            scratch: Box::new([0; 4096]),
        }
    }

    /// Runs until shutdown completes (or the engine handle is gone). Each turn does a
    /// bounded amount of work: socket events, one batch of commands, one chunk of
    /// flushes, timers. While work is left the next poll does not sleep.
    pub fn run(mut self) {
        HANDLER.with(|slot| slot.borrow_mut().0 = Arc::as_ptr(&self.shared) as usize);
        let mut events = Events::with_capacity(1024);
        let mut busy = false;
        loop {
            let timeout = if busy {
                Some(Duration::ZERO)
            } else {
                self.poll_timeout()
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    // The poller itself failed: nothing can be served any more.
                    self.close_all(DisconnectReason::Error);
                    return;
                }
            }
            self.now = Instant::now();
            for event in events.iter() {
                let token = event.token();
                if token == WAKER {
                    continue;
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.read(token.0);
                }
                if event.is_writable() {
                    self.flush(token.0);
                }
            }
            let turn = self.turn();
            self.run_timers();
            self.close_doomed();
            busy = turn.more_commands || !self.work.dirty.is_empty();
            if let Some(deadline) = self.shutdown {
                if turn.handle_gone || self.all_flushed() || self.now >= deadline {
                    self.close_all(DisconnectReason::Shutdown);
                    return;
                }
            }
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        let next = [
            self.next_heartbeat,
            self.next_sweep,
            self.next_expiry,
            self.shutdown,
        ]
        .into_iter()
        .flatten()
        .min()?;
        Some(next.saturating_duration_since(Instant::now()))
    }

    /// Applies queued commands (up to what the current flush pass still allows), then
    /// flushes up to one chunk of dirty clients. Events that arrive while a burst is
    /// being written join the queues of the clients not yet flushed and leave in the
    /// same `sendmsg`.
    fn turn(&mut self) -> Turn {
        let mut turn = Turn {
            more_commands: true,
            handle_gone: false,
        };
        if self.work.dirty.is_empty() {
            self.applied_in_pass = 0;
        }
        self.inbox.begin_turn();
        for _ in self.applied_in_pass..COMMAND_BATCH {
            match self.inbox.next() {
                Next::Command(command) => {
                    self.applied_in_pass += 1;
                    self.apply(command);
                }
                Next::Empty => {
                    turn.more_commands = false;
                    break;
                }
                Next::Closed => {
                    turn.more_commands = false;
                    turn.handle_gone = true;
                    break;
                }
            }
        }
        self.inbox.release();
        for _ in 0..FLUSH_CHUNK {
            let Some(key) = self.work.dirty.pop_front() else {
                break;
            };
            if let Some(conn) = self.conns.get_mut(key) {
                conn.dirty = false;
                self.flush(key);
            }
        }
        self.continue_replays();
        self.close_doomed();
        turn
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Connect(client) => self.connect(*client),
            Command::ToClient { client, frame } => {
                if let Some(&key) = self.by_id.get(&client) {
                    self.enqueue(key, &frame);
                }
            }
            Command::ToUser { user, frame } => {
                if let Some(members) = self.users.get(&user) {
                    let keys = members.iter().copied();
                    fan_out(
                        &mut self.conns,
                        &mut self.work,
                        &self.shared,
                        keys,
                        &frame,
                        Live::DIRECT,
                    );
                }
            }
            Command::ToChannel {
                channel,
                frame,
                seq,
                filter,
            } => {
                if let Some(members) = self.channels.get(&channel) {
                    let keys = members.iter().copied();
                    let live = Live {
                        seq,
                        filter: filter.as_deref(),
                    };
                    fan_out(
                        &mut self.conns,
                        &mut self.work,
                        &self.shared,
                        keys,
                        &frame,
                        live,
                    );
                }
            }
            Command::ToAll { frame, seq } => self.fan_out_all(&frame, seq),
            Command::Subscribe { client, channel } => {
                if let Some(&key) = self.by_id.get(&client) {
                    let conn = &mut self.conns[key];
                    if conn.channels.insert(channel.clone()) {
                        self.channels.entry(channel).or_default().insert(key);
                    }
                }
            }
            Command::Unsubscribe { client, channel } => {
                if let Some(&key) = self.by_id.get(&client) {
                    let conn = &mut self.conns[key];
                    if conn.channels.swap_remove(&channel) {
                        remove_member(&mut self.channels, &channel, key);
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
                for key in self.channels.remove(&channel).unwrap_or_default() {
                    let conn = &mut self.conns[key];
                    conn.channels.swap_remove(&channel);
                    if disconnect {
                        self.doom(key, DisconnectReason::Server);
                    }
                }
            }
            Command::Query { scope, reply } => {
                let keys: Vec<usize> = match scope {
                    Scope::One(id) => self.by_id.get(&id).copied().into_iter().collect(),
                    Scope::All => self.conns.iter().map(|(k, _)| k).collect(),
                    Scope::Channel(name) => self
                        .channels
                        .get(&name)
                        .map_or_else(Vec::new, |m| m.iter().copied().collect()),
                    Scope::User(name) => self
                        .users
                        .get(&name)
                        .map_or_else(Vec::new, |m| m.iter().copied().collect()),
                };
                let infos = keys.into_iter().map(|k| self.conns[k].info()).collect();
                // The asker waits for this answer; if it is gone there is nobody to tell.
                let _ = reply.send(infos);
            }
            Command::SetHandler(handler, _applied) => {
                HANDLER.with(|slot| slot.borrow_mut().1 = handler);
            }
            Command::Shutdown { deadline, last } => {
                self.shutdown = Some(deadline);
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
        let socket_id = stream.as_ref().map(|(_, socket_id)| *socket_id);
        let mut stream = stream.map(|(stream, _)| TcpStream::from_std(stream));
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if let (Some(socket), Some(socket_id)) = (&mut stream, socket_id) {
            let registry = self.poll.registry();
            if registry
                .register(socket, Token(key), Interest::READABLE)
                .is_err()
            {
                // The socket cannot be watched: close it and report the client as failed.
                self.release_socket(socket_id);
                drop(stream);
                self.forget(id, DisconnectReason::Error);
                return;
            }
        }
        entry.insert(Conn {
            id,
            stream,
            socket_id,
            draining: false,
            queue: VecDeque::new(),
            offset: 0,
            queued: 0,
            channels: options.channels,
            user: options.user.clone(),
            dirty: false,
            blocked: false,
            stalled_since: None,
            active: false,
            doomed: None,
            metadata: options.metadata,
            seen_seq,
            replay_cursor: None,
            last_id_frame: None,
            resumed_from: options.last_event_id,
            peer,
            connected_at: SystemTime::now(),
        });
        self.by_id.insert(id, key);
        for channel in &self.conns[key].channels {
            self.channels
                .entry(channel.clone())
                .or_default()
                .insert(key);
        }
        if let Some(user) = options.user {
            self.users.entry(user).or_default().insert(key);
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
    fn continue_replays(&mut self) {
        let budget = self.replay_budget();
        for key in std::mem::take(&mut self.work.replays) {
            let Some(conn) = self.conns.get(key) else {
                continue;
            };
            let (Some(cursor), None) = (conn.replay_cursor, conn.doomed) else {
                continue;
            };
            let (replay, live_seq) = {
                let mut directory = self
                    .shared
                    .directory
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
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

    fn replay_budget(&self) -> ReplayBudget {
        ReplayBudget {
            events: self.shared.config.max_replay,
            bytes: self.shared.config.max_queue_bytes / 2,
        }
    }

    fn enqueue(&mut self, key: usize, frame: &Bytes) {
        let keys = std::iter::once(key);
        fan_out(
            &mut self.conns,
            &mut self.work,
            &self.shared,
            keys,
            frame,
            Live::DIRECT,
        );
    }

    /// Queues `frame` for every client of this shard.
    fn fan_out_all(&mut self, frame: &Bytes, seq: u64) {
        let live = Live { seq, filter: None };
        let mut queued = 0;
        for (key, conn) in self.conns.iter_mut() {
            queued += self.work.deliver(conn, key, frame, live, &self.shared) as u64;
        }
        Counters::add(&self.shared.counters.frames_queued, queued);
    }

    /// Reads and discards what the client sends; sees it close.
    fn read(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(stream) = &mut conn.stream else {
            return;
        };
        loop {
            match stream.read(&mut self.scratch[..]) {
                Ok(0) => {
                    self.doom(key, DisconnectReason::Closed);
                    return;
                }
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.doom(key, self.failure_reason(&e));
                    return;
                }
            }
        }
    }

    /// Writes as much of the client's queue as the kernel takes, in as few `sendmsg`
    /// calls as the queue needs (one, unless it holds more frames than one call carries).
    fn flush(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.doomed.is_some() {
            return;
        }
        let Some(fd) = conn.stream.as_ref().map(AsRawFd::as_raw_fd) else {
            // Stream mode: tell the host once that there is something to take.
            if conn.queue.is_empty() {
                if conn.replay_cursor.is_some() {
                    self.work.replays.push(key);
                }
            } else if !conn.blocked {
                self.await_take(key);
            }
            return;
        };
        let mut written = 0u64;
        let mut calls = 0u64;
        let result = loop {
            if conn.queue.is_empty() {
                // A burst grew the queue; give the memory back while the client is idle.
                if conn.queue.capacity() > IDLE_QUEUE_CAPACITY {
                    conn.queue = VecDeque::new();
                }
                break Ok(false);
            }
            let batch: usize = conn
                .queue
                .iter()
                .take(sys::MAX_IOV)
                .map(Bytes::len)
                .sum::<usize>()
                - conn.offset;
            calls += 1;
            match sys::send_frames(&fd, &conn.queue, conn.offset) {
                Ok(n) => {
                    written += n as u64;
                    advance(conn, n);
                    conn.stalled_since = None;
                    if n < batch {
                        break Ok(true);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(true),
                Err(e) => break Err(e),
            }
        };
        Counters::add(&self.shared.counters.bytes_written, written);
        Counters::add(&self.shared.counters.write_calls, calls);
        match result {
            Ok(true) => {
                conn.stalled_since.get_or_insert(self.now);
                if !conn.blocked {
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if self
                        .poll
                        .registry()
                        .reregister(&mut SourceFd(&fd), Token(key), interest)
                        .is_err()
                    {
                        self.doom(key, DisconnectReason::Error);
                        return;
                    }
                    conn.blocked = true;
                    self.blocked_count += 1;
                    if self.shared.config.write_timeout.is_some() && self.next_sweep.is_none() {
                        self.next_sweep = Some(self.now + TIMEOUT_SWEEP);
                    }
                }
            }
            Ok(false) => {
                if conn.replay_cursor.is_some() {
                    self.work.replays.push(key);
                }
                if conn.blocked {
                    if self
                        .poll
                        .registry()
                        .reregister(&mut SourceFd(&fd), Token(key), Interest::READABLE)
                        .is_err()
                    {
                        self.doom(key, DisconnectReason::Error);
                        return;
                    }
                    conn.blocked = false;
                    self.blocked_count -= 1;
                }
            }
            Err(e) => self.doom(key, self.failure_reason(&e)),
        }
    }

    /// A stream-mode client has bytes: it counts as blocked (so the write timeout
    /// applies) until the host takes them, and the host hears of it once.
    fn await_take(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        conn.blocked = true;
        conn.stalled_since.get_or_insert(self.now);
        self.blocked_count += 1;
        if self.shared.config.write_timeout.is_some() && self.next_sweep.is_none() {
            self.next_sweep = Some(self.now + TIMEOUT_SWEEP);
        }
        let client = conn.id;
        self.emit(LifecycleEvent::Readable { client });
    }

    /// Hands up to `max` queued bytes of a stream-mode client to the host.
    fn take(&mut self, client: ClientId, max: usize) -> crate::Result<Bytes> {
        let key = *self
            .by_id
            .get(&client)
            .ok_or_else(|| crate::Error::not_found(client))?;
        let conn = &mut self.conns[key];
        if conn.stream.is_some() {
            return Err(crate::Error::invalid(format!(
                "client {client} owns a socket; only stream-mode clients are taken from"
            )));
        }
        let n = conn.queued.min(max);
        let bytes = if conn.offset == 0 && conn.queue.front().is_some_and(|f| f.len() == n) {
            conn.queue[0].clone()
        } else {
            let mut buf = bytes::BytesMut::with_capacity(n);
            let mut skip = conn.offset;
            for frame in &conn.queue {
                let part = &frame[skip..];
                skip = 0;
                let want = (n - buf.len()).min(part.len());
                buf.extend_from_slice(&part[..want]);
                if buf.len() == n {
                    break;
                }
            }
            buf.freeze()
        };
        advance(conn, n);
        Counters::add(&self.shared.counters.bytes_written, n as u64);
        Counters::add(&self.shared.counters.write_calls, 1);
        if conn.blocked {
            conn.blocked = false;
            self.blocked_count -= 1;
        }
        conn.stalled_since = None;
        if !conn.queue.is_empty() {
            self.await_take(key);
        } else if let (Some(reason), true) = (conn.doomed, conn.draining) {
            self.close(key, reason);
        } else if conn.replay_cursor.is_some() {
            self.work.replays.push(key);
            self.continue_replays();
        }
        Ok(bytes)
    }

    fn run_timers(&mut self) {
        if let Some(at) = self.next_expiry {
            if self.now >= at {
                self.next_expiry = Some(self.now + HISTORY_EXPIRY);
                self.shared
                    .directory
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .expire_history(self.now);
            }
        }
        if let (Some(at), Some(interval)) = (self.next_heartbeat, self.shared.config.heartbeat) {
            if self.now >= at {
                // Only clients that got nothing since the last tick need the comment.
                let frame = heartbeat_frame();
                let mut sent = 0;
                for (key, conn) in self.conns.iter_mut() {
                    if !std::mem::replace(&mut conn.active, false) {
                        sent += self.work.enqueue(conn, key, &frame, &self.shared) as u64;
                        conn.active = false;
                    }
                }
                Counters::add(&self.shared.counters.heartbeats, sent);
                Counters::add(&self.shared.counters.frames_queued, sent);
                self.next_heartbeat = Some(self.now + interval);
            }
        }
        if let Some(at) = self.next_sweep {
            if self.now >= at {
                self.next_sweep = None;
                if let Some(timeout) = self.shared.config.write_timeout {
                    let now = self.now;
                    let stale: Vec<usize> = self
                        .conns
                        .iter()
                        .filter(|(_, c)| {
                            c.stalled_since
                                .is_some_and(|t| now.duration_since(t) >= timeout)
                        })
                        .map(|(k, _)| k)
                        .collect();
                    let reason = self.timeout_reason();
                    for key in stale {
                        match self.conns[key].doomed {
                            // A draining stream-mode client the host stopped taking from.
                            Some(doomed) if self.conns[key].draining => self.close(key, doomed),
                            _ => self.doom(key, reason),
                        }
                    }
                    if self.blocked_count > 0 {
                        self.next_sweep = Some(now + TIMEOUT_SWEEP);
                    }
                }
            }
        }
    }

    /// Why a client that stopped accepting bytes leaves: `timeout`, or `shutdown` while
    /// a shutdown flushes (it gives up on the client as the deadline would).
    fn timeout_reason(&self) -> DisconnectReason {
        match self.shutdown {
            Some(_) => DisconnectReason::Shutdown,
            None => DisconnectReason::Timeout,
        }
    }

    /// Why a socket error ends a client: the kernel gave up on a peer that acknowledged
    /// nothing for the write timeout (`ETIMEDOUT`, see `sys::own_tcp_socket`) is a
    /// timeout; anything else (a reset, mostly) an `error`.
    fn failure_reason(&self, error: &io::Error) -> DisconnectReason {
        if error.raw_os_error() == Some(libc::ETIMEDOUT) {
            self.timeout_reason()
        } else {
            DisconnectReason::Error
        }
    }

    fn all_flushed(&self) -> bool {
        self.conns
            .iter()
            .all(|(_, c)| c.queue.is_empty() || (c.doomed.is_some() && !c.draining))
    }

    fn doom(&mut self, key: usize, reason: DisconnectReason) {
        if let Some(conn) = self.conns.get_mut(key) {
            if conn.doomed.is_none() {
                conn.doomed = Some(reason);
                self.work.doomed.push(key);
            }
        }
    }

    fn close_doomed(&mut self) {
        while let Some(key) = self.work.doomed.pop() {
            let conn = &mut self.conns[key];
            let reason = conn.doomed.unwrap_or(DisconnectReason::Error);
            let deliver = matches!(
                reason,
                DisconnectReason::Server | DisconnectReason::Shutdown
            );
            if conn.stream.is_none() && deliver && !conn.queue.is_empty() {
                // Stream mode: the host takes what is queued, then the client closes.
                conn.draining = true;
                if !conn.blocked {
                    self.await_take(key);
                }
                continue;
            }
            self.close(key, reason);
        }
    }

    fn close_all(&mut self, reason: DisconnectReason) {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            let reason = self.conns[key].doomed.unwrap_or(reason);
            self.close(key, reason);
        }
    }

    fn close(&mut self, key: usize, reason: DisconnectReason) {
        let mut conn = self.conns.remove(key);
        if conn.blocked {
            self.blocked_count -= 1;
        }
        if let Some(mut stream) = conn.stream.take() {
            if matches!(
                reason,
                DisconnectReason::Server | DisconnectReason::Shutdown
            ) {
                // A last, non-blocking attempt to deliver what the host queued before
                // closing: as much as the kernel takes now.
                while !conn.queue.is_empty() {
                    match sys::send_frames(&stream, &conn.queue, conn.offset) {
                        Ok(n) if n > 0 => {
                            Counters::add(&self.shared.counters.bytes_written, n as u64);
                            Counters::add(&self.shared.counters.write_calls, 1);
                            advance(&mut conn, n);
                        }
                        _ => break,
                    }
                }
            }
            let _ = self.poll.registry().deregister(&mut stream);
            if reason != DisconnectReason::Error {
                let _ = stream.shutdown(std::net::Shutdown::Write);
            }
            if let Some(socket_id) = conn.socket_id {
                self.release_socket(socket_id);
            }
            drop(stream);
        }
        for channel in &conn.channels {
            remove_member(&mut self.channels, channel, key);
        }
        if let Some(user) = &conn.user {
            remove_member(&mut self.users, user, key);
        }
        self.by_id.remove(&conn.id);
        self.forget(conn.id, reason);
    }

    /// The engine no longer owns this socket: it may be handed over anew.
    fn release_socket(&self, socket: SocketId) {
        self.shared
            .directory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .release_socket(socket);
    }

    /// Removes a closed client from the directory and tells the host.
    fn forget(&mut self, id: ClientId, reason: DisconnectReason) {
        self.shared
            .directory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        self.shared.counters.disconnected(reason);
        self.emit(LifecycleEvent::Disconnected { client: id, reason });
    }

    fn emit(&self, event: LifecycleEvent) {
        // Cloned out first: the handler may replace itself (see `replace_handler_here`).
        let handler = HANDLER.with(|slot| slot.borrow().1.clone());
        if let Some(handler) = handler {
            // A panicking handler must not take the reactor down with it.
            let _ = catch_unwind(AssertUnwindSafe(|| handler(&event)));
        }
    }
}

/// What one turn of the reactor left.
struct Turn {
    /// The batch ended with commands still queued.
    more_commands: bool,
    /// Every handle of the engine is gone.
    handle_gone: bool,
}

/// Clients waiting for a flush, and clients waiting to be closed.
#[derive(Default)]
struct Work {
    dirty: VecDeque<usize>,
    doomed: Vec<usize>,
    /// Replaying clients whose queue drained: they get the next part.
    replays: Vec<usize>,
}

/// How a fanned-out frame relates to history and filters.
#[derive(Clone, Copy)]
struct Live<'a> {
    /// Sequence number of a history event, 0 for frames outside history.
    seq: u64,
    filter: Option<&'a Filter>,
}

impl Live<'_> {
    /// A frame for named clients: no history, no filter.
    const DIRECT: Live<'static> = Live {
        seq: 0,
        filter: None,
    };
}

impl Work {
    /// Queues a live frame unless the client must not get it: it is still replaying (the
    /// event will come from history), already got it by replay, or fails the filter.
    fn deliver(
        &mut self,
        conn: &mut Conn,
        key: usize,
        frame: &Bytes,
        live: Live<'_>,
        shared: &Shared,
    ) -> bool {
        if live.seq != 0 {
            if conn.replay_cursor.is_some() || live.seq <= conn.seen_seq {
                return false;
            }
            conn.seen_seq = live.seq;
        }
        if let Some(filter) = live.filter {
            if !filter.matches(conn.metadata.as_deref()) {
                return false;
            }
        }
        self.enqueue(conn, key, frame, shared)
    }

    /// Queues a reference to `frame` for one client: no copy, no allocation per
    /// recipient (the queue grows amortised). A client past its queue limit is marked
    /// `slow` instead. Returns whether the frame was queued.
    fn enqueue(&mut self, conn: &mut Conn, key: usize, frame: &Bytes, shared: &Shared) -> bool {
        if conn.doomed.is_some() {
            return false;
        }
        let queued = conn.queued + frame.len();
        if queued > shared.config.max_queue_bytes {
            conn.doomed = Some(DisconnectReason::Slow);
            self.doomed.push(key);
            return false;
        }
        conn.queue.push_back(frame.clone());
        conn.queued = queued;
        conn.active = true;
        if conn.blocked {
            // Only a blocked client's queue grows beyond one flush's worth.
            shared.counters.raise_high_water(queued as u64);
        } else if !conn.dirty {
            conn.dirty = true;
            self.dirty.push_back(key);
        }
        true
    }
}

/// Queues `frame` for the clients with the given slab keys; counts the frames once.
fn fan_out(
    conns: &mut Slab<Conn>,
    work: &mut Work,
    shared: &Shared,
    keys: impl Iterator<Item = usize>,
    frame: &Bytes,
    live: Live<'_>,
) {
    let mut queued = 0u64;
    for key in keys {
        if let Some(conn) = conns.get_mut(key) {
            queued += work.deliver(conn, key, frame, live, shared) as u64;
        }
    }
    Counters::add(&shared.counters.frames_queued, queued);
}

/// Drops `n` sent bytes from the front of a client's queue.
fn advance(conn: &mut Conn, mut n: usize) {
    conn.queued -= n;
    while n > 0 {
        let first = conn.queue[0].len() - conn.offset;
        if n >= first {
            n -= first;
            conn.offset = 0;
            if let Some(frame) = conn.queue.pop_front() {
                if frame.starts_with(b"id: ") {
                    conn.last_id_frame = Some(frame);
                }
            }
        } else {
            conn.offset += n;
            n = 0;
        }
    }
}

fn remove_member(index: &mut HashMap<Arc<str>, IndexSet<usize>>, name: &str, key: usize) {
    if let Some(members) = index.get_mut(name) {
        members.swap_remove(&key);
        if members.is_empty() {
            index.remove(name);
        }
    }
}
