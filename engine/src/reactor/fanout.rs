//! Fan-out: one shared frame onto each recipient's queue (a reference, no copy, no
//! allocation per recipient), and the lists of clients waiting for the reactor.

use std::collections::VecDeque;

use bytes::Bytes;
use slab::Slab;

use crate::filter::Filter;
use crate::lifecycle::DisconnectReason;
use crate::stats::Counters;

use super::conn::Conn;

/// Clients waiting for a flush, to be closed, or for the next part of a replay; and how
/// many live frames the current flush pass and turn queued (see `EVENTS_PER_PASS`).
#[derive(Default)]
pub(super) struct Work {
    pub dirty: VecDeque<usize>,
    pub doomed: Vec<usize>,
    /// Replaying clients whose queue drained: they get the next part.
    pub replays: Vec<usize>,
    /// The most bytes any client of this reactor has had queued (published to the
    /// engine's `queue_high_water` once per turn: no atomic per recipient).
    pub high_water: u64,
    /// The number of the current flush pass (a pass starts when the dirty list is empty).
    pass: u32,
    /// The most live frames one client got queued in this pass.
    pub pass_most: u32,
    /// Live frames queued since the reactor's turn began (the turn resets it).
    pub turn_frames: usize,
}

/// How a fanned-out frame relates to history and filters.
#[derive(Clone, Copy)]
pub(super) struct Live<'a> {
    /// Sequence number of a history event, 0 for frames outside history.
    pub seq: u64,
    pub filter: Option<&'a Filter>,
}

impl Live<'_> {
    /// A frame for named clients: no history, no filter.
    pub const DIRECT: Live<'static> = Live {
        seq: 0,
        filter: None,
    };
}

/// What queueing is bounded by, and where it is counted.
#[derive(Clone, Copy)]
pub(super) struct Queueing<'a> {
    /// Bytes a client may have queued; past it the client is dropped as `slow`.
    pub max_queue_bytes: usize,
    pub counters: &'a Counters,
}

impl Work {
    /// Starts a flush pass: no client has had a live frame in it yet.
    pub fn new_pass(&mut self) {
        self.pass = self.pass.wrapping_add(1);
        self.pass_most = 0;
    }

    /// Counts a live frame queued for `conn` in this pass and turn.
    fn count_live(&mut self, conn: &mut Conn) {
        if conn.pass != self.pass {
            conn.pass = self.pass;
            conn.in_pass = 0;
        }
        conn.in_pass += 1;
        self.pass_most = self.pass_most.max(conn.in_pass);
        self.turn_frames += 1;
    }

    /// Queues a live frame unless the client must not get it: it is still replaying (the
    /// event will come from history), already got it by replay, or fails the filter.
    /// Live frames count towards the flush pass and the turn (see `EVENTS_PER_PASS`).
    pub fn deliver(
        &mut self,
        conn: &mut Conn,
        key: usize,
        frame: &Bytes,
        live: Live<'_>,
        queueing: Queueing<'_>,
    ) -> bool {
        if live.seq != 0 {
            if conn.replay_cursor.is_some() || live.seq <= conn.seen_seq {
                return false;
            }
            conn.seen_seq = live.seq;
        }
        if let Some(filter) = live.filter {
            if !filter.matches(conn.metadata.as_deref()) {
                return false;
            }
        }
        let queued = self.enqueue(conn, key, frame, queueing);
        if queued {
            self.count_live(conn);
        }
        queued
    }

    /// Queues a reference to `frame` for one client: no copy, no allocation per
    /// recipient (the queue grows amortised). A client past its queue limit is marked
    /// `slow` instead. Returns whether the frame was queued.
    pub fn enqueue(
        &mut self,
        conn: &mut Conn,
        key: usize,
        frame: &Bytes,
        queueing: Queueing<'_>,
    ) -> bool {
        if conn.doomed.is_some() {
            return false;
        }
        let queued = conn.out.len() + frame.len();
        if queued > queueing.max_queue_bytes {
            conn.doomed = Some(DisconnectReason::Slow);
            self.doomed.push(key);
            return false;
        }
        conn.out.push(frame.clone());
        conn.active = true;
        self.high_water = self.high_water.max(queued as u64);
        if !conn.blocked && !conn.dirty {
            conn.dirty = true;
            self.dirty.push_back(key);
        }
        true
    }
}

