//! The binding's one error adapter: engine errors (and bad arguments found while
//! converting values) become JavaScript exceptions.
//!
//! | engine `ErrorKind`             | JavaScript                      | `err.code`             |
//! |--------------------------------|---------------------------------|------------------------|
//! | `InvalidArgument`              | `TypeError`                     | `SSE_INVALID_ARGUMENT` |
//! | `OutOfRange` (also a number argument out of its range) | `RangeError` | `SSE_OUT_OF_RANGE` |
//! | `BadSocket`                    | `Error`                         | `SSE_BAD_SOCKET`       |
//! | `NotFound`                     | `false` / `null` where the API says so, else `Error` | `SSE_NOT_FOUND` |
//! | `LimitReached`                 | `Error`                         | `SSE_LIMIT_REACHED`    |
//! | `ShutDown` (`close()` running) | the quiet answer, see below     | —                      |
//! | `ShutDown` (`close()` resolved)| `Error`                         | `SSE_SHUT_DOWN`        |
//! | `Io`                           | `Error`                         | `SSE_IO`               |
//! | (a panic in the binding or the engine) | `Error`                 | `SSE_PANIC`            |
//!
//! The JavaScript layer raises `SSE_INVALID_ARGUMENT` (`TypeError`) and
//! `SSE_INVALID_UTF8` (bytes that are not UTF-8) itself, in `lib/errors.js`.
//!
//! Panics: every export runs its body inside [`guard`], which catches a panic and
//! throws an `Error` with code `SSE_PANIC` and the panic's message, so a panic never
//! unwinds into Node (which would abort the process). Values that need converting to
//! JavaScript beyond a plain number or string are converted inside the guard too
//! (`convert::to_js`). Every export also carries `#[napi(catch_unwind)]` as a backstop
//! for napi-rs's own argument conversion around the guard, which reports failures as
//! errors rather than panicking; were it ever to panic, napi-rs would throw a plain
//! `Error` with code `GenericFailure` instead of aborting. Threads the binding starts
//! and the callback that delivers lifecycle events catch their panics as well
//! (`lib.rs`, `events.rs`).
//!
//! Every function here throws into the JavaScript environment and returns the
//! `PendingException` error that tells napi-rs the exception is already set.
//!
//! Calls after `close()`: while its shutdown runs (until JavaScript got the shutdown's
//! last event, so also from `disconnect` listeners of the shutdown) a call does not
//! reach the engine and answers [`WhileClosing::while_closing`]: nothing is delivered
//! and nobody is found (`false`, `0`, `null`, `[]`). Once `close()` resolved, calls
//! throw `SSE_SHUT_DOWN` ([`shut_down`]). A hand-over and `close()` itself are refused
//! with `SSE_SHUT_DOWN` from the first moment: nothing can be answered quietly there.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use napi::{Env, JsError, JsRangeError, JsTypeError, Status};
use sse_engine::{Error, ErrorKind, Refused};

/// The `code` of the error a caught panic throws.
pub(crate) const PANIC_CODE: &str = "SSE_PANIC";

/// The stable `code` property of errors of this kind.
pub(crate) fn code(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidArgument => "SSE_INVALID_ARGUMENT",
        ErrorKind::OutOfRange => "SSE_OUT_OF_RANGE",
        ErrorKind::BadSocket => "SSE_BAD_SOCKET",
        ErrorKind::NotFound => "SSE_NOT_FOUND",
        ErrorKind::LimitReached => "SSE_LIMIT_REACHED",
        ErrorKind::ShutDown => "SSE_SHUT_DOWN",
        ErrorKind::Io => "SSE_IO",
    }
}

/// The message JavaScript sees: the engine's message, which names the argument (its
/// plain "shut down" said in JavaScript's words; other shut-down messages, such as a
/// failed engine's, say more and are kept).
fn message(err: &Error) -> String {
    if err.kind() == ErrorKind::ShutDown && err.message() == Error::shut_down().message() {
        return "the engine is closed (close() was called)".to_string();
    }
    err.message().to_string()
}

/// What the JavaScript exception is built from, and with which constructor.
enum Constructor {
    Error,
    TypeError,
    RangeError,
}

fn throw_with(env: &Env, constructor: Constructor, code: &str, message: String) -> napi::Error {
    throw_value(env, constructor, code, message, |_| {})
}

/// Builds the exception, lets `decorate` add properties to it, and throws it.
fn throw_value(
    env: &Env,
    constructor: Constructor,
    code: &str,
    message: String,
    decorate: impl FnOnce(napi::sys::napi_value),
) -> napi::Error {
    let error = napi::Error::new(code.to_string(), message.clone());
    // SAFETY: `env` is the live environment of the current call (we are on the
    // JavaScript thread, inside a Node-API callback); the value is thrown in that call.
    unsafe {
        let value = match constructor {
            Constructor::Error => JsError::from(error).into_value(env.raw()),
            Constructor::TypeError => JsTypeError::from(error).into_value(env.raw()),
            Constructor::RangeError => JsRangeError::from(error).into_value(env.raw()),
        };
        decorate(value);
        napi::sys::napi_throw(env.raw(), value);
    }
    napi::Error::new(Status::PendingException, message)
}

