//! Values from JavaScript into engine types, and engine records back to JavaScript.
//! Shapes and rules belong to the engine; this file only converts (numbers arrive as
//! JavaScript doubles and are checked to be integers in range).

use std::time::{Duration, UNIX_EPOCH};

use napi::bindgen_prelude::ToNapiValue;
use napi::{sys, Env};
use napi_derive::napi;
use serde_json::{json, Value};
use sse_engine::{
    ChannelInfo, ClientId, ClientInfo, Config, ConnectOptions, DisconnectReason, Event,
    HistoryLimits, Stats,
};

use crate::error;

/// Largest integer a JavaScript number holds exactly (2^53 - 1).
pub(crate) const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Engine settings (`Config`), as the JavaScript layer passes them. Durations are in
/// milliseconds; a heartbeat or write timeout of 0 turns it off.
#[napi(object)]
#[derive(Default)]
pub struct EngineOptions {
    pub threads: Option<f64>,
    pub heartbeat_ms: Option<f64>,
    pub retry_ms: Option<f64>,
    pub max_queue_bytes: Option<f64>,
    pub max_clients: Option<f64>,
    pub max_clients_per_channel: Option<f64>,
    pub write_timeout_ms: Option<f64>,
    pub busy_retry_after_secs: Option<f64>,
    pub auto_ids: Option<bool>,
    pub history_max_events: Option<f64>,
    pub history_max_age_ms: Option<f64>,
    pub max_replay: Option<f64>,
    /// Name of the event sent on a gap; see `no_gap_event`.
    pub gap_event: Option<String>,
    /// Send no gap event at all (the `gap` lifecycle event still arrives).
    pub no_gap_event: Option<bool>,
}

/// One hand-over's options (`ConnectOptions`).
#[napi(object)]
#[derive(Default)]
pub struct ConnectInput {
    pub channels: Option<Vec<String>>,
    pub user: Option<String>,
    /// A JSON object, as text.
    pub metadata: Option<String>,
    /// Header names and values, alternating: `[name, value, name, value, ...]`.
    pub headers: Option<Vec<String>>,
    pub last_event_id: Option<String>,
    pub retry_ms: Option<f64>,
    pub head_sent: Option<bool>,
}

/// A number that must be a non-negative integer (a count, a size, a duration).
pub(crate) fn uint(env: &Env, name: &str, value: f64) -> napi::Result<u64> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= MAX_SAFE_INTEGER {
        Ok(value as u64)
    } else {
        Err(error::range(
            env,
            format!("{name} must be a non-negative integer below 2^53, got {value}"),
        ))
    }
}

fn usize_of(env: &Env, name: &str, value: f64) -> napi::Result<usize> {
    uint(env, name, value).map(|v| v as usize)
}

/// A client id: what `connect` returned.
pub(crate) fn client_id(env: &Env, value: f64) -> napi::Result<ClientId> {
    uint(env, "clientId", value)
}

/// Milliseconds where 0 means "off".
fn optional_ms(env: &Env, name: &str, value: f64) -> napi::Result<Option<Duration>> {
    let ms = uint(env, name, value)?;
    Ok((ms > 0).then(|| Duration::from_millis(ms)))
}

pub(crate) fn config(env: &Env, options: Option<EngineOptions>) -> napi::Result<Config> {
    let o = options.unwrap_or_default();
    let mut c = Config::default();
    if let Some(v) = o.threads {
        c.threads = usize_of(env, "threads", v)?;
    }
    if let Some(v) = o.heartbeat_ms {
        c.heartbeat = optional_ms(env, "heartbeatMs", v)?;
    }
    if let Some(v) = o.retry_ms {
        c.retry = Some(uint(env, "retryMs", v)?);
    }
    if let Some(v) = o.max_queue_bytes {
        c.max_queue_bytes = usize_of(env, "maxQueueBytes", v)?;
    }
    if let Some(v) = o.max_clients {
        c.max_clients = Some(usize_of(env, "maxClients", v)?);
    }
    if let Some(v) = o.max_clients_per_channel {
        c.max_clients_per_channel = Some(usize_of(env, "maxClientsPerChannel", v)?);
    }
    if let Some(v) = o.write_timeout_ms {
        c.write_timeout = optional_ms(env, "writeTimeoutMs", v)?;
    }
    if let Some(v) = o.busy_retry_after_secs {
        let secs = uint(env, "busyRetryAfterSecs", v)?;
        c.busy_retry_after_secs = u32::try_from(secs)
            .map_err(|_| error::range(env, "busyRetryAfterSecs must be below 2^32"))?;
    }
    if let Some(v) = o.auto_ids {
        c.auto_ids = v;
    }
    if let Some(v) = o.history_max_events {
        c.history.max_events = usize_of(env, "history.maxEvents", v)?;
    }
    if let Some(v) = o.history_max_age_ms {
        c.history.max_age = Duration::from_millis(uint(env, "history.maxAgeMs", v)?);
    }
    if let Some(v) = o.max_replay {
        c.max_replay = usize_of(env, "maxReplay", v)?;
    }
    if let Some(name) = o.gap_event {
        c.gap_event = Some(name);
    }
    if o.no_gap_event == Some(true) {
        c.gap_event = None;
    }
    Ok(c)
}

