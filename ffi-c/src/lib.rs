//! The C API of sse-engine: thin conversions between C values and the engine's API.
//!
//! Every exported function runs its body inside [`call`], which catches panics, maps
//! the engine's [`Error`] to an [`sse_status`] (in [`status_of`], the one mapping) and
//! records the message for `sse_last_error_message`.
#![allow(non_camel_case_types)]
// Exported functions check their raw pointers themselves (NULL => SSE_ERR_NULL_POINTER);
// the remaining contract (pointers valid for the documented sizes) is stated in the header.
#![allow(clippy::missing_safety_doc, clippy::not_unsafe_ptr_arg_deref)]

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use engine::{
    Config, ConnectOptions, DisconnectReason, Engine, Error, ErrorKind, Event, HistoryLimits,
    LifecycleEvent,
};

/// Status of every call. Values are stable and never renumbered.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sse_status {
    /// Success.
    SSE_OK = 0,
    /// A required pointer argument was NULL.
    SSE_ERR_NULL_POINTER = 1,
    /// An argument is malformed (newline in an event name, empty channel, bad JSON, ...).
    SSE_ERR_INVALID_ARGUMENT = 2,
    /// A string argument is not valid UTF-8.
    SSE_ERR_INVALID_UTF8 = 3,
    /// The fd is not an open, connected TCP socket (closed, pipe, file, listening, UDP...),
    /// or is one the engine already owns (by this descriptor or a duplicate of it).
    SSE_ERR_BAD_SOCKET = 4,
    /// No client with that id is connected.
    SSE_ERR_NOT_FOUND = 5,
    /// A configured limit refused the request; or a send, broadcast, subscribe,
    /// unsubscribe or sse_set_metadata found the engine's command queue full for 1 s (its
    /// reactor is stuck, e.g. in a callback that blocks) and did nothing. Such calls
    /// normally wait while the queue is full, so a publisher faster than the reactor is
    /// slowed to its pace instead of growing memory; from a callback they never wait.
    SSE_ERR_LIMIT_REACHED = 6,
    /// The engine is shut down.
    SSE_ERR_SHUT_DOWN = 7,
    /// An operating-system call failed.
    SSE_ERR_IO = 8,
    /// An internal bug was caught at the boundary. Please report it.
    SSE_ERR_PANIC = 9,
}

/// The one mapping from the engine's error kinds to C status codes.
fn status_of(kind: ErrorKind) -> sse_status {
    match kind {
        ErrorKind::NullPointer => sse_status::SSE_ERR_NULL_POINTER,
        ErrorKind::InvalidArgument => sse_status::SSE_ERR_INVALID_ARGUMENT,
        ErrorKind::InvalidUtf8 => sse_status::SSE_ERR_INVALID_UTF8,
        ErrorKind::BadSocket => sse_status::SSE_ERR_BAD_SOCKET,
        ErrorKind::NotFound => sse_status::SSE_ERR_NOT_FOUND,
        ErrorKind::LimitReached => sse_status::SSE_ERR_LIMIT_REACHED,
        ErrorKind::ShutDown => sse_status::SSE_ERR_SHUT_DOWN,
        ErrorKind::Io => sse_status::SSE_ERR_IO,
        ErrorKind::Panic => sse_status::SSE_ERR_PANIC,
    }
}

/// What happened to a client (see `sse_lifecycle_event`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sse_lifecycle_kind {
    /// The client was registered and its response head queued.
    SSE_CONNECTED = 0,
    /// The client is gone and its socket closed; `reason` says why.
    SSE_DISCONNECTED = 1,
    /// The client's Last-Event-ID is not (or no longer) in history: it missed events that
    /// cannot be replayed (it was sent the gap event, when configured) and must resync.
    SSE_GAP = 2,
    /// A stream-mode client has bytes to take with sse_stream_take (reported once until
    /// taken, and again after a take that left bytes behind).
    SSE_READABLE = 3,
}

