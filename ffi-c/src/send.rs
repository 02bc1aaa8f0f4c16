//! Events and where they go: `sse_event` and its conversion, the sends and broadcasts
//! (one, or many at once with `sse_broadcast_many`),
//! and a client's channel membership and end (`sse_subscribe`, `sse_unsubscribe`,
//! `sse_disconnect`). `sse_broadcast_where` is in `registry.rs`, next to the metadata
//! it filters on.

use std::ffi::c_char;

use ::sse_engine::Event;

use crate::convert::{arg, opt_text, out_opt, slice, text};
use crate::engine::{engine_of, sse_engine};
use crate::status::{call, sse_status, Failure};

/// An event to send. `event` and `id` may be NULL; `data` is `data_len` bytes of UTF-8
/// (NUL bytes allowed; may be NULL when `data_len` is 0). Line breaks in data (CRLF, LF,
/// CR) become separate `data:` lines. An event name is 1 to 1024 bytes without CR or LF;
/// an id is at most 256 bytes of printable ASCII (else SSE_ERR_INVALID_ARGUMENT).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sse_event {
    /// Event name (`event:` field); NULL = unnamed ("message" in the browser).
    pub event: *const c_char,
    /// Event id (`id:` field); NULL = none.
    pub id: *const c_char,
    /// `retry:` field in milliseconds; 0 = none.
    pub retry_ms: u32,
    pub data: *const c_char,
    pub data_len: usize,
}

pub(crate) fn event_of(ev: *const sse_event) -> Result<Event, Failure> {
    let ev = arg(ev, "event")?;
    let data = slice(ev.data.cast::<u8>(), ev.data_len, "event data")?;
    let data = std::str::from_utf8(data).map_err(|_| Failure::not_utf8("event data"))?;
    Ok(Event {
        event: opt_text(ev.event, "event name")?.map(str::to_owned),
        id: opt_text(ev.id, "event id")?.map(str::to_owned),
        retry: (ev.retry_ms != 0).then_some(u64::from(ev.retry_ms)),
        data: data.to_owned(),
    })
}

/// Sends an event to one client. SSE_ERR_NOT_FOUND when no such client is connected.
#[no_mangle]
pub extern "C" fn sse_send_to_client(
    engine: *const sse_engine,
    client: u64,
    event: *const sse_event,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        e.send_to_client(client, &event_of(event)?)?;
        Ok(())
    })
}

/// Sends an event to every connection of `user`. `out_count` (may be NULL) receives how
/// many connections it was queued for.
#[no_mangle]
pub extern "C" fn sse_send_to_user(
    engine: *const sse_engine,
    user: *const c_char,
    event: *const sse_event,
    out_count: *mut usize,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        let n = e.send_to_user(text(user, "user")?, &event_of(event)?)?;
        out_opt(out_count, n);
        Ok(())
    })
}

/// Sends an event to every member of `channel`. `out_count` (may be NULL) receives how
/// many clients it was queued for. Returns at once; the reactor writes it.
#[no_mangle]
pub extern "C" fn sse_broadcast(
    engine: *const sse_engine,
    channel: *const c_char,
    event: *const sse_event,
    out_count: *mut usize,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        let n = e.broadcast(text(channel, "channel")?, &event_of(event)?)?;
        out_opt(out_count, n);
        Ok(())
    })
}

/// One event for one channel, for `sse_broadcast_many`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sse_publish {
    /// The channel (a NUL-terminated UTF-8 name).
    pub channel: *const c_char,
    /// The event, as for `sse_broadcast`.
    pub event: sse_event,
}

/// Publishes `len` events, each to its channel, in one call: the same as calling
/// `sse_broadcast` for each item in order (ids, history, replay and counters alike),
/// with one lock and one wake-up of the reactor. Every item is checked first: when one
/// is invalid nothing is published and the error message names it (`item 3: …`;
/// SSE_ERR_NULL_POINTER, SSE_ERR_INVALID_UTF8 or SSE_ERR_INVALID_ARGUMENT).
/// `items` may be NULL when `len` is 0 (then nothing happens and the count is 0).
/// `out_count` (may be NULL) receives the deliveries queued: the sum of what each
/// broadcast would report. Like `sse_broadcast` it waits while the reactor is a whole
/// command queue behind (a batch needs room for all of it; one larger than the queue
/// waits until it is empty), and fails with SSE_ERR_LIMIT_REACHED after 1 s of that,
/// having published nothing.
#[no_mangle]
pub extern "C" fn sse_broadcast_many(
    engine: *const sse_engine,
    items: *const sse_publish,
    len: usize,
    out_count: *mut usize,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        let items = slice(items, len, "items")?;
        let pairs = items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let channel = text(item.channel, "channel").map_err(|f| f.in_item(index))?;
                let event = event_of(&item.event).map_err(|f| f.in_item(index))?;
                Ok((channel, event))
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        let n = e.broadcast_many(&pairs)?;
        out_opt(out_count, n);
        Ok(())
    })
}

/// Sends an event to every connected client. `out_count` may be NULL.
#[no_mangle]
pub extern "C" fn sse_broadcast_all(
    engine: *const sse_engine,
    event: *const sse_event,
    out_count: *mut usize,
) -> sse_status {
    call(|| {
        let n = engine_of(engine)?.broadcast_all(&event_of(event)?)?;
        out_opt(out_count, n);
        Ok(())
    })
}

/// Adds a client to a channel. `out_changed` (may be NULL) is false when it was already
/// a member. SSE_ERR_NOT_FOUND for an unknown client, SSE_ERR_LIMIT_REACHED when the
/// channel is full.
#[no_mangle]
pub extern "C" fn sse_subscribe(
    engine: *const sse_engine,
    client: u64,
    channel: *const c_char,
    out_changed: *mut bool,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        let changed = e.subscribe(client, text(channel, "channel")?)?;
        out_opt(out_changed, changed);
        Ok(())
    })
}

/// Removes a client from a channel. `out_changed` (may be NULL) is false when it was not
/// a member. SSE_ERR_NOT_FOUND for an unknown client.
#[no_mangle]
pub extern "C" fn sse_unsubscribe(
    engine: *const sse_engine,
    client: u64,
    channel: *const c_char,
    out_changed: *mut bool,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        let changed = e.unsubscribe(client, text(channel, "channel")?)?;
        out_opt(out_changed, changed);
        Ok(())
    })
}

/// Closes a client's stream after a last attempt to send what is queued for it
/// (reason SSE_REASON_SERVER). SSE_ERR_NOT_FOUND for an unknown client.
#[no_mangle]
pub extern "C" fn sse_disconnect(engine: *const sse_engine, client: u64) -> sse_status {
    call(|| Ok(engine_of(engine)?.disconnect(client)?))
}
