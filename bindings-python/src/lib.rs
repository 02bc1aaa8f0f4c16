//! Python binding of sse-engine: the native module `sse_engine._native`.
//!
//! A thin PyO3 class over `Arc<Engine>`. It converts values, maps errors (in
//! [`errors`], the one error adapter), releases the GIL around every engine call, and
//! hands lifecycle events to Python: the engine's handler (on a reactor thread) only
//! pushes them into a channel, which a Python thread owned by the `sse_engine` package
//! drains with [`NativeEngine::next_events`] (waiting with the GIL released) before it
//! runs the callbacks holding the GIL. No engine logic lives here; the Pythonic API
//! (serialization, socket hand-over, callbacks, framework integrations) is in
//! `python/sse_engine/`.

mod convert;
mod errors;

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use sse_engine::{ConnectOptions, DisconnectReason, Engine, Event, HistoryLimits, LifecycleEvent};

use errors::{found, IntoPy};

/// The last event of `shutdown`: (data, event name, id, retry in ms).
type LastEvent = (String, Option<String>, Option<String>, Option<u64>);

/// Most lifecycle events handed to Python in one batch.
const MAX_EVENT_BATCH: usize = 4096;

/// The native engine handle. Every method may be called from any Python thread; each
/// releases the GIL while the engine works or waits.
#[pyclass(module = "sse_engine._native", name = "NativeEngine", frozen)]
struct NativeEngine {
    engine: Arc<Engine>,
    /// Lifecycle events from the reactor threads, once `enable_events` installed the handler.
    events: Mutex<Option<Receiver<LifecycleEvent>>>,
}

/// One item of `broadcast_many`: channel, data, event name, id and retry (ms).
type PublishItem<'py> = (
    String,
    String,
    Option<String>,
    Option<String>,
    Bound<'py, PyAny>,
);

fn event(data: String, name: Option<String>, id: Option<String>, retry: Option<u64>) -> Event {
    Event {
        event: name,
        id,
        retry,
        data,
    }
}

fn reason_name(reason: DisconnectReason) -> &'static str {
    reason.as_str()
}

#[pymethods]
impl NativeEngine {
    /// Starts an engine. Keyword options: those of `sse_engine.Engine` (its docstring
    /// lists them; `convert::config_from` reads them).
    #[new]
    #[pyo3(signature = (**options))]
    fn new(py: Python<'_>, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let config = convert::config_from(options)?;
        let engine = py.detach(|| Engine::start(config)).py_err()?;
        Ok(NativeEngine {
            engine: Arc::new(engine),
            events: Mutex::new(None),
        })
    }

