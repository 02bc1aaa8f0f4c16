//! Event ids and per-channel history rings.
//!
//! Every event published to a channel (or to all) takes the next number of one
//! engine-wide sequence, in publish order. Its id is the caller's, or, with `auto_ids`,
//! the engine's own: `<epoch>-<seq>`, where `epoch` is the engine's start time in
//! milliseconds written in base 36 (8 lower-case characters until the year 2059)
//! followed by 3 random base-36 characters, and `seq` the sequence number in decimal,
//! from 1: for example `mhx3k2a1q7z-42`. An id of another run (or of another engine
//! started in the same millisecond) has another epoch and is never mistaken for one of
//! this run.
//!
//! Each channel keeps the frames of its recent events in a ring bounded by count and
//! age. A ring remembers the highest sequence number it has dropped (or never kept,
//! when history is off), which is how a reconnecting client's gap is detected: if
//! anything after its `Last-Event-ID` was dropped, replay would be incomplete.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::filter::Filter;

/// History bounds of a channel. A count or age of 0 turns history off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Most events kept.
    pub max_events: usize,
    /// Oldest event kept.
    pub max_age: Duration,
}

impl HistoryLimits {
    pub fn enabled(&self) -> bool {
        self.max_events > 0 && !self.max_age.is_zero()
    }
}

/// One recorded event.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub seq: u64,
    pub id: Option<Arc<str>>,
    pub frame: Bytes,
    pub at: Instant,
    /// Set for `broadcast_where`: replay honours the same filter.
    pub filter: Option<Arc<Filter>>,
}

/// The recent events of one channel, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Ring {
    entries: VecDeque<Entry>,
    /// Highest sequence number dropped from this ring (0: none).
    dropped_upto: u64,
}

impl Ring {
    /// Records `entry` and drops what is past the limits as of its time.
    pub fn push(&mut self, entry: Entry, limits: HistoryLimits) {
        let now = entry.at;
        self.entries.push_back(entry);
        self.trim(limits, now);
    }

    /// Drops what is past the limits.
    pub fn trim(&mut self, limits: HistoryLimits, now: Instant) {
        while let Some(first) = self.entries.front() {
            let too_many = self.entries.len() > limits.max_events;
            let too_old = now.saturating_duration_since(first.at) > limits.max_age;
            if !too_many && !too_old {
                break;
            }
            self.dropped_upto = first.seq;
            self.entries.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Notes an event of this channel that history did not keep (history is off).
    pub fn skip(&mut self, seq: u64) {
        self.dropped_upto = seq;
    }

    /// The newest sequence number this ring has seen, kept or not (0: none).
    pub fn newest_seq(&self) -> u64 {
        self.entries
            .back()
            .map_or(self.dropped_upto, |e| e.seq.max(self.dropped_upto))
    }

    /// Whether events after `seq` were dropped (replay from `seq` would be incomplete).
    pub fn lost_after(&self, seq: u64) -> bool {
        self.dropped_upto > seq
    }

    /// The sequence number of the event with this (caller's) id, newest first.
    pub fn find_id(&self, id: &str) -> Option<u64> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.id.as_deref() == Some(id))
            .map(|e| e.seq)
    }

    /// Events after `seq`, oldest first.
    pub fn after(&self, seq: u64) -> impl Iterator<Item = &Entry> {
        let start = self.entries.partition_point(|e| e.seq <= seq);
        self.entries.range(start..)
    }
}

/// The engine's id format: `<epoch base 36>-<seq>`.
#[derive(Debug, Clone)]
pub(crate) struct IdFormat {
    epoch: String,
}

impl IdFormat {
    /// `salt` makes engines started in the same millisecond differ (any random number).
    pub fn new(start_ms: u128, salt: u64) -> IdFormat {
        let salt = base36(u128::from(salt % (36 * 36 * 36)) + 36 * 36 * 36);
        IdFormat {
            // The leading 1 of `salt` (36^3 + n) keeps it 3 digits after dropping it.
            epoch: format!("{}{}", base36(start_ms), &salt[1..]),
        }
    }

    pub fn id(&self, seq: u64) -> String {
        let mut id = String::new();
        self.write(seq, &mut id);
        id
    }

    /// Writes the id of `seq` into `out` (replacing what it held).
    pub fn write(&self, seq: u64, out: &mut String) {
        use std::fmt::Write as _;
        out.clear();
        out.push_str(&self.epoch);
        // Writing to a String cannot fail.
        let _ = write!(out, "-{seq}");
    }

    /// The sequence number of one of this run's ids; `None` for anything else.
    pub fn parse(&self, id: &str) -> Option<u64> {
        let (epoch, seq) = id.split_once('-')?;
        if epoch != self.epoch || seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        seq.parse().ok()
    }
}

fn base36(mut n: u128) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII digits")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, id: Option<&str>) -> Entry {
        Entry {
            seq,
            id: id.map(Into::into),
            frame: Bytes::new(),
            at: Instant::now(),
            filter: None,
        }
    }

    #[test]
    fn ids_round_trip_and_foreign_ids_are_rejected() {
        let f = IdFormat::new(1_795_434_281_013, 7);
        let id = f.id(42);
        assert!(id.len() <= 15, "{id}");
        assert_eq!(f.parse(&id), Some(42));
        assert_eq!(IdFormat::new(1_795_434_281_014, 7).parse(&id), None);
        assert_eq!(IdFormat::new(1_795_434_281_013, 8).parse(&id), None);
        assert_eq!(IdFormat::new(0, 0).id(1), "0000-1");
        for bad in [
            "",
            "42",
            "-42",
            &format!("{}-", id.split('-').next().unwrap()),
            &format!("{id}x"),
        ] {
            assert_eq!(f.parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn ring_bounds_by_count_and_remembers_what_it_dropped() {
        let limits = HistoryLimits {
            max_events: 3,
            max_age: Duration::from_secs(60),
        };
        let mut ring = Ring::default();
        for seq in 1..=5 {
            ring.push(entry(seq, Some(&format!("e{seq}"))), limits);
        }
        assert_eq!(ring.len(), 3);
        assert!(ring.lost_after(1));
        assert!(!ring.lost_after(2));
        assert_eq!(ring.find_id("e4"), Some(4));
        assert_eq!(ring.find_id("e1"), None);
        let after: Vec<u64> = ring.after(3).map(|e| e.seq).collect();
        assert_eq!(after, [4, 5]);
    }

    #[test]
    fn ring_bounds_by_age() {
        let limits = HistoryLimits {
            max_events: 100,
            max_age: Duration::from_millis(10),
        };
        let mut ring = Ring::default();
        ring.push(entry(1, None), limits);
        ring.trim(limits, Instant::now() + Duration::from_millis(50));
        assert!(ring.is_empty());
        assert!(ring.lost_after(0));
    }
}
