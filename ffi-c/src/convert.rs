//! Conversions shared by every exported function: borrowing C arguments (checked for
//! NULL and UTF-8 in the order they are read), writing out-parameters, and handing
//! strings out to the caller.

use std::ffi::{c_char, CStr, CString};

use crate::status::{sse_status, Failure};

/// Borrows a required C string.
pub(crate) fn text<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL, and the caller guarantees a NUL-terminated string that lives for
    // the duration of the call.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    std::str::from_utf8(bytes).map_err(|_| Failure::not_utf8(what))
}

/// Borrows an optional C string (NULL = None).
pub(crate) fn opt_text<'a>(ptr: *const c_char, what: &str) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        Ok(None)
    } else {
        text(ptr, what).map(Some)
    }
}

/// Borrows `len` items at `ptr` (NULL allowed when `len` is 0).
pub(crate) fn slice<'a, T>(ptr: *const T, len: usize, what: &str) -> Result<&'a [T], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL, and the caller guarantees `len` valid items for the call.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Borrows an optional struct argument (NULL = None).
pub(crate) fn opt_arg<'a, T>(ptr: *const T) -> Option<&'a T> {
    // SAFETY: the caller guarantees a non-NULL pointer points to a valid `T` for the call.
    unsafe { ptr.as_ref() }
}

/// Borrows a required struct argument.
pub(crate) fn arg<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, Failure> {
    opt_arg(ptr).ok_or_else(|| Failure::null(what))
}

/// Checks a required out-parameter before any work is done.
pub(crate) fn required<T>(ptr: *mut T, what: &str) -> Result<(), Failure> {
    if ptr.is_null() {
        Err(Failure::null(what))
    } else {
        Ok(())
    }
}

/// Writes an out-parameter; a NULL pointer is an error.
pub(crate) fn out<T>(ptr: *mut T, value: T, what: &str) -> Result<(), Failure> {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL, and the caller guarantees it points to writable storage for a `T`.
    unsafe { ptr.write(value) };
    Ok(())
}

/// Writes an optional out-parameter (NULL = the caller does not want it).
pub(crate) fn out_opt<T>(ptr: *mut T, value: T) {
    if !ptr.is_null() {
        // SAFETY: as in `out`.
        unsafe { ptr.write(value) };
    }
}

/// Hands a string to the caller; it frees it with sse_string_free.
pub(crate) fn give_string(ptr: *mut *mut c_char, text: String) -> Result<(), Failure> {
    // JSON and Prometheus text never contain NUL (JSON escapes it as \u0000).
    let text =
        CString::new(text).map_err(|_| Failure::new(sse_status::SSE_ERR_PANIC, "NUL in output"))?;
    out(ptr, text.into_raw(), "out")
}

pub(crate) fn give_json(ptr: *mut *mut c_char, value: serde_json::Value) -> Result<(), Failure> {
    give_string(ptr, value.to_string())
}