    /// Takes over a connected TCP socket fd; returns the client id.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (fd, channels, user, metadata, headers, last_event_id, retry_ms, head_sent))]
    fn connect_fd(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = convert::fd_arg)] fd: i32,
        channels: Vec<String>,
        user: Option<String>,
        metadata: Option<String>,
        headers: Vec<(String, String)>,
        last_event_id: Option<String>,
        #[pyo3(from_py_with = convert::retry_arg)] retry_ms: Option<u64>,
        head_sent: bool,
    ) -> PyResult<u64> {
        let options = ConnectOptions {
            channels,
            user,
            metadata,
            headers,
            last_event_id,
            retry: retry_ms,
            head_sent,
        };
        if fd < 0 {
            return Err(PyValueError::new_err(format!("fd must be >= 0, got {fd}")));
        }
        // SAFETY: the Python API gives `fd` up for this call (`Engine.connect`'s
        // contract). A refusal that leaves it with the caller gives it back and it is
        // released unclosed below, so nothing is closed that the caller did not give
        // up; one that is not open is refused by the engine's check before any use.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        py.detach(|| self.engine.connect_fd(fd, &options))
            .map_err(|refused| errors::refused_to_py(py, refused))
    }

    /// Registers a stream-mode client (the host writes the bytes); returns its id.
    #[pyo3(signature = (channels, user, metadata, last_event_id, retry_ms))]
    fn connect_stream(
        &self,
        py: Python<'_>,
        channels: Vec<String>,
        user: Option<String>,
        metadata: Option<String>,
        last_event_id: Option<String>,
        #[pyo3(from_py_with = convert::retry_arg)] retry_ms: Option<u64>,
    ) -> PyResult<u64> {
        let options = ConnectOptions {
            channels,
            user,
            metadata,
            last_event_id,
            retry: retry_ms,
            ..ConnectOptions::default()
        };
        py.detach(|| self.engine.connect_stream(&options)).py_err()
    }

    /// Up to `max_bytes` queued for a stream-mode client (maybe empty); None once the
    /// client is gone.
    fn take_stream<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = convert::client_arg)] client: u64,
        #[pyo3(from_py_with = convert::max_bytes_arg)] max_bytes: usize,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let taken = found(py.detach(|| self.engine.take_stream(client, max_bytes)))?;
        Ok(taken.map(|bytes| PyBytes::new(py, &bytes)))
    }

    /// The response of a stream-mode client ended. False when the client is unknown.
    fn close_stream(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = convert::client_arg)] client: u64,
    ) -> PyResult<bool> {
        Ok(found(py.detach(|| self.engine.close_stream(client)))?.is_some())
    }

    /// Sends to one client. False when no such client is connected.
    #[pyo3(signature = (client, data, event_name, id, retry_ms))]
    fn send(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = convert::client_arg)] client: u64,
        data: String,
        event_name: Option<String>,
        id: Option<String>,
        #[pyo3(from_py_with = convert::retry_arg)] retry_ms: Option<u64>,
    ) -> PyResult<bool> {
        let ev = event(data, event_name, id, retry_ms);
        Ok(found(py.detach(|| self.engine.send_to_client(client, &ev)))?.is_some())
    }

    #[pyo3(signature = (user, data, event_name, id, retry_ms))]
    fn send_to_user(
        &self,
        py: Python<'_>,
        user: String,
        data: String,
        event_name: Option<String>,
        id: Option<String>,
        #[pyo3(from_py_with = convert::retry_arg)] retry_ms: Option<u64>,
    ) -> PyResult<usize> {
        let ev = event(data, event_name, id, retry_ms);
        py.detach(|| self.engine.send_to_user(&user, &ev)).py_err()
    }

    #[pyo3(signature = (channel, data, event_name, id, retry_ms))]
    fn broadcast(
        &self,
        py: Python<'_>,
        channel: String,
        data: String,
        event_name: Option<String>,
        id: Option<String>,
        #[pyo3(from_py_with = convert::retry_arg)] retry_ms: Option<u64>,
    ) -> PyResult<usize> {
        let ev = event(data, event_name, id, retry_ms);
        py.detach(|| self.engine.broadcast(&channel, &ev)).py_err()
    }

    /// Items: `(channel, data, event_name, id, retry_ms)` tuples, as the Python layer builds
    /// them from its mappings.
    #[pyo3(signature = (items))]
    fn broadcast_many(&self, py: Python<'_>, items: Vec<PublishItem<'_>>) -> PyResult<usize> {
        let items = items
            .into_iter()
            .enumerate()
            .map(|(index, (channel, data, event_name, id, retry_ms))| {
                let retry_ms = convert::optional(&retry_ms, |v| {
                    convert::int(&format!("items[{index}]['retry_ms']"), v)
                })?;
                Ok((channel, event(data, event_name, id, retry_ms)))
            })
            .collect::<PyResult<Vec<_>>>()?;
        py.detach(|| self.engine.broadcast_many(&items)).py_err()
    }

    #[pyo3(signature = (data, event_name, id, retry_ms))]
    fn broadcast_all(
        &self,
        py: Python<'_>,
        data: String,
        event_name: Option<String>,
        id: Option<String>,
        #[pyo3(from_py_with = convert::retry_arg)] retry_ms: Option<u64>,
    ) -> PyResult<usize> {
        let ev = event(data, event_name, id, retry_ms);
        py.detach(|| self.engine.broadcast_all(&ev)).py_err()
    }

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (channel, filter, data, event_name, id, retry_ms))]
    fn broadcast_where(
        &self,
        py: Python<'_>,
        channel: String,
        filter: String,
        data: String,
        event_name: Option<String>,
        id: Option<String>,
        #[pyo3(from_py_with = convert::retry_arg)] retry_ms: Option<u64>,
    ) -> PyResult<usize> {
        let ev = event(data, event_name, id, retry_ms);
        py.detach(|| self.engine.broadcast_where(&channel, &filter, &ev))
            .py_err()
    }

    /// False when the client was already a member, or is not connected.
    fn subscribe(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = convert::client_arg)] client: u64,
        channel: String,
    ) -> PyResult<bool> {
        Ok(found(py.detach(|| self.engine.subscribe(client, &channel)))?.unwrap_or(false))
    }

    /// False when the client was not a member, or is not connected.
    fn unsubscribe(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = convert::client_arg)] client: u64,
        channel: String,
    ) -> PyResult<bool> {
        Ok(found(py.detach(|| self.engine.unsubscribe(client, &channel)))?.unwrap_or(false))
    }

    /// False when no such client is connected.
    fn disconnect(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = convert::client_arg)] client: u64,
    ) -> PyResult<bool> {
        Ok(found(py.detach(|| self.engine.disconnect(client)))?.is_some())
    }

    /// False when no such client is connected.
    #[pyo3(signature = (client, metadata))]
    fn set_metadata(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = convert::client_arg)] client: u64,
        metadata: Option<String>,
    ) -> PyResult<bool> {
        let result = py.detach(|| self.engine.set_metadata(client, metadata.as_deref()));
        Ok(found(result)?.is_some())
    }

    /// One client as a dict, or None when it is not connected.
    fn get_client<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = convert::client_arg)] client: u64,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        match found(py.detach(|| self.engine.get_client(client)))? {
            Some(info) => Ok(Some(convert::json_to_py(py, &info.to_json())?)),
            None => Ok(None),
        }
    }

    fn clients<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let infos = py.detach(|| self.engine.clients()).py_err()?;
        convert::client_list(py, &infos)
    }

    fn clients_in<'py>(&self, py: Python<'py>, channel: String) -> PyResult<Bound<'py, PyList>> {
        let infos = py.detach(|| self.engine.clients_in(&channel)).py_err()?;
        convert::client_list(py, &infos)
    }

    fn clients_of<'py>(&self, py: Python<'py>, user: String) -> PyResult<Bound<'py, PyList>> {
        let infos = py.detach(|| self.engine.clients_of(&user)).py_err()?;
        convert::client_list(py, &infos)
    }

    fn channels<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let infos = py.detach(|| self.engine.channels()).py_err()?;
        let items = infos
            .iter()
            .map(|c| convert::json_to_py(py, &c.to_json()))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    fn client_count(&self, py: Python<'_>) -> PyResult<usize> {
        py.detach(|| self.engine.client_count()).py_err()
    }

    fn channel_count(&self, py: Python<'_>, channel: String) -> PyResult<usize> {
        py.detach(|| self.engine.channel_count(&channel)).py_err()
    }

    fn user_count(&self, py: Python<'_>, user: String) -> PyResult<usize> {
        py.detach(|| self.engine.user_count(&user)).py_err()
    }

    fn close_channel(&self, py: Python<'_>, channel: String, disconnect: bool) -> PyResult<usize> {
        py.detach(|| self.engine.close_channel(&channel, disconnect))
            .py_err()
    }

    fn remove_empty_channels(&self, py: Python<'_>) -> PyResult<usize> {
        py.detach(|| self.engine.remove_empty_channels()).py_err()
    }

    /// Sets a channel's history bounds (0 events or 0 seconds turns its history off).
    fn configure_channel(
        &self,
        py: Python<'_>,
        channel: String,
        #[pyo3(from_py_with = convert::history_size_arg)] history_size: usize,
        #[pyo3(from_py_with = convert::history_age_arg)] history_age: Duration,
    ) -> PyResult<()> {
        let history = HistoryLimits {
            max_events: history_size,
            max_age: history_age,
        };
        py.detach(|| self.engine.configure_channel(&channel, history))
            .py_err()
    }

    /// The configuration the engine runs with, as a dict of the options `Engine()` takes.
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        convert::config_dict(py, self.engine.config())
    }

    /// The counters as a dict (`disconnects` is a dict by reason).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = py.detach(|| self.engine.stats());
        convert::stats_dict(py, &stats)
    }

    /// The counters in Prometheus text format.
    fn metrics(&self, py: Python<'_>) -> String {
        py.detach(|| self.engine.metrics())
    }

    /// Installs the lifecycle handler (once): from then on events queue up for
    /// `next_events`.
    fn enable_events(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| {
            let mut slot = self.events.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_some() {
                return Ok(());
            }
            let (tx, rx) = mpsc::channel::<LifecycleEvent>();
            // Runs on a reactor thread: it only queues the event, never waits, never
            // touches Python.
            let handler = move |event: &LifecycleEvent| {
                let _ = tx.send(*event);
            };
            self.engine.set_event_handler(Some(Arc::new(handler)))?;
            *slot = Some(rx);
            Ok(())
        })
        .py_err()
    }

    /// Waits up to `timeout` seconds (GIL released) for lifecycle events. Returns a
    /// list of `(kind, client, reason)` tuples (kind: "connect", "disconnect", "gap",
    /// "readable"; reason: the disconnect reason, else None), empty on timeout, or None
    /// once the engine has stopped and every event was handed out.
    fn next_events<'py>(
        &self,
        py: Python<'py>,
        timeout: f64,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let timeout = convert::duration("timeout", timeout)?;
        let batch = py.detach(|| {
            let slot = self.events.lock().unwrap_or_else(|e| e.into_inner());
            let Some(rx) = slot.as_ref() else {
                return Err("lifecycle events are not enabled (call enable_events first)");
            };
            let first = match rx.recv_timeout(timeout) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => return Ok(Some(Vec::new())),
                Err(RecvTimeoutError::Disconnected) => return Ok(None),
            };
            let mut batch = vec![first];
            while batch.len() < MAX_EVENT_BATCH {
                match rx.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(_) => break,
                }
            }
            Ok(Some(batch))
        });
        let batch = batch.map_err(PyRuntimeError::new_err)?;
        let Some(batch) = batch else {
            return Ok(None);
        };
        let items = batch
            .iter()
            .map(|event| {
                let (kind, reason) = match *event {
                    LifecycleEvent::Connected { .. } => ("connect", None),
                    LifecycleEvent::Disconnected { reason, .. } => {
                        ("disconnect", Some(reason_name(reason)))
                    }
                    LifecycleEvent::Gap { .. } => ("gap", None),
                    LifecycleEvent::Readable { .. } => ("readable", None),
                };
                PyTuple::new(
                    py,
                    [
                        kind.into_pyobject(py)?.into_any(),
                        event.client().into_pyobject(py)?.into_any(),
                        reason.into_pyobject(py)?.into_any(),
                    ],
                )
            })
            .collect::<PyResult<Vec<_>>>()?;
        Ok(Some(PyList::new(py, items)?))
    }

    /// In a child process after `fork()`: the engine's threads exist only in the parent,
    /// so this handle must never shut the engine down or drop it (that would wait for
    /// threads that are not there). Leaks one reference so it never is.
    fn forget_after_fork(&self) {
        std::mem::forget(self.engine.clone());
    }

    /// Stops taking clients, optionally sends a last event to everyone, flushes for up
    /// to `timeout` seconds, closes every client and stops the reactor threads.
    #[pyo3(signature = (timeout, last=None))]
    fn begin_shutdown(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = convert::timeout_arg)] timeout: Duration,
        last: Option<LastEvent>,
    ) -> PyResult<()> {
        let last = last.map(|(data, name, id, retry)| event(data, name, id, retry));
        py.detach(|| self.engine.begin_shutdown(timeout, last.as_ref()))
            .py_err()
    }

    /// Waits for a begun shutdown at most `timeout` seconds (`None`: until done); True
    /// when the engine's threads stopped.
    #[pyo3(signature = (timeout))]
    fn wait_shutdown(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = convert::optional_timeout_arg)] timeout: Option<Duration>,
    ) -> PyResult<bool> {
        py.detach(|| self.engine.wait_shutdown(timeout)).py_err()
    }

    fn is_connected(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = convert::client_arg)] client: u64,
    ) -> PyResult<bool> {
        py.detach(|| self.engine.is_connected(client)).py_err()
    }
}

