//! Status codes and the panic boundary: `sse_status`, [`Failure`] (an engine error or
//! one of the C API's own: NULL, invalid UTF-8), the one mapping from the engine's error
//! kinds, the thread's last error message, and the static strings.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use ::sse_engine::{Error, ErrorKind};

/// Status of every call. Values are stable and never renumbered.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sse_status {
    /// Success.
    SSE_OK = 0,
    /// A required pointer argument was NULL.
    SSE_ERR_NULL_POINTER = 1,
    /// An argument is malformed (newline in an event name, empty channel, bad JSON, ...).
    SSE_ERR_INVALID_ARGUMENT = 2,
    /// A string argument is not valid UTF-8.
    SSE_ERR_INVALID_UTF8 = 3,
    /// The fd is not an open, connected TCP socket (closed, pipe, file, listening, UDP...),
    /// or is one the engine already owns (by this descriptor or a duplicate of it).
    SSE_ERR_BAD_SOCKET = 4,
    /// No client with that id is connected.
    SSE_ERR_NOT_FOUND = 5,
    /// A configured limit refused the request; or a send, broadcast, subscribe,
    /// unsubscribe or sse_set_metadata found the engine's command queue full for 1 s (its
    /// reactor is stuck, e.g. in a callback that blocks) and did nothing. Such calls
    /// normally wait while the queue is full, so a publisher faster than the reactor is
    /// slowed to its pace instead of growing memory; from a callback they never wait.
    SSE_ERR_LIMIT_REACHED = 6,
    /// The engine is shut down.
    SSE_ERR_SHUT_DOWN = 7,
    /// An operating-system call failed.
    SSE_ERR_IO = 8,
    /// An internal bug was caught at the boundary. Please report it.
    SSE_ERR_PANIC = 9,
    /// A number is outside the range its argument allows (threads, a zero timeout, a
    /// queue limit below the minimum, a zero capacity...).
    SSE_ERR_OUT_OF_RANGE = 10,
}

/// The one mapping from the engine's error kinds to C status codes.
fn status_of(kind: ErrorKind) -> sse_status {
    match kind {
        ErrorKind::InvalidArgument => sse_status::SSE_ERR_INVALID_ARGUMENT,
        ErrorKind::OutOfRange => sse_status::SSE_ERR_OUT_OF_RANGE,
        ErrorKind::BadSocket => sse_status::SSE_ERR_BAD_SOCKET,
        ErrorKind::NotFound => sse_status::SSE_ERR_NOT_FOUND,
        ErrorKind::LimitReached => sse_status::SSE_ERR_LIMIT_REACHED,
        ErrorKind::ShutDown => sse_status::SSE_ERR_SHUT_DOWN,
        ErrorKind::Io => sse_status::SSE_ERR_IO,
    }
}

/// Why a call failed: its status and the message for `sse_last_error_message`.
#[derive(Debug)]
pub(crate) struct Failure {
    status: sse_status,
    message: String,
}

impl Failure {
    pub fn new(status: sse_status, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
        }
    }

    /// A required pointer argument was NULL.
    pub fn null(what: &str) -> Self {
        Failure::new(sse_status::SSE_ERR_NULL_POINTER, format!("{what} is NULL"))
    }

    /// A string argument is not valid UTF-8.
    pub fn not_utf8(what: &str) -> Self {
        Failure::new(
            sse_status::SSE_ERR_INVALID_UTF8,
            format!("{what} is not valid UTF-8"),
        )
    }

    /// The same failure, its message naming item `index` of an array argument.
    pub fn in_item(self, index: usize) -> Self {
        Failure::new(self.status, format!("item {index}: {}", self.message))
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::new(status_of(error.kind()), error.message())
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = text);
}

/// Runs an exported body: catches panics, maps errors, records the message.
pub(crate) fn call(body: impl FnOnce() -> Result<(), Failure>) -> sse_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => sse_status::SSE_OK,
        // The message only: sse_status_str already names the status.
        Ok(Err(failure)) => {
            set_last_error(&failure.message);
            failure.status
        }
        Err(_) => {
            set_last_error("a bug in sse-engine panicked in this call; please report it");
            sse_status::SSE_ERR_PANIC
        }
    }
}

/// A static, human-readable name for a status code (never NULL; "unknown status" for a
/// value that is no sse_status).
#[no_mangle]
pub extern "C" fn sse_status_str(status: c_int) -> *const c_char {
    const ALL: [sse_status; 11] = [
        sse_status::SSE_OK,
        sse_status::SSE_ERR_NULL_POINTER,
        sse_status::SSE_ERR_INVALID_ARGUMENT,
        sse_status::SSE_ERR_INVALID_UTF8,
        sse_status::SSE_ERR_BAD_SOCKET,
        sse_status::SSE_ERR_NOT_FOUND,
        sse_status::SSE_ERR_LIMIT_REACHED,
        sse_status::SSE_ERR_SHUT_DOWN,
        sse_status::SSE_ERR_IO,
        sse_status::SSE_ERR_PANIC,
        sse_status::SSE_ERR_OUT_OF_RANGE,
    ];
    let Some(&status) = ALL.iter().find(|s| **s as c_int == status) else {
        return c"unknown status".as_ptr();
    };
    let s: &'static CStr = match status {
        sse_status::SSE_OK => c"ok",
        sse_status::SSE_ERR_NULL_POINTER => c"null pointer",
        sse_status::SSE_ERR_INVALID_ARGUMENT => c"invalid argument",
        sse_status::SSE_ERR_INVALID_UTF8 => c"invalid UTF-8",
        sse_status::SSE_ERR_BAD_SOCKET => c"bad socket",
        sse_status::SSE_ERR_NOT_FOUND => c"not found",
        sse_status::SSE_ERR_LIMIT_REACHED => c"limit reached",
        sse_status::SSE_ERR_SHUT_DOWN => c"shut down",
        sse_status::SSE_ERR_IO => c"I/O error",
        sse_status::SSE_ERR_PANIC => c"internal panic",
        sse_status::SSE_ERR_OUT_OF_RANGE => c"out of range",
    };
    s.as_ptr()
}

/// The message of the last error on this thread ("" if none): what was wrong, naming the
/// argument, without the status name (sse_status_str gives that). Valid until the next
/// call into this library on the same thread; never NULL.
#[no_mangle]
pub extern "C" fn sse_last_error_message() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// The library version, e.g. "0.1.0" (static, never NULL).
#[no_mangle]
pub extern "C" fn sse_version() -> *const c_char {
    static VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => panic!("version contains NUL"),
        };
    VERSION.as_ptr()
}
