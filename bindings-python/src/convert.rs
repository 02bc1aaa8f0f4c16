//! Values from the engine to Python objects: JSON (client and channel info), stats.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use pyo3::IntoPyObjectExt;
use serde_json::Value;
use sse_engine::{ClientInfo, Config, DisconnectReason, Stats};

/// A JSON value as the Python object `json.loads` would give.
pub fn json_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    match value {
        Value::Null => Ok(py.None().into_bound(py)),
        Value::Bool(b) => b.into_bound_py_any(py),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_bound_py_any(py)
            } else if let Some(u) = n.as_u64() {
                u.into_bound_py_any(py)
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_bound_py_any(py)
            }
        }
        Value::String(s) => Ok(PyString::new(py, s).into_any()),
        Value::Array(items) => {
            let items = items
                .iter()
                .map(|v| json_to_py(py, v))
                .collect::<PyResult<Vec<_>>>()?;
            Ok(PyList::new(py, items)?.into_any())
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, json_to_py(py, v)?)?;
            }
            Ok(dict.into_any())
        }
    }
}

/// Clients as a list of dicts (`ClientInfo::to_json` shapes).
pub fn client_list<'py>(py: Python<'py>, infos: &[ClientInfo]) -> PyResult<Bound<'py, PyList>> {
    let items = infos
        .iter()
        .map(|c| json_to_py(py, &c.to_json()))
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

/// The engine's counters as a dict; `disconnects` maps each reason to its count.
pub fn stats_dict<'py>(py: Python<'py>, s: &Stats) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("connections_open", s.connections_open)?;
    dict.set_item("connections_total", s.connections_total)?;
    dict.set_item("refused_total", s.refused_total)?;
    let disconnects = PyDict::new(py);
    for reason in DisconnectReason::ALL {
        disconnects.set_item(reason.as_str(), s.disconnects_by(reason))?;
    }
    dict.set_item("disconnects", disconnects)?;
    dict.set_item("events_published", s.events_published)?;
    dict.set_item("frames_queued", s.frames_queued)?;
    dict.set_item("bytes_written", s.bytes_written)?;
    dict.set_item("write_calls", s.write_calls)?;
    dict.set_item("heartbeats", s.heartbeats)?;
    dict.set_item("queue_high_water", s.queue_high_water)?;
    dict.set_item("events_replayed", s.events_replayed)?;
    dict.set_item("gaps", s.gaps)?;
    Ok(dict)
}

/// The configuration under the option names `Engine(...)` takes (durations in seconds).
pub fn config_dict<'py>(py: Python<'py>, c: &Config) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("threads", c.threads)?;
    dict.set_item("heartbeat", c.heartbeat.map(|d| d.as_secs_f64()))?;
    dict.set_item("retry", c.retry)?;
    dict.set_item("max_queue_bytes", c.max_queue_bytes)?;
    dict.set_item("max_clients", c.max_clients)?;
    dict.set_item("max_clients_per_channel", c.max_clients_per_channel)?;
    dict.set_item("write_timeout", c.write_timeout.map(|d| d.as_secs_f64()))?;
    dict.set_item("busy_retry_after", c.busy_retry_after_secs)?;
    dict.set_item("auto_ids", c.auto_ids)?;
    dict.set_item("history_size", c.history.max_events)?;
    dict.set_item("history_age", c.history.max_age.as_secs_f64())?;
    dict.set_item("max_replay", c.max_replay)?;
    dict.set_item("gap_event", c.gap_event.as_deref())?;
    Ok(dict)
}
