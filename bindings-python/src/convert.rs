//! Conversions. Python arguments to Rust values (integers, seconds, text, flags), each
//! error naming the argument (the errors themselves come from [`errors::argument`]);
//! values from the engine to Python objects: JSON (client and channel info), stats.

use std::fmt::Display;
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyList, PyString};
use pyo3::IntoPyObjectExt;
use serde_json::Value;
use sse_engine::{ClientInfo, Config, DisconnectReason, HistoryLimits, Stats};

use crate::errors;

/// The integer types arguments convert to, with the range their errors name.
pub trait Int: Sized + Display {
    const MIN: Self;
    const MAX: Self;
}

macro_rules! int_types {
    ($($t:ty),*) => {$(
        impl Int for $t {
            const MIN: Self = <$t>::MIN;
            const MAX: Self = <$t>::MAX;
        }
    )*};
}
int_types!(i32, u32, u64, usize);

/// An integer argument. Out of the type's range: `ValueError` naming `name` and the
/// range (never `OverflowError`); not an integer: `TypeError` naming `name`.
pub fn int<'py, T>(name: &str, value: &Bound<'py, PyAny>) -> PyResult<T>
where
    T: Int + for<'a> FromPyObject<'a, 'py, Error = PyErr>,
{
    value.extract::<T>().map_err(|e| {
        let expected = format!("an integer from {} to {}", T::MIN, T::MAX);
        errors::argument(name, value, &expected, e)
    })
}

/// A duration in seconds: a non-negative, finite number (float or int).
pub fn seconds(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let secs: f64 = value
        .extract()
        .map_err(|e| errors::argument(name, value, "a number of seconds", e))?;
    duration(name, secs)
}

/// `secs` as a `Duration`; `ValueError` naming `name` unless non-negative and finite.
pub fn duration(name: &str, secs: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(secs).map_err(|_| {
        PyValueError::new_err(format!(
            "{name} must be a non-negative, finite number of seconds, got {secs}"
        ))
    })
}

/// A text argument (`str`, encodable as UTF-8: a lone surrogate is a `ValueError`).
pub fn text(name: &str, value: &Bound<'_, PyAny>) -> PyResult<String> {
    value
        .extract()
        .map_err(|e| errors::argument(name, value, "a str (valid UTF-8 text)", e))
}

/// A `bool` argument.
pub fn flag(name: &str, value: &Bound<'_, PyAny>) -> PyResult<bool> {
    value
        .extract()
        .map_err(|e| errors::argument(name, value, "a bool", e))
}

/// `None` as `None`, anything else converted by `convert`.
pub fn optional<'py, T>(
    value: &Bound<'py, PyAny>,
    convert: impl FnOnce(&Bound<'py, PyAny>) -> PyResult<T>,
) -> PyResult<Option<T>> {
    if value.is_none() {
        Ok(None)
    } else {
        convert(value).map(Some)
    }
}

/// Reads the engine options (keyword arguments of `Engine(...)`). An option left out
/// keeps the engine's default; `None` turns off what can be turned off. Every error
/// names the option. Durations are seconds, except `retry_ms` (the Python rule;
/// tests/test_schema.py checks these names against the engine's settings table).
pub fn config_from(options: Option<&Bound<'_, PyDict>>) -> PyResult<Config> {
    let mut config = Config::default();
    let Some(options) = options else {
        return Ok(config);
    };
    for (key, value) in options.iter() {
        let key: String = key.extract()?;
        let name = key.as_str();
        let value = &value;
        match name {
            "threads" => config.threads = int(name, value)?,
            "heartbeat" => config.heartbeat = optional(value, |v| seconds(name, v))?,
            "retry_ms" => config.retry = optional(value, |v| int(name, v))?,
            "max_queue_bytes" => config.max_queue_bytes = int(name, value)?,
            "max_clients" => config.max_clients = optional(value, |v| int(name, v))?,
            "max_clients_per_channel" => {
                config.max_clients_per_channel = optional(value, |v| int(name, v))?
            }
            "write_timeout" => config.write_timeout = optional(value, |v| seconds(name, v))?,
            "busy_retry_after" => config.busy_retry_after_secs = int(name, value)?,
            "auto_ids" => config.auto_ids = flag(name, value)?,
            "history_size" => config.history.max_events = int(name, value)?,
            "history_age" => config.history.max_age = seconds(name, value)?,
            "max_replay" => config.max_replay = int(name, value)?,
            "gap_event" => config.gap_event = optional(value, |v| text(name, v))?,
            "retry" => {
                return Err(PyTypeError::new_err(
                    "the engine option \"retry\" is now \"retry_ms\" (milliseconds; \
                     every other duration is in seconds)",
                ))
            }
            other => {
                return Err(PyTypeError::new_err(format!(
                    "unknown engine option {other:?}"
                )))
            }
        }
    }
    Ok(config)
}

