//! What the engine knows about its clients and channels: counts and `sse_stats`,
//! metadata and `sse_broadcast_where` (which filters on it), channel settings and
//! removal, the JSON queries, the metrics text, and `sse_string_free` for the strings
//! they hand out.

use std::ffi::{c_char, CString};

use ::sse_engine::{ChannelInfo, ClientInfo, DisconnectReason};

use crate::config::history_limits;
use crate::convert::{give_json, give_string, opt_text, out, out_opt, required, text};
use crate::engine::{engine_of, sse_engine};
use crate::send::{event_of, sse_event};
use crate::status::{call, sse_status, Failure};

/// Counters of an engine (see sse_stats).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct sse_stats {
    pub connections_open: u64,
    pub connections_total: u64,
    pub refused_total: u64,
    pub disconnects_closed: u64,
    pub disconnects_error: u64,
    pub disconnects_slow: u64,
    pub disconnects_timeout: u64,
    pub disconnects_server: u64,
    pub disconnects_shutdown: u64,
    pub events_published: u64,
    pub frames_queued: u64,
    pub bytes_written: u64,
    pub write_calls: u64,
    pub heartbeats: u64,
    pub queue_high_water: u64,
    pub events_replayed: u64,
    pub gaps: u64,
    /// Reactor threads that stopped on a panic: the engine failed closed (every call
    /// returns SSE_ERR_SHUT_DOWN). 0 in a healthy engine.
    pub reactor_failures: u64,
}

/// Number of connected clients.
#[no_mangle]
pub extern "C" fn sse_client_count(engine: *const sse_engine, out_count: *mut usize) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        required(out_count, "out_count")?;
        out(out_count, e.client_count()?, "out_count")
    })
}

/// Whether `client` is connected now (`*out_connected`); answered at once, without
/// waiting for a reactor (usable from the callback).
#[no_mangle]
pub extern "C" fn sse_is_connected(
    engine: *const sse_engine,
    client: u64,
    out_connected: *mut bool,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        required(out_connected, "out_connected")?;
        out(out_connected, e.is_connected(client)?, "out_connected")
    })
}

/// Number of members of `channel` (0 for a channel nobody joined).
#[no_mangle]
pub extern "C" fn sse_channel_count(
    engine: *const sse_engine,
    channel: *const c_char,
    out_count: *mut usize,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        let channel = text(channel, "channel")?;
        required(out_count, "out_count")?;
        out(out_count, e.channel_count(channel)?, "out_count")
    })
}

/// Number of connections of `user`.
#[no_mangle]
pub extern "C" fn sse_user_count(
    engine: *const sse_engine,
    user: *const c_char,
    out_count: *mut usize,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        let user = text(user, "user")?;
        required(out_count, "out_count")?;
        out(out_count, e.user_count(user)?, "out_count")
    })
}

/// Copies the engine's counters into `*out_stats`. Works after shutdown too.
#[no_mangle]
pub extern "C" fn sse_get_stats(
    engine: *const sse_engine,
    out_stats: *mut sse_stats,
) -> sse_status {
    call(|| {
        let s = engine_of(engine)?.stats();
        let by = |r| s.disconnects_by(r);
        let value = sse_stats {
            connections_open: s.connections_open,
            connections_total: s.connections_total,
            refused_total: s.refused_total,
            disconnects_closed: by(DisconnectReason::Closed),
            disconnects_error: by(DisconnectReason::Error),
            disconnects_slow: by(DisconnectReason::Slow),
            disconnects_timeout: by(DisconnectReason::Timeout),
            disconnects_server: by(DisconnectReason::Server),
            disconnects_shutdown: by(DisconnectReason::Shutdown),
            events_published: s.events_published,
            frames_queued: s.frames_queued,
            bytes_written: s.bytes_written,
            write_calls: s.write_calls,
            heartbeats: s.heartbeats,
            queue_high_water: s.queue_high_water,
            events_replayed: s.events_replayed,
            reactor_failures: s.reactor_failures,
            gaps: s.gaps,
        };
        out(out_stats, value, "out_stats")
    })
}

/// Sends an event to the members of `channel` whose metadata matches `filter_json`: a
/// JSON object of field equalities, where a value may also be `{"$in": [v1, v2]}`
/// (e.g. `{"role":"admin","tier":{"$in":[1,2]}}`; `{}` matches everyone). The filter is
/// evaluated on the reactor thread; `out_count` (may be NULL) receives the number of
/// members it is evaluated against. A bad filter gives SSE_ERR_INVALID_ARGUMENT.
#[no_mangle]
pub extern "C" fn sse_broadcast_where(
    engine: *const sse_engine,
    channel: *const c_char,
    filter_json: *const c_char,
    event: *const sse_event,
    out_count: *mut usize,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        let channel = text(channel, "channel")?;
        let filter = text(filter_json, "filter_json")?;
        let n = e.broadcast_where(channel, filter, &event_of(event)?)?;
        out_opt(out_count, n);
        Ok(())
    })
}

