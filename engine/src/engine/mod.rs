//! The engine handle: validates calls, keeps the directory, and feeds the shards.
//!
//! This file holds the handle, its start and its shutdown; `connect`, `publish`,
//! `membership` and `queries` hold the calls by kind.

mod connect;
mod membership;
mod publish;
mod queries;

pub use connect::Refused;

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mio::Poll;

use crate::config::Config;
use crate::directory::{Directory, Limits};
use crate::error::{Error, ErrorKind, Result};
use crate::event::Event;
use crate::history::IdFormat;
use crate::lifecycle::{ClientId, EventHandler, LifecycleEvent};
use crate::reactor::command::Command;
use crate::reactor::queue::{self, Outbox, MAX_WAIT};
use crate::reactor::{self, Shard, Shared};
use crate::stats::Counters;

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
    running: Arc<Running>,
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
                config.threads,
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
            running: Arc::default(),
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            pid: std::process::id(),
        };
        for index in 0..config.threads {
            let poll = Poll::new().map_err(|e| Error::io("create poller", e))?;
            let (outbox, inbox) =
                queue::channel(&poll).map_err(|e| Error::io("create waker", e))?;
            let shard = Shard::new(poll, inbox, engine.shared.clone(), index == 0);
            let running = engine.running.guard();
            let thread = std::thread::Builder::new()
                .name(format!("sse-reactor-{index}"))
                .spawn(move || {
                    let _running = running;
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
        if let Some(failed) = self.failure() {
            return Err(failed);
        }
        if self.closed.load(Ordering::SeqCst) {
            Err(Error::shut_down())
        } else {
            Ok(())
        }
    }

    /// The error every call gets once a reactor thread panicked (see `reactor::run_thread`).
    fn failure(&self) -> Option<Error> {
        let failure = self.shared.failure.get()?;
        Some(Error::new(
            ErrorKind::ShutDown,
            format!(
                "the engine failed and takes no more calls ({failure}; its clients were \
                 closed): start a new engine"
            ),
        ))
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
        self.wait_for_room_for(shards, 0)
    }

    /// Like [`Engine::wait_for_room`], for a batch of `weight` (see [`crate::queue`]).
    fn wait_for_room_for<'a>(
        &'a self,
        shards: impl IntoIterator<Item = &'a Outbox>,
        weight: usize,
    ) -> Result<()> {
        if ON_REACTOR.with(Cell::get) {
            return Ok(());
        }
        let deadline = Instant::now() + MAX_WAIT;
        for shard in shards {
            if shard.lacks_room(weight) {
                // In a forked child nothing drains the queue (and its lock may be held).
                self.check_same_process()?;
                shard.wait_for_room(weight, deadline)?;
            }
        }
        Ok(())
    }

    /// Wakes the reactors in `shards`.
    fn wake(&self, shards: ShardSet) {
        for (index, shard) in self.shards.iter().enumerate() {
            if shards.contains(index) {
                shard.wake();
            }
        }
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
    /// client (reason `shutdown`) and stops the reactor threads; returns when they
    /// stopped. Every later call, including a second shutdown, returns `ShutDown`.
    pub fn shutdown(&self, deadline: Duration) -> Result<()> {
        self.shutdown_with(deadline, None)
    }

    /// Like [`Engine::shutdown`], first sending `last` to every client.
    ///
    /// On an engine that failed (a reactor thread panicked) it still stops the other
    /// reactors and closes their clients, then returns the failure.
    pub fn shutdown_with(&self, deadline: Duration, last: Option<&Event>) -> Result<()> {
        let failed = self.begin(deadline, last)?;
        self.join_reactors();
        failed.map_or(Ok(()), Err)
    }

    /// The shutdown of [`Engine::shutdown_with`] without waiting: from its return the
    /// engine takes no more calls (they return `ShutDown`) and its reactors flush and
    /// close their clients on their own; [`Engine::wait_shutdown`] waits for them. On a
    /// failed engine the shutdown begins all the same and the failure is returned.
    pub fn begin_shutdown(&self, deadline: Duration, last: Option<&Event>) -> Result<()> {
        self.begin(deadline, last)?.map_or(Ok(()), Err)
    }

    /// Waits until a begun shutdown has stopped every reactor thread (each client's
    /// last lifecycle event has been delivered then), for at most `timeout` (`None`: as
    /// long as it takes). `Ok(true)` when stopped, `Ok(false)` when the time ran out.
    /// `InvalidArgument` before any shutdown began, or from an event handler.
    pub fn wait_shutdown(&self, timeout: Option<Duration>) -> Result<bool> {
        if ON_REACTOR.with(Cell::get) {
            return Err(Error::invalid(
                "wait_shutdown cannot be called from an event handler (it runs on the reactor thread)",
            ));
        }
        if !self.closed.load(Ordering::SeqCst) {
            return Err(Error::invalid(
                "no shutdown has begun: call begin_shutdown first",
            ));
        }
        self.check_same_process()?;
        if !self.running.wait_until_none(timeout) {
            return Ok(false);
        }
        self.join_reactors();
        Ok(true)
    }

    /// Starts the shutdown; `Ok(Some(failure))` when it began on a failed engine.
    fn begin(&self, deadline: Duration, last: Option<&Event>) -> Result<Option<Error>> {
        let failed = self.failure();
        // A failed engine sends no last event: only its live reactors would get it.
        let last = match failed {
            None => {
                self.check_open()?;
                last.map(Event::encode).transpose()?
            }
            Some(_) => None,
        };
        if ON_REACTOR.with(Cell::get) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "shutdown cannot be called from an event handler (it runs on the reactor thread)",
            ));
        }
        self.check_same_process()?;
        if self.closed.swap(true, Ordering::SeqCst) {
            return Err(failed.unwrap_or_else(Error::shut_down));
        }
        self.stop_reactors(Instant::now() + deadline, last);
        Ok(failed)
    }

    fn stop_reactors(&self, deadline: Instant, last: Option<Bytes>) {
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
    }

    /// Joins the reactor threads (not from one of them: it would wait for itself).
    fn join_reactors(&self) {
        if ON_REACTOR.with(Cell::get) {
            return;
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for thread in threads {
            let _ = thread.join();
        }
    }
}

