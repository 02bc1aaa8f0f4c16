//! A reactor: one thread that owns its clients' sockets, queues and channel index.
//!
//! Callers talk to it through a bounded command queue and a `mio::Waker` ([`queue`],
//! [`command`]). Fan-out pushes a reference to one shared frame onto each recipient's
//! queue and marks the client dirty ([`fanout`]); dirty clients are flushed in chunks
//! between batches of commands, so events that arrive while a burst is being written
//! join the queues of the clients not yet flushed and leave in the same `sendmsg`.
//! A client's output is a socket or, in stream mode, bytes the host pulls ([`conn`]).
//!
//! The pieces: this file is the loop; `apply` carries out commands; `output` reads and
//! writes clients; `closing` ends them; `timers` keeps heartbeats, timeouts and expiry.

mod apply;
mod closing;
pub(crate) mod command;
mod conn;
mod fanout;
mod index;
mod output;
pub(crate) mod queue;
mod timers;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use mio::{Events, Poll};
use slab::Slab;

use crate::config::Config;
use crate::directory::Directory;
use crate::lifecycle::{ClientId, DisconnectReason, EventHandler, LifecycleEvent};
use crate::stats::Counters;

use conn::Conn;
use fanout::{Queueing, Work};
use index::Index;
use queue::{Inbox, Next, WAKER};
use timers::Timers;

/// Clients flushed in one turn of the reactor.
const FLUSH_CHUNK: usize = 128;
/// Most live events one client gets queued in one flush pass (from when clients become
/// dirty until every one was flushed): once a client has this many, no more commands are
/// applied until the pass is over. However fast callers send, a client's queue grows by
/// at most this many events per pass (a batch command, applied whole, may add its own
/// events for that client's channels past it), so a reader that keeps up is never
/// dropped as slow because a big channel takes many turns to flush. Commands that reach
/// different clients (one-member channels) do not end the pass: their events pile up
/// on the dirty clients not yet flushed and leave in one `sendmsg` each.
const EVENTS_PER_PASS: u32 = 64;
/// Commands one turn applies, whatever they queue. Between two turns the reactor
/// flushes sockets, reads, runs timers and answers queries, whatever callers keep
/// sending.
const TURN_COMMANDS: usize = 64;
/// Past [`TURN_COMMANDS`], a turn goes on applying commands while they queued fewer
/// frames than this in all: commands for one client each (one-member channels) are
/// cheap to apply, and only when many are applied between two flushes of a client do
/// its events share a `sendmsg`.
const TURN_FRAMES: usize = 4096;

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

/// What a reactor shares with the engine handle.
pub(crate) struct Shared {
    pub config: Config,
    pub directory: Mutex<Directory>,
    pub counters: Counters,
    /// Set when a reactor thread panicked: the engine failed closed (see `run_thread`).
    pub failure: OnceLock<String>,
}

impl Shared {
    fn queueing(&self) -> Queueing<'_> {
        Queueing {
            max_queue_bytes: self.config.max_queue_bytes,
            counters: &self.counters,
        }
    }
}

pub(crate) struct Shard {
    poll: Poll,
    inbox: Inbox,
    shared: Arc<Shared>,
    conns: Slab<Conn>,
    by_id: HashMap<ClientId, usize>,
    channels: Index,
    users: Index,
    work: Work,
    blocked_count: usize,
    now: Instant,
    timers: Timers,
    scratch: Box<[u8; 4096]>,
}

/// What one turn of the reactor left.
struct Turn {
    /// The batch ended with commands still queued.
    more_commands: bool,
    /// Every handle of the engine is gone.
    handle_gone: bool,
}

