//! The engine's one error type.
//!
//! Every fallible call returns [`Error`]. Its [`ErrorKind`] carries the stable
//! numeric code that the C API returns as `sse_status` (the FFI crate maps the
//! kind to its enum in one place); codes are never renumbered.

use std::fmt;

/// What went wrong, as a stable category. The discriminants are the C status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorKind {
    /// A required pointer was NULL (C API only).
    NullPointer = 1,
    /// An argument is malformed: a newline in an event name, an empty channel, bad JSON...
    InvalidArgument = 2,
    /// A string argument is not valid UTF-8.
    InvalidUtf8 = 3,
    /// The file descriptor is not a connected stream socket the engine can own.
    BadSocket = 4,
    /// No client with that id is connected.
    NotFound = 5,
    /// A configured limit (max clients, max clients per channel) refused the request.
    LimitReached = 6,
    /// The engine is shut down (or shutting down) and takes no more calls.
    ShutDown = 7,
    /// An operating-system call failed.
    Io = 8,
    /// A panic was caught at the API boundary (a bug in the engine).
    Panic = 9,
}

impl ErrorKind {
    /// A short, stable, human-readable name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NullPointer => "null pointer",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::InvalidUtf8 => "invalid UTF-8",
            ErrorKind::BadSocket => "bad socket",
            ErrorKind::NotFound => "not found",
            ErrorKind::LimitReached => "limit reached",
            ErrorKind::ShutDown => "shut down",
            ErrorKind::Io => "I/O error",
            ErrorKind::Panic => "internal panic",
        }
    }
}

/// An error with its kind and a message naming the offending argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    pub fn not_found(client: u64) -> Self {
        Error::new(ErrorKind::NotFound, format!("no client with id {client}"))
    }

    pub fn shut_down() -> Self {
        Error::new(ErrorKind::ShutDown, "the engine is shut down")
    }

    pub fn io(context: &str, err: std::io::Error) -> Self {
        Error::new(ErrorKind::Io, format!("{context}: {err}"))
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
