//! Engine settings: `sse_config`, its defaults (`sse_config_init`) and its conversion to
//! the engine's `Config`.

use std::ffi::c_char;
use std::time::Duration;

use ::sse_engine::{Config, HistoryLimits};

use crate::convert::{opt_arg, opt_text, out};
use crate::status::{call, sse_status, Failure};

/// Engine settings. Fill with sse_config_init, then change what you need. Durations are
/// whole milliseconds (`_ms`) or seconds (`_s`), as each name says.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sse_config {
    /// Reactor threads (default 1, at most 64).
    pub threads: u32,
    /// Heartbeat comment interval in milliseconds (default 15000; 0 = off).
    pub heartbeat_ms: u32,
    /// `retry:` hint sent to each client on connect, milliseconds (default 0 = none).
    pub retry_ms: u32,
    /// Drop a client that accepts no bytes for this long, milliseconds (default 30000; 0 = never).
    /// Also sets TCP_USER_TIMEOUT and keepalive on handed-over sockets, so a peer that
    /// vanished without FIN or RST is dropped within about this long (reason timeout).
    pub write_timeout_ms: u32,
    /// Seconds in the Retry-After header of the 503 answer to a refused hand-over (default 5).
    pub busy_retry_after_s: u32,
    /// Bytes a client may have queued before it is dropped as slow (default 1048576 = 1 MiB,
    /// at least 1024).
    pub max_queue_bytes: usize,
    /// Most clients at once (default 0 = unlimited).
    pub max_clients: usize,
    /// Most clients per channel (default 0 = unlimited).
    pub max_clients_per_channel: usize,
    /// Give channel and broadcast-all events an engine id (`<epoch>-<seq>`) when the
    /// caller gives none (default true).
    pub auto_ids: bool,
    /// History kept per channel (and for broadcast-to-all): most events (default 1000;
    /// 0 turns history off).
    pub history_max_events: u32,
    /// History kept per channel: oldest age in milliseconds (default 300000; 0 turns
    /// history off).
    pub history_max_age_ms: u32,
    /// Most events replayed to a reconnecting client at once (default 1000, at least 1).
    pub max_replay: u32,
    /// Name of the event sent to a client whose Last-Event-ID is not in history
    /// (default "sse-gap"; NULL = none). Copied by sse_engine_new.
    pub gap_event: *const c_char,
}

/// Fills `config` with the defaults.
#[no_mangle]
pub extern "C" fn sse_config_init(config: *mut sse_config) -> sse_status {
    call(|| {
        let d = Config::default();
        let ms = |d: Option<Duration>| d.map_or(0, |d| d.as_millis() as u32);
        let value = sse_config {
            threads: d.threads as u32,
            heartbeat_ms: ms(d.heartbeat),
            retry_ms: d.retry.unwrap_or(0) as u32,
            write_timeout_ms: ms(d.write_timeout),
            busy_retry_after_s: d.busy_retry_after_secs,
            max_queue_bytes: d.max_queue_bytes,
            max_clients: d.max_clients.unwrap_or(0),
            max_clients_per_channel: d.max_clients_per_channel.unwrap_or(0),
            auto_ids: d.auto_ids,
            history_max_events: d.history.max_events as u32,
            history_max_age_ms: d.history.max_age.as_millis() as u32,
            max_replay: d.max_replay as u32,
            gap_event: c"sse-gap".as_ptr(),
        };
        out(config, value, "config")
    })
}

/// The engine's `Config` for `config` (NULL = the defaults).
pub(crate) fn config_of(config: *const sse_config) -> Result<Config, Failure> {
    Ok(match opt_arg(config) {
        None => Config::default(),
        Some(c) => Config {
            threads: c.threads as usize,
            heartbeat: millis(c.heartbeat_ms),
            retry: (c.retry_ms != 0).then_some(u64::from(c.retry_ms)),
            max_queue_bytes: c.max_queue_bytes,
            max_clients: limit(c.max_clients),
            max_clients_per_channel: limit(c.max_clients_per_channel),
            write_timeout: millis(c.write_timeout_ms),
            busy_retry_after_secs: c.busy_retry_after_s,
            auto_ids: c.auto_ids,
            history: history_limits(c.history_max_events, c.history_max_age_ms),
            max_replay: c.max_replay as usize,
            gap_event: opt_text(c.gap_event, "gap_event")?.map(str::to_owned),
        },
    })
}

fn millis(ms: u32) -> Option<Duration> {
    (ms != 0).then(|| Duration::from_millis(u64::from(ms)))
}

pub(crate) fn history_limits(max_events: u32, max_age_ms: u32) -> HistoryLimits {
    HistoryLimits {
        max_events: max_events as usize,
        max_age: Duration::from_millis(u64::from(max_age_ms)),
    }
}

fn limit(n: usize) -> Option<usize> {
    (n != 0).then_some(n)
}
