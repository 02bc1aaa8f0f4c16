//! The publish script (`publish.lua`) and its result.

use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{RedisResult, Script};

use super::Namespace;

/// Loaded once per connection (`EVALSHA`; the crate loads it again on `NOSCRIPT`).
static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("publish.lua")));

/// Loads the script into Redis (so pipelined calls find it; a Redis that restarted and
/// lost it gets it again from the crate on `NOSCRIPT`).
pub async fn load_script(con: &mut impl ConnectionLike) -> RedisResult<()> {
    SCRIPT.prepare_invoke().load_async(con).await.map(drop)
}

/// How much of a channel's history its stream keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most entries (0: the event is not kept).
    pub max_events: usize,
    /// Longest an entry is kept (whole milliseconds; the stream key expires after it
    /// when nothing more is published).
    pub max_age: Duration,
}

/// What the script gave an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The namespace's sequence number of the event.
    pub seq: u64,
    /// The namespace's epoch: a new one begins when Redis has lost the sequence.
    pub epoch: String,
}

/// Numbers `payload`, appends it to `channel`'s stream (within `limits`) and publishes
/// `"<seq>:<epoch>:<payload>"` on the channel's topic, in one atomic script.
/// `new_epoch` is the epoch begun if the namespace has none.
pub async fn publish(
    con: &mut impl ConnectionLike,
    namespace: &Namespace,
    channel: &str,
    payload: &[u8],
    limits: Limits,
    new_epoch: &str,
) -> RedisResult<Published> {
    let max_age_ms = u64::try_from(limits.max_age.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let (seq, epoch): (u64, String) = SCRIPT
        .key(namespace.meta_key())
        .key(namespace.stream_key(channel))
        .arg(new_epoch)
        .arg(namespace.topic(channel))
        .arg(payload)
        .arg(limits.max_events)
        .arg(max_age_ms)
        .invoke_async(con)
        .await?;
    Ok(Published { seq, epoch })
}