/// Sets one channel's history limits (0 events or 0 ms turns its history off).
#[no_mangle]
pub extern "C" fn sse_configure_channel(
    engine: *const sse_engine,
    channel: *const c_char,
    history_max_events: u32,
    history_max_age_ms: u32,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        let limits = history_limits(history_max_events, history_max_age_ms);
        Ok(e.configure_channel(text(channel, "channel")?, limits)?)
    })
}

/// Replaces a client's metadata with `metadata_json` (a JSON object; NULL clears it).
/// SSE_ERR_NOT_FOUND for an unknown client.
#[no_mangle]
pub extern "C" fn sse_set_metadata(
    engine: *const sse_engine,
    client: u64,
    metadata_json: *const c_char,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        Ok(e.set_metadata(client, opt_text(metadata_json, "metadata_json")?)?)
    })
}

/// Unsubscribes every member of `channel` (with `disconnect`, closes their streams with
/// reason SSE_REASON_SERVER) and forgets the channel and its history. `out_count` (may
/// be NULL) receives how many clients were members.
#[no_mangle]
pub extern "C" fn sse_close_channel(
    engine: *const sse_engine,
    channel: *const c_char,
    disconnect: bool,
    out_count: *mut usize,
) -> sse_status {
    call(|| {
        let n = engine_of(engine)?.close_channel(text(channel, "channel")?, disconnect)?;
        out_opt(out_count, n);
        Ok(())
    })
}

/// Forgets every channel without members (with its history and settings). `out_count`
/// (may be NULL) receives how many were removed.
#[no_mangle]
pub extern "C" fn sse_remove_empty_channels(
    engine: *const sse_engine,
    out_count: *mut usize,
) -> sse_status {
    call(|| {
        let n = engine_of(engine)?.remove_empty_channels()?;
        out_opt(out_count, n);
        Ok(())
    })
}

/// One client as JSON: `{"id", "user", "channels", "metadata", "connected_at_ms",
/// "remote_addr", "queued_bytes", "last_event_id"}` (missing values are null), as its
/// reactor thread sees it when it answers (between two flush chunks). Free
/// `*out_json` with sse_string_free. SSE_ERR_NOT_FOUND for an unknown client.
/// Registry queries wait for the reactor: do not call them from the callback
/// (SSE_ERR_INVALID_ARGUMENT).
#[no_mangle]
pub extern "C" fn sse_get_client(
    engine: *const sse_engine,
    client: u64,
    out_json: *mut *mut c_char,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        required(out_json, "out_json")?;
        give_json(out_json, e.get_client(client)?.to_json())
    })
}

fn give_clients(ptr: *mut *mut c_char, clients: Vec<ClientInfo>) -> Result<(), Failure> {
    give_json(ptr, clients.iter().map(ClientInfo::to_json).collect())
}

/// Every connected client: a JSON array of sse_get_client objects, by id. Free with
/// sse_string_free.
#[no_mangle]
pub extern "C" fn sse_clients(engine: *const sse_engine, out_json: *mut *mut c_char) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        required(out_json, "out_json")?;
        give_clients(out_json, e.clients()?)
    })
}

/// The members of `channel` as a JSON array (empty for an unknown channel). Free with
/// sse_string_free.
#[no_mangle]
pub extern "C" fn sse_clients_in(
    engine: *const sse_engine,
    channel: *const c_char,
    out_json: *mut *mut c_char,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        let channel = text(channel, "channel")?;
        required(out_json, "out_json")?;
        give_clients(out_json, e.clients_in(channel)?)
    })
}

/// The connections of `user` as a JSON array. Free with sse_string_free.
#[no_mangle]
pub extern "C" fn sse_clients_of(
    engine: *const sse_engine,
    user: *const c_char,
    out_json: *mut *mut c_char,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        let user = text(user, "user")?;
        required(out_json, "out_json")?;
        give_clients(out_json, e.clients_of(user)?)
    })
}

/// Every channel the engine knows, by name: a JSON array of
/// `{"name", "members", "history"}`. Free with sse_string_free.
#[no_mangle]
pub extern "C" fn sse_channels(
    engine: *const sse_engine,
    out_json: *mut *mut c_char,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        required(out_json, "out_json")?;
        let list = e.channels()?.iter().map(ChannelInfo::to_json).collect();
        give_json(out_json, list)
    })
}

/// The counters in Prometheus text exposition format (`sse_engine_*` metrics). Works
/// after shutdown too. Free `*out_text` with sse_string_free.
#[no_mangle]
pub extern "C" fn sse_metrics(engine: *const sse_engine, out_text: *mut *mut c_char) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        required(out_text, "out_text")?;
        give_string(out_text, e.metrics())
    })
}

/// Frees a string returned by this library (JSON or metrics text). NULL is ignored.
/// Never pass it to free(), nor a string that did not come from this library.
#[no_mangle]
pub extern "C" fn sse_string_free(text: *mut c_char) {
    if text.is_null() {
        return;
    }
    let _ = call(|| {
        // SAFETY: `text` came from CString::into_raw in this library and is freed once.
        drop(unsafe { CString::from_raw(text) });
        Ok(())
    });
}
