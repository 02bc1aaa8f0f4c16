//! The engine handle: `sse_engine_new`, `sse_engine_free` and the shutdowns.

use std::time::Duration;

use ::sse_engine::{Engine, Event};

use crate::config::{config_of, sse_config};
use crate::convert::{arg, out, required};
use crate::send::{event_of, sse_event};
use crate::status::{call, sse_status, Failure};

/// An engine. Opaque; create with sse_engine_new, destroy with sse_engine_free.
pub struct sse_engine {
    engine: Engine,
}

/// Borrows the engine behind a required handle argument.
pub(crate) fn engine_of<'a>(ptr: *const sse_engine) -> Result<&'a Engine, Failure> {
    arg(ptr, "engine").map(|e| &e.engine)
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
        let config = config_of(config)?;
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
    call(|| Ok(engine_of(engine)?.shutdown(Duration::from_millis(u64::from(timeout_ms)))?))
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
        let last = last_event(last)?;
        Ok(e.shutdown_with(Duration::from_millis(u64::from(timeout_ms)), last.as_ref())?)
    })
}

/// The shutdown of sse_engine_shutdown_with_event (`last` may be NULL) without waiting:
/// from its return every call on the engine returns SSE_ERR_SHUT_DOWN while the reactors
/// flush for at most `timeout_ms` and close their clients on their own threads; wait for
/// them with sse_engine_wait_shutdown (sse_engine_free waits too).
#[no_mangle]
pub extern "C" fn sse_engine_begin_shutdown(
    engine: *const sse_engine,
    timeout_ms: u32,
    last: *const sse_event,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        let last = last_event(last)?;
        Ok(e.begin_shutdown(Duration::from_millis(u64::from(timeout_ms)), last.as_ref())?)
    })
}

/// Waits for a shutdown begun by sse_engine_begin_shutdown, at most `timeout_ms`
/// milliseconds (a negative value: as long as it takes). `*out_stopped` is true when
/// every reactor thread stopped (every client's last lifecycle event was delivered),
/// false when the time ran out. SSE_ERR_INVALID_ARGUMENT before any shutdown began or
/// from the callback.
#[no_mangle]
pub extern "C" fn sse_engine_wait_shutdown(
    engine: *const sse_engine,
    timeout_ms: i64,
    out_stopped: *mut bool,
) -> sse_status {
    call(|| {
        let e = engine_of(engine)?;
        required(out_stopped, "out_stopped")?;
        let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        out(out_stopped, e.wait_shutdown(timeout)?, "out_stopped")
    })
}

/// The optional last event of a shutdown (NULL = none).
fn last_event(last: *const sse_event) -> Result<Option<Event>, Failure> {
    if last.is_null() {
        return Ok(None);
    }
    event_of(last).map(Some)
}
