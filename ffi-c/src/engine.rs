//! The engine handle: `sse_engine_new`, `sse_engine_free` and the shutdowns.

use std::time::Duration;

use ::sse_engine::{Engine, Error};

use crate::config::{config_of, sse_config};
use crate::convert::{arg, out, required};
use crate::send::{event_of, sse_event};
use crate::status::{call, sse_status};

/// An engine. Opaque; create with sse_engine_new, destroy with sse_engine_free.
pub struct sse_engine {
    engine: Engine,
}

/// Borrows the engine behind a required handle argument.
pub(crate) fn engine_of<'a>(ptr: *const sse_engine) -> Result<&'a Engine, Error> {
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