// Arguments of the native methods (`#[pyo3(from_py_with = ...)]`), by name.

pub fn client_arg(value: &Bound<'_, PyAny>) -> PyResult<u64> {
    int("client", value)
}

pub fn retry_arg(value: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
    optional(value, |v| int("retry_ms", v))
}

pub fn fd_arg(value: &Bound<'_, PyAny>) -> PyResult<i32> {
    int("fd", value)
}

pub fn max_bytes_arg(value: &Bound<'_, PyAny>) -> PyResult<usize> {
    int("max_bytes", value)
}

pub fn history_size_arg(value: &Bound<'_, PyAny>) -> PyResult<usize> {
    int("history_size", value)
}

pub fn history_age_arg(value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    seconds("history_age", value)
}

pub fn timeout_arg(value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    seconds("timeout", value)
}

pub fn optional_timeout_arg(value: &Bound<'_, PyAny>) -> PyResult<Option<Duration>> {
    optional(value, timeout_arg)
}

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
                // The engine keeps numbers exact: an integer beyond 64 bits is its digits.
                let text = n.to_string();
                if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                    py.get_type::<PyInt>().call1((text,))
                } else {
                    n.as_f64().unwrap_or(f64::NAN).into_bound_py_any(py)
                }
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
/// Taken apart field by field: a counter the engine adds does not compile here until it
/// has a key (and tests/test_schema.py fails until the `Stats` typed dict has it).
pub fn stats_dict<'py>(py: Python<'py>, s: &Stats) -> PyResult<Bound<'py, PyDict>> {
    let Stats {
        connections_open,
        connections_total,
        refused_total,
        disconnects: _,
        events_published,
        frames_queued,
        bytes_written,
        write_calls,
        heartbeats,
        queue_high_water,
        events_replayed,
        gaps,
        reactor_failures,
    } = *s;
    let dict = PyDict::new(py);
    dict.set_item("connections_open", connections_open)?;
    dict.set_item("connections_total", connections_total)?;
    dict.set_item("refused_total", refused_total)?;
    let disconnects = PyDict::new(py);
    for reason in DisconnectReason::ALL {
        disconnects.set_item(reason.as_str(), s.disconnects_by(reason))?;
    }
    dict.set_item("disconnects", disconnects)?;
    dict.set_item("events_published", events_published)?;
    dict.set_item("frames_queued", frames_queued)?;
    dict.set_item("bytes_written", bytes_written)?;
    dict.set_item("write_calls", write_calls)?;
    dict.set_item("heartbeats", heartbeats)?;
    dict.set_item("queue_high_water", queue_high_water)?;
    dict.set_item("events_replayed", events_replayed)?;
    dict.set_item("gaps", gaps)?;
    dict.set_item("reactor_failures", reactor_failures)?;
    Ok(dict)
}

/// The configuration under the option names `Engine(...)` takes (durations in seconds,
/// `retry_ms` in milliseconds; `None` where a setting is unset), so that
/// `Engine(**engine.config())` makes the same engine. Taken apart field by field, like
/// `stats_dict`.
pub fn config_dict<'py>(py: Python<'py>, c: &Config) -> PyResult<Bound<'py, PyDict>> {
    let Config {
        threads,
        heartbeat,
        retry,
        max_queue_bytes,
        max_clients,
        max_clients_per_channel,
        write_timeout,
        busy_retry_after_secs,
        auto_ids,
        history: HistoryLimits {
            max_events,
            max_age,
        },
        max_replay,
        gap_event,
    } = c;
    let dict = PyDict::new(py);
    dict.set_item("threads", threads)?;
    dict.set_item("heartbeat", heartbeat.map(|d| d.as_secs_f64()))?;
    dict.set_item("retry_ms", retry)?;
    dict.set_item("max_queue_bytes", max_queue_bytes)?;
    dict.set_item("max_clients", max_clients)?;
    dict.set_item("max_clients_per_channel", max_clients_per_channel)?;
    dict.set_item("write_timeout", write_timeout.map(|d| d.as_secs_f64()))?;
    dict.set_item("busy_retry_after", busy_retry_after_secs)?;
    dict.set_item("auto_ids", auto_ids)?;
    dict.set_item("history_size", max_events)?;
    dict.set_item("history_age", max_age.as_secs_f64())?;
    dict.set_item("max_replay", max_replay)?;
    dict.set_item("gap_event", gap_event.as_deref())?;
    Ok(dict)
}
