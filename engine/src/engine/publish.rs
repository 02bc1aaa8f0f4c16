//! Sends and broadcasts: to a client, a user, a channel (filtered or not), many
//! channels at once, everyone.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use crate::directory::Target;
use crate::error::{Error, Result};
use crate::event::{validate_channel, validate_user, Event};
use crate::filter::Filter;
use crate::lifecycle::ClientId;
use crate::reactor::command::{ChannelEvent, Command};
use crate::reactor::queue;
use crate::stats::Counters;

use super::{Engine, ShardSet};

/// One reactor's part of a batch publish, until it is queued.
#[derive(Default)]
struct ShardPart {
    events: Vec<ChannelEvent>,
    recipients: usize,
}

impl Engine {
    pub(super) fn count_published(&self) {
        Counters::add(&self.shared.counters.events_published, 1);
    }

    /// Publishes to a channel: sequence number, id, history, then the reactors that
    /// have members of it (only those are sent the event and woken).
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
        let mut directory = self.directory();
        let published = directory.publish(
            Target::Channel(channel),
            event,
            filter.as_ref(),
            Instant::now(),
        );
        let mut woken = ShardSet::default();
        if let Some(name) = &published.channel {
            for (shard, members) in directory.channel_shards(name) {
                let command = Command::ToChannel {
                    channel: name.clone(),
                    frame: published.frame.clone(),
                    seq: published.seq,
                    filter: filter.clone(),
                };
                self.shards[shard].send_to(command, members);
                woken.insert(shard);
            }
        }
        drop(directory);
        self.count_published();
        self.wake(woken);
        Ok(published.count)
    }

    /// Publishes many events, each to its channel, in one call: the same as calling
    /// [`Engine::broadcast`] for each `(channel, event)` in order — each event takes the
    /// next sequence number and id, goes into its channel's history, counts as one
    /// published event, and reaches the channel's members in that order — but the
    /// directory is locked once, each reactor gets its part as one command (a new one
    /// whenever a channel comes again, so no command names a channel twice) and is woken
    /// once. Returns the deliveries queued: the sum of what each broadcast would return.
    ///
    /// Every item is checked before anything is published: when one is invalid the
    /// error (`InvalidArgument`) names its index (`item 3: channel name must not be
    /// empty`) and nothing is published. An empty batch returns 0.
    ///
    /// Like a broadcast it may wait while a reactor is behind: until each reactor's
    /// command queue has room for the whole batch (weighed by its events' sizes). A
    /// batch heavier than the queue's bound waits until the queue is empty and is then
    /// queued whole. After a second without room it fails with `LimitReached`, as a
    /// broadcast does, and nothing was published.
    pub fn broadcast_many<C: AsRef<str>>(&self, items: &[(C, Event)]) -> Result<usize> {
        self.check_open()?;
        for (index, (channel, event)) in items.iter().enumerate() {
            validate_channel(channel.as_ref())
                .and_then(|()| event.validate())
                .map_err(|e| Error::new(e.kind(), format!("item {index}: {}", e.message())))?;
        }
        if items.is_empty() {
            return Ok(0);
        }
        let weight = queue::batch_weight(items.iter().map(|(_, e)| e.data.len()));
        self.wait_for_room_for(&self.shards, weight)?;
        let mut parts: Vec<ShardPart> = (0..self.shards.len())
            .map(|_| ShardPart::default())
            .collect();
        // The channels in the commands being built (by the address of the directory's name).
        let mut in_parts: HashSet<*const u8> = HashSet::new();
        let mut woken = ShardSet::default();
        let mut count = 0;
        let mut directory = self.directory();
        let now = Instant::now();
        for (channel, event) in items {
            let published = directory.publish(Target::Channel(channel.as_ref()), event, None, now);
            count += published.count;
            let Some(name) = published.channel else {
                continue;
            };
            if published.count == 0 {
                continue;
            }
            if !in_parts.insert(Arc::as_ptr(&name).cast::<u8>()) {
                // The channel comes again: what was built goes first, as its own commands.
                self.queue_parts(&mut parts, &mut woken);
                in_parts.clear();
                in_parts.insert(Arc::as_ptr(&name).cast::<u8>());
            }
            for (shard, members) in directory.channel_shards(&name) {
                let part = &mut parts[shard];
                part.recipients += members;
                part.events.push(ChannelEvent {
                    channel: name.clone(),
                    frame: published.frame.clone(),
                    seq: published.seq,
                });
            }
        }
        self.queue_parts(&mut parts, &mut woken);
        drop(directory);
        Counters::add(&self.shared.counters.events_published, items.len() as u64);
        self.wake(woken);
        Ok(count)
    }

    /// Queues each reactor's part of a batch built so far as one command (under the
    /// directory lock), and empties the parts.
    fn queue_parts(&self, parts: &mut [ShardPart], woken: &mut ShardSet) {
        for (shard, part) in parts.iter_mut().enumerate() {
            if part.events.is_empty() {
                continue;
            }
            let part = std::mem::take(part);
            self.shards[shard].send_to(Command::ToChannels(part.events), part.recipients);
            woken.insert(shard);
        }
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
        let published = directory.publish(Target::All, event, None, Instant::now());
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
