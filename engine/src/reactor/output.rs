//! Clients' I/O on the reactor: reading (and discarding) what a socket sends, writing
//! its queue with WRITABLE interest only while the kernel refuses bytes, and handing
//! a stream-mode client's bytes to the host.

use std::io::{self, Read};
use std::os::fd::AsRawFd;

use bytes::Bytes;
use mio::unix::SourceFd;
use mio::{Interest, Token};

use crate::lifecycle::{ClientId, DisconnectReason, LifecycleEvent};
use crate::stats::Counters;

use super::conn::{Output, Written};
use super::Shard;

impl Shard {
    /// Reads and discards what the client sends; sees it close.
    pub(super) fn read(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Output::Socket { stream, .. } = &mut conn.output else {
            return;
        };
        loop {
            match stream.read(&mut self.scratch[..]) {
                Ok(0) => {
                    self.doom(key, DisconnectReason::Closed);
                    return;
                }
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.doom(key, self.failure_reason(&e));
                    return;
                }
            }
        }
    }

    /// Sends what the client has queued: to its socket as far as the kernel takes it,
    /// or, in stream mode, tells the host once that there is something to take.
    pub(super) fn flush(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.doomed.is_some() {
            return;
        }
        let fd = match &conn.output {
            Output::Socket { stream, .. } => stream.as_raw_fd(),
            Output::Pulled { .. } => {
                if conn.out.is_empty() {
                    if conn.replay_cursor.is_some() {
                        self.work.replays.push(key);
                    }
                } else if !conn.blocked {
                    self.await_take(key);
                }
                return;
            }
        };
        let (written, bytes, calls) = conn.out.write_to(&fd);
        Counters::add(&self.shared.counters.bytes_written, bytes);
        Counters::add(&self.shared.counters.write_calls, calls);
        if bytes > 0 {
            conn.stalled_since = None;
        }
        match written {
            Written::Blocked => {
                conn.stalled_since.get_or_insert(self.now);
                if !conn.blocked {
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if self
                        .poll
                        .registry()
                        .reregister(&mut SourceFd(&fd), Token(key), interest)
                        .is_err()
                    {
                        self.doom(key, DisconnectReason::Error);
                        return;
                    }
                    conn.blocked = true;
                    self.blocked_count += 1;
                    if self.shared.config.write_timeout.is_some() {
                        self.timers.arm_sweep(self.now);
                    }
                }
            }
            Written::Drained => {
                if conn.replay_cursor.is_some() {
                    self.work.replays.push(key);
                }
                if conn.blocked {
                    if self
                        .poll
                        .registry()
                        .reregister(&mut SourceFd(&fd), Token(key), Interest::READABLE)
                        .is_err()
                    {
                        self.doom(key, DisconnectReason::Error);
                        return;
                    }
                    conn.blocked = false;
                    self.blocked_count -= 1;
                }
            }
            Written::Failed(e) => self.doom(key, self.failure_reason(&e)),
        }
    }

    /// A stream-mode client has bytes: it counts as blocked (so the write timeout
    /// applies) until the host takes them, and the host hears of it once.
    pub(super) fn await_take(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        conn.blocked = true;
        conn.stalled_since.get_or_insert(self.now);
        self.blocked_count += 1;
        if self.shared.config.write_timeout.is_some() {
            self.timers.arm_sweep(self.now);
        }
        let client = conn.id;
        self.emit(LifecycleEvent::Readable { client });
    }

    /// Hands up to `max` queued bytes of a stream-mode client to the host.
    pub(super) fn take(&mut self, client: ClientId, max: usize) -> crate::Result<Bytes> {
        let key = *self
            .by_id
            .get(&client)
            .ok_or_else(|| crate::Error::not_found(client))?;
        let conn = &mut self.conns[key];
        if let Output::Socket { .. } = conn.output {
            return Err(crate::Error::invalid(format!(
                "client {client} owns a socket; only stream-mode clients are taken from"
            )));
        }
        let bytes = conn.out.take(max);
        Counters::add(&self.shared.counters.bytes_written, bytes.len() as u64);
        Counters::add(&self.shared.counters.write_calls, 1);
        if conn.blocked {
            conn.blocked = false;
            self.blocked_count -= 1;
        }
        conn.stalled_since = None;
        if !conn.out.is_empty() {
            self.await_take(key);
        } else if let (Some(reason), true) = (conn.doomed, conn.draining()) {
            self.close(key, reason);
        } else if conn.replay_cursor.is_some() {
            self.work.replays.push(key);
            self.continue_replays();
        }
        Ok(bytes)
    }
}
