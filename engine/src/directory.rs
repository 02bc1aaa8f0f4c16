//! Who is connected and where, readable by callers without a round trip to a reactor.
//!
//! The directory is the engine's record of membership: which clients exist, which
//! channels and user each belongs to, and the counts that sends return and limits
//! check. Callers update it under a short lock when they connect or (un)subscribe and
//! enqueue the matching command to the shard while still holding it, so a shard sees
//! commands about one client in the order the directory recorded them. Reactors remove
//! a client when they close it. Fan-out itself never takes this lock.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::lifecycle::ClientId;

#[derive(Debug)]
struct Entry {
    user: Option<Arc<str>>,
    channels: Vec<Arc<str>>,
}

#[derive(Debug, Default)]
pub(crate) struct Directory {
    clients: HashMap<ClientId, Entry>,
    channels: HashMap<Arc<str>, usize>,
    users: HashMap<Arc<str>, usize>,
}

/// The limits the directory enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_clients: Option<usize>,
    pub max_per_channel: Option<usize>,
}

fn increment(map: &mut HashMap<Arc<str>, usize>, key: &Arc<str>) {
    *map.entry(key.clone()).or_insert(0) += 1;
}

fn decrement(map: &mut HashMap<Arc<str>, usize>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Directory {
    /// Checks the limits for a new client without recording it.
    pub fn check_admission(&self, channels: &[Arc<str>], limits: Limits) -> Result<()> {
        if let Some(max) = limits.max_clients {
            if self.clients.len() >= max {
                return Err(Error::new(
                    ErrorKind::LimitReached,
                    format!("the engine already holds its maximum of {max} clients"),
                ));
            }
        }
        if let Some(max) = limits.max_per_channel {
            if let Some(full) = channels.iter().find(|c| self.channel_count(c) >= max) {
                return Err(channel_full(full, max));
            }
        }
        Ok(())
    }

    /// Records a new client (after [`Directory::check_admission`]).
    pub fn insert(&mut self, id: ClientId, user: Option<Arc<str>>, channels: Vec<Arc<str>>) {
        for channel in &channels {
            increment(&mut self.channels, channel);
        }
        if let Some(user) = &user {
            increment(&mut self.users, user);
        }
        self.clients.insert(id, Entry { user, channels });
    }

    /// Forgets a client; returns whether it was there.
    pub fn remove(&mut self, id: ClientId) -> bool {
        let Some(entry) = self.clients.remove(&id) else {
            return false;
        };
        for channel in &entry.channels {
            decrement(&mut self.channels, channel);
        }
        if let Some(user) = &entry.user {
            decrement(&mut self.users, user);
        }
        true
    }

    /// Adds `channel` to a client; `Ok(false)` when it was already a member.
    pub fn subscribe(&mut self, id: ClientId, channel: &Arc<str>, limits: Limits) -> Result<bool> {
        let count = self.channel_count(channel);
        let entry = self
            .clients
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(id))?;
        if entry.channels.iter().any(|c| c == channel) {
            return Ok(false);
        }
        if let Some(max) = limits.max_per_channel {
            if count >= max {
                return Err(channel_full(channel, max));
            }
        }
        entry.channels.push(channel.clone());
        increment(&mut self.channels, channel);
        Ok(true)
    }

    /// Removes `channel` from a client; `Ok(false)` when it was not a member.
    pub fn unsubscribe(&mut self, id: ClientId, channel: &str) -> Result<bool> {
        let entry = self
            .clients
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(id))?;
        let Some(pos) = entry.channels.iter().position(|c| &**c == channel) else {
            return Ok(false);
        };
        entry.channels.swap_remove(pos);
        decrement(&mut self.channels, channel);
        Ok(true)
    }

    pub fn contains(&self, id: ClientId) -> bool {
        self.clients.contains_key(&id)
    }

    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    pub fn channel_count(&self, channel: &str) -> usize {
        self.channels.get(channel).copied().unwrap_or(0)
    }

    pub fn user_count(&self, user: &str) -> usize {
        self.users.get(user).copied().unwrap_or(0)
    }
}

fn channel_full(channel: &str, max: usize) -> Error {
    Error::new(
        ErrorKind::LimitReached,
        format!("channel {channel:?} already holds its maximum of {max} clients"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_LIMITS: Limits = Limits {
        max_clients: None,
        max_per_channel: None,
    };

    #[test]
    fn counts_follow_membership() {
        let mut d = Directory::default();
        let a: Arc<str> = "a".into();
        d.insert(1, Some("u".into()), vec![a.clone()]);
        d.insert(2, Some("u".into()), vec![]);
        assert_eq!(d.channel_count("a"), 1);
        assert_eq!(d.user_count("u"), 2);
        assert!(d.subscribe(2, &a, NO_LIMITS).unwrap());
        assert!(!d.subscribe(2, &a, NO_LIMITS).unwrap());
        assert_eq!(d.channel_count("a"), 2);
        assert!(d.unsubscribe(1, "a").unwrap());
        assert!(!d.unsubscribe(1, "a").unwrap());
        assert!(d.remove(2));
        assert!(!d.remove(2));
        assert_eq!(d.channel_count("a"), 0);
        assert_eq!(d.user_count("u"), 1);
        assert_eq!(
            d.subscribe(9, &a, NO_LIMITS).unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn limits_refuse() {
        let mut d = Directory::default();
        let a: Arc<str> = "a".into();
        let limits = Limits {
            max_clients: Some(2),
            max_per_channel: Some(1),
        };
        d.check_admission(std::slice::from_ref(&a), limits).unwrap();
        d.insert(1, None, vec![a.clone()]);
        let err = d
            .check_admission(std::slice::from_ref(&a), limits)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LimitReached);
        d.insert(2, None, vec![]);
        assert!(d.check_admission(&[], limits).is_err());
        assert_eq!(
            d.subscribe(2, &a, limits).unwrap_err().kind(),
            ErrorKind::LimitReached
        );
    }
}
