//! Handing connections over: `sse_connect_options` and its conversion, `sse_connect_fd`
//! for a socket the engine owns, and the stream-mode calls for one whose bytes the host
//! writes (`sse_connect_stream`, `sse_stream_take`, `sse_stream_close`).

use std::ffi::{c_char, c_int};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

use ::sse_engine::ConnectOptions;

use crate::convert::{opt_arg, opt_text, out, required, slice, text};
use crate::engine::{engine_of, sse_engine};
use crate::status::{call, sse_status, Failure};

/// One response header.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sse_header {
    pub name: *const c_char,
    pub value: *const c_char,
}

/// How a connection is handed over. Zero-initialise it (`sse_connect_options o = {0};`)
/// and set what you need; every pointer may be NULL when its count is 0 / it is unused.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sse_connect_options {
    /// Channels to join: `channels_len` NUL-terminated UTF-8 names.
    pub channels: *const *const c_char,
    pub channels_len: usize,
    /// User key (NULL = none).
    pub user: *const c_char,
    /// Metadata: a JSON object as text (NULL = none).
    pub metadata_json: *const c_char,
    /// Extra response headers (not Content-Type, Cache-Control, Connection,
    /// X-Accel-Buffering, Content-Length, Transfer-Encoding: the engine writes those).
    pub headers: *const sse_header,
    pub headers_len: usize,
    /// The Last-Event-ID the client sent (header, or a `lastEventId` query parameter on
    /// the first connect); NULL or "" = none. Same rules as event ids (at most 256
    /// bytes of printable ASCII), else SSE_ERR_INVALID_ARGUMENT with the fd untouched.
    /// The engine replays what the client missed, or reports SSE_GAP.
    pub last_event_id: *const c_char,
    /// `retry:` hint for this client in milliseconds (0 = the engine's setting).
    pub retry_ms: u32,
    /// The host already wrote the HTTP response head; the engine writes only the stream.
    pub head_sent: bool,
}

/// Hands a connected TCP socket over to the engine; `*out_client` receives its id
/// (unique for the engine's life, below 2^53). `options` may be NULL.
///
/// Ownership of `fd`: on SSE_OK the engine owns it and closes it when the client leaves;
/// do not read, write or close it again. On SSE_ERR_LIMIT_REACHED the engine also took
/// it: it answered `503 Service Unavailable` with `Retry-After` (unless head_sent) and
/// closed it. On every other status the fd is untouched and still yours to close.
/// The engine makes the socket non-blocking and sets TCP_NODELAY. Bytes your own
/// parser already read past the request head stay with you.
#[no_mangle]
pub extern "C" fn sse_connect_fd(
    engine: *const sse_engine,
    fd: c_int,
    options: *const sse_connect_options,
    out_client: *mut u64,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        let options = match opt_arg(options) {
            None => ConnectOptions::default(),
            Some(o) => connect_options(o)?,
        };
        required(out_client, "out_client")?;
        if fd < 0 {
            let message = format!("fd {fd} is not a valid file descriptor");
            return Err(Failure::new(sse_status::SSE_ERR_BAD_SOCKET, message));
        }
        // SAFETY: the caller gives `fd` up for this call (the contract above). When the
        // engine refuses it untouched it comes back and is released unclosed below, so
        // no descriptor is ever closed here that the caller did not give up; one that
        // is not open is refused by the engine's check before any use.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let id = e.connect_fd(fd, &options).map_err(|refused| {
            // Still the caller's: not closed.
            let _ = refused.fd.map(IntoRawFd::into_raw_fd);
            refused.error
        })?;
        out(out_client, id, "out_client")
    })
}

/// Registers a stream-mode client, for a connection whose socket cannot be handed over
/// (TLS terminated in your server, HTTP/2). The engine keeps its state (channels,
/// history and replay, heartbeats, limits, timeouts); you write its bytes: write the
/// response head sse_http_stream_head gives, then on each SSE_READABLE call
/// sse_stream_take and write what it gives; when the connection ends call
/// sse_stream_close; on SSE_DISCONNECTED end the response. `options->headers` must be
/// empty and `head_sent` is implied. A limit gives SSE_ERR_LIMIT_REACHED: answer with
/// sse_http_busy_answer.
#[no_mangle]
pub extern "C" fn sse_connect_stream(
    engine: *const sse_engine,
    options: *const sse_connect_options,
    out_client: *mut u64,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        let options = match opt_arg(options) {
            None => ConnectOptions::default(),
            Some(o) => connect_options(o)?,
        };
        required(out_client, "out_client")?;
        let id = e.connect_stream(&options)?;
        out(out_client, id, "out_client")
    })
}

/// Copies up to `capacity` queued bytes of a stream-mode client into `buffer` and
/// removes them from its queue; `*out_len` receives how many (0 when nothing is
/// queued). Bytes left behind are reported with SSE_READABLE again. Works while a
/// shutdown flushes. SSE_ERR_NOT_FOUND once the client is gone,
/// SSE_ERR_INVALID_ARGUMENT for a client that owns a socket or `capacity` 0. Waits for
/// the reactor: not from the callback.
#[no_mangle]
pub extern "C" fn sse_stream_take(
    engine: *const sse_engine,
    client: u64,
    buffer: *mut u8,
    capacity: usize,
    out_len: *mut usize,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        required(buffer, "buffer")?;
        required(out_len, "out_len")?;
        let bytes = e.take_stream(client, capacity)?;
        // SAFETY: `buffer` is non-NULL and the caller guarantees `capacity` writable bytes;
        // `bytes` holds at most `capacity` bytes and does not overlap the caller's buffer.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), buffer, bytes.len()) };
        out(out_len, bytes.len(), "out_len")
    })
}

/// The connection of a stream-mode client ended: the client leaves with reason
/// SSE_REASON_CLOSED. SSE_ERR_NOT_FOUND for an unknown client.
#[no_mangle]
pub extern "C" fn sse_stream_close(engine: *const sse_engine, client: u64) -> sse_status {
    call(|| Ok(engine_of(engine)?.close_stream(client)?))
}

fn connect_options(o: &sse_connect_options) -> Result<ConnectOptions, Failure> {
    let channels = slice(o.channels, o.channels_len, "channels")?
        .iter()
        .map(|&c| text(c, "channel name").map(str::to_owned))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ConnectOptions {
        channels,
        user: opt_text(o.user, "user")?.map(str::to_owned),
        metadata: opt_text(o.metadata_json, "metadata_json")?.map(str::to_owned),
        headers: headers_of(o.headers, o.headers_len)?,
        last_event_id: opt_text(o.last_event_id, "last_event_id")?.map(str::to_owned),
        retry: (o.retry_ms != 0).then_some(u64::from(o.retry_ms)),
        head_sent: o.head_sent,
    })
}

/// `len` C headers as (name, value) pairs.
pub(crate) fn headers_of(
    headers: *const sse_header,
    len: usize,
) -> Result<Vec<(String, String)>, Failure> {
    slice(headers, len, "headers")?
        .iter()
        .map(|h| {
            Ok((
                text(h.name, "header name")?.to_owned(),
                text(h.value, "header value")?.to_owned(),
            ))
        })
        .collect()
}
