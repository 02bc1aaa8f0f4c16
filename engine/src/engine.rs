//! The engine handle: validates calls, keeps the directory, and feeds the shards.

use std::cell::Cell;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mio::Poll;

use crate::config::{parse_metadata, Config, ConnectOptions, ValidatedConnect};
use crate::directory::{ChannelInfo, Directory, Limits, ReplayBudget, ReplayPlan, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{validate_channel, validate_user, Event};
use crate::filter::Filter;
use crate::history::{HistoryLimits, IdFormat};
use crate::lifecycle::{ClientId, DisconnectReason, EventHandler, LifecycleEvent};
use crate::reactor::command::{Command, NewClient, Resume, Scope};
use crate::reactor::queue::{self, Outbox, MAX_WAIT};
use crate::reactor::{self, Shard, Shared};
use crate::registry::ClientInfo;
use crate::stats::{Counters, Stats};
use crate::sys::{self, SocketId};

/// How long dropping an engine that was not shut down waits for queued bytes to drain.
pub const DROP_FLUSH_DEADLINE: Duration = Duration::from_secs(1);

thread_local! {
    /// Set on reactor threads, where a handler must not wait for the reactor itself.
    static ON_REACTOR: Cell<bool> = const { Cell::new(false) };
}

/// A running SSE engine. All methods take `&self` and may be called from any thread.
pub struct Engine {
    shared: Arc<Shared>,
    shards: Vec<Outbox>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_id: AtomicU64,
    closed: AtomicBool,
    /// The process that started the reactor threads. After a `fork()` the child has
    /// the engine's memory but none of its threads: waiting for them would hang.
    pid: u32,
}

impl Engine {
    /// Checks `config` and starts the reactor threads.
    pub fn start(config: Config) -> Result<Engine> {
        config.validate()?;
        let start_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let shared = Arc::new(Shared {
            config: config.clone(),
            directory: Mutex::new(Directory::new(
                IdFormat::new(start_ms, random_salt()),
                config.auto_ids,
                config.history,
            )),
            counters: Counters::default(),
            failure: std::sync::OnceLock::new(),
        });
        // Built first so that a failure part-way drops it: `Drop` stops the reactors
        // started so far, and every descriptor made for them is closed.
        let mut engine = Engine {
            shared,
            shards: Vec::with_capacity(config.threads),
            threads: Mutex::new(Vec::with_capacity(config.threads)),
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            pid: std::process::id(),
        };
        for index in 0..config.threads {
            let poll = Poll::new().map_err(|e| Error::io("create poller", e))?;
            let (outbox, inbox) =
                queue::channel(&poll).map_err(|e| Error::io("create waker", e))?;
            let shard = Shard::new(poll, inbox, engine.shared.clone(), index == 0);
            let thread = std::thread::Builder::new()
                .name(format!("sse-reactor-{index}"))
                .spawn(move || {
                    ON_REACTOR.with(|r| r.set(true));
                    reactor::run_thread(shard, index, config.threads);
                })
                .map_err(|e| Error::io("spawn reactor thread", e))?;
            engine.shards.push(outbox);
            engine
                .threads
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .push(thread);
        }
        Ok(engine)
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    fn check_open(&self) -> Result<()> {
        #[cfg(feature = "fault-injection")]
        crate::fault::hit(crate::fault::Fault::NextCall);
        if let Some(failure) = self.shared.failure.get() {
            return Err(Error::new(
                ErrorKind::ShutDown,
                format!(
                    "the engine failed and takes no more calls ({failure}; its clients were \
                     closed): start a new engine"
                ),
            ));
        }
        if self.closed.load(Ordering::SeqCst) {
            Err(Error::shut_down())
        } else {
            Ok(())
        }
    }

    fn directory(&self) -> MutexGuard<'_, Directory> {
        // The directory holds plain counts; a panic elsewhere cannot leave it half-updated
        // in a way that matters more than refusing every later call would.
        self.shared
            .directory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn limits(&self) -> Limits {
        Limits {
            max_clients: self.shared.config.max_clients,
            max_per_channel: self.shared.config.max_clients_per_channel,
        }
    }

    fn shard_of(&self, client: ClientId) -> &Outbox {
        &self.shards[(client % self.shards.len() as u64) as usize]
    }

    /// Slows a publishing caller while a reactor is behind (see [`crate::queue`]). A
    /// handler never waits: it runs on a reactor thread, which would wait for itself.
    fn wait_for_room<'a>(&'a self, shards: impl IntoIterator<Item = &'a Outbox>) -> Result<()> {
        if ON_REACTOR.with(Cell::get) {
            return Ok(());
        }
        let deadline = Instant::now() + MAX_WAIT;
        for shard in shards {
            if shard.is_full() {
                // In a forked child nothing drains the queue (and its lock may be held).
                self.check_same_process()?;
                shard.wait_for_room(deadline)?;
            }
        }
        Ok(())
    }

    fn to_every_shard(&self, recipients: usize, make: impl Fn() -> Command) {
        self.enqueue_everywhere(recipients, make);
        self.wake_every_shard();
    }

    /// Enqueues a command on every shard without waking them (done under the directory
    /// lock; wake after unlocking). `recipients`: how many clients it reaches in all.
    fn enqueue_everywhere(&self, recipients: usize, make: impl Fn() -> Command) {
        let each = recipients.div_ceil(self.shards.len());
        for shard in &self.shards {
            shard.send_to(make(), each);
        }
    }

    fn wake_every_shard(&self) {
        for shard in &self.shards {
            shard.wake();
        }
    }

    /// Takes over a connected TCP socket and makes it an SSE stream.
    ///
    /// Ownership of `fd`: on success the engine owns it and closes it when the client
    /// leaves. When a limit refuses the client (`ErrorKind::LimitReached`) the engine
    /// also owns it: it answers `503 Service Unavailable` with `Retry-After` (unless
    /// `head_sent`) and closes it. On every other error the descriptor is untouched
    /// and still belongs to the caller.
    pub fn connect_fd(&self, fd: RawFd, options: &ConnectOptions) -> Result<ClientId> {
        self.check_open()?;
        let options = options.validate(&self.shared.config)?;
        let socket = sys::check_tcp_socket(fd)?;
        self.admit(options, Some((fd, socket)))
    }

    /// Registers a stream-mode client: for connections the host cannot hand over (TLS
    /// terminated in the host, HTTP/2, ASGI servers). The engine keeps its state
    /// (channels, history and replay, heartbeats, limits, timeouts) exactly as for a
    /// socket, but the host writes the bytes: on `LifecycleEvent::Readable` it calls
    /// [`Engine::take_stream`] and writes what it gets to its response, honouring its
    /// framework's backpressure. When the response ends it calls
    /// [`Engine::close_stream`]; when the engine ends the client (disconnect, slow,
    /// timeout, shutdown) the host gets `Disconnected` and ends the response. The host
    /// writes the response head ([`crate::http::stream_head`]), so `headers` must be
    /// empty; a limit refusal is an error (the host answers [`crate::http::busy_answer`]).
    pub fn connect_stream(&self, options: &ConnectOptions) -> Result<ClientId> {
        self.check_open()?;
        if !options.headers.is_empty() {
            return Err(Error::invalid(
                "in stream mode the host writes the response head: set headers on the response",
            ));
        }
        let options = ConnectOptions {
            head_sent: true,
            ..options.clone()
        };
        let options = options.validate(&self.shared.config)?;
        self.admit(options, None)
    }

    /// Checks the limits, plans the replay, records the client and hands it to its shard.
    /// `fd` (a checked socket, or `None` in stream mode) becomes the engine's here.
    fn admit(
        &self,
        options: ValidatedConnect,
        socket: Option<(RawFd, SocketId)>,
    ) -> Result<ClientId> {
        let mut directory = self.directory();
        // Checked again under the lock: a shutdown that started meanwhile must not strand
        // this client in a shard that is already closing. The fd is still untouched.
        self.check_open()?;
        if let Some((fd, id)) = socket {
            if directory.owns_socket(id) {
                return Err(Error::new(
                    ErrorKind::BadSocket,
                    format!(
                        "fd {fd} is a socket the engine already owns (handed over before, \
                         by this descriptor or a duplicate of it)"
                    ),
                ));
            }
        }
        if let Err(e) = directory.check_admission(&options.channels, self.limits()) {
            drop(directory);
            Counters::add(&self.shared.counters.refused_total, 1);
            if let Some((fd, _)) = socket {
                let stream = sys::own_tcp_socket(fd, None);
                if !options.head_sent {
                    refuse_busy(&stream, self.shared.config.busy_retry_after_secs);
                }
            }
            return Err(e);
        }
        if let Some((_, id)) = socket {
            directory.adopt_socket(id);
        }
        let write_timeout = self.shared.config.write_timeout;
        let stream = socket.map(|(fd, id)| (sys::own_tcp_socket(fd, write_timeout), id));
        let peer = stream.as_ref().and_then(|(s, _)| s.peer_addr().ok());
        let resume = match &options.last_event_id {
            None => Resume::Live,
            Some(last) => {
                let budget = ReplayBudget {
                    events: self.shared.config.max_replay,
                    bytes: self.shared.config.max_queue_bytes / 2,
                };
                let metadata = options.metadata.as_deref();
                match directory.plan_replay(&options.channels, metadata, last, budget) {
                    ReplayPlan::Replay(replay) => Resume::Replay(replay),
                    ReplayPlan::Gap => Resume::Gap(self.gap_frame(last, directory.position_id())),
                }
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        directory.insert(id, options.user.clone(), options.channels.clone());
        let shard = self.shard_of(id);
        shard.send(Command::Connect(Box::new(NewClient {
            id,
            stream,
            peer,
            options,
            seen_seq: directory.last_seq(),
            resume,
        })));
        drop(directory);
        shard.wake();
        Counters::add(&self.shared.counters.connections_total, 1);
        Ok(id)
    }

    /// Takes up to `max_bytes` of what is queued for a stream-mode client (possibly
    /// nothing), for the host to write to its response. When bytes remain, `Readable` is
    /// reported again. `NotFound` once the client is gone; `InvalidArgument` for a
    /// client that owns a socket. It waits for the reactor, so not from a handler.
    ///
    /// It keeps working while a shutdown flushes (that is how stream-mode clients get
    /// their last bytes); after it, it returns `ShutDown`.
    pub fn take_stream(&self, client: ClientId, max_bytes: usize) -> Result<Bytes> {
        self.check_same_process()?;
        if ON_REACTOR.with(Cell::get) {
            return Err(Error::invalid(
                "take_stream cannot run inside an event handler (it runs on the reactor thread)",
            ));
        }
        if max_bytes == 0 {
            return Err(Error::invalid("max_bytes must be at least 1"));
        }
        let (reply, answer) = mpsc::channel();
        let shard = self.shard_of(client);
        shard.send(Command::Take {
            client,
            max: max_bytes,
            reply,
        });
        shard.wake();
        // No answer means the shard stopped: the engine shut down meanwhile.
        answer.recv().unwrap_or_else(|_| Err(Error::shut_down()))
    }

    /// The host's response of a stream-mode client ended (the client went away): the
    /// client leaves with reason `closed`.
    pub fn close_stream(&self, client: ClientId) -> Result<()> {
        self.end_client(client, DisconnectReason::Closed)
    }

    fn count_published(&self) {
        Counters::add(&self.shared.counters.events_published, 1);
    }

    /// The event telling a client that its `Last-Event-ID` is not in history. Its id is
    /// the position the client resumes from, so a client that drops right after it
    /// resumes from there (with a replay) instead of meeting the same gap again.
    fn gap_frame(&self, last_event_id: &str, position: String) -> Option<Bytes> {
        let name = self.shared.config.gap_event.as_deref()?;
        let data = serde_json::json!({ "lastEventId": last_event_id }).to_string();
        // The name was validated with the config, the id is the engine's own format and
        // the data is one JSON line.
        Event::new(data).named(name).with_id(position).encode().ok()
    }

    /// Publishes to a channel: sequence number, id, history, then the shards.
    fn publish_to_channel(
        &self,
        channel: &str,
        event: &Event,
        filter: Option<Arc<Filter>>,
    ) -> Result<usize> {
        self.check_open()?;
        validate_channel(channel)?;
        event.validate()?;
        self.wait_for_room(&self.shards)?;
        let channel: Arc<str> = channel.into();
        let mut directory = self.directory();
        let published = directory.publish(Target::Channel(&channel), event, filter.as_ref());
        if published.count > 0 {
            self.enqueue_everywhere(published.count, || Command::ToChannel {
                channel: channel.clone(),
                frame: published.frame.clone(),
                seq: published.seq,
                filter: filter.clone(),
            });
        }
        drop(directory);
        self.count_published();
        if published.count > 0 {
            self.wake_every_shard();
        }
        Ok(published.count)
    }

    /// Sends `event` to one client. Returns 1, or `NotFound` when no such client is connected.
    pub fn send_to_client(&self, client: ClientId, event: &Event) -> Result<usize> {
        self.check_open()?;
        let frame = event.encode()?;
        self.wait_for_room([self.shard_of(client)])?;
        let directory = self.directory();
        if !directory.contains(client) {
            return Err(Error::not_found(client));
        }
        self.count_published();
        let shard = self.shard_of(client);
        shard.send_to(Command::ToClient { client, frame }, 1);
        drop(directory);
        shard.wake();
        Ok(1)
    }

    /// Sends `event` to every connection of `user`; returns how many it was queued for.
    pub fn send_to_user(&self, user: &str, event: &Event) -> Result<usize> {
        self.check_open()?;
        validate_user(user)?;
        let frame = event.encode()?;
        self.wait_for_room(&self.shards)?;
        self.count_published();
        let count = self.directory().user_count(user);
        if count > 0 {
            let user: Arc<str> = user.into();
            self.to_every_shard(count, || Command::ToUser {
                user: user.clone(),
                frame: frame.clone(),
            });
        }
        Ok(count)
    }

    /// Sends `event` to every member of `channel`; returns how many it was queued for.
    /// The event gets an id (the caller's, or the engine's with `auto_ids`) and goes
    /// into the channel's history, even when nobody is subscribed right now.
    pub fn broadcast(&self, channel: &str, event: &Event) -> Result<usize> {
        self.publish_to_channel(channel, event, None)
    }

    /// Sends `event` to the members of `channel` whose metadata matches `filter` (JSON
    /// text; see [`Filter`]). The filter is evaluated on the reactor threads; the
    /// returned count is the number of members it is evaluated against. History keeps
    /// the filter, so a replay honours it too.
    pub fn broadcast_where(&self, channel: &str, filter: &str, event: &Event) -> Result<usize> {
        self.check_open()?;
        let filter = Arc::new(Filter::parse(filter)?);
        self.publish_to_channel(channel, event, Some(filter))
    }

    /// Sends `event` to every connected client; returns how many it was queued for.
    /// Like a channel event it gets an id and is kept in history (the engine-wide ring
    /// every client replays from).
    pub fn broadcast_all(&self, event: &Event) -> Result<usize> {
        self.check_open()?;
        event.validate()?;
        self.wait_for_room(&self.shards)?;
        let mut directory = self.directory();
        let published = directory.publish(Target::All, event, None);
        if published.count > 0 {
            self.enqueue_everywhere(published.count, || Command::ToAll {
                frame: published.frame.clone(),
                seq: published.seq,
            });
        }
        drop(directory);
        self.count_published();
        if published.count > 0 {
            self.wake_every_shard();
        }
        Ok(published.count)
    }

    /// Adds a client to a channel. `Ok(false)` when it was already a member.
    pub fn subscribe(&self, client: ClientId, channel: &str) -> Result<bool> {
        self.check_open()?;
        validate_channel(channel)?;
        self.wait_for_room([self.shard_of(client)])?;
        let channel: Arc<str> = channel.into();
        let mut directory = self.directory();
        let added = directory.subscribe(client, &channel, self.limits())?;
        if added {
            let shard = self.shard_of(client);
            shard.send(Command::Subscribe { client, channel });
            drop(directory);
            shard.wake();
        }
        Ok(added)
    }

    /// Removes a client from a channel. `Ok(false)` when it was not a member.
    pub fn unsubscribe(&self, client: ClientId, channel: &str) -> Result<bool> {
        self.check_open()?;
        validate_channel(channel)?;
        self.wait_for_room([self.shard_of(client)])?;
        let mut directory = self.directory();
        let removed = directory.unsubscribe(client, channel)?;
        if removed {
            let shard = self.shard_of(client);
            shard.send(Command::Unsubscribe {
                client,
                channel: channel.into(),
            });
            drop(directory);
            shard.wake();
        }
        Ok(removed)
    }

    /// Closes a client's stream (after a last attempt to send what is queued for it).
    /// The disconnect is reported with reason `server`.
    pub fn disconnect(&self, client: ClientId) -> Result<()> {
        self.end_client(client, DisconnectReason::Server)
    }

    fn end_client(&self, client: ClientId, reason: DisconnectReason) -> Result<()> {
        self.check_open()?;
        let mut directory = self.directory();
        // Gone from the directory at once: later sends to it fail with `NotFound`.
        if !directory.remove(client) {
            return Err(Error::not_found(client));
        }
        let shard = self.shard_of(client);
        shard.send(Command::Disconnect { client, reason });
        drop(directory);
        shard.wake();
        Ok(())
    }

    /// Clients connected now.
    pub fn client_count(&self) -> Result<usize> {
        self.check_open()?;
        Ok(self.directory().client_count())
    }

    /// Members of `channel` now.
    pub fn channel_count(&self, channel: &str) -> Result<usize> {
        self.check_open()?;
        validate_channel(channel)?;
        Ok(self.directory().channel_count(channel))
    }

    /// Connections of `user` now.
    pub fn user_count(&self, user: &str) -> Result<usize> {
        self.check_open()?;
        validate_user(user)?;
        Ok(self.directory().user_count(user))
    }

    /// Sets a channel's history limits (0 events or a zero age turns its history off),
    /// trimming what it holds now. The channel exists from then on, with or without
    /// members, until `close_channel` or `remove_empty_channels`.
    pub fn configure_channel(&self, channel: &str, history: HistoryLimits) -> Result<()> {
        self.check_open()?;
        validate_channel(channel)?;
        self.directory().configure_channel(&channel.into(), history);
        Ok(())
    }

    /// Replaces a client's metadata (a JSON object as text; `None` clears it). Sends and
    /// filters issued after this call see the new value.
    pub fn set_metadata(&self, client: ClientId, metadata: Option<&str>) -> Result<()> {
        self.check_open()?;
        let metadata = metadata.map(parse_metadata).transpose()?.map(Arc::new);
        self.wait_for_room([self.shard_of(client)])?;
        let directory = self.directory();
        if !directory.contains(client) {
            return Err(Error::not_found(client));
        }
        let shard = self.shard_of(client);
        shard.send(Command::SetMetadata { client, metadata });
        drop(directory);
        shard.wake();
        Ok(())
    }

    /// Unsubscribes every member of `channel` (with `disconnect`, closes their streams,
    /// reason `server`) and forgets the channel with its history. Returns how many
    /// clients were members; `NotFound`-free: an unknown channel gives 0.
    pub fn close_channel(&self, channel: &str, disconnect: bool) -> Result<usize> {
        self.check_open()?;
        validate_channel(channel)?;
        self.wait_for_room(&self.shards)?;
        let channel: Arc<str> = channel.into();
        let mut directory = self.directory();
        let members = directory.close_channel(&channel, disconnect);
        self.enqueue_everywhere(members, || Command::CloseChannel {
            channel: channel.clone(),
            disconnect,
        });
        drop(directory);
        self.wake_every_shard();
        Ok(members)
    }

    /// Forgets every channel without members, with its history and settings. Returns
    /// how many were removed.
    pub fn remove_empty_channels(&self) -> Result<usize> {
        self.check_open()?;
        Ok(self.directory().remove_empty_channels())
    }

    /// Every channel the engine knows (with members, history or settings), by name.
    pub fn channels(&self) -> Result<Vec<ChannelInfo>> {
        self.check_open()?;
        Ok(self.directory().channel_infos())
    }

    /// One client, as its reactor sees it now. `NotFound` when it is not connected.
    pub fn get_client(&self, client: ClientId) -> Result<ClientInfo> {
        self.check_query_allowed()?;
        if !self.directory().contains(client) {
            return Err(Error::not_found(client));
        }
        self.query(Scope::One(client))?
            .pop()
            .ok_or_else(|| Error::not_found(client))
    }

    /// Every connected client, by id.
    pub fn clients(&self) -> Result<Vec<ClientInfo>> {
        self.query(Scope::All)
    }

    /// The members of `channel`, by id (empty for an unknown channel).
    pub fn clients_in(&self, channel: &str) -> Result<Vec<ClientInfo>> {
        self.check_query_allowed()?;
        validate_channel(channel)?;
        self.query(Scope::Channel(channel.into()))
    }

    /// The connections of `user`, by id.
    pub fn clients_of(&self, user: &str) -> Result<Vec<ClientInfo>> {
        self.check_query_allowed()?;
        validate_user(user)?;
        self.query(Scope::User(user.into()))
    }

    /// Calls that wait for a reactor must not run in a forked child (no reactor there).
    fn check_same_process(&self) -> Result<()> {
        if std::process::id() != self.pid {
            return Err(Error::new(
                ErrorKind::ShutDown,
                "this engine was started in the parent process and has no threads after fork(): start one engine per process",
            ));
        }
        Ok(())
    }

    /// Queries wait for the reactors: not possible on a reactor thread itself.
    fn check_query_allowed(&self) -> Result<()> {
        self.check_open()?;
        self.check_same_process()?;
        if ON_REACTOR.with(Cell::get) {
            return Err(Error::invalid(
                "registry queries cannot run inside an event handler (it runs on the reactor thread)",
            ));
        }
        Ok(())
    }

    /// Asks the shards: each answers in turn with every command issued before it (so a
    /// query waits behind at most the bounded command queue and one flush pass, and
    /// sees every call made before it).
    fn query(&self, scope: Scope) -> Result<Vec<ClientInfo>> {
        self.check_query_allowed()?;
        let (reply, answers) = mpsc::channel();
        let shards: Vec<&Outbox> = match scope {
            Scope::One(client) => vec![self.shard_of(client)],
            _ => self.shards.iter().collect(),
        };
        for shard in shards {
            shard.send(Command::Query {
                scope: scope.clone(),
                reply: reply.clone(),
            });
            shard.wake();
        }
        drop(reply);
        let mut clients: Vec<ClientInfo> = answers.iter().flatten().collect();
        clients.sort_by_key(|c| c.id);
        Ok(clients)
    }

    /// The counters in Prometheus text exposition format (metrics named `sse_engine_*`).
    pub fn metrics(&self) -> String {
        let channels = self.directory().channels_known();
        crate::metrics::render(&self.stats(), channels)
    }

    /// The engine's counters.
    pub fn stats(&self) -> Stats {
        let open = self.directory().client_count();
        self.shared.counters.snapshot(open)
    }

    /// Registers (or with `None` removes) the lifecycle handler. It runs on a reactor
    /// thread and must not block. When this returns, every shard uses the new handler:
    /// the old one runs no more. Called from a handler itself, the call cannot wait (the
    /// reactor cannot wait for itself): the calling thread uses the new handler from the
    /// next event on, so with one reactor thread the old handler (and what it owns) may
    /// be freed before it returns; other reactor threads switch at their next turn.
    pub fn set_event_handler(&self, handler: Option<EventHandler>) -> Result<()> {
        self.check_open()?;
        self.check_same_process()?;
        reactor::replace_handler_here(&self.shared, &handler);
        let (applied, wait) = mpsc::channel();
        self.to_every_shard(0, || Command::SetHandler(handler.clone(), applied.clone()));
        drop(applied);
        if !ON_REACTOR.with(Cell::get) {
            // Each shard acknowledges by dropping its sender; a stopped shard drops it too.
            while wait.recv().is_ok() {}
        }
        Ok(())
    }

    /// Convenience for [`Engine::set_event_handler`] with a closure.
    pub fn on_event(
        &self,
        handler: impl Fn(&LifecycleEvent) + Send + Sync + 'static,
    ) -> Result<()> {
        self.set_event_handler(Some(Arc::new(handler)))
    }

    /// Stops taking clients, flushes queued bytes for up to `deadline`, then closes every
    /// client (reason `shutdown`) and stops the reactor threads. Every later call,
    /// including a second shutdown, returns `ShutDown`.
    pub fn shutdown(&self, deadline: Duration) -> Result<()> {
        self.shutdown_with(deadline, None)
    }

    /// Like [`Engine::shutdown`], first sending `last` to every client.
    pub fn shutdown_with(&self, deadline: Duration, last: Option<&Event>) -> Result<()> {
        self.check_open()?;
        let last = last.map(Event::encode).transpose()?;
        if ON_REACTOR.with(Cell::get) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "shutdown cannot be called from an event handler (it runs on the reactor thread)",
            ));
        }
        self.check_same_process()?;
        if self.closed.swap(true, Ordering::SeqCst) {
            return Err(Error::shut_down());
        }
        self.stop(Instant::now() + deadline, last);
        Ok(())
    }

    fn stop(&self, deadline: Instant, last: Option<Bytes>) {
        {
            // Taking the lock orders the shutdown after any connect that saw the engine open.
            let _directory = self.directory();
            for shard in &self.shards {
                shard.send(Command::Shutdown {
                    deadline,
                    last: last.clone(),
                });
            }
        }
        for shard in &self.shards {
            shard.wake_now();
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        if !ON_REACTOR.with(Cell::get) {
            for thread in threads {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // In a forked child the threads (and sockets) are the parent's: leave them be.
        if self.check_same_process().is_err() {
            return;
        }
        if !self.closed.swap(true, Ordering::SeqCst) {
            self.stop(Instant::now() + DROP_FLUSH_DEADLINE, None);
        }
    }
}

/// A random number from the standard library's per-process hash seed (no extra crate).
fn random_salt() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// Answers a refused hand-over with `503` and `Retry-After`, then closes the socket.
fn refuse_busy(stream: &std::net::TcpStream, retry_after_secs: u32) {
    let response = crate::http::busy_answer(retry_after_secs, false).to_http1();
    // Best effort on a fresh socket: the kernel buffer takes a few hundred bytes at once.
    let _ = sys::send_bytes(stream, &response);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    // Read what the client sent so closing sends FIN rather than RST, which could discard
    // the answer before the client reads it.
    let mut scratch = [0u8; 1024];
    while let Ok(n) = std::io::Read::read(&mut &*stream, &mut scratch) {
        if n == 0 {
            break;
        }
    }
}
