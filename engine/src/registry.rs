//! What the registry queries report about a client.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::lifecycle::ClientId;

/// A snapshot of one client, taken by its reactor thread when it answered the query.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientInfo {
    pub id: ClientId,
    pub user: Option<String>,
    /// Channels in the order the client joined them.
    pub channels: Vec<String>,
    pub metadata: Option<Map<String, Value>>,
    pub connected_at: SystemTime,
    pub remote_addr: Option<SocketAddr>,
    /// Bytes queued for the client and not yet taken by the kernel.
    pub queued_bytes: usize,
    /// The last event id the client has: of the last event with an id written to it,
    /// else the `Last-Event-ID` it connected with.
    pub last_event_id: Option<String>,
}

impl ClientInfo {
    /// The JSON form the C API and the bindings return:
    /// `{"id", "user", "channels", "metadata", "connected_at_ms", "remote_addr",
    /// "queued_bytes", "last_event_id"}` (absent values are `null`).
    pub fn to_json(&self) -> Value {
        let connected_at_ms = self
            .connected_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        json!({
            "id": self.id,
            "user": self.user,
            "channels": self.channels,
            "metadata": self.metadata,
            "connected_at_ms": connected_at_ms,
            "remote_addr": self.remote_addr.map(|a| a.to_string()),
            "queued_bytes": self.queued_bytes,
            "last_event_id": self.last_event_id,
        })
    }
}
