//! The one error adapter: `sse_engine::Error` to a Python exception.
//!
//! | engine kind                                   | Python exception                  |
//! |-----------------------------------------------|-----------------------------------|
//! | `InvalidArgument`, `OutOfRange`, `BadSocket`  | `ValueError`                      |
//! | `NotFound`                                    | `ClientNotFoundError` (`LookupError`); the methods the Python API documents as returning `False`/`None` for an unknown client turn it into that value with [`found`] |
//! | `LimitReached`                                | `LimitReachedError` (`RuntimeError`) |
//! | `ShutDown`                                    | `EngineClosedError` (`RuntimeError`) |
//! | `Io`                                          | `OSError`                         |
//!
//! A panic in the binding or the engine becomes PyO3's `PanicException`.
//!
//! The message is the engine's, which names the offending argument.
//!
//! Python values the binding cannot convert (see [`argument`], used by `convert.rs`):
//! an integer out of the range of its argument (`OverflowError` from the conversion)
//! and text that is not valid UTF-8 (`UnicodeEncodeError`: a lone surrogate) raise
//! `ValueError`, a value of the wrong type raises `TypeError`; both name the argument
//! and chain the conversion's own error as `__cause__`.

use std::os::fd::IntoRawFd;

use pyo3::create_exception;
use pyo3::exceptions::{
    PyLookupError, PyOSError, PyOverflowError, PyRuntimeError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::PyErr;

use sse_engine::{Error, ErrorKind, Refused};

create_exception!(
    sse_engine._native,
    EngineClosedError,
    PyRuntimeError,
    "The engine is closed (or closing): it takes no more calls."
);
create_exception!(
    sse_engine._native,
    LimitReachedError,
    PyRuntimeError,
    "A configured limit (max_clients, max_clients_per_channel) refused the request."
);
create_exception!(
    sse_engine._native,
    ClientNotFoundError,
    PyLookupError,
    "No client with that id is connected."
);

/// Converts an engine error to the Python exception of its kind.
pub fn to_py(error: Error) -> PyErr {
    let message = error.message().to_owned();
    match error.kind() {
        ErrorKind::InvalidArgument | ErrorKind::OutOfRange | ErrorKind::BadSocket => {
            PyValueError::new_err(message)
        }
        ErrorKind::NotFound => ClientNotFoundError::new_err(message),
        ErrorKind::LimitReached => LimitReachedError::new_err(message),
        ErrorKind::ShutDown => EngineClosedError::new_err(message),
        ErrorKind::Io => PyOSError::new_err(message),
    }
}

/// The exception of a refused hand-over, with `fd_taken`: `True` when the engine took
/// the descriptor (a limit refused the client: it answered 503 and closed it), `False`
/// when the descriptor is untouched and still the caller's (released here unclosed).
pub fn refused_to_py(py: Python<'_>, refused: Refused) -> PyErr {
    let fd_taken = match refused.fd {
        None => true,
        Some(fd) => {
            let _ = fd.into_raw_fd();
            false
        }
    };
    let error = to_py(refused.error);
    if let Err(e) = error.value(py).setattr("fd_taken", fd_taken) {
        return e;
    }
    error
}

/// Longest `repr` of a bad value quoted in a message.
const MAX_REPR: usize = 40;

/// The error for a Python value that could not be converted for the argument `name`,
/// which must be `expected` (for example "an integer from 0 to 255"). Out of range or
/// not encodable: `ValueError`; wrong type: `TypeError`. Any other exception (one the
/// object raised itself, from its `__index__` say) is raised as it is.
pub fn argument(name: &str, value: &Bound<'_, PyAny>, expected: &str, error: PyErr) -> PyErr {
    let py = value.py();
    // A new exception of a known class, never one of the original's class rebuilt from
    // a message: `UnicodeEncodeError("...")` itself fails ("function takes exactly 5
    // arguments (1 given)").
    let raised = if error.is_instance_of::<PyOverflowError>(py)
        || error.is_instance_of::<PyValueError>(py)
    {
        PyValueError::new_err(format!(
            "{name} must be {expected}, got {}",
            short_repr(value)
        ))
    } else if error.is_instance_of::<PyTypeError>(py) {
        PyTypeError::new_err(format!(
            "{name} must be {expected}, not {}",
            type_name_of(value)
        ))
    } else {
        return error;
    };
    raised.set_cause(py, Some(error));
    raised
}

fn short_repr(value: &Bound<'_, PyAny>) -> String {
    // repr itself may fail (an int of more than 4300 digits).
    let text = match value.repr() {
        Ok(repr) => repr.to_string(),
        Err(_) => return format!("<{}: repr() failed>", type_name_of(value)),
    };
    if text.chars().count() <= MAX_REPR {
        text
    } else {
        let head: String = text.chars().take(MAX_REPR).collect();
        format!("{head}...")
    }
}

fn type_name_of(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// For calls whose Python form answers "was the client there?": `NotFound` becomes
/// `Ok(None)`, every other error is raised.
pub fn found<T>(result: sse_engine::Result<T>) -> pyo3::PyResult<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(to_py(e)),
    }
}

/// `Result` of the engine to `PyResult`.
pub trait IntoPy<T> {
    fn py_err(self) -> pyo3::PyResult<T>;
}

impl<T> IntoPy<T> for sse_engine::Result<T> {
    fn py_err(self) -> pyo3::PyResult<T> {
        self.map_err(to_py)
    }
}
