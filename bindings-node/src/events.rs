//! Lifecycle events, from the reactor threads to JavaScript.
//!
//! The engine's handler runs on a reactor thread and must not block. It appends the
//! event to a queue and, when the queue was empty, makes one non-blocking call of a
//! weak (unreferenced) `ThreadsafeFunction`. On the JavaScript thread that call takes
//! the whole queue and hands it to JavaScript as one `Float64Array` of
//! `[kind, client, reason]` triples, so a burst of events costs one wake-up.
//!
//! "Weak" is about the event loop only: the threadsafe function holds the JavaScript
//! callback through a strong persistent reference until it is released, which is
//! after the reactor threads stopped. That callback must therefore not hold the
//! JavaScript `Engine` strongly (index.js gives it a `WeakRef`), or no engine could
//! ever be garbage-collected and shut down by `NativeEngine`'s `Drop`.

use std::any::Any;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};

use napi::bindgen_prelude::{Float64Array, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};
use sse_engine::{EventHandler, LifecycleEvent};

use crate::{error, fault};

/// Event kinds as JavaScript sees them (the first number of each triple).
pub(crate) const CONNECTED: f64 = 0.0;
pub(crate) const DISCONNECTED: f64 = 1.0;
pub(crate) const GAP: f64 = 2.0;
pub(crate) const READABLE: f64 = 3.0;
/// Not an engine event: the shutdown started by `close()` finished. It is queued after
/// every event of the shutdown, so JavaScript sees them all before `close()` resolves.
pub(crate) const CLOSED: f64 = 4.0;

/// A panic caught where there is no call to throw it from: one line on stderr (the
/// write's own failure is ignored, and the payload is not dropped, as its `Drop` could
/// panic again).
pub(crate) fn report(what: &str, payload: Box<dyn Any + Send>) {
    let message = error::panic_message(payload.as_ref());
    std::mem::forget(payload);
    let _ = writeln!(std::io::stderr(), "{message} while {what}");
}

/// Events waiting for the JavaScript thread.
#[derive(Default)]
struct Pending {
    events: Vec<f64>,
    /// A call of the threadsafe function is on its way and will take `events`.
    scheduled: bool,
}

type Tsfn = ThreadsafeFunction<(), (), Float64Array, Status, false, true>;

/// The queue and the threadsafe function that drains it.
pub(crate) struct EventSink {
    pending: Arc<Mutex<Pending>>,
    tsfn: Tsfn,
}

fn lock(pending: &Mutex<Pending>) -> MutexGuard<'_, Pending> {
    // A panic while holding this lock cannot leave the plain vector inconsistent.
    pending.lock().unwrap_or_else(|e| e.into_inner())
}

impl EventSink {
    /// Wraps `callback`, which gets each batch as a `Float64Array`.
    pub(crate) fn new(callback: &Function<'_, Float64Array, ()>) -> napi::Result<Arc<EventSink>> {
        let pending = Arc::new(Mutex::new(Pending::default()));
        let taken = pending.clone();
        let tsfn = callback
            .build_threadsafe_function::<()>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(move |_| {
                // This runs on the JavaScript thread from Node's libuv loop, where a
                // panic would abort the process: a panic loses this batch's events,
                // says so on stderr and hands JavaScript an empty batch. Later
                // batches come as before (`scheduled` is reset first).
                let batch = catch_unwind(AssertUnwindSafe(|| {
                    let mut pending = lock(&taken);
                    pending.scheduled = false;
                    let events = std::mem::take(&mut pending.events);
                    drop(pending);
                    fault::hit(fault::Point::Events);
                    events
                }));
                Ok(Float64Array::new(batch.unwrap_or_else(|payload| {
                    report("delivering lifecycle events (this batch is lost)", payload);
                    Vec::new()
                })))
            })?;
        Ok(Arc::new(EventSink { pending, tsfn }))
    }

    /// Queues one triple; wakes the JavaScript thread if nothing is on its way yet.
    /// Never blocks on JavaScript (only on the short queue lock).
    pub(crate) fn push(&self, kind: f64, client: f64, reason: f64) {
        let wake = {
            let mut pending = lock(&self.pending);
            pending.events.extend_from_slice(&[kind, client, reason]);
            !std::mem::replace(&mut pending.scheduled, true)
        };
        if wake {
            // Non-blocking on an unbounded queue: it fails only while Node tears the
            // environment down, when nobody is left to tell.
            let _ = self.tsfn.call((), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }

    /// The engine handler feeding this sink.
    /// It runs on a reactor thread: a panic in it stays here (the event is lost, and
    /// said so on stderr) instead of unwinding into the engine's reactor.
    pub(crate) fn handler(self: &Arc<Self>) -> EventHandler {
        let sink = self.clone();
        Arc::new(move |event: &LifecycleEvent| {
            let event = *event;
            let pushed = catch_unwind(AssertUnwindSafe(|| {
                let client = event.client() as f64;
                match event {
                    LifecycleEvent::Connected { .. } => sink.push(CONNECTED, client, 0.0),
                    LifecycleEvent::Disconnected { reason, .. } => {
                        sink.push(DISCONNECTED, client, reason as u32 as f64)
                    }
                    LifecycleEvent::Gap { .. } => sink.push(GAP, client, 0.0),
                    LifecycleEvent::Readable { .. } => sink.push(READABLE, client, 0.0),
                }
            }));
            if let Err(payload) = pushed {
                report("queueing a lifecycle event (it is lost)", payload);
            }
        })
    }

    /// Lets (`true`) or stops (`false`) the pending events keep the Node process alive.
    pub(crate) fn set_ref(&self, env: &Env, keep_alive: bool) -> napi::Result<()> {
        let raw = self.tsfn.raw();
        // SAFETY: called on the JavaScript thread with its live environment; `raw` is
        // this sink's threadsafe function, which lives as long as `self.tsfn`.
        let status = unsafe {
            if keep_alive {
                napi::sys::napi_ref_threadsafe_function(env.raw(), raw)
            } else {
                napi::sys::napi_unref_threadsafe_function(env.raw(), raw)
            }
        };
        if status == napi::sys::Status::napi_ok {
            Ok(())
        } else {
            Err(napi::Error::new(
                Status::from(status),
                "cannot change whether the engine keeps the process alive",
            ))
        }
    }
}
