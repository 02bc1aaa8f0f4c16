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
//!
//! A batch publish (`Engine::broadcast_many`) waits for room for its whole weight, and
//! is then queued whole under one lock, so its events stay in order and together. A
//! batch heavier than the bound cannot ever fit: it waits until the queue is empty and
//! is admitted alone (it holds what the caller's own items hold, so memory stays
//! bounded by what the caller passed).

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
/// What one event of a batch command weighs besides its frame and its recipients.
pub(crate) const BATCH_ITEM_WEIGHT: usize = 32;
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
                Command::ToChannels(events) => events
                    .iter()
                    .map(|e| BATCH_ITEM_WEIGHT + e.frame.len())
                    .sum(),
                _ => 0,
            }
    }
}

/// What a batch of events of these data sizes will weigh at least, before their frames
/// and recipients are known: what a caller waits for room for.
pub(crate) fn batch_weight(data_lens: impl Iterator<Item = usize>) -> usize {
    data_lens.fold(COMMAND_WEIGHT, |sum, len| {
        sum.saturating_add(BATCH_ITEM_WEIGHT + len)
    })
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

    /// The backlog has no room for `weight` more (0: it is over its bound) and the
    /// reactor still runs. An empty backlog always has room, however heavy `weight` is.
    pub fn lacks_room(&self, weight: usize) -> bool {
        let queued = self.backlog.weight.load(Ordering::SeqCst);
        queued > 0
            && queued.saturating_add(weight) > MAX_BACKLOG
            && !self.backlog.stopped.load(Ordering::SeqCst)
    }

    /// Waits until the backlog has room for `weight` more (at once in the common case),
    /// at most until `deadline`.
    pub fn wait_for_room(&self, weight: usize, deadline: Instant) -> Result<()> {
        let backlog = &*self.backlog;
        let full = || self.lacks_room(weight);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::command::ChannelEvent;
    use bytes::Bytes;

    fn batch(events: usize, size: usize) -> Command {
        Command::ToChannels(
            (0..events)
                .map(|_| ChannelEvent {
                    channel: "c".into(),
                    frame: Bytes::from(vec![b'x'; size]),
                    seq: 0,
                })
                .collect(),
        )
    }

    #[test]
    fn a_batch_waits_for_room_for_all_of_it_and_an_oversize_one_for_an_empty_queue() {
        let poll = Poll::new().unwrap();
        let (outbox, mut inbox) = channel(&poll).unwrap();
        // An empty queue takes anything, however heavy.
        assert!(!outbox.lacks_room(10 * MAX_BACKLOG));
        outbox.send_to(batch(100, 1000), 100);
        let queued = outbox.backlog.weight.load(Ordering::SeqCst);
        assert_eq!(
            queued,
            COMMAND_WEIGHT + 100 * (BATCH_ITEM_WEIGHT + 1000 + RECIPIENT_WEIGHT)
        );
        // Now a batch needs room for its own weight; an oversize one waits for empty.
        assert!(!outbox.lacks_room(0));
        assert!(!outbox.lacks_room(MAX_BACKLOG - queued));
        assert!(outbox.lacks_room(MAX_BACKLOG - queued + 1));
        assert!(outbox.lacks_room(10 * MAX_BACKLOG));
        let deadline = Instant::now() + Duration::from_millis(20);
        let err = outbox
            .wait_for_room(10 * MAX_BACKLOG, deadline)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LimitReached);
        // Once the reactor applied it, the queue is empty again.
        assert!(matches!(
            inbox.next(),
            Next::Command(Command::ToChannels(_))
        ));
        inbox.release();
        assert!(!outbox.lacks_room(10 * MAX_BACKLOG));
        assert_eq!(
            batch_weight([10, 20].into_iter()),
            COMMAND_WEIGHT + 2 * BATCH_ITEM_WEIGHT + 30
        );
    }
}
