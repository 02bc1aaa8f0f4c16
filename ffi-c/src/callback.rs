//! Lifecycle events and the callback that receives them: `sse_lifecycle_event`, its
//! kinds and disconnect reasons, and `sse_set_event_callback`.

use std::ffi::c_void;
use std::sync::Arc;

use ::sse_engine::{DisconnectReason, LifecycleEvent};

use crate::engine::{engine_of, sse_engine};
use crate::status::{call, sse_status};

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
            return Ok(e.set_event_handler(None)?);
        };
        let c = CCallback {
            callback,
            user_data,
        };
        let handler = Arc::new(move |event: &LifecycleEvent| {
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
        });
        Ok(e.set_event_handler(Some(handler))?)
    })
}