fn constructor_of(kind: ErrorKind) -> Constructor {
    match kind {
        ErrorKind::InvalidArgument => Constructor::TypeError,
        ErrorKind::OutOfRange => Constructor::RangeError,
        _ => Constructor::Error,
    }
}

/// The message of a panic's payload (`panic!` gives a `&str` or a `String`).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    let what = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    };
    format!("sse-engine panicked: {what}")
}

/// Runs `call`, the body of an export, inside the panic boundary: a panic becomes a
/// thrown `Error` with code `SSE_PANIC` (replacing an exception the body may already
/// have thrown: the panic is the news).
pub(crate) fn guard<T>(env: &Env, call: impl FnOnce() -> napi::Result<T>) -> napi::Result<T> {
    let result = catch_unwind(AssertUnwindSafe(|| {
        crate::fault::hit(crate::fault::Point::Call);
        call()
    }));
    match result {
        Ok(result) => result,
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            // A payload whose own `Drop` panics must not unwind from here.
            std::mem::forget(payload);
            clear_pending(env);
            Err(panicked(env, message))
        }
    }
}

/// Throws the `Error` (code `SSE_PANIC`) of a caught panic with this message.
pub(crate) fn panicked(env: &Env, message: String) -> napi::Error {
    throw_with(env, Constructor::Error, PANIC_CODE, message)
}

/// Takes away an exception the current call already threw.
fn clear_pending(env: &Env) {
    let mut pending = false;
    // SAFETY: `env` is the live environment of the current call, on its thread.
    unsafe {
        if napi::sys::napi_is_exception_pending(env.raw(), &mut pending)
            == napi::sys::Status::napi_ok
            && pending
        {
            let mut exception = std::ptr::null_mut();
            napi::sys::napi_get_and_clear_last_exception(env.raw(), &mut exception);
        }
    }
}

/// Throws `err` as the JavaScript error its kind maps to.
pub(crate) fn throw(env: &Env, err: Error) -> napi::Error {
    throw_with(
        env,
        constructor_of(err.kind()),
        code(err.kind()),
        message(&err),
    )
}

/// Throws the error of a refused hand-over with `fdTaken`: `true` when the engine took
/// the descriptor (a limit: it answered 503 and closed it), so the JavaScript side lets
/// its socket go; `false` when the connection is untouched and still the host's.
pub(crate) fn throw_refused(env: &Env, refused: Refused) -> napi::Error {
    let fd_taken = refused.fd.is_none();
    let err = refused.error;
    throw_value(
        env,
        constructor_of(err.kind()),
        code(err.kind()),
        message(&err),
        |value| {
            // SAFETY: as in `throw_value`: the live environment of this call, and
            // `value` the error object it just made.
            unsafe {
                let mut flag = std::ptr::null_mut();
                napi::sys::napi_get_boolean(env.raw(), fd_taken, &mut flag);
                napi::sys::napi_set_named_property(env.raw(), value, c"fdTaken".as_ptr(), flag);
            }
        },
    )
}

/// Throws a `RangeError` for a number argument out of its range.
pub(crate) fn range(env: &Env, message: impl Into<String>) -> napi::Error {
    throw(env, Error::out_of_range(message))
}

/// Converts an engine result, throwing its error.
pub(crate) fn check<T>(env: &Env, result: sse_engine::Result<T>) -> napi::Result<T> {
    result.map_err(|e| throw(env, e))
}

/// `Ok(Some(value))`, `Ok(None)` for `NotFound`, or the thrown error.
pub(crate) fn found<T>(env: &Env, result: sse_engine::Result<T>) -> napi::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(throw(env, e)),
    }
}

/// `SSE_SHUT_DOWN`: a call after `close()` resolved, a hand-over or a second `close()`.
pub(crate) fn shut_down(env: &Env) -> napi::Error {
    throw(env, Error::shut_down())
}

/// What a call answers while the shutdown that `close()` started runs: what it answers
/// for a client that is gone and a channel nobody is in.
pub(crate) trait WhileClosing {
    fn while_closing() -> Self;
}

/// `send`, `subscribe`, `unsubscribe`, `disconnect`, `setMetadata`: `false`.
impl WhileClosing for bool {
    fn while_closing() -> Self {
        false
    }
}

/// Recipients of a send or broadcast, counts, channels closed or removed: `0`.
impl WhileClosing for u32 {
    fn while_closing() -> Self {
        0
    }
}

/// `getClient`: `null`.
impl<T> WhileClosing for Option<T> {
    fn while_closing() -> Self {
        None
    }
}

/// `clients`, `clientsIn`, `clientsOf`, `channels`: `[]`.
impl WhileClosing for serde_json::Value {
    fn while_closing() -> Self {
        serde_json::Value::Array(Vec::new())
    }
}

/// `configureChannel`: nothing to configure.
impl WhileClosing for () {
    fn while_closing() -> Self {}
}
