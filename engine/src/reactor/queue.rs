//! The command queue between callers and one reactor, and its bound.
//!
//! Callers push commands and wake the reactor (one `mio::Waker` wake-up per batch, not
//! per command). What is queued and not yet applied is weighed by the work it makes (a
//! fixed part per command, its frame, and a part per recipient of a fan-out), so the
//! bound is about time as much as memory; past [`MAX_BACKLOG`] a publishing caller waits until the reactor has
//! applied enough to make room, so a publisher that outruns the reactor is slowed to its
//! pace instead of growing the process. The reactor applies commands in batches between
//! socket flushes, so it frees room continuously; a caller that finds no room within
//! [`MAX_WAIT`] (the reactor is stuck, e.g. in a handler that blocks) gets
//! `LimitReached` and nothing was queued.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use mio::{Poll, Token, Waker};

use super::command::Command;
use crate::error::{Error, ErrorKind, Result};

/// The reactor's waker token; no client gets it.
pub(crate) const WAKER: Token = Token(usize::MAX);
/// Most weight queued for one reactor before publishing callers wait for room.
pub(crate) const MAX_BACKLOG: usize = 1024 * 1024;
/// What a command weighs besides its frame (its own size and the work of applying it).
const COMMAND_WEIGHT: usize = 256;
/// What each recipient of a fan-out adds (queueing the frame, then writing it).
const RECIPIENT_WEIGHT: usize = 4;
/// Longest a publishing caller waits for room before giving up with `LimitReached`.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(1);

impl Command {
    fn weight(&self, recipients: usize) -> usize {
        COMMAND_WEIGHT
            + RECIPIENT_WEIGHT.saturating_mul(recipients)
            + match self {
                Command::ToClient { frame, .. }
                | Command::ToUser { frame, .. }
                | Command::ToChannel { frame, .. }
                | Command::ToAll { frame, .. } => frame.len(),
                _ => 0,
            }
    }
}

/// What is queued and not yet applied, and the callers waiting for room.
#[derive(Default)]
struct Backlog {
    weight: AtomicUsize,
    waiters: AtomicUsize,
    /// The reactor stopped: nothing will free room any more, and nobody must wait.
    stopped: AtomicBool,
    lock: Mutex<()>,
    room: Condvar,
}

impl Backlog {
    fn notify(&self) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.room.notify_all();
    }
}

/// The callers' end.
pub(crate) struct Outbox {
    /// Each command with its weight.
    sender: Sender<(usize, Command)>,
    waker: Waker,
    wake_pending: Arc<AtomicBool>,
    backlog: Arc<Backlog>,
}

/// The reactor's end.
pub(crate) struct Inbox {
    receiver: Receiver<(usize, Command)>,
    wake_pending: Arc<AtomicBool>,
    backlog: Arc<Backlog>,
    /// Weight applied since the last `release`.
    applied: usize,
}

/// What the reactor finds in its queue.
pub(crate) enum Next {
    Command(Command),
    Empty,
    /// Every caller's end is gone.
    Closed,
}

/// A queue whose waker is registered with `poll`.
pub(crate) fn channel(poll: &Poll) -> io::Result<(Outbox, Inbox)> {
    let waker = Waker::new(poll.registry(), WAKER)?;
    let (sender, receiver) = mpsc::channel();
    let wake_pending = Arc::new(AtomicBool::new(false));
    let backlog = Arc::new(Backlog::default());
    let outbox = Outbox {
        sender,
        waker,
        wake_pending: wake_pending.clone(),
        backlog: backlog.clone(),
    };
    let inbox = Inbox {
        receiver,
        wake_pending,
        backlog,
        applied: 0,
    };
    Ok((outbox, inbox))
}

impl Outbox {
    /// Queues a command (never waits: callers may hold the directory lock).
    pub fn send(&self, command: Command) {
        self.send_to(command, 0);
    }

    /// Queues a fan-out command that reaches about `recipients` clients of this reactor.
    pub fn send_to(&self, command: Command, recipients: usize) {
        let weight = command.weight(recipients);
        self.backlog.weight.fetch_add(weight, Ordering::SeqCst);
        if self.sender.send((weight, command)).is_err() {
            // The reactor already stopped; the command has nothing to act on.
            self.backlog.weight.fetch_sub(weight, Ordering::SeqCst);
        }
    }

    /// Wakes the reactor unless a wake-up is already on its way.
    pub fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::SeqCst) {
            let _ = self.waker.wake();
        }
    }

    /// Wakes the reactor even if a wake-up is thought to be on its way.
    pub fn wake_now(&self) {
        let _ = self.waker.wake();
    }

    /// The backlog is over its bound and the reactor still runs.
    pub fn is_full(&self) -> bool {
        self.backlog.weight.load(Ordering::SeqCst) > MAX_BACKLOG
            && !self.backlog.stopped.load(Ordering::SeqCst)
    }

    /// Waits until the backlog is under its bound (at once in the common case), at most
    /// until `deadline`.
    pub fn wait_for_room(&self, deadline: Instant) -> Result<()> {
        let backlog = &*self.backlog;
        let full = || self.is_full();
        if !full() {
            return Ok(());
        }
        backlog.waiters.fetch_add(1, Ordering::SeqCst);
        let mut guard = backlog.lock.lock().unwrap_or_else(|e| e.into_inner());
        let result = loop {
            if !full() {
                break Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Err(Error::new(
                    ErrorKind::LimitReached,
                    format!(
                        "the engine's command queue stayed full for {} ms (its reactor is not \
                         keeping up, or a handler blocks it): nothing was sent",
                        MAX_WAIT.as_millis()
                    ),
                ));
            }
            guard = backlog
                .room
                .wait_timeout(guard, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        drop(guard);
        backlog.waiters.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

impl Inbox {
    /// Starts a turn: wake-ups from here on are not assumed to be on their way.
    pub fn begin_turn(&self) {
        self.wake_pending.store(false, Ordering::SeqCst);
    }

    pub fn next(&mut self) -> Next {
        match self.receiver.try_recv() {
            Ok((weight, command)) => {
                self.applied += weight;
                Next::Command(command)
            }
            Err(TryRecvError::Empty) => Next::Empty,
            Err(TryRecvError::Disconnected) => Next::Closed,
        }
    }

    /// Gives the weight of the commands taken since the last call back to the callers,
    /// waking those that wait for room.
    pub fn release(&mut self) {
        let weight = std::mem::take(&mut self.applied);
        if weight == 0 {
            return;
        }
        let left = self.backlog.weight.fetch_sub(weight, Ordering::SeqCst) - weight;
        if left <= MAX_BACKLOG && self.backlog.waiters.load(Ordering::SeqCst) > 0 {
            self.backlog.notify();
        }
    }
}

impl Drop for Inbox {
    /// The reactor stopped: no caller may wait for room any more.
    fn drop(&mut self) {
        self.backlog.stopped.store(true, Ordering::SeqCst);
        self.backlog.notify();
    }
}