/// Queues `frame` for the clients with the given slab keys; counts the frames once.
pub(super) fn fan_out(
    conns: &mut Slab<Conn>,
    work: &mut Work,
    keys: impl Iterator<Item = usize>,
    frame: &Bytes,
    live: Live<'_>,
    queueing: Queueing<'_>,
) {
    let mut queued = 0u64;
    for key in keys {
        if let Some(conn) = conns.get_mut(key) {
            queued += work.deliver(conn, key, frame, live, queueing) as u64;
        }
    }
    Counters::add(&queueing.counters.frames_queued, queued);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel_set::ChannelSet;
    use crate::reactor::conn::Output;

    fn conns(n: usize) -> Slab<Conn> {
        let mut slab = Slab::new();
        for id in 0..n as u64 {
            slab.insert(Conn::new(
                id,
                Output::Pulled { draining: false },
                ChannelSet::new(),
            ));
        }
        slab
    }

    #[test]
    fn one_frame_reaches_every_recipient_and_each_is_dirty_once() {
        let counters = Counters::default();
        let queueing = Queueing {
            max_queue_bytes: 1024,
            counters: &counters,
        };
        let mut slab = conns(3);
        let mut work = Work::default();
        let frame = Bytes::from_static(b"data: x\n\n");
        fan_out(&mut slab, &mut work, 0..3, &frame, Live::DIRECT, queueing);
        fan_out(
            &mut slab,
            &mut work,
            [0, 2, 9].into_iter(),
            &frame,
            Live::DIRECT,
            queueing,
        );
        assert_eq!(work.dirty, [0, 1, 2]);
        assert_eq!(slab[0].out.len(), 2 * frame.len());
        assert_eq!(slab[1].out.len(), frame.len());
        assert_eq!(counters.snapshot(0).frames_queued, 5);
    }

    #[test]
    fn history_events_are_skipped_while_replaying_or_when_already_seen() {
        let counters = Counters::default();
        let queueing = Queueing {
            max_queue_bytes: 1024,
            counters: &counters,
        };
        let mut slab = conns(1);
        let mut work = Work::default();
        let frame = Bytes::from_static(b"data: x\n\n");
        let live = |seq| Live { seq, filter: None };
        slab[0].seen_seq = 5;
        assert!(!work.deliver(&mut slab[0], 0, &frame, live(5), queueing));
        assert!(work.deliver(&mut slab[0], 0, &frame, live(6), queueing));
        assert_eq!(slab[0].seen_seq, 6);
        slab[0].replay_cursor = Some(3);
        assert!(!work.deliver(&mut slab[0], 0, &frame, live(7), queueing));
        // Direct frames are not history: they always go.
        assert!(work.deliver(&mut slab[0], 0, &frame, Live::DIRECT, queueing));
        let filter = Filter::parse(r#"{"role":"admin"}"#).unwrap();
        slab[0].replay_cursor = None;
        let filtered = Live {
            seq: 0,
            filter: Some(&filter),
        };
        assert!(!work.deliver(&mut slab[0], 0, &frame, filtered, queueing));
    }

    #[test]
    fn a_pass_counts_the_live_frames_of_each_client() {
        let counters = Counters::default();
        let queueing = Queueing {
            max_queue_bytes: 1024,
            counters: &counters,
        };
        let mut slab = conns(3);
        let mut work = Work::default();
        work.new_pass();
        let frame = Bytes::from_static(b"data: x\n\n");
        // One frame for each of three clients: the pass has seen one per client.
        fan_out(&mut slab, &mut work, 0..3, &frame, Live::DIRECT, queueing);
        assert_eq!((work.pass_most, work.turn_frames), (1, 3));
        fan_out(
            &mut slab,
            &mut work,
            [0, 0].into_iter(),
            &frame,
            Live::DIRECT,
            queueing,
        );
        assert_eq!((work.pass_most, work.turn_frames), (3, 5));
        // Frames outside the live stream (replays, heartbeats) do not count.
        assert!(work.enqueue(&mut slab[1], 1, &frame, queueing));
        assert_eq!((work.pass_most, work.turn_frames), (3, 5));
        // A new pass starts every client from zero.
        work.new_pass();
        fan_out(
            &mut slab,
            &mut work,
            [0].into_iter(),
            &frame,
            Live::DIRECT,
            queueing,
        );
        assert_eq!(work.pass_most, 1);
        assert_eq!(slab[0].in_pass, 1);
    }

    #[test]
    fn a_client_past_its_queue_limit_is_doomed_slow_once() {
        let counters = Counters::default();
        let queueing = Queueing {
            max_queue_bytes: 20,
            counters: &counters,
        };
        let mut slab = conns(1);
        let mut work = Work::default();
        let frame = Bytes::from_static(b"data: 0123456\n\n");
        assert!(work.enqueue(&mut slab[0], 0, &frame, queueing));
        assert!(!work.enqueue(&mut slab[0], 0, &frame, queueing));
        assert!(!work.enqueue(&mut slab[0], 0, &frame, queueing));
        assert_eq!(slab[0].doomed, Some(DisconnectReason::Slow));
        assert_eq!(work.doomed, [0]);
        // A blocked client is not put on the dirty list again; every queue's depth counts.
        let mut slab = conns(2);
        let mut work = Work::default();
        slab[0].blocked = true;
        assert!(work.enqueue(&mut slab[0], 0, &frame, queueing));
        assert!(work.dirty.is_empty());
        assert_eq!(work.high_water, frame.len() as u64);
        let roomy = Queueing {
            max_queue_bytes: 100,
            ..queueing
        };
        assert!(work.enqueue(&mut slab[1], 1, &frame, roomy));
        assert!(work.enqueue(&mut slab[1], 1, &frame, roomy));
        assert_eq!(work.dirty, [1]);
        assert_eq!(work.high_water, 2 * frame.len() as u64);
    }
}
