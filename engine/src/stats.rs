//! Counters kept by the engine, readable at any time without a round trip.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::lifecycle::DisconnectReason;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub connections_total: AtomicU64,
    pub refused_total: AtomicU64,
    pub disconnects: [AtomicU64; 6],
    pub events_published: AtomicU64,
    pub frames_queued: AtomicU64,
    pub bytes_written: AtomicU64,
    pub write_calls: AtomicU64,
    pub heartbeats: AtomicU64,
    pub queue_high_water: AtomicU64,
    pub events_replayed: AtomicU64,
    pub gaps: AtomicU64,
    pub reactor_failures: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn disconnected(&self, reason: DisconnectReason) {
        Self::add(&self.disconnects[reason as usize], 1);
    }

    pub fn raise_high_water(&self, queued: u64) {
        self.queue_high_water.fetch_max(queued, Relaxed);
    }

    pub fn snapshot(&self, connections_open: usize) -> Stats {
        let disconnects = std::array::from_fn(|i| self.disconnects[i].load(Relaxed));
        Stats {
            connections_open: connections_open as u64,
            connections_total: self.connections_total.load(Relaxed),
            refused_total: self.refused_total.load(Relaxed),
            disconnects,
            events_published: self.events_published.load(Relaxed),
            frames_queued: self.frames_queued.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            write_calls: self.write_calls.load(Relaxed),
            heartbeats: self.heartbeats.load(Relaxed),
            queue_high_water: self.queue_high_water.load(Relaxed),
            events_replayed: self.events_replayed.load(Relaxed),
            gaps: self.gaps.load(Relaxed),
            reactor_failures: self.reactor_failures.load(Relaxed),
        }
    }
}

/// A snapshot of the engine's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Clients connected now.
    pub connections_open: u64,
    /// Clients accepted since start.
    pub connections_total: u64,
    /// Hand-overs refused by a limit (answered 503).
    pub refused_total: u64,
    /// Disconnects by reason, indexed by `DisconnectReason as usize`.
    pub disconnects: [u64; 6],
    /// Events published (one per send/broadcast call that reached at least the engine).
    pub events_published: u64,
    /// Frames queued to clients (one per recipient per event, heartbeats included).
    pub frames_queued: u64,
    /// Bytes written to client sockets.
    pub bytes_written: u64,
    /// `sendmsg` calls made on client sockets; `frames_queued / write_calls` shows coalescing.
    pub write_calls: u64,
    /// Heartbeat comments queued.
    pub heartbeats: u64,
    /// The most bytes any one client has had queued at once since the engine started
    /// (its queue just before a write; it only grows).
    pub queue_high_water: u64,
    /// Events sent from history to reconnecting clients.
    pub events_replayed: u64,
    /// Reconnects whose `Last-Event-ID` was not in history.
    pub gaps: u64,
    /// Reactor threads that stopped on a panic (a bug): after one, the engine has
    /// failed closed (its clients were closed, every call fails). 0 in a healthy engine.
    pub reactor_failures: u64,
}

impl Stats {
    pub fn disconnects_by(&self, reason: DisconnectReason) -> u64 {
        self.disconnects[reason as usize]
    }
}
