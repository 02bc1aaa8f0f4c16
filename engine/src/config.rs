//! Engine configuration and per-connection options.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use crate::channel_set::ChannelSet;
use crate::error::{Error, Result};
use crate::event::{validate_channel, validate_event_id, validate_user, Event};
use crate::history::HistoryLimits;
use crate::http;

/// Most reactor threads an engine may run.
pub const MAX_THREADS: usize = 64;
/// Smallest per-client queue limit accepted, in bytes.
pub const MIN_QUEUE_BYTES: usize = 1024;

/// How the engine runs. `Config::default()` gives the defaults: each setting's default
/// and unit are in [`schema::CONFIG_FIELDS`](crate::schema::CONFIG_FIELDS) (shown in
/// README.md), which a test keeps equal to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Reactor threads (shards); clients are spread over them.
    pub threads: usize,
    /// Interval of the heartbeat comment sent to idle clients; `None` = off.
    pub heartbeat: Option<Duration>,
    /// `retry:` hint (milliseconds) sent to every client right after connecting; `None` = none.
    pub retry: Option<u64>,
    /// Bytes a client may have queued; past it the client is dropped as `slow`.
    pub max_queue_bytes: usize,
    /// Most clients connected at once; `None` = no limit. Beyond it hand-over is refused (503).
    pub max_clients: Option<usize>,
    /// Most clients in one channel; `None` = no limit. Beyond it hand-over is refused (503).
    pub max_clients_per_channel: Option<usize>,
    /// A client with queued bytes that accepts none for this long is dropped as `timeout`.
    /// It also sets `TCP_USER_TIMEOUT` and keepalive on handed-over sockets, so a peer
    /// that vanished (no FIN, no RST) is dropped as `timeout` within about this long,
    /// even while nothing is sent. `None` = never.
    pub write_timeout: Option<Duration>,
    /// Seconds sent in `Retry-After` with the 503 answer to a refused hand-over.
    pub busy_retry_after_secs: u32,
    /// Give events published to a channel or to all an engine id when the caller gives
    /// none (format in [`crate::history`]).
    pub auto_ids: bool,
    /// History kept per channel (and for `broadcast_all`): most events and oldest age;
    /// 0 turns history off. `configure_channel` sets other limits for one channel.
    pub history: HistoryLimits,
    /// Most events replayed to a reconnecting client at once; the rest follows as the
    /// client drains its queue.
    pub max_replay: usize,
    /// Name of the event sent to a client whose `Last-Event-ID` is not in history
    /// (its data: `{"lastEventId": "..."}`); `None` = send nothing
    /// (the host still gets the `gap` lifecycle event).
    pub gap_event: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            threads: 1,
            heartbeat: Some(Duration::from_secs(15)),
            retry: None,
            max_queue_bytes: 1024 * 1024,
            max_clients: None,
            max_clients_per_channel: None,
            write_timeout: Some(Duration::from_secs(30)),
            busy_retry_after_secs: 5,
            auto_ids: true,
            history: HistoryLimits {
                max_events: 1000,
                max_age: Duration::from_secs(300),
            },
            max_replay: 1000,
            gap_event: Some("sse-gap".into()),
        }
    }
}

impl Config {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.threads == 0 || self.threads > MAX_THREADS {
            return Err(Error::out_of_range(format!(
                "threads must be between 1 and {MAX_THREADS}, got {}",
                self.threads
            )));
        }
        if self.heartbeat == Some(Duration::ZERO) {
            return Err(Error::out_of_range(
                "heartbeat interval must be positive (use None to turn heartbeats off)",
            ));
        }
        if self.write_timeout == Some(Duration::ZERO) {
            return Err(Error::out_of_range(
                "write timeout must be positive (use None for no timeout)",
            ));
        }
        if self.max_replay == 0 {
            return Err(Error::out_of_range("max_replay must be at least 1"));
        }
        if let Some(name) = &self.gap_event {
            Event::new("").named(name.as_str()).validate()?;
        }
        if self.max_queue_bytes < MIN_QUEUE_BYTES {
            return Err(Error::out_of_range(format!(
                "max_queue_bytes must be at least {MIN_QUEUE_BYTES}, got {}",
                self.max_queue_bytes
            )));
        }
        Ok(())
    }
}

