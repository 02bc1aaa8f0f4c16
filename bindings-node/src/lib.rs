//! Node.js binding of sse-engine (napi-rs): a thin class over `Arc<Engine>`.
//!
//! It converts values, drains lifecycle events into JavaScript, and duplicates the
//! descriptor of a socket handed over by Node. Everything else (hand-over from the
//! HTTP frameworks, stream mode, the JavaScript API) is in the package's JavaScript
//! layer; everything about SSE is in the engine.
//!
//! Every export runs inside the panic boundary of `error::guard` (a panic throws an
//! `Error` with code `SSE_PANIC`) and carries `#[napi(catch_unwind)]` around it; see
//! `error.rs`.

mod closing;
mod convert;
mod error;
mod events;
mod fault;
pub mod http;

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use napi::bindgen_prelude::{Buffer, Float64Array, Function};
use napi::Env;
use napi_derive::napi;
use serde_json::Value;
use sse_engine::{ClientInfo, Engine};

use closing::CloseFailure;
use convert::{client_id, ConnectInput, EngineOptions, Js};
use error::WhileClosing;
use events::EventSink;

/// Where the engine is, as JavaScript sees it (`NativeEngine::state`).
const OPEN: u8 = 0;
/// `close()` was called and JavaScript has not yet had the shutdown's last event.
const CLOSING: u8 = 1;
/// `close()` resolved.
const CLOSED: u8 = 2;

/// The engine's version.
#[napi]
pub const VERSION: &str = sse_engine::VERSION;

