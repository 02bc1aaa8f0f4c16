//! Sends and broadcasts: to a client, a user, a channel (filtered or not), everyone.

use std::sync::Arc;

use crate::directory::Target;
use crate::error::{Error, Result};
use crate::event::{validate_channel, validate_user, Event};
use crate::filter::Filter;
use crate::lifecycle::ClientId;
use crate::reactor::command::Command;
use crate::stats::Counters;

use super::Engine;

impl Engine {
    pub(super) fn count_published(&self) {
        Counters::add(&self.shared.counters.events_published, 1);
    }

    /// Publishes to a channel: sequence number, id, history, then the shards.
    pub(super) fn publish_to_channel(
        &self,
        channel: &str,
        event: &Event,
        filter: Option<Arc<Filter>>,
    ) -> Result<usize> {
        self.check_open()?;
        validate_channel(channel)?;
        event.validate()?;
        self.wait_for_room(&self.shards)?;
        let channel: Arc<str> = channel.into();
        let mut directory = self.directory();
        let published = directory.publish(Target::Channel(&channel), event, filter.as_ref());
        if published.count > 0 {
            self.enqueue_everywhere(published.count, || Command::ToChannel {
                channel: channel.clone(),
                frame: published.frame.clone(),
                seq: published.seq,
                filter: filter.clone(),
            });
        }
        drop(directory);
        self.count_published();
        if published.count > 0 {
            self.wake_every_shard();
        }
        Ok(published.count)
    }

    /// Sends `event` to one client. Returns 1, or `NotFound` when no such client is connected.
    pub fn send_to_client(&self, client: ClientId, event: &Event) -> Result<usize> {
        self.check_open()?;
        let frame = event.encode()?;
        self.wait_for_room([self.shard_of(client)])?;
        let directory = self.directory();
        if !directory.contains(client) {
            return Err(Error::not_found(client));
        }
        self.count_published();
        let shard = self.shard_of(client);
        shard.send_to(Command::ToClient { client, frame }, 1);
        drop(directory);
        shard.wake();
        Ok(1)
    }

    /// Sends `event` to every connection of `user`; returns how many it was queued for.
    pub fn send_to_user(&self, user: &str, event: &Event) -> Result<usize> {
        self.check_open()?;
        validate_user(user)?;
        let frame = event.encode()?;
        self.wait_for_room(&self.shards)?;
        self.count_published();
        let count = self.directory().user_count(user);
        if count > 0 {
            let user: Arc<str> = user.into();
            self.to_every_shard(count, || Command::ToUser {
                user: user.clone(),
                frame: frame.clone(),
            });
        }
        Ok(count)
    }

    /// Sends `event` to every member of `channel`; returns how many it was queued for.
    /// The event gets an id (the caller's, or the engine's with `auto_ids`) and goes
    /// into the channel's history, even when nobody is subscribed right now.
    pub fn broadcast(&self, channel: &str, event: &Event) -> Result<usize> {
        self.publish_to_channel(channel, event, None)
    }

    /// Sends `event` to the members of `channel` whose metadata matches `filter` (JSON
    /// text; see [`Filter`]). The filter is evaluated on the reactor threads; the
    /// returned count is the number of members it is evaluated against. History keeps
    /// the filter, so a replay honours it too.
    pub fn broadcast_where(&self, channel: &str, filter: &str, event: &Event) -> Result<usize> {
        self.check_open()?;
        let filter = Arc::new(Filter::parse(filter)?);
        self.publish_to_channel(channel, event, Some(filter))
    }

    /// Sends `event` to every connected client; returns how many it was queued for.
    /// Like a channel event it gets an id and is kept in history (the engine-wide ring
    /// every client replays from).
    pub fn broadcast_all(&self, event: &Event) -> Result<usize> {
        self.check_open()?;
        event.validate()?;
        self.wait_for_room(&self.shards)?;
        let mut directory = self.directory();
        let published = directory.publish(Target::All, event, None);
        if published.count > 0 {
            self.enqueue_everywhere(published.count, || Command::ToAll {
                frame: published.frame.clone(),
                seq: published.seq,
            });
        }
        drop(directory);
        self.count_published();
        if published.count > 0 {
            self.wake_every_shard();
        }
        Ok(published.count)
    }
}
