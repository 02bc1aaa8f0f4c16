//! Lifecycle events the engine reports to the host.

use std::sync::Arc;

/// A client's id: unique for the life of the engine, never reused, below 2^53.
pub type ClientId = u64;

/// Why a client left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum DisconnectReason {
    /// The client closed the connection (orderly close: read returned 0).
    Closed = 0,
    /// A socket error (reset, broken pipe, any other read or write error).
    Error = 1,
    /// The client's queue passed `max_queue_bytes`: it reads too slowly.
    Slow = 2,
    /// The client accepted no bytes for `write_timeout` while bytes were queued.
    Timeout = 3,
    /// The host asked for it (`disconnect`, `close_channel`).
    Server = 4,
    /// The engine shut down.
    Shutdown = 5,
}

impl DisconnectReason {
    pub const ALL: [DisconnectReason; 6] = [
        DisconnectReason::Closed,
        DisconnectReason::Error,
        DisconnectReason::Slow,
        DisconnectReason::Timeout,
        DisconnectReason::Server,
        DisconnectReason::Shutdown,
    ];

    /// The reason's stable lower-case name: `closed`, `error`, `slow`, `timeout`, `server`, `shutdown`.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::Closed => "closed",
            DisconnectReason::Error => "error",
            DisconnectReason::Slow => "slow",
            DisconnectReason::Timeout => "timeout",
            DisconnectReason::Server => "server",
            DisconnectReason::Shutdown => "shutdown",
        }
    }
}

/// Something that happened to a client, reported to the host's handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleEvent {
    /// The client was registered and its response head queued.
    Connected { client: ClientId },
    /// The client is gone; its socket is closed.
    Disconnected {
        client: ClientId,
        reason: DisconnectReason,
    },
    /// The client's `Last-Event-ID` is not (or no longer) in history: it missed events
    /// that cannot be replayed and must resync (it was also sent the gap event, when
    /// one is configured). It then receives the live stream.
    Gap { client: ClientId },
    /// A stream-mode client has bytes for the host to take (`Engine::take_stream`).
    /// Reported once until the host takes; again after a take that left bytes behind.
    Readable { client: ClientId },
}

impl LifecycleEvent {
    pub fn client(&self) -> ClientId {
        match *self {
            LifecycleEvent::Connected { client }
            | LifecycleEvent::Disconnected { client, .. }
            | LifecycleEvent::Gap { client }
            | LifecycleEvent::Readable { client } => client,
        }
    }
}

/// The host's handler. It runs on a reactor thread and must not block: hand the event
/// to a queue of your own (the Node and Python bindings do) and return.
pub type EventHandler = Arc<dyn Fn(&LifecycleEvent) + Send + Sync>;
