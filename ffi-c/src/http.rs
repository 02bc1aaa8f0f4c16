//! The engine's HTTP rules for C hosts that write responses themselves (stream mode, a
//! refused client, reading the Last-Event-ID of a request): `sse_http_stream_head`,
//! `sse_http_busy_answer`, `sse_http_last_event_id`. The rules are the engine's
//! (`sse_engine::http`); this only converts.

use std::ffi::c_char;

use ::sse_engine::http;

use crate::connect::{headers_of, sse_header};
use crate::convert::{give_string, opt_text, out, required};
use crate::status::{call, sse_status};

/// The HTTP/1.1 response head of a stream-mode client, to write before the bytes of
/// sse_stream_take: `200 OK`, the engine's SSE headers, then `headers` (the engine's own
/// headers among them are left out; each is checked: CR, LF or a control character is
/// SSE_ERR_INVALID_ARGUMENT). `*out_head` receives it, ending in the blank line; free
/// it with sse_string_free.
#[no_mangle]
pub extern "C" fn sse_http_stream_head(
    headers: *const sse_header,
    headers_len: usize,
    out_head: *mut *mut c_char,
) -> sse_status {
    call(|| {
        required(out_head, "out_head")?;
        let head = http::stream_head(&headers_of(headers, headers_len)?, false)?;
        give_string(out_head, text_of(head.to_http1()))
    })
}

/// The HTTP/1.1 answer to a client a limit refused (what the engine writes on a refused
/// socket): `503 Service Unavailable` with `Retry-After: retry_after_secs`, a short text
/// body and `Connection: close`. Free `*out_answer` with sse_string_free.
#[no_mangle]
pub extern "C" fn sse_http_busy_answer(
    retry_after_secs: u32,
    out_answer: *mut *mut c_char,
) -> sse_status {
    call(|| {
        required(out_answer, "out_answer")?;
        let answer = http::busy_answer(retry_after_secs, false);
        give_string(out_answer, text_of(answer.to_http1()))
    })
}

/// The Last-Event-ID of a request by the engine's one rule: the `Last-Event-ID` header
/// (`header`, NULL when absent) wins, else the first `lastEventId` parameter of `query`
/// (the query string with or without its `?`, form-decoded; NULL when none); surrounding
/// whitespace is trimmed and an empty value means none. `*out_id` receives the id (free
/// it with sse_string_free), or NULL when there is none. The id is checked when it is
/// passed to sse_connect_fd / sse_connect_stream.
#[no_mangle]
pub extern "C" fn sse_http_last_event_id(
    header: *const c_char,
    query: *const c_char,
    out_id: *mut *mut c_char,
) -> sse_status {
    call(|| {
        required(out_id, "out_id")?;
        let header = opt_text(header, "header")?;
        let query = opt_text(query, "query")?;
        match http::last_event_id(header, query) {
            Some(id) => give_string(out_id, id),
            None => out(out_id, std::ptr::null_mut(), "out_id"),
        }
    })
}

/// A head or answer as text: the engine builds them from validated UTF-8 strings.
fn text_of(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}
