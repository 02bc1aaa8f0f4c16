//! Changing who is where: channels joined and left, clients ended, channel settings.

use std::sync::Arc;

use crate::config::parse_metadata;
use crate::error::{Error, Result};
use crate::event::validate_channel;
use crate::history::HistoryLimits;
use crate::lifecycle::{ClientId, DisconnectReason};
use crate::reactor::command::Command;

use super::Engine;

impl Engine {
    /// Adds a client to a channel. `Ok(false)` when it was already a member.
    pub fn subscribe(&self, client: ClientId, channel: &str) -> Result<bool> {
        self.check_open()?;
        validate_channel(channel)?;
        self.wait_for_room([self.shard_of(client)])?;
        let channel: Arc<str> = channel.into();
        let mut directory = self.directory();
        let added = directory.subscribe(client, &channel, self.limits())?;
        if added {
            let shard = self.shard_of(client);
            shard.send(Command::Subscribe { client, channel });
            drop(directory);
            shard.wake();
        }
        Ok(added)
    }

    /// Removes a client from a channel. `Ok(false)` when it was not a member.
    pub fn unsubscribe(&self, client: ClientId, channel: &str) -> Result<bool> {
        self.check_open()?;
        validate_channel(channel)?;
        self.wait_for_room([self.shard_of(client)])?;
        let mut directory = self.directory();
        let removed = directory.unsubscribe(client, channel)?;
        if removed {
            let shard = self.shard_of(client);
            shard.send(Command::Unsubscribe {
                client,
                channel: channel.into(),
            });
            drop(directory);
            shard.wake();
        }
        Ok(removed)
    }

    /// Closes a client's stream (after a last attempt to send what is queued for it).
    /// The disconnect is reported with reason `server`.
    pub fn disconnect(&self, client: ClientId) -> Result<()> {
        self.end_client(client, DisconnectReason::Server)
    }

    pub(super) fn end_client(&self, client: ClientId, reason: DisconnectReason) -> Result<()> {
        self.check_open()?;
        let mut directory = self.directory();
        // Gone from the directory at once: later sends to it fail with `NotFound`.
        if !directory.remove_leaving(client) {
            return Err(Error::not_found(client));
        }
        let shard = self.shard_of(client);
        shard.send(Command::Disconnect { client, reason });
        drop(directory);
        shard.wake();
        Ok(())
    }

    /// Sets a channel's history limits (0 events or a zero age turns its history off),
    /// trimming what it holds now. The channel exists from then on, with or without
    /// members, until `close_channel` or `remove_empty_channels`.
    pub fn configure_channel(&self, channel: &str, history: HistoryLimits) -> Result<()> {
        self.check_open()?;
        validate_channel(channel)?;
        self.directory().configure_channel(&channel.into(), history);
        Ok(())
    }

    /// Replaces a client's metadata (a JSON object as text; `None` clears it). Sends and
    /// filters issued after this call see the new value.
    pub fn set_metadata(&self, client: ClientId, metadata: Option<&str>) -> Result<()> {
        self.check_open()?;
        let metadata = metadata.map(parse_metadata).transpose()?.map(Arc::new);
        self.wait_for_room([self.shard_of(client)])?;
        let directory = self.directory();
        if !directory.contains(client) {
            return Err(Error::not_found(client));
        }
        let shard = self.shard_of(client);
        shard.send(Command::SetMetadata { client, metadata });
        drop(directory);
        shard.wake();
        Ok(())
    }

    /// Unsubscribes every member of `channel` (with `disconnect`, closes their streams,
    /// reason `server`) and forgets the channel with its history. Returns how many
    /// clients were members; `NotFound`-free: an unknown channel gives 0.
    pub fn close_channel(&self, channel: &str, disconnect: bool) -> Result<usize> {
        self.check_open()?;
        validate_channel(channel)?;
        self.wait_for_room(&self.shards)?;
        let channel: Arc<str> = channel.into();
        let mut directory = self.directory();
        let members = directory.close_channel(&channel, disconnect);
        self.enqueue_everywhere(members, || Command::CloseChannel {
            channel: channel.clone(),
            disconnect,
        });
        drop(directory);
        self.wake_every_shard();
        Ok(members)
    }

    /// Forgets every channel without members, with its history and settings. Returns
    /// how many were removed.
    pub fn remove_empty_channels(&self) -> Result<usize> {
        self.check_open()?;
        Ok(self.directory().remove_empty_channels())
    }
}
