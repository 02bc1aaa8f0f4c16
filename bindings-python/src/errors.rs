//! The one error adapter: `sse_engine::Error` to a Python exception.
//!
//! | engine kind                                   | Python exception                  |
//! |-----------------------------------------------|-----------------------------------|
//! | `InvalidArgument`, `InvalidUtf8`, `BadSocket`,| `ValueError`                      |
//! | `NullPointer`                                 |                                   |
//! | `NotFound`                                    | `ClientNotFoundError` (`LookupError`); the methods the Python API documents as returning `False`/`None` for an unknown client turn it into that value with [`found`] |
//! | `LimitReached`                                | `LimitReachedError` (`RuntimeError`) |
//! | `ShutDown`                                    | `EngineClosedError` (`RuntimeError`) |
//! | `Io`                                          | `OSError`                         |
//! | `Panic`                                       | `RuntimeError`                    |
//!
//! The message is the engine's, which names the offending argument.

use pyo3::create_exception;
use pyo3::exceptions::{PyLookupError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::PyErr;
use sse_engine::{Error, ErrorKind};

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
        ErrorKind::InvalidArgument
        | ErrorKind::InvalidUtf8
        | ErrorKind::BadSocket
        | ErrorKind::NullPointer => PyValueError::new_err(message),
        ErrorKind::NotFound => ClientNotFoundError::new_err(message),
        ErrorKind::LimitReached => LimitReachedError::new_err(message),
        ErrorKind::ShutDown => EngineClosedError::new_err(message),
        ErrorKind::Io => PyOSError::new_err(message),
        ErrorKind::Panic => PyRuntimeError::new_err(format!("internal error: {message}")),
    }
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