/// How one connection is handed over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Channels the client joins at once.
    pub channels: Vec<String>,
    /// The user this connection belongs to (one user may hold many connections).
    pub user: Option<String>,
    /// Application metadata: a JSON object, as text.
    pub metadata: Option<String>,
    /// Extra response headers (name, value); also the headers the framework already set.
    pub headers: Vec<(String, String)>,
    /// The `Last-Event-ID` the client sent (header, or a query parameter on first connect).
    pub last_event_id: Option<String>,
    /// `retry:` hint for this client (milliseconds); overrides [`Config::retry`].
    pub retry: Option<u64>,
    /// The host already wrote the HTTP response head; the engine writes only the stream.
    pub head_sent: bool,
}

/// Connect options checked and turned into what a shard stores.
#[derive(Debug)]
pub(crate) struct ValidatedConnect {
    pub channels: ChannelSet,
    pub user: Option<Arc<str>>,
    pub metadata: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
    pub last_event_id: Option<String>,
    pub head_sent: bool,
    /// Response head and retry hint: the first bytes the client receives.
    pub preamble: Bytes,
}

impl ConnectOptions {
    pub(crate) fn validate(&self, config: &Config) -> Result<ValidatedConnect> {
        let mut channels = ChannelSet::new();
        for channel in &self.channels {
            validate_channel(channel)?;
            channels.insert(channel.as_str().into());
        }
        if let Some(user) = &self.user {
            validate_user(user)?;
        }
        let metadata = match &self.metadata {
            None => None,
            Some(text) => Some(Arc::new(parse_metadata(text)?)),
        };
        // An empty Last-Event-ID is what a client sends when it has none.
        let last_event_id = self.last_event_id.as_deref().filter(|id| !id.is_empty());
        if let Some(id) = last_event_id {
            validate_event_id(id)
                .map_err(|e| Error::invalid(format!("Last-Event-ID: {}", e.message())))?;
        }
        if self.head_sent && !self.headers.is_empty() {
            return Err(Error::invalid(
                "headers were given but head_sent says the response head is already written",
            ));
        }
        let mut preamble = BytesMut::new();
        // The head's rules (and the header checks) are in `http`.
        let head = http::socket_head(&self.headers)?;
        if !self.head_sent {
            head.write_http1(&mut preamble);
        }
        if let Some(retry) = self.retry.or(config.retry) {
            preamble.put_slice(format!("retry: {retry}\n\n").as_bytes());
        }
        Ok(ValidatedConnect {
            channels,
            user: self.user.as_deref().map(Into::into),
            metadata,
            last_event_id: last_event_id.map(str::to_owned),
            head_sent: self.head_sent,
            preamble: preamble.freeze(),
        })
    }
}

/// Parses client metadata: it must be a JSON object.
pub(crate) fn parse_metadata(text: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    crate::json::parse_object(text, "metadata")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preamble_has_sse_head_then_caller_headers_then_retry() {
        let opts = ConnectOptions {
            headers: vec![("X-Trace".into(), "abc".into())],
            retry: Some(2000),
            ..Default::default()
        };
        let v = opts.validate(&Config::default()).unwrap();
        let text = String::from_utf8(v.preamble.to_vec()).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"));
        assert!(text.contains("X-Accel-Buffering: no\r\nX-Trace: abc\r\n\r\nretry: 2000\n\n"));
    }

    #[test]
    fn head_sent_writes_only_the_retry_hint() {
        let opts = ConnectOptions {
            head_sent: true,
            ..Default::default()
        };
        let config = Config {
            retry: Some(10),
            ..Config::default()
        };
        let v = opts.validate(&config).unwrap();
        assert_eq!(&v.preamble[..], b"retry: 10\n\n");
    }

    #[test]
    fn bad_headers_are_rejected() {
        for (name, value) in [
            ("X-A", "a\r\nInjected: 1"),
            ("X-A", "a\nb"),
            ("Bad Name", "v"),
            ("", "v"),
            ("content-type", "text/html"),
            ("Connection", "close"),
        ] {
            let opts = ConnectOptions {
                headers: vec![(name.into(), value.into())],
                ..Default::default()
            };
            assert!(opts.validate(&Config::default()).is_err(), "{name:?}");
        }
    }

    #[test]
    fn metadata_must_be_an_object() {
        assert!(parse_metadata("{\"a\":1}").is_ok());
        assert!(parse_metadata("[1]").is_err());
        assert!(parse_metadata("{").is_err());
    }

    #[test]
    fn duplicate_channels_collapse() {
        let opts = ConnectOptions {
            channels: vec!["a".into(), "a".into(), "b".into()],
            ..Default::default()
        };
        assert_eq!(
            opts.validate(&Config::default())
                .unwrap()
                .channels
                .iter()
                .count(),
            2
        );
    }
}