/// Runs a reactor thread. A panic in it (a bug) must not leave clients that nobody
/// serves while the engine still counts them: the engine fails closed. Every later call
/// fails with a message saying so; the reactor's sockets were closed as it unwound, and
/// each of its clients leaves the directory and is reported `error`; the other reactors'
/// clients are closed with the engine.
pub(crate) fn run_thread(shard: Shard, index: usize, reactors: usize) {
    let shared = shard.shared.clone();
    let Err(panic) = catch_unwind(AssertUnwindSafe(move || shard.run())) else {
        return;
    };
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    let _ = shared
        .failure
        .set(format!("reactor thread {index} panicked: {what}"));
    Counters::add(&shared.counters.reactor_failures, 1);
    let lost = shared
        .directory
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove_clients_where(|id| id % reactors as u64 == index as u64);
    for client in lost {
        let reason = DisconnectReason::Error;
        shared.counters.disconnected(reason);
        emit(LifecycleEvent::Disconnected { client, reason });
    }
}

/// Calls this reactor thread's handler with `event`.
fn emit(event: LifecycleEvent) {
    // Cloned out first: the handler may replace itself (see `replace_handler_here`).
    let handler = HANDLER.with(|slot| slot.borrow().1.clone());
    if let Some(handler) = handler {
        // A panicking handler must not take the reactor down with it.
        let _ = catch_unwind(AssertUnwindSafe(|| handler(&event)));
    }
}

impl Shard {
    /// `expires_history`: this shard also drops expired history now and then (one
    /// shard of the engine does).
    pub fn new(poll: Poll, inbox: Inbox, shared: Arc<Shared>, expires_history: bool) -> Shard {
        let now = Instant::now();
        let timers = Timers::new(now, shared.config.heartbeat, expires_history);
        Shard {
            poll,
            inbox,
            shared,
            conns: Slab::new(),
            by_id: HashMap::new(),
            channels: Index::default(),
            users: Index::default(),
            work: Work::default(),
            blocked_count: 0,
            now,
            timers,
            scratch: Box::new([0; 4096]),
        }
    }

    /// Runs until shutdown completes (or the engine handle is gone). Each turn does a
    /// bounded amount of work: socket events, commands, one chunk of flushes, timers.
    /// While work is left the next poll does not sleep.
    pub fn run(mut self) {
        HANDLER.with(|slot| slot.borrow_mut().0 = Arc::as_ptr(&self.shared) as usize);
        let mut events = Events::with_capacity(1024);
        let mut busy = false;
        loop {
            let timeout = if busy {
                Some(Duration::ZERO)
            } else {
                self.timers.poll_timeout(Instant::now())
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    // The poller itself failed: nothing can be served any more. The
                    // engine fails closed, as for a panic (see `run_thread`).
                    panic!("the reactor's poller failed: {e}");
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
            if let Some(deadline) = self.timers.shutdown {
                if turn.handle_gone || self.all_flushed() || self.now >= deadline {
                    self.close_all(DisconnectReason::Shutdown);
                    return;
                }
            }
        }
    }

    /// Applies queued commands (as many as the turn and the current flush pass allow,
    /// see [`EVENTS_PER_PASS`]), then flushes up to one chunk of dirty clients. Events
    /// that arrive while a burst is being written join the queues of the clients not yet
    /// flushed and leave in the same `sendmsg`.
    fn turn(&mut self) -> Turn {
        let mut turn = Turn {
            more_commands: true,
            handle_gone: false,
        };
        if self.work.dirty.is_empty() {
            self.work.new_pass();
        }
        self.inbox.begin_turn();
        self.work.turn_frames = 0;
        let mut applied = 0;
        while self.work.pass_most < EVENTS_PER_PASS
            && (applied < TURN_COMMANDS || self.work.turn_frames < TURN_FRAMES)
        {
            match self.inbox.next() {
                Next::Command(command) => {
                    applied += 1;
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
        self.shared.counters.raise_high_water(self.work.high_water);
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

    fn directory(&self) -> std::sync::MutexGuard<'_, Directory> {
        self.shared
            .directory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, event: LifecycleEvent) {
        emit(event);
    }
}
