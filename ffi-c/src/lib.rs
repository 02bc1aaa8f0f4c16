//! The C API of sse-engine: thin conversions between C values and the engine's API.
//!
//! Every exported function runs its body inside [`call`](status::call), which catches
//! panics, maps the engine's [`Error`](::sse_engine::Error) to an [`sse_status`] (in
//! `status_of`, the one mapping) and records the message for `sse_last_error_message`.
//!
//! `::sse_engine` is the engine crate; a bare `sse_engine` is the C handle type.
#![allow(non_camel_case_types)]
// Exported functions check their raw pointers themselves (NULL => SSE_ERR_NULL_POINTER);
// the remaining contract (pointers valid for the documented sizes) is stated in the header.
#![allow(clippy::missing_safety_doc, clippy::not_unsafe_ptr_arg_deref)]

// One file per handle or concern. cbindgen reads the modules in the order they are
// declared here, which is the order of the functions in the header: keep it (the
// comments also keep rustfmt from sorting the declarations).

// sse_config, sse_config_init and its conversion to the engine's Config.
mod config;
// The sse_engine handle: new, free, shutdown.
mod engine;
// sse_connect_options: handing a socket over, stream-mode clients.
mod connect;
// The engine's HTTP rules for hosts that write responses: stream head, 503, Last-Event-ID.
mod http;
// sse_event: sends and broadcasts; subscribe, unsubscribe, disconnect.
mod send;
// Counts, sse_stats, the metadata filter, channels, JSON queries, metrics, sse_string_free.
mod registry;
// Lifecycle events and the callback.
mod callback;
// sse_status, the panic boundary, the last error, sse_status_str, sse_version.
mod status;
// Borrowing C arguments, writing out-parameters, handing strings out (no exports).
mod convert;
// Test-only fault injection (not in the header).
#[cfg(feature = "fault-injection")]
mod fault;
// Tests: sse_config and sse_stats against the engine's tables of settings and counters.
#[cfg(test)]
mod schema_test;

pub use callback::{
    sse_disconnect_reason, sse_event_callback, sse_lifecycle_event, sse_lifecycle_kind,
};
pub use config::sse_config;
pub use connect::{sse_connect_options, sse_header};
pub use engine::sse_engine;
pub use registry::sse_stats;
pub use send::{sse_event, sse_publish};
pub use status::sse_status;
