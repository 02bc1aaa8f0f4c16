//! The command protocol between the engine handle and a reactor.

use std::net::SocketAddr;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::config::ValidatedConnect;
use crate::directory::Replay;
use crate::filter::Filter;
use crate::lifecycle::{ClientId, DisconnectReason, EventHandler};
use crate::registry::ClientInfo;
use crate::sys::SocketId;

/// A client handed to a reactor.
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

/// One event of a batch publish, for the members of one channel on this reactor.
pub(crate) struct ChannelEvent {
    pub channel: Arc<str>,
    pub frame: Bytes,
    /// As in [`Command::ToChannel`].
    pub seq: u64,
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
    /// Several channel events in publish order (a batch publish): each as a
    /// `ToChannel` without a filter. No channel appears twice in one command.
    ToChannels(Vec<ChannelEvent>),
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
    SetHandler(Option<EventHandler>, Sender<()>),
    Shutdown {
        deadline: Instant,
        last: Option<Bytes>,
    },
}