/// How many reactor threads still run: each holds a [`RunningGuard`] until it ends.
#[derive(Default)]
struct Running {
    count: Mutex<usize>,
    changed: Condvar,
}

impl Running {
    fn guard(self: &Arc<Self>) -> RunningGuard {
        *self.count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        RunningGuard(self.clone())
    }

    /// Waits until no reactor thread runs, for at most `timeout`; true when none does.
    fn wait_until_none(&self, timeout: Option<Duration>) -> bool {
        let count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        let still_running = |count: &mut usize| *count > 0;
        match timeout {
            None => {
                let count = self.changed.wait_while(count, still_running);
                *count.unwrap_or_else(|e| e.into_inner()) == 0
            }
            Some(timeout) => {
                let (count, _) = self
                    .changed
                    .wait_timeout_while(count, timeout, still_running)
                    .unwrap_or_else(|e| e.into_inner());
                *count == 0
            }
        }
    }
}

struct RunningGuard(Arc<Running>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        *self.0.count.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.0.changed.notify_all();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // In a forked child the threads (and sockets) are the parent's: leave them be.
        if self.check_same_process().is_err() {
            return;
        }
        if !self.closed.swap(true, Ordering::SeqCst) {
            self.stop_reactors(Instant::now() + DROP_FLUSH_DEADLINE, None);
        }
        self.join_reactors();
    }
}

/// A set of reactors, by index (an engine has at most [`crate::MAX_THREADS`] of them).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct ShardSet(u64);

const _: () = assert!(crate::config::MAX_THREADS <= u64::BITS as usize);

impl ShardSet {
    fn insert(&mut self, shard: usize) {
        self.0 |= 1 << shard;
    }

    fn contains(self, shard: usize) -> bool {
        self.0 & (1 << shard) != 0
    }
}

/// A random number from the standard library's per-process hash seed (no extra crate).
fn random_salt() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}