/// A response head or answer of the engine's HTTP rules: (status, reason, headers, body).
type HttpResponse = (u16, &'static str, Vec<(String, String)>, &'static str);

fn http_response(response: sse_engine::http::Response) -> HttpResponse {
    (
        response.status,
        response.reason,
        response.headers,
        response.body,
    )
}

/// Stream mode: the head the host writes through its framework (status 200, the SSE
/// headers, then `headers` without the engine's own and, over HTTP/2, without
/// connection-specific ones; each checked). Rules: `sse_engine::http::stream_head`.
#[pyfunction]
#[pyo3(signature = (headers, http2))]
fn stream_head(headers: Vec<(String, String)>, http2: bool) -> PyResult<HttpResponse> {
    sse_engine::http::stream_head(&headers, http2)
        .map(http_response)
        .py_err()
}

/// The 503 answer to a hand-over refused by a limit. Rules: `sse_engine::http::busy_answer`.
#[pyfunction]
#[pyo3(signature = (retry_after_secs, http2))]
fn busy_answer(retry_after_secs: u32, http2: bool) -> HttpResponse {
    http_response(sse_engine::http::busy_answer(retry_after_secs, http2))
}

/// The request's last event id from its `Last-Event-ID` header and its query string.
/// Rules: `sse_engine::http::last_event_id`.
#[pyfunction]
#[pyo3(signature = (header, query))]
fn last_event_id(header: Option<&str>, query: Option<&str>) -> Option<String> {
    sse_engine::http::last_event_id(header, query)
}

