//! The engine's fixed names and HTTP rules for the JavaScript layer (status lines,
//! SSE headers, the 503 answer and the Last-Event-ID rule all come from
//! `sse_engine::http`; nothing is typed again here).

use napi::Env;
use napi_derive::napi;
use sse_engine::DisconnectReason;

use crate::convert::{self, HttpResponse, Js};
use crate::error;

/// Disconnect reasons by number (the third value of a `disconnect` event triple).
#[napi(catch_unwind)]
pub fn disconnect_reasons(env: Env) -> napi::Result<Vec<String>> {
    error::guard(&env, || {
        Ok(DisconnectReason::ALL
            .iter()
            .map(|r| r.as_str().to_string())
            .collect())
    })
}

/// The engine's settings and counters, declared once (`sse_engine::schema`):
/// `{ config: Field[], stats: Field[] }`, each field `{ name, kind, unit, default, off,
/// doc }` with the engine's names. The tests check the options, types and `stats()`
/// against it.
#[napi(
    ts_return_type = "Record<'config' | 'stats', Array<{ name: string; kind: 'uint' | 'bool' | 'text'; unit: string; default: number | boolean | string | null; off: string | null; doc: string }>>",
    catch_unwind
)]
pub fn schema(env: Env) -> napi::Result<Js> {
    error::guard(&env, || convert::to_js(&env, sse_engine::schema::to_json()))
}

/// Response headers the engine writes itself (lower case): a framework's values for
/// them are dropped at hand-over.
#[napi(catch_unwind)]
pub fn engine_headers(env: Env) -> napi::Result<Vec<String>> {
    error::guard(&env, || {
        Ok(sse_engine::ENGINE_HEADERS
            .iter()
            .map(|h| h.to_string())
            .collect())
    })
}

/// Stream mode: the head the JavaScript layer writes through `res` (status 200, the SSE
/// headers, then `headers` without the engine's own and, over HTTP/2, without
/// connection-specific ones; each checked). `headers` and the answer's are flat
/// `[name, value, ...]` lists. Rules: `sse_engine::http::stream_head`.
#[napi(catch_unwind)]
pub fn stream_head(env: Env, headers: Vec<String>, http2: bool) -> napi::Result<HttpResponse> {
    error::guard(&env, || {
        let pairs = convert::header_pairs(&env, headers)?;
        let head = error::check(&env, sse_engine::http::stream_head(&pairs, http2))?;
        Ok(convert::http_response(head))
    })
}

/// Socket mode: the framework's and the caller's headers without the engine's own,
/// each checked (flat `[name, value, ...]` lists). Rules: `sse_engine::http::extra_headers`.
#[napi(catch_unwind)]
pub fn extra_headers(env: Env, headers: Vec<String>, http2: bool) -> napi::Result<Vec<String>> {
    error::guard(&env, || {
        let pairs = convert::header_pairs(&env, headers)?;
        let kept = error::check(&env, sse_engine::http::extra_headers(&pairs, http2))?;
        Ok(convert::flat_headers(kept))
    })
}

/// The 503 answer to a hand-over refused by a limit. Rules: `sse_engine::http::busy_answer`.
#[napi(catch_unwind)]
pub fn busy_answer(env: Env, retry_after_secs: u32, http2: bool) -> napi::Result<HttpResponse> {
    error::guard(&env, || {
        let answer = sse_engine::http::busy_answer(retry_after_secs, http2);
        Ok(convert::http_response(answer))
    })
}

/// The request's last event id from its `Last-Event-ID` header and its query string.
/// Rules: `sse_engine::http::last_event_id`.
#[napi(catch_unwind)]
pub fn last_event_id(
    env: Env,
    header: Option<String>,
    query: Option<String>,
) -> napi::Result<Option<String>> {
    error::guard(&env, || {
        Ok(sse_engine::http::last_event_id(
            header.as_deref(),
            query.as_deref(),
        ))
    })
}
