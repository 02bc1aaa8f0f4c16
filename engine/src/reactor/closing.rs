//! Ending clients: marking them (`doom`) and closing them at a safe point, with the
//! reason the host is told.

use std::io;

use crate::lifecycle::{ClientId, DisconnectReason, LifecycleEvent};
use crate::stats::Counters;

use super::conn::Output;
use super::Shard;

impl Shard {
    /// Why a client that stopped accepting bytes leaves: `timeout`, or `shutdown` while
    /// a shutdown flushes (it gives up on the client as the deadline would).
    pub(super) fn timeout_reason(&self) -> DisconnectReason {
        match self.timers.shutdown {
            Some(_) => DisconnectReason::Shutdown,
            None => DisconnectReason::Timeout,
        }
    }

    /// Why a socket error ends a client: the kernel gave up on a peer that acknowledged
    /// nothing for the write timeout (`ETIMEDOUT`, see `sys::own_tcp_socket`) is a
    /// timeout; anything else (a reset, mostly) an `error`.
    pub(super) fn failure_reason(&self, error: &io::Error) -> DisconnectReason {
        if error.raw_os_error() == Some(libc::ETIMEDOUT) {
            self.timeout_reason()
        } else {
            DisconnectReason::Error
        }
    }

    /// Every client's queue went out (or the client is leaving without it).
    pub(super) fn all_flushed(&self) -> bool {
        self.conns
            .iter()
            .all(|(_, c)| c.out.is_empty() || (c.doomed.is_some() && !c.draining()))
    }

    /// Marks a client for closing at the next safe point (the first reason counts).
    pub(super) fn doom(&mut self, key: usize, reason: DisconnectReason) {
        if let Some(conn) = self.conns.get_mut(key) {
            if conn.doomed.is_none() {
                conn.doomed = Some(reason);
                self.work.doomed.push(key);
            }
        }
    }

    pub(super) fn close_doomed(&mut self) {
        while let Some(key) = self.work.doomed.pop() {
            let conn = &mut self.conns[key];
            let reason = conn.doomed.unwrap_or(DisconnectReason::Error);
            let deliver = matches!(
                reason,
                DisconnectReason::Server | DisconnectReason::Shutdown
            );
            if let Output::Pulled { draining } = &mut conn.output {
                if deliver && !conn.out.is_empty() {
                    // Stream mode: the host takes what is queued, then the client closes.
                    *draining = true;
                    if !conn.blocked {
                        self.await_take(key);
                    }
                    continue;
                }
            }
            self.close(key, reason);
        }
    }

    pub(super) fn close_all(&mut self, reason: DisconnectReason) {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            let reason = self.conns[key].doomed.unwrap_or(reason);
            self.close(key, reason);
        }
    }

    pub(super) fn close(&mut self, key: usize, reason: DisconnectReason) {
        let mut conn = self.conns.remove(key);
        if conn.blocked {
            self.blocked_count -= 1;
        }
        if let Output::Socket { mut stream, id } = conn.output {
            if matches!(
                reason,
                DisconnectReason::Server | DisconnectReason::Shutdown
            ) {
                // A last, non-blocking attempt to deliver what the host queued before
                // closing: as much as the kernel takes now.
                let (_, bytes, calls) = conn.out.write_to(&stream);
                Counters::add(&self.shared.counters.bytes_written, bytes);
                Counters::add(&self.shared.counters.write_calls, calls);
            }
            let _ = self.poll.registry().deregister(&mut stream);
            if reason != DisconnectReason::Error {
                let _ = stream.shutdown(std::net::Shutdown::Write);
            }
            // The engine no longer owns this socket: it may be handed over anew.
            self.directory().release_socket(id);
            drop(stream);
        }
        for channel in &conn.channels {
            self.channels.remove(channel, key);
        }
        if let Some(user) = &conn.user {
            self.users.remove(user, key);
        }
        self.by_id.remove(&conn.id);
        self.forget(conn.id, reason);
    }

    /// Removes a closed client from the directory and tells the host.
    pub(super) fn forget(&mut self, id: ClientId, reason: DisconnectReason) {
        self.directory().closed(id);
        self.shared.counters.disconnected(reason);
        self.emit(LifecycleEvent::Disconnected { client: id, reason });
    }
}