/// Header pairs from their flat JavaScript form `[name, value, name, value, ...]`.
pub(crate) fn header_pairs(env: &Env, flat: Vec<String>) -> napi::Result<Vec<(String, String)>> {
    if !flat.len().is_multiple_of(2) {
        return Err(error::range(
            env,
            "headers must alternate names and values (an even count)",
        ));
    }
    Ok(flat
        .chunks_exact(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect())
}

/// Header pairs back into the flat JavaScript form.
pub(crate) fn flat_headers(pairs: Vec<(String, String)>) -> Vec<String> {
    pairs.into_iter().flat_map(|(n, v)| [n, v]).collect()
}

/// A response head or answer from the engine's `http` rules, for `res.writeHead`.
#[napi(object)]
pub struct HttpResponse {
    pub status: u32,
    /// Header names and values, alternating: `[name, value, name, value, ...]`.
    pub headers: Vec<String>,
    /// The body (empty for an event stream's head).
    pub body: String,
}

pub(crate) fn http_response(response: sse_engine::http::Response) -> HttpResponse {
    HttpResponse {
        status: u32::from(response.status),
        headers: flat_headers(response.headers),
        body: response.body.to_string(),
    }
}

pub(crate) fn connect_options(env: &Env, input: ConnectInput) -> napi::Result<ConnectOptions> {
    let headers = header_pairs(env, input.headers.unwrap_or_default())?;
    Ok(ConnectOptions {
        channels: input.channels.unwrap_or_default(),
        user: input.user,
        metadata: input.metadata,
        headers,
        last_event_id: input.last_event_id,
        retry: input.retry_ms.map(|v| uint(env, "retry", v)).transpose()?,
        head_sent: input.head_sent.unwrap_or(false),
    })
}

/// An event from its parts; the engine validates the fields when it encodes it.
pub(crate) fn event(
    env: &Env,
    data: String,
    event: Option<String>,
    id: Option<String>,
    retry: Option<f64>,
) -> napi::Result<Event> {
    Ok(Event {
        event,
        id,
        retry: retry.map(|v| uint(env, "retry", v)).transpose()?,
        data,
    })
}

/// The items of `broadcastMany` from their columns (`events`, `ids` and `retries` are
/// absent when no item has one). The JavaScript layer builds the columns; a length that
/// differs is its bug, reported as a `RangeError`.
pub(crate) fn publish_items(
    env: &Env,
    channels: Vec<String>,
    data: Vec<String>,
    events: Option<Vec<Option<String>>>,
    ids: Option<Vec<Option<String>>>,
    retries: Option<Vec<Option<f64>>>,
) -> napi::Result<Vec<(String, Event)>> {
    let n = channels.len();
    let lengths_match = data.len() == n
        && events.as_ref().is_none_or(|c| c.len() == n)
        && ids.as_ref().is_none_or(|c| c.len() == n)
        && retries.as_ref().is_none_or(|c| c.len() == n);
    if !lengths_match {
        return Err(error::range(
            env,
            "broadcastMany: columns of different lengths",
        ));
    }
    let mut events = events.map(Vec::into_iter);
    let mut ids = ids.map(Vec::into_iter);
    let mut retries = retries.map(Vec::into_iter);
    channels
        .into_iter()
        .zip(data)
        .enumerate()
        .map(|(index, (channel, data))| {
            let retry = match retries.as_mut().and_then(Iterator::next).flatten() {
                Some(v) => Some(uint(env, &format!("items[{index}].retry"), v)?),
                None => None,
            };
            let event = Event {
                event: events.as_mut().and_then(Iterator::next).flatten(),
                id: ids.as_mut().and_then(Iterator::next).flatten(),
                retry,
                data,
            };
            Ok((channel, event))
        })
        .collect()
}

pub(crate) fn history(env: &Env, max_events: f64, max_age_ms: f64) -> napi::Result<HistoryLimits> {
    Ok(HistoryLimits {
        max_events: usize_of(env, "maxEvents", max_events)?,
        max_age: Duration::from_millis(uint(env, "maxAgeMs", max_age_ms)?),
    })
}

/// A value already converted to JavaScript. Exports return it where the conversion does
/// more than make a number or a string (JSON records), so that it runs inside their
/// panic boundary (`error::guard`) rather than in napi-rs's code after it.
pub struct Js(sys::napi_value);

impl ToNapiValue for Js {
    unsafe fn to_napi_value(_env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
        Ok(value.0)
    }
}

/// Converts `value` to JavaScript now.
pub(crate) fn to_js<T: ToNapiValue>(env: &Env, value: T) -> napi::Result<Js> {
    // SAFETY: `env` is the live environment of the current call, on its thread.
    unsafe { T::to_napi_value(env.raw(), value) }.map(Js)
}

// Records for JavaScript. JavaScript names are camelCase; the engine's (and Python's and
// C's JSON) are snake_case. This is the one place where they are renamed, and each record
// is taken apart field by field: a field the engine adds does not compile here until it
// has a JavaScript name (and test/schema.test.js fails until it has a line in index.d.ts).

/// `Config` under the option names `new Engine()` takes (durations in milliseconds,
/// `busyRetryAfterSecs` in seconds; `null` where a setting is unset), so that
/// `new Engine(engine.config())` makes the same engine.
pub(crate) fn config_js(c: &Config) -> Value {
    let Config {
        threads,
        heartbeat,
        retry,
        max_queue_bytes,
        max_clients,
        max_clients_per_channel,
        write_timeout,
        busy_retry_after_secs,
        auto_ids,
        history: HistoryLimits {
            max_events,
            max_age,
        },
        max_replay,
        gap_event,
    } = c;
    let ms = |d: &Duration| d.as_millis() as u64;
    json!({
        "threads": threads,
        "heartbeatMs": heartbeat.as_ref().map(ms),
        "retryMs": retry,
        "maxQueueBytes": max_queue_bytes,
        "maxClients": max_clients,
        "maxClientsPerChannel": max_clients_per_channel,
        "writeTimeoutMs": write_timeout.as_ref().map(ms),
        "busyRetryAfterSecs": busy_retry_after_secs,
        "autoIds": auto_ids,
        "history": { "maxEvents": max_events, "maxAgeMs": ms(max_age) },
        "maxReplay": max_replay,
        "gapEvent": gap_event,
    })
}

/// `Stats` with JavaScript names; `disconnects` by reason name (`closed`, `slow`, ...).
pub(crate) fn stats(s: &Stats) -> Value {
    let Stats {
        connections_open,
        connections_total,
        refused_total,
        disconnects: _,
        events_published,
        frames_queued,
        bytes_written,
        write_calls,
        heartbeats,
        queue_high_water,
        events_replayed,
        gaps,
        reactor_failures,
    } = *s;
    let disconnects: serde_json::Map<String, Value> = DisconnectReason::ALL
        .iter()
        .map(|r| (r.as_str().to_string(), json!(s.disconnects_by(*r))))
        .collect();
    json!({
        "connectionsOpen": connections_open,
        "connectionsTotal": connections_total,
        "refusedTotal": refused_total,
        "disconnects": disconnects,
        "eventsPublished": events_published,
        "framesQueued": frames_queued,
        "bytesWritten": bytes_written,
        "writeCalls": write_calls,
        "heartbeats": heartbeats,
        "queueHighWater": queue_high_water,
        "eventsReplayed": events_replayed,
        "gaps": gaps,
        "reactorFailures": reactor_failures,
    })
}

/// `ChannelInfo` with JavaScript names.
pub(crate) fn channel_json(info: &ChannelInfo) -> Value {
    let ChannelInfo {
        name,
        members,
        history,
    } = info;
    json!({ "name": name, "members": members, "history": history })
}

/// A client record with JavaScript names. The engine keeps metadata numbers exact, but
/// napi-rs converts only 64-bit integers and doubles (another number would panic), so
/// any other number (an integer beyond 64 bits) becomes the nearest double, as
/// `JSON.parse` would make it.
pub(crate) fn client_json(info: &ClientInfo) -> Value {
    fn as_js(value: &mut Value) {
        match value {
            Value::Number(n) if !n.is_i64() && !n.is_f64() => {
                // Finite: the engine refuses numbers beyond a double's range.
                let nearest = n.as_f64().and_then(serde_json::Number::from_f64);
                *value = nearest.map_or(Value::Null, Value::Number);
            }
            Value::Array(items) => items.iter_mut().for_each(as_js),
            Value::Object(map) => map.values_mut().for_each(as_js),
            _ => {}
        }
    }
    let ClientInfo {
        id,
        user,
        channels,
        metadata,
        connected_at,
        remote_addr,
        queued_bytes,
        last_event_id,
    } = info;
    let connected_at_ms = connected_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut metadata = metadata.clone().map(Value::Object).unwrap_or(Value::Null);
    as_js(&mut metadata);
    json!({
        "id": id,
        "user": user,
        "channels": channels,
        "metadata": metadata,
        "connectedAtMs": connected_at_ms,
        "remoteAddr": remote_addr.map(|a| a.to_string()),
        "queuedBytes": queued_bytes,
        "lastEventId": last_event_id,
    })
}