/// Why a client left.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sse_disconnect_reason {
    /// Not a disconnect (the event is SSE_CONNECTED).
    SSE_REASON_NONE = 0,
    /// The client closed the connection.
    SSE_REASON_CLOSED = 1,
    /// A socket error (reset, broken pipe, other read/write error).
    SSE_REASON_ERROR = 2,
    /// The client's queue passed max_queue_bytes (it reads too slowly).
    SSE_REASON_SLOW = 3,
    /// The client accepted no bytes for write_timeout_ms, or its peer vanished (nothing
    /// acknowledged for write_timeout_ms).
    SSE_REASON_TIMEOUT = 4,
    /// The host disconnected it (sse_disconnect).
    SSE_REASON_SERVER = 5,
    /// The engine shut down.
    SSE_REASON_SHUTDOWN = 6,
}

fn reason_of(reason: DisconnectReason) -> sse_disconnect_reason {
    match reason {
        DisconnectReason::Closed => sse_disconnect_reason::SSE_REASON_CLOSED,
        DisconnectReason::Error => sse_disconnect_reason::SSE_REASON_ERROR,
        DisconnectReason::Slow => sse_disconnect_reason::SSE_REASON_SLOW,
        DisconnectReason::Timeout => sse_disconnect_reason::SSE_REASON_TIMEOUT,
        DisconnectReason::Server => sse_disconnect_reason::SSE_REASON_SERVER,
        DisconnectReason::Shutdown => sse_disconnect_reason::SSE_REASON_SHUTDOWN,
    }
}

/// A lifecycle event, valid only during the callback.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sse_lifecycle_event {
    pub kind: sse_lifecycle_kind,
    pub client: u64,
    pub reason: sse_disconnect_reason,
}

/// Lifecycle callback. It runs on an engine reactor thread: it must return quickly and
/// must not block, and it must not call sse_engine_shutdown or sse_engine_free.
/// Calling the send functions from it is allowed.
pub type sse_event_callback =
    Option<unsafe extern "C" fn(event: *const sse_lifecycle_event, user_data: *mut c_void)>;

/// An engine. Opaque; create with sse_engine_new, destroy with sse_engine_free.
pub struct sse_engine {
    engine: Engine,
}

/// Engine settings. Fill with sse_config_init, then change what you need.
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
    /// Bytes a client may have queued before it is dropped as slow (default 1 MiB, at least 1024).
    pub max_queue_bytes: usize,
    /// Most clients at once (default 0 = unlimited).
    pub max_clients: usize,
    /// Most clients per channel (default 0 = unlimited).
    pub max_clients_per_channel: usize,
    /// Give channel and broadcast-all events an engine id (`<epoch>-<seq>`) when the
    /// caller gives none (default true).
    pub auto_ids: bool,
    /// History kept per channel: most events (default 1000) and oldest age in
    /// milliseconds (default 300000); either 0 turns history off.
    pub history_max_events: u32,
    pub history_max_age_ms: u32,
    /// Most events replayed to a reconnecting client at once (default 1000, at least 1).
    pub max_replay: u32,
    /// Name of the event sent to a client whose Last-Event-ID is not in history
    /// (default "sse-gap"; NULL = none). Copied by sse_engine_new.
    pub gap_event: *const c_char,
}

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
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = text);
}

/// Runs an exported body: catches panics, maps errors, records the message.
fn call(body: impl FnOnce() -> Result<(), Error>) -> sse_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => sse_status::SSE_OK,
        Ok(Err(e)) => {
            set_last_error(&e.to_string());
            status_of(e.kind())
        }
        Err(_) => {
            set_last_error("internal panic: a bug in sse-engine");
            sse_status::SSE_ERR_PANIC
        }
    }
}

fn null(what: &str) -> Error {
    Error::new(ErrorKind::NullPointer, format!("{what} is NULL"))
}

/// Borrows a required C string.
fn text<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Error> {
    if ptr.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-NULL, and the caller guarantees a NUL-terminated string that lives for
    // the duration of the call.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    std::str::from_utf8(bytes)
        .map_err(|_| Error::new(ErrorKind::InvalidUtf8, format!("{what} is not valid UTF-8")))
}

/// Borrows an optional C string (NULL = None).
fn opt_text<'a>(ptr: *const c_char, what: &str) -> Result<Option<&'a str>, Error> {
    if ptr.is_null() {
        Ok(None)
    } else {
        text(ptr, what).map(Some)
    }
}