/// One engine and the queue its lifecycle events reach JavaScript through.
#[napi]
pub struct NativeEngine {
    engine: Arc<Engine>,
    /// `None` once the shutdown that `close()` started has finished: dropping it
    /// releases the threadsafe function.
    sink: Arc<Mutex<Option<Arc<EventSink>>>>,
    /// What went wrong in the shutdown thread, if anything.
    close_error: Arc<Mutex<Option<CloseFailure>>>,
    /// `OPEN`, `CLOSING` or `CLOSED`. The engine itself refuses calls once its
    /// shutdown runs, which is on another thread a moment later; from JavaScript's
    /// point of view the engine stops working as soon as `close()` returns, and
    /// answers quietly until `close()` resolves (see `error.rs`).
    state: AtomicU8,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn clients_json(clients: Vec<ClientInfo>) -> Value {
    Value::Array(clients.iter().map(convert::client_json).collect())
}

/// A duplicate of `fd`, close-on-exec, owned by the caller.
fn dup_cloexec(fd: RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: `fcntl(F_DUPFD_CLOEXEC)` reads no memory; on a bad descriptor it fails
    // with EBADF and returns -1.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `dup` is a descriptor we just created and nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

impl NativeEngine {
    /// The engine for a hand-over or `close()`: `SSE_SHUT_DOWN` once `close()` was called.
    fn open(&self, env: &Env) -> napi::Result<&Engine> {
        if self.state.load(Ordering::SeqCst) != OPEN {
            return Err(error::shut_down(env));
        }
        Ok(&self.engine)
    }

    /// The one guard of every other engine call: runs `call` while the engine is open;
    /// while the shutdown of `close()` runs, answers quietly without calling the engine
    /// (nothing delivered, nobody found); once `close()` resolved, `SSE_SHUT_DOWN`.
    fn with_engine<T: WhileClosing>(
        &self,
        env: &Env,
        call: impl FnOnce(&Engine) -> napi::Result<T>,
    ) -> napi::Result<T> {
        match self.state.load(Ordering::SeqCst) {
            OPEN => call(&self.engine),
            CLOSING => Ok(T::while_closing()),
            _ => Err(error::shut_down(env)),
        }
    }
}

#[napi]
impl NativeEngine {
    /// Starts an engine. `on_events` gets lifecycle events in batches of
    /// `[kind, client, reason]` triples (see `events.rs`).
    #[napi(constructor, catch_unwind)]
    pub fn new(
        env: Env,
        options: Option<EngineOptions>,
        on_events: Function<'_, Float64Array, ()>,
    ) -> napi::Result<Self> {
        error::guard(&env, || {
            let config = convert::config(&env, options)?;
            let engine = error::check(&env, Engine::start(config))?;
            let sink = EventSink::new(&on_events)?;
            error::check(&env, engine.set_event_handler(Some(sink.handler())))?;
            Ok(NativeEngine {
                engine: Arc::new(engine),
                sink: Arc::new(Mutex::new(Some(sink))),
                close_error: Arc::new(Mutex::new(None)),
                state: AtomicU8::new(OPEN),
            })
        })
    }

    /// Seconds sent in `Retry-After` when a limit refuses a client.
    #[napi(getter, catch_unwind)]
    pub fn busy_retry_after_secs(&self, env: Env) -> napi::Result<u32> {
        error::guard(&env, || Ok(self.engine.config().busy_retry_after_secs))
    }

    /// Hands over a connected TCP socket: the engine gets a duplicate of `fd` (the
    /// caller still closes its own descriptor). Returns the client id; a refusal throws
    /// with `fdTaken` (see `error::throw_refused`).
    #[napi(catch_unwind)]
    pub fn connect_fd(&self, env: Env, fd: i32, options: ConnectInput) -> napi::Result<f64> {
        error::guard(&env, || {
            let engine = self.open(&env)?;
            let options = convert::connect_options(&env, options)?;
            if fd < 0 {
                return Err(error::range(&env, format!("fd must be >= 0, got {fd}")));
            }
            let dup = dup_cloexec(fd).map_err(|e| {
                error::throw(&env, sse_engine::Error::io("duplicate the socket", e))
            })?;
            // A duplicate given back with the refusal is closed when it drops.
            let id = engine
                .connect_fd(dup, &options)
                .map_err(|refused| error::throw_refused(&env, refused))?;
            Ok(id as f64)
        })
    }

    /// Registers a stream-mode client (the JavaScript layer writes its bytes).
    #[napi(catch_unwind)]
    pub fn connect_stream(&self, env: Env, options: ConnectInput) -> napi::Result<f64> {
        error::guard(&env, || {
            let options = convert::connect_options(&env, options)?;
            let id = error::check(&env, self.open(&env)?.connect_stream(&options))?;
            Ok(id as f64)
        })
    }

    /// Up to `max_bytes` queued for a stream-mode client; `null` once it is gone.
    #[napi(catch_unwind)]
    pub fn take_stream(
        &self,
        env: Env,
        client: f64,
        max_bytes: u32,
    ) -> napi::Result<Option<Buffer>> {
        error::guard(&env, || {
            let client = client_id(&env, client)?;
            let taken = error::found(&env, self.engine.take_stream(client, max_bytes as usize))?;
            Ok(taken.map(|bytes| Buffer::from(bytes.to_vec())))
        })
    }

    /// The response of a stream-mode client closed. `false` if it was already gone.
    #[napi(catch_unwind)]
    pub fn close_stream(&self, env: Env, client: f64) -> napi::Result<bool> {
        error::guard(&env, || {
            let client = client_id(&env, client)?;
            Ok(error::found(&env, self.engine.close_stream(client))?.is_some())
        })
    }

    /// Sends to one client; `false` when no such client is connected.
    #[napi(catch_unwind)]
    pub fn send(
        &self,
        env: Env,
        client: f64,
        data: String,
        event: Option<String>,
        id: Option<String>,
        retry: Option<f64>,
    ) -> napi::Result<bool> {
        error::guard(&env, || {
            let client = client_id(&env, client)?;
            let event = convert::event(&env, data, event, id, retry)?;
            self.with_engine(&env, |engine| {
                Ok(error::found(&env, engine.send_to_client(client, &event))?.is_some())
            })
        })
    }

    #[napi(catch_unwind)]
    pub fn send_to_user(
        &self,
        env: Env,
        user: String,
        data: String,
        event: Option<String>,
        id: Option<String>,
        retry: Option<f64>,
    ) -> napi::Result<u32> {
        error::guard(&env, || {
            let event = convert::event(&env, data, event, id, retry)?;
            self.with_engine(&env, |engine| {
                Ok(error::check(&env, engine.send_to_user(&user, &event))? as u32)
            })
        })
    }

    #[napi(catch_unwind)]
    pub fn broadcast(
        &self,
        env: Env,
        channel: String,
        data: String,
        event: Option<String>,
        id: Option<String>,
        retry: Option<f64>,
    ) -> napi::Result<u32> {
        error::guard(&env, || {
            let event = convert::event(&env, data, event, id, retry)?;
            self.with_engine(&env, |engine| {
                Ok(error::check(&env, engine.broadcast(&channel, &event))? as u32)
            })
        })
    }

    /// Many events, each to its channel, in one engine call: item `i` is
    /// `(channels[i], data[i], events[i], ids[i], retries[i])`; a column no item uses is
    /// absent. Returns the deliveries queued (the sum over the items).
    #[napi(catch_unwind)]
    pub fn broadcast_many(
        &self,
        env: Env,
        channels: Vec<String>,
        data: Vec<String>,
        events: Option<Vec<Option<String>>>,
        ids: Option<Vec<Option<String>>>,
        retries: Option<Vec<Option<f64>>>,
    ) -> napi::Result<u32> {
        error::guard(&env, || {
            let items = convert::publish_items(&env, channels, data, events, ids, retries)?;
            self.with_engine(&env, |engine| {
                Ok(error::check(&env, engine.broadcast_many(&items))? as u32)
            })
        })
    }

    #[napi(catch_unwind)]
    pub fn broadcast_all(
        &self,
        env: Env,
        data: String,
        event: Option<String>,
        id: Option<String>,
        retry: Option<f64>,
    ) -> napi::Result<u32> {
        error::guard(&env, || {
            let event = convert::event(&env, data, event, id, retry)?;
            self.with_engine(&env, |engine| {
                Ok(error::check(&env, engine.broadcast_all(&event))? as u32)
            })
        })
    }

    /// `filter` is the engine's filter as JSON text.
    #[napi(catch_unwind)]
    #[allow(clippy::too_many_arguments)]
    pub fn broadcast_where(
        &self,
        env: Env,
        channel: String,
        filter: String,
        data: String,
        event: Option<String>,
        id: Option<String>,
        retry: Option<f64>,
    ) -> napi::Result<u32> {
        error::guard(&env, || {
            let event = convert::event(&env, data, event, id, retry)?;
            self.with_engine(&env, |engine| {
                let count = engine.broadcast_where(&channel, &filter, &event);
                Ok(error::check(&env, count)? as u32)
            })
        })
    }

    /// `true` when added; `false` when already a member or no such client.
    #[napi(catch_unwind)]
    pub fn subscribe(&self, env: Env, client: f64, channel: String) -> napi::Result<bool> {
        error::guard(&env, || {
            let client = client_id(&env, client)?;
            self.with_engine(&env, |engine| {
                Ok(error::found(&env, engine.subscribe(client, &channel))?.unwrap_or(false))
            })
        })
    }

    /// `true` when removed; `false` when not a member or no such client.
    #[napi(catch_unwind)]
    pub fn unsubscribe(&self, env: Env, client: f64, channel: String) -> napi::Result<bool> {
        error::guard(&env, || {
            let client = client_id(&env, client)?;
            self.with_engine(&env, |engine| {
                Ok(error::found(&env, engine.unsubscribe(client, &channel))?.unwrap_or(false))
            })
        })
    }

    /// `false` when no such client is connected.
    #[napi(catch_unwind)]
    pub fn disconnect(&self, env: Env, client: f64) -> napi::Result<bool> {
        error::guard(&env, || {
            let client = client_id(&env, client)?;
            self.with_engine(&env, |engine| {
                Ok(error::found(&env, engine.disconnect(client))?.is_some())
            })
        })
    }

    /// The client as `ClientInfo::to_json` shows it, or `null`.
    #[napi(ts_return_type = "import('./index').ClientInfo | null", catch_unwind)]
    pub fn get_client(&self, env: Env, client: f64) -> napi::Result<Js> {
        error::guard(&env, || {
            let client = client_id(&env, client)?;
            let info = self.with_engine(&env, |engine| {
                let info = error::found(&env, engine.get_client(client))?;
                Ok(info.as_ref().map(convert::client_json))
            })?;
            convert::to_js(&env, info)
        })
    }

    #[napi(ts_return_type = "import('./index').ClientInfo[]", catch_unwind)]
    pub fn clients(&self, env: Env) -> napi::Result<Js> {
        error::guard(&env, || {
            let clients = self.with_engine(&env, |engine| {
                Ok(clients_json(error::check(&env, engine.clients())?))
            })?;
            convert::to_js(&env, clients)
        })
    }

    #[napi(ts_return_type = "import('./index').ClientInfo[]", catch_unwind)]
    pub fn clients_in(&self, env: Env, channel: String) -> napi::Result<Js> {
        error::guard(&env, || {
            let clients = self.with_engine(&env, |engine| {
                Ok(clients_json(error::check(
                    &env,
                    engine.clients_in(&channel),
                )?))
            })?;
            convert::to_js(&env, clients)
        })
    }

    #[napi(ts_return_type = "import('./index').ClientInfo[]", catch_unwind)]
    pub fn clients_of(&self, env: Env, user: String) -> napi::Result<Js> {
        error::guard(&env, || {
            let clients = self.with_engine(&env, |engine| {
                Ok(clients_json(error::check(&env, engine.clients_of(&user))?))
            })?;
            convert::to_js(&env, clients)
        })
    }

    #[napi(ts_return_type = "import('./index').ChannelInfo[]", catch_unwind)]
    pub fn channels(&self, env: Env) -> napi::Result<Js> {
        error::guard(&env, || {
            let channels = self.with_engine(&env, |engine| {
                let channels = error::check(&env, engine.channels())?;
                Ok(Value::Array(
                    channels.iter().map(convert::channel_json).collect(),
                ))
            })?;
            convert::to_js(&env, channels)
        })
    }

    /// Whether the client is connected now, answered without waiting for a reactor.
    #[napi(catch_unwind)]
    pub fn is_connected(&self, env: Env, client: f64) -> napi::Result<bool> {
        error::guard(&env, || {
            let client = client_id(&env, client)?;
            self.with_engine(&env, |engine| {
                error::check(&env, engine.is_connected(client))
            })
        })
    }

    #[napi(catch_unwind)]
    pub fn client_count(&self, env: Env) -> napi::Result<u32> {
        error::guard(&env, || {
            self.with_engine(&env, |engine| {
                Ok(error::check(&env, engine.client_count())? as u32)
            })
        })
    }

    #[napi(catch_unwind)]
    pub fn channel_count(&self, env: Env, channel: String) -> napi::Result<u32> {
        error::guard(&env, || {
            self.with_engine(&env, |engine| {
                Ok(error::check(&env, engine.channel_count(&channel))? as u32)
            })
        })
    }

    #[napi(catch_unwind)]
    pub fn user_count(&self, env: Env, user: String) -> napi::Result<u32> {
        error::guard(&env, || {
            self.with_engine(&env, |engine| {
                Ok(error::check(&env, engine.user_count(&user))? as u32)
            })
        })
    }

    /// `metadata`: a JSON object as text, or `null` to clear. `false`: no such client.
    #[napi(catch_unwind)]
    pub fn set_metadata(
        &self,
        env: Env,
        client: f64,
        metadata: Option<String>,
    ) -> napi::Result<bool> {
        error::guard(&env, || {
            let client = client_id(&env, client)?;
            self.with_engine(&env, |engine| {
                let set = engine.set_metadata(client, metadata.as_deref());
                Ok(error::found(&env, set)?.is_some())
            })
        })
    }

    #[napi(catch_unwind)]
    pub fn close_channel(&self, env: Env, channel: String, disconnect: bool) -> napi::Result<u32> {
        error::guard(&env, || {
            self.with_engine(&env, |engine| {
                Ok(error::check(&env, engine.close_channel(&channel, disconnect))? as u32)
            })
        })
    }

    #[napi(catch_unwind)]
    pub fn remove_empty_channels(&self, env: Env) -> napi::Result<u32> {
        error::guard(&env, || {
            self.with_engine(&env, |engine| {
                Ok(error::check(&env, engine.remove_empty_channels())? as u32)
            })
        })
    }

    #[napi(catch_unwind)]
    pub fn configure_channel(
        &self,
        env: Env,
        channel: String,
        max_events: f64,
        max_age_ms: f64,
    ) -> napi::Result<()> {
        error::guard(&env, || {
            let limits = convert::history(&env, max_events, max_age_ms)?;
            self.with_engine(&env, |engine| {
                error::check(&env, engine.configure_channel(&channel, limits))
            })
        })
    }

    /// The settings the engine runs with, under the option names (see `convert::config_js`).
    #[napi(ts_return_type = "import('./index').EngineConfig", catch_unwind)]
    pub fn config(&self, env: Env) -> napi::Result<Js> {
        error::guard(&env, || {
            convert::to_js(&env, convert::config_js(self.engine.config()))
        })
    }

    #[napi(ts_return_type = "import('./index').Stats", catch_unwind)]
    pub fn stats(&self, env: Env) -> napi::Result<Js> {
        error::guard(&env, || {
            convert::to_js(&env, convert::stats(&self.engine.stats()))
        })
    }

    /// The counters in Prometheus text format.
    #[napi(catch_unwind)]
    pub fn metrics(&self, env: Env) -> napi::Result<String> {
        error::guard(&env, || Ok(self.engine.metrics()))
    }
}
