//! sse-engine: a Server-Sent Events engine that owns SSE connections on its own
//! reactor threads.
//!
//! A host application (Rust, C, Node, Python) accepts an HTTP request, decides it should
//! become an event stream, and hands the connected socket to [`Engine::connect_fd`]. From
//! then on the engine writes the stream, keeps it alive with heartbeats, drops clients
//! that read too slowly, and fans events out to channels, users or everyone at native
//! speed; the host only calls [`Engine::send_to_client`], [`Engine::broadcast`] and friends.
//!
//! ```no_run
//! use sse_engine::{Config, ConnectOptions, Engine, Event};
//! # fn accepted_fd() -> std::os::fd::OwnedFd { unimplemented!() }
//! let engine = Engine::start(Config::default())?;
//! let options = ConnectOptions { channels: vec!["news".into()], ..Default::default() };
//! let client = engine.connect_fd(accepted_fd(), &options)?;
//! engine.broadcast("news", &Event::new("hello").named("greeting"))?;
//! # let _ = client;
//! # Ok::<(), sse_engine::Error>(())
//! ```

mod channel_set;
#[cfg(feature = "cluster")]
pub mod cluster;
mod config;
mod directory;
mod engine;
mod error;
mod event;
#[cfg(feature = "fault-injection")]
pub mod fault;
mod filter;
pub mod history;
pub mod http;
mod json;
mod lifecycle;
mod metrics;
mod reactor;
mod registry;
pub mod schema;
mod stats;
mod sys;

pub use config::{Config, ConnectOptions, MAX_THREADS, MIN_QUEUE_BYTES};
pub use directory::ChannelInfo;
pub use engine::{Engine, Refused, DROP_FLUSH_DEADLINE};
pub use error::{Error, ErrorKind, Result};
pub use event::{
    validate_channel, validate_event_id, validate_user, Event, MAX_ID_LEN, MAX_NAME_LEN,
};
pub use filter::Filter;
pub use history::HistoryLimits;
pub use http::ENGINE_HEADERS;
pub use lifecycle::{ClientId, DisconnectReason, EventHandler, LifecycleEvent};
pub use registry::ClientInfo;
pub use stats::Stats;

/// The engine's version (the crate version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