/// The engine's settings and counters, declared once (`sse_engine::schema`):
/// `{"config": [field...], "stats": [field...]}`, each field a dict `name`, `kind`,
/// `unit`, `default`, `off`, `doc` with the engine's names. The tests check the
/// keywords, `config()`, `stats()` and the docs against it.
#[pyfunction]
fn schema(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    convert::json_to_py(py, &sse_engine::schema::to_json())
}

/// The native half of the `sse_engine` package.
/// Test-only (cargo feature `fault-injection`): 1 makes the next engine call panic, 2 the
/// next command a reactor applies.
#[cfg(feature = "fault-injection")]
#[pyfunction]
fn arm_fault(point: u32) -> PyResult<()> {
    use sse_engine::fault::{arm, Fault};
    match point {
        1 => arm(Fault::NextCall),
        2 => arm(Fault::NextCommand),
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "unknown fault point {other}"
            )))
        }
    }
    Ok(())
}

#[pymodule]
mod _native {
    #[cfg(feature = "fault-injection")]
    #[pymodule_export]
    use super::arm_fault;
    #[pymodule_export]
    use super::{busy_answer, last_event_id, schema, stream_head, NativeEngine};

    #[pymodule_export]
    use crate::errors::{ClientNotFoundError, EngineClosedError, LimitReachedError};

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("ENGINE_VERSION", sse_engine::VERSION)?;
        m.add("ENGINE_HEADERS", sse_engine::ENGINE_HEADERS.to_vec())?;
        m.add("DISCONNECT_REASONS", {
            let names: Vec<&str> = sse_engine::DisconnectReason::ALL
                .iter()
                .map(|r| r.as_str())
                .collect();
            names
        })?;
        Ok(())
    }
}
