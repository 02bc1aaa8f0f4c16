//! Ending a `NativeEngine`: `close()` on a thread of its own (its events, then one
//! `CLOSED` event), `finishClose()` when JavaScript got them, and `Drop` for an engine
//! collected without `close()`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::time::Duration;

use napi::Env;
use napi_derive::napi;

use crate::{convert, error, events, fault, lock, NativeEngine, CLOSED, CLOSING};

/// What went wrong in the shutdown thread of `close()`.
pub(crate) enum CloseFailure {
    Engine(sse_engine::Error),
    /// The panic's message.
    Panic(String),
}

#[napi]
impl NativeEngine {
    /// Keep the process alive while the engine is open (`true`), or not (`false`).
    #[napi(catch_unwind)]
    pub fn set_ref(&self, env: Env, keep_alive: bool) -> napi::Result<()> {
        error::guard(&env, || match lock(&self.sink).as_ref() {
            Some(sink) => sink.set_ref(&env, keep_alive),
            None => Ok(()),
        })
    }

    /// Starts the shutdown on a thread of its own and returns at once. Events of the
    /// shutdown follow, then one `CLOSED` event; until then the process is kept alive
    /// and other calls answer quietly (`error.rs`). A second call throws `SSE_SHUT_DOWN`.
    #[napi(catch_unwind)]
    #[allow(clippy::too_many_arguments)]
    pub fn close(
        &self,
        env: Env,
        timeout_ms: f64,
        data: Option<String>,
        event: Option<String>,
        id: Option<String>,
        retry: Option<f64>,
    ) -> napi::Result<()> {
        error::guard(&env, || {
            let deadline = Duration::from_millis(convert::uint(&env, "timeoutMs", timeout_ms)?);
            let last = match data {
                Some(data) => {
                    let last = convert::event(&env, data, event, id, retry)?;
                    error::check(&env, last.validate())?;
                    Some(last)
                }
                None => None,
            };
            self.open(&env)?;
            let sink = lock(&self.sink)
                .clone()
                .ok_or_else(|| error::shut_down(&env))?;
            let shutdown_sink = sink.clone();
            let engine = self.engine.clone();
            let slot = self.sink.clone();
            let close_error = self.close_error.clone();
            let spawned = std::thread::Builder::new()
                .name("sse-engine-close".into())
                .spawn(move || {
                    // A panic here would end the thread without the `CLOSED` event, and
                    // `close()` would never settle: it rejects with `SSE_PANIC` instead.
                    let result = catch_unwind(AssertUnwindSafe(|| {
                        fault::hit(fault::Point::Close);
                        engine.shutdown_with(deadline, last.as_ref())
                    }));
                    let failure = match result {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(CloseFailure::Engine(e)),
                        Err(payload) => {
                            let message = error::panic_message(payload.as_ref());
                            std::mem::forget(payload);
                            Some(CloseFailure::Panic(message))
                        }
                    };
                    let panicked = matches!(failure, Some(CloseFailure::Panic(_)));
                    if failure.is_some() {
                        *lock(&close_error) = failure;
                    }
                    // Once JavaScript got this, nothing more comes: the handler is gone
                    // with the reactor threads, and dropping the sink releases the
                    // threadsafe function so it no longer holds the process. After a
                    // panic the reactor threads may still hold the handler: then
                    // `finish_close` unrefs the sink on the JavaScript thread.
                    shutdown_sink.push(events::CLOSED, 0.0, 0.0);
                    if !panicked {
                        lock(&slot).take();
                    }
                });
            if let Err(e) = spawned {
                // Nothing started: the engine stays open as it was.
                return Err(error::throw(
                    &env,
                    sse_engine::Error::io("start the shutdown thread", e),
                ));
            }
            // The shutdown's events reach JavaScript only after this call returns.
            self.state.store(CLOSING, Ordering::SeqCst);
            sink.set_ref(&env, true)
        })
    }

    /// JavaScript got the `CLOSED` event (every event of the shutdown was emitted):
    /// from now on calls throw `SSE_SHUT_DOWN`. Throws what went wrong in the shutdown
    /// `close()` started, if anything.
    #[napi(catch_unwind)]
    pub fn finish_close(&self, env: Env) -> napi::Result<()> {
        error::guard(&env, || {
            self.state.store(CLOSED, Ordering::SeqCst);
            // Normally the shutdown thread already dropped the sink (see `close`).
            if let Some(sink) = lock(&self.sink).take() {
                sink.set_ref(&env, false)?;
            }
            match lock(&self.close_error).take() {
                Some(CloseFailure::Engine(e)) => Err(error::throw(&env, e)),
                Some(CloseFailure::Panic(message)) => Err(error::panicked(&env, message)),
                None => Ok(()),
            }
        })
    }
}

impl Drop for NativeEngine {
    /// Runs in the object's finalizer, which napi-rs calls without a panic boundary: a
    /// panic here is caught and reported on stderr.
    fn drop(&mut self) {
        // Collected without close() (the JavaScript `Engine` became unreachable): dropping
        // the engine shuts it down as in Rust, flushing for up to a second and joining
        // its threads, which must not happen on the JavaScript thread. Its clients'
        // events still reach the sink, whose callback finds no `Engine` any more; the
        // sink and its threadsafe function go with the last reactor thread.
        let engine = self.engine.clone();
        let dropped = catch_unwind(AssertUnwindSafe(move || {
            let _ = std::thread::Builder::new()
                .name("sse-engine-drop".into())
                .spawn(move || drop(engine));
        }));
        if let Err(payload) = dropped {
            events::report("dropping an engine", payload);
        }
    }
}
