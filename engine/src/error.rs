//! The engine's one error type.
//!
//! Every fallible call returns [`Error`]: an [`ErrorKind`] and a message naming the
//! offending argument. Each binding maps the kinds to its language once (the C status
//! codes live in the FFI crate).

use std::fmt;

/// What went wrong, as a stable category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// An argument is malformed: a newline in an event name, an empty channel, bad JSON...
    InvalidArgument,
    /// A number is outside the range its argument allows (threads, a timeout of zero,
    /// a queue limit below the minimum...).
    OutOfRange,
    /// The file descriptor is not a connected stream socket the engine can own.
    BadSocket,
    /// No client with that id is connected.
    NotFound,
    /// A configured limit (max clients, max clients per channel) refused the request.
    LimitReached,
    /// The engine is shut down (or shutting down) and takes no more calls.
    ShutDown,
    /// An operating-system call failed.
    Io,
}

impl ErrorKind {
    /// A short, stable, human-readable name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::OutOfRange => "out of range",
            ErrorKind::BadSocket => "bad socket",
            ErrorKind::NotFound => "not found",
            ErrorKind::LimitReached => "limit reached",
            ErrorKind::ShutDown => "shut down",
            ErrorKind::Io => "I/O error",
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

    pub fn out_of_range(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::OutOfRange, message)
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
