//! Cluster mode: many engine processes, on one or many machines, share channels through
//! Redis (the `cluster` cargo feature). See `docs/cluster.md` for the design.
//!
//! Built so far: the broker thread ([`Broker`]: publishes queued to Redis, what
//! arrives on subscribed topics decoded and handed on), opening Redis with clear errors ([`open`]), the key layout of a
//! namespace ([`Namespace`]), what nodes tell each
//! other about a publish ([`Message`], the script's payload), and the one publish
//! script ([`publish`]) that numbers an event, keeps it in its channel's stream and
//! sends it to the nodes, atomically.

mod broker;
mod connect;
mod message;
mod publish;

pub use broker::{Broker, BrokerStats, Received};
pub use connect::{open, MIN_REDIS};
pub use message::{Message, Target};
pub use publish::{load_script, publish, Limits, Published};

/// The Redis keys and pub/sub channels of one namespace (a key prefix): namespaces on
/// one Redis never see each other's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    prefix: String,
}

impl Namespace {
    /// `prefix` must be non-empty and printable ASCII without spaces (it is part of
    /// every key and channel name).
    pub fn new(prefix: &str) -> crate::Result<Namespace> {
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(crate::Error::invalid(format!(
                "cluster prefix must be 1 or more printable ASCII characters without spaces, got {prefix:?}"
            )));
        }
        Ok(Namespace {
            prefix: prefix.to_string(),
        })
    }

    /// The hash with the namespace's epoch (`e`) and last sequence number (`s`).
    pub fn meta_key(&self) -> String {
        format!("{}:meta", self.prefix)
    }

    /// The stream that keeps `channel`'s history.
    pub fn stream_key(&self, channel: &str) -> String {
        format!("{}:stream:{channel}", self.prefix)
    }

    /// The pub/sub channel on which the nodes with members of `channel` listen.
    pub fn topic(&self, channel: &str) -> String {
        format!("{}:ch:{channel}", self.prefix)
    }
}