/// Borrows `len` items at `ptr` (NULL allowed when `len` is 0).
fn slice<'a, T>(ptr: *const T, len: usize, what: &str) -> Result<&'a [T], Error> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-NULL, and the caller guarantees `len` valid items for the call.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Borrows an optional struct argument (NULL = None).
fn opt_arg<'a, T>(ptr: *const T) -> Option<&'a T> {
    // SAFETY: the caller guarantees a non-NULL pointer points to a valid `T` for the call.
    unsafe { ptr.as_ref() }
}

/// Borrows a required struct argument.
fn arg<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, Error> {
    opt_arg(ptr).ok_or_else(|| null(what))
}

/// Checks a required out-parameter before any work is done.
fn required<T>(ptr: *mut T, what: &str) -> Result<(), Error> {
    if ptr.is_null() {
        Err(null(what))
    } else {
        Ok(())
    }
}

/// Writes an out-parameter; a NULL pointer is an error.
fn out<T>(ptr: *mut T, value: T, what: &str) -> Result<(), Error> {
    if ptr.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-NULL, and the caller guarantees it points to writable storage for a `T`.
    unsafe { ptr.write(value) };
    Ok(())
}

/// Writes an optional out-parameter (NULL = the caller does not want it).
fn out_opt<T>(ptr: *mut T, value: T) {
    if !ptr.is_null() {
        // SAFETY: as in `out`.
        unsafe { ptr.write(value) };
    }
}

fn engine_of<'a>(ptr: *const sse_engine) -> Result<&'a Engine, Error> {
    arg(ptr, "engine").map(|e| &e.engine)
}

fn event_of(ev: *const sse_event) -> Result<Event, Error> {
    let ev = arg(ev, "event")?;
    let data = slice(ev.data.cast::<u8>(), ev.data_len, "event data")?;
    let data = std::str::from_utf8(data)
        .map_err(|_| Error::new(ErrorKind::InvalidUtf8, "event data is not valid UTF-8"))?;
    Ok(Event {
        event: opt_text(ev.event, "event name")?.map(str::to_owned),
        id: opt_text(ev.id, "event id")?.map(str::to_owned),
        retry: (ev.retry_ms != 0).then_some(u64::from(ev.retry_ms)),
        data: data.to_owned(),
    })
}

fn millis(ms: u32) -> Option<Duration> {
    (ms != 0).then(|| Duration::from_millis(u64::from(ms)))
}

fn history_limits(max_events: u32, max_age_ms: u32) -> HistoryLimits {
    HistoryLimits {
        max_events: max_events as usize,
        max_age: Duration::from_millis(u64::from(max_age_ms)),
    }
}

fn limit(n: usize) -> Option<usize> {
    (n != 0).then_some(n)
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

/// Starts an engine and its reactor threads. `config` may be NULL for the defaults.
/// On success `*out_engine` owns the engine: release it with sse_engine_free.
#[no_mangle]
pub extern "C" fn sse_engine_new(
    config: *const sse_config,
    out_engine: *mut *mut sse_engine,
) -> sse_status {
    call(|| {
        required(out_engine, "out_engine")?;
        let config = match opt_arg(config) {
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
        };
        let engine = Engine::start(config)?;
        let handle = Box::into_raw(Box::new(sse_engine { engine }));
        out(out_engine, handle, "out_engine")
    })
}

/// Shuts the engine down if needed (flushing for at most 1 s) and frees it.
/// NULL is ignored. The handle must not be used afterwards, nor concurrently.
/// Must not be called from the lifecycle callback.
#[no_mangle]
pub extern "C" fn sse_engine_free(engine: *mut sse_engine) {
    if engine.is_null() {
        return;
    }
    let _ = call(|| {
        // SAFETY: `engine` came from sse_engine_new (Box::into_raw) and is freed only here.
        drop(unsafe { Box::from_raw(engine) });
        Ok(())
    });
}

/// Stops taking clients, flushes queued bytes for at most `timeout_ms`, closes every
/// client (reason SSE_REASON_SHUTDOWN) and stops the reactor threads. Blocks until done.
/// Every later call on the engine, and a second shutdown, returns SSE_ERR_SHUT_DOWN.
/// Called from the lifecycle callback it returns SSE_ERR_INVALID_ARGUMENT.
#[no_mangle]
pub extern "C" fn sse_engine_shutdown(engine: *const sse_engine, timeout_ms: u32) -> sse_status {
    call(|| engine_of(engine)?.shutdown(Duration::from_millis(u64::from(timeout_ms))))
}

/// Like sse_engine_shutdown, first sending `last` (may be NULL) to every client.
#[no_mangle]
pub extern "C" fn sse_engine_shutdown_with_event(
    engine: *const sse_engine,
    timeout_ms: u32,
    last: *const sse_event,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        let last = if last.is_null() {
            None
        } else {
            Some(event_of(last)?)
        };
        e.shutdown_with(Duration::from_millis(u64::from(timeout_ms)), last.as_ref())
    })
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
        let id = e.connect_fd(fd, &options)?;
        out(out_client, id, "out_client")
    })
}

