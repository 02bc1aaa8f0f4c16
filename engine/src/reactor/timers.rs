//! A reactor's timers: heartbeats, the write-timeout sweep, history expiry and the
//! shutdown deadline, as instants the poll loop sleeps until.

use std::time::{Duration, Instant};

use crate::event::heartbeat_frame;
use crate::stats::Counters;

use super::Shard;

/// How often expired history is dropped (and channels left with nothing are forgotten).
pub(super) const HISTORY_EXPIRY: Duration = Duration::from_secs(1);
/// How often write timeouts are checked while some client is blocked.
pub(super) const TIMEOUT_SWEEP: Duration = Duration::from_millis(250);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Timers {
    pub heartbeat: Option<Instant>,
    /// Armed while some client is blocked and a write timeout is configured.
    pub sweep: Option<Instant>,
    /// Only on the reactor that expires history (one per engine).
    pub expiry: Option<Instant>,
    /// Set when a shutdown began: the flush ends by then.
    pub shutdown: Option<Instant>,
}

impl Timers {
    pub fn new(now: Instant, heartbeat: Option<Duration>, expires_history: bool) -> Timers {
        Timers {
            heartbeat: heartbeat.map(|h| now + h),
            sweep: None,
            expiry: expires_history.then(|| now + HISTORY_EXPIRY),
            shutdown: None,
        }
    }

    /// How long the poll may sleep: until the earliest timer (`None`: no timer).
    pub fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        let next = [self.heartbeat, self.sweep, self.expiry, self.shutdown]
            .into_iter()
            .flatten()
            .min()?;
        Some(next.saturating_duration_since(now))
    }

    /// Arms the sweep `TIMEOUT_SWEEP` from now unless it is armed.
    pub fn arm_sweep(&mut self, now: Instant) {
        self.sweep.get_or_insert(now + TIMEOUT_SWEEP);
    }
}

/// Whether `timer` is due at `now`; a due timer is set to `next` (or disarmed).
pub(super) fn fire(timer: &mut Option<Instant>, now: Instant, next: Option<Instant>) -> bool {
    if timer.is_some_and(|at| now >= at) {
        *timer = next;
        true
    } else {
        false
    }
}

impl Shard {
    /// Runs the timers that are due: history expiry, heartbeats to clients that got
    /// nothing since the last tick, and the write-timeout sweep.
    pub(super) fn run_timers(&mut self) {
        let now = self.now;
        if fire(&mut self.timers.expiry, now, Some(now + HISTORY_EXPIRY)) {
            self.directory().expire_history(now);
        }
        let interval = self.shared.config.heartbeat;
        if fire(&mut self.timers.heartbeat, now, interval.map(|i| now + i)) {
            let frame = heartbeat_frame();
            let queueing = self.shared.queueing();
            let mut sent = 0;
            for (key, conn) in self.conns.iter_mut() {
                if !std::mem::replace(&mut conn.active, false) {
                    sent += self.work.enqueue(conn, key, &frame, queueing) as u64;
                    conn.active = false;
                }
            }
            Counters::add(&self.shared.counters.heartbeats, sent);
            Counters::add(&self.shared.counters.frames_queued, sent);
        }
        if fire(&mut self.timers.sweep, now, None) {
            if let Some(timeout) = self.shared.config.write_timeout {
                let stale: Vec<usize> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| {
                        c.stalled_since
                            .is_some_and(|t| now.duration_since(t) >= timeout)
                    })
                    .map(|(k, _)| k)
                    .collect();
                let reason = self.timeout_reason();
                for key in stale {
                    match self.conns[key].doomed {
                        // A draining stream-mode client the host stopped taking from.
                        Some(doomed) if self.conns[key].draining() => self.close(key, doomed),
                        _ => self.doom(key, reason),
                    }
                }
                if self.blocked_count > 0 {
                    self.timers.arm_sweep(now);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poll_sleeps_until_the_earliest_timer() {
        let now = Instant::now();
        let mut timers = Timers::new(now, Some(Duration::from_secs(15)), true);
        assert_eq!(timers.poll_timeout(now), Some(HISTORY_EXPIRY));
        timers.arm_sweep(now);
        assert_eq!(timers.poll_timeout(now), Some(TIMEOUT_SWEEP));
        // Armed once: a later arm does not push it back.
        timers.arm_sweep(now + Duration::from_millis(100));
        assert_eq!(timers.sweep, Some(now + TIMEOUT_SWEEP));
        timers.shutdown = Some(now);
        assert_eq!(timers.poll_timeout(now), Some(Duration::ZERO));
        // Past instants give a zero sleep, never a panic.
        assert_eq!(
            timers.poll_timeout(now + Duration::from_secs(60)),
            Some(Duration::ZERO)
        );
        assert_eq!(Timers::new(now, None, false).poll_timeout(now), None);
    }

    #[test]
    fn a_due_timer_fires_once_and_is_rearmed_or_disarmed() {
        let now = Instant::now();
        let mut timer = Some(now + Duration::from_secs(1));
        assert!(!fire(&mut timer, now, None));
        let later = now + Duration::from_secs(1);
        let next = Some(later + Duration::from_secs(1));
        assert!(fire(&mut timer, later, next));
        assert_eq!(timer, next);
        assert!(!fire(&mut timer, later, None));
        let mut off = None;
        assert!(!fire(&mut off, later, next));
        assert_eq!(off, None);
    }
}