/// Registers a stream-mode client, for a connection whose socket cannot be handed over
/// (TLS terminated in your server, HTTP/2). The engine keeps its state (channels,
/// history and replay, heartbeats, limits, timeouts); you write its bytes: write the
/// response head yourself (200, `Content-Type: text/event-stream`, `Cache-Control:
/// no-cache`), then on each SSE_READABLE call sse_stream_take and write what it gives;
/// when the connection ends call sse_stream_close; on SSE_DISCONNECTED end the
/// response. `options->headers` must be empty and `head_sent` is implied. A limit
/// gives SSE_ERR_LIMIT_REACHED (answer 503 yourself).
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
    call(|| engine_of(engine)?.close_stream(client))
}

fn connect_options(o: &sse_connect_options) -> Result<ConnectOptions, Error> {
    let channels = slice(o.channels, o.channels_len, "channels")?
        .iter()
        .map(|&c| text(c, "channel name").map(str::to_owned))
        .collect::<Result<Vec<_>, _>>()?;
    let headers = slice(o.headers, o.headers_len, "headers")?
        .iter()
        .map(|h| {
            Ok((
                text(h.name, "header name")?.to_owned(),
                text(h.value, "header value")?.to_owned(),
            ))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(ConnectOptions {
        channels,
        user: opt_text(o.user, "user")?.map(str::to_owned),
        metadata: opt_text(o.metadata_json, "metadata_json")?.map(str::to_owned),
        headers,
        last_event_id: opt_text(o.last_event_id, "last_event_id")?.map(str::to_owned),
        retry: (o.retry_ms != 0).then_some(u64::from(o.retry_ms)),
        head_sent: o.head_sent,
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
        e.send_to_client(client, &event_of(event)?).map(drop)
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
    call(|| engine_of(engine)?.disconnect(client))
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
        e.configure_channel(text(channel, "channel")?, limits)
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
        e.set_metadata(client, opt_text(metadata_json, "metadata_json")?)
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

/// Hands a string to the caller; it frees it with sse_string_free.
fn give_string(ptr: *mut *mut c_char, text: String) -> Result<(), Error> {
    // JSON and Prometheus text never contain NUL (JSON escapes it as \u0000).
    let text = CString::new(text).map_err(|_| Error::new(ErrorKind::Panic, "NUL in output"))?;
    out(ptr, text.into_raw(), "out")
}

fn give_json(ptr: *mut *mut c_char, value: serde_json::Value) -> Result<(), Error> {
    give_string(ptr, value.to_string())
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

fn give_clients(ptr: *mut *mut c_char, clients: Vec<engine::ClientInfo>) -> Result<(), Error> {
    give_json(
        ptr,
        clients.iter().map(engine::ClientInfo::to_json).collect(),
    )
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
        let list = e
            .channels()?
            .iter()
            .map(engine::ChannelInfo::to_json)
            .collect();
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

/// The C callback and its user data, carried to the reactor threads.
struct CCallback {
    callback: unsafe extern "C" fn(*const sse_lifecycle_event, *mut c_void),
    user_data: *mut c_void,
}

impl CCallback {
    fn invoke(&self, event: &sse_lifecycle_event) {
        // SAFETY: the caller registered a valid function; `event` lives for the call.
        unsafe { (self.callback)(event, self.user_data) }
    }
}

// SAFETY: the header requires the callback and its user_data to be usable from the
// engine's reactor threads; the engine never dereferences user_data itself.
unsafe impl Send for CCallback {}
// SAFETY: as above; the callback may run on several reactor threads at once when the
// engine has more than one, which the header states.
unsafe impl Sync for CCallback {}

/// Registers the lifecycle callback (NULL removes it). `user_data` is passed back as is.
/// The callback runs on a reactor thread and must not block (see sse_event_callback).
/// With several threads it may run concurrently. When this returns, the previous
/// callback is no longer called, so its user_data may be freed. Called from inside the
/// callback, it returns at once and the new callback gets every later event of that
/// reactor thread: with one thread (the default) the old user_data may be freed there,
/// once the callback no longer uses it; with several, other threads switch at their next
/// turn and may still be running the old callback.
#[no_mangle]
pub extern "C" fn sse_set_event_callback(
    engine: *const sse_engine,
    callback: sse_event_callback,
    user_data: *mut c_void,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        let Some(callback) = callback else {
            return e.set_event_handler(None);
        };
        let c = CCallback {
            callback,
            user_data,
        };
        e.set_event_handler(Some(Arc::new(move |event: &LifecycleEvent| {
            let value = match *event {
                LifecycleEvent::Connected { client } => sse_lifecycle_event {
                    kind: sse_lifecycle_kind::SSE_CONNECTED,
                    client,
                    reason: sse_disconnect_reason::SSE_REASON_NONE,
                },
                LifecycleEvent::Disconnected { client, reason } => sse_lifecycle_event {
                    kind: sse_lifecycle_kind::SSE_DISCONNECTED,
                    client,
                    reason: reason_of(reason),
                },
                LifecycleEvent::Gap { client } => sse_lifecycle_event {
                    kind: sse_lifecycle_kind::SSE_GAP,
                    client,
                    reason: sse_disconnect_reason::SSE_REASON_NONE,
                },
                LifecycleEvent::Readable { client } => sse_lifecycle_event {
                    kind: sse_lifecycle_kind::SSE_READABLE,
                    client,
                    reason: sse_disconnect_reason::SSE_REASON_NONE,
                },
            };
            c.invoke(&value);
        })))
    })
}

/// A static, human-readable name for a status code (never NULL; "unknown status" for a
/// value that is no sse_status).
#[no_mangle]
pub extern "C" fn sse_status_str(status: c_int) -> *const c_char {
    const ALL: [sse_status; 10] = [
        sse_status::SSE_OK,
        sse_status::SSE_ERR_NULL_POINTER,
        sse_status::SSE_ERR_INVALID_ARGUMENT,
        sse_status::SSE_ERR_INVALID_UTF8,
        sse_status::SSE_ERR_BAD_SOCKET,
        sse_status::SSE_ERR_NOT_FOUND,
        sse_status::SSE_ERR_LIMIT_REACHED,
        sse_status::SSE_ERR_SHUT_DOWN,
        sse_status::SSE_ERR_IO,
        sse_status::SSE_ERR_PANIC,
    ];
    let Some(&status) = ALL.iter().find(|s| **s as c_int == status) else {
        return c"unknown status".as_ptr();
    };
    let s: &'static CStr = match status {
        sse_status::SSE_OK => c"ok",
        sse_status::SSE_ERR_NULL_POINTER => c"null pointer",
        sse_status::SSE_ERR_INVALID_ARGUMENT => c"invalid argument",
        sse_status::SSE_ERR_INVALID_UTF8 => c"invalid UTF-8",
        sse_status::SSE_ERR_BAD_SOCKET => c"bad socket",
        sse_status::SSE_ERR_NOT_FOUND => c"not found",
        sse_status::SSE_ERR_LIMIT_REACHED => c"limit reached",
        sse_status::SSE_ERR_SHUT_DOWN => c"shut down",
        sse_status::SSE_ERR_IO => c"I/O error",
        sse_status::SSE_ERR_PANIC => c"internal panic",
    };
    s.as_ptr()
}

/// The message of the last error on this thread ("" if none). Valid until the next call
/// into this library on the same thread; never NULL.
#[no_mangle]
pub extern "C" fn sse_last_error_message() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// The library version, e.g. "0.1.0" (static, never NULL).
#[no_mangle]
pub extern "C" fn sse_version() -> *const c_char {
    static VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => panic!("version contains NUL"),
        };
    VERSION.as_ptr()
}
